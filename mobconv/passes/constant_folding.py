"""Constant folding: compute at conversion time every node whose inputs are all known.

Why: exporters leave whole subgraphs that only compute constants (weight
casts/transposes, and above all shape arithmetic such as
Shape -> Gather -> Unsqueeze -> Concat -> Reshape). Folding them removes work
from the runtime and gives later passes (and shape inference) constant
operands to match on.

Algorithm, one walk over the nodes in topological order:
1. `Shape` / `Size` of a tensor whose shape is fully static become constants
   (the tensor's data is not needed).
2. `Gather` / `Slice` reading the result of a `Shape` of a partly static tensor
   become constants when every dim they pick is static (the op is run on the
   dim *positions* and the picked positions are mapped back to dims).
3. Any other node whose inputs are all constants is run through its numpy
   reference; the outputs become constant values under the same names (so a
   folded graph output keeps its name and simply carries data).
4. Size guard: a fold is skipped when its output would hold more than
   `MAX_GROWN_ELEMENTS` elements *and* more elements than all its inputs
   together, so ConstantOfShape/Expand/Tile/Range/Resize do not turn a few
   bytes of shape into megabytes of file (Cast/Transpose of weights still fold).
5. Shapes are inferred node by node during the walk, so a Reshape whose shape
   was just folded gets a static output shape, and the pass also works on a
   graph whose shapes could not be inferred before folding.
numpy's floating-point warnings are off while folding: a constant that is Inf
or NaN (Log of 0, Exp overflow) is what the model computes, and the runtime would
compute it too. Graph inputs are never constants, even when they carry a default value;
quantized and bfloat16 constants are left alone (numpy cannot compute them as stored).
"""
from __future__ import annotations

import logging

import numpy as np

from ..ir.infer import infer_node, shape_value_tracker, track_shape_values
from ..ops.registry import get_spec
from ._util import const, static_shape, toposort

MAX_GROWN_ELEMENTS = 1 << 16

log = logging.getLogger(__name__)


def constant_folding(graph) -> bool:
    """Fold every node computable at conversion time; True if any node was folded.

    Works on graphs whose shapes are not inferred yet (a Reshape fed by a Shape
    chain cannot be inferred before folding): shapes are inferred node by node
    during the walk, and a node whose shape cannot be inferred yet is left with
    unknown output shapes instead of failing the pass.
    """
    toposort(graph)
    folded = set()
    tracker = shape_value_tracker(graph)  # shapes computed at run time (several symbolic dims)
    producers = graph.producers()  # folded nodes stay listed until the end of the walk
    with np.errstate(all="ignore"):  # Log(0) = -inf is the model's own value, not news
        for node in list(graph.nodes):
            _visit(graph, node, tracker, producers, folded)
    if not folded:
        return False
    graph.nodes = [n for n in graph.nodes if id(n) not in folded]
    graph.remove_unused_values()
    return True


def _visit(graph, node, tracker, producers, folded: set) -> None:
    """Infer `node`'s shapes, track its shape values, and fold it if it can be."""
    try:
        infer_node(graph, node, tracker.dims if tracker is not None else None)
    except Exception:  # folding may not need it; the node keeps its previous shapes
        pass
    track_shape_values(tracker, node)
    outs = _fold(graph, node, producers)
    if outs is None:
        return
    for name, array in zip(node.outputs, outs):
        if not name:
            continue
        value = graph.values.get(name) or graph.add_value(name)
        if value.dtype and value.dtype != array.dtype.name:
            array = array.astype(value.dtype)
        value.data = array if array.flags.c_contiguous else array.copy()  # keeps 0-d arrays 0-d
        value.dtype = array.dtype.name
        value.shape = tuple(array.shape)
    folded.add(id(node))


def _fold(graph, node, producers):
    """The node's output arrays if it can be folded, else None."""
    if node.op in ("Shape", "Size"):
        return _fold_shape(graph, node)
    if node.op in ("Gather", "Slice"):
        outs = _fold_shape_pick(graph, node, producers)
        if outs is not None:
            return outs
    arrays = []
    for name in node.inputs:
        if not name:
            arrays.append(None)
            continue
        data = const(graph, name)
        value = graph.values[name]
        if data is None or value.dtype == "bfloat16" or value.quant is not None:
            return None
        arrays.append(data)
    in_elements = sum(a.size for a in arrays if a is not None)
    for out in node.outputs:
        value = graph.values.get(out) if out else None
        if value is not None and static_shape(value.shape):
            if _too_big(int(np.prod(value.shape, dtype=np.int64)), in_elements):
                return None
    spec = get_spec(node.op)
    try:
        outs = spec.run_reference(arrays, spec.resolve_attrs(node))
    except Exception as exc:  # leave it to the runtime; the interpreter will report it
        log.warning("constant folding skipped node %r (%s): %s", node.name, node.op, exc)
        return None
    if any(_too_big(o.size, in_elements) for o in outs):
        return None
    return outs


def _too_big(out_elements: int, in_elements: int) -> bool:
    return out_elements > MAX_GROWN_ELEMENTS and out_elements > in_elements


def _shape_slice(node, shape) -> tuple:
    attrs = get_spec(node.op).resolve_attrs(node)
    start = attrs.get("start", 0)
    end = attrs.get("end")
    return tuple(shape)[start:end]


def _fold_shape(graph, node):
    value = graph.values.get(node.inputs[0])
    if value is None or not static_shape(value.shape):
        return None
    if node.op == "Size":
        return [np.array(int(np.prod(value.shape, dtype=np.int64)), dtype=np.int64)]
    return [np.array(_shape_slice(node, value.shape), dtype=np.int64)]


def _fold_shape_pick(graph, node, producers):
    """Gather/Slice on a Shape output picking only static dims -> those dims."""
    source = producers.get(node.inputs[0]) if node.inputs[0] else None
    if source is None or source.op != "Shape" or const(graph, node.inputs[0]) is not None:
        return None
    value = graph.values.get(source.inputs[0])
    if value is None or value.shape is None:
        return None
    dims = _shape_slice(source, value.shape)
    rest = [const(graph, n) if n else None for n in node.inputs[1:]]
    if any(n and r is None for n, r in zip(node.inputs[1:], rest)):
        return None
    spec = get_spec(node.op)
    try:
        (positions,) = spec.run_reference(
            [np.arange(len(dims), dtype=np.int64)] + rest, spec.resolve_attrs(node)
        )
    except Exception:
        return None
    picked = [dims[int(p)] for p in positions.reshape(-1)]
    if not static_shape(picked):
        return None
    return [np.array(picked, dtype=np.int64).reshape(positions.shape)]
