// fp16 Conv glue (compiled without ISA flags; aarch64 only, as the kernels it calls):
// supports, prepare (weights rounded to fp16 once), scratch, the geometry and the run's
// checks for "conv_f16_gemm_neon_fp16" and "conv_f16_dw_neon_fp16"; the compute is in
// f16_conv_neon_fp16.cpp. Numerics and the enabling rule: f16_neon_fp16.h.
#if defined(__aarch64__)

#include <algorithm>
#include <cmath>
#include <new>
#include <string>

#include "cpu/f16/f16_neon_fp16.h"
#include "cpu/f16/f16_state.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace f16 {

bool fits_fp16(const TensorView& w, float scale) {
  const float* p = w.as<float>();
  for (int64_t i = 0, n = w.numel(); i < n; ++i)
    if (std::isfinite(p[i]) && !(std::fabs(p[i] * scale) <= 65504.f)) return false;
  return true;
}

void store_scalar(float* y, const float* t, const float* residual, int64_t n, const Activation& act) {
  for (int64_t i = 0; i < n; ++i) y[i] = act.apply(residual != nullptr ? t[i] + residual[i] : t[i]);
}

void release_state(void* s) { delete static_cast<State*>(s); }

namespace {

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

Io io_of(const KernelContext& ctx, size_t slice) {
  const float* residual = ctx.num_inputs > 3 && ctx.inputs[3].present() ? ctx.inputs[3].as<float>() : nullptr;
  return Io{ctx.inputs[0].as<float>(), residual, ctx.outputs[0].as<float>(), static_cast<char*>(ctx.scratch),
            slice};
}

// The padded fp16 plane of one depthwise channel: rows cover every tap of every output
// row, columns every tap of every output column rounded up to 8 (the vector loads run past ow).
void plane_dims(const Geo& g, int64_t* ph, int64_t* pw) {
  const int64_t ow8 = (g.ow + 7) / 8 * 8;
  *ph = std::max(g.ih + g.pt + g.pb, (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1);
  *pw = std::max(g.iw + g.pl + g.pr, ow8 * g.sw + (g.kw - 1) * g.dw + 1);
}

}  // namespace

// ---- GEMM conv ----------------------------------------------------------------------------
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
  const size_t slice = slice_bytes(static_cast<size_t>(st.k) * kNR);
  if (ctx.scratch_size < slice * static_cast<size_t>(ctx.num_threads()))
    return ctx.error("conv fp16 scratch of " + std::to_string(ctx.scratch_size) + " bytes is too small");
  conv_gemm_compute(ctx, g, st.view(), io_of(ctx, slice));
  return Status::Ok();
}

// ---- depthwise ------------------------------------------------------------------------------
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
  dwconv_compute(ctx, g, st.view(), ph, pw, io_of(ctx, slice));
  return Status::Ok();
}

}  // namespace f16
}  // namespace mobrt

#endif  // __aarch64__
