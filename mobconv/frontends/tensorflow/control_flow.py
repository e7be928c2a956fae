"""Fold conditionals whose predicate is constant; mark the control flow left over.

`tf.cond` (and TF2's If, which freezing lowers) becomes Switch/Merge nodes:
Switch(data, pred) forwards `data` to output 1 when pred is true, else to
output 0; the other output is *dead*. Dead values propagate: a node with a
dead data input (or a control input from a dead node) is dead; Merge forwards
its one live input (output 0) and that input's index (output 1). A mobile
deployment has no run-time control flow, so conditionals on a constant (a
`training` flag, a Keras learning phase) are resolved here on the GraphDef.
A TF1 graph frozen with `graph_util.convert_variables_to_constants` under TF2
keeps `tf.compat.v1.cond` as a functional If/StatelessIf whose branches are
functions of the graph's library: those are inlined first.

1. If/StatelessIf with a constant predicate: the taken branch's nodes join
   the graph ("<if>/<node>"), an IdentityN keeps the If's output names.
2. Walk the nodes in topological order (loop back edges left out) and mark
   the dead ones. A Switch's predicate is evaluated: constants (Const),
   Identity-like ops, PlaceholderWithDefault (taken at its default, the value
   TensorFlow uses when nothing is fed), logical ops, comparisons and Cast
   over those, and Switch/Merge outputs (nested conds).
3. Rewrite: dead nodes go; a constant Switch's live output is replaced by its
   data input; a Merge with one live input becomes an Identity of it under the
   same name (so output names stay), its value_index a Const; control inputs
   from removed nodes are dropped.

What cannot be folded is left in the graph with its refusal written into the
node (attribute `_mobconv_unconverted`): a Switch/If whose predicate is not a
constant (naming the node the predicate comes from), and while loops (TF1
frames of Enter/Exit/NextIteration/LoopCond, While/StatelessWhile, and the
TensorList/TensorArray ops that carry a loop's state), naming the loop. The
loader calls `refuse_unconverted` on the nodes its outputs need, after cutting
the graph at --inputs/--outputs, so control flow in pre- or postprocessing that
is cut away does not matter.
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


REFUSAL = "_mobconv_unconverted"  # NodeDef attribute: why this node cannot be converted
_STATE_OPS = ("TensorList", "TensorArray")  # op name prefixes of loop state containers
_LOOP_HINT = ("is not supported; mobconv converts graphs without loops (Keras LSTM/GRU: "
              "unroll the layer, unroll=True, before exporting; or cut the loop away with "
              "--inputs/--outputs)")


def _mark(node, message: str) -> None:
    if REFUSAL not in node.attr:
        node.attr[REFUSAL].s = message.encode()


def refusal(node):
    """The refusal `fold_constant_switches` wrote into `node`, or None."""
    return node.attr[REFUSAL].s.decode() if REFUSAL in node.attr else None


def refuse_unconverted(nodes, source: str) -> None:
    """Raise the first refusal among `nodes` (NodeDefs the outputs need, in graph order)."""
    for node in nodes:
        message = refusal(node)
        if message is not None:
            raise ConversionError(f"{source}: cannot convert {_where(node)}: {message}")


def mark_loops(graph_def) -> None:
    """Write the loop refusal into every loop node of `graph_def` (in place)."""
    frames = {}  # frame name -> loop name
    for node in graph_def.node:
        if node.op in _WHILE:
            body = node.attr["body"].func.name if "body" in node.attr else "?"
            _mark(node, f"while loop {node.name!r} (body function {body!r}) {_LOOP_HINT}")
        elif node.op in ("Enter", "RefEnter"):
            frame = node.attr["frame_name"].s.decode(errors="replace")
            loop = frame[:-len("/while_context")] if frame.endswith("/while_context") else frame
            frames.setdefault(frame, loop or node.name.rpartition("/")[0] or node.name)
    if not frames and not any(n.op in _FRAME_OPS for n in graph_def.node):
        return
    loops = sorted(set(frames.values()), key=len, reverse=True) or [""]

    def loop_of(name):
        return next((loop for loop in loops if loop and name.startswith(loop + "/")), loops[-1])

    producers = {n.name: n for n in graph_def.node}
    for node in graph_def.node:
        in_loop = node.op in _FRAME_OPS or node.op.startswith(_STATE_OPS)
        if node.op in _MERGE:  # a loop's Merge reads an Enter and a NextIteration
            in_loop = any(producers.get(split_input(i)[0]) is not None and
                          producers[split_input(i)[0]].op in _FRAME_OPS for i in node.input)
        if node.op in _SWITCH and len(node.input) > 1:  # a loop's Switch tests a LoopCond
            pred = producers.get(split_input(node.input[1])[0])
            in_loop = pred is not None and pred.op == "LoopCond"
        if in_loop:
            loop = loop_of(node.name)
            _mark(node, f"while loop {loop!r} {_LOOP_HINT}" if loop else f"a while loop {_LOOP_HINT}")


def fold_constant_switches(graph_def, source: str):
    """`graph_def` with constant-predicate conditionals folded (a new GraphDef when
    anything was folded): functional If/StatelessIf inlined, then Switch/Merge resolved.
    Loops and conditionals on run-time values stay, marked in place (see
    `refuse_unconverted`)."""
    _check_names(graph_def, source)
    graph_def = inline_constant_ifs(graph_def, source)
    control = _SWITCH + _MERGE + _FRAME_OPS + _WHILE + _IF
    if not any(n.op in control or n.op.startswith(_STATE_OPS) for n in graph_def.node):
        return graph_def
    mark_loops(graph_def)  # in place: only adds an attribute to loop nodes
    if not any(n.op in _SWITCH + _MERGE for n in graph_def.node):
        return graph_def
    return _Folder(graph_def, source).run()


def _check_names(graph_def, source: str) -> None:
    """Node names must be present and unique (the passes below index nodes by name)."""
    seen = set()
    for i, node in enumerate(graph_def.node):
        if not node.name:
            raise ConversionError(f"{source}: node {i} (type {node.op or '?'}) has no name")
        if node.name in seen:
            raise ConversionError(f"{source}: two nodes are named {node.name!r} "
                                  "(node names must be unique)")
        if ":" in node.name and node.name.rpartition(":")[2].isdigit() or node.name.startswith("^"):
            raise ConversionError(f"{source}: node {i} is named {node.name!r}, which reads as "
                                  "another node's output ('node:1') or a control input ('^node')")
        seen.add(node.name)


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
        ifs = [n for n in graph_def.node if n.op in _IF and refusal(n) is None]
        if not ifs:
            return graph_def
        functions = {f.signature.name: f for f in graph_def.library.function}
        folder = _Folder(graph_def, source)
        out = type(graph_def)()
        out.CopyFrom(graph_def)
        del out.node[:]
        names = {n.name for n in graph_def.node}
        inlined = 0
        for node in graph_def.node:
            if node.op not in _IF or refusal(node) is not None:
                out.node.add().CopyFrom(node)
                continue
            data = [split_input(i) for i in node.input if not i.startswith("^")]
            pred = folder._value(data[0]) if data else None
            if pred is None or pred.size != 1:
                kept = out.node.add()
                kept.CopyFrom(node)
                _mark(kept, folder._not_constant(node, data[0] if data else None))
                continue
            inlined += 1
            branch = node.attr["then_branch" if bool(pred.reshape(-1)[0]) else "else_branch"]
            fn = functions.get(branch.func.name)
            if fn is None:
                raise ConversionError(f"{source}: cannot convert {_where(node)}: branch function "
                                      f"{branch.func.name!r} is not in the graph's library")
            _inline(out, node, fn, [_tensor_name(t) for t in data[1:]], names, source)
        graph_def = out
        if not inlined:
            return graph_def
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
            if args_of and parts[1] in args_of:
                return _tensor_name((renamed[parts[0]], args_of.index(parts[1])))
            if parts[2].isdigit():
                return _tensor_name((renamed[parts[0]], int(parts[2])))
        if parts[0] in renamed and (len(parts) == 1 or len(parts) == 2 and parts[1].isdigit()):
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
        self.opaque = set()  # Switches left in place (predicate not constant, or a loop's)

    # ---- liveness -----------------------------------------------------------------
    def run(self):
        for node in self._topological():
            self._visit(node)
        return self._rewrite()

    def _topological(self):
        indegree, users = {}, {}
        for node in self.graph_def.node:
            preds = {p for p in (split_input(i)[0] for i in node.input) if p in self.nodes
                     and self.nodes[p].op not in ("NextIteration", "RefNextIteration")}
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
            stuck = next((n for n in self.graph_def.node if indegree[n.name] > 0),
                         self.graph_def.node[0])
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
            elif len(live) > 1:  # a loop's, or after a Switch left in place
                _mark(node, f"inputs {', '.join(repr(node.input[j]) for j, _ in live)} are all "
                      "live (the conditional's predicate is not a constant)")
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
            pred = None if refusal(node) is not None else self._value(data[1])
            if pred is None or pred.size != 1 or pred.dtype.kind not in "biuf":
                self.opaque.add(node.name)  # both outputs may be live: left in place
                _mark(node, self._not_constant(node, data[1]))
                return
            taken = 1 if bool(pred.reshape(-1)[0]) else 0
            self.dead_ports.add((node.name, 1 - taken))

    # ---- constant predicates ----------------------------------------------------
    def _value(self, tensor):
        """Constant value of (node, port) or None; small, side-effect free evaluation.
        Iterative (a predicate may come through 100k Identities); a tensor on a cycle
        is not a constant."""
        if tensor in self.values:
            return self.values[tensor]
        stack, pending = [(tensor, False)], set()
        while stack:
            t, expanded = stack.pop()
            if t in self.values:
                continue
            if expanded:
                pending.discard(t)
                self.values[t] = self._compute(*t)
                continue
            if t in pending:  # reached again below itself: a cycle
                continue
            pending.add(t)
            stack.append((t, True))
            stack.extend((d, False) for d in self._reads(*t)
                         if d not in self.values and d not in pending)
        return self.values[tensor]

    def _reads(self, name, port) -> list:
        """The tensors `_compute(name, port)` looks up."""
        node = self.nodes.get(name)
        if node is None or self._port_dead(name, port):
            return []
        data = [t for t in map(split_input, node.input) if t[1] >= 0]
        if node.op in _PASS + _SWITCH + ("Cast",):
            return data[:1]
        if node.op in _MERGE:
            choice = self.merge_choice.get(name)
            return [choice[1]] if port == 0 and choice is not None else []
        return data if node.op in _LOGIC else []

    def _known(self, tensor):
        return self.values.get(tensor)

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
            return self._known(data[0])
        if node.op in _SWITCH and len(data) == 2:
            return self._known(data[0])  # the live port (dead ones returned None above)
        if node.op in _MERGE:
            if port == 1:
                choice = self.merge_choice.get(name)
                return None if choice is None else np.asarray(choice[0], np.int32)
            choice = self.merge_choice.get(name)
            return None if choice is None else self._known(choice[1])
        if node.op in _LOGIC:
            if len(data) != (1 if node.op == "LogicalNot" else 2):
                return None  # malformed: not a constant (its converter refuses it)
            args = [self._known(t) for t in data]
            if any(a is None for a in args):
                return None
            try:
                with np.errstate(all="ignore"):
                    return np.asarray(_LOGIC[node.op](*args))
            except (TypeError, ValueError):  # shapes that do not broadcast, strings, ...
                return None
        if node.op == "Cast" and data:
            x = self._known(data[0])
            to = node.attr["DstT"].type if "DstT" in node.attr else None
            if x is None or to not in (1, 3, 9, 10):  # float32, int32, int64, bool
                return None
            return x.astype({1: np.float32, 3: np.int32, 9: np.int64, 10: bool}[to])
        return None

    def _not_constant(self, node, tensor) -> str:
        origin = self._origin(tensor) if tensor is not None else node
        name = node.input[1] if node.op in _SWITCH else (node.input[0] if node.input else "")
        if origin is None:
            return f"its predicate {name!r} names no node of the graph"
        return (f"its predicate {name!r} is not a constant (it comes from {_where(origin)}); "
                "only conditionals on a constant (Const, PlaceholderWithDefault, or logic over "
                "them) are folded")

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
        return node

    # ---- rewrite ------------------------------------------------------------------
    def _alias(self, tensor):
        """What a live Switch output stands for: its data input (followed through Switches)."""
        seen = set()
        while tensor[0] not in seen:
            node = self.nodes.get(tensor[0])
            if node is None or node.op not in _SWITCH or tensor[0] in self.opaque:
                break
            seen.add(tensor[0])
            tensor = split_input(node.input[0])
        return tensor

    def _drop_predicates(self, removed: set) -> None:
        """Add to `removed` the computation of folded Switches' predicates that nothing else
        reads (a cond's "pred_id" Identity): left alone it would become a sink of the graph,
        taken for a model output. A folded Switch's data input stays read (it stands for
        the Switch's live output)."""
        readers = {}  # name -> [(reader, data input position)]
        for node in self.graph_def.node:
            data = [t for t in map(split_input, node.input) if t[1] >= 0]
            for position, (name, _) in enumerate(data):
                readers.setdefault(name, []).append((node.name, position))
        dropped = set()

        def gone(reader, position):
            return reader in self.dead_nodes or reader in dropped or \
                (reader in removed and position == 1 and self.nodes[reader].op in _SWITCH)

        stack = []
        for node in self.graph_def.node:
            data = [t for t in map(split_input, node.input) if t[1] >= 0]
            if node.op in _SWITCH and node.name in removed and len(data) == 2:
                stack.append(data[1][0])
        plumbing = ("Identity", "StopGradient", "Snapshot", "RefIdentity", "Cast", "Const") + \
            tuple(_LOGIC)
        while stack:
            name = stack.pop()
            node = self.nodes.get(name)
            if name in removed or node is None or node.op not in plumbing or \
                    not all(gone(*r) for r in readers.get(name, ())):
                continue
            removed.add(name)
            dropped.add(name)
            stack.extend(n for n, port in map(split_input, node.input) if port >= 0)

    def _rewrite(self):
        out = type(self.graph_def)()
        out.CopyFrom(self.graph_def)
        del out.node[:]
        removed = set(self.dead_nodes) | {n.name for n in self.graph_def.node
                                          if n.op in _SWITCH and n.name not in self.opaque}
        self._drop_predicates(removed)
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
            if node.op in _MERGE and node.name in self.merge_choice:
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
                elif name in self.nodes and self.nodes[name].op in _SWITCH and \
                        name not in self.opaque:  # a folded Switch: its data input
                    new.input.append(_tensor_name(self._alias((name, port))))
                else:
                    new.input.append(i)
        return out


def _tensor_name(tensor) -> str:
    name, port = tensor
    return name if port == 0 else f"{name}:{port}"


def _index_name(merge: str) -> str:
    return f"{merge}/value_index"
