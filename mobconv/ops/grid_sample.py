"""GridSample (ONNX opset 22): sample X (N, C, D1..Dr) at the normalized
coordinates of grid (N, H1..Hr, r) -> Y (N, C, H1..Hr).

grid[..., 0] is the x (last, width) coordinate, grid[..., r-1] the first
spatial dim's. Steps per output point and spatial dim of size d:
  1. denormalize (float32): align_corners=1 maps -1..1 to 0..d-1, otherwise
     to -0.5..d-0.5;
  2. nearest mode rounds half to even (PyTorch);
  3. a coordinate outside [lo, hi] (the mapped range) is clamped to [0, d-1]
     (padding_mode border) or reflected into [lo, hi] (reflection);
  4. taps: nearest the coordinate itself (truncated), linear floor and floor+1
     with weights 1-f, f, cubic floor-1..floor+2 with Keys (a=-0.75) weights;
  5. a tap outside 0..d-1 reads 0 (zeros), the clamped index (border) or the
     reflected index (reflection). The taps of all dims multiply (separable).
A NaN coordinate gives NaN; +-inf is outside: 0 (zeros), the edge (border),
NaN (reflection: no position to reflect).
"""
import itertools

import numpy as np

from .registry import Attr, AttrKind, op
from .shape_ops import fmt_shape

MODES = {"linear": "linear", "nearest": "nearest", "cubic": "cubic",
         "bilinear": "linear", "bicubic": "cubic"}  # opset 16 names too
PADDING = ("zeros", "border", "reflection")


def _check(mode, padding_mode, fail):
    if mode not in MODES:
        raise fail(f"mode {mode!r} is not one of linear, nearest, cubic")
    if padding_mode not in PADDING:
        raise fail(f"padding_mode {padding_mode!r} is not one of {', '.join(PADDING)}")


def _grid_sample_infer(ctx):
    _check(ctx.attrs["mode"], ctx.attrs["padding_mode"], ctx.error)
    x, g = tuple(ctx.shape(0)), tuple(ctx.shape(1))
    r = len(x) - 2
    if r < 1 or len(g) != r + 2 or (isinstance(g[-1], int) and g[-1] != r):
        raise ctx.error(f"X {fmt_shape(x)} and grid {fmt_shape(g)} must be (N, C, D1..Dr) and "
                        "(N, H1..Hr, r), r >= 1")
    if isinstance(x[0], int) and isinstance(g[0], int) and x[0] != g[0]:
        raise ctx.error(f"X {fmt_shape(x)} and grid {fmt_shape(g)} must have the same batch size N")
    if 0 in x[2:]:  # onnxruntime refuses it too: there is nothing to sample from
        raise ctx.error(f"X {fmt_shape(x)} has an empty spatial dim: GridSample needs D1..Dr >= 1")
    return [(ctx.dtype(0), x[:2] + g[1:-1])]


def _reflect(x, lo, hi):
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    below, above = x < lo, x > hi
    dx = np.where(below, lo - x, x - hi)
    n = np.trunc(dx / span)
    rem = dx - n * span
    even = n % 2 == 0
    low = np.where(even, lo + rem, hi - rem)
    high = np.where(even, hi - rem, lo + rem)
    return np.where(below, low, np.where(above, high, x))


def _cubic(t):
    a = -0.75
    c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    c1 = ((a + 2) * t - (a + 3)) * t * t + 1
    c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    c3 = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a
    return [c0, c1, c2, c3]


def _taps(coord, d, mode, padding, align):
    """(indices, weights, valid) per tap for one spatial dim; coord float32 (P,)."""
    lo, hi = (0.0, d - 1.0) if align else (-0.5, d - 0.5)
    x = coord.astype(np.float64)
    if mode == "nearest":
        x = np.rint(x)
    out = (x < lo) | (x > hi)
    if padding == "border":
        x = np.where(out, np.clip(x, 0, d - 1), x)
    elif padding == "reflection":
        x = np.where(out, _reflect(x, lo, hi), x)
    # A NaN coordinate gives NaN at that point; +-inf (left only by zeros padding) and any
    # coordinate far outside read padding only. Clipped so the int conversion is defined.
    nan = np.isnan(x)
    x = np.where(nan, 0.0, np.clip(x, -(d + 4.0), d + 4.0))
    if mode == "nearest":
        idx, w = [np.trunc(x).astype(np.int64)], [np.ones_like(x)]
    else:
        f = np.floor(x)
        t = x - f
        base = f.astype(np.int64)
        if mode == "linear":
            idx, w = [base, base + 1], [1 - t, t]
        else:
            idx, w = [base - 1, base, base + 1, base + 2], _cubic(t)
    taps = []
    for i, wt in zip(idx, w):
        valid = np.ones(i.shape, bool)
        if padding == "zeros":
            valid = (i >= 0) & (i < d)
        elif padding == "border":
            i = np.clip(i, 0, d - 1)
        else:
            i = np.trunc(_reflect(i.astype(np.float64), lo, hi)).astype(np.int64)
            i = np.clip(i, 0, d - 1)
        taps.append((np.clip(i, 0, d - 1), np.where(nan, np.nan, wt), valid | nan))
    return taps


@op("GridSample", inputs=["X", "grid"], outputs=["Y"],
    attrs=[Attr("align_corners", AttrKind.INT, 0), Attr("mode", AttrKind.STRING, "linear"),
           Attr("padding_mode", AttrKind.STRING, "zeros")],
    infer=_grid_sample_infer)
def grid_sample(x, grid, align_corners, mode, padding_mode):
    """See the module docstring; float16/bfloat16 compute in float32."""
    _check(mode, padding_mode, lambda m: ValueError(f"GridSample: {m}"))
    mode = MODES[mode]
    dtype = x.dtype
    xf = x.astype(np.float32)
    n, c = x.shape[:2]
    dims = x.shape[2:]
    r = len(dims)
    out_sp = grid.shape[1:-1]
    y = np.zeros((n, c, int(np.prod(out_sp, dtype=np.int64))), np.float64)
    if y.size == 0:  # (the batch, the channels or the sampled points are empty)
        return y.reshape((n, c) + tuple(out_sp)).astype(dtype)
    g = grid.astype(np.float32).reshape(n, -1, r)
    for b in range(n):
        taps = []
        for k, d in enumerate(dims):
            u = g[b, :, r - 1 - k]
            coord = (u + np.float32(1)) / np.float32(2) * np.float32(d - 1) if align_corners \
                else ((u + np.float32(1)) * np.float32(d) - np.float32(1)) / np.float32(2)
            taps.append(_taps(coord.astype(np.float32), d, mode, padding_mode, align_corners))
        plane = xf[b].reshape(c, -1).astype(np.float64)
        strides = [int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(r)]
        for combo in itertools.product(*taps):
            off = sum(t[0] * s for t, s in zip(combo, strides))
            w = np.prod([t[1] for t in combo], axis=0)
            valid = np.logical_and.reduce([t[2] for t in combo])
            y[b] += np.where(valid, w * plane[:, off], 0.0)  # padding taps add nothing
    return y.reshape((n, c) + tuple(out_sp)).astype(dtype)
