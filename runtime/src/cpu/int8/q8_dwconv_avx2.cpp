// q8_dwconv_avx2.cpp: the AVX2 row kernels of the int8 depthwise 3x3 convolution
// (q8_dwconv.h): vpmaddwd on int16 x - zx and w - zw, exact (the scheme is
// q8_dwconv_x86.h's), the input rows widened with vpmovsxbw / vpmovzxbw; planes with
// equal strides fused (Q8DwFlatFn: requantized in registers, bytes through a staging row).
#include <immintrin.h>

#include <cstring>

#include "cpu/int8/q8_dwconv.h"
#include "cpu/int8/q8_dwconv_x86.h"
#include "cpu/int8/q8_gemm_x86.h"
#include "cpu/int8/q8_requant_avx2.h"

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

// ---- fused flat plane (Q8DwFlatFn) ----------------------------------------------------
// The requantization of 8 int32 lanes: rq256::Fixed / rq256::Float32 (q8_requant_avx2.h).

// 32 requantized int32 outputs (4 x 8, in order, within the output dtype) -> 32 bytes.
template <bool U8>
inline void store32(__m256i v0, __m256i v1, __m256i v2, __m256i v3, uint8_t* out) {
  const __m256i w0 = _mm256_packs_epi32(v0, v1), w1 = _mm256_packs_epi32(v2, v3);  // exact: in range
  const __m256i b = U8 ? _mm256_packus_epi16(w0, w1) : _mm256_packs_epi16(w0, w1);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

inline __m256i lo_half(__m256i even, __m256i odd) {  // outputs 0..7 of an even/odd pair
  return _mm256_permute2x128_si256(_mm256_unpacklo_epi32(even, odd), _mm256_unpackhi_epi32(even, odd), 0x20);
}
inline __m256i hi_half(__m256i even, __m256i odd) {  // outputs 8..15
  return _mm256_permute2x128_si256(_mm256_unpacklo_epi32(even, odd), _mm256_unpackhi_epi32(even, odd), 0x31);
}

// Stride 1: 32 flat outputs a step into a staging row of pitch wp, then the ow valid
// bytes of each output row copied out. Stride 2: output row by output row, 32 a step into
// the staging row, then ow bytes copied out.
template <int SW, typename F, bool U8>
void flat_plane_t(const int16_t* base, size_t wp, const int16_t* w9, int32_t init, const F& f, size_t oh, size_t ow,
                  uint8_t* out, uint8_t* stage) {
  const Taps256 t(w9);
  const __m256i vi = _mm256_set1_epi32(init);
  const int16_t *r0 = base, *r1 = base + wp, *r2 = base + 2 * wp;
  if (SW == 1) {
    const size_t n = (oh - 1) * wp + ow;
    for (size_t j = 0; j < n; j += 32) {
      const __m256i e0 = dot8(r0 + j, r1 + j, r2 + j, t, vi);
      const __m256i o0 = dot8(r0 + j + 1, r1 + j + 1, r2 + j + 1, t, vi);
      const __m256i e1 = dot8(r0 + j + 16, r1 + j + 16, r2 + j + 16, t, vi);
      const __m256i o1 = dot8(r0 + j + 17, r1 + j + 17, r2 + j + 17, t, vi);
      store32<U8>(f(lo_half(e0, o0)), f(hi_half(e0, o0)), f(lo_half(e1, o1)), f(hi_half(e1, o1)), stage + j);
    }
    for (size_t oy = 0; oy < oh; ++oy) std::memcpy(out + oy * ow, stage + oy * wp, ow);
    return;
  }
  for (size_t oy = 0; oy < oh; ++oy) {
    const int16_t *p0 = r0 + 2 * oy * wp, *p1 = r1 + 2 * oy * wp, *p2 = r2 + 2 * oy * wp;
    for (size_t j = 0; j < ow; j += 32) {
      const size_t k = 2 * j;
      store32<U8>(f(dot8(p0 + k, p1 + k, p2 + k, t, vi)), f(dot8(p0 + k + 16, p1 + k + 16, p2 + k + 16, t, vi)),
                  f(dot8(p0 + k + 32, p1 + k + 32, p2 + k + 32, t, vi)),
                  f(dot8(p0 + k + 48, p1 + k + 48, p2 + k + 48, t, vi)), stage + j);
    }
    std::memcpy(out + oy * ow, stage, ow);
  }
}

void flat_plane(const int16_t* base, size_t wp, size_t sw, const int16_t* w9, int32_t init, const Q8Requant& r,
                size_t oh, size_t ow, void* out, bool out_u8, uint8_t* stage) {
  using rq256::Fixed;
  using rq256::Float32;
  uint8_t* o = static_cast<uint8_t*>(out);
  if (r.float32) {
    const Float32 f(r);
    if (sw == 1) {
      if (out_u8) flat_plane_t<1, Float32, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<1, Float32, false>(base, wp, w9, init, f, oh, ow, o, stage);
    } else {
      if (out_u8) flat_plane_t<2, Float32, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<2, Float32, false>(base, wp, w9, init, f, oh, ow, o, stage);
    }
  } else {
    const Fixed f(r);
    if (sw == 1) {
      if (out_u8) flat_plane_t<1, Fixed, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<1, Fixed, false>(base, wp, w9, init, f, oh, ow, o, stage);
    } else {
      if (out_u8) flat_plane_t<2, Fixed, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<2, Fixed, false>(base, wp, w9, init, f, oh, ow, o, stage);
    }
  }
}

const Q8DwIsa kIsa = {"conv_q8_dw3x3_avx2", row3x3s1, row3x3s2, widen, q8_requant_row_avx2, flat_plane};

}  // namespace

Status q8_dw_prepare_avx2(KernelContext& ctx) { return q8_dw_prepare(ctx, kIsa); }

}  // namespace q8
}  // namespace mobrt
