// fp16 Conv kernels (ARMv8.2 FEAT_FP16): any 2-D Conv as an fp16 GEMM over im2col panels
// ("conv_f16_gemm_neon_fp16"), and depthwise (group == input == output channels, stride
// 1 or 2, any kernel size, dilation and pads) directly on an fp16 padded plane
// ("conv_f16_dw_neon_fp16"). Numerics and the enabling rule: f16_neon_fp16.h.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "cpu/f16/f16_common_neon_fp16.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace f16 {

namespace {

// Conv geometry once the input shape is known.
struct Geo {
  int64_t n, cin, ih, iw, cout, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow, group;
};

bool geometry(const KernelContext& ctx, Geo* g) {
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  ref::Shape kernel = ctx.attrs->get_ints("kernel_shape");
  if (kernel.empty()) kernel.assign(w.dims + 2, w.dims + w.rank);
  ref::Window win;
  if (!ref::make_window(ctx, x, kernel, false, &win).ok()) return false;
  g->n = x.dims[0];
  g->cin = x.dims[1];
  g->ih = win.in[1];
  g->iw = win.in[2];
  g->cout = w.dims[0];
  g->kh = win.k[1];
  g->kw = win.k[2];
  g->sh = win.s[1];
  g->sw = win.s[2];
  g->dh = win.d[1];
  g->dw = win.d[2];
  g->pt = win.pb[1];
  g->pl = win.pb[2];
  g->pb = win.pe[1];
  g->pr = win.pe[2];
  g->oh = win.out[1];
  g->ow = win.out[2];
  g->group = ctx.attrs->get_int("group", 1);
  return true;
}

// What both Conv kernels take: fp16 allowed, 2-D, float32, constant weights (and bias)
// that fp16 can hold, a fused activation the runtime knows.
bool conv_common(const KernelContext& ctx) {
  if (!ctx.allow_fp16 || ctx.num_inputs < 2 || !is_f32(ctx.inputs[0]) || ctx.inputs[0].rank != 4) return false;
  const TensorView& w = ctx.inputs[1];
  if (!is_const_f32(w) || w.rank != 4 || w.dims[0] < 1 || !fits_fp16(w)) return false;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() &&
      (!is_const_f32(ctx.inputs[2]) || ctx.inputs[2].numel() != w.dims[0]))
    return false;
  if (ctx.num_inputs > 3 && ctx.inputs[3].present() && !is_f32(ctx.inputs[3])) return false;
  const int64_t g = ctx.attrs->get_int("group", 1);
  if (g < 1 || w.dims[0] % g != 0) return false;
  if (ctx.inputs[0].dims[1] >= 0 && ctx.inputs[0].dims[1] != w.dims[1] * g) return false;
  Activation act;
  return Activation::parse(*ctx.attrs, &act).ok();
}

bool is_depthwise(const KernelContext& ctx) {
  const TensorView& w = ctx.inputs[1];
  const int64_t g = ctx.attrs->get_int("group", 1);
  if (g != w.dims[0] || w.dims[1] != 1) return false;
  const std::vector<int64_t> s = ctx.attrs->get_ints("strides");
  for (int64_t v : s)
    if (v != 1 && v != 2) return false;
  return s.empty() || s.size() == 2;
}

State* new_state(KernelContext& ctx, int64_t rows) {
  auto* st = new (std::nothrow) State;
  if (st == nullptr) return nullptr;
  Activation::parse(*ctx.attrs, &st->act);
  st->bias.assign(static_cast<size_t>(rows), 0.f);
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const float* b = ctx.inputs[2].as<float>();
    std::copy(b, b + rows, st->bias.begin());
  }
  return st;
}

const float* residual_of(const KernelContext& ctx) {
  return ctx.num_inputs > 3 && ctx.inputs[3].present() ? ctx.inputs[3].as<float>() : nullptr;
}

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
    const int64_t len = std::min(nc - col, g.ow - ox);
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
            const int64_t lo = std::min(run.c1, run.c0 + std::max<int64_t>(0, -ix0));
            const int64_t hi = std::max(lo, std::min(run.c1, run.c0 + g.iw - ix0));
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

}  // namespace

bool conv_gemm_supports(const KernelContext& ctx) { return conv_common(ctx) && !is_depthwise(ctx); }

Status conv_gemm_prepare(KernelContext& ctx) {
  const TensorView& w = ctx.inputs[1];
  const int64_t cout = w.dims[0], g = ctx.attrs->get_int("group", 1);
  State* st = new_state(ctx, cout);
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "conv fp16: packed weights");
  const int64_t mg = cout / g, k = w.dims[1] * w.dims[2] * w.dims[3], panels = (mg + kMR - 1) / kMR;
  st->rows_per_group = mg;
  st->k = k;
  st->packed.assign(static_cast<size_t>(g * panels * k * kMR), float16_t(0));
  const float* pw = w.as<float>();
  for (int64_t gi = 0; gi < g; ++gi)
    for (int64_t p = 0; p < panels; ++p) {
      float16_t* a = st->packed.data() + (gi * panels + p) * k * kMR;
      for (int64_t r = 0; r < kMR && p * kMR + r < mg; ++r) {
        const float* row = pw + (gi * mg + p * kMR + r) * k;
        for (int64_t kk = 0; kk < k; ++kk) a[kk * kMR + r] = static_cast<float16_t>(row[kk]);
      }
    }
  *ctx.state = st;
  return Status::Ok();
}

size_t conv_gemm_scratch(const KernelContext& ctx) {
  const TensorView& w = ctx.inputs[1];
  const size_t k = static_cast<size_t>(w.dims[1] * w.dims[2] * w.dims[3]);
  return static_cast<size_t>(ctx.num_threads()) * slice_bytes(k * kNR);
}

Status conv_gemm_run(KernelContext& ctx) {
  const State& st = *state_of(ctx);
  Geo g;
  if (!geometry(ctx, &g)) return ctx.error("invalid convolution geometry");
  const int64_t cg = g.cin / g.group, mg = st.rows_per_group, k = st.k;
  const int64_t npix = g.oh * g.ow, col_panels = (npix + kNR - 1) / kNR, row_panels = (mg + kMR - 1) / kMR;
  const size_t slice = slice_bytes(static_cast<size_t>(k) * kNR);
  if (ctx.scratch_size < slice * static_cast<size_t>(ctx.num_threads()))
    return ctx.error("conv fp16 scratch of " + std::to_string(ctx.scratch_size) + " bytes is too small");
  const float* x = ctx.inputs[0].as<float>();
  const float* residual = residual_of(ctx);
  float* y = ctx.outputs[0].as<float>();
  ctx.parallel_for(g.n * g.group * col_panels, [&](int64_t begin, int64_t end, int tid) {
    float16_t* b = reinterpret_cast<float16_t*>(static_cast<char*>(ctx.scratch) + slice * tid);
    alignas(16) float16_t tile[kMR * kNR];
    for (int64_t u = begin; u < end; ++u) {
      const int64_t img = u / (g.group * col_panels), gi = (u / col_panels) % g.group, p = u % col_panels;
      const int64_t j0 = p * kNR, nc = std::min<int64_t>(kNR, npix - j0);
      pack_im2col(g, cg, x + (img * g.cin + gi * cg) * g.ih * g.iw, j0, nc, b);
      for (int64_t mp = 0; mp < row_panels; ++mp) {
        f16_gemm_ukernel_8x16(static_cast<size_t>(k), st.packed.data() + (gi * row_panels + mp) * k * kMR, b, tile);
        const int64_t mr = std::min<int64_t>(kMR, mg - mp * kMR);
        for (int64_t r = 0; r < mr; ++r) {
          const int64_t oc = gi * mg + mp * kMR + r, base = (img * g.cout + oc) * npix + j0;
          const float32x4_t bias = vdupq_n_f32(st.bias[oc]);
          store8(y + base, vld1q_f16(tile + r * kNR), bias, bias, residual ? residual + base : nullptr,
                 std::min<int64_t>(8, nc), st.act);
          if (nc > 8)
            store8(y + base + 8, vld1q_f16(tile + r * kNR + 8), bias, bias, residual ? residual + base + 8 : nullptr,
                   nc - 8, st.act);
        }
      }
    }
  });
  return Status::Ok();
}

// ---- depthwise ------------------------------------------------------------------------------
namespace {

// The padded fp16 plane of one channel: rows cover every tap of every output row, columns
// every tap of every output column rounded up to 8 (the vector loads run past ow).
void plane_dims(const Geo& g, int64_t* ph, int64_t* pw) {
  const int64_t ow8 = (g.ow + 7) / 8 * 8;
  *ph = std::max(g.ih + g.pt + g.pb, (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1);
  *pw = std::max(g.iw + g.pl + g.pr, ow8 * g.sw + (g.kw - 1) * g.dw + 1);
}

}  // namespace

template <int SW>
inline float16x8_t load8(const float16_t* p) {
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
      store8(yr + ox, acc, bias, bias, rr ? rr + ox : nullptr, std::min<int64_t>(8, g.ow - ox), act);
    }
  }
}

bool dwconv_supports(const KernelContext& ctx) { return conv_common(ctx) && is_depthwise(ctx); }

Status dwconv_prepare(KernelContext& ctx) {
  const TensorView& w = ctx.inputs[1];
  State* st = new_state(ctx, w.dims[0]);
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "depthwise conv fp16: weights");
  const float* pw = w.as<float>();
  st->packed.resize(static_cast<size_t>(w.numel()));
  for (int64_t i = 0; i < w.numel(); ++i) st->packed[i] = static_cast<float16_t>(pw[i]);
  st->k = w.dims[2] * w.dims[3];
  *ctx.state = st;
  return Status::Ok();
}

size_t dwconv_scratch(const KernelContext& ctx) {
  Geo g;
  if (!geometry(ctx, &g)) return 0;
  int64_t ph, pw;
  plane_dims(g, &ph, &pw);
  return static_cast<size_t>(ctx.num_threads()) * slice_bytes(static_cast<size_t>(ph * pw));
}

Status dwconv_run(KernelContext& ctx) {
  const State& st = *state_of(ctx);
  Geo g;
  if (!geometry(ctx, &g)) return ctx.error("invalid convolution geometry");
  int64_t ph, pw;
  plane_dims(g, &ph, &pw);
  const size_t slice = slice_bytes(static_cast<size_t>(ph * pw));
  if (ctx.scratch_size < slice * static_cast<size_t>(ctx.num_threads()))
    return ctx.error("depthwise conv fp16 scratch of " + std::to_string(ctx.scratch_size) + " bytes is too small");
  const float* x = ctx.inputs[0].as<float>();
  const float* residual = residual_of(ctx);
  float* y = ctx.outputs[0].as<float>();
  const int64_t taps = g.kh * g.kw, plane = g.ih * g.iw, npix = g.oh * g.ow;
  ctx.parallel_for(g.n * g.cin, [&](int64_t begin, int64_t end, int tid) {
    float16_t* buf = reinterpret_cast<float16_t*>(static_cast<char*>(ctx.scratch) + slice * tid);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t ch = u % g.cin;
      const float* xc = x + u * plane;
      std::memset(buf, 0, static_cast<size_t>(ph * pw) * sizeof(float16_t));  // +0.0 in fp16
      for (int64_t iy = 0; iy < g.ih; ++iy) {
        float16_t* dst = buf + (iy + g.pt) * pw + g.pl;
        const float* src = xc + iy * g.iw;
        int64_t ix = 0;
        for (; ix + 8 <= g.iw; ix += 8)
          vst1q_f16(dst + ix, vcombine_f16(vcvt_f16_f32(vld1q_f32(src + ix)), vcvt_f16_f32(vld1q_f32(src + ix + 4))));
        for (; ix < g.iw; ++ix) dst[ix] = static_cast<float16_t>(src[ix]);
      }
      const float16_t* wc = st.packed.data() + ch * taps;
      const float32x4_t bias = vdupq_n_f32(st.bias[ch]);
      float* yc = y + u * npix;
      if (g.kh == 3 && g.kw == 3) {
        if (g.sw == 1)
          dw3x3_rows<1>(g, buf, pw, wc, bias, residual ? residual + u * npix : nullptr, st.act, yc);
        else
          dw3x3_rows<2>(g, buf, pw, wc, bias, residual ? residual + u * npix : nullptr, st.act, yc);
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
          store8(yc + oy * g.ow + ox, acc, bias, bias, residual ? residual + base : nullptr,
                 std::min<int64_t>(8, g.ow - ox), st.act);
        }
      }
    }
  });
  return Status::Ok();
}

void release_state(void* s) { delete static_cast<State*>(s); }

}  // namespace f16
}  // namespace mobrt
