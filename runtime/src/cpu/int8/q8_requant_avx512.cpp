// q8_requant_avx512.cpp: q8_requant_row for AVX-512 (F + BW + VL), bit for bit
// q8_requant_row_scalar; the arithmetic of q8_requant_avx2.cpp (see there). The row's
// constants are hoisted; 64 outputs a step are packed to bytes with vpackssdw /
// vpacksswb (vpackuswb) + one lane permute and stored as one 64-byte vector; the tail
// goes 16 lanes a step with masks.
#include <immintrin.h>

#include <cstdint>

#include "cpu/int8/q8_gemm_x86.h"
#include "cpu/int8/q8_requant_avx512.h"

namespace mobrt {
namespace q8 {
namespace {

using rq512::Fixed;
using rq512::Float32;

template <typename F, bool U8>
void row(const int32_t* acc, size_t n, const F& f, uint8_t* out) {
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v0 = f(_mm512_loadu_si512(acc + i)), v1 = f(_mm512_loadu_si512(acc + i + 16));
    const __m512i v2 = f(_mm512_loadu_si512(acc + i + 32)), v3 = f(_mm512_loadu_si512(acc + i + 48));
    const __m512i w0 = _mm512_packs_epi32(v0, v1), w1 = _mm512_packs_epi32(v2, v3);  // exact: in range
    const __m512i b = U8 ? _mm512_packus_epi16(w0, w1) : _mm512_packs_epi16(w0, w1);
    _mm512_storeu_si512(out + i, _mm512_permutexvar_epi32(perm, b));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512i v = f(_mm512_maskz_loadu_epi32(m, acc + i));
    if (U8) _mm512_mask_cvtusepi32_storeu_epi8(out + i, m, v);  // v in [0, 255]
    else _mm512_mask_cvtsepi32_storeu_epi8(out + i, m, v);      // v in [-128, 127]
  }
}

}  // namespace

void q8_requant_row_avx512(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8) {
  uint8_t* o = static_cast<uint8_t*>(out);
  if (r.float32) {
    const Float32 f(r);
    if (out_u8) row<Float32, true>(acc, n, f, o);
    else row<Float32, false>(acc, n, f, o);
  } else {
    const Fixed f(r);
    if (out_u8) row<Fixed, true>(acc, n, f, o);
    else row<Fixed, false>(acc, n, f, o);
  }
}

}  // namespace q8
}  // namespace mobrt
