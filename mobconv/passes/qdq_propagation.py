"""QDQ propagation: move quantization boundaries through ops that only move values, so the
QDQ lowering (lower_qdq.py) finds `DequantizeLinear -> op -> QuantizeLinear` around the ops
that compute.

Why: a quantization-aware-trained TensorFlow graph (FakeQuant* -> QuantizeLinear ->
DequantizeLinear, frontends/tensorflow/ops/quant.py) fake-quantizes where TensorFlow's
QAT put a FakeQuant, not where an int8 runtime needs a boundary: the NHWC->NCHW layout
and Flatten put Transpose/Reshape between a DequantizeLinear and the Dense that reads it,
a MaxPool sits between a FakeQuant and the conv after it, a depthwise filter is
fake-quantized in TensorFlow's layout and reshaped into ours, and Keras QAT without BN
folding writes FakeQuant(weights) -> Conv -> FusedBatchNorm. onnxruntime meets the same
forms in ONNX QDQ models and propagates Q/DQ through layout ops (its QDQ propagation
transformer); this pass does the same, with exact rewrites only:

1. Weights: `DequantizeLinear(integer constant) -> Transpose/Reshape/Flatten/Squeeze/
   Unsqueeze` becomes one DequantizeLinear of the moved integer constant (numpy at
   conversion), the per-axis parameters following their axis (refused when the axis does
   not survive the reshape). Exact: the op moves the integers the DQ would have scaled.
2. BN after a conv with DQ'd integer weights (zero point 0 or positive BN factors):
   y = a * conv(x, s * q) + t with a = gamma / sqrt(var + eps) per output channel is
   conv(x, (s * |a|) * (sign(a) q)) + t, so the integer weights are kept and the scales
   become per channel s_c * |a_c| (as TFLite's converter folds BN into a quantized conv);
   the bias becomes b * a + t (quantized by the lowering with s_x * s_w'). The only
   change is the float32 rounding of each new scale (relative 2^-24).
3. Activations, forward: `DequantizeLinear -> L` for a per-tensor int8/uint8 DQ and L in
   Transpose, Reshape, Flatten, Squeeze, Unsqueeze, MaxPool, GlobalMaxPool, DepthToSpace,
   SpaceToDepth gets `L -> QuantizeLinear -> DequantizeLinear` with the DQ's parameters
   after it (unless L's readers are already QuantizeLinear nodes). Exact: L's outputs are
   input values, already on the grid.
4. Activations, backward through Relu: `X -> Relu -> QuantizeLinear` (X not a DQ and not
   a Conv/Gemm/MatMul, whose Relu the lowering fuses) gets `X -> Q -> DQ -> Relu` with the
   Q's parameters, so an Add before a Relu lowers. Exact: Q is monotone and the zero
   point is real 0 exactly, so Q(relu(x)) = Q(relu(DQ(Q(x)))).
Every inserted pair reads and writes fresh names next to the op it follows, so readers
and graph outputs keep their names; the lowering then turns L into an int8 op (its
parameters kept) and cancels the Q(DQ) pairs.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ..ops.registry import get_spec
from ._util import const as _const

_LAYOUT = ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze")
_FORWARD = _LAYOUT + ("MaxPool", "GlobalMaxPool", "DepthToSpace", "SpaceToDepth")
_INT8 = ("int8", "uint8")


def propagate_qdq(graph) -> bool:
    """The rewrites above, in place; True when the graph changed."""
    if not any(n.op == "DequantizeLinear" for n in graph.nodes):
        return False
    changed = _fold_weight_layout(graph)
    changed = _fold_batchnorm_into_quantized_conv(graph) or changed
    changed = _propagate_activations(graph) or changed
    if changed:
        graph.remove_unused_values()
    return changed


# ---- helpers ------------------------------------------------------------------------------


def dq_constant_params(graph, node):
    """(scale array, zero point array or None, axis or None) of a DQ/Q with constant
    parameters and no blocks, else None. The lowering's `boundary_params` starts here."""
    if node.op not in ("QuantizeLinear", "DequantizeLinear") or len(node.inputs) < 2:
        return None
    attrs = get_spec(node.op).resolve_attrs(node)
    if attrs["block_size"]:
        return None
    scale = _const(graph, node.inputs[1])
    zp_name = node.inputs[2] if len(node.inputs) > 2 else ""
    zp = _const(graph, zp_name) if zp_name else None
    if scale is None or (zp_name and zp is None) or scale.dtype != np.float32 or scale.ndim > 1:
        return None
    return scale, zp, (attrs["axis"] if scale.size > 1 else None)


def _weight_dq(graph, producers, name):
    """(DQ node, integer constant, its dq_constant_params) when `name` is made by a
    DequantizeLinear of a constant with constant parameters, else None."""
    dq = producers.get(name)
    if dq is None or dq.op != "DequantizeLinear":
        return None
    data = _const(graph, dq.inputs[0])
    params = dq_constant_params(graph, dq)
    if data is None or params is None:
        return None
    return dq, data, params


def _static(shape):
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def _reshaped_axis(in_shape, out_shape, axis):
    """The axis of `out_shape` holding exactly the slices of `in_shape`'s `axis`, or None."""
    before = int(np.prod(in_shape[:axis], dtype=np.int64))
    for j, d in enumerate(out_shape):
        if d == in_shape[axis] and int(np.prod(out_shape[:j], dtype=np.int64)) == before:
            return j
    return None


class _Edits:
    """Node replacements and insertions applied in one rebuild of graph.nodes."""

    def __init__(self, graph):
        self.g = graph
        self.replace = {}  # id(node) -> list of nodes in its place ([] drops it)
        self.before = {}   # id(node) -> nodes to put before it
        self.after = {}    # id(node) -> nodes to put after it
        self.origin = {}   # id(new node) -> id(the graph node it replaces)

    def drop(self, node) -> None:
        self.replace[self.origin.get(id(node), id(node))] = []

    def node(self, op, inputs, outputs, attrs, name):
        for out in outputs:
            if out not in self.g.values:
                self.g.add_value(out)
        return Node(op, name, list(inputs), list(outputs), dict(attrs))

    def commit(self) -> bool:
        if not (self.replace or self.before or self.after):
            return False
        nodes = []
        for n in self.g.nodes:
            nodes.extend(self.before.get(id(n), []))
            nodes.extend(self.replace.get(id(n), [n]))
            nodes.extend(self.after.get(id(n), []))
        self.g.nodes = nodes
        return True


# ---- 1. weights through layout ops ----------------------------------------------------------


def _fold_weight_layout(graph) -> bool:
    producers, readers = graph.producers(), graph.consumers()
    edits = _Edits(graph)
    for node in graph.nodes:
        if node.op not in _LAYOUT or not node.inputs or len(node.outputs) != 1:
            continue
        weight = _weight_dq(graph, producers, node.inputs[0])
        out = graph.values.get(node.outputs[0])
        if weight is None or out is None or not _static(out.shape):
            continue
        dq, data, params = weight
        if data.dtype.name not in ("int8", "uint8", "int16", "int32"):
            continue
        if any(_const(graph, i) is None for i in node.inputs[1:] if i):
            continue
        if node.outputs[0] in graph.inputs:
            continue
        scale, zp, axis = params
        if axis is not None:
            axis = axis + data.ndim if axis < 0 else axis
        if node.op == "Transpose":
            perm = get_spec("Transpose").resolve_attrs(node).get("perm") or list(range(data.ndim))[::-1]
            moved = np.transpose(data, perm)
            new_axis = None if axis is None else list(perm).index(axis)
        else:
            if int(np.prod(out.shape, dtype=np.int64)) != data.size:
                continue
            moved = data.reshape(out.shape)
            new_axis = None if axis is None else _reshaped_axis(data.shape, out.shape, axis)
            if axis is not None and new_axis is None:
                continue
        if tuple(moved.shape) != tuple(out.shape):
            continue
        const_name = graph.unique_name(f"{node.outputs[0]}/quantized")
        graph.add_constant(const_name, np.ascontiguousarray(moved))
        attrs = {} if new_axis is None else {"axis": new_axis}
        new = edits.node("DequantizeLinear", [const_name] + dq.inputs[1:], node.outputs, attrs,
                         node.name)
        edits.replace[id(node)] = [new]
        edits.origin[id(new)] = id(node)
        producers[node.outputs[0]] = new
        rest = [r for r in readers.get(dq.outputs[0], []) if r is not node]
        readers[dq.outputs[0]] = rest
        if not rest and dq.outputs[0] not in graph.outputs:
            edits.drop(dq)
    return edits.commit()


# ---- 2. BN after a conv with quantized weights ------------------------------------------------


def _fold_batchnorm_into_quantized_conv(graph) -> bool:
    producers, readers = graph.producers(), graph.consumers()
    edits = _Edits(graph)
    for conv in graph.nodes:
        if conv.op != "Conv" or len(conv.inputs) < 2 or len(conv.outputs) != 1:
            continue
        out = conv.outputs[0]
        bns = readers.get(out, [])
        if len(bns) != 1 or bns[0].op != "BatchNormalization" or out in graph.outputs:
            continue
        bn = bns[0]
        if bn.inputs[0] != out or any(o for o in bn.outputs[1:]):
            continue
        cattrs = get_spec("Conv").resolve_attrs(conv)
        if cattrs.get("activation"):
            continue
        battrs = get_spec("BatchNormalization").resolve_attrs(bn)
        if battrs.get("training_mode", 0):
            continue
        weight = _weight_dq(graph, producers, conv.inputs[1])
        if weight is None or weight[1].dtype.name not in _INT8 or weight[1].ndim < 2:
            continue
        dq, q, (scale, zp, axis) = weight
        m = q.shape[0]
        if axis is not None and (axis + q.ndim if axis < 0 else axis) != 0:
            continue
        stats = [_const(graph, n) for n in bn.inputs[1:5]]
        if len(stats) != 4 or any(s is None or s.size not in (1, m) for s in stats):
            continue
        gamma, beta, mean, var = (np.broadcast_to(s.astype(np.float64).reshape(-1), (m,)) for s in stats)
        denom = var + float(battrs["epsilon"])
        if not (denom > 0).all():
            continue
        a = gamma / np.sqrt(denom)
        t = beta - mean * a
        s = np.broadcast_to(scale.astype(np.float64).reshape(-1), (m,))
        z = np.broadcast_to((np.zeros(1, np.int64) if zp is None else zp.astype(np.int64)).reshape(-1), (m,))
        new_scale = (s * np.abs(a)).astype(np.float32)
        if not (np.isfinite(new_scale).all() and (new_scale > 0).all()):
            continue
        ints = q.astype(np.int64)
        neg = a < 0
        if neg.any():
            info = np.iinfo(q.dtype)
            flipped = -ints[neg]
            if z[neg].any() or flipped.min(initial=0) < info.min or flipped.max(initial=0) > info.max:
                continue
            ints = ints.copy()
            ints[neg] = flipped
        bias = np.zeros(m, np.float64)
        if len(conv.inputs) > 2 and conv.inputs[2]:
            b = _const(graph, conv.inputs[2])
            if b is None or b.dtype != np.float32 or b.size != m:
                continue
            bias = b.astype(np.float64).reshape(-1)
        new_bias = (bias * a + t).astype(np.float32)
        base = bn.outputs[0]
        w_name = graph.unique_name(f"{base}/folded_weight")
        graph.add_constant(w_name, ints.astype(q.dtype))
        s_name = graph.unique_name(f"{base}/folded_scale")
        graph.add_constant(s_name, new_scale)
        z_name = graph.unique_name(f"{base}/folded_zero_point")
        graph.add_constant(z_name, z.astype(q.dtype))
        b_name = graph.unique_name(f"{base}/folded_bias")
        graph.add_constant(b_name, new_bias)
        wdq = graph.unique_name(f"{base}/folded_weight_dq")
        edits.before[id(conv)] = [edits.node("DequantizeLinear", [w_name, s_name, z_name], [wdq],
                                             {"axis": 0}, wdq)]
        graph.values[wdq].dtype, graph.values[wdq].shape = "float32", tuple(q.shape)
        inputs = list(conv.inputs[:2]) + [b_name] + list(conv.inputs[3:])
        inputs[1] = wdq
        conv.inputs = inputs
        conv.outputs = [bn.outputs[0]]
        edits.replace[id(bn)] = []
        rest = [r for r in readers.get(dq.outputs[0], []) if r is not conv]
        readers[dq.outputs[0]] = rest
        if not rest and dq.outputs[0] not in graph.outputs:
            edits.drop(dq)
    return edits.commit()


# ---- 3./4. activations --------------------------------------------------------------------------


def _per_tensor_int8(graph, node):
    """(scale const name, zp const name) of a per-tensor int8/uint8 Q/DQ, else None."""
    params = dq_constant_params(graph, node)
    if params is None or params[2] is not None or params[0].size != 1 or len(node.inputs) < 3:
        return None
    int_name = node.inputs[0] if node.op == "DequantizeLinear" else node.outputs[0]
    value = graph.values.get(int_name)
    if value is None or value.dtype not in _INT8:
        return None
    return node.inputs[1], node.inputs[2]


def _pair(graph, edits, src: str, dst: str, scale: str, zp: str, dtype: str, shape, hint: str):
    """Q(src) -> DQ -> dst nodes (dst a fresh or existing float name)."""
    q_out = graph.unique_name(f"{hint}/quantized")
    graph.add_value(q_out, dtype, shape)
    q = edits.node("QuantizeLinear", [src, scale, zp], [q_out], {}, q_out)
    dq = edits.node("DequantizeLinear", [q_out, scale, zp], [dst], {},
                    graph.unique_name(f"{hint}/dequantized"))
    return [q, dq]


def _propagate_activations(graph) -> bool:
    producers, readers = graph.producers(), graph.consumers()
    edits = _Edits(graph)
    for node in graph.nodes:
        if node.op in _FORWARD:
            _forward(graph, edits, node, producers, readers)
        elif node.op == "Relu":
            _backward_relu(graph, edits, node, producers, readers)
    return edits.commit()


def _forward(graph, edits, node, producers, readers) -> None:
    if not node.inputs or not node.outputs or any(not o for o in node.outputs[:1]):
        return
    if node.op == "MaxPool" and any(o for o in node.outputs[1:]):
        return
    dq = producers.get(node.inputs[0])
    if dq is None or dq.op != "DequantizeLinear" or _const(graph, dq.inputs[0]) is not None:
        return
    boundary = _per_tensor_int8(graph, dq)
    if boundary is None:
        return
    if any(producers.get(i) is not None and producers[i].op == "DequantizeLinear"
           for i in node.inputs[1:] if i):
        return
    out = node.outputs[0]
    value = graph.values.get(out)
    if value is None or value.dtype not in (None, "float32"):
        return
    outs = readers.get(out, [])
    if not outs and out not in graph.outputs:
        return
    if outs and all(r.op == "QuantizeLinear" for r in outs) and out not in graph.outputs:
        return
    tmp = graph.unique_name(f"{out}/float")
    graph.add_value(tmp, "float32", value.shape)
    node.outputs = [tmp] + list(node.outputs[1:])
    dtype = graph.values[dq.inputs[0]].dtype
    edits.after[id(node)] = pair = _pair(graph, edits, tmp, out, *boundary, dtype, value.shape, out)
    producers[tmp], producers[out] = node, pair[1]  # a chain of layout ops: one walk


def _backward_relu(graph, edits, relu, producers, readers) -> None:
    if len(relu.inputs) != 1 or len(relu.outputs) != 1:
        return
    x, y = relu.inputs[0], relu.outputs[0]
    src = producers.get(x)
    if src is None or src.op in ("DequantizeLinear", "Conv", "Gemm", "MatMul", "QuantizeLinear"):
        return
    qs = readers.get(y, [])
    if not qs or y in graph.outputs or any(r.op != "QuantizeLinear" for r in qs):
        return
    boundaries = [_per_tensor_int8(graph, q) for q in qs]
    if any(b is None for b in boundaries):
        return
    first = [(_const(graph, b[0]), _const(graph, b[1])) for b in boundaries]
    if any(not (np.array_equal(s, first[0][0]) and np.array_equal(z, first[0][1])
                and s.dtype == first[0][0].dtype and z.dtype == first[0][1].dtype) for s, z in first):
        return
    value = graph.values.get(x)
    if value is None or value.dtype not in (None, "float32"):
        return
    dtype = graph.values[qs[0].outputs[0]].dtype
    tmp = graph.unique_name(f"{x}/requantized")
    graph.add_value(tmp, "float32", value.shape)
    edits.before[id(relu)] = _pair(graph, edits, x, tmp, *boundaries[0], dtype, value.shape, x)
    relu.inputs = [tmp]
