// pool.cpp: reference MaxPool (float32, int8, uint8; with optional int64 Indices, row- or column-major
// by storage_order), AveragePool,
// GlobalAveragePool, GlobalMaxPool. Semantics: mobconv/ops/pool.py
// (AveragePool divisor = taps inside the input, or inside input + explicit
// pads with count_include_pad, computed per spatial dim; ceil-mode overhang
// never counts). Direct loops over windows.
#include "cpu/reference/window.h"

namespace mobrt {
namespace ref {
namespace {

// onnxruntime's rule for every pool (mobconv/ops/pool.py): an empty X is fine only with
// N = 0; no channels or an empty window is refused.
Status only_batch_may_be_empty(const KernelContext& ctx, const TensorView& x) {
  if (x.dims[0] == 0) return Status::Ok();
  for (int d = 1; d < x.rank; ++d)
    if (x.dims[d] == 0)
      return ctx.error("X " + shape_str(x) + " has an empty " + (x.dims[1] == 0 ? "channel" : "spatial") +
                       " dim: only the batch dim N of a pooling input may be 0");
  return Status::Ok();
}

Status pool_window(const KernelContext& ctx, Window* w) {
  Status s = ctx.op_type == fb::OpType_MaxPool ? need_dtype(ctx, 0, {DType::F32, DType::I8, DType::U8})
                                               : need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  if (x.rank < 3 || x.rank > 5) return ctx.error("X must have rank 3 to 5, got " + shape_str(x));
  s = only_batch_may_be_empty(ctx, x);
  if (!s.ok()) return s;
  if (!ctx.attrs->has("kernel_shape")) return ctx.error("kernel_shape is required");
  int64_t order = ctx.op_type == fb::OpType_MaxPool ? ctx.attrs->get_int("storage_order", 0) : 0;
  if (order != 0 && order != 1) return ctx.error("storage_order must be 0 or 1, got " + std::to_string(order));
  return make_window(ctx, x, ctx.attrs->get_ints("kernel_shape"), ctx.attrs->get_int("ceil_mode", 0) != 0, w);
}

Status infer_pool(KernelContext& ctx) {
  Window w;
  Status s = pool_window(ctx, &w);
  if (!s.ok()) return s;
  Shape out = window_out_shape(ctx.inputs[0], ctx.inputs[0].dims[1], w);
  s = set_out(ctx, 0, ctx.inputs[0].dtype, out);
  if (s.ok()) s = set_out(ctx, 1, DType::I64, out);
  return s;
}

template <typename T>
Status run_pool_t(KernelContext& ctx) {
  Window w;
  Status s = pool_window(ctx, &w);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  bool is_max = ctx.op_type == fb::OpType_MaxPool;
  bool include_pad = ctx.attrs->get_int("count_include_pad", 0) != 0;
  bool col_major = is_max && ctx.attrs->get_int("storage_order", 0) == 1;
  int64_t nc = x.dims[0] * x.dims[1];
  const int64_t* I = w.in; const int64_t* O = w.out;
  int64_t isz = I[0] * I[1] * I[2], osz = O[0] * O[1] * O[2];
  const T* px = x.as<T>();
  T* py = ctx.outputs[0].as<T>();
  int64_t* pidx = ctx.num_outputs > 1 && ctx.outputs[1].data ? ctx.outputs[1].as<int64_t>() : nullptr;
  ctx.parallel_for(nc, [&](int64_t b, int64_t e, int) {
    for (int64_t p = b; p < e; ++p) {
      const T* xc = px + p * isz;
      for (int64_t o0 = 0; o0 < O[0]; ++o0)
        for (int64_t o1 = 0; o1 < O[1]; ++o1)
          for (int64_t o2 = 0; o2 < O[2]; ++o2) {
            int64_t oi = (o0 * O[1] + o1) * O[2] + o2;
            T best = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                          : std::numeric_limits<T>::lowest();
            int64_t best_i = -1;
            double sum = 0;
            const int64_t o[3] = {o0, o1, o2};
            const int64_t count = is_max ? 1 : window_count(w, o, include_pad);
            for_each_tap(w, o0, o1, o2, [&](int64_t ii, int64_t) {
              T v = xc[ii];
              if (is_max) {
                bool nan_wins = false;
                if constexpr (std::is_floating_point<T>::value) nan_wins = std::isnan(v) && !std::isnan(best);
                if (v > best || best_i < 0 || nan_wins) { best = v; best_i = ii; }
              } else {
                sum += v;
              }
            });
            if (is_max) {
              py[p * osz + oi] = best;
              if (pidx) {
                int64_t bi = best_i < 0 ? 0 : best_i;
                if (col_major) {  // spatial position numbered column-major (dims padded in front with 1s)
                  int64_t i0 = bi / (I[1] * I[2]), i1 = bi / I[2] % I[1], i2 = bi % I[2];
                  bi = (i2 * I[1] + i1) * I[0] + i0;
                }
                pidx[p * osz + oi] = p * isz + bi;
              }
            } else {
              py[p * osz + oi] = static_cast<T>(sum / static_cast<double>(std::max<int64_t>(count, 1)));
            }
          }
    }
  });
  return Status::Ok();
}

Status run_pool(KernelContext& ctx) {
  switch (ctx.inputs[0].dtype) {
    case DType::I8: return run_pool_t<int8_t>(ctx);
    case DType::U8: return run_pool_t<uint8_t>(ctx);
    default: return run_pool_t<float>(ctx);
  }
}

Status infer_global(KernelContext& ctx) {
  Status s = need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  if (x.rank < 2) return ctx.error("X must have rank >= 2, got " + shape_str(x));
  s = only_batch_may_be_empty(ctx, x);
  if (!s.ok()) return s;
  Shape out = shape_of(x);
  for (int d = 2; d < x.rank; ++d) out[d] = 1;
  return set_out(ctx, 0, DType::F32, out);
}

Status run_global(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  int64_t nc = x.dims[0] * x.dims[1], inner = nc ? x.numel() / nc : 0;
  bool is_max = ctx.op_type == fb::OpType_GlobalMaxPool;
  const float* px = x.as<float>();
  float* py = ctx.outputs[0].as<float>();
  for (int64_t p = 0; p < nc; ++p) {
    const float* xc = px + p * inner;
    if (is_max) {
      float m = -INFINITY;
      for (int64_t j = 0; j < inner; ++j) m = (xc[j] > m || std::isnan(xc[j])) ? xc[j] : m;
      py[p] = m;
    } else {
      double s = 0;
      for (int64_t j = 0; j < inner; ++j) s += xc[j];
      py[p] = static_cast<float>(s / static_cast<double>(inner));  // no elements: NaN, as numpy's mean
    }
  }
  return Status::Ok();
}

}  // namespace

void register_pool(KernelRegistry& r) {
  reg(r, fb::OpType_MaxPool, DType::F32, "max_pool_f32_reference", infer_pool, run_pool);
  reg(r, fb::OpType_MaxPool, DType::I8, "max_pool_i8_reference", infer_pool, run_pool);
  reg(r, fb::OpType_MaxPool, DType::U8, "max_pool_u8_reference", infer_pool, run_pool);
  reg(r, fb::OpType_AveragePool, DType::F32, "average_pool_f32_reference", infer_pool, run_pool);
  reg(r, fb::OpType_GlobalAveragePool, DType::F32, "global_average_pool_f32_reference", infer_global, run_global);
  reg(r, fb::OpType_GlobalMaxPool, DType::F32, "global_max_pool_f32_reference", infer_global, run_global);
}

}  // namespace ref
}  // namespace mobrt
