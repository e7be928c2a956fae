"""Residual fusion: Add(Conv(x), r) becomes Conv(x, W, B, R=r).

Why: in ResNet/MobileNetV2 blocks the sum of a convolution and the skip
connection (often followed by Relu) costs two extra passes over the tensor.
Conv's optional input R (`mobconv/ops/conv.py`) makes the kernel add the
residual in its epilogue, before the fused activation, so a following Relu
then fuses too (fuse_activation runs after this pass).

Algorithm, for each Add or two-input Sum:
1. One input comes from a Conv with no fused activation and no residual yet,
   nothing else reads that output (no graph output either);
2. both inputs and the output have the same shape and are float32 (no
   broadcasting), and the other input is not that same value. A dim may be
   symbolic ("batch"): the same symbol in the same place on both operands is
   the same size at run time, so the Add is still element-wise; an unknown dim
   (no symbol) refuses the fusion;
3. the Conv gets the other input as R, takes over the Add's output and moves to
   the Add's place in the node order (R is computed by then; the Conv's own
   inputs were already available where it was). The Add goes.
When both inputs are such Convs, the first one absorbs the Add.
"""
from __future__ import annotations

import numpy as np

from ._util import Uses, attrs_of


def fuse_residual(graph) -> bool:
    """Fuse residual additions into the Conv producing one operand; True if any was fused."""
    uses = Uses(graph)
    for add in [n for n in graph.nodes if n.op in ("Add", "Sum")]:
        if len(add.inputs) != 2 or len(add.outputs) != 1 or not all(add.inputs):
            continue
        if add.inputs[0] == add.inputs[1]:
            continue
        convs = [(i, uses.producer(add.inputs[i])) for i in (0, 1)]
        convs = [(i, conv) for i, conv in convs if conv is not None and conv.op == "Conv"]
        if not convs or not _same_shape(graph, add.inputs + add.outputs):
            continue
        for i, conv in convs:
            if _fusible(uses, conv, add):
                _rewrite(uses, conv, add, add.inputs[1 - i])
                break
    changed = uses.commit()
    if changed:
        graph.remove_unused_values()
    return changed


def _same_shape(graph, names) -> bool:
    shapes = []
    for name in names:
        value = graph.values.get(name)
        if value is None or value.dtype != "float32" or value.shape is None or value.quant is not None:
            return False
        if any(not isinstance(d, (int, np.integer, str)) or (isinstance(d, str) and not d) for d in value.shape):
            return False  # an unknown dim: equality cannot be proved
        shapes.append(tuple(value.shape))
    return len(shapes[0]) >= 3 and all(s == shapes[0] for s in shapes)


def _fusible(uses, conv, add) -> bool:
    if conv.op != "Conv" or len(conv.outputs) != 1:
        return False
    if len(conv.inputs) > 3 and conv.inputs[3]:
        return False
    if attrs_of(conv)["activation"]:
        return False
    return uses.only_reader(conv.outputs[0], add)


def _rewrite(uses, conv, add, residual: str) -> None:
    inputs = list(conv.inputs) + [""] * (3 - len(conv.inputs))
    uses.set_inputs(conv, inputs[:3] + [residual])
    uses.take_over_output(conv, add)
    uses.move(conv, to=add)
