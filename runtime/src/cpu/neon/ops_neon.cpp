// NEON (AArch64, armv8-a) instantiation of the vectorized kernels in gemm/simd_ops.h.
#include <arm_neon.h>

#include "../gemm/simd_ops.h"

namespace mobrt {
namespace cpu {
namespace {

struct VecNeon {
  using T = float32x4_t;
  static constexpr size_t N = 4;
  static T zero() { return vdupq_n_f32(0.f); }
  static T set1(float v) { return vdupq_n_f32(v); }
  static T load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, T v) { vst1q_f32(p, v); }
  static T add(T a, T b) { return vaddq_f32(a, b); }
  static T sub(T a, T b) { return vsubq_f32(a, b); }
  static T mul(T a, T b) { return vmulq_f32(a, b); }
  static T div(T a, T b) { return vdivq_f32(a, b); }
  static T max(T a, T b) { return vmaxq_f32(a, b); }
  static T min(T a, T b) { return vminq_f32(a, b); }
  static T fma(T a, T b, T c) { return vfmaq_f32(c, a, b); }
  static T floor(T a) { return vrndmq_f32(a); }
  static T pow2i(T n) {
    int32x4_t i = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(i, 23));
  }
  static float hsum(T v) { return vaddvq_f32(v); }
  static float hmax(T v) { return vmaxvq_f32(v); }
  static void load_even_odd(const float* p, T& e, T& o) {
    const float32x4x2_t v = vld2q_f32(p);
    e = v.val[0];
    o = v.val[1];
  }
};

// Depthwise 3x3 plane kernels (stride 2 whole plane, stride 1 narrow rows), reading the
// input in place. NEON has no masked loads, so each 4-output block checks whether all
// the input columns its full-vector loads touch lie inside the row; if so it loads
// straight from the input, otherwise (the border blocks only) it gathers those columns
// into an 8/12-float stack buffer with zeros outside the row. Rows outside the input are
// skipped. The partial last block of a row is stored through a stack buffer.
inline void store_tail(float* y, float32x4_t v, int64_t n) {
  if (n >= 4) return vst1q_f32(y, v);
  float t[4];
  vst1q_f32(t, v);
  for (int64_t j = 0; j < n; ++j) y[j] = t[j];
}

// Loads of blocks past the end of the row (computed, not stored).
alignas(64) const float kZeros[32] = {};

// Columns c0 .. c0 + n - 1 of row r into t (zeros outside 0 .. iw - 1).
inline const float* gather_cols(const float* r, int64_t iw, int64_t c0, int n, float* t) {
  for (int j = 0; j < n; ++j) {
    const int64_t c = c0 + j;
    t[j] = c >= 0 && c < iw ? r[c] : 0.f;
  }
  return t;
}

// Stride 2: outputs ox .. ox + 3 read columns c0 = 2 ox - pl .. c0 + 8: vld2q splits
// c0 .. c0 + 7 into even (tap 0) and odd (tap 1) columns; tap 2 is the even vector
// shifted by one lane with column c0 + 8 shifted in.
void dw3x3s2_plane_neon(const float* x, int64_t ih, int64_t iw, int64_t pt, int64_t pl,
                        int64_t s, const float* w, float bias, float* y, int64_t oh, int64_t ow,
                        float lo, float hi) {
  if (s != 2) return;  // the driver checks
  const float32x4_t vb = vdupq_n_f32(bias), vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  float32x4_t k[9];
  for (int t = 0; t < 9; ++t) k[t] = vdupq_n_f32(w[t]);
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
    for (int64_t ox0 = 0; ox0 < ow; ox0 += 16) {
      // Four blocks at a time: independent accumulators hide the FMA latency.
      float32x4_t acc[4] = {vb, vb, vb, vb};
      for (int r = 0; r < nr; ++r) {
        const int ky = kys[r];
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) {
          const int64_t ox = ox0 + 4 * u, c0 = 2 * ox - pl;
          float t[13];
          const float* p = ox >= ow ? kZeros
                         : c0 >= 0 && c0 + 9 <= iw ? rows[r] + c0
                                                   : gather_cols(rows[r], iw, c0, 9, t);
          const float32x4x2_t eo = vld2q_f32(p);
          const float32x4_t e2 = vextq_f32(eo.val[0], vld1q_dup_f32(p + 8), 1);
          acc[u] = vfmaq_f32(acc[u], eo.val[0], k[3 * ky]);
          acc[u] = vfmaq_f32(acc[u], eo.val[1], k[3 * ky + 1]);
          acc[u] = vfmaq_f32(acc[u], e2, k[3 * ky + 2]);
        }
      }
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        const int64_t ox = ox0 + 4 * u;
        if (ox < ow) store_tail(yr + ox, vminq_f32(vhi, vmaxq_f32(vlo, acc[u])), ow - ox);
      }
    }
  }
}

// Stride 1: outputs ox .. ox + 3 read columns c0 = ox - pl .. c0 + 5 as three
// overlapping full-vector loads (taps 0, 1, 2).
void dw3x3s1_narrow_neon(const float* x, int64_t ih, int64_t iw, int64_t pt, int64_t pl,
                         int64_t s, const float* w, float bias, float* y, int64_t oh, int64_t ow,
                         float lo, float hi) {
  if (s != 1) return;  // the driver checks
  const float32x4_t vb = vdupq_n_f32(bias), vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  float32x4_t k[9];
  for (int t = 0; t < 9; ++t) k[t] = vdupq_n_f32(w[t]);
  for (int64_t oy = 0; oy < oh; ++oy) {
    const float* rows[3];
    int kys[3], nr = 0;
    for (int ky = 0; ky < 3; ++ky) {
      const int64_t iy = oy - pt + ky;
      if (iy < 0 || iy >= ih) continue;
      rows[nr] = x + iy * iw;
      kys[nr++] = ky;
    }
    float* yr = y + oy * ow;
    for (int64_t ox0 = 0; ox0 < ow; ox0 += 16) {
      // Four blocks at a time: independent accumulators hide the FMA latency.
      float32x4_t acc[4] = {vb, vb, vb, vb};
      for (int r = 0; r < nr; ++r) {
        const int ky = kys[r];
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) {
          const int64_t ox = ox0 + 4 * u, c0 = ox - pl;
          float t[10];
          const float* p = ox >= ow ? kZeros
                         : c0 >= 0 && c0 + 6 <= iw ? rows[r] + c0
                                                   : gather_cols(rows[r], iw, c0, 6, t);
          acc[u] = vfmaq_f32(acc[u], vld1q_f32(p), k[3 * ky]);
          acc[u] = vfmaq_f32(acc[u], vld1q_f32(p + 1), k[3 * ky + 1]);
          acc[u] = vfmaq_f32(acc[u], vld1q_f32(p + 2), k[3 * ky + 2]);
        }
      }
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        const int64_t ox = ox0 + 4 * u;
        if (ox < ow) store_tail(yr + ox, vminq_f32(vhi, vmaxq_f32(vlo, acc[u])), ow - ox);
      }
    }
  }
}

constexpr IsaKernels make_neon_ops() {
  IsaKernels k = make_isa_ops<VecNeon>(SimdIsa::kNeon);
  k.dwconv3x3s2_plane = &dw3x3s2_plane_neon;
  k.dwconv3x3s1_narrow = &dw3x3s1_narrow_neon;
  return k;
}

}  // namespace

extern const IsaKernels kOpsNeon = make_neon_ops();

}  // namespace cpu
}  // namespace mobrt
