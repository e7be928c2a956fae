// q8_elementwise_avx512.cpp: the AVX-512 (F + BW + VL) row functions of the int8
// element-wise kernels (q8_elementwise.h), 16 elements per step in one int32 zmm, the
// same arithmetic as the AVX2 ones (q8_elementwise_avx2.cpp explains each step) with
// opmask compares and blends; a row's last partial step runs masked (byte-masked loads
// read only the row, masked stores write only it), so no scalar tail.
#include <immintrin.h>

#include "cpu/int8/q8_elementwise.h"

namespace mobrt {
namespace q8 {
namespace {

struct ZMult {
  __m512i q, nudge, sat_hi, sat_lo, rnudge, big, small;
  __m128i lcnt, rcnt;
  bool left, right;
  bool half;  // q = 2^30 and no left shift: an Add input's term is (a - z) 2^19
  explicit ZMult(const Q8Mult& m) {
    half = m.q == (1 << 30) && m.left == 0;
    q = _mm512_set1_epi32(m.q);
    nudge = _mm512_set1_epi64(int64_t(1) << 30);
    left = m.left > 0;
    right = m.right > 0;
    sat_hi = _mm512_set1_epi32(left ? INT32_MAX >> m.left : INT32_MAX);
    sat_lo = _mm512_set1_epi32(left ? INT32_MIN >> m.left : INT32_MIN);
    big = _mm512_set1_epi32(INT32_MAX);
    small = _mm512_set1_epi32(INT32_MIN);
    lcnt = _mm_cvtsi32_si128(m.left);
    rcnt = _mm_cvtsi32_si128(m.right);
    rnudge = _mm512_set1_epi32(right ? static_cast<int32_t>(int64_t(1) << (m.right - 1)) : 0);
  }
};

// rounding_divide_by_pot(x, right) for |x| < 2^29 (q8_elementwise_avx2.cpp)
inline __m512i rdbpot(__m512i x, const ZMult& m) {
  if (!m.right) return x;
  const __m512i t = _mm512_add_epi32(_mm512_add_epi32(x, m.rnudge), _mm512_srai_epi32(x, 31));
  return _mm512_sra_epi32(t, m.rcnt);
}

inline __m512i mbqm(__m512i x, const ZMult& m) {
  if (m.left) {
    const __mmask16 over = _mm512_cmpgt_epi32_mask(x, m.sat_hi), under = _mm512_cmplt_epi32_mask(x, m.sat_lo);
    x = _mm512_sll_epi32(x, m.lcnt);
    x = _mm512_mask_mov_epi32(x, over, m.big);
    x = _mm512_mask_mov_epi32(x, under, m.small);
  }
  __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m.q), m.nudge);
  __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), m.q), m.nudge);
  even = _mm512_srli_epi64(even, 31);
  odd = _mm512_slli_epi64(odd, 1);
  return rdbpot(_mm512_mask_blend_epi32(0xAAAA, even, odd), m);
}

// One Add input's term MBQM((v - z) 2^20, m) of widened values v.
inline __m512i term(__m512i v, __m512i z, const ZMult& m) {
  const __m512i d = _mm512_sub_epi32(v, z);
  if (m.half) return rdbpot(_mm512_slli_epi32(d, 19), m);
  return mbqm(_mm512_slli_epi32(d, 20), m);
}

struct ZOut {
  __m512i zy, lo, hi;
  ZOut(int32_t z, int32_t l, int32_t h)
      : zy(_mm512_set1_epi32(z)), lo(_mm512_set1_epi32(l - z)), hi(_mm512_set1_epi32(h - z)) {}
  __m512i operator()(__m512i r) const { return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), zy); }
};

inline const uint8_t* at(const void* p, size_t i) { return static_cast<const uint8_t*>(p) + i; }
inline uint8_t* at(void* p, size_t i) { return static_cast<uint8_t*>(p) + i; }

inline __mmask16 tail16(size_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }
inline __mmask64 tail64(size_t left) { return left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1; }

template <bool U8>
inline __m512i load16(const void* p, __mmask16 k) {
  const __m128i v = _mm_maskz_loadu_epi8(k, p);
  return U8 ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
}

// In-range values: the truncating narrow (vpmovdb) is exact for int8 and uint8.
inline void store16(void* p, __m512i v, __mmask16 k) { _mm_mask_storeu_epi8(p, k, _mm512_cvtepi32_epi8(v)); }

template <bool U8, typename F>
inline void rows16(size_t n, void* y, F&& f16) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(n - i);
    store16(at(y, i), f16(i, k), k);
  }
}

template <bool U8>
void add_t(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y) {
  const ZMult ma(p.ma), mb(p.mb), my(p.my);
  const ZOut out(p.zy, p.lo, p.hi);
  const __m512i za = _mm512_set1_epi32(p.za), zb = _mm512_set1_epi32(p.zb);
  if (b_bcast) {
    const int32_t bv = U8 ? *static_cast<const uint8_t*>(b) : *static_cast<const int8_t*>(b);
    const __m512i tb = _mm512_set1_epi32(static_cast<int32_t>(q8_shifted_term(bv, p.zb, p.mb)));
    rows16<U8>(n, y, [&](size_t j, __mmask16 k) {
      return out(mbqm(_mm512_add_epi32(term(load16<U8>(at(a, j), k), za, ma), tb), my));
    });
  } else {
    rows16<U8>(n, y, [&](size_t j, __mmask16 k) {
      const __m512i ta = term(load16<U8>(at(a, j), k), za, ma), tb = term(load16<U8>(at(b, j), k), zb, mb);
      return out(mbqm(_mm512_add_epi32(ta, tb), my));
    });
  }
}

void add_avx512(const void* a, const void* b, bool b_bcast, size_t n, const Q8AddParams& p, void* y, bool u8) {
  if (u8) add_t<true>(a, b, b_bcast, n, p, y);
  else add_t<false>(a, b, b_bcast, n, p, y);
}

template <bool U8>
void mul_t(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y) {
  const ZMult my(p.my);
  const ZOut out(p.zy, p.lo, p.hi);
  const __m512i za = _mm512_set1_epi32(p.za), zb = _mm512_set1_epi32(p.zb);
  if (b_bcast) {
    const int32_t bv = U8 ? *static_cast<const uint8_t*>(b) : *static_cast<const int8_t*>(b);
    const __m512i vb = _mm512_set1_epi32(bv - p.zb);
    rows16<U8>(n, y, [&](size_t j, __mmask16 k) {
      return out(mbqm(_mm512_mullo_epi32(_mm512_sub_epi32(load16<U8>(at(a, j), k), za), vb), my));
    });
  } else {
    rows16<U8>(n, y, [&](size_t j, __mmask16 k) {
      const __m512i va = _mm512_sub_epi32(load16<U8>(at(a, j), k), za);
      const __m512i vb = _mm512_sub_epi32(load16<U8>(at(b, j), k), zb);
      return out(mbqm(_mm512_mullo_epi32(va, vb), my));
    });
  }
}

void mul_avx512(const void* a, const void* b, bool b_bcast, size_t n, const Q8MulParams& p, void* y, bool u8) {
  if (u8) mul_t<true>(a, b, b_bcast, n, p, y);
  else mul_t<false>(a, b, b_bcast, n, p, y);
}


template <bool U8>
void rescale_t(const void* x, size_t n, const Q8RescaleParams& p, void* y) {
  if (p.copy) {
    const __m512i lo = _mm512_set1_epi8(static_cast<char>(p.lo)), hi = _mm512_set1_epi8(static_cast<char>(p.hi));
    for (size_t i = 0; i < n; i += 64) {
      const __mmask64 k = tail64(n - i);
      __m512i v = _mm512_maskz_loadu_epi8(k, at(x, i));
      v = U8 ? _mm512_min_epu8(_mm512_max_epu8(v, lo), hi) : _mm512_min_epi8(_mm512_max_epi8(v, lo), hi);
      _mm512_mask_storeu_epi8(at(y, i), k, v);
    }
    return;
  }
  const ZMult m(p.m);
  const ZOut out(p.zy, p.lo, p.hi);
  const __m512i zx = _mm512_set1_epi32(p.zx);
  rows16<U8>(n, y, [&](size_t j, __mmask16 k) {
    return out(term(load16<U8>(at(x, j), k), zx, m));
  });
}

void rescale_avx512(const void* x, size_t n, const Q8RescaleParams& p, void* y, bool u8) {
  if (u8) rescale_t<true>(x, n, p, y);
  else rescale_t<false>(x, n, p, y);
}

// vpsadbw against zero; int8 values biased by +128 (masked-off bytes stay 0 after the bias).
int64_t sum_avx512(const void* x, size_t n, bool u8) {
  const __m512i bias = _mm512_set1_epi8(u8 ? 0 : static_cast<char>(0x80));
  __m512i acc = _mm512_setzero_si512();
  for (size_t i = 0; i < n; i += 64) {
    const __mmask64 k = tail64(n - i);
    const __m512i v = _mm512_maskz_mov_epi8(k, _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, at(x, i)), bias));
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, _mm512_setzero_si512()));
  }
  return _mm512_reduce_add_epi64(acc) - (u8 ? 0 : 128 * static_cast<int64_t>(n));
}

void max_row_avx512(void* dst, const void* src, size_t n, bool u8) {
  for (size_t i = 0; i < n; i += 64) {
    const __mmask64 k = tail64(n - i);
    const __m512i a = _mm512_maskz_loadu_epi8(k, at(dst, i)), b = _mm512_maskz_loadu_epi8(k, at(src, i));
    _mm512_mask_storeu_epi8(at(dst, i), k, u8 ? _mm512_max_epu8(a, b) : _mm512_max_epi8(a, b));
  }
}

template <bool U8>
void acc_row_t(int32_t* acc, const void* x, size_t n, int32_t zp) {
  const __m512i z = _mm512_set1_epi32(zp);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(n - i);
    const __m512i d = _mm512_sub_epi32(load16<U8>(at(x, i), k), z);
    _mm512_mask_storeu_epi32(acc + i, k, _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, acc + i), d));
  }
}

void acc_row_avx512(int32_t* acc, const void* x, size_t n, int32_t zp, bool u8) {
  if (u8) acc_row_t<true>(acc, x, n, zp);
  else acc_row_t<false>(acc, x, n, zp);
}

// 64 bytes per step as 32 words (odd << 8 | even): vpmovwb narrows the words to their even
// bytes, and after a word shift right by 8 to their odd bytes.
void deinterleave2_avx512(const void* src, size_t n, void* even, void* odd) {
  for (size_t j = 0; j < n; j += 32) {
    const size_t m = n - j < 32 ? n - j : 32;  // pairs this step
    const __mmask64 k = tail64(2 * m);
    const __m512i w = _mm512_maskz_loadu_epi8(k, at(src, 2 * j));
    const __mmask32 k32 = m >= 32 ? ~__mmask32(0) : (__mmask32(1) << m) - 1;
    _mm256_mask_storeu_epi8(at(even, j), k32, _mm512_cvtepi16_epi8(w));
    _mm256_mask_storeu_epi8(at(odd, j), k32, _mm512_cvtepi16_epi8(_mm512_srli_epi16(w, 8)));
  }
}

// The empty asm keeps the product out of an FMA (q8_elementwise_avx2.cpp).
template <bool U8>
void favg_row_t(float* acc, const void* x, size_t n, float scale, int32_t zp) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i z = _mm512_set1_epi32(zp);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail16(n - i);
    __m512 p = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(load16<U8>(at(x, i), k), z)));
    __asm__("" : "+v"(p));
    _mm512_mask_storeu_ps(acc + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, acc + i), p));
  }
}

void favg_row_avx512(float* acc, const void* x, size_t n, float scale, int32_t zp, bool u8) {
  if (u8) favg_row_t<true>(acc, x, n, scale, zp);
  else favg_row_t<false>(acc, x, n, scale, zp);
}

const Q8ElemIsa kAvx512 = {"avx512",       add_avx512,     mul_avx512,           rescale_avx512, sum_avx512,
                           max_row_avx512, acc_row_avx512, deinterleave2_avx512, false,          favg_row_avx512};

}  // namespace

Status q8_elem_prepare_avx512(KernelContext& ctx) { return q8_elem_prepare(ctx, kAvx512); }

}  // namespace q8
}  // namespace mobrt
