// NEON (AArch64, armv8-a) instantiation of the vectorized kernels in f32/simd_ops.h.
#include <arm_neon.h>

#include "../f32/simd_ops.h"

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
  // vmaxq already propagates NaN: nothing to collect (the compiler drops the ORs).
  static T unord(T, T) { return vdupq_n_f32(0.f); }
  static T or_bits(T a, T b) { return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(a), vreinterpretq_u32_f32(b))); }
  static T max_nan(T a, T b) { return vmaxq_f32(a, b); }  // FMAX: NaN if either is NaN
  static T min_nan(T a, T b) { return vminq_f32(a, b); }
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

}  // namespace

extern const F32Kernels kF32Neon = make_f32_kernels<VecNeon>("neon", &kF32GemmNeon);

}  // namespace cpu
}  // namespace mobrt
