// q8_requant_avx2.h: the AVX2 requantization of 8 int32 lanes, bit for bit
// q8_requant_row_scalar (both rules):
//   fixed point: x << left saturated to int32; rounding_doubling_high_mul(x, q) =
//     floor((x * q + 2^30) / 2^31) (the reference's nudge and truncation give exactly
//     this for every sign; q >= 0 so the INT32_MIN * INT32_MIN case cannot occur);
//     rounding_divide_by_pot as the reference: floor + (remainder > threshold);
//     then clamp to [lo - zp, hi - zp] and add zp (no int32 overflow).
//   float32 rule: one float multiply (no FMA form exists: nothing is added), clamp,
//     cvtps (round half to even under the default MXCSR), + zp.
// Shared by the requant row (q8_requant_avx2.cpp) and the fused depthwise planes
// (q8_dwconv_avx2.cpp). Internal linkage: every including file keeps its own copy,
// compiled with its own instruction-set flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "cpu/int8/q8_requant.h"

namespace mobrt {
namespace q8 {
namespace rq256 {
namespace {

struct Fixed {
  __m256i q, nudge, hi_lim, lo_lim, rmask, rthr, lo, hi, zp;
  __m128i left, right;
  bool has_left, has_right;
  explicit Fixed(const Q8Requant& r) {
    const int l = r.shift > 0 ? r.shift : 0, rt = r.shift < 0 ? -r.shift : 0;
    has_left = l > 0;
    has_right = rt > 0;
    q = _mm256_set1_epi32(r.q);
    nudge = _mm256_set1_epi64x(int64_t(1) << 30);
    hi_lim = _mm256_set1_epi32(INT32_MAX >> l);
    lo_lim = _mm256_set1_epi32(INT32_MIN >> l);
    const int32_t m = static_cast<int32_t>((int64_t(1) << rt) - 1);
    rmask = _mm256_set1_epi32(m);
    rthr = _mm256_set1_epi32(m >> 1);
    left = _mm_cvtsi32_si128(l);
    right = _mm_cvtsi32_si128(rt);
    lo = _mm256_set1_epi32(r.lo - r.zp);
    hi = _mm256_set1_epi32(r.hi - r.zp);
    zp = _mm256_set1_epi32(r.zp);
  }
  __m256i operator()(__m256i x) const {
    if (has_left) {
      const __m256i gt = _mm256_cmpgt_epi32(x, hi_lim), lt = _mm256_cmpgt_epi32(lo_lim, x);
      __m256i s = _mm256_sll_epi32(x, left);
      s = _mm256_blendv_epi8(s, _mm256_set1_epi32(INT32_MAX), gt);
      x = _mm256_blendv_epi8(s, _mm256_set1_epi32(INT32_MIN), lt);
    }
    // even lanes shifted down by 31, odd lanes up by 1 (their result lands in the high half)
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, q), nudge), 31);
    const __m256i odd = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), q), nudge), 1);
    x = _mm256_blend_epi32(even, odd, 0xAA);
    if (has_right) {
      const __m256i rem = _mm256_and_si256(x, rmask);
      const __m256i thr = _mm256_sub_epi32(rthr, _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));
      x = _mm256_sub_epi32(_mm256_sra_epi32(x, right), _mm256_cmpgt_epi32(rem, thr));
    }
    return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(x, lo), hi), zp);
  }
};

struct Float32 {
  __m256 s, flo, fhi;
  __m256i zp;
  explicit Float32(const Q8Requant& r) {
    s = _mm256_set1_ps(r.fscale);
    flo = _mm256_set1_ps(static_cast<float>(r.lo - r.zp));
    fhi = _mm256_set1_ps(static_cast<float>(r.hi - r.zp));
    zp = _mm256_set1_epi32(r.zp);
  }
  __m256i operator()(__m256i x) const {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(x), s);
    v = _mm256_min_ps(_mm256_max_ps(v, flo), fhi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
  }
};

}  // namespace
}  // namespace rq256
}  // namespace q8
}  // namespace mobrt
