"""Spatial rearrangement: Resize (ONNX opset 19+), DepthToSpace, SpaceToDepth.

Resize is separable, so it runs one axis at a time. For each resized axis:
  1. map every output index to a source coordinate x (coordinate_transformation_mode);
  2. nearest: round x (nearest_mode) and gather;
     linear/cubic: taps at base + i around base = ceil(x) - 1, weighted by the
     filter at distance (i - (x - base)) * s, where s = scale when antialias
     downsamples (widening the filter) and 1 otherwise; exclude_outside drops
     taps outside the input and renormalizes; remaining taps clamp to the edge;
  3. one gather + weighted sum over the taps (float64), then cast back.
tf_crop_and_resize writes extrapolation_value where x falls outside the input.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import Attr, AttrKind, InferContext, op


def _sym(d) -> bool:
    return not isinstance(d, (int, np.integer))


def _present(a):
    return a is not None and np.asarray(a).size > 0


def _full_params(rank, axes, scales, sizes, roi):
    """Expand per-axis scales/sizes/roi to full rank (identity on other axes)."""
    axes = [a % rank for a in axes] if axes else list(range(rank))
    full_scales = full_sizes = full_roi = None
    if scales is not None:
        full_scales = [1.0] * rank
        for a, s in zip(axes, scales):
            full_scales[a] = float(s)
    if sizes is not None:
        full_sizes = [None] * rank
        for a, s in zip(axes, sizes):
            full_sizes[a] = int(s)
    if roi is not None:
        roi = [float(v) for v in np.asarray(roi).ravel()]
        full_roi = [0.0] * rank + [1.0] * rank
        n = len(axes)
        for i, a in enumerate(axes):
            full_roi[a], full_roi[rank + a] = roi[i], roi[n + i]
    return axes, full_scales, full_sizes, full_roi


def output_geometry(in_shape, axes, scales, sizes, policy):
    """(scales, out_sizes) over the full rank, following ONNX's rules.

    From scales: out = floor(in * scale). From sizes: scale = out / in, and a
    keep_aspect_ratio_policy other than "stretch" uses one scale (min for
    not_larger, max for not_smaller) for all `axes` and rounds out half up.
    """
    rank = len(in_shape)
    if sizes is not None:  # an empty dim only resizes to 0 (check_sizes): any scale will do
        scales = [1.0 if s is None or in_shape[i] == 0 else s / in_shape[i] for i, s in enumerate(sizes)]
        out = [in_shape[i] if s is None else s for i, s in enumerate(sizes)]
        if policy != "stretch":
            chosen = [scales[a] for a in axes]
            scale = min(chosen) if policy == "not_larger" else max(chosen)
            scales = [scale if i in axes else 1.0 for i in range(rank)]
            out = [int(scale * in_shape[i] + 0.5) if i in axes else in_shape[i] for i in range(rank)]
        return scales, out
    return scales, [int(math.floor(in_shape[i] * scales[i])) for i in range(rank)]


def check_sizes(in_shape, axes, sizes, policy, fail):
    """The rules for `sizes` (one per axis) on input dims `in_shape` (onnxruntime's): sizes
    are >= 0; an empty input dim resizes only to 0, and not with a keep_aspect_ratio_policy
    (the aspect ratio of an empty dim is undefined)."""
    for ax, size in zip(axes, sizes):
        if size < 0:
            raise fail(f"sizes {list(sizes)} must be >= 0")
        if in_shape[ax] != 0:
            continue
        if policy != "stretch":
            raise fail(f"keep_aspect_ratio_policy {policy!r} needs non-empty input dims on the "
                       f"resized axes, dim {ax} of {tuple(in_shape)} is 0")
        if size != 0:
            raise fail(f"cannot resize the empty dim {ax} of input {tuple(in_shape)} to size {size}")


def _source_coords(mode, y, scale, n_in, n_out, roi):
    out_f = scale * n_in  # the un-floored output length
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / out_f)
        return offset + (y + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (y + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(y)
    if mode == "align_corners":  # ONNX divides by the un-floored length (scale * n_in)
        return y * (n_in - 1) / (out_f - 1) if out_f != 1 else np.zeros_like(y)
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out_f != 1:
            x = start * (n_in - 1) + y * (end - start) * (n_in - 1) / (out_f - 1)
        else:
            x = np.full_like(y, 0.5 * (start + end) * (n_in - 1))
        return x
    raise ValueError(f"Resize: unknown coordinate_transformation_mode {mode!r}")


def _nearest_index(x, nearest_mode):
    if nearest_mode == "round_prefer_floor":
        return np.where(x - np.floor(x) == 0.5, np.floor(x), np.round(x))
    if nearest_mode == "round_prefer_ceil":
        return np.where(x - np.floor(x) == 0.5, np.ceil(x), np.round(x))
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    raise ValueError(f"Resize: unknown nearest_mode {nearest_mode!r}")


def _cubic(t, a):
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _resize_axis(data, axis, scale, n_out, roi, attrs):
    n_in = data.shape[axis]
    y = np.arange(n_out, dtype=np.float64)
    x = _source_coords(attrs["coordinate_transformation_mode"], y, scale, n_in, n_out, roi)
    mode = attrs["mode"]
    if mode == "nearest":
        idx = np.clip(_nearest_index(x, attrs["nearest_mode"]), 0, n_in - 1).astype(np.intp)
        result = np.take(data, idx, axis=axis)
    else:
        radius = 1 if mode == "linear" else 2
        s = scale if attrs["antialias"] and scale < 1 else 1.0
        start = int(math.floor(-radius / s)) + 1
        taps = np.arange(start, 2 - start)
        base = np.ceil(x) - 1
        ratio = x - base  # in (0, 1]
        dist = (taps[None, :] - ratio[:, None]) * s
        if mode == "linear":
            w = np.clip(1 - np.abs(dist), 0, 1)
        elif mode == "cubic":
            w = _cubic(dist, attrs["cubic_coeff_a"])
        else:
            raise ValueError(f"Resize: unknown mode {mode!r}")
        if s != 1.0:
            w = w / w.sum(axis=1, keepdims=True)
        idx = base.astype(np.int64)[:, None] + taps[None, :]
        if attrs["exclude_outside"]:
            w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
            total = w.sum(axis=1, keepdims=True)
            w = w / np.where(total == 0, 1.0, total)
        idx = np.clip(idx, 0, n_in - 1)
        gathered = np.take(data, idx, axis=axis)  # axis -> (n_out, taps)
        shape = (1,) * axis + w.shape + (1,) * (data.ndim - axis - 1)
        result = (gathered * w.reshape(shape)).sum(axis=axis + 1)
    if attrs["coordinate_transformation_mode"] == "tf_crop_and_resize":
        outside = (x < 0) | (x > n_in - 1)
        if outside.any():
            mask = outside.reshape((1,) * axis + (n_out,) + (1,) * (data.ndim - axis - 1))
            result = np.where(mask, attrs["extrapolation_value"], result)
    return result


_RESIZE_ATTRS = (
    Attr("antialias", AttrKind.INT, 0),
    Attr("axes", AttrKind.INTS, []),
    Attr("coordinate_transformation_mode", AttrKind.STRING, "half_pixel"),
    Attr("cubic_coeff_a", AttrKind.FLOAT, -0.75),
    Attr("exclude_outside", AttrKind.INT, 0),
    Attr("extrapolation_value", AttrKind.FLOAT, 0.0),
    Attr("keep_aspect_ratio_policy", AttrKind.STRING, "stretch"),
    Attr("mode", AttrKind.STRING, "nearest"),
    Attr("nearest_mode", AttrKind.STRING, "round_prefer_floor"),
)


def _infer_resize(ctx: InferContext):
    x = tuple(ctx.shape(0))
    a = ctx.attrs
    rank = len(x)
    axes = a["axes"] or list(range(rank))
    if any(not -rank <= ax < rank for ax in axes):
        raise ctx.error(f"axes {a['axes']} out of range for rank {rank}")
    axes = [ax % rank for ax in axes]
    has_scales = ctx.shape(2) is not None and 0 not in ctx.shape(2)
    has_sizes = ctx.shape(3) is not None and 0 not in ctx.shape(3)
    if has_scales == has_sizes:
        raise ctx.error("exactly one of scales (input 2) and sizes (input 3) must be given")
    given = ctx.shape(2) if has_scales else ctx.shape(3)
    if len(given) != 1 or (not _sym(given[0]) and given[0] != len(axes)):
        raise ctx.error(f"{'scales' if has_scales else 'sizes'} must have {len(axes)} values, got shape {given}")
    if a["coordinate_transformation_mode"] == "tf_crop_and_resize":
        roi = ctx.shape(1)
        if roi is None or len(roi) != 1 or (not _sym(roi[0]) and roi[0] != 2 * len(axes)):
            raise ctx.error(f"tf_crop_and_resize needs roi (input 1) with 2 values per resized axis "
                            f"({2 * len(axes)}), got {'none' if roi is None else f'shape {tuple(roi)}'}")
        if ctx.const(1) is not None and not np.isfinite(np.asarray(ctx.const(1), np.float64)).all():
            raise ctx.error(f"roi must be finite, got {np.asarray(ctx.const(1)).ravel().tolist()}")
    data = ctx.const(2) if has_scales else ctx.const(3)
    sym = None if has_scales or data is not None else ctx.sym_value(3)
    if sym is not None and len(sym) == len(axes) and a["keep_aspect_ratio_policy"] == "stretch":
        # sizes computed from shapes at run time (interpolate(size=x.shape[-2:])): exact dims
        out = list(x)
        for ax, s in zip(axes, sym):
            out[ax] = s
        return [(ctx.dtype(0), tuple(out))]
    if data is None:  # dynamic: resized dims become new symbols
        out = tuple(f"{ctx.node.name}_dim{i}" if i in axes else d for i, d in enumerate(x))
        return [(ctx.dtype(0), out)]
    if has_scales:
        scales = [1.0] * rank
        for ax, s in zip(axes, np.asarray(data).ravel()):
            scales[ax] = float(s)
        if not all(math.isfinite(s) and s > 0 for s in scales):
            raise ctx.error(f"scales must be finite and positive, got {list(np.asarray(data).ravel())}")
        out = []
        for d, s in zip(x, scales):
            if _sym(d):
                out.append(d if s == 1.0 else f"floor({d}*{s:g})")
            else:
                out.append(int(math.floor(d * s)))
        return [(ctx.dtype(0), tuple(out))]
    sizes = [None] * rank
    for ax, s in zip(axes, np.asarray(data).ravel()):
        sizes[ax] = int(s)
    known = [ax for ax in axes if not _sym(x[ax])]
    check_sizes(x, known, [sizes[ax] for ax in known], a["keep_aspect_ratio_policy"], ctx.error)
    if a["keep_aspect_ratio_policy"] == "stretch" or not any(_sym(x[ax]) for ax in axes):
        if any(_sym(d) for d in x):
            return [(ctx.dtype(0), tuple(d if s is None else s for d, s in zip(x, sizes)))]
        _, out = output_geometry(x, axes, None, sizes, a["keep_aspect_ratio_policy"])
        return [(ctx.dtype(0), tuple(out))]
    out = tuple(f"{ctx.node.name}_dim{i}" if i in axes else d for i, d in enumerate(x))
    return [(ctx.dtype(0), out)]


@op("Resize", inputs=["X", "roi?", "scales?", "sizes?"], outputs=["Y"], attrs=_RESIZE_ATTRS,
    infer=_infer_resize)
def resize(x, roi=None, scales=None, sizes=None, **attrs):
    """ONNX Resize (opset 19+): exactly one of scales/sizes; roi only matters for
    tf_crop_and_resize. Empty roi/scales/sizes tensors count as absent."""
    from .shape_ops import check_values

    check_values("Resize", [x, roi, scales, sizes], attrs)
    rank = x.ndim
    scales = np.asarray(scales, dtype=np.float64).ravel() if _present(scales) else None
    sizes = np.asarray(sizes, dtype=np.int64).ravel() if _present(sizes) else None
    roi = roi if _present(roi) else None
    if (scales is None) == (sizes is None):
        raise ValueError("Resize: exactly one of scales and sizes must be given")
    axes, scales, sizes, roi = _full_params(rank, attrs["axes"], scales, sizes, roi)
    if scales is not None and not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"Resize: scales must be finite and positive, got {scales}")
    if sizes is not None:
        check_sizes(x.shape, axes, [sizes[ax] for ax in axes], attrs["keep_aspect_ratio_policy"],
                    lambda m: ValueError(f"Resize: {m}"))
    scales, out = output_geometry(x.shape, axes, scales, sizes, attrs["keep_aspect_ratio_policy"])
    crop = attrs["coordinate_transformation_mode"] == "tf_crop_and_resize"
    if crop and roi is None:
        raise ValueError("Resize: tf_crop_and_resize needs the roi input")
    if crop and not all(math.isfinite(v) for v in roi):
        raise ValueError(f"Resize: roi must be finite, got {roi}")
    if 0 in out:  # nothing to sample (an empty input always gives an empty output)
        return np.zeros(out, x.dtype)
    result = x.astype(np.float64)
    for axis in axes:
        if out[axis] == x.shape[axis] and scales[axis] == 1.0 and not crop:
            continue  # identity along this axis in every coordinate mode
        axis_roi = (roi[axis], roi[rank + axis]) if roi is not None else None
        result = _resize_axis(result, axis, scales[axis], out[axis], axis_roi, attrs)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        result = np.clip(np.rint(result), info.min, info.max)
    return result.astype(x.dtype)


def _block_rearrange_args(ctx: InferContext) -> tuple:
    """(n, c, h, w, blocksize) of a DepthToSpace/SpaceToDepth node, after its shared rules."""
    x = ctx.shape(0)
    b = ctx.attrs["blocksize"]
    if len(x) != 4:
        raise ctx.error(f"input must be 4-D (N, C, H, W), got shape {tuple(x)}")
    if b < 1 or ctx.attrs["mode"] not in ("DCR", "CRD"):
        raise ctx.error(f"blocksize must be >= 1 and mode DCR or CRD, got {b}, {ctx.attrs['mode']!r}")
    return (*x, b)


def _infer_depth_to_space(ctx: InferContext):
    n, c, h, w, b = _block_rearrange_args(ctx)
    if not _sym(c) and c % (b * b):
        raise ctx.error(f"channels {c} must be divisible by blocksize^2 = {b * b}")
    mul = (lambda d: d * b if not _sym(d) else (d if b == 1 else f"{d}*{b}"))
    return [(ctx.dtype(0), (n, c // (b * b) if not _sym(c) else f"{c}/{b * b}", mul(h), mul(w)))]


@op("DepthToSpace", inputs=["input"], outputs=["output"],
    attrs=(Attr("blocksize", AttrKind.INT), Attr("mode", AttrKind.STRING, "DCR")),
    infer=_infer_depth_to_space)
def depth_to_space(x, *, blocksize, mode):
    """ONNX DepthToSpace: (N, C, H, W) -> (N, C/b^2, H*b, W*b); DCR (depth-column-row,
    the TensorFlow order) or CRD (column-row-depth, PyTorch's PixelShuffle)."""
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c // (b * b), h * b, w * b)


def _infer_space_to_depth(ctx: InferContext):
    n, c, h, w, b = _block_rearrange_args(ctx)
    for name, d in (("height", h), ("width", w)):
        if not _sym(d) and d % b:
            raise ctx.error(f"{name} {d} must be divisible by blocksize {b}")
    div = (lambda d: d // b if not _sym(d) else (d if b == 1 else f"{d}/{b}"))
    return [(ctx.dtype(0), (n, c * b * b if not _sym(c) else f"{c}*{b * b}", div(h), div(w)))]


@op("SpaceToDepth", inputs=["input"], outputs=["output"],
    attrs=(Attr("blocksize", AttrKind.INT), Attr("mode", AttrKind.STRING, "DCR")),
    infer=_infer_space_to_depth)
def space_to_depth(x, *, blocksize, mode):
    """ONNX SpaceToDepth (opset 28): (N, C, H, W) -> (N, C*b^2, H/b, W/b); the inverse
    of DepthToSpace with the same mode (DCR: channel = (bh*b + bw)*C + c; CRD: c*b^2 + bh*b + bw)."""
    n, c, h, w = x.shape
    b = blocksize
    t = x.reshape(n, c, h // b, b, w // b, b)
    t = t.transpose(0, 3, 5, 1, 2, 4) if mode == "DCR" else t.transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(n, c * b * b, h // b, w // b)
