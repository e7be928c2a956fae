// ref.h: helpers shared by the scalar reference kernels (the specification
// every optimized kernel is tested against): registration, output shapes,
// input checks, broadcasting, reading small integer tensors.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <string>
#include <vector>

#include "core/infer.h"
#include "core/kernel.h"
#include "core/model.h"

namespace mobrt {
namespace ref {

namespace fb = ::mobconv::formats::fb;
using Shape = std::vector<int64_t>;

inline void reg(KernelRegistry& r, OpType op, DType dt, const char* name, InferFn infer, Status (*run)(KernelContext&),
                size_t (*scratch)(const KernelContext&) = nullptr) {
  Kernel k;
  k.name = name;
  k.run = run;
  k.scratch_bytes = scratch;
  r.add(op, dt, Isa::Scalar, k);
  if (infer) register_infer(op, infer);
}

// ---- half-precision storage: float16 / bfloat16 elements are computed in
// float32 and rounded back (round to nearest even), as numpy does for float16
// and ml_dtypes for bfloat16.
struct f16 { uint16_t bits; };
struct bf16 { uint16_t bits; };

inline uint16_t float_to_half_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {  // subnormal half (or zero)
    if (ax < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to 0
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14 + (112 - e) + ... : value = m * 2^(e-150); half sub unit 2^-24
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);  // round to nearest even on bit 13
  r -= 0x38000000u;                                // rebias 127 -> 15
  return static_cast<uint16_t>(sign | (r >> 13));
}

inline float bf16_bits_to_float(uint16_t b) {
  uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline uint16_t float_to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// Elem<S>: C = compute type; load/store convert between storage and compute.
template <typename S> struct Elem {
  using C = S;
  static C load(S v) { return v; }
  static S store(C v) { return v; }
};
template <> struct Elem<f16> {
  using C = float;
  static float load(f16 v) { return half_to_float(v.bits); }
  static f16 store(float v) { return f16{float_to_half_bits(v)}; }
};
template <> struct Elem<bf16> {
  using C = float;
  static float load(bf16 v) { return bf16_bits_to_float(v.bits); }
  static bf16 store(float v) { return bf16{float_to_bf16_bits(v)}; }
};

inline bool is_half(DType d) { return d == DType::F16 || d == DType::BF16; }

inline Shape shape_of(const TensorView& v) { return Shape(v.dims, v.dims + (v.rank > 0 ? v.rank : 0)); }

inline std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}
inline std::string shape_str(const TensorView& v) { return shape_str(shape_of(v)); }

inline Status set_out(KernelContext& ctx, int i, DType dt, const Shape& s) {
  if (i >= ctx.num_outputs) return Status::Ok();
  if (s.size() > static_cast<size_t>(kMaxRank)) return ctx.error("output rank " + std::to_string(s.size()) + " exceeds 8");
  for (int64_t d : s)
    if (d < 0) return ctx.error("output would have a negative dim " + shape_str(s));
  TensorView& o = ctx.outputs[i];
  o.dtype = dt;
  o.rank = static_cast<int>(s.size());
  for (size_t d = 0; d < s.size(); ++d) o.dims[d] = s[d];
  return Status::Ok();
}

inline bool is_float(DType d) { return d == DType::F32; }
inline bool is_int(DType d) { return d == DType::I32 || d == DType::I64; }

inline Status need_dtype(const KernelContext& ctx, int i, std::initializer_list<DType> ok) {
  if (i >= ctx.num_inputs || !ctx.inputs[i].present()) return Status::Ok();
  for (DType d : ok)
    if (ctx.inputs[i].dtype == d) return Status::Ok();
  std::string names;
  for (DType d : ok) names += std::string(names.empty() ? "" : ", ") + dtype_name(d);
  return ctx.error("input " + std::to_string(i) + " has dtype " + dtype_name(ctx.inputs[i].dtype) + ", expected " + names);
}

inline Status need_rank(const KernelContext& ctx, int i, int lo, int hi) {
  const TensorView& v = ctx.inputs[i];
  if (v.rank < lo || v.rank > hi)
    return ctx.error("input " + std::to_string(i) + " has rank " + std::to_string(v.rank) + " (shape " +
                     shape_str(v) + "), expected " + std::to_string(lo) + (hi != lo ? " to " + std::to_string(hi) : ""));
  return Status::Ok();
}

// A shape function needs the values of an input that are not known yet (not a
// constant, not folded: computed at run time). Code kNotReady tells the interpreter
// to infer this op's shapes at invoke, when every input has its values.
inline Status value_at_run_time(const KernelContext& ctx, int i, const std::string& what) {
  Status s = ctx.error(what + " (input " + std::to_string(i) + ") is known only at run time");
  s.code = StatusCode::kNotReady;
  return s;
}

// Integer values of input i (kNotReady while they are known only at run time).
inline Status int_values(const KernelContext& ctx, int i, Shape* out, const char* what) {
  const TensorView& v = ctx.inputs[i];
  if (!v.data) return value_at_run_time(ctx, i, what);
  if (v.dtype != DType::I64 && v.dtype != DType::I32)
    return ctx.error(std::string(what) + " must be int64 or int32, got " + dtype_name(v.dtype));
  int64_t n = v.numel();
  if (n > (1 << 20)) return ctx.error(std::string(what) + " has too many values");
  out->resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k)
    (*out)[k] = v.dtype == DType::I64 ? v.as<int64_t>()[k] : v.as<int32_t>()[k];
  return Status::Ok();
}

inline Status float_scalar(const KernelContext& ctx, int i, float* out) {
  const TensorView& v = ctx.inputs[i];
  if (v.numel() < 1) return ctx.error("input " + std::to_string(i) + " must be a scalar");
  if (!v.data) return value_at_run_time(ctx, i, "the scalar");
  switch (v.dtype) {
    case DType::F32: *out = v.as<float>()[0]; break;
    case DType::I64: *out = static_cast<float>(v.as<int64_t>()[0]); break;
    case DType::I32: *out = static_cast<float>(v.as<int32_t>()[0]); break;
    default: return ctx.error("input " + std::to_string(i) + " has unsupported dtype");
  }
  return Status::Ok();
}

// Normalize axis into [0, rank); error if out of range.
inline Status norm_axis(const KernelContext& ctx, int64_t axis, int rank, int* out, const char* what = "axis") {
  if (axis < -rank || axis >= std::max(rank, 1) || (rank == 0 && axis != 0 && axis != -1))
    return ctx.error(std::string(what) + " " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  *out = static_cast<int>(axis < 0 ? axis + rank : axis);
  return Status::Ok();
}

// An axis that names a dimension to index (reduce, MVN): a rank-0 tensor has
// none, so norm_axis's scalar allowance (axis 0 or -1) does not apply.
inline Status dim_axis(const KernelContext& ctx, int64_t axis, int rank, int* out, const char* what = "axis") {
  if (rank == 0)
    return ctx.error(std::string(what) + " " + std::to_string(axis) + " out of range for rank 0");
  return norm_axis(ctx, axis, rank, out, what);
}

// Numpy broadcast of shapes.
inline Status broadcast(const KernelContext& ctx, const std::vector<Shape>& shapes, Shape* out) {
  size_t r = 0;
  for (const auto& s : shapes) r = std::max(r, s.size());
  out->assign(r, 1);
  for (size_t d = 0; d < r; ++d) {
    int64_t dim = 1;
    for (const auto& s : shapes) {
      if (d + s.size() < r) continue;
      int64_t x = s[d + s.size() - r];
      if (x == 1) continue;
      if (dim != 1 && x != dim) {
        std::string all;
        for (const auto& t : shapes) all += (all.empty() ? "" : " and ") + shape_str(t);
        return ctx.error("shapes " + all + " do not broadcast");
      }
      dim = x;
    }
    // a 0-size dim wins over 1
    for (const auto& s : shapes)
      if (d + s.size() >= r && s[d + s.size() - r] == 0) dim = 0;
    (*out)[d] = dim;
  }
  return Status::Ok();
}

// Element strides of `in` broadcast to `out` (0 along broadcast dims).
inline Shape bcast_strides(const Shape& in, const Shape& out) {
  Shape st(out.size(), 0);
  int64_t s = 1;
  for (size_t k = 0; k < in.size(); ++k) {
    size_t d = in.size() - 1 - k;
    size_t od = out.size() - 1 - k;
    st[od] = in[d] == 1 ? 0 : s;
    s *= in[d];
  }
  return st;
}

// Calls f(out_index, offsets[]) for every element of `out`, with the offset
// of each input (broadcast strides). Iterates the last dim in the inner loop.
template <int N, typename F>
inline void for_each_bcast(const Shape& out, const Shape (&strides)[N], F&& f) {
  int r = static_cast<int>(out.size());
  int64_t total = 1;
  for (int64_t d : out) total *= d;
  if (total == 0) return;
  std::vector<int64_t> idx(r, 0);
  int64_t off[N] = {};
  for (int64_t i = 0; i < total; ++i) {
    f(i, off);
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < out[d]) {
        for (int n = 0; n < N; ++n) off[n] += strides[n][d];
        break;
      }
      for (int n = 0; n < N; ++n) off[n] -= strides[n][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

inline Shape row_major_strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (int d = static_cast<int>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Infer: every output = input 0's dtype and shape.
inline Status infer_same(KernelContext& ctx) {
  for (int o = 0; o < ctx.num_outputs; ++o) {
    Status s = set_out(ctx, o, ctx.inputs[0].dtype, shape_of(ctx.inputs[0]));
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

inline Status infer_same_float(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  return infer_same(ctx);
}

// Copies bytes of input 0 to output 0 (reshape-like ops).
inline Status run_copy(KernelContext& ctx) {
  size_t n = static_cast<size_t>(ctx.inputs[0].numel()) * dtype_size(ctx.inputs[0].dtype);
  if (n && ctx.outputs[0].data != ctx.inputs[0].data) std::memmove(ctx.outputs[0].data, ctx.inputs[0].data, n);
  return Status::Ok();
}

// Family registration functions (one per file).
void register_elementwise(KernelRegistry& r);
void register_activations(KernelRegistry& r);
void register_conv(KernelRegistry& r);
void register_linalg(KernelRegistry& r);
void register_norm(KernelRegistry& r);
void register_pool(KernelRegistry& r);
void register_softmax(KernelRegistry& r);
void register_shape_ops(KernelRegistry& r);
void register_tensor_ops(KernelRegistry& r);
void register_reduce(KernelRegistry& r);
void register_detection(KernelRegistry& r);
void register_scatter(KernelRegistry& r);
void register_matrix(KernelRegistry& r);
void register_shrink(KernelRegistry& r);
void register_einsum(KernelRegistry& r);
void register_grid_sample(KernelRegistry& r);
void register_nms(KernelRegistry& r);
void register_quantize_linear(KernelRegistry& r);

}  // namespace ref
}  // namespace mobrt
