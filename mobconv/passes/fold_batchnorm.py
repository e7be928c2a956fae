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
A BN that cannot be folded (e.g. on a graph input) stays as a standalone op,
and so does one whose var + epsilon is not positive (its outputs are Inf or NaN
wherever the runtime computes them) or whose folded weights would overflow:
the fold never turns a finite output into Inf or NaN, and prints no warning.
"""
from __future__ import annotations

import numpy as np

from ._affine import fold_channel_affine, out_channels
from ._util import Uses, attrs_of


def fold_batchnorm(graph) -> bool:
    """Fold BatchNormalization into the preceding linear op; True if any BN was folded."""
    uses = Uses(graph)
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
        params = _bn_affine(uses, bn)
        if params is None:
            continue
        source = uses.producer(bn.inputs[0])
        if source is None or not uses.only_reader(bn.inputs[0], bn):
            continue
        m = out_channels(uses, source)
        s, t = params
        if m is None or s.size not in (1, m):
            continue
        if fold_channel_affine(uses, source, s, t):
            uses.take_over_output(source, bn)
    changed = uses.commit()
    if changed:
        graph.remove_unused_values()
    return changed


def _bn_affine(uses, bn):
    """(s, t) of an inference-mode BN with constant parameters and var + epsilon > 0, else None."""
    attrs = attrs_of(bn)
    if attrs.get("training_mode", 0) or any(o for o in bn.outputs[1:]):
        return None
    params = [uses.const(n) for n in bn.inputs[1:5]]
    if len(params) != 4 or any(p is None for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
    denom = var + attrs["epsilon"]
    if not np.all(denom > 0):  # also false for NaN
        return None
    with np.errstate(all="ignore"):
        s = scale / np.sqrt(denom)
        t = bias - mean * s
    if not (np.isfinite(s).all() and np.isfinite(t).all()):
        return None
    return s, t
