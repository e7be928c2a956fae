// grid_sample.cpp: reference GridSample (ONNX opset 22; specification and the
// per-point steps: mobconv/ops/grid_sample.py). X (N, C, D1..Dr) sampled at
// grid (N, H1..Hr, r) of normalized coordinates (x first, i.e. reversed dims),
// modes linear / nearest / cubic (also the opset-16 names bilinear, bicubic),
// padding zeros / border / reflection, any r from 1 to 6. Coordinates are
// denormalized in float32, the rest computed in double.
#include "cpu/reference/dtype_dispatch.h"

namespace mobrt {
namespace ref {
namespace {

enum class Mode { Linear, Nearest, Cubic };
enum class Pad { Zeros, Border, Reflection };

struct Params { Mode mode; Pad pad; bool align; };

Status params(const KernelContext& ctx, Params* p) {
  std::string m = ctx.attrs->get_string("mode", "linear"), pm = ctx.attrs->get_string("padding_mode", "zeros");
  if (m == "linear" || m == "bilinear") p->mode = Mode::Linear;
  else if (m == "nearest") p->mode = Mode::Nearest;
  else if (m == "cubic" || m == "bicubic") p->mode = Mode::Cubic;
  else return ctx.error("mode '" + m + "' is not one of linear, nearest, cubic");
  if (pm == "zeros") p->pad = Pad::Zeros;
  else if (pm == "border") p->pad = Pad::Border;
  else if (pm == "reflection") p->pad = Pad::Reflection;
  else return ctx.error("padding_mode '" + pm + "' is not one of zeros, border, reflection");
  p->align = ctx.attrs->get_int("align_corners", 0) != 0;
  return Status::Ok();
}

Status infer_grid_sample(KernelContext& ctx) {
  Params p;
  Status s = params(ctx, &p);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &g = ctx.inputs[1];
  s = need_dtype(ctx, 0, {DType::F32, DType::F16, DType::BF16});
  if (s.ok()) s = need_dtype(ctx, 1, {DType::F32, DType::F16, DType::BF16});
  if (!s.ok()) return s;
  const int r = x.rank - 2;
  if (r < 1 || r > 6 || g.rank != r + 2 || g.dims[r + 1] != r || g.dims[0] != x.dims[0])
    return ctx.error("X " + shape_str(x) + " and grid " + shape_str(g) + " must be (N, C, D1..Dr) and (N, H1..Hr, r)");
  for (int d = 2; d < x.rank; ++d)  // nothing to sample from (border would clamp a tap to -1)
    if (x.dims[d] == 0)
      return ctx.error("X " + shape_str(x) + " has an empty spatial dim: GridSample needs D1..Dr >= 1");
  Shape out{x.dims[0], x.dims[1]};
  for (int d = 1; d <= r; ++d) out.push_back(g.dims[d]);
  return set_out(ctx, 0, x.dtype, out);
}

double reflect(double x, double lo, double hi) {
  double span = hi - lo;
  if (span <= 0) return lo;
  if (x < lo) {
    double dx = lo - x, n = std::trunc(dx / span), rem = dx - n * span;
    return std::fmod(n, 2.0) == 0 ? lo + rem : hi - rem;
  }
  if (x > hi) {
    double dx = x - hi, n = std::trunc(dx / span), rem = dx - n * span;
    return std::fmod(n, 2.0) == 0 ? hi - rem : lo + rem;
  }
  return x;
}

void cubic(double t, double* c) {
  const double a = -0.75;
  c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
  c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
  c[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
}

// Taps of one spatial dim: index (clamped into range), weight, and whether the tap reads X
// (false: it reads padding zeros).
int taps(const Params& p, float coord, int64_t d, int64_t* idx, double* w, bool* valid) {
  const double lo = p.align ? 0.0 : -0.5, hi = p.align ? d - 1.0 : d - 0.5;
  double x = coord;
  if (p.mode == Mode::Nearest) x = std::nearbyint(x);  // half to even (default rounding mode)
  if (x < lo || x > hi) {
    if (p.pad == Pad::Border) x = std::min(std::max(x, 0.0), d - 1.0);
    else if (p.pad == Pad::Reflection) x = reflect(x, lo, hi);
  }
  // A NaN coordinate gives NaN at the point (NaN weights); +-inf (left only by zeros
  // padding) and anything far outside read padding only. Clamped so that no non-finite or
  // huge value is converted to an integer (mobconv/ops/grid_sample.py: the same steps).
  const bool nan = std::isnan(x);
  x = nan ? 0.0 : std::min(std::max(x, -(d + 4.0)), d + 4.0);
  int n;
  int64_t raw[4];
  if (p.mode == Mode::Nearest) {
    n = 1;
    raw[0] = static_cast<int64_t>(std::trunc(x));
    w[0] = 1;
  } else {
    double f = std::floor(x), t = x - f;
    int64_t b = static_cast<int64_t>(f);
    if (p.mode == Mode::Linear) {
      n = 2;
      raw[0] = b; raw[1] = b + 1;
      w[0] = 1 - t; w[1] = t;
    } else {
      n = 4;
      for (int k = 0; k < 4; ++k) raw[k] = b - 1 + k;
      cubic(t, w);
    }
  }
  for (int k = 0; k < n; ++k) {
    int64_t i = raw[k];
    valid[k] = true;
    if (nan) {
      w[k] = std::numeric_limits<double>::quiet_NaN();
    } else if (p.pad == Pad::Zeros) {
      valid[k] = i >= 0 && i < d;
    } else if (p.pad == Pad::Reflection) {
      i = static_cast<int64_t>(std::trunc(reflect(static_cast<double>(i), lo, hi)));
    }
    idx[k] = std::min<int64_t>(std::max<int64_t>(i, 0), d - 1);
  }
  return n;
}

template <typename S>
void run_t(KernelContext& ctx, const Params& p) {
  using E = Elem<S>;
  const TensorView &x = ctx.inputs[0], &g = ctx.inputs[1];
  const int r = x.rank - 2;
  const int64_t n = x.dims[0], c = x.dims[1];
  int64_t plane = 1, points = 1;
  for (int d = 0; d < r; ++d) plane *= x.dims[2 + d];
  for (int d = 1; d <= r; ++d) points *= g.dims[d];
  Shape st(r, 1);
  for (int d = r - 2; d >= 0; --d) st[d] = st[d + 1] * x.dims[3 + d];
  S* y = ctx.outputs[0].as<S>();
  const S* gs = g.as<S>();
  int64_t idx[6][4];
  double w[6][4];
  bool valid[6][4];
  int cnt[6];
  for (int64_t b = 0; b < n; ++b)
    for (int64_t q = 0; q < points; ++q) {
      const S* u = gs + (b * points + q) * r;
      for (int d = 0; d < r; ++d) {
        const float v = E::load(u[r - 1 - d]), len = static_cast<float>(x.dims[2 + d]);
        const float coord = p.align ? (v + 1.f) / 2.f * (len - 1.f) : ((v + 1.f) * len - 1.f) / 2.f;
        cnt[d] = taps(p, coord, x.dims[2 + d], idx[d], w[d], valid[d]);
      }
      int64_t combos = 1;
      for (int d = 0; d < r; ++d) combos *= cnt[d];
      for (int64_t ch = 0; ch < c; ++ch) {
        const S* src = x.as<S>() + (b * c + ch) * plane;
        double acc = 0;
        for (int64_t k = 0; k < combos; ++k) {
          int64_t rem = k, off = 0;
          double wt = 1;
          bool in = true;
          for (int d = r - 1; d >= 0; --d) {
            int t = static_cast<int>(rem % cnt[d]);
            rem /= cnt[d];
            off += idx[d][t] * st[d];
            wt *= w[d][t];
            in = in && valid[d][t];
          }
          // a tap in the padding adds nothing; one in X adds weight * value (0 * inf is NaN)
          if (in) acc += wt * static_cast<double>(E::load(src[off]));
        }
        y[(b * c + ch) * points + q] = E::store(static_cast<float>(acc));
      }
    }
}

Status run_grid_sample(KernelContext& ctx) {
  Params p;
  Status s = params(ctx, &p);
  if (!s.ok()) return s;
  if (ctx.inputs[1].dtype != ctx.inputs[0].dtype) return ctx.error("grid must have X's dtype");
  switch (ctx.inputs[0].dtype) {
    case DType::F16: run_t<f16>(ctx, p); break;
    case DType::BF16: run_t<bf16>(ctx, p); break;
    default: run_t<float>(ctx, p); break;
  }
  return Status::Ok();
}

}  // namespace

void register_grid_sample(KernelRegistry& r) {
  reg(r, fb::OpType_GridSample, DType::Any, "grid_sample_reference", infer_grid_sample, run_grid_sample);
}

}  // namespace ref
}  // namespace mobrt
