// q8_dynamic_neon.cpp: dynamic-range int8 MatMul/Gemm (cpu/reference/dynamic_quant.h) on
// armv8.0 NEON, exact: smull multiplies int8 activations by int8 weights into int16
// (|q * w| <= 127 * 128, and a pair of them <= 32512 still fits), sadalp adds each
// column's pair of products into its int32 accumulator. Tile 4 rows x 16 columns,
// k groups of 2. Driver: q8_dynamic.h.
#include <arm_neon.h>

#include <cstring>

#include "cpu/int8/q8_dynamic.h"
#include "cpu/int8/q8_dynamic_neon.h"

namespace mobrt {
namespace q8 {
namespace {

struct NeonOps {
  using AType = int8_t;
  using WType = int8_t;
  static constexpr int kMR = 4, kNR = 16, kKR = 2;
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
      const int8x16_t w0 = vld1q_s8(w + g * 32), w1 = vld1q_s8(w + g * 32 + 16);  // 8 columns x 2 k each
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        int16_t pair;
        std::memcpy(&pair, a + r * lda + 2 * g, 2);
        const int8x16_t av = vreinterpretq_s8_s16(vdupq_n_s16(pair));
        acc[r][0] = vpadalq_s16(acc[r][0], vmull_s8(vget_low_s8(w0), vget_low_s8(av)));
        acc[r][1] = vpadalq_s16(acc[r][1], vmull_high_s8(w0, av));
        acc[r][2] = vpadalq_s16(acc[r][2], vmull_s8(vget_low_s8(w1), vget_low_s8(av)));
        acc[r][3] = vpadalq_s16(acc[r][3], vmull_high_s8(w1, av));
      }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) vst1q_s32(c + r * kNR + 4 * v, acc[r][v]);
  }

  static void finish(const int32_t* acc, const int32_t* comp, size_t n, float s_a, const float* s_w,
                     const float* bias, const Activation& act, float* y) {
    dyn_finish_neon<NeonOps>(acc, comp, n, s_a, s_w, bias, act, y);
  }
};

}  // namespace

extern const Kernel kQ8DynamicMatMulNeon = MOBRT_Q8_DYNAMIC_KERNEL(NeonOps, "matmul_dynamic_q8_neon");
extern const Kernel kQ8DynamicGemmNeon = MOBRT_Q8_DYNAMIC_KERNEL(NeonOps, "gemm_dynamic_q8_neon");
extern const Kernel kQ8DynamicConvNeon = MOBRT_Q8_DYNAMIC_KERNEL(NeonOps, "conv_dynamic_q8_neon");

}  // namespace q8
}  // namespace mobrt
