"""Dynamic-range lowering: `DequantizeLinear(int8 W) -> MatMul/Gemm/1x1 Conv` (float
activations) becomes the same node reading the int8 weight itself (docs/quantization.md,
"Dynamic-range int8"; the oracle is mobconv/ops/dynamic_quant.py).

Run by `lower_qdq` (passes/lower_qdq.py) after the static lowering, when asked:
`lower_qdq(graph, dynamic=True)` or metadata `quantization.scheme` = "dynamic" (what
`mobconv quantize --scheme dynamic` writes). A node is lowered when
- it is a MatMul or Gemm that the static lowering left float (its A is float32, not a
  DequantizeLinear of an int8 activation), not listed in `quantization.keep_float`;
- its B is `DequantizeLinear` of a 2-D int8 constant with constant float32 scales and
  zero points all 0, per tensor or per output column (MatMul: axis 1; Gemm: axis 1, or
  0 with transB);
- Conv: 1x1, stride 1, no padding, dilation 1, group 1, W per output channel (axis 0)
  or per tensor, bias float32, no fused residual, at least CONV_MIN_CHANNELS input and
  output channels (below it the dynamic form is slower than float);
- Gemm: alpha = beta = 1, C absent or float32; the fused activation is none, Relu or
  Clip (others have no exact rule here: the node stays float).
The node then reads the int8 constant (which carries its `QuantParams`); its output
stays float32. DequantizeLinear nodes left without readers go (lower_qdq drops them).
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import QuantParams
from ..ops.dynamic_quant import ACTIVATIONS, MAX_K, pointwise_geometry
from ..ops.registry import get_spec

DYNAMIC_SCHEME = "dynamic"
# A 1x1 Conv is rewritten only with at least this many input AND output channels: below,
# quantizing every pixel's short channel vector costs more than the int8 product saves
# (one thread, AVX512-VNNI: 16 -> 8 channels at 28x28 ran 14x slower than fp32, 64 -> 64
# at 14x14 1.4x slower, 128 -> 128 at 14x14 0.88x, 256 -> 256 0.69x, 512 -> 512 at 7x7
# 0.35x). The runtime executes any dynamic-range 1x1 Conv; this only decides what to write.
CONV_MIN_CHANNELS = 128
SCHEME_KEY = "quantization.scheme"


def wants_dynamic(graph) -> bool:
    """The graph's metadata asks for dynamic-range lowering."""
    return (graph.metadata.extra or {}).get(SCHEME_KEY) == DYNAMIC_SCHEME


def lower_dynamic(lw) -> bool:
    """Rewrites every eligible node of lw.g (a `lower_qdq._Lowering`); True when any was."""
    g = lw.g
    changed = False
    for node in g.nodes:
        params = _eligible(lw, node)
        if params is None:
            continue
        int_name = lw.producer[node.inputs[1]].inputs[0]
        node.inputs = [node.inputs[0], int_name] + list(node.inputs[2:])
        g.values[int_name].quant = params
        changed = True
    return changed


def _eligible(lw, node):
    """The int8 weight's QuantParams when `node` can become dynamic-range int8, else None."""
    g = lw.g
    if node.op not in ("MatMul", "Gemm", "Conv") or node.name in lw.keep_float or len(node.inputs) < 2:
        return None
    attrs = get_spec(node.op).resolve_attrs(node)
    if attrs["activation"] not in ACTIVATIONS:
        return None
    a = g.values.get(node.inputs[0])
    if a is None or a.dtype != "float32" or a.quant is not None or len(node.outputs) != 1:
        return None
    out = g.values.get(node.outputs[0])
    if out is None or out.dtype not in (None, "float32") or out.quant is not None:
        return None
    if node.op == "Gemm":
        if attrs["alpha"] != 1.0 or attrs["beta"] != 1.0:
            return None
        c = node.inputs[2] if len(node.inputs) > 2 else ""
        if c and (g.values.get(c) is None or g.values[c].dtype != "float32"):
            return None
        axis = 0 if attrs["transB"] else 1
    elif node.op == "Conv":
        if any(node.inputs[3:]):
            return None
        c = node.inputs[2] if len(node.inputs) > 2 else ""
        if c and (g.values.get(c) is None or g.values[c].dtype != "float32"):
            return None
        wv = g.values.get(node.inputs[1])
        if wv is None or wv.shape is None or not pointwise_geometry(attrs, wv.shape):
            return None
        if min(int(wv.shape[0]), int(wv.shape[1])) < CONV_MIN_CHANNELS:
            return None
        axis = 0
    else:
        if a.shape is not None and len(a.shape) < 1:
            return None
        axis = 1
    src = lw.dq_source(node.inputs[1])
    if src is None:
        return None
    dq, int_name, params, dtype = src
    w = g.values[int_name]
    if dtype != "int8" or not w.is_constant or w.data is None or (node.op != "Conv" and w.data.ndim != 2):
        return None
    k = w.data.shape[1 - axis] if node.op != "Conv" else int(np.prod(w.data.shape[1:]))
    if k > MAX_K or any(int(z) != 0 for z in params.zero_points):
        return None
    if len(params.scales) == 1:
        params = QuantParams(list(params.scales), [0], None)
    elif params.axis != axis:
        return None
    scales = np.asarray(params.scales, np.float32)
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        return None
    if w.quant is not None and not _same(w.quant, params):
        return None
    return params


def _same(p: QuantParams, q: QuantParams) -> bool:
    from .lower_qdq import same_params

    return same_params(p, q)
