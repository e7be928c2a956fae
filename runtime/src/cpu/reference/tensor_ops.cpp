// tensor_ops.cpp: reference kernels that move data: Concat Split Slice
// Transpose Pad Gather GatherElements DepthToSpace SpaceToDepth Resize
// CumSum TopK. Semantics: ONNX opset 28 (mobconv/ops/tensor_ops.py).
// All are dtype-agnostic byte movers except Resize (float32), CumSum.
#include <numeric>

#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

// Copies element `src` of x to element `dst` of y (same dtype).
inline void copy_el(const TensorView& x, int64_t src, TensorView& y, int64_t dst, size_t es) {
  std::memcpy(y.as<uint8_t>() + dst * es, x.as<uint8_t>() + src * es, es);
}

// ---- Concat
Status infer_concat(KernelContext& ctx) {
  const TensorView& x0 = ctx.inputs[0];
  int axis;
  Status s = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x0.rank, &axis);
  if (!s.ok()) return s;
  if (!ctx.attrs->has("axis")) return ctx.error("attribute 'axis' is required");
  Shape out = shape_of(x0);
  for (int i = 1; i < ctx.num_inputs; ++i) {
    const TensorView& x = ctx.inputs[i];
    if (!x.present()) return ctx.error("input " + std::to_string(i) + " is absent");
    if (x.dtype != x0.dtype) return ctx.error("inputs must share one dtype");
    if (x.rank != x0.rank) return ctx.error("all inputs must have the same rank, got " + shape_str(x0) + " and " + shape_str(x));
    for (int d = 0; d < x.rank; ++d)
      if (d != axis && x.dims[d] != x0.dims[d]) return ctx.error("inputs differ in dim " + std::to_string(d) + ": " + shape_str(x0) + " and " + shape_str(x));
    out[axis] += x.dims[axis];
  }
  return set_out(ctx, 0, x0.dtype, out);
}

Status run_concat(KernelContext& ctx) {
  int axis;
  norm_axis(ctx, ctx.attrs->get_int("axis", 0), ctx.inputs[0].rank, &axis);
  TensorView& y = ctx.outputs[0];
  size_t es = dtype_size(y.dtype);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= y.dims[d];
  for (int d = axis + 1; d < y.rank; ++d) inner *= y.dims[d];
  int64_t yrow = y.dims[axis] * inner, off = 0;
  for (int i = 0; i < ctx.num_inputs; ++i) {
    const TensorView& x = ctx.inputs[i];
    int64_t row = x.dims[axis] * inner;
    for (int64_t o = 0; o < outer; ++o)
      if (row) std::memcpy(y.as<uint8_t>() + (o * yrow + off) * es, x.as<uint8_t>() + o * row * es, row * es);
    off += row;
  }
  return Status::Ok();
}

// ---- Split
Status split_sizes(const KernelContext& ctx, int* axis, Shape* sizes) {
  const TensorView& x = ctx.inputs[0];
  Status s = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x.rank, axis);
  if (!s.ok()) return s;
  int64_t dim = x.dims[*axis];
  if (ctx.num_inputs > 1 && ctx.inputs[1].present()) {
    s = int_values(ctx, 1, sizes, "split");
    if (!s.ok()) return s;
    if (static_cast<int>(sizes->size()) != ctx.num_outputs) return ctx.error("split has " + std::to_string(sizes->size()) + " sizes but the op has " + std::to_string(ctx.num_outputs) + " outputs");
    int64_t sum = 0;
    for (int64_t v : *sizes) { if (v < 0) return ctx.error("split sizes must not be negative"); sum += v; }
    if (sum != dim) return ctx.error("split sizes sum to " + std::to_string(sum) + ", but dim " + std::to_string(*axis) + " is " + std::to_string(dim));
  } else {
    int64_t n = ctx.attrs->get_int("num_outputs", ctx.num_outputs);
    if (n != ctx.num_outputs || n < 1) return ctx.error("num_outputs must equal the number of outputs");
    int64_t chunk = (dim + n - 1) / n;
    sizes->clear();
    for (int64_t i = 0; i < n; ++i) sizes->push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
  }
  return Status::Ok();
}

Status infer_split(KernelContext& ctx) {
  int axis;
  Shape sizes;
  Status s = split_sizes(ctx, &axis, &sizes);
  if (!s.ok()) return s;
  for (int o = 0; o < ctx.num_outputs; ++o) {
    Shape out = shape_of(ctx.inputs[0]);
    out[axis] = sizes[o];
    s = set_out(ctx, o, ctx.inputs[0].dtype, out);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status run_split(KernelContext& ctx) {
  int axis;
  Shape sizes;
  Status s = split_sizes(ctx, &axis, &sizes);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  size_t es = dtype_size(x.dtype);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int d = axis + 1; d < x.rank; ++d) inner *= x.dims[d];
  int64_t xrow = x.dims[axis] * inner, off = 0;
  for (int o = 0; o < ctx.num_outputs; ++o) {
    int64_t row = sizes[o] * inner;
    if (ctx.outputs[o].data)
      for (int64_t i = 0; i < outer; ++i)
        if (row) std::memcpy(ctx.outputs[o].as<uint8_t>() + i * row * es, x.as<uint8_t>() + (i * xrow + off) * es, row * es);
    off += row;
  }
  return Status::Ok();
}

// ---- Slice
struct SliceP { Shape start, step, out; };

Status slice_params(const KernelContext& ctx, SliceP* p) {
  const TensorView& x = ctx.inputs[0];
  Shape starts, ends, axes, steps;
  Status s = int_values(ctx, 1, &starts, "starts");
  if (s.ok()) s = int_values(ctx, 2, &ends, "ends");
  // an axes or steps input that is given but empty is not "absent": its length is checked
  // like any other (the reference and onnxruntime refuse it)
  const bool has_axes = ctx.num_inputs > 3 && ctx.inputs[3].present();
  const bool has_steps = ctx.num_inputs > 4 && ctx.inputs[4].present();
  if (s.ok() && has_axes) s = int_values(ctx, 3, &axes, "axes");
  if (s.ok() && has_steps) s = int_values(ctx, 4, &steps, "steps");
  if (!s.ok()) return s;
  if (!has_axes) { axes.resize(starts.size()); std::iota(axes.begin(), axes.end(), 0); }
  if (!has_steps) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size())
    return ctx.error("starts and ends must have the same length");
  if (axes.size() != starts.size() || steps.size() != starts.size())
    return ctx.error("starts, ends, axes and steps must have one entry each per sliced axis (got " +
                     std::to_string(starts.size()) + ", " + std::to_string(ends.size()) + ", " +
                     std::to_string(axes.size()) + ", " + std::to_string(steps.size()) + ")");
  p->start.assign(x.rank, 0);
  p->step.assign(x.rank, 1);
  p->out = shape_of(x);
  std::vector<bool> seen(x.rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    int a;
    s = norm_axis(ctx, axes[i], x.rank, &a);
    if (!s.ok()) return s;
    if (seen[a]) return ctx.error("axes contain a repeated axis");
    seen[a] = true;
    int64_t dim = x.dims[a], st = steps[i];
    if (st == 0) return ctx.error("steps must not be 0");
    if (st == std::numeric_limits<int64_t>::min()) return ctx.error("step out of range");
    int64_t b = starts[i], e = ends[i];
    auto clampi = [](int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); };
    if (b < 0) b = (b < -dim) ? -1 - dim + dim : b + dim;  // b + dim, floored below
    if (e < 0) e = (e < -dim - 1) ? -1 : e + dim;
    if (st > 0) { b = clampi(b, 0, dim); e = clampi(e, 0, dim); }
    else { b = clampi(b, 0, dim - 1); e = clampi(e, -1, dim - 1); }
    // ceil((e - b) / st) without overflow for steps near INT64_MAX
    int64_t n = st > 0 ? (e > b ? (e - b - 1) / st + 1 : 0) : (b > e ? (b - e - 1) / (-st) + 1 : 0);
    if (dim == 0) { n = 0; b = 0; }
    p->start[a] = b;
    p->step[a] = st;
    p->out[a] = n;
  }
  return Status::Ok();
}

Status infer_slice(KernelContext& ctx) {
  SliceP p;
  Status s = slice_params(ctx, &p);
  if (!s.ok()) return s;
  return set_out(ctx, 0, ctx.inputs[0].dtype, p.out);
}

Status run_slice(KernelContext& ctx) {
  SliceP p;
  Status s = slice_params(ctx, &p);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  size_t es = dtype_size(x.dtype);
  Shape xst = row_major_strides(shape_of(x));
  int64_t n = numel(p.out);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (int d = x.rank - 1; d >= 0; --d) {
      int64_t c = rem % p.out[d];
      rem /= p.out[d];
      off += (p.start[d] + c * p.step[d]) * xst[d];
    }
    copy_el(x, off, y, i, es);
  }
  return Status::Ok();
}

// ---- Transpose
Status perm_of(const KernelContext& ctx, Shape* perm) {
  int r = ctx.inputs[0].rank;
  *perm = ctx.attrs->get_ints("perm");
  if (perm->empty()) for (int d = r - 1; d >= 0; --d) perm->push_back(d);
  if (static_cast<int>(perm->size()) != r) return ctx.error("perm " + shape_str(*perm) + " is not a permutation of 0.." + std::to_string(r - 1));
  std::vector<bool> seen(r, false);
  for (int64_t p : *perm) {
    if (p < 0 || p >= r || seen[p]) return ctx.error("perm " + shape_str(*perm) + " is not a permutation of 0.." + std::to_string(r - 1));
    seen[p] = true;
  }
  return Status::Ok();
}

Status infer_transpose(KernelContext& ctx) {
  Shape perm;
  Status s = perm_of(ctx, &perm);
  if (!s.ok()) return s;
  Shape out;
  for (int64_t p : perm) out.push_back(ctx.inputs[0].dims[p]);
  return set_out(ctx, 0, ctx.inputs[0].dtype, out);
}

Status run_transpose(KernelContext& ctx) {
  Shape perm;
  perm_of(ctx, &perm);
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  Shape xst = row_major_strides(shape_of(x)), out = shape_of(y);
  size_t es = dtype_size(x.dtype);
  int64_t n = numel(out);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (int d = y.rank - 1; d >= 0; --d) {
      int64_t c = rem % out[d];
      rem /= out[d];
      off += c * xst[perm[d]];
    }
    copy_el(x, off, y, i, es);
  }
  return Status::Ok();
}

// ---- Pad (constant, reflect, edge, wrap)
struct PadP { Shape begin, end; std::string mode; };

Status pad_params(const KernelContext& ctx, PadP* p) {
  const TensorView& x = ctx.inputs[0];
  Shape pads, axes;
  Status s = int_values(ctx, 1, &pads, "pads");
  if (!s.ok()) return s;
  if (ctx.num_inputs > 3 && ctx.inputs[3].present()) {
    s = int_values(ctx, 3, &axes, "axes");
    if (!s.ok()) return s;
  } else {
    for (int d = 0; d < x.rank; ++d) axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size()) return ctx.error("pads must have 2 values per padded axis");
  p->begin.assign(x.rank, 0);
  p->end.assign(x.rank, 0);
  std::vector<bool> seen(x.rank, false);
  for (size_t i = 0; i < axes.size(); ++i) {
    int a;
    s = norm_axis(ctx, axes[i], x.rank, &a);
    if (!s.ok()) return s;
    if (seen[a]) return ctx.error("axes contain a repeated axis");
    seen[a] = true;
    if (std::llabs(pads[i]) > (int64_t(1) << 30) || std::llabs(pads[i + axes.size()]) > (int64_t(1) << 30)) return ctx.error("pads out of range");
    p->begin[a] = pads[i];
    p->end[a] = pads[i + axes.size()];
    if (x.dims[a] + p->begin[a] + p->end[a] < 0) return ctx.error("pads crop more than the dim");
  }
  p->mode = ctx.attrs->get_string("mode", "constant");
  if (p->mode != "constant" && p->mode != "reflect" && p->mode != "edge" && p->mode != "wrap")
    return ctx.error("mode must be constant, reflect, edge or wrap, got '" + p->mode + "'");
  if (p->mode != "constant")  // (mobconv/ops/indexing.py: the same rule)
    for (int d = 0; d < x.rank; ++d)
      if ((p->begin[d] > 0 || p->end[d] > 0) &&
          x.dims[d] - std::max<int64_t>(-p->begin[d], 0) - std::max<int64_t>(-p->end[d], 0) <= 0)
        return ctx.error(p->mode + " padding needs a non-empty dim " + std::to_string(d) + " after cropping");
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    if (ctx.inputs[2].dtype != x.dtype || ctx.inputs[2].numel() != 1) return ctx.error("constant_value must be a scalar of the input's dtype");
  }
  return Status::Ok();
}

Status infer_pad(KernelContext& ctx) {
  PadP p;
  Status s = pad_params(ctx, &p);
  if (!s.ok()) return s;
  Shape out = shape_of(ctx.inputs[0]);
  for (size_t d = 0; d < out.size(); ++d) out[d] += p.begin[d] + p.end[d];
  return set_out(ctx, 0, ctx.inputs[0].dtype, out);
}

Status run_pad(KernelContext& ctx) {
  PadP p;
  Status s = pad_params(ctx, &p);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  size_t es = dtype_size(x.dtype);
  uint8_t value[8] = {0};
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && ctx.inputs[2].data) std::memcpy(value, ctx.inputs[2].data, es);
  Shape xs = shape_of(x), xst = row_major_strides(xs), out = shape_of(y);
  // Negative pads crop first, then the rest is padded around the cropped part (as the
  // numpy reference and onnxruntime do): edge/reflect/wrap read the cropped part only.
  // A crop past the input takes the remainder from the other side's padding.
  Shape start(y.rank), len(y.rank), lead(y.rank);
  for (int d = 0; d < y.rank; ++d) {
    int64_t cut_b = std::max<int64_t>(-p.begin[d], 0), cut_e = std::max<int64_t>(-p.end[d], 0);
    int64_t owed = std::max<int64_t>(cut_b + cut_e - xs[d], 0), add_b = std::max<int64_t>(p.begin[d], 0);
    start[d] = std::min(cut_b, xs[d]);
    len[d] = std::max(xs[d] - cut_e, start[d]) - start[d];
    lead[d] = add_b - std::min(owed, add_b);
  }
  int64_t n = numel(out);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    bool inside = true;
    for (int d = y.rank - 1; d >= 0; --d) {
      int64_t c = rem % out[d];
      rem /= out[d];
      int64_t src = c - lead[d], dim = len[d];
      if (src < 0 || src >= dim) {
        if (p.mode == "constant" || dim == 0) { inside = false; continue; }
        if (p.mode == "edge") src = src < 0 ? 0 : dim - 1;
        else if (p.mode == "wrap") src = ((src % dim) + dim) % dim;
        else {  // reflect
          if (dim == 1) src = 0;
          else {
            int64_t period = 2 * (dim - 1);
            src = ((src % period) + period) % period;
            if (src >= dim) src = period - src;
          }
        }
      }
      off += (start[d] + src) * xst[d];
    }
    if (inside) copy_el(x, off, y, i, es);
    else std::memcpy(y.as<uint8_t>() + i * es, value, es);
  }
  return Status::Ok();
}

// ---- Gather / GatherElements
inline int64_t index_at(const TensorView& t, int64_t i) {
  return t.dtype == DType::I64 ? t.as<int64_t>()[i] : t.as<int32_t>()[i];
}

Status infer_gather(KernelContext& ctx) {
  Status s = need_dtype(ctx, 1, {DType::I64, DType::I32});
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &ind = ctx.inputs[1];
  int axis;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x.rank, &axis);
  if (!s.ok()) return s;
  if (x.rank == 0) return ctx.error("data must have rank >= 1");
  if (ctx.op_type == fb::OpType_GatherElements) {
    if (ind.rank != x.rank) return ctx.error("indices must have the data's rank");
    for (int d = 0; d < x.rank; ++d)
      if (d != axis && ind.dims[d] > x.dims[d])  // even when indices are empty (as the reference)
        return ctx.error("indices " + shape_str(ind) + " exceed data " + shape_str(x) + " in dim " + std::to_string(d) +
                         " (only the axis " + std::to_string(axis) + " dim may be larger)");
  }
  if (x.dims[axis] == 0 && ind.numel() != 0)  // refused even when the output is empty (onnxruntime)
    return ctx.error("indices " + shape_str(ind) + " index axis " + std::to_string(axis) + " of data " + shape_str(x) +
                     ", which is empty (every index would be out of range)");
  if (ctx.op_type == fb::OpType_GatherElements) return set_out(ctx, 0, x.dtype, shape_of(ind));
  Shape out(x.dims, x.dims + axis);
  for (int d = 0; d < ind.rank; ++d) out.push_back(ind.dims[d]);
  for (int d = axis + 1; d < x.rank; ++d) out.push_back(x.dims[d]);
  return set_out(ctx, 0, x.dtype, out);
}

Status run_gather(KernelContext& ctx) {
  const TensorView &x = ctx.inputs[0], &ind = ctx.inputs[1];
  TensorView& y = ctx.outputs[0];
  int axis;
  norm_axis(ctx, ctx.attrs->get_int("axis", 0), x.rank, &axis);
  size_t es = dtype_size(x.dtype);
  int64_t dim = x.dims[axis];
  if (ctx.op_type == fb::OpType_GatherElements) {
    Shape xst = row_major_strides(shape_of(x)), is = shape_of(ind);
    int64_t n = ind.numel();
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, off = 0;
      for (int d = ind.rank - 1; d >= 0; --d) {
        int64_t c = rem % is[d];
        rem /= is[d];
        if (d == axis) {
          int64_t k = index_at(ind, i);
          if (k < -dim || k >= dim) return ctx.error("index " + std::to_string(k) + " at position " + std::to_string(i) + " out of range for dim " + std::to_string(dim));
          c = k < 0 ? k + dim : k;
        } else if (c >= x.dims[d]) {
          return ctx.error("indices shape exceeds data shape");
        }
        off += c * xst[d];
      }
      copy_el(x, off, y, i, es);
    }
    return Status::Ok();
  }
  int64_t outer = 1, inner = 1, ni = ind.numel();
  for (int d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int d = axis + 1; d < x.rank; ++d) inner *= x.dims[d];
  for (int64_t j = 0; j < ni; ++j) {
    int64_t k = index_at(ind, j);
    if (k < -dim || k >= dim) return ctx.error("index " + std::to_string(k) + " at position " + std::to_string(j) + " out of range for dim " + std::to_string(axis) + " of size " + std::to_string(dim));
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < ni; ++j) {
      int64_t k = index_at(ind, j);
      if (k < 0) k += dim;
      if (inner) std::memcpy(y.as<uint8_t>() + ((o * ni + j) * inner) * es, x.as<uint8_t>() + ((o * dim + k) * inner) * es, inner * es);
    }
  return Status::Ok();
}

// ---- DepthToSpace / SpaceToDepth
Status infer_d2s(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  if (x.rank != 4) return ctx.error("input must be 4-D (N, C, H, W), got " + shape_str(x));
  int64_t b = ctx.attrs->get_int("blocksize", 0);
  if (b < 1 || b > (1 << 16)) return ctx.error("blocksize must be >= 1");
  std::string mode = ctx.attrs->get_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return ctx.error("mode must be DCR or CRD, got '" + mode + "'");
  if (ctx.op_type == fb::OpType_DepthToSpace) {
    if (x.dims[1] % (b * b)) return ctx.error("channels " + std::to_string(x.dims[1]) + " not divisible by blocksize^2");
    return set_out(ctx, 0, x.dtype, {x.dims[0], x.dims[1] / (b * b), x.dims[2] * b, x.dims[3] * b});
  }
  if (x.dims[2] % b || x.dims[3] % b) return ctx.error("H and W must be divisible by blocksize");
  return set_out(ctx, 0, x.dtype, {x.dims[0], x.dims[1] * b * b, x.dims[2] / b, x.dims[3] / b});
}

Status run_d2s(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  int64_t b = ctx.attrs->get_int("blocksize", 1);
  size_t es = dtype_size(x.dtype);
  bool d2s = ctx.op_type == fb::OpType_DepthToSpace;
  bool crd = ctx.attrs->get_string("mode", "DCR") == "CRD";  // SpaceToDepth has mode since opset 25
  // Iterate over the "deep" tensor (N, C, H, W) <-> "wide" tensor.
  const TensorView& deep = d2s ? x : y;
  const TensorView& wide = d2s ? y : x;
  int64_t n = deep.dims[0], c = deep.dims[1], h = deep.dims[2], w = deep.dims[3], oc = wide.dims[1];
  int64_t W = wide.dims[3], H = wide.dims[2];
  for (int64_t ni = 0; ni < n; ++ni)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t hi = 0; hi < h; ++hi)
        for (int64_t wi = 0; wi < w; ++wi) {
          int64_t co, bh, bw;
          if (crd) { co = ci / (b * b); bh = (ci % (b * b)) / b; bw = ci % b; }
          else { co = ci % oc; bh = (ci / oc) / b; bw = (ci / oc) % b; }
          int64_t di = ((ni * c + ci) * h + hi) * w + wi;
          int64_t wi2 = ((ni * oc + co) * H + hi * b + bh) * W + wi * b + bw;
          if (d2s) copy_el(x, di, y, wi2, es); else copy_el(x, wi2, y, di, es);
        }
  return Status::Ok();
}

// ---- CumSum
Status infer_cumsum(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::F32, DType::I32, DType::I64});
  if (!s.ok()) return s;
  Shape ax;
  s = int_values(ctx, 1, &ax, "axis");
  if (!s.ok()) return s;
  if (ax.size() != 1) return ctx.error("axis must be a scalar");
  int a;
  s = norm_axis(ctx, ax[0], ctx.inputs[0].rank, &a);
  if (!s.ok()) return s;
  return infer_same(ctx);
}

template <typename T>
void cumsum_t(const TensorView& x, TensorView& y, int axis, bool excl, bool rev) {
  int64_t outer = 1, inner = 1, len = x.dims[axis];
  for (int d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int d = axis + 1; d < x.rank; ++d) inner *= x.dims[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      T acc = 0;
      for (int64_t kk = 0; kk < len; ++kk) {
        int64_t k = rev ? len - 1 - kk : kk;
        int64_t idx = (o * len + k) * inner + i;
        T v = x.as<T>()[idx];
        if (excl) { y.as<T>()[idx] = acc; acc += v; }
        else { acc += v; y.as<T>()[idx] = acc; }
      }
    }
}

Status run_cumsum(KernelContext& ctx) {
  Shape ax;
  int_values(ctx, 1, &ax, "axis");
  int a;
  norm_axis(ctx, ax[0], ctx.inputs[0].rank, &a);
  bool excl = ctx.attrs->get_int("exclusive", 0) != 0, rev = ctx.attrs->get_int("reverse", 0) != 0;
  switch (ctx.inputs[0].dtype) {
    case DType::F32: cumsum_t<float>(ctx.inputs[0], ctx.outputs[0], a, excl, rev); break;
    case DType::I32: cumsum_t<int32_t>(ctx.inputs[0], ctx.outputs[0], a, excl, rev); break;
    default: cumsum_t<int64_t>(ctx.inputs[0], ctx.outputs[0], a, excl, rev); break;
  }
  return Status::Ok();
}

// ---- TopK (float32/float16/bfloat16, int8..int64, uint8): values and int64
// indices; ties -> lower index first; NaN counts as the largest value (numpy sort)
Status infer_topk(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::F32, DType::F16, DType::BF16, DType::I8, DType::U8, DType::I16,
                                 DType::I32, DType::I64});
  if (!s.ok()) return s;
  Shape k;
  s = int_values(ctx, 1, &k, "K");
  if (!s.ok()) return s;
  if (k.size() != 1) return ctx.error("K must have one value");
  int a;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", -1), ctx.inputs[0].rank, &a);
  if (!s.ok()) return s;
  if (k[0] < 0 || k[0] > ctx.inputs[0].dims[a]) return ctx.error("K " + std::to_string(k[0]) + " out of range for dim " + std::to_string(ctx.inputs[0].dims[a]));
  Shape out = shape_of(ctx.inputs[0]);
  out[a] = k[0];
  s = set_out(ctx, 0, ctx.inputs[0].dtype, out);
  if (s.ok()) s = set_out(ctx, 1, DType::I64, out);
  return s;
}

template <typename S>
Status run_topk_t(KernelContext& ctx) {
  using E = Elem<S>;
  using T = typename E::C;
  const TensorView& x = ctx.inputs[0];
  int a;
  norm_axis(ctx, ctx.attrs->get_int("axis", -1), x.rank, &a);
  bool largest = ctx.attrs->get_int("largest", 1) != 0;
  int64_t k = ctx.outputs[0].dims[a];
  int64_t outer = 1, inner = 1, len = x.dims[a];
  for (int d = 0; d < a; ++d) outer *= x.dims[d];
  for (int d = a + 1; d < x.rank; ++d) inner *= x.dims[d];
  std::vector<int64_t> idx(len);
  const S* px = x.as<S>();
  auto less = [](T p, T q) {  // strict weak order with NaN last (largest)
    if constexpr (std::is_floating_point<T>::value) {
      if (std::isnan(q)) return !std::isnan(p);
      if (std::isnan(p)) return false;
    }
    return p < q;
  };
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::iota(idx.begin(), idx.end(), 0);
      auto val = [&](int64_t j) { return E::load(px[(o * len + j) * inner + i]); };
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t p, int64_t q) {
        T vp = val(p), vq = val(q);
        return largest ? less(vq, vp) : less(vp, vq);
      });
      for (int64_t j = 0; j < k; ++j) {
        int64_t dst = (o * k + j) * inner + i;
        ctx.outputs[0].as<S>()[dst] = px[(o * len + idx[j]) * inner + i];
        if (ctx.num_outputs > 1 && ctx.outputs[1].data) ctx.outputs[1].as<int64_t>()[dst] = idx[j];
      }
    }
  return Status::Ok();
}

Status run_topk(KernelContext& ctx) {
  switch (ctx.inputs[0].dtype) {
    case DType::F32: return run_topk_t<float>(ctx);
    case DType::F16: return run_topk_t<f16>(ctx);
    case DType::BF16: return run_topk_t<bf16>(ctx);
    case DType::I8: return run_topk_t<int8_t>(ctx);
    case DType::U8: return run_topk_t<uint8_t>(ctx);
    case DType::I16: return run_topk_t<int16_t>(ctx);
    case DType::I32: return run_topk_t<int32_t>(ctx);
    case DType::I64: return run_topk_t<int64_t>(ctx);
    default: return ctx.error("unsupported dtype");
  }
}

}  // namespace

void register_resize(KernelRegistry& r);  // resize.cpp

void register_tensor_ops(KernelRegistry& r) {
  reg(r, fb::OpType_Concat, DType::Any, "concat_reference", infer_concat, run_concat);
  reg(r, fb::OpType_Split, DType::Any, "split_reference", infer_split, run_split);
  reg(r, fb::OpType_Slice, DType::Any, "slice_reference", infer_slice, run_slice);
  reg(r, fb::OpType_Transpose, DType::Any, "transpose_reference", infer_transpose, run_transpose);
  reg(r, fb::OpType_Pad, DType::Any, "pad_reference", infer_pad, run_pad);
  reg(r, fb::OpType_Gather, DType::Any, "gather_reference", infer_gather, run_gather);
  reg(r, fb::OpType_GatherElements, DType::Any, "gather_elements_reference", infer_gather, run_gather);
  reg(r, fb::OpType_DepthToSpace, DType::Any, "depth_to_space_reference", infer_d2s, run_d2s);
  reg(r, fb::OpType_SpaceToDepth, DType::Any, "space_to_depth_reference", infer_d2s, run_d2s);
  reg(r, fb::OpType_CumSum, DType::Any, "cumsum_reference", infer_cumsum, run_cumsum);
  reg(r, fb::OpType_TopK, DType::Any, "topk_reference", infer_topk, run_topk);
  register_resize(r);
}

}  // namespace ref
}  // namespace mobrt
