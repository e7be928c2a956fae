// q8_requant_row_neon: requantizes one row of int32 accumulators to int8/uint8 with
// NEON, bit for bit equal to q8_requant_row_scalar (quant::requantize /
// quant::requantize_float32), 16 values per step, the tail through the scalar rule.
//
// Fixed point, acc * q * 2^(shift - 31):
//   x = sqshl(acc, left)             x * 2^left saturated to int32, as the reference
//   x = sqrdmulh(x, q)               rounding_doubling_high_mul: ties toward +inf, saturating
//   x = srshl(x + fixup, -right)     rounding_divide_by_pot: srshl rounds ties up, so
//                                    negative x is first lowered by 1 (fixup = -1 when
//                                    x < 0 and right > 0, saturating add): ties away from 0
//   y = clamp(sqadd(x, zp), lo, hi)  (lo, hi within the 8-bit range: the saturation of the
//                                    add cannot change a clamped result)
// float32 rule: v = float(acc) * fscale (one multiply, no add: nothing to fuse), clamped
// to [lo - zp, hi - zp], rounded half to even (fcvtns), + zp.
#include <arm_neon.h>

#include "cpu/int8/q8_gemm_neon.h"

namespace mobrt {
namespace q8 {

namespace {

struct FixedPoint {
  int32x4_t left, right, q, zp;
  int32x4_t apply(int32x4_t acc) const {
    int32x4_t x = vqrdmulhq_s32(vqshlq_s32(acc, left), q);
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(x, right), 31);
    x = vrshlq_s32(vqaddq_s32(x, fixup), right);
    return vqaddq_s32(x, zp);
  }
};

struct Float32Rule {
  float32x4_t scale, flo, fhi;
  int32x4_t zp;
  int32x4_t apply(int32x4_t acc) const {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), scale);
    v = vminq_f32(vmaxq_f32(v, flo), fhi);
    return vaddq_s32(vcvtnq_s32_f32(v), zp);
  }
};

// rule.apply on n (a multiple of 16) accumulators, clamped to [lo, hi] and narrowed.
template <typename Rule>
size_t rows16(const int32_t* acc, size_t n, const Rule& rule, int32_t lo, int32_t hi, void* out, bool out_u8) {
  const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int32x4_t y[4];
    for (int j = 0; j < 4; ++j) y[j] = vminq_s32(vmaxq_s32(rule.apply(vld1q_s32(acc + i + 4 * j)), vlo), vhi);
    // [lo, hi] lies within [-128, 255]: the narrowing to 16 bits is exact.
    const int16x8_t y01 = vcombine_s16(vmovn_s32(y[0]), vmovn_s32(y[1]));
    const int16x8_t y23 = vcombine_s16(vmovn_s32(y[2]), vmovn_s32(y[3]));
    if (out_u8) {
      vst1q_u8(static_cast<uint8_t*>(out) + i, vcombine_u8(vqmovun_s16(y01), vqmovun_s16(y23)));
    } else {
      vst1q_s8(static_cast<int8_t*>(out) + i, vcombine_s8(vqmovn_s16(y01), vqmovn_s16(y23)));
    }
  }
  return i;
}

}  // namespace

void q8_requant_row_neon(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8) {
  size_t done;
  if (r.float32) {
    Float32Rule rule;
    rule.scale = vdupq_n_f32(r.fscale);
    rule.flo = vdupq_n_f32(static_cast<float>(int64_t(r.lo) - r.zp));
    rule.fhi = vdupq_n_f32(static_cast<float>(int64_t(r.hi) - r.zp));
    rule.zp = vdupq_n_s32(r.zp);
    done = rows16(acc, n, rule, r.lo, r.hi, out, out_u8);
  } else {
    FixedPoint rule;
    rule.left = vdupq_n_s32(r.shift > 0 ? r.shift : 0);
    rule.right = vdupq_n_s32(r.shift < 0 ? r.shift : 0);  // a negative count shifts right
    rule.q = vdupq_n_s32(r.q);
    rule.zp = vdupq_n_s32(r.zp);
    done = rows16(acc, n, rule, r.lo, r.hi, out, out_u8);
  }
  if (done < n) {
    void* tail = out_u8 ? static_cast<void*>(static_cast<uint8_t*>(out) + done)
                        : static_cast<void*>(static_cast<int8_t*>(out) + done);
    q8_requant_row_scalar(acc + done, n - done, r, tail, out_u8);
  }
}

}  // namespace q8
}  // namespace mobrt
