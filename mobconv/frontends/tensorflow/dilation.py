"""Atrous pre-pass: SpaceToBatchND -> conv -> BatchToSpaceND becomes one dilated conv.

Why: TensorFlow builds dilated convolutions (`tf.nn.atrous_conv2d`, Keras
`Conv2D(dilation_rate=...)`, `tf.nn.convolution`) as
    SpaceToBatchND(x, block, paddings) -> Conv2D/DepthwiseConv2dNative (VALID, stride 1)
    [-> BiasAdd] -> BatchToSpaceND(y, block, crops)
The middle conv runs on `block` interleaved phases of the padded input, which is
exactly a conv with dilations = block on the padded input; BatchToSpaceND's crops
then remove rows from the output's ends, which is the same as removing that
much padding. So the three ops are one conv with dilations = block and explicit
pads (paddings - crops) per side, as long as no pad becomes negative.

Algorithm, per BatchToSpaceND node (on a copy of the GraphDef, before conversion):
1. Walk back: optional BiasAdd, a Conv2D/DepthwiseConv2dNative in NHWC with
   strides 1, dilations 1 and VALID padding, reading a SpaceToBatchND. The
   conv's and the BiasAdd's outputs have no other readers.
2. block_shape (2 values, both >= 1, the same on both ends), paddings and crops
   (2x2) are Consts; pads = paddings - crops must be >= 0 on every side.
3. The conv reads SpaceToBatchND's input and gets dilations [1, bh, bw, 1] and
   padding VALID (all pads 0) or EXPLICIT with explicit_paddings; the
   BatchToSpaceND becomes an Identity of what it read (consumers keep its
   name); the SpaceToBatchND goes when nothing else reads it.
A pattern that does not fit is left alone: SpaceToBatchND/BatchToSpaceND then
convert as ops of their own (ops/nn.py). Paddings computed at run time (an
input with unknown height/width) do not fit.
"""
from __future__ import annotations

import numpy as np

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
    removed = set()
    for b2s in [n for n in out.node if n.op == "BatchToSpaceND"]:
        plan = _match(b2s, nodes, readers)
        if plan is None:
            continue
        conv, s2b, block, pads = plan
        conv.input[0] = s2b.input[0]
        conv.attr["dilations"].list.i[:] = [1, int(block[0]), int(block[1]), 1]
        if any(pads):
            conv.attr["padding"].s = b"EXPLICIT"
            conv.attr["explicit_paddings"].list.i[:] = [0, 0] + list(map(int, pads)) + [0, 0]
        else:
            conv.attr["padding"].s = b"VALID"
        dtype = b2s.attr["T"].type
        source_input = b2s.input[0]
        controls = [i for i in b2s.input if i.startswith("^")]
        b2s.op = "Identity"
        del b2s.input[:]
        b2s.input.extend([source_input] + controls)
        for key in list(b2s.attr.keys()):
            del b2s.attr[key]
        b2s.attr["T"].type = dtype
        readers[s2b.name] = [r for r in readers.get(s2b.name, []) if r is not conv]
        if not readers[s2b.name]:
            removed.add(s2b.name)
    if removed:
        kept = [n for n in out.node if n.name not in removed]
        del out.node[:]
        out.node.extend(kept)
    return out


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
    except Exception:  # noqa: BLE001 - an unreadable Const: the pattern is left alone
        return None


def _str(node, name: str, default: str = "NHWC") -> str:
    return node.attr[name].s.decode(errors="replace") if name in node.attr else default


def _ints(node, name: str, default):
    if name not in node.attr:
        return list(default)
    return list(node.attr[name].list.i)


def _match(b2s, nodes, readers):
    """(conv, space_to_batch, block, pads [top, bottom, left, right]) or None."""
    if len(b2s.input) < 3:
        return None
    inner = _node_of(nodes, b2s.input[0], ("BiasAdd",) + _CONVS)
    if inner is None or len(readers.get(inner.name, [])) != 1:
        return None
    conv = inner
    if inner.op == "BiasAdd":
        if _str(inner, "data_format") != "NHWC":
            return None
        conv = _node_of(nodes, inner.input[0], _CONVS)
        if conv is None or len(readers.get(conv.name, [])) != 1:
            return None
    if _str(conv, "data_format") != "NHWC" or _str(conv, "padding") != "VALID":
        return None
    if _ints(conv, "strides", [1] * 4) != [1] * 4 or _ints(conv, "dilations", [1] * 4) != [1] * 4:
        return None
    s2b = _node_of(nodes, conv.input[0], ("SpaceToBatchND",))
    if s2b is None or len(s2b.input) < 3:
        return None
    block_in, block_out = _const(nodes, s2b.input[1]), _const(nodes, b2s.input[1])
    paddings, crops = _const(nodes, s2b.input[2]), _const(nodes, b2s.input[2])
    if any(v is None for v in (block_in, block_out, paddings, crops)):
        return None
    block_in, block_out = block_in.ravel(), block_out.ravel()
    if block_in.shape != (2,) or not np.array_equal(block_in, block_out) or (block_in < 1).any():
        return None
    if paddings.shape != (2, 2) or crops.shape != (2, 2):
        return None
    pads = (paddings - crops).ravel()
    if (pads < 0).any() or (crops < 0).any():
        return None
    return conv, s2b, block_in, pads.tolist()
