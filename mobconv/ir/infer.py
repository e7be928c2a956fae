"""Dtype and shape inference over a whole graph, node by node in topological order.

Each op's shape function comes from the registry; ops without one fall back to
running the numpy reference on placeholder data (`registry.probe_infer`).
Symbolic dims (strings) are carried through.
"""
from __future__ import annotations

from ..errors import MobconvError
from ..limits import check_tensor
from ..ops.registry import InferContext, get_spec, probe_infer


def infer_node(graph, node, sym=None) -> None:
    """Infer `node`'s outputs; `sym` maps value names to symbolic values of shape tensors."""
    spec = get_spec(node.op)
    spec.check_arity(node)
    attrs = spec.resolve_attrs(node)
    inputs = node.input_values(graph)
    for name, value in zip(node.inputs, inputs):
        if value is not None and (value.shape is None or value.dtype is None):
            raise MobconvError(
                f"node {node.name!r} ({node.op}): shape of input {name!r} is unknown"
            )
    sym_in = [sym.get(n) if sym and n else None for n in node.inputs] if sym else None
    ctx = InferContext(node=node, inputs=inputs, attrs=attrs, num_outputs=len(node.outputs), sym=sym_in)
    if spec.infer is None:
        # probing runs the reference on placeholder inputs of the inputs' size
        for name, value in zip(node.inputs, inputs):
            if value is not None and value.data is None:
                check_tensor(value.shape, value.dtype, f"node {node.name!r} ({node.op}): input {name!r}")
    results = (spec.infer or probe_infer)(ctx)
    for out, (dtype, shape) in zip(node.outputs, results):
        if not out:
            continue
        value = graph.values.get(out) or graph.add_value(out)
        value.dtype = dtype
        value.shape = tuple(shape) if shape is not None else None


def infer_shapes(graph) -> None:
    """Fill dtype and shape of every non-input value. Raises MobconvError naming the node."""
    graph.toposort()
    tracker = shape_value_tracker(graph)
    for node in graph.nodes:
        infer_node(graph, node, tracker.dims if tracker is not None else None)
        track_shape_values(tracker, node)


def shape_value_tracker(graph):
    """Tracker of shape values (int tensors computed from Shape at run time), so that
    Reshape/Expand/ConstantOfShape/Range/Resize fed by them get exact symbolic dims."""
    if not any(n.op in ("Shape", "Size") for n in graph.nodes):
        return None
    from .symbolic import SymbolicShapes

    return SymbolicShapes(graph)


def track_shape_values(tracker, node) -> None:
    """Record the symbolic values of `node`'s outputs (after its shapes were inferred)."""
    if tracker is None:
        return
    try:
        dims = tracker.evaluate(node.op, node.inputs, node.attrs)
    except Exception:  # noqa: BLE001 - tracking is best effort
        return
    if dims is not None and len(dims) == len(node.outputs):
        for out, arr in zip(node.outputs, dims):
            if out:
                tracker.dims[out] = arr
