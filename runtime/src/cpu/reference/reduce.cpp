// reduce.cpp: reference ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd
// ReduceL1 ReduceL2 ReduceSumSquare ReduceLogSumExp (axes as input,
// keepdims, noop_with_empty_axes) and ArgMax ArgMin (int64 output,
// select_last_index). float32, plus int8/uint8/int16/int32/int64 for
// Sum/Max/Min/Prod/Arg* and bool for Max/Min. Max/Min of an empty set give
// the identity (-inf / +inf, or the dtype's lowest / max).
#include "cpu/reference/ref.h"

namespace mobrt {
namespace ref {
namespace {

bool is_arg(OpType op) { return op == fb::OpType_ArgMax || op == fb::OpType_ArgMin; }

Status reduce_axes(const KernelContext& ctx, std::vector<bool>* red, bool* noop) {
  const TensorView& x = ctx.inputs[0];
  red->assign(x.rank, false);
  *noop = false;
  if (is_arg(ctx.op_type)) {
    int a;
    Status s = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x.rank, &a);
    if (!s.ok()) return s;
    if (x.rank == 0) return ctx.error("input must have rank >= 1");
    if (x.dims[a] == 0) return ctx.error("cannot take an arg over an empty axis");
    (*red)[a] = true;
    return Status::Ok();
  }
  Shape axes;
  if (ctx.num_inputs > 1 && ctx.inputs[1].present()) {
    Status s = int_values(ctx, 1, &axes, "axes");
    if (!s.ok()) return s;
  }
  if (axes.empty()) {
    if (ctx.attrs->get_int("noop_with_empty_axes", 0)) { *noop = true; return Status::Ok(); }
    red->assign(x.rank, true);
    return Status::Ok();
  }
  for (int64_t a : axes) {
    int n;
    Status s = dim_axis(ctx, a, x.rank, &n);
    if (!s.ok()) return s;
    if ((*red)[n]) return ctx.error("axes contain the repeated axis " + std::to_string(n));  // as the reference
    (*red)[n] = true;
  }
  return Status::Ok();
}

Status infer_reduce(KernelContext& ctx) {
  OpType op = ctx.op_type;
  bool int_ok = op == fb::OpType_ReduceSum || op == fb::OpType_ReduceMax || op == fb::OpType_ReduceMin ||
                op == fb::OpType_ReduceProd || is_arg(op);
  bool minmax = op == fb::OpType_ReduceMax || op == fb::OpType_ReduceMin;
  Status s = minmax ? need_dtype(ctx, 0, {DType::F32, DType::I8, DType::U8, DType::I16, DType::I32, DType::I64, DType::BOOL})
             : int_ok ? need_dtype(ctx, 0, {DType::F32, DType::I8, DType::U8, DType::I16, DType::I32, DType::I64})
                      : need_dtype(ctx, 0, {DType::F32});
  if (!s.ok()) return s;
  std::vector<bool> red;
  bool noop;
  s = reduce_axes(ctx, &red, &noop);
  if (!s.ok()) return s;
  const TensorView& x = ctx.inputs[0];
  bool keep = ctx.attrs->get_int("keepdims", 1) != 0;
  Shape out;
  for (int d = 0; d < x.rank; ++d) {
    if (!red[d] || noop) out.push_back(x.dims[d]);
    else if (keep) out.push_back(1);
  }
  return set_out(ctx, 0, is_arg(op) ? DType::I64 : x.dtype, out);
}

template <typename T>
Status run_reduce_t(KernelContext& ctx) {
  const TensorView& x = ctx.inputs[0];
  std::vector<bool> red;
  bool noop;
  reduce_axes(ctx, &red, &noop);
  OpType op = ctx.op_type;
  if (noop) {
    // noop_with_empty_axes skips only the summation: ONNX defines ReduceL1/L2/SumSquare
    // as an element-wise |x| / |x| / x*x followed by ReduceSum (numpy reference: the same)
    if (op != fb::OpType_ReduceL1 && op != fb::OpType_ReduceL2 && op != fb::OpType_ReduceSumSquare)
      return run_copy(ctx);
    if constexpr (std::is_floating_point<T>::value) {  // (these three are float32-only)
      const T* pin = x.as<T>();
      T* pout = ctx.outputs[0].as<T>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i)
        pout[i] = op == fb::OpType_ReduceSumSquare ? pin[i] * pin[i] : std::fabs(pin[i]);
      return Status::Ok();
    }
    return ctx.error("unsupported dtype");
  }
  Shape xs = shape_of(x), ks = xs;
  for (int d = 0; d < x.rank; ++d) if (red[d]) ks[d] = 1;
  int64_t nk = numel(ks);
  Shape st[1] = {bcast_strides(ks, xs)};
  const T* px = x.as<T>();
  if (is_arg(op)) {
    int axis = 0;
    for (int d = 0; d < x.rank; ++d) if (red[d]) axis = d;
    bool last = ctx.attrs->get_int("select_last_index", 0) != 0;
    bool is_max = op == fb::OpType_ArgMax;
    std::vector<T> best(nk);
    std::vector<int64_t> arg(nk, -1);
    Shape xst = row_major_strides(xs);
    for_each_bcast<1>(xs, st, [&](int64_t i, const int64_t* o) {
      T v = px[i];
      int64_t k = (i / xst[axis]) % xs[axis];
      int64_t& a = arg[o[0]];
      bool better = a < 0 || (is_max ? v > best[o[0]] : v < best[o[0]]) || (last && v == best[o[0]]);
      if constexpr (std::is_floating_point<T>::value) {
        // NaN wins; among NaNs the first, or the last with select_last_index (numpy reference)
        if (a >= 0 && std::isnan(best[o[0]])) better = last && std::isnan(v);
        else if (std::isnan(v)) better = true;
      }
      if (better) { best[o[0]] = v; a = k; }
    });
    std::memcpy(ctx.outputs[0].data, arg.data(), nk * sizeof(int64_t));
    return Status::Ok();
  }
  std::vector<double> acc(nk, 0);
  std::vector<T> ext(nk);
  std::vector<bool> init(nk, false);
  bool prod = op == fb::OpType_ReduceProd;
  if (prod) std::fill(acc.begin(), acc.end(), 1.0);
  std::vector<double> mx;
  if (op == fb::OpType_ReduceLogSumExp) {
    mx.assign(nk, -INFINITY);
    for_each_bcast<1>(xs, st, [&](int64_t i, const int64_t* o) { mx[o[0]] = std::max<double>(mx[o[0]], px[i]); });
    for (auto& m : mx) if (!std::isfinite(m)) m = 0;
  }
  std::vector<int64_t> cnt(nk, 0);
  for_each_bcast<1>(xs, st, [&](int64_t i, const int64_t* o) {
    double v = static_cast<double>(px[i]);
    int64_t k = o[0];
    cnt[k]++;
    switch (op) {
      case fb::OpType_ReduceMax:
        if (!init[k] || px[i] > ext[k] || (std::is_floating_point<T>::value && v != v)) ext[k] = px[i];
        init[k] = true;
        break;
      case fb::OpType_ReduceMin:
        if (!init[k] || px[i] < ext[k] || (std::is_floating_point<T>::value && v != v)) ext[k] = px[i];
        init[k] = true;
        break;
      case fb::OpType_ReduceProd:
        // floats multiply in T, in order, as np.prod(dtype=x.dtype) does: a partial product
        // past FLT_MAX is inf (and inf * 0 NaN) where the reference's is
        if constexpr (std::is_floating_point<T>::value) acc[k] = static_cast<T>(static_cast<T>(acc[k]) * px[i]);
        else acc[k] *= v;
        break;
      case fb::OpType_ReduceL1: acc[k] += std::fabs(v); break;
      case fb::OpType_ReduceL2: case fb::OpType_ReduceSumSquare: acc[k] += v * v; break;
      case fb::OpType_ReduceLogSumExp: acc[k] += std::exp(v - mx[k]); break;
      default: acc[k] += v; break;
    }
  });
  T* py = ctx.outputs[0].as<T>();
  for (int64_t k = 0; k < nk; ++k) {
    double r = acc[k];
    switch (op) {
      case fb::OpType_ReduceMax: case fb::OpType_ReduceMin:
        // an empty set reduces to the identity: -inf/lowest for Max, +inf/max for Min (opset 20)
        if (!init[k]) {
          if constexpr (std::is_floating_point<T>::value) py[k] = op == fb::OpType_ReduceMax ? -INFINITY : INFINITY;
          else py[k] = op == fb::OpType_ReduceMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
        } else {
          py[k] = ext[k];
        }
        continue;
      case fb::OpType_ReduceMean: r = r / static_cast<double>(cnt[k]); break;
      case fb::OpType_ReduceL2: r = std::sqrt(r); break;
      case fb::OpType_ReduceLogSumExp: r = std::log(r) + mx[k]; break;
      default: break;
    }
    if constexpr (std::is_floating_point<T>::value) py[k] = static_cast<T>(r);
    else {
      // integer sums/products: recompute exactly with wrap-around
      py[k] = static_cast<T>(static_cast<int64_t>(r));
    }
  }
  if constexpr (!std::is_floating_point<T>::value) {
    if (op == fb::OpType_ReduceSum || op == fb::OpType_ReduceProd) {
      std::vector<uint64_t> ex(nk, prod ? 1 : 0);
      for_each_bcast<1>(xs, st, [&](int64_t i, const int64_t* o) {
        uint64_t v = static_cast<uint64_t>(static_cast<int64_t>(px[i]));
        ex[o[0]] = prod ? ex[o[0]] * v : ex[o[0]] + v;
      });
      for (int64_t k = 0; k < nk; ++k) py[k] = static_cast<T>(static_cast<int64_t>(ex[k]));
    }
  }
  return Status::Ok();
}

Status run_reduce(KernelContext& ctx) {
  switch (ctx.inputs[0].dtype) {
    case DType::F32: return run_reduce_t<float>(ctx);
    case DType::I8: return run_reduce_t<int8_t>(ctx);
    case DType::U8: return run_reduce_t<uint8_t>(ctx);
    case DType::I16: return run_reduce_t<int16_t>(ctx);
    case DType::I32: return run_reduce_t<int32_t>(ctx);
    case DType::I64: return run_reduce_t<int64_t>(ctx);
    case DType::BOOL: return run_reduce_t<bool>(ctx);
    default: return ctx.error("unsupported dtype");
  }
}

}  // namespace

void register_reduce(KernelRegistry& r) {
  const OpType ops[] = {fb::OpType_ReduceMean, fb::OpType_ReduceSum, fb::OpType_ReduceMax, fb::OpType_ReduceMin,
                        fb::OpType_ReduceProd, fb::OpType_ReduceL1, fb::OpType_ReduceL2, fb::OpType_ReduceSumSquare,
                        fb::OpType_ReduceLogSumExp, fb::OpType_ArgMax, fb::OpType_ArgMin};
  for (OpType op : ops) reg(r, op, DType::Any, "reduce_reference", infer_reduce, run_reduce);
}

}  // namespace ref
}  // namespace mobrt
