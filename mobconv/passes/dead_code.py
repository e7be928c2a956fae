"""Dead code elimination: drop nodes whose outputs reach no graph output, then unused values.

Why: other passes leave orphans behind (a folded BatchNormalization's old
weights, a Pad that every Conv absorbed, the Shape subgraph of a folded
Reshape), and exporters leave unused branches.

Algorithm:
1. Start the live set with the graph outputs.
2. Walk the nodes backwards (they are in topological order): a node with a live
   output is kept and its inputs become live; any other node is removed.
3. Drop every value that no remaining node, graph input or graph output names
   (graph inputs stay even when unused: the signature must not change).
"""
from __future__ import annotations

from ._util import toposort


def dead_code(graph) -> bool:
    """Remove unreachable nodes and unused values; True if anything was removed."""
    toposort(graph)
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(out and out in live for out in node.outputs):
            kept.append(node)
            live.update(n for n in node.inputs if n)
    changed = len(kept) != len(graph.nodes)
    graph.nodes = kept[::-1]
    before = len(graph.values)
    graph.remove_unused_values()
    return changed or len(graph.values) != before
