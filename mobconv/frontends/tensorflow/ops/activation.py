"""TensorFlow activations -> IR element-wise ops (layout-agnostic: no transposes).

Relu6 is Clip(0, 6); LeakyRelu reads `alpha`; Selu uses TensorFlow's constants (the
IR's defaults are the same float32 values). Swish, HardSwish and Gelu arrive from
TensorFlow as math ops (Sigmoid/Mul, Relu6/Add/Mul, Erf/Tanh chains) and convert
op by op.
"""
from __future__ import annotations

import numpy as np

from ..registry import TF_OPS

_SAME = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Softplus": "Softplus",
         "Softsign": "Softsign", "Elu": "Elu", "Selu": "Selu"}


@TF_OPS.register(*_SAME)
def unary(cx):
    cx.check_attrs({"T"})
    cx.emit(_SAME[cx.op_type], [cx.input(0)], cx.outputs[:1])


@TF_OPS.register("Relu6")
def relu6(cx):
    cx.check_attrs({"T"})
    dtype = cx.dtype(0) or "float32"
    lo, hi = cx.const(np.asarray(0, dtype), "min"), cx.const(np.asarray(6, dtype), "max")
    cx.emit("Clip", [cx.input(0), lo, hi], cx.outputs[:1])


@TF_OPS.register("LeakyRelu")
def leaky_relu(cx):
    cx.check_attrs({"T", "alpha"})
    cx.emit("LeakyRelu", [cx.input(0)], cx.outputs[:1], {"alpha": cx.attrs.float("alpha", 0.2)})
