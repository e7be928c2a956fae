// activations.cpp: reference kernels for one-input element-wise ops
// (activations and math functions). Semantics: mobconv/ops/activations.py.
// float32 for all (float16/bfloat16: computed in float32, rounded once); Relu Abs Neg Sign also for int32/int64; Not for bool.
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

inline float softplus(float x) {  // log(1 + exp(x)) without overflow
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

float unary(OpType op, float x, float alpha, float beta, bool tanh_gelu) {
  switch (op) {
    case fb::OpType_Relu: return x > 0 ? x : (x == x ? 0.f : x);
    case fb::OpType_LeakyRelu: return x >= 0 ? x : x * alpha;
    case fb::OpType_Sigmoid: {
      float e = std::exp(-std::fabs(x));
      return x >= 0 ? 1.f / (1.f + e) : e / (1.f + e);
    }
    case fb::OpType_Tanh: return std::tanh(x);
    case fb::OpType_HardSigmoid: {  // comparisons, not std::min/max: NaN stays NaN
      const float t = x * alpha + beta;
      return t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
    }
    case fb::OpType_HardSwish: return x * std::min(1.f, std::max(0.f, x / 6.f + 0.5f));
    case fb::OpType_Elu: return x > 0 ? x : alpha * std::expm1(std::min(x, 0.f));
    case fb::OpType_Selu: return beta * (x > 0 ? x : alpha * std::expm1(std::min(x, 0.f)));
    case fb::OpType_Celu: return std::max(x, 0.f) + std::min(0.f, alpha * std::expm1(std::min(x, 0.f) / alpha));
    case fb::OpType_ThresholdedRelu: return x > alpha ? x : 0.f;
    case fb::OpType_Softplus: return softplus(x);
    case fb::OpType_Softsign: return x / (1.f + std::fabs(x));
    case fb::OpType_Mish: return x * std::tanh(softplus(x));
    case fb::OpType_Gelu:
      if (tanh_gelu) return 0.5f * x * (1.f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
      return static_cast<float>(0.5 * x * (1.0 + std::erf(x / 1.4142135623730951)));
    case fb::OpType_Erf: return static_cast<float>(std::erf(static_cast<double>(x)));
    case fb::OpType_Exp: return std::exp(x);
    case fb::OpType_Log: return std::log(x);
    case fb::OpType_Sqrt: return std::sqrt(x);
    case fb::OpType_Abs: return std::fabs(x);
    case fb::OpType_Neg: return -x;
    case fb::OpType_Reciprocal: return 1.f / x;
    case fb::OpType_Floor: return std::floor(x);
    case fb::OpType_Ceil: return std::ceil(x);
    case fb::OpType_Round: return std::nearbyint(x);  // default rounding mode: half to even
    case fb::OpType_Sign: return x > 0 ? 1.f : (x < 0 ? -1.f : x);
    case fb::OpType_Sin: return std::sin(x);
    case fb::OpType_Cos: return std::cos(x);
    default: return x;
  }
}

bool int_ok(OpType op) {
  return op == fb::OpType_Relu || op == fb::OpType_Abs || op == fb::OpType_Neg || op == fb::OpType_Sign;
}

Status infer_unary(KernelContext& ctx) {
  DType dt = ctx.inputs[0].dtype;
  if (ctx.op_type == fb::OpType_Not) {
    Status s = need_dtype(ctx, 0, {DType::BOOL});
    if (!s.ok()) return s;
  } else if (!(dt == DType::F32 || is_half(dt) || (int_ok(ctx.op_type) && is_int(dt)))) {
    return ctx.error(std::string("unsupported input dtype ") + dtype_name(dt));
  }
  if (ctx.op_type == fb::OpType_Gelu) {
    std::string a = ctx.attrs->get_string("approximate", "none");
    if (a != "none" && a != "tanh") return ctx.error("approximate must be 'none' or 'tanh', got '" + a + "'");
  }
  return infer_same(ctx);
}

template <typename T>
void run_int(OpType op, const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i];
    switch (op) {
      case fb::OpType_Relu: y[i] = v > 0 ? v : 0; break;
      case fb::OpType_Abs: y[i] = v < 0 ? T(0 - static_cast<typename std::make_unsigned<T>::type>(v)) : v; break;
      case fb::OpType_Neg: y[i] = T(0 - static_cast<typename std::make_unsigned<T>::type>(v)); break;
      case fb::OpType_Sign: y[i] = v > 0 ? 1 : (v < 0 ? -1 : 0); break;
      default: y[i] = v;
    }
  }
}

Status run_unary(KernelContext& ctx) {
  const TensorView& in = ctx.inputs[0];
  int64_t n = in.numel();
  OpType op = ctx.op_type;
  if (op == fb::OpType_Not) {
    const bool* x = in.as<bool>();
    bool* y = ctx.outputs[0].as<bool>();
    for (int64_t i = 0; i < n; ++i) y[i] = !x[i];
    return Status::Ok();
  }
  if (in.dtype == DType::I32) { run_int(op, in.as<int32_t>(), ctx.outputs[0].as<int32_t>(), n); return Status::Ok(); }
  if (in.dtype == DType::I64) { run_int(op, in.as<int64_t>(), ctx.outputs[0].as<int64_t>(), n); return Status::Ok(); }
  float alpha = 0.f, beta = 0.f;
  switch (op) {
    case fb::OpType_LeakyRelu: alpha = ctx.attrs->get_float("alpha", 0.01f); break;
    case fb::OpType_HardSigmoid:
      alpha = ctx.attrs->get_float("alpha", 0.2f);
      beta = ctx.attrs->get_float("beta", 0.5f);
      break;
    case fb::OpType_Elu: case fb::OpType_Celu: case fb::OpType_ThresholdedRelu:
      alpha = ctx.attrs->get_float("alpha", 1.0f);
      break;
    case fb::OpType_Selu:
      alpha = ctx.attrs->get_float("alpha", 1.6732631921768188f);
      beta = ctx.attrs->get_float("gamma", 1.0507010221481323f);
      break;
    default: break;
  }
  bool tanh_gelu = op == fb::OpType_Gelu && ctx.attrs->get_string("approximate", "none") == "tanh";
  if (in.dtype == DType::F16 || in.dtype == DType::BF16) {  // computed in float32, rounded once
    const uint16_t* x = in.as<uint16_t>();
    uint16_t* y = ctx.outputs[0].as<uint16_t>();
    bool h = in.dtype == DType::F16;
    for (int64_t i = 0; i < n; ++i) {
      float v = unary(op, h ? half_to_float(x[i]) : bf16_bits_to_float(x[i]), alpha, beta, tanh_gelu);
      y[i] = h ? float_to_half_bits(v) : float_to_bf16_bits(v);
    }
    return Status::Ok();
  }
  const float* x = in.as<float>();
  float* y = ctx.outputs[0].as<float>();
  ctx.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) y[i] = unary(op, x[i], alpha, beta, tanh_gelu);
  });
  return Status::Ok();
}

}  // namespace

void register_activations(KernelRegistry& r) {
  const OpType ops[] = {
      fb::OpType_Relu, fb::OpType_LeakyRelu, fb::OpType_Sigmoid, fb::OpType_Tanh, fb::OpType_HardSigmoid,
      fb::OpType_HardSwish, fb::OpType_Elu, fb::OpType_Selu, fb::OpType_Celu, fb::OpType_ThresholdedRelu,
      fb::OpType_Softplus, fb::OpType_Softsign, fb::OpType_Mish, fb::OpType_Gelu, fb::OpType_Erf, fb::OpType_Exp,
      fb::OpType_Log, fb::OpType_Sqrt, fb::OpType_Abs, fb::OpType_Neg, fb::OpType_Reciprocal, fb::OpType_Floor,
      fb::OpType_Ceil, fb::OpType_Round, fb::OpType_Sign, fb::OpType_Sin, fb::OpType_Cos, fb::OpType_Not};
  for (OpType op : ops) reg(r, op, DType::Any, "unary_reference", infer_unary, run_unary);
}

}  // namespace ref
}  // namespace mobrt
