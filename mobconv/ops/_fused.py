"""Fused activations carried by Conv, ConvTranspose, Gemm and MatMul nodes.

After the activation-fusion pass, a producer node carries
  activation        (string): "" (none), "Relu", "Clip", "LeakyRelu",
                              "HardSwish", "HardSigmoid", "Sigmoid", "Tanh"
  activation_params (floats): Clip -> [min, max]; LeakyRelu -> [alpha];
                              HardSigmoid -> [alpha, beta]; others -> []
The activation is applied to the op's output, exactly as the separate IR op
of the same name would be.
"""
import numpy as np

from .registry import Attr, AttrKind

FUSED_ACTIVATION_ATTRS = (
    Attr("activation", AttrKind.STRING, ""),
    Attr("activation_params", AttrKind.FLOATS, []),
)

FUSIBLE = ("Relu", "Clip", "LeakyRelu", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh")


def apply_activation(y: np.ndarray, activation: str, params) -> np.ndarray:
    if not activation:
        return y
    if activation == "Relu":
        return np.maximum(y, 0).astype(y.dtype)
    if activation == "Clip":
        lo, hi = params
        return np.clip(y, lo, hi).astype(y.dtype)
    if activation == "LeakyRelu":
        (alpha,) = params
        return np.where(y >= 0, y, y * alpha).astype(y.dtype)
    if activation == "HardSigmoid":
        alpha, beta = params
        return np.clip(y * alpha + beta, 0, 1).astype(y.dtype)
    if activation == "HardSwish":
        return (y * np.clip(y / 6 + 0.5, 0, 1)).astype(y.dtype)
    if activation == "Sigmoid":
        return (1 / (1 + np.exp(-y))).astype(y.dtype)
    if activation == "Tanh":
        return np.tanh(y).astype(y.dtype)
    raise ValueError(f"unknown fused activation {activation!r} (known: {', '.join(FUSIBLE)})")
