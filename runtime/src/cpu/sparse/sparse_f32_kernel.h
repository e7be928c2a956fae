// The sparse fp32 op kernels (the glue between the kernel registry and sparse_f32.h):
// Conv 1x1 "conv_f32_sparse1x1_<isa>", Gemm "gemm_f32_sparse_<isa>" and MatMul with a
// constant 2-D B "matmul_f32_sparse_<isa>", keyed {F32, F32} like the dense ones and
// registered with add_first, so the interpreter offers them each node before the dense
// GEMM kernel (and, at the scalar set, the reference) of the same set.
//
// `supports` takes the node when the shape fits (Conv: 4-D NCHW, W [cout, cin, 1, 1],
// group 1, strides and dilations 1, no pads, optional constant bias and fused residual;
// Gemm: A [M, K], transA 0, constant B (transB either way), C absent or N constant
// values; MatMul: A [..., K] x constant B [K, N]) and MOBRT_SPARSE says so: `always`
// every such node, `off` none, `auto` (default) when the weight's zero fraction reaches
// the set's measured threshold (sparse_f32.h; never for the scalar set). `prepare` packs
// the non-zeros once (alpha folded in, beta * C resolved); `run` never repacks.
#pragma once
#include <new>
#include <string>
#include <vector>

#include "core/kernel.h"
#include "cpu/f32/gemm_f32_const_b.h"
#include "cpu/sparse/sparse_f32.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fbs = ::mobconv::formats::fb;

struct SparseState {
  const SparseF32Kernels* ks = nullptr;
  SparseRows w;
  std::vector<float> bias;  // empty: none
  Activation act;
};
void sparse_release(void* s) { delete static_cast<SparseState*>(s); }
template <const SparseF32Kernels& K>
SparseState* new_sparse_state(const KernelContext& ctx) {  // null when out of memory
  auto* st = new (std::nothrow) SparseState;
  if (st == nullptr) return nullptr;
  st->ks = &K;
  Activation::parse(*ctx.attrs, &st->act);
  return st;
}
const SparseState& sparse_state(const KernelContext& ctx) { return *static_cast<const SparseState*>(*ctx.state); }

void sparse_parallel_for(void* pool, int64_t n, void* c, void (*fn)(void*, int64_t, int64_t, int)) {
  static_cast<const KernelContext*>(pool)->parallel_for(n, [&](int64_t b, int64_t e, int t) { fn(c, b, e, t); });
}
SparseRunner sparse_runner(const KernelContext& ctx) {  // the interpreter's pool for the drivers
  SparseRunner r;
  r.parallel_for = &sparse_parallel_for;
  r.pool = const_cast<KernelContext*>(&ctx);
  r.threads = ctx.num_threads();
  return r;
}

Status sparse_scratch_ok(const KernelContext& ctx, size_t floats) {
  const size_t need = floats * sizeof(float);
  if (need > 0 && (ctx.scratch == nullptr || ctx.scratch_size < need))
    return ctx.error("sparse kernel scratch of " + std::to_string(ctx.scratch_size) + " bytes, needs " +
                     std::to_string(need));
  return Status::Ok();
}

bool sparse_f32(const TensorView& t) { return t.present() && t.dtype == DType::F32; }
bool sparse_const_f32(const TensorView& t) { return sparse_f32(t) && t.is_constant && t.data != nullptr; }

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v)
    if (e != x) return false;
  return true;
}

// The mode and the zero fraction decide; the shape was checked by the caller.
bool sparse_wanted(const TensorView& w, float min_sparsity) {
  if (w.numel() >= (int64_t(1) << 31)) return false;  // 32-bit indices and row starts
  switch (sparse_mode()) {
    case SparseMode::kOff: return false;
    case SparseMode::kAlways: return true;
    case SparseMode::kAuto: break;
  }
  return min_sparsity <= 1.f && w.numel() > 0 && zero_fraction(w.as<float>(), w.numel()) >= min_sparsity;
}

bool sparse_act_ok(const KernelContext& ctx) {
  Activation act;
  return Activation::parse(*ctx.attrs, &act).ok();
}

// ---- Conv 1x1 --------------------------------------------------------------------------
bool conv1x1_shape_ok(const KernelContext& ctx) {
  if (ctx.num_inputs < 2 || !sparse_f32(ctx.inputs[0]) || ctx.inputs[0].rank != 4) return false;
  const TensorView& w = ctx.inputs[1];
  if (!sparse_const_f32(w) || w.rank != 4 || w.dims[2] != 1 || w.dims[3] != 1) return false;
  if (ctx.inputs[0].dims[1] >= 0 && ctx.inputs[0].dims[1] != w.dims[1]) return false;
  if (ctx.attrs->get_int("group", 1) != 1) return false;
  const std::vector<int64_t> k = ctx.attrs->get_ints("kernel_shape");
  if (!k.empty() && !(k.size() == 2 && all_equal(k, 1))) return false;
  if (!all_equal(ctx.attrs->get_ints("strides"), 1) || !all_equal(ctx.attrs->get_ints("dilations"), 1) ||
      !all_equal(ctx.attrs->get_ints("pads"), 0))
    return false;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() &&
      !(sparse_const_f32(ctx.inputs[2]) && ctx.inputs[2].numel() == w.dims[0]))
    return false;
  if (ctx.num_inputs > 3 && ctx.inputs[3].present() && !sparse_f32(ctx.inputs[3])) return false;
  return sparse_act_ok(ctx);
}

template <const SparseF32Kernels& K>
bool conv1x1_supports(const KernelContext& ctx) {
  return conv1x1_shape_ok(ctx) && sparse_wanted(ctx.inputs[1], K.conv_min_sparsity);
}

template <const SparseF32Kernels& K>
Status conv1x1_prepare(KernelContext& ctx) {
  SparseState* st = new_sparse_state<K>(ctx);
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "sparse conv: packed weights");
  const TensorView& w = ctx.inputs[1];
  sparse_pack(w.as<float>(), w.dims[0], w.dims[1], w.dims[1], 1, 1.f, &st->w);
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const float* b = ctx.inputs[2].as<float>();
    st->bias.assign(b, b + w.dims[0]);
  }
  *ctx.state = st;
  return Status::Ok();
}

size_t conv1x1_scratch(const KernelContext& ctx) {
  const SparseState& st = sparse_state(ctx);
  return sparse_conv1x1_scratch_floats(*st.ks, st.w, ctx.num_threads()) * sizeof(float);
}

Status conv1x1_run(KernelContext& ctx) {
  const SparseState& st = sparse_state(ctx);
  const TensorView &x = ctx.inputs[0], &y = ctx.outputs[0];
  if (x.dims[1] != st.w.cols || y.rank != 4 || y.dims[0] != x.dims[0] || y.dims[1] != st.w.rows ||
      y.dims[2] != x.dims[2] || y.dims[3] != x.dims[3])
    return ctx.error("sparse 1x1 conv: input " + std::to_string(x.dims[1]) + " channels, weights " +
                     std::to_string(st.w.rows) + "x" + std::to_string(st.w.cols) + ", output shape mismatch");
  const float* res = ctx.num_inputs > 3 && ctx.inputs[3].present() ? ctx.inputs[3].as<float>() : nullptr;
  if (res != nullptr && ctx.inputs[3].numel() != y.numel())
    return ctx.error("R (fused residual) must have the output's shape");
  const SparseRunner r = sparse_runner(ctx);
  const Status s = sparse_scratch_ok(ctx, sparse_conv1x1_scratch_floats(*st.ks, st.w, r.threads));
  if (!s.ok()) return s;
  sparse_conv1x1_run(*st.ks, st.w, st.bias.empty() ? nullptr : st.bias.data(), st.act, x.dims[0],
                     x.dims[2] * x.dims[3], x.as<float>(), y.as<float>(), res, static_cast<float*>(ctx.scratch), &r);
  return Status::Ok();
}

// ---- Gemm / MatMul with a constant B ---------------------------------------------------
bool fc_shape_ok(const KernelContext& ctx) {
  if (ctx.num_inputs < 2 || !sparse_f32(ctx.inputs[0]) || !sparse_const_f32(ctx.inputs[1]) ||
      ctx.inputs[1].rank != 2 || !sparse_act_ok(ctx))
    return false;
  if (ctx.op_type == fbs::OpType_MatMul) return ctx.inputs[0].rank >= 1 && ctx.inputs[0].rank <= kMaxRank;
  return gemm_a_and_c_ok(ctx);
}

template <const SparseF32Kernels& K>
bool fc_supports(const KernelContext& ctx) {
  if (!fc_shape_ok(ctx)) return false;
  const TensorView& a = ctx.inputs[0];  // batch 1 when every leading dim is declared 1
  bool b1 = true;
  for (int d = 0; d + 1 < a.rank; ++d) b1 = b1 && a.dims[d] == 1;
  return sparse_wanted(ctx.inputs[1], b1 ? K.fc_b1_min_sparsity : K.fc_batch_min_sparsity);
}

template <const SparseF32Kernels& K>
Status fc_prepare(KernelContext& ctx) {
  SparseState* st = new_sparse_state<K>(ctx);
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "sparse gemm: packed weights");
  const GemmConstB g = gemm_const_b(ctx);
  const float* b = ctx.inputs[1].as<float>();
  // Rows of the packed matrix are the N outputs: W[o, c] = op(B)[c, o].
  if (g.tb) sparse_pack(b, g.n, g.k, g.k, 1, g.alpha, &st->w);
  else sparse_pack(b, g.n, g.k, 1, g.n, g.alpha, &st->w);
  gemm_bias(ctx, g.n, &st->bias);
  *ctx.state = st;
  return Status::Ok();
}

int64_t fc_rows(const TensorView& a) {  // M: the product of A's leading dims
  int64_t m = 1;
  for (int d = 0; d + 1 < a.rank; ++d) m *= a.dims[d];
  return m;
}

size_t fc_scratch(const KernelContext& ctx) {
  const SparseState& st = sparse_state(ctx);
  return sparse_fc_scratch_floats(*st.ks, st.w, fc_rows(ctx.inputs[0]), ctx.num_threads()) * sizeof(float);
}

Status fc_run(KernelContext& ctx) {
  const SparseState& st = sparse_state(ctx);
  const TensorView& a = ctx.inputs[0];
  if (a.dim(-1) != st.w.cols) return ctx.error("A's last dim must equal B's K (" + std::to_string(st.w.cols) + ")");
  const int64_t m = fc_rows(a);
  const SparseRunner r = sparse_runner(ctx);
  const Status s = sparse_scratch_ok(ctx, sparse_fc_scratch_floats(*st.ks, st.w, m, r.threads));
  if (!s.ok()) return s;
  sparse_fc_run(*st.ks, st.w, st.bias.empty() ? nullptr : st.bias.data(), st.act, m, a.as<float>(),
                ctx.outputs[0].as<float>(), static_cast<float*>(ctx.scratch), &r);
  return Status::Ok();
}

Kernel sparse_kernel(const std::string& name, bool (*supports)(const KernelContext&),
                     Status (*prepare)(KernelContext&), size_t (*scratch)(const KernelContext&),
                     Status (*run)(KernelContext&)) {
  Kernel k;
  k.name = name.c_str();  // the caller's static string
  k.supports = supports;
  k.prepare = prepare;
  k.release = &sparse_release;
  k.scratch_bytes = scratch;
  k.run = run;
  return k;
}

template <const SparseF32Kernels& K>
void register_sparse_f32_kernels(KernelRegistry& reg, Isa isa) {
  static const std::string n_conv = std::string("conv_f32_sparse1x1_") + K.isa,
                           n_gemm = std::string("gemm_f32_sparse_") + K.isa,
                           n_mm = std::string("matmul_f32_sparse_") + K.isa;
  const KernelKey f32{DType::F32, DType::F32};
  reg.add_first(fbs::OpType_Conv, f32, isa,
                sparse_kernel(n_conv, &conv1x1_supports<K>, &conv1x1_prepare<K>, &conv1x1_scratch, &conv1x1_run));
  reg.add_first(fbs::OpType_Gemm, f32, isa,
                sparse_kernel(n_gemm, &fc_supports<K>, &fc_prepare<K>, &fc_scratch, &fc_run));
  reg.add_first(fbs::OpType_MatMul, f32, isa,
                sparse_kernel(n_mm, &fc_supports<K>, &fc_prepare<K>, &fc_scratch, &fc_run));
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
