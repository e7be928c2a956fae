"""Atrous pre-pass: SpaceToBatchND -> conv -> BatchToSpaceND becomes one dilated conv.

Why: TensorFlow builds dilated convolutions (`tf.nn.atrous_conv2d`, Keras
`Conv2D(dilation_rate=...)`, `tf.nn.convolution`) as
    SpaceToBatchND(x, block, paddings) -> Conv2D/DepthwiseConv2dNative (VALID, stride 1)
    [-> BiasAdd] -> BatchToSpaceND(y, block, crops)
and dilated 1-D convolutions (Keras `Conv1D(dilation_rate=...)`, any padding incl.
causal) with ExpandDims -> Conv2D -> Squeeze on (N, 1, W, C) in the middle.
The middle conv runs on `block` interleaved phases of the padded input, which is
exactly a conv with dilations = block on the padded input; BatchToSpaceND's crops
then remove rows from the output's ends, which is the same as removing that
much padding. So the three ops are one conv with dilations = block and explicit
pads (paddings - crops) per side, as long as no pad becomes negative.

Algorithm, per BatchToSpaceND node (on a copy of the GraphDef, before conversion):
1. Walk back: optional BiasAdd (or Squeeze for 1-D), a Conv2D/DepthwiseConv2dNative
   in NHWC with strides 1, dilations 1 and VALID padding, (ExpandDims for 1-D,)
   reading a SpaceToBatchND. The nodes in between have no other readers.
2. block_shape (one value per spatial dim, >= 1, the same on both ends) is a
   Const; paddings and crops are Consts or computed (below); pads = paddings -
   crops must be >= 0 on every side.
3. The conv (or ExpandDims) reads SpaceToBatchND's input; the conv gets dilations
   [1, bh, bw, 1] and padding VALID (all pads 0) or EXPLICIT; the
   BatchToSpaceND becomes an Identity of what it read (consumers keep its
   name); the SpaceToBatchND goes when nothing else reads it.
A pattern that does not fit is left alone: SpaceToBatchND/BatchToSpaceND then
convert as ops of their own (ops/nn.py).

Inputs of unknown height/width: TensorFlow computes paddings and crops at run
time from the input's shape (`required_space_to_batch_paddings`: the base padding
plus what makes the size a multiple of the block, cropped again after). Those
small subgraphs (Shape, StridedSlice, Pack, Add, Sub, FloorMod, ...) are
evaluated here with numpy for two sample sizes; when paddings - crops is the
same for both (it is the base padding), that is the fold's padding.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConversionError
from .tensors import tensor_to_array

_CONVS = ("Conv2D", "DepthwiseConv2dNative")


def fold_space_to_batch_convs(graph_def, source: str = ""):
    """The GraphDef with every foldable atrous pattern folded (a copy if anything changed)."""
    if not any(n.op == "BatchToSpaceND" for n in graph_def.node):
        return graph_def
    out = type(graph_def)()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    readers = _readers(out)
    orphans = []  # nodes whose last reader may have gone (the paddings/crops computations)
    for b2s in [n for n in out.node if n.op == "BatchToSpaceND"]:
        plan = _match(b2s, nodes, readers)
        if plan is None:
            continue
        conv, s2b, reader, block, pads = plan
        reader.input[0] = s2b.input[0]
        if len(block) == 1:  # conv1d: the conv runs on (N, 1, W, C)
            block, pads = [1] + list(block), [0, 0] + list(pads)
        conv.attr["dilations"].list.i[:] = [1, int(block[0]), int(block[1]), 1]
        if any(pads):
            conv.attr["padding"].s = b"EXPLICIT"
            conv.attr["explicit_paddings"].list.i[:] = [0, 0] + list(map(int, pads)) + [0, 0]
        else:
            conv.attr["padding"].s = b"VALID"
        dtype = b2s.attr["T"].type
        orphans += list(b2s.input[1:]) + [s2b.name]
        controls = [i for i in b2s.input if i.startswith("^")]
        source_input = b2s.input[0]
        b2s.op = "Identity"
        del b2s.input[:]
        b2s.input.extend([source_input] + controls)
        for key in list(b2s.attr.keys()):
            del b2s.attr[key]
        b2s.attr["T"].type = dtype
    _drop_orphans(out, orphans)
    return out


def _drop_orphans(graph_def, names) -> None:
    """Remove the nodes among `names` (and then their inputs) that nothing reads any more."""
    nodes = {n.name: n for n in graph_def.node}
    read: dict = {}
    for node in graph_def.node:
        for inp in node.input:
            name = inp.lstrip("^").split(":")[0]
            read[name] = read.get(name, 0) + 1
    removed = set()
    stack = [n.lstrip("^").split(":")[0] for n in names]
    while stack:
        name = stack.pop()
        node = nodes.get(name)
        if node is None or name in removed or read.get(name, 0) > 0:
            continue
        removed.add(name)
        for inp in node.input:
            src = inp.lstrip("^").split(":")[0]
            read[src] -= 1
            stack.append(src)
    if removed:
        kept = [n for n in graph_def.node if n.name not in removed]
        del graph_def.node[:]
        graph_def.node.extend(kept)


def _readers(graph_def) -> dict:
    """Tensor name ("x" for output 0, "x:k") -> nodes reading it (control inputs excluded)."""
    readers: dict = {}
    for node in graph_def.node:
        for inp in node.input:
            if inp.startswith("^"):
                continue
            name = inp[:-2] if inp.endswith(":0") else inp
            readers.setdefault(name, []).append(node)
    return readers


def _node_of(nodes, tensor: str, want_ops):
    """The node producing output 0 named by `tensor`, if its op is one of `want_ops`."""
    name = tensor[:-2] if tensor.endswith(":0") else tensor
    if ":" in name or name.startswith("^"):
        return None
    node = nodes.get(name)
    return node if node is not None and node.op in want_ops else None


def _const(nodes, tensor: str):
    node = _node_of(nodes, tensor, ("Const",))
    if node is None:
        return None
    try:
        return np.asarray(tensor_to_array(node.attr["value"].tensor, node.name), np.int64)
    except (ConversionError, ValueError, TypeError, OverflowError):
        return None  # an unreadable or non-integer Const: the pattern is left alone


def _str(node, name: str, default: str = "NHWC") -> str:
    return node.attr[name].s.decode(errors="replace") if name in node.attr else default


def _ints(node, name: str, default):
    if name not in node.attr:
        return list(default)
    return list(node.attr[name].list.i)


def _match(b2s, nodes, readers):
    """(conv, space_to_batch, the node reading it, block, pads [begin, end per spatial dim])
    or None. 2-D: [BiasAdd ->] conv; 1-D (tf.nn.conv1d): ExpandDims -> Conv2D -> Squeeze
    on (N, 1, W, C)."""
    if len(b2s.input) < 3:
        return None

    def only_reader(tensor, ops):
        node = _node_of(nodes, tensor, ops)
        return node if node is not None and len(readers.get(node.name, [])) == 1 else None

    inner = only_reader(b2s.input[0], ("BiasAdd", "Squeeze") + _CONVS)
    if inner is None:
        return None
    conv, reader, rank = inner, inner, 2
    if inner.op == "BiasAdd":
        if _str(inner, "data_format") != "NHWC":
            return None
        conv = reader = only_reader(inner.input[0], _CONVS)
    elif inner.op == "Squeeze":
        if _ints(inner, "squeeze_dims", []) not in ([1], [-3]):
            return None
        conv = only_reader(inner.input[0], ("Conv2D",))
        reader = only_reader(conv.input[0], ("ExpandDims",)) if conv is not None else None
        axis = _const(nodes, reader.input[1]) if reader is not None else None
        if axis is None or axis.size != 1 or int(axis.ravel()[0]) not in (1, -3):
            return None
        rank = 1
    if conv is None or reader is None:
        return None
    if _str(conv, "data_format") != "NHWC" or _str(conv, "padding") != "VALID":
        return None
    if _ints(conv, "strides", [1] * 4) != [1] * 4 or _ints(conv, "dilations", [1] * 4) != [1] * 4:
        return None
    s2b = _node_of(nodes, reader.input[0], ("SpaceToBatchND",))
    if s2b is None or len(s2b.input) < 3:
        return None
    block_in, block_out = _const(nodes, s2b.input[1]), _const(nodes, b2s.input[1])
    if block_in is None or block_out is None:
        return None
    block_in, block_out = block_in.ravel(), block_out.ravel()
    if block_in.shape != (rank,) or not np.array_equal(block_in, block_out) or \
            (block_in < 1).any():
        return None
    pads = None
    for sample in _SAMPLES:
        evaluate = _Evaluator(nodes, s2b.input[0], sample[:1] + sample[1:1 + rank] + sample[-1:])
        paddings, crops = evaluate(s2b.input[2]), evaluate(b2s.input[2])
        if paddings is None or crops is None or paddings.shape != (rank, 2) or \
                crops.shape != (rank, 2) or (crops < 0).any():
            return None
        got = (paddings - crops).ravel().tolist()
        if pads is not None and got != pads:
            return None
        pads = got
    if min(pads) < 0:
        return None
    return conv, s2b, reader, block_in.tolist(), pads


_SAMPLES = ((1, 29, 31, 3), (2, 36, 34, 3))  # input shapes the run-time paddings are tried at
_ARITH = {"Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
          "FloorMod": np.mod, "FloorDiv": np.floor_divide, "Maximum": np.maximum,
          "Minimum": np.minimum}


class _Evaluator:
    """Values of small int tensors on the GraphDef, with Shape(`source`) = `sample`;
    None for anything else (the fold is then not done)."""

    def __init__(self, nodes, source: str, sample):
        self.nodes, self.source, self.sample = nodes, _canonical(source), sample
        self.memo: dict = {}

    def __call__(self, tensor: str):
        try:
            return self._value(_canonical(tensor), 0)
        except _NotEvaluable:
            return None

    def _value(self, tensor: str, depth: int):
        if tensor in self.memo:
            return self.memo[tensor]
        name, _, index = tensor.rpartition(":")
        node = self.nodes.get(name)
        if node is None or index != "0" or depth > 64:
            raise _NotEvaluable
        ins = [i for i in node.input if not i.startswith("^")]
        if node.op == "Const":
            value = _const(self.nodes, name)
            if value is None:
                raise _NotEvaluable
        elif node.op == "Shape":
            if _canonical(ins[0]) != self.source:
                raise _NotEvaluable
            value = np.asarray(self.sample, np.int64)
        else:
            args = [self._value(_canonical(i), depth + 1) for i in ins]
            value = self._apply(node, args)
        self.memo[tensor] = value
        return value

    def _apply(self, node, args):
        if node.op in ("Identity", "StopGradient") and args:
            return args[0]
        if node.op in _ARITH and len(args) == 2:
            return np.asarray(_ARITH[node.op](args[0], args[1]), np.int64)
        if node.op == "Pack":
            axis = node.attr["axis"].i if "axis" in node.attr else 0
            return np.stack(args, axis=axis)
        if node.op == "ConcatV2" and len(args) >= 2:
            return np.concatenate(args[:-1], axis=int(args[-1]))
        if node.op == "StridedSlice" and len(args) == 4:
            return _strided_slice(node, *args)
        raise _NotEvaluable


class _NotEvaluable(Exception):
    pass


def _canonical(tensor: str) -> str:
    return tensor if ":" in tensor else f"{tensor}:0"


def _strided_slice(node, x, begin, end, strides):
    mask = {k: node.attr[k].i if k in node.attr else 0 for k in
            ("begin_mask", "end_mask", "shrink_axis_mask", "ellipsis_mask", "new_axis_mask")}
    if mask["ellipsis_mask"] or mask["new_axis_mask"] or x.ndim < len(begin):
        raise _NotEvaluable
    index = []
    for i, (b, e, st) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist())):
        if mask["shrink_axis_mask"] >> i & 1:
            index.append(int(b))
        else:
            index.append(slice(None if mask["begin_mask"] >> i & 1 else int(b),
                               None if mask["end_mask"] >> i & 1 else int(e), int(st)))
    try:
        return np.asarray(x[tuple(index)])
    except (IndexError, ValueError):
        raise _NotEvaluable from None
