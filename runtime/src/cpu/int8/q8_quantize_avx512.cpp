// q8_quantize_avx512.cpp: the AVX-512 (F + BW + VL) rows of QuantizeLinear /
// DequantizeLinear (q8_quantize.h): 16 lanes per vector, 64 elements per step, masked tails.
// Same arithmetic as the AVX2 rows: vmaxps returns its second operand on NaN, cvtps rounds
// half to even under the default MXCSR, the clamped int32 lanes narrow exactly (vpmovdb).
#include <immintrin.h>

#include "cpu/int8/q8_quantize.h"

namespace mobrt {
namespace q8 {

namespace {

inline __m128i quantize16(__m512 x, __m512 vs, __m512 vlo, __m512 vhi, __m512i vzp) {
  const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x, vs), vlo), vhi);
  return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(c), vzp));
}

void quantize_row_avx512(const float* x, size_t n, float scale, int32_t zp, void* y, bool u8) {
  const int32_t lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 vlo = _mm512_set1_ps(static_cast<float>(lo - zp));
  const __m512 vhi = _mm512_set1_ps(static_cast<float>(hi - zp));
  const __m512i vzp = _mm512_set1_epi32(zp);
  uint8_t* out = static_cast<uint8_t*>(y);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m128i a = quantize16(_mm512_loadu_ps(x + i), vs, vlo, vhi, vzp);
    const __m128i b = quantize16(_mm512_loadu_ps(x + i + 16), vs, vlo, vhi, vzp);
    const __m128i c = quantize16(_mm512_loadu_ps(x + i + 32), vs, vlo, vhi, vzp);
    const __m128i d = quantize16(_mm512_loadu_ps(x + i + 48), vs, vlo, vhi, vzp);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 16), b);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 32), c);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 48), d);
  }
  for (; i < n; i += 16) {
    const size_t m = n - i < 16 ? n - i : 16;
    const __mmask16 k = static_cast<__mmask16>((1u << m) - 1u);
    _mm_mask_storeu_epi8(out + i, k, quantize16(_mm512_maskz_loadu_ps(k, x + i), vs, vlo, vhi, vzp));
  }
}

inline __m512 dequantize16(__m128i bytes, bool u8, __m512 vs, __m512i vzp) {
  const __m512i v = u8 ? _mm512_cvtepu8_epi32(bytes) : _mm512_cvtepi8_epi32(bytes);
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, vzp)), vs);
}

void dequantize_row_avx512(const void* x, size_t n, float scale, int32_t zp, float* y, bool u8) {
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512i vzp = _mm512_set1_epi32(zp);
  const uint8_t* in = static_cast<const uint8_t*>(x);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (size_t j = 0; j < 64; j += 16)
      _mm512_storeu_ps(y + i + j,
                       dequantize16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + j)), u8, vs, vzp));
  }
  for (; i < n; i += 16) {
    const size_t m = n - i < 16 ? n - i : 16;
    const __mmask16 k = static_cast<__mmask16>((1u << m) - 1u);
    _mm512_mask_storeu_ps(y + i, k, dequantize16(_mm_maskz_loadu_epi8(k, in + i), u8, vs, vzp));
  }
}

void dequantize_i32_row_avx512(const int32_t* x, size_t n, float scale, int32_t zp, float* y) {
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512i vzp = _mm512_set1_epi32(zp);
  for (size_t i = 0; i < n; i += 16) {
    const size_t m = n - i < 16 ? n - i : 16;
    const __mmask16 k = static_cast<__mmask16>((1u << m) - 1u);
    const __m512i d = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(k, x + i), vzp);  // wraps
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_cvtepi32_ps(d), vs));
  }
}

const Q8QuantizeIsa kAvx512 = {quantize_row_avx512, dequantize_row_avx512, dequantize_i32_row_avx512};

}  // namespace

Status q8_quantize_prepare_avx512(KernelContext& ctx) {
  *ctx.state = const_cast<Q8QuantizeIsa*>(&kAvx512);
  return Status::Ok();
}

}  // namespace q8
}  // namespace mobrt
