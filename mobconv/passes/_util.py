"""Small graph-editing helpers shared by the passes (not a pass itself).

Conventions every pass follows:
- a fused/folded node takes over the *last* node's output name, so the names
  that readers (and graph outputs) see never change;
- constant tensors are never edited in place (a weight may be shared): new
  constants get fresh names and the old ones are dropped once unused;
- a value that is a graph input is never treated as a constant, even if it
  carries data (ONNX lets users override such initializers);
- a pass stays linear in the graph size: it looks producers and readers up in
  one `Uses` index, edits through it, and rebuilds `graph.nodes` once at the end
  (`Uses.commit`), never walking the whole graph per node
  (tests/test_passes_scaling.py counts the work at two sizes).
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


class Uses:
    """Who produces and who reads each value, built in one walk over the graph and kept
    current by the edits below, so a pass costs O(nodes + edges) however large the graph
    (scanning every node once per node made 20,000-node graphs take a minute).

    A pass builds one at its start, edits the graph only through it (or re-reads
    nothing it changed behind its back), and calls `commit()` once at the end:
    removals and moves are applied to `graph.nodes` in one rebuild there, and until
    then `graph.nodes` still lists removed nodes.
    """

    def __init__(self, graph):
        self.graph = graph
        self.inputs = set(graph.inputs)
        self.outputs = set(graph.outputs)
        self._producer: Optional[dict] = None  # value name -> node; built on first use
        self._readers: dict = {}  # value name -> {id(node): [node, number of slots]}
        self._removed: set = set()  # id(node)
        self._moves: dict = {}  # id(node whose place is taken) -> node put there
        self._taken: Optional[set] = None  # every value and node name, built on first use
        self._suffix: dict = {}  # base name -> next numeric suffix to try

    # ---- queries ------------------------------------------------------------------
    def const(self, name: str) -> Optional[np.ndarray]:
        """Like `const(graph, name)`, with graph inputs looked up in a set."""
        if not name or name in self.inputs:
            return None
        value = self.graph.values.get(name)
        return None if value is None else value.data

    def producer(self, name: str):
        """The node writing value `name`, or None (graph input, constant, unknown)."""
        return self._index().get(name) if name else None

    def readers(self, name: str) -> list:
        """Nodes reading value `name`, once per input slot they use it in."""
        self._index()
        entries = self._readers.get(name)
        return [node for node, count in entries.values() for _ in range(count)] if entries else []

    def has_readers(self, name: str) -> bool:
        self._index()
        return bool(self._readers.get(name))

    def only_reader(self, name: str, node) -> bool:
        """`node` reads `name` exactly once, nothing else reads it and it is no graph input/output."""
        if name in self.outputs or name in self.inputs:
            return False
        self._index()
        entries = self._readers.get(name)
        if not entries or len(entries) != 1:
            return False
        entry = entries.get(id(node))
        return entry is not None and entry[1] == 1

    def is_removed(self, node) -> bool:
        return id(node) in self._removed

    # ---- edits ----------------------------------------------------------------------
    def set_inputs(self, node, inputs) -> None:
        self._index()
        self._unlink_inputs(node)
        node.inputs = list(inputs)
        self._link_inputs(node)

    def set_outputs(self, node, outputs) -> None:
        producers = self._index()
        for out in node.outputs:
            if out and producers.get(out) is node:
                del producers[out]
        node.outputs = list(outputs)
        for out in node.outputs:
            if out:
                producers[out] = node

    def replace_uses(self, old: str, new: str) -> None:
        """Every node reading `old` reads `new` instead (graph outputs are not touched)."""
        for node in {id(n): n for n in self.readers(old)}.values():
            self.set_inputs(node, [new if i == old else i for i in node.inputs])

    def remove(self, node) -> None:
        """Drop `node` (from `graph.nodes` at `commit()`); its inputs lose a reader."""
        producers = self._index()
        self._unlink_inputs(node)
        for out in node.outputs:
            if out and producers.get(out) is node:
                del producers[out]
        self._removed.add(id(node))

    def take_over_output(self, node, old_last) -> None:
        """`node` produces `old_last`'s output (the node being fused away) instead of its own.

        `old_last` is removed; `node`'s former output value is dropped.
        """
        former = node.outputs[0]
        self.remove(old_last)
        self.set_outputs(node, [old_last.outputs[0]] + node.outputs[1:])
        self.graph.values.pop(former, None)

    def move(self, node, to) -> None:
        """At `commit()`, `node` leaves its place and takes `to`'s (which must be removed)."""
        self._moves[id(to)] = node

    def unique_name(self, base: str) -> str:
        """Like `Graph.unique_name` (base, base_1, base_2, ...) without a walk per call."""
        if self._taken is None:
            self._taken = set(self.graph.values) | {n.name for n in self.graph.nodes}
        name, i = base, self._suffix.get(base, 1)
        while name in self._taken or name in self.graph.values:
            name = f"{base}_{i}"
            i += 1
        self._suffix[base] = i
        self._taken.add(name)
        return name

    def new_constant(self, base: str, data: np.ndarray) -> str:
        name = self.unique_name(base)
        self.graph.add_constant(name, np.array(data, order="C"))  # a copy; 0-d stays 0-d
        return name

    def commit(self) -> bool:
        """Apply the removals and moves to `graph.nodes`; True if any node was removed or moved."""
        if not self._removed and not self._moves:
            return False
        moved = {id(n) for n in self._moves.values()}
        nodes = []
        for node in self.graph.nodes:
            if id(node) in self._moves:
                nodes.append(self._moves[id(node)])
            elif id(node) not in self._removed and id(node) not in moved:
                nodes.append(node)
        self.graph.nodes = nodes
        self._removed.clear()
        self._moves.clear()
        return True

    # ---- bookkeeping ------------------------------------------------------------------
    def _index(self) -> dict:
        """The producer map, after building it and the reader lists in one walk if not yet done.

        Built on first use, so a pass that finds nothing to match costs no index.
        """
        if self._producer is None:
            self._producer = {}
            for node in self.graph.nodes:
                for out in node.outputs:
                    if out:
                        self._producer.setdefault(out, node)  # the first writer, as a walk finds
                self._link_inputs(node)
        return self._producer

    def _link_inputs(self, node) -> None:
        key, readers = id(node), self._readers
        for name in node.inputs:
            if not name:
                continue
            entries = readers.get(name)
            if entries is None:
                readers[name] = {key: [node, 1]}
            elif key in entries:
                entries[key][1] += 1
            else:
                entries[key] = [node, 1]

    def _unlink_inputs(self, node) -> None:
        for name in node.inputs:
            entries = self._readers.get(name) if name else None
            entry = entries.get(id(node)) if entries else None
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1] == 0:
                del entries[id(node)]


def toposort(graph) -> None:
    """`graph.toposort()`, skipped after one cheap walk when the nodes are already in order
    (the usual case between passes; toposort then keeps the order anyway)."""
    values, available = graph.values, set(graph.inputs)
    for node in graph.nodes:
        for name in node.inputs:
            if name and name not in available:
                value = values.get(name)
                if value is None or value.data is None:
                    graph.toposort()  # reorders, or names the undefined value / cycle
                    return
        available.update(node.outputs)


def attrs_of(node) -> dict:
    """The node's attributes completed with the registry's defaults."""
    return get_spec(node.op).resolve_attrs(node)


def has_attr(op: str, attr: str) -> bool:
    return attr in get_spec(op).attr_index


def is_float(dtype: Optional[str]) -> bool:
    return dtype in ("float32", "float16")


def static_shape(shape) -> bool:
    return shape is not None and all(isinstance(d, (int, np.integer)) for d in shape)
