// The fp32 Softmax / LogSoftmax kernel (any rank and axis), through softmax_f32.h.
#pragma once
#include "cpu/f32/f32_kernel_common.h"
#include "cpu/f32/softmax_f32.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fb = ::mobconv::formats::fb;

// ---- softmax ---------------------------------------------------------------------------------
bool softmax_supports(const KernelContext& ctx) { return is_f32(ctx.inputs[0]); }

template <const F32Kernels& K>
Status softmax_run_k(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int64_t axis = ctx.attrs->get_int("axis", -1);
  if (axis < 0) axis += x.rank;
  if (x.rank > 0 && (axis < 0 || axis >= x.rank)) return ctx.error("axis out of range");
  int64_t outer = 1, inner = 1, len = x.rank ? x.dims[axis] : 1;
  for (int d = 0; d < axis; ++d) outer *= x.dims[d];
  for (int d = int(axis) + 1; d < x.rank; ++d) inner *= x.dims[d];
  const TaskRunner r = runner_for(ctx);
  softmax_run(K, outer, len, inner, ctx.op_type == fb::OpType_LogSoftmax,
              x.as<float>(), ctx.outputs[0].as<float>(), &r);
  return Status::Ok();
}

// "softmax_f32_<isa>", keyed {F32, Any}.
template <const F32Kernels& K>
void register_f32_softmax(KernelRegistry& reg, Isa isa) {
  static const std::string name = std::string("softmax_f32_") + K.isa;
  Kernel sm;
  sm.name = name.c_str();
  sm.supports = &softmax_supports;
  sm.run = &softmax_run_k<K>;
  reg.add(fb::OpType_Softmax, DType::F32, isa, sm);
  reg.add(fb::OpType_LogSoftmax, DType::F32, isa, sm);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
