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

void gemm_full_6x16(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
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
    _mm_prefetch((const char*)(a + 64 * kMr), _MM_HINT_T0);  // weights may come from DRAM
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
    }
    a += kMr;
    b += ldb;
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
      c0[r] = _mm256_min_ps(hi, _mm256_max_ps(lo, c0[r]));
      c1[r] = _mm256_min_ps(hi, _mm256_max_ps(lo, c1[r]));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kMr; ++r) {
    _mm256_storeu_ps(c + r * ldc, c0[r]);
    _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
  }
}

// 1 x 16 row (see ukernel_common.h), two k steps on separate accumulators.
void gemm_row_1x16(size_t kc, const float* a, size_t as, const float* b, size_t ldb, float* c, int accumulate,
                   const GemmEpilogue* ep, size_t r) {
  __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
  __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
  size_t k = 0;
  for (; k + 2 <= kc; k += 2) {
    const __m256 a0 = _mm256_broadcast_ss(a), a1 = _mm256_broadcast_ss(a + as);
    c0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b), c0);
    c1 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + 8), c1);
    d0 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b + ldb), d0);
    d1 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b + ldb + 8), d1);
    a += 2 * as;
    b += 2 * ldb;
  }
  if (k < kc) {
    const __m256 a0 = _mm256_broadcast_ss(a);
    c0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b), c0);
    c1 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + 8), c1);
  }
  c0 = _mm256_add_ps(c0, d0);
  c1 = _mm256_add_ps(c1, d1);
  if (accumulate) {
    c0 = _mm256_add_ps(c0, _mm256_loadu_ps(c));
    c1 = _mm256_add_ps(c1, _mm256_loadu_ps(c + 8));
  }
  if (ep != nullptr) {
    if (ep->bias_mode == BiasMode::kPerRow) {
      const __m256 br = _mm256_broadcast_ss(ep->bias + r);
      c0 = _mm256_add_ps(c0, br);
      c1 = _mm256_add_ps(c1, br);
    } else if (ep->bias_mode == BiasMode::kPerCol) {
      c0 = _mm256_add_ps(c0, _mm256_loadu_ps(ep->bias));
      c1 = _mm256_add_ps(c1, _mm256_loadu_ps(ep->bias + 8));
    }
    const __m256 lo = _mm256_set1_ps(ep->min), hi = _mm256_set1_ps(ep->max);
    c0 = _mm256_min_ps(hi, _mm256_max_ps(lo, c0));
    c1 = _mm256_min_ps(hi, _mm256_max_ps(lo, c1));
  }
  _mm256_storeu_ps(c, c0);
  _mm256_storeu_ps(c + 8, c1);
}

}  // namespace

extern const GemmUkernel kF32GemmAvx2 = {"f32_gemm_ukernel_6x16__avx2_fma",
                                         &ukernel_any<kMr, kNr, gemm_full_6x16, gemm_row_1x16>, kMr, kNr};

}  // namespace cpu
}  // namespace mobrt
