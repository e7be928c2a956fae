// Conv2D (NCHW) as packed GEMM, per image and group:
//   Y_g[cout_g, oh*ow] = act(W_g[cout_g, K] x cols[K, oh*ow] + bias), K = cin_g*kh*kw.
// W_g is packed into GEMM A panels once (conv2d_pack_weights). cols is never built as a
// matrix: the GEMM driver asks for one KC x NC block at a time and im2col_pack gathers
// it straight from the input into packed-B layout in a cache-resident per-thread buffer
// (im2col fused with packing). A 1x1/stride-1/unpadded conv's cols is the input itself,
// read in place.
//
// Stride-1 convs with many input channels use shift-and-accumulate instead of im2col:
// with the input copied once into a zero-padded plane of width W' = iw + pl + pr, the
// im2col row of tap (ky, kx) and channel ci is that padded plane shifted by
// ky*dh*W' + kx*dw, read over "extended" output positions oy*W' + ox (ox < W'; the
// columns ox >= ow are computed and dropped). Ordering K as (tap, channel), each tap's
// rows are one plane apart, so every K slice of B is a strided block read in place
// (SgemmArgs::b_slice, slices never cross a tap). Data moved per conv: the padded input
// and the compacted output, instead of kh*kw copies of the input.
//
// Fused residual (Conv's optional input R, see passes/fuse_residual.py): the GEMM paths
// copy R into Y and accumulate onto it, so bias and activation apply to conv + R in the
// microkernel epilogue; shift-and-accumulate adds R after compacting.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv_f32.h"

namespace mobrt {
namespace cpu {

void conv2d_output_dims(Conv2dShape* s) {
  s->oh = (s->ih + s->pt + s->pb - s->dh * (s->kh - 1) - 1) / s->sh + 1;
  s->ow = (s->iw + s->pl + s->pr - s->dw * (s->kw - 1) - 1) / s->sw + 1;
}

bool conv2d_is_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.pt == 0 && s.pl == 0 &&
         s.pb == 0 && s.pr == 0;
}

bool conv2d_is_depthwise(const Conv2dShape& s) {
  return s.group > 1 && s.group == s.cin && s.group == s.cout;
}

namespace {
int64_t gemm_k(const Conv2dShape& s) { return s.cin / s.group * s.kh * s.kw; }

// Shift-and-accumulate applies (decided from stride, kernel and channels only, so the
// weight packing chosen at prepare time matches every later input size).
bool uses_shift(const Conv2dShape& s) {
  return s.sh == 1 && s.sw == 1 && s.kh * s.kw > 1 && s.cin / s.group >= 64 &&
         !conv2d_is_depthwise(s);
}

// Padded plane geometry for shift-and-accumulate: width W', height H' (one spare row so
// the dropped extended columns of the last output row stay inside the plane).
int64_t shift_w(const Conv2dShape& s) { return s.iw + s.pl + s.pr; }
int64_t shift_h(const Conv2dShape& s) {
  return std::max(s.ih + s.pt + s.pb, (s.oh - 1) + (s.kh - 1) * s.dh + 1) + 1;
}
}  // namespace

size_t conv2d_packed_weights_floats(const F32Kernels& ks, const Conv2dShape& s) {
  return sgemm_packed_a_size(*ks.gemm, s.cout / s.group, gemm_k(s)) * s.group;
}

void conv2d_pack_weights(const F32Kernels& ks, const Conv2dShape& s, const float* w,
                         float* packed) {
  const int64_t cg = s.cout / s.group, k = gemm_k(s);
  const size_t per_group = sgemm_packed_a_size(*ks.gemm, cg, k);
  if (!uses_shift(s)) {
    for (int64_t g = 0; g < s.group; ++g)
      sgemm_pack_a(*ks.gemm, cg, k, w + g * cg * k, k, 1, packed + g * per_group);
    return;
  }
  // K ordered (tap, channel): reorder W[co][ci][tap] to [co][tap][ci], then pack with
  // slices that never cross a tap.
  const int64_t cin_g = s.cin / s.group, taps = s.kh * s.kw;
  std::vector<float> reordered(size_t(cg * k));
  for (int64_t g = 0; g < s.group; ++g) {
    const float* wg = w + g * cg * k;
    for (int64_t co = 0; co < cg; ++co)
      for (int64_t ci = 0; ci < cin_g; ++ci)
        for (int64_t t = 0; t < taps; ++t)
          reordered[size_t((co * taps + t) * cin_g + ci)] = wg[(co * cin_g + ci) * taps + t];
    sgemm_pack_a(*ks.gemm, cg, k, reordered.data(), k, 1, packed + g * per_group, size_t(cin_g));
  }
}

namespace {
// 1x1 kernel, no padding, stride > 1: subsample the input once, then run as pointwise.
bool strided_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.pt == 0 && s.pl == 0 && s.pb == 0 && s.pr == 0 &&
         (s.sh > 1 || s.sw > 1);
}
}  // namespace

size_t conv2d_scratch_floats(const F32Kernels& ks, const Conv2dShape& s) {
  (void)ks;
  // im2col B blocks are gathered into the GEMM driver's per-thread buffer; a strided 1x1
  // conv needs its subsampled input; shift-and-accumulate its padded input (one group)
  // and its extended output (one group).
  if (strided_pointwise(s)) return size_t(s.cin * s.oh * s.ow) + 16;
  if (uses_shift(s))
    return size_t(s.cin / s.group * shift_h(s) * shift_w(s) + s.cout / s.group * s.oh * shift_w(s)) + 64;
  return 0;
}

namespace {

struct ShiftB {
  const float* plane;  // padded input of this group: cin_g planes of H' x W'
  int64_t plane_size, cin_g, kw, dh, dw, wp;
};

const float* shift_b_slice(const void* vctx, size_t pc) {
  const ShiftB& b = *static_cast<const ShiftB*>(vctx);
  const int64_t t = int64_t(pc) / b.cin_g, ci = int64_t(pc) % b.cin_g;
  const int64_t ky = t / b.kw, kx = t % b.kw;
  return b.plane + ci * b.plane_size + ky * b.dh * b.wp + kx * b.dw;
}

struct PadCtx {
  const Conv2dShape* s;
  const float* x;  // first channel of the group
  float* pad;
  int64_t hp, wp;
};
void pad_channel(void* vctx, int64_t ci) {
  const PadCtx& c = *static_cast<const PadCtx*>(vctx);
  const Conv2dShape& s = *c.s;
  float* p = c.pad + ci * c.hp * c.wp;
  std::memset(p, 0, size_t(c.hp * c.wp) * sizeof(float));
  const float* src = c.x + ci * s.ih * s.iw;
  for (int64_t r = 0; r < s.ih; ++r)
    std::memcpy(p + (r + s.pt) * c.wp + s.pl, src + r * s.iw, size_t(s.iw) * sizeof(float));
}

struct CompactCtx {
  const Conv2dShape* s;
  const float* ext;
  float* y;
  int64_t wp;
};
void compact_channel(void* vctx, int64_t co) {
  const CompactCtx& c = *static_cast<const CompactCtx*>(vctx);
  const Conv2dShape& s = *c.s;
  for (int64_t oy = 0; oy < s.oh; ++oy)
    std::memcpy(c.y + (co * s.oh + oy) * s.ow, c.ext + (co * s.oh + oy) * c.wp, size_t(s.ow) * sizeof(float));
}

void conv2d_run_shift(const F32Kernels& ks, const Conv2dShape& s, const float* packed_w,
                      const float* bias, const Activation& act, const float* x, float* y,
                      float* scratch, const TaskRunner* runner) {
  const int64_t cg = s.cout / s.group, cin_g = s.cin / s.group, k = gemm_k(s);
  const int64_t wp = shift_w(s), hp = shift_h(s);
  const size_t per_group = sgemm_packed_a_size(*ks.gemm, cg, k);
  float* pad = scratch;
  float* ext = scratch + cin_g * hp * wp;
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t g = 0; g < s.group; ++g) {
      PadCtx pc{&s, x + (n * s.cin + g * cin_g) * s.ih * s.iw, pad, hp, wp};
      run_tasks(runner, cin_g, &pc, pad_channel);
      ShiftB sb{pad, hp * wp, cin_g, s.kw, s.dh, s.dw, wp};
      SgemmArgs a;
      a.m = size_t(cg);
      a.n = size_t(s.oh * wp);
      a.k = size_t(k);
      a.packed_a = packed_w + g * per_group;
      a.b_slice = &shift_b_slice;
      a.b_slice_ctx = &sb;
      a.ldb = size_t(hp * wp);
      a.kseg = size_t(cin_g);
      a.c = ext;
      a.ldc = size_t(s.oh * wp);
      a.bias = bias != nullptr ? bias + g * cg : nullptr;
      a.bias_mode = BiasMode::kPerRow;
      a.act = act;
      sgemm_packed(*ks.gemm, ks.activation, a, runner);
      CompactCtx cc{&s, ext, y + (n * s.cout + g * cg) * s.oh * s.ow, wp};
      run_tasks(runner, cg, &cc, compact_channel);
    }
  }
}

}  // namespace

void conv2d_run(const F32Kernels& ks, const Conv2dShape& s, const float* packed_w,
                const float* bias, const Activation& act, const float* x, float* y,
                float* scratch, const TaskRunner* runner, const float* residual) {
  if (strided_pointwise(s)) {
    // Subsample each image into scratch, then run the stride-1 pointwise conv on it.
    Conv2dShape p = s;
    p.ih = s.oh;
    p.iw = s.ow;
    p.sh = p.sw = 1;
    for (int64_t n = 0; n < s.n; ++n) {
      const float* xn = x + n * s.cin * s.ih * s.iw;
      for (int64_t ci = 0; ci < s.cin; ++ci)
        for (int64_t oy = 0; oy < s.oh; ++oy) {
          const float* src = xn + (ci * s.ih + oy * s.sh) * s.iw;
          float* dst = scratch + (ci * s.oh + oy) * s.ow;
          for (int64_t ox = 0; ox < s.ow; ++ox) dst[ox] = src[ox * s.sw];
        }
      p.n = 1;
      const int64_t off = n * s.cout * s.oh * s.ow;
      conv2d_run(ks, p, packed_w, bias, act, scratch, y + off, nullptr, runner,
                 residual != nullptr ? residual + off : nullptr);
    }
    return;
  }
  // Weights of stride-1 convs with many channels are packed (tap, channel)-major; run
  // shift-and-accumulate unless the output is only a few panels wide (then its edge
  // panel, re-copied per use, would cost more than im2col in the same K order).
  const bool tap_major = uses_shift(s);
  if (tap_major && s.oh * shift_w(s) >= 8 * int64_t(ks.gemm->nr)) {
    if (residual == nullptr) return conv2d_run_shift(ks, s, packed_w, bias, act, x, y, scratch, runner);
    // The extended output is compacted after the GEMM: add the residual (then act) there.
    conv2d_run_shift(ks, s, packed_w, bias, Activation(), x, y, scratch, runner);
    return add_residual_act(ks, y, residual, s.n * s.cout * s.oh * s.ow, act, runner);
  }
  const int64_t cg = s.cout / s.group, cin_g = s.cin / s.group, k = gemm_k(s);
  const int64_t cols = s.oh * s.ow;
  // Fused residual: y starts as the residual and the GEMM accumulates onto it, so the
  // epilogue (bias, activation) sees conv + residual while the tile is in registers.
  if (residual != nullptr && residual != y)
    std::memcpy(y, residual, size_t(s.n * s.cout * cols) * sizeof(float));
  const size_t per_group = sgemm_packed_a_size(*ks.gemm, cg, k);
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t g = 0; g < s.group; ++g) {
      Im2col ic{&s, x + (n * s.cin + g * cin_g) * s.ih * s.iw, cols, tap_major ? cin_g : 0};
      BPacker packer;
      packer.pack = ks.im2col_pack;
      packer.ctx = &ic;
      SgemmArgs a;
      a.m = cg;
      a.n = cols;
      a.k = k;
      a.packed_a = packed_w + g * per_group;
      a.kseg = tap_major ? size_t(cin_g) : 0;  // as packed
      // 1x1: B is the input itself; read it in place unless it is only a few panels wide
      // (then the edge panel, copied per use, would cost more than packing once).
      if (conv2d_is_pointwise(s) && cols >= 8 * int64_t(ks.gemm->nr)) {
        a.b_rows = ic.x;
        a.ldb = size_t(cols);
      } else {
        a.b_packer = &packer;
      }
      a.c = y + (n * s.cout + g * cg) * cols;
      a.ldc = cols;
      a.accumulate_c = residual != nullptr;
      a.bias = bias != nullptr ? bias + g * cg : nullptr;
      a.bias_mode = BiasMode::kPerRow;
      a.act = act;
      sgemm_packed(*ks.gemm, ks.activation, a, runner);
    }
  }
}

}  // namespace cpu
}  // namespace mobrt
