"""ONNX ops without an IR op of their own, spelled with IR ops.

ReduceLogSum = Log(ReduceSum); Swish = x * Sigmoid(alpha * x); CastLike =
Cast to the dtype of the second input.
"""
from __future__ import annotations

import numpy as np
import onnx

from . import converter
from .tensor import cast


@converter("ReduceLogSum", ir=("ReduceSum", "Log"))
def reduce_log_sum(cx):
    inputs = [cx.input(0), cx.input(1)]
    if cx.opset < 18:
        cx.check_attrs({"axes", "keepdims"})
        inputs[1] = cx.attr_as_input("axes", np.int64)
        attrs = {"keepdims": cx.attrs.int("keepdims", 1)}
    else:
        cx.check_attrs({"keepdims", "noop_with_empty_axes"})
        attrs = {k: cx.attrs.int(k) for k in ("keepdims", "noop_with_empty_axes") if cx.attrs.has(k)}
    total = cx.tmp("sum")
    cx.emit("ReduceSum", inputs, [total], attrs)
    cx.emit("Log", [total], cx.outputs)


@converter("Swish", ir=("Mul", "Sigmoid"))
def swish(cx):
    cx.check_attrs({"alpha"})
    alpha = cx.attrs.float("alpha", 1.0)
    dtype = cx.dtype(0) or "float32"
    scaled = cx.tmp("scaled")
    cx.emit("Mul", [cx.input(0), cx.const(np.asarray(alpha, dtype), "alpha")], [scaled])
    gate = cx.tmp("gate")
    cx.emit("Sigmoid", [scaled], [gate])
    cx.emit("Mul", [cx.input(0), gate], cx.outputs)


@converter("CastLike", ir=("Cast",))
def cast_like(cx):
    cx.check_attrs({"saturate", "round_mode"})
    target = cx.dtype(1)
    if target is None:
        raise cx.error("the dtype of the target_type input must be known")
    to = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(target)) if target != "bfloat16" else onnx.TensorProto.BFLOAT16
    cx.attrs.attrs["to"] = int(to)
    cx.inputs = cx.inputs[:1]
    cast(cx)
