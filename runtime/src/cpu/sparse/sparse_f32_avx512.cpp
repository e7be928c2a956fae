// AVX-512 (F) sparse fp32 kernels (sparse_f32.h): the SpMM of sparse_simd.h over
// 16-float zmm vectors in blocks of 64 columns (4 accumulators; wider blocks lost on
// the 14x14 and 7x7 layers), tails through an opmask, and the SpMV of sparse_simd.h with
// vgatherdps on zmm. Compiled with the avx512 flags; reached only through
// register_sparse_f32_avx512.cpp.
#include <immintrin.h>

#include "sparse_simd.h"

namespace mobrt {
namespace cpu {
namespace {

__mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

struct VecAvx512 {
  using T = __m512;
  static constexpr size_t N = 16;
  static T set1(float v) { return _mm512_set1_ps(v); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T load_part(const float* p, size_t n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
  static void store_part(float* p, T v, size_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }

  static constexpr bool kOneVectorStep = true;
  static T gather_fma(const int32_t* col, const float* val, const float* a, T acc) {
    return _mm512_fmadd_ps(_mm512_loadu_ps(val), _mm512_i32gather_ps(_mm512_loadu_si512(col), a, 4), acc);
  }
  static float finish(T acc0, T acc1, const int32_t* col, const float* val, size_t n, const float* a) {
    if (n > 0) {  // n < 16: masked gather into acc1
      const __mmask16 mask = tail_mask(n);
      const __m512i idx = _mm512_maskz_loadu_epi32(mask, col);
      const __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, a, 4);
      acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, val), g, acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  }
};

bool any_nonfinite_avx512(const float* x, size_t n) {  // exponent all ones
  const __m512i e = _mm512_set1_epi32(0x7f800000);
  __mmask16 hit = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) hit |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_loadu_si512(x + i), e), e);
  if (i < n) hit |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_maskz_loadu_epi32(tail_mask(n - i), x + i), e), e);
  return hit != 0;
}

}  // namespace

const SparseF32Kernels kSparseF32Avx512 = {
    "avx512", &spmm_simd<VecAvx512, 4>, &spmv_simd<VecAvx512>, &kF32Avx512, &any_nonfinite_avx512, 64, 2,
    kSparseConvMinSparsityAvx512, kSparseFcB1MinSparsityAvx512, kSparseFcBatchMinSparsityAvx512,
};

}  // namespace cpu
}  // namespace mobrt
