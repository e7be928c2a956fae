"""Layers that combine or rearrange tensors: Eltwise, Concat, Slice, Split,
Flatten, Reshape, Permute, Crop, Softmax, ArgMax, Reduction, ShuffleChannel, Tile."""
from __future__ import annotations

import numpy as np

from . import REGISTRY

FLOAT = 1  # ONNX TensorProto.FLOAT, for Cast


@REGISTRY.register("Eltwise")
def eltwise(ctx):
    """SUM (with per-bottom coefficients), PROD, MAX over >= 2 bottoms."""
    ctx.check_arity(range(2, 1 << 16))
    p = ctx.param("eltwise_param")
    op = p.choice("operation", ["SUM", "PROD", "MAX"], "SUM")
    coeff = p.floats("coeff", [])
    if coeff and (op != "SUM" or len(coeff) != len(ctx.inputs)):
        raise ctx.error(f"coeff ({len(coeff)} values) is for SUM only, one per bottom "
                        f"({len(ctx.inputs)})")
    inputs = list(ctx.inputs)
    if coeff:
        inputs = [x if c == 1.0 else ctx.node("Mul", [x, ctx.const(np.float32(c), "coeff")])
                  for x, c in zip(inputs, coeff)]
    binary = {"SUM": "Add", "PROD": "Mul", "MAX": "Max"}[op]
    acc = inputs[0]
    for i, x in enumerate(inputs[1:], start=2):
        acc = ctx.node(binary, [acc, x], ctx.outputs[0] if i == len(inputs) else None)


@REGISTRY.register("Concat")
def concat(ctx):
    if not ctx.inputs:
        raise ctx.error("takes at least 1 bottom")
    msg = ctx.layer.param.concat_param  # axis, or the older concat_dim
    axis = msg.axis if msg.HasField("axis") else (msg.concat_dim if msg.HasField("concat_dim") else 1)
    axis = ctx.norm_axis(axis, ctx.rank(ctx.inputs[0]))
    if len(ctx.inputs) == 1:
        ctx.node("Identity", ctx.inputs, ctx.outputs[0])
    else:
        ctx.node("Concat", ctx.inputs, ctx.outputs[0], dict(axis=axis))


@REGISTRY.register("Slice")
def slice_layer(ctx):
    """Split along `axis` at slice_point (or into equal parts, one per top)."""
    ctx.check_arity(1, range(1, 1 << 16))
    msg = ctx.layer.param.slice_param
    axis = msg.axis if msg.HasField("axis") else (msg.slice_dim if msg.HasField("slice_dim") else 1)
    shape = ctx.shape(ctx.inputs[0])
    axis = ctx.norm_axis(axis, len(shape))
    dim = shape[axis]
    points = [int(v) for v in msg.slice_point]
    n = len(ctx.outputs)
    if points:
        if len(points) != n - 1:
            raise ctx.error(f"slice_point has {len(points)} values, expected {n - 1} (tops - 1)")
        bounds = [0] + points + [dim]
        if any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise ctx.error(f"slice_point {points} must increase strictly within (0, {dim})")
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    else:
        if dim % n:
            raise ctx.error(f"axis {axis} ({dim}) does not divide into {n} equal slices")
        sizes = [dim // n] * n
    if n == 1:
        ctx.node("Identity", ctx.inputs, ctx.outputs[0])
        return
    ctx.node("Split", [ctx.inputs[0], ctx.ints(sizes, "split")], list(ctx.outputs), dict(axis=axis))


@REGISTRY.register("Split")
def split(ctx):
    """Every top is the bottom itself."""
    ctx.check_arity(1, range(1, 1 << 16))
    for i in range(len(ctx.outputs)):
        ctx.alias(i, ctx.inputs[0])


@REGISTRY.register("Flatten")
def flatten(ctx):
    """Axes axis..end_axis merged into one; the others kept."""
    ctx.check_arity(1)
    p = ctx.param("flatten_param")
    shape = ctx.shape(ctx.inputs[0])
    axis = ctx.norm_axis(p.int("axis", 1), len(shape))
    end = ctx.norm_axis(p.int("end_axis", -1), len(shape), "end_axis")
    if end < axis:
        raise ctx.error(f"end_axis ({end}) must not precede axis ({axis})")
    if axis == 1 and end == len(shape) - 1:
        ctx.node("Flatten", ctx.inputs, ctx.outputs[0], dict(axis=1))
        return
    new = [0] * axis + [-1] + list(shape[end + 1:])
    ctx.node("Reshape", [ctx.inputs[0], ctx.ints(new)], ctx.outputs[0])


@REGISTRY.register("Reshape")
def reshape(ctx):
    """Caffe Reshape: shape replaces axes [axis, axis + num_axes); 0 copies the
    corresponding input dim, one -1 is inferred."""
    ctx.check_arity(1)
    p = ctx.param("reshape_param")
    shape = ctx.shape(ctx.inputs[0])
    rank = len(shape)
    spec = [int(d) for d in ctx.layer.param.reshape_param.shape.dim]
    axis = p.int("axis", 0)
    axis = axis if axis >= 0 else rank + axis + 1
    if not 0 <= axis <= rank:
        raise ctx.error(f"axis ({p.int('axis', 0)}) is out of range for a {rank}-D input")
    num_axes = p.int("num_axes", -1)
    end = rank if num_axes == -1 else axis + num_axes
    if num_axes < -1 or end > rank:
        raise ctx.error(f"num_axes ({num_axes}) is out of range for axis {axis} of a {rank}-D input")
    if spec.count(-1) > 1:
        raise ctx.error(f"shape {spec} may hold at most one -1")
    for i, d in enumerate(spec):
        if d == 0 and axis + i >= rank:
            raise ctx.error(f"shape dim {i} is 0 (copy) but the input has no axis {axis + i}")
        if d < -1:
            raise ctx.error(f"shape dim {i} ({d}) must be >= -1")
    # The IR's 0 copies the input dim at the same index, as Caffe's 0 does inside
    # [axis, axis + len(spec)); the dims kept before `axis`, and after it when they
    # stay at their index, are copies too: the IR then holds at any input size.
    kept = list(shape[end:])
    if axis + len(spec) == end:
        kept = [0] * len(kept)
    new = [0] * axis + spec + kept
    ctx.node("Reshape", [ctx.inputs[0], ctx.ints(new)], ctx.outputs[0])


@REGISTRY.register("Permute")
def permute(ctx):
    ctx.check_arity(1)
    rank = ctx.rank(ctx.inputs[0])
    order = ctx.param("permute_param").ints("order", [])
    if any(not 0 <= o < rank for o in order) or len(set(order)) != len(order):
        raise ctx.error(f"order {order} must list distinct axes of a {rank}-D input")
    order = order + [i for i in range(rank) if i not in order]
    if order == list(range(rank)):
        ctx.node("Identity", ctx.inputs, ctx.outputs[0])
    else:
        ctx.node("Transpose", ctx.inputs, ctx.outputs[0], dict(perm=order))


@REGISTRY.register("Crop")
def crop(ctx):
    """Crop bottom[0] to bottom[1]'s shape from `axis` on, starting at `offset`."""
    ctx.check_arity(2)
    p = ctx.param("crop_param")
    shape, ref = ctx.shape(ctx.inputs[0]), ctx.shape(ctx.inputs[1])
    axis = ctx.norm_axis(p.int("axis", 2), len(shape))
    axes = list(range(axis, len(shape)))
    offsets = p.ints("offset", [])
    if len(offsets) == 1:
        offsets = offsets * len(axes)
    elif not offsets:
        offsets = [0] * len(axes)
    elif len(offsets) != len(axes):
        raise ctx.error(f"offset has {len(offsets)} values, expected 1 or {len(axes)}")
    ends = []
    for a, off in zip(axes, offsets):
        if off + ref[a] > shape[a]:
            raise ctx.error(f"crop of axis {a}: offset {off} + size {ref[a]} exceeds the input ({shape[a]})")
        ends.append(off + ref[a])
    ctx.node("Slice", [ctx.inputs[0], ctx.ints(offsets, "starts"), ctx.ints(ends, "ends"),
                       ctx.ints(axes, "axes")], ctx.outputs[0])


@REGISTRY.register("Softmax")
def softmax(ctx):
    ctx.check_arity(1)
    axis = ctx.norm_axis(ctx.param("softmax_param").int("axis", 1), ctx.rank(ctx.inputs[0]))
    ctx.node("Softmax", ctx.inputs, ctx.outputs[0], dict(axis=axis))


@REGISTRY.register("ArgMax")
def argmax(ctx):
    """Caffe ArgMax: top_k indices (as float) along `axis`; without an axis, over
    each sample's flattened data, shaped (N, 1 or 2, top_k) with out_max_val
    adding the values. With an axis and out_max_val, the values only."""
    ctx.check_arity(1)
    p = ctx.param("argmax_param")
    top_k = p.positive_int("top_k", 1)
    out_max_val = bool(p.int("out_max_val", 0))
    x = ctx.inputs[0]
    shape = ctx.shape(x)
    if p.has("axis"):
        axis = ctx.norm_axis(p.int("axis"), len(shape))
        if top_k > shape[axis]:
            raise ctx.error(f"top_k ({top_k}) exceeds the size of axis {axis} ({shape[axis]})")
        values, indices = ctx.node("TopK", [x, ctx.ints([top_k], "k")], [ctx.temp("values"), ctx.temp("indices")],
                                   dict(axis=axis))
        if out_max_val:
            ctx.node("Identity", [values], ctx.outputs[0])
        else:
            ctx.node("Cast", [indices], ctx.outputs[0], dict(to=FLOAT))
        return
    flat = ctx.node("Flatten", [x], attrs=dict(axis=1))
    if top_k > ctx.shape(flat)[1]:
        raise ctx.error(f"top_k ({top_k}) exceeds the per-sample size ({ctx.shape(flat)[1]})")
    values, indices = ctx.node("TopK", [flat, ctx.ints([top_k], "k")], [ctx.temp("values"), ctx.temp("indices")],
                               dict(axis=1))
    idx = ctx.node("Unsqueeze", [ctx.node("Cast", [indices], attrs=dict(to=FLOAT)), ctx.ints([1], "axes")])
    if out_max_val:
        val = ctx.node("Unsqueeze", [values, ctx.ints([1], "axes")])
        ctx.node("Concat", [idx, val], ctx.outputs[0], dict(axis=1))
    else:
        ctx.node("Identity", [idx], ctx.outputs[0])


@REGISTRY.register("Reduction")
def reduction(ctx):
    """SUM / ASUM / SUMSQ / MEAN over all axes from `axis`, times coeff."""
    ctx.check_arity(1)
    p = ctx.param("reduction_param")
    op = {"SUM": "ReduceSum", "ASUM": "ReduceL1", "SUMSQ": "ReduceSumSquare", "MEAN": "ReduceMean"}[
        p.choice("operation", ["SUM", "ASUM", "SUMSQ", "MEAN"], "SUM")]
    rank = ctx.rank(ctx.inputs[0])
    axis = ctx.norm_axis(p.int("axis", 0), rank)
    coeff = p.float("coeff", 1.0)
    axes = ctx.ints(list(range(axis, rank)), "axes")
    if coeff == 1.0:
        ctx.node(op, [ctx.inputs[0], axes], ctx.outputs[0], dict(keepdims=0))
    else:
        y = ctx.node(op, [ctx.inputs[0], axes], attrs=dict(keepdims=0))
        ctx.node("Mul", [y, ctx.const(np.float32(coeff), "coeff")], ctx.outputs[0])


@REGISTRY.register("ShuffleChannel")
def shuffle_channel(ctx):
    """(N, g*k, H, W) viewed as (N, g, k, H, W), g and k swapped: a channel permutation."""
    ctx.check_arity(1)
    group = ctx.param("shuffle_channel_param").positive_int("group", 1)
    shape = ctx.shape(ctx.inputs[0])
    if len(shape) != 4 or shape[1] % group:
        raise ctx.error(f"group ({group}) must divide the channels of a 4-D input, got shape {shape}")
    c, k = shape[1], shape[1] // group
    # output channel j = (j % group) * k + j // group of the input: a Gather of
    # channels, the same IR at every input size
    order = [(j % group) * k + j // group for j in range(c)]
    ctx.node("Gather", [ctx.inputs[0], ctx.ints(order, "order")], ctx.outputs[0], dict(axis=1))


@REGISTRY.register("Tile")
def tile(ctx):
    ctx.check_arity(1)
    p = ctx.param("tile_param")
    rank = ctx.rank(ctx.inputs[0])
    axis = ctx.norm_axis(p.int("axis", 1), rank)
    repeats = [1] * rank
    repeats[axis] = p.positive_int("tiles")
    ctx.node("Tile", [ctx.inputs[0], ctx.ints(repeats, "repeats")], ctx.outputs[0])
