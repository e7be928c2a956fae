"""TensorFlow NN ops: MatMul, BiasAdd, FusedBatchNorm, pools, softmax, resize, the
space/depth/batch rearrangements and LRN.

NHWC ops follow the layout convention of ops/conv.py (to_nchw -> NCHW IR op ->
from_nchw). BiasAdd and FusedBatchNorm are per-channel: after an op that just
wrote its NCHW result through `from_nchw` they are emitted in NCHW too (the pair
cancels and the passes fold them into the conv); on any other NHWC value they
broadcast along the last axis, with no transposes.

Resize coordinates, as TensorFlow computes them (resize_bilinear_op.cc,
resize_nearest_neighbor_op.cc), in the IR's terms:
- bilinear: align_corners -> align_corners; half_pixel_centers -> half_pixel;
  neither -> asymmetric (taps past the border clamp to it, as both do);
- nearest, sizes known at conversion: the rows and columns TensorFlow picks, computed
  with its float32 arithmetic, gathered (exact; the IR Resize in float64 can resolve a
  float32 tie the other way);
- nearest, sizes known only at run time: neither -> asymmetric + floor; align_corners ->
  align_corners + round_prefer_ceil (roundf); half_pixel_centers -> half_pixel +
  round_prefer_ceil, since floor((y + 0.5) * in / out) = round-half-up((y + 0.5) * in /
  out - 0.5).
"""
from __future__ import annotations

import numpy as np

from ..registry import TF_OPS
from .conv import nchw_input, nchw_output, padding_attrs, producer, spatial_attr, spatial_dims

_FROM_NCHW = {4: [0, 2, 3, 1], 5: [0, 2, 3, 4, 1]}


# ---- matrix products -----------------------------------------------------------------
def _transposed_last2(cx, i: int, hint: str) -> str:
    """Input `i` with its last two axes swapped (numpy for a constant)."""
    data = cx.const_value(i)
    if data is not None:
        return cx.const(np.ascontiguousarray(np.swapaxes(data, -1, -2)), hint)
    rank = cx.rank(i)
    if rank is None or rank < 2:
        raise cx.error(f"input {i} needs a known rank >= 2 to be transposed, got {cx.shape(i)}")
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    out = cx.tmp(hint)
    cx.emit("Transpose", [cx.input(i)], [out], {"perm": perm})
    return out


@TF_OPS.register("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def matmul(cx):
    """MatMul (transpose_a/transpose_b) and BatchMatMul* (adj_x/adj_y, batch dims broadcast)."""
    if cx.op_type == "MatMul":
        cx.check_attrs({"T", "transpose_a", "transpose_b", "grad_a", "grad_b"})
        ta, tb = cx.attrs.get("transpose_a", False), cx.attrs.get("transpose_b", False)
    else:
        cx.check_attrs({"T", "Ta", "Tb", "Tout", "adj_x", "adj_y", "grad_x", "grad_y"})
        ta, tb = cx.attrs.get("adj_x", False), cx.attrs.get("adj_y", False)
    if cx.op_type == "BatchMatMulV3" and not (cx.attrs.get("Ta") == cx.attrs.get("Tb")
                                               == cx.attrs.get("Tout")):
        raise cx.error(f"mixed types Ta {cx.attrs.get('Ta')}, Tb {cx.attrs.get('Tb')}, "
                       f"Tout {cx.attrs.get('Tout')} are not supported")
    a = _transposed_last2(cx, 0, "a_t") if ta else cx.input(0)
    b = _transposed_last2(cx, 1, "b_t") if tb else cx.input(1)
    cx.emit("MatMul", [a, b], cx.outputs[:1])


# ---- per-channel ops ------------------------------------------------------------------
def _fresh_from_nchw(cx, value: str) -> bool:
    """True when `value` was written by a from_nchw Transpose (an NHWC op's result)."""
    node = producer(cx.graph, value)
    shape = cx.graph.values[value].shape if value in cx.graph.values else None
    return (node is not None and node.op == "Transpose" and shape is not None
            and node.attrs.get("perm") == _FROM_NCHW.get(len(shape)))


@TF_OPS.register("BiasAdd", "BiasAddV1")
def bias_add(cx):
    cx.check_attrs({"T", "data_format"})
    fmt = cx.data_format()
    rank = cx.rank(0)
    if rank is None:
        raise cx.error("the input rank must be known")
    x, bias = cx.input(0), cx.input(1)
    if _with_bias(cx, x, fmt, rank):
        return
    if fmt == "NCHW" and rank > 2:
        b = _channel_shaped(cx, bias, rank, "bias")
        cx.emit("Add", [x, b], cx.outputs[:1])
    elif rank in _FROM_NCHW and _fresh_from_nchw(cx, x):
        y = cx.tmp("nchw")
        cx.emit("Add", [cx.to_nchw(x, rank), _channel_shaped(cx, bias, rank, "bias")], [y])
        cx.from_nchw(y, cx.outputs[0], rank)
    else:
        cx.emit("Add", [x, bias], cx.outputs[:1])


def _with_bias(cx, x: str, fmt: str, rank: int) -> bool:
    """Conv2D/MatMul -> BiasAdd(constant) as one Conv/Gemm with its bias input, as the IR
    (and an ONNX QDQ model) writes it: the QDQ lowering then sees DQ -> Conv -> Q. The
    op is emitted again with the bias (its first copy goes unless something else reads
    it). False when x does not come from such an op."""
    bias = cx.const_value(1)
    if bias is None or bias.ndim != 1:
        return False
    node = producer(cx.graph, x)
    if rank == 2 and node is not None and node.op == "MatMul" and not node.attrs and \
            all(cx.graph.values[i].shape is not None and len(cx.graph.values[i].shape) == 2
                for i in node.inputs):
        cx.emit("Gemm", list(node.inputs) + [cx.input(1)], cx.outputs[:1])
        return True
    if fmt == "NHWC":
        if rank not in _FROM_NCHW or not _fresh_from_nchw(cx, x):
            return False
        node = producer(cx.graph, node.inputs[0])
    if node is None or node.op not in ("Conv", "ConvTranspose") or len(node.inputs) != 2:
        return False
    nchw_output(cx, fmt, rank - 2, node.op, list(node.inputs) + [cx.input(1)], dict(node.attrs))
    return True


def _channel_shaped(cx, value: str, rank: int, hint: str) -> str:
    """A (C,) vector as (C, 1, ..., 1): broadcasts along axis 1 of a rank-`rank` tensor."""
    shape = (-1,) + (1,) * (rank - 2)
    v = cx.graph.values.get(value)
    if v is not None and v.data is not None:
        return cx.const(v.data.reshape(shape), hint)
    out = cx.tmp(hint)
    cx.emit("Reshape", [value, cx.const(np.asarray(shape, np.int64), "shape")], [out])
    return out


@TF_OPS.register("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def fused_batch_norm(cx):
    """Inference form: y = (x - mean) / sqrt(var + epsilon) * scale + offset.

    Outputs 1 and 2 (batch_mean, batch_variance) are the given mean and variance in
    inference mode; the reserve-space outputs are training internals and refused.
    """
    cx.check_attrs({"T", "U", "epsilon", "exponential_avg_factor", "data_format", "is_training"})
    if cx.attrs.get("is_training", True):
        raise cx.error("is_training is true: only the inference form (is_training=false) "
                       "is supported; freeze the model in inference mode")
    fmt = cx.data_format()
    rank = cx.rank(0)
    if rank not in (4, 5):
        raise cx.error(f"expects a 4-D or 5-D input, got shape {cx.shape(0)}")
    eps = cx.attrs.float("epsilon", 1e-4)
    x, scale, offset, mean, var = (cx.input(i) for i in range(5))
    outs = list(cx.outputs)
    for k, src in ((1, mean), (2, var)):
        if k < len(outs) and outs[k]:
            cx.emit("Identity", [src], [outs[k]])
    if any(o for o in outs[3:]):
        raise cx.error("the reserve_space outputs are read: they exist only for training")
    params = [cx.const_value(i) for i in range(1, 5)]
    if fmt == "NHWC" and not _fresh_from_nchw(cx, x) and all(p is not None for p in params):
        # channels last, not after an NHWC op: y = x * a + b along the last axis
        s, o, m, v = (np.asarray(p, np.float64) for p in params)
        a = s / np.sqrt(v + eps)
        dtype = cx.dtype(0) or "float32"
        ax = cx.tmp("scaled")
        cx.emit("Mul", [x, cx.const(a.astype(dtype), "a")], [ax])
        cx.emit("Add", [ax, cx.const((o - m * a).astype(dtype), "b")], outs[:1])
        return
    x_nchw = cx.to_nchw(x, rank) if fmt == "NHWC" else x
    nchw_output(cx, fmt, rank - 2, "BatchNormalization", [x_nchw, scale, offset, mean, var],
                {"epsilon": eps})


# ---- pools -----------------------------------------------------------------------------
@TF_OPS.register("MaxPool", "AvgPool", "MaxPoolV2", "MaxPool3D", "AvgPool3D")
def pool(cx):
    """Max: padding never wins. Avg: SAME padding is not counted (count_include_pad 0)."""
    cx.check_attrs({"T", "ksize", "strides", "padding", "explicit_paddings", "data_format"})
    nd = 3 if cx.op_type.endswith("3D") else 2
    fmt = cx.data_format()
    if cx.op_type == "MaxPoolV2":  # ksize and strides are inputs
        ksize, strides = cx.const_value(1), cx.const_value(2)
        if ksize is None or strides is None:
            raise cx.error("ksize and strides must be constants")
        kernel = spatial_attr(cx, "ksize", fmt, nd, [int(v) for v in ksize.ravel()])
        strides = spatial_attr(cx, "strides", fmt, nd, [int(v) for v in strides.ravel()])
    else:
        kernel = spatial_attr(cx, "ksize", fmt, nd)
        strides = spatial_attr(cx, "strides", fmt, nd)
    allowed = ("SAME", "VALID", "EXPLICIT") if cx.op_type == "MaxPool" else ("SAME", "VALID")
    attrs = padding_attrs(cx, fmt, nd, spatial_dims(cx.shape(0), fmt, nd), kernel, strides,
                          [1] * nd, allowed)
    attrs.update(kernel_shape=kernel, strides=strides)
    op = "MaxPool" if cx.op_type.startswith("Max") else "AveragePool"
    nchw_output(cx, fmt, nd, op, [nchw_input(cx, fmt, nd)], attrs)


# ---- softmax ------------------------------------------------------------------------
@TF_OPS.register("Softmax", "LogSoftmax")
def softmax(cx):
    cx.check_attrs({"T"})
    cx.emit(cx.op_type, [cx.input(0)], cx.outputs[:1], {"axis": -1})


# ---- resize -------------------------------------------------------------------------
@TF_OPS.register("ResizeBilinear", "ResizeNearestNeighbor")
def resize(cx):
    """images (N, H, W, C), size (new_h, new_w) -> Resize on the NCHW spatial axes; nearest
    with known sizes -> Gathers of the rows/columns TensorFlow picks (`tf_nearest_indices`)."""
    cx.check_attrs({"T", "align_corners", "half_pixel_centers"})
    align, half = cx.attrs.get("align_corners", False), cx.attrs.get("half_pixel_centers", False)
    if align and half:
        raise cx.error("align_corners and half_pixel_centers cannot both be true")
    if cx.rank(0) not in (None, 4):
        raise cx.error(f"images must be 4-D (N, H, W, C), got shape {cx.shape(0)}")
    size = cx.const_value(1)
    if size is not None:
        size = np.asarray(size).ravel()
        if size.size != 2 or (size <= 0).any():
            raise cx.error(f"size {size.tolist()} must be two positive integers")
    nearest = cx.op_type == "ResizeNearestNeighbor"
    in_hw = spatial_dims(cx.shape(0), "NHWC", 2)
    x = cx.to_nchw(cx.input(0), 4)
    if nearest and size is not None and in_hw is not None and \
            all(isinstance(d, int) and d > 0 for d in in_hw):
        for axis, n_in, n_out in ((2, in_hw[0], int(size[0])), (3, in_hw[1], int(size[1]))):
            idx = tf_nearest_indices(n_in, n_out, align, half)
            if n_in == n_out and (idx == np.arange(n_in)).all():
                continue
            y = cx.tmp("rows" if axis == 2 else "columns")
            cx.emit("Gather", [x, cx.const(idx, "indices")], [y], {"axis": axis})
            x = y
        cx.from_nchw(x, cx.outputs[0], 4)
        return
    if not nearest:
        attrs = {"mode": "linear", "coordinate_transformation_mode":
                 "align_corners" if align else "half_pixel" if half else "asymmetric"}
    elif align:
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "align_corners",
                 "nearest_mode": "round_prefer_ceil"}
    elif half:
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                 "nearest_mode": "round_prefer_ceil"}
    else:
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    if size is not None:
        sizes = cx.const(size.astype(np.int64), "sizes")
    else:
        sizes = cx.tmp("sizes")
        cx.emit("Cast", [cx.input(1)], [sizes], {"to": 7})  # int64
    attrs["axes"] = [2, 3]
    y = cx.tmp("nchw")
    cx.emit("Resize", [x, "", "", sizes], [y], attrs)
    cx.from_nchw(y, cx.outputs[0], 4)


def tf_nearest_indices(n_in: int, n_out: int, align: bool, half: bool) -> np.ndarray:
    """The source index of each output row, as resize_nearest_neighbor_op.cc computes it in
    float32: scale = (in - 1) / (out - 1) with align_corners (out > 1), else in / out;
    src = (y + 0.5) * scale with half_pixel_centers, else y * scale; roundf (align_corners)
    or floorf; clamped to the input. Exact ties of the float32 product decide, so the
    IR's Resize (float64 coordinates) can pick the other neighbour: hence Gather."""
    if align and n_out > 1:
        scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    else:
        scale = np.float32(n_in) / np.float32(n_out)
    y = np.arange(n_out, dtype=np.float32)
    src = ((y + np.float32(0.5)) * scale if half else y * scale).astype(np.float64)
    idx = np.floor(src + 0.5) if align else np.floor(src)  # roundf: src >= 0, half away
    return np.clip(idx, 0, n_in - 1).astype(np.int64)


# ---- depth / space / batch -----------------------------------------------------------
@TF_OPS.register("DepthToSpace", "SpaceToDepth")
def depth_space(cx):
    """TensorFlow orders the depth (block row, block col, channel): the IR's DCR."""
    cx.check_attrs({"T", "block_size", "data_format"})
    fmt = cx.data_format()
    block = cx.attrs.int("block_size")
    if block < 2:
        raise cx.error(f"block_size ({block}) must be at least 2")
    attrs = {"blocksize": block}
    if cx.op_type == "DepthToSpace":
        attrs["mode"] = "DCR"
    nchw_output(cx, fmt, 2, cx.op_type, [nchw_input(cx, fmt, 2)], attrs)


def _static_dims(cx, i: int, what: str) -> list:
    shape = cx.shape(i)
    if shape is None:
        raise cx.error(f"{what} needs a known input shape")
    return list(shape)


def _int_const(cx, i: int, what: str, shape) -> np.ndarray:
    data = cx.const_value(i)
    if data is None:
        raise cx.error(f"{what} must be a constant (or computable at conversion time)")
    data = np.asarray(data, np.int64)
    if data.shape != tuple(shape):
        raise cx.error(f"{what} {data.tolist()} must have shape {tuple(shape)}")
    return data


def _reshape(cx, x: str, dims, hint: str) -> str:
    out = cx.tmp(hint)
    cx.emit("Reshape", [x, cx.const(np.asarray(dims, np.int64), "shape")], [out])
    return out


def _batch_free(cx, dims, what: str) -> None:
    if any(not isinstance(d, int) for d in dims[1:]):
        raise cx.error(f"{what} needs known dims after the batch, got {tuple(dims)}")


def _block_args(cx, op: str, amounts: str):
    """SpaceToBatchND/BatchToSpaceND's checked arguments: (input dims, block_shape, the
    paddings or crops as an (M, 2) array)."""
    dims = _static_dims(cx, 0, op)
    block = cx.const_value(1)
    if block is None:
        raise cx.error("block_shape must be a constant")
    block = np.asarray(block, np.int64).ravel()
    amount = _int_const(cx, 2, amounts, (block.size, 2))
    if (block < 1).any() or (amount < 0).any():
        raise cx.error(f"block_shape {block.tolist()} must be positive and {amounts} "
                       f"{amount.tolist()} not negative")
    _batch_free(cx, dims, op)
    return dims, block, amount


@TF_OPS.register("SpaceToBatchND")
def space_to_batch(cx):
    """Pad, then (B, P1/b1, b1, ..., R) -> (b1, ..., bM, B, P1/b1, ..., R) -> merge the blocks
    into the batch. A dilated conv's SpaceToBatchND -> conv -> BatchToSpaceND is folded
    into one conv before conversion (dilation.py); this is the op on its own."""
    cx.check_attrs({"T", "Tblock_shape", "Tpaddings"})
    dims, block, pads = _block_args(cx, "SpaceToBatchND", "paddings")
    m = block.size
    rest = dims[1 + m:]
    padded = [dims[1 + i] + int(pads[i, 0] + pads[i, 1]) for i in range(m)]
    if any(p % b for p, b in zip(padded, block)):
        raise cx.error(f"padded spatial dims {padded} must be multiples of block_shape "
                       f"{block.tolist()}")
    x = cx.input(0)
    if pads.any():
        full = [0] * len(dims) * 2
        for i in range(m):
            full[1 + i], full[len(dims) + 1 + i] = int(pads[i, 0]), int(pads[i, 1])
        y = cx.tmp("padded")
        cx.emit("Pad", [x, cx.const(np.asarray(full, np.int64), "pads")], [y])
        x = y
    split = [-1]
    for p, b in zip(padded, block):
        split += [p // int(b), int(b)]
    x = _reshape(cx, x, split + rest, "split")
    perm = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)] + \
        list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
    t = cx.tmp("blocks_first")
    cx.emit("Transpose", [x], [t], {"perm": perm})
    cx.emit("Reshape", [t, cx.const(np.asarray([-1] + [p // int(b) for p, b in zip(padded, block)]
                                               + rest, np.int64), "shape")], cx.outputs[:1])


@TF_OPS.register("BatchToSpaceND")
def batch_to_space(cx):
    """(b1..bM * B, S1.., R) -> (b1, ..., bM, B, S1, ..., R) -> interleave -> crop."""
    cx.check_attrs({"T", "Tblock_shape", "Tcrops"})
    dims, block, crops = _block_args(cx, "BatchToSpaceND", "crops")
    m = block.size
    spatial, rest = dims[1:1 + m], dims[1 + m:]
    x = _reshape(cx, cx.input(0), [int(b) for b in block] + [-1] + spatial + rest, "split")
    perm = [m]
    for i in range(m):
        perm += [m + 1 + i, i]
    perm += list(range(2 * m + 1, 2 * m + 1 + len(rest)))
    t = cx.tmp("interleaved")
    cx.emit("Transpose", [x], [t], {"perm": perm})
    full = [s * int(b) for s, b in zip(spatial, block)]
    if not crops.any():
        cx.emit("Reshape", [t, cx.const(np.asarray([-1] + full + rest, np.int64), "shape")],
                cx.outputs[:1])
        return
    if any(c0 + c1 > f for (c0, c1), f in zip(crops.tolist(), full)):
        raise cx.error(f"crops {crops.tolist()} exceed the spatial dims {full}")
    merged = _reshape(cx, t, [-1] + full + rest, "merged")
    starts = cx.const(crops[:, 0].astype(np.int64), "starts")
    ends = cx.const(np.asarray([f - int(c) for f, c in zip(full, crops[:, 1])], np.int64), "ends")
    axes = cx.const(np.arange(1, 1 + m, dtype=np.int64), "axes")
    cx.emit("Slice", [merged, starts, ends, axes], cx.outputs[:1])


# ---- LRN ----------------------------------------------------------------------------
@TF_OPS.register("LRN")
def lrn(cx):
    """sum over depth [d - r, d + r] of x^2; y = x / (bias + alpha * sum)^beta. The IR's
    LRN divides alpha by its window size 2r + 1, so alpha is scaled by it."""
    cx.check_attrs({"T", "depth_radius", "bias", "alpha", "beta"})
    if cx.rank(0) not in (None, 4):
        raise cx.error(f"input must be 4-D (N, H, W, C), got shape {cx.shape(0)}")
    r = cx.attrs.int("depth_radius", 5)
    if r < 0:
        raise cx.error(f"depth_radius ({r}) must not be negative")
    size = 2 * r + 1
    attrs = {"size": size, "alpha": cx.attrs.float("alpha", 1.0) * size,
             "beta": cx.attrs.float("beta", 0.5), "bias": cx.attrs.float("bias", 1.0)}
    nchw_output(cx, "NHWC", 2, "LRN", [nchw_input(cx, "NHWC", 2)], attrs)
