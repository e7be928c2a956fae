// q8_gemm_pack_avx2.cpp: the AVX2 B packers of the int8 GEMM (Q8PackBFn, q8_gemm.h):
// KR activation rows converted and interleaved into NR-wide panels, 16 columns a step.
//   u8 kr 4 (the VNNI kernels' U8/S8 B): raw ^ xor_mask, byte unpacks.
//   s16 kr 2 (the AVX2 kernel): raw widened to int16 (sign or zero), minus zx, word unpacks.
#include <immintrin.h>

#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

template <int NR>
void pack_u8_kr4(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst, size_t panel_stride) {
  const __m128i x = _mm_set1_epi8(static_cast<char>(cv.xor_mask));
  const uint8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
  for (size_t c = 0; c < n; c += 16) {
    const __m128i a = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + c)), x);
    const __m128i b = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + c)), x);
    const __m128i e = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r2 + c)), x);
    const __m128i f = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r3 + c)), x);
    const __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    const __m128i ef0 = _mm_unpacklo_epi8(e, f), ef1 = _mm_unpackhi_epi8(e, f);
    __m128i* d = reinterpret_cast<__m128i*>(static_cast<uint8_t*>(dst) + (c / NR) * panel_stride + (c % NR) * 4);
    _mm_storeu_si128(d + 0, _mm_unpacklo_epi16(ab0, ef0));
    _mm_storeu_si128(d + 1, _mm_unpackhi_epi16(ab0, ef0));
    _mm_storeu_si128(d + 2, _mm_unpacklo_epi16(ab1, ef1));
    _mm_storeu_si128(d + 3, _mm_unpackhi_epi16(ab1, ef1));
  }
}

template <int NR>
void pack_s16_kr2(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst, size_t panel_stride) {
  const __m256i zx = _mm256_set1_epi16(static_cast<int16_t>(cv.zx));
  const uint8_t *r0 = rows[0], *r1 = rows[1];
  for (size_t c = 0; c < n; c += 16) {
    const __m128i a8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + c));
    const __m128i b8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + c));
    const __m256i a = _mm256_sub_epi16(cv.x_u8 ? _mm256_cvtepu8_epi16(a8) : _mm256_cvtepi8_epi16(a8), zx);
    const __m256i b = _mm256_sub_epi16(cv.x_u8 ? _mm256_cvtepu8_epi16(b8) : _mm256_cvtepi8_epi16(b8), zx);
    const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);  // cols 0-3|8-11, 4-7|12-15
    __m256i* d = reinterpret_cast<__m256i*>(static_cast<uint8_t*>(dst) + (c / NR) * panel_stride + (c % NR) * 4);
    _mm256_storeu_si256(d + 0, _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

}  // namespace

void q8_pack_b_u8_kr4_nr16_avx2(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                size_t panel_stride) {
  pack_u8_kr4<16>(rows, n, cv, dst, panel_stride);
}
void q8_pack_b_u8_kr4_nr32_avx2(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                size_t panel_stride) {
  pack_u8_kr4<32>(rows, n, cv, dst, panel_stride);
}
void q8_pack_b_s16_kr2_nr16_avx2(const uint8_t* const* rows, size_t n, const Q8BConvert& cv, void* dst,
                                 size_t panel_stride) {
  pack_s16_kr2<16>(rows, n, cv, dst, panel_stride);
}

void q8_gather2_avx2(const uint8_t* x, uint8_t* d, int64_t a, int64_t b) {
  const __m256i lo = _mm256_set1_epi16(0x00FF);
  int64_t o = a;
  // 64 bytes read from x + 2 * o: the last one is x[2 * o + 63] <= x[2 * (b - 1)]
  for (; o + 33 <= b; o += 32) {
    const __m256i u = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 2 * o)), lo);
    const __m256i v = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 2 * o + 32)), lo);
    // packus of words in [0, 255] is exact; lanes (u0 v0 u1 v1) -> (u0 u1 v0 v1)
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi16(u, v), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + o), w);
  }
  for (; o < b; ++o) d[o] = x[2 * o];
}

}  // namespace q8
}  // namespace mobrt
