"""TensorFlow element-wise math, comparison, logic and reduction op converters.

Binary ops broadcast like numpy in both frameworks, so most are one IR node.
Where the IR's semantics differ the converter composes:
- integer FloorDiv: (a - Mod(a, b)) / b (Mod with fmod=0 has the divisor's sign,
  so the difference divides exactly and Div's truncation is the floor);
  float FloorDiv: Floor(Div). FloorMod: Mod fmod=0; TruncateMod: Mod fmod=1.
- Div on integers truncates toward zero, like IR Div.
- Log1p/Expm1 keep their accuracy near 0 (Goldberg's trick: log1p(x) =
  x * log(u) / (u - 1) with u = 1 + x, and x itself where u == 1).
- integer Mean: ReduceSum, then Div by the element count (TensorFlow divides
  the integer sum, truncating).
- an empty reduction axis list reduces nothing (IR: noop_with_empty_axes).
"""
from __future__ import annotations

import numpy as np

from ..registry import TF_OPS
from ._helpers import (
    as_int64, attr, conform_value, const_ints, known_rank, norm_axis, typed_inputs,
)

_BINARY = {
    "Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div",
    "Div": "Div", "TruncateDiv": "Div", "Maximum": "Max", "Minimum": "Min", "Pow": "Pow",
    "Equal": "Equal", "Less": "Less", "LessEqual": "LessOrEqual", "Greater": "Greater",
    "GreaterEqual": "GreaterOrEqual", "LogicalAnd": "And", "LogicalOr": "Or",
}
_UNARY = {
    "Neg": "Neg", "Abs": "Abs", "Sign": "Sign", "Reciprocal": "Reciprocal", "Inv": "Reciprocal",
    "Floor": "Floor", "Ceil": "Ceil", "Round": "Round", "Sqrt": "Sqrt", "Exp": "Exp",
    "Log": "Log", "Sin": "Sin", "Cos": "Cos", "Erf": "Erf", "LogicalNot": "Not",
}
_INT = ("int8", "uint8", "int16", "int32", "int64")


def _is_int(cx, i: int = 0) -> bool:
    return (cx.dtype(i) or attr(cx, "T")) in _INT


def _scalar(cx, value, hint, i=0):
    return cx.const(np.asarray(value, dtype=cx.dtype(i) or attr(cx, "T") or "float32"), hint)


@TF_OPS.register(*_BINARY)
def binary(cx):
    cx.emit(_BINARY[cx.op_type], typed_inputs(cx, (0, 1)), cx.outputs[:1])


@TF_OPS.register(*_UNARY)
def unary(cx):
    op = _UNARY[cx.op_type]
    if op in ("Floor", "Ceil", "Round") and _is_int(cx):
        cx.emit("Identity", [cx.input(0)], cx.outputs[:1])
        return
    cx.emit(op, [cx.input(0)], cx.outputs[:1])


@TF_OPS.register("NotEqual")
def not_equal(cx):
    eq = cx.tmp("equal")
    cx.emit("Equal", typed_inputs(cx, (0, 1)), [eq])
    cx.emit("Not", [eq], cx.outputs[:1])


@TF_OPS.register("LogicalXor")
def logical_xor(cx):
    cx.emit("Xor", cx.inputs[:2], cx.outputs[:1])


@TF_OPS.register("IsNan", "IsInf", "IsFinite")
def is_nan(cx):
    """IsNan: x != x; IsInf: |x| == inf; IsFinite: |x| < inf (false for NaN too)."""
    x = cx.input(0)
    if cx.op_type == "IsNan":
        same = cx.tmp("equal_self")
        cx.emit("Equal", [x, x], [same])
        cx.emit("Not", [same], cx.outputs[:1])
        return
    magnitude = cx.tmp("abs")
    cx.emit("Abs", [x], [magnitude])
    op = "Equal" if cx.op_type == "IsInf" else "Less"
    cx.emit(op, [magnitude, _scalar(cx, np.inf, "inf")], cx.outputs[:1])


@TF_OPS.register("AddN")
def add_n(cx):
    if len(cx.inputs) == 1:
        cx.emit("Identity", cx.inputs[:1], cx.outputs[:1])
        return
    cx.emit("Sum", typed_inputs(cx), cx.outputs[:1])


@TF_OPS.register("FloorDiv")
def floor_div(cx):
    a, b = typed_inputs(cx, (0, 1))
    if _is_int(cx):
        rem, exact = cx.tmp("mod"), cx.tmp("exact")
        cx.emit("Mod", [a, b], [rem], {"fmod": 0})
        cx.emit("Sub", [a, rem], [exact])
        cx.emit("Div", [exact, b], cx.outputs[:1])
        return
    q = cx.tmp("quotient")
    cx.emit("Div", [a, b], [q])
    cx.emit("Floor", [q], cx.outputs[:1])


@TF_OPS.register("FloorMod", "Mod", "TruncateMod")
def floor_mod(cx):
    """FloorMod: the result has the divisor's sign; TruncateMod (and the old Mod): the
    dividend's (C fmod)."""
    fmod = 0 if cx.op_type == "FloorMod" else 1
    cx.emit("Mod", typed_inputs(cx, (0, 1)), cx.outputs[:1], {"fmod": fmod})


@TF_OPS.register("DivNoNan")
def div_no_nan(cx):
    """x / y, and 0 where y == 0."""
    zero = _scalar(cx, 0, "zero", 1)
    is_zero, q = cx.tmp("is_zero"), cx.tmp("quotient")
    cx.emit("Equal", [cx.input(1), zero], [is_zero])
    cx.emit("Div", cx.inputs[:2], [q])
    cx.emit("Where", [is_zero, zero, q], cx.outputs[:1])


@TF_OPS.register("SquaredDifference")
def squared_difference(cx):
    d = cx.tmp("diff")
    cx.emit("Sub", typed_inputs(cx, (0, 1)), [d])
    cx.emit("Mul", [d, d], cx.outputs[:1])


@TF_OPS.register("Square")
def square(cx):
    cx.emit("Mul", [cx.input(0), cx.input(0)], cx.outputs[:1])


@TF_OPS.register("Rsqrt")
def rsqrt(cx):
    s = cx.tmp("sqrt")
    cx.emit("Sqrt", [cx.input(0)], [s])
    cx.emit("Reciprocal", [s], cx.outputs[:1])


@TF_OPS.register("Log1p")
def log1p(cx):
    """log(1 + x) accurate near 0: u = 1 + x; x where u == 1, else x * log(u) / (u - 1)."""
    x = cx.input(0)
    one = _scalar(cx, 1, "one")
    u, d, lg, num, ratio, same = (cx.tmp(h) for h in ("u", "u_minus_1", "log_u", "x_log_u",
                                                      "ratio", "u_is_1"))
    cx.emit("Add", [x, one], [u])
    cx.emit("Sub", [u, one], [d])
    cx.emit("Log", [u], [lg])
    cx.emit("Mul", [x, lg], [num])
    cx.emit("Div", [num, d], [ratio])
    cx.emit("Equal", [u, one], [same])
    cx.emit("Where", [same, x, ratio], cx.outputs[:1])


@TF_OPS.register("Expm1")
def expm1(cx):
    """exp(x) - 1 accurate near 0: u = exp(x); x where u == 1, -1 where u == 0, else
    (u - 1) * x / log(u)."""
    x = cx.input(0)
    one = _scalar(cx, 1, "one")
    u, d, lg, num, ratio, same = (cx.tmp(h) for h in ("u", "u_minus_1", "log_u", "num",
                                                      "ratio", "u_is_1"))
    cx.emit("Exp", [x], [u])
    cx.emit("Sub", [u, one], [d])
    cx.emit("Log", [u], [lg])
    cx.emit("Mul", [d, x], [num])
    cx.emit("Div", [num, lg], [ratio])
    cx.emit("Equal", [u, one], [same])
    tiny, inner = cx.tmp("u_is_0"), cx.tmp("inner")
    cx.emit("Equal", [u, _scalar(cx, 0, "zero")], [tiny])
    cx.emit("Where", [tiny, d, ratio], [inner])
    cx.emit("Where", [same, x, inner], cx.outputs[:1])


@TF_OPS.register("ClipByValue")
def clip_by_value(cx):
    """min(max(t, clip_min), clip_max), the bounds broadcasting like numpy (TF's order)."""
    x, lo, hi = typed_inputs(cx, (0, 1, 2))
    low = cx.tmp("at_least_min")
    cx.emit("Max", [x, lo], [low])
    cx.emit("Min", [low, hi], cx.outputs[:1])


# ---- reductions ---------------------------------------------------------------------

_REDUCE = {"Sum": "ReduceSum", "Mean": "ReduceMean", "Max": "ReduceMax", "Min": "ReduceMin",
           "Prod": "ReduceProd", "Any": "ReduceMax", "All": "ReduceMin",
           "EuclideanNorm": "ReduceL2"}


@TF_OPS.register(*_REDUCE)
def reduce(cx):
    """Reduce(input, reduction_indices) with keep_dims; Any/All reduce bools with Max/Min."""
    keep = 1 if attr(cx, "keep_dims", False) else 0
    rank = known_rank(cx, 0)
    axes = const_ints(cx, 1, "reduction_indices")
    if rank == 0 and all(a in (0, -1) for a in axes):
        axes = []  # TensorFlow lets a scalar be reduced over axis 0/-1: a no-op
    axes = sorted({norm_axis(cx, a, rank, "reduction axis") for a in axes})
    attrs = {"keepdims": keep, "noop_with_empty_axes": 1}
    if cx.op_type == "Prod" and _shape_vector(cx) and axes == [0]:
        _product_of_dims(cx, keep)
        return
    if cx.op_type == "Mean" and _is_int(cx) and axes:
        shape = cx.shape(0)
        if not all(isinstance(shape[a], int) for a in axes):
            raise cx.error(f"integer Mean over axes {axes} needs their sizes (input "
                           f"{list(shape)})")
        count = int(np.prod([shape[a] for a in axes], dtype=np.int64))
        total = cx.tmp("sum")
        cx.emit("ReduceSum", [cx.input(0), as_axes(cx, axes)], [total], attrs)
        cx.emit("Div", [total, _scalar(cx, max(count, 1), "count")], cx.outputs[:1])
        return
    cx.emit(_REDUCE[cx.op_type], [cx.input(0), as_axes(cx, axes)], cx.outputs[:1], attrs)


def _shape_vector(cx) -> bool:
    """A short integer vector computed from shapes (the context tracks its dims)."""
    shape = cx.shape(0)
    symbolic = getattr(cx, "symbolic", None)
    return (_is_int(cx) and shape is not None and len(shape) == 1 and isinstance(shape[0], int)
            and 1 <= shape[0] <= 8 and symbolic is not None and cx.input(0) in symbolic.dims)


def _product_of_dims(cx, keep):
    """Prod of a shape vector (tf.tensordot's reshape sizes) as Gather + Mul per element,
    so the product of symbolic dims stays known to the shape tracker."""
    total = None
    for k in range(cx.shape(0)[0]):
        item = cx.tmp(f"dim{k}")
        cx.emit("Gather", [cx.input(0), cx.const(np.asarray(k, np.int64), "index")], [item],
                {"axis": 0})
        item = conform_value(cx, item, cx.dtype(0))
        if total is not None:
            product = cx.tmp("product")
            cx.emit("Mul", [total, item], [product])
            item = product
        total = item
    if keep:
        cx.emit("Unsqueeze", [total, cx.const(np.asarray([0], np.int64), "axes")], cx.outputs[:1])
    else:
        cx.emit("Identity", [total], cx.outputs[:1])


def as_axes(cx, axes):
    return cx.const(np.asarray(axes, np.int64).reshape(-1), "axes")


@TF_OPS.register("Cumsum")
def cumsum(cx):
    """Cumsum(x, axis) with exclusive/reverse: the IR op's meaning."""
    axis = as_int64(cx, 1, "axis")
    cx.emit("CumSum", [cx.input(0), axis], cx.outputs[:1],
            {"exclusive": int(bool(attr(cx, "exclusive", False))),
             "reverse": int(bool(attr(cx, "reverse", False)))})


@TF_OPS.register("Einsum")
def einsum(cx):
    """Einsum(inputs..., equation): the IR op takes the same equation (numpy's syntax,
    ellipsis included)."""
    cx.emit("Einsum", typed_inputs(cx), cx.outputs[:1], {"equation": cx.attrs.string("equation")})
