// Shared by the fp16 kernel files (included only by *_neon_fp16.cpp files, which are
// compiled with -march=armv8.2-a+fp16): the output store. Internal linkage (anonymous
// namespace), so no copy of these is shared with code compiled for other ISAs.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "core/kernel.h"
#include "cpu/f16/f16_kernels.h"

namespace mobrt {
namespace f16 {
namespace {

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
__attribute__((noinline)) void store8_slow(float* y, float32x4_t lo, float32x4_t hi, const float* residual,
                                           int64_t n, const Activation& act) {
  alignas(16) float t[8];
  vst1q_f32(t, lo);
  vst1q_f32(t + 4, hi);
  store_scalar(y, t, residual, n, act);
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

}  // namespace
}  // namespace f16
}  // namespace mobrt
