"""Fold conditionals whose predicate is constant; refuse loops.

A TF1 graph frozen with `graph_util.convert_variables_to_constants` under TF2
keeps `tf.compat.v1.cond` as a functional If/StatelessIf whose branches are
functions of the graph's library: those with a constant predicate are inlined
first (the taken branch's nodes join the graph, an IdentityN keeps the If's
output names).

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
    """`graph_def` with constant-predicate conditionals folded (a new GraphDef when
    anything changed): functional If/StatelessIf inlined, then Switch/Merge resolved;
    ConversionError for loops and non-constant predicates."""
    graph_def = inline_constant_ifs(graph_def, source)
    refuse_loops(graph_def, source)
    if not any(n.op in _SWITCH + _MERGE for n in graph_def.node):
        return graph_def
    return _Folder(graph_def, source).run()


# ---- functional If (TF2 control flow in a TF1-frozen graph) ---------------------------

_IF = ("If", "StatelessIf")
# output argument names, in order, of ops with several (FunctionDef bodies name outputs as
# "node:arg:index"); any other op has one output argument and index = output number
_OUTPUT_ARGS = {
    "TopKV2": ("values", "indices"), "TopK": ("values", "indices"), "Unique": ("y", "idx"),
    "FusedBatchNorm": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"),
    "FusedBatchNormV2": ("y", "batch_mean", "batch_variance", "reserve_space_1",
                         "reserve_space_2"),
    "FusedBatchNormV3": ("y", "batch_mean", "batch_variance", "reserve_space_1",
                         "reserve_space_2", "reserve_space_3"),
    "Switch": ("output_false", "output_true"), "Merge": ("output", "value_index"),
}
_INLINE_ROUNDS = 32  # nested conditionals inlined per call, at most


def inline_constant_ifs(graph_def, source: str):
    """If/StatelessIf whose `cond` is a constant become the taken branch's nodes (named
    "<if>/<node>") and an IdentityN under the If's name (so its outputs keep their names).
    Nested Ifs are inlined in later rounds."""
    for _ in range(_INLINE_ROUNDS):
        ifs = [n for n in graph_def.node if n.op in _IF]
        if not ifs:
            return graph_def
        functions = {f.signature.name: f for f in graph_def.library.function}
        folder = _Folder(graph_def, source)
        out = type(graph_def)()
        out.CopyFrom(graph_def)
        del out.node[:]
        names = {n.name for n in graph_def.node}
        for node in graph_def.node:
            if node.op not in _IF:
                out.node.add().CopyFrom(node)
                continue
            data = [split_input(i) for i in node.input if not i.startswith("^")]
            pred = folder._value(data[0]) if data else None
            if pred is None or pred.size != 1:
                origin = folder._origin(data[0]) if data else node
                raise ConversionError(
                    f"{source}: cannot convert {_where(node)}: its predicate "
                    f"{node.input[0] if node.input else ''!r} is not a constant (it comes from "
                    f"{_where(origin)}); only conditionals on a constant (Const, "
                    "PlaceholderWithDefault, or logic over them) are folded")
            branch = node.attr["then_branch" if bool(pred.reshape(-1)[0]) else "else_branch"]
            fn = functions.get(branch.func.name)
            if fn is None:
                raise ConversionError(f"{source}: cannot convert {_where(node)}: branch function "
                                      f"{branch.func.name!r} is not in the graph's library")
            _inline(out, node, fn, [_tensor_name(t) for t in data[1:]], names, source)
        graph_def = out
    raise ConversionError(f"{source}: conditionals nested deeper than {_INLINE_ROUNDS} levels")


def _inline(out, node, fn, args, names, source):
    """Append fn's body to `out` as nodes "<node>/<name>", its arguments bound to `args`,
    and an IdentityN named like `node` forwarding fn's results."""
    sig = fn.signature
    if len(args) != len(sig.input_arg):
        raise ConversionError(f"{source}: cannot convert {_where(node)}: {len(args)} inputs for "
                              f"branch {sig.name!r}, which takes {len(sig.input_arg)}")
    bound = {a.name: t for a, t in zip(sig.input_arg, args)}
    ops = {n.name: n.op for n in fn.node_def}
    renamed = {}
    for n in fn.node_def:
        name = f"{node.name}/{n.name}"
        while name in names:
            name += "_"
        names.add(name)
        renamed[n.name] = name

    def tensor(ref: str) -> str:
        if ref.startswith("^"):
            return "^" + renamed.get(ref[1:], ref[1:])
        if ref in bound:
            return bound[ref]
        parts = ref.split(":")
        if len(parts) == 3 and parts[0] in renamed:
            args_of = _OUTPUT_ARGS.get(ops[parts[0]])
            index = args_of.index(parts[1]) if args_of and parts[1] in args_of else int(parts[2])
            return _tensor_name((renamed[parts[0]], index))
        if parts[0] in renamed:  # plain "node" / "node:k"
            return _tensor_name((renamed[parts[0]], int(parts[1]) if len(parts) == 2 else 0))
        raise ConversionError(f"{source}: cannot convert {_where(node)}: branch {sig.name!r} "
                              f"reads {ref!r}, which it does not define")

    for n in fn.node_def:
        if any(v.WhichOneof("value") == "placeholder" for v in n.attr.values()):
            raise ConversionError(f"{source}: cannot convert {_where(node)}: branch "
                                  f"{sig.name!r} has polymorphic attributes (not a frozen graph)")
        new = out.node.add()
        new.CopyFrom(n)
        new.name = renamed[n.name]
        del new.input[:]
        new.input.extend(tensor(i) for i in n.input if not i.startswith("^"))
    forward = out.node.add()
    forward.name, forward.op = node.name, "IdentityN"
    forward.input.extend(tensor(fn.ret[a.name]) for a in sig.output_arg)
    forward.attr["T"].list.type.extend(
        node.attr["Tout"].list.type if "Tout" in node.attr else [a.type for a in sig.output_arg])


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
