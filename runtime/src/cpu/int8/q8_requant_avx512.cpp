// q8_requant_avx512.cpp: q8_requant_row for AVX-512 (F + BW + VL), 16 lanes with masked
// tails; the arithmetic of q8_requant_avx2.cpp (see there), bit for bit
// q8_requant_row_scalar.
#include <immintrin.h>

#include <cstdint>

#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

inline __m512i fixed_point16(__m512i x, const Q8Requant& r) {
  const int left = r.shift > 0 ? r.shift : 0, right = r.shift < 0 ? -r.shift : 0;
  if (left > 0) {
    const __mmask16 gt = _mm512_cmpgt_epi32_mask(x, _mm512_set1_epi32(INT32_MAX >> left));
    const __mmask16 lt = _mm512_cmplt_epi32_mask(x, _mm512_set1_epi32(INT32_MIN >> left));
    x = _mm512_sll_epi32(x, _mm_cvtsi32_si128(left));
    x = _mm512_mask_blend_epi32(gt, x, _mm512_set1_epi32(INT32_MAX));
    x = _mm512_mask_blend_epi32(lt, x, _mm512_set1_epi32(INT32_MIN));
  }
  const __m512i q = _mm512_set1_epi32(r.q), nudge = _mm512_set1_epi64(int64_t(1) << 30);
  __m512i even = _mm512_mul_epi32(x, q);
  __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), q);
  even = _mm512_srli_epi64(_mm512_add_epi64(even, nudge), 31);
  odd = _mm512_slli_epi64(_mm512_srli_epi64(_mm512_add_epi64(odd, nudge), 31), 32);
  x = _mm512_mask_blend_epi32(0xAAAA, even, odd);
  if (right > 0) {
    const int32_t m = static_cast<int32_t>((int64_t(1) << right) - 1);
    const __m512i rem = _mm512_and_si512(x, _mm512_set1_epi32(m));
    const __mmask16 neg = _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512());
    const __m512i thr = _mm512_mask_add_epi32(_mm512_set1_epi32(m >> 1), neg, _mm512_set1_epi32(m >> 1), _mm512_set1_epi32(1));
    const __mmask16 up = _mm512_cmpgt_epi32_mask(rem, thr);
    x = _mm512_sra_epi32(x, _mm_cvtsi32_si128(right));
    x = _mm512_mask_add_epi32(x, up, x, _mm512_set1_epi32(1));
  }
  return x;
}

inline void store16(__m512i v, void* out, size_t i, bool out_u8, __mmask16 m) {
  int8_t* o = static_cast<int8_t*>(out) + i;
  if (out_u8) _mm512_mask_cvtusepi32_storeu_epi8(o, m, v);  // v in [0, 255]
  else _mm512_mask_cvtsepi32_storeu_epi8(o, m, v);          // v in [-128, 127]
}

}  // namespace

void q8_requant_row_avx512(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8) {
  const __m512i zp = _mm512_set1_epi32(r.zp);
  const __m512i lo = _mm512_set1_epi32(r.lo - r.zp), hi = _mm512_set1_epi32(r.hi - r.zp);
  const __m512 s = _mm512_set1_ps(r.fscale);
  const __m512 flo = _mm512_set1_ps(static_cast<float>(r.lo - r.zp)), fhi = _mm512_set1_ps(static_cast<float>(r.hi - r.zp));
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512i a = _mm512_maskz_loadu_epi32(m, acc + i);
    __m512i v;
    if (r.float32) {
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(a), s);
      f = _mm512_min_ps(_mm512_max_ps(f, flo), fhi);
      v = _mm512_cvtps_epi32(f);
    } else {
      v = _mm512_min_epi32(_mm512_max_epi32(fixed_point16(a, r), lo), hi);
    }
    store16(_mm512_add_epi32(v, zp), out, i, out_u8, m);
  }
}

}  // namespace q8
}  // namespace mobrt
