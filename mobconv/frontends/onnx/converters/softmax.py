"""Softmax, LogSoftmax, Hardmax: opsets < 13 coerce the input to 2-D.

Old semantics: flatten to [prod(d[:axis]), prod(d[axis:])], apply along dim 1,
reshape back. When `axis` is the last dim this equals the new (per-axis)
semantics, so the op passes through; otherwise Flatten -> op(axis=1) ->
Reshape(shape of x) reproduces it exactly (the shape is a constant, with -1
for at most one symbolic dim, or else Shape(x)).
"""
from __future__ import annotations

import numpy as np

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
    dims = cx.shape(0)
    if dims is not None and sum(isinstance(d, str) for d in dims) <= 1:
        # back to the input's shape; a single symbolic dim (the batch, say) becomes -1
        target = cx.const(np.asarray([d if isinstance(d, int) else -1 for d in dims], np.int64), "shape")
    else:
        target = cx.tmp("shape")
        cx.emit("Shape", [cx.input(0)], [target])
    cx.emit("Reshape", [applied, target], cx.outputs)


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    converter(_op, ir=(_op, "Flatten", "Shape", "Reshape"))(softmax)
