// q8_quantize_avx2.cpp: the AVX2 rows of QuantizeLinear / DequantizeLinear (q8_quantize.h),
// 32 elements per step.
// Same arithmetic as q8_quantize.h states: maxps returns its second operand on NaN, cvtps
// rounds half to even under the default MXCSR, the clamped lanes pack exactly.
#include <immintrin.h>

#include "cpu/int8/q8_quantize.h"

namespace mobrt {
namespace q8 {
namespace {

// 8 lanes: clamp(x / scale, lo - zp, hi - zp) rounded half to even (default MXCSR), + zp.
// maxps returns its second operand when the first is NaN: NaN -> lo - zp.
inline __m256i quantize8_avx2(const float* x, __m256 vs, __m256 vlo, __m256 vhi, __m256i vzp) {
  const __m256 q = _mm256_div_ps(_mm256_loadu_ps(x), vs);
  const __m256 c = _mm256_min_ps(_mm256_max_ps(q, vlo), vhi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(c), vzp);
}

void quantize_row_avx2(const float* x, size_t n, float scale, int32_t zp, void* y, bool u8) {
  const int32_t lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 vlo = _mm256_set1_ps(static_cast<float>(lo - zp));
  const __m256 vhi = _mm256_set1_ps(static_cast<float>(hi - zp));
  const __m256i vzp = _mm256_set1_epi32(zp);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  uint8_t* out = static_cast<uint8_t*>(y);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = quantize8_avx2(x + i, vs, vlo, vhi, vzp);
    const __m256i b = quantize8_avx2(x + i + 8, vs, vlo, vhi, vzp);
    const __m256i c = quantize8_avx2(x + i + 16, vs, vlo, vhi, vzp);
    const __m256i d = quantize8_avx2(x + i + 24, vs, vlo, vhi, vzp);
    // every lane is already in [lo, hi]: the saturating packs are exact
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i bytes = u8 ? _mm256_packus_epi16(ab, cd) : _mm256_packs_epi16(ab, cd);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_permutevar8x32_epi32(bytes, perm));
  }
  for (; i + 8 <= n; i += 8) {
    const __m256i a = quantize8_avx2(x + i, vs, vlo, vhi, vzp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    const __m128i bytes = u8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), bytes);
  }
  if (i < n) kQ8QuantizeScalar.quantize(x + i, n - i, scale, zp, out + i, u8);
}

inline __m256 dequantize8_avx2(__m128i bytes8, bool u8, __m256 vs, __m256i vzp) {
  const __m256i v = u8 ? _mm256_cvtepu8_epi32(bytes8) : _mm256_cvtepi8_epi32(bytes8);
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, vzp)), vs);
}

void dequantize_row_avx2(const void* x, size_t n, float scale, int32_t zp, float* y, bool u8) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i vzp = _mm256_set1_epi32(zp);
  const uint8_t* in = static_cast<const uint8_t*>(x);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    const __m128i l = _mm256_castsi256_si128(v), h = _mm256_extracti128_si256(v, 1);
    _mm256_storeu_ps(y + i, dequantize8_avx2(l, u8, vs, vzp));
    _mm256_storeu_ps(y + i + 8, dequantize8_avx2(_mm_unpackhi_epi64(l, l), u8, vs, vzp));
    _mm256_storeu_ps(y + i + 16, dequantize8_avx2(h, u8, vs, vzp));
    _mm256_storeu_ps(y + i + 24, dequantize8_avx2(_mm_unpackhi_epi64(h, h), u8, vs, vzp));
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, dequantize8_avx2(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + i)), u8, vs, vzp));
  if (i < n) kQ8QuantizeScalar.dequantize(in + i, n - i, scale, zp, y + i, u8);
}

void dequantize_i32_row_avx2(const int32_t* x, size_t n, float scale, int32_t zp, float* y) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i vzp = _mm256_set1_epi32(zp);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i d = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), vzp);  // wraps
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(d), vs));
  }
  if (i < n) kQ8QuantizeScalar.dequantize_i32(x + i, n - i, scale, zp, y + i);
}

const Q8QuantizeIsa kAvx2 = {quantize_row_avx2, dequantize_row_avx2, dequantize_i32_row_avx2};

}  // namespace

Status q8_quantize_prepare_avx2(KernelContext& ctx) {
  *ctx.state = const_cast<Q8QuantizeIsa*>(&kAvx2);
  return Status::Ok();
}

}  // namespace q8
}  // namespace mobrt
