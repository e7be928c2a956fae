// q8_dwconv_avx2.cpp: the AVX2 row kernels of the int8 depthwise 3x3 convolution
// (q8_dwconv.h). Inputs and taps are int16 (x - zx, w - zw); vpmaddwd multiplies pairs
// exactly into int32 (no 16-bit saturation: |products| <= 255 * 255).
//
// One kernel row r with taps (w0, w1, w2) at stride 2: with p = row + 2j,
//   madd(p[0..15], (w0, w1)) + madd(p[2..17], (w2, 0))   = outputs j .. j+7
// (int32 lane i pairs p[2i] * w0 + p[2i+1] * w1, then p[2i+2] * w2). Stride 1 is the same
// computed twice: the even outputs from p = row + j, the odd ones from row + j + 1, then
// interleaved (16 outputs per step).
#include <immintrin.h>

#include "cpu/int8/q8_dwconv.h"
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

struct Taps {
  __m256i w01[3], w2z[3];  // (w[3r], w[3r+1]) and (w[3r+2], 0) as int16 pairs
  explicit Taps(const int16_t* w9) {
    for (int r = 0; r < 3; ++r) {
      w01[r] = _mm256_set1_epi32(static_cast<int32_t>(static_cast<uint16_t>(w9[3 * r]) |
                                                      (static_cast<uint32_t>(static_cast<uint16_t>(w9[3 * r + 1])) << 16)));
      w2z[r] = _mm256_set1_epi32(static_cast<int32_t>(static_cast<uint16_t>(w9[3 * r + 2])));
    }
  }
};

inline __m256i load16(const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// init + the three rows' taps for outputs whose first tap column is p_r[2i] (i < 8).
inline __m256i dot8(const int16_t* p0, const int16_t* p1, const int16_t* p2, const Taps& t, __m256i init) {
  __m256i a = _mm256_add_epi32(_mm256_madd_epi16(load16(p0), t.w01[0]), _mm256_madd_epi16(load16(p0 + 2), t.w2z[0]));
  __m256i b = _mm256_add_epi32(_mm256_madd_epi16(load16(p1), t.w01[1]), _mm256_madd_epi16(load16(p1 + 2), t.w2z[1]));
  __m256i c = _mm256_add_epi32(_mm256_madd_epi16(load16(p2), t.w01[2]), _mm256_madd_epi16(load16(p2 + 2), t.w2z[2]));
  return _mm256_add_epi32(_mm256_add_epi32(init, a), _mm256_add_epi32(b, c));
}

void row3x3s1(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  const Taps t(w9);
  const __m256i vi = _mm256_set1_epi32(init);
  const int16_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
  for (size_t j = 0; j < n; j += 16) {
    const __m256i even = dot8(r0 + j, r1 + j, r2 + j, t, vi);          // outputs j, j+2, ..., j+14
    const __m256i odd = dot8(r0 + j + 1, r1 + j + 1, r2 + j + 1, t, vi);  // j+1, ..., j+15
    const __m256i lo = _mm256_unpacklo_epi32(even, odd);  // j+0..3 | j+8..11
    const __m256i hi = _mm256_unpackhi_epi32(even, odd);  // j+4..7 | j+12..15
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

void row3x3s2(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  const Taps t(w9);
  const __m256i vi = _mm256_set1_epi32(init);
  const int16_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
  for (size_t j = 0; j < n; j += 8)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j), dot8(r0 + 2 * j, r1 + 2 * j, r2 + 2 * j, t, vi));
}

// out = x - zx as int16, 16 per step (vpmovsxbw / vpmovzxbw), the tail scalar.
void widen(const void* x, bool x_u8, int32_t zx, size_t n, int16_t* out) {
  const uint8_t* p = static_cast<const uint8_t*>(x);
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zx));
  size_t i = 0;
  if (x_u8) {
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_sub_epi16(_mm256_cvtepu8_epi16(v), z));
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), z));
    }
  }
  if (i < n) q8_dw_widen_scalar(p + i, x_u8, zx, n - i, out + i);
}

const Q8DwIsa kIsa = {"conv_q8_dw3x3_avx2", row3x3s1, row3x3s2, widen, q8_requant_row_avx2};

}  // namespace

Status q8_dw_prepare_avx2(KernelContext& ctx) { return q8_dw_prepare(ctx, kIsa); }

}  // namespace q8
}  // namespace mobrt
