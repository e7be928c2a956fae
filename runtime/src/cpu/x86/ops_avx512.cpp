// AVX-512F instantiation of the vectorized kernels in f32/simd_ops.h (16 lanes): the
// kF32Avx512 table. Compiled with AVX-512 flags; reached only through the kernels
// register_f32_avx512.cpp registers (the CPU has AVX-512).
// GCC 12 reports false "uninitialized" warnings inside its own avx512fintrin.h.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "../f32/simd_ops.h"

namespace mobrt {
namespace cpu {
namespace {

struct VecAvx512 {
  using T = __m512;
  static constexpr size_t N = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float v) { return _mm512_set1_ps(v); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T unord(T a, T b) {
    return _mm512_castsi512_ps(_mm512_maskz_set1_epi32(_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), -1));
  }
  static T or_bits(T a, T b) { return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))); }
  // NaN when either is NaN: maxps returns b when unordered, so put a back where a is NaN.
  static T max_nan(T a, T b) { return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a); }
  static T min_nan(T a, T b) { return _mm512_mask_mov_ps(_mm512_min_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T floor(T a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static T pow2i(T n) {
    __m512i i = _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(i, 23));
  }
  static float hsum(T v) { return _mm512_reduce_add_ps(v); }
  static float hmax(T v) { return _mm512_reduce_max_ps(v); }
  static void load_even_odd(const float* p, T& e, T& o) {
    const __m512 lo = _mm512_loadu_ps(p), hi = _mm512_loadu_ps(p + 16);
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    e = _mm512_permutex2var_ps(lo, ie, hi);
    o = _mm512_permutex2var_ps(lo, io, hi);
  }
};

// Lanes [a, b) of a 32-lane mask (clipped to 0..32).
inline uint32_t lane_range(int64_t a, int64_t b) {
  a = a < 0 ? 0 : (a > 32 ? 32 : a);
  b = b < 0 ? 0 : (b > 32 ? 32 : b);
  if (b <= a) return 0;
  const uint64_t m = ((uint64_t(1) << b) - 1) & ~((uint64_t(1) << a) - 1);
  return uint32_t(m);
}

// Whole-plane depthwise 3x3, stride 2: vectorized along output columns in chunks of 15
// (so all three taps of a chunk lie in two 16-lane loads, deinterleaved by permutes),
// reading the input in place with masked loads (masked-off lanes are never accessed, so
// padding costs nothing and no padded copy is made). Rows outside the input are skipped.
void dw3x3s2_plane_avx512(const float* x, int64_t ih, int64_t iw, int64_t pt, int64_t pl,
                          int64_t s, const float* w, float bias, float* y, int64_t oh,
                          int64_t ow, float lo, float hi) {
  constexpr int kMaxChunks = 32;
  constexpr int64_t kStep = 15;
  const int64_t chunks = (ow + kStep - 1) / kStep;
  if (s != 2 || chunks > kMaxChunks) return;  // the driver checks both
  // Per chunk: masks of the two 16-lane loads at the chunk's first input column, and of
  // the output store.
  __mmask16 m0[kMaxChunks], m1[kMaxChunks], ms[kMaxChunks];
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * kStep, cnt = ow - c0 < kStep ? ow - c0 : kStep;
    ms[c] = __mmask16(lane_range(0, cnt));
    // lane i of the pair reads column 2*c0 - pl + i; lanes up to 2*(cnt-1)+2 are used
    const uint32_t r = lane_range(pl - 2 * c0, iw + pl - 2 * c0) & lane_range(0, 2 * cnt + 1);
    m0[c] = __mmask16(r & 0xffff);
    m1[c] = __mmask16(r >> 16);
  }
  const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  __m512 k[9];
  for (int t = 0; t < 9; ++t) k[t] = _mm512_set1_ps(w[t]);
  const __m512i i0 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(1));
  const __m512i i2 = _mm512_add_epi32(i0, _mm512_set1_epi32(2));
  for (int64_t oy = 0; oy < oh; ++oy) {
    const float* rows[3];
    int kys[3], nr = 0;
    for (int ky = 0; ky < 3; ++ky) {
      const int64_t iy = oy * 2 - pt + ky;
      if (iy < 0 || iy >= ih) continue;
      rows[nr] = x + iy * iw;
      kys[nr++] = ky;
    }
    float* yr = y + oy * ow;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t c0 = c * kStep;
      __m512 acc = vb;
      for (int r = 0; r < nr; ++r) {
        const int ky = kys[r];
        const float* p = rows[r] + 2 * c0 - pl;
        const __m512 a = _mm512_maskz_loadu_ps(m0[c], p);
        const __m512 b = _mm512_maskz_loadu_ps(m1[c], p + 16);
        acc = _mm512_fmadd_ps(_mm512_permutex2var_ps(a, i0, b), k[3 * ky], acc);
        acc = _mm512_fmadd_ps(_mm512_permutex2var_ps(a, i1, b), k[3 * ky + 1], acc);
        acc = _mm512_fmadd_ps(_mm512_permutex2var_ps(a, i2, b), k[3 * ky + 2], acc);
      }
      _mm512_mask_storeu_ps(yr + c0, ms[c], _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc)));
    }
  }
}

// Lanes [a, b) of a 16-lane mask for vector v of a row (lanes 16v .. 16v + 15).
inline __mmask16 lane_range_v(int64_t a, int64_t b, int v) {
  return __mmask16(lane_range(a - 16 * v, b - 16 * v) & 0xffff);
}

// Depthwise 3x3, stride 1, rows of at most NV vectors (iw + pl <= 16 NV, ow + 2 <= 16 NV):
// each input row is NV masked loads (lane j = column j - pl, zeros outside the row), the
// kx = 1, 2 taps are those vectors shifted down by one and two lanes (valignd across
// neighbours), so the plane is read in place with no padded copy.
template <int NV>
void dw3x3s1_rows(const float* x, int64_t ih, int64_t iw, int64_t pt, int64_t pl, const float* w,
                  float bias, float* y, int64_t oh, int64_t ow, float lo, float hi) {
  __mmask16 ml[NV], ms[NV];
  for (int v = 0; v < NV; ++v) {
    ml[v] = lane_range_v(pl, pl + iw, v);
    ms[v] = lane_range_v(0, ow, v);
  }
  const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  __m512 k[9];
  for (int t = 0; t < 9; ++t) k[t] = _mm512_set1_ps(w[t]);
  for (int64_t oy = 0; oy < oh; ++oy) {
    __m512 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = vb;
    for (int ky = 0; ky < 3; ++ky) {
      const int64_t iy = oy - pt + ky;
      if (iy < 0 || iy >= ih) continue;
      __m512i r[NV + 1];
      for (int v = 0; v < NV; ++v)
        r[v] = _mm512_castps_si512(_mm512_maskz_loadu_ps(ml[v], x + iy * iw - pl + 16 * v));
      r[NV] = _mm512_setzero_si512();
      for (int v = 0; v < NV; ++v) {
        const __m512 v1 = _mm512_castsi512_ps(_mm512_alignr_epi32(r[v + 1], r[v], 1));
        const __m512 v2 = _mm512_castsi512_ps(_mm512_alignr_epi32(r[v + 1], r[v], 2));
        acc[v] = _mm512_fmadd_ps(_mm512_castsi512_ps(r[v]), k[3 * ky], acc[v]);
        acc[v] = _mm512_fmadd_ps(v1, k[3 * ky + 1], acc[v]);
        acc[v] = _mm512_fmadd_ps(v2, k[3 * ky + 2], acc[v]);
      }
    }
    for (int v = 0; v < NV; ++v)
      _mm512_mask_storeu_ps(y + oy * ow + 16 * v, ms[v], _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc[v])));
  }
}

// Stride-1 plane kernel for rows up to 8 vectors (iw + pl <= 128, ow + 2 <= 128).
void dw3x3s1_narrow_avx512(const float* x, int64_t ih, int64_t iw, int64_t pt, int64_t pl,
                           int64_t s, const float* w, float bias, float* y, int64_t oh,
                           int64_t ow, float lo, float hi) {
  const int64_t lanes = iw + pl > ow + 2 ? iw + pl : ow + 2;
  if (s != 1 || lanes > 128) return;  // the driver checks
  if (lanes <= 16) return dw3x3s1_rows<1>(x, ih, iw, pt, pl, w, bias, y, oh, ow, lo, hi);
  if (lanes <= 32) return dw3x3s1_rows<2>(x, ih, iw, pt, pl, w, bias, y, oh, ow, lo, hi);
  if (lanes <= 64) return dw3x3s1_rows<4>(x, ih, iw, pt, pl, w, bias, y, oh, ow, lo, hi);
  dw3x3s1_rows<8>(x, ih, iw, pt, pl, w, bias, y, oh, ow, lo, hi);
}

constexpr F32Kernels make_avx512_kernels() {
  F32Kernels k = make_f32_kernels<VecAvx512>("avx512", &kF32GemmAvx512);
  k.dwconv3x3s2_plane = &dw3x3s2_plane_avx512;
  k.dwconv3x3s1_narrow = &dw3x3s1_narrow_avx512;
  return k;
}

}  // namespace

extern const F32Kernels kF32Avx512 = make_avx512_kernels();

}  // namespace cpu
}  // namespace mobrt
