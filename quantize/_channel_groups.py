"""Channel groups for structured pruning: which output channels must go together, and
what reads them (used by quantize/channel_pruning.py).

A *space* is one set of output channels created by a prunable layer (a Conv or
ConvTranspose with group=1, or a Gemm, with a constant weight). Every value computed from those
channels carries a *layout*: along its channel `axis`, a list of segments
(space, n channels) or (None, n) for channels nobody prunes (a Concat with an
unpruned input), each channel spanning `inner` consecutive elements (inner > 1 after
a Flatten of an [N, C, H, W] map: C*H*W columns).

Algorithm, one walk over the nodes in topological order:
1. A prunable layer's output gets a new space (its node is a "source" member).
2. Channel-wise readers pass the layout on: activations and other element-wise unary
   ops, pools, Resize/Pad/Slice that keep the channel axis, BatchNormalization and
   element-wise binary ops (Add, Mul, PRelu...: per-channel constants are sliced),
   Flatten / a flatten-like Reshape (inner grows), Transpose/Squeeze/Unsqueeze (the
   axis moves), Concat (segments concatenate; on another axis the inputs' spaces are
   joined), a depthwise Conv (its channels follow its input's: a "depthwise" member).
3. Two layouts meeting in an element-wise op (a residual Add, also the fused residual
   input R of a Conv) must remove the same channels: their spaces are joined
   (union-find), so a residual stream and every layer adding into it form one group.
4. "Sinks" lose input channels: a Conv with group=1 (weight axis 1), a ConvTranspose
   with group=1 (weight axis 0) and a Gemm (the rows/columns of B that the flattened
   channels multiply).
5. Anything else that reads a layout (Reshape with a shape naming the channel count,
   Shape, Split, Softmax over the channels, a grouped conv, an unknown op...) cannot
   be fixed: the spaces get a *blocker*, a one-line reason naming the node and the
   rule. A layout that is a graph output marks its spaces as reaching an output
   (the model's interface never changes); so does a graph output computed from a
   blocked reader without another layer in between (the classifier's Softmax/ArgMax).
Nothing is modified here; `ChannelGroups` is the plan the pruner applies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mobconv.ops.registry import get_spec

UNARY = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
         "Celu", "ThresholdedRelu", "Softplus", "Softsign", "Mish", "Gelu", "Erf", "Exp",
         "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin",
         "Cos", "Identity", "Dropout", "Cast", "Clip")
BINARY = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "PRelu", "Pow")
SPATIAL = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
           "Resize", "Upsample", "Pad", "Slice")
REDUCE = ("ReduceMean", "ReduceMax", "ReduceMin")  # of a constant plane: the constant
PER_CHANNEL = ("BatchNormalization", "InstanceNormalization")
CONSUMERS = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # read channels, output new ones


@dataclass
class Layout:
    axis: int
    segments: tuple  # ((space id or None, channels), ...)
    inner: int = 1

    @property
    def channels(self) -> int:
        return sum(n for _, n in self.segments)

    @property
    def length(self) -> int:
        return self.channels * self.inner


@dataclass
class Space:
    id: int
    size: int
    members: list = field(default_factory=list)   # [(node, "source" | "depthwise", offset)]
    blockers: list = field(default_factory=list)  # one-line reasons
    outputs: list = field(default_factory=list)   # graph outputs its channels reach


@dataclass
class ChannelGroups:
    spaces: dict                 # id -> Space (every space; `root` gives its group)
    parent: dict                 # union-find
    layouts: dict                # value name -> Layout
    sinks: list                  # [(node, Layout of its input 0)]
    constants: list              # [(node, input index, axis in the constant, Layout)]
    sizes: list                  # [(Resize node, Layout)]: its constant `sizes` names C
    order: list                  # [node] that carry layouts, topological: constant propagation
    split: dict = field(default_factory=dict)  # space id -> the segments it was split into

    def expand(self, segments) -> list:
        """`segments` with every split space replaced by its parts."""
        result = []
        for sid, n in segments:
            if sid is not None and sid in self.split:
                result += self.expand(self.split[sid])
            else:
                result.append((sid, n))
        return result

    def root(self, sid: int) -> int:
        while self.parent[sid] != sid:
            self.parent[sid] = self.parent[self.parent[sid]]
            sid = self.parent[sid]
        return sid

    def groups(self) -> dict:
        """root id -> Space with the members, blockers and outputs of the whole group."""
        result = {}
        for sid, space in self.spaces.items():
            if sid in self.split:
                continue
            r = self.root(sid)
            group = result.setdefault(r, Space(r, space.size))
            group.members += [m for m in space.members if m not in group.members]
            group.blockers += space.blockers
            group.outputs += space.outputs
        return result

    def keep_elements(self, layout: Layout, keep: dict) -> np.ndarray:
        """Indices along the layout's axis that survive, given root id -> kept channels."""
        parts, offset = [], 0
        for sid, n in self.expand(layout.segments):
            kept = np.arange(n) if sid is None else np.asarray(keep.get(self.root(sid), np.arange(n)))
            parts.append(kept + offset)
            offset += n
        channels = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return (channels[:, None] * layout.inner + np.arange(layout.inner)[None, :]).reshape(-1)


def _int_shape(graph, name) -> Optional[tuple]:
    value = graph.values.get(name) if name else None
    return None if value is None or value.shape is None else tuple(value.shape)


def _const(graph, name):
    if not name or name in graph.inputs:
        return None
    value = graph.values.get(name)
    return None if value is None else value.data


def is_depthwise(node, graph) -> bool:
    w = _const(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    x = _int_shape(graph, node.inputs[0])
    group = int(node.attrs.get("group", 1) or 1)
    return (w is not None and x is not None and len(x) >= 3 and group > 1 and x[1] == group
            and w.shape[0] == group and w.shape[1] == 1)


def is_source(node, graph) -> bool:
    """A layer whose output channels can be removed: Conv/ConvTranspose group=1 or Gemm,
    with a constant float weight."""
    if node.op in ("Conv", "ConvTranspose"):
        w = _const(graph, node.inputs[1]) if len(node.inputs) > 1 else None
        return (w is not None and w.dtype.kind == "f" and w.ndim >= 3
                and int(node.attrs.get("group", 1) or 1) == 1)
    if node.op == "Gemm":
        b = _const(graph, node.inputs[1]) if len(node.inputs) > 1 else None
        y = _int_shape(graph, node.outputs[0])
        return b is not None and b.dtype.kind == "f" and b.ndim == 2 and y is not None and len(y) == 2
    return False


class _Walk:
    def __init__(self, graph):
        self.graph = graph
        self.groups = ChannelGroups({}, {}, {}, [], [], [], [])
        self.taint: dict = {}  # value -> spaces whose channels reach it through a blocked op

    # ---- spaces ---------------------------------------------------------------------
    def new_space(self, size, node, kind) -> int:
        sid = len(self.groups.spaces)
        self.groups.spaces[sid] = Space(sid, size, [(node, kind, 0)])
        self.groups.parent[sid] = sid
        return sid

    def block(self, layout: Layout, reason: str) -> None:
        for sid, _ in self.groups.expand(layout.segments):
            if sid is not None:
                self.groups.spaces[sid].blockers.append(reason)

    def join(self, a: Layout, b: Layout) -> bool:
        """Make two layouts remove the same channels; False when their structures differ.
        A fresh space meeting several segments (an SE scale or a conv's residual input on a
        Concat) is split into them instead."""
        groups = self.groups
        ea, eb = groups.expand(a.segments), groups.expand(b.segments)
        if a.inner != b.inner:
            return False
        if [(s is None, n) for s, n in ea] != [(s is None, n) for s, n in eb]:
            for one, other in ((ea, eb), (eb, ea)):
                if len(one) == 1 and self.splittable(one[0][0]) and \
                        one[0][1] == sum(n for _, n in other):
                    self.split_space(one[0][0], other)
                    return True
            return False
        for (sa, _), (sb, _) in zip(ea, eb):
            if sa is not None:
                ra, rb = groups.root(sa), groups.root(sb)
                if ra != rb:
                    groups.parent[rb] = ra
        return True

    def splittable(self, sid) -> bool:
        parent = self.groups.parent
        return sid is not None and parent[sid] == sid and not any(
            p == sid for other, p in parent.items() if other != sid)

    def split_space(self, sid, segments) -> None:
        space = self.groups.spaces[sid]
        self.groups.split[sid] = tuple(segments)
        offset = 0
        for sub, n in segments:
            if sub is not None:
                part = self.groups.spaces[sub]
                part.members += [(node, kind, o + offset) for node, kind, o in space.members]
                part.blockers += space.blockers
                part.outputs += space.outputs
            offset += n

    # ---- the walk -------------------------------------------------------------------
    def run(self):
        graph, layouts, taint = self.graph, self.groups.layouts, self.taint
        for node in graph.nodes:
            ins = [layouts.get(i) if i else None for i in node.inputs]
            if any(ins) or is_source(node, graph):
                self.visit(node, ins)
            tainted = set().union(*(taint.get(i, ()) for i in node.inputs if i))
            if tainted and node.op not in CONSUMERS:
                for out in node.outputs:
                    taint.setdefault(out, set()).update(tainted)
        for name in graph.outputs:
            reached = set(taint.get(name, ()))
            if name in layouts:
                reached.update(sid for sid, _ in self.groups.expand(layouts[name].segments)
                               if sid is not None)
            for sid in reached:
                self.groups.spaces[sid].outputs.append(name)
        return self.groups

    def visit(self, node, ins) -> None:
        where = f"{node.op} {node.name!r}"
        layouts = self.groups.layouts
        handled = self.visit_known(node, ins, where)
        if handled is True:
            self.groups.order.append(node)
            return
        reason = handled if isinstance(handled, str) else (
            f"{where} reads them and is not a channel-wise op channel pruning can fix")
        for layout in ins:
            if layout is not None:
                self.block(layout, reason)
                if node.op not in CONSUMERS:  # e.g. the classifier's Softmax: outputs reached
                    for out in node.outputs:
                        self.taint.setdefault(out, set()).update(
                            sid for sid, _ in self.groups.expand(layout.segments) if sid is not None)
        for out in node.outputs:
            layouts.pop(out, None)

    def visit_known(self, node, ins, where):
        """True when the node was handled (its output layouts set), else a reason or False."""
        graph, op = self.graph, node.op
        if op in ("Shape", "Size"):
            return f"{where} reads the channel count"
        if op in ("Split", "Gather", "SpaceToDepth", "DepthToSpace", "LRN", "Softmax",
                  "LogSoftmax", "MatMul"):
            return f"{where} mixes or splits the channels (not supported by channel pruning)"
        outputs = [o for o in node.outputs if o]
        if len(outputs) != 1 or outputs[0] != node.outputs[0]:
            return f"{where} has several outputs"
        out = outputs[0]
        shape = _int_shape(graph, out)
        if shape is None:
            return f"{where}: the output's shape is unknown"
        if op in ("Conv", "ConvTranspose"):
            return self.conv(node, ins, where, out)
        if op == "Gemm":
            return self.gemm(node, ins, where, out)
        x = ins[0]
        if op in REDUCE:
            return self.reduce(node, ins, where, out, shape)
        if op in UNARY or op in SPATIAL or op in PER_CHANNEL:
            if x is None or any(ins[1:]):
                return f"{where} reads them as a parameter"
            in_shape = _int_shape(graph, node.inputs[0])
            if op in SPATIAL + PER_CHANNEL and (x.inner != 1 or x.axis != 1):
                return f"{where} reads them on another axis than its channel axis"
            if len(shape) != len(in_shape) or shape[x.axis] != in_shape[x.axis]:
                return f"{where} changes the channel count"
            if op in ("Slice", "Pad"):
                if not self.keeps_axis(node, x.axis, len(in_shape)):
                    return f"{where} works along the channel axis"
            if op == "Resize" and len(node.inputs) > 3 and node.inputs[3]:
                if _const(graph, node.inputs[3]) is None:
                    return f"{where} has output sizes computed at run time"
                self.groups.sizes.append((node, x))  # its channel entry follows the pruning
            for i in range(1, len(node.inputs)):
                data = _const(graph, node.inputs[i])
                if op == "Resize" and i == 3:
                    continue
                if op in PER_CHANNEL and node.inputs[i]:
                    if data is None or data.ndim != 1 or data.shape[0] != x.length:
                        return f"{where}: parameter {node.inputs[i]!r} is not a constant per channel"
                    self.groups.constants.append((node, i, 0, x))
            self.groups.layouts[out] = x
            return True
        if op in BINARY:
            return self.elementwise(node, ins, where, out, shape)
        if op == "Concat":
            return self.concat(node, ins, where, out, shape)
        if op in ("Flatten", "Reshape"):
            return self.flatten(node, ins, where, out, shape)
        if op in ("Transpose", "Squeeze", "Unsqueeze"):
            return self.move_axis(node, ins, where, out, shape)
        return False

    def keeps_axis(self, node, axis, rank) -> bool:
        graph = self.graph
        if node.op == "Slice":
            given = len(node.inputs) > 3 and node.inputs[3]
            axes = _const(graph, node.inputs[3]) if given else _const(graph, node.inputs[1])
            if axes is None:
                return False
            axes = axes.reshape(-1) if given else range(axes.size)
            return axis not in [int(a) % rank for a in axes]
        if node.op == "Pad":
            pads = _const(graph, node.inputs[1])
            if pads is None or (len(node.inputs) > 3 and node.inputs[3]):
                return False
            pads = pads.reshape(-1)
            return len(pads) == 2 * rank and pads[axis] == 0 and pads[axis + rank] == 0
        return True

    def reduce(self, node, ins, where, out, shape):
        """ReduceMean/Max/Min over other axes than the channels' (x.mean((2, 3)) before a
        classifier): the layout passes on, its axis moved when the reduced dims go."""
        x = ins[0]
        if x is None or any(ins[1:]):
            return f"{where} reads them as its axes"
        attrs = get_spec(node.op).resolve_attrs(node)
        axes = attrs.get("axes")
        if len(node.inputs) > 1 and node.inputs[1]:
            data = _const(self.graph, node.inputs[1])
            if data is None:
                return f"{where} has axes computed at run time"
            axes = list(data.reshape(-1))
        rank = len(_int_shape(self.graph, node.inputs[0]))
        axes = [int(a) % rank for a in axes or ()]
        if not axes or x.axis in axes or x.inner != 1:
            return f"{where} reduces over the channel axis"
        axis = x.axis if attrs.get("keepdims", 1) else x.axis - sum(1 for a in axes if a < x.axis)
        self.groups.layouts[out] = Layout(axis, x.segments, x.inner)
        return True

    def conv(self, node, ins, where, out):
        graph = self.graph
        x = ins[0]
        r = ins[3] if len(ins) > 3 else None
        if any(ins[1:3]):
            return f"{where} reads them as a weight or bias"
        result = None
        if x is not None:
            if _const(graph, node.inputs[1]) is None:
                return f"{where} has a weight computed at run time"
            if x.axis != 1 or x.inner != 1:
                return f"{where} reads them on another axis than its channel axis"
            if is_depthwise(node, graph) and node.op == "Conv":
                offset = 0
                for sid, n in self.groups.expand(x.segments):
                    if sid is not None:
                        self.groups.spaces[sid].members.append((node, "depthwise", offset))
                    offset += n
                result = x
            elif int(node.attrs.get("group", 1) or 1) != 1:
                return (f"{where} is a grouped convolution (group={node.attrs.get('group')}): "
                        "its groups need equal input channel counts")
            else:
                self.groups.sinks.append((node, x))
        if result is None and is_source(node, graph):
            w = _const(graph, node.inputs[1])
            m = int(w.shape[1] if node.op == "ConvTranspose" else w.shape[0])
            result = Layout(1, ((self.new_space(m, node, "source"), m),))
        if r is None and len(node.inputs) > 3 and node.inputs[3] and result is not None:
            self.block(result, f"{where} adds its output to {node.inputs[3]!r} (residual input), "
                               "whose channels are not pruned")
        if r is not None:
            if result is None:
                self.block(r, f"{where} adds them (residual input) to channels that are not pruned")
            elif not self.join(result, r):
                self.block(r, f"{where} adds them (residual input) to differently built channels")
                self.block(result, f"{where} adds differently built channels as its residual input")
        if result is not None:
            self.groups.layouts[out] = result
        return True

    def gemm(self, node, ins, where, out):
        graph = self.graph
        a = ins[0]
        if any(ins[1:]):
            return f"{where} reads them as B or C"
        attrs = get_spec("Gemm").resolve_attrs(node)
        if a is not None:
            if _const(graph, node.inputs[1]) is None or attrs["transA"] or a.axis != 1:
                return f"{where} reads them other than as the rows of a constant weight"
            self.groups.sinks.append((node, a))
        if is_source(node, graph):
            b = _const(graph, node.inputs[1])
            m = int(b.shape[0] if attrs["transB"] else b.shape[1])
            self.groups.layouts[out] = Layout(1, ((self.new_space(m, node, "source"), m),))
        return True

    def elementwise(self, node, ins, where, out, shape):
        graph, rank = self.graph, len(shape)
        ref, axis = None, None
        for name, layout in zip(node.inputs, ins):
            if layout is None:
                continue
            in_shape = _int_shape(graph, name)
            a = layout.axis + rank - len(in_shape)
            if in_shape[layout.axis] == 1 and shape[a] != 1:  # one channel broadcast: kept
                self.block(layout, f"{where} broadcasts them over more channels")
                continue
            if ref is None:
                ref, axis = layout, a
            elif a != axis or not self.join(ref, layout):
                return f"{where} combines channels that are pruned differently (different layouts)"
        if ref is None:
            return True  # only broadcast single channels: the output keeps no layout
        for i, (name, layout) in enumerate(zip(node.inputs, ins)):
            if layout is not None or not name:
                continue
            other = _int_shape(graph, name)
            a = axis - (rank - len(other))
            if a < 0 or other[a] == 1:
                continue
            if _const(graph, name) is None:
                return f"{where} combines them with {name!r}, whose channels are not pruned"
            self.groups.constants.append((node, i, a, ref))
        self.groups.layouts[out] = Layout(axis, ref.segments, ref.inner)
        return True

    def concat(self, node, ins, where, out, shape):
        graph, rank = self.graph, len(shape)
        axis = int(node.attrs.get("axis")) % rank
        first = next(l for l in ins if l is not None)
        if first.axis == axis:
            segments = []
            for name, layout in zip(node.inputs, ins):
                if layout is None:
                    n = _int_shape(graph, name)[axis]
                    if first.inner != 1 or not isinstance(n, int):
                        return f"{where} joins them with channels of unknown count"
                    segments.append((None, n))
                elif layout.axis != axis or layout.inner != first.inner:
                    return f"{where} joins them with channels laid out differently"
                else:
                    segments += list(layout.segments)
            self.groups.layouts[out] = Layout(axis, tuple(segments), first.inner)
            return True
        for layout in ins:
            if layout is None or layout.axis != first.axis or not self.join(first, layout):
                return f"{where} joins along another axis tensors whose channels differ"
        self.groups.layouts[out] = first
        return True

    def flatten(self, node, ins, where, out, shape):
        graph = self.graph
        x = ins[0]
        if x is None or any(ins[1:]):
            return f"{where} reads them as its shape"
        in_shape = _int_shape(graph, node.inputs[0])
        if node.op == "Reshape":
            target = _const(graph, node.inputs[1])
            if target is None:
                return f"{where} has a shape computed at run time"
            target = [int(t) for t in target.reshape(-1)]
            flatten_like = (len(target) == 2 and x.axis == 1 and target[1] == -1
                            and target[0] in (0, in_shape[0]))
            if not flatten_like:
                return (f"{where} has a constant shape {target} that depends on the channel "
                        "count (only [0, -1] can follow pruned channels)")
        elif int(node.attrs.get("axis", 1)) % len(in_shape) != x.axis or x.axis != 1:
            return f"{where} flattens at another axis than the channel axis"
        spatial = in_shape[x.axis + 1:]
        if any(not isinstance(d, int) for d in spatial):
            return f"{where} flattens dims of unknown size"
        self.groups.layouts[out] = Layout(1, x.segments, x.inner * int(np.prod(spatial, dtype=np.int64)))
        return True

    def move_axis(self, node, ins, where, out, shape):
        graph = self.graph
        x = ins[0]
        if x is None or any(ins[1:]):
            return f"{where} reads them as a parameter"
        rank_in = len(_int_shape(graph, node.inputs[0]))
        if node.op == "Transpose":
            perm = list(node.attrs.get("perm") or range(rank_in)[::-1])
            axis = perm.index(x.axis)
        else:
            axes = _const(graph, node.inputs[1]) if len(node.inputs) > 1 else None
            if axes is None:
                return f"{where} has axes computed at run time"
            if node.op == "Squeeze":
                axes = sorted(int(a) % rank_in for a in axes.reshape(-1))
                if x.axis in axes:
                    return f"{where} removes the channel axis"
                axis = x.axis - sum(1 for a in axes if a < x.axis)
            else:
                axis = x.axis
                for a in sorted(int(a) % len(shape) for a in axes.reshape(-1)):
                    if a <= axis:
                        axis += 1
        if shape[axis] != _int_shape(graph, node.inputs[0])[x.axis]:
            return f"{where} moves the channel axis in a way channel pruning cannot follow"
        self.groups.layouts[out] = Layout(axis, x.segments, x.inner)
        return True


def channel_groups(graph) -> ChannelGroups:
    """The channel spaces of `graph` (shapes inferred, nodes in topological order)."""
    return _Walk(graph).run()
