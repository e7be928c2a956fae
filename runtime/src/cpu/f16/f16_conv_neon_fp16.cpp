// fp16 Conv kernels (ARMv8.2 FEAT_FP16), the compute only (compiled with
// -march=armv8.2-a+fp16): the GEMM over im2col panels ("conv_f16_gemm_neon_fp16") and
// depthwise on an fp16 padded plane ("conv_f16_dw_neon_fp16"). supports, prepare,
// geometry and errors: f16_conv.cpp (no ISA flags). Numerics: f16_neon_fp16.h.
#include <arm_neon.h>

#include <cstring>

#include "cpu/f16/f16_common_neon_fp16.h"
#include "cpu/f16/f16_kernels.h"

namespace mobrt {
namespace f16 {

namespace {

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// ---- GEMM conv ----------------------------------------------------------------------------
// B panel of the output pixels [j0, j0 + nc) of one image and group: the im2col
// columns, rounded to fp16, K = cg * kh * kw rows in the weight's (c, ky, kx) order.
void pack_im2col(const Geo& g, int64_t cg, const float* x, int64_t j0, int64_t nc, float16_t* b) {
  const int64_t plane = g.ih * g.iw;
  const bool pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
                         g.pb == 0 && g.pr == 0 && g.ih == g.oh && g.iw == g.ow;
  if (pointwise && nc == kNR) {  // the columns are 16 consecutive floats of each channel
    for (int64_t c = 0; c < cg; ++c) {
      const float* src = x + c * plane + j0;
      const float16x8_t lo = vcombine_f16(vcvt_f16_f32(vld1q_f32(src)), vcvt_f16_f32(vld1q_f32(src + 4)));
      const float16x8_t hi = vcombine_f16(vcvt_f16_f32(vld1q_f32(src + 8)), vcvt_f16_f32(vld1q_f32(src + 12)));
      vst1q_f16(b + c * kNR, lo);
      vst1q_f16(b + c * kNR + 8, hi);
    }
    return;
  }
  // The 16 columns split into runs of one output row each (at most 3 runs when ow >= 8);
  // within a run, tap (ky, kx) reads input row iy at ix = ix0 + col * sw.
  struct Run { int64_t c0, c1, iy0, ix0; };
  Run runs[kNR];
  int nruns = 0;
  for (int64_t col = 0; col < nc;) {
    const int64_t j = j0 + col, oy = j / g.ow, ox = j % g.ow;
    const int64_t len = min64(nc - col, g.ow - ox);
    runs[nruns++] = {col, col + len, oy * g.sh - g.pt, ox * g.sw - g.pl};
    col += len;
  }
  for (int64_t c = 0; c < cg; ++c) {
    const float* xc = x + c * plane;
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        float16_t* bk = b + ((c * g.kh + ky) * g.kw + kx) * kNR;
        for (int r = 0; r < nruns; ++r) {
          const Run& run = runs[r];
          const int64_t iy = run.iy0 + ky * g.dh, ix0 = run.ix0 + kx * g.dw;
          if (iy < 0 || iy >= g.ih) {
            for (int64_t col = run.c0; col < run.c1; ++col) bk[col] = 0;
            continue;
          }
          const float* row = xc + iy * g.iw;
          if (g.sw == 1) {  // columns [lo, hi) read row[ix0 + col - c0], the rest is padding
            const int64_t lo = min64(run.c1, run.c0 + max64(0, -ix0));
            const int64_t hi = max64(lo, min64(run.c1, run.c0 + g.iw - ix0));
            const float* src = row + ix0 - run.c0;
            int64_t col = run.c0;
            for (; col < lo; ++col) bk[col] = 0;
            for (; col + 4 <= hi; col += 4) vst1_f16(bk + col, vcvt_f16_f32(vld1q_f32(src + col)));
            for (; col < hi; ++col) bk[col] = static_cast<float16_t>(src[col]);
            for (; col < run.c1; ++col) bk[col] = 0;
            continue;
          }
          for (int64_t col = run.c0; col < run.c1; ++col) {
            const int64_t ix = ix0 + (col - run.c0) * g.sw;
            bk[col] = ix >= 0 && ix < g.iw ? static_cast<float16_t>(row[ix]) : float16_t(0);
          }
        }
        for (int64_t col = nc; col < kNR; ++col) bk[col] = 0;
      }
  }
}

// ---- depthwise ------------------------------------------------------------------------------
template <int SW>
float16x8_t load8(const float16_t* p) {
  if (SW == 1) return vld1q_f16(p);
  return vld2q_f16(p).val[0];  // every other element
}

// One channel of a 3x3 depthwise conv on the padded fp16 plane: the nine weights stay in
// registers; the taps in (ky, kx) order as in the general loop (same results).
template <int SW>
void dw3x3_rows(const Geo& g, const float16_t* buf, int64_t pw, const float16_t* wc, float32x4_t bias,
                const float* residual, const Activation& act, float* y) {
  const float16_t w0 = wc[0], w1 = wc[1], w2 = wc[2], w3 = wc[3], w4 = wc[4], w5 = wc[5], w6 = wc[6], w7 = wc[7],
                  w8 = wc[8];
  const int64_t dx = g.dw;
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const float16_t* r0 = buf + (oy * g.sh) * pw;
    const float16_t* r1 = r0 + g.dh * pw;
    const float16_t* r2 = r1 + g.dh * pw;
    float* yr = y + oy * g.ow;
    const float* rr = residual ? residual + oy * g.ow : nullptr;
    for (int64_t ox = 0; ox < g.ow; ox += 8) {
      const int64_t o = ox * SW;
      float16x8_t acc = vdupq_n_f16(0);
      acc = vfmaq_n_f16(acc, load8<SW>(r0 + o), w0);
      acc = vfmaq_n_f16(acc, load8<SW>(r0 + o + dx), w1);
      acc = vfmaq_n_f16(acc, load8<SW>(r0 + o + 2 * dx), w2);
      acc = vfmaq_n_f16(acc, load8<SW>(r1 + o), w3);
      acc = vfmaq_n_f16(acc, load8<SW>(r1 + o + dx), w4);
      acc = vfmaq_n_f16(acc, load8<SW>(r1 + o + 2 * dx), w5);
      acc = vfmaq_n_f16(acc, load8<SW>(r2 + o), w6);
      acc = vfmaq_n_f16(acc, load8<SW>(r2 + o + dx), w7);
      acc = vfmaq_n_f16(acc, load8<SW>(r2 + o + 2 * dx), w8);
      store8(yr + ox, acc, bias, bias, rr ? rr + ox : nullptr, min64(8, g.ow - ox), act);
    }
  }
}

}  // namespace

void conv_gemm_compute(const KernelContext& ctx, const Geo& g, const Packed& w, const Io& io) {
  const int64_t cg = g.cin / g.group, mg = w.rows_per_group, k = w.k;
  const int64_t npix = g.oh * g.ow, col_panels = (npix + kNR - 1) / kNR, row_panels = (mg + kMR - 1) / kMR;
  ctx.parallel_for(g.n * g.group * col_panels, [&](int64_t begin, int64_t end, int tid) {
    float16_t* b = reinterpret_cast<float16_t*>(io.scratch + io.slice * tid);
    alignas(16) float16_t tile[kMR * kNR];
    for (int64_t u = begin; u < end; ++u) {
      const int64_t img = u / (g.group * col_panels), gi = (u / col_panels) % g.group, p = u % col_panels;
      const int64_t j0 = p * kNR, nc = min64(kNR, npix - j0);
      pack_im2col(g, cg, io.x + (img * g.cin + gi * cg) * g.ih * g.iw, j0, nc, b);
      for (int64_t mp = 0; mp < row_panels; ++mp) {
        f16_gemm_ukernel_8x16(static_cast<size_t>(k), w.a + (gi * row_panels + mp) * k * kMR, b, tile);
        const int64_t mr = min64(kMR, mg - mp * kMR);
        for (int64_t r = 0; r < mr; ++r) {
          const int64_t oc = gi * mg + mp * kMR + r, base = (img * g.cout + oc) * npix + j0;
          const float32x4_t bias = vdupq_n_f32(w.bias[oc]);
          const float* res = io.residual ? io.residual + base : nullptr;
          store8(io.y + base, vld1q_f16(tile + r * kNR), bias, bias, res, min64(8, nc), *w.act);
          if (nc > 8)
            store8(io.y + base + 8, vld1q_f16(tile + r * kNR + 8), bias, bias, res ? res + 8 : nullptr, nc - 8, *w.act);
        }
      }
    }
  });
}

void dwconv_compute(const KernelContext& ctx, const Geo& g, const Packed& w, int64_t ph, int64_t pw, const Io& io) {
  const int64_t taps = g.kh * g.kw, plane = g.ih * g.iw, npix = g.oh * g.ow;
  ctx.parallel_for(g.n * g.cin, [&](int64_t begin, int64_t end, int tid) {
    float16_t* buf = reinterpret_cast<float16_t*>(io.scratch + io.slice * tid);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t ch = u % g.cin;
      const float* xc = io.x + u * plane;
      std::memset(buf, 0, static_cast<size_t>(ph * pw) * sizeof(float16_t));  // +0.0 in fp16
      for (int64_t iy = 0; iy < g.ih; ++iy) {
        float16_t* dst = buf + (iy + g.pt) * pw + g.pl;
        const float* src = xc + iy * g.iw;
        int64_t ix = 0;
        for (; ix + 8 <= g.iw; ix += 8)
          vst1q_f16(dst + ix, vcombine_f16(vcvt_f16_f32(vld1q_f32(src + ix)), vcvt_f16_f32(vld1q_f32(src + ix + 4))));
        for (; ix < g.iw; ++ix) dst[ix] = static_cast<float16_t>(src[ix]);
      }
      const float16_t* wc = w.a + ch * taps;
      const float32x4_t bias = vdupq_n_f32(w.bias[ch]);
      float* yc = io.y + u * npix;
      if (g.kh == 3 && g.kw == 3) {
        if (g.sw == 1)
          dw3x3_rows<1>(g, buf, pw, wc, bias, io.residual ? io.residual + u * npix : nullptr, *w.act, yc);
        else
          dw3x3_rows<2>(g, buf, pw, wc, bias, io.residual ? io.residual + u * npix : nullptr, *w.act, yc);
        continue;
      }
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        for (int64_t ox = 0; ox < g.ow; ox += 8) {
          float16x8_t acc = vdupq_n_f16(0);
          for (int64_t ky = 0; ky < g.kh; ++ky) {
            const float16_t* row = buf + (oy * g.sh + ky * g.dh) * pw + ox * g.sw;
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const float16_t* p = row + kx * g.dw;
              const float16x8_t v = g.sw == 1 ? vld1q_f16(p) : vld2q_f16(p).val[0];
              acc = vfmaq_n_f16(acc, v, wc[ky * g.kw + kx]);
            }
          }
          const int64_t base = u * npix + oy * g.ow + ox;
          store8(yc + oy * g.ow + ox, acc, bias, bias, io.residual ? io.residual + base : nullptr,
                 min64(8, g.ow - ox), *w.act);
        }
      }
    }
  });
}

}  // namespace f16
}  // namespace mobrt
