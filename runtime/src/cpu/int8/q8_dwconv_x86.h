// q8_dwconv_x86.h: the 128/256-bit steps of the x86 depthwise 3x3 row kernels
// (q8_dwconv.h), shared by q8_dwconv_avx2.cpp and q8_dwconv_avx512.cpp (the latter uses
// them for the last outputs of a row, so narrow 7- or 14-wide rows do not compute a full
// 32-output step). Include only from files built with AVX2 enabled.
//
// Inputs and taps are int16 (x - zx, w - zw); vpmaddwd multiplies pairs exactly into
// int32 (no 16-bit saturation: |products| <= 255 * 255). One kernel row r with taps
// (w0, w1, w2) at stride 2: with p = row + 2j,
//   madd(p[0..], (w0, w1)) + madd(p[2..], (w2, 0))   = outputs j, j+1, ...
// (int32 lane i pairs p[2i] * w0 + p[2i+1] * w1, then p[2i+2] * w2). Stride 1 is the same
// computed twice: the even outputs from p = row + j, the odd ones from row + j + 1, then
// interleaved.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace mobrt {
namespace q8 {
namespace dwx86 {
// Internal linkage on purpose: every ISA-flagged file that includes this gets its own copy
// compiled with its own flags (a shared inline copy could be one built for a larger ISA).
namespace {

inline int32_t pair(int16_t a, int16_t b) {
  return static_cast<int32_t>(static_cast<uint16_t>(a) | (static_cast<uint32_t>(static_cast<uint16_t>(b)) << 16));
}

struct Taps128 {
  __m128i w01[3], w2z[3];  // (w[3r], w[3r+1]) and (w[3r+2], 0) as int16 pairs
  explicit Taps128(const int16_t* w9) {
    for (int r = 0; r < 3; ++r) {
      w01[r] = _mm_set1_epi32(pair(w9[3 * r], w9[3 * r + 1]));
      w2z[r] = _mm_set1_epi32(pair(w9[3 * r + 2], 0));
    }
  }
};

struct Taps256 {
  __m256i w01[3], w2z[3];
  explicit Taps256(const int16_t* w9) {
    for (int r = 0; r < 3; ++r) {
      w01[r] = _mm256_set1_epi32(pair(w9[3 * r], w9[3 * r + 1]));
      w2z[r] = _mm256_set1_epi32(pair(w9[3 * r + 2], 0));
    }
  }
};

inline __m128i load8(const int16_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i load16(const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// init + the three rows' taps for the outputs whose first tap column is p_r[2i] (i < 4 / 8).
inline __m128i dot4(const int16_t* p0, const int16_t* p1, const int16_t* p2, const Taps128& t, __m128i init) {
  __m128i a = _mm_add_epi32(_mm_madd_epi16(load8(p0), t.w01[0]), _mm_madd_epi16(load8(p0 + 2), t.w2z[0]));
  __m128i b = _mm_add_epi32(_mm_madd_epi16(load8(p1), t.w01[1]), _mm_madd_epi16(load8(p1 + 2), t.w2z[1]));
  __m128i c = _mm_add_epi32(_mm_madd_epi16(load8(p2), t.w01[2]), _mm_madd_epi16(load8(p2 + 2), t.w2z[2]));
  return _mm_add_epi32(_mm_add_epi32(init, a), _mm_add_epi32(b, c));
}

inline __m256i dot8(const int16_t* p0, const int16_t* p1, const int16_t* p2, const Taps256& t, __m256i init) {
  __m256i a = _mm256_add_epi32(_mm256_madd_epi16(load16(p0), t.w01[0]), _mm256_madd_epi16(load16(p0 + 2), t.w2z[0]));
  __m256i b = _mm256_add_epi32(_mm256_madd_epi16(load16(p1), t.w01[1]), _mm256_madd_epi16(load16(p1 + 2), t.w2z[1]));
  __m256i c = _mm256_add_epi32(_mm256_madd_epi16(load16(p2), t.w01[2]), _mm256_madd_epi16(load16(p2 + 2), t.w2z[2]));
  return _mm256_add_epi32(_mm256_add_epi32(init, a), _mm256_add_epi32(b, c));
}

// Stride 1, outputs j .. j+7 / j .. j+15 into acc + j.
inline void s1_step8(const int16_t* const* rows, size_t j, const Taps128& t, __m128i init, int32_t* acc) {
  const __m128i even = dot4(rows[0] + j, rows[1] + j, rows[2] + j, t, init);
  const __m128i odd = dot4(rows[0] + j + 1, rows[1] + j + 1, rows[2] + j + 1, t, init);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + j), _mm_unpacklo_epi32(even, odd));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + j + 4), _mm_unpackhi_epi32(even, odd));
}

inline void s1_step16(const int16_t* const* rows, size_t j, const Taps256& t, __m256i init, int32_t* acc) {
  const __m256i even = dot8(rows[0] + j, rows[1] + j, rows[2] + j, t, init);          // j, j+2, ..., j+14
  const __m256i odd = dot8(rows[0] + j + 1, rows[1] + j + 1, rows[2] + j + 1, t, init);  // j+1, ..., j+15
  const __m256i lo = _mm256_unpacklo_epi32(even, odd);  // j+0..3 | j+8..11
  const __m256i hi = _mm256_unpackhi_epi32(even, odd);  // j+4..7 | j+12..15
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j), _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
}

// Stride 2, outputs j .. j+3 / j .. j+7 into acc + j.
inline void s2_step4(const int16_t* const* rows, size_t j, const Taps128& t, __m128i init, int32_t* acc) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + j), dot4(rows[0] + 2 * j, rows[1] + 2 * j, rows[2] + 2 * j, t, init));
}

inline void s2_step8(const int16_t* const* rows, size_t j, const Taps256& t, __m256i init, int32_t* acc) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + j),
                      dot8(rows[0] + 2 * j, rows[1] + 2 * j, rows[2] + 2 * j, t, init));
}

}  // namespace
}  // namespace dwx86
}  // namespace q8
}  // namespace mobrt
