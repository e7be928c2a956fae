"""Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (ONNX opset 22).

Windows follow the convolution geometry of conv.py (`conv_pads`): explicit
pads or auto_pad, strides, dilations, and ceil_mode where the last window
must start inside the input or the left padding (ONNX >= 19; this is also
Caffe's ceil-mode rule). Algorithm: pad X (with -inf for max, 0 for
average) far enough for every window, take a strided view of all windows
without copying, reduce over the kernel axes. AveragePool divides by the
number of window taps inside the input (count_include_pad=0) or inside
input + explicit pads (count_include_pad=1); taps in the ceil-mode overhang
never count. The divisor is separable, so it is an outer product of 1-D counts.
"""
from __future__ import annotations

import numpy as np

from .conv import AUTO_PADS, compute_dtype, conv_pads, pad_spatial, spatial_defaults, window_view
from .registry import Attr, AttrKind, InferContext, op


def _sym(d) -> bool:
    return not isinstance(d, (int, np.integer))


_POOL_ATTRS = (
    Attr("auto_pad", AttrKind.STRING, "NOTSET"),
    Attr("ceil_mode", AttrKind.INT, 0),
    Attr("dilations", AttrKind.INTS, []),
    Attr("kernel_shape", AttrKind.INTS),
    Attr("pads", AttrKind.INTS, []),
    Attr("strides", AttrKind.INTS, []),
)


def _geometry(in_sizes, a):
    nd = len(in_sizes)
    kernel, strides, dilations, pads = spatial_defaults(nd, a["kernel_shape"], a["strides"], a["dilations"], a["pads"])
    begin, end, out = conv_pads(in_sizes, kernel, strides, dilations, pads, a["auto_pad"], bool(a["ceil_mode"]))
    return kernel, strides, dilations, begin, end, out


def _only_batch_may_be_empty(ctx: InferContext, x):
    """onnxruntime's rule for every pool: an empty X is fine only with N = 0 (an empty
    window or no channels is refused)."""
    if 0 in x[1:] and x[0] != 0:
        raise ctx.error(f"X {tuple(x)} has an empty {'channel' if x[1] == 0 else 'spatial'} dim: "
                        "only the batch dim N of a pooling input may be 0")


def _infer_pool(ctx: InferContext):
    x = ctx.shape(0)
    a = ctx.attrs
    if len(x) < 3:
        raise ctx.error(f"X must have rank >= 3 (N, C, spatial...), got shape {tuple(x)}")
    _only_batch_may_be_empty(ctx, x)
    nd = len(x) - 2
    if a["auto_pad"] not in AUTO_PADS:
        raise ctx.error(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got {a['auto_pad']!r}")
    for name, n in (("kernel_shape", nd), ("strides", nd), ("dilations", nd), ("pads", 2 * nd)):
        vals = a[name]
        if (vals or name == "kernel_shape") and len(vals) != n:
            raise ctx.error(f"{name} must have {n} values for input {tuple(x)}, got {list(vals)}")
    if any(v < 1 for v in a["kernel_shape"] + a["strides"] + a["dilations"]):
        raise ctx.error("kernel_shape, strides and dilations must be >= 1")
    kernel, strides, dilations, begin, end, out = _geometry(x[2:], a)
    for i in range(nd):
        window = (kernel[i] - 1) * dilations[i] + 1
        if isinstance(begin[i], int) and begin[i] >= window:
            raise ctx.error(f"pad {begin[i]} must be smaller than the window ({window}) on spatial dim {i}")
        if not _sym(out[i]) and out[i] < 1:
            raise ctx.error(f"output spatial dim {i} would be {out[i]} (input {tuple(x)}, "
                            f"kernel {kernel}, pads {a['pads']}, strides {strides})")
    shape = (x[0], x[1], *out)
    return [(ctx.dtype(0), shape), ("int64", shape)][: max(ctx.num_outputs, 1)]


def _windows(x, a, fill):
    """(view (N, C, *k, *o), kernel, strides, dilations, begin, end, out) for pooling x."""
    kernel, strides, dilations, begin, end, out = _geometry(x.shape[2:], a)
    nd = len(kernel)
    need = [(out[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 for i in range(nd)]
    tail = [need[i] - x.shape[2 + i] - begin[i] for i in range(nd)]  # may crop (negative)
    xp = pad_spatial(x, begin, tail, fill)
    return window_view(xp, out, kernel, strides, dilations), kernel, strides, dilations, begin, end, out


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


@op("MaxPool", inputs=["X"], outputs=["Y", "Indices?"], infer=_infer_pool,
    attrs=_POOL_ATTRS + (Attr("storage_order", AttrKind.INT, 0),))
def max_pool(x, *, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, storage_order):
    """ONNX MaxPool. Indices (int64) index the flattened input tensor (batch and
    channel included); storage_order=1 numbers spatial positions column-major.
    Ties go to the first tap in row-major kernel order."""
    a = dict(auto_pad=auto_pad, ceil_mode=ceil_mode, dilations=dilations,
             kernel_shape=kernel_shape, pads=pads, strides=strides)
    view, kernel, strides, dilations, begin, _, out = _windows(x, a, _lowest(x.dtype))
    nd = len(kernel)
    n, c = x.shape[:2]
    flat = view.reshape(n, c, int(np.prod(kernel)), *out)  # not -1: n or c may be 0
    arg = np.argmax(flat, axis=2)
    y = np.take_along_axis(flat, arg[:, :, None], axis=2)[:, :, 0]
    # Padding never wins: a window whose maximum is the lowest value (every real tap
    # -inf) and whose first such tap is padding takes its first real tap instead.
    spatial = x.shape[2:]
    inside = _windows(np.ones((1, 1, *spatial), np.int8), a, 0)[0].reshape(1, 1, int(np.prod(kernel)), *out)
    first_inside = np.argmax(inside, axis=2)
    arg = np.where(np.take_along_axis(inside, arg[:, :, None], axis=2)[:, :, 0] != 0, arg, first_inside)
    # Input coordinates of the winning tap, then its flat index.
    taps = np.unravel_index(arg, kernel)
    pos = []
    for i in range(nd):
        o = np.arange(out[i]).reshape((-1,) + (1,) * (nd - 1 - i))
        pos.append(o * strides[i] - begin[i] + taps[i] * dilations[i])
    order = range(nd) if storage_order == 0 else reversed(range(nd))
    index = np.zeros(arg.shape, dtype=np.int64)
    for i in order:
        index = index * spatial[i] + pos[i]
    base = (np.arange(n * c, dtype=np.int64) * int(np.prod(spatial))).reshape((n, c) + (1,) * nd)
    return y, index + base


@op("AveragePool", inputs=["X"], outputs=["Y"], infer=_infer_pool,
    attrs=_POOL_ATTRS + (Attr("count_include_pad", AttrKind.INT, 0),))
def average_pool(x, *, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, count_include_pad):
    """ONNX AveragePool (see the module comment for the divisor rule)."""
    a = dict(auto_pad=auto_pad, ceil_mode=ceil_mode, dilations=dilations,
             kernel_shape=kernel_shape, pads=pads, strides=strides)
    cdt = compute_dtype(x.dtype)
    view, kernel, strides, dilations, begin, end, out = _windows(x.astype(cdt, copy=False), a, 0)
    nd = len(kernel)
    total = view.sum(axis=tuple(range(2, 2 + nd)))
    count = np.ones((), dtype=cdt)
    for i in range(nd):
        size = x.shape[2 + i]
        lo, hi = (-begin[i], size + end[i]) if count_include_pad else (0, size)
        taps = (np.arange(out[i])[:, None] * strides[i] - begin[i]
                + np.arange(kernel[i])[None, :] * dilations[i])
        counts = ((taps >= lo) & (taps < hi)).sum(axis=1).astype(cdt)
        count = np.multiply.outer(count, counts)
    return (total / np.maximum(count, 1)).astype(x.dtype, copy=False)


def _infer_global(ctx: InferContext):
    x = ctx.shape(0)
    if len(x) < 3:
        raise ctx.error(f"X must have rank >= 3 (N, C, spatial...), got shape {tuple(x)}")
    _only_batch_may_be_empty(ctx, x)
    return [(ctx.dtype(0), (x[0], x[1]) + (1,) * (len(x) - 2))]


@op("GlobalAveragePool", inputs=["X"], outputs=["Y"], infer=_infer_global)
def global_average_pool(x):
    """ONNX GlobalAveragePool: mean over all spatial dims, kept as size 1."""
    if x.size == 0:  # N = 0 (the only dim allowed to be 0): an empty output
        return np.zeros(x.shape[:2] + (1,) * (x.ndim - 2), x.dtype)
    xf = x.astype(compute_dtype(x.dtype), copy=False)
    return xf.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype, copy=False)


@op("GlobalMaxPool", inputs=["X"], outputs=["Y"], infer=_infer_global)
def global_max_pool(x):
    """ONNX GlobalMaxPool: max over all spatial dims, kept as size 1."""
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True, initial=_lowest(x.dtype))  # N = 0: empty
