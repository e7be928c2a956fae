// shape_ops.cpp: reference kernels for ops that change shapes or make
// tensors: Reshape Flatten Squeeze Unsqueeze Identity Dropout (copies),
// Shape Size, Cast, ConstantOfShape, Range, Expand, Tile.
// Semantics: mobconv/ops/shape_ops.py / tensor_ops.py (ONNX opset 28).
#include <limits>

#include <random>

#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

Status infer_reshape(KernelContext& ctx) {
  Shape target;
  Status s = int_values(ctx, 1, &target, "shape");
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  bool allowzero = ctx.attrs->get_int("allowzero", 0) != 0;
  int neg = -1;
  int64_t known = 1;
  for (size_t k = 0; k < target.size(); ++k) {
    int64_t d = target[k];
    if (d < -1) return ctx.error("shape dims must be >= -1, got " + shape_str(target));
    if (d == -1) {
      if (neg >= 0) return ctx.error("at most one dim may be -1, got " + shape_str(target));
      neg = static_cast<int>(k);
      continue;
    }
    if (d == 0 && !allowzero) {
      if (static_cast<int>(k) >= x.rank) return ctx.error("dim " + std::to_string(k) + " is 0 (copy) but the input has rank " + std::to_string(x.rank));
      target[k] = d = x.dims[k];
    }
    if (d > 0 && known > (int64_t(1) << 50) / d) return ctx.error("shape too large");
    known *= d;
  }
  int64_t n = x.numel();
  if (neg >= 0) {
    if (known == 0 || n % known) return ctx.error(std::to_string(n) + " elements cannot be reshaped to " + shape_str(target));
    target[neg] = n / known;
  } else if (known != n) {
    return ctx.error("element counts differ (" + std::to_string(n) + " vs " + std::to_string(known) + ") for " + shape_str(shape_of(x)) + " -> " + shape_str(target));
  }
  return set_out(ctx, 0, x.dtype, target);
}

Status infer_flatten(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int64_t axis = ctx.attrs->get_int("axis", 1);
  if (axis < -x.rank || axis > x.rank) return ctx.error("axis " + std::to_string(axis) + " out of range for rank " + std::to_string(x.rank));
  if (axis < 0) axis += x.rank;
  int64_t a = 1, b = 1;
  for (int d = 0; d < x.rank; ++d) (d < axis ? a : b) *= x.dims[d];
  return set_out(ctx, 0, x.dtype, {a, b});
}

Status infer_squeeze(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  std::vector<bool> drop(x.rank, false);
  if (ctx.num_inputs > 1 && ctx.inputs[1].present()) {
    Shape axes;
    Status s = int_values(ctx, 1, &axes, "axes");
    if (!s.ok()) return s;
    for (int64_t a : axes) {
      int ax;
      s = norm_axis(ctx, a, x.rank, &ax);
      if (!s.ok()) return s;
      if (x.dims[ax] != 1) return ctx.error("cannot squeeze axis " + std::to_string(a) + " of shape " + shape_str(x) + ": size is not 1");
      if (drop[ax]) return ctx.error("axes contain a repeated axis");
      drop[ax] = true;
    }
  } else {
    for (int d = 0; d < x.rank; ++d) drop[d] = x.dims[d] == 1;
  }
  Shape out;
  for (int d = 0; d < x.rank; ++d) if (!drop[d]) out.push_back(x.dims[d]);
  return set_out(ctx, 0, x.dtype, out);
}

Status infer_unsqueeze(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  Shape axes;
  Status s = int_values(ctx, 1, &axes, "axes");
  if (!s.ok()) return s;
  int r = x.rank + static_cast<int>(axes.size());
  if (r > kMaxRank) return ctx.error("output rank exceeds 8");
  std::vector<bool> ins(r, false);
  for (int64_t a : axes) {
    int ax;
    s = norm_axis(ctx, a, r, &ax);
    if (!s.ok()) return s;
    if (ins[ax]) return ctx.error("axes contain a repeated axis");
    ins[ax] = true;
  }
  Shape out;
  int k = 0;
  for (int d = 0; d < r; ++d) out.push_back(ins[d] ? 1 : x.dims[k++]);
  return set_out(ctx, 0, x.dtype, out);
}

Status infer_identity(KernelContext& ctx) {
  Status s = set_out(ctx, 0, ctx.inputs[0].dtype, shape_of(ctx.inputs[0]));
  if (s.ok() && ctx.op_type == fb::OpType_Dropout) s = set_out(ctx, 1, DType::BOOL, shape_of(ctx.inputs[0]));
  return s;
}

// Dropout with training_mode true (and ratio > 0) drops like ONNX's test
// generator: mask = numpy RandomState(seed).uniform(0, 1, shape) >= ratio,
// output = x * mask * float32(1 / (1 - ratio)). RandomState(int) is MT19937
// seeded with init_genrand (= std::mt19937(seed)); uniform draws doubles from
// two 32-bit words like numpy's random_sample.
Status run_dropout_training(KernelContext& ctx, float ratio) {
  const TensorView& x = ctx.inputs[0];
  if (x.dtype != DType::F32) return ctx.error("training-mode Dropout supports float32 only");
  if (ratio < 0.f || ratio >= 1.f) return ctx.error("ratio must be in [0, 1), got " + std::to_string(ratio));
  std::mt19937 gen(static_cast<uint32_t>(ctx.attrs->get_int("seed", 0)));
  float scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(ratio)));
  int64_t n = x.numel();
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  bool* pm = ctx.num_outputs > 1 && ctx.outputs[1].data ? ctx.outputs[1].as<bool>() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t a = static_cast<uint32_t>(gen()) >> 5, b = static_cast<uint32_t>(gen()) >> 6;
    double u = (a * 67108864.0 + b) / 9007199254740992.0;
    bool keep = u >= static_cast<double>(ratio);
    py[i] = keep ? px[i] * scale : 0.f * px[i];
    if (pm) pm[i] = keep;
  }
  return Status::Ok();
}

Status run_identity(KernelContext& ctx) {
  if (ctx.op_type == fb::OpType_Dropout && ctx.num_inputs > 2 && ctx.inputs[2].present()) {
    const TensorView& t = ctx.inputs[2];
    if (!t.data || t.numel() < 1 || t.dtype != DType::BOOL) return ctx.error("training_mode must be a bool scalar");
    float ratio = 0.5f;
    if (ctx.num_inputs > 1 && ctx.inputs[1].present()) {
      Status s = float_scalar(ctx, 1, &ratio);
      if (!s.ok()) return s;
    }
    if (t.as<bool>()[0] && ratio != 0.f) return run_dropout_training(ctx, ratio);
  }
  run_copy(ctx);
  if (ctx.num_outputs > 1 && ctx.outputs[1].data)
    std::memset(ctx.outputs[1].data, 1, static_cast<size_t>(ctx.outputs[1].numel()));
  return Status::Ok();
}

Status shape_range(const KernelContext& ctx, int64_t* b, int64_t* e) {
  int64_t r = ctx.inputs[0].rank;
  int64_t start = ctx.attrs->get_int("start", 0), end = ctx.attrs->get_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  *b = std::min(std::max<int64_t>(start, 0), r);
  *e = std::min(std::max<int64_t>(end, 0), r);
  if (*e < *b) *e = *b;
  return Status::Ok();
}

Status infer_shape(KernelContext& ctx) {
  int64_t b, e;
  shape_range(ctx, &b, &e);
  return set_out(ctx, 0, DType::I64, {e - b});
}

Status run_shape(KernelContext& ctx) {
  int64_t b, e;
  shape_range(ctx, &b, &e);
  int64_t* y = ctx.outputs[0].as<int64_t>();
  for (int64_t d = b; d < e; ++d) y[d - b] = ctx.inputs[0].dims[d];
  return Status::Ok();
}

Status infer_size(KernelContext& ctx) { return set_out(ctx, 0, DType::I64, {}); }
Status run_size(KernelContext& ctx) {
  ctx.outputs[0].as<int64_t>()[0] = ctx.inputs[0].numel();
  return Status::Ok();
}

// ---- Cast (`to` is an ONNX TensorProto dtype code)
bool onnx_to_dtype(int64_t to, DType* out) {
  switch (to) {
    case 1: *out = DType::F32; return true;
    case 2: *out = DType::U8; return true;
    case 3: *out = DType::I8; return true;
    case 5: *out = DType::I16; return true;
    case 6: *out = DType::I32; return true;
    case 7: *out = DType::I64; return true;
    case 9: *out = DType::BOOL; return true;
    case 10: *out = DType::F16; return true;
    case 16: *out = DType::BF16; return true;
    default: return false;  // float8/double/strings/int4: not in this runtime
  }
}

Status infer_cast(KernelContext& ctx) {
  if (!ctx.attrs->has("to")) return ctx.error("attribute 'to' is required");
  int64_t to = ctx.attrs->get_int("to", 0);
  DType in = ctx.inputs[0].dtype, out;
  if (!onnx_to_dtype(to, &out) || dtype_size(in) == 0)
    return ctx.error("cast from " + std::string(dtype_name(in)) + " to ONNX dtype " + std::to_string(to) + " is not supported");
  return set_out(ctx, 0, out, shape_of(ctx.inputs[0]));
}

template <typename T> double load(const void* p, int64_t i) { return static_cast<double>(static_cast<const T*>(p)[i]); }

template <typename T>
void store(void* p, int64_t i, double v) {
  if constexpr (std::is_same<T, bool>::value) {
    static_cast<bool*>(p)[i] = v != 0;
  } else if constexpr (std::is_floating_point<T>::value) {
    static_cast<T*>(p)[i] = static_cast<T>(v);
  } else {
    // numpy-like wrap for in-range values; NaN/inf/out of range -> saturate (defined behaviour)
    if (std::isnan(v)) { static_cast<T*>(p)[i] = 0; return; }
    double t = std::trunc(v);
    if (t < static_cast<double>(std::numeric_limits<T>::lowest())) { static_cast<T*>(p)[i] = std::numeric_limits<T>::lowest(); return; }
    if (t >= static_cast<double>(std::numeric_limits<T>::max())) { static_cast<T*>(p)[i] = std::numeric_limits<T>::max(); return; }
    static_cast<T*>(p)[i] = static_cast<T>(static_cast<int64_t>(t));
  }
}

Status run_cast(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  TensorView& y = ctx.outputs[0];
  int64_t n = x.numel();
  // int64 -> int32 etc: exact integer path (double loses >2^53).
  bool int_in = x.dtype == DType::I64 || x.dtype == DType::I32 || x.dtype == DType::I16 || x.dtype == DType::I8 || x.dtype == DType::U8 || x.dtype == DType::BOOL;
  bool int_out = y.dtype == DType::I64 || y.dtype == DType::I32 || y.dtype == DType::I16 || y.dtype == DType::I8 || y.dtype == DType::U8;
  for (int64_t i = 0; i < n; ++i) {
    if (int_in && int_out) {
      int64_t v = 0;
      switch (x.dtype) {
        case DType::I64: v = x.as<int64_t>()[i]; break;
        case DType::I32: v = x.as<int32_t>()[i]; break;
        case DType::I16: v = x.as<int16_t>()[i]; break;
        case DType::I8: v = x.as<int8_t>()[i]; break;
        case DType::U8: v = x.as<uint8_t>()[i]; break;
        default: v = x.as<bool>()[i]; break;
      }
      switch (y.dtype) {  // wrap like numpy astype
        case DType::I64: y.as<int64_t>()[i] = v; break;
        case DType::I32: y.as<int32_t>()[i] = static_cast<int32_t>(static_cast<uint32_t>(v)); break;
        case DType::I16: y.as<int16_t>()[i] = static_cast<int16_t>(static_cast<uint16_t>(v)); break;
        case DType::I8: y.as<int8_t>()[i] = static_cast<int8_t>(static_cast<uint8_t>(v)); break;
        default: y.as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      }
      continue;
    }
    double v = 0;
    switch (x.dtype) {
      case DType::F32: v = load<float>(x.data, i); break;
      case DType::I64: v = load<int64_t>(x.data, i); break;
      case DType::I32: v = load<int32_t>(x.data, i); break;
      case DType::I16: v = load<int16_t>(x.data, i); break;
      case DType::I8: v = load<int8_t>(x.data, i); break;
      case DType::U8: v = load<uint8_t>(x.data, i); break;
      case DType::BOOL: v = load<bool>(x.data, i); break;
      case DType::F16: v = half_to_float(x.as<uint16_t>()[i]); break;
      case DType::BF16: v = bf16_bits_to_float(x.as<uint16_t>()[i]); break;
      default: break;
    }
    switch (y.dtype) {
      case DType::F32: store<float>(y.data, i, v); break;
      case DType::F16: y.as<uint16_t>()[i] = float_to_half_bits(static_cast<float>(v)); break;
      case DType::BF16: y.as<uint16_t>()[i] = float_to_bf16_bits(static_cast<float>(v)); break;
      case DType::I64: store<int64_t>(y.data, i, v); break;
      case DType::I32: store<int32_t>(y.data, i, v); break;
      case DType::I16: store<int16_t>(y.data, i, v); break;
      case DType::I8: store<int8_t>(y.data, i, v); break;
      case DType::U8: store<uint8_t>(y.data, i, v); break;
      case DType::BOOL: store<bool>(y.data, i, v); break;
      default: break;
    }
  }
  return Status::Ok();
}

// ---- ConstantOfShape (value: a one-element tensor attribute, default float32 0)
Status infer_cos(KernelContext& ctx) {
  Shape dims;
  Status s = int_values(ctx, 0, &dims, "shape");
  if (!s.ok()) return s;
  DType dt = DType::F32;
  if (const AttrValue* v = ctx.attrs->find("value")) {
    if (v->kind != AttrValue::Kind::Tensor || v->tensor_numel != 1 || dtype_size(v->tensor_dtype) == 0)
      return ctx.error("value must be a one-element tensor");
    dt = v->tensor_dtype;
  }
  for (int64_t d : dims)
    if (d < 0) return ctx.error("shape must not be negative, got " + shape_str(dims));
  return set_out(ctx, 0, dt, dims);
}

Status run_cos(KernelContext& ctx) {
  TensorView& y = ctx.outputs[0];
  size_t es = dtype_size(y.dtype);
  uint8_t value[8] = {0};
  const AttrValue* v = ctx.attrs->find("value");
  if (v && v->tensor_data) std::memcpy(value, v->tensor_data, es);
  int64_t n = y.numel();
  uint8_t* p = y.as<uint8_t>();
  for (int64_t i = 0; i < n; ++i) std::memcpy(p + i * es, value, es);
  return Status::Ok();
}

// ---- Range (float16/bfloat16: computed in float32, stash_type 1, or double, 11, and
// rounded once to the storage type, as the numpy reference does)
double range_value(const TensorView& v) {
  switch (v.dtype) {
    case DType::F32: return v.as<float>()[0];
    case DType::I32: return v.as<int32_t>()[0];
    case DType::F16: return half_to_float(v.as<uint16_t>()[0]);
    case DType::BF16: return bf16_bits_to_float(v.as<uint16_t>()[0]);
    default: return static_cast<double>(v.as<int64_t>()[0]);
  }
}

// x rounded to float with round-to-odd (toward zero, low bit set when inexact): a second
// rounding of that float to float16/bfloat16 (>= 2 bits shorter) is then the correctly
// rounded value of x itself, as numpy's direct float64 -> float16 cast gives.
float float_round_odd(double x) {
  float f = static_cast<float>(x);
  if (!std::isfinite(f) || static_cast<double>(f) == x) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b |= 1u;
  std::memcpy(&f, &b, 4);
  return f;
}

Status infer_range(KernelContext& ctx) {
  DType dt = ctx.inputs[0].dtype;
  if (dt != DType::F32 && dt != DType::I32 && dt != DType::I64 && !is_half(dt)) return ctx.error("unsupported dtype");
  int64_t stash = ctx.attrs->get_int("stash_type", 1);
  if (is_half(dt) && stash != 1 && stash != 11)
    return ctx.error("stash_type must be 1 (float) or 11 (double), got " + std::to_string(stash));
  for (int i = 0; i < 3; ++i) {
    if (ctx.inputs[i].dtype != dt) return ctx.error("start, limit and delta must share one dtype");
    if (ctx.inputs[i].numel() != 1) return ctx.error("start, limit and delta must be scalars");
    if (!ctx.inputs[i].data) return value_at_run_time(ctx, i, "start, limit and delta");
  }
  double v[3];
  for (int i = 0; i < 3; ++i) v[i] = range_value(ctx.inputs[i]);
  if (v[2] == 0 || !std::isfinite(v[0]) || !std::isfinite(v[1]) || !std::isfinite(v[2])) return ctx.error("delta must be non-zero and values finite");
  double n = std::ceil((v[1] - v[0]) / v[2]);
  if (n < 0) n = 0;
  if (n > 1e10) return ctx.error("range too long");
  return set_out(ctx, 0, dt, {static_cast<int64_t>(n)});
}

Status run_range(KernelContext& ctx) {
  DType dt = ctx.inputs[0].dtype;
  int64_t n = ctx.outputs[0].numel();
  if (dt == DType::F32) {
    float s = ctx.inputs[0].as<float>()[0], d = ctx.inputs[2].as<float>()[0];
    for (int64_t i = 0; i < n; ++i) ctx.outputs[0].as<float>()[i] = s + static_cast<float>(i) * d;
  } else if (is_half(dt)) {
    bool wide = ctx.attrs->get_int("stash_type", 1) == 11;
    double s = range_value(ctx.inputs[0]), d = range_value(ctx.inputs[2]);
    uint16_t* y = ctx.outputs[0].as<uint16_t>();
    for (int64_t i = 0; i < n; ++i) {
      float v = wide ? float_round_odd(s + static_cast<double>(i) * d)
                     : static_cast<float>(s) + static_cast<float>(i) * static_cast<float>(d);
      y[i] = dt == DType::F16 ? float_to_half_bits(v) : float_to_bf16_bits(v);
    }
  } else if (dt == DType::I32) {
    int64_t s = ctx.inputs[0].as<int32_t>()[0], d = ctx.inputs[2].as<int32_t>()[0];
    for (int64_t i = 0; i < n; ++i) ctx.outputs[0].as<int32_t>()[i] = static_cast<int32_t>(s + i * d);
  } else {
    int64_t s = ctx.inputs[0].as<int64_t>()[0], d = ctx.inputs[2].as<int64_t>()[0];
    for (int64_t i = 0; i < n; ++i) ctx.outputs[0].as<int64_t>()[i] = static_cast<int64_t>(static_cast<uint64_t>(s) + static_cast<uint64_t>(i) * static_cast<uint64_t>(d));
  }
  return Status::Ok();
}

// ---- Expand / Tile (generic gather through broadcast strides)
Status infer_expand(KernelContext& ctx) {
  Shape target;
  Status s = int_values(ctx, 1, &target, "shape");
  if (!s.ok()) return s;
  Shape out;
  s = broadcast(ctx, {shape_of(ctx.inputs[0]), target}, &out);
  if (!s.ok()) return s;
  return set_out(ctx, 0, ctx.inputs[0].dtype, out);
}

Status run_expand(KernelContext& ctx) {
  Shape out = shape_of(ctx.outputs[0]);
  Shape st[1] = {bcast_strides(shape_of(ctx.inputs[0]), out)};
  size_t es = dtype_size(ctx.inputs[0].dtype);
  const uint8_t* x = ctx.inputs[0].as<uint8_t>();
  uint8_t* y = ctx.outputs[0].as<uint8_t>();
  for_each_bcast<1>(out, st, [&](int64_t i, const int64_t* o) { std::memcpy(y + i * es, x + o[0] * es, es); });
  return Status::Ok();
}

Status infer_tile(KernelContext& ctx) {
  Shape reps;
  Status s = int_values(ctx, 1, &reps, "repeats");
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  if (static_cast<int>(reps.size()) != x.rank) return ctx.error("repeats must have one value per input dim");
  Shape out = shape_of(x);
  for (int d = 0; d < x.rank; ++d) {
    if (reps[d] < 0 || reps[d] > (int64_t(1) << 30)) return ctx.error("repeats must be in [0, 2^30]");
    out[d] *= reps[d];
  }
  return set_out(ctx, 0, x.dtype, out);
}

Status run_tile(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  Shape out = shape_of(ctx.outputs[0]), xs = shape_of(x), xst = row_major_strides(xs);
  size_t es = dtype_size(x.dtype);
  int64_t n = numel(out);
  const uint8_t* px = x.as<uint8_t>();
  uint8_t* py = ctx.outputs[0].as<uint8_t>();
  std::vector<int64_t> idx(out.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
      int64_t c = rem % out[d];
      rem /= out[d];
      off += (c % xs[d]) * xst[d];
    }
    std::memcpy(py + i * es, px + off * es, es);
  }
  return Status::Ok();
}

}  // namespace

void register_shape_ops(KernelRegistry& r) {
  reg(r, fb::OpType_Reshape, DType::Any, "reshape_reference", infer_reshape, run_copy);
  reg(r, fb::OpType_Flatten, DType::Any, "flatten_reference", infer_flatten, run_copy);
  reg(r, fb::OpType_Squeeze, DType::Any, "squeeze_reference", infer_squeeze, run_copy);
  reg(r, fb::OpType_Unsqueeze, DType::Any, "unsqueeze_reference", infer_unsqueeze, run_copy);
  reg(r, fb::OpType_Identity, DType::Any, "identity_reference", infer_identity, run_identity);
  reg(r, fb::OpType_Dropout, DType::Any, "dropout_reference", infer_identity, run_identity);
  reg(r, fb::OpType_Shape, DType::Any, "shape_reference", infer_shape, run_shape);
  reg(r, fb::OpType_Size, DType::Any, "size_reference", infer_size, run_size);
  reg(r, fb::OpType_Cast, DType::Any, "cast_reference", infer_cast, run_cast);
  reg(r, fb::OpType_ConstantOfShape, DType::Any, "constant_of_shape_reference", infer_cos, run_cos);
  reg(r, fb::OpType_Range, DType::Any, "range_reference", infer_range, run_range);
  reg(r, fb::OpType_Expand, DType::Any, "expand_reference", infer_expand, run_expand);
  reg(r, fb::OpType_Tile, DType::Any, "tile_reference", infer_tile, run_tile);
}

}  // namespace ref
}  // namespace mobrt
