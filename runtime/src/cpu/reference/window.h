// window.h: sliding-window geometry shared by Conv and the pools (ONNX
// rules, mobconv/ops/conv.py conv_pads): resolves kernel/strides/dilations/
// pads from attributes and computes pads and output sizes.
#pragma once

#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {

struct Window {
  int nd = 0;                 // spatial dims (1..3)
  int64_t in[3] = {1, 1, 1};  // spatial input sizes (padded to 3 with leading 1s)
  int64_t out[3] = {1, 1, 1};
  int64_t k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0};
};

// x: the input (N, C, *S); kernel: resolved kernel sizes (nd values).
inline Status make_window(const KernelContext& ctx, const TensorView& x, const Shape& kernel, bool ceil_mode,
                          Window* w) {
  int nd = x.rank - 2;
  if (nd < 1 || nd > 3) return ctx.error("input must have 1 to 3 spatial dims, got shape " + shape_str(x));
  Shape strides = ctx.attrs->get_ints("strides"), dil = ctx.attrs->get_ints("dilations"), pads = ctx.attrs->get_ints("pads");
  std::string auto_pad = ctx.attrs->get_string("auto_pad", "NOTSET");
  if (static_cast<int>(kernel.size()) != nd) return ctx.error("kernel_shape must have " + std::to_string(nd) + " values");
  if (strides.empty()) strides.assign(nd, 1);
  if (dil.empty()) dil.assign(nd, 1);
  if (pads.empty()) pads.assign(2 * nd, 0);
  if (static_cast<int>(strides.size()) != nd || static_cast<int>(dil.size()) != nd || static_cast<int>(pads.size()) != 2 * nd)
    return ctx.error("strides/dilations/pads have the wrong number of values for " + std::to_string(nd) + " spatial dims");
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID")
    return ctx.error("auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '" + auto_pad + "'");
  w->nd = nd;
  int off = 3 - nd;
  for (int i = 0; i < nd; ++i) {
    int64_t size = x.dims[2 + i], k = kernel[i], s = strides[i], d = dil[i];
    if (k < 1 || k > (1 << 20) || s < 1 || s > (1 << 20) || d < 1 || d > (1 << 20))
      return ctx.error("kernel, strides and dilations must be in [1, 2^20], got " + std::to_string(k) + ", " +
                       std::to_string(s) + ", " + std::to_string(d));
    int64_t b = pads[i], e = pads[i + nd];
    if (b < 0 || e < 0 || b > (1 << 20) || e > (1 << 20)) return ctx.error("pads must be in [0, 2^20]");
    int64_t window = (k - 1) * d + 1, o;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      o = (size + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (o - 1) * s + window - size);
      int64_t small = total / 2, big = total - small;
      b = auto_pad == "SAME_UPPER" ? small : big;
      e = auto_pad == "SAME_UPPER" ? big : small;
    } else {
      if (auto_pad == "VALID") b = e = 0;
      // a window larger than the padded input is fine in ceil mode (ONNX, onnxruntime): one
      // window starting at the first element; floor / ceil of span / s for either sign of span
      int64_t span = size + b + e - window;
      int64_t fl = span >= 0 ? span / s : -((-span + s - 1) / s), cl = span >= 0 ? (span + s - 1) / s : -((-span) / s);
      if (ceil_mode) {
        o = cl + 1;
        if ((o - 1) * s >= size + b) o -= 1;
      } else {
        o = fl + 1;
      }
    }
    if (o < 1) return ctx.error("output spatial dim " + std::to_string(i) + " would be " + std::to_string(o));
    w->in[off + i] = size; w->out[off + i] = o; w->k[off + i] = k; w->s[off + i] = s; w->d[off + i] = d;
    w->pb[off + i] = b; w->pe[off + i] = e;
  }
  return Status::Ok();
}

inline Shape window_out_shape(const TensorView& x, int64_t channels, const Window& w) {
  Shape out = {x.dims[0], channels};
  for (int i = 3 - w.nd; i < 3; ++i) out.push_back(w.out[i]);
  return out;
}

// Calls f(in, k) for every tap of the window at output position (o0, o1, o2) that lies
// inside the input (padding taps are skipped), in row-major tap order: `in` is the tap's
// offset within one channel's spatial input, `k` its offset within the kernel.
template <typename F>
inline void for_each_tap(const Window& w, int64_t o0, int64_t o1, int64_t o2, F&& f) {
  const int64_t* I = w.in;
  for (int64_t k0 = 0; k0 < w.k[0]; ++k0) {
    int64_t i0 = o0 * w.s[0] + k0 * w.d[0] - w.pb[0];
    if (i0 < 0 || i0 >= I[0]) continue;
    for (int64_t k1 = 0; k1 < w.k[1]; ++k1) {
      int64_t i1 = o1 * w.s[1] + k1 * w.d[1] - w.pb[1];
      if (i1 < 0 || i1 >= I[1]) continue;
      for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
        int64_t i2 = o2 * w.s[2] + k2 * w.d[2] - w.pb[2];
        if (i2 < 0 || i2 >= I[2]) continue;
        f((i0 * I[1] + i1) * I[2] + i2, (k0 * w.k[1] + k1) * w.k[2] + k2);
      }
    }
  }
}

// The AveragePool divisor at output position o: the taps inside the input, or inside input
// + pads with count_include_pad; the ceil-mode overhang never counts.
inline int64_t window_count(const Window& w, const int64_t o[3], bool include_pad) {
  int64_t count = 1;
  for (int d = 0; d < 3; ++d) {
    int64_t lo = include_pad ? -w.pb[d] : 0, hi = include_pad ? w.in[d] + w.pe[d] : w.in[d], c = 0;
    for (int64_t k = 0; k < w.k[d]; ++k) {
      int64_t t = o[d] * w.s[d] - w.pb[d] + k * w.d[d];
      c += (t >= lo && t < hi);
    }
    count *= c;
  }
  return count;
}

}  // namespace ref
}  // namespace mobrt
