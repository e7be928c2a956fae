"""What every frontend checks before it hands over a graph: the rules the runtime
applies to a file (see runtime/src/core/model.cpp), so a model that converts is
a model the runtime can load and plan.

Steps:
1. the graph has at least one output, and lists no input or output twice;
2. every value is written once: by one node, or as a graph input, or as a
   constant (never a node writing an input or a constant);
3. every graph output is defined;
4. every value's shape fits the runtime (`mobconv.limits.check_tensor`: rank,
   non-negative dims, bytes under the tensor limit).

Errors are ShapeError/MobconvError naming the node or tensor; the frontend
prefixes the source file.
"""
from __future__ import annotations

from ..errors import MobconvError
from ..limits import check_tensor


def check_graph(graph) -> None:
    if not graph.outputs:
        raise MobconvError("the graph has no outputs (nothing to compute)")
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        seen = set()
        for name in names:
            if name in seen:
                raise MobconvError(f"graph {kind} {name!r} is listed twice")
            seen.add(name)
    defined = {name: "graph input" for name in graph.inputs}
    for value in graph.constants():
        if value.name not in defined:
            defined[value.name] = "constant"
    for node in graph.nodes:
        for out in node.outputs:
            if not out:
                continue
            if out in defined:
                raise MobconvError(
                    f"node {node.name!r} ({node.op}) writes {out!r}, which is already written "
                    f"by {defined[out]} (each tensor must have one writer)")
            defined[out] = f"node {node.name!r} ({node.op})"
    for name in graph.outputs:
        if name not in defined:
            raise MobconvError(f"graph output {name!r} is produced by no node, input or constant")
    for name in graph.inputs:
        value = graph.values[name]
        check_tensor(value.shape, value.dtype, f"graph input {name!r}")
    for node in graph.nodes:
        for out in node.outputs:
            value = graph.values.get(out) if out else None
            if value is not None:
                check_tensor(value.shape, value.dtype,
                             f"node {node.name!r} ({node.op}): output {out!r}")
    for value in graph.constants():
        check_tensor(value.shape, value.dtype, f"constant {value.name!r}")
