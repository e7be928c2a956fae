// The fp16 GEMM micro-kernels (ARMv8.2 FEAT_FP16; compiled with -march=armv8.2-a+fp16).
// See f16_common_neon_fp16.h for the packed layouts.
#include <arm_neon.h>

#include "cpu/f16/f16_common_neon_fp16.h"

namespace mobrt {
namespace f16 {

// C (8 x 16, row-major, fp16) = sum over k of a[k*8 + r] * b[k*16 + c], accumulated in
// fp16 with one fused multiply-add per product (k ascending, from 0): 16 accumulators
// of 8 half-precision lanes, each k step one A vector (8 rows), two B vectors (16
// columns) and 16 `fmla vd.8h, vn.8h, vm.h[lane]`.
void f16_gemm_ukernel_8x16(size_t k, const float16_t* a, const float16_t* b, float16_t* c) {
  float16x8_t c00 = vdupq_n_f16(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
              c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  for (; k != 0; --k) {
    const float16x8_t va = vld1q_f16(a);
    const float16x8_t b0 = vld1q_f16(b), b1 = vld1q_f16(b + 8);
    a += 8;
    b += 16;
    c00 = vfmaq_laneq_f16(c00, b0, va, 0);
    c01 = vfmaq_laneq_f16(c01, b1, va, 0);
    c10 = vfmaq_laneq_f16(c10, b0, va, 1);
    c11 = vfmaq_laneq_f16(c11, b1, va, 1);
    c20 = vfmaq_laneq_f16(c20, b0, va, 2);
    c21 = vfmaq_laneq_f16(c21, b1, va, 2);
    c30 = vfmaq_laneq_f16(c30, b0, va, 3);
    c31 = vfmaq_laneq_f16(c31, b1, va, 3);
    c40 = vfmaq_laneq_f16(c40, b0, va, 4);
    c41 = vfmaq_laneq_f16(c41, b1, va, 4);
    c50 = vfmaq_laneq_f16(c50, b0, va, 5);
    c51 = vfmaq_laneq_f16(c51, b1, va, 5);
    c60 = vfmaq_laneq_f16(c60, b0, va, 6);
    c61 = vfmaq_laneq_f16(c61, b1, va, 6);
    c70 = vfmaq_laneq_f16(c70, b0, va, 7);
    c71 = vfmaq_laneq_f16(c71, b1, va, 7);
  }
  vst1q_f16(c + 0 * 16, c00);
  vst1q_f16(c + 0 * 16 + 8, c01);
  vst1q_f16(c + 1 * 16, c10);
  vst1q_f16(c + 1 * 16 + 8, c11);
  vst1q_f16(c + 2 * 16, c20);
  vst1q_f16(c + 2 * 16 + 8, c21);
  vst1q_f16(c + 3 * 16, c30);
  vst1q_f16(c + 3 * 16 + 8, c31);
  vst1q_f16(c + 4 * 16, c40);
  vst1q_f16(c + 4 * 16 + 8, c41);
  vst1q_f16(c + 5 * 16, c50);
  vst1q_f16(c + 5 * 16 + 8, c51);
  vst1q_f16(c + 6 * 16, c60);
  vst1q_f16(c + 6 * 16 + 8, c61);
  vst1q_f16(c + 7 * 16, c70);
  vst1q_f16(c + 7 * 16 + 8, c71);
}

// c[r] (8 fp16) = sum over k of a[k*8 + r] * x[k]: one row of activations against one A
// panel, the same fused multiply-adds in the same order as the 8x16 kernel's column
// (fma(acc, w, x) == fma(acc, x, w)), so a row gives the same value on either path.
void f16_gemv_ukernel_8(size_t k, const float16_t* a, const float16_t* x, float16_t* c) {
  float16x8_t acc = vdupq_n_f16(0);
  for (; k != 0; --k) {
    acc = vfmaq_n_f16(acc, vld1q_f16(a), *x);
    a += 8;
    ++x;
  }
  vst1q_f16(c, acc);
}

}  // namespace f16
}  // namespace mobrt
