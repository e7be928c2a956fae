// The fp32 element-wise kernels: binary Add/Sub/Mul/Div/Max/Min (and two-input Sum)
// with numpy broadcasting, and the unary activations Relu, Clip (constant scalar
// bounds), LeakyRelu, HardSwish, HardSigmoid, Sigmoid, Tanh, through elementwise_f32.h.
#pragma once
#include "cpu/f32/elementwise_f32.h"
#include "cpu/f32/f32_kernel_common.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fb = ::mobconv::formats::fb;

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

template <const F32Kernels& K>
Status binary_run_k(KernelContext& ctx) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const TaskRunner r = runner_for(ctx);
  binary_run(K, binop_of(ctx.op_type), a.dims, a.rank, a.as<float>(), b.dims, b.rank,
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

template <const F32Kernels& K>
Status unary_run(KernelContext& ctx) {
  const TaskRunner r = runner_for(ctx);
  const Activation a = unary_act(ctx);
  activation_run(K, a, ctx.inputs[0].as<float>(), ctx.outputs[0].as<float>(),
                 ctx.inputs[0].numel(), &r);
  return Status::Ok();
}

// "binary_f32_broadcast_<isa>" keyed {F32, F32} (both operands fp32, a broadcast scalar
// included); "activation_f32_<isa>" keyed {F32, Any} (Clip's optional bounds).
template <const F32Kernels& K>
void register_f32_elementwise(KernelRegistry& reg, Isa isa) {
  static const std::string n_bin = std::string("binary_f32_broadcast_") + K.isa,
                           n_act = std::string("activation_f32_") + K.isa;
  Kernel bin;
  bin.name = n_bin.c_str();
  bin.supports = &binary_supports;
  bin.run = &binary_run_k<K>;
  for (OpType op : {fb::OpType_Add, fb::OpType_Sub, fb::OpType_Mul, fb::OpType_Div,
                    fb::OpType_Max, fb::OpType_Min, fb::OpType_Sum})  // variadic ones: 2 inputs
    reg.add(op, KernelKey{DType::F32, DType::F32}, isa, bin);

  Kernel act;
  act.name = n_act.c_str();
  act.supports = &unary_supports;
  act.run = &unary_run<K>;
  for (OpType op : {fb::OpType_Relu, fb::OpType_Clip, fb::OpType_LeakyRelu, fb::OpType_HardSwish,
                    fb::OpType_HardSigmoid, fb::OpType_Sigmoid, fb::OpType_Tanh})
    reg.add(op, DType::F32, isa, act);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
