// f32_gemm_ukernel_6x16__avx2_fma: packed SGEMM microkernel for AVX2 + FMA3.
//
// C tile 6 x 16 in 12 ymm accumulators; per k: 2 vector loads of the B panel row and
// 6 broadcasts of A, 12 FMAs (the classic Haswell-class shape). Compiled with
// -mavx2 -mfma (see kernels.cmake); called only when CPU detection allows.
#include <immintrin.h>

#include "../gemm/ukernel_common.h"

namespace mobrt {
namespace cpu {
namespace {

constexpr int kMr = 6;
constexpr int kNr = 16;

void gemm_full_6x16(size_t kc, const float* a, const float* b, float* c, size_t ldc,
                    int accumulate, const GemmEpilogue* ep) {
  __m256 c0[kMr], c1[kMr];
#pragma GCC unroll 8
  for (int r = 0; r < kMr; ++r) {
    c0[r] = _mm256_setzero_ps();
    c1[r] = _mm256_setzero_ps();
  }
  for (size_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
    }
    a += kMr;
    b += kNr;
  }
  if (accumulate) {
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) {
      c0[r] = _mm256_add_ps(c0[r], _mm256_loadu_ps(c + r * ldc));
      c1[r] = _mm256_add_ps(c1[r], _mm256_loadu_ps(c + r * ldc + 8));
    }
  }
  if (ep != nullptr) {
    if (ep->bias_mode == BiasMode::kPerRow) {
#pragma GCC unroll 8
      for (int r = 0; r < kMr; ++r) {
        const __m256 br = _mm256_broadcast_ss(ep->bias + r);
        c0[r] = _mm256_add_ps(c0[r], br);
        c1[r] = _mm256_add_ps(c1[r], br);
      }
    } else if (ep->bias_mode == BiasMode::kPerCol) {
      const __m256 bc0 = _mm256_loadu_ps(ep->bias);
      const __m256 bc1 = _mm256_loadu_ps(ep->bias + 8);
#pragma GCC unroll 8
      for (int r = 0; r < kMr; ++r) {
        c0[r] = _mm256_add_ps(c0[r], bc0);
        c1[r] = _mm256_add_ps(c1[r], bc1);
      }
    }
    const __m256 lo = _mm256_set1_ps(ep->min);
    const __m256 hi = _mm256_set1_ps(ep->max);
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) {
      c0[r] = _mm256_min_ps(_mm256_max_ps(c0[r], lo), hi);
      c1[r] = _mm256_min_ps(_mm256_max_ps(c1[r], lo), hi);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kMr; ++r) {
    _mm256_storeu_ps(c + r * ldc, c0[r]);
    _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
  }
}

}  // namespace

extern const GemmUkernel kF32GemmAvx2 = {"f32_gemm_ukernel_6x16__avx2_fma",
                                         &ukernel_any<kMr, kNr, gemm_full_6x16>, kMr, kNr};

}  // namespace cpu
}  // namespace mobrt
