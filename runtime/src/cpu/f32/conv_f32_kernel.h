// The fp32 Conv kernel (2-D, NCHW): `supports` takes fp32 input, constant fp32 weights
// (and bias), any group, a fused activation and residual; `prepare` packs the weights
// once as GEMM panels (depthwise keeps them as they are); `run` resolves the geometry
// and calls the im2col/1x1/shift GEMM or the depthwise driver of conv_f32.h.
#pragma once
#include "cpu/f32/conv_f32.h"
#include "cpu/f32/f32_kernel_common.h"
#include "cpu/reference/window.h"

namespace mobrt {
namespace cpu {
namespace {

namespace fb = ::mobconv::formats::fb;

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

template <const F32Kernels& K>
Status conv_prepare(KernelContext& ctx) {
  auto* st = new (std::nothrow) PackedState;
  if (st == nullptr) return Status::Error(StatusCode::kOutOfMemory, "conv: packed weights");
  st->ks = &K;
  fused_act(ctx, &st->act);
  const Conv2dShape s = conv_weight_shape(ctx);
  if (!conv2d_is_depthwise(s)) {
    st->packed.resize(conv2d_packed_weights_floats(*st->ks, s) + 16);
    conv2d_pack_weights(*st->ks, s, ctx.inputs[1].as<float>(), st->aligned_mut());
  }
  *ctx.state = st;
  return Status::Ok();
}

template <const F32Kernels& K>
size_t conv_scratch(const KernelContext& ctx) {
  Conv2dShape s;
  if (!conv_shape(ctx, &s) || conv2d_is_depthwise(s)) return 0;
  return conv2d_scratch_floats(K, s) * sizeof(float);
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

// "conv_f32_gemm_dw3x3_<isa>": Conv as im2col/1x1 GEMM, or the depthwise path for
// group == channels. Keyed {F32, F32}: fp32 activations and fp32 weights.
template <const F32Kernels& K>
void register_f32_conv(KernelRegistry& reg, Isa isa) {
  static const std::string name = std::string("conv_f32_gemm_dw3x3_") + K.isa;
  Kernel conv;
  conv.name = name.c_str();
  conv.supports = &conv_supports;
  conv.prepare = &conv_prepare<K>;
  conv.release = &release_state;
  conv.scratch_bytes = &conv_scratch<K>;
  conv.run = &conv_run;
  reg.add(fb::OpType_Conv, KernelKey{DType::F32, DType::F32}, isa, conv);
}

}  // namespace
}  // namespace cpu
}  // namespace mobrt
