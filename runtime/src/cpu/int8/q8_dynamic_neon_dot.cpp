// q8_dynamic_neon_dot.cpp: dynamic-range int8 MatMul/Gemm (cpu/reference/dynamic_quant.h)
// with the armv8.2 dot product: sdot (signed x signed, so no activation offset) sums
// four int8 products per column into int32. Tile 4 rows x 16 columns, k groups of 4.
// Driver: q8_dynamic.h.
#include <arm_neon.h>

#include <cstring>

#include "cpu/int8/q8_dynamic.h"
#include "cpu/int8/q8_dynamic_neon.h"

namespace mobrt {
namespace q8 {
namespace {

struct NeonDotOps {
  using AType = int8_t;
  using WType = int8_t;
  static constexpr int kMR = 4, kNR = 16, kKR = 4;
  static constexpr int32_t kAOffset = 0;

  static uint32_t amax_bits(const float* a, size_t k) { return dyn_amax_bits_neon(a, k); }
  static void quantize(const float* a, size_t k, float inv, int8_t* q) { dyn_quantize_neon(a, k, inv, q); }

  template <int R>
  static void rows(size_t kgroups, const int8_t* a, size_t lda, const int8_t* w, int32_t* c) {
    int32x4_t acc[R][4];
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
    for (size_t g = 0; g < kgroups; ++g) {
      const int8_t* wg = w + g * 64;  // 16 columns x 4 k
      const int8x16_t w0 = vld1q_s8(wg), w1 = vld1q_s8(wg + 16), w2 = vld1q_s8(wg + 32), w3 = vld1q_s8(wg + 48);
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        int32_t quad;
        std::memcpy(&quad, a + r * lda + 4 * g, 4);
        const int8x16_t av = vreinterpretq_s8_s32(vdupq_n_s32(quad));
        acc[r][0] = vdotq_s32(acc[r][0], w0, av);
        acc[r][1] = vdotq_s32(acc[r][1], w1, av);
        acc[r][2] = vdotq_s32(acc[r][2], w2, av);
        acc[r][3] = vdotq_s32(acc[r][3], w3, av);
      }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) vst1q_s32(c + r * kNR + 4 * v, acc[r][v]);
  }

  static void finish(const int32_t* acc, const int32_t* comp, size_t n, float s_a, const float* s_w,
                     const float* bias, const Activation& act, float* y) {
    dyn_finish_neon<NeonDotOps>(acc, comp, n, s_a, s_w, bias, act, y);
  }
};

}  // namespace

extern const Kernel kQ8DynamicMatMulNeonDot = MOBRT_Q8_DYNAMIC_KERNEL(NeonDotOps, "matmul_dynamic_q8_neon_dot");
extern const Kernel kQ8DynamicGemmNeonDot = MOBRT_Q8_DYNAMIC_KERNEL(NeonDotOps, "gemm_dynamic_q8_neon_dot");
extern const Kernel kQ8DynamicConvNeonDot = MOBRT_Q8_DYNAMIC_KERNEL(NeonDotOps, "conv_dynamic_q8_neon_dot");

}  // namespace q8
}  // namespace mobrt
