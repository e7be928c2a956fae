// q8_dynamic_avx2.cpp: dynamic-range int8 MatMul/Gemm (cpu/reference/dynamic_quant.h)
// with AVX2 and no VNNI, exact: activations and weights as int16 and vpmaddwd, which
// sums pairs of int16 products into int32 without saturation. Tile 4 rows x 16
// columns, k groups of 2. Driver: q8_dynamic.h.
#include <immintrin.h>

#include <cstring>

#include "cpu/int8/q8_dynamic.h"
#include "cpu/int8/q8_dynamic_x86.h"

namespace mobrt {
namespace q8 {
namespace {

struct Avx2Ops {
  using AType = int16_t;
  using WType = int16_t;
  static constexpr int kMR = 4, kNR = 16, kKR = 2;
  static constexpr int32_t kAOffset = 0;

  static uint32_t amax_bits(const float* a, size_t k) { return dyn_amax_bits_avx2(a, k); }

  static void quantize(const float* a, size_t k, float inv, int16_t* q) {
    const __m256 vinv = _mm256_set1_ps(inv);
    size_t i = 0;
    for (; i + 16 <= k; i += 16) {
      const __m256i lo = dyn_quantize8_avx2(a + i, vinv), hi = dyn_quantize8_avx2(a + i + 8, vinv);
      const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), p);
    }
    for (; i < k; ++i) q[i] = static_cast<int16_t>(dyn_quantize_value(a[i], inv));
  }

  template <int R>
  static void rows(size_t kgroups, const int16_t* a, size_t lda, const int16_t* w, int32_t* c) {
    __m256i c0[R], c1[R];
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm256_setzero_si256();
    for (size_t g = 0; g < kgroups; ++g) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * 32));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * 32 + 16));
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, a + r * lda + 2 * g, 4);
        const __m256i av = _mm256_set1_epi32(pair);
        c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(w0, av));
        c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(w1, av));
      }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(c + r * kNR), c0[r]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(c + r * kNR + 8), c1[r]);
    }
  }

  static void finish(const int32_t* acc, const int32_t* comp, size_t n, float s_a, const float* s_w,
                     const float* bias, const Activation& act, float* y) {
    (void)comp;  // kAOffset = 0
    const __m256 sa = _mm256_set1_ps(s_a);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(acc + j));
      _mm256_storeu_ps(y + j, dyn_output8_avx2(a, sa, s_w + j, bias ? bias + j : nullptr, act));
    }
    dyn_finish_scalar(acc, comp, j, n, s_a, s_w, bias, act, y);
  }
};

}  // namespace

extern const Kernel kQ8DynamicMatMulAvx2 = MOBRT_Q8_DYNAMIC_KERNEL(Avx2Ops, "matmul_dynamic_q8_avx2");
extern const Kernel kQ8DynamicGemmAvx2 = MOBRT_Q8_DYNAMIC_KERNEL(Avx2Ops, "gemm_dynamic_q8_avx2");
extern const Kernel kQ8DynamicConvAvx2 = MOBRT_Q8_DYNAMIC_KERNEL(Avx2Ops, "conv_dynamic_q8_avx2");

}  // namespace q8
}  // namespace mobrt
