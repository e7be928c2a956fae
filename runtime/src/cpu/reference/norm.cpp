// norm.cpp: reference BatchNormalization (inference), InstanceNormalization,
// LayerNormalization, LRN, LpNormalization, MeanVarianceNormalization.
// Semantics: mobconv/ops/norm.py. InstanceNormalization, LayerNormalization, LRN and
// LpNormalization compute in float32 as the reference does (a square over ~1.8e19 is inf);
// the means of InstanceNormalization and LayerNormalization add in numpy's order (pairwise,
// as numpy sums a contiguous float32 run), so they round and overflow to inf exactly where
// the reference's do, and NaN/inf come out where the reference has them.
// MeanVarianceNormalization computes in double (so does the reference).
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

// numpy's float32 sum of get(0..n-1) (a contiguous run): pairwise, with 8 accumulators in
// blocks of up to 128 values; the same roundings, and the same overflows, as numpy's.
template <typename G>
float pairwise_sum(const G& get, int64_t lo, int64_t n) {
  if (n < 8) {
    float r = -0.f;
    for (int64_t i = 0; i < n; ++i) r += get(lo + i);
    return r;
  }
  if (n <= 128) {
    float r[8];
    for (int j = 0; j < 8; ++j) r[j] = get(lo + j);
    int64_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += get(lo + i + j);
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += get(lo + i);
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(get, lo, n2) + pairwise_sum(get, lo + n2, n - n2);
}

// numpy's float32 mean of x[0..n) and the mean of the squares of x - mean.
inline void mean_var_f32(const float* x, int64_t n, float* mean, float* var) {
  const float fn = static_cast<float>(n);
  const float m = pairwise_sum([x](int64_t i) { return x[i]; }, 0, n) / fn;
  *mean = m;
  *var = pairwise_sum([x, m](int64_t i) { float d = x[i] - m; return d * d; }, 0, n) / fn;
}

Status need_all_f32(const KernelContext& ctx) {
  for (int i = 0; i < ctx.num_inputs; ++i) {
    Status s = need_dtype(ctx, i, {DType::F32});
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status per_channel(const KernelContext& ctx, int first, int last) {
  const TensorView& x = ctx.inputs[0];
  if (x.rank < 2) return ctx.error("X must have rank >= 2, got " + shape_str(x));
  for (int i = first; i <= last; ++i)
    if (ctx.inputs[i].numel() != x.dims[1])
      return ctx.error("input " + std::to_string(i) + " " + shape_str(ctx.inputs[i]) + " must have " + std::to_string(x.dims[1]) + " values (one per channel)");
  return Status::Ok();
}

Status infer_bn(KernelContext& ctx) {
  Status s = need_all_f32(ctx);
  if (s.ok()) s = per_channel(ctx, 1, 4);
  if (!s.ok()) return s;
  if (ctx.num_outputs > 1) return ctx.error("training-mode outputs are not supported");
  return infer_same(ctx);
}

Status run_bn(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  float eps = ctx.attrs->get_float("epsilon", 1e-5f);
  int64_t n = x.dims[0], c = x.dims[1], inner = x.numel() / std::max<int64_t>(1, n * c);
  const float *sc = ctx.inputs[1].as<float>(), *b = ctx.inputs[2].as<float>(), *mean = ctx.inputs[3].as<float>(),
              *var = ctx.inputs[4].as<float>(), *px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  for (int64_t i = 0; i < n * c; ++i) {
    int64_t ci = i % c;
    float inv = sc[ci] / std::sqrt(var[ci] + eps);
    for (int64_t j = 0; j < inner; ++j) py[i * inner + j] = (px[i * inner + j] - mean[ci]) * inv + b[ci];
  }
  return Status::Ok();
}

Status infer_in(KernelContext& ctx) {
  Status s = need_all_f32(ctx);
  if (s.ok()) s = per_channel(ctx, 1, 2);
  if (!s.ok()) return s;
  return infer_same(ctx);
}

Status run_in(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  float eps = ctx.attrs->get_float("epsilon", 1e-5f);
  int64_t n = x.dims[0], c = x.dims[1], inner = x.numel() / std::max<int64_t>(1, n * c);
  const float *sc = ctx.inputs[1].as<float>(), *b = ctx.inputs[2].as<float>(), *px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  for (int64_t i = 0; i < n * c; ++i) {
    const float* xi = px + i * inner;
    float mean, var;
    mean_var_f32(xi, inner, &mean, &var);
    const float den = std::sqrt(var + eps);
    for (int64_t j = 0; j < inner; ++j) py[i * inner + j] = (xi[j] - mean) / den * sc[i % c] + b[i % c];
  }
  return Status::Ok();
}

Status infer_ln(KernelContext& ctx) {
  Status s = need_all_f32(ctx);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  int axis;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", -1), x.rank, &axis);
  if (!s.ok()) return s;
  Shape inner(x.dims + axis, x.dims + x.rank);
  if (numel(inner) == 0)  // (mobconv/ops/norm.py and onnxruntime refuse it too)
    return ctx.error("the normalized dims " + shape_str(x) + "[" + std::to_string(axis) + ":] must not be empty");
  for (int i = 1; i < ctx.num_inputs; ++i) {
    if (!ctx.inputs[i].present()) continue;
    Shape out;
    Status b = broadcast(ctx, {shape_of(ctx.inputs[i]), inner}, &out);
    if (!b.ok() || out != inner) return ctx.error("Scale/B " + shape_str(ctx.inputs[i]) + " must broadcast to the normalized dims " + shape_str(inner));
  }
  Shape stat(x.dims, x.dims + x.rank);
  for (int d = axis; d < x.rank; ++d) stat[d] = 1;
  s = set_out(ctx, 0, DType::F32, shape_of(x));
  if (s.ok()) s = set_out(ctx, 1, DType::F32, stat);
  if (s.ok()) s = set_out(ctx, 2, DType::F32, stat);
  return s;
}

Status run_ln(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int axis;
  norm_axis(ctx, ctx.attrs->get_int("axis", -1), x.rank, &axis);
  float eps = ctx.attrs->get_float("epsilon", 1e-5f);
  Shape inner_shape(x.dims + axis, x.dims + x.rank);
  int64_t inner = numel(inner_shape), outer = numel(Shape(x.dims, x.dims + axis));
  Shape sst = bcast_strides(shape_of(ctx.inputs[1]), inner_shape);
  bool hb = ctx.num_inputs > 2 && ctx.inputs[2].present();
  Shape bst = hb ? bcast_strides(shape_of(ctx.inputs[2]), inner_shape) : Shape();
  std::vector<int64_t> soff(inner), boff(inner);
  Shape st1[1] = {sst};
  for_each_bcast<1>(inner_shape, st1, [&](int64_t i, const int64_t* o) { soff[i] = o[0]; });
  if (hb) { Shape st2[1] = {bst}; for_each_bcast<1>(inner_shape, st2, [&](int64_t i, const int64_t* o) { boff[i] = o[0]; }); }
  const float *px = x.as<float>(), *sc = ctx.inputs[1].as<float>(), *b = hb ? ctx.inputs[2].as<float>() : nullptr;
  float* py = ctx.outputs[0].as<float>();
  float* pm = ctx.num_outputs > 1 && ctx.outputs[1].data ? ctx.outputs[1].as<float>() : nullptr;
  float* pi = ctx.num_outputs > 2 && ctx.outputs[2].data ? ctx.outputs[2].as<float>() : nullptr;
  for (int64_t o = 0; o < outer; ++o) {
    const float* xi = px + o * inner;
    float mean, var;
    mean_var_f32(xi, inner, &mean, &var);
    const float inv = 1.f / std::sqrt(var + eps);
    for (int64_t j = 0; j < inner; ++j) {
      float y = (xi[j] - mean) * inv * sc[soff[j]];
      if (b) y += b[boff[j]];
      py[o * inner + j] = y;
    }
    if (pm) pm[o] = mean;
    if (pi) pi[o] = inv;
  }
  return Status::Ok();
}

Status infer_lrn(KernelContext& ctx) {
  Status s = need_all_f32(ctx);
  if (!s.ok()) return s;
  if (!ctx.attrs->has("size") || ctx.attrs->get_int("size", 0) < 1 || ctx.attrs->get_int("size", 0) > (1 << 20))
    return ctx.error("size must be in [1, 2^20]");
  if (ctx.inputs[0].rank < 2) return ctx.error("X must have rank >= 2");
  return infer_same(ctx);
}

Status run_lrn(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int64_t size = ctx.attrs->get_int("size", 1);
  float alpha = ctx.attrs->get_float("alpha", 1e-4f), beta = ctx.attrs->get_float("beta", 0.75f),
        bias = ctx.attrs->get_float("bias", 1.f);
  int64_t n = x.dims[0], c = x.dims[1], inner = x.numel() / std::max<int64_t>(1, n * c);
  int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  for (int64_t ni = 0; ni < n; ++ni)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t j = 0; j < inner; ++j) {
        double sum = 0;
        for (int64_t cc = std::max<int64_t>(0, ci - lo); cc <= std::min(c - 1, ci + hi); ++cc) {
          float v = px[(ni * c + cc) * inner + j];
          sum += static_cast<double>(v * v);  // (a float32 square, as the reference's)
        }
        float v = px[(ni * c + ci) * inner + j];
        py[(ni * c + ci) * inner + j] = v / std::pow(bias + (alpha / size) * static_cast<float>(sum), beta);
      }
  return Status::Ok();
}

Status infer_lp(KernelContext& ctx) {
  Status s = need_all_f32(ctx);
  if (!s.ok()) return s;
  int axis;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", -1), ctx.inputs[0].rank, &axis);
  if (!s.ok()) return s;
  int64_t p = ctx.attrs->get_int("p", 2);
  if (p != 1 && p != 2) return ctx.error("p must be 1 or 2, got " + std::to_string(p));
  return infer_same(ctx);
}

// Calls f(base, stride, count) for every 1-D line along `axis`.
template <typename F>
void for_each_line(const TensorView& x, int axis, F f) {
  int64_t outer = 1, inner = 1, len = x.rank ? x.dims[axis] : 1;
  for (int d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int d = axis + 1; d < x.rank; ++d) inner *= x.dims[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) f(o * len * inner + i, inner, len);
}

Status run_lp(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int axis;
  norm_axis(ctx, ctx.attrs->get_int("axis", -1), x.rank, &axis);
  int64_t p = ctx.attrs->get_int("p", 2);
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  for_each_line(x, axis, [&](int64_t base, int64_t st, int64_t len) {
    double norm = 0;
    for (int64_t k = 0; k < len; ++k) {
      float v = px[base + k * st];
      norm += p == 1 ? std::fabs(v) : static_cast<double>(v * v);  // float32 squares, as the reference's
    }
    float nf = p == 1 ? static_cast<float>(norm) : std::sqrt(static_cast<float>(norm));
    for (int64_t k = 0; k < len; ++k) py[base + k * st] = nf == 0.f ? 0.f : px[base + k * st] / nf;
  });
  return Status::Ok();
}

Status mvn_axes(const KernelContext& ctx, std::vector<bool>* reduce) {
  const TensorView& x = ctx.inputs[0];
  Shape axes = ctx.attrs->has("axes") ? ctx.attrs->get_ints("axes") : Shape{0, 2, 3};
  reduce->assign(x.rank, false);
  for (int64_t a : axes) {
    int ax;
    Status s = dim_axis(ctx, a, x.rank, &ax);
    if (!s.ok()) return s;
    (*reduce)[ax] = true;
  }
  return Status::Ok();
}

Status infer_mvn(KernelContext& ctx) {
  Status s = need_all_f32(ctx);
  if (!s.ok()) return s;
  std::vector<bool> red;
  s = mvn_axes(ctx, &red);
  if (!s.ok()) return s;
  return infer_same(ctx);
}

Status run_mvn(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  std::vector<bool> red;
  mvn_axes(ctx, &red);
  Shape xs = shape_of(x), ks = xs;
  for (int d = 0; d < x.rank; ++d) if (red[d]) ks[d] = 1;
  int64_t nk = numel(ks), n = x.numel();
  Shape st[1] = {bcast_strides(ks, xs)};
  std::vector<double> sum(nk, 0), sq(nk, 0);
  std::vector<int64_t> cnt(nk, 0);
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  for_each_bcast<1>(xs, st, [&](int64_t i, const int64_t* o) { sum[o[0]] += px[i]; cnt[o[0]]++; });
  for (int64_t k = 0; k < nk; ++k) sum[k] /= std::max<int64_t>(cnt[k], 1);
  for_each_bcast<1>(xs, st, [&](int64_t i, const int64_t* o) { double d = px[i] - sum[o[0]]; sq[o[0]] += d * d; });
  for_each_bcast<1>(xs, st, [&](int64_t i, const int64_t* o) {
    double sd = std::sqrt(sq[o[0]] / std::max<int64_t>(cnt[o[0]], 1));
    py[i] = static_cast<float>((px[i] - sum[o[0]]) / (sd + 1e-9));
  });
  (void)n;
  return Status::Ok();
}

}  // namespace

void register_norm(KernelRegistry& r) {
  reg(r, fb::OpType_BatchNormalization, DType::F32, "batch_norm_f32_reference", infer_bn, run_bn);
  reg(r, fb::OpType_InstanceNormalization, DType::F32, "instance_norm_f32_reference", infer_in, run_in);
  reg(r, fb::OpType_LayerNormalization, DType::F32, "layer_norm_f32_reference", infer_ln, run_ln);
  reg(r, fb::OpType_LRN, DType::F32, "lrn_f32_reference", infer_lrn, run_lrn);
  reg(r, fb::OpType_LpNormalization, DType::F32, "lp_norm_f32_reference", infer_lp, run_lp);
  reg(r, fb::OpType_MeanVarianceNormalization, DType::F32, "mvn_f32_reference", infer_mvn, run_mvn);
}

}  // namespace ref
}  // namespace mobrt
