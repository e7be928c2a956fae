// quant_ops.cpp: the quantized forms of the reference ops (int8 and uint8
// tensors with scale/zero point), bit for bit the numpy integer oracle
// mobconv/ops/quant_math.py; the rules are docs/quantization.md's.
//
// One op set: a quantized Conv is the Conv op whose tensors carry quantization
// parameters. A node is quantized when any of its inputs or outputs carries them
// (the reference interpreter's rule). Every op's shape function is wrapped here:
// a quantized node is checked by its integer form's rules at prepare (parameters
// present, per tensor where required, finite positive scales, zero points in the
// dtype's range, representable multipliers, fused activation Relu/Clip only) and
// an op with no integer form is refused by name; an unquantized node runs the
// op's own shape function unchanged.
//
// Kernels, registered under (op, int8/uint8, scalar):
//   computing ops  Conv (grouped, depthwise), MatMul, Gemm, Add, Mul, Concat,
//                  AveragePool, GlobalAveragePool, Relu, Resize (nearest, linear);
//   selecting ops  MaxPool (pool.cpp's integer kernel), GlobalMaxPool, Clip and the
//                  element-moving ops (their dtype-generic kernels) compute
//                  exactly on the integers and must keep the input's parameters.
// Where a dtype-generic kernel exists (Add, Mul, Concat), an unquantized int8
// node still runs it (plain integer arithmetic).
//
// Integer data is zero-point-corrected into int32 buffers first (|x - zp| <= 255);
// sums are formed in int64 and an accumulator outside int32 is a run-time error,
// as in the oracle. The rules and the constants they give (multipliers, ranges) are
// quant_params.cpp's; the fixed-point primitives are quant_fixed_point.h's.
// A model whose metadata says quantization.requantize = float32 (imported ONNX
// QDQ/QOperator models; ctx.requantize_float32) requantizes Conv/MatMul/Gemm and
// computes AveragePool/GlobalAveragePool with onnxruntime's float32 arithmetic
// (quant_float_requant.h, docs/quantization.md section 2).
#include "cpu/reference/quant_ops.h"

#include <atomic>

#include "core/infer.h"
#include "cpu/reference/dynamic_quant.h"
#include "cpu/reference/quant_params.h"
#include "cpu/reference/resize_geometry.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace ref {
namespace {

using namespace q8;  // NOLINT: the rules and helpers of this file's ops

constexpr size_t kNumOps = static_cast<size_t>(fb::OpType_MAX) + 1;
InferFn g_plain[kNumOps] = {};  // the shape functions registered before ours

// ---- shape functions ----------------------------------------------------------------------

// The op's own shape function on float32 views of `inputs` (its shape rules hold
// for the integer form); output 0 then takes dtype `out`.
Status infer_as_float(KernelContext& ctx, std::initializer_list<int> inputs, DType out) {
  std::vector<TensorView> in(ctx.inputs, ctx.inputs + ctx.num_inputs);
  for (int i : inputs)
    if (i < ctx.num_inputs && in[i].present()) in[i].dtype = DType::F32;
  KernelContext c = ctx;
  c.inputs = in.data();
  Status s = g_plain[ctx.op_type](c);
  if (!s.ok()) return s;
  ctx.outputs[0].dtype = out;
  return Status::Ok();
}

// ---- Conv ---------------------------------------------------------------------------------

Status infer_conv(KernelContext& ctx) {
  PerTensor x;
  OutRequant r;
  if (ctx.num_inputs > 3 && ctx.inputs[3].present())
    return refuse(ctx, "a fused residual input R is not defined for a quantized Conv");
  DType out = ctx.outputs[0].dtype;
  Status s = infer_as_float(ctx, {0, 1, 2}, DType::F32);  // shape rules first (W dims known)
  ctx.outputs[0].dtype = out;
  if (!s.ok()) return s;
  s = conv_rules(ctx, &x, &r);
  ctx.outputs[0].dtype = out;
  return s;
}

Status run_conv(KernelContext& ctx) {
  PerTensor xp;
  OutRequant rq;
  Status s = conv_rules(ctx, &xp, &rq);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  const TensorView& y = ctx.outputs[0];
  Shape kernel(w.dims + 2, w.dims + w.rank);
  Window win;
  s = make_window(ctx, x, kernel, false, &win);
  if (!s.ok()) return s;
  const std::vector<int32_t> xs = zp_removed(x), ws = zp_removed(w);
  const int32_t* bias = ctx.num_inputs > 2 && ctx.inputs[2].present() ? ctx.inputs[2].as<int32_t>() : nullptr;
  int64_t n = x.dims[0], c = x.dims[1], m = w.dims[0], g = ctx.attrs->get_int("group", 1);
  int64_t cg = c / g, mg = m / g;
  const int64_t* I = win.in;
  const int64_t* O = win.out;
  int64_t isz = I[0] * I[1] * I[2], osz = O[0] * O[1] * O[2], ksz = win.k[0] * win.k[1] * win.k[2];
  std::atomic<bool> overflow(false);
  ctx.parallel_for(n * m, [&](int64_t b, int64_t e, int) {
    for (int64_t nm = b; nm < e; ++nm) {
      int64_t ni = nm / m, mi = nm % m, gi = mi / mg;
      for (int64_t o0 = 0; o0 < O[0]; ++o0)
        for (int64_t o1 = 0; o1 < O[1]; ++o1)
          for (int64_t o2 = 0; o2 < O[2]; ++o2) {
            int64_t acc = bias ? bias[mi] : 0;
            for (int64_t ci = 0; ci < cg; ++ci) {
              const int32_t* xc = xs.data() + (ni * c + gi * cg + ci) * isz;
              const int32_t* wc = ws.data() + (mi * cg + ci) * ksz;
              for_each_tap(win, o0, o1, o2, [&](int64_t in, int64_t k) {
                acc += static_cast<int64_t>(xc[in]) * wc[k];
              });
            }
            if (!quant::fits_int32(acc)) {
              overflow = true;
              acc = 0;
            }
            store(y, nm * osz + (o0 * O[1] + o1) * O[2] + o2, rq.apply(acc, static_cast<size_t>(mi)));
          }
    }
  });
  return overflow ? overflow_error(ctx) : Status::Ok();
}

// ---- MatMul / Gemm ------------------------------------------------------------------------

// A (..., M, K) x B (..., K, N) with numpy's batch broadcasting and 1-D promotion.
struct MM {
  Shape batch, sa, sb;
  int64_t m = 1, k = 1, n = 1;
};

MM matmul_geom(const TensorView& a, const TensorView& b) {
  MM g;
  Shape A = shape_of(a), B = shape_of(b);
  if (A.size() == 1) A.insert(A.begin(), 1);
  if (B.size() == 1) B.push_back(1);
  g.m = A[A.size() - 2];
  g.k = A.back();
  g.n = B.back();
  g.sa.assign(A.begin(), A.end() - 2);
  g.sb.assign(B.begin(), B.end() - 2);
  size_t r = std::max(g.sa.size(), g.sb.size());
  g.batch.assign(r, 1);
  for (size_t d = 0; d < r; ++d) {
    int64_t da = d + g.sa.size() >= r ? g.sa[d + g.sa.size() - r] : 1;
    int64_t db = d + g.sb.size() >= r ? g.sb[d + g.sb.size() - r] : 1;
    g.batch[d] = da == 1 ? db : da;
    if (da == 0 || db == 0) g.batch[d] = 0;
  }
  return g;
}

Status infer_matmul(KernelContext& ctx) {
  bool gemm = ctx.op_type == fb::OpType_Gemm;
  DType out = ctx.outputs[0].dtype;
  Status s = infer_as_float(ctx, {0, 1, 2}, out);
  ctx.outputs[0].dtype = out;
  if (!s.ok()) return s;
  PerTensor a;
  OutRequant r;
  s = matmul_rules(ctx, gemm, &a, &r);
  ctx.outputs[0].dtype = out;
  return s;
}

Status run_matmul(KernelContext& ctx) {
  const bool gemm = ctx.op_type == fb::OpType_Gemm;
  PerTensor ap;
  OutRequant rq;
  Status s = matmul_rules(ctx, gemm, &ap, &rq);
  if (!s.ok()) return s;
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const TensorView& y = ctx.outputs[0];
  const std::vector<int32_t> as = zp_removed(a), bs = zp_removed(b);
  const bool ta = gemm && ctx.attrs->get_int("transA", 0) != 0, tb = gemm && ctx.attrs->get_int("transB", 0) != 0;
  MM g;
  if (gemm) {
    g.m = ta ? a.dims[1] : a.dims[0];
    g.k = ta ? a.dims[0] : a.dims[1];
    g.n = tb ? b.dims[0] : b.dims[1];
  } else {
    g = matmul_geom(a, b);
  }
  const int32_t* bias = gemm && ctx.num_inputs > 2 && ctx.inputs[2].present() ? ctx.inputs[2].as<int32_t>() : nullptr;
  const bool bias_per_col = bias && ctx.inputs[2].numel() != 1;
  int64_t nb = 1;
  std::vector<int64_t> oa(1, 0), ob(1, 0);
  if (!g.batch.empty()) {
    Shape st[2] = {bcast_strides(g.sa, g.batch), bcast_strides(g.sb, g.batch)};
    nb = numel(g.batch);
    oa.assign(static_cast<size_t>(nb), 0);
    ob.assign(static_cast<size_t>(nb), 0);
    for_each_bcast<2>(g.batch, st, [&](int64_t i, const int64_t* off) { oa[i] = off[0]; ob[i] = off[1]; });
  }
  const int64_t m = g.m, n = g.n, k = g.k;
  std::atomic<bool> overflow(false);
  ctx.parallel_for(nb * m, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t bi = r / m, i = r % m;
      const int32_t* A = as.data() + oa[bi] * m * k;
      const int32_t* B = bs.data() + ob[bi] * k * n;
      for (int64_t j = 0; j < n; ++j) {
        int64_t acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += static_cast<int64_t>(A[ta ? p * m + i : i * k + p]) * B[tb ? j * k + p : p * n + j];
        if (bias) acc += bias[bias_per_col ? j : 0];
        if (!quant::fits_int32(acc)) {
          overflow = true;
          acc = 0;
        }
        store(y, (bi * m + i) * n + j, rq.apply(acc, static_cast<size_t>(j)));
      }
    }
  });
  return overflow ? overflow_error(ctx) : Status::Ok();
}

// ---- Add / Mul ----------------------------------------------------------------------------

Status infer_binary(KernelContext& ctx) {
  DType out = ctx.outputs[0].dtype;
  Status s = infer_as_float(ctx, {0, 1}, out);
  ctx.outputs[0].dtype = out;
  if (!s.ok()) return s;
  BinaryQ q;
  return binary_rules(ctx, &q);
}

Status run_binary(KernelContext& ctx) {
  BinaryQ q;
  Status s = binary_rules(ctx, &q);
  if (!s.ok()) return s;
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const TensorView& y = ctx.outputs[0];
  Shape out = shape_of(y);
  Shape st[2] = {bcast_strides(shape_of(a), out), bcast_strides(shape_of(b), out)};
  const bool add = ctx.op_type == fb::OpType_Add;
  for_each_bcast<2>(out, st, [&](int64_t i, const int64_t* off) {
    int64_t va = load(a, off[0]) - q.a.zp, vb = load(b, off[1]) - q.b.zp, r;
    if (add) {
      int64_t a2 = quant::multiply_by_quantized_multiplier(va * (int64_t(1) << quant::kAddLeftShift), q.ma);
      int64_t b2 = quant::multiply_by_quantized_multiplier(vb * (int64_t(1) << quant::kAddLeftShift), q.mb);
      r = quant::clamp(quant::multiply_by_quantized_multiplier(a2 + b2, q.my) + q.y.zp, q.lo, q.hi);
    } else {
      r = quant::requantize(va * vb, q.my, q.y.zp, q.lo, q.hi);
    }
    store(y, i, r);
  });
  return Status::Ok();
}

// ---- tensor to new parameters: Concat, Relu -----------------------------------------------

Status infer_concat(KernelContext& ctx) {
  Status s = g_plain[ctx.op_type](ctx);  // dtype-generic: one dtype for all inputs and the output
  if (!s.ok()) return s;
  std::vector<Rescale> rs;
  return concat_rules(ctx, &rs);
}

Status run_concat(KernelContext& ctx) {
  std::vector<Rescale> rs;
  Status s = concat_rules(ctx, &rs);
  if (!s.ok()) return s;
  int axis;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", 0), ctx.inputs[0].rank, &axis);
  if (!s.ok()) return s;
  const TensorView& y = ctx.outputs[0];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= y.dims[d];
  for (int d = axis + 1; d < y.rank; ++d) inner *= y.dims[d];
  const int64_t yrow = y.dims[axis] * inner;
  int64_t off = 0;
  for (int i = 0; i < ctx.num_inputs; ++i) {
    const TensorView& x = ctx.inputs[i];
    const int64_t row = x.dims[axis] * inner;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < row; ++j) store(y, o * yrow + off + j, rs[i].apply(load(x, o * row + j)));
    off += row;
  }
  return Status::Ok();
}

Status infer_relu(KernelContext& ctx) {
  DType out = ctx.outputs[0].dtype;
  Status s = infer_as_float(ctx, {0}, out);
  ctx.outputs[0].dtype = out;
  Rescale r;
  if (s.ok()) s = relu_rules(ctx, &r);
  return s;
}

Status run_relu(KernelContext& ctx) {
  Rescale r;
  Status s = relu_rules(ctx, &r);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) store(y, i, std::max(wrap(r.apply(load(x, i)), y.dtype), r.zp_y));
  return Status::Ok();
}

// ---- pools --------------------------------------------------------------------------------

Status infer_avg(KernelContext& ctx) {
  DType out = ctx.outputs[0].dtype;
  Status s = infer_as_float(ctx, {0}, ctx.inputs[0].dtype);
  if (!s.ok()) return s;
  DType produced = ctx.outputs[0].dtype;
  ctx.outputs[0].dtype = out;  // the rules read the declared dtype
  PerTensor x;
  s = avg_rules(ctx, &x);
  ctx.outputs[0].dtype = produced;
  return s;
}

Status run_avg_pool(KernelContext& ctx) {
  PerTensor xp, yp;
  Status s = avg_rules(ctx, &xp, &yp);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  Window w;
  s = make_window(ctx, x, ctx.attrs->get_ints("kernel_shape"), ctx.attrs->get_int("ceil_mode", 0) != 0, &w);
  if (!s.ok()) return s;
  const bool include_pad = ctx.attrs->get_int("count_include_pad", 0) != 0;
  const bool float32 = ctx.requantize_float32;
  int64_t lo, hi;
  qrange(y.dtype, &lo, &hi);
  const int64_t* I = w.in;
  const int64_t* O = w.out;
  const int64_t isz = I[0] * I[1] * I[2], osz = O[0] * O[1] * O[2];
  ctx.parallel_for(x.dims[0] * x.dims[1], [&](int64_t b, int64_t e, int) {
    for (int64_t p = b; p < e; ++p)
      for (int64_t o0 = 0; o0 < O[0]; ++o0)
        for (int64_t o1 = 0; o1 < O[1]; ++o1)
          for (int64_t o2 = 0; o2 < O[2]; ++o2) {
            const int64_t o[3] = {o0, o1, o2};
            const int64_t count = window_count(w, o, include_pad);
            int64_t total = 0;
            float ftotal = 0.f;  // float32 rule: dequantized taps summed in tap order
            for_each_tap(w, o0, o1, o2, [&](int64_t in, int64_t) {
              const int64_t v = load(x, p * isz + in) - xp.zp;
              if (float32) {
                ftotal = ftotal + quant::rounded_product(xp.scale, static_cast<float>(v));
              } else {
                total += v;
              }
            });
            int64_t v;
            if (float32) {
              const float avg = ftotal / static_cast<float>(std::max<int64_t>(count, 1));
              const float q = avg / yp.scale;
              v = static_cast<int64_t>(std::nearbyint(q + static_cast<float>(yp.zp)));
            } else {
              v = rounded_mean(total, std::max<int64_t>(count, 1)) + xp.zp;
            }
            store(y, p * osz + (o0 * O[1] + o1) * O[2] + o2, quant::clamp(v, lo, hi));
          }
  });
  return Status::Ok();
}

Status run_global_pool(KernelContext& ctx) {
  const bool is_max = ctx.op_type == fb::OpType_GlobalMaxPool;
  PerTensor xp, yp;
  if (!is_max) {
    Status s = avg_rules(ctx, &xp, &yp);
    if (!s.ok()) return s;
  }
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const int64_t nc = x.dims[0] * x.dims[1], inner = nc ? x.numel() / nc : 0;
  int64_t lo, hi;
  qrange(y.dtype, &lo, &hi);
  if (!is_max && ctx.requantize_float32) {  // onnxruntime's QLinearGlobalAveragePool
    const float scale = xp.scale / (yp.scale * static_cast<float>(inner));
    for (int64_t p = 0; p < nc; ++p) {
      int64_t acc = 0;
      for (int64_t j = 0; j < inner; ++j) acc += load(x, p * inner + j) - xp.zp;
      if (!quant::fits_int32(acc)) return overflow_error(ctx);
      store(y, p, quant::requantize_float32(acc, scale, yp.zp, lo, hi));
    }
    return Status::Ok();
  }
  for (int64_t p = 0; p < nc; ++p) {
    int64_t acc = is_max ? lo : 0;
    for (int64_t j = 0; j < inner; ++j) {
      int64_t v = load(x, p * inner + j);
      acc = is_max ? std::max(acc, v) : acc + (v - xp.zp);
    }
    store(y, p, is_max ? acc : quant::clamp(rounded_mean(acc, std::max<int64_t>(inner, 1)) + xp.zp, lo, hi));
  }
  return Status::Ok();
}

// ---- Resize -------------------------------------------------------------------------------

constexpr int kResizeWeightBits = 10;

// resize_params on a float32 view of the integer input.
Status quant_resize_params(const KernelContext& ctx, ResizeP* p) {
  std::vector<TensorView> in(ctx.inputs, ctx.inputs + ctx.num_inputs);
  in[0].dtype = DType::F32;
  KernelContext c = ctx;
  c.inputs = in.data();
  return resize_params(c, p);
}

// The axes a Resize changes (quant_math.resize_linear: out != in or scale != 1).
std::vector<int> resized_axes(const ResizeP& p, const TensorView& x) {
  std::vector<int> r;
  for (int d : p.axes)
    if (!(p.out[d] == x.dims[d] && p.scale[d] == 1.0)) r.push_back(d);
  return r;
}

Status infer_resize(KernelContext& ctx) {
  Status s = resize_mode_rules(ctx);
  if (!s.ok()) return s;
  s = need_q8(ctx, ctx.inputs[0], "X");
  if (s.ok() && !same_params(ctx.inputs[0], ctx.outputs[0]))
    return refuse(ctx, "a quantized Resize must keep its input's per-tensor quantization parameters on its output");
  if (s.ok()) s = check_params(ctx, ctx.inputs[0], "Resize X");
  if (s.ok()) s = infer_as_float(ctx, {0}, ctx.inputs[0].dtype);
  if (!s.ok()) return s;
  if (ctx.attrs->get_string("mode", "nearest") == "linear") {
    ResizeP p;
    s = quant_resize_params(ctx, &p);
    if (!s.ok()) return s;
    size_t n = resized_axes(p, ctx.inputs[0]).size();
    if (n > 2) return refuse(ctx, "a quantized linear Resize resizes at most 2 axes, got " + std::to_string(n));
  }
  return Status::Ok();
}

Status run_resize(KernelContext& ctx) {
  Status s = resize_mode_rules(ctx);
  if (!s.ok()) return s;
  ResizeP p;
  s = quant_resize_params(ctx, &p);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const bool linear = p.mode == "linear";
  const int64_t zp = zp_at(*x.quant, 0);
  Shape cur = shape_of(x);
  std::vector<int64_t> buf(static_cast<size_t>(x.numel())), next;
  for (int64_t i = 0; i < x.numel(); ++i) buf[static_cast<size_t>(i)] = load(x, i) - (linear ? zp : 0);
  const std::vector<int> axes = resized_axes(p, x);
  for (int d : axes) {
    const int64_t n_in = cur[d], n_out = p.out[d];
    AxisTaps t = axis_taps(p, d, n_in, n_out);
    // Per output index: the distinct source indices and their merged weights (taps clamped onto
    // the same edge element add up, in tap order, before rounding), fixed to 10 fraction bits.
    std::vector<std::vector<std::pair<int64_t, int64_t>>> rows(static_cast<size_t>(n_out));
    for (int64_t o = 0; o < n_out; ++o) {
      std::vector<std::pair<int64_t, double>> merged;
      for (int k = 0; k < t.ntaps; ++k) {
        int64_t j = t.idx[o * t.ntaps + k];
        double wk = t.w[o * t.ntaps + k];
        bool found = false;
        for (auto& mj : merged)
          if (mj.first == j) { mj.second += wk; found = true; }
        if (!found) merged.push_back({j, wk});
      }
      for (auto& mj : merged) {
        int64_t wq = linear ? static_cast<int64_t>(std::nearbyint(mj.second * (1 << kResizeWeightBits))) : 1;
        if (wq != 0) rows[o].push_back({mj.first, wq});
      }
    }
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < d; ++k) outer *= cur[k];
    for (int k = d + 1; k < x.rank; ++k) inner *= cur[k];
    next.assign(static_cast<size_t>(outer * n_out * inner), 0);
    ctx.parallel_for(outer * n_out, [&](int64_t b, int64_t e, int) {
      for (int64_t line = b; line < e; ++line) {
        int64_t o = line % n_out, q = line / n_out;
        int64_t* dst = &next[static_cast<size_t>(line * inner)];
        for (const auto& tap : rows[o]) {
          const int64_t* src = &buf[static_cast<size_t>((q * n_in + tap.first) * inner)];
          for (int64_t j = 0; j < inner; ++j) dst[j] += src[j] * tap.second;
        }
      }
    });
    buf.swap(next);
    cur[d] = n_out;
  }
  int64_t lo, hi;
  qrange(y.dtype, &lo, &hi);
  const int64_t n = y.numel();
  const int bits = kResizeWeightBits * static_cast<int>(axes.size());
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = buf[static_cast<size_t>(i)];
    store(y, i, linear ? quant::clamp(quant::rounding_divide_by_pot(v, bits) + zp, lo, hi) : v);
  }
  return Status::Ok();
}

// ---- ops that select or clamp elements: their own kernels, parameters unchanged -----------

bool is_move_op(OpType op) {
  switch (op) {
    case fb::OpType_Reshape: case fb::OpType_Transpose: case fb::OpType_Flatten: case fb::OpType_Squeeze:
    case fb::OpType_Unsqueeze: case fb::OpType_Identity: case fb::OpType_Slice: case fb::OpType_Split:
    case fb::OpType_Gather: case fb::OpType_Expand: case fb::OpType_Tile: case fb::OpType_DepthToSpace:
    case fb::OpType_SpaceToDepth: case fb::OpType_MaxPool: case fb::OpType_GlobalMaxPool: case fb::OpType_Clip:
      return true;
    default:
      return false;
  }
}

Status infer_selecting(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  if (ctx.op_type == fb::OpType_Clip)
    for (int i = 1; i < ctx.num_inputs; ++i)
      if (ctx.inputs[i].present() && !same_params(x, ctx.inputs[i]))
        return refuse(ctx, "a quantized Clip needs its min/max as integers with the input's quantization parameters");
  const int outs = ctx.op_type == fb::OpType_MaxPool ? 1 : ctx.num_outputs;  // MaxPool's Indices: int64
  for (int o = 0; o < outs; ++o)
    if (ctx.outputs[o].rank >= 0 && !same_params(x, ctx.outputs[o]))
      return refuse(ctx, "a quantized " + op_name(ctx) + " must keep its input's per-tensor quantization parameters on "
                         "its output");
  if (x.quant) {
    Status s = check_params(ctx, x, "input 0");
    if (!s.ok()) return s;
  }
  if (ctx.op_type == fb::OpType_GlobalMaxPool) {
    Status s = need_q8(ctx, x, "X");
    if (s.ok()) s = infer_as_float(ctx, {0}, x.dtype);
    return s;
  }
  return g_plain[ctx.op_type](ctx);
}

// ---- dispatch -----------------------------------------------------------------------------

Status infer_quant_aware(KernelContext& ctx) {
  const OpType op = ctx.op_type;
  InferFn plain = g_plain[op];
  if (op == fb::OpType_QuantizeLinear || op == fb::OpType_DequantizeLinear || !node_quantized(ctx)) return plain(ctx);
  // float A, int8 weight B, float output: dynamic-range int8 (dynamic_quant.h), not the int8 form
  if (dynq::is_dynamic_form(ctx)) return dynq::infer_dynamic(ctx, plain);
  switch (op) {
    case fb::OpType_Conv: return infer_conv(ctx);
    case fb::OpType_MatMul: case fb::OpType_Gemm: return infer_matmul(ctx);
    case fb::OpType_Add: case fb::OpType_Mul: return infer_binary(ctx);
    case fb::OpType_Concat: return infer_concat(ctx);
    case fb::OpType_Relu: return infer_relu(ctx);
    case fb::OpType_AveragePool: case fb::OpType_GlobalAveragePool: return infer_avg(ctx);
    case fb::OpType_Resize: return infer_resize(ctx);
    default: break;
  }
  if (is_move_op(op)) return infer_selecting(ctx);
  return refuse(ctx, "no integer kernel for a quantized " + op_name(ctx) +
                         " (run it in float between DequantizeLinear and QuantizeLinear)");
}

// An int8/uint8 kernel for an op that also has a dtype-generic one: an unquantized
// node runs that (plain integer arithmetic).
template <Status (*Quantized)(KernelContext&)>
Status run_or_plain(KernelContext& ctx) {
  if (node_quantized(ctx)) return Quantized(ctx);
  const Kernel* plain = kernel_registry().find(ctx.op_type, KernelKey{}, Isa::Scalar);
  if (!plain || !plain->run)
    return ctx.error(std::string("no kernel for unquantized ") + dtype_name(ctx.inputs[0].dtype));
  return plain->run(ctx);
}

void add(KernelRegistry& r, OpType op, const char* name, Status (*run)(KernelContext&)) {
  Kernel k;
  k.name = name;
  k.run = run;
  r.add(op, DType::I8, Isa::Scalar, k);
  r.add(op, DType::U8, Isa::Scalar, k);
}

}  // namespace

void register_quant(KernelRegistry& r) {
  for (size_t op = 0; op < kNumOps; ++op) {
    InferFn plain = registered_infer(static_cast<OpType>(op));
    if (!plain || plain == infer_quant_aware) continue;
    g_plain[op] = plain;
    register_infer(static_cast<OpType>(op), infer_quant_aware);
  }
  add(r, fb::OpType_Conv, "conv_q8_reference", run_conv);
  add(r, fb::OpType_MatMul, "matmul_q8_reference", run_matmul);
  add(r, fb::OpType_Gemm, "gemm_q8_reference", run_matmul);
  add(r, fb::OpType_Add, "add_q8_reference", run_or_plain<run_binary>);
  add(r, fb::OpType_Mul, "mul_q8_reference", run_or_plain<run_binary>);
  add(r, fb::OpType_Concat, "concat_q8_reference", run_or_plain<run_concat>);
  add(r, fb::OpType_Relu, "relu_q8_reference", run_relu);
  add(r, fb::OpType_AveragePool, "average_pool_q8_reference", run_avg_pool);
  add(r, fb::OpType_GlobalAveragePool, "global_average_pool_q8_reference", run_global_pool);
  add(r, fb::OpType_GlobalMaxPool, "global_max_pool_q8_reference", run_global_pool);
  add(r, fb::OpType_Resize, "resize_q8_reference", run_resize);
  dynq::register_dynamic_reference(r);
}

}  // namespace ref
}  // namespace mobrt
