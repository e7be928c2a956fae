// q8_dwconv_avx2.cpp: the AVX2 row kernels of the int8 depthwise 3x3 convolution
// (q8_dwconv.h): vpmaddwd on int16 x - zx and w - zw, exact (the scheme is
// q8_dwconv_x86.h's), the input rows widened with vpmovsxbw / vpmovzxbw.
#include <immintrin.h>

#include "cpu/int8/q8_dwconv.h"
#include "cpu/int8/q8_dwconv_x86.h"
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

using namespace dwx86;  // NOLINT: this file's building blocks

// 16 outputs per step; a last remainder of at most 8 with one 128-bit step.
void row3x3s1(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  const Taps256 t(w9);
  const __m256i vi = _mm256_set1_epi32(init);
  size_t j = 0;
  for (; j + 8 < n; j += 16) s1_step16(rows, j, t, vi, acc);
  if (j < n) s1_step8(rows, j, Taps128(w9), _mm_set1_epi32(init), acc);
}

// 8 outputs per step; a last remainder of at most 4 with one 128-bit step.
void row3x3s2(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  const Taps256 t(w9);
  const __m256i vi = _mm256_set1_epi32(init);
  size_t j = 0;
  for (; j + 4 < n; j += 8) s2_step8(rows, j, t, vi, acc);
  if (j < n) s2_step4(rows, j, Taps128(w9), _mm_set1_epi32(init), acc);
}

// out = x - zx as int16, 16 per step (vpmovsxbw / vpmovzxbw), then 8, the tail scalar.
inline void widen_row(const void* x, bool x_u8, int32_t zx, size_t n, int16_t* out) {
  const uint8_t* p = static_cast<const uint8_t*>(x);
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zx));
  size_t i = 0;
  if (x_u8) {
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_sub_epi16(_mm256_cvtepu8_epi16(v), z));
    }
    if (i + 8 <= n) {
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_sub_epi16(_mm_cvtepu8_epi16(v), _mm256_castsi256_si128(z)));
      i += 8;
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), z));
    }
    if (i + 8 <= n) {
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_sub_epi16(_mm_cvtepi8_epi16(v), _mm256_castsi256_si128(z)));
      i += 8;
    }
  }
  if (i < n) q8_dw_widen_scalar(p + i, x_u8, zx, n - i, out + i);
}

// A plane's rows (Q8DwWidenFn).
void widen(const void* x, bool x_u8, int32_t zx, size_t n, size_t rows, int16_t* out, size_t pitch) {
  const uint8_t* p = static_cast<const uint8_t*>(x);
  for (size_t r = 0; r < rows; ++r) widen_row(p + r * n, x_u8, zx, n, out + r * pitch);
}

const Q8DwIsa kIsa = {"conv_q8_dw3x3_avx2", row3x3s1, row3x3s2, widen, q8_requant_row_avx2, nullptr};

}  // namespace

Status q8_dw_prepare_avx2(KernelContext& ctx) { return q8_dw_prepare(ctx, kIsa); }

}  // namespace q8
}  // namespace mobrt
