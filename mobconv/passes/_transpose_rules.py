"""Per-op rules of the transpose sinking pass (transpose_sinking.py): how an op computes
in a permuted layout.

A rule `(sinker, node, q) -> Plan | None` says how `node` looks when flipped by the
permutation q (each logical value v is stored as v' with v = transpose(v', q), so
logical axis a is stored axis q[a]): which inputs are data to permute, the new
attributes, the new constant inputs (axes, pads, scales, repeats, Reshape target),
and the permutation of each output (q for ops that keep the rank; another, maybe
the identity, for ops that drop or add axes). None: the node cannot flip by q.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._util import attrs_of

# ---- permutations ---------------------------------------------------------------------


def compose(first, then) -> tuple:
    """transpose(transpose(x, first), then) == transpose(x, compose(first, then))."""
    return tuple(first[i] for i in then)


def inverse(perm) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def is_identity(perm) -> bool:
    return all(i == p for i, p in enumerate(perm))


def from_nchw(rank: int) -> tuple:
    """The permutation NCHW -> NHWC ([0,2,3,1] for rank 4)."""
    return (0,) + tuple(range(2, rank)) + (1,)


class Plan:
    """How node N looks flipped by Q: `data` input slots with their mode ("perm": rank
    r, "bcast": broadcasting element-wise operand), new attrs, new constant inputs by
    slot (an array, or None to keep), and each output's permutation (y = transpose(y',
    out_perm); the identity needs no output Transpose)."""

    def __init__(self, data, outs, attrs=None, params=None):
        self.data = data
        self.outs = outs
        self.attrs = attrs or {}
        self.params = params or {}


# Same-shape element-wise ops of one data input; further inputs are scalars/params.
UNARY = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Celu", "ThresholdedRelu", "Softplus", "Softsign", "Mish", "Gelu", "Erf", "Exp",
    "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin",
    "Cos", "Not", "Cast", "Clip", "Shrink",
})
# Broadcasting element-wise ops: every input is data.
BROADCAST = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "And", "Or",
    "Xor", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Where", "PRelu",
})
SINGLE_AXIS = frozenset({"Softmax", "LogSoftmax", "Hardmax", "LpNormalization"})
REDUCE = frozenset({
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp",
})


# ---- rules ---------------------------------------------------------------------------


def _rank_is(s, names, rank) -> bool:
    return all(s.shape(n) is not None and len(s.shape(n)) == rank for n in names if n)


def _axis(value, rank) -> Optional[int]:
    value = int(value)
    return value + rank if -rank <= value < 0 else value if 0 <= value < rank else None


def _const_axes(s, name, rank) -> Optional[list]:
    data = s.uses.const(name)
    if data is None:
        return None
    axes = [_axis(a, rank) for a in data.reshape(-1)]
    return None if None in axes or len(set(axes)) != len(axes) else axes


def _reduced_perm(q, axes, keepdims) -> tuple:
    """Output permutation of a reduction over logical `axes` flipped by q."""
    if keepdims:
        return q
    kept = [a for a in range(len(q)) if a not in axes]
    stored = sorted(q[a] for a in kept)
    return tuple(stored.index(q[a]) for a in kept)


def _unary(s, node, q):
    if len(node.outputs) != 1 or not _rank_is(s, [node.inputs[0], node.outputs[0]], len(q)):
        return None
    return Plan([(0, "perm")], [q])


def _broadcast(s, node, q):
    rank = len(q)
    if len(node.outputs) != 1 or not _rank_is(s, node.outputs, rank):
        return None
    data = []
    for slot, name in enumerate(node.inputs):
        if not name:
            continue
        shape = s.shape(name)
        if shape is None or len(shape) > rank:
            return None
        if s.uses.const(name) is None and len(shape) not in (0, rank):
            return None
        data.append((slot, "bcast"))
    return Plan(data, [q])


def _concat(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or len(node.outputs) != 1 or not _rank_is(s, node.inputs + node.outputs, rank):
        return None
    return Plan([(i, "perm") for i, n in enumerate(node.inputs) if n], [q], {"axis": q[axis]})


def _split(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or not _rank_is(s, [node.inputs[0]] + node.outputs, rank):
        return None
    return Plan([(0, "perm")], [q] * len(node.outputs), {"axis": q[axis]})


def _single_axis(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return Plan([(0, "perm")], [q], {"axis": q[axis]})


def _single_axis_multi(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return Plan([(0, "perm")], [q] * len(node.outputs), {"axis": q[axis]})


def _arg(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    axis = _axis(attrs["axis"], rank)
    if axis is None or len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1], rank):
        return None
    return Plan([(0, "perm")], [_reduced_perm(q, [axis], attrs["keepdims"])], {"axis": q[axis]})


def _reduce(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1], rank):
        return None
    axes_name = node.inputs[1] if len(node.inputs) > 1 else ""
    if not axes_name or s.uses.const(axes_name) is not None and s.uses.const(axes_name).size == 0:
        if attrs["noop_with_empty_axes"]:
            return Plan([(0, "perm")], [q])
        return Plan([(0, "perm")], [_reduced_perm(q, list(range(rank)), attrs["keepdims"])])
    axes = _const_axes(s, axes_name, rank)
    if axes is None:
        return None
    dtype = s.uses.const(axes_name).dtype
    new_axes = np.array(sorted(q[a] for a in axes), dtype=dtype)
    return Plan([(0, "perm")], [_reduced_perm(q, axes, attrs["keepdims"])], params={1: new_axes})


def _slice(s, node, q):
    rank = len(q)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    starts = s.shape(node.inputs[1]) if len(node.inputs) > 1 else None
    if starts is None or len(starts) != 1 or not isinstance(starts[0], int):
        return None
    axes_name = node.inputs[3] if len(node.inputs) > 3 else ""
    if axes_name:
        axes = _const_axes(s, axes_name, rank)
        dtype = None if axes is None else s.uses.const(axes_name).dtype
    else:
        axes, dtype = list(range(starts[0])), s.graph.values[node.inputs[1]].dtype or "int64"
    if axes is None:
        return None
    return Plan([(0, "perm")], [q], params={3: np.array([q[a] for a in axes], dtype=dtype)})


def _pad(s, node, q):
    rank = len(q)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    pads = s.uses.const(node.inputs[1]) if len(node.inputs) > 1 else None
    if pads is None:
        return None
    axes_name = node.inputs[3] if len(node.inputs) > 3 else ""
    if axes_name:
        axes = _const_axes(s, axes_name, rank)
        if axes is None:
            return None
        new_axes = np.array([q[a] for a in axes], dtype=s.uses.const(axes_name).dtype)
        return Plan([(0, "perm")], [q], params={3: new_axes})
    pads = pads.reshape(-1)
    if pads.size != 2 * rank:
        return None
    inv = inverse(q)
    new_pads = np.concatenate([pads[:rank][list(inv)], pads[rank:][list(inv)]])
    return Plan([(0, "perm")], [q], params={1: new_pads})


def _resize(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    if attrs["axes"]:
        axes = [_axis(a, rank) for a in attrs["axes"]]
        if None in axes:
            return None
        return Plan([(0, "perm")], [q], {"axes": [q[a] for a in axes]})
    inv, params = list(inverse(q)), {}
    for slot in (1, 2, 3):
        name = node.inputs[slot] if len(node.inputs) > slot else ""
        if not name:
            continue
        data = s.uses.const(name)
        if data is None:
            return None
        data = data.reshape(-1)
        if data.size == 0:
            continue
        if slot == 1 and data.size == 2 * rank:
            params[slot] = np.concatenate([data[:rank][inv], data[rank:][inv]])
        elif slot > 1 and data.size == rank:
            params[slot] = data[inv]
        else:
            return None
    return Plan([(0, "perm")], [q], params=params)


def _quantize(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    axis = _axis(attrs["axis"], rank)
    if attrs["block_size"] or axis is None or len(node.outputs) != 1:
        return None
    if not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return Plan([(0, "perm")], [q], {"axis": q[axis]})


def _mvn(s, node, q):
    rank = len(q)
    axes = [_axis(a, rank) for a in attrs_of(node)["axes"]]
    if None in axes or len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return Plan([(0, "perm")], [q], {"axes": sorted(q[a] for a in axes)})


def _place_ones(order, inserted) -> list:
    """`order`: logical axes in stored order; insert each axis of `inserted` (sorted)
    right after the logical axis before it (at the front for axis 0)."""
    order = list(order)
    for axis in sorted(inserted):
        order.insert(order.index(axis - 1) + 1 if axis > 0 else 0, axis)
    return order


def _unsqueeze(s, node, q):
    rank = len(q)
    out = s.shape(node.outputs[0]) if len(node.outputs) == 1 else None
    if out is None or len(node.inputs) < 2 or not _rank_is(s, node.inputs[:1], rank):
        return None
    axes = _const_axes(s, node.inputs[1], len(out))
    if axes is None:
        return None
    kept = [i for i in range(len(out)) if i not in axes]  # logical output axis of input axis j
    stored_in = inverse(q)  # logical input axis at each stored position
    order = _place_ones([kept[j] for j in stored_in], axes)
    out_perm = tuple(order.index(i) for i in range(len(out)))
    new_axes = np.array(sorted(order.index(a) for a in axes), dtype=s.uses.const(node.inputs[1]).dtype)
    return Plan([(0, "perm")], [out_perm], params={1: new_axes})


def _squeeze(s, node, q):
    rank = len(q)
    shape = s.shape(node.inputs[0])
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1], rank):
        return None
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = _const_axes(s, node.inputs[1], rank)
        dtype = None if axes is None else s.uses.const(node.inputs[1]).dtype
    else:
        axes, dtype = [a for a, d in enumerate(shape) if d == 1], np.int64
        if any(not isinstance(d, int) for d in shape):
            return None
    if axes is None:
        return None
    new_axes = np.array(sorted(q[a] for a in axes), dtype=dtype)
    return Plan([(0, "perm")], [_reduced_perm(q, axes, 0)], params={1: new_axes})


def _tile(s, node, q):
    rank = len(q)
    repeats = s.uses.const(node.inputs[1]) if len(node.inputs) > 1 else None
    if repeats is None or repeats.size != rank or len(node.outputs) != 1:
        return None
    if not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return Plan([(0, "perm")], [q], params={1: repeats.reshape(-1)[list(inverse(q))]})


def _reshape_groups(shape_in, shape_out) -> Optional[list]:
    """Split a reshape into (input axes, output axes) groups of equal size, in order;
    size-1 axes form groups of their own with nothing on the other side. A symbolic
    dim must meet the same symbol alone. None when that is impossible."""
    groups, i, j = [], 0, 0
    while i < len(shape_in) or j < len(shape_out):
        if i < len(shape_in) and shape_in[i] == 1:
            groups.append(([i], []))
            i += 1
            continue
        if j < len(shape_out) and shape_out[j] == 1:
            groups.append(([], [j]))
            j += 1
            continue
        if i >= len(shape_in) or j >= len(shape_out):
            return None
        if isinstance(shape_in[i], str) or isinstance(shape_out[j], str):
            if shape_in[i] != shape_out[j]:
                return None
            groups.append(([i], [j]))
            i, j = i + 1, j + 1
            continue
        ins, outs, p_in, p_out = [i], [j], shape_in[i], shape_out[j]
        i, j = i + 1, j + 1
        while p_in != p_out:
            if p_in < p_out and i < len(shape_in) and isinstance(shape_in[i], int) and shape_in[i] != 1:
                ins.append(i)
                p_in, i = p_in * shape_in[i], i + 1
            elif p_out < p_in and j < len(shape_out) and isinstance(shape_out[j], int) and shape_out[j] != 1:
                outs.append(j)
                p_out, j = p_out * shape_out[j], j + 1
            else:
                return None
        groups.append((ins, outs))
    return groups


def _reshape(s, node, q):
    """A Reshape that merges or splits axes which stay next to each other, in order,
    in the permuted layout (Keras UpSampling2D's repeat: (N,H,2,W,C) -> (N,2H,W,C))."""
    rank = len(q)
    shape_in = s.shape(node.inputs[0])
    shape_out = s.shape(node.outputs[0]) if len(node.outputs) == 1 else None
    if shape_out is None or not _rank_is(s, node.inputs[:1], rank) or s.uses.const(node.inputs[1]) is None:
        return None
    groups = _reshape_groups(shape_in, shape_out)
    if groups is None:
        return None
    group_of = {a: g for g, (ins, _) in enumerate(groups) for a in ins}
    order = []
    stored_in = [a for a in inverse(q) if shape_in[a] != 1]  # logical input axes in stored order
    k = 0
    while k < len(stored_in):
        ins, outs = groups[group_of[stored_in[k]]]
        if stored_in[k:k + len(ins)] != ins:
            return None  # the group's axes are not together, in order, in the stored layout
        order.extend(outs)
        k += len(ins)
    order = _place_ones(order, [j for j, d in enumerate(shape_out) if d == 1])
    symbols = [d for d in shape_out if not isinstance(d, int)]
    if len(symbols) > 1 or sorted(order) != list(range(len(shape_out))):
        return None
    target = np.array([shape_out[i] if isinstance(shape_out[i], int) else -1 for i in order], np.int64)
    out_perm = tuple(order.index(i) for i in range(len(shape_out)))
    return Plan([(0, "perm")], [out_perm], params={1: target})


RULES = {op: _unary for op in UNARY}
RULES.update({op: _broadcast for op in BROADCAST})
RULES.update({op: _single_axis for op in SINGLE_AXIS})
RULES.update({op: _reduce for op in REDUCE})
RULES.update({
    "Concat": _concat, "Split": _split, "TopK": _single_axis_multi, "ArgMax": _arg,
    "ArgMin": _arg, "Slice": _slice, "Pad": _pad, "Resize": _resize,
    "QuantizeLinear": _quantize, "DequantizeLinear": _quantize,
    "MeanVarianceNormalization": _mvn, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze,
    "Tile": _tile, "Reshape": _reshape,
})
