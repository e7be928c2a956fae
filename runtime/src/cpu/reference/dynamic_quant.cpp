// dynamic_quant.cpp: the rules, shape function and scalar reference kernel of
// dynamic-range int8 MatMul/Gemm (dynamic_quant.h; docs/quantization.md,
// "Dynamic-range int8"; oracle mobconv/ops/dynamic_quant.py), registered under
// (MatMul|Gemm, {F32, I8}, scalar). Optimized kernels: cpu/int8/q8_dynamic_*.
#include "cpu/reference/dynamic_quant.h"

#include <string>
#include <vector>

#include "cpu/reference/ref.h"

namespace mobrt {
namespace dynq {
namespace fb = ::mobconv::formats::fb;
namespace {

Status refuse(const KernelContext& ctx, const std::string& rule) {
  Status s = ctx.error(rule);
  s.code = StatusCode::kUnsupported;
  return s;
}

}  // namespace

namespace {
Status weight_and_activation(const KernelContext& ctx, const char* form, DynGeom* g);
Status conv_rules(const KernelContext& ctx, const char* form, DynGeom* g);
}  // namespace

bool is_dynamic_form(const KernelContext& ctx) {
  if (ctx.op_type != fb::OpType_MatMul && ctx.op_type != fb::OpType_Gemm && ctx.op_type != fb::OpType_Conv)
    return false;
  if (ctx.num_inputs < 2 || !ctx.inputs[0].present() || !ctx.inputs[1].present()) return false;
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  return a.dtype == DType::F32 && a.quant == nullptr && b.dtype == DType::I8 && b.quant != nullptr;
}

Status dynamic_rules(const KernelContext& ctx, DynGeom* g) {
  const bool gemm = ctx.op_type == fb::OpType_Gemm, conv = ctx.op_type == fb::OpType_Conv;
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const char* form = gemm   ? "a dynamic-range int8 Gemm"
                     : conv ? "a dynamic-range int8 Conv"
                            : "a dynamic-range int8 MatMul";
  for (int o = 0; o < ctx.num_outputs; ++o)
    if (ctx.outputs[o].quant)
      return refuse(ctx, std::string(form) + " needs a float32 output without quantization parameters");
  for (int i = 2; i < ctx.num_inputs && i < 3; ++i)
    if (ctx.inputs[i].present() && (ctx.inputs[i].quant || ctx.inputs[i].dtype != DType::F32))
      return refuse(ctx, std::string(form) + " needs a float32 bias C without quantization parameters");
  if (conv) return conv_rules(ctx, form, g);
  if (!b.is_constant || b.rank != 2)
    return refuse(ctx, std::string(form) + " needs a constant 2-D int8 weight B, got shape " + ref::shape_str(b));
  *g = DynGeom();
  if (gemm) {
    if (ctx.attrs->get_float("alpha", 1.f) != 1.f || ctx.attrs->get_float("beta", 1.f) != 1.f)
      return refuse(ctx, std::string(form) + " needs alpha = beta = 1");
    g->trans_a = ctx.attrs->get_int("transA", 0) != 0;
    g->trans_b = ctx.attrs->get_int("transB", 0) != 0;
    if (a.rank != 2) return refuse(ctx, std::string(form) + " needs a 2-D A, got shape " + ref::shape_str(a));
  } else if (a.rank < 1) {
    return refuse(ctx, std::string(form) + " needs A of rank >= 1");
  }
  g->axis = g->trans_b ? 0 : 1;
  g->n = b.dims[g->axis];
  g->k = b.dims[1 - g->axis];
  Status s = weight_and_activation(ctx, form, g);
  if (!s.ok()) return s;
  bool known = true;
  for (int i = 0; i < a.rank; ++i) known = known && a.dims[i] >= 0;
  if (known) {
    const int64_t ka = gemm ? (g->trans_a ? a.dims[0] : a.dims[1]) : a.dims[a.rank - 1];
    if (ka != g->k)
      return ctx.error("A " + ref::shape_str(a) + " and B " + ref::shape_str(b) + " do not multiply");
    g->rows = gemm ? (g->trans_a ? a.dims[1] : a.dims[0]) : 1;
    if (!gemm)
      for (int i = 0; i + 1 < a.rank; ++i) g->rows *= a.dims[i];
  }
  return Status::Ok();
}

namespace {

// The weight's parameters (zero points 0, per tensor or per output column on g->axis),
// K's limit and the fused activation: the rules every form shares.
Status weight_and_activation(const KernelContext& ctx, const char* form, DynGeom* g) {
  const TensorView& b = ctx.inputs[1];
  const QuantParams& q = *b.quant;
  for (int i = 0; i < q.count; ++i) {
    if (!(std::isfinite(q.scales[i]) && q.scales[i] > 0))
      return refuse(ctx, "B: scales must be finite and > 0, got " + std::to_string(q.scales[i]));
    if (q.zero_points && q.zero_points[i] != 0)
      return refuse(ctx, std::string(form) + " needs B quantized symmetrically (zero points 0), got zero point " +
                             std::to_string(q.zero_points[i]));
  }
  if (q.count != 1 && !(q.count == g->n && q.axis == g->axis))
    return refuse(ctx, std::string(form) + " needs B quantized per tensor or per output column (axis " +
                           std::to_string(g->axis) + ", " + std::to_string(g->n) + " scales), got " +
                           std::to_string(q.count) + " scales on axis " + std::to_string(q.axis));
  g->s_w = q.scales;
  g->s_w_count = q.count;
  if (g->k > kMaxK)
    return refuse(ctx, std::string(form) + " needs K <= " + std::to_string(kMaxK) + " (int32 accumulators), got " +
                           std::to_string(g->k));
  Status s = Activation::parse(*ctx.attrs, &g->act);
  if (!s.ok()) return refuse(ctx, s.message);
  if (g->act.kind != Activation::Kind::None && g->act.kind != Activation::Kind::Relu &&
      g->act.kind != Activation::Kind::Clip)
    return refuse(ctx, std::string(form) + " fuses Relu or Clip only");
  return Status::Ok();
}

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v)
    if (e != x) return false;
  return true;
}

// A 1x1 Conv: W [M, C, 1, ...] per tensor or per output channel (axis 0), stride 1, no
// padding, dilation 1, group 1, no residual input.
Status conv_rules(const KernelContext& ctx, const char* form, DynGeom* g) {
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  if (ctx.num_inputs > 3 && ctx.inputs[3].present())
    return refuse(ctx, std::string(form) + ": a fused residual input R is not defined");
  if (!w.is_constant || w.rank < 3)
    return refuse(ctx, std::string(form) + " needs a constant int8 weight W [M, C, 1, ...], got shape " +
                           ref::shape_str(w));
  bool ones = true;
  for (int i = 2; i < w.rank; ++i) ones = ones && w.dims[i] == 1;
  const Attrs& at = *ctx.attrs;
  if (!ones || !all_equal(at.get_ints("strides"), 1) || !all_equal(at.get_ints("dilations"), 1) ||
      !all_equal(at.get_ints("pads"), 0) || at.get_int("group", 1) != 1 || !all_equal(at.get_ints("kernel_shape"), 1))
    return refuse(ctx, std::string(form) + " is 1x1, stride 1, no padding, dilation 1, group 1");
  *g = DynGeom();
  g->conv = true;
  g->trans_b = true;  // W [M, C]: output column j is row j of W
  g->axis = 0;
  g->n = w.dims[0];
  g->k = w.dims[1];
  Status s = weight_and_activation(ctx, form, g);
  if (!s.ok()) return s;
  bool known = x.rank == w.rank;
  for (int i = 0; i < x.rank; ++i) known = known && x.dims[i] >= 0;
  if (known) {
    if (x.dims[1] != g->k)
      return ctx.error("X " + ref::shape_str(x) + " and W " + ref::shape_str(w) + " differ in channels");
    g->pixels = 1;
    for (int i = 2; i < x.rank; ++i) g->pixels *= x.dims[i];
    g->rows = x.dims[0] * g->pixels;
  }
  return Status::Ok();
}

}  // namespace

Status infer_dynamic(KernelContext& ctx, Status (*plain)(KernelContext&)) {
  DynGeom g;
  Status s = dynamic_rules(ctx, &g);
  if (!s.ok()) return s;
  std::vector<TensorView> in(ctx.inputs, ctx.inputs + ctx.num_inputs);
  in[1].dtype = DType::F32;  // the float op's shape rules, on a float view of B
  in[1].quant = nullptr;
  KernelContext c = ctx;
  c.inputs = in.data();
  s = plain(c);
  if (!s.ok()) return s;
  ctx.outputs[0].dtype = DType::F32;
  return Status::Ok();
}

namespace {

Status run_reference(KernelContext& ctx) {
  DynGeom g;
  Status s = dynamic_rules(ctx, &g);
  if (!s.ok()) return s;
  const bool gemm = ctx.op_type == fb::OpType_Gemm;
  const float* pa = ctx.inputs[0].as<float>();
  const int8_t* pw = ctx.inputs[1].as<int8_t>();
  float* py = ctx.outputs[0].as<float>();
  const int64_t r = g.rows, k = g.k, n = g.n;
  const bool has_c = gemm && ctx.num_inputs > 2 && ctx.inputs[2].present();
  const float* pc = has_c ? ctx.inputs[2].as<float>() : nullptr;
  const bool has_cb = g.conv && ctx.num_inputs > 2 && ctx.inputs[2].present();  // Conv bias [M]
  if (has_cb) pc = ctx.inputs[2].as<float>();
  ref::Shape cst = has_c ? ref::bcast_strides(ref::shape_of(ctx.inputs[2]), {r, n}) : ref::Shape{0, 1};
  const int64_t px = g.pixels;
  ctx.parallel_for(r, [&](int64_t r0, int64_t r1, int) {
    std::vector<int32_t> q(static_cast<size_t>(k));
    for (int64_t i = r0; i < r1; ++i) {
      // Conv: row i is pixel i % px of image i / px; its channel p at stride px
      auto a_at = [&](int64_t p) {
        if (g.conv) return pa[(i / px * k + p) * px + i % px];
        return g.trans_a ? pa[p * r + i] : pa[i * k + p];
      };
      auto y_at = [&](int64_t j) -> float& { return g.conv ? py[(i / px * n + j) * px + i % px] : py[i * n + j]; };
      uint32_t amax = 0;
      for (int64_t p = 0; p < k; ++p) {
        uint32_t u = abs_bits(a_at(p));
        amax = u > amax ? u : amax;
      }
      const RowScale rs = row_scale(amax);
      if (rs.nonfinite) {
        for (int64_t j = 0; j < n; ++j) y_at(j) = NAN;
        continue;
      }
      for (int64_t p = 0; p < k; ++p) q[p] = quantize_value(a_at(p), rs.inv);
      for (int64_t j = 0; j < n; ++j) {
        int64_t acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += static_cast<int64_t>(q[p]) * pw[g.trans_b ? j * k + p : p * n + j];
        float v = scaled(static_cast<int32_t>(acc), rs.s_a, g.s_w[g.s_w_count == 1 ? 0 : j]);
        if (pc) v = v + pc[has_cb ? j : i * cst[0] + j * cst[1]];
        y_at(j) = g.act.apply(v);
      }
    }
  });
  return Status::Ok();
}

}  // namespace

void register_dynamic_reference(KernelRegistry& r) {
  Kernel k;
  k.supports = [](const KernelContext& ctx) { return is_dynamic_form(ctx); };
  k.run = run_reference;
  k.name = "matmul_dynamic_q8_reference";
  r.add(fb::OpType_MatMul, KernelKey{DType::F32, DType::I8}, Isa::Scalar, k);
  k.name = "gemm_dynamic_q8_reference";
  r.add(fb::OpType_Gemm, KernelKey{DType::F32, DType::I8}, Isa::Scalar, k);
  k.name = "conv_dynamic_q8_reference";
  r.add(fb::OpType_Conv, KernelKey{DType::F32, DType::I8}, Isa::Scalar, k);
}

}  // namespace dynq
}  // namespace mobrt
