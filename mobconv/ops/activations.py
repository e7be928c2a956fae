"""Element-wise activations and unary math (ONNX opset 22 semantics).

Every op here maps one tensor to a tensor of the same shape and dtype.
float16 inputs are computed in float32 and rounded once at the end. Erf has
no numpy function and scipy is not a dependency, so `erf` below combines a
Taylor series (|x| < 2) with the erfc continued fraction (|x| >= 2), both
evaluated in float64: accurate to ~1e-15, fully vectorized.
"""
from __future__ import annotations

import math

import numpy as np

from .conv import compute_dtype
from .registry import Attr, AttrKind, InferContext, broadcast_shapes, op, same_as_input

_SAME = same_as_input(0)


def _f(x):
    """x in its computation dtype (float16 -> float32)."""
    return x.astype(compute_dtype(x.dtype), copy=False)


def erf(x) -> np.ndarray:
    """Vectorized error function in float64 (no scipy)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    out = np.empty_like(a)
    small = a < 2.0
    xs = a[small]
    # Taylor: erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)); 60 terms suffice for |x| < 2.
    term = xs.copy()
    total = xs.copy()
    x2 = xs * xs
    for n in range(1, 60):
        term = term * (-x2) / n
        total += term / (2 * n + 1)
    out[small] = total * (2.0 / math.sqrt(math.pi))
    xl = a[~small]
    # erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated backwards.
    f = xl.copy()
    for k in range(80, 0, -1):
        f = xl + (k / 2.0) / f
    out[~small] = 1.0 - np.exp(-xl * xl) / math.sqrt(math.pi) / f
    return np.copysign(out, x)


_ONNX_IO_NAMES = {"Cos", "Erf", "Exp", "Log", "Sign", "Sin", "Softsign", "Tanh"}  # "input"/"output"


def _unary(name, fn, attrs=(), doc=""):
    """Register a same-shape unary op whose reference is fn(x, **attrs) in compute dtype."""

    def reference(x, **kw):
        return np.asarray(fn(_f(x), **kw)).astype(x.dtype, copy=False)

    reference.__doc__ = doc or f"ONNX {name}."
    reference.__name__ = name.lower()
    x, y = ("input", "output") if name in _ONNX_IO_NAMES else ("X", "Y")
    op(name, inputs=[x], outputs=[y], attrs=attrs, infer=_SAME)(reference)


def _sigmoid(x):
    # exp of a non-positive number only: no overflow warnings for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_ALPHA = lambda default: (Attr("alpha", AttrKind.FLOAT, default),)  # noqa: E731

_unary("Relu", lambda x: np.maximum(x, 0))
_unary("LeakyRelu", lambda x, alpha: np.where(x >= 0, x, x * x.dtype.type(alpha)), _ALPHA(0.01))
_unary("Sigmoid", _sigmoid)
_unary("Tanh", np.tanh)
_unary("HardSigmoid", lambda x, alpha, beta: np.clip(x * alpha + beta, 0, 1),
       (Attr("alpha", AttrKind.FLOAT, 0.2), Attr("beta", AttrKind.FLOAT, 0.5)))
_unary("HardSwish", lambda x: x * np.clip(x / 6 + 0.5, 0, 1))
_unary("Elu", lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), _ALPHA(1.0))
_unary("Selu", lambda x, alpha, gamma: gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
       (Attr("alpha", AttrKind.FLOAT, 1.67326319217681884765625),
        Attr("gamma", AttrKind.FLOAT, 1.05070102214813232421875)))
_unary("Celu", lambda x, alpha: np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(np.minimum(x, 0) / alpha)),
       _ALPHA(1.0))
_unary("ThresholdedRelu", lambda x, alpha: np.where(x > alpha, x, 0), _ALPHA(1.0))
_unary("Softplus", lambda x: np.logaddexp(0, x))
_unary("Softsign", lambda x: x / (1 + np.abs(x)))
_unary("Mish", lambda x: x * np.tanh(np.logaddexp(0, x)))
_unary("Gelu", lambda x, approximate: (
    0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if approximate == "tanh" else (0.5 * x * (1 + erf(x / math.sqrt(2)))).astype(x.dtype)),
    (Attr("approximate", AttrKind.STRING, "none"),),
    doc="ONNX Gelu: approximate 'none' (erf form) or 'tanh'.")
_unary("Erf", lambda x: erf(x).astype(x.dtype) if x.dtype.kind == "f" else erf(x),
       doc="ONNX Erf (integer inputs are computed in float64 and truncated back).")
_unary("Exp", np.exp)
_unary("Log", np.log)
_unary("Sqrt", np.sqrt)
_unary("Abs", np.abs)
_unary("Neg", np.negative)
_unary("Reciprocal", np.reciprocal)
_unary("Floor", np.floor)
_unary("Ceil", np.ceil)
_unary("Round", np.round, doc="ONNX Round: halves round to even (numpy.round).")
_unary("Sign", np.sign)
_unary("Sin", np.sin)
_unary("Cos", np.cos)
_unary("Not", np.logical_not, doc="ONNX Not (bool tensors).")


def _infer_prelu(ctx: InferContext):
    x, slope = ctx.shape(0), ctx.shape(1)
    out = broadcast_shapes(x, slope, ctx=ctx)
    if len(out) != len(x) or any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(out, x)):
        raise ctx.error(f"slope {tuple(slope)} must broadcast to X {tuple(x)} (unidirectionally)")
    return [(ctx.dtype(0), tuple(x))]


@op("PRelu", inputs=["X", "slope"], outputs=["Y"], infer=_infer_prelu)
def prelu(x, slope):
    """ONNX PRelu: Y = X if X >= 0 else slope * X (slope broadcasts to X)."""
    xf = _f(x)
    return np.where(xf >= 0, xf, xf * _f(slope)).astype(x.dtype, copy=False)


def _infer_clip(ctx: InferContext):
    for i in (1, 2):
        s = ctx.shape(i)
        if s is not None and len(s) not in (0,) and not (len(s) == 1 and s[0] == 1):
            raise ctx.error(f"{('min', 'max')[i - 1]} must be a scalar, got shape {tuple(s)}")
    return [(ctx.dtype(0), ctx.shape(0))]


@op("Clip", inputs=["input", "min?", "max?"], outputs=["output"], infer=_infer_clip)
def clip(x, lo=None, hi=None):
    """ONNX Clip: min/max are optional scalar inputs (absent: no bound)."""
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo, dtype=x.dtype).reshape(()))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi, dtype=x.dtype).reshape(()))
    return np.asarray(y, dtype=x.dtype)
