"""Reduce* ops: the `axes` attribute became an input (ReduceSum at opset 13, the rest at 18)."""
from __future__ import annotations

import numpy as np

from . import converter

REDUCES = (
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceSumSquare", "ReduceLogSumExp",
)


@converter(*REDUCES)
def reduce(cx):
    new_form_at = 13 if cx.op_type == "ReduceSum" else 18
    if cx.opset >= new_form_at:
        cx.passthrough(cx.op_type)
        return
    cx.check_attrs({"axes", "keepdims"})
    axes = cx.attr_as_input("axes", np.int64)
    cx.emit(cx.op_type, [cx.input(0), axes], cx.outputs, {"keepdims": cx.attrs.int("keepdims", 1)})
