// dynamic_quant.h: dynamic-range int8 MatMul/Gemm/1x1 Conv (docs/quantization.md,
// "Dynamic-range int8"): float32 activations quantized per row at run time, an int8
// constant weight with symmetric parameters (zero points 0, per tensor or per output
// column), float32 output. The numpy oracle is mobconv/ops/dynamic_quant.py; every
// kernel (dynamic_quant.cpp's reference, cpu/int8/q8_dynamic_*) computes, bit for bit:
//
//   amax  = max_k |a[k]| (as the integer bits of |a|: NaN/inf rows are flagged)
//   inv   = float32(127 / amax); a row whose inv is not finite (amax = 0 or below
//           ~3.7e-37) quantizes to zeros with s_a = 0
//   q[k]  = clamp(round_half_to_even(float32(a[k] * inv)), -127, 127)
//   s_a   = float32(amax / 127)
//   acc   = sum_k q[k] * w[k][n]                        exact (K <= kMaxK)
//   y     = float32(float32(acc) * float32(s_a * s_w[n])) [+ bias[n], a separate
//           float32 addition: never fused]; then the fused Relu/Clip
//   a row holding NaN or +-inf: every output of the row is NaN.
//
// This header is portable (no intrinsics): the scalar pieces here are what the SIMD
// kernels vectorize.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/kernel.h"

namespace mobrt {
namespace dynq {

// 127 * 128 * K < 2^31: the int32 sum of products is exact.
constexpr int64_t kMaxK = 2147483647LL / (127 * 128);
constexpr uint32_t kAbsMask = 0x7fffffffu, kInfBits = 0x7f800000u;

static inline uint32_t abs_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u & kAbsMask;
}

static inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// From a row's max |a| bits: whether it is non-finite, its scale s_a and the factor
// inv (0 for a row quantizing to zeros).
struct RowScale {
  float s_a = 0.f;
  float inv = 0.f;
  bool nonfinite = false;
};

static inline RowScale row_scale(uint32_t amax_bits) {
  RowScale r;
  if (amax_bits >= kInfBits) {
    r.nonfinite = true;
    return r;
  }
  const float amax = from_bits(amax_bits);
  const float inv = 127.f / amax;
  if (!(inv <= FLT_MAX)) return r;  // amax == 0 or tiny: zeros, s_a = 0
  r.inv = inv;
  r.s_a = amax / 127.f;
  return r;
}

static inline int32_t quantize_value(float a, float inv) {
  float p = a * inv;
  p = std::nearbyint(p);  // ties to even (default rounding mode)
  p = p < -127.f ? -127.f : (p > 127.f ? 127.f : p);
  return static_cast<int32_t>(p);
}

// float32(acc) * float32(s_a * s_w): the product is stored on its own (volatile), so it
// cannot become half of a fused multiply-add with the bias addition that follows.
static inline float scaled(int32_t acc, float s_a, float s_w) {
  const float scale = s_a * s_w;
  volatile float v = static_cast<float>(acc) * scale;
  return v;
}

// Whether the node is the dynamic-range form: MatMul/Gemm/Conv with a float32 input 0
// without parameters and an int8 input 1 with parameters (dynamic_rules checks the rest).
bool is_dynamic_form(const KernelContext& ctx);

// The node's geometry and weight scales (checked: docs/quantization.md's rules).
struct DynGeom {
  int64_t rows = 0;  // R: every row of A (MatMul: all leading dims; Gemm: M; Conv: N * pixels)
  bool conv = false;   // a 1x1 Conv: row i is pixel i % pixels of image i / pixels (stride pixels)
  int64_t pixels = 1;  // Conv: the product of X's spatial dims
  int64_t k = 0, n = 0;
  bool trans_a = false, trans_b = false;  // Gemm only
  int axis = 1;                           // the weight's output-column axis
  const float* s_w = nullptr;             // weight scales
  int s_w_count = 1;                      // 1 (per tensor) or n
  Activation act;
};

// Refuses (UNSUPPORTED, naming the op and the rule) a node breaking the rules.
// Shapes of A may be unknown (supports/prepare): rows is then 0.
Status dynamic_rules(const KernelContext& ctx, DynGeom* g);

// The shape function of a dynamic-range node: the rules, then the float op's shape
// function `plain` on a float32 view of B.
Status infer_dynamic(KernelContext& ctx, Status (*plain)(KernelContext&));

// Registers the scalar reference kernels (MatMul, Gemm, Conv under {F32, I8}).
void register_dynamic_reference(KernelRegistry& r);

}  // namespace dynq
}  // namespace mobrt
