// q8_quantize_neon.cpp: the NEON (armv8.0) rows of QuantizeLinear / DequantizeLinear
// (q8_quantize.h), 16 elements per step. fdiv per lane; fmaxnm returns the number when the
// other operand is a quiet NaN (a quotient is never a signalling NaN): NaN -> lo - zp;
// fcvtns rounds half to even; the clamped int32 lanes narrow exactly.
#include <arm_neon.h>

#include "cpu/int8/q8_quantize.h"

namespace mobrt {
namespace q8 {

namespace {

inline int32x4_t quantize4(const float* x, float32x4_t vs, float32x4_t vlo, float32x4_t vhi, int32x4_t vzp) {
  const float32x4_t c = vminnmq_f32(vmaxnmq_f32(vdivq_f32(vld1q_f32(x), vs), vlo), vhi);
  return vaddq_s32(vcvtnq_s32_f32(c), vzp);
}

void quantize_row_neon(const float* x, size_t n, float scale, int32_t zp, void* y, bool u8) {
  const int32_t lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
  const float32x4_t vs = vdupq_n_f32(scale);
  const float32x4_t vlo = vdupq_n_f32(static_cast<float>(lo - zp));
  const float32x4_t vhi = vdupq_n_f32(static_cast<float>(hi - zp));
  const int32x4_t vzp = vdupq_n_s32(zp);
  uint8_t* out = static_cast<uint8_t*>(y);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const int16x8_t ab = vcombine_s16(vmovn_s32(quantize4(x + i, vs, vlo, vhi, vzp)),
                                      vmovn_s32(quantize4(x + i + 4, vs, vlo, vhi, vzp)));
    const int16x8_t cd = vcombine_s16(vmovn_s32(quantize4(x + i + 8, vs, vlo, vhi, vzp)),
                                      vmovn_s32(quantize4(x + i + 12, vs, vlo, vhi, vzp)));
    // every lane is in [lo, hi]: keeping the low byte is exact for int8 and uint8
    vst1q_u8(out + i, vcombine_u8(vmovn_u16(vreinterpretq_u16_s16(ab)), vmovn_u16(vreinterpretq_u16_s16(cd))));
  }
  for (; i + 8 <= n; i += 8) {
    const int16x8_t ab = vcombine_s16(vmovn_s32(quantize4(x + i, vs, vlo, vhi, vzp)),
                                      vmovn_s32(quantize4(x + i + 4, vs, vlo, vhi, vzp)));
    vst1_u8(out + i, vmovn_u16(vreinterpretq_u16_s16(ab)));
  }
  if (i < n) kQ8QuantizeScalar.quantize(x + i, n - i, scale, zp, out + i, u8);
}

inline void dequantize8(int16x8_t v, float32x4_t vs, int32x4_t vzp, float* y) {
  const int32x4_t l = vsubq_s32(vmovl_s16(vget_low_s16(v)), vzp);
  const int32x4_t h = vsubq_s32(vmovl_s16(vget_high_s16(v)), vzp);
  vst1q_f32(y, vmulq_f32(vcvtq_f32_s32(l), vs));
  vst1q_f32(y + 4, vmulq_f32(vcvtq_f32_s32(h), vs));
}

inline int16x8_t widen8(uint8x8_t b, bool u8) {
  return u8 ? vreinterpretq_s16_u16(vmovl_u8(b)) : vmovl_s8(vreinterpret_s8_u8(b));
}

void dequantize_row_neon(const void* x, size_t n, float scale, int32_t zp, float* y, bool u8) {
  const float32x4_t vs = vdupq_n_f32(scale);
  const int32x4_t vzp = vdupq_n_s32(zp);
  const uint8_t* in = static_cast<const uint8_t*>(x);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const uint8x16_t b = vld1q_u8(in + i);
    dequantize8(widen8(vget_low_u8(b), u8), vs, vzp, y + i);
    dequantize8(widen8(vget_high_u8(b), u8), vs, vzp, y + i + 8);
  }
  for (; i + 8 <= n; i += 8) dequantize8(widen8(vld1_u8(in + i), u8), vs, vzp, y + i);
  if (i < n) kQ8QuantizeScalar.dequantize(in + i, n - i, scale, zp, y + i, u8);
}

void dequantize_i32_row_neon(const int32_t* x, size_t n, float scale, int32_t zp, float* y) {
  const float32x4_t vs = vdupq_n_f32(scale);
  const int32x4_t vzp = vdupq_n_s32(zp);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vcvtq_f32_s32(vsubq_s32(vld1q_s32(x + i), vzp)), vs));  // wraps
  if (i < n) kQ8QuantizeScalar.dequantize_i32(x + i, n - i, scale, zp, y + i);
}

const Q8QuantizeIsa kNeon = {quantize_row_neon, dequantize_row_neon, dequantize_i32_row_neon};

}  // namespace

Status q8_quantize_prepare_neon(KernelContext& ctx) {
  *ctx.state = const_cast<Q8QuantizeIsa*>(&kNeon);
  return Status::Ok();
}

}  // namespace q8
}  // namespace mobrt
