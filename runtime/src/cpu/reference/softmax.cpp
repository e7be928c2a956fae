// softmax.cpp: reference Softmax, LogSoftmax, Hardmax along one axis
// (ONNX opset 13+ semantics). Semantics: mobconv/ops/softmax.py.
// Per line: subtract the max, exponentiate, normalize.
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

Status infer_softmax(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  int axis;
  s = norm_axis(ctx, ctx.attrs->get_int("axis", -1), ctx.inputs[0].rank, &axis);
  if (!s.ok()) return s;
  return infer_same(ctx);
}

Status run_softmax(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int axis;
  norm_axis(ctx, ctx.attrs->get_int("axis", -1), x.rank, &axis);
  int64_t outer = 1, inner = 1, len = x.rank ? x.dims[axis] : 1;
  for (int d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int d = axis + 1; d < x.rank; ++d) inner *= x.dims[d];
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  OpType op = ctx.op_type;
  ctx.parallel_for(outer * inner, [&](int64_t b, int64_t e, int) {
    for (int64_t line = b; line < e; ++line) {
      int64_t base = (line / inner) * len * inner + line % inner;
      const float* xl = px + base;
      float* yl = py + base;
      float m = -INFINITY;
      int64_t arg = 0;
      for (int64_t k = 0; k < len; ++k)
        if (xl[k * inner] > m || (std::isnan(xl[k * inner]) && !std::isnan(m))) { m = xl[k * inner]; arg = k; }  // first NaN wins
      if (op == fb::OpType_Hardmax) {
        for (int64_t k = 0; k < len; ++k) yl[k * inner] = k == arg ? 1.f : 0.f;
        continue;
      }
      double sum = 0;
      for (int64_t k = 0; k < len; ++k) sum += std::exp(static_cast<double>(xl[k * inner] - m));
      if (op == fb::OpType_Softmax) {
        for (int64_t k = 0; k < len; ++k) yl[k * inner] = static_cast<float>(std::exp(static_cast<double>(xl[k * inner] - m)) / sum);
      } else {
        float ls = static_cast<float>(std::log(sum));
        for (int64_t k = 0; k < len; ++k) yl[k * inner] = xl[k * inner] - m - ls;
      }
    }
  });
  return Status::Ok();
}

}  // namespace

void register_softmax(KernelRegistry& r) {
  reg(r, fb::OpType_Softmax, DType::F32, "softmax_f32_reference", infer_softmax, run_softmax);
  reg(r, fb::OpType_LogSoftmax, DType::F32, "log_softmax_f32_reference", infer_softmax, run_softmax);
  reg(r, fb::OpType_Hardmax, DType::F32, "hardmax_f32_reference", infer_softmax, run_softmax);
}

}  // namespace ref
}  // namespace mobrt
