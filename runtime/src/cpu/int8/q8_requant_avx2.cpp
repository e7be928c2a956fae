// q8_requant_avx2.cpp: q8_requant_row for AVX2, bit for bit q8_requant_row_scalar.
//   fixed point: x << left saturated to int32; rounding_doubling_high_mul(x, q) =
//     floor((x * q + 2^30) / 2^31) (the reference's nudge and truncation give exactly
//     this for every sign; q >= 0 so the INT32_MIN * INT32_MIN case cannot occur);
//     rounding_divide_by_pot as the reference: floor + (remainder > threshold);
//     then clamp to [lo - zp, hi - zp] and add zp (no int32 overflow).
//   float32 rule: one float multiply (no FMA form exists: nothing is added), clamp,
//     cvtps (round half to even under the default MXCSR), + zp.
#include <immintrin.h>

#include <cstdint>

#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

inline __m256i fixed_point8(__m256i x, const Q8Requant& r) {
  const int left = r.shift > 0 ? r.shift : 0, right = r.shift < 0 ? -r.shift : 0;
  if (left > 0) {
    const __m256i hi = _mm256_set1_epi32(INT32_MAX >> left), lo = _mm256_set1_epi32(INT32_MIN >> left);
    const __m256i gt = _mm256_cmpgt_epi32(x, hi), lt = _mm256_cmpgt_epi32(lo, x);
    __m256i s = _mm256_sll_epi32(x, _mm_cvtsi32_si128(left));
    s = _mm256_blendv_epi8(s, _mm256_set1_epi32(INT32_MAX), gt);
    x = _mm256_blendv_epi8(s, _mm256_set1_epi32(INT32_MIN), lt);
  }
  const __m256i q = _mm256_set1_epi32(r.q), nudge = _mm256_set1_epi64x(int64_t(1) << 30);
  __m256i even = _mm256_mul_epi32(x, q);
  __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), q);
  even = _mm256_srli_epi64(_mm256_add_epi64(even, nudge), 31);
  odd = _mm256_slli_epi64(_mm256_srli_epi64(_mm256_add_epi64(odd, nudge), 31), 32);
  x = _mm256_blend_epi32(even, odd, 0xAA);
  if (right > 0) {
    const int32_t m = static_cast<int32_t>((int64_t(1) << right) - 1);
    const __m256i rem = _mm256_and_si256(x, _mm256_set1_epi32(m));
    const __m256i thr = _mm256_sub_epi32(_mm256_set1_epi32(m >> 1), _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));
    x = _mm256_sub_epi32(_mm256_sra_epi32(x, _mm_cvtsi32_si128(right)), _mm256_cmpgt_epi32(rem, thr));
  }
  return x;
}

inline void store8(__m256i v, void* out, size_t i, bool out_u8) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b = out_u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(out) + i), b);
}

}  // namespace

void q8_requant_row_avx2(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8) {
  size_t i = 0;
  const __m256i zp = _mm256_set1_epi32(r.zp);
  const __m256i lo = _mm256_set1_epi32(r.lo - r.zp), hi = _mm256_set1_epi32(r.hi - r.zp);
  if (r.float32) {
    const __m256 s = _mm256_set1_ps(r.fscale);
    const __m256 flo = _mm256_set1_ps(static_cast<float>(r.lo - r.zp)), fhi = _mm256_set1_ps(static_cast<float>(r.hi - r.zp));
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i))), s);
      v = _mm256_min_ps(_mm256_max_ps(v, flo), fhi);
      store8(_mm256_add_epi32(_mm256_cvtps_epi32(v), zp), out, i, out_u8);
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      __m256i v = fixed_point8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i)), r);
      v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
      store8(_mm256_add_epi32(v, zp), out, i, out_u8);
    }
  }
  if (i < n) q8_requant_row_scalar(acc + i, n - i, r, static_cast<uint8_t*>(out) + i, out_u8);
}

}  // namespace q8
}  // namespace mobrt
