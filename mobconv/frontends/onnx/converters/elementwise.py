"""Element-wise ONNX ops whose opset 7+ forms equal the IR form: attributes pass through.

Opset 6 (the oldest the frontend reads) differs in two places, converted here:
binary arithmetic/logical ops take `broadcast` (0: equal shapes, 1: B
broadcast to A) and `axis` (where B's dims align in A; absent = trailing, i.e.
numpy); PRelu's slope of shape (C,) is per channel (dim 1) of X.
"""
from __future__ import annotations

import numpy as np

from . import converter

UNARY = (
    "Abs", "Neg", "Reciprocal", "Exp", "Log", "Sqrt", "Floor", "Ceil", "Round", "Sign",
    "Sin", "Cos", "Not", "Erf", "Sigmoid", "Tanh", "Relu", "Softsign", "Softplus", "Mish",
    "Identity",
)
ACTIVATIONS = (
    "LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Celu", "ThresholdedRelu", "Gelu", "PRelu",
)
BINARY = (
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "And", "Or", "Xor", "Equal", "Less", "Greater",
    "LessOrEqual", "GreaterOrEqual", "Where",
)
VARIADIC = ("Max", "Min", "Sum", "Mean")


@converter(*UNARY, *ACTIVATIONS, *BINARY, *VARIADIC)
def passthrough(cx):
    if cx.opset < 7 and cx.op_type in BINARY and cx.op_type != "Where":
        _legacy_broadcast(cx)
        return
    if cx.opset < 7 and cx.op_type == "PRelu":
        _legacy_prelu(cx)
        return
    cx.passthrough(cx.op_type)


def _reshaped(cx, name: str, shape, hint: str) -> str:
    """`name` reshaped to `shape` (folded when constant)."""
    data = cx.const_value(1) if name == cx.input(1) else None
    if data is not None:
        return cx.const(np.asarray(data).reshape(shape), hint)
    out = cx.tmp(hint)
    cx.emit("Reshape", [name, cx.const(np.asarray(shape, np.int64), "shape")], [out])
    return out


def _legacy_broadcast(cx):
    """Opset < 7 `broadcast`/`axis`: B's dims align with A's starting at `axis`."""
    b = cx.input(1)
    if cx.attrs.int("broadcast", 0) and cx.attrs.has("axis"):
        ra, sb = cx.rank(0), cx.shape(1)
        if ra is None or sb is None:
            raise cx.error("legacy broadcast with axis needs the ranks of A and B to be known")
        axis = cx.attrs.int("axis")
        axis = axis + ra if axis < 0 else axis
        if not 0 <= axis <= ra - len(sb):
            raise cx.error(f"axis {axis} does not fit B {tuple(sb)} into A of rank {ra}")
        trailing = ra - axis - len(sb)
        if trailing:
            b = _reshaped(cx, b, tuple(sb) + (1,) * trailing, "b_aligned")
    cx.passthrough(cx.op_type, inputs=[cx.input(0), b], drop=("broadcast", "axis"))


def _legacy_prelu(cx):
    """Opset < 7 PRelu: a slope of shape (C,) applies per channel (dim 1 of X)."""
    slope, sx, ss = cx.input(1), cx.shape(0), cx.shape(1)
    if sx is not None and ss is not None and len(ss) == 1 and len(sx) > 2 and ss[0] != 1 and ss[0] == sx[1]:
        slope = _reshaped(cx, slope, (ss[0],) + (1,) * (len(sx) - 2), "slope_per_channel")
    cx.passthrough("PRelu", inputs=[cx.input(0), slope])


@converter("Clip")
def clip(cx):
    """Clip < 11 carries min/max as attributes (default: unbounded) -> constant inputs."""
    if cx.opset >= 11:
        cx.passthrough("Clip")
        return
    cx.check_attrs({"min", "max"})
    lo = cx.attr_as_input("min", np.float32)
    hi = cx.attr_as_input("max", np.float32)
    cx.emit("Clip", [cx.input(0), lo, hi] if hi else [cx.input(0), lo] if lo else [cx.input(0)], cx.outputs)
