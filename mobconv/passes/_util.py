"""Small graph-editing helpers shared by the passes (not a pass itself).

Conventions every pass follows:
- a fused/folded node takes over the *last* node's output name, so the names
  that readers (and graph outputs) see never change;
- constant tensors are never edited in place (a weight may be shared): new
  constants get fresh names and the old ones are dropped once unused;
- a value that is a graph input is never treated as a constant, even if it
  carries data (ONNX lets users override such initializers).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ops.registry import get_spec


def const(graph, name: str) -> Optional[np.ndarray]:
    """Constant data of value `name`, or None if it is not a conversion-time constant."""
    if not name or name in graph.inputs:
        return None
    value = graph.values.get(name)
    return None if value is None else value.data


def readers(graph, name: str) -> list:
    """Nodes reading value `name` (a node appears once per input slot it uses)."""
    return [node for node in graph.nodes for inp in node.inputs if inp == name]


def only_reader(graph, name: str, node) -> bool:
    """True when `node` reads `name` exactly once, nothing else reads it and it is no graph output."""
    if name in graph.outputs or name in graph.inputs:
        return False
    found = readers(graph, name)
    return len(found) == 1 and found[0] is node


def producer(graph, name: str):
    for node in graph.nodes:
        if name in node.outputs:
            return node
    return None


def attrs_of(node) -> dict:
    """The node's attributes completed with the registry's defaults."""
    return get_spec(node.op).resolve_attrs(node)


def has_attr(op: str, attr: str) -> bool:
    return attr in get_spec(op).attr_index


def remove_node(graph, node) -> None:
    graph.nodes = [n for n in graph.nodes if n is not node]


def take_over_output(graph, node, old_last) -> None:
    """Make `node` produce `old_last`'s output (the node being fused away) instead of its own.

    `old_last` is removed; `node`'s former output value is dropped.
    """
    former = node.outputs[0]
    node.outputs[0] = old_last.outputs[0]
    remove_node(graph, old_last)
    graph.values.pop(former, None)


def new_constant(graph, base: str, data: np.ndarray) -> str:
    name = graph.unique_name(base)
    graph.add_constant(name, np.array(data, order="C"))  # a copy; 0-d stays 0-d
    return name


def is_float(dtype: Optional[str]) -> bool:
    return dtype in ("float32", "float16")


def static_shape(shape) -> bool:
    return shape is not None and all(isinstance(d, (int, np.integer)) for d in shape)
