"""Indexing ops: Slice, Pad, Gather, GatherElements, CumSum (ONNX opset 28).

Slice and Pad take their parameters as tensor inputs (starts/ends/axes/steps;
pads/constant_value/axes) and need them constant for shape inference. Gather
and GatherElements accept negative indices (counted from the end of the axis).
CumSum scans along an axis given as a scalar input.
"""
import numpy as np

from .registry import Attr, AttrKind, op, same_as_input
from .shape_ops import (at_run_time, check_values, const_ints, dim_add, fmt_shape, norm_axes, norm_axis, param_count,
                        run_time_dim)

_BIG = 2**31 - 1  # ends at or beyond this mean "to the end" (INT_MAX/INT64_MAX in exports)


# ---- Slice -----------------------------------------------------------------------


def _slice_bounds(dim, start, end, step):
    """ONNX Slice clamping for one axis of integer size `dim`: (start, end) to use."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


def _slice_len(start, end, step):
    return max(0, -((start - end) // step)) if step > 0 else max(0, -((end - start) // -step))


def _slice_params(rank, starts, ends, axes, steps, error):
    if len(starts) != len(ends):
        raise error(f"starts {starts} and ends {ends} must have the same length")
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(axes) == len(steps) == len(starts):
        raise error(f"starts, ends, axes and steps must have one entry each per sliced axis "
                    f"(got {len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})")
    if 0 in steps:
        raise error(f"steps {steps} must not contain 0")
    return axes, steps


def _symbolic_slice_dim(dim, start, end, step):
    """Output size along a symbolic dim, assuming the symbol is at least as large as any
    explicit non-negative bound (the usual case: slicing the batch or sequence dim), and
    below _BIG: a start at or before -_BIG means "from the beginning", an end there means
    "before the beginning" (an empty slice), as ends at or beyond _BIG mean "to the end"."""
    if step == 1:
        if end <= -_BIG:
            return 0
        if start <= -_BIG:
            start = 0
        if start >= 0 and end >= _BIG:
            return dim_add(dim, -start)
        if start < 0 and end >= _BIG:
            return -start
        if (start >= 0) == (end >= 0) and end < _BIG:
            return max(end - start, 0)
        if start >= 0 > end:
            return dim_add(dim, end - start)
    if step == -1 and (start == -1 or start >= _BIG) and end <= -_BIG:  # full reversal
        return dim
    return f"slice({dim},{start},{end},{step})"


def _run_time_axes(ctx, rank, axes_input, count, what):
    """The axes a Slice/Pad with run-time parameters changes: its constant `axes` input
    (or 0..count-1 when absent), or every axis when the axes too are known only at run time."""
    if at_run_time(ctx, axes_input):
        return list(range(rank))
    axes = const_ints(ctx, axes_input, what)
    return norm_axes(ctx, list(range(count)) if axes is None else axes, rank)


def _slice_infer(ctx):
    shape = list(ctx.shape(0))
    if any(at_run_time(ctx, i) for i in (1, 2, 3, 4)):
        counts = [param_count(ctx, i, f"Slice's {w}") for i, w in
                  ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")) if ctx.shape(i) is not None]
        if len(set(counts)) != 1:
            raise ctx.error(f"starts, ends, axes and steps must have one entry each per sliced axis "
                            f"(got {', '.join(str(c) for c in counts)})")
        axes = _run_time_axes(ctx, len(shape), 3, counts[0], "Slice's axes")
        return [(ctx.dtype(0), tuple(run_time_dim(ctx, k) if k in axes else d for k, d in enumerate(shape)))]
    starts = const_ints(ctx, 1, "Slice's starts")
    ends = const_ints(ctx, 2, "Slice's ends")
    axes = const_ints(ctx, 3, "Slice's axes")
    steps = const_ints(ctx, 4, "Slice's steps")
    axes, steps = _slice_params(len(shape), starts, ends, axes, steps, ctx.error)
    axes = norm_axes(ctx, axes, len(shape))
    for a, s, e, st in zip(axes, starts, ends, steps):
        if isinstance(shape[a], str):
            shape[a] = _symbolic_slice_dim(shape[a], s, e, st)
        else:
            shape[a] = _slice_len(*_slice_bounds(shape[a], s, e, st), st)
    return [(ctx.dtype(0), tuple(shape))]


@op("Slice", inputs=["data", "starts", "ends", "axes?", "steps?"], outputs=["output"],
    infer=_slice_infer)
def slice_(x, starts, ends, axes=None, steps=None):
    """Take data[start:end:step] along each listed axis (all int32/int64 1-D inputs).

    Negative starts/ends count from the end of the axis; then for step > 0 both
    clamp to [0, dim], for step < 0 start clamps to [0, dim-1] and end to
    [-1, dim-1] (-1 meaning "through element 0"). axes default to 0..n-1 and
    may be negative; steps default to 1.
    """
    check_values("Slice", [x, starts, ends, axes, steps], {})
    as_list = lambda v: None if v is None else [int(i) for i in np.asarray(v).reshape(-1)]
    starts, ends, axes, steps = map(as_list, (starts, ends, axes, steps))

    def fail(msg):
        return ValueError(f"Slice: {msg}")

    axes, steps = _slice_params(x.ndim, starts, ends, axes, steps, fail)
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        a = a + x.ndim if a < 0 else a
        s, e = _slice_bounds(x.shape[a], s, e, st)
        index[a] = slice(s, None if e < 0 else e, st)
    return x[tuple(index)].copy()


# ---- Pad ---------------------------------------------------------------------------

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _pad_axes(rank, pads, axes, error):
    axes = list(range(rank)) if axes is None else axes
    if len(pads) != 2 * len(axes):
        raise error(f"pads {pads} must hold 2 values per padded axis ({len(axes)} axes: "
                    "all begins, then all ends)")
    return axes


def _pad_infer(ctx):
    shape = list(ctx.shape(0))
    mode = ctx.attrs["mode"]
    if mode not in _PAD_MODES:
        raise ctx.error(f"mode {mode!r} is not one of {', '.join(_PAD_MODES)}")
    if at_run_time(ctx, 1) or at_run_time(ctx, 3):
        count = param_count(ctx, 1, "Pad's pads")
        if count % 2:
            raise ctx.error(f"pads must hold 2 values per padded axis, got {count}")
        axes = _run_time_axes(ctx, len(shape), 3, count // 2, "Pad's axes")
        if not at_run_time(ctx, 3) and count != 2 * len(axes):
            raise ctx.error(f"pads ({count} values) must hold 2 values per padded axis ({len(axes)} axes)")
        return [(ctx.dtype(0), tuple(run_time_dim(ctx, k) if k in axes else d for k, d in enumerate(shape)))]
    pads = const_ints(ctx, 1, "Pad's pads")
    axes = _pad_axes(len(shape), pads, const_ints(ctx, 3, "Pad's axes"), ctx.error)
    axes = norm_axes(ctx, axes, len(shape))
    n = len(axes)
    for k, a in enumerate(axes):
        before, after = pads[k], pads[k + n]
        new = dim_add(shape[a], before, after)
        if isinstance(new, int) and new < 0:
            raise ctx.error(f"pads {pads} remove more than dim {a} of input shape "
                            f"{fmt_shape(shape)}")
        if mode in ("reflect", "edge", "wrap") and isinstance(shape[a], int) and (before > 0 or after > 0) \
                and shape[a] - max(-before, 0) - max(-after, 0) <= 0:
            raise ctx.error(f"{mode} padding needs a non-empty dim {a} after cropping "
                            f"(input {fmt_shape(shape)}, pads {pads})")
        shape[a] = new
    return [(ctx.dtype(0), tuple(shape))]


@op("Pad", inputs=["data", "pads", "constant_value?", "axes?"], outputs=["output"],
    attrs=[Attr("mode", AttrKind.STRING, "constant")], infer=_pad_infer)
def pad(x, pads, constant_value=None, axes=None, *, mode):
    """Pad (or, with negative pads, crop) the listed axes (default all).

    pads (int64) = [begin_0, ..., begin_n-1, end_0, ..., end_n-1] per listed axis.
    Modes: constant (constant_value, default 0), reflect (mirror without repeating
    the edge), edge (repeat the edge), wrap (circular). Negative pads crop first
    (as onnxruntime does); a crop larger than the dim eats into the other side's
    padding, so the output dim is always dim + begin + end.
    """
    check_values("Pad", [x, pads, constant_value, axes], {"mode": mode})
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]

    def fail(msg):
        return ValueError(f"Pad: {msg}")

    axes = [a + x.ndim if a < 0 else a for a in _pad_axes(x.ndim, pads, axes, fail)]
    if mode not in _PAD_MODES:
        raise fail(f"mode {mode!r} is not one of {', '.join(_PAD_MODES)}")
    n = len(axes)
    widths = [(0, 0)] * x.ndim
    crop = [slice(None)] * x.ndim
    for k, a in enumerate(axes):
        before, after = pads[k], pads[k + n]
        cut_b, cut_e = max(-before, 0), max(-after, 0)
        owed = max(cut_b + cut_e - x.shape[a], 0)  # cropped past the input: taken from the padding
        add_b, add_e = max(before, 0), max(after, 0)
        take = min(owed, add_b)
        widths[a] = (add_b - take, add_e - (owed - take))
        crop[a] = slice(min(cut_b, x.shape[a]), max(x.shape[a] - cut_e, min(cut_b, x.shape[a])))
    x = x[tuple(crop)]
    if mode == "constant":
        value = 0 if constant_value is None or np.size(constant_value) == 0 else (
            np.asarray(constant_value).reshape(-1)[0])
        return np.pad(x, widths, mode="constant", constant_values=value).astype(x.dtype)
    return np.pad(x, widths, mode=_PAD_MODES[mode])


# ---- Gather / GatherElements ----------------------------------------------------------


def _no_index_into_empty(ctx, shape, ind, axis):
    """Indices (a non-empty tensor) cannot point into an axis of size 0."""
    if shape[axis] == 0 and all(isinstance(d, int) for d in ind) and 0 not in ind:
        raise ctx.error(f"indices {fmt_shape(ind)} index axis {axis} of data {fmt_shape(shape)}, "
                        "which is empty (every index would be out of range)")


def _gather_infer(ctx):
    shape, ind = ctx.shape(0), ctx.shape(1)
    axis = norm_axis(ctx, ctx.attrs["axis"], len(shape))
    _no_index_into_empty(ctx, shape, ind, axis)
    return [(ctx.dtype(0), tuple(shape[:axis]) + tuple(ind) + tuple(shape[axis + 1:]))]


@op("Gather", inputs=["data", "indices"], outputs=["output"],
    attrs=[Attr("axis", AttrKind.INT, 0)], infer=_gather_infer)
def gather(x, indices, axis):
    """output = take(data, indices, axis): shape data[:axis] + indices + data[axis+1:].
    Indices (int32/int64) may be negative; out of range is an error."""
    return np.take(x, indices.astype(np.int64), axis=axis)


def _gather_elements_infer(ctx):
    shape, ind = ctx.shape(0), ctx.shape(1)
    if len(shape) != len(ind):
        raise ctx.error(f"data {fmt_shape(shape)} and indices {fmt_shape(ind)} must have "
                        "the same rank")
    axis = norm_axis(ctx, ctx.attrs["axis"], len(shape))
    for k, (d, i) in enumerate(zip(shape, ind)):
        if k != axis and isinstance(d, int) and isinstance(i, int) and i > d:
            raise ctx.error(f"indices {fmt_shape(ind)} exceed data {fmt_shape(shape)} in dim "
                            f"{k} (only the axis {axis} dim may be larger)")
    _no_index_into_empty(ctx, shape, ind, axis)
    return [(ctx.dtype(0), tuple(ind))]


@op("GatherElements", inputs=["data", "indices"], outputs=["output"],
    attrs=[Attr("axis", AttrKind.INT, 0)], infer=_gather_elements_infer)
def gather_elements(x, indices, axis):
    """output[i][j][k] = data[indices[i][j][k]][j][k] (for axis 0; likewise for others).
    Output has the indices' shape (its dims other than `axis` may be smaller than
    the data's); indices may be negative."""
    axis = axis + x.ndim if axis < 0 else axis
    x = x[tuple(slice(None) if k == axis else slice(0, n) for k, n in enumerate(indices.shape))]
    idx = indices.astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[axis]):
        raise IndexError(f"GatherElements: index out of range for axis {axis} "
                         f"of size {x.shape[axis]}")
    return np.take_along_axis(x, idx, axis=axis)


# ---- CumSum -------------------------------------------------------------------------------


@op("CumSum", inputs=["x", "axis"], outputs=["y"],
    attrs=[Attr("exclusive", AttrKind.INT, 0), Attr("reverse", AttrKind.INT, 0)],
    infer=same_as_input(0))
def cumsum(x, axis, exclusive, reverse):
    """Running sum along `axis` (an int32/int64 scalar input, may be negative).

    exclusive=1 leaves out the element itself (the first sum is 0); reverse=1
    sums from the end. The output keeps x's dtype (integers wrap).
    """
    if np.size(axis) != 1:
        raise ValueError(f"CumSum: axis must be a scalar, got shape {np.shape(axis)}")
    a = int(np.asarray(axis).reshape(-1)[0])
    if not -x.ndim <= a < x.ndim:
        raise ValueError(f"CumSum: axis {a} is out of range for a tensor of rank {x.ndim}")
    a = a + x.ndim if a < 0 else a
    y = np.flip(x, a) if reverse else x
    y = np.cumsum(y, axis=a, dtype=x.dtype)
    if exclusive:
        zero = np.zeros_like(np.take(y, [0], axis=a)) if y.shape[a] else y
        y = np.concatenate([zero, np.delete(y, -1, axis=a)], axis=a) if y.shape[a] else y
    return np.flip(y, a).copy() if reverse else y
