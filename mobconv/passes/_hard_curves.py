"""Hard-sigmoid and hard-swish written as arithmetic, replaced by the IR's own ops.

Keras (MobileNetV3) and other exporters spell them with Relu6:
    hard_sigmoid(x) = Relu6(x + 3) / 6          (or * (1/6))
    hard_swish(x)   = x * hard_sigmoid(x)       (or x * Relu6(x + 3) / 6)
In the IR that is Add(x, 3) -> Clip(0, 6) -> Div(6) | Mul(1/6) [-> Mul(x, .)] or
Add -> Clip -> Mul(x, .) -> Div(6) | Mul(1/6). They become HardSigmoid(alpha=1/6,
beta=0.5) and HardSwish (x * clip(x / 6 + 0.5, 0, 1)), one node instead of three or
four, which fuse_activation then folds into a Conv producing x.

Matched only when every constant is a float scalar equal (in its own dtype) to
exactly 3, 0, 6, 6 (or 1/6 rounded to that dtype), every intermediate value is
float32, unquantized, read only by the next node of the pattern and not a graph
output, and the constants do not broadcast x to a higher rank. The result is the
same function, rounded differently (within a few ulp of the arithmetic form).
Called by fold_mul_add before it folds anything: folding the + 3 into a Conv's bias
would break the pattern apart.
"""
from __future__ import annotations

import numpy as np

SIXTH = np.float32(1) / np.float32(6)


def _scalar(uses, name, rank):
    """The constant scalar `name` as a float, or None (not a constant or not a scalar)."""
    data = uses.const(name)
    if data is None or data.size != 1 or data.dtype != np.float32:
        return None
    if rank is None and data.ndim > 0 or rank is not None and data.ndim > rank:
        return None
    return float(data.reshape(-1)[0])


def _other(node, x):
    """The operand of binary `node` that is not `x` (None if x is not an operand)."""
    if len(node.inputs) != 2 or x not in node.inputs or node.inputs[0] == node.inputs[1]:
        return None
    return node.inputs[1] if node.inputs[0] == x else node.inputs[0]


def _private(uses, node):
    """The single reader of `node`'s only output when the output is an intermediate
    float32 value read by nothing else, else None."""
    if len(node.outputs) != 1:
        return None
    out = node.outputs[0]
    value = uses.graph.values.get(out)
    if out in uses.outputs or value is None or value.dtype != "float32" or value.quant is not None:
        return None
    readers = {id(r): r for r in uses.readers(out)}
    if len(readers) != 1:
        return None
    (reader,) = readers.values()
    return reader if reader.inputs.count(out) == 1 else None


def _is_sixth(uses, node, y, rank) -> bool:
    """`node` computes y / 6 exactly as written: Div(y, 6) or Mul(y, 1/6)."""
    if node.op == "Div" and len(node.inputs) == 2 and node.inputs[0] == y:
        return _scalar(uses, node.inputs[1], rank) == 6.0
    if node.op == "Mul":
        k = _other(node, y)
        return k is not None and _scalar(uses, k, rank) == float(SIXTH)
    return False


def fuse_hard_curves(uses) -> None:
    graph = uses.graph
    for add in [n for n in graph.nodes if n.op == "Add"]:
        if uses.is_removed(add):
            continue
        for x in dict.fromkeys(add.inputs):
            if _match(uses, graph, add, x):
                break


def _match(uses, graph, add, x) -> bool:
    value = graph.values.get(x)
    if value is None or value.dtype != "float32" or value.quant is not None:
        return False
    rank = None if value.shape is None else len(value.shape)
    three = _other(add, x)
    if three is None or _scalar(uses, three, rank) != 3.0:
        return False
    clip = _private(uses, add)
    if clip is None or clip.op != "Clip" or len(clip.inputs) != 3 or clip.inputs[0] != add.outputs[0]:
        return False
    if _scalar(uses, clip.inputs[1], rank) != 0.0 or _scalar(uses, clip.inputs[2], rank) != 6.0:
        return False
    nxt = _private(uses, clip)
    if nxt is None:
        return False
    c = clip.outputs[0]
    if _is_sixth(uses, nxt, c, rank):  # hard-sigmoid, maybe inside a hard-swish
        last, op = nxt, "HardSigmoid"
        mul = _private(uses, nxt)
        if mul is not None and mul.op == "Mul" and _other(mul, nxt.outputs[0]) == x:
            last, op = mul, "HardSwish"
    elif nxt.op == "Mul" and _other(nxt, c) == x:  # x * Relu6(x + 3), then / 6
        div = _private(uses, nxt)
        if div is None or not _is_sixth(uses, div, nxt.outputs[0], rank):
            return False
        last, op = div, "HardSwish"
    else:
        return False
    for node in (add, clip, nxt, last):
        if node is not last and not uses.is_removed(node):
            uses.remove(node)
    last.op = op
    last.attrs = {"alpha": 1 / 6, "beta": 0.5} if op == "HardSigmoid" else {}
    uses.set_inputs(last, [x])
    return True
