// The fp32 pooling kernels: MaxPool (without Indices), AveragePool (2-D windows,
// dilation 1) and GlobalAveragePool on NCHW input, through pool_f32.h.
#pragma once
#include "cpu/f32/f32_kernel_common.h"
#include "cpu/f32/pool_f32.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fb = ::mobconv::formats::fb;

// ---- pooling ----------------------------------------------------------------------------
bool pool_supports(const KernelContext& ctx) {
  if (!is_f32(ctx.inputs[0]) || ctx.inputs[0].rank != 4) return false;
  if (ctx.op_type == fb::OpType_GlobalAveragePool) return true;
  if (ctx.num_outputs > 1 && ctx.outputs[1].present()) return false;  // MaxPool Indices
  for (int64_t d : ctx.attrs->get_ints("dilations"))
    if (d != 1) return false;
  return ctx.attrs->get_ints("kernel_shape").size() == 2;
}

template <const F32Kernels& K>
Status pool_run(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  const TaskRunner r = runner_for(ctx);
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  if (ctx.op_type == fb::OpType_GlobalAveragePool) {
    global_avgpool_run(K, x.dims[0] * x.dims[1], x.dims[2] * x.dims[3], px, py, &r);
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
    maxpool2d_run(K, p, px, py, &r);
  else
    avgpool2d_run(K, p, px, py, &r);
  return Status::Ok();
}

// "pool_f32_<isa>", keyed {F32, Any} (one input).
template <const F32Kernels& K>
void register_f32_pool(KernelRegistry& reg, Isa isa) {
  static const std::string name = std::string("pool_f32_") + K.isa;
  Kernel pool;
  pool.name = name.c_str();
  pool.supports = &pool_supports;
  pool.run = &pool_run<K>;
  for (OpType op : {fb::OpType_MaxPool, fb::OpType_AveragePool, fb::OpType_GlobalAveragePool})
    reg.add(op, DType::F32, isa, pool);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
