// shrink.cpp: reference Shrink (ONNX opset 9; specification mobconv/ops/shrink.py):
// y = x + bias where x < -lambd, x - bias where x > lambd, else 0. Floats
// compute in float32, integers in double (truncated back).
#include "cpu/reference/dtype_dispatch.h"

namespace mobrt {
namespace ref {
namespace {

Status infer_shrink(KernelContext& ctx) {
  DType dt = ctx.inputs[0].dtype;
  if (dt == DType::BOOL || !dispatch_dtype(dt, [](auto) {}))
    return ctx.error(std::string("input dtype ") + dtype_name(dt) + " is not numeric");
  return infer_same(ctx);
}

Status run_shrink(KernelContext& ctx) {
  const float bias = ctx.attrs->get_float("bias", 0.f), lambd = ctx.attrs->get_float("lambd", 0.5f);
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  const int64_t n = x.numel();
  dispatch_dtype(x.dtype, [&](auto s) {
    using S = decltype(s);
    using E = Elem<S>;
    using C = typename E::C;
    using W = typename std::conditional<std::is_floating_point<C>::value, float, double>::type;
    for (int64_t i = 0; i < n; ++i) {
      W v = static_cast<W>(E::load(x.as<S>()[i]));
      W r = v < -static_cast<W>(lambd) ? v + static_cast<W>(bias) : v > static_cast<W>(lambd) ? v - static_cast<W>(bias) : W(0);
      y.as<S>()[i] = E::store(static_cast<C>(r));
    }
  });
  return Status::Ok();
}

}  // namespace

void register_shrink(KernelRegistry& r) {
  reg(r, fb::OpType_Shrink, DType::Any, "shrink_reference", infer_shrink, run_shrink);
}

}  // namespace ref
}  // namespace mobrt
