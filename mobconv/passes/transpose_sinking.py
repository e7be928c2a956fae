"""Transpose sinking: cancel the Transposes a channels-last source puts around every op.

Why: the TensorFlow frontend keeps TensorFlow's NHWC layout for every value and
emits each layout-specific op (Conv2D, pooling, ...) as Transpose(perm [0,3,1,2])
-> the IR op in NCHW -> Transpose(perm [0,2,3,1]); tf2onnx exports of Keras models
look the same. Between two convolutions only layout-agnostic ops remain (bias and
BatchNorm arithmetic, Relu6, residual Adds, Pad, Concat, ...), so moving the
Transposes through them until inverse pairs meet removes them all, and the fusions
that run after this pass see Conv -> Add -> Relu chains again.

Model: "flipping" a layout-agnostic node N by a permutation Q makes N compute in
a stored layout v' of each logical value v, with v = transpose(v', Q) (logical
axis a is stored axis Q[a]). Its inputs become transpose(v, Q^-1): a Transpose
producing v composes with that (and vanishes when the composition is the
identity), a constant is permuted at once (a (C,) bias broadcasting on NHWC's last
axis becomes (C,1,1)), anything else gets a new Transpose. Its outputs are
re-transposed by Q for their readers: a reading Transpose composes (and vanishes
when that gives the identity), other readers and graph outputs read one new
Transpose that keeps the output's name. Axis attributes and axis inputs (Concat,
Split, Slice, Pad, Reduce*, ArgMax, Softmax, Resize, Q/DQ, ...) are remapped;
a reduction that drops axes (keepdims=0) may need no output Transpose at all
(Keras' GlobalAveragePooling2D: Mean over NHWC [1,2] is Mean over NCHW [2,3]).

Algorithm:
1. A graph without Transpose nodes is left alone (no work, nothing changes).
2. Sweep the nodes forward, then backward, until a sweep changes nothing:
   a Transpose whose input is a Transpose takes the composed permutation (the
   inner one goes when nothing else reads it); a Transpose with the identity
   permutation is bypassed; one that only moves size-1 axes is a reshape, so a
   Reshape reading it reads its input and a Reshape feeding it takes its output
   shape (when the Reshape's target is a constant whose 0s copy kept axes);
   a layout-agnostic node is flipped by each Q that one of its input Transposes
   has (pushing it down) or that cancels one of its reading Transposes (pulling
   it up), alone or, when alone it would cost a Transpose, together with every
   agnostic node connected to it through values that the flip permutes (a
   Transpose read by two ops whose paths meet again: swish, squeeze-excite).
   A flip is made only if the number of Transpose nodes does not grow: strictly
   fewer, or as many when Q = [0,2,..,r-1,1] (the nodes move into the IR's
   channels-first layout; ties break the same way every time, so moves do not
   cycle; a node flips at most MAX_FLIPS_PER_NODE times anyway).
3. Graph inputs and outputs keep their names, shapes and values: the Transposes
   at the model's edges stay (the signature keeps NHWC where the source had it).
4. Should the moves have added Transposes after all (each move's count is an
   estimate made before the move), the graph is put back as it was.
Nodes with quantized values (`Value.quant`) are not flipped. A flipped node's
output is a new value named `<old name>_nchw` when it holds the old NHWC value in
NCHW order (`<old name>_t` for other permutations); the old name lives on only
where a Transpose still produces it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir.graph import Node
from ._util import Uses, attrs_of

# Same-shape element-wise ops of one data input; further inputs are scalars/params.
UNARY = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Celu", "ThresholdedRelu", "Softplus", "Softsign", "Mish", "Gelu", "Erf", "Exp",
    "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin",
    "Cos", "Not", "Cast", "Clip", "Shrink",
})
# Broadcasting element-wise ops: every input is data.
BROADCAST = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "And", "Or",
    "Xor", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Where", "PRelu",
})
SINGLE_AXIS = frozenset({"Softmax", "LogSoftmax", "Hardmax", "LpNormalization"})
REDUCE = frozenset({
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp",
})
MAX_SWEEPS = 32
MAX_FLIPS_PER_NODE = 4
MAX_REGION = 256


def _acceptable(delta: int, q) -> bool:
    """Fewer Transposes, or as many when the nodes move into channels-first (tie rule)."""
    return delta < 0 or (delta == 0 and len(q) >= 3 and q == from_nchw(len(q)))


def transpose_sinking(graph) -> bool:
    """Move Transposes through layout-agnostic ops and cancel inverse pairs; True if changed."""
    before = _count(graph)
    if not before:
        return False
    saved = _snapshot(graph)
    sinker = _Sinker(graph)
    changed = False
    for _ in range(MAX_SWEEPS):
        swept = False
        for order in (list(graph.nodes), list(reversed(graph.nodes))):
            for node in order:
                if not sinker.uses.is_removed(node):
                    swept = sinker.visit(node) or swept
        sinker.uses.commit()
        sinker.tried.clear()
        if not swept:
            break
        changed = True
        graph.toposort()
    if changed and _count(graph) > before:  # a misjudged move: keep the graph as it was
        _restore(graph, saved)
        return False
    if changed:
        graph.remove_unused_values()
    return changed


def _count(graph) -> int:
    return sum(n.op == "Transpose" for n in graph.nodes)


def _snapshot(graph):
    """What the pass may change in place: the node list and each node's fields, the
    value table and the values' shapes (constants are never edited)."""
    nodes = [(n, n.op, n.name, list(n.inputs), list(n.outputs), dict(n.attrs)) for n in graph.nodes]
    return nodes, dict(graph.values), [(v, v.shape) for v in graph.values.values()]


def _restore(graph, saved) -> None:
    nodes, values, shapes = saved
    for node, op, name, inputs, outputs, attrs in nodes:
        node.op, node.name, node.inputs, node.outputs, node.attrs = op, name, inputs, outputs, attrs
    graph.nodes = [entry[0] for entry in nodes]
    graph.values = values
    for value, shape in shapes:
        value.shape = shape


# ---- permutations ---------------------------------------------------------------------


def compose(first, then) -> tuple:
    """transpose(transpose(x, first), then) == transpose(x, compose(first, then))."""
    return tuple(first[i] for i in then)


def inverse(perm) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def is_identity(perm) -> bool:
    return all(i == p for i, p in enumerate(perm))


def from_nchw(rank: int) -> tuple:
    """The permutation NCHW -> NHWC ([0,2,3,1] for rank 4)."""
    return (0,) + tuple(range(2, rank)) + (1,)


class _Plan:
    """How node N looks flipped by Q: `data` input slots with their mode ("perm": rank
    r, "bcast": broadcasting element-wise operand), new attrs, new constant inputs by
    slot (an array, or None to keep), and each output's permutation (y = transpose(y',
    out_perm); the identity needs no output Transpose)."""

    def __init__(self, data, outs, attrs=None, params=None):
        self.data = data
        self.outs = outs
        self.attrs = attrs or {}
        self.params = params or {}


class _Sinker:
    def __init__(self, graph):
        self.graph = graph
        self.uses = Uses(graph)
        self.uses.has_readers("")  # build the index now: new nodes are linked as made
        self.flips: dict = {}  # id(node) -> times flipped
        self.made: dict = {}  # (value, perm) -> name of its transposed version
        self.tried: set = set()  # (id(node), q) already in a region evaluated this sweep

    # ---- queries --------------------------------------------------------------------
    def shape(self, name):
        value = self.graph.values.get(name) if name else None
        return None if value is None else value.shape

    def quantized(self, name) -> bool:
        value = self.graph.values.get(name) if name else None
        return value is not None and value.quant is not None

    def perm(self, node) -> Optional[tuple]:
        """A Transpose node's permutation, or None (unknown rank, not a Transpose)."""
        if node is None or node.op != "Transpose" or len(node.inputs) != 1:
            return None
        perm = list(node.attrs.get("perm") or [])
        if not perm:
            shape = self.shape(node.inputs[0])
            if shape is None:
                return None
            perm = list(range(len(shape)))[::-1]
        return tuple(int(p) for p in perm)

    def transpose_producer(self, name):
        node = self.uses.producer(name)
        return node if self.perm(node) is not None else None

    # ---- visiting -------------------------------------------------------------------
    def visit(self, node) -> bool:
        if node.op == "Transpose":
            return self.simplify_transpose(node)
        if not self.flippable(node):
            return False
        best = None
        for q in self.candidates(node):
            plan = _RULES[node.op](self, node, q)
            if plan is None:
                continue
            choices = [[(node, plan)]]
            if (id(node), q) not in self.tried:
                choices.append(self.region(node, plan, q))  # several readers of one value
            for region in choices:
                if region is None:
                    continue
                delta = self.cost(region, q)
                if delta is not None and _acceptable(delta, q) and (best is None or delta < best[0]):
                    best = (delta, q, region)
            if best is not None and len(best[2]) == 1:
                break
        if best is None:
            return False
        _, q, region = best
        for member, plan in region:
            if member is not node:
                plan = _RULES[member.op](self, member, q)
            self.flip(member, q, plan)
            self.flips[id(member)] = self.flips.get(id(member), 0) + 1
        return True

    def flippable(self, node) -> bool:
        if self.flips.get(id(node), 0) >= MAX_FLIPS_PER_NODE or node.op not in _RULES:
            return False
        return not any(self.quantized(n) for n in node.inputs + node.outputs)

    def region(self, seed, plan, q):
        """The agnostic nodes connected to `seed` through values that would all be
        stored permuted by q (not through Transposes, constants or other ops), with
        their plans; None past MAX_REGION nodes. Marks them tried for q in this sweep."""
        members, queue = {id(seed): (seed, plan)}, [(seed, plan)]
        while queue:
            node, plan = queue.pop()
            self.tried.add((id(node), q))
            near = []
            for slot, _ in plan.data:
                producer = self.uses.producer(node.inputs[slot])
                if producer is not None and producer.op != "Transpose":
                    near.append(producer)
            for name, out_perm in zip(node.outputs, plan.outs):
                if name and out_perm == q:
                    near.extend(r for r in self.uses.readers(name) if r.op != "Transpose")
            for other in near:
                if id(other) in members or not self.flippable(other):
                    continue
                other_plan = _RULES[other.op](self, other, q)
                if other_plan is None:
                    continue
                members[id(other)] = (other, other_plan)
                queue.append((other, other_plan))
                if len(members) > MAX_REGION:
                    return None
        return list(members.values())

    def candidates(self, node) -> list:
        found = []
        for name in node.inputs:
            t = self.transpose_producer(name)
            if t is not None:
                found.append(self.perm(t))
        for name in node.outputs:
            for reader in self.uses.readers(name) if name else ():
                p = self.perm(reader)
                if p is not None:
                    found.append(inverse(p))
        return list(dict.fromkeys(q for q in found if not is_identity(q)))

    def simplify_transpose(self, node) -> bool:
        perm = self.perm(node)
        if perm is None:
            return False
        inner = self.transpose_producer(node.inputs[0])
        if inner is not None and not self.quantized(node.inputs[0]):
            source, old = inner.inputs[0], node.inputs[0]
            perm = compose(self.perm(inner), perm)
            node.attrs["perm"] = list(perm)
            self.uses.set_inputs(node, [source])
            self.drop_if_unread(old)
            if not is_identity(perm):
                return True
        if is_identity(perm):
            self.bypass(node, node.inputs[0])
            return True
        return self.skip_for_reshapes(node, perm)

    def skip_for_reshapes(self, node, perm) -> bool:
        """A Transpose that only moves size-1 axes keeps the elements' order, so it is a
        reshape: a Reshape reading it may read its input instead (Keras MobileNet's
        Reshape of the (N,1,1,C) logits), and a Reshape feeding it may reshape straight
        to its output shape (EfficientNet's squeeze-excite Reshape to (N,1,1,C))."""
        shape = self.shape(node.inputs[0])
        if shape is None or not _moves_only_ones(shape, perm):
            return False
        changed = False
        for reader in {id(r): r for r in self.uses.readers(node.outputs[0])}.values():
            if (reader.op == "Reshape" and reader.inputs[1] != node.outputs[0]
                    and _same_target(self, reader, perm)):
                self.uses.set_inputs(reader, [node.inputs[0]] + reader.inputs[1:])
                changed = True
        if changed:
            self.drop_if_unread(node.outputs[0])
            return True
        reshape = self.uses.producer(node.inputs[0])
        if (reshape is None or reshape.op != "Reshape" or not self.uses.only_reader(node.inputs[0], node)
                or not _same_target(self, reshape, perm, of_output=True)):
            return False
        target = self.uses.const(reshape.inputs[1]).reshape(-1)
        permuted = self.uses.new_constant(reshape.inputs[1], target[list(perm)])
        self.uses.set_inputs(reshape, [reshape.inputs[0], permuted] + reshape.inputs[2:])
        value = self.graph.values[node.inputs[0]]
        value.shape = tuple(shape[p] for p in perm)
        self.bypass(node, node.inputs[0])
        return True

    # ---- cost -----------------------------------------------------------------------
    def cost(self, region, q) -> Optional[int]:
        """Change in the number of Transpose nodes if every node of `region` (a list of
        (node, plan)) were flipped by q; None when a Transpose or a rank-changing output
        sits between two of its nodes (the count would need the flips done in order)."""
        inv = inverse(q)
        inside = {id(node) for node, _ in region}
        needs, dying = {}, {}  # (source, perm) -> True; id(transpose) -> node
        for node, plan in region:
            for slot, mode in plan.data:
                name = node.inputs[slot]
                if not name or self.uses.const(name) is not None:
                    continue
                producer = self.uses.producer(name)
                if producer is not None and id(producer) in inside:
                    continue
                if mode == "bcast" and len(self.shape(name)) == 0:
                    continue
                t = self.transpose_producer(name)
                if t is None:
                    needs[(name, inv)] = True
                    continue
                source = self.uses.producer(t.inputs[0])
                if source is not None and id(source) in inside:
                    return None
                perm = compose(self.perm(t), inv)
                if not is_identity(perm):
                    needs[(t.inputs[0], perm)] = True
                readers = self.uses.readers(name)
                if name not in self.uses.outputs and all(id(r) in inside for r in readers):
                    dying[id(t)] = t
        delta = -len(dying)
        for source, perm in needs:
            found = self.existing(source, perm)
            producer = found and self.uses.producer(found)
            if found is None or id(producer) in dying:  # a dying one reused is one kept
                delta += 1
        for node, plan in region:
            for name, out_perm in zip(node.outputs, plan.outs):
                if not name or is_identity(out_perm):
                    continue
                needs_copy = name in self.uses.outputs
                for reader in {id(r): r for r in self.uses.readers(name)}.values():
                    if id(reader) in inside:
                        if out_perm != q:
                            return None
                        continue
                    p = self.perm(reader)
                    if p is None:
                        needs_copy = True
                    elif is_identity(compose(out_perm, p)):
                        delta -= 1
                delta += needs_copy
        return delta

    def existing(self, name, perm) -> Optional[str]:
        """A value already holding transpose(name, perm), if any."""
        made = self.made.get((name, perm))
        if made is not None and made in self.graph.values:
            return made
        for reader in self.uses.readers(name):
            if self.perm(reader) == perm and reader.outputs[0] not in self.uses.outputs:
                return reader.outputs[0]
        return None

    # ---- rewriting ------------------------------------------------------------------
    def flip(self, node, q, plan) -> None:
        uses, graph = self.uses, self.graph
        inv = inverse(q)
        inputs = list(node.inputs)
        old_inputs = set(inputs)
        for slot, mode in plan.data:
            inputs[slot] = self.stored_input(node.inputs[slot], inv, mode)
        for slot, array in plan.params.items():
            while len(inputs) <= slot:
                inputs.append("")
            if array is not None:
                inputs[slot] = uses.new_constant(f"{node.name}_{slot}", array)
        node.attrs.update(plan.attrs)
        uses.set_inputs(node, inputs)
        for name in old_inputs:
            self.drop_if_unread(name)
        outputs = list(node.outputs)
        for k, (name, out_perm) in enumerate(zip(node.outputs, plan.outs)):
            if not name or is_identity(out_perm):
                continue
            value = graph.values[name]
            stored = uses.unique_name(name + ("_nchw" if out_perm == from_nchw(len(out_perm)) else "_t"))
            shape = None if value.shape is None else tuple(value.shape[i] for i in inverse(out_perm))
            graph.add_value(stored, value.dtype, shape)
            outputs[k] = stored
        old_outputs = list(node.outputs)
        uses.set_outputs(node, outputs)
        for old, stored, out_perm in zip(old_outputs, outputs, plan.outs):
            if old and old != stored:
                self.retarget_readers(old, stored, out_perm)

    def retarget_readers(self, old, stored, out_perm) -> None:
        """Readers of `old` (now = transpose(stored, out_perm)) read `stored` through
        composed Transposes, or through one new Transpose that keeps the name `old`."""
        uses = self.uses
        needs_copy = old in uses.outputs
        for reader in {id(r): r for r in uses.readers(old)}.values():
            p = self.perm(reader)
            if p is None:
                needs_copy = True
                continue
            perm = compose(out_perm, p)
            reader.attrs["perm"] = list(perm)
            uses.set_inputs(reader, [stored])
            if is_identity(perm):
                self.bypass(reader, stored)
        if needs_copy:
            self.new_transpose(stored, out_perm, old)
        else:
            self.graph.values.pop(old, None)

    def stored_input(self, name, inv, mode) -> str:
        """The value transpose(name, inv) for a flipped node's data input."""
        if not name:
            return name
        rank = len(inv)
        data = self.uses.const(name)
        if data is not None:
            if data.ndim == 0 or (mode == "bcast" and data.size == 1 and data.ndim <= rank):
                return name
            key = (name, inv)
            made = self.made.get(key)
            if made is None or made not in self.graph.values:
                full = data.reshape((1,) * (rank - data.ndim) + data.shape)
                permuted = np.transpose(full, inv)
                while permuted.ndim > data.ndim and permuted.shape[0] == 1:
                    permuted = permuted.reshape(permuted.shape[1:])
                made = self.made[key] = self.uses.new_constant(name, permuted)
            return made
        if mode == "bcast" and len(self.shape(name)) == 0:
            return name
        t = self.transpose_producer(name)
        if t is not None:
            source, perm = t.inputs[0], compose(self.perm(t), inv)
            if is_identity(perm):
                return source
            return self.existing(source, perm) or self.new_transpose(source, perm)
        return self.existing(name, inv) or self.new_transpose(name, inv)

    def new_transpose(self, source, perm, out=None) -> str:
        uses, graph = self.uses, self.graph
        value = graph.values.get(source)
        if out is None:
            out = uses.unique_name(source + ("_nchw" if perm == inverse(from_nchw(len(perm))) else "_t"))
            shape = None if value is None or value.shape is None else tuple(value.shape[p] for p in perm)
            graph.add_value(out, value.dtype if value else None, shape)
            self.made[(source, tuple(perm))] = out
        node = Node("Transpose", uses.unique_name(out + "_transpose"), [], [], {"perm": list(perm)})
        graph.nodes.append(node)
        uses.set_inputs(node, [source])
        uses.set_outputs(node, [out])
        return out

    def bypass(self, node, source) -> None:
        """`node` copies `source`: its readers read `source` (a graph output keeps its name
        through an Identity, which identity_removal drops where it can)."""
        out = node.outputs[0]
        if out in self.uses.outputs:
            node.op, node.attrs = "Identity", {}
            self.uses.set_inputs(node, [source])
            return
        self.uses.remove(node)
        self.uses.replace_uses(out, source)
        self.graph.values.pop(out, None)
        self.drop_if_unread(node.inputs[0])

    def drop_if_unread(self, name) -> None:
        """Remove the Transpose producing `name` once nothing reads it."""
        t = self.transpose_producer(name)
        if t is None or name in self.uses.outputs or self.uses.has_readers(name):
            return
        self.uses.remove(t)
        self.graph.values.pop(name, None)
        self.drop_if_unread(t.inputs[0])


def _moves_only_ones(shape, perm) -> bool:
    """transpose(x, perm) keeps the order of x's elements: only size-1 axes move
    (symbolic dims count as not 1)."""
    kept = [p for p in perm if shape[p] != 1]
    return kept == sorted(kept)


def _same_target(s, reshape, perm, of_output=False) -> bool:
    """The Reshape's constant target means the same before and after `perm` moves its
    input's (of_output: output's) axes: every 0 (copy that input dim) sits on an axis
    perm keeps."""
    target = s.uses.const(reshape.inputs[1]) if len(reshape.inputs) > 1 else None
    if target is None or target.ndim != 1 or (of_output and target.size != len(perm)):
        return False
    if any(perm[k] != k for k in np.flatnonzero(target == 0) if k < len(perm)):
        return False
    if attrs_of(reshape)["allowzero"]:
        return not (target == 0).any()
    return not (np.flatnonzero(target == 0) >= len(perm)).any()


# ---- per-op rules: (sinker, node, q) -> _Plan, or None when the node cannot flip -------


def _rank_is(s, names, rank) -> bool:
    return all(s.shape(n) is not None and len(s.shape(n)) == rank for n in names if n)


def _axis(value, rank) -> Optional[int]:
    value = int(value)
    return value + rank if -rank <= value < 0 else value if 0 <= value < rank else None


def _const_axes(s, name, rank) -> Optional[list]:
    data = s.uses.const(name)
    if data is None:
        return None
    axes = [_axis(a, rank) for a in data.reshape(-1)]
    return None if None in axes or len(set(axes)) != len(axes) else axes


def _reduced_perm(q, axes, keepdims) -> tuple:
    """Output permutation of a reduction over logical `axes` flipped by q."""
    if keepdims:
        return q
    kept = [a for a in range(len(q)) if a not in axes]
    stored = sorted(q[a] for a in kept)
    return tuple(stored.index(q[a]) for a in kept)


def _unary(s, node, q):
    if len(node.outputs) != 1 or not _rank_is(s, [node.inputs[0], node.outputs[0]], len(q)):
        return None
    return _Plan([(0, "perm")], [q])


def _broadcast(s, node, q):
    rank = len(q)
    if len(node.outputs) != 1 or not _rank_is(s, node.outputs, rank):
        return None
    data = []
    for slot, name in enumerate(node.inputs):
        if not name:
            continue
        shape = s.shape(name)
        if shape is None or len(shape) > rank:
            return None
        if s.uses.const(name) is None and len(shape) not in (0, rank):
            return None
        data.append((slot, "bcast"))
    return _Plan(data, [q])


def _concat(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or len(node.outputs) != 1 or not _rank_is(s, node.inputs + node.outputs, rank):
        return None
    return _Plan([(i, "perm") for i, n in enumerate(node.inputs) if n], [q], {"axis": q[axis]})


def _split(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or not _rank_is(s, [node.inputs[0]] + node.outputs, rank):
        return None
    return _Plan([(0, "perm")], [q] * len(node.outputs), {"axis": q[axis]})


def _single_axis(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return _Plan([(0, "perm")], [q], {"axis": q[axis]})


def _single_axis_multi(s, node, q):
    rank = len(q)
    axis = _axis(attrs_of(node)["axis"], rank)
    if axis is None or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return _Plan([(0, "perm")], [q] * len(node.outputs), {"axis": q[axis]})


def _arg(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    axis = _axis(attrs["axis"], rank)
    if axis is None or len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1], rank):
        return None
    return _Plan([(0, "perm")], [_reduced_perm(q, [axis], attrs["keepdims"])], {"axis": q[axis]})


def _reduce(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1], rank):
        return None
    axes_name = node.inputs[1] if len(node.inputs) > 1 else ""
    if not axes_name or s.uses.const(axes_name) is not None and s.uses.const(axes_name).size == 0:
        if attrs["noop_with_empty_axes"]:
            return _Plan([(0, "perm")], [q])
        return _Plan([(0, "perm")], [_reduced_perm(q, list(range(rank)), attrs["keepdims"])])
    axes = _const_axes(s, axes_name, rank)
    if axes is None:
        return None
    dtype = s.uses.const(axes_name).dtype
    new_axes = np.array(sorted(q[a] for a in axes), dtype=dtype)
    return _Plan([(0, "perm")], [_reduced_perm(q, axes, attrs["keepdims"])], params={1: new_axes})


def _slice(s, node, q):
    rank = len(q)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    starts = s.shape(node.inputs[1]) if len(node.inputs) > 1 else None
    if starts is None or len(starts) != 1 or not isinstance(starts[0], int):
        return None
    axes_name = node.inputs[3] if len(node.inputs) > 3 else ""
    if axes_name:
        axes = _const_axes(s, axes_name, rank)
        dtype = None if axes is None else s.uses.const(axes_name).dtype
    else:
        axes, dtype = list(range(starts[0])), s.graph.values[node.inputs[1]].dtype or "int64"
    if axes is None:
        return None
    return _Plan([(0, "perm")], [q], params={3: np.array([q[a] for a in axes], dtype=dtype)})


def _pad(s, node, q):
    rank = len(q)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    pads = s.uses.const(node.inputs[1]) if len(node.inputs) > 1 else None
    if pads is None:
        return None
    axes_name = node.inputs[3] if len(node.inputs) > 3 else ""
    if axes_name:
        axes = _const_axes(s, axes_name, rank)
        if axes is None:
            return None
        new_axes = np.array([q[a] for a in axes], dtype=s.uses.const(axes_name).dtype)
        return _Plan([(0, "perm")], [q], params={3: new_axes})
    pads = pads.reshape(-1)
    if pads.size != 2 * rank:
        return None
    inv = inverse(q)
    new_pads = np.concatenate([pads[:rank][list(inv)], pads[rank:][list(inv)]])
    return _Plan([(0, "perm")], [q], params={1: new_pads})


def _resize(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    if attrs["axes"]:
        axes = [_axis(a, rank) for a in attrs["axes"]]
        if None in axes:
            return None
        return _Plan([(0, "perm")], [q], {"axes": [q[a] for a in axes]})
    inv, params = list(inverse(q)), {}
    for slot in (1, 2, 3):
        name = node.inputs[slot] if len(node.inputs) > slot else ""
        if not name:
            continue
        data = s.uses.const(name)
        if data is None:
            return None
        data = data.reshape(-1)
        if data.size == 0:
            continue
        if slot == 1 and data.size == 2 * rank:
            params[slot] = np.concatenate([data[:rank][inv], data[rank:][inv]])
        elif slot > 1 and data.size == rank:
            params[slot] = data[inv]
        else:
            return None
    return _Plan([(0, "perm")], [q], params=params)


def _quantize(s, node, q):
    rank = len(q)
    attrs = attrs_of(node)
    axis = _axis(attrs["axis"], rank)
    if attrs["block_size"] or axis is None or len(node.outputs) != 1:
        return None
    if not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return _Plan([(0, "perm")], [q], {"axis": q[axis]})


def _mvn(s, node, q):
    rank = len(q)
    axes = [_axis(a, rank) for a in attrs_of(node)["axes"]]
    if None in axes or len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return _Plan([(0, "perm")], [q], {"axes": sorted(q[a] for a in axes)})


def _place_ones(order, inserted) -> list:
    """`order`: logical axes in stored order; insert each axis of `inserted` (sorted)
    right after the logical axis before it (at the front for axis 0)."""
    order = list(order)
    for axis in sorted(inserted):
        order.insert(order.index(axis - 1) + 1 if axis > 0 else 0, axis)
    return order


def _unsqueeze(s, node, q):
    rank = len(q)
    out = s.shape(node.outputs[0]) if len(node.outputs) == 1 else None
    if out is None or len(node.inputs) < 2 or not _rank_is(s, node.inputs[:1], rank):
        return None
    axes = _const_axes(s, node.inputs[1], len(out))
    if axes is None:
        return None
    kept = [i for i in range(len(out)) if i not in axes]  # logical output axis of input axis j
    stored_in = inverse(q)  # logical input axis at each stored position
    order = _place_ones([kept[j] for j in stored_in], axes)
    out_perm = tuple(order.index(i) for i in range(len(out)))
    new_axes = np.array(sorted(order.index(a) for a in axes), dtype=s.uses.const(node.inputs[1]).dtype)
    return _Plan([(0, "perm")], [out_perm], params={1: new_axes})


def _squeeze(s, node, q):
    rank = len(q)
    shape = s.shape(node.inputs[0])
    if len(node.outputs) != 1 or not _rank_is(s, node.inputs[:1], rank):
        return None
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = _const_axes(s, node.inputs[1], rank)
        dtype = None if axes is None else s.uses.const(node.inputs[1]).dtype
    else:
        axes, dtype = [a for a, d in enumerate(shape) if d == 1], np.int64
        if any(not isinstance(d, int) for d in shape):
            return None
    if axes is None:
        return None
    new_axes = np.array(sorted(q[a] for a in axes), dtype=dtype)
    return _Plan([(0, "perm")], [_reduced_perm(q, axes, 0)], params={1: new_axes})


def _tile(s, node, q):
    rank = len(q)
    repeats = s.uses.const(node.inputs[1]) if len(node.inputs) > 1 else None
    if repeats is None or repeats.size != rank or len(node.outputs) != 1:
        return None
    if not _rank_is(s, node.inputs[:1] + node.outputs, rank):
        return None
    return _Plan([(0, "perm")], [q], params={1: repeats.reshape(-1)[list(inverse(q))]})


def _reshape_groups(shape_in, shape_out) -> Optional[list]:
    """Split a reshape into (input axes, output axes) groups of equal size, in order;
    size-1 axes form groups of their own with nothing on the other side. A symbolic
    dim must meet the same symbol alone. None when that is impossible."""
    groups, i, j = [], 0, 0
    while i < len(shape_in) or j < len(shape_out):
        if i < len(shape_in) and shape_in[i] == 1:
            groups.append(([i], []))
            i += 1
            continue
        if j < len(shape_out) and shape_out[j] == 1:
            groups.append(([], [j]))
            j += 1
            continue
        if i >= len(shape_in) or j >= len(shape_out):
            return None
        if isinstance(shape_in[i], str) or isinstance(shape_out[j], str):
            if shape_in[i] != shape_out[j]:
                return None
            groups.append(([i], [j]))
            i, j = i + 1, j + 1
            continue
        ins, outs, p_in, p_out = [i], [j], shape_in[i], shape_out[j]
        i, j = i + 1, j + 1
        while p_in != p_out:
            if p_in < p_out and i < len(shape_in) and isinstance(shape_in[i], int) and shape_in[i] != 1:
                ins.append(i)
                p_in, i = p_in * shape_in[i], i + 1
            elif p_out < p_in and j < len(shape_out) and isinstance(shape_out[j], int) and shape_out[j] != 1:
                outs.append(j)
                p_out, j = p_out * shape_out[j], j + 1
            else:
                return None
        groups.append((ins, outs))
    return groups


def _reshape(s, node, q):
    """A Reshape that merges or splits axes which stay next to each other, in order,
    in the permuted layout (Keras UpSampling2D's repeat: (N,H,2,W,C) -> (N,2H,W,C))."""
    rank = len(q)
    shape_in = s.shape(node.inputs[0])
    shape_out = s.shape(node.outputs[0]) if len(node.outputs) == 1 else None
    if shape_out is None or not _rank_is(s, node.inputs[:1], rank) or s.uses.const(node.inputs[1]) is None:
        return None
    groups = _reshape_groups(shape_in, shape_out)
    if groups is None:
        return None
    group_of = {a: g for g, (ins, _) in enumerate(groups) for a in ins}
    order = []
    stored_in = [a for a in inverse(q) if shape_in[a] != 1]  # logical input axes in stored order
    k = 0
    while k < len(stored_in):
        ins, outs = groups[group_of[stored_in[k]]]
        if stored_in[k:k + len(ins)] != ins:
            return None  # the group's axes are not together, in order, in the stored layout
        order.extend(outs)
        k += len(ins)
    order = _place_ones(order, [j for j, d in enumerate(shape_out) if d == 1])
    symbols = [d for d in shape_out if not isinstance(d, int)]
    if len(symbols) > 1 or sorted(order) != list(range(len(shape_out))):
        return None
    target = np.array([shape_out[i] if isinstance(shape_out[i], int) else -1 for i in order], np.int64)
    out_perm = tuple(order.index(i) for i in range(len(shape_out)))
    return _Plan([(0, "perm")], [out_perm], params={1: target})


_RULES = {op: _unary for op in UNARY}
_RULES.update({op: _broadcast for op in BROADCAST})
_RULES.update({op: _single_axis for op in SINGLE_AXIS})
_RULES.update({op: _reduce for op in REDUCE})
_RULES.update({
    "Concat": _concat, "Split": _split, "TopK": _single_axis_multi, "ArgMax": _arg,
    "ArgMin": _arg, "Slice": _slice, "Pad": _pad, "Resize": _resize,
    "QuantizeLinear": _quantize, "DequantizeLinear": _quantize,
    "MeanVarianceNormalization": _mvn, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze,
    "Tile": _tile, "Reshape": _reshape,
})
