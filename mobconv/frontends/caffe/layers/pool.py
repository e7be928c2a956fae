"""Pooling -> MaxPool / AveragePool / Global*Pool, with Caffe's geometry.

Caffe's output size is ceil((in + 2*pad - kernel) / stride) + 1, minus one
when pad > 0 and the last window would start at or beyond in + pad (it is
clipped away). That is the IR's ceil_mode=1 rule whenever pad > 0 or
stride <= kernel (with pad 0 the clip can only fire when stride > kernel), so
those poolings become one MaxPool/AveragePool with symmetric pads, valid at any
input size (dynamic.py keeps such nets' H/W symbolic). The rest run in floor
mode with explicit end pads chosen for the declared size.

Caffe's AVE divides by the window clipped to the *padded* input
[-pad, in + pad), not by the taps inside the input: AveragePool with
count_include_pad=1 and symmetric pads (ceil-mode overhang never counts). In
the explicit-geometry form, count_include_pad=1 (or 0) matches when the end pad
equals pad (or pad is 0); otherwise the output is multiplied by a constant map
of count ratios.
"""
from __future__ import annotations

import math

import numpy as np

from . import REGISTRY


def _pair(p, name, h, w, default, ctx):
    if ctx.explicit("pooling_param", h) or ctx.explicit("pooling_param", w):
        return [p.int(h, default), p.int(w, default)]
    value = p.int(name, default) if p.has(name) or default is not None else None
    if value is None:
        raise ctx.error(f"{name} is required (or {h} and {w}) unless global_pooling is set")
    return [value, value]


def caffe_pool_size(size, kernel, stride, pad, ceil_mode=True):
    rounder = math.ceil if ceil_mode else math.floor
    out = int(rounder((size + 2 * pad - kernel) / stride)) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _counts(size, out, kernel, stride, begin, hi):
    """Per output position: number of taps in [-begin, hi) of each window."""
    starts = np.arange(out) * stride - begin
    taps = starts[:, None] + np.arange(kernel)[None, :]
    return ((taps >= -begin) & (taps < hi)).sum(axis=1)


@REGISTRY.register("Pooling")
def pooling(ctx):
    ctx.check_arity(1)
    p = ctx.param("pooling_param")
    method = p.choice("pool", ["MAX", "AVE"], "MAX")
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    if len(shape) != 4:
        raise ctx.error(f"input must be 4-D (N, C, H, W), got shape {shape}")
    if p.int("global_pooling", 0):
        ctx.node("GlobalMaxPool" if method == "MAX" else "GlobalAveragePool", [x], ctx.outputs[0])
        return
    kernel = _pair(p, "kernel_size", "kernel_h", "kernel_w", None, ctx)
    stride = _pair(p, "stride", "stride_h", "stride_w", 1, ctx)
    pad = _pair(p, "pad", "pad_h", "pad_w", 0, ctx)
    for name, vals in (("kernel_size", kernel), ("stride", stride)):
        if any(v < 1 for v in vals):
            raise ctx.error(f"{name} ({min(vals)}) must be positive")
    if any(pd >= k for pd, k in zip(pad, kernel)):
        raise ctx.error(f"pad ({pad}) must be smaller than the kernel ({kernel})")
    ceil_mode = bool(p.int("ceil_mode", 1))
    sizes = shape[2:]
    out = [caffe_pool_size(s, k, st, pd, ceil_mode) for s, k, st, pd in zip(sizes, kernel, stride, pad)]
    if any(o < 1 for o in out):
        raise ctx.error(f"output would be empty (input {shape}, kernel {kernel}, stride {stride}, pad {pad})")
    if not ceil_mode or all(pd > 0 or st <= k for pd, st, k in zip(pad, stride, kernel)):
        # the IR's own ceil_mode (last window starts inside input + left pad) is Caffe's
        # rule here, and count_include_pad=1 divides by the window clipped to
        # [-pad, in + pad) as Caffe's AVE does: one IR node for every input size
        attrs = dict(kernel_shape=kernel, strides=stride, pads=pad + pad, ceil_mode=int(ceil_mode))
        if method == "MAX":
            ctx.node("MaxPool", [x], ctx.outputs[0], attrs)
        else:
            ctx.node("AveragePool", [x], ctx.outputs[0], dict(attrs, count_include_pad=1))
        return
    # pad 0 with stride > kernel in ceil mode: Caffe keeps a last window that starts
    # beyond the input, the IR's ceil_mode drops it: explicit geometry for this size
    end = [max(0, (o - 1) * st + k - s - pd) for o, st, k, s, pd in zip(out, stride, kernel, sizes, pad)]
    attrs = dict(kernel_shape=kernel, strides=stride, pads=pad + end)
    natural = [(s + pd + e - k) // st + 1 for s, pd, e, k, st in zip(sizes, pad, end, kernel, stride)]
    crop = natural != out
    target = ctx.outputs[0] if not crop else None
    if method == "MAX":
        y = ctx.node("MaxPool", [x], target, attrs)
    else:
        caffe = [_counts(s, o, k, st, pd, s + pd) for s, o, k, st, pd in zip(sizes, out, kernel, stride, pad)]
        include = [_counts(s, o, k, st, pd, s + e) for s, o, k, st, pd, e in zip(sizes, out, kernel, stride, pad, end)]
        exclude = [_counts_valid(s, o, k, st, pd) for s, o, k, st, pd in zip(sizes, out, kernel, stride, pad)]
        if all(np.array_equal(c, i) for c, i in zip(caffe, include)):
            y = ctx.node("AveragePool", [x], target, dict(attrs, count_include_pad=1))
        elif all(np.array_equal(c, e) for c, e in zip(caffe, exclude)):
            y = ctx.node("AveragePool", [x], target, dict(attrs, count_include_pad=0))
        else:
            ratio = np.outer(exclude[0] / caffe[0], exclude[1] / caffe[1]).astype(np.float32)
            avg = ctx.node("AveragePool", [x], None, dict(attrs, count_include_pad=0))
            y = ctx.node("Mul", [avg, ctx.const(ratio[None, None], "divisor_fix")], target)
    if crop:
        ctx.node("Slice", [y, ctx.ints([0, 0]), ctx.ints(out), ctx.ints([2, 3])], ctx.outputs[0])


def _counts_valid(size, out, kernel, stride, pad):
    """Taps inside the unpadded input [0, size) of each window."""
    starts = np.arange(out) * stride - pad
    taps = starts[:, None] + np.arange(kernel)[None, :]
    return ((taps >= 0) & (taps < size)).sum(axis=1)
