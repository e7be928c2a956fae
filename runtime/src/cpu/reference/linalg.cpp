// linalg.cpp: reference Gemm and MatMul (numpy matmul broadcasting, 1-D
// promotion) with fused activation. Semantics: mobconv/ops/linalg.py.
// Triple loop with double accumulation.
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

Status infer_gemm(KernelContext& ctx) {
  for (int i = 0; i < ctx.num_inputs; ++i) {
    Status s = need_dtype(ctx, i, {DType::F32});
    if (!s.ok()) return s;
  }
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  if (a.rank != 2 || b.rank != 2) return ctx.error("A and B must be 2-D, got " + shape_str(a) + " and " + shape_str(b));
  bool ta = ctx.attrs->get_int("transA", 0) != 0, tb = ctx.attrs->get_int("transB", 0) != 0;
  int64_t m = ta ? a.dims[1] : a.dims[0], k = ta ? a.dims[0] : a.dims[1];
  int64_t k2 = tb ? b.dims[1] : b.dims[0], n = tb ? b.dims[0] : b.dims[1];
  if (k != k2) return ctx.error("inner dims differ: A " + shape_str(a) + " and B " + shape_str(b));
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    Shape out;
    Status s = broadcast(ctx, {shape_of(ctx.inputs[2]), Shape{m, n}}, &out);
    if (!s.ok() || out != Shape({m, n})) return ctx.error("C " + shape_str(ctx.inputs[2]) + " must broadcast to (M, N)");
  }
  Activation act;
  Status s = Activation::parse(*ctx.attrs, &act);
  if (!s.ok()) return ctx.error(s.message);
  return set_out(ctx, 0, DType::F32, {m, n});
}

Status run_gemm(KernelContext& ctx) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  bool ta = ctx.attrs->get_int("transA", 0) != 0, tb = ctx.attrs->get_int("transB", 0) != 0;
  float alpha = ctx.attrs->get_float("alpha", 1.f), beta = ctx.attrs->get_float("beta", 1.f);
  int64_t m = ctx.outputs[0].dims[0], n = ctx.outputs[0].dims[1], k = ta ? a.dims[0] : a.dims[1];
  Activation act;
  Activation::parse(*ctx.attrs, &act);
  const float* pa = a.as<float>();
  const float* pb = b.as<float>();
  float* py = ctx.outputs[0].as<float>();
  const bool has_c = ctx.num_inputs > 2 && ctx.inputs[2].present();
  Shape cst = has_c ? bcast_strides(shape_of(ctx.inputs[2]), {m, n}) : Shape{0, 0};
  const float* pc = has_c ? ctx.inputs[2].as<float>() : nullptr;
  ctx.parallel_for(m, [&](int64_t r0, int64_t r1, int) {
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += static_cast<double>(pa[ta ? p * m + i : i * k + p]) * pb[tb ? j * k + p : p * n + j];
        float y = static_cast<float>(acc);
        if (alpha != 1.f) y *= alpha;
        if (pc) y += beta == 1.f ? pc[i * cst[0] + j * cst[1]] : pc[i * cst[0] + j * cst[1]] * beta;
        py[i * n + j] = act.apply(y);
      }
  });
  return Status::Ok();
}

// MatMul: shapes after 1-D promotion.
struct MM { Shape batch, sa, sb; int64_t m, k, n; };

Status matmul_geom(const KernelContext& ctx, MM* g, Shape* out) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  if (a.rank < 1 || b.rank < 1) return ctx.error("inputs must be at least 1-D, got " + shape_str(a) + " and " + shape_str(b));
  Shape A = shape_of(a), B = shape_of(b);
  bool a1 = A.size() == 1, b1 = B.size() == 1;
  if (a1) A.insert(A.begin(), 1);
  if (b1) B.push_back(1);
  g->m = A[A.size() - 2]; g->k = A.back(); g->n = B.back();
  if (B[B.size() - 2] != g->k) return ctx.error("inner dims differ: A " + shape_str(a) + " has K=" + std::to_string(g->k) + ", B " + shape_str(b) + " has K=" + std::to_string(B[B.size() - 2]));
  g->sa.assign(A.begin(), A.end() - 2);
  g->sb.assign(B.begin(), B.end() - 2);
  Status s = broadcast(ctx, {g->sa, g->sb}, &g->batch);
  if (!s.ok()) return s;
  *out = g->batch;
  if (!a1) out->push_back(g->m);
  if (!b1) out->push_back(g->n);
  return Status::Ok();
}

Status infer_matmul(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (s.ok()) s = need_dtype(ctx, 1, {DType::F32});
  if (!s.ok()) return s;
  MM g;
  Shape out;
  s = matmul_geom(ctx, &g, &out);
  if (!s.ok()) return s;
  Activation act;
  s = Activation::parse(*ctx.attrs, &act);
  if (!s.ok()) return ctx.error(s.message);
  return set_out(ctx, 0, DType::F32, out);
}

Status run_matmul(KernelContext& ctx) {
  MM g;
  Shape out;
  Status s = matmul_geom(ctx, &g, &out);
  if (!s.ok()) return s;
  Activation act;
  Activation::parse(*ctx.attrs, &act);
  Shape st[2] = {bcast_strides(g.sa, g.batch), bcast_strides(g.sb, g.batch)};
  int64_t nb = numel(g.batch);
  std::vector<int64_t> oa(nb), ob(nb);
  for_each_bcast<2>(g.batch, st, [&](int64_t i, const int64_t* off) { oa[i] = off[0]; ob[i] = off[1]; });
  if (g.batch.empty()) { oa.assign(1, 0); ob.assign(1, 0); nb = 1; }
  const float* pa = ctx.inputs[0].as<float>();
  const float* pb = ctx.inputs[1].as<float>();
  float* py = ctx.outputs[0].as<float>();
  int64_t m = g.m, n = g.n, k = g.k;
  ctx.parallel_for(nb * m, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t bi = r / m, i = r % m;
      const float* A = pa + oa[bi] * m * k;
      const float* B = pb + ob[bi] * k * n;
      float* Y = py + (bi * m + i) * n;
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(A[i * k + p]) * B[p * n + j];
        Y[j] = act.apply(static_cast<float>(acc));
      }
    }
  });
  return Status::Ok();
}

}  // namespace

void register_linalg(KernelRegistry& r) {
  reg(r, fb::OpType_Gemm, DType::F32, "gemm_f32_reference", infer_gemm, run_gemm);
  reg(r, fb::OpType_MatMul, DType::F32, "matmul_f32_reference", infer_matmul, run_matmul);
}

}  // namespace ref
}  // namespace mobrt
