"""Matrix-building ops: Trilu, EyeLike, OneHot (ONNX opset 28).

Trilu keeps the upper (upper=1) or lower triangle of the last two dims,
offset by the diagonal k (an optional int64 scalar input), and zeroes the
rest. EyeLike makes a 2-D tensor of the input's shape with ones on diagonal k.
OneHot expands indices into a new `axis` of size depth.
"""
import numpy as np

from .registry import Attr, AttrKind, op, same_as_input
from .shape_ops import check_values, fmt_shape, norm_axis, param_count, run_time_dim
from .tensor_ops import ONNX_DTYPES, numpy_dtype


# ---- Trilu -------------------------------------------------------------------------


def _trilu_infer(ctx):
    if len(ctx.shape(0)) < 2:
        raise ctx.error(f"input {fmt_shape(ctx.shape(0))} must have rank >= 2")
    return [(ctx.dtype(0), ctx.shape(0))]


@op("Trilu", inputs=["input", "k?"], outputs=["output"],
    attrs=[Attr("upper", AttrKind.INT, 1)], infer=_trilu_infer)
def trilu(x, k=None, upper=1):
    """upper=1: keep x[..., i, j] where j - i >= k; upper=0: keep where j - i <= k;
    other elements are 0. k (int64 scalar, default 0) may be negative or beyond the matrix."""
    k = 0 if k is None or np.size(k) == 0 else int(np.asarray(k).reshape(-1)[0])
    return np.triu(x, k) if upper else np.tril(x, k)


# ---- EyeLike -------------------------------------------------------------------------------


def _eye_dtype(dtype_attr, input_dtype, fail):
    if dtype_attr == 0:
        return input_dtype
    name = ONNX_DTYPES.get(dtype_attr)
    from ..ir.graph import DTYPES

    if name not in DTYPES:
        raise fail(f"dtype {dtype_attr} ({name or 'unknown'}) is not an IR dtype "
                   f"({', '.join(DTYPES)})")
    return name


def _eyelike_infer(ctx):
    if len(ctx.shape(0)) != 2:
        raise ctx.error(f"input {fmt_shape(ctx.shape(0))} must be 2-D")
    return [(_eye_dtype(ctx.attrs["dtype"], ctx.dtype(0), ctx.error), ctx.shape(0))]


@op("EyeLike", inputs=["input"], outputs=["output"],
    attrs=[Attr("dtype", AttrKind.INT, 0), Attr("k", AttrKind.INT, 0)], infer=_eyelike_infer)
def eye_like(x, dtype, k):
    """Ones where j - i == k, zeros elsewhere, in the input's 2-D shape. dtype is an
    ONNX TensorProto enum value (0 = the input's dtype); the input's values are unused."""
    out = numpy_dtype(dtype) if dtype else x.dtype
    return np.eye(x.shape[0], x.shape[1], k=k).astype(out)


# ---- OneHot -----------------------------------------------------------------------------


def _onehot_infer(ctx):
    shape = tuple(ctx.shape(0))
    depth = ctx.const(1)
    axis = norm_axis(ctx, ctx.attrs["axis"], len(shape) + 1)
    if depth is None:  # known when the op runs
        if param_count(ctx, 1, "depth") != 1 or len(ctx.shape(1)) > 1:
            raise ctx.error(f"depth must be a scalar or a 1-element vector, got shape {fmt_shape(ctx.shape(1))}")
        depth = run_time_dim(ctx, axis)
    else:
        if np.size(depth) != 1 or np.ndim(depth) > 1:
            raise ctx.error(f"depth must be a scalar or a 1-element vector, got shape {fmt_shape(np.shape(depth))}")
        if not np.isfinite(np.asarray(depth, dtype=np.float64)).all():
            raise ctx.error(f"depth {np.asarray(depth).reshape(-1)[0]} must be a finite number")
        depth = _depth(depth)
        if depth < 1:
            raise ctx.error(f"depth {depth} must be positive")
    values = tuple(ctx.shape(2))
    if len(values) != 1 or (isinstance(values[0], int) and values[0] != 2):
        raise ctx.error(f"values {fmt_shape(values)} must hold 2 elements [off, on]")
    return [(ctx.dtype(2), shape[:axis] + (depth,) + shape[axis:])]


def _depth(d):
    return int(np.asarray(d).astype(np.float64).reshape(-1)[0])


@op("OneHot", inputs=["indices", "depth", "values"], outputs=["output"],
    attrs=[Attr("axis", AttrKind.INT, -1)], infer=_onehot_infer)
def one_hot(indices, depth, values, axis):
    """output has a new dim of size depth at `axis` (in [-r-1, r]); output[.., j, ..] =
    values[1] where j == indices[..] and values[0] elsewhere. Indices (any numeric
    dtype, floats truncated) may be negative (+depth); out-of-range ones give all-off rows.
    depth is a scalar (any numeric dtype, truncated)."""
    check_values("OneHot", [indices, depth, values], {"axis": axis})
    depth = _depth(depth)
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + depth, idx)
    axis = axis + idx.ndim + 1 if axis < 0 else axis
    vals = np.asarray(values).reshape(-1)
    hot = np.expand_dims(idx, axis) == np.arange(depth).reshape(
        [depth if d == axis else 1 for d in range(idx.ndim + 1)])
    return np.where(hot, vals[1], vals[0]).astype(vals.dtype)
