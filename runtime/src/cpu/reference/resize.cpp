// resize.cpp: reference Resize (float32), modes nearest and linear
// (n-linear over every resized dim), the ONNX coordinate transformation
// modes and nearest rounding modes. Cubic and antialias are not
// implemented (the shape function reports them as unsupported).
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

struct ResizeP { Shape out; std::vector<double> scale; std::string mode, ctm, nearest; };

Status resize_params(const KernelContext& ctx, ResizeP* p) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  int r = x.rank;
  p->mode = ctx.attrs->get_string("mode", "nearest");
  p->ctm = ctx.attrs->get_string("coordinate_transformation_mode", "half_pixel");
  p->nearest = ctx.attrs->get_string("nearest_mode", "round_prefer_floor");
  if (p->mode != "nearest" && p->mode != "linear") return Status::Error(StatusCode::kUnsupported, ctx.error("mode '" + p->mode + "' is not supported (nearest, linear)").message);
  if (ctx.attrs->get_int("antialias", 0) != 0) return Status::Error(StatusCode::kUnsupported, ctx.error("antialias is not supported").message);
  if (ctx.attrs->get_string("keep_aspect_ratio_policy", "stretch") != "stretch") return Status::Error(StatusCode::kUnsupported, ctx.error("keep_aspect_ratio_policy other than stretch is not supported").message);
  if (p->ctm != "half_pixel" && p->ctm != "pytorch_half_pixel" && p->ctm != "align_corners" && p->ctm != "asymmetric" &&
      p->ctm != "tf_half_pixel_for_nn" && p->ctm != "half_pixel_symmetric")
    return ctx.error("coordinate_transformation_mode '" + p->ctm + "' is not supported");
  if (p->nearest != "round_prefer_floor" && p->nearest != "round_prefer_ceil" && p->nearest != "floor" && p->nearest != "ceil")
    return ctx.error("nearest_mode '" + p->nearest + "' is not supported");
  Shape axes = ctx.attrs->get_ints("axes");
  if (axes.empty()) for (int d = 0; d < r; ++d) axes.push_back(d);
  std::vector<int> ax;
  for (int64_t a : axes) { int n; s = norm_axis(ctx, a, r, &n); if (!s.ok()) return s; ax.push_back(n); }
  p->out = shape_of(x);
  p->scale.assign(r, 1.0);
  bool has_sizes = ctx.num_inputs > 3 && ctx.inputs[3].present();
  bool has_scales = ctx.num_inputs > 2 && ctx.inputs[2].present() && ctx.inputs[2].numel() > 0;
  if (has_sizes) {
    Shape sizes;
    s = int_values(ctx, 3, &sizes, "sizes");
    if (!s.ok()) return s;
    if (sizes.size() != ax.size()) return ctx.error("sizes must have one value per axis");
    for (size_t i = 0; i < ax.size(); ++i) {
      if (sizes[i] < 0 || sizes[i] > (int64_t(1) << 32)) return ctx.error("sizes out of range");
      p->out[ax[i]] = sizes[i];
      p->scale[ax[i]] = x.dims[ax[i]] ? static_cast<double>(sizes[i]) / x.dims[ax[i]] : 1.0;
    }
  } else if (has_scales) {
    const TensorView& sc = ctx.inputs[2];
    if (sc.dtype != DType::F32 || !sc.data) return ctx.error("scales must be a known float32 tensor");
    if (sc.numel() != static_cast<int64_t>(ax.size())) return ctx.error("scales must have one value per axis");
    for (size_t i = 0; i < ax.size(); ++i) {
      double v = sc.as<float>()[i];
      if (!(v > 0) || v > 1e6) return ctx.error("scales must be positive");
      p->scale[ax[i]] = v;
      double o = std::floor(x.dims[ax[i]] * v);
      if (o > 4e9) return ctx.error("output too large");
      p->out[ax[i]] = static_cast<int64_t>(o);
    }
  } else {
    return ctx.error("needs scales or sizes");
  }
  return Status::Ok();
}

Status infer_resize(KernelContext& ctx) {
  ResizeP p;
  Status s = resize_params(ctx, &p);
  if (!s.ok()) return s;
  return set_out(ctx, 0, DType::F32, p.out);
}

double src_coord(const ResizeP& p, int64_t o, int64_t in, int64_t out, double scale) {
  if (p.ctm == "align_corners") return out == 1 ? 0.0 : static_cast<double>(o) * (in - 1) / (out - 1);
  if (p.ctm == "asymmetric") return o / scale;
  if (p.ctm == "tf_half_pixel_for_nn") return (o + 0.5) / scale;
  if (p.ctm == "pytorch_half_pixel") return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
  if (p.ctm == "half_pixel_symmetric") {
    double adj = static_cast<double>(out) / (scale * in);
    double center = in / 2.0;
    double off = center * (1 - adj);
    return off + (o + 0.5) / scale - 0.5;
  }
  return (o + 0.5) / scale - 0.5;  // half_pixel
}

int64_t nearest_index(const ResizeP& p, double x, int64_t in) {
  double r;
  if (p.nearest == "floor") r = std::floor(x);
  else if (p.nearest == "ceil") r = std::ceil(x);
  else if (p.nearest == "round_prefer_ceil") r = std::floor(x + 0.5);
  else r = (x - std::floor(x) == 0.5) ? std::floor(x) : std::round(x);
  int64_t i = static_cast<int64_t>(std::max(-1.0, std::min(r, static_cast<double>(in))));
  return std::min(std::max<int64_t>(i, 0), in - 1);
}

Status run_resize(KernelContext& ctx) {
  ResizeP p;
  Status s = resize_params(ctx, &p);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  int r = x.rank;
  Shape xs = shape_of(x), xst = row_major_strides(xs);
  int64_t n = numel(p.out);
  if (n == 0) return Status::Ok();
  for (int d = 0; d < r; ++d) if (xs[d] == 0) return ctx.error("cannot resize an empty input");
  // Per dim, per output coordinate: two source indices and the weight of the second.
  std::vector<std::vector<int64_t>> i0(r), i1(r);
  std::vector<std::vector<double>> w1(r);
  for (int d = 0; d < r; ++d) {
    for (int64_t o = 0; o < p.out[d]; ++o) {
      if (p.out[d] == xs[d] && p.scale[d] == 1.0 && p.ctm != "tf_half_pixel_for_nn") {
        i0[d].push_back(o); i1[d].push_back(o); w1[d].push_back(0); continue;
      }
      double c = src_coord(p, o, xs[d], p.out[d], p.scale[d]);
      if (p.mode == "nearest") {
        int64_t k = nearest_index(p, c, xs[d]);
        i0[d].push_back(k); i1[d].push_back(k); w1[d].push_back(0);
      } else {
        c = std::max(0.0, std::min(c, static_cast<double>(xs[d] - 1)));
        int64_t a = static_cast<int64_t>(std::floor(c));
        int64_t b = std::min(a + 1, xs[d] - 1);
        i0[d].push_back(a); i1[d].push_back(b); w1[d].push_back(c - a);
      }
    }
  }
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  std::vector<int64_t> idx(r);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i;
    for (int d = r - 1; d >= 0; --d) { idx[d] = rem % p.out[d]; rem /= p.out[d]; }
    double acc = 0;
    int corners = 1 << r;
    for (int m = 0; m < corners; ++m) {
      double w = 1;
      int64_t off = 0;
      for (int d = 0; d < r && w != 0; ++d) {
        bool hi = (m >> d) & 1;
        double wd = hi ? w1[d][idx[d]] : 1 - w1[d][idx[d]];
        w *= wd;
        off += (hi ? i1[d][idx[d]] : i0[d][idx[d]]) * xst[d];
      }
      if (w != 0) acc += w * px[off];
    }
    py[i] = static_cast<float>(acc);
  }
  return Status::Ok();
}

}  // namespace

void register_resize(KernelRegistry& r) {
  reg(r, fb::OpType_Resize, DType::F32, "resize_f32_reference", infer_resize, run_resize);
}

}  // namespace ref
}  // namespace mobrt
