// fp16 Gemm / MatMul with a constant 2-D B (ARMv8.2 FEAT_FP16): Y[M, N] = act(alpha * A x
// op(B) + beta * C), computed as Y^T = op(B)^T x A^T so the constant weights are the
// packed 8-row A panels (8 output features each) and the activations the 16-column B
// panels (16 rows of A each); rows left over after the 16-row blocks go one at a time
// through the 8-lane GEMV kernel (same products in the same order). Names
// "gemm_f16_packed_neon_fp16" / "matmul_f16_packed_neon_fp16". Numerics: f16_neon_fp16.h.
#include <arm_neon.h>

#include <algorithm>
#include <new>
#include <string>

#include "cpu/f16/f16_common_neon_fp16.h"

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
  if (k != st.k) return ctx.error("A's last dim must equal B's K (" + std::to_string(st.k) + "), got " + std::to_string(k));
  const size_t slice = slice_bytes(static_cast<size_t>(k) * kNR);
  if (ctx.scratch_size < slice * static_cast<size_t>(ctx.num_threads()))
    return ctx.error("gemm fp16 scratch of " + std::to_string(ctx.scratch_size) + " bytes is too small");
  const int64_t n = st.n, panels = (n + kMR - 1) / kMR;
  const int64_t full = m / kNR, blocks = full + m % kNR;  // 16-row blocks, then single rows
  // Few row blocks (batch-1 FC): also split the features, so threads share the work (the
  // split changes no result: every output is the same sequence of operations).
  const int64_t chunks = blocks >= ctx.num_threads() ? 1 : (panels + kPanelsPerUnit - 1) / kPanelsPerUnit;
  const int64_t per_chunk = (panels + chunks - 1) / chunks;
  const float* x = ctx.inputs[0].as<float>();
  float* y = ctx.outputs[0].as<float>();
  ctx.parallel_for(blocks * chunks, [&](int64_t begin, int64_t end, int tid) {
    float16_t* b = reinterpret_cast<float16_t*>(static_cast<char*>(ctx.scratch) + slice * tid);
    alignas(16) float16_t tile[kMR * kNR];
    for (int64_t u = begin; u < end; ++u) {
      const int64_t blk = u / chunks, p0 = (u % chunks) * per_chunk, p1 = std::min(panels, p0 + per_chunk);
      if (blk < full) {
        const int64_t m0 = blk * kNR;
        for (int64_t c = 0; c < kNR; ++c) {
          const float* xr = x + (m0 + c) * k;
          for (int64_t kk = 0; kk < k; ++kk) b[kk * kNR + c] = static_cast<float16_t>(xr[kk]);
        }
        for (int64_t p = p0; p < p1; ++p) {
          f16_gemm_ukernel_8x16(static_cast<size_t>(k), st.packed.data() + p * k * kMR, b, tile);
          const int64_t nr = std::min<int64_t>(kMR, n - p * kMR);
          const float32x4_t b0 = vld1q_f32(st.bias.data() + p * kMR), b1 = vld1q_f32(st.bias.data() + p * kMR + 4);
          alignas(16) float16_t col[kMR];
          for (int64_t c = 0; c < kNR; ++c) {  // tile column c = Y row m0 + c, features p*8..
            for (int r = 0; r < kMR; ++r) col[r] = tile[r * kNR + c];
            store8(y + (m0 + c) * n + p * kMR, vld1q_f16(col), b0, b1, nullptr, nr, st.act);
          }
        }
      } else {
        const int64_t row = full * kNR + (blk - full);
        const float* xr = x + row * k;
        int64_t kk = 0;
        for (; kk + 8 <= k; kk += 8)
          vst1q_f16(b + kk, vcombine_f16(vcvt_f16_f32(vld1q_f32(xr + kk)), vcvt_f16_f32(vld1q_f32(xr + kk + 4))));
        for (; kk < k; ++kk) b[kk] = static_cast<float16_t>(xr[kk]);
        for (int64_t p = p0; p < p1; ++p) {
          f16_gemv_ukernel_8(static_cast<size_t>(k), st.packed.data() + p * k * kMR, b, tile);
          const int64_t nr = std::min<int64_t>(kMR, n - p * kMR);
          store8(y + row * n + p * kMR, vld1q_f16(tile), vld1q_f32(st.bias.data() + p * kMR),
                 vld1q_f32(st.bias.data() + p * kMR + 4), nullptr, nr, st.act);
        }
      }
    }
  });
  return Status::Ok();
}

}  // namespace f16
}  // namespace mobrt
