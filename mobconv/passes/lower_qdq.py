"""QDQ lowering: `DequantizeLinear -> op -> QuantizeLinear` becomes ONE int8 op.

Why: a QDQ graph (onnxruntime's `quantize_static` output, PyTorch exports, our own
quantizer's `quantize/qdq.py`) states where the int8 tensors are, but computes every
op in float on fake-quantized values. The int8 representation of
docs/quantization.md is the same IR op whose tensors carry `Value.quant`: this pass
rewrites the first form into the second, so the reference computes the exact
integer arithmetic and the runtime's int8 kernels run.

Algorithm (decisions first, on the unchanged graph; then one rewrite):
0. Before: Q/DQ are moved through layout-only ops, weight DQs through the layout ops
   of the weight path, and a BatchNormalization after a conv with DQ'd integer weights
   into the weight scales (passes/qdq_propagation.py, exact rewrites).
1. Parameters: every Q/DQ whose scale and zero point are constants (not blocked)
   gets a `QuantParams` (per tensor, or per axis with the axis made non-negative).
2. `Q(DQ(a))` with equal parameters and dtype cancels: readers of the Q's output
   read `a` (the DQ stays while something else reads it).
3. A node N is lowered when its operands come from DQs (activations per tensor;
   Conv/Gemm/MatMul weights may be per output channel; a bias is an int32 DQ, or a
   float constant, quantized here with s_x * s_w[c]), each output's readers are
   only QuantizeLinear nodes with equal parameters (no graph output), and the op's
   integer rule covers it (`_LOWER`). A float Relu/Clip (constant bounds) between
   a Conv/Gemm/MatMul and its Q is fused into the int8 op's clamp range.
   Element-moving ops, pools, Resize and Clip must keep their input's parameters
   (onnxruntime writes them so); otherwise the op stays float between DQ and Q.
4. Rewrite: N reads the DQs' integer inputs (and int8 weight constants, now with
   their `quant`); N's output keeps the name T of the float tensor it wrote and
   becomes int8 with the Q's parameters (NAMING RULE: the int8 tensor that
   approximates float tensor T is named T); the Qs go and their readers read T.
   A Q output that is a graph output keeps its name instead (int8 end to end).
   DQs left without readers go. Every integer tensor at a Q/DQ boundary gets the
   boundary's `quant`, so the graph's int8 tensors all carry parameters.
5. An int8 Relu keeping its input's parameters right after an int8 Conv/Gemm/MatMul
   becomes that op's output range (bit-exact; `_fuse_int8_relu`).
Q at graph inputs and DQ at graph outputs stay: graph inputs/outputs keep names
and dtypes. Ops without an integer rule (Softmax, Sigmoid, ...) stay float
between their DQ and Q.
"""
from __future__ import annotations

import json
import math
from typing import Optional

import numpy as np

from ..ir.graph import QuantParams
from ..ops import quant_math as qm
from ..ops.registry import get_spec
from ._util import const as _const
from .qdq_propagation import dq_constant_params, propagate_qdq

_INT = ("int8", "uint8")
# ops that keep their input's parameters and compute exactly on the integers (quant_math)
_KEEP_PARAMS = set(qm.MOVE_OPS) | {"MaxPool", "GlobalMaxPool", "AveragePool", "GlobalAveragePool",
                                   "Resize", "Clip"}
_WEIGHTED = ("Conv", "Gemm", "MatMul")
_ACTIVATIONS = ("Relu", "Clip")
KEEP_FLOAT_KEY = "quantization.keep_float"  # metadata: JSON list of node names not lowered


def mark_imported(graph) -> None:
    """An imported quantized model (any QuantizeLinear/DequantizeLinear node or int8 tensor
    with parameters: a QDQ or QOperator ONNX model) computes with the requantization rule
    of the framework that quantized it: metadata `quantization.requantize` = "float32"
    (onnxruntime, PyTorch fbgemm/qnnpack, XNNPACK; docs/quantization.md section 2) unless
    the model already names one. Called by the ONNX frontend; our own quantizer's graphs
    keep the default ("fixed_point")."""
    if qm.REQUANTIZE_KEY in graph.metadata.extra:
        return
    if any(n.op in ("QuantizeLinear", "DequantizeLinear") for n in graph.nodes) or any(
            v.quant is not None for v in graph.values.values()):
        graph.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32


def lower_qdq(graph, dynamic: bool = False):
    """Lower every DQ -> op -> Q pattern of `graph` to int8 ops (in place); returns `graph`.
    dynamic (or metadata quantization.scheme = "dynamic"): also DQ(int8 W) -> MatMul/Gemm
    with float activations to dynamic-range int8 (passes/lower_dynamic.py).
    Q/DQ are first moved through layout-only ops (passes/qdq_propagation.py)."""
    propagate_qdq(graph)
    _Lowering(graph, dynamic).run()
    return graph


def lower_qdq_pass(graph) -> bool:
    """`lower_qdq` as a pipeline pass (mobconv.passes): True when the graph changed."""
    changed = propagate_qdq(graph)
    return _Lowering(graph).run() or changed


# ---- parameters of the boundary nodes -----------------------------------------------------


def boundary_params(graph, node) -> Optional[tuple]:
    """(QuantParams, integer dtype) of a Q/DQ node with constant parameters, else None.

    Blocked quantization and non-float32 DQ outputs are not lowered."""
    params = dq_constant_params(graph, node)
    if params is None:
        return None
    scale, zp, axis = params
    int_name = node.outputs[0] if node.op == "QuantizeLinear" else node.inputs[0]
    value = graph.values.get(int_name)
    dtype = value.dtype if value is not None else None
    if dtype not in ("int8", "uint8", "int16", "int32"):
        return None
    zps = np.zeros(scale.shape, np.int64) if zp is None else np.asarray(zp).astype(np.int64)
    if zps.shape != scale.shape:
        return None
    if scale.size == 1:
        return QuantParams([float(scale.reshape(-1)[0])], [int(zps.reshape(-1)[0])], None), dtype
    shape = value.shape
    if shape is None:
        return None
    axis = axis + len(shape) if axis < 0 else axis  # per-axis here: dq_constant_params gave it
    if not 0 <= axis < len(shape) or shape[axis] != scale.size:
        return None
    return QuantParams([float(s) for s in scale], [int(z) for z in zps], axis), dtype


def same_params(p: QuantParams, q: QuantParams) -> bool:
    """Equal float32 scales, zero points and (per-axis) axis."""
    if len(p.scales) != len(q.scales):
        return False
    if len(p.scales) > 1 and p.axis != q.axis:
        return False
    return (np.array_equal(np.float32(p.scales), np.float32(q.scales))
            and np.array_equal(np.int64(p.zero_points), np.int64(q.zero_points)))


def _fuse_int8_relu(graph) -> bool:
    """An int8 Relu with its input's parameters after an int8 Conv/Gemm/MatMul that has no
    activation and no other reader becomes the op's output range (docs section 4), which is
    bit-exact: clamping to [zp, max] = max(clamp(y), zp). The op takes the Relu's output
    name. (onnxruntime keeps Relu between Q/DQ pairs with symmetric activations.)"""
    producers, readers = graph.producers(), graph.consumers()
    fused = set()
    for relu in graph.nodes:
        if relu.op != "Relu" or len(relu.inputs) != 1:
            continue
        x, y = graph.values.get(relu.inputs[0]), graph.values.get(relu.outputs[0])
        src = producers.get(relu.inputs[0])
        if (src is None or src.op not in _WEIGHTED or x is None or y is None or x.quant is None
                or y.quant is None or len(src.outputs) != 1 or relu.inputs[0] in graph.outputs
                or len(readers.get(relu.inputs[0], [])) != 1 or x.dtype != y.dtype
                or len(x.quant.scales) != 1 or not same_params(x.quant, y.quant)
                or get_spec(src.op).resolve_attrs(src)["activation"]):
            continue
        src.attrs["activation"], src.attrs["activation_params"] = "Relu", []
        src.outputs = list(relu.outputs)
        fused.add(id(relu))
    if fused:
        graph.nodes = [n for n in graph.nodes if id(n) not in fused]
    return bool(fused)


def _rename_inputs(graph, renamed: dict) -> None:
    """Every node input (and graph output) named in `renamed` reads the new name, in one walk."""
    if not renamed:
        return
    for node in graph.nodes:
        if any(i in renamed for i in node.inputs):
            node.inputs = [renamed.get(i, i) for i in node.inputs]
    graph.outputs = [renamed.get(o, o) for o in graph.outputs]


# ---- the pass -----------------------------------------------------------------------------


class _Lowering:
    def __init__(self, graph, dynamic: bool = False):
        from .lower_dynamic import wants_dynamic

        self.g = graph
        self.dynamic = dynamic or wants_dynamic(graph)
        self.producer = graph.producers()
        self.readers = graph.consumers()
        self.params = {}  # id(Q/DQ node) -> (QuantParams, dtype)
        for node in graph.nodes:
            p = boundary_params(graph, node)
            if p is not None:
                self.params[id(node)] = p
        self.int_params = self._integer_tensor_params()
        self.added = False  # constants made while planning (dropped again if unused)
        # nodes the quantizer was told to keep float (quantize/qdq.py records them): their
        # DQ -> op -> Q stays as it is even where the op has an integer rule
        self.keep_float = set(json.loads(graph.metadata.extra.get(KEEP_FLOAT_KEY) or "[]"))
        self.mode = qm.requantize_mode(graph)  # the model's requantization rule

    # -- queries --
    def _integer_tensor_params(self) -> dict:
        """integer tensor name -> (params, dtype) agreed by every boundary node touching it;
        None where two boundaries disagree (such a tensor is not lowered through)."""
        found: dict = {}
        for node in self.g.nodes:
            p = self.params.get(id(node))
            if p is None:
                continue
            name = node.outputs[0] if node.op == "QuantizeLinear" else node.inputs[0]
            if name not in found:
                found[name] = p
            elif found[name] is not None and not (found[name][1] == p[1] and same_params(found[name][0], p[0])):
                found[name] = None
        return found

    def dq_source(self, name: str):
        """(DQ node, integer input, params, dtype) when float `name` is a DQ's output."""
        node = self.producer.get(name) if name else None
        if node is None or node.op != "DequantizeLinear" or id(node) not in self.params:
            return None
        p = self.int_params.get(node.inputs[0])
        if p is None:
            return None
        return node, node.inputs[0], p[0], p[1]

    def q_readers(self, name: str):
        """(Q nodes, params, dtype) when every reader of float `name` is a Q with the same
        parameters (and `name` is no graph output), else None."""
        if name in self.g.outputs or name in self.g.inputs:
            return None
        readers = self.readers.get(name, [])
        if not readers or any(r.op != "QuantizeLinear" or id(r) not in self.params for r in readers):
            return None
        first = self.params[id(readers[0])]
        for r in readers:
            p = self.params[id(r)]
            if p[1] != first[1] or not same_params(p[0], first[0]) or r.inputs[0] != name:
                return None
            if self.int_params.get(r.outputs[0]) is None:
                return None
        if len(first[0].scales) != 1 or first[1] not in _INT:
            return None
        if sum(r.outputs[0] in self.g.outputs for r in readers) > 1:
            return None  # two graph outputs cannot both become the op's one output
        return readers, first[0], first[1]

    # -- the rewrite --
    def run(self) -> bool:
        changed = self._cancel_pairs()
        if changed:
            self.__init__(self.g, self.dynamic)
        plans = []
        for node in list(self.g.nodes):
            if node.op in ("QuantizeLinear", "DequantizeLinear"):
                continue
            plan = _plan(self, node)
            if plan is not None:
                plans.append(plan)
        self.renamed = {}  # removed Q output -> the lowered op's output read instead
        for plan in plans:
            for old_out, (q_nodes, _, _) in zip(plan["float_outputs"], plan["outputs"]):
                kept = next((q.outputs[0] for q in q_nodes if q.outputs[0] in self.g.outputs), old_out)
                plan.setdefault("kept", []).append(kept)
                self.renamed.update({q.outputs[0]: kept for q in q_nodes if q.outputs[0] != kept})
        self.dropped = set()
        for plan in plans:
            self._apply(plan)
        if plans:
            self.g.nodes = [n for n in self.g.nodes if id(n) not in self.dropped]
            _rename_inputs(self.g, self.renamed)
        changed = changed or bool(plans)
        if self.dynamic:  # DQ(int8 W) -> MatMul/Gemm on float activations
            from .lower_dynamic import lower_dynamic

            if plans:
                self.producer, self.readers = self.g.producers(), self.g.consumers()
            changed = lower_dynamic(self) or changed
        if changed:
            self._drop_dead_boundaries()
        changed = _fuse_int8_relu(self.g) or changed
        self._annotate_boundaries()
        if changed or self.added:
            self.g.remove_unused_values()
        return changed

    def _cancel_pairs(self) -> bool:
        """Q(DQ(a)) with equal parameters: readers of the Q read `a`."""
        removed, renamed = set(), {}
        for node in self.g.nodes:
            if node.op != "QuantizeLinear" or id(node) not in self.params:
                continue
            src = self.producer.get(node.inputs[0])
            if src is None or src.op != "DequantizeLinear" or id(src) not in self.params or src.inputs[0] in renamed:
                continue
            (p, dt), (q, dq) = self.params[id(node)], self.params[id(src)]
            out = node.outputs[0]
            if dt != dq or not same_params(p, q) or out in self.g.outputs or src.inputs[0] in self.g.inputs:
                continue
            if self.g.values[src.inputs[0]].is_constant:
                continue  # a constant feeding a Q: leave it to constant folding
            renamed[out] = src.inputs[0]
            removed.add(id(node))
        if removed:
            self.g.nodes = [n for n in self.g.nodes if id(n) not in removed]
            _rename_inputs(self.g, renamed)
        return bool(removed)

    def _apply(self, plan) -> None:
        node, g = plan["node"], self.g
        node.inputs = [self.renamed.get(i, i) for i in plan["inputs"]]
        for name, params in plan["quant"].items():
            g.values[self.renamed.get(name, name)].quant = params
        if plan.get("activation"):
            node.attrs["activation"], node.attrs["activation_params"] = plan["activation"]
        self.dropped.update(id(n) for n in plan["drop"])
        if plan.get("activation"):  # the op writes the fused activation's output
            node.outputs = list(plan["float_outputs"])
        for old_out, kept, (q_nodes, params, dtype) in zip(plan["float_outputs"], plan["kept"], plan["outputs"]):
            self.dropped.update(id(q) for q in q_nodes)  # their readers read `kept` (self.renamed)
            value = g.values[old_out] if kept == old_out else g.values[kept]
            value.dtype, value.quant = dtype, params
            if value.shape is None:
                value.shape = g.values[old_out].shape
            node.outputs = [kept if o == old_out else o for o in node.outputs]

    def _drop_dead_boundaries(self) -> None:
        """DQ nodes nothing reads any more go (repeatedly: a DQ of a DQ'd ... chain)."""
        while True:
            read = set(self.g.outputs)
            for n in self.g.nodes:
                read.update(i for i in n.inputs if i)
            dead = [n for n in self.g.nodes if n.op == "DequantizeLinear" and n.outputs[0] not in read]
            if not dead:
                return
            ids = {id(n) for n in dead}
            self.g.nodes = [n for n in self.g.nodes if id(n) not in ids]

    def _annotate_boundaries(self) -> None:
        """The integer side of every remaining Q/DQ carries the boundary's parameters."""
        for node in self.g.nodes:
            p = boundary_params(self.g, node)
            if p is None:
                continue
            name = node.outputs[0] if node.op == "QuantizeLinear" else node.inputs[0]
            value = self.g.values.get(name)
            if value is None or value.is_constant or p[1] not in _INT + ("int16",):
                continue
            if value.quant is None and self.int_params.get(name) is not None:
                value.quant = p[0]


# ---- per-op plans -------------------------------------------------------------------------


def _plan(lw: _Lowering, node) -> Optional[dict]:
    """What lowering `node` means (new inputs, quant per tensor, outputs), or None."""
    spec = get_spec(node.op)
    if node.op not in qm.QUANTIZED and node.op not in _KEEP_PARAMS:
        return None
    if node.name in lw.keep_float:
        return None
    if not node.outputs or any(not o for o in node.outputs):
        return None
    plan = {"node": node, "inputs": list(node.inputs), "quant": {}, "drop": [], "outputs": [],
            "float_outputs": list(node.outputs)}
    attrs = spec.resolve_attrs(node)
    # outputs (with a float Relu/Clip to fuse between a weighted op and its Q)
    outs = []
    for out in node.outputs:
        q = lw.q_readers(out)
        if q is None and node.op in _WEIGHTED and len(node.outputs) == 1 and not attrs.get("activation"):
            fused = _fusible_activation(lw, out)
            if fused is not None and fused[0].name not in lw.keep_float:
                act_node, act, act_params = fused
                q = lw.q_readers(act_node.outputs[0])
                if q is not None:
                    plan["activation"] = (act, act_params)
                    plan["drop"].append(act_node)
                    plan["float_outputs"] = [act_node.outputs[0]]
        if q is None:
            return None
        outs.append(q)
    plan["outputs"] = outs
    out_dtype = outs[0][2]
    if any(o[2] != out_dtype for o in outs):
        return None
    rule = _RULES.get(node.op, _keep_params_rule)
    if not rule(lw, node, attrs, plan):
        return None
    return plan


def _fusible_activation(lw, name):
    """(node, activation, params) for a float Relu / constant-bound Clip that is the only
    reader of `name`."""
    readers = lw.readers.get(name, [])
    if len(readers) != 1 or readers[0].op not in _ACTIVATIONS or name in lw.g.outputs:
        return None
    act = readers[0]
    if act.op == "Relu":
        return act, "Relu", []
    bounds = []
    for i, default in ((1, -math.inf), (2, math.inf)):
        bname = act.inputs[i] if len(act.inputs) > i else ""
        data = _const(lw.g, bname) if bname else np.float32(default)
        if data is None or np.size(data) != 1:
            return None
        bounds.append(float(np.asarray(data).reshape(-1)[0]))
    if bounds[0] == 0 and bounds[1] == math.inf:
        return act, "Relu", []
    return act, "Clip", bounds


def _activation_input(lw, node, i, plan, out_dtype, per_tensor=True) -> bool:
    """Input i comes from a per-tensor DQ of the output's dtype: read its integer tensor."""
    src = lw.dq_source(node.inputs[i])
    if src is None:
        return False
    _, int_name, params, dtype = src
    if (per_tensor and len(params.scales) != 1) or dtype != out_dtype:
        return False
    plan["inputs"][i] = int_name
    plan["quant"][int_name] = QuantParams(list(params.scales), list(params.zero_points), None)
    return True


def _weight_input(lw, node, i, plan, axis) -> Optional[QuantParams]:
    """Input i is a DQ of an int8/uint8 tensor, per tensor or per slice along `axis`."""
    src = lw.dq_source(node.inputs[i])
    if src is None:
        return None
    _, int_name, params, dtype = src
    value = lw.g.values[int_name]
    if dtype not in _INT or (len(params.scales) > 1 and params.axis != axis):
        return None
    if len(params.scales) == 1:
        params = QuantParams(list(params.scales), list(params.zero_points), None)
    if value.is_constant and value.quant is not None and not same_params(value.quant, params):
        return None
    plan["inputs"][i] = int_name
    plan["quant"][int_name] = params
    return params


def _bias_input(lw, node, i, plan, s_in: float, w_params: QuantParams, n: int) -> bool:
    """The bias as int32 with scale s_in * s_w[c] and zero point 0: an int32 DQ constant
    with exactly those parameters is used as is; another DQ'd or float constant bias is
    quantized here (quant_math.quantize_bias)."""
    name = node.inputs[i] if len(node.inputs) > i else ""
    if not name:
        return True
    s_w = np.asarray(w_params.scales, np.float32)
    want = np.float32(s_in) * s_w
    src = lw.dq_source(name)
    if src is not None:
        dq, int_name, params, dtype = src
        data = _const(lw.g, int_name)
        if data is None:
            return False
        scales = np.asarray(params.scales, np.float32)
        if (dtype == "int32" and data.ndim == 1 and data.size == n and not any(params.zero_points)
                and np.array_equal(np.broadcast_to(scales, want.shape), want) and scales.size in (1, n)):
            plan["inputs"][i] = int_name
            plan["quant"][int_name] = _bias_params(want, n)
            return True
        real = qm.dequantize_linear(data, params)
    else:
        real = _const(lw.g, name)
        if real is None or real.dtype != np.float32:
            return False
    real = np.asarray(real, np.float32).reshape(-1)
    if real.size != n:
        return False
    new = lw.g.unique_name(f"{name}/int32")
    lw.added = True
    lw.g.add_constant(new, qm.quantize_bias(real, s_in, np.broadcast_to(s_w, (n,)) if s_w.size > 1 else s_w))
    plan["inputs"][i] = new
    plan["quant"][new] = _bias_params(want, n)
    return True


def _bias_params(scales, n) -> QuantParams:
    scales = np.asarray(scales, np.float32).reshape(-1)
    if scales.size == 1:
        return QuantParams([float(scales[0])], [0], None)
    return QuantParams([float(s) for s in scales], [0] * n, 0)


def _output_params(plan) -> tuple:
    return plan["outputs"][0][1], plan["outputs"][0][2]


def _conv_rule(lw, node, attrs, plan) -> bool:
    _, dtype = _output_params(plan)
    if len(node.inputs) > 3 and node.inputs[3]:
        return False
    act = plan.get("activation", (attrs["activation"], attrs["activation_params"]))[0]
    if act not in ("", "Relu", "Clip") or not _activation_input(lw, node, 0, plan, dtype):
        return False
    w = _weight_input(lw, node, 1, plan, 0)
    if w is None:
        return False
    shape = lw.g.values[plan["inputs"][1]].shape
    if shape is None or not isinstance(shape[0], int):
        return False
    s_in = plan["quant"][plan["inputs"][0]].scales[0]
    return _bias_input(lw, node, 2, plan, s_in, w, shape[0])


def _gemm_rule(lw, node, attrs, plan) -> bool:
    _, dtype = _output_params(plan)
    act = plan.get("activation", (attrs["activation"], attrs["activation_params"]))[0]
    if attrs["alpha"] != 1.0 or attrs["beta"] != 1.0 or act not in ("", "Relu", "Clip"):
        return False
    if not _activation_input(lw, node, 0, plan, dtype):
        return False
    b_shape = lw.g.values[node.inputs[1]].shape
    if b_shape is None or len(b_shape) != 2:
        return False
    col_axis = 0 if attrs["transB"] else 1
    w = _weight_input(lw, node, 1, plan, col_axis)
    if w is None:
        return False
    n = b_shape[col_axis]
    if not isinstance(n, int):
        return False
    s_in = plan["quant"][plan["inputs"][0]].scales[0]
    return _bias_input(lw, node, 2, plan, s_in, w, n)


def _matmul_rule(lw, node, attrs, plan) -> bool:
    _, dtype = _output_params(plan)
    act = plan.get("activation", (attrs["activation"], attrs["activation_params"]))[0]
    if act not in ("", "Relu", "Clip") or not _activation_input(lw, node, 0, plan, dtype):
        return False
    b_shape = lw.g.values[node.inputs[1]].shape
    if b_shape is None or len(b_shape) < 1:
        return False
    return _weight_input(lw, node, 1, plan, len(b_shape) - 1) is not None


def _elementwise_rule(lw, node, attrs, plan) -> bool:
    """Add, Mul, Concat: every input per tensor, any parameters."""
    _, dtype = _output_params(plan)
    if node.op in ("Add", "Mul") and len(node.inputs) != 2:
        return False
    return all(_activation_input(lw, node, i, plan, dtype) for i in range(len(node.inputs)))


def _relu_rule(lw, node, attrs, plan) -> bool:
    return _activation_input(lw, node, 0, plan, _output_params(plan)[1])


def _keep_params_rule(lw, node, attrs, plan) -> bool:
    """Ops computing exactly on the integers: data input 0 from a DQ, outputs with the
    same parameters; other inputs (shapes, indices, Clip bounds) are not quantized."""
    _, dtype = _output_params(plan)
    if node.op == "MaxPool" and len(node.outputs) > 1:
        return False
    if node.op == "Resize" and (attrs["mode"] not in ("nearest", "linear") or attrs["antialias"]
                                or attrs["coordinate_transformation_mode"] == "tf_crop_and_resize"):
        return False
    if not _activation_input(lw, node, 0, plan, dtype):
        return False
    params = plan["quant"][plan["inputs"][0]]
    # under the float32 rule an average pool requantizes to other output parameters
    # (onnxruntime's QLinear(Global)AveragePool); every other op keeps its input's
    requant = node.op in ("AveragePool", "GlobalAveragePool") and lw.mode == qm.FLOAT32
    if any((not same_params(params, p) and not (requant and len(p.scales) == 1)) or dt != dtype
           for _, p, dt in plan["outputs"]):
        return False
    for i, name in enumerate(node.inputs[1:], start=1):
        if name and lw.dq_source(name) is not None and node.op != "Clip":
            return False
    if node.op == "Clip":
        return _clip_bounds(lw, node, plan, params, dtype)
    return True


def _clip_bounds(lw, node, plan, params, dtype) -> bool:
    """Clip's float bounds become integers in the input's parameters (quant_math)."""
    for i in (1, 2):
        name = node.inputs[i] if len(node.inputs) > i else ""
        if not name:
            continue
        src = lw.dq_source(name)
        real = (qm.dequantize_linear(_const(lw.g, src[1]), src[2]) if src is not None and
                _const(lw.g, src[1]) is not None else _const(lw.g, name))
        if real is None or np.size(real) != 1 or np.asarray(real).dtype != np.float32:
            return False
        new = lw.g.unique_name(f"{name}/{dtype}")
        lw.added = True
        lw.g.add_constant(new, qm.quantize_linear(np.asarray(real).reshape(()), params, dtype))
        plan["inputs"][i] = new
        plan["quant"][new] = params
    return True


_RULES = {"Conv": _conv_rule, "Gemm": _gemm_rule, "MatMul": _matmul_rule, "Add": _elementwise_rule,
          "Mul": _elementwise_rule, "Concat": _elementwise_rule, "Relu": _relu_rule}
