// q8_quantize.cpp: the portable glue of the optimized QuantizeLinear / DequantizeLinear
// kernels (q8_quantize.h): the parameter layout, the split into rows and threads, the
// portable row functions and the registration helper.
#include "cpu/int8/q8_quantize.h"

#include <algorithm>

namespace mobrt {
namespace q8 {

namespace fb = ::mobconv::formats::fb;

// ---- portable row functions ------------------------------------------------------------------

namespace {

void quantize_scalar(const float* x, size_t n, float scale, int32_t zp, void* y, bool u8) {
  if (u8) {
    for (size_t i = 0; i < n; ++i) static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(q8_quantize1(x[i], scale, zp, 0, 255));
  } else {
    for (size_t i = 0; i < n; ++i) static_cast<int8_t*>(y)[i] = static_cast<int8_t>(q8_quantize1(x[i], scale, zp, -128, 127));
  }
}

void dequantize_scalar(const void* x, size_t n, float scale, int32_t zp, float* y, bool u8) {
  if (u8) {
    for (size_t i = 0; i < n; ++i) y[i] = q8_dequantize1(static_cast<const uint8_t*>(x)[i], scale, zp);
  } else {
    for (size_t i = 0; i < n; ++i) y[i] = q8_dequantize1(static_cast<const int8_t*>(x)[i], scale, zp);
  }
}

void dequantize_i32_scalar(const int32_t* x, size_t n, float scale, int32_t zp, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = q8_dequantize_i32_1(x[i], scale, zp);
}

}  // namespace

const Q8QuantizeIsa kQ8QuantizeScalar = {quantize_scalar, dequantize_scalar, dequantize_i32_scalar};

// ---- glue ------------------------------------------------------------------------------------

namespace {

constexpr int64_t kBlock = 8192;  // elements per parallel_for item (threads split whole blocks)

bool q8_dtype(DType d) { return d == DType::I8 || d == DType::U8; }
bool dq_dtype(DType d) { return q8_dtype(d) || d == DType::I32; }

// One (scale, zp) per row of `inner` contiguous elements; row r uses parameter r % n.
struct Layout {
  int64_t n = 1, inner = 1;
};

// The layout of a node whose parameters this kernel handles; false: the reference runs
// (blocked parameters, wrong shapes: it reports the error).
bool layout_of(const KernelContext& ctx, const TensorView& x, Layout* l) {
  const TensorView& s = ctx.inputs[1];
  if (s.dtype != DType::F32 || ctx.attrs->get_int("block_size", 0) != 0) return false;
  const bool zp = ctx.num_inputs > 2 && ctx.inputs[2].present();
  if (zp) {
    const TensorView& z = ctx.inputs[2];
    if (!dq_dtype(z.dtype) || z.rank != s.rank) return false;
    for (int d = 0; d < s.rank; ++d)
      if (z.dims[d] != s.dims[d]) return false;
  }
  if (s.rank == 0 || (s.rank == 1 && s.dims[0] == 1)) {
    l->n = 1;
    l->inner = x.numel();
    return true;
  }
  int64_t axis = ctx.attrs->get_int("axis", 1);
  if (axis < -x.rank || axis >= x.rank) return false;
  if (axis < 0) axis += x.rank;
  if (s.rank != 1 || s.dims[0] != x.dims[axis]) return false;
  l->n = x.dims[axis];
  l->inner = 1;
  for (int d = static_cast<int>(axis) + 1; d < x.rank; ++d) l->inner *= x.dims[d];
  return true;
}

int32_t zero_point(const KernelContext& ctx, int64_t k) {
  if (ctx.num_inputs <= 2 || !ctx.inputs[2].present()) return 0;
  const TensorView& z = ctx.inputs[2];
  if (z.dtype == DType::I32) return z.as<int32_t>()[k];
  return z.dtype == DType::U8 ? z.as<uint8_t>()[k] : z.as<int8_t>()[k];
}

Status run_reference(KernelContext& ctx) {
  const Kernel* ref = kernel_registry().find(ctx.op_type, key_of(ctx.inputs, ctx.num_inputs), Isa::Scalar);
  if (!ref || !ref->run) return ctx.error("no reference kernel");
  return ref->run(ctx);
}

// Calls row(begin, count, k) for every maximal run of elements [begin, begin + count) of
// [0, total) that shares parameter k, in contiguous blocks of kBlock elements over threads.
template <typename Row>
void for_rows(const KernelContext& ctx, const Layout& l, int64_t total, const Row& row) {
  const int64_t blocks = (total + kBlock - 1) / kBlock;
  ctx.parallel_for(blocks, [&](int64_t b0, int64_t b1, int) {
    int64_t i = b0 * kBlock;
    const int64_t end = std::min(total, b1 * kBlock);
    while (i < end) {
      const int64_t r = i / l.inner;
      const int64_t stop = std::min(end, (r + 1) * l.inner);
      row(i, stop - i, r % l.n);
      i = stop;
    }
  });
}

bool common_supports(const KernelContext& ctx) {
  if (ctx.num_inputs < 2 || ctx.num_outputs != 1 || ctx.attrs->get_int("block_size", 0) != 0) return false;
  if (ctx.inputs[1].dtype != DType::F32) return false;
  return !(ctx.num_inputs > 2 && ctx.inputs[2].present() && !dq_dtype(ctx.inputs[2].dtype));
}

bool quantize_supports(const KernelContext& ctx) {
  if (!common_supports(ctx) || ctx.inputs[0].dtype != DType::F32) return false;
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && !q8_dtype(ctx.inputs[2].dtype)) return false;
  if (ctx.attrs->get_int("precision", 0) > 1) return false;
  const int64_t out = ctx.attrs->get_int("output_dtype", 0);
  return out == 0 || out == 2 || out == 3;  // ONNX uint8 / int8 (int16 stays with the reference)
}

bool dequantize_supports(const KernelContext& ctx) {
  if (!common_supports(ctx) || !dq_dtype(ctx.inputs[0].dtype)) return false;
  if (ctx.attrs->get_int("output_dtype", 0) > 1) return false;
  return !(ctx.num_inputs > 2 && ctx.inputs[2].present() && ctx.inputs[2].dtype != ctx.inputs[0].dtype);
}

const Q8QuantizeIsa& isa_of(const KernelContext& ctx) {
  return *static_cast<const Q8QuantizeIsa*>(*ctx.state);
}

Status quantize_run(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  Layout l;
  if (!q8_dtype(y.dtype) || !layout_of(ctx, x, &l)) return run_reference(ctx);
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && ctx.inputs[2].dtype != y.dtype) return run_reference(ctx);
  const Q8QuantizeIsa& isa = isa_of(ctx);
  const bool u8 = y.dtype == DType::U8;
  const float* px = x.as<float>();
  const float* scale = ctx.inputs[1].as<float>();
  uint8_t* py = y.as<uint8_t>();
  for_rows(ctx, l, x.numel(), [&](int64_t i, int64_t n, int64_t k) {
    isa.quantize(px + i, static_cast<size_t>(n), scale[k], zero_point(ctx, k), py + i, u8);
  });
  return Status::Ok();
}

Status dequantize_run(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  Layout l;
  if (y.dtype != DType::F32 || !dq_dtype(x.dtype) || !layout_of(ctx, x, &l)) return run_reference(ctx);
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && ctx.inputs[2].dtype != x.dtype) return run_reference(ctx);
  const Q8QuantizeIsa& isa = isa_of(ctx);
  const bool u8 = x.dtype == DType::U8;
  const uint8_t* px = x.as<uint8_t>();
  const float* scale = ctx.inputs[1].as<float>();
  float* py = y.as<float>();
  if (x.dtype == DType::I32) {
    const int32_t* p32 = x.as<int32_t>();
    for_rows(ctx, l, x.numel(), [&](int64_t i, int64_t n, int64_t k) {
      isa.dequantize_i32(p32 + i, static_cast<size_t>(n), scale[k], zero_point(ctx, k), py + i);
    });
    return Status::Ok();
  }
  for_rows(ctx, l, x.numel(), [&](int64_t i, int64_t n, int64_t k) {
    isa.dequantize(px + i, static_cast<size_t>(n), scale[k], zero_point(ctx, k), py + i, u8);
  });
  return Status::Ok();
}

}  // namespace

void q8_quantize_register(KernelRegistry& registry, Isa isa, const char* quantize_name,
                          const char* dequantize_name, Status (*prepare)(KernelContext&)) {
  Kernel q;
  q.name = quantize_name;
  q.supports = quantize_supports;
  q.prepare = prepare;
  q.run = quantize_run;
  registry.add(fb::OpType_QuantizeLinear, KernelKey{DType::F32, DType::F32}, isa, q);
  Kernel dq;
  dq.name = dequantize_name;
  dq.supports = dequantize_supports;
  dq.prepare = prepare;
  dq.run = dequantize_run;
  registry.add(fb::OpType_DequantizeLinear, KernelKey{DType::I8, DType::F32}, isa, dq);
  registry.add(fb::OpType_DequantizeLinear, KernelKey{DType::U8, DType::F32}, isa, dq);
  registry.add(fb::OpType_DequantizeLinear, KernelKey{DType::I32, DType::F32}, isa, dq);
}

}  // namespace q8
}  // namespace mobrt
