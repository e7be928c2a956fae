// q8_elementwise_neon.cpp: the armv8.0 NEON row functions of the int8 element-wise
// kernels (q8_elementwise.h), 16 elements per step in four int32x4 vectors, exactly the
// scalar q8_*1 arithmetic:
//   sat32(x 2^left)                 vqshl (saturating shift left)
//   rounding_doubling_high_mul(x, q) vqrdmulh: (2 x q + 2^31) >> 32 = floor((x q + 2^30) / 2^31),
//                                   saturating at x = q = INT32_MIN as the scalar rule does
//   rounding_divide_by_pot(x, e)     vrshl by -e rounds ties up; x - 1 for negative x first
//                                   (saturating) makes the ties round away from zero
//   + zp and clamp                   min/max against [lo - zp, hi - zp], then + zp
// A tail shorter than 16 elements runs the scalar functions.
#include <arm_neon.h>

#include "cpu/int8/q8_elementwise.h"

namespace mobrt {
namespace q8 {
namespace {

struct NMult {
  int32x4_t q, lsh, rsh;
  bool left, right;
  explicit NMult(const Q8Mult& m)
      : q(vdupq_n_s32(m.q)), lsh(vdupq_n_s32(m.left)), rsh(vdupq_n_s32(-m.right)), left(m.left > 0),
        right(m.right > 0) {}
};

inline int32x4_t mbqm(int32x4_t x, const NMult& m) {
  if (m.left) x = vqshlq_s32(x, m.lsh);
  x = vqrdmulhq_s32(x, m.q);
  if (m.right) {
    const int32x4_t fix = vshrq_n_s32(x, 31);  // right > 0: -1 for negative x
    x = vrshlq_s32(vqaddq_s32(x, fix), m.rsh);
  }
  return x;
}

struct NOut {
  int32x4_t zy, lo, hi;
  NOut(int32_t z, int32_t l, int32_t h) : zy(vdupq_n_s32(z)), lo(vdupq_n_s32(l - z)), hi(vdupq_n_s32(h - z)) {}
  int32x4_t operator()(int32x4_t r) const { return vaddq_s32(vminq_s32(vmaxq_s32(r, lo), hi), zy); }
};

struct V16 {
  int32x4_t v[4];
};

template <bool U8>
inline V16 load16(const void* p) {
  int16x8_t l, h;
  if (U8) {
    const uint8x16_t b = vld1q_u8(static_cast<const uint8_t*>(p));
    l = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(b)));
    h = vreinterpretq_s16_u16(vmovl_high_u8(b));
  } else {
    const int8x16_t b = vld1q_s8(static_cast<const int8_t*>(p));
    l = vmovl_s8(vget_low_s8(b));
    h = vmovl_high_s8(b);
  }
  V16 r;
  r.v[0] = vmovl_s16(vget_low_s16(l));
  r.v[1] = vmovl_high_s16(l);
  r.v[2] = vmovl_s16(vget_low_s16(h));
  r.v[3] = vmovl_high_s16(h);
  return r;
}

// Four vectors of in-range values -> 16 bytes in order.
template <bool U8>
inline void store16(void* p, const V16& r) {
  const int16x8_t a = vcombine_s16(vmovn_s32(r.v[0]), vmovn_s32(r.v[1]));
  const int16x8_t b = vcombine_s16(vmovn_s32(r.v[2]), vmovn_s32(r.v[3]));
  if (U8) vst1q_u8(static_cast<uint8_t*>(p), vcombine_u8(vqmovun_s16(a), vqmovun_s16(b)));
  else vst1q_s8(static_cast<int8_t*>(p), vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
}

inline const uint8_t* at(const void* p, size_t i) { return static_cast<const uint8_t*>(p) + i; }
inline uint8_t* at(void* p, size_t i) { return static_cast<uint8_t*>(p) + i; }

template <bool U8>
void add_t(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y) {
  const NMult ma(p.ma), mb(p.mb), my(p.my);
  const NOut out(p.zy, p.lo, p.hi);
  const int32x4_t za = vdupq_n_s32(p.za), zb = vdupq_n_s32(p.zb);
  int32x4_t tb_bc = vdupq_n_s32(0);
  if (b_bcast) {
    const int32_t bv = U8 ? *static_cast<const uint8_t*>(b) : *static_cast<const int8_t*>(b);
    tb_bc = vdupq_n_s32(static_cast<int32_t>(q8_shifted_term(bv, p.zb, p.mb)));
  }
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V16 va = load16<U8>(at(a, i)), r;
    V16 vb;
    if (!b_bcast) vb = load16<U8>(at(b, i));
    for (int k = 0; k < 4; ++k) {
      const int32x4_t ta = mbqm(vshlq_n_s32(vsubq_s32(va.v[k], za), 20), ma);
      const int32x4_t tb = b_bcast ? tb_bc : mbqm(vshlq_n_s32(vsubq_s32(vb.v[k], zb), 20), mb);
      r.v[k] = out(mbqm(vaddq_s32(ta, tb), my));
    }
    store16<U8>(at(y, i), r);
  }
  kQ8ElemScalar.add(at(a, i), b_bcast ? b : at(b, i), b_bcast, n - i, p, at(y, i), U8);
}

void add_neon(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y, bool u8) {
  if (u8) add_t<true>(a, b, b_bcast, n, p, y);
  else add_t<false>(a, b, b_bcast, n, p, y);
}

template <bool U8>
void mul_t(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y) {
  const NMult my(p.my);
  const NOut out(p.zy, p.lo, p.hi);
  const int32x4_t za = vdupq_n_s32(p.za), zb = vdupq_n_s32(p.zb);
  int32x4_t vb_bc = vdupq_n_s32(0);
  if (b_bcast) vb_bc = vdupq_n_s32((U8 ? *static_cast<const uint8_t*>(b) : *static_cast<const int8_t*>(b)) - p.zb);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V16 va = load16<U8>(at(a, i)), r;
    V16 vb;
    if (!b_bcast) vb = load16<U8>(at(b, i));
    for (int k = 0; k < 4; ++k) {
      const int32x4_t bk = b_bcast ? vb_bc : vsubq_s32(vb.v[k], zb);
      r.v[k] = out(mbqm(vmulq_s32(vsubq_s32(va.v[k], za), bk), my));
    }
    store16<U8>(at(y, i), r);
  }
  kQ8ElemScalar.mul(at(a, i), b_bcast ? b : at(b, i), b_bcast, n - i, p, at(y, i), U8);
}

void mul_neon(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y, bool u8) {
  if (u8) mul_t<true>(a, b, b_bcast, n, p, y);
  else mul_t<false>(a, b, b_bcast, n, p, y);
}

// y = lut[x]: four 64-byte tables (tbl returns 0 for an index past its table, tbx keeps the
// lane), the index moved down by 64 for each next table.
void rescale_lut_neon(const void* x, size_t n, const uint8_t* lut, void* y) {
  const uint8x16x4_t t0 = vld1q_u8_x4(lut), t1 = vld1q_u8_x4(lut + 64), t2 = vld1q_u8_x4(lut + 128),
                     t3 = vld1q_u8_x4(lut + 192);
  const uint8x16_t k64 = vdupq_n_u8(64);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint8x16_t idx = vld1q_u8(at(x, i));
    uint8x16_t r = vqtbl4q_u8(t0, idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, t1, idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, t2, idx);
    idx = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, t3, idx);
    vst1q_u8(at(y, i), r);
  }
  for (; i < n; ++i) at(y, i)[0] = lut[at(x, i)[0]];
}

template <bool U8>
void rescale_t(const void* x, size_t n, const Q8RescaleParams& p, void* y) {
  size_t i = 0;
  if (p.lut && !p.copy) return rescale_lut_neon(x, n, p.lut, y);
  if (p.copy) {
    for (; i + 16 <= n; i += 16) {
      if (U8) {
        const uint8x16_t v = vld1q_u8(at(x, i));
        vst1q_u8(at(y, i), vminq_u8(vmaxq_u8(v, vdupq_n_u8(static_cast<uint8_t>(p.lo))),
                                    vdupq_n_u8(static_cast<uint8_t>(p.hi))));
      } else {
        const int8x16_t v = vld1q_s8(reinterpret_cast<const int8_t*>(at(x, i)));
        vst1q_s8(reinterpret_cast<int8_t*>(at(y, i)),
                 vminq_s8(vmaxq_s8(v, vdupq_n_s8(static_cast<int8_t>(p.lo))), vdupq_n_s8(static_cast<int8_t>(p.hi))));
      }
    }
  } else {
    const NMult m(p.m);
    const NOut out(p.zy, p.lo, p.hi);
    const int32x4_t zx = vdupq_n_s32(p.zx);
    for (; i + 16 <= n; i += 16) {
      V16 v = load16<U8>(at(x, i));
      for (int k = 0; k < 4; ++k) v.v[k] = out(mbqm(vshlq_n_s32(vsubq_s32(v.v[k], zx), 20), m));
      store16<U8>(at(y, i), v);
    }
  }
  kQ8ElemScalar.rescale(at(x, i), n - i, p, at(y, i), U8);
}

void rescale_neon(const void* x, size_t n, const Q8RescaleParams& p, void* y, bool u8) {
  if (u8) rescale_t<true>(x, n, p, y);
  else rescale_t<false>(x, n, p, y);
}

// Pairwise widening adds of the bytes (int8 biased by +128): 16-bit lanes take at most
// 128 steps of 2 * 255 before they are folded into 32-bit lanes.
int64_t sum_neon(const void* x, size_t n, bool u8) {
  const uint8x16_t bias = vdupq_n_u8(u8 ? 0 : 0x80);
  uint64_t total = 0;
  size_t i = 0;
  while (i + 16 <= n) {
    uint32x4_t acc32 = vdupq_n_u32(0);
    for (int blk = 0; blk < 1024 && i + 16 <= n; ++blk) {
      uint16x8_t acc16 = vdupq_n_u16(0);
      for (int s = 0; s < 128 && i + 16 <= n; ++s, i += 16)
        acc16 = vpadalq_u8(acc16, veorq_u8(vld1q_u8(at(x, i)), bias));
      acc32 = vpadalq_u16(acc32, acc16);
    }
    total += vaddlvq_u32(acc32);
  }
  return static_cast<int64_t>(total) - (u8 ? 0 : 128 * static_cast<int64_t>(i)) +
         kQ8ElemScalar.sum(at(x, i), n - i, u8);
}

// dst and src do not overlap, so a last step that overlaps the previous one is harmless.
void max_row_neon(void* dst, const void* src, size_t n, bool u8) {
  if (n < 16) return kQ8ElemScalar.max_row(dst, src, n, u8);
  for (size_t i = 0;; i += 16) {
    if (i + 16 > n) i = n - 16;
    if (u8) {
      vst1q_u8(at(dst, i), vmaxq_u8(vld1q_u8(at(dst, i)), vld1q_u8(at(src, i))));
    } else {
      int8_t* d = reinterpret_cast<int8_t*>(at(dst, i));
      vst1q_s8(d, vmaxq_s8(vld1q_s8(d), vld1q_s8(reinterpret_cast<const int8_t*>(at(src, i)))));
    }
    if (i + 16 == n) return;
  }
}

template <bool U8>
void acc_row_t(int32_t* acc, const void* x, size_t n, int32_t zp) {
  const int32x4_t z = vdupq_n_s32(zp);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int16x8_t w = U8 ? vreinterpretq_s16_u16(vmovl_u8(vld1_u8(at(x, i))))
                           : vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(at(x, i))));
    vst1q_s32(acc + i, vaddq_s32(vld1q_s32(acc + i), vsubq_s32(vmovl_s16(vget_low_s16(w)), z)));
    vst1q_s32(acc + i + 4, vaddq_s32(vld1q_s32(acc + i + 4), vsubq_s32(vmovl_high_s16(w), z)));
  }
  kQ8ElemScalar.acc_row(acc + i, at(x, i), n - i, zp, U8);
}

void acc_row_neon(int32_t* acc, const void* x, size_t n, int32_t zp, bool u8) {
  if (u8) acc_row_t<true>(acc, x, n, zp);
  else acc_row_t<false>(acc, x, n, zp);
}

void deinterleave2_neon(const void* src, size_t n, void* even, void* odd) {
  if (n < 16) return kQ8ElemScalar.deinterleave2(src, n, even, odd);
  for (size_t j = 0;; j += 16) {
    if (j + 16 > n) j = n - 16;  // overlaps the previous step: a copy, harmless
    const uint8x16x2_t v = vld2q_u8(at(src, 2 * j));
    vst1q_u8(at(even, j), v.val[0]);
    vst1q_u8(at(odd, j), v.val[1]);
    if (j + 16 == n) return;
  }
}

// The empty asm keeps the product out of an fmla (GCC contracts across statements on aarch64).
template <bool U8>
void favg_row_t(float* acc, const void* x, size_t n, float scale, int32_t zp) {
  const float32x4_t s = vdupq_n_f32(scale);
  const int32x4_t z = vdupq_n_s32(zp);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const V16 v = load16<U8>(at(x, i));
    for (int k = 0; k < 4; ++k) {
      float32x4_t p = vmulq_f32(s, vcvtq_f32_s32(vsubq_s32(v.v[k], z)));
      __asm__("" : "+w"(p));
      vst1q_f32(acc + i + 4 * k, vaddq_f32(vld1q_f32(acc + i + 4 * k), p));
    }
  }
  kQ8ElemScalar.favg_row(acc + i, at(x, i), n - i, scale, zp, U8);
}

void favg_row_neon(float* acc, const void* x, size_t n, float scale, int32_t zp, bool u8) {
  if (u8) favg_row_t<true>(acc, x, n, scale, zp);
  else favg_row_t<false>(acc, x, n, scale, zp);
}

const Q8ElemIsa kNeon = {"neon",       add_neon,     mul_neon,           rescale_neon, sum_neon,
                         max_row_neon, acc_row_neon, deinterleave2_neon, true,         favg_row_neon};

}  // namespace

Status q8_elem_prepare_neon(KernelContext& ctx) { return q8_elem_prepare(ctx, kNeon); }

}  // namespace q8
}  // namespace mobrt
