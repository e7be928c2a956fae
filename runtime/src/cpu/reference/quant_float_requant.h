// quant_float_requant.h: the "float32" requantization rule of int8 ops
// (docs/quantization.md section 2), the arithmetic of onnxruntime (MLAS
// MlasRequantizeOutput), PyTorch fbgemm/qnnpack and XNNPACK, used by models whose
// metadata says quantization.requantize = float32 (imported ONNX QDQ/QOperator
// models). mobconv/ops/quant_math.py (float32_scales, requantize_float32) computes
// the same, bit for bit:
//
//   scale[c] = float32(float32(s_x * s_w[c]) / s_y)       two float32 roundings, this order
//   v        = float32(acc) * scale[c]                    acc: the int32 sum incl. the bias
//   v        = min(max(v, float32(lo - zp)), float32(hi - zp))
//   y        = round_half_to_even(v) + zp
//
// Every step is one IEEE binary32 operation: no multiply is followed by an add
// (so no contraction into an FMA can change a result; the clamp separates the
// product from the rounding), and rounding is std::nearbyint in the default
// rounding mode (to nearest, ties to even), as MLAS's magic-number addition.
// Where a product IS summed (AveragePool's dequantized taps), it goes through
// rounded_product, which no compiler can fuse into the addition (GCC contracts
// across statements by default on aarch64: -ffp-contract=fast).
#pragma once

#include <cmath>
#include <cstdint>

namespace mobrt {
namespace quant {

// float32(a * b), rounded on its own: the volatile store ends the expression, so
// the product cannot become half of a fused multiply-add.
inline float rounded_product(float a, float b) {
  volatile float p = a * b;
  return p;
}

inline float float32_scale(float s_x, float s_w, float s_y) {
  const float p = s_x * s_w;
  return p / s_y;
}

// acc must hold an int32 value; scale finite and >= 0.
inline int64_t requantize_float32(int64_t acc, float scale, int64_t zp, int64_t lo, int64_t hi) {
  float v = static_cast<float>(static_cast<int32_t>(acc)) * scale;
  const float flo = static_cast<float>(lo - zp), fhi = static_cast<float>(hi - zp);
  v = v < flo ? flo : v;
  v = v > fhi ? fhi : v;
  return static_cast<int64_t>(std::nearbyint(v)) + zp;
}

}  // namespace quant
}  // namespace mobrt
