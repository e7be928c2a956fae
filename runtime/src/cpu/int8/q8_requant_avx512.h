// q8_requant_avx512.h: the AVX-512 requantization of 16 int32 lanes, bit for bit
// q8_requant_row_scalar (both rules; the arithmetic of q8_requant_avx2.cpp, see there).
// Shared by the requant row (q8_requant_avx512.cpp) and the fused GEMM epilogue of the
// AVX512-VNNI micro-kernel (q8_gemm_avx512_vnni.cpp). Internal linkage: the two files are
// built with different instruction-set flags, each keeps its own copy.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "cpu/int8/q8_requant.h"

namespace mobrt {
namespace q8 {
namespace rq512 {
namespace {

struct Fixed {
  __m512i q, nudge, hi_lim, lo_lim, rmask, rthr, lo, hi, zp, one;
  __m128i left, right;
  bool has_left, has_right;
  explicit Fixed(const Q8Requant& r) {
    const int l = r.shift > 0 ? r.shift : 0, rt = r.shift < 0 ? -r.shift : 0;
    has_left = l > 0;
    has_right = rt > 0;
    q = _mm512_set1_epi32(r.q);
    nudge = _mm512_set1_epi64(int64_t(1) << 30);
    hi_lim = _mm512_set1_epi32(INT32_MAX >> l);
    lo_lim = _mm512_set1_epi32(INT32_MIN >> l);
    const int32_t m = static_cast<int32_t>((int64_t(1) << rt) - 1);
    rmask = _mm512_set1_epi32(m);
    rthr = _mm512_set1_epi32(m >> 1);
    left = _mm_cvtsi32_si128(l);
    right = _mm_cvtsi32_si128(rt);
    lo = _mm512_set1_epi32(r.lo - r.zp);
    hi = _mm512_set1_epi32(r.hi - r.zp);
    zp = _mm512_set1_epi32(r.zp);
    one = _mm512_set1_epi32(1);
  }
  // clamp(MBQM(x) + zp, lo, hi)
  __m512i operator()(__m512i x) const {
    if (has_left) {
      const __mmask16 gt = _mm512_cmpgt_epi32_mask(x, hi_lim), lt = _mm512_cmplt_epi32_mask(x, lo_lim);
      x = _mm512_sll_epi32(x, left);
      x = _mm512_mask_blend_epi32(gt, x, _mm512_set1_epi32(INT32_MAX));
      x = _mm512_mask_blend_epi32(lt, x, _mm512_set1_epi32(INT32_MIN));
    }
    // floor((x * q + 2^30) / 2^31): even lanes shifted down, odd lanes shifted up by one
    // (their result lands in the high half)
    const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, q), nudge), 31);
    const __m512i odd = _mm512_slli_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), q), nudge), 1);
    x = _mm512_mask_blend_epi32(0xAAAA, even, odd);
    if (has_right) {
      const __m512i rem = _mm512_and_si512(x, rmask);
      const __mmask16 neg = _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512());
      const __m512i thr = _mm512_mask_add_epi32(rthr, neg, rthr, one);
      const __mmask16 up = _mm512_cmpgt_epi32_mask(rem, thr);
      x = _mm512_sra_epi32(x, right);
      x = _mm512_mask_add_epi32(x, up, x, one);
    }
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(x, lo), hi), zp);
  }
};

struct Float32 {
  __m512 s, flo, fhi;
  __m512i zp;
  explicit Float32(const Q8Requant& r) {
    s = _mm512_set1_ps(r.fscale);
    flo = _mm512_set1_ps(static_cast<float>(r.lo - r.zp));
    fhi = _mm512_set1_ps(static_cast<float>(r.hi - r.zp));
    zp = _mm512_set1_epi32(r.zp);
  }
  // one float multiply (nothing is added: no FMA form), clamp, round half to even, + zp
  __m512i operator()(__m512i x) const {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(x), s);
    f = _mm512_min_ps(_mm512_max_ps(f, flo), fhi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
  }
};

}  // namespace
}  // namespace rq512
}  // namespace q8
}  // namespace mobrt
