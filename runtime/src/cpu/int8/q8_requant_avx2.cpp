// q8_requant_avx2.cpp: q8_requant_row for AVX2, bit for bit q8_requant_row_scalar (the
// arithmetic of the 8-lane functors is q8_requant_avx2.h's). The row's constants are
// hoisted; 32 outputs a step are packed to bytes (vpackssdw, vpacksswb / vpackuswb, one
// lane permute) and stored as one 32-byte vector.
#include <immintrin.h>

#include <cstdint>

#include "cpu/int8/q8_gemm_x86.h"
#include "cpu/int8/q8_requant_avx2.h"

namespace mobrt {
namespace q8 {
namespace {

inline __m256i ld(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

template <typename F, bool U8>
void row(const int32_t* acc, size_t n, const F& f, uint8_t* out) {
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i w0 = _mm256_packs_epi32(f(ld(acc + i)), f(ld(acc + i + 8)));  // exact: values in range
    const __m256i w1 = _mm256_packs_epi32(f(ld(acc + i + 16)), f(ld(acc + i + 24)));
    const __m256i b = U8 ? _mm256_packus_epi16(w0, w1) : _mm256_packs_epi16(w0, w1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_permutevar8x32_epi32(b, perm));
  }
  for (; i + 8 <= n; i += 8) {
    const __m256i v = f(ld(acc + i));
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), U8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w));
  }
}

}  // namespace

void q8_requant_row_avx2(const int32_t* acc, size_t n, const Q8Requant& r, void* out, bool out_u8) {
  uint8_t* o = static_cast<uint8_t*>(out);
  if (r.float32) {
    const rq256::Float32 f(r);
    if (out_u8) row<rq256::Float32, true>(acc, n, f, o);
    else row<rq256::Float32, false>(acc, n, f, o);
  } else {
    const rq256::Fixed f(r);
    if (out_u8) row<rq256::Fixed, true>(acc, n, f, o);
    else row<rq256::Fixed, false>(acc, n, f, o);
  }
  const size_t done = n / 8 * 8;
  if (done < n) q8_requant_row_scalar(acc + done, n - done, r, o + done, out_u8);
}

}  // namespace q8
}  // namespace mobrt
