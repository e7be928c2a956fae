// scatter.cpp: reference ScatterND and ScatterElements (ONNX opset 18;
// specification: mobconv/ops/scatter.py). Both copy data to the output, then
// apply the updates in order, combining with `reduction` (none, add, mul,
// max, min) in the compute type (float16/bfloat16 in float32, rounded back
// per update). Negative indices count from the end; out of range is an error.
#include "cpu/reference/dtype_dispatch.h"

namespace mobrt {
namespace ref {
namespace {

enum class Red { None, Add, Mul, Max, Min };

Status parse_reduction(const KernelContext& ctx, Red* r) {
  std::string s = ctx.attrs->get_string("reduction", "none");
  if (s == "none") *r = Red::None;
  else if (s == "add") *r = Red::Add;
  else if (s == "mul") *r = Red::Mul;
  else if (s == "max") *r = Red::Max;
  else if (s == "min") *r = Red::Min;
  else return ctx.error("reduction '" + s + "' is not one of none, add, mul, max, min");
  return Status::Ok();
}

template <typename S>
inline void combine(S* dst, const S* src, int64_t n, Red r) {
  using E = Elem<S>;
  for (int64_t i = 0; i < n; ++i) {
    auto a = E::load(dst[i]), b = E::load(src[i]);
    switch (r) {
      case Red::None: a = b; break;
      case Red::Add: a = a + b; break;
      case Red::Mul: a = a * b; break;
      case Red::Max: a = b != b ? b : std::max(a, b); break;  // NaN wins either side (np.maximum)
      case Red::Min: a = b != b ? b : std::min(a, b); break;
    }
    dst[i] = E::store(static_cast<typename E::C>(a));
  }
}

inline int64_t index_at(const TensorView& t, int64_t i) {
  return t.dtype == DType::I64 ? t.as<int64_t>()[i] : t.as<int32_t>()[i];
}

Status check_common(const KernelContext& ctx, Red* r) {
  Status s = parse_reduction(ctx, r);
  if (s.ok()) s = need_dtype(ctx, 1, {DType::I64, DType::I32});
  if (s.ok() && ctx.inputs[2].dtype != ctx.inputs[0].dtype) s = ctx.error("updates must have the data's dtype");
  if (s.ok() && *r != Red::None && ctx.inputs[0].dtype == DType::BOOL)
    s = ctx.error("reduction needs a numeric dtype, got bool");
  if (s.ok() && *r != Red::None) {
    bool ok = dispatch_dtype(ctx.inputs[0].dtype, [](auto) {});
    if (!ok) s = ctx.error(std::string("unsupported dtype ") + dtype_name(ctx.inputs[0].dtype));
  }
  return s;
}

void copy_data(KernelContext& ctx) {
  size_t n = static_cast<size_t>(ctx.inputs[0].numel()) * dtype_size(ctx.inputs[0].dtype);
  if (n && ctx.outputs[0].data != ctx.inputs[0].data) std::memmove(ctx.outputs[0].data, ctx.inputs[0].data, n);
}

void apply(const TensorView& upd, int64_t src, TensorView& y, int64_t dst, int64_t n, Red r) {
  size_t es = dtype_size(y.dtype);
  if (r == Red::None) {
    std::memcpy(y.as<uint8_t>() + dst * es, upd.as<uint8_t>() + src * es, static_cast<size_t>(n) * es);
    return;
  }
  dispatch_dtype(y.dtype, [&](auto s) {
    using S = decltype(s);
    combine<S>(y.as<S>() + dst, upd.as<S>() + src, n, r);
  });
}

// ---- ScatterND: indices (..., k) address data[:k]; each update is a data[k:] slice.
Status infer_scatter_nd(KernelContext& ctx) {
  Red r;
  Status s = check_common(ctx, &r);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &ind = ctx.inputs[1], &upd = ctx.inputs[2];
  if (ind.rank < 1) return ctx.error("indices must have rank >= 1");
  int64_t k = ind.dims[ind.rank - 1];
  if (k > x.rank) return ctx.error("indices' last dim " + std::to_string(k) + " exceeds the data rank " + std::to_string(x.rank));
  Shape want(ind.dims, ind.dims + ind.rank - 1);
  for (int d = static_cast<int>(k); d < x.rank; ++d) want.push_back(x.dims[d]);
  if (shape_of(upd) != want)
    return ctx.error("updates " + shape_str(upd) + " must have shape indices[:-1] + data[k:] = " + shape_str(want));
  int64_t rows = numel(Shape(ind.dims, ind.dims + ind.rank - 1));
  for (int64_t a = 0; a < k && rows != 0; ++a)
    if (x.dims[a] == 0)
      return ctx.error("indices " + shape_str(ind) + " index data " + shape_str(x) +
                       " in an empty dim (every index would be out of range)");
  return set_out(ctx, 0, x.dtype, shape_of(x));
}

Status run_scatter_nd(KernelContext& ctx) {
  Red r;
  parse_reduction(ctx, &r);
  const TensorView &x = ctx.inputs[0], &ind = ctx.inputs[1], &upd = ctx.inputs[2];
  TensorView& y = ctx.outputs[0];
  copy_data(ctx);
  const int64_t k = ind.dims[ind.rank - 1];
  const Shape st = row_major_strides(shape_of(x));
  int64_t slice = 1;
  for (int d = static_cast<int>(k); d < x.rank; ++d) slice *= x.dims[d];
  const int64_t rows = k ? ind.numel() / k : numel(Shape(ind.dims, ind.dims + ind.rank - 1));
  for (int64_t i = 0; i < rows; ++i) {
    int64_t off = 0;
    for (int64_t a = 0; a < k; ++a) {
      int64_t v = index_at(ind, i * k + a), dim = x.dims[a];
      if (v < -dim || v >= dim)
        return ctx.error("index " + std::to_string(v) + " (row " + std::to_string(i) + ") out of range for dim " +
                         std::to_string(a) + " of size " + std::to_string(dim));
      off += (v < 0 ? v + dim : v) * st[a];
    }
    apply(upd, i * slice, y, off, slice, r);
  }
  return Status::Ok();
}

// ---- ScatterElements: output[p with p[axis] = indices[p]] combines updates[p].
Status infer_scatter_elements(KernelContext& ctx) {
  Red r;
  Status s = check_common(ctx, &r);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &ind = ctx.inputs[1], &upd = ctx.inputs[2];
  int axis;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x.rank, &axis);
  if (!s.ok()) return s;
  if (x.rank < 1 || ind.rank != x.rank || shape_of(upd) != shape_of(ind))
    return ctx.error("data " + shape_str(x) + ", indices " + shape_str(ind) + " and updates " + shape_str(upd) +
                     " must have one rank, indices and updates one shape");
  for (int d = 0; d < x.rank; ++d)
    if (d != axis && ind.dims[d] > x.dims[d])
      return ctx.error("indices " + shape_str(ind) + " exceed data " + shape_str(x) + " in dim " + std::to_string(d));
  if (x.dims[axis] == 0 && ind.numel() != 0)
    return ctx.error("indices " + shape_str(ind) + " index axis " + std::to_string(axis) + " of data " + shape_str(x) +
                     ", which is empty (every index would be out of range)");
  return set_out(ctx, 0, x.dtype, shape_of(x));
}

Status run_scatter_elements(KernelContext& ctx) {
  Red r;
  parse_reduction(ctx, &r);
  const TensorView &x = ctx.inputs[0], &ind = ctx.inputs[1], &upd = ctx.inputs[2];
  TensorView& y = ctx.outputs[0];
  int axis;
  norm_axis(ctx, ctx.attrs->get_int("axis", 0), x.rank, &axis);
  copy_data(ctx);
  const Shape st = row_major_strides(shape_of(x)), is = shape_of(ind);
  const int64_t n = ind.numel(), dim = x.dims[axis];
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (int d = ind.rank - 1; d >= 0; --d) {
      int64_t c = rem % is[d];
      rem /= is[d];
      if (d == axis) {
        int64_t v = index_at(ind, i);
        if (v < -dim || v >= dim)
          return ctx.error("index " + std::to_string(v) + " at position " + std::to_string(i) +
                           " out of range for axis " + std::to_string(axis) + " of size " + std::to_string(dim));
        c = v < 0 ? v + dim : v;
      }
      off += c * st[d];
    }
    apply(upd, i, y, off, 1, r);
  }
  return Status::Ok();
}

}  // namespace

void register_scatter(KernelRegistry& r) {
  reg(r, fb::OpType_ScatterND, DType::Any, "scatter_nd_reference", infer_scatter_nd, run_scatter_nd);
  reg(r, fb::OpType_ScatterElements, DType::Any, "scatter_elements_reference", infer_scatter_elements,
      run_scatter_elements);
}

}  // namespace ref
}  // namespace mobrt
