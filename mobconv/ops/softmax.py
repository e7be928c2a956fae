"""Softmax family: Softmax, LogSoftmax, Hardmax (opset-13 single-axis semantics).

Each normalizes along one `axis` (default -1), not over a flattened 2-D view
as opsets < 13 did; frontends convert the old form. Softmax subtracts the
per-row max before exponentiating so large logits do not overflow.
"""
from __future__ import annotations

import numpy as np

from .conv import compute_dtype
from .registry import Attr, AttrKind, InferContext, op


def _infer_axis(ctx: InferContext):
    x = ctx.shape(0)
    axis = ctx.attrs["axis"]
    if not -max(len(x), 1) <= axis < max(len(x), 1):
        raise ctx.error(f"axis {axis} out of range for input of rank {len(x)} (shape {tuple(x)})")
    return [(ctx.dtype(0), tuple(x))]


_AXIS = (Attr("axis", AttrKind.INT, -1),)


@op("Softmax", inputs=["input"], outputs=["output"], attrs=_AXIS, infer=_infer_axis)
def softmax(x, *, axis):
    """ONNX Softmax: exp(x - max) / sum(exp(x - max)) along `axis`."""
    xf = x.astype(compute_dtype(x.dtype), copy=False)
    e = np.exp(xf - xf.max(axis=axis, keepdims=True, initial=-np.inf))  # initial: empty axes
    return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)


@op("LogSoftmax", inputs=["input"], outputs=["output"], attrs=_AXIS, infer=_infer_axis)
def log_softmax(x, *, axis):
    """ONNX LogSoftmax: (x - max) - log(sum(exp(x - max))) along `axis`."""
    xf = x.astype(compute_dtype(x.dtype), copy=False)
    shifted = xf - xf.max(axis=axis, keepdims=True, initial=-np.inf)
    return (shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(x.dtype, copy=False)


@op("Hardmax", inputs=["input"], outputs=["output"], attrs=_AXIS, infer=_infer_axis)
def hardmax(x, *, axis):
    """ONNX Hardmax: 1 at the first maximum along `axis`, 0 elsewhere."""
    if x.size == 0:  # an empty axis has no maximum (and the output is empty anyway)
        return np.zeros_like(x)
    idx = np.expand_dims(np.argmax(x, axis=axis), axis)
    y = np.zeros_like(x)
    np.put_along_axis(y, idx, 1, axis=axis)
    return y
