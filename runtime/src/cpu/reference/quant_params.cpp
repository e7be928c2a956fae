// quant_params.cpp: the rules of the quantized ops (quant_params.h).
#include "cpu/reference/quant_params.h"

namespace mobrt {
namespace ref {
namespace q8 {

std::string op_name(const KernelContext& ctx) { return fb::EnumNameOpType(ctx.op_type); }

Status refuse(const KernelContext& ctx, const std::string& rule) {
  Status s = ctx.error(rule);
  s.code = StatusCode::kUnsupported;
  return s;
}

bool node_quantized(const KernelContext& ctx) {
  for (int i = 0; i < ctx.num_inputs; ++i)
    if (ctx.inputs[i].present() && ctx.inputs[i].quant) return true;
  for (int o = 0; o < ctx.num_outputs; ++o)
    if (ctx.outputs[o].quant) return true;
  return false;
}

// Scales finite and > 0; zero points within the tensor's dtype range (int8/uint8).
Status check_params(const KernelContext& ctx, const TensorView& v, const std::string& what) {
  const QuantParams& q = *v.quant;
  for (int i = 0; i < q.count; ++i) {
    float s = q.scales[i];
    if (!(std::isfinite(s) && s > 0))
      return refuse(ctx, what + ": scales must be finite and > 0, got " + std::to_string(s));
    if (is_q8(v.dtype)) {
      int64_t lo, hi;
      qrange(v.dtype, &lo, &hi);
      int64_t z = zp_at(q, i);
      if (z < lo || z > hi)
        return refuse(ctx, what + ": zero point " + std::to_string(z) + " is outside the " + dtype_name(v.dtype) +
                               " range");
    }
  }
  return Status::Ok();
}

Status per_tensor(const KernelContext& ctx, const TensorView& v, const std::string& what, PerTensor* out) {
  if (!v.quant) return refuse(ctx, what + " has no quantization parameters");
  if (v.quant->count != 1)
    return refuse(ctx, what + " must be quantized per tensor, got " + std::to_string(v.quant->count) + " scales");
  Status s = check_params(ctx, v, what);
  if (!s.ok()) return s;
  out->scale = v.quant->scales[0];
  out->zp = zp_at(*v.quant, 0);
  return Status::Ok();
}

// quant_math._same_params: both per tensor, equal float32 scale and zero point.
bool same_params(const TensorView& a, const TensorView& b) {
  if (!a.quant || !b.quant || a.quant->count != 1 || b.quant->count != 1) return false;
  return a.quant->scales[0] == b.quant->scales[0] && zp_at(*a.quant, 0) == zp_at(*b.quant, 0);
}

Status need_q8(const KernelContext& ctx, const TensorView& v, const std::string& what) {
  if (!is_q8(v.dtype))
    return refuse(ctx, "a quantized " + op_name(ctx) + " needs " + what + " int8 or uint8, got " + dtype_name(v.dtype));
  return Status::Ok();
}

Status multiplier(const KernelContext& ctx, double real, Multiplier* m) {
  quant::MultiplierError e = quant::quantize_multiplier(real, m);
  if (e == quant::MultiplierError::kOk) return Status::Ok();
  return refuse(ctx, "requantization multiplier " + std::to_string(real) +
                         (e == quant::MultiplierError::kTooLarge ? " is too large (must be < 2^31)"
                                                                : " must be a finite number >= 0"));
}

// The clamp range of an output with a fused activation (docs/quantization.md section 4).
Status activation_range(const KernelContext& ctx, const TensorView& y, int64_t* lo, int64_t* hi) {
  qrange(y.dtype, lo, hi);
  std::string name = ctx.attrs->get_string("activation");
  if (name.empty()) return Status::Ok();
  Activation act;
  Status s = Activation::parse(*ctx.attrs, &act);
  if (!s.ok()) return ctx.error(s.message);
  const float scale = y.quant->scales[0];
  const int64_t zp = zp_at(*y.quant, 0);
  if (act.kind == Activation::Kind::Relu) {
    *lo = std::max(*lo, zp);
    return Status::Ok();
  }
  if (act.kind == Activation::Kind::Clip) {
    int64_t dlo = *lo, dhi = *hi;
    int64_t qa = std::isinf(act.a) ? dlo : quant::quantize_value(act.a, scale, zp, dlo, dhi);
    int64_t qb = std::isinf(act.b) ? dhi : quant::quantize_value(act.b, scale, zp, dlo, dhi);
    *lo = std::max(dlo, qa);
    *hi = std::min(dhi, qb);
    return Status::Ok();
  }
  return refuse(ctx, "fused activation '" + name +
                         "' cannot be fused into a quantized output (only Relu and Clip can; others run dequantized)");
}

// Every present input (but `skip`) and every output carries parameters.
Status need_all_params(const KernelContext& ctx, int skip) {
  std::string missing;
  for (int i = 0; i < ctx.num_inputs; ++i)
    if (i != skip && ctx.inputs[i].present() && !ctx.inputs[i].quant)
      missing += (missing.empty() ? "" : ", ") + std::to_string(i);
  bool out_missing = false;
  for (int o = 0; o < ctx.num_outputs; ++o)
    if (ctx.outputs[o].rank >= 0 && !ctx.outputs[o].quant) out_missing = true;
  if (missing.empty() && !out_missing) return Status::Ok();
  return refuse(ctx, "a quantized " + op_name(ctx) +
                         " needs quantization parameters on every input and output (missing on " +
                         (missing.empty() ? std::string("an output") : "input " + missing) + ")");
}

// x - zp over the whole tensor, per tensor or per slice along `axis` (zp index i / inner % count).
std::vector<int32_t> zp_removed(const TensorView& v) {
  const int64_t n = v.numel();
  std::vector<int32_t> r(static_cast<size_t>(n));
  const QuantParams& q = *v.quant;
  int64_t inner = 1;
  if (q.count > 1)
    for (int d = q.axis + 1; d < v.rank; ++d) inner *= v.dims[d];
  for (int64_t i = 0; i < n; ++i) {
    int64_t z = q.count > 1 ? zp_at(q, static_cast<int>(i / inner % q.count)) : zp_at(q, 0);
    r[static_cast<size_t>(i)] = static_cast<int32_t>(load(v, i) - z);
  }
  return r;
}

Status overflow_error(const KernelContext& ctx) {
  return ctx.error("int32 accumulator overflow: the sum of products does not fit in 32 bits");
}

Status weight_params(const KernelContext& ctx, const TensorView& w, int axis, int64_t channels, const char* what) {
  if (!w.quant) return refuse(ctx, std::string(what) + " has no quantization parameters");
  Status s = check_params(ctx, w, what);
  if (!s.ok()) return s;
  if (w.quant->count != 1 && (w.quant->axis != axis || w.quant->count != channels))
    return refuse(ctx, std::string(what) + " must be quantized per tensor or per output channel (axis " +
                           std::to_string(axis) + ", " + std::to_string(channels) + " scales), got " +
                           std::to_string(w.quant->count) + " scales on axis " + std::to_string(w.quant->axis));
  return Status::Ok();
}

Status out_requant(const KernelContext& ctx, float s_x, const TensorView& w, int64_t channels, OutRequant* r) {
  PerTensor y;
  Status s = per_tensor(ctx, ctx.outputs[0], "Y", &y);
  if (!s.ok()) return s;
  r->zp = y.zp;
  s = activation_range(ctx, ctx.outputs[0], &r->lo, &r->hi);
  if (!s.ok()) return s;
  const size_t count = static_cast<size_t>(w.quant->count == 1 ? 1 : channels);
  if (ctx.requantize_float32) {
    r->float32 = true;
    r->fscale.resize(count);
    for (size_t c = 0; c < count; ++c) {
      r->fscale[c] = quant::float32_scale(s_x, w.quant->scales[c], y.scale);
      if (!(std::isfinite(r->fscale[c]) && r->fscale[c] >= 0))
        return refuse(ctx, "requantization scale " + std::to_string(r->fscale[c]) + " must be a finite number >= 0");
    }
    return Status::Ok();
  }
  r->mult.resize(count);
  for (size_t c = 0; c < r->mult.size(); ++c) {
    double real = static_cast<double>(s_x) * static_cast<double>(w.quant->scales[c]) / static_cast<double>(y.scale);
    s = multiplier(ctx, real, &r->mult[c]);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status conv_rules(KernelContext& ctx, PerTensor* x, OutRequant* r) {
  Status s = need_all_params(ctx, 2);
  if (!s.ok()) return s;
  if (ctx.num_inputs > 3 && ctx.inputs[3].present())
    return refuse(ctx, "a fused residual input R is not defined for a quantized Conv");
  s = need_q8(ctx, ctx.inputs[0], "X");
  if (s.ok()) s = need_q8(ctx, ctx.inputs[1], "W");
  if (s.ok()) s = need_q8(ctx, ctx.outputs[0], "its output");
  if (!s.ok()) return s;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && ctx.inputs[2].dtype != DType::I32)
    return refuse(ctx, std::string("a quantized Conv needs an int32 bias, got ") + dtype_name(ctx.inputs[2].dtype));
  const TensorView& w = ctx.inputs[1];
  s = per_tensor(ctx, ctx.inputs[0], "X", x);
  if (s.ok()) s = weight_params(ctx, w, 0, w.rank > 0 ? w.dims[0] : 0, "W");
  if (s.ok()) s = out_requant(ctx, x->scale, w, w.rank > 0 ? w.dims[0] : 0, r);
  return s;
}

Status matmul_rules(KernelContext& ctx, bool gemm, PerTensor* a, OutRequant* r) {
  Status s = need_all_params(ctx, gemm ? 2 : -1);
  if (!s.ok()) return s;
  s = need_q8(ctx, ctx.inputs[0], "A");
  if (s.ok()) s = need_q8(ctx, ctx.inputs[1], "B");
  if (s.ok()) s = need_q8(ctx, ctx.outputs[0], "its output");
  if (!s.ok()) return s;
  const TensorView& b = ctx.inputs[1];
  int axis;
  int64_t n;
  if (gemm) {
    if (ctx.attrs->get_float("alpha", 1.f) != 1.f || ctx.attrs->get_float("beta", 1.f) != 1.f)
      return refuse(ctx, "a quantized Gemm needs alpha = beta = 1 (fold them into the scales)");
    bool tb = ctx.attrs->get_int("transB", 0) != 0;
    axis = tb ? 0 : 1;
    n = b.dims[axis];
    if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
      const TensorView& c = ctx.inputs[2];
      if (c.dtype != DType::I32)
        return refuse(ctx, std::string("a quantized Gemm needs an int32 bias C, got ") + dtype_name(c.dtype));
      if (c.numel() != n && c.numel() != 1)
        return refuse(ctx, "a quantized Gemm needs C with one int32 value per output column (" + std::to_string(n) +
                               ") or one value, got shape " + shape_str(c));
    }
  } else {
    if (b.rank < 2 && b.quant && b.quant->count > 1)
      return refuse(ctx, "B of a quantized MatMul is 1-D: it must be quantized per tensor");
    axis = b.rank - 1;
    n = b.rank >= 1 ? b.dims[b.rank - 1] : 1;
  }
  s = per_tensor(ctx, ctx.inputs[0], "A", a);
  if (s.ok()) s = weight_params(ctx, b, axis, n, "B");
  if (s.ok()) s = out_requant(ctx, a->scale, b, n, r);
  return s;
}

Status binary_rules(KernelContext& ctx, BinaryQ* q) {
  Status s = need_all_params(ctx);
  if (s.ok()) s = need_q8(ctx, ctx.inputs[0], "A");
  if (s.ok()) s = need_q8(ctx, ctx.inputs[1], "B");
  if (s.ok()) s = need_q8(ctx, ctx.outputs[0], "its output");
  const std::string op = op_name(ctx);
  if (s.ok()) s = per_tensor(ctx, ctx.inputs[0], op + " A", &q->a);
  if (s.ok()) s = per_tensor(ctx, ctx.inputs[1], op + " B", &q->b);
  if (s.ok()) s = per_tensor(ctx, ctx.outputs[0], op + " Y", &q->y);
  if (!s.ok()) return s;
  qrange(ctx.outputs[0].dtype, &q->lo, &q->hi);
  const double sa = q->a.scale, sb = q->b.scale, sy = q->y.scale;
  if (ctx.op_type == fb::OpType_Add) {
    q->twice_max = 2.0 * std::max(sa, sb);
    s = multiplier(ctx, sa / q->twice_max, &q->ma);
    if (s.ok()) s = multiplier(ctx, sb / q->twice_max, &q->mb);
    if (s.ok()) s = multiplier(ctx, q->twice_max / (static_cast<double>(1 << quant::kAddLeftShift) * sy), &q->my);
    return s;
  }
  return multiplier(ctx, sa * sb / sy, &q->my);
}

Status rescale(const KernelContext& ctx, const PerTensor& x, const PerTensor& y, DType ydt, Rescale* r) {
  r->copy = x.scale == y.scale && x.zp == y.zp;
  r->zp = x.zp;
  r->zp_y = y.zp;
  qrange(ydt, &r->lo, &r->hi);
  if (r->copy) return Status::Ok();
  double real = static_cast<double>(x.scale) / static_cast<double>(y.scale) /
                static_cast<double>(1 << quant::kAddLeftShift);
  return multiplier(ctx, real, &r->m);
}

Status concat_rules(KernelContext& ctx, std::vector<Rescale>* rs) {
  Status s = need_all_params(ctx);
  if (s.ok()) s = need_q8(ctx, ctx.outputs[0], "its output");
  PerTensor y;
  if (s.ok()) s = per_tensor(ctx, ctx.outputs[0], "output", &y);
  if (!s.ok()) return s;
  rs->resize(static_cast<size_t>(ctx.num_inputs));
  for (int i = 0; i < ctx.num_inputs; ++i) {
    PerTensor x;
    s = need_q8(ctx, ctx.inputs[i], "every input");
    if (s.ok()) s = per_tensor(ctx, ctx.inputs[i], "input " + std::to_string(i), &x);
    if (s.ok()) s = rescale(ctx, x, y, ctx.outputs[0].dtype, &(*rs)[i]);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status relu_rules(KernelContext& ctx, Rescale* r) {
  Status s = need_all_params(ctx);
  if (s.ok()) s = need_q8(ctx, ctx.inputs[0], "X");
  if (s.ok()) s = need_q8(ctx, ctx.outputs[0], "its output");
  PerTensor x, y;
  if (s.ok()) s = per_tensor(ctx, ctx.inputs[0], "Relu X", &x);
  if (s.ok()) s = per_tensor(ctx, ctx.outputs[0], "Relu Y", &y);
  if (s.ok()) s = rescale(ctx, x, y, ctx.outputs[0].dtype, r);
  return s;
}

// AveragePool / GlobalAveragePool: the output keeps X's parameters (and dtype).
Status avg_rules(KernelContext& ctx, PerTensor* x, PerTensor* y) {
  Status s = need_all_params(ctx);
  if (s.ok()) s = need_q8(ctx, ctx.inputs[0], "X");
  if (s.ok()) s = per_tensor(ctx, ctx.inputs[0], op_name(ctx) + " X", x);
  if (!s.ok()) return s;
  const bool other_ok = ctx.requantize_float32 && ctx.outputs[0].quant && ctx.outputs[0].quant->count == 1;
  if ((!same_params(ctx.inputs[0], ctx.outputs[0]) && !other_ok) || ctx.outputs[0].dtype != ctx.inputs[0].dtype)
    return refuse(ctx, "a quantized " + op_name(ctx) +
                           " must keep its input's dtype and per-tensor quantization parameters on its output "
                           "(other output parameters need the float32 requantization rule)");
  PerTensor out;
  s = per_tensor(ctx, ctx.outputs[0], op_name(ctx) + " Y", &out);
  if (s.ok() && y) *y = out;
  return s;
}

Status resize_mode_rules(const KernelContext& ctx) {
  const Attrs& a = *ctx.attrs;
  std::string mode = a.get_string("mode", "nearest");
  if (mode == "cubic" || a.get_int("antialias", 0) != 0 ||
      a.get_string("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize")
    return refuse(ctx, "a quantized Resize is defined for modes nearest and linear without antialias or "
                       "tf_crop_and_resize");
  return Status::Ok();
}

}  // namespace q8
}  // namespace ref
}  // namespace mobrt
