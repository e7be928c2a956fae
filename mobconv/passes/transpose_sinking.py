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
output is a new value named after the value it first came from, with one suffix:
`<original>_nchw` when it holds the original NHWC value in NCHW order, `<original>_t`
for other orders, the original name itself when it holds it in its original order again
and that name is free (a value moved back and forth, or by several runs of the pass,
never collects `_nchw_nchw_...`); the old name lives on only where a Transpose still
produces it. The per-op rules (which inputs permute, how
axes, pads, scales and Reshape targets map) are in `_transpose_rules.py`.
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from ..ir.graph import Node
from ._transpose_rules import RULES, compose, from_nchw, inverse, is_identity
from ._util import Uses, attrs_of

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


class _Sinker:
    def __init__(self, graph):
        self.graph = graph
        self.uses = Uses(graph)
        self.uses.has_readers("")  # build the index now: new nodes are linked as made
        self.flips: dict = {}  # id(node) -> times flipped
        self.origin: dict = {}  # new value -> (original value, perm): it is transpose(original, perm)
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
            plan = RULES[node.op](self, node, q)
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
                plan = RULES[member.op](self, member, q)
            self.flip(member, q, plan)
            self.flips[id(member)] = self.flips.get(id(member), 0) + 1
        return True

    def flippable(self, node) -> bool:
        if self.flips.get(id(node), 0) >= MAX_FLIPS_PER_NODE or node.op not in RULES:
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
                other_plan = RULES[other.op](self, other, q)
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
            stored = self.derived_name(name, inverse(out_perm))
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
            out = self.derived_name(source, tuple(perm))
            shape = None if value is None or value.shape is None else tuple(value.shape[p] for p in perm)
            graph.add_value(out, value.dtype if value else None, shape)
            self.made[(source, tuple(perm))] = out
        node = Node("Transpose", uses.unique_name(out + "_transpose"), [], [], {"perm": list(perm)})
        graph.nodes.append(node)
        uses.set_inputs(node, [source])
        uses.set_outputs(node, [out])
        return out

    def derived_name(self, source, perm) -> str:
        """A name for the new value transpose(source, perm): the name of the value it was
        first derived from with one suffix (`_nchw` for NHWC -> NCHW, `_t` for other
        orders), or that original name itself when the value holds it in its original
        order again and the name is free; never a chain of suffixes."""
        root, first = self.origin.get(source) or _origin_of(source, len(perm))
        total = None if first is None else compose(first, tuple(perm))
        if total is not None and is_identity(total) and root not in self.graph.values and root not in self.uses.outputs:
            name = root
        else:
            name = self.uses.unique_name(root + ("_nchw" if total == inverse(from_nchw(len(perm))) else "_t"))
        self.origin[name] = (root, total)
        return name

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


_SUFFIXES = re.compile(r"(?:_(nchw|t)(?:_\d+)?)+$")


def _origin_of(name, rank) -> tuple:
    """(original name, perm) for a value named by an earlier run of the pass (optimize
    runs it to a fixpoint): `<name>_nchw[_k]` holds <name> in NCHW order, `<name>_t[_k]`
    in an order no longer known (None)."""
    match = _SUFFIXES.search(name)
    if match is None or match.start() == 0:
        return name, tuple(range(rank))
    chain = match.group(0)
    once_nchw = chain.count("_nchw") == 1 and "_t" not in chain
    return name[:match.start()], (inverse(from_nchw(rank)) if once_nchw else None)


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
