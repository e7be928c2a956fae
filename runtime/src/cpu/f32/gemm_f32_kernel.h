// The fp32 Gemm and MatMul kernels: Gemm (FullyConnected: A [M, K], constant B, optional
// constant C) and MatMul with a constant 2-D B pack B once at prepare and run fc_f32.h;
// MatMul with a non-constant B runs one packed sgemm per broadcast batch.
#pragma once
#include "cpu/f32/f32_kernel_common.h"
#include "cpu/f32/fc_f32.h"
#include "cpu/f32/gemm_f32_const_b.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fb = ::mobconv::formats::fb;

// ---- Gemm (FullyConnected) and MatMul with constant B ------------------------------------
// Gemm: Y = act(alpha * A x op(B) + beta * C), A [M, K] not transposed, B constant,
// C absent or constant of N values. MatMul: A [..., K] x B [K, N] constant.
// MatMul with a non-constant (or not 2-D) B runs per batch through sgemm() instead.
bool matmul_dynamic(const KernelContext& ctx) {
  return ctx.op_type == fb::OpType_MatMul && !(is_const_f32(ctx.inputs[1]) && ctx.inputs[1].rank == 2);
}

bool gemm_supports(const KernelContext& ctx) {
  if (ctx.num_inputs < 2 || !is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1])) return false;
  Activation act;
  if (!fused_act(ctx, &act)) return false;
  if (ctx.op_type == fb::OpType_MatMul)
    return ctx.inputs[0].rank >= 1 && ctx.inputs[1].rank >= 1 && ctx.inputs[0].rank <= kMaxRank &&
           ctx.inputs[1].rank <= kMaxRank;
  return is_const_f32(ctx.inputs[1]) && ctx.inputs[1].rank == 2 && gemm_a_and_c_ok(ctx);
}

template <const F32Kernels& K>
Status gemm_prepare(KernelContext& ctx) {
  auto* st = new (std::nothrow) PackedState;
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "gemm: packed weights");
  st->ks = &K;
  fused_act(ctx, &st->act);
  if (matmul_dynamic(ctx)) {  // nothing to pre-pack
    st->dynamic = true;  // decided once: B folded later (at the interpreter's prepare) is not packed
    *ctx.state = st;
    return Status::Ok();
  }
  const GemmConstB g = gemm_const_b(ctx);
  std::vector<float> scaled;
  const float* w = ctx.inputs[1].as<float>();
  if (g.alpha != 1.f) {  // fold alpha into the packed weights
    scaled.assign(w, w + g.k * g.n);
    for (float& v : scaled) v *= g.alpha;
    w = scaled.data();
  }
  st->packed.resize(fc_packed_weights_floats(*st->ks, g.k, g.n) + 16);
  fc_pack_weights(*st->ks, g.k, g.n, w, g.tb, st->aligned_mut());
  gemm_bias(ctx, g.n, &st->bias);
  *ctx.state = st;
  return Status::Ok();
}

void gemm_dims(const KernelContext& ctx, int64_t* m, int64_t* k, int64_t* n) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const bool tb = ctx.op_type == fb::OpType_Gemm && ctx.attrs->get_int("transB", 0) != 0;
  *k = tb ? b.dims[1] : b.dims[0];
  *n = tb ? b.dims[0] : b.dims[1];
  // M from A's leading dims (not numel / K: K may be 0, and then Y = bias, not nothing).
  int64_t rows = 1;
  for (int d = 0; d + 1 < a.rank; ++d) rows *= a.dims[d];
  *m = rows;
}

template <const F32Kernels& K>
size_t gemm_scratch(const KernelContext& ctx) {
  if (state_of(ctx)->dynamic) return 0;
  int64_t m, k, n;
  gemm_dims(ctx, &m, &k, &n);
  return fc_scratch_floats(K, m, k) * sizeof(float) + 64;
}

// A[..., M, K] x B[..., K, N] with numpy batch broadcasting (rank-1 A is [1, K], rank-1
// B is [K, 1]); one packed sgemm per output batch.
Status matmul_dynamic_run(KernelContext& ctx, const PackedState& st) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const int64_t m = a.rank >= 2 ? a.dim(-2) : 1, k = a.dim(-1);
  const int64_t kb = b.rank >= 2 ? b.dim(-2) : b.dims[0], n = b.rank >= 2 ? b.dim(-1) : 1;
  if (k != kb) return ctx.error("MatMul inner dims differ: A has K=" + std::to_string(k) + ", B has K=" + std::to_string(kb));
  const int ra = a.rank >= 2 ? a.rank - 2 : 0, rb = b.rank >= 2 ? b.rank - 2 : 0;
  const int r = ra > rb ? ra : rb;
  int64_t dims[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  int64_t stra = m * k, strb = k * n, batches = 1;
  for (int i = r - 1; i >= 0; --i) {
    const int ia = i - (r - ra), ib = i - (r - rb);
    const int64_t da = ia >= 0 ? a.dims[ia] : 1, db = ib >= 0 ? b.dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return ctx.error("MatMul batch dims do not broadcast");
    dims[i] = da > db ? da : db;
    sa[i] = da == 1 ? 0 : stra;
    sb[i] = db == 1 ? 0 : strb;
    stra *= da;
    strb *= db;
    batches *= dims[i];
  }
  const TaskRunner runner = runner_for(ctx);
  const float* pa = a.as<float>();
  const float* pb = b.as<float>();
  float* py = ctx.outputs[0].as<float>();
  for (int64_t t = 0; t < batches; ++t) {
    int64_t rem = t, oa = 0, ob = 0;
    for (int i = r - 1; i >= 0; --i) {
      const int64_t idx = rem % dims[i];
      rem /= dims[i];
      oa += idx * sa[i];
      ob += idx * sb[i];
    }
    sgemm(*st.ks->gemm, st.ks->activation, false, false, size_t(m), size_t(n), size_t(k), pa + oa, size_t(k), pb + ob, size_t(n),
          py + t * m * n, size_t(n), nullptr, BiasMode::kNone, st.act, &runner);
  }
  return Status::Ok();
}

Status gemm_run(KernelContext& ctx) {
  const PackedState& st = *state_of(ctx);
  if (st.dynamic) return matmul_dynamic_run(ctx, st);
  int64_t m, k, n;
  gemm_dims(ctx, &m, &k, &n);
  if (ctx.inputs[0].dim(-1) != k) return ctx.error("A's last dim must equal B's K");
  if (ctx.scratch == nullptr || ctx.scratch_size < fc_scratch_floats(*st.ks, m, k) * sizeof(float))
    return ctx.error("gemm scratch of " + std::to_string(ctx.scratch_size) + " bytes is too small");
  const TaskRunner r = runner_for(ctx);
  fc_run(*st.ks, m, k, n, ctx.inputs[0].as<float>(), st.aligned(),
         st.bias.empty() ? nullptr : st.bias.data(), st.act, ctx.outputs[0].as<float>(),
         static_cast<float*>(ctx.scratch), &r);
  return Status::Ok();
}

// "gemm_f32_packed_<isa>", "matmul_f32_packed_<isa>", keyed {F32, F32}.
template <const F32Kernels& K>
void register_f32_gemm(KernelRegistry& reg, Isa isa) {
  static const std::string n_gemm = std::string("gemm_f32_packed_") + K.isa,
                           n_mm = std::string("matmul_f32_packed_") + K.isa;
  Kernel gemm;
  gemm.name = n_gemm.c_str();
  gemm.supports = &gemm_supports;
  gemm.prepare = &gemm_prepare<K>;
  gemm.release = &release_state;
  gemm.scratch_bytes = &gemm_scratch<K>;
  gemm.run = &gemm_run;
  reg.add(fb::OpType_Gemm, KernelKey{DType::F32, DType::F32}, isa, gemm);
  gemm.name = n_mm.c_str();
  reg.add(fb::OpType_MatMul, KernelKey{DType::F32, DType::F32}, isa, gemm);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
