// q8_dwconv.cpp: the portable part of the int8 depthwise 3x3 convolution (q8_dwconv.h):
// which nodes it takes, the packing at prepare, the plane/row loop of a run. No
// intrinsics here (built for every target); the row kernels are q8_dwconv_<isa>.cpp's.
#include "cpu/int8/q8_dwconv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "cpu/reference/quant_params.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace q8 {
namespace fb = ::mobconv::formats::fb;

namespace {

struct DwState {
  const Q8DwIsa* isa = nullptr;
  std::vector<int16_t> taps;    // [M][9]: w - zw
  std::vector<int32_t> init;    // [M]: the bias (0 without one)
  std::vector<Q8Requant> rq;    // [M]
  int32_t zx = 0;               // X's zero point
};

bool is_q8(DType d) { return d == DType::I8 || d == DType::U8; }

int64_t weight_at(const TensorView& w, int64_t i) {
  return w.dtype == DType::I8 ? static_cast<int64_t>(w.as<int8_t>()[i]) : static_cast<int64_t>(w.as<uint8_t>()[i]);
}

int64_t weight_zp(const TensorView& w, int64_t c) {
  const QuantParams& q = *w.quant;
  return ref::q8::zp_at(q, q.count > 1 ? static_cast<int>(c) : 0);
}

const int32_t* bias_of(const KernelContext& ctx) {
  return ctx.num_inputs > 2 && ctx.inputs[2].present() ? ctx.inputs[2].as<int32_t>() : nullptr;
}

// Geometry of one run (shapes resolved).
struct Geom {
  int64_t n = 0, c = 0, h = 0, w = 0, oh = 0, ow = 0, sh = 1, sw = 1, pt = 0, pl = 0;
  size_t wp = 0;         // int16 elements per converted row
  bool flat = false;     // the whole plane as one row (flat_planes): sh == sw, stride 1 or narrow
  size_t flat_rows = 0;  // flat: converted rows (padding rows included)
  size_t flat_len = 0;   // flat: int16 elements of the converted plane (with the kernels' overreach)
  int64_t chunk = 1;     // rows: output rows requantized at once
  size_t acc_len = 0;    // int32 accumulators per thread
  size_t stage_len = 0;  // flat: bytes of the fused kernel's staging rows (Q8DwFlatFn)
  size_t per_thread = 0; // scratch bytes per thread (64-byte multiple)
};

size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

constexpr int64_t kChunkOutputs = 1024;  // int32 accumulators requantized per call (4 KB)
// Stride 2 computes about as many discarded outputs (ox >= ow) as kept ones in the flat
// layout: it pays only where the per-row calls cost more (measured: 14 -> 7 wins, 112 -> 56
// loses by 1.4x; 56 -> 28 and 28 -> 14 are even).
constexpr int64_t kFlatStride2MaxWidth = 16;
constexpr int64_t kFlatChunkOutputs = 2048;  // flat: outputs per kernel call (8 KB of accumulators)

// fused: the instruction set has a Q8DwFlatFn, which takes every plane with sh == sw.
bool geometry(const KernelContext& ctx, bool fused, Geom* g) {
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  if (x.rank != 4) return false;
  ref::Window win;
  if (!ref::make_window(ctx, x, ref::Shape{w.dims[2], w.dims[3]}, false, &win).ok()) return false;
  g->n = x.dims[0];
  g->c = x.dims[1];
  g->h = win.in[1];
  g->w = win.in[2];
  g->oh = win.out[1];
  g->ow = win.out[2];
  g->sh = win.s[1];
  g->sw = win.s[2];
  g->pt = win.pb[1];
  g->pl = win.pb[2];
  const size_t ow = static_cast<size_t>(g->ow), sw = static_cast<size_t>(g->sw);
  g->flat = g->sh == g->sw && (fused || g->sw == 1 || g->ow <= kFlatStride2MaxWidth);
  if (g->flat) {
    // one row of pitch wp per padded input row (top padding included); output (oy, ox) is
    // flat output q = oy * wp + ox, which reads rows + sw * q + r * wp + k
    g->wp = std::max(static_cast<size_t>(g->pl + g->w), sw * (ow - 1) + 3);
    g->flat_rows = static_cast<size_t>((g->oh - 1) * g->sh + 3);
    // a chunk of output rows [oy0, oy0 + chunk) per kernel call keeps the accumulators in L1;
    // its row pointers start at (oy0 * sw + r) * wp and read up to sw * round_up(chunk * wp,
    // kQ8DwBlock) + kQ8DwSlack further
    g->chunk = std::max<int64_t>(1, std::min<int64_t>(g->oh, kFlatChunkOutputs / static_cast<int64_t>(g->wp)));
    g->flat_len = std::max(g->flat_rows * g->wp,
                           2 * g->wp + sw * (static_cast<size_t>(g->oh) * g->wp + kQ8DwBlock) + kQ8DwSlack);
    g->acc_len = round_up(static_cast<size_t>(g->chunk) * g->wp, kQ8DwBlock);
    g->stage_len = round_up(static_cast<size_t>(g->oh) * g->wp, 32) + 32;
    g->per_thread = round_up(g->flat_len * sizeof(int16_t), 64) + round_up(g->acc_len * sizeof(int32_t), 64) +
                    round_up(g->stage_len, 64);
    return true;
  }
  const size_t owr = round_up(ow, kQ8DwBlock);
  g->wp = round_up(std::max(static_cast<size_t>(g->pl + g->w), sw * owr) + kQ8DwSlack, 32);
  // a chunk's rows are written in order, each row's vector overhang (up to owr) landing
  // where the next row's outputs then go; the last row's past the chunk
  g->chunk = std::max<int64_t>(1, std::min<int64_t>(g->oh, kChunkOutputs / g->ow));
  g->acc_len = static_cast<size_t>(g->chunk * g->ow) + owr;
  const size_t rows = static_cast<size_t>(g->h) + 1;  // the plane + one zero row
  g->per_thread = round_up(rows * g->wp * sizeof(int16_t), 64) + round_up(g->acc_len * sizeof(int32_t), 64);
  return true;
}

// The int16 buffers' zeros (padding columns and rows, the columns past the input) sit at
// the same places for every plane: a thread zeroes its buffer once per run and then each
// plane writes only its h x w values (x - zx), one widen call per plane.
//
// rows layout: row iy of the plane at rows + iy * g.wp: [pl zeros][x - zx][zeros].
void convert_plane(const uint8_t* x, bool x_u8, int32_t zx, const Geom& g, Q8DwWidenFn widen, int16_t* rows) {
  widen(x, x_u8, zx, static_cast<size_t>(g.w), static_cast<size_t>(g.h), rows + g.pl, g.wp);
}

// The flat layout: g.flat_rows rows of g.wp, row i = input row i - pt ([pl zeros][x - zx]
// [zeros]) or all zeros for a padding row; rows past flat_rows are never read.
void convert_flat(const uint8_t* x, bool x_u8, int32_t zx, const Geom& g, Q8DwWidenFn widen, int16_t* buf) {
  const int64_t last = std::min<int64_t>(g.h, static_cast<int64_t>(g.flat_rows) - g.pt);  // rows written
  if (last <= 0) return;
  widen(x, x_u8, zx, static_cast<size_t>(g.w), static_cast<size_t>(last), buf + static_cast<size_t>(g.pt) * g.wp + g.pl,
        g.wp);
}

}  // namespace

void q8_dw_row3x3s1_scalar(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  for (size_t j = 0; j < n; ++j) {
    int32_t s = init;
    for (int r = 0; r < 3; ++r)
      for (int k = 0; k < 3; ++k) s += static_cast<int32_t>(rows[r][j + k]) * w9[3 * r + k];
    acc[j] = s;
  }
}

void q8_dw_row3x3s2_scalar(const int16_t* const* rows, const int16_t* w9, int32_t init, int32_t* acc, size_t n) {
  for (size_t j = 0; j < n; ++j) {
    int32_t s = init;
    for (int r = 0; r < 3; ++r)
      for (int k = 0; k < 3; ++k) s += static_cast<int32_t>(rows[r][2 * j + k]) * w9[3 * r + k];
    acc[j] = s;
  }
}

void q8_dw_widen_rows_scalar(const void* x, bool x_u8, int32_t zx, size_t n, size_t rows, int16_t* out,
                             size_t pitch) {
  for (size_t r = 0; r < rows; ++r) q8_dw_widen_scalar(static_cast<const uint8_t*>(x) + r * n, x_u8, zx, n, out + r * pitch);
}

void q8_dw_widen_scalar(const void* x, bool x_u8, int32_t zx, size_t n, int16_t* out) {
  if (x_u8) {
    const uint8_t* u = static_cast<const uint8_t*>(x);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<int16_t>(static_cast<int32_t>(u[i]) - zx);
  } else {
    const int8_t* s = static_cast<const int8_t*>(x);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<int16_t>(static_cast<int32_t>(s[i]) - zx);
  }
}

bool q8_dw_supports(const KernelContext& ctx) {
  if (ctx.op_type != fb::OpType_Conv || ctx.num_inputs < 2 || ctx.num_outputs != 1) return false;
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  if (!is_q8(x.dtype) || !is_q8(w.dtype) || !is_q8(ctx.outputs[0].dtype)) return false;
  if (x.rank != 4 || w.rank != 4 || !w.is_constant || !w.data || !w.quant) return false;
  if (ctx.num_inputs > 3 && ctx.inputs[3].present()) return false;  // fused residual: the reference refuses it
  const int64_t m = w.dims[0];
  if (w.dims[1] != 1 || w.dims[2] != 3 || w.dims[3] != 3 || m < 1) return false;
  if (ctx.attrs->get_int("group", 1) != m || (x.dims[1] >= 0 && x.dims[1] != m)) return false;
  const std::vector<int64_t> ks = ctx.attrs->get_ints("kernel_shape");
  if (!ks.empty() && ks != std::vector<int64_t>{3, 3}) return false;
  const std::vector<int64_t> st = ctx.attrs->get_ints("strides"), dil = ctx.attrs->get_ints("dilations");
  if (!st.empty() && (st.size() != 2 || st[0] < 1 || st[0] > 2 || st[1] < 1 || st[1] > 2)) return false;
  if (!dil.empty() && dil != std::vector<int64_t>{1, 1}) return false;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const TensorView& b = ctx.inputs[2];
    if (b.dtype != DType::I32 || !b.is_constant || !b.data || b.numel() != m) return false;
  }
  KernelContext c = ctx;
  ref::q8::PerTensor xp;
  ref::q8::OutRequant rq;
  if (!ref::q8::conv_rules(c, &xp, &rq).ok()) return false;
  // Exactness: every partial sum of the int32 accumulation stays within int32.
  const int32_t* bias = bias_of(ctx);
  for (int64_t ch = 0; ch < m; ++ch) {
    const int64_t zw = weight_zp(w, ch);
    int64_t bound = bias ? std::llabs(static_cast<long long>(bias[ch])) : 0;
    for (int64_t k = 0; k < 9; ++k) bound += 255 * std::llabs(static_cast<long long>(weight_at(w, ch * 9 + k) - zw));
    if (bound > quant::kInt32Max) return false;
  }
  return true;
}

Status q8_dw_prepare(KernelContext& ctx, const Q8DwIsa& isa) {
  ref::q8::PerTensor xp;
  ref::q8::OutRequant orq;
  Status s = ref::q8::conv_rules(ctx, &xp, &orq);
  if (!s.ok()) return s;
  auto* st = new (std::nothrow) DwState;
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "conv_q8_dw3x3: packed weights");
  const TensorView& w = ctx.inputs[1];
  const int64_t m = w.dims[0];
  const int32_t* bias = bias_of(ctx);
  st->isa = &isa;
  st->zx = static_cast<int32_t>(xp.zp);
  st->taps.resize(static_cast<size_t>(m * 9));
  st->init.resize(static_cast<size_t>(m));
  st->rq.resize(static_cast<size_t>(m));
  for (int64_t c = 0; c < m; ++c) {
    const int64_t zw = weight_zp(w, c);
    for (int64_t k = 0; k < 9; ++k) st->taps[c * 9 + k] = static_cast<int16_t>(weight_at(w, c * 9 + k) - zw);
    st->init[c] = bias ? bias[c] : 0;
    Q8Requant& r = st->rq[c];
    r.float32 = orq.float32;
    if (orq.float32) {
      r.fscale = orq.fscale[orq.fscale.size() == 1 ? 0 : c];
    } else {
      const quant::Multiplier& mu = orq.mult[orq.mult.size() == 1 ? 0 : c];
      r.q = static_cast<int32_t>(mu.q);
      r.shift = mu.shift;
    }
    r.zp = static_cast<int32_t>(orq.zp);
    r.lo = static_cast<int32_t>(orq.lo);
    r.hi = static_cast<int32_t>(orq.hi);
  }
  *ctx.state = st;
  return Status::Ok();
}

void q8_dw_release(void* state) { delete static_cast<DwState*>(state); }

size_t q8_dw_scratch_bytes(const KernelContext& ctx) {
  // the state (prepare's) tells the layout; without it, enough for either
  const DwState* st = ctx.state && *ctx.state ? static_cast<const DwState*>(*ctx.state) : nullptr;
  Geom g, g2;
  if (st != nullptr) {
    if (!geometry(ctx, st->isa->flat_plane != nullptr, &g)) return 0;
  } else {
    if (!geometry(ctx, false, &g) || !geometry(ctx, true, &g2)) return 0;
    g.per_thread = std::max(g.per_thread, g2.per_thread);
  }
  return g.per_thread * static_cast<size_t>(std::max(1, ctx.num_threads()));
}

Status q8_dw_run(KernelContext& ctx) {
  const DwState& st = *static_cast<const DwState*>(*ctx.state);
  Geom g;
  if (!geometry(ctx, st.isa->flat_plane != nullptr, &g)) return ctx.error("invalid depthwise convolution geometry");
  if (g.oh <= 0 || g.ow <= 0 || g.n * g.c <= 0) return Status::Ok();  // nothing to compute (the kernels assume >= 1)
  if (g.c != static_cast<int64_t>(st.init.size()))
    return ctx.error("X has " + std::to_string(g.c) + " channels, the depthwise weights " +
                     std::to_string(st.init.size()));
  const size_t need = g.per_thread * static_cast<size_t>(std::max(1, ctx.num_threads()));
  if (ctx.scratch == nullptr || ctx.scratch_size < need)
    return ctx.error("conv_q8_dw3x3 scratch of " + std::to_string(ctx.scratch_size) + " bytes, needs " +
                     std::to_string(need));
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  const bool x_u8 = x.dtype == DType::U8, y_u8 = y.dtype == DType::U8;
  const size_t plane_in = static_cast<size_t>(g.h * g.w), plane_out = static_cast<size_t>(g.oh * g.ow);
  const Q8DwRowFn row = g.sw == 1 ? st.isa->row_s1 : st.isa->row_s2;
  const Q8RequantRowFn requant = st.isa->requant_row;
  uint8_t* scratch = static_cast<uint8_t*>(ctx.scratch);
  // sh == sw: the plane is one row of oh * wp outputs (ox >= ow discarded), one row kernel
  // call and one requant call per plane (no per-row overhead on 7x7 / 14x14 planes)
  auto flat_planes = [&](int64_t b, int64_t e, uint8_t* mine) {
    int16_t* buf = reinterpret_cast<int16_t*>(mine);
    int32_t* acc = reinterpret_cast<int32_t*>(mine + round_up(g.flat_len * sizeof(int16_t), 64));
    uint8_t* stage = reinterpret_cast<uint8_t*>(acc) + round_up(g.acc_len * sizeof(int32_t), 64);
    const size_t ow = static_cast<size_t>(g.ow);
    std::fill(buf, buf + g.flat_len, int16_t(0));
    for (int64_t p = b; p < e; ++p) {
      const int64_t c = p % g.c;
      convert_flat(static_cast<const uint8_t*>(x.data) + static_cast<size_t>(p) * plane_in, x_u8, st.zx, g,
                   st.isa->widen, buf);
      uint8_t* out = static_cast<uint8_t*>(y.data) + static_cast<size_t>(p) * plane_out;
      if (st.isa->flat_plane) {
        st.isa->flat_plane(buf, g.wp, static_cast<size_t>(g.sw), st.taps.data() + c * 9, st.init[static_cast<size_t>(c)],
                           st.rq[static_cast<size_t>(c)], static_cast<size_t>(g.oh), ow, out, y_u8, stage);
        continue;
      }
      for (int64_t oy0 = 0; oy0 < g.oh; oy0 += g.chunk) {
        const size_t rows_c = static_cast<size_t>(std::min(g.chunk, g.oh - oy0));
        const int16_t* base = buf + static_cast<size_t>(oy0 * g.sw) * g.wp;
        const int16_t* rows[3] = {base, base + g.wp, base + 2 * g.wp};
        row(rows, st.taps.data() + c * 9, st.init[static_cast<size_t>(c)], acc, rows_c * g.wp);
        for (size_t oy = 1; oy < rows_c; ++oy)  // drop the columns ox >= ow (moves backwards only)
          std::memmove(acc + oy * ow, acc + oy * g.wp, ow * sizeof(int32_t));
        requant(acc, rows_c * ow, st.rq[static_cast<size_t>(c)], out + static_cast<size_t>(oy0) * ow, y_u8);
      }
    }
  };
  ctx.parallel_for(g.n * g.c, [&](int64_t b, int64_t e, int t) {
    uint8_t* mine = scratch + static_cast<size_t>(t) * g.per_thread;
    if (g.flat) {
      flat_planes(b, e, mine);
      return;
    }
    int16_t* zero = reinterpret_cast<int16_t*>(mine);
    int16_t* plane = zero + g.wp;
    int32_t* acc = reinterpret_cast<int32_t*>(mine + round_up((static_cast<size_t>(g.h) + 1) * g.wp * sizeof(int16_t), 64));
    std::fill(zero, zero + (static_cast<size_t>(g.h) + 1) * g.wp, int16_t(0));  // the zero row and the plane
    for (int64_t p = b; p < e; ++p) {
      const int64_t c = p % g.c;
      convert_plane(static_cast<const uint8_t*>(x.data) + static_cast<size_t>(p) * plane_in, x_u8, st.zx, g,
                    st.isa->widen, plane);
      const int16_t* w9 = st.taps.data() + c * 9;
      const int32_t init = st.init[static_cast<size_t>(c)];
      const Q8Requant& rq = st.rq[static_cast<size_t>(c)];
      uint8_t* out = static_cast<uint8_t*>(y.data) + static_cast<size_t>(p) * plane_out;  // 1-byte elements
      for (int64_t oy0 = 0; oy0 < g.oh; oy0 += g.chunk) {
        const int64_t oy1 = std::min(g.oh, oy0 + g.chunk);
        for (int64_t oy = oy0; oy < oy1; ++oy) {
          const int16_t* rows[3];
          for (int r = 0; r < 3; ++r) {
            const int64_t iy = oy * g.sh + r - g.pt;
            rows[r] = iy >= 0 && iy < g.h ? plane + static_cast<size_t>(iy) * g.wp : zero;
          }
          row(rows, w9, init, acc + (oy - oy0) * g.ow, static_cast<size_t>(g.ow));
        }
        requant(acc, static_cast<size_t>((oy1 - oy0) * g.ow), rq, out + static_cast<size_t>(oy0 * g.ow), y_u8);
      }
    }
  });
  return Status::Ok();
}

Kernel q8_dw_kernel(const char* name, Status (*prepare)(KernelContext&)) {
  Kernel k;
  k.name = name;
  k.supports = q8_dw_supports;
  k.prepare = prepare;
  k.release = q8_dw_release;
  k.scratch_bytes = q8_dw_scratch_bytes;
  k.run = q8_dw_run;
  return k;
}

void q8_dw_register(KernelRegistry& registry, Isa isa, const Kernel& k) {
  for (DType xd : {DType::I8, DType::U8})
    for (DType wd : {DType::I8, DType::U8}) registry.add(fb::OpType_Conv, KernelKey{xd, wd}, isa, k);
}

}  // namespace q8
}  // namespace mobrt
