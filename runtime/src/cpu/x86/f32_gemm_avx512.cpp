// f32_gemm_ukernel_14x32__avx512f: packed SGEMM microkernel for AVX-512F.
// Edge tiles use AVX-512 masked loads/stores instead of a temporary tile.
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

// EDGE: only rows r < mr and columns j < nr of C are read/written (AVX-512 masks), so
// edge tiles need no temporary tile; rows >= mr are computed and dropped.
// HALF (edge tiles with nr <= 16): only the first 16 columns are computed.
template <bool EDGE, bool HALF = false>
void gemm_tile_14x32(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
                     size_t mr, size_t nr, int accumulate, const GemmEpilogue* ep) {
  const __mmask16 m0 = EDGE ? (nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1)) : __mmask16(0xFFFF);
  const __mmask16 m1 = EDGE ? (nr >= 32 ? __mmask16(0xFFFF) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1))
                            : __mmask16(0xFFFF);
  __m512 c0[kMr], c1[kMr];
#pragma GCC unroll 16
  for (int r = 0; r < kMr; ++r) {
    c0[r] = _mm512_setzero_ps();
    c1[r] = _mm512_setzero_ps();  // unused (and dropped) when HALF
  }
  for (size_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = HALF ? _mm512_setzero_ps() : _mm512_loadu_ps(b + 16);
    _mm_prefetch((const char*)(b + 8 * ldb), _MM_HINT_T0);
    _mm_prefetch((const char*)(a + 64 * kMr), _MM_HINT_T0);  // weights may come from DRAM
#pragma GCC unroll 16
    for (int r = 0; r < kMr; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
      if (!HALF) c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
    }
    a += kMr;
    b += ldb;
  }
  if (accumulate) {
#pragma GCC unroll 16
    for (int r = 0; r < kMr; ++r) {
      if (EDGE && size_t(r) >= mr) break;
      c0[r] = _mm512_add_ps(c0[r], EDGE ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_loadu_ps(c + r * ldc));
      if (!HALF)
        c1[r] = _mm512_add_ps(c1[r], EDGE ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_loadu_ps(c + r * ldc + 16));
    }
  }
  if (ep != nullptr) {
    if (ep->bias_mode == BiasMode::kPerRow) {
#pragma GCC unroll 16
      for (int r = 0; r < kMr; ++r) {
        const __m512 br = _mm512_set1_ps(!EDGE || size_t(r) < mr ? ep->bias[r] : 0.f);
        c0[r] = _mm512_add_ps(c0[r], br);
        c1[r] = _mm512_add_ps(c1[r], br);
      }
    } else if (ep->bias_mode == BiasMode::kPerCol) {
      const __m512 bc0 = EDGE ? _mm512_maskz_loadu_ps(m0, ep->bias) : _mm512_loadu_ps(ep->bias);
      const __m512 bc1 = EDGE ? _mm512_maskz_loadu_ps(m1, ep->bias + 16) : _mm512_loadu_ps(ep->bias + 16);
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
      c0[r] = _mm512_min_ps(hi, _mm512_max_ps(lo, c0[r]));
      c1[r] = _mm512_min_ps(hi, _mm512_max_ps(lo, c1[r]));
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < kMr; ++r) {
    if (EDGE) {
      if (size_t(r) >= mr) break;
      _mm512_mask_storeu_ps(c + r * ldc, m0, c0[r]);
      if (!HALF) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, c1[r]);
    } else {
      _mm512_storeu_ps(c + r * ldc, c0[r]);
      _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
    }
  }
}

void gemm_full_14x32(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
                     int accumulate, const GemmEpilogue* ep) {
  gemm_tile_14x32<false>(kc, a, b, ldb, c, ldc, kMr, kNr, accumulate, ep);
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
    c0 = _mm512_min_ps(hi, _mm512_max_ps(lo, c0));
    c1 = _mm512_min_ps(hi, _mm512_max_ps(lo, c1));
  }
  _mm512_storeu_ps(c, c0);
  _mm512_storeu_ps(c + 16, c1);
}

// Any tile: full tiles and masked edge tiles directly on C; short tiles row by row; an
// edge panel of B read in place goes through ukernel_any's zero-padded copy.
void gemm_ukernel_14x32(size_t kc, const float* a, const float* b, size_t ldb, float* c, size_t ldc,
                        size_t mr, size_t nr, int accumulate, const GemmEpilogue* ep) {
  if (mr == size_t(kMr) && nr == size_t(kNr))
    return gemm_tile_14x32<false>(kc, a, b, ldb, c, ldc, mr, nr, accumulate, ep);
  if ((nr == size_t(kNr) && mr * 2 <= size_t(kMr)) || (nr < size_t(kNr) && ldb != size_t(kNr)))
    return ukernel_any<kMr, kNr, gemm_full_14x32, gemm_row_1x32>(kc, a, b, ldb, c, ldc, mr, nr, accumulate, ep);
  if (nr <= 16) return gemm_tile_14x32<true, true>(kc, a, b, ldb, c, ldc, mr, nr, accumulate, ep);
  gemm_tile_14x32<true>(kc, a, b, ldb, c, ldc, mr, nr, accumulate, ep);
}

}  // namespace

extern const GemmUkernel kF32GemmAvx512 = {"f32_gemm_ukernel_14x32__avx512f", &gemm_ukernel_14x32, kMr, kNr};

}  // namespace cpu
}  // namespace mobrt
