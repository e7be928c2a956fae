// Kernel-table entries (core/kernel.h) for the optimized fp32 kernels of one
// instruction set. register_avx2.cpp, register_avx512.cpp and register_neon.cpp each
// call register_optimized_kernels<SimdIsa::k...>(registry, Isa::...).
//
// Each entry's `supports` accepts only the configurations the fast path handles
// (2-D, fp32, constant weights, ...); anything else falls back to the reference kernel.
// `prepare` packs constant weights once into *ctx.state; `run` resolves geometry
// from the now-known shapes and calls the layer kernels of gemm/layers.h, with the
// core's thread pool behind a TaskRunner.
//
// Everything here is a template over the instruction set (so each register_*.cpp,
// compiled without ISA flags, instantiates its own copy) with internal linkage.
#pragma once
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "core/kernel.h"
#include "cpu/gemm/layers.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fb = ::mobconv::formats::fb;

// ---- shared helpers ------------------------------------------------------------------
void core_parallel_for(void* pool, int64_t n, void* c, void (*fn)(void*, int64_t)) {
  static_cast<const KernelContext*>(pool)->parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(c, i);
  });
}

TaskRunner runner_for(const KernelContext& ctx) {
  TaskRunner r;
  r.parallel_for = &core_parallel_for;
  r.pool = const_cast<KernelContext*>(&ctx);
  r.threads = ctx.num_threads();
  return r;
}

bool fused_act(const KernelContext& ctx, Activation* out) {
  return Activation::parse(*ctx.attrs, out).ok();
}

bool is_f32(const TensorView& t) { return t.present() && t.dtype == DType::F32; }
bool is_const_f32(const TensorView& t) { return is_f32(t) && t.is_constant && t.data != nullptr; }
const float* opt_input(const KernelContext& ctx, int i) {
  return i < ctx.num_inputs && ctx.inputs[i].present() ? ctx.inputs[i].as<float>() : nullptr;
}

// Packed weights and everything else prepare derives from attributes and constants.
struct PackedState {
  const IsaKernels* ks = nullptr;
  std::vector<float> packed;  // GEMM panels (over-allocated to realign to 64 bytes)
  std::vector<float> bias;    // Gemm: beta * C, resolved once
  Activation act;
  bool dynamic = false;       // MatMul whose B was not a constant at prepare: nothing packed
  const float* aligned() const {
    return reinterpret_cast<const float*>((reinterpret_cast<uintptr_t>(packed.data()) + 63) & ~uintptr_t(63));
  }
  float* aligned_mut() { return const_cast<float*>(aligned()); }
};
void release_state(void* s) { delete static_cast<PackedState*>(s); }
PackedState* state_of(const KernelContext& ctx) { return static_cast<PackedState*>(*ctx.state); }

template <SimdIsa I>
const IsaKernels& table() {
  return *isa_kernels_for(I);
}

// ---- Conv (2-D, NCHW) -------------------------------------------------------------------
bool conv_shape(const KernelContext& ctx, Conv2dShape* s) {
  const TensorView &x = ctx.inputs[0], &w = ctx.inputs[1];
  ref::Shape kernel = ctx.attrs->get_ints("kernel_shape");
  if (kernel.empty()) kernel.assign(w.dims + 2, w.dims + w.rank);
  ref::Window win;
  if (!ref::make_window(ctx, x, kernel, false, &win).ok()) return false;
  s->n = x.dims[0];
  s->cin = x.dims[1];
  s->ih = win.in[1];
  s->iw = win.in[2];
  s->cout = w.dims[0];
  s->kh = win.k[1];
  s->kw = win.k[2];
  s->sh = win.s[1];
  s->sw = win.s[2];
  s->dh = win.d[1];
  s->dw = win.d[2];
  s->pt = win.pb[1];
  s->pl = win.pb[2];
  s->pb = win.pe[1];
  s->pr = win.pe[2];
  s->group = ctx.attrs->get_int("group", 1);
  s->oh = win.out[1];
  s->ow = win.out[2];
  return true;
}

bool conv_supports(const KernelContext& ctx) {
  if (ctx.num_inputs < 2 || !is_f32(ctx.inputs[0]) || ctx.inputs[0].rank != 4) return false;
  const TensorView& w = ctx.inputs[1];
  if (!is_const_f32(w) || w.rank != 4) return false;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && !is_const_f32(ctx.inputs[2])) return false;
  if (ctx.num_inputs > 3 && ctx.inputs[3].present() && !is_f32(ctx.inputs[3])) return false;
  const int64_t g = ctx.attrs->get_int("group", 1);
  if (g < 1 || w.dims[0] % g != 0) return false;
  Activation act;
  return fused_act(ctx, &act);
}

// Pack-time geometry: W's dims, the group and the strides decide the GEMM panel layout.
Conv2dShape conv_weight_shape(const KernelContext& ctx) {
  const TensorView& w = ctx.inputs[1];
  Conv2dShape s;
  s.group = ctx.attrs->get_int("group", 1);
  s.cout = w.dims[0];
  s.cin = w.dims[1] * s.group;
  s.kh = w.dims[2];
  s.kw = w.dims[3];
  const std::vector<int64_t> strides = ctx.attrs->get_ints("strides");  // packing depends on them
  if (strides.size() == 2) {
    s.sh = strides[0];
    s.sw = strides[1];
  }
  return s;
}

template <SimdIsa I>
Status conv_prepare(KernelContext& ctx) {
  auto* st = new (std::nothrow) PackedState;
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "conv: packed weights");
  st->ks = &table<I>();
  fused_act(ctx, &st->act);
  const Conv2dShape s = conv_weight_shape(ctx);
  if (!conv2d_is_depthwise(s)) {
    st->packed.resize(conv2d_packed_weights_floats(*st->ks, s) + 16);
    conv2d_pack_weights(*st->ks, s, ctx.inputs[1].as<float>(), st->aligned_mut());
  }
  *ctx.state = st;
  return Status::Ok();
}

template <SimdIsa I>
size_t conv_scratch(const KernelContext& ctx) {
  Conv2dShape s;
  if (!conv_shape(ctx, &s) || conv2d_is_depthwise(s)) return 0;
  return conv2d_scratch_floats(table<I>(), s) * sizeof(float);
}

Status conv_run(KernelContext& ctx) {
  const PackedState& st = *state_of(ctx);
  Conv2dShape s;
  if (!conv_shape(ctx, &s)) return ctx.error("invalid convolution geometry");
  const TaskRunner r = runner_for(ctx);
  const float* x = ctx.inputs[0].as<float>();
  float* y = ctx.outputs[0].as<float>();
  if (conv2d_is_depthwise(s)) {
    dwconv2d_run(*st.ks, s, ctx.inputs[1].as<float>(), opt_input(ctx, 2), st.act, x, y, &r,
                 opt_input(ctx, 3));
    return Status::Ok();
  }
  const size_t need = conv2d_scratch_floats(*st.ks, s) * sizeof(float);
  if (need > 0 && (ctx.scratch == nullptr || ctx.scratch_size < need))
    return ctx.error("conv scratch of " + std::to_string(ctx.scratch_size) + " bytes, needs " +
                     std::to_string(need));
  conv2d_run(*st.ks, s, st.aligned(), opt_input(ctx, 2), st.act, x, y,
             static_cast<float*>(ctx.scratch), &r, opt_input(ctx, 3));
  return Status::Ok();
}

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
  if (!is_const_f32(ctx.inputs[1]) || ctx.inputs[1].rank != 2) return false;
  if (ctx.inputs[0].rank != 2 || ctx.attrs->get_int("transA", 0) != 0) return false;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const TensorView& c = ctx.inputs[2];
    const bool tb = ctx.attrs->get_int("transB", 0) != 0;
    const int64_t n = tb ? ctx.inputs[1].dims[0] : ctx.inputs[1].dims[1];
    if (!is_const_f32(c) || c.rank < 1 || c.numel() != n || c.dim(-1) != n) return false;
  }
  return true;
}

template <SimdIsa I>
Status gemm_prepare(KernelContext& ctx) {
  auto* st = new (std::nothrow) PackedState;
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "gemm: packed weights");
  st->ks = &table<I>();
  fused_act(ctx, &st->act);
  if (matmul_dynamic(ctx)) {  // nothing to pre-pack
    st->dynamic = true;  // decided once: B folded later (at the interpreter's prepare) is not packed
    *ctx.state = st;
    return Status::Ok();
  }
  const TensorView& b = ctx.inputs[1];
  const bool is_gemm = ctx.op_type == fb::OpType_Gemm;
  const bool tb = is_gemm && ctx.attrs->get_int("transB", 0) != 0;
  const int64_t k = tb ? b.dims[1] : b.dims[0], n = tb ? b.dims[0] : b.dims[1];
  const float alpha = is_gemm ? ctx.attrs->get_float("alpha", 1.f) : 1.f;
  std::vector<float> scaled;
  const float* w = b.as<float>();
  if (alpha != 1.f) {  // fold alpha into the packed weights
    scaled.assign(w, w + k * n);
    for (float& v : scaled) v *= alpha;
    w = scaled.data();
  }
  st->packed.resize(fc_packed_weights_floats(*st->ks, k, n) + 16);
  fc_pack_weights(*st->ks, k, n, w, tb, st->aligned_mut());
  if (is_gemm && ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const float beta = ctx.attrs->get_float("beta", 1.f);
    const float* c = ctx.inputs[2].as<float>();
    st->bias.assign(c, c + n);
    for (float& v : st->bias) v *= beta;
  }
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

template <SimdIsa I>
size_t gemm_scratch(const KernelContext& ctx) {
  if (state_of(ctx)->dynamic) return 0;
  int64_t m, k, n;
  gemm_dims(ctx, &m, &k, &n);
  return fc_scratch_floats(table<I>(), m, k) * sizeof(float) + 64;
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
    sgemm(*st.ks, false, false, size_t(m), size_t(n), size_t(k), pa + oa, size_t(k), pb + ob, size_t(n),
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

// ---- pooling ----------------------------------------------------------------------------
bool pool_supports(const KernelContext& ctx) {
  if (!is_f32(ctx.inputs[0]) || ctx.inputs[0].rank != 4) return false;
  if (ctx.op_type == fb::OpType_GlobalAveragePool) return true;
  if (ctx.num_outputs > 1 && ctx.outputs[1].present()) return false;  // MaxPool Indices
  for (int64_t d : ctx.attrs->get_ints("dilations"))
    if (d != 1) return false;
  return ctx.attrs->get_ints("kernel_shape").size() == 2;
}

template <SimdIsa I>
Status pool_run(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  const TaskRunner r = runner_for(ctx);
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  if (ctx.op_type == fb::OpType_GlobalAveragePool) {
    global_avgpool_run(table<I>(), x.dims[0] * x.dims[1], x.dims[2] * x.dims[3], px, py, &r);
    return Status::Ok();
  }
  ref::Window w;
  Status s = ref::make_window(ctx, x, ctx.attrs->get_ints("kernel_shape"),
                              ctx.attrs->get_int("ceil_mode", 0) != 0, &w);
  if (!s.ok()) return s;
  Pool2dShape p;
  p.n = x.dims[0];
  p.c = x.dims[1];
  p.ih = w.in[1];
  p.iw = w.in[2];
  p.kh = w.k[1];
  p.kw = w.k[2];
  p.sh = w.s[1];
  p.sw = w.s[2];
  p.pt = w.pb[1];
  p.pl = w.pb[2];
  p.pb = w.pe[1];
  p.pr = w.pe[2];
  p.oh = w.out[1];
  p.ow = w.out[2];
  p.count_include_pad = ctx.attrs->get_int("count_include_pad", 0) != 0;
  if (ctx.op_type == fb::OpType_MaxPool)
    maxpool2d_run(table<I>(), p, px, py, &r);
  else
    avgpool2d_run(table<I>(), p, px, py, &r);
  return Status::Ok();
}

// ---- element-wise binary ------------------------------------------------------------------
bool binary_supports(const KernelContext& ctx) {
  return ctx.num_inputs == 2 && is_f32(ctx.inputs[0]) && is_f32(ctx.inputs[1]) &&
         ctx.inputs[0].rank <= 8 && ctx.inputs[1].rank <= 8;
}

BinOp binop_of(OpType op) {
  switch (op) {
    case fb::OpType_Sub: return BinOp::kSub;
    case fb::OpType_Mul: return BinOp::kMul;
    case fb::OpType_Div: return BinOp::kDiv;
    case fb::OpType_Max: return BinOp::kMax;
    case fb::OpType_Min: return BinOp::kMin;
    default: return BinOp::kAdd;
  }
}

template <SimdIsa I>
Status binary_run_k(KernelContext& ctx) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const TaskRunner r = runner_for(ctx);
  binary_run(table<I>(), binop_of(ctx.op_type), a.dims, a.rank, a.as<float>(), b.dims, b.rank,
             b.as<float>(), ctx.outputs[0].as<float>(), Activation(), &r);
  return Status::Ok();
}

// ---- unary activations -------------------------------------------------------------------
bool unary_supports(const KernelContext& ctx) {
  if (!is_f32(ctx.inputs[0])) return false;
  if (ctx.op_type == fb::OpType_Clip)  // min/max must be constant scalars (or absent)
    for (int i = 1; i < ctx.num_inputs; ++i)
      if (ctx.inputs[i].present() &&
          (!is_const_f32(ctx.inputs[i]) || ctx.inputs[i].numel() != 1 || std::isnan(*ctx.inputs[i].as<float>())))
        return false;  // a NaN bound makes every output NaN (np.clip): the reference kernel does that
  return true;
}

Activation unary_act(const KernelContext& ctx) {
  Activation a;
  switch (ctx.op_type) {
    case fb::OpType_Relu: a.kind = ActKind::Relu; break;
    case fb::OpType_Sigmoid: a.kind = ActKind::Sigmoid; break;
    case fb::OpType_Tanh: a.kind = ActKind::Tanh; break;
    case fb::OpType_HardSwish: a.kind = ActKind::HardSwish; break;
    case fb::OpType_LeakyRelu:
      a.kind = ActKind::LeakyRelu;
      a.a = ctx.attrs->get_float("alpha", 0.01f);
      break;
    case fb::OpType_HardSigmoid:
      a.kind = ActKind::HardSigmoid;
      a.a = ctx.attrs->get_float("alpha", 0.2f);
      a.b = ctx.attrs->get_float("beta", 0.5f);
      break;
    case fb::OpType_Clip: {
      a.kind = ActKind::Clip;
      const float* lo = opt_input(ctx, 1);
      const float* hi = opt_input(ctx, 2);
      a.a = lo ? *lo : -__builtin_inff();
      a.b = hi ? *hi : __builtin_inff();
      break;
    }
    default: break;
  }
  return a;
}

template <SimdIsa I>
Status unary_run(KernelContext& ctx) {
  const TaskRunner r = runner_for(ctx);
  const Activation a = unary_act(ctx);
  activation_run(table<I>(), a, ctx.inputs[0].as<float>(), ctx.outputs[0].as<float>(),
                 ctx.inputs[0].numel(), &r);
  return Status::Ok();
}

// ---- softmax ---------------------------------------------------------------------------------
bool softmax_supports(const KernelContext& ctx) { return is_f32(ctx.inputs[0]); }

template <SimdIsa I>
Status softmax_run_k(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int64_t axis = ctx.attrs->get_int("axis", -1);
  if (axis < 0) axis += x.rank;
  if (x.rank > 0 && (axis < 0 || axis >= x.rank)) return ctx.error("axis out of range");
  int64_t outer = 1, inner = 1, len = x.rank ? x.dims[axis] : 1;
  for (int d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int d = int(axis) + 1; d < x.rank; ++d) inner *= x.dims[d];
  const TaskRunner r = runner_for(ctx);
  softmax_run(table<I>(), outer, len, inner, ctx.op_type == fb::OpType_LogSoftmax,
              x.as<float>(), ctx.outputs[0].as<float>(), &r);
  return Status::Ok();
}

// ---- registration ------------------------------------------------------------------------------
// Kernel names: what_dtype_variant_isa (e.g. "conv_f32_gemm_dw3x3_avx512": Conv as
// im2col/1x1 GEMM, or the depthwise path for group == channels).
template <SimdIsa I>
void register_optimized_kernels(KernelRegistry& reg, ::mobrt::Isa isa) {
  if (isa_kernels_for(I) == nullptr) return;  // CPU cannot run it after all
  static const std::string sfx = std::string("_") + isa_name(I);
  static const std::string n_conv = "conv_f32_gemm_dw3x3" + sfx, n_gemm = "gemm_f32_packed" + sfx,
                           n_mm = "matmul_f32_packed" + sfx, n_pool = "pool_f32" + sfx,
                           n_bin = "binary_f32_broadcast" + sfx, n_act = "activation_f32" + sfx,
                           n_sm = "softmax_f32" + sfx;
  Kernel conv;
  conv.name = n_conv.c_str();
  conv.supports = &conv_supports;
  conv.prepare = &conv_prepare<I>;
  conv.release = &release_state;
  conv.scratch_bytes = &conv_scratch<I>;
  conv.run = &conv_run;
  reg.add(fb::OpType_Conv, DType::F32, isa, conv);

  Kernel gemm;
  gemm.name = n_gemm.c_str();
  gemm.supports = &gemm_supports;
  gemm.prepare = &gemm_prepare<I>;
  gemm.release = &release_state;
  gemm.scratch_bytes = &gemm_scratch<I>;
  gemm.run = &gemm_run;
  reg.add(fb::OpType_Gemm, DType::F32, isa, gemm);
  gemm.name = n_mm.c_str();
  reg.add(fb::OpType_MatMul, DType::F32, isa, gemm);

  Kernel pool;
  pool.name = n_pool.c_str();
  pool.supports = &pool_supports;
  pool.run = &pool_run<I>;
  for (OpType op : {fb::OpType_MaxPool, fb::OpType_AveragePool, fb::OpType_GlobalAveragePool})
    reg.add(op, DType::F32, isa, pool);

  Kernel bin;
  bin.name = n_bin.c_str();
  bin.supports = &binary_supports;
  bin.run = &binary_run_k<I>;
  for (OpType op : {fb::OpType_Add, fb::OpType_Sub, fb::OpType_Mul, fb::OpType_Div,
                    fb::OpType_Max, fb::OpType_Min, fb::OpType_Sum})  // variadic ones: 2 inputs
    reg.add(op, DType::F32, isa, bin);

  Kernel act;
  act.name = n_act.c_str();
  act.supports = &unary_supports;
  act.run = &unary_run<I>;
  for (OpType op : {fb::OpType_Relu, fb::OpType_Clip, fb::OpType_LeakyRelu, fb::OpType_HardSwish,
                    fb::OpType_HardSigmoid, fb::OpType_Sigmoid, fb::OpType_Tanh})
    reg.add(op, DType::F32, isa, act);

  Kernel sm;
  sm.name = n_sm.c_str();
  sm.supports = &softmax_supports;
  sm.run = &softmax_run_k<I>;
  reg.add(fb::OpType_Softmax, DType::F32, isa, sm);
  reg.add(fb::OpType_LogSoftmax, DType::F32, isa, sm);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
