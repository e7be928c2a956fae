// elementwise.cpp: reference kernels for broadcasting element-wise ops:
// Add Sub Mul Div Pow Mod, And Or Xor, Equal Less Greater LessOrEqual
// GreaterOrEqual, Max Min Sum Mean (variadic), Where, PRelu, Clip.
// Semantics: mobconv/ops/elementwise.py and activations.py (ONNX opset 28;
// integer Div truncates toward zero and x/0 gives 0). Numeric dtypes: float32,
// float16/bfloat16 (computed in float32, rounded per op), int8/uint8/int16/
// int32/int64 (wrapping like numpy).
// Algorithm: numpy broadcasting via per-input broadcast strides, one pass.
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

template <typename T> T int_div(T a, T b) { return b == 0 ? T(0) : T(a / b); }
template <typename T> T int_mod(T a, T b) {  // Python-style (sign of divisor)
  if (b == 0) return T(0);
  T r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

template <typename T>
T apply_arith(OpType op, T a, T b, int64_t fmod) {
  switch (op) {
    case fb::OpType_Add: return a + b;
    case fb::OpType_Sub: return a - b;
    case fb::OpType_Mul: return a * b;
    case fb::OpType_Div:
      if constexpr (std::is_integral<T>::value) return int_div(a, b); else return a / b;
    case fb::OpType_Pow:
      return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    case fb::OpType_Mod:
      if constexpr (std::is_integral<T>::value) {
        if (fmod) return b == 0 ? T(0) : T(a % b);
        return int_mod(a, b);
      } else {
        if (fmod) return std::fmod(a, b);
        T r = std::fmod(a, b);
        if (r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
      }
    default: return a;
  }
}

template <typename T>
bool apply_cmp(OpType op, T a, T b) {
  switch (op) {
    case fb::OpType_Equal: return a == b;
    case fb::OpType_Less: return a < b;
    case fb::OpType_Greater: return a > b;
    case fb::OpType_LessOrEqual: return a <= b;
    case fb::OpType_GreaterOrEqual: return a >= b;
    case fb::OpType_And: return a && b;
    case fb::OpType_Or: return a || b;
    case fb::OpType_Xor: return bool(a) != bool(b);
    default: return false;
  }
}

bool is_cmp(OpType op) {
  return op == fb::OpType_Equal || op == fb::OpType_Less || op == fb::OpType_Greater ||
         op == fb::OpType_LessOrEqual || op == fb::OpType_GreaterOrEqual || op == fb::OpType_And ||
         op == fb::OpType_Or || op == fb::OpType_Xor;
}

const std::initializer_list<DType> kNumeric = {DType::F32, DType::F16, DType::BF16, DType::I8, DType::U8,
                                                DType::I16, DType::I32, DType::I64};

Status infer_binary(KernelContext& ctx) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  bool logical = ctx.op_type == fb::OpType_And || ctx.op_type == fb::OpType_Or || ctx.op_type == fb::OpType_Xor;
  Status s = logical ? need_dtype(ctx, 0, {DType::BOOL})
                     : need_dtype(ctx, 0, {DType::F32, DType::F16, DType::BF16, DType::I8, DType::U8, DType::I16,
                                           DType::I32, DType::I64, DType::BOOL});
  if (!s.ok()) return s;
  if (a.dtype == DType::BOOL && !is_cmp(ctx.op_type)) return ctx.error("bool inputs are only valid for logical/comparison ops");
  if (ctx.op_type == fb::OpType_Pow) {
    s = need_dtype(ctx, 1, kNumeric);
  } else if (b.dtype != a.dtype) {
    return ctx.error(std::string("inputs have different dtypes ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  }
  if (!s.ok()) return s;
  Shape out;
  s = broadcast(ctx, {shape_of(a), shape_of(b)}, &out);
  if (!s.ok()) return s;
  return set_out(ctx, 0, is_cmp(ctx.op_type) ? DType::BOOL : a.dtype, out);
}

template <typename TA, typename TB, typename TO, typename F>
void binary_loop(KernelContext& ctx, F f) {
  const TensorView &a = ctx.inputs[0], &b = ctx.inputs[1];
  Shape out = shape_of(ctx.outputs[0]);
  Shape st[2] = {bcast_strides(shape_of(a), out), bcast_strides(shape_of(b), out)};
  const TA* pa = a.as<TA>();
  const TB* pb = b.as<TB>();
  TO* po = ctx.outputs[0].as<TO>();
  for_each_bcast<2>(out, st, [&](int64_t i, const int64_t* off) { po[i] = f(pa[off[0]], pb[off[1]]); });
}

// Calls f(type tag) with the storage type of dtype `dt` (numeric dtypes and bool).
template <typename F>
Status dispatch(KernelContext& ctx, DType dt, F&& f) {
  switch (dt) {
    case DType::F32: return f(float());
    case DType::F16: return f(f16());
    case DType::BF16: return f(bf16());
    case DType::I8: return f(int8_t());
    case DType::U8: return f(uint8_t());
    case DType::I16: return f(int16_t());
    case DType::I32: return f(int32_t());
    case DType::I64: return f(int64_t());
    case DType::BOOL: return f(bool());
    default: return ctx.error(std::string("unsupported dtype ") + dtype_name(dt));
  }
}

template <typename S>
Status run_binary_t(KernelContext& ctx) {
  using E = Elem<S>;
  using C = typename E::C;
  OpType op = ctx.op_type;
  if (is_cmp(op)) {
    binary_loop<S, S, bool>(ctx, [op](S x, S y) { return apply_cmp(op, E::load(x), E::load(y)); });
    return Status::Ok();
  }
  if constexpr (std::is_same<S, bool>::value) {
    return ctx.error("bool inputs are only valid for logical/comparison ops");
  } else {
    int64_t fmod = ctx.attrs->get_int("fmod", 0);
    if (op == fb::OpType_Pow && ctx.inputs[1].dtype != ctx.inputs[0].dtype) {
      return dispatch(ctx, ctx.inputs[1].dtype, [&](auto tag) -> Status {
        using SB = decltype(tag);
        if constexpr (std::is_same<SB, bool>::value) {
          return ctx.error("Pow exponent must be numeric");
        } else {
          binary_loop<S, SB, S>(ctx, [](S x, SB y) {
            return E::store(static_cast<C>(std::pow(static_cast<double>(E::load(x)),
                                                    static_cast<double>(Elem<SB>::load(y)))));
          });
          return Status::Ok();
        }
      });
    }
    if (op == fb::OpType_Pow && std::is_floating_point<C>::value) {
      binary_loop<S, S, S>(ctx, [](S x, S y) { return E::store(static_cast<C>(std::pow(E::load(x), E::load(y)))); });
      return Status::Ok();
    }
    binary_loop<S, S, S>(ctx, [op, fmod](S x, S y) { return E::store(apply_arith<C>(op, E::load(x), E::load(y), fmod)); });
    return Status::Ok();
  }
}

Status run_binary(KernelContext& ctx) {
  return dispatch(ctx, ctx.inputs[0].dtype, [&](auto tag) { return run_binary_t<decltype(tag)>(ctx); });
}

// ---- variadic Max Min Sum Mean
Status infer_variadic(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, kNumeric);
  if (!s.ok()) return s;
  std::vector<Shape> shapes;
  for (int i = 0; i < ctx.num_inputs; ++i) {
    if (!ctx.inputs[i].present()) return ctx.error("input " + std::to_string(i) + " is absent");
    if (ctx.inputs[i].dtype != ctx.inputs[0].dtype) return ctx.error("inputs must share one dtype");
    shapes.push_back(shape_of(ctx.inputs[i]));
  }
  Shape out;
  s = broadcast(ctx, shapes, &out);
  if (!s.ok()) return s;
  return set_out(ctx, 0, ctx.inputs[0].dtype, out);
}

template <typename S>
Status run_variadic_t(KernelContext& ctx) {
  using E = Elem<S>;
  using T = typename E::C;
  Shape out = shape_of(ctx.outputs[0]);
  int64_t total = numel(out);
  std::vector<T> acc(static_cast<size_t>(total));
  OpType op = ctx.op_type;
  for (int i = 0; i < ctx.num_inputs; ++i) {
    const TensorView& x = ctx.inputs[i];
    Shape st[1] = {bcast_strides(shape_of(x), out)};
    const S* px = x.as<S>();
    for_each_bcast<1>(out, st, [&](int64_t k, const int64_t* off) {
      T v = E::load(px[off[0]]);
      if (i == 0) { acc[k] = v; return; }
      T& r = acc[k];
      if (op == fb::OpType_Max) {
        if constexpr (std::is_floating_point<T>::value) r = (std::isnan(r) || std::isnan(v)) ? NAN : (v > r ? v : r);
        else r = v > r ? v : r;
      } else if (op == fb::OpType_Min) {
        if constexpr (std::is_floating_point<T>::value) r = (std::isnan(r) || std::isnan(v)) ? NAN : (v < r ? v : r);
        else r = v < r ? v : r;
      } else {
        // a half-precision Sum rounds after every addition, like numpy's pairwise add
        r = E::load(E::store(static_cast<T>(r + v)));
      }
    });
  }
  S* po = ctx.outputs[0].as<S>();
  for (int64_t k = 0; k < total; ++k) {
    T v = acc[k];
    if (op == fb::OpType_Mean) {
      if constexpr (std::is_floating_point<T>::value) v = v / static_cast<T>(ctx.num_inputs);
      else v = static_cast<T>(v / ctx.num_inputs);
    }
    po[k] = E::store(v);
  }
  return Status::Ok();
}

Status run_variadic(KernelContext& ctx) {
  return dispatch(ctx, ctx.inputs[0].dtype, [&](auto tag) -> Status {
    using S = decltype(tag);
    if constexpr (std::is_same<S, bool>::value) return ctx.error("unsupported dtype bool");
    else return run_variadic_t<S>(ctx);
  });
}

// ---- Where
Status infer_where(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::BOOL});
  if (!s.ok()) return s;
  if (ctx.inputs[1].dtype != ctx.inputs[2].dtype) return ctx.error("X and Y must share one dtype");
  if (dtype_size(ctx.inputs[1].dtype) == 0) return ctx.error("bad dtype");
  Shape out;
  s = broadcast(ctx, {shape_of(ctx.inputs[0]), shape_of(ctx.inputs[1]), shape_of(ctx.inputs[2])}, &out);
  if (!s.ok()) return s;
  return set_out(ctx, 0, ctx.inputs[1].dtype, out);
}

Status run_where(KernelContext& ctx) {
  Shape out = shape_of(ctx.outputs[0]);
  Shape st[3] = {bcast_strides(shape_of(ctx.inputs[0]), out), bcast_strides(shape_of(ctx.inputs[1]), out),
                 bcast_strides(shape_of(ctx.inputs[2]), out)};
  size_t es = dtype_size(ctx.outputs[0].dtype);
  const bool* c = ctx.inputs[0].as<bool>();
  const uint8_t* x = ctx.inputs[1].as<uint8_t>();
  const uint8_t* y = ctx.inputs[2].as<uint8_t>();
  uint8_t* o = ctx.outputs[0].as<uint8_t>();
  for_each_bcast<3>(out, st, [&](int64_t i, const int64_t* off) {
    std::memcpy(o + i * es, c[off[0]] ? x + off[1] * es : y + off[2] * es, es);
  });
  return Status::Ok();
}

// ---- PRelu
Status infer_prelu(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  s = need_dtype(ctx, 1, {DType::F32});
  if (!s.ok()) return s;
  Shape out;
  s = broadcast(ctx, {shape_of(ctx.inputs[0]), shape_of(ctx.inputs[1])}, &out);
  if (!s.ok()) return s;
  if (out != shape_of(ctx.inputs[0])) return ctx.error("slope " + shape_str(ctx.inputs[1]) + " must broadcast to X " + shape_str(ctx.inputs[0]));
  return set_out(ctx, 0, DType::F32, out);
}

Status run_prelu(KernelContext& ctx) {
  binary_loop<float, float, float>(ctx, [](float x, float a) { return x >= 0.f ? x : x * a; });
  return Status::Ok();
}

// ---- Clip
Status infer_clip(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, kNumeric);
  if (!s.ok()) return s;
  for (int i = 1; i < ctx.num_inputs; ++i) {
    const TensorView& v = ctx.inputs[i];
    if (!v.present()) continue;
    if (v.dtype != ctx.inputs[0].dtype) return ctx.error("min/max must have the input's dtype");
    if (v.numel() != 1) return ctx.error("min/max must be scalars, got shape " + shape_str(v));
  }
  return infer_same(ctx);
}

template <typename S>
Status run_clip_t(KernelContext& ctx) {
  using E = Elem<S>;
  using T = typename E::C;
  const S* x = ctx.inputs[0].as<S>();
  S* y = ctx.outputs[0].as<S>();
  bool has_lo = ctx.num_inputs > 1 && ctx.inputs[1].present();
  bool has_hi = ctx.num_inputs > 2 && ctx.inputs[2].present();
  T lo = has_lo ? E::load(ctx.inputs[1].as<S>()[0]) : T(0);
  T hi = has_hi ? E::load(ctx.inputs[2].as<S>()[0]) : T(0);
  int64_t n = ctx.inputs[0].numel();
  for (int64_t i = 0; i < n; ++i) {
    T v = E::load(x[i]);
    if (has_lo) v = (v < lo) ? lo : v;   // np.maximum(v, lo) (NaN in v propagates)
    if (has_hi) v = (v > hi) ? hi : v;
    if constexpr (std::is_floating_point<T>::value) {
      if (has_lo && std::isnan(lo)) v = lo;
      if (has_hi && std::isnan(hi)) v = hi;
    }
    y[i] = E::store(v);
  }
  return Status::Ok();
}

Status run_clip(KernelContext& ctx) {
  return dispatch(ctx, ctx.inputs[0].dtype, [&](auto tag) -> Status {
    using S = decltype(tag);
    if constexpr (std::is_same<S, bool>::value) return ctx.error("unsupported dtype bool");
    else return run_clip_t<S>(ctx);
  });
}

}  // namespace

void register_elementwise(KernelRegistry& r) {
  const OpType binary[] = {fb::OpType_Add, fb::OpType_Sub, fb::OpType_Mul, fb::OpType_Div, fb::OpType_Pow,
                           fb::OpType_Mod, fb::OpType_And, fb::OpType_Or, fb::OpType_Xor, fb::OpType_Equal,
                           fb::OpType_Less, fb::OpType_Greater, fb::OpType_LessOrEqual, fb::OpType_GreaterOrEqual};
  for (OpType op : binary) reg(r, op, DType::Any, "binary_reference", infer_binary, run_binary);
  for (OpType op : {fb::OpType_Max, fb::OpType_Min, fb::OpType_Sum, fb::OpType_Mean})
    reg(r, op, DType::Any, "variadic_reference", infer_variadic, run_variadic);
  reg(r, fb::OpType_Where, DType::Any, "where_reference", infer_where, run_where);
  reg(r, fb::OpType_PRelu, DType::Any, "prelu_f32_reference", infer_prelu, run_prelu);
  reg(r, fb::OpType_Clip, DType::Any, "clip_reference", infer_clip, run_clip);
}

}  // namespace ref
}  // namespace mobrt
