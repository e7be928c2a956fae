// What the dense (f32/gemm_f32_kernel.h) and the sparse (sparse/sparse_f32_kernel.h)
// fp32 Gemm/MatMul kernels with a constant 2-D fp32 B share: the Gemm node rule and
// the prepare-time reading of the node (op(B)'s K x N, alpha, beta * C).
// Inline (not internal linkage) so a glue header may use only part of it.
#pragma once
#include <vector>

#include "core/kernel.h"

namespace mobrt {
namespace cpu {

// Gemm once B is known to be constant 2-D fp32: A [M, K] not transposed, C absent or N
// constant fp32 values (N from B and transB; any rank whose last dim is N).
inline bool gemm_a_and_c_ok(const KernelContext& ctx) {
  if (ctx.inputs[0].rank != 2 || ctx.attrs->get_int("transA", 0) != 0) return false;
  if (ctx.num_inputs <= 2 || !ctx.inputs[2].present()) return true;
  const TensorView& c = ctx.inputs[2];
  const bool tb = ctx.attrs->get_int("transB", 0) != 0;
  const int64_t n = tb ? ctx.inputs[1].dims[0] : ctx.inputs[1].dims[1];
  return c.dtype == DType::F32 && c.is_constant && c.data != nullptr && c.rank >= 1 && c.numel() == n &&
         c.dim(-1) == n;
}

// Y = alpha * A x op(B) + bias for Gemm (MatMul: alpha 1, no transB, no bias).
struct GemmConstB {
  bool tb;         // B is stored [N, K]
  int64_t k, n;    // op(B) is K x N
  float alpha;
};
inline GemmConstB gemm_const_b(const KernelContext& ctx) {
  const TensorView& b = ctx.inputs[1];
  const bool is_gemm = ctx.op_type == ::mobconv::formats::fb::OpType_Gemm;
  GemmConstB g;
  g.tb = is_gemm && ctx.attrs->get_int("transB", 0) != 0;
  g.k = g.tb ? b.dims[1] : b.dims[0];
  g.n = g.tb ? b.dims[0] : b.dims[1];
  g.alpha = is_gemm ? ctx.attrs->get_float("alpha", 1.f) : 1.f;
  return g;
}

// beta * C (n values) when the node is a Gemm with a C; left empty otherwise.
inline void gemm_bias(const KernelContext& ctx, int64_t n, std::vector<float>* bias) {
  if (ctx.op_type != ::mobconv::formats::fb::OpType_Gemm || ctx.num_inputs <= 2 || !ctx.inputs[2].present()) return;
  const float beta = ctx.attrs->get_float("beta", 1.f);
  const float* c = ctx.inputs[2].as<float>();
  bias->assign(c, c + n);
  for (float& v : *bias) v *= beta;
}

}  // namespace cpu
}  // namespace mobrt
