// Depthwise Conv2D (group == channels) driver and the fused-residual pass (conv_f32.h):
// splits the work into planes, picks the instruction set's specialized 3x3 kernels
// (whole-plane, flattened small plane, or interior rows plus scalar border columns) and
// falls back to a direct loop for other kernel sizes.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv_f32.h"
#include "window_cols.h"

namespace mobrt {
namespace cpu {

namespace {

// A row of zeros standing in for input rows above/below the image (per thread).
const float* zero_row(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.assign(floats, 0.f);
  return buf.data();
}

// ---- depthwise -----------------------------------------------------------------------
struct DwCtx {
  const F32Kernels* ks;
  const Conv2dShape* s;
  const float *w, *bias, *x;
  float* y;
  const Activation* act;
};

// Direct, bounds-checked output (border columns and the generic kernel).
float dw_point(const Conv2dShape& s, const float* x, const float* w, float bias, int64_t oy,
               int64_t ox) {
  float acc = bias;
  const int64_t y0 = oy * s.sh - s.pt, x0 = ox * s.sw - s.pl;
  for (int64_t ky = 0; ky < s.kh; ++ky) {
    const int64_t iy = y0 + ky * s.dh;
    if (iy < 0 || iy >= s.ih) continue;
    const float* xr = x + iy * s.iw;
    const float* wr = w + ky * s.kw;
    for (int64_t kx = 0; kx < s.kw; ++kx) {
      const int64_t ix = x0 + kx * s.dw;
      if (ix >= 0 && ix < s.iw) acc += xr[ix] * wr[kx];
    }
  }
  return acc;
}

// Small planes (rows shorter than a few vectors): copy into a zero-padded plane of even
// row width W and run the whole plane as ONE row of oh * W outputs. Output (oy, ox) is
// flat index f = oy * W + ox and reads padded[S * f + ky * W + kx] (S = stride), so the
// row kernel applies unchanged; columns ox >= ow are computed and dropped.
void dw_small_plane(const DwCtx& c, const float* x, const float* w, float bias, float* y) {
  const Conv2dShape& s = *c.s;
  const int64_t W = (std::max(s.iw + s.pl + s.pr, s.ow * s.sw + 2) + 1) / 2 * 2;
  const int64_t rows = s.oh * s.sh + 4;
  thread_local std::vector<float> buf;
  const size_t in_size = size_t(rows * W + 64), out_size = size_t(s.oh * W + 64);
  if (buf.size() < in_size + out_size) buf.resize(in_size + out_size);
  float* pad = buf.data();
  float* out = pad + in_size;
  std::fill(pad, pad + in_size, 0.f);
  for (int64_t r = 0; r < s.ih && r + s.pt < rows; ++r)
    std::memcpy(pad + (r + s.pt) * W + s.pl, x + r * s.iw, size_t(s.iw) * sizeof(float));
  const DwRowFn row = s.sh == 1 ? c.ks->dwconv3x3s1 : c.ks->dwconv3x3s2;
  row(pad, pad + W, pad + 2 * W, w, bias, out, size_t(s.oh * W), c.act);
  for (int64_t oy = 0; oy < s.oh; ++oy)
    std::memcpy(y + oy * s.ow, out + oy * W, size_t(s.ow) * sizeof(float));
}

void dw_plane(void* vctx, int64_t plane) {
  const DwCtx& c = *static_cast<const DwCtx*>(vctx);
  const Conv2dShape& s = *c.s;
  const int64_t ch = plane % s.cin;
  const float* w = c.w + ch * s.kh * s.kw;
  const float bias = c.bias != nullptr ? c.bias[ch] : 0.f;
  const float* x = c.x + plane * s.ih * s.iw;
  float* y = c.y + plane * s.oh * s.ow;
  const bool k3 = s.kh == 3 && s.kw == 3 && s.dh == 1 && s.dw == 1 && s.sh == s.sw &&
                  (s.sh == 1 || s.sh == 2);
  // The ISA's whole-plane kernel (masked loads, no padded copy) when it has one.
  // Stride 2 only: at stride 1 the flattened small-plane / row paths below measured
  // faster (they fill whole vectors; the plane kernel masks part of each row).
  if (k3 && s.sh == 2 && c.ks->dwconv3x3s2_plane != nullptr && (s.ow + 14) / 15 <= 32) {
    float lo, hi;
    const bool clamp = act_as_clamp(*c.act, &lo, &hi);
    if (!clamp) lo = -__builtin_inff(), hi = __builtin_inff();
    c.ks->dwconv3x3s2_plane(x, s.ih, s.iw, s.pt, s.pl, s.sh, w, bias, y, s.oh, s.ow, lo, hi);
    if (!clamp) c.ks->activation(y, size_t(s.oh * s.ow), c.act);
    return;
  }
  if (k3 && s.sh == 1 && c.ks->dwconv3x3s1_narrow != nullptr && s.iw + s.pl <= 128 &&
      s.ow + 2 <= 128) {
    float lo, hi;
    const bool clamp = act_as_clamp(*c.act, &lo, &hi);
    if (!clamp) lo = -__builtin_inff(), hi = __builtin_inff();
    c.ks->dwconv3x3s1_narrow(x, s.ih, s.iw, s.pt, s.pl, 1, w, bias, y, s.oh, s.ow, lo, hi);
    if (!clamp) c.ks->activation(y, size_t(s.oh * s.ow), c.act);
    return;
  }
  if (k3 && s.iw <= 64) return dw_small_plane(c, x, w, bias, y);
  int64_t lo = s.ow, hi = s.ow;
  if (k3) interior_cols(s.iw, s.ow, 3, s.sw, s.pl, &lo, &hi);
  const float* zeros = zero_row(size_t(s.iw + 64));
  const DwRowFn row = s.sh == 1 ? c.ks->dwconv3x3s1 : c.ks->dwconv3x3s2;
  float clo, chi;
  const bool clamp = act_as_clamp(*c.act, &clo, &chi);
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    float* yr = y + oy * s.ow;
    if (hi > lo) {
      const float* r[3];
      for (int k = 0; k < 3; ++k) {
        const int64_t iy = oy * s.sh - s.pt + k;
        r[k] = (iy >= 0 && iy < s.ih ? x + iy * s.iw : zeros) + lo * s.sw - s.pl;
      }
      row(r[0], r[1], r[2], w, bias, yr + lo, size_t(hi - lo), c.act);
    }
    for (int64_t ox = 0; ox < s.ow; ++ox) {
      if (ox == lo) ox = hi;
      if (ox >= s.ow) break;
      const float v = dw_point(s, x, w, bias, oy, ox);
      yr[ox] = clamp ? std::min(std::max(v, clo), chi) : v;
    }
    if (!clamp) {
      if (lo > 0) c.ks->activation(yr, size_t(lo), c.act);
      if (hi < s.ow) c.ks->activation(yr + hi, size_t(s.ow - hi), c.act);
    }
  }
}

}  // namespace

void dwconv2d_run(const F32Kernels& ks, const Conv2dShape& s, const float* w, const float* bias,
                  const Activation& act, const float* x, float* y, const TaskRunner* runner,
                  const float* residual) {
  const Activation none;
  DwCtx c{&ks, &s, w, bias, x, y, residual != nullptr ? &none : &act};
  run_tasks(runner, s.n * s.cin, &c, dw_plane);
  if (residual != nullptr) add_residual_act(ks, y, residual, s.n * s.cout * s.oh * s.ow, act, runner);
}

namespace {
struct ResidualCtx {
  const F32Kernels* ks;
  float* y;
  const float* r;
  int64_t n;
  const Activation* act;
  bool clamp;
};
constexpr int64_t kResidualChunk = 4096;  // floats per task
void residual_chunk(void* vctx, int64_t t) {
  const ResidualCtx& c = *static_cast<const ResidualCtx*>(vctx);
  const int64_t b = t * kResidualChunk, len = std::min(kResidualChunk, c.n - b);
  const Activation none;
  c.ks->binary(BinOp::kAdd, c.y + b, 1, c.r + b, 1, c.y + b, size_t(len), c.clamp ? c.act : &none);
  if (!c.clamp) c.ks->activation(c.y + b, size_t(len), c.act);
}
}  // namespace

void add_residual_act(const F32Kernels& ks, float* y, const float* r, int64_t n,
                      const Activation& act, const TaskRunner* runner) {
  float lo, hi;
  ResidualCtx c{&ks, y, r, n, &act, act_as_clamp(act, &lo, &hi)};
  run_tasks(runner, (n + kResidualChunk - 1) / kResidualChunk, &c, residual_chunk);
}

}  // namespace cpu
}  // namespace mobrt
