"""Convolution, Deconvolution and InnerProduct -> Conv, ConvTranspose, Gemm."""
from __future__ import annotations

import numpy as np

from . import REGISTRY


def _spatial(p, name, n, default, ctx):
    """Caffe's rule for pad/kernel_size/stride/dilation: one value for all spatial
    dims, one per dim, or (2-D only) the _h/_w pair."""
    values = p.ints(name, [])
    h, w = f"{name}_h", f"{name}_w"
    if name == "kernel_size":
        h, w = "kernel_h", "kernel_w"
    given = ctx.explicit("convolution_param", h), ctx.explicit("convolution_param", w)
    if any(given):
        if n != 2:
            raise ctx.error(f"{h}/{w} are for 2-D convolution only (input has {n} spatial dims)")
        if values:
            raise ctx.error(f"give either {name} or {h}/{w}, not both")
        if name != "pad" and not all(given):
            raise ctx.error(f"{h} and {w} must be given together")
        return [p.int(h, default), p.int(w, default)]
    if not values:
        if default is None:
            raise ctx.error(f"{name} is required (or {h} and {w})")
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ctx.error(f"{name} has {len(values)} values, expected 1 or {n} (spatial dims)")
    return values


def _conv_geometry(ctx, p):
    x = ctx.inputs[0]
    rank = ctx.rank(x)
    if p.int("axis", 1) not in (1, 1 - rank):
        raise ctx.error(f"axis ({p.int('axis')}) other than 1 (channels) is not supported")
    n = rank - 2
    if n < 1:
        raise ctx.error(f"input must have spatial dims, got shape {ctx.shape(x)}")
    kernel = _spatial(p, "kernel_size", n, None, ctx)
    stride = _spatial(p, "stride", n, 1, ctx)
    pad = _spatial(p, "pad", n, 0, ctx)
    dilation = _spatial(p, "dilation", n, 1, ctx)
    for name, vals, lo in (("kernel_size", kernel, 1), ("stride", stride, 1), ("dilation", dilation, 1)):
        for v in vals:
            if v < lo:
                raise ctx.error(f"{name} ({v}) must be positive")
    group = p.positive_int("group", 1)
    if ctx.layer.type == "ConvolutionDepthwise" and not p.has("num_output"):
        return kernel, stride, pad, dilation, group, None  # the input channels (see convolution)
    num_output = p.positive_int("num_output")
    return kernel, stride, pad, dilation, group, num_output


@REGISTRY.register("Convolution", "DepthwiseConvolution", "ConvolutionDepthwise")
def convolution(ctx):
    """Convolution; also yonghenglh6's "DepthwiseConvolution" (MobileNet ports),
    a faster Convolution with the same parameters and weights."""
    ctx.check_arity(1)
    p = ctx.param("convolution_param")
    kernel, stride, pad, dilation, group, num_output = _conv_geometry(ctx, p)
    channels = ctx.shape(ctx.inputs[0])[1]
    if ctx.layer.type == "ConvolutionDepthwise":
        # farmingyard/caffe-mobilenet (ShuffleNet, MobileNet ports): one filter per
        # input channel whatever num_output/group say; weights (C, 1, kh, kw).
        group = num_output = channels
    _emit_conv(ctx, p, "Conv", (kernel, stride, pad, dilation, group, num_output), channels,
               (num_output, channels // group, *kernel))


def _emit_conv(ctx, p, op, geometry, channels, weight_shape):
    """Shared tail of Convolution/Deconvolution: group rule, weights, optional bias, node."""
    kernel, stride, pad, dilation, group, num_output = geometry
    if channels % group or num_output % group:
        raise ctx.error(f"group ({group}) must divide the input channels ({channels}) "
                        f"and num_output ({num_output})")
    if op == "Conv":  # before any weights are read or drawn
        spatial = ctx.shape(ctx.inputs[0])[2:]
        for i, (size, k, p_, d) in enumerate(zip(spatial, kernel, pad, dilation)):
            if isinstance(size, int) and size + 2 * p_ < d * (k - 1) + 1:
                raise ctx.error(f"kernel_size ({k}, dilation {d}) is larger than spatial dim {i} "
                                f"of the input ({size}) plus padding ({p_} each side)")
    inputs = [ctx.inputs[0], ctx.const(ctx.blob(0, weight_shape), "weights")]
    if p.int("bias_term", 1):
        inputs.append(ctx.const(ctx.blob(1, (num_output,), "bias"), "bias"))
    ctx.node(op, inputs, ctx.outputs[0], dict(
        kernel_shape=kernel, strides=stride, pads=pad + pad, dilations=dilation, group=group))


@REGISTRY.register("Deconvolution")
def deconvolution(ctx):
    ctx.check_arity(1)
    p = ctx.param("convolution_param")
    kernel, stride, pad, dilation, group, num_output = _conv_geometry(ctx, p)
    channels = ctx.shape(ctx.inputs[0])[1]
    _emit_conv(ctx, p, "ConvTranspose", (kernel, stride, pad, dilation, group, num_output),
               channels, (channels, num_output // group, *kernel))


@REGISTRY.register("InnerProduct")
def inner_product(ctx):
    """y = flatten(x, axis) @ W^T + b; leading axes before `axis` are kept."""
    ctx.check_arity(1)
    p = ctx.param("inner_product_param")
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    axis = ctx.norm_axis(p.int("axis", 1), len(shape))
    num_output = p.positive_int("num_output")
    k = int(np.prod(shape[axis:]))
    transpose = bool(p.int("transpose", 0))
    w = ctx.blob(0, (k, num_output) if transpose else (num_output, k))
    flat = x
    if len(shape) != 2 or axis != 1:
        flat = ctx.node("Flatten", [x], attrs=dict(axis=axis))
    inputs = [flat, ctx.const(w, "weights")]
    if p.int("bias_term", 1):
        inputs.append(ctx.const(ctx.blob(1, (num_output,), "bias"), "bias"))
    if axis == 1:
        ctx.node("Gemm", inputs, ctx.outputs[0], dict(transB=0 if transpose else 1))
    else:
        y = ctx.node("Gemm", inputs, attrs=dict(transB=0 if transpose else 1))
        ctx.node("Reshape", [y, ctx.ints(list(shape[:axis]) + [num_output])], ctx.outputs[0])
