// AVX2 + FMA instantiation of the vectorized kernels in f32/simd_ops.h
// (f32_vact, f32_vbinary, f32_dwconv_3x3s{1,2}, f32_pool, f32_softmax, f32_sum __avx2_fma).
// Compiled with -mavx2 -mfma; reached only through the kernels register_f32_avx2.cpp registers.
#include <immintrin.h>

#include "../f32/simd_ops.h"

namespace mobrt {
namespace cpu {
namespace {

struct VecAvx2 {
  using T = __m256;
  static constexpr size_t N = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float v) { return _mm256_set1_ps(v); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T unord(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
  static T or_bits(T a, T b) { return _mm256_or_ps(a, b); }
  // NaN when either is NaN: maxps returns b when unordered, so put a back where a is NaN.
  static T max_nan(T a, T b) {
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  static T min_nan(T a, T b) {
    return _mm256_blendv_ps(_mm256_min_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T floor(T a) { return _mm256_floor_ps(a); }
  static T pow2i(T n) {
    __m256i i = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(i, 23));
  }
  static float hsum(T v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(T v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static void load_even_odd(const float* p, T& e, T& o) {
    const __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    // Within 128-bit lanes: shuffle gives (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6); permute
    // the 64-bit quarters into order.
    const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
    o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0)));
  }
};

}  // namespace

extern const F32Kernels kF32Avx2 = make_f32_kernels<VecAvx2>("avx2", &kF32GemmAvx2);

}  // namespace cpu
}  // namespace mobrt
