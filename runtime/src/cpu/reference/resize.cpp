// resize.cpp: reference Resize (float32), ONNX opset 19+: modes nearest,
// linear and cubic, every coordinate_transformation_mode (tf_crop_and_resize
// with roi and extrapolation_value), nearest_mode, antialias,
// exclude_outside, cubic_coeff_a, keep_aspect_ratio_policy, axes.
// Semantics: mobconv/ops/resize.py, followed step by step.
//
// Resize is separable, so it runs one resized axis at a time in double:
//   1. map every output index to a source coordinate x;
//   2. nearest: round x and clamp; linear/cubic: taps at base + t around
//      base = ceil(x) - 1, weighted by the filter at (t - (x - base)) * s,
//      where s = scale when antialias downsamples (wider filter, weights
//      renormalized) and 1 otherwise; exclude_outside drops taps outside
//      the input and renormalizes; remaining taps clamp to the edge;
//   3. tf_crop_and_resize writes extrapolation_value where x is outside.
#include "cpu/reference/resize_geometry.h"

namespace mobrt {
namespace ref {
namespace {

bool present(const KernelContext& ctx, int i) {
  return ctx.num_inputs > i && ctx.inputs[i].present() && ctx.inputs[i].numel() > 0;
}

}  // namespace

Status resize_params(const KernelContext& ctx, ResizeP* p) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  const Attrs& a = *ctx.attrs;
  const int r = x.rank;
  p->mode = a.get_string("mode", "nearest");
  p->ctm = a.get_string("coordinate_transformation_mode", "half_pixel");
  p->nearest = a.get_string("nearest_mode", "round_prefer_floor");
  p->antialias = a.get_int("antialias", 0) != 0;
  p->exclude_outside = a.get_int("exclude_outside", 0) != 0;
  p->cubic_a = a.get_float("cubic_coeff_a", -0.75f);
  p->extrapolation = a.get_float("extrapolation_value", 0.f);
  std::string policy = a.get_string("keep_aspect_ratio_policy", "stretch");
  if (p->mode != "nearest" && p->mode != "linear" && p->mode != "cubic")
    return ctx.error("mode '" + p->mode + "' is not nearest, linear or cubic");
  static const char* kCtm[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                               "asymmetric", "tf_crop_and_resize"};
  bool known = false;
  for (const char* m : kCtm) known = known || p->ctm == m;
  if (!known) return ctx.error("coordinate_transformation_mode '" + p->ctm + "' is not supported");
  if (p->nearest != "round_prefer_floor" && p->nearest != "round_prefer_ceil" && p->nearest != "floor" &&
      p->nearest != "ceil")
    return ctx.error("nearest_mode '" + p->nearest + "' is not supported");
  if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller")
    return ctx.error("keep_aspect_ratio_policy '" + policy + "' is not stretch, not_larger or not_smaller");
  Shape axes = a.get_ints("axes");
  if (axes.empty())
    for (int d = 0; d < r; ++d) axes.push_back(d);
  p->axes.clear();
  for (int64_t ax : axes) {
    int n;
    s = norm_axis(ctx, ax, r, &n);
    if (!s.ok()) return s;
    for (int prev : p->axes)
      if (prev == n) return ctx.error("axes must not repeat");
    p->axes.push_back(n);
  }
  const size_t na = p->axes.size();
  p->out = shape_of(x);
  p->scale.assign(r, 1.0);
  bool has_scales = present(ctx, 2), has_sizes = present(ctx, 3);
  if (has_scales == has_sizes) return ctx.error("exactly one of scales (input 2) and sizes (input 3) must be given");
  if (has_sizes) {
    Shape sizes;
    s = int_values(ctx, 3, &sizes, "sizes");
    if (!s.ok()) return s;
    if (sizes.size() != na) return ctx.error("sizes must have one value per axis (" + std::to_string(na) + ")");
    for (size_t i = 0; i < na; ++i) {
      if (sizes[i] < 0 || sizes[i] > (int64_t(1) << 32)) return ctx.error("sizes out of range");
      if (x.dims[p->axes[i]] == 0) {  // an empty dim resizes only to 0 (mobconv/ops/resize.py, onnxruntime)
        if (sizes[i] != 0)
          return ctx.error("cannot resize the empty dim " + std::to_string(p->axes[i]) + " of input " + shape_str(x) +
                           " to size " + std::to_string(sizes[i]));
        if (policy != "stretch")
          return ctx.error("keep_aspect_ratio_policy needs non-empty input dims on the resized axes, dim " +
                           std::to_string(p->axes[i]) + " of " + shape_str(x) + " is 0");
        continue;  // (scale 1, out 0)
      }
      p->scale[p->axes[i]] = static_cast<double>(sizes[i]) / x.dims[p->axes[i]];
      p->out[p->axes[i]] = sizes[i];
    }
    if (policy != "stretch") {
      double sc = p->scale[p->axes[0]];
      for (int ax : p->axes) sc = policy == "not_larger" ? std::min(sc, p->scale[ax]) : std::max(sc, p->scale[ax]);
      for (int ax : p->axes) {
        p->scale[ax] = sc;
        p->out[ax] = static_cast<int64_t>(sc * x.dims[ax] + 0.5);
      }
    }
  } else {
    const TensorView& sc = ctx.inputs[2];
    if (sc.dtype != DType::F32) return ctx.error("scales must be a float32 tensor");
    if (!sc.data) return value_at_run_time(ctx, 2, "scales");
    if (sc.numel() != static_cast<int64_t>(na)) return ctx.error("scales must have one value per axis");
    for (size_t i = 0; i < na; ++i) {
      double v = sc.as<float>()[i];
      if (!(v > 0) || v > 1e6) return ctx.error("scales must be positive, got " + std::to_string(v));
      p->scale[p->axes[i]] = v;
      double o = std::floor(x.dims[p->axes[i]] * v);
      if (o > 4e9) return ctx.error("output too large");
      p->out[p->axes[i]] = static_cast<int64_t>(o);
    }
  }
  p->roi_start.assign(r, 0.0);
  p->roi_end.assign(r, 1.0);
  if (p->ctm == "tf_crop_and_resize") {
    if (!present(ctx, 1)) return ctx.error("tf_crop_and_resize needs the roi input");
    const TensorView& roi = ctx.inputs[1];
    if (roi.dtype != DType::F32) return ctx.error("roi must be a float32 tensor");
    if (!roi.data) return value_at_run_time(ctx, 1, "roi");
    if (roi.numel() != static_cast<int64_t>(2 * na)) return ctx.error("roi must have 2 values per axis");
    for (int64_t i = 0; i < roi.numel(); ++i)  // a NaN roi would give arbitrary taps (the reference refuses it)
      if (!std::isfinite(roi.as<float>()[i])) {
        std::string v;
        for (int64_t j = 0; j < roi.numel(); ++j) v += (j ? ", " : "") + std::to_string(roi.as<float>()[j]);
        return ctx.error("roi must be finite, got [" + v + "]");
      }
    for (size_t i = 0; i < na; ++i) {
      p->roi_start[p->axes[i]] = roi.as<float>()[i];
      p->roi_end[p->axes[i]] = roi.as<float>()[na + i];
    }
  }
  return Status::Ok();
}

namespace {

Status infer_resize(KernelContext& ctx) {
  ResizeP p;
  Status s = resize_params(ctx, &p);
  if (!s.ok()) return s;
  return set_out(ctx, 0, DType::F32, p.out);
}

double src_coord(const ResizeP& p, int d, double y, int64_t n_in, int64_t n_out) {
  const double scale = p.scale[d], out_f = scale * n_in;  // the un-floored output length
  if (p.ctm == "half_pixel_symmetric") return n_in / 2.0 * (1 - n_out / out_f) + (y + 0.5) / scale - 0.5;
  if (p.ctm == "pytorch_half_pixel") return n_out > 1 ? (y + 0.5) / scale - 0.5 : 0.0;
  if (p.ctm == "align_corners") return out_f != 1 ? y * (n_in - 1) / (out_f - 1) : 0.0;
  if (p.ctm == "asymmetric") return y / scale;
  if (p.ctm == "tf_crop_and_resize") {
    double start = p.roi_start[d], end = p.roi_end[d];
    if (out_f != 1) return start * (n_in - 1) + y * (end - start) * (n_in - 1) / (out_f - 1);
    return 0.5 * (start + end) * (n_in - 1);
  }
  return (y + 0.5) / scale - 0.5;  // half_pixel
}

double nearest_round(const std::string& mode, double x) {
  if (mode == "floor") return std::floor(x);
  if (mode == "ceil") return std::ceil(x);
  if (x - std::floor(x) == 0.5) return mode == "round_prefer_ceil" ? std::ceil(x) : std::floor(x);
  return std::nearbyint(x);  // not a tie: nearest
}

double cubic(double t, double a) {
  t = std::fabs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

}  // namespace

AxisTaps axis_taps(const ResizeP& p, int d, int64_t n_in, int64_t n_out) {
  AxisTaps t;
  const bool crop = p.ctm == "tf_crop_and_resize";
  int64_t start = 0;
  double s = 1.0;
  if (p.mode != "nearest") {
    const double radius = p.mode == "linear" ? 1 : 2;
    s = p.antialias && p.scale[d] < 1 ? p.scale[d] : 1.0;
    start = static_cast<int64_t>(std::floor(-radius / s)) + 1;
    t.ntaps = static_cast<int>(2 - 2 * start);  // taps start .. 1 - start
  }
  t.idx.resize(static_cast<size_t>(n_out * t.ntaps));
  t.w.resize(t.idx.size());
  t.outside.assign(static_cast<size_t>(n_out), 0);
  for (int64_t o = 0; o < n_out; ++o) {
    double x = src_coord(p, d, static_cast<double>(o), n_in, n_out);
    t.outside[o] = crop && (x < 0 || x > n_in - 1);
    int64_t* idx = &t.idx[o * t.ntaps];
    double* w = &t.w[o * t.ntaps];
    if (p.mode == "nearest") {
      double k = nearest_round(p.nearest, x);
      k = std::min(std::max(k, 0.0), static_cast<double>(n_in - 1));
      idx[0] = static_cast<int64_t>(k);
      w[0] = 1;
      continue;
    }
    double base = std::ceil(x) - 1, ratio = x - base, total = 0;
    for (int k = 0; k < t.ntaps; ++k) {
      double dist = (static_cast<double>(start + k) - ratio) * s;
      w[k] = p.mode == "linear" ? std::min(std::max(1 - std::fabs(dist), 0.0), 1.0) : cubic(dist, p.cubic_a);
      total += w[k];
    }
    if (s != 1.0)
      for (int k = 0; k < t.ntaps; ++k) w[k] /= total;
    for (int k = 0; k < t.ntaps; ++k) idx[k] = static_cast<int64_t>(base) + start + k;
    if (p.exclude_outside) {
      total = 0;
      for (int k = 0; k < t.ntaps; ++k) {
        if (idx[k] < 0 || idx[k] >= n_in) w[k] = 0;
        total += w[k];
      }
      if (total == 0) total = 1;
      for (int k = 0; k < t.ntaps; ++k) w[k] /= total;
    }
    for (int k = 0; k < t.ntaps; ++k) idx[k] = std::min(std::max<int64_t>(idx[k], 0), n_in - 1);
  }
  return t;
}

namespace {

Status run_resize(KernelContext& ctx) {
  ResizeP p;
  Status s = resize_params(ctx, &p);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  const int64_t n = numel(p.out);
  if (n == 0) return Status::Ok();
  Shape cur = shape_of(x);
  for (int64_t d : cur)
    if (d == 0) return ctx.error("cannot resize an empty input to a non-empty output");
  std::vector<double> buf(x.as<float>(), x.as<float>() + x.numel()), next;
  const bool crop = p.ctm == "tf_crop_and_resize";
  for (int d : p.axes) {
    if (p.out[d] == cur[d] && p.scale[d] == 1.0 && !crop) continue;  // identity along this axis
    AxisTaps t = axis_taps(p, d, cur[d], p.out[d]);
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < d; ++k) outer *= cur[k];
    for (int k = d + 1; k < x.rank; ++k) inner *= cur[k];
    const int64_t n_in = cur[d], n_out = p.out[d];
    next.assign(static_cast<size_t>(outer * n_out * inner), 0.0);
    ctx.parallel_for(outer * n_out, [&](int64_t b, int64_t e, int) {
      for (int64_t line = b; line < e; ++line) {
        int64_t o = line % n_out, q = line / n_out;
        double* dst = &next[static_cast<size_t>(line * inner)];
        if (t.outside[o]) {
          for (int64_t j = 0; j < inner; ++j) dst[j] = p.extrapolation;
          continue;
        }
        for (int k = 0; k < t.ntaps; ++k) {
          double w = t.w[o * t.ntaps + k];
          const double* src = &buf[static_cast<size_t>((q * n_in + t.idx[o * t.ntaps + k]) * inner)];
          for (int64_t j = 0; j < inner; ++j) dst[j] += src[j] * w;
        }
      }
    });
    buf.swap(next);
    cur[d] = n_out;
  }
  float* py = ctx.outputs[0].as<float>();
  for (int64_t i = 0; i < n; ++i) py[i] = static_cast<float>(buf[static_cast<size_t>(i)]);
  return Status::Ok();
}

}  // namespace

void register_resize(KernelRegistry& r) {
  reg(r, fb::OpType_Resize, DType::F32, "resize_f32_reference", infer_resize, run_resize);
}

}  // namespace ref
}  // namespace mobrt
