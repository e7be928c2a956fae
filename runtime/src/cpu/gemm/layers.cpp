// Drivers for the non-GEMM layers (see layers.h): they split work into tasks (planes,
// rows, chunks), prepare padded planes, and call the per-ISA vector kernels.
#include <algorithm>
#include <cstring>
#include <vector>

#include "layers.h"

namespace mobrt {
namespace cpu {

namespace {

constexpr float kLowest = -3.402823466e+38f;

// Per-thread padded-plane buffer (tasks on one thread run one after another).
float* plane_buffer(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

// Copies a [h, w] plane into a [h + pt + pb, w + pl + pr] plane filled with `fill`, with
// `slack` extra floats at the end (vector kernels read a little past the last output).
float* pad_plane(const float* x, int64_t h, int64_t w, int64_t pt, int64_t pl, int64_t pb,
                 int64_t pr, float fill, size_t slack, int64_t* wp_out) {
  const int64_t wp = w + pl + pr, hp = h + pt + pb;
  float* p = plane_buffer(size_t(wp * hp) + slack);
  std::fill(p, p + wp * hp + slack, fill);
  for (int64_t r = 0; r < h; ++r) std::memcpy(p + (r + pt) * wp + pl, x + r * w, w * sizeof(float));
  *wp_out = wp;
  return p;
}

// ---- depthwise -----------------------------------------------------------------------
struct DwCtx {
  const IsaKernels* ks;
  const Conv2dShape* s;
  const float *w, *bias, *x;
  float* y;
  const Activation* act;
};

void dw_plane(void* vctx, int64_t plane) {
  const DwCtx& c = *static_cast<const DwCtx*>(vctx);
  const Conv2dShape& s = *c.s;
  const int64_t ch = plane % s.cin;
  const float* w = c.w + ch * s.kh * s.kw;
  const float bias = c.bias != nullptr ? c.bias[ch] : 0.f;
  float* y = c.y + plane * s.oh * s.ow;
  // Pad enough below/right that every window of every output is inside the plane.
  const int64_t need_h = (s.oh - 1) * s.sh + (s.kh - 1) * s.dh + 1;
  const int64_t need_w = (s.ow - 1) * s.sw + (s.kw - 1) * s.dw + 1;
  const int64_t pb = std::max<int64_t>(0, need_h - s.ih - s.pt);
  const int64_t pr = std::max<int64_t>(0, need_w - s.iw - s.pl);
  int64_t wp;
  const float* p = pad_plane(c.x + plane * s.ih * s.iw, s.ih, s.iw, s.pt, s.pl, pb, pr, 0.f,
                             size_t(4 * 16 + 8 + need_w), &wp);
  const bool k3 = s.kh == 3 && s.kw == 3 && s.dh == 1 && s.dw == 1 && s.sh == s.sw;
  if (k3 && s.sh == 1) return c.ks->dwconv3x3s1(p, wp, w, bias, y, s.oh, s.ow, c.act);
  if (k3 && s.sh == 2) return c.ks->dwconv3x3s2(p, wp, w, bias, y, s.oh, s.ow, c.act);
  Activation none;
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    float* yr = y + oy * s.ow;
    for (int64_t ox = 0; ox < s.ow; ++ox) {
      float acc = bias;
      for (int64_t ky = 0; ky < s.kh; ++ky) {
        const float* r = p + (oy * s.sh + ky * s.dh) * wp + ox * s.sw;
        for (int64_t kx = 0; kx < s.kw; ++kx) acc += r[kx * s.dw] * w[ky * s.kw + kx];
      }
      yr[ox] = acc;
    }
    c.ks->activation(yr, s.ow, c.act);
  }
  (void)none;
}

}  // namespace

void dwconv2d_run(const IsaKernels& ks, const Conv2dShape& s, const float* w, const float* bias,
                  const Activation& act, const float* x, float* y, const TaskRunner* runner) {
  DwCtx c{&ks, &s, w, bias, x, y, &act};
  run_tasks(runner, s.n * s.cin, &c, dw_plane);
}

// ---- fully connected ------------------------------------------------------------------
size_t fc_packed_weights_floats(const IsaKernels& ks, int64_t in, int64_t out) {
  return sgemm_packed_b_size(ks.gemm, in, out);
}

void fc_pack_weights(const IsaKernels& ks, int64_t in, int64_t out, const float* w,
                     bool w_is_out_by_in, float* packed) {
  if (w_is_out_by_in)
    sgemm_pack_b(ks.gemm, in, out, w, 1, in, packed);
  else
    sgemm_pack_b(ks.gemm, in, out, w, out, 1, packed);
}

size_t fc_scratch_floats(const IsaKernels& ks, int64_t batch, int64_t in) {
  return sgemm_packed_a_size(ks.gemm, batch, in) + 16;
}

void fc_run(const IsaKernels& ks, int64_t batch, int64_t in, int64_t out, const float* x,
            const float* packed_w, const float* bias, const Activation& act, float* y,
            float* scratch, const TaskRunner* runner) {
  float* pa = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
  sgemm_pack_a(ks.gemm, batch, in, x, in, 1, pa);
  SgemmArgs a;
  a.m = batch;
  a.n = out;
  a.k = in;
  a.packed_a = pa;
  a.packed_b = packed_w;
  a.c = y;
  a.ldc = out;
  a.bias = bias;
  a.bias_mode = BiasMode::kPerCol;
  a.act = act;
  sgemm_packed(ks, a, runner);
}

// ---- pooling --------------------------------------------------------------------------
namespace {

struct PoolCtx {
  const IsaKernels* ks;
  const Pool2dShape* s;
  const float* x;
  float* y;
  bool max;
};

void pool_plane(void* vctx, int64_t plane) {
  const PoolCtx& c = *static_cast<const PoolCtx*>(vctx);
  const Pool2dShape& s = *c.s;
  const int64_t need_h = (s.oh - 1) * s.sh + s.kh, need_w = (s.ow - 1) * s.sw + s.kw;
  const int64_t pb = std::max<int64_t>(0, need_h - s.ih - s.pt);
  const int64_t pr = std::max<int64_t>(0, need_w - s.iw - s.pl);
  int64_t wp;
  const float* p = pad_plane(c.x + plane * s.ih * s.iw, s.ih, s.iw, s.pt, s.pl, pb, pr,
                             c.max ? kLowest : 0.f, size_t(17 * s.sw + 64 + s.kw), &wp);
  float* y = c.y + plane * s.oh * s.ow;
  const float* rows[64];
  std::vector<const float*> big;
  const float** r = rows;
  if (s.kh > 64) {
    big.resize(s.kh);
    r = big.data();
  }
  // Average pooling divisor per output row/column: window clipped to the counted area
  // (input only, or input + declared padding when count_include_pad).
  const int64_t lo_h = s.count_include_pad ? -s.pt : 0, hi_h = s.count_include_pad ? s.ih + s.pb : s.ih;
  const int64_t lo_w = s.count_include_pad ? -s.pl : 0, hi_w = s.count_include_pad ? s.iw + s.pr : s.iw;
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    for (int64_t i = 0; i < s.kh; ++i) r[i] = p + (oy * s.sh + i) * wp;
    float* yr = y + oy * s.ow;
    if (c.max) {
      c.ks->maxpool_row(r, s.kh, s.kw, s.sw, yr, s.ow);
      continue;
    }
    const float full = float(s.kh * s.kw);
    c.ks->avgpool_row(r, s.kh, s.kw, s.sw, yr, s.ow, 1.f / full);
    const int64_t y0 = oy * s.sh - s.pt;
    const int64_t ch = std::min(y0 + s.kh, hi_h) - std::max(y0, lo_h);
    for (int64_t ox = 0; ox < s.ow; ++ox) {
      const int64_t x0 = ox * s.sw - s.pl;
      const int64_t cw = std::min(x0 + s.kw, hi_w) - std::max(x0, lo_w);
      const float cnt = float(ch * cw);
      if (cnt != full) yr[ox] = cnt > 0 ? yr[ox] * (full / cnt) : 0.f;
    }
  }
}

struct GapCtx {
  const IsaKernels* ks;
  const float* x;
  float* y;
  int64_t hw;
};
void gap_plane(void* vctx, int64_t plane) {
  const GapCtx& c = *static_cast<const GapCtx*>(vctx);
  c.y[plane] = c.ks->sum(c.x + plane * c.hw, c.hw) / float(c.hw);
}

}  // namespace

void maxpool2d_run(const IsaKernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner) {
  PoolCtx c{&ks, &s, x, y, true};
  run_tasks(runner, s.n * s.c, &c, pool_plane);
}

void avgpool2d_run(const IsaKernels& ks, const Pool2dShape& s, const float* x, float* y,
                   const TaskRunner* runner) {
  PoolCtx c{&ks, &s, x, y, false};
  run_tasks(runner, s.n * s.c, &c, pool_plane);
}

void global_avgpool_run(const IsaKernels& ks, int64_t planes, int64_t hw, const float* x,
                        float* y, const TaskRunner* runner) {
  GapCtx c{&ks, x, y, hw};
  run_tasks(runner, planes, &c, gap_plane);
}

// ---- element-wise ---------------------------------------------------------------------
namespace {

constexpr int64_t kChunk = 16384;

struct BinCtx {
  const IsaKernels* ks;
  BinOp op;
  const float *a, *b;
  float* y;
  const Activation* act;
  int nd;                 // outer dims (after merging), innermost excluded
  int64_t dims[8], sa[8], sb[8];
  int64_t inner, ia, ib;  // inner length and strides (0 or 1)
  int64_t chunks_per_row;
};

void bin_task(void* vctx, int64_t t) {
  const BinCtx& c = *static_cast<const BinCtx*>(vctx);
  int64_t row = t / c.chunks_per_row;
  const int64_t i0 = (t % c.chunks_per_row) * kChunk;
  const int64_t len = std::min(kChunk, c.inner - i0);
  int64_t oa = 0, ob = 0, rem = row;
  for (int d = c.nd - 1; d >= 0; --d) {
    const int64_t idx = rem % c.dims[d];
    rem /= c.dims[d];
    oa += idx * c.sa[d];
    ob += idx * c.sb[d];
  }
  c.ks->binary(c.op, c.a + oa + i0 * c.ia, size_t(c.ia), c.b + ob + i0 * c.ib, size_t(c.ib),
               c.y + row * c.inner + i0, size_t(len), c.act);
}

}  // namespace

void binary_run(const IsaKernels& ks, BinOp op, const int64_t* a_dims, int ra, const float* a,
                const int64_t* b_dims, int rb, const float* b, float* y, const Activation& act,
                const TaskRunner* runner) {
  const int r = std::max(ra, rb);
  // Right-aligned dims and element strides (0 where broadcast).
  int64_t d[8], sa[8], sb[8];
  int64_t stra = 1, strb = 1;
  for (int i = r - 1; i >= 0; --i) {
    const int ia = i - (r - ra), ib = i - (r - rb);
    const int64_t da = ia >= 0 ? a_dims[ia] : 1, db = ib >= 0 ? b_dims[ib] : 1;
    d[i] = std::max(da, db);
    sa[i] = da == 1 ? 0 : stra;
    sb[i] = db == 1 ? 0 : strb;
    stra *= da;
    strb *= db;
  }
  // Drop size-1 dims, merge neighbours that are contiguous (or broadcast) in both inputs.
  int64_t md[8], msa[8], msb[8];
  int m = 0;
  for (int i = 0; i < r; ++i) {
    if (d[i] == 1) continue;
    if (m > 0 && msa[m - 1] == sa[i] * d[i] && msb[m - 1] == sb[i] * d[i]) {
      md[m - 1] *= d[i];
      msa[m - 1] = sa[i];
      msb[m - 1] = sb[i];
      continue;
    }
    md[m] = d[i];
    msa[m] = sa[i];
    msb[m] = sb[i];
    ++m;
  }
  if (m == 0) {
    md[0] = 1;
    msa[0] = msb[0] = 0;
    m = 1;
  }
  BinCtx c;
  c.ks = &ks;
  c.op = op;
  c.a = a;
  c.b = b;
  c.y = y;
  c.act = &act;
  c.nd = m - 1;
  for (int i = 0; i < m - 1; ++i) {
    c.dims[i] = md[i];
    c.sa[i] = msa[i];
    c.sb[i] = msb[i];
  }
  c.inner = md[m - 1];
  c.ia = msa[m - 1];
  c.ib = msb[m - 1];
  int64_t rows = 1;
  for (int i = 0; i < m - 1; ++i) rows *= md[i];
  c.chunks_per_row = (c.inner + kChunk - 1) / kChunk;
  run_tasks(runner, rows * c.chunks_per_row, &c, bin_task);
}

namespace {
struct ActCtx {
  const IsaKernels* ks;
  const Activation* act;
  const float* x;
  float* y;
  int64_t n;
};
void act_task(void* vctx, int64_t t) {
  const ActCtx& c = *static_cast<const ActCtx*>(vctx);
  const int64_t i0 = t * kChunk, len = std::min(kChunk, c.n - i0);
  if (c.x != c.y) std::memcpy(c.y + i0, c.x + i0, len * sizeof(float));
  c.ks->activation(c.y + i0, size_t(len), c.act);
}
}  // namespace

void activation_run(const IsaKernels& ks, const Activation& act, const float* x, float* y,
                    int64_t n, const TaskRunner* runner) {
  ActCtx c{&ks, &act, x, y, n};
  run_tasks(runner, (n + kChunk - 1) / kChunk, &c, act_task);
}

// ---- softmax ----------------------------------------------------------------------------
namespace {
struct SmCtx {
  const IsaKernels* ks;
  int64_t len, inner, rows_per_task, outer;
  bool log;
  const float* x;
  float* y;
};
void sm_task(void* vctx, int64_t t) {
  const SmCtx& c = *static_cast<const SmCtx*>(vctx);
  if (c.inner == 1) {
    const int64_t r0 = t * c.rows_per_task, nr = std::min(c.rows_per_task, c.outer - r0);
    c.ks->softmax_rows(c.x + r0 * c.len, c.y + r0 * c.len, size_t(nr), size_t(c.len), c.log);
  } else {
    const int64_t off = t * c.len * c.inner;
    c.ks->softmax_inner(c.x + off, c.y + off, size_t(c.len), size_t(c.inner), c.log);
  }
}
}  // namespace

void softmax_run(const IsaKernels& ks, int64_t outer, int64_t len, int64_t inner, bool log,
                 const float* x, float* y, const TaskRunner* runner) {
  SmCtx c{&ks, len, inner, 1, outer, log, x, y};
  int64_t tasks = outer;
  if (inner == 1) {
    c.rows_per_task = std::max<int64_t>(1, kChunk / std::max<int64_t>(len, 1));
    tasks = (outer + c.rows_per_task - 1) / c.rows_per_task;
  }
  run_tasks(runner, tasks, &c, sm_task);
}

}  // namespace cpu
}  // namespace mobrt
