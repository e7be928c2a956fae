"""Dtype and shape inference over a whole graph, node by node in topological order.

Each op's shape function comes from the registry; ops without one fall back to
running the numpy reference on placeholder data (`registry.probe_infer`).
Symbolic dims (strings) are carried through.
"""
from __future__ import annotations

from ..errors import MobconvError
from ..ops.registry import InferContext, get_spec, probe_infer


def infer_node(graph, node) -> None:
    spec = get_spec(node.op)
    spec.check_arity(node)
    attrs = spec.resolve_attrs(node)
    inputs = node.input_values(graph)
    for name, value in zip(node.inputs, inputs):
        if value is not None and (value.shape is None or value.dtype is None):
            raise MobconvError(
                f"node {node.name!r} ({node.op}): shape of input {name!r} is unknown"
            )
    ctx = InferContext(node=node, inputs=inputs, attrs=attrs, num_outputs=len(node.outputs))
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
    for node in graph.nodes:
        infer_node(graph, node)
