// q8_dynamic_neon.h: NEON pieces shared by the aarch64 dynamic-range int8 kernels
// (q8_dynamic_neon.cpp, q8_dynamic_neon_dot.cpp): the row's max |a| bits, its int8
// quantization and the float output. Included only by aarch64 files.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "cpu/int8/q8_dynamic.h"

namespace mobrt {
namespace q8 {
namespace {

inline uint32_t dyn_amax_bits_neon(const float* a, size_t k) {
  const uint32x4_t mask = vdupq_n_u32(0x7fffffffu);
  uint32x4_t m = vdupq_n_u32(0);
  size_t i = 0;
  for (; i + 4 <= k; i += 4) m = vmaxq_u32(m, vandq_u32(vreinterpretq_u32_f32(vld1q_f32(a + i)), mask));
  uint32_t r = vmaxvq_u32(m);
  for (; i < k; ++i) {
    const uint32_t u = dynq::abs_bits(a[i]);
    r = u > r ? u : r;
  }
  return r;
}

// q = clamp(round_half_to_even(a * inv), -127, 127) as int8 (fcvtns: ties to even).
inline void dyn_quantize_neon(const float* a, size_t k, float inv, int8_t* q) {
  const float32x4_t vinv = vdupq_n_f32(inv);
  const int32x4_t lo = vdupq_n_s32(-127), hi = vdupq_n_s32(127);
  size_t i = 0;
  for (; i + 8 <= k; i += 8) {
    int32x4_t v0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(a + i), vinv));
    int32x4_t v1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(a + i + 4), vinv));
    v0 = vminq_s32(vmaxq_s32(v0, lo), hi);
    v1 = vminq_s32(vmaxq_s32(v1, lo), hi);
    const int16x8_t h = vcombine_s16(vmovn_s32(v0), vmovn_s32(v1));
    vst1_s8(q + i, vmovn_s16(h));
  }
  for (; i < k; ++i) q[i] = static_cast<int8_t>(dyn_quantize_value(a[i], inv));
}

// y = act(float32(float32(acc) * float32(s_a * s_w)) [+ bias]); an empty asm keeps the
// product out of a fused multiply-add (GCC contracts across intrinsics on aarch64).
template <class Self>
inline void dyn_finish_neon(const int32_t* acc, const int32_t* comp, size_t n, float s_a, const float* s_w,
                            const float* bias, const Activation& act, float* y) {
  const float32x4_t sa = vdupq_n_f32(s_a);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(vld1q_s32(acc + j)), vmulq_f32(sa, vld1q_f32(s_w + j)));
    if (bias) {
      __asm__("" : "+w"(v));
      v = vaddq_f32(v, vld1q_f32(bias + j));
    }
    if (act.kind == Activation::Kind::Relu) {
      v = vmaxq_f32(vdupq_n_f32(0.f), v);  // fmax: NaN stays NaN
    } else if (act.kind == Activation::Kind::Clip) {
      v = vminq_f32(vdupq_n_f32(act.b), vmaxq_f32(vdupq_n_f32(act.a), v));
    }
    vst1q_f32(y + j, v);
  }
  dyn_finish_scalar(acc, comp, j, n, s_a, s_w, bias, act, y);
}

}  // namespace
}  // namespace q8
}  // namespace mobrt
