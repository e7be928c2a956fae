// matrix.cpp: reference Trilu, EyeLike and OneHot (ONNX opset 28;
// specification: mobconv/ops/matrix.py). All three move or fill whole
// elements, so they work for every dtype.
#include "cpu/reference/dtype_dispatch.h"

namespace mobrt {
namespace ref {
namespace {

// ---- Trilu: keep j - i >= k (upper) or j - i <= k (lower) of the last two dims.
Status infer_trilu(KernelContext& ctx) {
  if (ctx.inputs[0].rank < 2) return ctx.error("input " + shape_str(ctx.inputs[0]) + " must have rank >= 2");
  Status s = need_dtype(ctx, 1, {DType::I64, DType::I32});
  if (!s.ok()) return s;
  return infer_same(ctx);
}

Status run_trilu(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  int64_t k = 0;
  if (ctx.num_inputs > 1 && ctx.inputs[1].present() && ctx.inputs[1].numel() > 0) {
    Shape kv;
    Status s = int_values(ctx, 1, &kv, "k");
    if (!s.ok()) return s;
    k = kv[0];
  }
  const bool upper = ctx.attrs->get_int("upper", 1) != 0;
  const int64_t rows = x.dims[x.rank - 2], cols = x.dims[x.rank - 1];
  const int64_t mats = rows * cols ? x.numel() / (rows * cols) : 0;
  const size_t es = dtype_size(x.dtype);
  const uint8_t* src = x.as<uint8_t>();
  uint8_t* dst = y.as<uint8_t>();
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        size_t off = static_cast<size_t>((m * rows + i) * cols + j) * es;
        bool keep = upper ? j - i >= k : j - i <= k;
        if (keep) std::memmove(dst + off, src + off, es);
        else std::memset(dst + off, 0, es);  // zero bits are 0 in every dtype
      }
  return Status::Ok();
}

// ---- EyeLike: ones on diagonal k, dtype from the ONNX enum (0 = input's).
Status eye_dtype(const KernelContext& ctx, DType* out) {
  int64_t d = ctx.attrs->get_int("dtype", 0);
  switch (d) {
    case 0: *out = ctx.inputs[0].dtype; return Status::Ok();
    case 1: *out = DType::F32; return Status::Ok();
    case 2: *out = DType::U8; return Status::Ok();
    case 3: *out = DType::I8; return Status::Ok();
    case 5: *out = DType::I16; return Status::Ok();
    case 6: *out = DType::I32; return Status::Ok();
    case 7: *out = DType::I64; return Status::Ok();
    case 9: *out = DType::BOOL; return Status::Ok();
    case 10: *out = DType::F16; return Status::Ok();
    case 16: *out = DType::BF16; return Status::Ok();
    default: return ctx.error("dtype " + std::to_string(d) + " is not a supported ONNX dtype");
  }
}

Status infer_eyelike(KernelContext& ctx) {
  if (ctx.inputs[0].rank != 2) return ctx.error("input " + shape_str(ctx.inputs[0]) + " must be 2-D");
  DType dt;
  Status s = eye_dtype(ctx, &dt);
  if (!s.ok()) return s;
  return set_out(ctx, 0, dt, shape_of(ctx.inputs[0]));
}

Status run_eyelike(KernelContext& ctx) {
  TensorView& y = ctx.outputs[0];
  const int64_t rows = y.dims[0], cols = y.dims[1], k = ctx.attrs->get_int("k", 0);
  if (y.numel() == 0) return Status::Ok();  // (an empty output has no buffer: data may be null)
  std::memset(y.data, 0, static_cast<size_t>(y.numel()) * dtype_size(y.dtype));
  bool ok = dispatch_dtype(y.dtype, [&](auto s) {
    using S = decltype(s);
    S one = Elem<S>::store(static_cast<typename Elem<S>::C>(1));
    for (int64_t i = 0; i < rows; ++i)
      if (i + k >= 0 && i + k < cols) y.as<S>()[i * cols + i + k] = one;
  });
  return ok ? Status::Ok() : ctx.error("unsupported output dtype");
}

// ---- OneHot: a new dim of size depth at axis; values = [off, on].
Status onehot_depth(const KernelContext& ctx, int64_t* depth) {
  const TensorView& d = ctx.inputs[1];
  if (d.numel() != 1) return ctx.error("depth (input 1) must be a scalar");
  if (!d.data) return value_at_run_time(ctx, 1, "depth");
  bool ok = dispatch_dtype(d.dtype, [](auto) {});
  if (!ok || d.dtype == DType::BOOL) return ctx.error("depth must be numeric");
  double v = value_as_double(d, 0);
  if (!(v >= 1) || v > 1e9) return ctx.error("depth " + std::to_string(v) + " must be in [1, 1e9]");
  *depth = static_cast<int64_t>(v);
  return Status::Ok();
}

Status infer_onehot(KernelContext& ctx) {
  int64_t depth;
  Status s = onehot_depth(ctx, &depth);
  if (!s.ok()) return s;
  const TensorView &ind = ctx.inputs[0], &vals = ctx.inputs[2];
  if (!dispatch_dtype(ind.dtype, [](auto) {}) || ind.dtype == DType::BOOL) return ctx.error("indices must be numeric");
  if (vals.numel() != 2) return ctx.error("values " + shape_str(vals) + " must hold 2 elements [off, on]");
  int axis;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", -1), ind.rank + 1, &axis);
  if (!s.ok()) return s;
  Shape out = shape_of(ind);
  out.insert(out.begin() + axis, depth);
  return set_out(ctx, 0, vals.dtype, out);
}

Status run_onehot(KernelContext& ctx) {
  int64_t depth;
  onehot_depth(ctx, &depth);
  const TensorView &ind = ctx.inputs[0], &vals = ctx.inputs[2];
  TensorView& y = ctx.outputs[0];
  int axis;
  norm_axis(ctx, ctx.attrs->get_int("axis", -1), ind.rank + 1, &axis);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= ind.dims[d];
  for (int d = axis; d < ind.rank; ++d) inner *= ind.dims[d];
  const size_t es = dtype_size(vals.dtype);
  const uint8_t *off = vals.as<uint8_t>(), *on = off + es;
  uint8_t* dst = y.as<uint8_t>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < depth; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        double v = std::trunc(value_as_double(ind, o * inner + i));
        int64_t idx = static_cast<int64_t>(v < 0 ? v + depth : v);
        std::memcpy(dst + static_cast<size_t>((o * depth + j) * inner + i) * es, idx == j ? on : off, es);
      }
  return Status::Ok();
}

}  // namespace

void register_matrix(KernelRegistry& r) {
  reg(r, fb::OpType_Trilu, DType::Any, "trilu_reference", infer_trilu, run_trilu);
  reg(r, fb::OpType_EyeLike, DType::Any, "eyelike_reference", infer_eyelike, run_eyelike);
  reg(r, fb::OpType_OneHot, DType::Any, "onehot_reference", infer_onehot, run_onehot);
}

}  // namespace ref
}  // namespace mobrt
