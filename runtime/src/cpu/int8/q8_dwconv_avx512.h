// q8_dwconv_avx512.h: the AVX-512 (F + BW) depthwise 3x3 steps and the fused flat-plane
// kernel and the row kernels, shared by q8_dwconv_avx512.cpp (vpmaddwd + vpaddd) and q8_dwconv_avx512_vnni.cpp
// (vpdpwssd) through a Dot policy: Dot::dp(acc, x, w) = acc + the int16 pair dot of x and
// w per int32 lane (exact: products <= 255 * 255, sums in int32 by supports()'s bound).
// Include only from files built with AVX-512 flags.
//
// Fused flat plane (Q8DwFlatFn, q8_dwconv.h): flat output q = oy * wp + ox reads
// base + r * wp + sw * q + k. Stride 1: each 32 flat outputs are summed in registers,
// requantized in registers (q8_requant_avx512.h, bit for bit q8_requant_row_scalar) and
// narrowed to bytes (vpmovsdb / vpmovusdb: the values are already within the output dtype)
// into a staging row of pitch wp; the ow valid bytes of every output row are then copied
// out. Stride 2: output row by output row, 16 outputs a step, stored straight to the
// output. No int32 row in memory, no per-row calls.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cpu/int8/q8_requant.h"
#include "cpu/int8/q8_requant_avx512.h"
#include "cpu/int8/q8_dwconv_x86.h"

namespace mobrt {
namespace q8 {
namespace dw512 {
namespace {  // internal linkage: each including file compiles its own copy with its flags

inline int32_t pair(int16_t a, int16_t b) {
  return static_cast<int32_t>(static_cast<uint16_t>(a) | (static_cast<uint32_t>(static_cast<uint16_t>(b)) << 16));
}

struct Taps512 {
  __m512i w01[3], w2z[3];  // (w[3r], w[3r+1]) and (w[3r+2], 0) as int16 pairs
  explicit Taps512(const int16_t* w9) {
    for (int r = 0; r < 3; ++r) {
      w01[r] = _mm512_set1_epi32(pair(w9[3 * r], w9[3 * r + 1]));
      w2z[r] = _mm512_set1_epi32(pair(w9[3 * r + 2], 0));
    }
  }
};

inline __m512i load32(const int16_t* p) { return _mm512_loadu_si512(p); }

// init + the three rows' taps for outputs whose first tap column is p_r[2i] (i < 16): two
// independent accumulation chains (the dot's latency), added at the end.
template <typename Dot>
inline __m512i dot16(const int16_t* p0, const int16_t* p1, const int16_t* p2, const Taps512& t, __m512i init) {
  __m512i a = Dot::dp(init, load32(p0), t.w01[0]);
  __m512i b = Dot::dp(_mm512_setzero_si512(), load32(p1), t.w01[1]);
  a = Dot::dp(a, load32(p0 + 2), t.w2z[0]);
  b = Dot::dp(b, load32(p1 + 2), t.w2z[1]);
  a = Dot::dp(a, load32(p2), t.w01[2]);
  b = Dot::dp(b, load32(p2 + 2), t.w2z[2]);
  return _mm512_add_epi32(a, b);
}

// 16 requantized int32 lanes (already within the output dtype's range) -> 16 bytes.
template <bool U8>
inline __m128i to_bytes(__m512i v) {
  return U8 ? _mm512_cvtusepi32_epi8(v) : _mm512_cvtsepi32_epi8(v);
}

template <typename Dot, int SW, typename F, bool U8>
void flat_plane_t(const int16_t* base, size_t wp, const int16_t* w9, int32_t init, const F& f, size_t oh, size_t ow,
                  uint8_t* out, uint8_t* stage) {
  const Taps512 t(w9);
  const __m512i vi = _mm512_set1_epi32(init);
  const int16_t *r0 = base, *r1 = base + wp, *r2 = base + 2 * wp;
  const size_t n = (oh - 1) * wp + ow;  // flat outputs up to the last valid one
  if (SW == 1) {
    // outputs j+2i = even[i], j+2i+1 = odd[i]: interleave (odd lanes are the second operand's)
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (size_t j = 0; j < n; j += 32) {
      const __m512i even = dot16<Dot>(r0 + j, r1 + j, r2 + j, t, vi);
      const __m512i odd = dot16<Dot>(r0 + j + 1, r1 + j + 1, r2 + j + 1, t, vi);
      const __m512i lo = f(_mm512_permutex2var_epi32(even, first, odd));
      const __m512i hi = f(_mm512_permutex2var_epi32(even, second, odd));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(stage + j), to_bytes<U8>(lo));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(stage + j + 16), to_bytes<U8>(hi));
    }
  } else {
    // stride 2: row by row (the flat order would compute about as many discarded outputs as
    // kept ones), 16 outputs a step stored straight to the output, the row's last masked
    const size_t last = (ow - 1) / 16 * 16;
    const __mmask16 tail = static_cast<__mmask16>((1u << (ow - last)) - 1);
    for (size_t oy = 0; oy < oh; ++oy) {
      const int16_t *p0 = r0 + 2 * oy * wp, *p1 = r1 + 2 * oy * wp, *p2 = r2 + 2 * oy * wp;
      uint8_t* o = out + oy * ow;
      for (size_t j = 0; j < last; j += 16) {
        const __m512i v = f(dot16<Dot>(p0 + 2 * j, p1 + 2 * j, p2 + 2 * j, t, vi));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o + j), to_bytes<U8>(v));
      }
      const __m512i v = f(dot16<Dot>(p0 + 2 * last, p1 + 2 * last, p2 + 2 * last, t, vi));
      _mm_mask_storeu_epi8(o + last, tail, to_bytes<U8>(v));
    }
    return;
  }
  if (ow <= 64) {
    const __mmask64 m = ow == 64 ? ~__mmask64(0) : ((__mmask64(1) << ow) - 1);
    for (size_t oy = 0; oy < oh; ++oy)
      _mm512_mask_storeu_epi8(out + oy * ow, m, _mm512_maskz_loadu_epi8(m, stage + oy * wp));
  } else {
    for (size_t oy = 0; oy < oh; ++oy) std::memcpy(out + oy * ow, stage + oy * wp, ow);
  }
}

// The Q8DwFlatFn of a Dot policy.
template <typename Dot>
void flat_plane(const int16_t* base, size_t wp, size_t sw, const int16_t* w9, int32_t init, const Q8Requant& r,
                size_t oh, size_t ow, void* out, bool out_u8, uint8_t* stage) {
  using rq512::Fixed;
  using rq512::Float32;
  uint8_t* o = static_cast<uint8_t*>(out);
  if (r.float32) {
    const Float32 f(r);
    if (sw == 1) {
      if (out_u8) flat_plane_t<Dot, 1, Float32, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<Dot, 1, Float32, false>(base, wp, w9, init, f, oh, ow, o, stage);
    } else {
      if (out_u8) flat_plane_t<Dot, 2, Float32, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<Dot, 2, Float32, false>(base, wp, w9, init, f, oh, ow, o, stage);
    }
  } else {
    const Fixed f(r);
    if (sw == 1) {
      if (out_u8) flat_plane_t<Dot, 1, Fixed, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<Dot, 1, Fixed, false>(base, wp, w9, init, f, oh, ow, o, stage);
    } else {
      if (out_u8) flat_plane_t<Dot, 2, Fixed, true>(base, wp, w9, init, f, oh, ow, o, stage);
      else flat_plane_t<Dot, 2, Fixed, false>(base, wp, w9, init, f, oh, ow, o, stage);
    }
  }
}

// ---- row kernels (Q8DwRowFn / Q8DwWidenFn, q8_dwconv.h) of both AVX-512 sets ----

// 32 outputs per step, then at most one 16- and one 8-output step (q8_dwconv_x86.h).
template <typename Dot>
void row3x3s1(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  const Taps512 t(w9);
  const __m512i vi = _mm512_set1_epi32(init);
  // outputs j+2i = even[i], j+2i+1 = odd[i]: interleave (odd lanes are the second operand's)
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const int16_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
  size_t j = 0;
  for (; j + 16 < n; j += 32) {
    const __m512i even = dot16<Dot>(r0 + j, r1 + j, r2 + j, t, vi);
    const __m512i odd = dot16<Dot>(r0 + j + 1, r1 + j + 1, r2 + j + 1, t, vi);
    _mm512_storeu_si512(acc + j, _mm512_permutex2var_epi32(even, first, odd));
    _mm512_storeu_si512(acc + j + 16, _mm512_permutex2var_epi32(even, second, odd));
  }
  if (j + 8 < n) {
    dwx86::s1_step16(rows, j, dwx86::Taps256(w9), _mm256_set1_epi32(init), acc);
    j += 16;
  }
  if (j < n) dwx86::s1_step8(rows, j, dwx86::Taps128(w9), _mm_set1_epi32(init), acc);
}

// 16 outputs per step, then at most one 8- and one 4-output step.
template <typename Dot>
void row3x3s2(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  const Taps512 t(w9);
  const __m512i vi = _mm512_set1_epi32(init);
  const int16_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
  size_t j = 0;
  for (; j + 8 < n; j += 16) _mm512_storeu_si512(acc + j, dot16<Dot>(r0 + 2 * j, r1 + 2 * j, r2 + 2 * j, t, vi));
  if (j + 4 < n) {
    dwx86::s2_step8(rows, j, dwx86::Taps256(w9), _mm256_set1_epi32(init), acc);
    j += 8;
  }
  if (j < n) dwx86::s2_step4(rows, j, dwx86::Taps128(w9), _mm_set1_epi32(init), acc);
}

// out = x - zx as int16, 32 per step (vpmovsxbw / vpmovzxbw); the tail with masked
// loads and stores (AVX-512BW), so no element past n is read or written.
inline void widen_row(const void* x, bool x_u8, int32_t zx, size_t n, int16_t* out) {
  const uint8_t* p = static_cast<const uint8_t*>(x);
  const __m512i z = _mm512_set1_epi16(static_cast<int16_t>(zx));
  for (size_t i = 0; i < n; i += 32) {
    const __mmask32 m = n - i >= 32 ? ~__mmask32(0) : static_cast<__mmask32>((uint32_t(1) << (n - i)) - 1);
    const __m256i v = _mm256_maskz_loadu_epi8(m, p + i);
    const __m512i w = x_u8 ? _mm512_cvtepu8_epi16(v) : _mm512_cvtepi8_epi16(v);
    _mm512_mask_storeu_epi16(out + i, m, _mm512_sub_epi16(w, z));
  }
}

// A plane's rows (Q8DwWidenFn).
void widen(const void* x, bool x_u8, int32_t zx, size_t n, size_t rows, int16_t* out, size_t pitch) {
  const uint8_t* p = static_cast<const uint8_t*>(x);
  for (size_t r = 0; r < rows; ++r) widen_row(p + r * n, x_u8, zx, n, out + r * pitch);
}

}  // namespace
}  // namespace dw512
}  // namespace q8
}  // namespace mobrt
