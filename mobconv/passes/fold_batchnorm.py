"""BatchNormalization folding: merge an inference-mode BN into the Conv/ConvTranspose/Gemm/MatMul before it.

Why: at inference BN is a per-channel affine map
  y = scale * (x - mean) / sqrt(var + eps) + B  =  s * x + t,
  s = scale / sqrt(var + eps),  t = B - mean * s,
which a linear op absorbs for free: one op and one pass over the activations fewer.

Algorithm, for each BatchNormalization node:
1. Require training_mode = 0, one (used) output, and constant scale/B/mean/var.
2. Its input must come from a Conv, ConvTranspose, Gemm (either transB), or a
   MatMul of a 2-D input by a constant 2-D weight, with a constant float weight
   (and constant bias if any), no fused activation yet, and no other reader of
   that output (or it would see the un-normalized values).
3. Scale the weights per output channel by s and set bias' = bias * s + t
   (`_affine.py`; a MatMul becomes a Gemm carrying the bias).
4. The producer takes over the BN's output name; BN and its constants go.
A BN that cannot be folded (e.g. on a graph input) stays as a standalone op.
"""
from __future__ import annotations

import numpy as np

from ._affine import fold_channel_affine, out_channels
from ._util import attrs_of, const, only_reader, producer, take_over_output


def fold_batchnorm(graph) -> bool:
    """Fold BatchNormalization into the preceding linear op; True if any BN was folded."""
    changed = False
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
        params = _bn_affine(graph, bn)
        if params is None:
            continue
        source = producer(graph, bn.inputs[0])
        if source is None or not only_reader(graph, bn.inputs[0], bn):
            continue
        m = out_channels(graph, source)
        s, t = params
        if m is None or s.size not in (1, m):
            continue
        fold_channel_affine(graph, source, s, t)
        take_over_output(graph, source, bn)
        changed = True
    if changed:
        graph.remove_unused_values()
    return changed


def _bn_affine(graph, bn):
    """(s, t) of an inference-mode BN with constant parameters, else None."""
    attrs = attrs_of(bn)
    if attrs.get("training_mode", 0) or any(o for o in bn.outputs[1:]):
        return None
    params = [const(graph, n) for n in bn.inputs[1:5]]
    if len(params) != 4 or any(p is None for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
    s = scale / np.sqrt(var + attrs["epsilon"])
    return s, bias - mean * s
