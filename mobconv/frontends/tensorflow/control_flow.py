"""Fold TF1-style conditionals whose predicate is constant; refuse loops.

`tf.cond` (and TF2's If, which freezing lowers) becomes Switch/Merge nodes:
Switch(data, pred) forwards `data` to output 1 when pred is true, else to
output 0; the other output is *dead*. Dead values propagate: a node with a
dead data input (or a control input from a dead node) is dead; Merge forwards
its one live input (output 0) and that input's index (output 1). A mobile
deployment has no run-time control flow, so conditionals on a constant (a
`training` flag, a Keras learning phase) are resolved here on the GraphDef:

1. Refuse while loops (Enter/Exit/NextIteration/LoopCond frames, While and
   StatelessWhile), naming the loop: Keras LSTM/GRU in graph form.
2. Walk the nodes in topological order and mark the dead ones. A live
   Switch's predicate is evaluated: constants (Const), Identity-like ops,
   PlaceholderWithDefault (taken at its default, the value TensorFlow uses when
   nothing is fed), logical ops, comparisons and Cast over those, and Switch/
   Merge outputs (nested conds). Any other predicate is refused, naming the
   Switch and the node the predicate comes from.
3. Rewrite: dead nodes go; a Switch's live output is replaced by its data
   input; a Merge becomes an Identity of its live input under the same name
   (so output names stay), its value_index a Const; control inputs from
   removed nodes are dropped.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConversionError
from .context import split_input
from .tensors import tensor_to_array

_SWITCH = ("Switch", "RefSwitch")
_MERGE = ("Merge", "RefMerge")
_FRAME_OPS = ("Enter", "RefEnter", "Exit", "RefExit", "NextIteration", "RefNextIteration",
              "LoopCond")
_WHILE = ("While", "StatelessWhile")
_PASS = ("Identity", "PlaceholderWithDefault", "StopGradient", "Snapshot", "RefIdentity")
_LOGIC = {
    "LogicalNot": lambda a: np.logical_not(a),
    "LogicalAnd": np.logical_and, "LogicalOr": np.logical_or,
    "Equal": np.equal, "NotEqual": np.not_equal, "Less": np.less, "LessEqual": np.less_equal,
    "Greater": np.greater, "GreaterEqual": np.greater_equal,
}
_SMALL = 1 << 16  # larger constants are never predicates: not decoded


def _where(node) -> str:
    return f"TensorFlow node {node.name!r} (type {node.op})"


def refuse_loops(graph_def, source: str) -> None:
    """One ConversionError naming the first while loop (TF1 frame or While op)."""
    for node in graph_def.node:
        if node.op in _WHILE:
            body = node.attr["body"].func.name if "body" in node.attr else "?"
            raise ConversionError(
                f"{source}: cannot convert {_where(node)}: while loop {node.name!r} (body "
                f"function {body!r}) is not supported; mobconv converts graphs without loops "
                "(Keras LSTM/GRU: unroll the layer, unroll=True, before exporting)")
    frames = {}  # frame name -> its first Enter node (every loop input enters the frame)
    for node in graph_def.node:
        if node.op in ("Enter", "RefEnter"):
            frame = node.attr["frame_name"].s.decode(errors="replace")
            frames.setdefault(frame, node)
    if not frames:  # loop nodes without an Enter (a cut or hand-made graph)
        frames = {"": n for n in graph_def.node if n.op in _FRAME_OPS}
        frames = dict(list(frames.items())[:1])
    if frames:
        frame, node = next(iter(frames.items()))
        loop = frame or node.name.rpartition("/")[0] or node.name
        more = f" (and {len(frames) - 1} more)" if len(frames) > 1 else ""
        raise ConversionError(
            f"{source}: cannot convert {_where(node)}: while loop {loop!r}{more} is not "
            "supported; mobconv converts graphs without loops (Keras LSTM/GRU: unroll the "
            "layer, unroll=True, before exporting)")


def fold_constant_switches(graph_def, source: str):
    """`graph_def` with constant-predicate Switch/Merge folded (a new GraphDef when
    anything changed); ConversionError for loops and non-constant predicates."""
    refuse_loops(graph_def, source)
    if not any(n.op in _SWITCH + _MERGE for n in graph_def.node):
        return graph_def
    return _Folder(graph_def, source).run()


class _Folder:
    def __init__(self, graph_def, source):
        self.graph_def = graph_def
        self.source = source
        self.nodes = {n.name: n for n in graph_def.node}
        self.dead_nodes = set()
        self.dead_ports = set()  # (switch name, port)
        self.merge_choice = {}  # merge name -> (input index, (node, port))
        self.values = {}  # (node, port) -> numpy, or None when not a known constant

    # ---- liveness -----------------------------------------------------------------
    def run(self):
        for node in self._topological():
            self._visit(node)
        return self._rewrite()

    def _topological(self):
        indegree, users = {}, {}
        for node in self.graph_def.node:
            preds = {split_input(i)[0] for i in node.input} & self.nodes.keys()
            indegree[node.name] = len(preds)
            for p in preds:
                users.setdefault(p, []).append(node.name)
        ready = [n.name for n in self.graph_def.node if indegree[n.name] == 0]
        order = []
        while ready:
            name = ready.pop()
            order.append(self.nodes[name])
            for u in users.get(name, ()):
                indegree[u] -= 1
                if indegree[u] == 0:
                    ready.append(u)
        if len(order) != len(self.nodes):
            stuck = next(n for n in self.graph_def.node if indegree[n.name] > 0)
            raise ConversionError(f"{self.source}: cannot convert {_where(stuck)}: the graph "
                                  "has a cycle through this node")
        return order

    def _port_dead(self, name, port) -> bool:
        return name in self.dead_nodes or (name, port) in self.dead_ports

    def _node_dead(self, name) -> bool:
        """Whole node dead (what a control edge carries)."""
        if name in self.dead_nodes:
            return True
        node = self.nodes.get(name)
        return node is not None and node.op in _SWITCH and \
            (name, 0) in self.dead_ports and (name, 1) in self.dead_ports

    def _visit(self, node):
        ins = [split_input(i) for i in node.input]
        data = [(n, k) for n, k in ins if k >= 0]
        if node.op in _MERGE:
            live = [(j, t) for j, t in enumerate(data) if not self._port_dead(*t)]
            if not live:
                self.dead_nodes.add(node.name)
            elif len(live) > 1:
                raise ConversionError(
                    f"{self.source}: cannot convert {_where(node)}: inputs "
                    f"{', '.join(repr(node.input[j]) for j, _ in live)} are all live (the "
                    "conditional's predicate is not a constant)")
            else:
                self.merge_choice[node.name] = live[0]
            return
        if any(self._port_dead(*t) for t in data) or \
                any(k < 0 and self._node_dead(n) for n, k in ins):
            self.dead_nodes.add(node.name)
            return
        if node.op in _SWITCH:
            if len(data) != 2:
                raise ConversionError(f"{self.source}: cannot convert {_where(node)}: "
                                      f"expects 2 inputs, got {len(data)}")
            pred = self._value(data[1])
            if pred is None or pred.size != 1 or pred.dtype.kind not in "biuf":
                origin = self._origin(data[1])
                raise ConversionError(
                    f"{self.source}: cannot convert {_where(node)}: its predicate "
                    f"{node.input[1]!r} is not a constant (it comes from {_where(origin)}); only "
                    "conditionals on a constant (Const, PlaceholderWithDefault, or logic over "
                    "them) are folded")
            taken = 1 if bool(pred.reshape(-1)[0]) else 0
            self.dead_ports.add((node.name, 1 - taken))

    # ---- constant predicates ----------------------------------------------------
    def _value(self, tensor):
        """Constant value of (node, port) or None; small, side-effect free evaluation."""
        if tensor in self.values:
            return self.values[tensor]
        self.values[tensor] = None  # cycle guard
        result = self._compute(*tensor)
        self.values[tensor] = result
        return result

    def _compute(self, name, port):
        node = self.nodes.get(name)
        if node is None or self._port_dead(name, port):
            return None
        data = [t for t in map(split_input, node.input) if t[1] >= 0]
        if node.op == "Const":
            t = node.attr["value"].tensor
            count = np.prod([d.size for d in t.tensor_shape.dim], dtype=np.int64)
            if port != 0 or count > _SMALL:
                return None
            try:
                return tensor_to_array(t, f"{self.source}: cannot convert {_where(node)}")
            except ConversionError:
                return None
        if node.op in _PASS and data:
            return self._value(data[0])
        if node.op in _SWITCH and len(data) == 2:
            return self._value(data[0])  # the live port (dead ones returned None above)
        if node.op in _MERGE:
            if port == 1:
                choice = self.merge_choice.get(name)
                return None if choice is None else np.asarray(choice[0], np.int32)
            choice = self.merge_choice.get(name)
            return None if choice is None else self._value(choice[1])
        if node.op in _LOGIC:
            args = [self._value(t) for t in data]
            if any(a is None for a in args):
                return None
            with np.errstate(all="ignore"):
                return np.asarray(_LOGIC[node.op](*args))
        if node.op == "Cast" and data:
            x = self._value(data[0])
            to = node.attr["DstT"].type if "DstT" in node.attr else None
            if x is None or to not in (1, 3, 9, 10):  # float32, int32, int64, bool
                return None
            return x.astype({1: np.float32, 3: np.int32, 9: np.int64, 10: bool}[to])
        return None

    def _origin(self, tensor):
        """The node a non-constant predicate comes from (through identities)."""
        node = self.nodes.get(tensor[0])
        seen = set()
        while node is not None and node.op in _PASS + _SWITCH and node.name not in seen:
            seen.add(node.name)
            data = [t for t in map(split_input, node.input) if t[1] >= 0]
            if not data:
                break
            nxt = self.nodes.get(data[0][0])
            if nxt is None:
                break
            node = nxt
        return node or self.nodes[tensor[0]]

    # ---- rewrite ------------------------------------------------------------------
    def _alias(self, tensor):
        """What a live Switch output stands for: its data input (followed through Switches)."""
        seen = set()
        while tensor[0] not in seen:
            node = self.nodes.get(tensor[0])
            if node is None or node.op not in _SWITCH:
                break
            seen.add(tensor[0])
            tensor = split_input(node.input[0])
        return tensor

    def _rewrite(self):
        out = type(self.graph_def)()
        out.CopyFrom(self.graph_def)
        del out.node[:]
        removed = set(self.dead_nodes) | {n.name for n in self.graph_def.node if n.op in _SWITCH}
        index_users = set()
        for node in self.graph_def.node:
            for i in node.input:
                name, port = split_input(i)
                if port == 1 and name in self.merge_choice and node.name not in removed:
                    index_users.add(name)
        for node in self.graph_def.node:
            if node.name in removed:
                continue
            new = out.node.add()
            if node.op in _MERGE:
                j, tensor = self.merge_choice[node.name]
                new.name, new.op = node.name, "Identity"
                new.device = node.device
                new.input.append(_tensor_name(self._alias(tensor)))
                if "T" in node.attr:
                    new.attr["T"].CopyFrom(node.attr["T"])
                if node.name in index_users:
                    const = out.node.add()
                    const.name, const.op = _index_name(node.name), "Const"
                    const.attr["dtype"].type = 3  # int32
                    const.attr["value"].tensor.dtype = 3
                    const.attr["value"].tensor.int_val.append(j)
                continue
            new.CopyFrom(node)
            del new.input[:]
            for i in node.input:
                name, port = split_input(i)
                if port < 0:
                    if name not in removed:
                        new.input.append(i)
                    continue
                if name in self.merge_choice and port == 1:
                    new.input.append(_index_name(name))
                elif self.nodes.get(name) is not None and self.nodes[name].op in _SWITCH:
                    new.input.append(_tensor_name(self._alias((name, port))))
                else:
                    new.input.append(i)
        return out


def _tensor_name(tensor) -> str:
    name, port = tensor
    return name if port == 0 else f"{name}:{port}"


def _index_name(merge: str) -> str:
    return f"{merge}/value_index"
