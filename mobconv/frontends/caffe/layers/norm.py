"""Normalization layers: LRN, BatchNorm, Scale, Bias, Normalize (SSD), MVN."""
from __future__ import annotations

import numpy as np

from . import REGISTRY


@REGISTRY.register("LRN")
def lrn(ctx):
    """ACROSS_CHANNELS is the IR LRN. WITHIN_CHANNEL (Caffe: x * (1 + alpha *
    mean of x^2 over a size x size window, zero padded) ^ -beta; k is unused)
    is decomposed: Mul -> AveragePool(count_include_pad) -> Mul/Add -> Pow -> Mul."""
    ctx.check_arity(1)
    p = ctx.param("lrn_param")
    size = p.positive_int("local_size", 5)
    alpha, beta, k = p.float("alpha", 1.0), p.float("beta", 0.75), p.float("k", 1.0)
    if size % 2 == 0:
        raise ctx.error(f"local_size ({size}) must be odd")
    x = ctx.inputs[0]
    if p.string("norm_region", "ACROSS_CHANNELS") == "ACROSS_CHANNELS":
        ctx.node("LRN", [x], ctx.outputs[0], dict(size=size, alpha=alpha, beta=beta, bias=k))
        return
    if ctx.rank(x) != 4:
        raise ctx.error(f"WITHIN_CHANNEL needs a 4-D input, got shape {ctx.shape(x)}")
    pad = (size - 1) // 2
    sq = ctx.node("Mul", [x, x], suffix="square")
    avg = ctx.node("AveragePool", [sq], attrs=dict(kernel_shape=[size, size], strides=[1, 1],
                                                   pads=[pad] * 4, count_include_pad=1))
    scaled = ctx.node("Mul", [avg, ctx.const(np.float32(alpha), "alpha")])
    shifted = ctx.node("Add", [scaled, ctx.const(np.float32(1.0), "one")])
    factor = ctx.node("Pow", [shifted, ctx.const(np.float32(-beta), "neg_beta")])
    ctx.node("Mul", [x, factor], ctx.outputs[0])


@REGISTRY.register("BatchNorm")
def batch_norm(ctx):
    """Blobs: mean, variance, scale factor (both divided by it; 0 means 0).
    use_global_stats false at test time normalizes with the batch statistics."""
    ctx.check_arity(1)
    p = ctx.param("batch_norm_param")
    eps = p.float("eps", 1e-5)
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    if len(shape) < 2:
        raise ctx.error(f"input must have a channel axis, got shape {shape}")
    c = shape[1]
    if not p.int("use_global_stats", 1):
        axes = [0] + list(range(2, len(shape)))
        mean = ctx.node("ReduceMean", [x, ctx.ints(axes, "axes")], attrs=dict(keepdims=1))
        d = ctx.node("Sub", [x, mean])
        var = ctx.node("ReduceMean", [ctx.node("Mul", [d, d]), ctx.ints(axes, "axes")], attrs=dict(keepdims=1))
        std = ctx.node("Sqrt", [ctx.node("Add", [var, ctx.const(np.float32(eps), "eps")])])
        ctx.node("Div", [d, std], ctx.outputs[0])
        return
    mean = ctx.blob(0, (c,), "mean")
    var = ctx.blob(1, (c,), "variance", positive=True)
    factor = 1.0
    if ctx.num_blobs() >= 3:
        s = float(ctx.blob(2, (1,), "scale factor")[0])
        factor = 0.0 if s == 0 else 1.0 / s
    inputs = [x, ctx.const(np.ones(c, np.float32), "scale"), ctx.const(np.zeros(c, np.float32), "bias"),
              ctx.const((mean * factor).astype(np.float32), "mean"),
              ctx.const((var * factor).astype(np.float32), "var")]
    ctx.node("BatchNormalization", inputs, ctx.outputs[0], dict(epsilon=eps))


@REGISTRY.register("BN")
def bn(ctx):
    """The forks' "BN" layer (yjxiong/caffe, PSPNet/DeepLab): blobs scale, shift,
    running mean, running variance, each (1, C, 1, 1);
    y = scale * (x - mean) / sqrt(var + eps) + shift. eps is bn_param.eps
    (yjxiong, default 1e-5) or var_eps (PSPNet, default 1e-9). The PSPNet form
    without moving_average normalizes with the batch statistics at test time."""
    ctx.check_arity(1)
    msg = ctx.layer.param.bn_param
    pspnet = any(msg.HasField(f) for f in ("scale_filler", "shift_filler", "var_eps", "decay",
                                           "moving_average", "axis"))
    eps = msg.var_eps if pspnet and not msg.HasField("eps") else msg.eps
    if pspnet and msg.axis != 1:
        raise ctx.error(f"bn_param.axis {msg.axis} is not supported (only 1, channels)")
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    if len(shape) < 2:
        raise ctx.error(f"input must have a channel axis, got shape {shape}")
    c = shape[1]
    bshape = (c,) + (1,) * (len(shape) - 2)
    scale = ctx.blob(0, (c,), "scale").reshape(bshape)
    shift = ctx.blob(1, (c,), "shift").reshape(bshape)
    if pspnet and not msg.moving_average:
        axes = [0] + list(range(2, len(shape)))
        mean = ctx.node("ReduceMean", [x, ctx.ints(axes, "axes")], attrs=dict(keepdims=1))
        d = ctx.node("Sub", [x, mean])
        var = ctx.node("ReduceMean", [ctx.node("Mul", [d, d]), ctx.ints(axes, "axes")], attrs=dict(keepdims=1))
        std = ctx.node("Sqrt", [ctx.node("Add", [var, ctx.const(np.float32(eps), "eps")])])
        y = ctx.node("Mul", [ctx.node("Div", [d, std]), ctx.const(scale, "scale")])
        ctx.node("Add", [y, ctx.const(shift, "shift")], ctx.outputs[0])
        return
    mean = ctx.blob(2, (c,), "mean")
    var = ctx.blob(3, (c,), "variance", positive=True)
    ctx.node("BatchNormalization", [x, ctx.const(scale.reshape(c), "scale"), ctx.const(shift.reshape(c), "shift"),
                                    ctx.const(mean, "mean"), ctx.const(var, "var")], ctx.outputs[0],
             dict(epsilon=float(eps)))


def _param_shape(ctx, shape, axis, num_axes, what):
    """The axes of the input a learned Scale/Bias parameter covers, as a broadcastable shape."""
    rank = len(shape)
    axis = ctx.norm_axis(axis, rank)
    if num_axes < -1:
        raise ctx.error(f"num_axes ({num_axes}) must be >= -1")
    end = rank if num_axes == -1 else axis + num_axes
    if end > rank:
        raise ctx.error(f"axis ({axis}) + num_axes ({num_axes}) exceed the input rank ({rank})")
    covered = tuple(shape[axis:end])
    return covered, covered + (1,) * (rank - end)


def _second_bottom(ctx, field):
    """2-bottom Scale/Bias: reshape bottom[1] so it broadcasts from `axis`.
    Returns (x, b, covered shape, broadcast shape)."""
    p = ctx.param(field)
    x, b = ctx.inputs
    shape, covered = ctx.shape(x), tuple(ctx.shape(b))
    axis = ctx.norm_axis(p.int("axis", 1), len(shape)) if covered else 0
    if tuple(shape[axis:axis + len(covered)]) != covered:
        raise ctx.error(f"bottom[1] shape {covered} must match the input shape {shape} from axis {axis}")
    bshape = covered + (1,) * (len(shape) - axis - len(covered))
    if bshape != covered:
        b = ctx.node("Reshape", [b, ctx.ints(bshape)])
    return x, b, covered, bshape


@REGISTRY.register("Scale")
def scale(ctx):
    """y = x * scale (+ bias); scale is bottom[1] or a learned blob covering
    num_axes axes from `axis`."""
    ctx.check_arity((1, 2))
    p = ctx.param("scale_param")
    if len(ctx.inputs) == 2:
        x, s, covered, bshape = _second_bottom(ctx, "scale_param")
        bias_index = 0
    else:
        x = ctx.inputs[0]
        covered, bshape = _param_shape(ctx, ctx.shape(x), p.int("axis", 1), p.int("num_axes", 1), "scale")
        s = ctx.const(ctx.blob(0, covered, "scale").reshape(bshape), "scale")
        bias_index = 1
    if not p.int("bias_term", 0):
        ctx.node("Mul", [x, s], ctx.outputs[0])
        return
    y = ctx.node("Mul", [x, s])
    b = ctx.blob(bias_index, covered, "bias").reshape(bshape)
    ctx.node("Add", [y, ctx.const(b, "bias")], ctx.outputs[0])


@REGISTRY.register("Bias")
def bias(ctx):
    ctx.check_arity((1, 2))
    if len(ctx.inputs) == 2:
        x, b, _, _ = _second_bottom(ctx, "bias_param")
    else:
        p = ctx.param("bias_param")
        x = ctx.inputs[0]
        covered, bshape = _param_shape(ctx, ctx.shape(x), p.int("axis", 1), p.int("num_axes", 1), "bias")
        b = ctx.const(ctx.blob(0, covered, "bias").reshape(bshape), "bias")
    ctx.node("Add", [x, b], ctx.outputs[0])


@REGISTRY.register("Normalize")
def normalize(ctx):
    """SSD Normalize: x / sqrt(sum(x^2) + eps) * scale, the sum over (C, H, W)
    (across_spatial) or over C per position; scale per channel or shared."""
    ctx.check_arity(1)
    p = ctx.param("norm_param")
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    if len(shape) != 4:
        raise ctx.error(f"input must be 4-D (N, C, H, W), got shape {shape}")
    axes = [1, 2, 3] if p.int("across_spatial", 1) else [1]
    sq = ctx.node("Mul", [x, x], suffix="square")
    total = ctx.node("ReduceSum", [sq, ctx.ints(axes, "axes")], attrs=dict(keepdims=1))
    norm = ctx.node("Sqrt", [ctx.node("Add", [total, ctx.const(np.float32(p.float("eps", 1e-10)), "eps")])])
    y = ctx.node("Div", [x, norm])
    if p.int("channel_shared", 1):
        s = ctx.blob(0, (1,), "scale")
    else:
        s = ctx.blob(0, (shape[1],), "scale").reshape(shape[1], 1, 1)
    ctx.node("Mul", [y, ctx.const(s, "scale")], ctx.outputs[0])


@REGISTRY.register("MVN")
def mvn(ctx):
    """(x - mean) [/ (std + eps)] over (H, W), or (C, H, W) with across_channels."""
    ctx.check_arity(1)
    p = ctx.param("mvn_param")
    x = ctx.inputs[0]
    rank = ctx.rank(x)
    axes = list(range(1 if p.int("across_channels", 0) else 2, rank))
    mean = ctx.node("ReduceMean", [x, ctx.ints(axes, "axes")], attrs=dict(keepdims=1))
    if not p.int("normalize_variance", 1):
        ctx.node("Sub", [x, mean], ctx.outputs[0])
        return
    d = ctx.node("Sub", [x, mean])
    var = ctx.node("ReduceMean", [ctx.node("Mul", [d, d]), ctx.ints(axes, "axes")], attrs=dict(keepdims=1))
    std = ctx.node("Add", [ctx.node("Sqrt", [var]), ctx.const(np.float32(p.float("eps", 1e-9)), "eps")])
    ctx.node("Div", [d, std], ctx.outputs[0])
