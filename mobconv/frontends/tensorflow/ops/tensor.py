"""TensorFlow tensor (shape and data-movement) op converters.

Values keep TensorFlow's layout, so axes map one to one. TensorFlow passes
axes, shapes, paddings and slice bounds as (mostly int32) tensor inputs; the
converters need them constant (they are Consts in frozen graphs, or shape
arithmetic the context evaluates at conversion time) and hand int64 to the IR.
Where TensorFlow's semantics differ from the IR op's (Reshape's 0, OneHot's
negative indices, Select's row condition, SYMMETRIC padding, GatherV2's
batch_dims) the converter says how it bridges the difference.
"""
from __future__ import annotations

import numpy as np

from ..registry import TF_OPS
from ._helpers import (
    INT64_MAX, as_int64, attr, cast, const_array, const_int, const_ints, int64_const, known_rank,
    norm_axis, typed_inputs,
)
from .strided_slice import SpecError, plan_strided_slice


def _unsqueeze(cx, value, axes, out=None):
    out = out or cx.tmp("unsqueeze")
    cx.emit("Unsqueeze", [value, int64_const(cx, axes, "axes")], [out])
    return out


def _squeeze(cx, value, axes, out=None):
    out = out or cx.tmp("squeeze")
    cx.emit("Squeeze", [value, int64_const(cx, axes, "axes")], [out])
    return out


def _identity(cx, value, out):
    cx.emit("Identity", [value], [out])


# ---- Concat / Split / Pack / Unpack ---------------------------------------------------


@TF_OPS.register("ConcatV2", "Concat")
def concat(cx):
    """ConcatV2(values..., axis); the old Concat(axis, values...) has the axis first."""
    n = len(cx.inputs) - 1
    if cx.op_type == "Concat":
        axis_index, values = 0, typed_inputs(cx, range(1, n + 1))
    else:
        axis_index, values = n, typed_inputs(cx, range(n))
    axis = const_int(cx, axis_index, "axis")
    if len(values) == 1:
        _identity(cx, values[0], cx.outputs[0])
        return
    cx.emit("Concat", values, cx.outputs[:1], {"axis": axis})


@TF_OPS.register("Split")
def split(cx):
    """Split(split_dim, value), num_split equal parts."""
    num = cx.attrs.positive_int("num_split")
    axis = const_int(cx, 0, "split_dim")
    outs = [cx.output(i) for i in range(num)]
    if num == 1:
        _identity(cx, cx.input(1), outs[0])
        return
    cx.emit("Split", [cx.input(1)], outs, {"axis": axis, "num_outputs": num})


@TF_OPS.register("SplitV")
def split_v(cx):
    """SplitV(value, size_splits, split_dim); one size may be -1 (the rest of the dim)."""
    num = cx.attrs.positive_int("num_split")
    sizes = const_ints(cx, 1, "size_splits")
    axis = const_int(cx, 2, "split_dim")
    if len(sizes) != num:
        raise cx.error(f"size_splits {sizes} must have num_split ({num}) entries")
    if sizes.count(-1) > 1:
        raise cx.error(f"size_splits {sizes} may hold at most one -1")
    if -1 in sizes:
        shape = cx.shape(0)
        rank = known_rank(cx, 0)
        dim = shape[norm_axis(cx, axis, rank)]
        if not isinstance(dim, int):
            raise cx.error(f"size_splits {sizes} has a -1 but dim {axis} is not known")
        sizes[sizes.index(-1)] = dim - sum(s for s in sizes if s != -1)
    outs = [cx.output(i) for i in range(num)]
    if num == 1:
        _identity(cx, cx.input(0), outs[0])
        return
    cx.emit("Split", [cx.input(0), int64_const(cx, sizes, "split")], outs, {"axis": axis})


@TF_OPS.register("Pack")
def pack(cx):
    """Pack(values..., axis): each value gets a new dim at `axis`, then Concat."""
    axis = cx.attrs.int("axis", 0)
    rank = known_rank(cx, 0, "values[0]") + 1
    axis = norm_axis(cx, axis, rank)
    parts = [_unsqueeze(cx, v, [axis], out=None if len(cx.inputs) > 1 else cx.outputs[0])
             for v in typed_inputs(cx)]
    if len(parts) > 1:
        cx.emit("Concat", parts, cx.outputs[:1], {"axis": axis})


@TF_OPS.register("Unpack")
def unpack(cx):
    """Unpack(value, num, axis): Split into num parts along axis, each squeezed."""
    num = cx.attrs.positive_int("num")
    rank = known_rank(cx, 0)
    axis = norm_axis(cx, cx.attrs.int("axis", 0), rank)
    if num == 1:
        _squeeze(cx, cx.input(0), [axis], cx.output(0))
        return
    parts = [cx.tmp(f"part{i}") for i in range(num)]
    cx.emit("Split", [cx.input(0)], parts, {"axis": axis, "num_outputs": num})
    for i, part in enumerate(parts):
        _squeeze(cx, part, [axis], cx.output(i))


# ---- Reshape / Squeeze / ExpandDims / Transpose ------------------------------------------


@TF_OPS.register("Reshape")
def reshape(cx):
    """Reshape(tensor, shape): a 0 in TensorFlow's shape is an empty dim (allowzero)."""
    target = cx.const_value(1)
    attrs = None
    if target is not None and 0 in np.asarray(target).reshape(-1):
        attrs = {"allowzero": 1}
    cx.emit("Reshape", [cx.input(0), as_int64(cx, 1, "shape")], cx.outputs[:1], attrs)


@TF_OPS.register("Squeeze")
def squeeze(cx):
    """squeeze_dims empty: every dim of size 1 (symbolic dims are taken as not 1)."""
    axes = cx.attrs.ints("squeeze_dims", [])
    rank = known_rank(cx, 0)
    if not axes:
        axes = [k for k, d in enumerate(cx.shape(0)) if d == 1]
    axes = [norm_axis(cx, a, rank, "squeeze_dims entry") for a in axes]
    if not axes:
        _identity(cx, cx.input(0), cx.outputs[0])
        return
    _squeeze(cx, cx.input(0), axes, cx.outputs[0])


@TF_OPS.register("ExpandDims")
def expand_dims(cx):
    """ExpandDims(input, dim): dim in [-rank-1, rank], -1 appends (Unsqueeze's rule)."""
    axis = const_int(cx, 1, "dim")
    rank = known_rank(cx, 0)
    norm_axis(cx, axis, rank + 1, "dim")
    _unsqueeze(cx, cx.input(0), [axis], cx.outputs[0])


@TF_OPS.register("Transpose")
def transpose(cx):
    perm = const_ints(cx, 1, "perm")
    rank = known_rank(cx, 0)
    if sorted(perm) != list(range(rank)):
        raise cx.error(f"perm {perm} is not a permutation of 0..{rank - 1}")
    cx.emit("Transpose", [cx.input(0)], cx.outputs[:1], {"perm": perm})


# ---- slicing ----------------------------------------------------------------------


def _slice_bounds(cx, i, what):
    """begin/end: constant ints, or ints and dim symbols when computed from shapes."""
    symbolic = getattr(cx, "symbolic", None)
    if cx.const_value(i) is None and symbolic is not None:
        dims = symbolic.value(cx.input(i))
        if dims is not None:
            return [d if isinstance(d, str) else int(d) for d in dims.ravel()]
    return const_ints(cx, i, what)


@TF_OPS.register("StridedSlice")
def strided_slice(cx):
    """See strided_slice.py: Slice, then Squeeze (shrink axes), then Unsqueeze (new axes)."""
    begin = _slice_bounds(cx, 1, "begin")
    end = _slice_bounds(cx, 2, "end")
    strides = const_ints(cx, 3, "strides")
    shape = cx.shape(0)
    if shape is None:
        raise cx.error(f"the input ({cx.input(0)!r}) needs a known rank")
    masks = {m: cx.attrs.int(m, 0) for m in
             ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    try:
        plan = plan_strided_slice(shape, begin, end, strides, **masks)
    except SpecError as e:
        raise cx.error(f"{e} (begin {begin}, end {end}, strides {strides}, input shape "
                       f"{list(shape)})") from None
    steps = [(plan.axes, "sliced"), (plan.shrink, "squeezed"), (plan.new_axes, "expanded")]
    last = max((k for k, (todo, _) in enumerate(steps) if todo), default=-1)
    value = cx.input(0)
    if last < 0:
        _identity(cx, value, cx.outputs[0])
        return
    if plan.axes:
        out = cx.outputs[0] if last == 0 else cx.tmp("sliced")
        cx.emit("Slice", [value, int64_const(cx, plan.starts, "starts"),
                          int64_const(cx, plan.ends, "ends"), int64_const(cx, plan.axes, "axes"),
                          int64_const(cx, plan.steps, "steps")], [out])
        value = out
    if plan.shrink:
        value = _squeeze(cx, value, plan.shrink, cx.outputs[0] if last == 1 else None)
    if plan.new_axes:
        _unsqueeze(cx, value, plan.new_axes, cx.outputs[0])


@TF_OPS.register("Slice")
def slice_(cx):
    """Slice(input, begin, size): size -1 takes the rest of the dim."""
    begin = const_ints(cx, 1, "begin")
    size = const_ints(cx, 2, "size")
    rank = known_rank(cx, 0)
    if not len(begin) == len(size) == rank:
        raise cx.error(f"begin {begin} and size {size} must have one entry per input dim "
                       f"(rank {rank})")
    if any(b < 0 for b in begin) or any(s < -1 for s in size):
        raise cx.error(f"begin {begin} must be >= 0 and size {size} >= -1")
    ends = [INT64_MAX if s == -1 else b + s for b, s in zip(begin, size)]
    cx.emit("Slice", [cx.input(0), int64_const(cx, begin, "starts"), int64_const(cx, ends, "ends"),
                      int64_const(cx, range(rank), "axes")], cx.outputs[:1])


# ---- gathers -------------------------------------------------------------------------


@TF_OPS.register("GatherV2", "Gather")
def gather(cx):
    """GatherV2(params, indices, axis) with batch_dims; old Gather is axis 0.

    batch_dims b > 0 (the first b dims of params and indices are matched, not
    indexed): the batch dims are flattened to one (B), params' gathered axis is
    moved next to it and merged (B * P[axis]), each batch's indices are offset
    by b_index * P[axis], one Gather on axis 0, then the dims are put back.
    Needs static dims for params' batch dims and gathered axis.
    """
    data, indices = cx.input(0), cx.input(1)
    prank = known_rank(cx, 0, "params")
    axis = const_int(cx, 2, "axis") if cx.op_type == "GatherV2" else 0
    axis = norm_axis(cx, axis, prank)
    b = cx.attrs.int("batch_dims", 0)
    if b == 0:
        cx.emit("Gather", [data, indices], cx.outputs[:1], {"axis": axis})
        return
    irank = known_rank(cx, 1, "indices")
    if b < 0:
        b += irank
    if not 0 <= b <= min(axis, irank):
        raise cx.error(f"batch_dims {cx.attrs.int('batch_dims')} must be in 0..min(axis, "
                       f"rank(indices)) = {min(axis, irank)}")
    if b == 0:
        cx.emit("Gather", [data, indices], cx.outputs[:1], {"axis": axis})
        return
    pshape, ishape = cx.shape(0), cx.shape(1)
    fixed = list(pshape[:b]) + [pshape[axis]]
    if not all(isinstance(d, int) for d in fixed) or not all(isinstance(d, int) for d in ishape):
        if irank == b + 1:
            _batched_gather_elements(cx, data, indices, b, axis, prank)
            return
        raise cx.error(f"batch_dims {b} with {irank - b} index dims needs static batch and axis "
                       f"dims (params {list(pshape)}, indices {list(ishape)})")
    batch = int(np.prod(pshape[:b], dtype=np.int64))
    n = pshape[axis]
    # params -> [B, P[axis], P[b:axis], P[axis+1:]] -> [B * P[axis], ...]
    perm = list(range(b)) + [axis] + list(range(b, axis)) + list(range(axis + 1, prank))
    moved = cx.tmp("params_moved")
    cx.emit("Transpose", [data], [moved], {"perm": perm})
    mid = [pshape[k] for k in range(b, axis)]
    rest = [pshape[k] for k in range(axis + 1, prank)]
    if not all(isinstance(d, int) for d in mid + rest):
        raise cx.error(f"batch_dims {b} needs static params dims (params {list(pshape)})")
    flat = cx.tmp("params_flat")
    flat_shape = [batch * n] + mid + rest
    cx.emit("Reshape", [moved, int64_const(cx, flat_shape, "shape")], [flat],
            {"allowzero": 1} if 0 in flat_shape else None)
    # indices -> [B, I[b:]] + offsets
    itype = cx.dtype(1) or "int32"
    offsets = (np.arange(batch, dtype=itype) * n).reshape([batch] + [1] * (irank - b))
    idx = cx.tmp("indices_flat")
    cx.emit("Reshape", [indices, int64_const(cx, [batch] + list(ishape[b:]), "ishape")], [idx])
    shifted = cx.tmp("indices_shifted")
    cx.emit("Add", [idx, cx.const(offsets, "offsets")], [shifted])
    got = cx.tmp("gathered")  # [B, I[b:], P[b:axis], P[axis+1:]]
    cx.emit("Gather", [flat, shifted], [got], {"axis": 0})
    ni, nm = irank - b, len(mid)
    # -> [B, P[b:axis], I[b:], P[axis+1:]]
    order = [0] + list(range(1 + ni, 1 + ni + nm)) + list(range(1, 1 + ni)) + \
        list(range(1 + ni + nm, 1 + ni + nm + len(rest)))
    value = got
    if order != list(range(len(order))):
        value = cx.tmp("gathered_moved")
        cx.emit("Transpose", [got], [value], {"perm": order})
    final = list(pshape[:b]) + mid + list(ishape[b:]) + rest
    cx.emit("Reshape", [value, int64_const(cx, final, "out_shape")], cx.outputs[:1],
            {"allowzero": 1} if 0 in final else None)


def _batched_gather_elements(cx, data, indices, b, axis, prank):
    """GatherV2 with batch_dims b and one index dim when dims are only known at run time:
    params' gathered axis moved to position b, indices [P[:b], K] unsqueezed and expanded
    to [P[:b], K, rest...], one GatherElements on axis b, the moved dims put back."""
    perm = list(range(b)) + [axis] + list(range(b, axis)) + list(range(axis + 1, prank))
    moved = data
    if perm != list(range(prank)):
        moved = cx.tmp("params_moved")
        cx.emit("Transpose", [data], [moved], {"perm": perm})
    rest = prank - b - 1
    wide = _unsqueeze(cx, indices, list(range(b + 1, b + 1 + rest))) if rest else indices
    if rest:
        ishape, pshape = cx.tmp("indices_shape"), cx.tmp("params_shape")
        cx.emit("Shape", [indices], [ishape])
        cx.emit("Shape", [moved], [pshape])
        tail, target, expanded = cx.tmp("rest_shape"), cx.tmp("target"), cx.tmp("indices_wide")
        cx.emit("Slice", [pshape, int64_const(cx, [b + 1], "starts"),
                          int64_const(cx, [INT64_MAX], "ends")], [tail])
        cx.emit("Concat", [ishape, tail], [target], {"axis": 0})
        cx.emit("Expand", [wide, target], [expanded])
        wide = expanded
    n_mid = axis - b  # P[b:axis], now after the index dim
    out = cx.outputs[0] if n_mid == 0 else cx.tmp("gathered")
    cx.emit("GatherElements", [moved, wide], [out], {"axis": b})
    if n_mid:
        order = list(range(b)) + list(range(b + 1, b + 1 + n_mid)) + [b] + \
            list(range(b + 1 + n_mid, prank))
        cx.emit("Transpose", [out], cx.outputs[:1], {"perm": order})


@TF_OPS.register("GatherNd")
def gather_nd(cx):
    """GatherNd(params, indices[..., k]): flat index sum(idx_j * stride_j) over params'
    first k dims (static), one Gather on params reshaped to [prod(P[:k]), P[k:]...]."""
    pshape, ishape = cx.shape(0), cx.shape(1)
    if pshape is None or ishape is None or not ishape or not isinstance(ishape[-1], int):
        raise cx.error("params and indices need known ranks and a static last indices dim")
    k = ishape[-1]
    if k > len(pshape):
        raise cx.error(f"indices' last dim ({k}) exceeds the rank of params ({len(pshape)})")
    if not all(isinstance(d, int) for d in pshape):
        raise cx.error(f"params needs a static shape (got {list(pshape)})")
    lead = pshape[:k]
    strides = [int(np.prod(lead[j + 1:], dtype=np.int64)) for j in range(k)]
    itype = cx.dtype(1) or "int32"
    weighted = cx.tmp("weighted")
    cx.emit("Mul", [cx.input(1), cx.const(np.asarray(strides, itype), "strides")], [weighted])
    flat_idx = cx.tmp("flat_index")
    cx.emit("ReduceSum", [weighted, int64_const(cx, [-1], "axes")], [flat_idx], {"keepdims": 0})
    flat = cx.tmp("params_flat")
    cx.emit("Reshape", [cx.input(0), int64_const(cx, [int(np.prod(lead, dtype=np.int64))] +
                                                 list(pshape[k:]), "shape")], [flat],
            {"allowzero": 1} if 0 in pshape else None)
    cx.emit("Gather", [flat, flat_idx], cx.outputs[:1], {"axis": 0})


# ---- making tensors -------------------------------------------------------------------


@TF_OPS.register("Tile")
def tile(cx):
    cx.emit("Tile", [cx.input(0), as_int64(cx, 1, "multiples")], cx.outputs[:1])


@TF_OPS.register("Fill")
def fill(cx):
    """Fill(dims, value): ConstantOfShape when value is a constant, else Expand."""
    value = cx.const_value(1)
    dims = as_int64(cx, 0, "dims")
    if value is not None:
        cx.emit("ConstantOfShape", [dims], cx.outputs[:1],
                {"value": np.asarray(value).reshape(1)})
    else:
        cx.emit("Expand", [cx.input(1), dims], cx.outputs[:1])


@TF_OPS.register("ZerosLike", "OnesLike")
def zeros_like(cx):
    dtype = cx.dtype(0) or attr(cx, "T") or "float32"
    shape = cx.tmp("shape")
    cx.emit("Shape", [cx.input(0)], [shape])
    fill_value = np.asarray([0 if cx.op_type == "ZerosLike" else 1], dtype=dtype)
    cx.emit("ConstantOfShape", [shape], cx.outputs[:1], {"value": fill_value})


@TF_OPS.register("BroadcastTo")
def broadcast_to(cx):
    cx.emit("Expand", [cx.input(0), as_int64(cx, 1, "shape")], cx.outputs[:1])


@TF_OPS.register("Shape", "Size")
def shape(cx):
    """Shape/Size with out_type int32 (the default) or int64."""
    out_type = cx.attrs.choice("out_type", ("int32", "int64"), "int32")
    if out_type == "int64":
        cx.emit(cx.op_type, [cx.input(0)], cx.outputs[:1])
        return
    wide = cx.tmp(cx.op_type.lower())
    cx.emit(cx.op_type, [cx.input(0)], [wide])
    cast(cx, wide, "int32", cx.outputs[0])


@TF_OPS.register("ShapeN")
def shape_n(cx):
    out_type = cx.attrs.choice("out_type", ("int32", "int64"), "int32")
    for i, value in enumerate(cx.inputs):
        if out_type == "int64":
            cx.emit("Shape", [value], [cx.output(i)])
        else:
            wide = cx.tmp(f"shape{i}")
            cx.emit("Shape", [value], [wide])
            cast(cx, wide, "int32", cx.output(i))


@TF_OPS.register("Rank")
def rank(cx):
    r = known_rank(cx, 0)
    cx.emit("Identity", [cx.const(np.asarray(r, np.int32), "rank")], cx.outputs[:1])


@TF_OPS.register("Range")
def range_(cx):
    """Range(start, limit, delta) of one dtype (Tidx)."""
    cx.emit("Range", typed_inputs(cx, (0, 1, 2), "Tidx"), cx.outputs[:1])


@TF_OPS.register("Cast")
def cast_(cx):
    """Cast to DstT: float -> int truncates toward zero, anything -> bool is != 0 (both
    frameworks). Truncate (float -> narrower float without rounding) is refused."""
    dst = attr(cx, "DstT")
    from ....ir import DTYPES

    if dst not in DTYPES:
        raise cx.error(f"DstT ({dst}) is not a supported dtype (supported: {', '.join(DTYPES)})")
    if attr(cx, "Truncate", False) and dst in ("float16", "bfloat16") and \
            cx.dtype(0) not in ("float16", "bfloat16"):
        raise cx.error("Truncate=true (float rounding by truncation) is not supported")
    if cx.dtype(0) == dst:
        _identity(cx, cx.input(0), cx.outputs[0])
        return
    cast(cx, cx.input(0), dst, cx.outputs[0])


# ---- padding --------------------------------------------------------------------------


def _paddings(cx):
    pads = const_array(cx, 1, "paddings").astype(np.int64)
    rank = known_rank(cx, 0)
    if pads.shape != (rank, 2):
        raise cx.error(f"paddings must have shape [{rank}, 2], got {list(pads.shape)}")
    if (pads < 0).any():
        raise cx.error(f"paddings {pads.tolist()} must not be negative")
    return pads


@TF_OPS.register("Pad", "PadV2")
def pad(cx):
    """Pad(input, paddings[rank, 2]) / PadV2(..., constant_values)."""
    pads = _paddings(cx)
    inputs = [cx.input(0), int64_const(cx, np.concatenate([pads[:, 0], pads[:, 1]]), "pads")]
    if cx.op_type == "PadV2":
        inputs.append(cx.input(2))
    cx.emit("Pad", inputs, cx.outputs[:1], {"mode": "constant"})


@TF_OPS.register("MirrorPad")
def mirror_pad(cx):
    """REFLECT -> Pad reflect; SYMMETRIC (the edge repeated) -> one Gather per padded
    axis with indices np.pad(arange(dim), mode="symmetric") (needs those dims static)."""
    mode = cx.attrs.choice("mode", ("REFLECT", "SYMMETRIC"))
    pads = _paddings(cx)
    shape = cx.shape(0)
    for k, (before, after) in enumerate(pads.tolist()):
        if not isinstance(shape[k], int):
            continue
        limit = shape[k] - 1 if mode == "REFLECT" else shape[k]
        if (before or after) and max(before, after) > limit:
            raise cx.error(f"{mode} paddings {pads.tolist()} exceed dim {k} of input shape "
                           f"{list(shape)} (at most {limit})")
    if mode == "REFLECT":
        cx.emit("Pad", [cx.input(0), int64_const(cx, np.concatenate([pads[:, 0], pads[:, 1]]),
                                                 "pads")], cx.outputs[:1], {"mode": "reflect"})
        return
    axes = [k for k, (b, a) in enumerate(pads.tolist()) if b or a]
    value = cx.input(0)
    if not axes:
        _identity(cx, value, cx.outputs[0])
        return
    for n, k in enumerate(axes):
        dim = shape[k]
        if not isinstance(dim, int):
            raise cx.error(f"SYMMETRIC padding of dim {k} needs its size (input {list(shape)})")
        index = np.pad(np.arange(dim, dtype=np.int64), pads[k].tolist(), mode="symmetric")
        out = cx.outputs[0] if n == len(axes) - 1 else cx.tmp(f"padded{k}")
        cx.emit("Gather", [value, cx.const(index, f"index{k}")], [out], {"axis": k})
        value = out


# ---- selection -------------------------------------------------------------------------


@TF_OPS.register("ArgMax", "ArgMin")
def arg_max(cx):
    """ArgMax(input, dimension) with output_type int64 (default) or int32."""
    out_type = cx.attrs.choice("output_type", ("int32", "int64"), "int64")
    axis = norm_axis(cx, const_int(cx, 1, "dimension"), known_rank(cx, 0), "dimension")
    attrs = {"axis": axis, "keepdims": 0}
    if out_type == "int64":
        cx.emit(cx.op_type, [cx.input(0)], cx.outputs[:1], attrs)
        return
    wide = cx.tmp("index")
    cx.emit(cx.op_type, [cx.input(0)], [wide], attrs)
    cast(cx, wide, "int32", cx.outputs[0])


@TF_OPS.register("TopKV2", "TopK")
def top_k(cx):
    """TopKV2(input, k) along the last axis; values sorted descending, ties to the lower
    index. sorted=false lets TensorFlow return any order; the sorted one is returned."""
    if cx.op_type == "TopK":
        k = cx.attrs.positive_int("k")
    else:
        k = const_int(cx, 1, "k")
    index_type = cx.attrs.choice("index_type", ("int32", "int64"), "int32")
    wide = cx.tmp("indices") if index_type == "int32" else cx.output(1)
    cx.emit("TopK", [cx.input(0), int64_const(cx, [k], "k")], [cx.output(0), wide],
            {"axis": -1, "largest": 1, "sorted": 1})
    if index_type == "int32":
        cast(cx, wide, "int32", cx.output(1))


@TF_OPS.register("Select")
def select(cx):
    """Select(condition, t, e): t, e same shape; a vector condition with rank(t) > 1
    picks whole rows (it is reshaped to [N, 1, ...]), otherwise element-wise."""
    cond = cx.input(0)
    crank, trank = cx.rank(0), cx.rank(1)
    if crank == 1 and trank is not None and trank > 1:
        cond = _unsqueeze(cx, cond, list(range(1, trank)))
    cx.emit("Where", [cond] + typed_inputs(cx, (1, 2)), cx.outputs[:1])


@TF_OPS.register("SelectV2")
def select_v2(cx):
    """SelectV2: numpy broadcasting of all three, as IR Where."""
    cx.emit("Where", [cx.input(0)] + typed_inputs(cx, (1, 2)), cx.outputs[:1])


@TF_OPS.register("OneHot")
def one_hot(cx):
    """OneHot(indices, depth, on_value, off_value), new axis `axis` (-1: last).

    Built as Where(Equal(Unsqueeze(indices), arange(depth)), on, off): an index
    outside [0, depth) (negative ones too) gives all off_value, as in TensorFlow
    (IR OneHot would count negative indices from the end).
    """
    depth = const_int(cx, 1, "depth")
    if depth < 0:
        raise cx.error(f"depth ({depth}) must not be negative")
    rank = known_rank(cx, 0, "indices")
    axis = cx.attrs.int("axis", -1)
    if not -1 <= axis <= rank:
        raise cx.error(f"axis ({axis}) must be in -1..{rank}")
    axis = rank if axis == -1 else axis
    itype = cx.dtype(0) or "int64"
    expanded = _unsqueeze(cx, cx.input(0), [axis])
    arange = np.arange(depth, dtype=itype).reshape([depth] + [1] * (rank - axis))
    hit = cx.tmp("hit")
    cx.emit("Equal", [expanded, cx.const(arange, "arange")], [hit])
    cx.emit("Where", [hit, cx.input(2), cx.input(3)], cx.outputs[:1])


@TF_OPS.register("ReverseV2")
def reverse_v2(cx):
    """ReverseV2(tensor, axis): Slice with step -1 on each listed axis."""
    rank = known_rank(cx, 0)
    axes = sorted({norm_axis(cx, a, rank) for a in const_ints(cx, 1, "axis")})
    if not axes:
        _identity(cx, cx.input(0), cx.outputs[0])
        return
    n = len(axes)
    cx.emit("Slice", [cx.input(0), int64_const(cx, [-1] * n, "starts"),
                      int64_const(cx, [-INT64_MAX] * n, "ends"), int64_const(cx, axes, "axes"),
                      int64_const(cx, [-1] * n, "steps")], cx.outputs[:1])


@TF_OPS.register("ScatterNd", "TensorScatterUpdate", "TensorScatterAdd")
def scatter_nd(cx):
    """ScatterNd(indices, updates, shape): zeros of `shape` with the updates summed in
    (TensorFlow adds duplicates); TensorScatterUpdate/Add(tensor, indices, updates):
    ScatterND with reduction none/add. Indices become int64."""
    if cx.op_type == "ScatterNd":
        dtype = cx.dtype(1) or attr(cx, "T") or "float32"
        data = cx.tmp("zeros")
        cx.emit("ConstantOfShape", [as_int64(cx, 2, "shape")], [data],
                {"value": np.zeros(1, dtype=dtype)})
        indices, updates, reduction = as_int64(cx, 0, "indices"), cx.input(1), "add"
    else:
        data, indices, updates = cx.input(0), as_int64(cx, 1, "indices"), cx.input(2)
        reduction = "add" if cx.op_type == "TensorScatterAdd" else "none"
    cx.emit("ScatterND", [data, indices, updates], cx.outputs[:1], {"reduction": reduction})


@TF_OPS.register("BroadcastArgs")
def broadcast_args(cx):
    """The broadcast shape of two shape vectors, when both are known at conversion."""
    s0, s1 = (const_ints(cx, i, f"s{i}") for i in (0, 1))
    try:
        shape = np.broadcast_shapes(tuple(s0), tuple(s1))
    except ValueError:
        raise cx.error(f"shapes {s0} and {s1} do not broadcast") from None
    dtype = attr(cx, "T") or "int32"
    _identity(cx, cx.const(np.asarray(shape, dtype=dtype), "shape"), cx.outputs[0])
