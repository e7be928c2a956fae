// quant_params.h: the rules of the quantized (int8/uint8) ops -- which parameters a
// node needs, the requantization multipliers and output ranges they give -- shared by
// the reference kernels (quant_ops.cpp) and, later, the fast int8 kernels, so every
// kernel of an op accepts the same models and computes with the same constants.
// Semantics: docs/quantization.md, mobconv/ops/quant_math.py. A rule returns an
// UNSUPPORTED status naming the operator and the rule when the node breaks it.
#pragma once

#include <string>
#include <vector>

#include "cpu/reference/quant_fixed_point.h"
#include "cpu/reference/quant_float_requant.h"
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace q8 {

using quant::Multiplier;

// ---- element access (int8 or uint8 storage as int64)

inline bool is_q8(DType d) { return d == DType::I8 || d == DType::U8; }

inline void qrange(DType d, int64_t* lo, int64_t* hi) {
  *lo = d == DType::I8 ? -128 : 0;
  *hi = d == DType::I8 ? 127 : 255;
}

inline int64_t zp_at(const QuantParams& q, int i) { return q.zero_points ? q.zero_points[i] : 0; }

inline int64_t load(const TensorView& v, int64_t i) {
  return v.dtype == DType::I8 ? static_cast<int64_t>(v.as<int8_t>()[i]) : static_cast<int64_t>(v.as<uint8_t>()[i]);
}

// An integer converted to the dtype as a C cast / numpy astype does (modulo 2^8).
inline int64_t wrap(int64_t x, DType d) {
  return d == DType::I8 ? static_cast<int64_t>(static_cast<int8_t>(x)) : static_cast<int64_t>(static_cast<uint8_t>(x));
}

inline void store(const TensorView& v, int64_t i, int64_t x) {
  if (v.dtype == DType::I8) v.as<int8_t>()[i] = static_cast<int8_t>(x);
  else v.as<uint8_t>()[i] = static_cast<uint8_t>(x);
}

// round(total / count) with ties away from zero, as integers.
inline int64_t rounded_mean(int64_t total, int64_t count) {
  int64_t half = total >= 0 ? count / 2 : -(count / 2);
  return (total + half) / count;  // truncates toward zero
}

// ---- what the rules compute

struct PerTensor {
  float scale = 1.f;
  int64_t zp = 0;
};

// Per-output-channel multipliers s_x * s_w[m] / s_y (double) and the output range;
// under the model's float32 rule (ctx.requantize_float32) the float32 scales instead.
struct OutRequant {
  std::vector<Multiplier> mult;
  std::vector<float> fscale;  // float32 rule: quant::float32_scale(s_x, s_w[m], s_y)
  bool float32 = false;
  int64_t zp = 0, lo = 0, hi = 0;
  // Output channel c's value of int32 accumulator acc.
  int64_t apply(int64_t acc, size_t c) const {
    if (float32) return quant::requantize_float32(acc, fscale[fscale.size() == 1 ? 0 : c], zp, lo, hi);
    return quant::requantize(acc, mult[mult.size() == 1 ? 0 : c], zp, lo, hi);
  }
};

struct BinaryQ {
  PerTensor a, b, y;
  Multiplier ma, mb, my;  // Add: input rescales and output; Mul: my only
  double twice_max = 0;
  int64_t lo = 0, hi = 0;
};

// quant_math.requantize_tensor: a copy when the parameters are equal, else
// zp_y + MBQM((q - zp) * 2^20, s / s_y / 2^20), saturated.
struct Rescale {
  bool copy = true;
  int64_t zp = 0, zp_y = 0, lo = 0, hi = 0;
  Multiplier m;
  int64_t apply(int64_t v) const {
    if (copy) return v;
    return quant::requantize((v - zp) * (int64_t(1) << quant::kAddLeftShift), m, zp_y, lo, hi);
  }
};

// ---- parameters

std::string op_name(const KernelContext& ctx);  // "Conv"

// ctx.error(rule) with status UNSUPPORTED: "op 'name' (Type): rule".
Status refuse(const KernelContext& ctx, const std::string& rule);

// Any input or output carries quantization parameters (the reference interpreter's rule).
bool node_quantized(const KernelContext& ctx);

// Scales finite and > 0; zero points within the tensor's dtype range (int8/uint8).
Status check_params(const KernelContext& ctx, const TensorView& v, const std::string& what);

// One scale and zero point (check_params'd); `what` names the tensor in the refusal.
Status per_tensor(const KernelContext& ctx, const TensorView& v, const std::string& what, PerTensor* out);

// quant_math._same_params: both per tensor, equal float32 scale and zero point.
bool same_params(const TensorView& a, const TensorView& b);

// v is int8 or uint8.
Status need_q8(const KernelContext& ctx, const TensorView& v, const std::string& what);

// quantize_multiplier(real); a multiplier of 2^31 or more is refused.
Status multiplier(const KernelContext& ctx, double real, Multiplier* m);

// The clamp range of an output with a fused activation (docs/quantization.md section 4).
Status activation_range(const KernelContext& ctx, const TensorView& y, int64_t* lo, int64_t* hi);

// Every present input (but `skip`) and every output carries parameters.
Status need_all_params(const KernelContext& ctx, int skip = -1);

// x - zp over the whole tensor, per tensor or per slice along `axis` (zp index i / inner % count).
std::vector<int32_t> zp_removed(const TensorView& v);

// The run-time error of an accumulator outside int32 (as the reference raises it).
Status overflow_error(const KernelContext& ctx);

// ---- the ops' rules (each fills what its kernels compute with)

// A weight quantized per tensor or per output channel along `axis` (`channels` scales).
Status weight_params(const KernelContext& ctx, const TensorView& w, int axis, int64_t channels, const char* what);

// Output 0's multipliers s_x * s_w[c] / s_y (one, or one per channel) and clamp range;
// the float32 scales instead when the model's rule is float32.
Status out_requant(const KernelContext& ctx, float s_x, const TensorView& w, int64_t channels, OutRequant* r);

// Conv: X/Y int8|uint8 per tensor, W per tensor or per output channel, int32 bias, no R.
Status conv_rules(KernelContext& ctx, PerTensor* x, OutRequant* r);

// MatMul / Gemm: B per tensor or per output column; Gemm: alpha = beta = 1, int32 C.
Status matmul_rules(KernelContext& ctx, bool gemm, PerTensor* a, OutRequant* r);

// Add / Mul: everything per tensor; the multipliers of section 5.
Status binary_rules(KernelContext& ctx, BinaryQ* q);

// The move of a tensor from parameters x to y (output dtype ydt).
Status rescale(const KernelContext& ctx, const PerTensor& x, const PerTensor& y, DType ydt, Rescale* r);

// Concat: one Rescale per input; Relu: the Rescale before max(., zp_y).
Status concat_rules(KernelContext& ctx, std::vector<Rescale>* rs);
Status relu_rules(KernelContext& ctx, Rescale* r);

// AveragePool / GlobalAveragePool: the output keeps X's parameters (and dtype); under
// the model's float32 rule the output may have other per-tensor parameters (*y).
Status avg_rules(KernelContext& ctx, PerTensor* x, PerTensor* y = nullptr);

// Resize: nearest or linear, no antialias, no tf_crop_and_resize.
Status resize_mode_rules(const KernelContext& ctx);

}  // namespace q8
}  // namespace ref
}  // namespace mobrt
