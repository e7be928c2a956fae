"""Small helpers the TensorFlow tensor/math/control converters share.

TensorFlow passes shape-like parameters (axes, shapes, paddings, begin/end)
as int32 or int64 tensor inputs; the IR wants int64. Constants are converted
with numpy at conversion time, computed values get a Cast node.
"""
from __future__ import annotations

import numpy as np

from ...base import ir_dtype_code

INT64_MAX = int(np.iinfo(np.int64).max)
INT64_MIN = int(np.iinfo(np.int64).min)


def const_array(cx, i: int, what: str) -> np.ndarray:
    """Constant input `i` as numpy; a located error naming `what` when it is computed
    or missing (`i` may count from the end, like -1 for ConcatV2's axis)."""
    if not -len(cx.inputs) <= i < len(cx.inputs):
        raise cx.error(f"{what} (input {i}) is missing: the node has {len(cx.inputs)} "
                       "data input(s)")
    value = cx.const_value(i)
    if value is None:
        raise cx.error(f"{what} (input {i}, {cx.input(i)!r}) must be a constant "
                       "(it is computed at run time)")
    return np.asarray(value)


def const_ints(cx, i: int, what: str) -> list:
    return [int(v) for v in const_array(cx, i, what).reshape(-1)]


def const_int(cx, i: int, what: str) -> int:
    values = const_ints(cx, i, what)
    if len(values) != 1:
        raise cx.error(f"{what} must be a scalar, got {len(values)} values")
    return values[0]


def int64_const(cx, values, hint: str) -> str:
    return cx.const(np.asarray(values, np.int64).reshape(-1), hint)


def as_int64(cx, i: int, hint: str = "i64") -> str:
    """Input `i` as an int64 value (a constant, or a Cast of the computed int32 value)."""
    value = cx.const_value(i)
    if value is not None:
        return cx.const(np.asarray(value).astype(np.int64), hint)
    if cx.dtype(i) == "int64":
        return cx.input(i)
    return cast(cx, cx.input(i), "int64")


def cast(cx, value: str, dtype: str, out: str = None) -> str:
    """Emit Cast(value) to numpy dtype name `dtype` into `out` (a new value by default)."""
    out = out or cx.tmp(f"to_{dtype}")
    cx.emit("Cast", [value], [out], {"to": ir_dtype_code(dtype)})
    return out


def known_rank(cx, i: int, what: str = "the input") -> int:
    rank = cx.rank(i)
    if rank is None:
        raise cx.error(f"{what} ({cx.input(i)!r}) needs a known rank")
    return rank


def norm_axis(cx, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise cx.error(f"{what} {axis} is out of range for rank {rank} "
                       f"(valid: {-rank}..{rank - 1})")
    return axis + rank if axis < 0 else axis


def attr(cx, name: str, default=None):
    """Raw decoded attribute (dtype names, bools, ...) or `default` when absent."""
    value = cx.attrs.attrs.get(name)
    return default if value is None else value


def conform(cx, i: int, dtype) -> str:
    """Input `i` in `dtype` (the node's declared TensorFlow type): a constant is converted
    with numpy, a computed value gets a Cast. TensorFlow ops take one dtype for all
    their inputs; a mismatch here comes from the IR side (shape arithmetic folded to
    int64 constants where TensorFlow computes int32), so converting keeps the values."""
    return conform_value(cx, cx.input(i), dtype)


def conform_value(cx, name: str, dtype) -> str:
    """`conform` for a value by name."""
    v = cx.graph.values.get(name)
    have = None if v is None else v.dtype
    if not dtype or not have or have == dtype:
        return name
    if v.data is not None:
        return cx.const(np.asarray(v.data).astype(dtype), "conformed")
    return cast(cx, name, dtype)


def typed_inputs(cx, indices=None, type_attr: str = "T") -> list:
    """The inputs at `indices` (default all) conformed to the node's `type_attr` dtype."""
    dtype = attr(cx, type_attr)
    indices = range(len(cx.inputs)) if indices is None else indices
    return [conform(cx, i, dtype) for i in indices]
