"""Resizing layers outside BVLC: Interp (PSPNet/DeepLab) and Upsample (YOLOv3 ports)."""
from __future__ import annotations

import numpy as np

from . import REGISTRY


def interp_size(size, p, ctx):
    """Interp's output size rule for one axis (of the padded input size)."""
    has = ctx.layer.param.interp_param.HasField
    zoom, shrink = p.int("zoom_factor", 1), p.int("shrink_factor", 1)
    if has("shrink_factor") and shrink < 1 or has("zoom_factor") and zoom < 1:
        raise ctx.error("zoom_factor and shrink_factor must be positive")
    if has("shrink_factor") and not has("zoom_factor"):
        return (size - 1) // shrink + 1
    if has("zoom_factor") and not has("shrink_factor"):
        return size + (size - 1) * (zoom - 1)
    if has("shrink_factor") and has("zoom_factor"):
        out = (size - 1) // shrink + 1
        return out + (out - 1) * (zoom - 1)
    return None


@REGISTRY.register("Interp")
def interp(ctx):
    """Bilinear resize with aligned corners. Output size: height/width, or the
    zoom/shrink factors, or bottom[1]'s spatial size; pad_beg/pad_end (<= 0) crop first."""
    ctx.check_arity((1, 2))
    p = ctx.param("interp_param")
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    if len(shape) != 4:
        raise ctx.error(f"input must be 4-D (N, C, H, W), got shape {shape}")
    pad_beg, pad_end = p.int("pad_beg", 0), p.int("pad_end", 0)
    if pad_beg > 0 or pad_end > 0:
        raise ctx.error(f"pad_beg ({pad_beg}) and pad_end ({pad_end}) must be <= 0 (crops)")
    h, w = shape[2] + pad_beg + pad_end, shape[3] + pad_beg + pad_end
    if pad_beg or pad_end:
        x = ctx.node("Slice", [x, ctx.ints([-pad_beg] * 2, "starts"),
                               ctx.ints([shape[2] + pad_end, shape[3] + pad_end], "ends"),
                               ctx.ints([2, 3], "axes")])
    if len(ctx.inputs) == 2:
        out = list(ctx.shape(ctx.inputs[1])[2:4])
    elif p.has("height") and p.has("width") and p.int("height") > 0 and p.int("width") > 0 and \
            not (ctx.layer.param.interp_param.HasField("zoom_factor")
                 or ctx.layer.param.interp_param.HasField("shrink_factor")):
        out = [p.int("height"), p.int("width")]
    else:
        out = [interp_size(h, p, ctx), interp_size(w, p, ctx)]
        if None in out:
            raise ctx.error("give height and width, zoom_factor and/or shrink_factor, or a second bottom")
    if any(o < 1 for o in out):
        raise ctx.error(f"output size {out} must be positive")
    sizes = ctx.ints(out, "sizes")  # H and W only (axes), so any batch works
    ctx.node("Resize", [x, "", "", sizes], ctx.outputs[0],
             dict(mode="linear", coordinate_transformation_mode="align_corners", axes=[2, 3]))


@REGISTRY.register("Upsample")
def upsample(ctx):
    """Nearest-neighbour upsampling by an integer scale (or to upsample_h/w).
    The SegNet form with a pooling-mask bottom (max unpooling) is not supported."""
    if len(ctx.inputs) == 2:
        raise ctx.error("the 2-bottom form (SegNet max unpooling with a pooling mask) is not supported")
    ctx.check_arity(1)
    p = ctx.param("upsample_param")
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    if len(shape) != 4:
        raise ctx.error(f"input must be 4-D (N, C, H, W), got shape {shape}")
    if p.has("upsample_h") and p.has("upsample_w"):
        out = [p.positive_int("upsample_h"), p.positive_int("upsample_w")]
    else:
        s = p.positive_int("scale", 2)
        out = [shape[2] * p.positive_int("scale_h", s), shape[3] * p.positive_int("scale_w", s)]
    scales = np.array([1, 1, out[0] / shape[2], out[1] / shape[3]], np.float32)
    ctx.node("Resize", [x, "", ctx.const(scales, "scales")], ctx.outputs[0],
             dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
