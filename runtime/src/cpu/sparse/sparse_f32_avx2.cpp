// AVX2 + FMA sparse fp32 kernels (sparse_f32.h): the SpMM of sparse_simd.h over 8-float
// ymm vectors in blocks of 64 columns (8 accumulators: enough independent FMA chains to
// cover the FMA latency), and the SpMV of sparse_simd.h with vgatherdps (16 non-zeros
// per step).
// Compiled with -mavx2 -mfma; reached only through register_sparse_f32_avx2.cpp.
#include <immintrin.h>

#include "sparse_simd.h"

namespace mobrt {
namespace cpu {
namespace {

__m256i tail_mask(size_t n) {  // lanes < n all ones
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

struct VecAvx2 {
  using T = __m256;
  static constexpr size_t N = 8;
  static T set1(float v) { return _mm256_set1_ps(v); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T load_part(const float* p, size_t n) { return _mm256_maskload_ps(p, tail_mask(n)); }
  static void store_part(float* p, T v, size_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }

  static constexpr bool kOneVectorStep = true;
  static T gather_fma(const int32_t* col, const float* val, const float* a, T acc) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col));
    return _mm256_fmadd_ps(_mm256_loadu_ps(val), _mm256_i32gather_ps(a, idx, 4), acc);
  }
  static float finish(T acc0, T acc1, const int32_t* col, const float* val, size_t n, const float* a) {
    if (n > 0) {  // n < 8: masked gather into acc1
      const __m256i mask = tail_mask(n);
      const __m256i idx = _mm256_maskload_epi32(col, mask);
      const __m256 g = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), a, idx, _mm256_castsi256_ps(mask), 4);
      acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(val, mask), g, acc1);
    }
    const __m256 v = _mm256_add_ps(acc0, acc1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

bool any_nonfinite_avx2(const float* x, size_t n) {  // exponent all ones
  const __m256i e = _mm256_set1_epi32(0x7f800000);
  __m256i hit = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i b = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), e);
    hit = _mm256_or_si256(hit, _mm256_cmpeq_epi32(b, e));
  }
  if (i < n) {
    const __m256i b = _mm256_and_si256(_mm256_maskload_epi32(reinterpret_cast<const int*>(x + i), tail_mask(n - i)), e);
    hit = _mm256_or_si256(hit, _mm256_cmpeq_epi32(b, e));
  }
  return !_mm256_testz_si256(hit, hit);
}

}  // namespace

const SparseF32Kernels kSparseF32Avx2 = {
    "avx2", &spmm_simd<VecAvx2, 8>, &spmv_simd<VecAvx2>, &kF32Avx2, &any_nonfinite_avx2, 64, 2,
    kSparseConvMinSparsityAvx2, kSparseFcB1MinSparsityAvx2, kSparseFcBatchMinSparsityAvx2,
};

}  // namespace cpu
}  // namespace mobrt
