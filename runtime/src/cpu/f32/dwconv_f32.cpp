// Drivers for the non-GEMM layers (see layers.h): they split work into tasks (planes,
// rows, chunks), prepare padded planes, and call the per-ISA vector kernels.
#include <algorithm>
#include <cstring>
#include <vector>

#include "layers.h"

namespace mobrt {
namespace cpu {

namespace {

constexpr float kLowest = -__builtin_inff();

// A row of zeros standing in for input rows above/below the image (per thread).
const float* zero_row(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.assign(floats, 0.f);
  return buf.data();
}

// Output columns [lo, hi) whose window lies inside the input row, with one float of
// slack after the last tap (stride-2 vector loads read pairs): those run vectorized,
// straight from the input; the border columns outside run through scalar code.
void interior_cols(int64_t iw, int64_t ow, int64_t k_extent, int64_t s, int64_t pl, int64_t* lo,
                   int64_t* hi) {
  *lo = std::min(ow, (pl + s - 1) / s);
  const int64_t last = iw - 1 - (k_extent - 1) - (s == 2 ? 1 : 0) + pl;  // max of ox*s
  *hi = last < 0 ? *lo : std::max(*lo, std::min(ow, last / s + 1));
}

// ---- depthwise -----------------------------------------------------------------------
struct DwCtx {
  const IsaKernels* ks;
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

void dwconv2d_run(const IsaKernels& ks, const Conv2dShape& s, const float* w, const float* bias,
                  const Activation& act, const float* x, float* y, const TaskRunner* runner,
                  const float* residual) {
  const Activation none;
  DwCtx c{&ks, &s, w, bias, x, y, residual != nullptr ? &none : &act};
  run_tasks(runner, s.n * s.cin, &c, dw_plane);
  if (residual != nullptr) add_residual_act(ks, y, residual, s.n * s.cout * s.oh * s.ow, act, runner);
}

namespace {
struct ResidualCtx {
  const IsaKernels* ks;
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

void add_residual_act(const IsaKernels& ks, float* y, const float* r, int64_t n,
                      const Activation& act, const TaskRunner* runner) {
  float lo, hi;
  ResidualCtx c{&ks, y, r, n, &act, act_as_clamp(act, &lo, &hi)};
  run_tasks(runner, (n + kResidualChunk - 1) / kResidualChunk, &c, residual_chunk);
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
  const float* x = c.x + plane * s.ih * s.iw;
  float* y = c.y + plane * s.oh * s.ow;
  int64_t lo, hi;
  interior_cols(s.iw, s.ow, s.kw, s.sw, s.pl, &lo, &hi);
  const float* rows[64];
  std::vector<const float*> big;
  const float** r = rows;
  if (s.kh > 64) {
    big.resize(size_t(s.kh));
    r = big.data();
  }
  // Average divisor: window clipped to the counted area (the input, or the input plus
  // the declared pads when count_include_pad; ceil-mode overhang never counts).
  const int64_t lo_h = s.count_include_pad ? -s.pt : 0, hi_h = s.count_include_pad ? s.ih + s.pb : s.ih;
  const int64_t lo_w = s.count_include_pad ? -s.pl : 0, hi_w = s.count_include_pad ? s.iw + s.pr : s.iw;
  const float full = float(s.kh * s.kw);
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    const int64_t y0 = oy * s.sh - s.pt;
    int64_t nrows = 0;
    for (int64_t i = 0; i < s.kh; ++i)
      if (y0 + i >= 0 && y0 + i < s.ih) r[nrows++] = x + (y0 + i) * s.iw;
    float* yr = y + oy * s.ow;
    if (hi > lo) {
      const float* rr[64];
      const float** rp = nrows <= 64 ? rr : r;
      for (int64_t i = 0; i < nrows; ++i) rp[i] = r[i] + lo * s.sw - s.pl;
      if (c.max)
        c.ks->maxpool_row(rp, size_t(nrows), size_t(s.kw), size_t(s.sw), yr + lo, size_t(hi - lo));
      else
        c.ks->avgpool_row(rp, size_t(nrows), size_t(s.kw), size_t(s.sw), yr + lo, size_t(hi - lo), 1.f / full);
      if (nrows > 64)  // restore (rp aliased r)
        for (int64_t i = 0; i < nrows; ++i) r[i] -= lo * s.sw - s.pl;
    }
    for (int64_t ox = 0; ox < s.ow; ++ox) {  // border columns, bounds-checked
      if (ox == lo) ox = hi;
      if (ox >= s.ow) break;
      const int64_t x0 = ox * s.sw - s.pl;
      float acc = c.max ? kLowest : 0.f;
      for (int64_t i = 0; i < nrows; ++i)
        for (int64_t j = std::max<int64_t>(0, -x0); j < s.kw && x0 + j < s.iw; ++j) {
          const float v = r[i][x0 + j];
          if (c.max) {  // max without a data-dependent branch; NaN (rare, predictable) sticks
            acc = std::max(acc, v);
            if (v != v) acc = v;
          } else {
            acc += v;
          }
        }
      yr[ox] = c.max ? acc : acc * (1.f / full);
    }
    if (c.max) {
      if (nrows == 0)
        for (int64_t ox = 0; ox < s.ow; ++ox) yr[ox] = -__builtin_inff();
      continue;
    }
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
    // numpy broadcasting: a 1 takes the other side's size, 0 included (max(0, 1) would
    // make an empty output one element long: issue 7, finding 1).
    d[i] = da == 1 ? db : da;
    if (d[i] == 0) return;  // empty output: nothing to read or write
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
