// q8_dynamic_x86.h: AVX2 pieces shared by the x86 dynamic-range int8 kernels
// (q8_dynamic_avx2.cpp, q8_dynamic_avx512_vnni.cpp): the row's max |a| bits, the
// float output of 8 columns. Included only by files compiled with AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "core/kernel.h"
#include "cpu/reference/dynamic_quant.h"

namespace mobrt {
namespace q8 {
namespace {

// max |a[i]| as integer bits (|a| bits are ordered as the floats; NaN above inf).
inline uint32_t dyn_amax_bits_avx2(const float* a, size_t k) {
  const __m256i mask = _mm256_set1_epi32(0x7fffffff);
  __m256i m = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 8 <= k; i += 8)
    m = _mm256_max_epi32(m, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)), mask));
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
  uint32_t r = 0;
  for (int j = 0; j < 8; ++j) r = lanes[j] > r ? lanes[j] : r;
  for (; i < k; ++i) {
    const uint32_t u = dynq::abs_bits(a[i]);
    r = u > r ? u : r;
  }
  return r;
}

// round_half_to_even(a * inv) clamped to [-127, 127], 8 lanes (default MXCSR rounding).
inline __m256i dyn_quantize8_avx2(const float* a, __m256 inv) {
  const __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a), inv));
  return _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
}

// y[0..8) = act(float32(float32(acc) * float32(s_a * s_w)) [+ bias]): the product is
// kept out of any FMA by an empty asm barrier before the addition.
inline __m256 dyn_output8_avx2(__m256i acc, __m256 s_a, const float* s_w, const float* bias,
                               const Activation& act) {
  __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(s_a, _mm256_loadu_ps(s_w)));
  if (bias) {
    __asm__("" : "+x"(v));
    v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
  }
  if (act.kind == Activation::Kind::Relu) {
    v = _mm256_max_ps(_mm256_setzero_ps(), v);  // NaN stays NaN (maxps returns operand 2)
  } else if (act.kind == Activation::Kind::Clip) {
    v = _mm256_max_ps(_mm256_set1_ps(act.a), v);
    v = _mm256_min_ps(_mm256_set1_ps(act.b), v);
  }
  return v;
}

}  // namespace
}  // namespace q8
}  // namespace mobrt
