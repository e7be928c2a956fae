"""Reductions: Reduce{Mean,Sum,Max,Min,Prod,L1,L2,SumSquare,LogSumExp}, ArgMax/ArgMin, TopK.

ONNX opset 28 semantics. Reduce* take the axes as an optional int64 input:
absent or empty means "all axes", unless noop_with_empty_axes=1, which makes
the op the identity. A reduction over an empty set gives the op's identity
(0 for sums, 1 for Prod, -inf / the dtype's minimum for Max and LogSumExp,
+inf / maximum for Min). With noop_with_empty_axes, L1/L2/SumSquare/LogSumExp
still apply their element-wise part (|x|, |x|, x*x, x), as ONNX's function
definitions and onnxruntime do. float16/bfloat16 inputs accumulate in float32; the
output keeps the input dtype. ArgMax/ArgMin/TopK return int64 indices; ties go
to the lowest index (ArgMax/ArgMin: the highest with select_last_index=1).
"""
import numpy as np

from .registry import Attr, AttrKind, op
from .shape_ops import at_run_time, check_values, const_ints, fmt_shape, norm_axes, norm_axis, param_count, run_time_dim

_REDUCE_ATTRS = [Attr("keepdims", AttrKind.INT, 1), Attr("noop_with_empty_axes", AttrKind.INT, 0)]


def _reduce_infer(ctx):
    shape = ctx.shape(0)
    if at_run_time(ctx, 1) and param_count(ctx, 1, "the reduction axes"):
        # which axes shrink is known when the op runs; keepdims=0 drops as many as given
        if ctx.attrs["keepdims"]:
            return [(ctx.dtype(0), tuple(1 if d == 1 else run_time_dim(ctx, k) for k, d in enumerate(shape)))]
        rank = len(shape) - param_count(ctx, 1, "the reduction axes")
        if rank < 0:
            raise ctx.error(f"cannot reduce more axes than the input {fmt_shape(shape)} has")
        return [(ctx.dtype(0), tuple(run_time_dim(ctx, k) for k in range(rank)))]
    axes = [] if at_run_time(ctx, 1) else const_ints(ctx, 1, "the reduction axes")
    if not axes:
        if ctx.attrs["noop_with_empty_axes"]:
            return [(ctx.dtype(0), shape)]
        axes = list(range(len(shape)))
    axes = norm_axes(ctx, axes, len(shape))  # a scalar has no axis to name
    if ctx.attrs["keepdims"]:
        out = tuple(1 if k in axes else d for k, d in enumerate(shape))
    else:
        out = tuple(d for k, d in enumerate(shape) if k not in axes)
    return [(ctx.dtype(0), out)]


def _extreme(dtype, low):
    if dtype.kind == "f" or dtype.name == "bfloat16":
        return -np.inf if low else np.inf
    if dtype.kind == "b":
        return not low
    info = np.iinfo(dtype)
    return info.min if low else info.max


def _reducer(name, compute, empty, noop=None):
    """Register Reduce<name>: compute(x_wide, axes) on the accumulation dtype.

    `noop(x)` is what noop_with_empty_axes=1 with no axes returns: ONNX defines
    ReduceL1/L2/SumSquare/LogSumExp as element-wise op + ReduceSum, so only the
    summation is skipped (ReduceSumSquare gives x*x, ReduceL1 |x|, ...).
    """

    def reference(data, axes=None, *, keepdims, noop_with_empty_axes):
        check_values("Reduce" + name, [data, axes], {"keepdims": keepdims, "noop_with_empty_axes": noop_with_empty_axes})
        ax = None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
        if not ax:
            if noop_with_empty_axes:
                return data.copy() if noop is None else noop(data).astype(data.dtype)
            ax = list(range(data.ndim))
        ax = tuple(sorted(a + data.ndim if a < 0 else a for a in ax))
        out_shape = tuple(1 if k in ax else d for k, d in enumerate(data.shape))
        if not keepdims:
            out_shape = tuple(d for k, d in enumerate(data.shape) if k not in ax)
        if any(data.shape[a] == 0 for a in ax):  # reduction over an empty set
            value = empty(data.dtype) if callable(empty) else empty
            return np.full(out_shape, value, dtype=data.dtype)
        wide = data.astype(np.float32) if data.dtype.name in ("float16", "bfloat16") else data
        with np.errstate(all="ignore"):
            result = compute(wide, ax)
        return np.asarray(result).reshape(out_shape).astype(data.dtype, copy=False)

    reference.__name__ = "reduce_" + name.lower()
    reference.__doc__ = (
        f"Reduce{name} over `axes` (optional int64 input; absent/empty = all axes, or the "
        "identity when noop_with_empty_axes=1); keepdims=1 keeps reduced dims as 1."
    )
    op(f"Reduce{name}", inputs=["data", "axes?"], outputs=["reduced"], attrs=_REDUCE_ATTRS,
       infer=_reduce_infer)(reference)


def _sum(x, ax):
    # integer sums wrap in the input dtype, like a C kernel would
    return np.sum(x, axis=ax, dtype=x.dtype if x.dtype.kind in "iu" else None)


def _log_sum_exp(x, ax):
    x = x.astype(np.float64)
    top = np.max(x, axis=ax, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    return np.log(np.sum(np.exp(x - top), axis=ax, keepdims=True)) + top


_reducer("Sum", _sum, 0)
_reducer("Mean", lambda x, ax: np.mean(x, axis=ax), np.nan)
_reducer("Max", lambda x, ax: np.max(x, axis=ax), lambda dt: _extreme(dt, low=True))
_reducer("Min", lambda x, ax: np.min(x, axis=ax), lambda dt: _extreme(dt, low=False))
_reducer("Prod", lambda x, ax: np.prod(x, axis=ax, dtype=x.dtype), 1)
_reducer("L1", lambda x, ax: _sum(np.abs(x), ax), 0, noop=np.abs)
_reducer("L2", lambda x, ax: np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=ax)), 0,
         noop=np.abs)
_reducer("SumSquare", lambda x, ax: _sum(x * x, ax), 0, noop=lambda x: x * x)
_reducer("LogSumExp", _log_sum_exp, -np.inf, noop=lambda x: x)


# ---- ArgMax / ArgMin -----------------------------------------------------------


def _arg_infer(ctx):
    shape = ctx.shape(0)
    axis = norm_axis(ctx, ctx.attrs["axis"], len(shape))
    if isinstance(shape[axis], int) and shape[axis] == 0:
        raise ctx.error(f"cannot take {ctx.node.op} over the empty axis {axis} of "
                        f"{fmt_shape(shape)}")
    if ctx.attrs["keepdims"]:
        out = tuple(1 if k == axis else d for k, d in enumerate(shape))
    else:
        out = tuple(d for k, d in enumerate(shape) if k != axis)
    return [("int64", out)]


_ARG_ATTRS = [Attr("axis", AttrKind.INT, 0), Attr("keepdims", AttrKind.INT, 1),
              Attr("select_last_index", AttrKind.INT, 0)]


def _arg(fn, x, axis, keepdims, select_last_index):
    axis = axis + x.ndim if axis < 0 else axis
    if select_last_index:
        idx = x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis)
    else:
        idx = fn(x, axis=axis)
    idx = idx.astype(np.int64)
    return np.expand_dims(idx, axis) if keepdims else idx


@op("ArgMax", inputs=["data"], outputs=["reduced"], attrs=_ARG_ATTRS, infer=_arg_infer)
def argmax(x, axis, keepdims, select_last_index):
    """int64 index of the largest element along `axis` (first one, or last with
    select_last_index=1)."""
    return _arg(np.argmax, x, axis, keepdims, select_last_index)


@op("ArgMin", inputs=["data"], outputs=["reduced"], attrs=_ARG_ATTRS, infer=_arg_infer)
def argmin(x, axis, keepdims, select_last_index):
    """int64 index of the smallest element along `axis` (first one, or last with
    select_last_index=1)."""
    return _arg(np.argmin, x, axis, keepdims, select_last_index)


# ---- TopK --------------------------------------------------------------------------


def _topk_infer(ctx):
    shape = list(ctx.shape(0))
    axis = norm_axis(ctx, ctx.attrs["axis"], len(shape))
    if at_run_time(ctx, 1):
        if param_count(ctx, 1, "TopK's K") != 1:
            raise ctx.error(f"K must be one integer, got shape {fmt_shape(ctx.shape(1))}")
        shape[axis] = run_time_dim(ctx, axis)
        return [(ctx.dtype(0), tuple(shape)), ("int64", tuple(shape))]
    k = const_ints(ctx, 1, "TopK's K")
    if len(k) != 1 or k[0] < 0:
        raise ctx.error(f"K must be one non-negative integer, got {k}")
    if isinstance(shape[axis], int) and k[0] > shape[axis]:
        raise ctx.error(f"K={k[0]} exceeds dim {axis} of input shape {fmt_shape(shape)}")
    shape[axis] = k[0]
    return [(ctx.dtype(0), tuple(shape)), ("int64", tuple(shape))]


@op("TopK", inputs=["X", "K"], outputs=["Values", "Indices"],
    attrs=[Attr("axis", AttrKind.INT, -1), Attr("largest", AttrKind.INT, 1),
           Attr("sorted", AttrKind.INT, 1)],
    infer=_topk_infer)
def topk(x, k, axis, largest, sorted):
    """The K (int64 1-element input) largest (or smallest, largest=0) elements along
    `axis` and their int64 indices, in sorted order; equal values keep the lower
    index first (so `sorted=0` also returns them sorted, which ONNX allows)."""
    check_values("TopK", [x, k], {"axis": axis, "largest": largest, "sorted": sorted}, 2)
    k = int(np.asarray(k).reshape(-1)[0])
    axis = axis + x.ndim if axis < 0 else axis
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"TopK: K={k} is outside [0, {n}] (dim {axis} of {x.shape})")
    if largest:
        # stable ascending sort of the reversed axis, read backwards: descending
        # values, and among equal values increasing original index
        order = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        order = n - 1 - np.flip(order, axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    indices = np.take(order, np.arange(k), axis=axis).astype(np.int64)
    return np.take_along_axis(x, indices, axis=axis), indices
