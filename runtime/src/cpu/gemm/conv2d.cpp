// Conv2D (NCHW) as packed GEMM, per image and group:
//   Y_g[cout_g, oh*ow] = act(W_g[cout_g, K] x cols[K, oh*ow] + bias), K = cin_g*kh*kw.
// W_g is packed into GEMM A panels once (conv2d_pack_weights). cols is never built as a
// matrix: the GEMM driver asks for one KC x NC block at a time and im2col_pack gathers
// it straight from the input into packed-B layout in a cache-resident per-thread buffer
// (im2col fused with packing). A 1x1/stride-1/unpadded conv's cols is the input itself,
// so its panels are plain row copies.
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

namespace {

struct Im2col {
  const Conv2dShape* s;
  const float* x;  // this image, first channel of this group
  int64_t cols;    // oh * ow
};

// Gathers rows [k0, k0 + kc) x output columns [j0, j0 + nc) of the (virtual) im2col
// matrix into packed panels. Row kk is (input channel, ky, kx); column j is an output
// position. Out-of-image taps are zero.
void im2col_pack(const void* vctx, size_t k0, size_t kc, size_t j0, size_t nc, size_t nr,
                 float* dst) {
  const Im2col& c = *static_cast<const Im2col*>(vctx);
  const Conv2dShape& s = *c.s;
  const int64_t khw = s.kh * s.kw;
  for (size_t q = 0; q * nr < nc; ++q, dst += kc * nr) {
    const int64_t jq = int64_t(j0 + q * nr);
    const int64_t ncols = std::min<int64_t>(int64_t(nr), c.cols - jq);
    if (conv2d_is_pointwise(s)) {
      const int64_t hw = s.ih * s.iw;
      for (size_t kk = 0; kk < kc; ++kk) {
        std::memcpy(dst + kk * nr, c.x + int64_t(k0 + kk) * hw + jq, size_t(ncols) * sizeof(float));
        for (int64_t j = ncols; j < int64_t(nr); ++j) dst[kk * nr + j] = 0.f;
      }
      continue;
    }
    if (s.sh == 1 && s.sw == 1 && s.dw == 1 && s.ow == s.iw) {
      // Stride 1, output as wide as the input: row (ci, ky, kx) of the im2col matrix is
      // the flattened input plane shifted by (ky*dh - pt)*iw + kx - pl. Copy the panel's
      // slice in one piece (zero outside the plane), then zero the columns whose tap
      // wrapped around a row edge (the first/last |kx - pl| columns of each output row).
      const int64_t hw = s.ih * s.iw;
      for (size_t kk = 0; kk < kc; ++kk) {
        const int64_t row = int64_t(k0 + kk);
        const int64_t ci = row / khw, ky = (row % khw) / s.kw, kx = row % s.kw;
        const float* plane = c.x + ci * hw;
        const int64_t dx = kx - s.pl;
        const int64_t f0 = jq + (ky * s.dh - s.pt) * s.iw + dx;
        float* d = dst + kk * nr;
        const int64_t a = std::max<int64_t>(0, -f0), b = std::min<int64_t>(ncols, hw - f0);
        for (int64_t j = 0; j < std::min(a, ncols); ++j) d[j] = 0.f;
        for (int64_t j = a; j < b; ++j) d[j] = plane[f0 + j];
        for (int64_t j = std::max(a, b); j < int64_t(nr); ++j) d[j] = 0.f;
        if (dx != 0) {
          // Output columns ox with ox + dx outside [0, iw): ox < -dx or ox >= iw - dx.
          const int64_t bad_lo = dx < 0 ? 0 : s.iw - dx, bad_hi = dx < 0 ? -dx : s.iw;
          int64_t ox = jq % s.ow;
          for (int64_t j = 0; j < ncols;) {
            if (ox >= bad_lo && ox < bad_hi) {
              d[j] = 0.f;
              ++j;
              ox = ox + 1 == s.ow ? 0 : ox + 1;
            } else {  // jump to the next bad column in this row (or the next row)
              const int64_t next = ox < bad_lo ? bad_lo : s.ow + bad_lo;
              j += next - ox;
              ox = next % s.ow;
            }
          }
        }
      }
      continue;
    }
    // Split the panel's columns into runs that share an output row: within a run the
    // input taps of one (ci, ky, kx) row are evenly spaced (stride sw) in one input row.
    struct Run { int64_t j, len, oy, ox; } runs[66];  // nr <= 64
    int nruns = 0;
    for (int64_t j = 0; j < ncols;) {
      const int64_t oy = (jq + j) / s.ow, ox = (jq + j) % s.ow;
      const int64_t len = std::min(ncols - j, s.ow - ox);
      runs[nruns++] = {j, len, oy, ox};
      j += len;
    }
    for (size_t kk = 0; kk < kc; ++kk) {
      const int64_t row = int64_t(k0 + kk);
      const int64_t ci = row / khw, ky = (row % khw) / s.kw, kx = row % s.kw;
      const float* plane = c.x + ci * s.ih * s.iw;
      float* d = dst + kk * nr;
      for (int r = 0; r < nruns; ++r) {
        const Run& run = runs[r];
        float* dr = d + run.j;
        const int64_t iy = run.oy * s.sh - s.pt + ky * s.dh;
        if (iy < 0 || iy >= s.ih) {
          std::memset(dr, 0, size_t(run.len) * sizeof(float));
          continue;
        }
        const float* src = plane + iy * s.iw;
        const int64_t ix0 = run.ox * s.sw - s.pl + kx * s.dw;
        // Columns t in [lo, hi) read inside the row: 0 <= ix0 + t*sw < iw.
        const int64_t lo = ix0 >= 0 ? 0 : std::min(run.len, (-ix0 + s.sw - 1) / s.sw);
        const int64_t hi = ix0 >= s.iw ? lo : std::max(lo, std::min(run.len, (s.iw - 1 - ix0) / s.sw + 1));
        for (int64_t t = 0; t < lo; ++t) dr[t] = 0.f;
        if (s.sw == 1) {
          std::memcpy(dr + lo, src + ix0 + lo, size_t(hi - lo) * sizeof(float));
        } else {
          for (int64_t t = lo; t < hi; ++t) dr[t] = src[ix0 + t * s.sw];
        }
        for (int64_t t = hi; t < run.len; ++t) dr[t] = 0.f;
      }
      for (int64_t j = ncols; j < int64_t(nr); ++j) d[j] = 0.f;
    }
  }
}

}  // namespace

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
      packer.pack = &im2col_pack;
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
