// fp16 Gemm / MatMul glue (compiled without ISA flags; aarch64 only, as the kernels it
// calls): supports, prepare (weights times alpha rounded to fp16 once, beta * C), scratch
// and the run's checks for "gemm_f16_packed_neon_fp16" / "matmul_f16_packed_neon_fp16";
// the compute is in f16_gemm_neon_fp16.cpp. Numerics: f16_neon_fp16.h.
#if defined(__aarch64__)

#include <algorithm>
#include <new>
#include <string>

#include "cpu/f16/f16_neon_fp16.h"
#include "cpu/f16/f16_state.h"

namespace mobrt {
namespace f16 {

namespace fb = ::mobconv::formats::fb;

namespace {

constexpr int64_t kPanelsPerUnit = 4;  // output features per work unit: 4 panels of 8

bool transb(const KernelContext& ctx) {
  return ctx.op_type == fb::OpType_Gemm && ctx.attrs->get_int("transB", 0) != 0;
}

void dims(const KernelContext& ctx, int64_t* m, int64_t* k) {
  const TensorView& a = ctx.inputs[0];
  int64_t rows = 1;
  for (int d = 0; d + 1 < a.rank; ++d) rows *= a.dims[d];
  *m = rows;
  *k = a.rank >= 1 ? a.dims[a.rank - 1] : 0;
}

}  // namespace

bool gemm_supports(const KernelContext& ctx) {
  if (!ctx.allow_fp16 || ctx.num_inputs < 2 || !is_f32(ctx.inputs[0]) || !is_const_f32(ctx.inputs[1])) return false;
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const float alpha = ctx.op_type == fb::OpType_Gemm ? ctx.attrs->get_float("alpha", 1.f) : 1.f;
  if (b.rank != 2 || !fits_fp16(b, alpha)) return false;
  Activation act;
  if (!Activation::parse(*ctx.attrs, &act).ok()) return false;
  const bool tb = transb(ctx);
  const int64_t kb = tb ? b.dims[1] : b.dims[0], n = tb ? b.dims[0] : b.dims[1];
  if (n < 1) return false;
  if (ctx.op_type == fb::OpType_MatMul) return a.rank >= 2 && a.rank <= kMaxRank && (a.dims[a.rank - 1] < 0 || a.dims[a.rank - 1] == kb);
  if (a.rank != 2 || ctx.attrs->get_int("transA", 0) != 0) return false;
  if (a.dims[1] >= 0 && a.dims[1] != kb) return false;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const TensorView& c = ctx.inputs[2];
    if (!is_const_f32(c) || c.rank < 1 || c.numel() != n || c.dim(-1) != n) return false;
  }
  return true;
}

Status gemm_prepare(KernelContext& ctx) {
  auto* st = new (std::nothrow) State;
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "gemm fp16: packed weights");
  Activation::parse(*ctx.attrs, &st->act);
  const TensorView& b = ctx.inputs[1];
  const bool is_gemm = ctx.op_type == fb::OpType_Gemm, tb = transb(ctx);
  const int64_t k = tb ? b.dims[1] : b.dims[0], n = tb ? b.dims[0] : b.dims[1];
  const float alpha = is_gemm ? ctx.attrs->get_float("alpha", 1.f) : 1.f;
  const int64_t panels = (n + kMR - 1) / kMR;
  st->k = k;
  st->n = n;
  st->packed.assign(static_cast<size_t>(panels * k * kMR), float16_t(0));
  const float* w = b.as<float>();
  for (int64_t f = 0; f < n; ++f) {  // output feature f = A-panel row
    float16_t* a = st->packed.data() + (f / kMR) * k * kMR + f % kMR;
    for (int64_t kk = 0; kk < k; ++kk)
      a[kk * kMR] = static_cast<float16_t>(alpha * (tb ? w[f * k + kk] : w[kk * n + f]));
  }
  st->bias.assign(static_cast<size_t>(panels * kMR), 0.f);  // padded: the store reads 8 lanes
  if (is_gemm && ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const float beta = ctx.attrs->get_float("beta", 1.f);
    const float* c = ctx.inputs[2].as<float>();
    for (int64_t f = 0; f < n; ++f) st->bias[f] = beta * c[f];
  }
  *ctx.state = st;
  return Status::Ok();
}

size_t gemm_scratch(const KernelContext& ctx) {
  const State& st = *state_of(ctx);
  return static_cast<size_t>(ctx.num_threads()) * slice_bytes(static_cast<size_t>(st.k) * kNR);
}

Status gemm_run(KernelContext& ctx) {
  const State& st = *state_of(ctx);
  int64_t m, k;
  dims(ctx, &m, &k);
  if (k != st.k)
    return ctx.error("A's last dim must equal B's K (" + std::to_string(st.k) + "), got " + std::to_string(k));
  const size_t slice = slice_bytes(static_cast<size_t>(k) * kNR);
  if (ctx.scratch_size < slice * static_cast<size_t>(ctx.num_threads()))
    return ctx.error("gemm fp16 scratch of " + std::to_string(ctx.scratch_size) + " bytes is too small");
  const int64_t panels = (st.n + kMR - 1) / kMR, blocks = m / kNR + m % kNR;
  // Few row blocks (batch-1 FC): also split the features, so threads share the work (the
  // split changes no result: every output is the same sequence of operations).
  const int64_t chunks = blocks >= ctx.num_threads() ? 1 : (panels + kPanelsPerUnit - 1) / kPanelsPerUnit;
  gemm_compute(ctx, st.view(), m, chunks, Io{ctx.inputs[0].as<float>(), nullptr, ctx.outputs[0].as<float>(),
                                             static_cast<char*>(ctx.scratch), slice});
  return Status::Ok();
}

}  // namespace f16
}  // namespace mobrt

#endif  // __aarch64__
