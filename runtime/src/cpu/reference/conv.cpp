// conv.cpp: reference Conv and ConvTranspose (1-3 spatial dims, groups,
// dilations, strides, pads/auto_pad, fused activation, Conv's optional fused residual
// input R added before the activation). Semantics:
// mobconv/ops/conv.py. Direct loops: Conv sums over (C/group, kernel) per
// output element; ConvTranspose scatters each input pixel times the kernel
// into the full output, then crops by the pads.
#include "cpu/reference/window.h"

namespace mobrt {
namespace ref {
namespace {

Status check_conv_inputs(KernelContext& ctx, Shape* kernel) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  for (int i = 1; i < ctx.num_inputs; ++i) {
    s = need_dtype(ctx, i, {DType::F32});
    if (!s.ok()) return s;
  }
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  if (x.rank < 3 || x.rank > 5) return ctx.error("X must have rank 3 to 5, got shape " + shape_str(x));
  if (w.rank != x.rank) return ctx.error("W rank must equal X rank (X " + shape_str(x) + ", W " + shape_str(w) + ")");
  *kernel = ctx.attrs->get_ints("kernel_shape");
  Shape wk(w.dims + 2, w.dims + w.rank);
  if (kernel->empty()) *kernel = wk;
  if (*kernel != wk) return ctx.error("kernel_shape " + shape_str(*kernel) + " does not match W spatial dims " + shape_str(wk));
  int64_t g = ctx.attrs->get_int("group", 1);
  if (g < 1 || g > (1 << 24)) return ctx.error("group must be in [1, 2^24], got " + std::to_string(g));
  Activation act;
  s = Activation::parse(*ctx.attrs, &act);
  if (!s.ok()) return ctx.error(s.message);
  return Status::Ok();
}

Status infer_conv(KernelContext& ctx) {
  Shape kernel;
  Status s = check_conv_inputs(ctx, &kernel);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  int64_t g = ctx.attrs->get_int("group", 1);
  if (x.dims[1] != w.dims[1] * g)
    return ctx.error("X has " + std::to_string(x.dims[1]) + " channels but W " + shape_str(w) + " with group=" +
                     std::to_string(g) + " expects " + std::to_string(w.dims[1] * g));
  if (w.dims[0] % g) return ctx.error("W output channels " + std::to_string(w.dims[0]) + " not divisible by group " + std::to_string(g));
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && (ctx.inputs[2].rank != 1 || ctx.inputs[2].dims[0] != w.dims[0]))
    return ctx.error("B must have shape (" + std::to_string(w.dims[0]) + ",), got " + shape_str(ctx.inputs[2]));
  Window win;
  s = make_window(ctx, x, kernel, false, &win);
  if (!s.ok()) return s;
  const Shape out = window_out_shape(x, w.dims[0], win);
  if (ctx.num_inputs > 3 && ctx.inputs[3].present() &&
      Shape(ctx.inputs[3].dims, ctx.inputs[3].dims + ctx.inputs[3].rank) != out)
    return ctx.error("R (fused residual) must have the output shape " + shape_str(out) + ", got " +
                     shape_str(ctx.inputs[3]));
  return set_out(ctx, 0, DType::F32, out);
}

Status run_conv(KernelContext& ctx) {
  Shape kernel;
  Window win;
  Status s = check_conv_inputs(ctx, &kernel);
  if (s.ok()) s = make_window(ctx, ctx.inputs[0], kernel, false, &win);
  if (!s.ok()) return s;
  Activation act;
  Activation::parse(*ctx.attrs, &act);
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  const float* bias = ctx.num_inputs > 2 && ctx.inputs[2].present() ? ctx.inputs[2].as<float>() : nullptr;
  const float* residual = ctx.num_inputs > 3 && ctx.inputs[3].present() ? ctx.inputs[3].as<float>() : nullptr;
  int64_t n = x.dims[0], c = x.dims[1], m = w.dims[0], g = ctx.attrs->get_int("group", 1);
  int64_t cg = c / g, mg = m / g;
  const int64_t* I = win.in; const int64_t* O = win.out;
  int64_t isz = I[0] * I[1] * I[2], osz = O[0] * O[1] * O[2], ksz = win.k[0] * win.k[1] * win.k[2];
  const float* px = x.as<float>();
  const float* pw = w.as<float>();
  float* py = ctx.outputs[0].as<float>();
  ctx.parallel_for(n * m, [&](int64_t b, int64_t e, int) {
    for (int64_t nm = b; nm < e; ++nm) {
      int64_t ni = nm / m, mi = nm % m, gi = mi / mg;
      float* y = py + nm * osz;
      for (int64_t o0 = 0; o0 < O[0]; ++o0)
        for (int64_t o1 = 0; o1 < O[1]; ++o1)
          for (int64_t o2 = 0; o2 < O[2]; ++o2) {
            double acc = bias ? bias[mi] : 0.0;
            for (int64_t ci = 0; ci < cg; ++ci) {
              const float* xc = px + (ni * c + gi * cg + ci) * isz;
              const float* wc = pw + (mi * cg + ci) * ksz;
              for_each_tap(win, o0, o1, o2, [&](int64_t in, int64_t k) {
                acc += static_cast<double>(xc[in]) * wc[k];
              });
            }
            const int64_t o = (o0 * O[1] + o1) * O[2] + o2;
            float v = static_cast<float>(acc);
            if (residual != nullptr) v += residual[nm * osz + o];
            y[o] = act.apply(v);
          }
    }
  });
  return Status::Ok();
}

// ConvTranspose geometry (mobconv/ops/conv.py _transpose_geometry).
struct TGeom { int nd; int64_t in[3], k[3], s[3], d[3], pb[3], out[3]; };

Status transpose_geometry(const KernelContext& ctx, const Shape& kernel, TGeom* t) {
  const TensorView& x = ctx.inputs[0];
  int nd = x.rank - 2;
  Shape strides = ctx.attrs->get_ints("strides"), dil = ctx.attrs->get_ints("dilations"), pads = ctx.attrs->get_ints("pads");
  Shape opad = ctx.attrs->get_ints("output_padding"), oshape = ctx.attrs->get_ints("output_shape");
  std::string auto_pad = ctx.attrs->get_string("auto_pad", "NOTSET");
  if (strides.empty()) strides.assign(nd, 1);
  if (dil.empty()) dil.assign(nd, 1);
  if (opad.empty()) opad.assign(nd, 0);
  if (pads.empty() || auto_pad == "VALID") pads.assign(2 * nd, 0);
  if (static_cast<int>(strides.size()) != nd || static_cast<int>(dil.size()) != nd ||
      static_cast<int>(pads.size()) != 2 * nd || static_cast<int>(opad.size()) != nd ||
      (!oshape.empty() && static_cast<int>(oshape.size()) < nd))
    return ctx.error("strides/dilations/pads/output_padding/output_shape have the wrong number of values");
  t->nd = nd;
  for (int i = 0; i < 3; ++i) { t->in[i] = t->k[i] = t->s[i] = t->d[i] = t->out[i] = 1; t->pb[i] = 0; }
  int off = 3 - nd;
  for (int i = 0; i < nd; ++i) {
    int64_t k = kernel[i], s = strides[i], d = dil[i];
    if (k < 1 || s < 1 || d < 1 || k > (1 << 20) || s > (1 << 20) || d > (1 << 20) || opad[i] < 0 || opad[i] >= std::max(s, d))
      return ctx.error("invalid kernel/strides/dilations/output_padding");
    int64_t full = s * (x.dims[2 + i] - 1) + opad[i] + (k - 1) * d + 1;
    int64_t b, o;
    if (!oshape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      int64_t target = !oshape.empty() ? oshape[oshape.size() - nd + i] : x.dims[2 + i] * s;
      int64_t total = full - target;  // negative when output_shape asks for more than the full output
      int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);  // floor division, as in the Python spec
      b = auto_pad == "SAME_UPPER" ? half : total - half;
      o = target;
    } else {
      b = pads[i];
      o = full - pads[i] - pads[i + nd];
    }
    if (o < 1 || o > (int64_t(1) << 32)) return ctx.error("output spatial dim " + std::to_string(i) + " would be " + std::to_string(o));
    if (b < -(int64_t(1) << 32) || b > (int64_t(1) << 32)) return ctx.error("pads out of range");
    t->in[off + i] = x.dims[2 + i]; t->k[off + i] = k; t->s[off + i] = s; t->d[off + i] = d;
    t->pb[off + i] = b; t->out[off + i] = o;
  }
  return Status::Ok();
}

Status infer_conv_transpose(KernelContext& ctx) {
  Shape kernel;
  Status s = check_conv_inputs(ctx, &kernel);
  if (!s.ok()) return s;
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  int64_t g = ctx.attrs->get_int("group", 1);
  if (x.dims[1] != w.dims[0]) return ctx.error("X has " + std::to_string(x.dims[1]) + " channels but W " + shape_str(w) + " expects " + std::to_string(w.dims[0]));
  if (x.dims[1] % g) return ctx.error("X channels not divisible by group");
  int64_t m = w.dims[1] * g;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && (ctx.inputs[2].rank != 1 || ctx.inputs[2].dims[0] != m))
    return ctx.error("B must have shape (" + std::to_string(m) + ",), got " + shape_str(ctx.inputs[2]));
  TGeom t;
  s = transpose_geometry(ctx, kernel, &t);
  if (!s.ok()) return s;
  Shape out = {x.dims[0], m};
  for (int i = 3 - t.nd; i < 3; ++i) out.push_back(t.out[i]);
  return set_out(ctx, 0, DType::F32, out);
}

Status run_conv_transpose(KernelContext& ctx) {
  Shape kernel;
  TGeom t;
  Status s = check_conv_inputs(ctx, &kernel);
  if (s.ok()) s = transpose_geometry(ctx, kernel, &t);
  if (!s.ok()) return s;
  Activation act;
  Activation::parse(*ctx.attrs, &act);
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  const float* bias = ctx.num_inputs > 2 && ctx.inputs[2].present() ? ctx.inputs[2].as<float>() : nullptr;
  int64_t n = x.dims[0], c = x.dims[1], g = ctx.attrs->get_int("group", 1), mg = w.dims[1], m = mg * g, cg = c / g;
  int64_t isz = t.in[0] * t.in[1] * t.in[2], osz = t.out[0] * t.out[1] * t.out[2], ksz = t.k[0] * t.k[1] * t.k[2];
  const float* px = x.as<float>();
  const float* pw = w.as<float>();
  float* py = ctx.outputs[0].as<float>();
  ctx.parallel_for(n * m, [&](int64_t b, int64_t e, int) {
    std::vector<double> acc(static_cast<size_t>(osz));
    for (int64_t nm = b; nm < e; ++nm) {
      int64_t ni = nm / m, mi = nm % m, gi = mi / mg, mj = mi % mg;
      std::fill(acc.begin(), acc.end(), bias ? bias[mi] : 0.0);
      for (int64_t ci = 0; ci < cg; ++ci) {
        int64_t cc = gi * cg + ci;
        const float* xc = px + (ni * c + cc) * isz;
        const float* wc = pw + (cc * mg + mj) * ksz;
        for (int64_t i0 = 0; i0 < t.in[0]; ++i0)
          for (int64_t i1 = 0; i1 < t.in[1]; ++i1)
            for (int64_t i2 = 0; i2 < t.in[2]; ++i2) {
              double xv = xc[(i0 * t.in[1] + i1) * t.in[2] + i2];
              for (int64_t k0 = 0; k0 < t.k[0]; ++k0) {
                int64_t o0 = i0 * t.s[0] + k0 * t.d[0] - t.pb[0];
                if (o0 < 0 || o0 >= t.out[0]) continue;
                for (int64_t k1 = 0; k1 < t.k[1]; ++k1) {
                  int64_t o1 = i1 * t.s[1] + k1 * t.d[1] - t.pb[1];
                  if (o1 < 0 || o1 >= t.out[1]) continue;
                  for (int64_t k2 = 0; k2 < t.k[2]; ++k2) {
                    int64_t o2 = i2 * t.s[2] + k2 * t.d[2] - t.pb[2];
                    if (o2 < 0 || o2 >= t.out[2]) continue;
                    acc[(o0 * t.out[1] + o1) * t.out[2] + o2] += xv * wc[(k0 * t.k[1] + k1) * t.k[2] + k2];
                  }
                }
              }
            }
      }
      float* y = py + nm * osz;
      for (int64_t o = 0; o < osz; ++o) y[o] = act.apply(static_cast<float>(acc[o]));
    }
  });
  return Status::Ok();
}

}  // namespace

void register_conv(KernelRegistry& r) {
  reg(r, fb::OpType_Conv, DType::F32, "conv_f32_reference", infer_conv, run_conv);
  reg(r, fb::OpType_ConvTranspose, DType::F32, "conv_transpose_f32_reference", infer_conv_transpose, run_conv_transpose);
}

}  // namespace ref
}  // namespace mobrt
