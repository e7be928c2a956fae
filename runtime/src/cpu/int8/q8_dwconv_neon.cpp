// q8_dwconv_neon.cpp: the armv8.0 NEON row kernels of the int8 depthwise 3x3
// convolution (q8_dwconv.h). Inputs and taps are int16 (x - zx, w - zw); the widening
// multiply-accumulates smlal/smlal2 (vmlal_s16, vmlal_high_s16) form exact int32 sums,
// 8 outputs per step. Stride 1 loads each kernel column shifted by one element; stride 2
// deinterleaves with ld2 (even columns p[2i], odd p[2i+1], and p[2i+2] = the even columns
// of p + 2).
#include <arm_neon.h>

#include "cpu/int8/q8_dwconv.h"
#include "cpu/int8/q8_gemm_neon.h"

namespace mobrt {
namespace q8 {
namespace {

inline void mla8(int32x4_t& lo, int32x4_t& hi, int16x8_t x, int16x8_t w) {
  lo = vmlal_s16(lo, vget_low_s16(x), vget_low_s16(w));
  hi = vmlal_high_s16(hi, x, w);
}

void row3x3s1(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  int16x8_t w[9];
  for (int k = 0; k < 9; ++k) w[k] = vdupq_n_s16(w9[k]);
  const int32x4_t vi = vdupq_n_s32(init);
  for (size_t j = 0; j < n; j += 8) {
    int32x4_t lo = vi, hi = vi;
    for (int r = 0; r < 3; ++r) {
      const int16_t* p = rows[r] + j;
      mla8(lo, hi, vld1q_s16(p), w[3 * r]);
      mla8(lo, hi, vld1q_s16(p + 1), w[3 * r + 1]);
      mla8(lo, hi, vld1q_s16(p + 2), w[3 * r + 2]);
    }
    vst1q_s32(acc + j, lo);
    vst1q_s32(acc + j + 4, hi);
  }
}

void row3x3s2(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  int16x8_t w[9];
  for (int k = 0; k < 9; ++k) w[k] = vdupq_n_s16(w9[k]);
  const int32x4_t vi = vdupq_n_s32(init);
  for (size_t j = 0; j < n; j += 8) {
    int32x4_t lo = vi, hi = vi;
    for (int r = 0; r < 3; ++r) {
      const int16_t* p = rows[r] + 2 * j;
      const int16x8x2_t a = vld2q_s16(p);      // p[2i], p[2i+1]
      const int16x8_t c = vld2q_s16(p + 2).val[0];  // p[2i+2]
      mla8(lo, hi, a.val[0], w[3 * r]);
      mla8(lo, hi, a.val[1], w[3 * r + 1]);
      mla8(lo, hi, c, w[3 * r + 2]);
    }
    vst1q_s32(acc + j, lo);
    vst1q_s32(acc + j + 4, hi);
  }
}

// out = x - zx as int16, 8 per step (sxtl / uxtl), the tail scalar.
inline void widen_row(const void* x, bool x_u8, int32_t zx, size_t n, int16_t* out) {
  const int16x8_t z = vdupq_n_s16(static_cast<int16_t>(zx));
  size_t i = 0;
  if (x_u8) {
    const uint8_t* p = static_cast<const uint8_t*>(x);
    for (; i + 8 <= n; i += 8) vst1q_s16(out + i, vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p + i))), z));
  } else {
    const int8_t* p = static_cast<const int8_t*>(x);
    for (; i + 8 <= n; i += 8) vst1q_s16(out + i, vsubq_s16(vmovl_s8(vld1_s8(p + i)), z));
  }
  if (i < n) q8_dw_widen_scalar(static_cast<const uint8_t*>(x) + i, x_u8, zx, n - i, out + i);
}

// A plane's rows (Q8DwWidenFn).
void widen(const void* x, bool x_u8, int32_t zx, size_t n, size_t rows, int16_t* out, size_t pitch) {
  const uint8_t* p = static_cast<const uint8_t*>(x);
  for (size_t r = 0; r < rows; ++r) widen_row(p + r * n, x_u8, zx, n, out + r * pitch);
}

const Q8DwIsa kIsa = {"conv_q8_dw3x3_neon", row3x3s1, row3x3s2, widen, q8_requant_row_neon, nullptr};

}  // namespace

Status q8_dw_prepare_neon(KernelContext& ctx) { return q8_dw_prepare(ctx, kIsa); }

}  // namespace q8
}  // namespace mobrt
