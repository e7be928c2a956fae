"""Normalizations: BatchNormalization (inference), InstanceNormalization,
LayerNormalization, LRN, LpNormalization, MeanVarianceNormalization.

ONNX opset 22 semantics. Statistics are computed in float32 or wider
(float16 inputs are widened) and the result is rounded back to the input dtype.
"""
from __future__ import annotations

import numpy as np

from .conv import compute_dtype
from .registry import Attr, AttrKind, InferContext, op, same_as_input


def _sym(d) -> bool:
    return not isinstance(d, (int, np.integer))


def _f(x):
    return x.astype(compute_dtype(x.dtype), copy=False)


def _channel_shape(x, c_axis=1):
    return tuple(-1 if i == c_axis else 1 for i in range(x.ndim))


def _check_per_channel(ctx: InferContext, names, first=1):
    x = ctx.shape(0)
    if len(x) < 2:
        raise ctx.error(f"X must have rank >= 2 (N, C, ...), got shape {tuple(x)}")
    c = x[1]
    for i, name in enumerate(names, start=first):
        s = ctx.shape(i)
        if s is None:
            continue
        if len(s) != 1 or (not _sym(s[0]) and not _sym(c) and s[0] != c):
            raise ctx.error(f"{name} must have shape ({c},) to match X channels, got {tuple(s)}")
    return [(ctx.dtype(0), tuple(x))]


@op("BatchNormalization", inputs=["X", "scale", "B", "input_mean", "input_var"], outputs=["Y"],
    attrs=(Attr("epsilon", AttrKind.FLOAT, 1e-5),),
    infer=lambda ctx: _check_per_channel(ctx, ["scale", "B", "input_mean", "input_var"]))
def batch_normalization(x, scale, b, mean, var, *, epsilon):
    """ONNX BatchNormalization, inference form only (training_mode=0, one output).

    Y = (X - mean) / sqrt(var + epsilon) * scale + B, per channel (axis 1).
    `momentum` is a training attribute and is not part of the IR op.
    """
    shp = _channel_shape(x)
    xf = _f(x)
    dt = xf.dtype
    inv = (_f(scale).astype(dt) / np.sqrt(_f(var).astype(dt) + dt.type(epsilon))).reshape(shp)
    return ((xf - _f(mean).astype(dt).reshape(shp)) * inv + _f(b).astype(dt).reshape(shp)).astype(x.dtype)


@op("InstanceNormalization", inputs=["input", "scale", "B"], outputs=["output"],
    attrs=(Attr("epsilon", AttrKind.FLOAT, 1e-5),),
    infer=lambda ctx: _check_per_channel(ctx, ["scale", "B"]))
def instance_normalization(x, scale, b, *, epsilon):
    """ONNX InstanceNormalization: normalize each (n, c) over the spatial dims."""
    xf = _f(x)
    axes = tuple(range(2, x.ndim))
    mean = xf.mean(axis=axes, keepdims=True)
    var = ((xf - mean) ** 2).mean(axis=axes, keepdims=True)
    shp = _channel_shape(x)
    y = (xf - mean) / np.sqrt(var + epsilon) * _f(scale).reshape(shp) + _f(b).reshape(shp)
    return y.astype(x.dtype)


_STASH = {1: np.float32, 10: np.float32, 11: np.float64, 16: np.float32}


def _infer_layer_norm(ctx: InferContext):
    x = ctx.shape(0)
    axis = ctx.attrs["axis"]
    if not -len(x) <= axis < len(x):
        raise ctx.error(f"axis {axis} out of range for rank {len(x)}")
    axis %= len(x)
    inner = tuple(x[axis:])
    for i, name in ((1, "Scale"), (2, "B")):
        s = ctx.shape(i)
        if s is None:
            continue
        # unidirectional broadcast: each of its dims is 1 or the normalized dim it lines up with
        tail = inner[len(inner) - len(s):] if len(s) <= len(inner) else None
        if tail is None or any(isinstance(d, int) and isinstance(t, int) and d not in (1, t)
                               for d, t in zip(s, tail)):
            raise ctx.error(f"{name} {tuple(s)} must broadcast to the normalized dims {inner}")
    if 0 in inner:  # onnxruntime refuses it too: mean and variance of nothing
        raise ctx.error(f"the normalized dims {inner} (axis {axis} of {tuple(x)}) must not be empty")
    stat = tuple(x[:axis]) + (1,) * (len(x) - axis)
    stash = np.dtype(_STASH.get(ctx.attrs["stash_type"], np.float32)).name
    return [(ctx.dtype(0), tuple(x)), (stash, stat), (stash, stat)][: max(ctx.num_outputs, 1)]


@op("LayerNormalization", inputs=["X", "Scale", "B?"], outputs=["Y", "Mean?", "InvStdDev?"],
    attrs=(Attr("axis", AttrKind.INT, -1), Attr("epsilon", AttrKind.FLOAT, 1e-5),
           Attr("stash_type", AttrKind.INT, 1)),
    infer=_infer_layer_norm)
def layer_normalization(x, scale, b=None, *, axis, epsilon, stash_type):
    """ONNX LayerNormalization over dims [axis, rank).

    Mean and InvStdDev have X's shape with the normalized dims set to 1; they
    are computed (and returned) in the stash type (float32 for stash_type=1).
    """
    axis %= x.ndim
    stash = np.dtype(_STASH.get(stash_type, np.float32))
    dt = np.promote_types(stash, compute_dtype(x.dtype))
    xf = x.astype(dt)
    axes = tuple(range(axis, x.ndim))
    mean = xf.mean(axis=axes, keepdims=True)
    d = xf - mean
    inv_std = 1 / np.sqrt((d * d).mean(axis=axes, keepdims=True) + dt.type(epsilon))
    y = d * inv_std * scale.astype(dt)
    if b is not None:
        y = y + b.astype(dt)
    return y.astype(x.dtype), mean.astype(stash), inv_std.astype(stash)


@op("LRN", inputs=["X"], outputs=["Y"], infer=same_as_input(0),
    attrs=(Attr("size", AttrKind.INT), Attr("alpha", AttrKind.FLOAT, 1e-4),
           Attr("beta", AttrKind.FLOAT, 0.75), Attr("bias", AttrKind.FLOAT, 1.0)))
def lrn(x, *, size, alpha, beta, bias):
    """ONNX LRN across channels (axis 1):
    Y = X / (bias + alpha / size * sum_{c' in [c - (size-1)//2, c + ceil((size-1)/2)]} X[c']^2) ^ beta.
    """
    xf = _f(x)
    sq = xf * xf
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    c = x.shape[1]
    padded = np.pad(sq.astype(np.float64), [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    # Sum of the `size` channels of each window, slice by slice (not a running cumsum,
    # which would carry a NaN or inf into every later window).
    window = sum(padded[:, t:t + c] for t in range(size)).astype(xf.dtype)
    return (xf / (bias + (alpha / size) * window) ** beta).astype(x.dtype)


@op("LpNormalization", inputs=["input"], outputs=["output"], infer=same_as_input(0),
    attrs=(Attr("axis", AttrKind.INT, -1), Attr("p", AttrKind.INT, 2)))
def lp_normalization(x, *, axis, p):
    """ONNX LpNormalization (p = 1 or 2) along `axis`; a zero norm gives zeros."""
    xf = _f(x)
    if p == 1:
        norm = np.abs(xf).sum(axis=axis, keepdims=True)
    elif p == 2:
        norm = np.sqrt((xf * xf).sum(axis=axis, keepdims=True))
    else:
        raise ValueError(f"LpNormalization: p must be 1 or 2, got {p}")
    safe = np.where(norm == 0, 1, norm)
    return np.where(norm == 0, 0, xf / safe).astype(x.dtype)


@op("MeanVarianceNormalization", inputs=["X"], outputs=["Y"], infer=same_as_input(0),
    attrs=(Attr("axes", AttrKind.INTS, [0, 2, 3]),))
def mean_variance_normalization(x, *, axes):
    """ONNX MeanVarianceNormalization: (X - mean) / (std + 1e-9) over `axes`.

    Computed in float64 (as the C++ kernel does): with the 1e-9 floor a float32 mean
    that is off by an ulp turns a constant group into +-1 instead of 0, and the
    squares of float32 values over ~1.8e19 would overflow.
    """
    xf = x.astype(np.float64)
    axes = tuple(a % x.ndim for a in axes)
    mean = xf.mean(axis=axes, keepdims=True)
    std = np.sqrt(((xf - mean) ** 2).mean(axis=axes, keepdims=True))
    return ((xf - mean) / (std + 1e-9)).astype(x.dtype)
