"""Element-wise ONNX ops whose opset 7+ forms equal the IR form: attributes pass through.

(Opsets < 7 had `broadcast`/`axis`/`consumed_inputs` attributes; the frontend
starts at opset 7, so every form seen here is already numpy-broadcasting.)
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
    cx.passthrough(cx.op_type)


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
