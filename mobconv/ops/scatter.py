"""Scatter ops: ScatterND, ScatterElements (ONNX opset 18).

Both copy `data` and then write `updates` at the positions `indices` name,
in order, combining with the old value by `reduction`: none (overwrite; with
duplicate indices the last update wins), add, mul, max, min. Indices (int32 or
int64) may be negative (counted from the end of the axis); out of range is an
error. The output has data's dtype and shape.
"""
import numpy as np

from .registry import Attr, AttrKind, op
from .shape_ops import fmt_shape, norm_axis

REDUCTIONS = ("none", "add", "mul", "max", "min")


def _combine(reduction):
    return {
        "none": lambda old, new: new,
        "add": lambda old, new: old + new,
        "mul": lambda old, new: old * new,
        "max": np.maximum,
        "min": np.minimum,
    }[reduction]


def _check_reduction(reduction, fail):
    if reduction not in REDUCTIONS:
        raise fail(f"reduction {reduction!r} is not one of {', '.join(REDUCTIONS)}")


def _wide(x):
    """float16/bfloat16 combine in float32 (rounded back per update)."""
    return x.astype(np.float32) if x.dtype.name in ("float16", "bfloat16") else x.copy()


# ---- ScatterND -----------------------------------------------------------------------


def _scatter_nd_infer(ctx):
    data, ind, upd = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    _check_reduction(ctx.attrs["reduction"], ctx.error)
    if len(ind) < 1:
        raise ctx.error("indices must have rank >= 1")
    k = ind[-1]
    if isinstance(k, int):
        if k > len(data):
            raise ctx.error(f"indices' last dim ({k}) exceeds the data rank {len(data)}")
        want = tuple(ind[:-1]) + tuple(data[k:])
        if len(upd) != len(want) or any(
            isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(upd, want)
        ):
            raise ctx.error(f"updates {fmt_shape(upd)} must have shape indices[:-1] + data[k:] = "
                            f"{fmt_shape(want)}")
        rows = ind[:-1]
        if 0 in data[:k] and all(isinstance(d, int) for d in rows) and 0 not in rows:
            raise ctx.error(f"indices {fmt_shape(ind)} index data {fmt_shape(data)} in an empty dim "
                            "(every index would be out of range)")
    return [(ctx.dtype(0), tuple(data))]


@op("ScatterND", inputs=["data", "indices", "updates"], outputs=["output"],
    attrs=[Attr("reduction", AttrKind.STRING, "none")], infer=_scatter_nd_infer)
def scatter_nd(data, indices, updates, reduction):
    """output = data; for each index tuple idx = indices[i..., :] (k = indices' last dim),
    output[idx] = combine(output[idx], updates[i...]) (a slice of data[k:] shape)."""
    _check_reduction(reduction, lambda m: ValueError(f"ScatterND: {m}"))
    out = _wide(data)
    idx = np.asarray(indices).astype(np.int64)
    k = idx.shape[-1]
    flat = idx.reshape(int(np.prod(idx.shape[:-1], dtype=np.int64)), k)
    upd = np.asarray(updates).reshape((flat.shape[0],) + data.shape[k:])
    upd = upd.astype(out.dtype)
    combine = _combine(reduction)
    for row, u in zip(flat, upd):
        pos = []
        for a, v in enumerate(row):
            v = int(v) + (data.shape[a] if v < 0 else 0)
            if not 0 <= v < data.shape[a]:
                raise IndexError(f"ScatterND: index {int(row[a])} out of range for dim {a} "
                                 f"of size {data.shape[a]}")
            pos.append(v)
        pos = tuple(pos)
        out[pos] = combine(out[pos], u)
        if out.dtype != data.dtype:  # round per update, as a float16 kernel does
            out[pos] = out[pos].astype(data.dtype).astype(out.dtype)
    return out.astype(data.dtype)


# ---- ScatterElements --------------------------------------------------------------------


def _scatter_elements_infer(ctx):
    data, ind, upd = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    _check_reduction(ctx.attrs["reduction"], ctx.error)
    norm_axis(ctx, ctx.attrs["axis"], len(data))
    if len(ind) != len(data) or len(upd) != len(ind):
        raise ctx.error(f"data {fmt_shape(data)}, indices {fmt_shape(ind)} and updates "
                        f"{fmt_shape(upd)} must have the same rank")
    if any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(ind, upd)):
        raise ctx.error(f"indices {fmt_shape(ind)} and updates {fmt_shape(upd)} must have the "
                        "same shape")
    axis = norm_axis(ctx, ctx.attrs["axis"], len(data))
    for k, (d, i) in enumerate(zip(data, ind)):
        if k != axis and isinstance(d, int) and isinstance(i, int) and i > d:
            raise ctx.error(f"indices {fmt_shape(ind)} exceed data {fmt_shape(data)} in dim {k} "
                            f"(only the axis {axis} dim may be larger)")
    if data[axis] == 0 and all(isinstance(d, int) for d in ind) and 0 not in ind:
        raise ctx.error(f"indices {fmt_shape(ind)} index axis {axis} of data {fmt_shape(data)}, "
                        "which is empty (every index would be out of range)")
    return [(ctx.dtype(0), tuple(data))]


@op("ScatterElements", inputs=["data", "indices", "updates"], outputs=["output"],
    attrs=[Attr("axis", AttrKind.INT, 0), Attr("reduction", AttrKind.STRING, "none")],
    infer=_scatter_elements_infer)
def scatter_elements(data, indices, updates, axis, reduction):
    """output = data; for each position p of indices (row-major order):
    output[p with p[axis] = indices[p]] = combine(that, updates[p])."""
    _check_reduction(reduction, lambda m: ValueError(f"ScatterElements: {m}"))
    axis = axis + data.ndim if axis < 0 else axis
    out = _wide(data)
    idx = np.asarray(indices).astype(np.int64)
    upd = np.asarray(updates).astype(out.dtype)
    dim = data.shape[axis]
    combine = _combine(reduction)
    for p in np.ndindex(*idx.shape):
        v = int(idx[p])
        if not -dim <= v < dim:
            raise IndexError(f"ScatterElements: index {v} out of range for axis {axis} "
                             f"of size {dim}")
        q = list(p)
        q[axis] = v + dim if v < 0 else v
        q = tuple(q)
        out[q] = combine(out[q], upd[p])
        if out.dtype != data.dtype:
            out[q] = out[q].astype(data.dtype).astype(out.dtype)
    return out.astype(data.dtype)
