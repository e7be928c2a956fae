// Conv2D (NCHW) as packed GEMM, per image and group:
//   Y_g[cout_g, oh*ow] = act(W_g[cout_g, K] x cols[K, oh*ow] + bias), K = cin_g*kh*kw.
// W_g is packed into GEMM A panels once (conv2d_pack_weights). cols is never built as a
// matrix: the GEMM driver asks for one KC x NC block at a time and im2col_pack gathers
// it straight from the input into packed-B layout in a cache-resident per-thread buffer
// (im2col fused with packing). A 1x1/stride-1/unpadded conv's cols is the input itself,
// so its panels are plain row copies.
#include <algorithm>
#include <cstring>
#include <vector>

#include "layers.h"

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
}  // namespace

size_t conv2d_packed_weights_floats(const IsaKernels& ks, const Conv2dShape& s) {
  return sgemm_packed_a_size(ks.gemm, s.cout / s.group, gemm_k(s)) * s.group;
}

void conv2d_pack_weights(const IsaKernels& ks, const Conv2dShape& s, const float* w,
                         float* packed) {
  const int64_t cg = s.cout / s.group, k = gemm_k(s);
  const size_t per_group = sgemm_packed_a_size(ks.gemm, cg, k);
  for (int64_t g = 0; g < s.group; ++g)
    sgemm_pack_a(ks.gemm, cg, k, w + g * cg * k, k, 1, packed + g * per_group);
}

namespace {
// 1x1 kernel, no padding, stride > 1: subsample the input once, then run as pointwise.
bool strided_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.pt == 0 && s.pl == 0 && s.pb == 0 && s.pr == 0 &&
         (s.sh > 1 || s.sw > 1);
}
}  // namespace

size_t conv2d_scratch_floats(const IsaKernels& ks, const Conv2dShape& s) {
  (void)ks;
  // B blocks are gathered into the GEMM driver's per-thread buffer; only a strided 1x1
  // conv needs its subsampled input.
  return strided_pointwise(s) ? size_t(s.cin * s.oh * s.ow) + 16 : 0;
}

void conv2d_run(const IsaKernels& ks, const Conv2dShape& s, const float* packed_w,
                const float* bias, const Activation& act, const float* x, float* y,
                float* scratch, const TaskRunner* runner) {
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
      conv2d_run(ks, p, packed_w, bias, act, scratch, y + n * s.cout * s.oh * s.ow, nullptr, runner);
    }
    return;
  }
  const int64_t cg = s.cout / s.group, cin_g = s.cin / s.group, k = gemm_k(s);
  const int64_t cols = s.oh * s.ow;
  const size_t per_group = sgemm_packed_a_size(ks.gemm, cg, k);
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t g = 0; g < s.group; ++g) {
      Im2col ic{&s, x + (n * s.cin + g * cin_g) * s.ih * s.iw, cols};
      BPacker packer;
      packer.pack = ks.im2col_pack;
      packer.ctx = &ic;
      SgemmArgs a;
      a.m = cg;
      a.n = cols;
      a.k = k;
      a.packed_a = packed_w + g * per_group;
      // 1x1: B is the input itself; read it in place unless it is only a few panels wide
      // (then the edge panel, copied per use, would cost more than packing once).
      if (conv2d_is_pointwise(s) && cols >= 8 * int64_t(ks.gemm.nr)) {
        a.b_rows = ic.x;
        a.ldb = size_t(cols);
      } else {
        a.b_packer = &packer;
      }
      a.c = y + (n * s.cout + g * cg) * cols;
      a.ldc = cols;
      a.bias = bias != nullptr ? bias + g * cg : nullptr;
      a.bias_mode = BiasMode::kPerRow;
      a.act = act;
      sgemm_packed(ks, a, runner);
    }
  }
}

}  // namespace cpu
}  // namespace mobrt
