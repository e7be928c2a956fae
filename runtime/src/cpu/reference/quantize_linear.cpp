// quantize_linear.cpp: reference QuantizeLinear / DequantizeLinear (ONNX opset 28 for
// float32 x/scales and 8/16-bit integers; specification mobconv/ops/quantize_linear.py,
// arithmetic docs/quantization.md section 3):
//   QuantizeLinear:   y = saturate(rint(x / scale) + zp), rint ties to even, NaN -> the minimum
//   DequantizeLinear: y = float(int32(x) - int32(zp)) * scale
// Scales per tensor, per slice along axis, or per block of block_size along axis.
#include <type_traits>

#include "cpu/reference/dtype_dispatch.h"

namespace mobrt {
namespace ref {
namespace {

// Which scale element x[i] uses: x is viewed as (outer, n, inner) around the axis.
struct ParamIndex {
  int mode = 0;  // 0 per tensor, 1 per axis, 2 blocked
  int64_t n = 1, inner = 1, blocks = 1, block = 1;
  int64_t at(int64_t i) const {
    if (mode == 0) return 0;
    const int64_t a = (i / inner) % n;
    if (mode == 1) return a;
    const int64_t r = i % inner, o = i / (inner * n);
    return (o * blocks + a / block) * inner + r;
  }
};

Status param_index(const KernelContext& ctx, ParamIndex* p) {
  const TensorView& x = ctx.inputs[0];
  const TensorView& s = ctx.inputs[1];
  if (s.dtype != DType::F32) return ctx.error(std::string("scale must be float32, got ") + dtype_name(s.dtype));
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const TensorView& z = ctx.inputs[2];
    if (shape_of(z) != shape_of(s))
      return ctx.error("zero point " + shape_str(z) + " must have the scale's shape " + shape_str(s));
  }
  const int64_t block = ctx.attrs->get_int("block_size", 0);
  if (block < 0) return ctx.error("block_size " + std::to_string(block) + " must be >= 0");
  if (block == 0 && (s.rank == 0 || (s.rank == 1 && s.dims[0] == 1))) {
    p->mode = 0;
    return Status::Ok();
  }
  int64_t axis = ctx.attrs->get_int("axis", 1);
  if (axis < -x.rank || axis >= x.rank)
    return ctx.error("axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                     std::to_string(x.rank));
  if (axis < 0) axis += x.rank;
  p->n = x.dims[axis];
  p->inner = 1;
  for (int d = static_cast<int>(axis) + 1; d < x.rank; ++d) p->inner *= x.dims[d];
  if (block == 0) {
    if (s.rank != 1 || s.dims[0] != p->n)
      return ctx.error("scale " + shape_str(s) + " must be a scalar or 1-D with " + std::to_string(p->n) +
                       " values (x " + shape_str(x) + ", axis " + std::to_string(axis) + ")");
    p->mode = 1;
    return Status::Ok();
  }
  Shape want = shape_of(x);
  want[axis] = (p->n + block - 1) / block;
  if (shape_of(s) != want)
    return ctx.error("blocked scale " + shape_str(s) + " must have shape " + shape_str(want) + " (x " + shape_str(x) +
                     ", block_size " + std::to_string(block) + " on axis " + std::to_string(axis) + ")");
  p->mode = 2;
  p->blocks = want[axis];
  p->block = block;
  return Status::Ok();
}

bool quantized_dtype(int64_t onnx_type, DType* dt) {
  switch (onnx_type) {
    case 2: *dt = DType::U8; return true;
    case 3: *dt = DType::I8; return true;
    case 5: *dt = DType::I16; return true;
    default: return false;
  }
}

Status quantize_output_dtype(const KernelContext& ctx, DType* dt) {
  const int64_t out = ctx.attrs->get_int("output_dtype", 0);
  DType named = DType::U8;
  if (out != 0 && !quantized_dtype(out, &named))
    return ctx.error("output_dtype " + std::to_string(out) + " must be int8, uint8 or int16 (ONNX 3, 2, 5)");
  if (ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const DType z = ctx.inputs[2].dtype;
    if (z != DType::I8 && z != DType::U8 && z != DType::I16)
      return ctx.error(std::string("zero point dtype ") + dtype_name(z) + " must be int8, uint8 or int16");
    if (out != 0 && named != z)
      return ctx.error(std::string("output_dtype ") + dtype_name(named) + " differs from the zero point's dtype " +
                       dtype_name(z));
    *dt = z;
    return Status::Ok();
  }
  *dt = named;
  return Status::Ok();
}

Status infer_quantize_linear(KernelContext& ctx) {
  if (ctx.inputs[0].dtype != DType::F32)
    return ctx.error(std::string("x must be float32, got ") + dtype_name(ctx.inputs[0].dtype));
  const int64_t precision = ctx.attrs->get_int("precision", 0);
  if (precision != 0 && precision != 1)
    return ctx.error("precision " + std::to_string(precision) + " is not supported (0 or 1: float32)");
  ParamIndex p;
  Status st = param_index(ctx, &p);
  if (!st.ok()) return st;
  DType dt;
  st = quantize_output_dtype(ctx, &dt);
  if (!st.ok()) return st;
  return set_out(ctx, 0, dt, shape_of(ctx.inputs[0]));
}

// Zero point k as int64 (0 when absent).
int64_t zero_point(const KernelContext& ctx, int64_t k) {
  if (ctx.num_inputs <= 2 || !ctx.inputs[2].present()) return 0;
  return static_cast<int64_t>(value_as_double(ctx.inputs[2], k));
}

Status run_quantize_linear(KernelContext& ctx) {
  ParamIndex p;
  Status st = param_index(ctx, &p);
  if (!st.ok()) return st;
  const TensorView& x = ctx.inputs[0];
  const float* scale = ctx.inputs[1].as<float>();
  TensorView& y = ctx.outputs[0];
  const int64_t count = x.numel();
  bool ok = y.dtype == DType::I8 || y.dtype == DType::U8 || y.dtype == DType::I16;
  dispatch_dtype(y.dtype, [&](auto s) {
    using S = decltype(s);
    if constexpr (std::is_integral<S>::value) {
      const int64_t lo = std::numeric_limits<S>::lowest(), hi = std::numeric_limits<S>::max();
      for (int64_t i = 0; i < count; ++i) {
        const int64_t k = p.at(i);
        const float r = std::nearbyint(x.as<float>()[i] / scale[k]);  // float32 division, ties to even
        int64_t q;
        if (std::isnan(r)) {
          q = lo;
        } else {
          const double c = std::min(std::max(static_cast<double>(r), -1099511627776.0), 1099511627776.0);  // 2^40
          q = std::min(std::max(static_cast<int64_t>(c) + zero_point(ctx, k), lo), hi);
        }
        y.as<S>()[i] = static_cast<S>(q);
      }
    }
  });
  return ok ? Status::Ok() : ctx.error("unsupported output dtype");
}

Status infer_dequantize_linear(KernelContext& ctx) {
  const DType dt = ctx.inputs[0].dtype;
  if (dt != DType::I8 && dt != DType::U8 && dt != DType::I16 && dt != DType::I32)
    return ctx.error(std::string("x dtype ") + dtype_name(dt) + " must be one of int8, uint8, int16, int32");
  if (ctx.num_inputs > 2 && ctx.inputs[2].present() && ctx.inputs[2].dtype != dt)
    return ctx.error(std::string("zero point dtype ") + dtype_name(ctx.inputs[2].dtype) + " must be x's dtype " +
                     dtype_name(dt));
  const int64_t out = ctx.attrs->get_int("output_dtype", 0);
  if (out != 0 && out != 1)
    return ctx.error("output_dtype " + std::to_string(out) + " is not supported (0 or 1: float32)");
  ParamIndex p;
  Status st = param_index(ctx, &p);
  if (!st.ok()) return st;
  return set_out(ctx, 0, DType::F32, shape_of(ctx.inputs[0]));
}

Status run_dequantize_linear(KernelContext& ctx) {
  ParamIndex p;
  Status st = param_index(ctx, &p);
  if (!st.ok()) return st;
  const TensorView& x = ctx.inputs[0];
  const float* scale = ctx.inputs[1].as<float>();
  float* y = ctx.outputs[0].as<float>();
  const int64_t count = x.numel();
  bool ok = x.dtype == DType::I8 || x.dtype == DType::U8 || x.dtype == DType::I16 || x.dtype == DType::I32;
  dispatch_dtype(x.dtype, [&](auto s) {
    using S = decltype(s);
    if constexpr (std::is_integral<S>::value) {
      for (int64_t i = 0; i < count; ++i) {
        const int64_t k = p.at(i);
        // the int32 difference (wrapping, as the int32 arithmetic ONNX states), then float32
        const int64_t d = static_cast<int64_t>(x.as<S>()[i]) - zero_point(ctx, k);
        const int32_t d32 = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(d)));
        y[i] = static_cast<float>(d32) * scale[k];
      }
    }
  });
  return ok ? Status::Ok() : ctx.error("unsupported input dtype");
}

}  // namespace

void register_quantize_linear(KernelRegistry& r) {
  reg(r, fb::OpType_QuantizeLinear, DType::Any, "quantize_linear_reference", infer_quantize_linear,
      run_quantize_linear);
  reg(r, fb::OpType_DequantizeLinear, DType::Any, "dequantize_linear_reference", infer_dequantize_linear,
      run_dequantize_linear);
}

}  // namespace ref
}  // namespace mobrt
