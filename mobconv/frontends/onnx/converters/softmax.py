"""Softmax, LogSoftmax, Hardmax: opsets < 13 coerce the input to 2-D.

Old semantics: flatten to [prod(d[:axis]), prod(d[axis:])], apply along dim 1,
reshape back. When `axis` is the last dim this equals the new (per-axis)
semantics, so the op passes through; otherwise Flatten -> op(axis=1) ->
Reshape(Shape(x)) reproduces it exactly.
"""
from __future__ import annotations

from . import converter


def softmax(cx):
    op = cx.op_type
    if cx.opset >= 13:
        cx.passthrough(op)
        return
    cx.check_attrs({"axis"})
    axis = cx.attrs.int("axis", 1)
    rank = cx.rank(0)
    if rank is not None:
        if not -rank <= axis < rank:
            raise cx.error(f"axis ({axis}) is out of range for a rank-{rank} input")
        axis %= rank
        if axis == rank - 1:
            cx.emit(op, [cx.input(0)], cx.outputs, {"axis": -1})
            return
    flat = cx.tmp("flat")
    cx.emit("Flatten", [cx.input(0)], [flat], {"axis": axis})
    applied = cx.tmp(op.lower())
    cx.emit(op, [flat], [applied], {"axis": 1})
    shape = cx.tmp("shape")
    cx.emit("Shape", [cx.input(0)], [shape])
    cx.emit("Reshape", [applied, shape], cx.outputs)


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    converter(_op, ir=(_op, "Flatten", "Shape", "Reshape"))(softmax)
