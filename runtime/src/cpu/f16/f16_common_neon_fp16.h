// Shared by the fp16 kernel files (included only by *_neon_fp16.cpp files, which are
// compiled with -march=armv8.2-a+fp16). Layouts:
//   A panel (weights, packed once at prepare): 8 output rows (conv output channels of one
//     group, Gemm output features) x K: a[k*8 + r] = W[row0 + r][k], 0 beyond the rows.
//   B panel (activations, packed per run into the thread's scratch): K x 16 columns
//     (conv output pixels, Gemm input rows): b[k*16 + c] = X[k][col0 + c], 0 beyond them.
#pragma once

#include <arm_neon.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/kernel.h"
#include "cpu/f16/f16_neon_fp16.h"

namespace mobrt {
namespace f16 {

constexpr int kMR = 8, kNR = 16;

void f16_gemm_ukernel_8x16(size_t k, const float16_t* a, const float16_t* b, float16_t* c);
void f16_gemv_ukernel_8(size_t k, const float16_t* a, const float16_t* x, float16_t* c);

// What prepare derives from attributes and constants.
struct State {
  std::vector<float16_t> packed;  // A panels (GEMM) or [channel][kh*kw] (depthwise), fp16
  std::vector<float> bias;        // float32, one per output channel / feature (beta*C for Gemm)
  Activation act;
  int64_t rows_per_group = 0;     // conv: output channels per group
  int64_t k = 0;                  // reduction length (conv: per group)
  int64_t n = 0;                  // Gemm/MatMul: output features
};
inline State* state_of(const KernelContext& ctx) { return static_cast<State*>(*ctx.state); }

inline bool is_f32(const TensorView& t) { return t.present() && t.dtype == DType::F32; }
inline bool is_const_f32(const TensorView& t) { return is_f32(t) && t.is_constant && t.data != nullptr; }

// fp16 holds finite values up to 65504: a finite weight (times `scale`, Gemm's alpha)
// beyond it would become inf, so such a node keeps the float32 kernels (inf/NaN weights
// stay what they are either way).
inline bool fits_fp16(const TensorView& w, float scale = 1.f) {
  const float* p = w.as<float>();
  for (int64_t i = 0, n = w.numel(); i < n; ++i)
    if (std::isfinite(p[i]) && !(std::fabs(p[i] * scale) <= 65504.f)) return false;
  return true;
}

// Scratch is split in one slice per pool thread, each 64-byte aligned.
inline size_t slice_bytes(size_t halfs) { return (halfs * sizeof(float16_t) + 63) & ~size_t(63); }

// Activations the vector store applies itself (NaN behaves as in Activation::apply:
// FMAX/FMIN propagate it); the others go through the scalar apply.
inline bool vector_act(const Activation& act) {
  using K = Activation::Kind;
  return act.kind == K::None || act.kind == K::Relu || act.kind == K::Clip || act.kind == K::HardSwish;
}

inline float32x4_t apply4(float32x4_t v, const Activation& act) {
  using K = Activation::Kind;
  switch (act.kind) {
    case K::Relu: return vmaxq_f32(v, vdupq_n_f32(0.f));
    case K::Clip: return vminq_f32(vmaxq_f32(v, vdupq_n_f32(act.a)), vdupq_n_f32(act.b));
    case K::HardSwish: {  // y * clamp(y / 6 + 0.5, 0, 1), the division as in the scalar form
      const float32x4_t t = vaddq_f32(vdivq_f32(v, vdupq_n_f32(6.f)), vdupq_n_f32(0.5f));
      return vmulq_f32(v, vminq_f32(vmaxq_f32(t, vdupq_n_f32(0.f)), vdupq_n_f32(1.f)));
    }
    default: return v;
  }
}

// y[0..n) = act(acc[0..n) + bias[0..n) + residual[0..n)) for n <= 8 fp16 sums, in
// float32; the bias lanes are (b0, b1).
// (The partial / scalar-activation case, out of line.)
__attribute__((noinline)) inline void store8_slow(float* y, float32x4_t lo, float32x4_t hi, const float* residual,
                                                  int64_t n, const Activation& act) {
  alignas(16) float t[8];
  vst1q_f32(t, lo);
  vst1q_f32(t + 4, hi);
  for (int64_t i = 0; i < n; ++i) y[i] = act.apply(residual != nullptr ? t[i] + residual[i] : t[i]);
}

__attribute__((always_inline)) inline void store8(float* y, float16x8_t acc, float32x4_t b0, float32x4_t b1,
                                                  const float* residual, int64_t n, const Activation& act) {
  float32x4_t lo = vaddq_f32(vcvt_f32_f16(vget_low_f16(acc)), b0);
  float32x4_t hi = vaddq_f32(vcvt_f32_f16(vget_high_f16(acc)), b1);
  if (n == 8 && vector_act(act)) {
    if (residual != nullptr) {
      lo = vaddq_f32(lo, vld1q_f32(residual));
      hi = vaddq_f32(hi, vld1q_f32(residual + 4));
    }
    vst1q_f32(y, apply4(lo, act));
    vst1q_f32(y + 4, apply4(hi, act));
    return;
  }
  store8_slow(y, lo, hi, residual, n, act);
}

}  // namespace f16
}  // namespace mobrt
