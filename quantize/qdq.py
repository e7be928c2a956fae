"""QDQ insertion: a float graph + calibrated ranges -> the same graph in onnxruntime's
QDQ form (docs/quantization.md, "Using the quantizer").

For every quantized activation tensor `T`:

    QuantizeLinear(T, T/scale, T/zero_point) -> T/q      (int8)
    DequantizeLinear(T/q, T/scale, T/zero_point) -> T/dq  (float32)

and the quantized consumers read `T/dq`. Weights become int8 constants `W/q`
(symmetric, [-127, 127], one scale per output channel, or one per tensor with
`per_tensor`; always one for a clustered weight, storage "palette", so its K values
stay K int8 values; `carry_storage` keeps the storage hint) read through
`DequantizeLinear(axis=...) -> W/dq`; Conv/Gemm biases
int32 constants `B/q` (scale s_in * s_w[c], zero point 0) through a DequantizeLinear.
The graph still runs in float (fake quantization), and `lower_qdq` turns each
`DQ -> op -> Q` into one int8 op.

Which tensor a consumer reads: a quantized node reads `T/dq`; a float node (not
quantizable, or excluded) reads `T/dq` when `T`'s producer is quantized (the float
`T` then no longer exists once lowered) and the float `T` otherwise (a float
producer: its float value is the more accurate one).

Graph inputs and outputs keep their names. A quantized node's output `T` that is a
graph output is renamed `T/float` inside the graph and the DequantizeLinear writes
`T`. With io_dtype "int8" (`make_int8_io`) the QuantizeLinear writes `T` instead
(int8, its parameters on the value and in `mobconv info`), and a quantized graph
input `X` is int8, read through `DequantizeLinear(X) -> X/dq`.

Scheme "int8-weights" (weight-only): only the weights of Conv/Gemm/MatMul become
int8 + DequantizeLinear; activations and biases stay float. Scheme "dynamic" inserts
the same, and `lower_qdq(..., dynamic=True)` then makes each MatMul/Gemm read its int8
weight directly (dynamic-range int8, passes/lower_dynamic.py).
"""
from __future__ import annotations

import json
import math
from typing import Optional

import numpy as np

from mobconv.errors import MobconvError
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.ops import quant_math as qm
from mobconv.ops.quant_math import MOVE_OPS

WEIGHTED = ("Conv", "Gemm", "MatMul")
BINARY = ("Add", "Mul")
# Ops whose int8 form keeps the input's parameters on the output (docs/quantization.md
# section 5): their output is quantized with the input's scale and zero point.
SHARED = frozenset(MOVE_OPS | {"MaxPool", "GlobalMaxPool", "AveragePool", "GlobalAveragePool",
                               "Resize", "Clip"})
FOLDABLE_ACTIVATIONS = ("", "Relu", "Clip")
SPLIT_ACTIVATIONS = ("LeakyRelu", "HardSwish", "HardSigmoid", "Sigmoid", "Tanh")
MIN_SCALE = 1e-9        # activation scales below this are raised to it (a constant tensor)
WEIGHT_MULTIPLIER_FLOOR = 2.0 ** -20   # s_in * s_w / s_y never below this: bias survives
BIAS_LIMIT = 2.0 ** 29  # |int32 bias| stays below this: the accumulator cannot overflow


# ---- parameters ---------------------------------------------------------------------------


def _lo_hi(rng, name: str) -> tuple:
    if hasattr(rng, "lo"):
        lo, hi = rng.lo, rng.hi
    else:
        lo, hi = rng
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise MobconvError(f"tensor {name!r}: calibration range [{lo}, {hi}] is not a finite "
                           "interval (were the calibration data finite?)")
    return lo, hi


def activation_params(lo: float, hi: float, symmetric: bool = False) -> tuple:
    """(float32 scale, int zero point) of an int8 activation whose real range is [lo, hi].

    The range is widened to include 0 (so real zero, i.e. padding and Relu's floor, is
    exact). Asymmetric: scale = (hi - lo) / 255, zero point round(-128 - lo / scale)
    (ties to even), clamped to [-128, 127]. Symmetric: scale = max(|lo|, |hi|) / 127,
    zero point 0. An empty range (all zeros) gets scale 1, zero point 0; scales are at
    least MIN_SCALE."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        extent = max(-lo, hi)
        if extent == 0.0:
            return np.float32(1.0), 0
        return np.float32(max(extent / 127.0, MIN_SCALE)), 0
    if hi - lo == 0.0:
        return np.float32(1.0), 0
    scale = np.float32(max((hi - lo) / 255.0, MIN_SCALE))
    zp = int(np.clip(np.rint(-128.0 - lo / float(scale)), -128, 127))
    return scale, zp


def weight_scales(w: np.ndarray, axis: Optional[int], floor=None) -> np.ndarray:
    """float32 symmetric int8 scales of a weight: max|w| / 127 per slice along `axis` (one
    scale when axis is None), at least `floor` (per slice or scalar) where given; a slice
    of zeros (and no floor) gets scale 1."""
    w = np.asarray(w, dtype=np.float64)
    if axis is None:
        extent = np.array([np.max(np.abs(w)) if w.size else 0.0])
    else:
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        extent = np.max(np.abs(moved), axis=1) if moved.shape[1] else np.zeros(w.shape[axis])
    scales = extent / 127.0
    if floor is not None:
        scales = np.maximum(scales, np.broadcast_to(np.asarray(floor, np.float64), scales.shape))
    scales = np.where(scales > 0, scales, 1.0)
    return scales.astype(np.float32)


def quantize_weight(w: np.ndarray, scales: np.ndarray, axis: Optional[int]) -> np.ndarray:
    """int8 weight: round_half_to_even(w / scale) (float32 division, as QuantizeLinear),
    clamped to [-127, 127]."""
    w = np.asarray(w, dtype=np.float32)
    if axis is None:
        s = np.float32(scales.reshape(-1)[0])
    else:
        shape = [1] * w.ndim
        shape[axis] = -1
        s = scales.reshape(shape)
    return np.clip(np.rint(w / s), -127, 127).astype(np.int8)


def carry_storage(storage, data: np.ndarray):
    """The storage hint of a weight's converted copy `data` (int8 or float16): "sparse"
    stays sparse (zero points are 0, so zeros stay zeros); "palette" stays a palette of
    the values `data` holds (K float values round to at most K), with the index width
    they need; None stays None."""
    if storage is None or storage.kind != "palette":
        return storage
    from mobconv.ir.graph import PALETTE_BITS, WeightStorage

    raw = np.ascontiguousarray(data)
    if raw.dtype.kind == "f":
        raw = raw.view(f"u{raw.itemsize}")  # bitwise, as the writer counts them
    n = int(np.unique(raw).size)
    bits = next((b for b in PALETTE_BITS if n <= 1 << b), None)
    return None if bits is None else WeightStorage("palette", bits)


# ---- which nodes ----------------------------------------------------------------------------


def _const(graph: Graph, name: str):
    value = graph.values.get(name) if name else None
    return value.data if value is not None else None


def _is_float(graph: Graph, name: str) -> bool:
    value = graph.values.get(name)
    return value is not None and value.dtype == "float32" and value.quant is None


def _gemm_bias(graph: Graph, node) -> Optional[np.ndarray]:
    """Gemm's C as a 1-D per-column vector (after beta), None when absent; False when C
    is not a constant broadcast along the rows (then the Gemm stays float)."""
    if len(node.inputs) < 3 or not node.inputs[2]:
        return None
    c = _const(graph, node.inputs[2])
    b = _const(graph, node.inputs[1])
    if c is None:
        return False
    n = None
    if b is not None and b.ndim == 2:
        n = b.shape[0] if node.attrs.get("transB", 0) else b.shape[1]
    c = np.asarray(c, dtype=np.float32) * np.float32(node.attrs.get("beta", 1.0))
    if c.ndim == 2 and c.shape[0] == 1:
        c = c[0]
    if c.ndim == 0 or (c.ndim == 1 and c.shape[0] == 1 and n is not None):
        c = np.full(n, c.reshape(-1)[0] if c.size else 0, np.float32) if n else c
    if c.ndim != 1 or (n is not None and c.shape[0] != n):
        return False
    return c


def weight_axis(graph: Graph, node) -> Optional[int]:
    """The output-channel axis of the node's constant weight (input 1), None if it has none."""
    w = _const(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    if w is None or not _is_float(graph, node.inputs[1]):
        return None
    if node.op == "Conv":
        return 0 if w.ndim >= 3 else None
    if node.op == "Gemm":
        return (0 if node.attrs.get("transB", 0) else 1) if w.ndim == 2 else None
    if node.op == "MatMul":
        return w.ndim - 1 if w.ndim >= 2 else None
    return None


def _node_kind(graph: Graph, node, config) -> Optional[str]:
    """How `node` is quantized under `config`, None when it stays float."""
    if node.name in config.exclude:
        return None
    if config.scheme in ("int8-weights", "dynamic"):
        return "weights" if node.op in WEIGHTED and weight_axis(graph, node) is not None else None
    if config.scheme != "int8":
        return None
    if not node.outputs or not all(o and _is_float(graph, o) for o in node.outputs):
        return None
    if node.op in WEIGHTED:
        if node.attrs.get("activation", "") not in FOLDABLE_ACTIVATIONS:
            return None
        if not _is_float(graph, node.inputs[0]) or _const(graph, node.inputs[0]) is not None:
            return None
        if node.op == "Conv":
            if weight_axis(graph, node) is None:
                return None
            if len(node.inputs) > 2 and node.inputs[2]:
                if _const(graph, node.inputs[2]) is None or not _is_float(graph, node.inputs[2]):
                    return None
            if len(node.inputs) > 3 and any(node.inputs[3:]):
                return None
            return "weighted"
        if node.op == "Gemm":
            if weight_axis(graph, node) is None and (node.attrs.get("alpha", 1.0) != 1.0 or (
                    len(node.inputs) > 2 and node.inputs[2])):
                return None
            if not _is_float(graph, node.inputs[1]):
                return None
            if _gemm_bias(graph, node) is False:
                return None
            return "weighted"
        if not _is_float(graph, node.inputs[1]):
            return None
        return "weighted"
    if node.op in BINARY or node.op == "Concat":
        ins = [i for i in node.inputs if i]
        return "binary" if ins and all(_is_float(graph, i) for i in ins) else None
    if node.op == "Relu":
        return "relu" if _is_float(graph, node.inputs[0]) else None
    if node.op in SHARED:
        if not node.inputs or not _is_float(graph, node.inputs[0]) or _const(graph, node.inputs[0]) is not None:
            return None
        if node.op == "Clip" and any(i and (_const(graph, i) is None or not _is_float(graph, i))
                                     for i in node.inputs[1:]):
            return None
        if node.op == "MaxPool" and len(node.outputs) > 1 and any(node.outputs[1:]):
            return None
        return "shared"
    return None


def _activation_inputs(graph: Graph, node, kind: str) -> list:
    """Indices of the node's inputs quantized as activations (per tensor)."""
    if kind == "weighted":
        if node.op == "Conv" or weight_axis(graph, node) is not None:
            return [0]
        return [0, 1]
    if kind == "binary":
        return [i for i, name in enumerate(node.inputs) if name]
    return [0]


def quantizable_nodes(graph: Graph, config) -> list:
    """Names of the nodes `insert_qdq` quantizes under `config` (in graph order): int8
    ops for scheme "int8", nodes with int8 weights for "int8-weights"."""
    return [node.name for node in graph.nodes if _node_kind(graph, node, config) is not None]


# ---- preparation (float -> float) -------------------------------------------------------------


def prepare(graph: Graph) -> Graph:
    """The float graph the quantizer calibrates and quantizes: fused forms without an
    integer rule are split (output-equal to `graph`; returns a new graph when anything
    changed, `graph` itself otherwise):
    - a Conv with a fused residual R (passes/fuse_residual.py) becomes Conv -> Add(., R)
      -> its fused activation as a separate Relu/Clip/... node (an int8 Add rescales the
      two operands; the int8 Conv has no R);
    - a Conv/Gemm/MatMul fused activation with no integer form (LeakyRelu, HardSwish,
      HardSigmoid, Sigmoid, Tanh) becomes a separate node (`split_activations`)."""
    return split_activations(unfuse_residuals(graph))


def _activation_node(g: Graph, node_name: str, act: str, params, src: str, out: str) -> list:
    """Nodes computing fused activation `act` of `src` into `out` as separate ops."""
    from mobconv.ir import Node

    name = g.unique_name(f"{node_name}/{act}")
    if act == "Clip":
        lo, hi = (list(params) + [None, None])[:2]
        ins = [src]
        for which, bound in (("min", lo), ("max", hi)):
            if bound is None or not math.isfinite(float(bound)):
                ins.append("")
            else:
                ins.append(g.unique_name(f"{name}/{which}"))
                g.add_value(ins[-1], data=np.asarray(bound, np.float32))
        while ins and not ins[-1]:
            ins.pop()
        return [Node("Clip", name, ins, [out], {})]
    attrs = {}
    if act == "LeakyRelu" and params:
        attrs = {"alpha": float(params[0])}
    elif act == "HardSigmoid" and len(params) >= 2:
        attrs = {"alpha": float(params[0]), "beta": float(params[1])}
    return [Node(act, name, [src], [out], attrs)]


def unfuse_residuals(graph: Graph) -> Graph:
    """Conv(x, W, B, R) [+ activation] -> Conv(x, W, B) -> Add(., R) [-> activation]."""
    if not any(n.op == "Conv" and len(n.inputs) > 3 and n.inputs[3] for n in graph.nodes):
        return graph
    from mobconv.ir import Node

    g = graph.copy()
    nodes = []
    for node in g.nodes:
        nodes.append(node)
        if node.op != "Conv" or len(node.inputs) <= 3 or not node.inputs[3]:
            continue
        residual = node.inputs[3]
        act = node.attrs.get("activation", "")
        params = list(node.attrs.get("activation_params", []) or [])
        node.inputs = node.inputs[:3]
        while len(node.inputs) > 2 and not node.inputs[-1]:
            node.inputs.pop()
        node.attrs = dict(node.attrs, activation="", activation_params=[])
        out = node.outputs[0]
        value = g.values[out]
        conv_out = g.unique_name(f"{out}/conv")
        g.add_value(conv_out, value.dtype, value.shape)
        node.outputs = [conv_out] + node.outputs[1:]
        sum_out = out
        if act:
            sum_out = g.unique_name(f"{out}/sum")
            g.add_value(sum_out, value.dtype, value.shape)
        nodes.append(Node("Add", g.unique_name(f"{node.name}/residual"), [conv_out, residual], [sum_out]))
        if act:
            nodes.extend(_activation_node(g, node.name, act, params, sum_out, out))
    g.nodes = nodes
    return g


def split_activations(graph: Graph) -> Graph:
    """Conv/Gemm/MatMul with a fused activation that has no integer form (LeakyRelu,
    HardSwish, HardSigmoid, Sigmoid, Tanh) become the op + a separate activation node,
    so the op can be int8 and the activation runs in float between DQ and Q. Output
    equal to the input graph's; returns a new graph (the input is not modified)."""
    if not any(n.op in WEIGHTED and n.attrs.get("activation", "") in SPLIT_ACTIVATIONS
               for n in graph.nodes):
        return graph
    g = graph.copy()
    nodes = []
    for node in g.nodes:
        act = node.attrs.get("activation", "")
        nodes.append(node)
        if node.op not in WEIGHTED or act not in SPLIT_ACTIVATIONS:
            continue
        params = list(node.attrs.get("activation_params", []) or [])
        node.attrs = dict(node.attrs, activation="", activation_params=[])
        out = node.outputs[0]
        linear = g.unique_name(f"{out}/linear")
        old = g.values[out]
        g.add_value(linear, old.dtype, old.shape)
        node.outputs = [linear] + node.outputs[1:]
        nodes.extend(_activation_node(g, node.name, act, params, linear, out))
    g.nodes = nodes
    return g


# ---- insertion ----------------------------------------------------------------------------


class _Builder:
    def __init__(self, graph: Graph, config):
        self.g = graph
        self.config = config
        self.nodes = []
        self.cache = {}

    def const(self, base: str, data, quant=None) -> str:
        name = self.g.unique_name(base)
        self.g.add_value(name, data=np.asarray(data), quant=quant)
        return name

    def dq(self, q_name: str, scale_name: str, zp_name: str, out: str, axis=None, base=None):
        attrs = {"axis": int(axis)} if axis is not None else {}
        node_name = self.g.unique_name(f"{base or out}/Dequantize")
        q = self.g.values[q_name]
        self.g.add_value(out, "float32", q.shape)
        from mobconv.ir import Node

        self.nodes.append(Node("DequantizeLinear", node_name, [q_name, scale_name, zp_name], [out], attrs))

    def quantize_pair(self, tensor: str, scale, zp, q_out: str, dq_out: Optional[str]) -> None:
        """Q(tensor) -> q_out (int8) and, when dq_out, DQ(q_out) -> dq_out."""
        from mobconv.ir import Node

        base = q_out[:-2] if q_out.endswith("/q") else q_out
        scale_name = self.const(f"{base}/scale", np.float32(scale))
        zp_name = self.const(f"{base}/zero_point", np.int8(zp))
        src = self.g.values[tensor]
        params = QuantParams([float(np.float32(scale))], [int(zp)])
        self.g.add_value(q_out, "int8", src.shape, quant=params)
        self.nodes.append(Node("QuantizeLinear", self.g.unique_name(f"{base}/Quantize"),
                               [tensor, scale_name, zp_name], [q_out], {}))
        if dq_out:
            self.dq(q_out, scale_name, zp_name, dq_out, base=base)

    def constant_activation(self, name: str, scale, zp) -> str:
        """A constant operand of a quantized Add/Mul/Concat/Clip: int8 constant + DQ."""
        key = ("const", name, float(scale), zp)
        if key not in self.cache:
            data = np.asarray(self.g.values[name].data, dtype=np.float32)
            q = qm.quantize_linear(data, QuantParams([float(scale)], [int(zp)]), "int8")
            params = QuantParams([float(np.float32(scale))], [int(zp)])
            q_name = self.const(f"{name}/q", q.astype(np.int8), params)
            base = name
            s = self.const(f"{base}/scale", np.float32(scale))
            z = self.const(f"{base}/zero_point", np.int8(zp))
            out = self.g.unique_name(f"{base}/dq")
            self.dq(q_name, s, z, out, base=base)
            self.cache[key] = out
        return self.cache[key]

    def weight(self, node, axis: Optional[int], data: np.ndarray, floor=None) -> tuple:
        """(name of W/dq, float32 scales) of the node's weight, per `axis` (None: per tensor).
        The int8 weight keeps the float weight's storage (`carry_storage`); a palette
        weight is quantized per tensor, so its K values stay K int8 values."""
        name = node.inputs[1]
        storage = self.g.values[name].storage
        palette = storage is not None and storage.kind == "palette"
        q_axis = None if self.config.per_tensor or palette else axis
        if q_axis is None and floor is not None:
            floor = np.max(floor)
        scales = weight_scales(data, q_axis, floor)
        key = ("weight", name, q_axis, scales.tobytes(), data.tobytes() if data is not
               self.g.values[name].data else b"")
        if key not in self.cache:
            q = quantize_weight(data, scales, q_axis)
            zps = np.zeros(scales.shape, np.int8)
            params = QuantParams([float(s) for s in scales], [0] * scales.size, q_axis)
            q_name = self.const(f"{name}/q", q, params)
            self.g.values[q_name].storage = carry_storage(storage, q)
            base = name
            s = self.const(f"{base}/scale", scales if q_axis is not None else scales[0])
            z = self.const(f"{base}/zero_point", zps if q_axis is not None else zps[0])
            out = self.g.unique_name(f"{base}/dq")
            self.dq(q_name, s, z, out, axis=q_axis, base=base)
            self.cache[key] = (out, scales)
        return self.cache[key]

    def bias(self, name: str, data: np.ndarray, s_in, w_scales) -> str:
        q = qm.quantize_bias(data, s_in, w_scales)
        scales = (np.float32(s_in) * np.asarray(w_scales, np.float32)).reshape(-1)
        per_axis = scales.size > 1
        if not per_axis:
            scales = scales[:1]
        params = QuantParams([float(s) for s in scales], [0] * scales.size, 0 if per_axis else None)
        q_name = self.const(f"{name}/q", q, params)
        base = name
        s = self.const(f"{base}/scale", scales if per_axis else scales[0])
        z = self.const(f"{base}/zero_point", np.zeros(scales.size, np.int32) if per_axis else np.int32(0))
        out = self.g.unique_name(f"{base}/dq")
        self.dq(q_name, s, z, out, axis=0 if per_axis else None, base=base)
        return out


def insert_qdq(graph: Graph, ranges: dict, config) -> Graph:
    """`graph` in QDQ form for `config` (scheme "int8" or "int8-weights"); `ranges` maps
    float tensor names to their calibrated range (an object with `lo`, `hi`, e.g.
    calibration.TensorRange, or a (lo, hi) pair). Returns a new graph."""
    if config.scheme not in ("int8", "int8-weights", "dynamic"):
        raise MobconvError(f"insert_qdq: scheme {config.scheme!r} has no QDQ form")
    g = graph.copy()
    kinds = {}
    for node in g.nodes:
        kind = _node_kind(g, node, config)
        if kind is not None:
            kinds[node.name] = kind
    if config.exclude:  # lower_qdq leaves these float even between a DQ and a Q
        from mobconv.passes.lower_qdq import KEEP_FLOAT_KEY

        present = sorted({n.name for n in g.nodes} & set(config.exclude))
        g.metadata.extra = dict(g.metadata.extra)
        g.metadata.extra[KEEP_FLOAT_KEY] = json.dumps(present)
    b = _Builder(g, config)
    if config.scheme in ("int8-weights", "dynamic"):
        return _weights_only(g, b, kinds)

    sym = config.symmetric_activations
    params = {}  # tensor -> (scale, zp)
    from_quantized = set()  # tensors produced by a quantized node

    def own(name):
        if name not in ranges:
            if ranges:  # calibrated, but never finite: the float model overflows on the data
                from .data import CalibrationDataError

                raise CalibrationDataError(
                    f"tensor {name!r} has no finite value on the calibration data (the float "
                    "model computes only NaN/Inf there), so it has no int8 range: check the "
                    "data's scale, or exclude the nodes that produce and read it")
            raise MobconvError(f"insert_qdq: no calibration range for tensor {name!r} "
                               f"(read by a node being quantized)")
        lo, hi = _lo_hi(ranges[name], name)
        extent = max(hi, 0.0) - min(lo, 0.0)
        if 0.0 < extent < MIN_SCALE * 2.0:  # at most 2 steps of the scale floor: values lost
            import warnings

            warnings.warn(f"tensor {name!r}: calibrated range [{lo:.3g}, {hi:.3g}] spans under 2 "
                          f"int8 steps at the scale floor {MIN_SCALE:g}, so its values are lost; "
                          "rescale the data or exclude the nodes that produce and read it",
                          stacklevel=2)
        return activation_params(lo, hi, symmetric=sym)

    quantized_nodes = [n for n in g.nodes if n.name in kinds]
    for node in quantized_nodes:
        kind = kinds[node.name]
        for i in _activation_inputs(g, node, kind):
            name = node.inputs[i]
            if name in params or _const(g, name) is not None:
                continue
            params[name] = own(name)
        for out in node.outputs:
            if not out:
                continue
            if kind == "shared":
                params[out] = params[node.inputs[0]]
            else:
                params[out] = own(out)
            from_quantized.add(out)
    graph_inputs = set(g.inputs)
    graph_outputs = set(g.outputs)

    # the names consumers read
    dq_name = {t: g.unique_name(f"{t}/dq") for t in params}
    renamed = {}  # graph output produced by a quantized node -> inner float name
    for t in params:
        if t in graph_outputs and t in from_quantized and t not in graph_inputs:
            renamed[t] = g.unique_name(f"{t}/float")
            dq_name[t] = t
    q_name = {t: g.unique_name(f"{t}/q") for t in params}
    inner = {v: k for k, v in renamed.items()}

    def read(consumer_kind, idx, node, name):
        if name not in params:
            return renamed.get(name, name)
        if consumer_kind is not None and idx in _activation_inputs(g, node, consumer_kind):
            return dq_name[name]
        if name in from_quantized:
            return dq_name[name]
        return renamed.get(name, name)

    def emit_pair(t):
        scale, zp = params[t]
        b.quantize_pair(renamed.get(t, t), scale, zp, q_name[t], dq_name[t])

    for t in g.inputs:
        if t in params:
            emit_pair(t)
    for node in g.nodes:
        kind = kinds.get(node.name)
        if kind is not None:
            node = _quantize_node(g, b, node, kind, params, read)
        else:
            node.inputs = [read(None, i, node, n) if n else n for i, n in enumerate(node.inputs)]
        for i, out in enumerate(node.outputs):
            if out in renamed:
                value = g.values.pop(out)
                value.name = renamed[out]
                g.values[value.name] = value
                node.outputs[i] = renamed[out]
        b.nodes.append(node)
        for out in list(node.outputs):
            original = inner.get(out, out)
            if original in params:
                emit_pair(original)

    g.nodes = b.nodes
    g.remove_unused_values()
    infer_shapes(g)
    if config.io_dtype == "int8":
        g = make_int8_io(g)
    return g


def _const_params(g: Graph, node) -> Optional[QuantParams]:
    """Per-tensor (scale, zero point) of a Q/DQ node with constant parameters, else None."""
    scale = _const(g, node.inputs[1]) if len(node.inputs) > 1 else None
    zp = _const(g, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if scale is None or np.size(scale) != 1 or (zp is not None and np.size(zp) != 1):
        return None
    if zp is not None and np.asarray(zp).dtype != np.int8:
        return None
    return QuantParams([float(np.float32(np.asarray(scale).reshape(-1)[0]))],
                       [int(np.asarray(zp).reshape(-1)[0]) if zp is not None else 0])


def make_int8_io(graph: Graph) -> Graph:
    """A float-I/O QDQ graph made int8 at the edges (io_dtype "int8"): a graph input X
    read by one QuantizeLinear becomes int8 with that Q's parameters (the Q goes, every
    reader reads X's DequantizeLinear); a graph output T written by DQ(Q(T/float))
    becomes the int8 Q output named T (readers inside the graph read a DQ `T/dq`).
    Inputs/outputs that are not quantized stay float32. Returns a new graph."""
    g = graph.copy()
    consumers = g.consumers()
    producers = g.producers()
    drop = set()
    for x in g.inputs:
        readers = consumers.get(x, [])
        qs = [n for n in readers if n.op == "QuantizeLinear"]
        if len(qs) != 1 or _const_params(g, qs[0]) is None:
            continue
        q = qs[0]
        dqs = [n for n in consumers.get(q.outputs[0], []) if n.op == "DequantizeLinear"]
        if len(dqs) != 1 or len(consumers.get(q.outputs[0], [])) != 1:
            continue
        dq_out = dqs[0].outputs[0]
        value = g.values[x]
        value.dtype = "int8"
        value.quant = _const_params(g, q)
        drop.add(id(q))
        dqs[0].inputs[0] = x
        for node in readers:
            if node is not q:
                node.inputs = [dq_out if n == x else n for n in node.inputs]
    for t in list(g.outputs):
        dq = producers.get(t)
        if dq is None or dq.op != "DequantizeLinear":
            continue
        q = producers.get(dq.inputs[0])
        if q is None or q.op != "QuantizeLinear" or _const_params(g, q) is None \
                or len(consumers.get(dq.inputs[0], [])) != 1:
            continue
        old_q = q.outputs[0]
        g.values.pop(old_q)
        inside = consumers.get(t, [])
        if inside:
            new_dq = g.unique_name(f"{t}/dq")
            g.add_value(new_dq, "float32", g.values[t].shape)
            dq.outputs = [new_dq]
            for node in inside:
                node.inputs = [new_dq if n == t else n for n in node.inputs]
        else:
            drop.add(id(dq))
        value = g.values[t]
        value.dtype = "int8"
        value.quant = _const_params(g, q)
        q.outputs = [t]
        dq.inputs[0] = t
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    for specs in (g.signature.inputs, g.signature.outputs):
        for spec in specs:
            value = g.values.get(spec.name)
            if value is not None and value.dtype == "int8":
                spec.dtype = "int8"
    g.remove_unused_values()
    return g


def _quantize_node(g: Graph, b: _Builder, node, kind: str, params: dict, read):
    """Rewire one quantized node's inputs to DQ outputs (weights, biases, constants)."""
    inputs = list(node.inputs)
    act = _activation_inputs(g, node, kind)
    for i in act:
        name = inputs[i]
        if _const(g, name) is not None:
            if kind == "binary":
                lo = float(np.min(g.values[name].data)) if g.values[name].data.size else 0.0
                hi = float(np.max(g.values[name].data)) if g.values[name].data.size else 0.0
                scale, zp = activation_params(lo, hi, b.config.symmetric_activations)
                inputs[i] = b.constant_activation(name, scale, zp)
            continue
        inputs[i] = read(kind, i, node, name)
    if kind == "shared" and node.op == "Clip":
        scale, zp = params[node.inputs[0]]
        for i in (1, 2):
            if i < len(inputs) and inputs[i]:
                inputs[i] = b.constant_activation(inputs[i], scale, zp)
    if kind == "weighted":
        axis = weight_axis(g, node)
        if axis is not None:
            w = np.asarray(g.values[node.inputs[1]].data, np.float32)
            attrs = dict(node.attrs)
            if node.op == "Gemm" and attrs.get("alpha", 1.0) != 1.0:
                w = (w * np.float32(attrs["alpha"])).astype(np.float32)
                attrs["alpha"] = 1.0
            bias = None
            if node.op == "Conv" and len(inputs) > 2 and inputs[2]:
                bias = np.asarray(g.values[inputs[2]].data, np.float32).reshape(-1)
            elif node.op == "Gemm":
                c = _gemm_bias(g, node)
                bias = c if c is not None and c is not False else None
                if attrs.get("beta", 1.0) != 1.0:
                    attrs["beta"] = 1.0
            s_in = float(params[node.inputs[0]][0])
            s_y = float(params[node.outputs[0]][0])
            floor = np.float64(s_y) * WEIGHT_MULTIPLIER_FLOOR / s_in
            if bias is not None:
                floor = np.maximum(floor, np.abs(bias.astype(np.float64)) / (s_in * BIAS_LIMIT))
            n_out = w.shape[axis]
            if np.ndim(floor) and np.size(floor) != n_out:
                floor = np.max(floor)
            if b.config.per_tensor:
                floor = np.max(floor)
            inputs[1], w_scales = b.weight(node, axis, w, floor)
            if bias is not None:
                w_for_bias = w_scales if w_scales.size > 1 else np.full(1, w_scales[0], np.float32)
                name = inputs[2]
                inputs[2] = b.bias(name, bias, s_in, w_for_bias)
            node.attrs = attrs
    node.inputs = inputs
    return node


def _weights_only(g: Graph, b: _Builder, kinds: dict) -> Graph:
    for node in g.nodes:
        if node.name in kinds:
            axis = weight_axis(g, node)
            w = np.asarray(g.values[node.inputs[1]].data, np.float32)
            node.inputs[1], _ = b.weight(node, axis, w)
        b.nodes.append(node)
    g.nodes = b.nodes
    g.toposort()
    g.remove_unused_values()
    infer_shapes(g)
    return g
