// Conv2D (NCHW) as packed GEMM, per image and group:
//   Y_g[cout_g, oh*ow] = act(W_g[cout_g, K] x cols[K, oh*ow] + bias), K = cin_g*kh*kw.
// W_g is packed into GEMM A panels once (conv2d_pack_weights). cols is never built as a
// matrix: each NR-column panel of it is gathered straight from the input into packed-B
// layout (im2col fused with packing, parallel over panels). A 1x1/stride-1/unpadded
// conv's cols is the input itself, so its panels are plain row copies.
#include <algorithm>
#include <cstring>

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

size_t conv2d_scratch_floats(const IsaKernels& ks, const Conv2dShape& s) {
  return sgemm_packed_b_size(ks.gemm, gemm_k(s), s.oh * s.ow) + 64;
}

namespace {

struct Im2colCtx {
  const Conv2dShape* s;
  const float* x;  // this image, first channel of this group
  float* packed;
  size_t nr;
  int64_t k, cols;
};

// Gathers output columns [q*nr, q*nr + nr) of cols into packed panel q.
void im2col_panel(void* vctx, int64_t q) {
  const Im2colCtx& c = *static_cast<const Im2colCtx*>(vctx);
  const Conv2dShape& s = *c.s;
  const size_t nr = c.nr;
  float* dst = c.packed + q * c.k * nr;
  const int64_t j0 = q * int64_t(nr);
  const int64_t ncols = std::min<int64_t>(nr, c.cols - j0);
  if (conv2d_is_pointwise(s)) {
    const int64_t hw = s.ih * s.iw;
    for (int64_t kk = 0; kk < c.k; ++kk) {
      const float* src = c.x + kk * hw + j0;
      std::memcpy(dst + kk * nr, src, ncols * sizeof(float));
      for (int64_t j = ncols; j < int64_t(nr); ++j) dst[kk * nr + j] = 0.f;
    }
    return;
  }
  int64_t iy0[64], ix0[64];  // nr <= 64 for every microkernel
  for (int64_t j = 0; j < ncols; ++j) {
    const int64_t oy = (j0 + j) / s.ow, ox = (j0 + j) % s.ow;
    iy0[j] = oy * s.sh - s.pt;
    ix0[j] = ox * s.sw - s.pl;
  }
  const int64_t cin_g = s.cin / s.group;
  int64_t kk = 0;
  for (int64_t ci = 0; ci < cin_g; ++ci) {
    const float* plane = c.x + ci * s.ih * s.iw;
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      for (int64_t kx = 0; kx < s.kw; ++kx, ++kk) {
        float* d = dst + kk * nr;
        const int64_t dy = ky * s.dh, dx = kx * s.dw;
        for (int64_t j = 0; j < ncols; ++j) {
          const int64_t iy = iy0[j] + dy, ix = ix0[j] + dx;
          d[j] = (iy >= 0 && iy < s.ih && ix >= 0 && ix < s.iw) ? plane[iy * s.iw + ix] : 0.f;
        }
        for (int64_t j = ncols; j < int64_t(nr); ++j) d[j] = 0.f;
      }
    }
  }
}

}  // namespace

void conv2d_run(const IsaKernels& ks, const Conv2dShape& s, const float* packed_w,
                const float* bias, const Activation& act, const float* x, float* y,
                float* scratch, const TaskRunner* runner) {
  const int64_t cg = s.cout / s.group, cin_g = s.cin / s.group, k = gemm_k(s);
  const int64_t cols = s.oh * s.ow;
  const size_t per_group = sgemm_packed_a_size(ks.gemm, cg, k);
  // Packed panels start 64-byte aligned whatever the caller's scratch alignment.
  float* packed = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t g = 0; g < s.group; ++g) {
      Im2colCtx ic{&s, x + (n * s.cin + g * cin_g) * s.ih * s.iw, packed, size_t(ks.gemm.nr), k,
                   cols};
      run_tasks(runner, (cols + ks.gemm.nr - 1) / ks.gemm.nr, &ic, im2col_panel);
      SgemmArgs a;
      a.m = cg;
      a.n = cols;
      a.k = k;
      a.packed_a = packed_w + g * per_group;
      a.packed_b = packed;
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
