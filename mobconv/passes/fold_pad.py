"""Pad folding: an explicit constant Pad before Conv / AveragePool / MaxPool becomes the op's own pads.

Why: exporters (TensorFlow "SAME" with odd sizes, PyTorch F.pad) emit a
separate Pad; the kernel pads implicitly at no cost, the Pad costs a full copy.

What is legal, and why:
- Pad must be mode "constant" with constant, non-negative pads (negative pads
  crop) that touch only the spatial axes (not N, not C), and its input rank known.
- Conv (and only Conv, not ConvTranspose whose pads crop the output): implicit
  padding is zeros, so the pad value must be 0. auto_pad must be NOTSET or
  VALID (SAME_* derive pads from the input size, which the fold changes).
- AveragePool: implicit padding is zeros only when count_include_pad=1 (else
  padded cells are left out of the divisor while explicit ones are counted).
  So the value must be 0 and count_include_pad must already be 1, or the pool
  has no pads of its own (then every padded cell came from the Pad, and we set
  count_include_pad=1). ceil_mode must be 0: with ceil_mode the rule "the last
  window starts inside the input or the left padding" moves with the fold.
- MaxPool: implicit padding never wins a max, which equals an explicit -inf
  pad; so the value must be -inf (a 0 pad could win over negative inputs),
  or 0 when the input is known non-negative (it comes from Relu, Sigmoid,
  HardSigmoid, or a producer with such a fused activation or a Clip with
  min >= 0) and dilations are 1: then every window holds at least one real
  element (pads < window), so a 0 pad never beats the window's real maximum.
  ceil_mode must be 0 (as above), and the Indices output must be unused
  (indices count positions in the padded tensor).
- Pools: every combined pad must stay smaller than the window (ONNX rule).

Algorithm, for each Pad and each reader that uses its output as input 0:
1. Check the rules above; add the Pad's spatial begin/end amounts to the
   reader's pads and make it read the Pad's input.
2. A Pad left without readers (and not a graph output) is removed.
"""
from __future__ import annotations

import numpy as np

from ._util import Uses, attrs_of


def fold_pad(graph) -> bool:
    """Fold constant spatial Pads into the Conv/pool nodes reading them; True if any was folded."""
    uses = Uses(graph)
    changed = False
    for pad in [n for n in graph.nodes if n.op == "Pad"]:
        spatial = _spatial_pads(uses, pad)
        if spatial is None:
            continue
        value, begin, end = spatial
        for reader in uses.readers(pad.outputs[0]):
            if reader.inputs[0] != pad.outputs[0] or pad.outputs[0] in reader.inputs[1:]:
                continue
            if _fold_into(uses, reader, pad.inputs[0], value, begin, end):
                uses.set_inputs(reader, [pad.inputs[0]] + reader.inputs[1:])
                changed = True
        out = pad.outputs[0]
        if out not in uses.outputs and not uses.has_readers(out):
            uses.remove(pad)
    changed = uses.commit() or changed
    if changed:
        graph.remove_unused_values()
    return changed


def _spatial_pads(uses, pad):
    """(value, spatial begin pads, spatial end pads) of a foldable Pad, else None."""
    graph, const = uses.graph, uses.const
    if attrs_of(pad)["mode"] != "constant" or len(pad.outputs) != 1:
        return None
    x = graph.values.get(pad.inputs[0])
    pads = const(pad.inputs[1])
    if x is None or x.shape is None or len(x.shape) < 3 or pads is None:
        return None
    rank = len(x.shape)
    value = 0.0
    if len(pad.inputs) > 2 and pad.inputs[2]:
        data = const(pad.inputs[2])
        if data is None or data.size != 1:
            return None
        value = float(data.reshape(-1)[0])
    axes = list(range(rank))
    if len(pad.inputs) > 3 and pad.inputs[3]:
        data = const(pad.inputs[3])
        if data is None:
            return None
        axes = [int(a) % rank for a in data.reshape(-1)]
    pads = [int(p) for p in pads.reshape(-1)]
    if len(pads) != 2 * len(axes) or any(p < 0 for p in pads):
        return None
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begin[axis] += pads[i]
        end[axis] += pads[i + len(axes)]
    if begin[0] or begin[1] or end[0] or end[1]:
        return None
    return value, begin[2:], end[2:]


def _fold_into(uses, node, source, value, begin, end) -> bool:
    """Add the pads to `node` if legal (see module doc); True when done."""
    if node.op not in ("Conv", "AveragePool", "MaxPool"):
        return False
    attrs = attrs_of(node)
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return False
    nd = len(begin)
    own = list(attrs.get("pads") or []) if attrs.get("auto_pad", "NOTSET") == "NOTSET" else []
    own = own or [0] * (2 * nd)
    if len(own) != 2 * nd:
        return False
    pads = [own[i] + begin[i] for i in range(nd)] + [own[nd + i] + end[i] for i in range(nd)]
    include_pad = None
    if node.op == "Conv":
        if value != 0:
            return False
    else:
        dilations = list(attrs.get("dilations") or [1] * nd)
        windows = [(k - 1) * d + 1 for k, d in zip(attrs["kernel_shape"], dilations)]
        if attrs.get("ceil_mode", 0) or any(p >= windows[i % nd] for i, p in enumerate(pads)):
            return False
    if node.op == "AveragePool":
        if value != 0 or (not attrs.get("count_include_pad", 0) and any(own)):
            return False
        include_pad = 1
    elif node.op == "MaxPool":
        zero_ok = value == 0 and all(d == 1 for d in dilations) and _non_negative(uses, source)
        if not (np.isneginf(value) or zero_ok):
            return False
        indices = node.outputs[1] if len(node.outputs) > 1 else ""
        if indices and (indices in uses.outputs or uses.has_readers(indices)):
            return False
    if include_pad is not None:
        node.attrs["count_include_pad"] = include_pad
    node.attrs["pads"] = pads
    node.attrs["auto_pad"] = "NOTSET"
    return True


def _non_negative(uses, name) -> bool:
    """True when value `name` is known to hold no negative numbers (see module doc)."""
    const = uses.const
    node = uses.producer(name)
    if node is None:
        return False
    if node.op in ("Relu", "Sigmoid", "HardSigmoid"):
        return True
    if node.op == "Clip" and len(node.inputs) > 1 and node.inputs[1]:
        lo = const(node.inputs[1])
        return lo is not None and lo.size == 1 and float(lo.reshape(-1)[0]) >= 0
    if "activation" in node.attrs:
        activation, params = node.attrs["activation"], list(node.attrs.get("activation_params", []))
        if activation in ("Relu", "Sigmoid", "HardSigmoid"):
            return True
        return activation == "Clip" and len(params) == 2 and params[0] >= 0
    return False
