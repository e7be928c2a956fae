// q8_dwconv_avx512.cpp: the AVX-512 (F + BW) row kernels of the int8 depthwise 3x3
// convolution (q8_dwconv.h): q8_dwconv_x86.h's exact vpmaddwd scheme on 512-bit vectors
// (stride 2: madd(p[0..31], (w0, w1)) + madd(p[2..33], (w2, 0)) = outputs j .. j+15;
// stride 1: even and odd outputs interleaved, 32 per step), the row's last outputs with
// the 256/128-bit steps; the input rows widened with masked vpmovsxbw / vpmovzxbw.
#include <immintrin.h>

#include "cpu/int8/q8_dwconv.h"
#include "cpu/int8/q8_dwconv_avx512.h"
#include "cpu/int8/q8_dwconv_x86.h"
#include "cpu/int8/q8_gemm_x86.h"

namespace mobrt {
namespace q8 {
namespace {

using dw512::dot16;
using dw512::Taps512;

struct Dot {  // vpmaddwd + vpaddd
  static __m512i dp(__m512i acc, __m512i x, __m512i w) { return _mm512_add_epi32(acc, _mm512_madd_epi16(x, w)); }
};

// 32 outputs per step, then at most one 16- and one 8-output step (q8_dwconv_x86.h).
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

const Q8DwIsa kIsa = {"conv_q8_dw3x3_avx512", row3x3s1, row3x3s2, widen, q8_requant_row_avx512,
                        dw512::flat_plane<Dot>};

}  // namespace

Status q8_dw_prepare_avx512(KernelContext& ctx) { return q8_dw_prepare(ctx, kIsa); }

}  // namespace q8
}  // namespace mobrt
