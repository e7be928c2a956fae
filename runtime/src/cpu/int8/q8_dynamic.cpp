// q8_dynamic.cpp: the driver of the optimized dynamic-range int8 MatMul/Gemm/1x1 Conv
// kernels (q8_dynamic.h), compiled without ISA flags: weight packing, scratch layout, the
// row quantization loop, the tile loop and the scalar tail. The ISA files only provide
// the kernels (DynOps), so no std template or inline function is compiled with ISA flags.
#include "cpu/int8/q8_dynamic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

namespace mobrt {
namespace q8 {
namespace {

struct State {
  dynq::DynGeom g;
  int64_t kgroups = 0, kp = 0, panels = 0;
  std::vector<int16_t> w16;   // panels * kgroups * nr * kr (w_size 2)
  std::vector<int8_t> w8;     // same (w_size 1)
  std::vector<int32_t> comp;  // panels * nr
  std::vector<float> s_w;     // panels * nr
  const void* w() const { return w16.empty() ? static_cast<const void*>(w8.data()) : w16.data(); }
};

bool bias_ok(const KernelContext& ctx, int64_t n) {
  if (ctx.op_type == fb::OpType_MatMul || ctx.num_inputs < 3 || !ctx.inputs[2].present()) return true;
  const TensorView& c = ctx.inputs[2];
  return c.dtype == DType::F32 && c.rank >= 1 && c.numel() == n && c.dim(-1) == n;
}

// Rows of A: MatMul/Gemm every leading dim; Conv N * pixels (pixels: spatial dims).
int64_t rows_of(const KernelContext& ctx, int64_t* pixels) {
  const TensorView& a = ctx.inputs[0];
  int64_t r = 1;
  *pixels = 1;
  if (ctx.op_type == fb::OpType_Conv) {
    for (int i = 2; i < a.rank; ++i) *pixels *= a.dims[i];
    return a.dims[0] * *pixels;
  }
  for (int i = 0; i + 1 < a.rank; ++i) r *= a.dims[i];
  return r;
}

size_t align64(size_t b) { return (b + 63) & ~size_t(63); }

// q[from, to) = the activation zero (a_offset in the packed element type).
void fill_zero(void* q, int64_t from, int64_t to, const DynOps& ops) {
  if (to <= from) return;
  if (ops.a_size == 1) {
    std::memset(static_cast<uint8_t*>(q) + from, static_cast<uint8_t>(ops.a_offset), static_cast<size_t>(to - from));
  } else {
    std::fill(static_cast<int16_t*>(q) + from, static_cast<int16_t*>(q) + to, static_cast<int16_t>(ops.a_offset));
  }
}

}  // namespace

bool dyn_supports(const KernelContext& ctx) {
  if (!dynq::is_dynamic_form(ctx)) return false;
  dynq::DynGeom g;
  if (!dynq::dynamic_rules(ctx, &g).ok() || g.trans_a) return false;
  if (g.act.kind == Activation::Kind::Clip && (g.act.a != g.act.a || g.act.b != g.act.b)) return false;
  return bias_ok(ctx, g.n);
}

void dyn_release(void* p) { delete static_cast<State*>(p); }

Status dyn_prepare(KernelContext& ctx, const DynOps& ops) {
  auto* st = new (std::nothrow) State;
  if (!st) return Status::Error(StatusCode::kOutOfMemory, "dynamic int8: packed weights");
  Status s = dynq::dynamic_rules(ctx, &st->g);
  if (!s.ok()) {
    delete st;
    return s;
  }
  const dynq::DynGeom& g = st->g;
  const int64_t k = g.k, n = g.n, nr = ops.nr, kr = ops.kr;
  st->kgroups = (k + kr - 1) / kr;
  st->kp = st->kgroups * kr;
  st->panels = (n + nr - 1) / nr;
  const int8_t* w = ctx.inputs[1].as<int8_t>();
  const size_t wsize = static_cast<size_t>(st->panels * st->kgroups * nr * kr);
  if (ops.w_size == 2) {
    st->w16.assign(wsize, 0);
  } else {
    st->w8.assign(wsize, 0);
  }
  st->comp.assign(static_cast<size_t>(st->panels * nr), 0);
  st->s_w.assign(static_cast<size_t>(st->panels * nr), 0.f);
  for (int64_t col = 0; col < n; ++col) {
    const int64_t p = col / nr, c = col % nr;
    const int64_t panel = p * st->kgroups * nr * kr;
    int64_t sum = 0;
    for (int64_t kk = 0; kk < k; ++kk) {
      const int8_t v = g.trans_b ? w[col * k + kk] : w[kk * n + col];
      const int64_t at = panel + ((kk / kr) * nr + c) * kr + kk % kr;
      if (ops.w_size == 2) {
        st->w16[static_cast<size_t>(at)] = v;
      } else {
        st->w8[static_cast<size_t>(at)] = v;
      }
      sum += v;
    }
    st->comp[col] = static_cast<int32_t>(-ops.a_offset * sum);
    st->s_w[col] = g.s_w[g.s_w_count == 1 ? 0 : col];
  }
  st->g.s_w = nullptr;  // the model's array: s_w above is the kernel's copy
  *ctx.state = st;
  return Status::Ok();
}

size_t dyn_scratch_bytes(const KernelContext& ctx, const DynOps& ops) {
  const State* st = static_cast<const State*>(*ctx.state);
  int64_t px;
  const int64_t r = rows_of(ctx, &px);
  const int64_t rp = (r + ops.mr - 1) / ops.mr * ops.mr;
  return align64(static_cast<size_t>(rp * st->kp) * static_cast<size_t>(ops.a_size)) +
         align64(static_cast<size_t>(rp) * 4) + align64(static_cast<size_t>(rp));
}

Status dyn_run(KernelContext& ctx, const DynOps& ops) {
  const State* st = static_cast<const State*>(*ctx.state);
  const int64_t k = st->g.k, n = st->g.n, kp = st->kp, mr_max = ops.mr, nr_max = ops.nr;
  const size_t asz = static_cast<size_t>(ops.a_size), wsz = static_cast<size_t>(ops.w_size);
  int64_t px;
  const int64_t r = rows_of(ctx, &px);
  const bool conv = ctx.op_type == fb::OpType_Conv;
  const int64_t rp = (r + mr_max - 1) / mr_max * mr_max;
  char* base = static_cast<char*>(ctx.scratch);
  char* qa = base;
  float* s_a = reinterpret_cast<float*>(base + align64(static_cast<size_t>(rp * kp) * asz));
  uint8_t* bad = reinterpret_cast<uint8_t*>(reinterpret_cast<char*>(s_a) + align64(static_cast<size_t>(rp) * 4));
  const float* pa = ctx.inputs[0].as<float>();
  float* py = ctx.outputs[0].as<float>();
  const float* bias = ctx.op_type != fb::OpType_MatMul && ctx.num_inputs > 2 && ctx.inputs[2].present()
                          ? ctx.inputs[2].as<float>() : nullptr;
  ctx.parallel_for(r, [&](int64_t r0, int64_t r1, int) {  // padding rows are never read
    std::vector<float> gathered(conv ? static_cast<size_t>(k) : 0);
    for (int64_t i = r0; i < r1; ++i) {
      void* q = qa + static_cast<size_t>(i * kp) * asz;
      const float* row = pa + i * k;
      if (conv) {  // pixel i % px of image i / px: its channels at stride px
        const float* src = pa + (i / px) * k * px + i % px;
        for (int64_t c = 0; c < k; ++c) gathered[static_cast<size_t>(c)] = src[c * px];
        row = gathered.data();
      }
      dynq::RowScale rs;
      if (i < r) rs = dynq::row_scale(ops.amax_bits(row, static_cast<size_t>(k)));
      s_a[i] = rs.s_a;
      bad[i] = rs.nonfinite ? 1 : 0;
      if (i < r && !rs.nonfinite) {
        ops.quantize(row, static_cast<size_t>(k), rs.inv, q);
        fill_zero(q, k, kp, ops);
      } else {
        fill_zero(q, 0, kp, ops);
      }
    }
  });
  const int64_t blocks = rp / mr_max, tasks = st->panels * blocks;
  const char* wbase = static_cast<const char*>(st->w());
  const size_t panel_bytes = static_cast<size_t>(st->kgroups * nr_max * ops.kr) * wsz;
  const DynRun run{bad, s_a, st->comp.data(), st->s_w.data(), bias, &st->g.act, py, n, px, conv};
  ctx.parallel_for(tasks, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / blocks, b = t % blocks;  // consecutive tasks share a panel
      const void* w = wbase + static_cast<size_t>(p) * panel_bytes;
      const int mr = static_cast<int>(std::min<int64_t>(mr_max, r - b * mr_max));
      const int64_t col0 = p * nr_max, nr = std::min<int64_t>(nr_max, n - col0);
      ops.tile_finish(static_cast<size_t>(st->kgroups), qa + static_cast<size_t>(b * mr_max * kp) * asz,
                      static_cast<size_t>(kp), w, mr, b * mr_max, col0, nr, run);
    }
  });
  return Status::Ok();
}

int32_t dyn_quantize_value(float a, float inv) { return dynq::quantize_value(a, inv); }

void dyn_finish_scalar(const int32_t* acc, const int32_t* comp, size_t j0, size_t n, float s_a,
                       const float* s_w, const float* bias, const Activation& act, float* y) {
  for (size_t j = j0; j < n; ++j) {
    const int32_t a = static_cast<int32_t>(static_cast<uint32_t>(acc[j]) + static_cast<uint32_t>(comp[j]));
    float v = dynq::scaled(a, s_a, s_w[j]);
    if (bias) v = v + bias[j];
    y[j] = act.apply(v);
  }
}

}  // namespace q8
}  // namespace mobrt
