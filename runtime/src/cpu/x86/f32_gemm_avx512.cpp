// f32_gemm_ukernel_14x32__avx512f: packed SGEMM microkernel for AVX-512F.
//
// C tile 14 x 32 lives in 28 zmm accumulators; each k step loads one 32-float row of
// the B panel (2 zmm) and broadcasts 14 A values (folded into the FMA as embedded
// broadcasts), i.e. 28 FMAs for 2 vector loads + 14 broadcast loads. Compiled with
// -mavx512f (see kernels.cmake) and only called after CPU detection says so.
// GCC 12 reports false "uninitialized" warnings inside its own avx512fintrin.h.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "../gemm/ukernel_common.h"

namespace mobrt {
namespace cpu {
namespace {

constexpr int kMr = 14;
constexpr int kNr = 32;

void gemm_full_14x32(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
                     int accumulate, const GemmEpilogue* ep) {
  __m512 c0[kMr], c1[kMr];
#pragma GCC unroll 16
  for (int r = 0; r < kMr; ++r) {
    c0[r] = _mm512_setzero_ps();
    c1[r] = _mm512_setzero_ps();
  }
  for (size_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
    _mm_prefetch((const char*)(b + 8 * ldb), _MM_HINT_T0);
    _mm_prefetch((const char*)(a + 64 * kMr), _MM_HINT_T0);  // weights may come from DRAM
#pragma GCC unroll 16
    for (int r = 0; r < kMr; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
    }
    a += kMr;
    b += ldb;
  }
  if (accumulate) {
#pragma GCC unroll 16
    for (int r = 0; r < kMr; ++r) {
      c0[r] = _mm512_add_ps(c0[r], _mm512_loadu_ps(c + r * ldc));
      c1[r] = _mm512_add_ps(c1[r], _mm512_loadu_ps(c + r * ldc + 16));
    }
  }
  if (ep != nullptr) {
    if (ep->bias_mode == BiasMode::kPerRow) {
#pragma GCC unroll 16
      for (int r = 0; r < kMr; ++r) {
        const __m512 br = _mm512_set1_ps(ep->bias[r]);
        c0[r] = _mm512_add_ps(c0[r], br);
        c1[r] = _mm512_add_ps(c1[r], br);
      }
    } else if (ep->bias_mode == BiasMode::kPerCol) {
      const __m512 bc0 = _mm512_loadu_ps(ep->bias);
      const __m512 bc1 = _mm512_loadu_ps(ep->bias + 16);
#pragma GCC unroll 16
      for (int r = 0; r < kMr; ++r) {
        c0[r] = _mm512_add_ps(c0[r], bc0);
        c1[r] = _mm512_add_ps(c1[r], bc1);
      }
    }
    const __m512 lo = _mm512_set1_ps(ep->min);
    const __m512 hi = _mm512_set1_ps(ep->max);
#pragma GCC unroll 16
    for (int r = 0; r < kMr; ++r) {
      c0[r] = _mm512_min_ps(_mm512_max_ps(c0[r], lo), hi);
      c1[r] = _mm512_min_ps(_mm512_max_ps(c1[r], lo), hi);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < kMr; ++r) {
    _mm512_storeu_ps(c + r * ldc, c0[r]);
    _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
  }
}

// 1 x 32 row (see ukernel_common.h): two k steps per iteration on separate
// accumulators so consecutive FMAs do not wait on each other.
void gemm_row_1x32(size_t kc, const float* a, size_t as, const float* b, size_t ldb, float* c, int accumulate,
                   const GemmEpilogue* ep, size_t r) {
  __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps();
  __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
  size_t k = 0;
  for (; k + 2 <= kc; k += 2) {
    const __m512 a0 = _mm512_set1_ps(a[0]), a1 = _mm512_set1_ps(a[as]);
    c0 = _mm512_fmadd_ps(a0, _mm512_loadu_ps(b), c0);
    c1 = _mm512_fmadd_ps(a0, _mm512_loadu_ps(b + 16), c1);
    d0 = _mm512_fmadd_ps(a1, _mm512_loadu_ps(b + ldb), d0);
    d1 = _mm512_fmadd_ps(a1, _mm512_loadu_ps(b + ldb + 16), d1);
    a += 2 * as;
    b += 2 * ldb;
  }
  if (k < kc) {
    const __m512 a0 = _mm512_set1_ps(a[0]);
    c0 = _mm512_fmadd_ps(a0, _mm512_loadu_ps(b), c0);
    c1 = _mm512_fmadd_ps(a0, _mm512_loadu_ps(b + 16), c1);
  }
  c0 = _mm512_add_ps(c0, d0);
  c1 = _mm512_add_ps(c1, d1);
  if (accumulate) {
    c0 = _mm512_add_ps(c0, _mm512_loadu_ps(c));
    c1 = _mm512_add_ps(c1, _mm512_loadu_ps(c + 16));
  }
  if (ep != nullptr) {
    if (ep->bias_mode == BiasMode::kPerRow) {
      const __m512 br = _mm512_set1_ps(ep->bias[r]);
      c0 = _mm512_add_ps(c0, br);
      c1 = _mm512_add_ps(c1, br);
    } else if (ep->bias_mode == BiasMode::kPerCol) {
      c0 = _mm512_add_ps(c0, _mm512_loadu_ps(ep->bias));
      c1 = _mm512_add_ps(c1, _mm512_loadu_ps(ep->bias + 16));
    }
    const __m512 lo = _mm512_set1_ps(ep->min), hi = _mm512_set1_ps(ep->max);
    c0 = _mm512_min_ps(_mm512_max_ps(c0, lo), hi);
    c1 = _mm512_min_ps(_mm512_max_ps(c1, lo), hi);
  }
  _mm512_storeu_ps(c, c0);
  _mm512_storeu_ps(c + 16, c1);
}

}  // namespace

extern const GemmUkernel kF32GemmAvx512 = {"f32_gemm_ukernel_14x32__avx512f",
                                           &ukernel_any<kMr, kNr, gemm_full_14x32, gemm_row_1x32>, kMr, kNr};

}  // namespace cpu
}  // namespace mobrt
