// q8_elementwise_avx2.cpp: the AVX2 row functions of the int8 element-wise kernels
// (q8_elementwise.h), 32 elements per step in four int32 vectors of 8, exactly the
// scalar q8_*1 arithmetic:
//   sat32(x 2^left)   compares against INT32_MAX >> left and INT32_MIN >> left, then blends
//   rounding_doubling_high_mul(x, q) = floor((x q + 2^30) / 2^31) for every product but
//                     x = q = INT32_MIN (q >= 0 here, so never): 64-bit products of the even
//                     and odd lanes (vpmuldq), + 2^30, bits 31..62 put back in 32-bit lanes
//   rounding_divide_by_pot(x, e) = (x + 2^(e-1) - (x < 0)) >> e: ties away from zero; the add
//                     cannot wrap because every x it sees is below 2^29 in magnitude (a right
//                     shift means shift < 0, so no left shift came first, and the high multiply
//                     by q < 2^31 only shrinks the inputs: |(a - z) 2^20| < 2^28, Add's sum of two
//                     terms of at most 2^27, Mul's |product| <= 255^2)
//   an Add input's term with multiplier 1/2 (the input of the larger scale: q = 2^30, shift 0)
//                     is exactly (a - z) 2^19: (x 2^30 + 2^30) >> 31 = (x + 1) >> 1 for even x
//   + zp and clamp    as min/max against [lo - zp, hi - zp] first, so the int32 add cannot wrap
// A tail shorter than 8 elements runs the scalar functions.
#include <immintrin.h>

#include <cstring>

#include "cpu/int8/q8_elementwise.h"

namespace mobrt {
namespace q8 {
namespace {

struct VMult {
  __m256i q, nudge, sat_hi, sat_lo, rnudge, big, small;
  __m128i lcnt, rcnt;
  bool left, right;
  bool half;  // q = 2^30 and no left shift: an Add input's term is (a - z) 2^19
  explicit VMult(const Q8Mult& m) {
    half = m.q == (1 << 30) && m.left == 0;
    q = _mm256_set1_epi32(m.q);
    nudge = _mm256_set1_epi64x(int64_t(1) << 30);
    left = m.left > 0;
    right = m.right > 0;
    sat_hi = _mm256_set1_epi32(left ? INT32_MAX >> m.left : INT32_MAX);
    sat_lo = _mm256_set1_epi32(left ? INT32_MIN >> m.left : INT32_MIN);
    big = _mm256_set1_epi32(INT32_MAX);
    small = _mm256_set1_epi32(INT32_MIN);
    lcnt = _mm_cvtsi32_si128(m.left);
    rcnt = _mm_cvtsi32_si128(m.right);
    rnudge = _mm256_set1_epi32(right ? static_cast<int32_t>(int64_t(1) << (m.right - 1)) : 0);
  }
};

// rounding_divide_by_pot(x, right) for |x| < 2^29 (see the file comment)
inline __m256i rdbpot(__m256i x, const VMult& m) {
  if (!m.right) return x;
  const __m256i t = _mm256_add_epi32(_mm256_add_epi32(x, m.rnudge), _mm256_srai_epi32(x, 31));
  return _mm256_sra_epi32(t, m.rcnt);
}

inline __m256i mbqm(__m256i x, const VMult& m) {
  if (m.left) {
    const __m256i over = _mm256_cmpgt_epi32(x, m.sat_hi), under = _mm256_cmpgt_epi32(m.sat_lo, x);
    x = _mm256_sll_epi32(x, m.lcnt);
    x = _mm256_blendv_epi8(x, m.big, over);
    x = _mm256_blendv_epi8(x, m.small, under);
  }
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m.q), m.nudge);
  __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m.q), m.nudge);
  even = _mm256_srli_epi64(even, 31);  // bits 31..62 -> low dword
  odd = _mm256_slli_epi64(odd, 1);     // bits 31..62 -> high dword
  return rdbpot(_mm256_blend_epi32(even, odd, 0xAA), m);
}

// One Add input's term MBQM((v - z) 2^20, m) of widened values v.
inline __m256i term(__m256i v, __m256i z, const VMult& m) {
  const __m256i d = _mm256_sub_epi32(v, z);
  if (m.half) return rdbpot(_mm256_slli_epi32(d, 19), m);
  return mbqm(_mm256_slli_epi32(d, 20), m);
}

struct VOut {
  __m256i zy, lo, hi;  // lo, hi: the clamp range minus zy
  VOut(int32_t z, int32_t l, int32_t h)
      : zy(_mm256_set1_epi32(z)), lo(_mm256_set1_epi32(l - z)), hi(_mm256_set1_epi32(h - z)) {}
  __m256i operator()(__m256i r) const { return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r, lo), hi), zy); }
};

template <bool U8>
inline __m256i load8(const void* p) {
  const __m128i v = _mm_loadl_epi64(static_cast<const __m128i*>(p));
  return U8 ? _mm256_cvtepu8_epi32(v) : _mm256_cvtepi8_epi32(v);
}

// Four vectors of 8 in-range values -> 32 bytes in order.
template <bool U8>
inline void store32(void* p, __m256i v0, __m256i v1, __m256i v2, __m256i v3) {
  const __m256i p01 = _mm256_packs_epi32(v0, v1), p23 = _mm256_packs_epi32(v2, v3);
  const __m256i b = U8 ? _mm256_packus_epi16(p01, p23) : _mm256_packs_epi16(p01, p23);
  _mm256_storeu_si256(static_cast<__m256i*>(p),
                      _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

template <bool U8>
inline void store8(void* p, __m256i v) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(static_cast<__m128i*>(p), U8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w));
}

inline const uint8_t* at(const void* p, size_t i) { return static_cast<const uint8_t*>(p) + i; }
inline uint8_t* at(void* p, size_t i) { return static_cast<uint8_t*>(p) + i; }

// Out-of-line row body: `f8` maps (index of 8 elements) to the 8 results in int32 lanes.
template <bool U8, typename F>
inline size_t rows8(size_t n, void* y, F&& f8) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) store32<U8>(at(y, i), f8(i), f8(i + 8), f8(i + 16), f8(i + 24));
  for (; i + 8 <= n; i += 8) store8<U8>(at(y, i), f8(i));
  return i;
}

template <bool U8>
void add_t(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y) {
  const VMult ma(p.ma), mb(p.mb), my(p.my);
  const VOut out(p.zy, p.lo, p.hi);
  const __m256i za = _mm256_set1_epi32(p.za), zb = _mm256_set1_epi32(p.zb);
  size_t i;
  if (b_bcast) {
    const int32_t bv = U8 ? *static_cast<const uint8_t*>(b) : *static_cast<const int8_t*>(b);
    const __m256i tb = _mm256_set1_epi32(static_cast<int32_t>(q8_shifted_term(bv, p.zb, p.mb)));
    i = rows8<U8>(n, y, [&](size_t j) {
      return out(mbqm(_mm256_add_epi32(term(load8<U8>(at(a, j)), za, ma), tb), my));
    });
  } else {
    i = rows8<U8>(n, y, [&](size_t j) {
      const __m256i ta = term(load8<U8>(at(a, j)), za, ma), tb = term(load8<U8>(at(b, j)), zb, mb);
      return out(mbqm(_mm256_add_epi32(ta, tb), my));
    });
  }
  kQ8ElemScalar.add(at(a, i), b_bcast ? b : at(b, i), b_bcast, n - i, p, at(y, i), U8);
}

void add_avx2(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y, bool u8) {
  if (u8) add_t<true>(a, b, b_bcast, n, p, y);
  else add_t<false>(a, b, b_bcast, n, p, y);
}

template <bool U8>
void mul_t(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y) {
  const VMult my(p.my);
  const VOut out(p.zy, p.lo, p.hi);
  const __m256i za = _mm256_set1_epi32(p.za), zb = _mm256_set1_epi32(p.zb);
  size_t i;
  if (b_bcast) {
    const int32_t bv = U8 ? *static_cast<const uint8_t*>(b) : *static_cast<const int8_t*>(b);
    const __m256i vb = _mm256_set1_epi32(bv - p.zb);
    i = rows8<U8>(n, y, [&](size_t j) {
      return out(mbqm(_mm256_mullo_epi32(_mm256_sub_epi32(load8<U8>(at(a, j)), za), vb), my));
    });
  } else {
    i = rows8<U8>(n, y, [&](size_t j) {
      const __m256i va = _mm256_sub_epi32(load8<U8>(at(a, j)), za);
      const __m256i vb = _mm256_sub_epi32(load8<U8>(at(b, j)), zb);
      return out(mbqm(_mm256_mullo_epi32(va, vb), my));
    });
  }
  kQ8ElemScalar.mul(at(a, i), b_bcast ? b : at(b, i), b_bcast, n - i, p, at(y, i), U8);
}

void mul_avx2(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y, bool u8) {
  if (u8) mul_t<true>(a, b, b_bcast, n, p, y);
  else mul_t<false>(a, b, b_bcast, n, p, y);
}

template <bool U8>
void rescale_t(const void* x, size_t n, const Q8RescaleParams& p, void* y) {
  size_t i = 0;
  if (p.copy) {
    const __m256i lo = _mm256_set1_epi8(static_cast<char>(p.lo));
    const __m256i hi = _mm256_set1_epi8(static_cast<char>(p.hi));
    for (; i + 32 <= n; i += 32) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at(x, i)));
      v = U8 ? _mm256_min_epu8(_mm256_max_epu8(v, lo), hi) : _mm256_min_epi8(_mm256_max_epi8(v, lo), hi);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(at(y, i)), v);
    }
  } else {
    const VMult m(p.m);
    const VOut out(p.zy, p.lo, p.hi);
    const __m256i zx = _mm256_set1_epi32(p.zx);
    i = rows8<U8>(n, y, [&](size_t j) {
      return out(term(load8<U8>(at(x, j)), zx, m));
    });
  }
  kQ8ElemScalar.rescale(at(x, i), n - i, p, at(y, i), U8);
}

void rescale_avx2(const void* x, size_t n, const Q8RescaleParams& p, void* y, bool u8) {
  if (u8) rescale_t<true>(x, n, p, y);
  else rescale_t<false>(x, n, p, y);
}

// vpsadbw against zero sums 8 bytes into a 64-bit lane; int8 values are biased by +128 first.
int64_t sum_avx2(const void* x, size_t n, bool u8) {
  const __m256i bias = _mm256_set1_epi8(u8 ? 0 : static_cast<char>(0x80));
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at(x, i))), bias);
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, _mm256_setzero_si256()));
  }
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  const int64_t biased = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  return biased - (u8 ? 0 : 128 * static_cast<int64_t>(i)) + kQ8ElemScalar.sum(at(x, i), n - i, u8);
}

// dst and src do not overlap, so a last step that overlaps the previous one (n >= 16) is
// harmless: max(max(d, s), s) = max(d, s).
void max_row_avx2(void* dst, const void* src, size_t n, bool u8) {
  if (n >= 32) {
    for (size_t i = 0;; i += 32) {
      if (i + 32 > n) i = n - 32;
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at(dst, i)));
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at(src, i)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(at(dst, i)), u8 ? _mm256_max_epu8(a, b) : _mm256_max_epi8(a, b));
      if (i + 32 == n) return;
    }
  }
  if (n >= 16) {
    for (size_t i = 0;; i += 16) {
      if (i + 16 > n) i = n - 16;
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at(dst, i)));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at(src, i)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(at(dst, i)), u8 ? _mm_max_epu8(a, b) : _mm_max_epi8(a, b));
      if (i + 16 == n) return;
    }
  }
  kQ8ElemScalar.max_row(dst, src, n, u8);
}

template <bool U8>
void acc_row_t(int32_t* acc, const void* x, size_t n, int32_t zp) {
  const __m256i z = _mm256_set1_epi32(zp);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i* pa = reinterpret_cast<__m256i*>(acc + i);
    _mm256_storeu_si256(pa, _mm256_add_epi32(_mm256_loadu_si256(pa), _mm256_sub_epi32(load8<U8>(at(x, i)), z)));
  }
  kQ8ElemScalar.acc_row(acc + i, at(x, i), n - i, zp, U8);
}

void acc_row_avx2(int32_t* acc, const void* x, size_t n, int32_t zp, bool u8) {
  if (u8) acc_row_t<true>(acc, x, n, zp);
  else acc_row_t<false>(acc, x, n, zp);
}

// 32 bytes (16 pairs) per step: bytes sorted even/odd within each 128-bit lane, then the
// lanes' halves gathered; a last step may overlap the previous one (a copy: harmless).
void deinterleave2_avx2(const void* src, size_t n, void* even, void* odd) {
  if (n < 16) return kQ8ElemScalar.deinterleave2(src, n, even, odd);
  const __m256i sel = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                       0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  for (size_t j = 0;; j += 16) {
    if (j + 16 > n) j = n - 16;
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at(src, 2 * j)));
    const __m256i s = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(a, sel), 0xD8);  // 16 evens | 16 odds
    _mm_storeu_si128(reinterpret_cast<__m128i*>(at(even, j)), _mm256_castsi256_si128(s));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(at(odd, j)), _mm256_extracti128_si256(s, 1));
    if (j + 16 == n) return;
  }
}

// The empty asm makes the product a value of its own, so -ffp-contract cannot fuse it with the
// add into an FMA (this file is compiled with -mfma).
template <bool U8>
void favg_row_t(float* acc, const void* x, size_t n, float scale, int32_t zp) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i z = _mm256_set1_epi32(zp);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 p = _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_sub_epi32(load8<U8>(at(x, i)), z)));
    __asm__("" : "+x"(p));
    _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), p));
  }
  kQ8ElemScalar.favg_row(acc + i, at(x, i), n - i, scale, zp, U8);
}

void favg_row_avx2(float* acc, const void* x, size_t n, float scale, int32_t zp, bool u8) {
  if (u8) favg_row_t<true>(acc, x, n, scale, zp);
  else favg_row_t<false>(acc, x, n, scale, zp);
}

const Q8ElemIsa kAvx2 = {"avx2",       add_avx2,     mul_avx2,           rescale_avx2, sum_avx2,
                         max_row_avx2, acc_row_avx2, deinterleave2_avx2, false,        favg_row_avx2};

}  // namespace

Status q8_elem_prepare_avx2(KernelContext& ctx) { return q8_elem_prepare(ctx, kAvx2); }

}  // namespace q8
}  // namespace mobrt
