"""Matching a quantized model's tensors to the float model's, for the debugger.

The naming rule (docs/quantization.md "Debugger"): the quantized tensor named `T` (or
`T/q`, `T/dq` in a QDQ graph, or what a Quantize/DequantizeLinear chain makes of `T`,
or the int8 input of the DequantizeLinear writing float output `T`) approximates
float `T`. Also here: the float graph as mobconv's quantizer saw it
(`aligned_float_graph`), a layer's quantized segment and precision, and `Isolated`,
which runs one layer's quantized segment on the float values of its inputs.
"""
from __future__ import annotations

import numpy as np

from mobconv.ops import quant_math as qm
from mobconv.ops.registry import get_spec
from mobconv.reference.interpreter import _run_node

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _activations(graph) -> set:
    names = set(graph.inputs)
    for node in graph.nodes:
        names.update(o for o in node.outputs if o)
    return {n for n in names if graph.values.get(n) is None or graph.values[n].data is None}


def match_tensors(float_graph, quant_graph) -> dict:
    """quant tensor name -> the float tensor it approximates (the naming rule)."""
    float_acts = _activations(float_graph)

    def base(name):
        if name in float_acts:
            return name
        for suffix in ("/q", "/dq"):
            if name.endswith(suffix) and name[: -len(suffix)] in float_acts:
                return name[: -len(suffix)]
        return None

    qmap = {}
    for name in quant_graph.inputs:
        if base(name):
            qmap[name] = base(name)
    for node in quant_graph.nodes:
        for out in node.outputs:
            if not out:
                continue
            b = base(out)
            if b is None and node.op in QDQ_OPS and node.inputs[0] in qmap:
                b = qmap[node.inputs[0]]
            if b is not None:
                qmap[out] = b
    consts = {v.name for v in quant_graph.constants()}
    for node in reversed(quant_graph.nodes):  # int8 tensor that a DQ turns into float output T
        if node.op in QDQ_OPS and node.outputs[0] in qmap:
            src = node.inputs[0]
            if src and src not in qmap and src not in consts:
                qmap[src] = qmap[node.outputs[0]]
    return qmap


def qparams_of(quant_graph, approximations, producers, tensor):
    """(scale, zero point, dtype) of float `tensor`'s per-tensor quantization, or None.
    `approximations`: float tensor -> the quant tensors matched to it."""
    vals = quant_graph.values
    for name in approximations.get(tensor, ()):
        v = vals.get(name)
        if v is not None and v.quant is not None and v.dtype and v.dtype.startswith(("int", "uint")) \
                and len(v.quant.scales) == 1:
            zps = v.quant.zero_points
            zp = int(zps[0]) if zps is not None and len(zps) else 0
            return float(np.float32(v.quant.scales[0])), zp, v.dtype
        node = producers.get(name)
        if node is not None and node.op == "QuantizeLinear" and len(node.inputs) > 1:
            scale = vals.get(node.inputs[1])
            zp = vals.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
            if scale is not None and scale.data is not None and np.size(scale.data) == 1:
                dtype = zp.data.dtype.name if zp is not None and zp.data is not None else (v.dtype or "uint8")
                zpv = int(np.asarray(zp.data).ravel()[0]) if zp is not None and zp.data is not None else 0
                return float(np.asarray(scale.data, dtype=np.float32).ravel()[0]), zpv, dtype
    return None


def dequantized(value, array):
    if value is not None and value.quant is not None and np.asarray(array).dtype.kind in "iu":
        return qm.dequantize_linear(array, value.quant)
    return np.asarray(array)


def quantization_metadata(graph) -> dict:
    """The `quantization.*` metadata of a model quantized by mobconv (key without prefix)."""
    meta = graph.metadata
    found = {}
    for table in (getattr(meta, "options", None) or {}, getattr(meta, "extra", None) or {}):
        for key, value in table.items():
            if str(key).startswith("quantization."):
                found[str(key)[len("quantization."):]] = str(value)
    return found


def aligned_float_graph(float_graph, quant_graph):
    """The float graph as mobconv's quantizer saw it, so its intermediate tensors are the ones
    the quantized model approximates: fused forms without an integer rule split
    (qdq.prepare, output-equal) and, when the quantized model records
    `quantization.equalize=true`, cross-layer equalization applied (which rescales
    intermediate channels). Other models: `float_graph` itself."""
    meta = quantization_metadata(quant_graph)
    if "scheme" not in meta:
        return float_graph
    from .qdq import prepare

    graph = prepare(float_graph)
    changes = ["with fused activations split"] if graph is not float_graph else []
    if meta.get("equalize") == "true":
        from .equalize import replay

        graph = replay(graph, meta)
        changes.insert(0, "equalized (quantization.equalize=true)")
    if graph is not float_graph:
        graph.aligned_changes = " and ".join(changes)
    return graph


class Isolated:
    """Evaluates one layer's quantized segment of the quant graph with its inputs taken
    from the float run (quantized with the quant graph's own input parameters)."""

    def __init__(self, quant_graph, qmap, producers):
        self.graph = quant_graph
        self.qmap = qmap
        self.producers = producers
        self.specs = {}

    def run(self, target: str, tensor: str, float_env: dict, qfeeds: dict):
        """Dequantized value of quant tensor `target` (approximating float `tensor`)."""
        cache: dict = {}
        return dequantized(self.graph.values.get(target),
                            self._value(target, tensor, float_env, qfeeds, cache))

    def _value(self, name, tensor, float_env, qfeeds, cache):
        if not name:
            return None
        if name in cache:
            return cache[name]
        v = self.graph.values.get(name)
        if v is not None and v.data is not None:
            return v.data
        b = self.qmap.get(name)
        producer = self.producers.get(name)
        if b is not None and b != tensor and b in float_env:  # an input of the layer
            if v is not None and v.quant is not None and v.dtype and v.dtype.startswith(("int", "uint")):
                result = qm.quantize_linear(float_env[b], v.quant, v.dtype)
            elif producer is not None and producer.op in QDQ_OPS:
                result = self._evaluate(producer, name, tensor, float_env, qfeeds, cache)
            else:
                result = np.asarray(float_env[b])
        elif producer is None:
            result = qfeeds[name]
        else:
            result = self._evaluate(producer, name, tensor, float_env, qfeeds, cache)
        cache[name] = result
        return result

    def _evaluate(self, node, name, tensor, float_env, qfeeds, cache):
        spec = get_spec(node.op)
        args = [self._value(i, tensor, float_env, qfeeds, cache) for i in node.inputs]
        outs = _run_node(self.graph, node, spec, args, spec.resolve_attrs(node))
        for o, a in zip(node.outputs, outs):
            if o:
                cache[o] = a
        return cache[name]


def layer_segment(qgraph, start: str, tensor: str, qmap: dict, producers: dict) -> list:
    """The quant graph's compute nodes (not Q/DQ) that produce `start` from the tensors
    matched to other float tensors: the quantized form of the layer writing `tensor`."""
    nodes, seen, stack = [], set(), [start]
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op not in QDQ_OPS:
            nodes.append(node)
        for i in node.inputs:
            b = qmap.get(i)
            if i and (b is None or b == tensor):
                stack.append(i)
    return nodes


def precision_of(qgraph, node, producers, consumers) -> str:
    """"int8" when the quant graph's node computes on quantized tensors (lowered: a tensor
    with Value.quant; QDQ form: its weight comes from a DequantizeLinear of a constant, or
    its float inputs all come from DequantizeLinear and its output goes to QuantizeLinear),
    else "float" (the layer fell back)."""
    if node is None:
        return "float"
    vals = qgraph.values
    names = [n for n in list(node.inputs) + list(node.outputs) if n]
    if any(vals.get(n) is not None and vals[n].quant is not None for n in names):
        return "int8"
    lowered = any(n.op not in QDQ_OPS and any(vals.get(t) is not None and vals[t].quant is not None
                                              for t in list(n.inputs) + list(n.outputs) if t)
                  for n in qgraph.nodes)
    if lowered:
        return "float"  # a lowered graph: its int8 ops carry Value.quant, this one does not
    meta = quantization_metadata(qgraph)
    excluded = meta.get("exclude", "").split(",") + meta.get("fallback", "").split(",")
    if node.name in [e for e in excluded if e]:
        return "float"
    acts = [n for n in node.inputs if n and (vals.get(n) is None or vals[n].data is None)]
    from_dq = [n for n in acts if n in producers and producers[n].op == "DequantizeLinear"]
    for n in from_dq:
        src = producers[n].inputs[0]
        if vals.get(src) is not None and vals[src].data is not None:
            return "int8"  # a quantized weight
    to_q = any(c.op == "QuantizeLinear" for o in node.outputs if o for c in consumers.get(o, []))
    if acts and len(from_dq) == len(acts) and to_q:
        return "int8"
    return "float"
