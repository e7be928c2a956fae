"""Mul/Add/Sub/Div by a per-channel constant after Conv/ConvTranspose/Gemm/MatMul, folded into weights.

Why: Caffe's Scale layer (and BN exported as separate arithmetic) arrives as
Conv -> Mul(gamma) -> Add(beta); those are per-channel affine maps the linear op
absorbs, exactly like BatchNormalization (`_affine.py` does the arithmetic).

Algorithm, for each Mul/Add (either operand order) and Sub/Div (constant second):
1. The other operand is a float constant that, broadcast against the output,
   varies at most along axis 1 (the channel): it has at most the output's rank
   and every dim but axis 1 is 1 (a scalar is fine).
2. The tensor operand comes from a foldable linear op (see fold_batchnorm) that
   has no other reader.
3. Mul: s = k, t = 0; Div: s = 1/k; Add: s = 1, t = k; Sub: t = -k. Fold, and
   the producer takes over the arithmetic node's output name.
"""
from __future__ import annotations

import numpy as np

from ._affine import fold_channel_affine, out_channels
from ._util import const, is_float, only_reader, producer, take_over_output


def fold_mul_add(graph) -> bool:
    """Fold per-channel constant arithmetic into the preceding linear op; True if any was folded."""
    changed = False
    for node in [n for n in graph.nodes if n.op in ("Mul", "Add", "Sub", "Div")]:
        if len(node.inputs) != 2 or len(node.outputs) != 1:
            continue
        orders = [(0, 1), (1, 0)] if node.op in ("Mul", "Add") else [(0, 1)]
        for x_i, k_i in orders:
            if _try_fold(graph, node, node.inputs[x_i], node.inputs[k_i]):
                changed = True
                break
    if changed:
        graph.remove_unused_values()
    return changed


def _try_fold(graph, node, x, k_name) -> bool:
    k = const(graph, k_name)
    x_value = graph.values.get(x)
    if k is None or x_value is None or x_value.shape is None or not is_float(k.dtype.name):
        return False
    rank = len(x_value.shape)
    if k.ndim > rank or rank < 2:
        return False
    full = (1,) * (rank - k.ndim) + k.shape
    if any(d != 1 for i, d in enumerate(full) if i != 1):
        return False
    source = producer(graph, x)
    if source is None or not only_reader(graph, x, node):
        return False
    m = out_channels(graph, source)
    if m is None or k.size not in (1, m):
        return False
    k = k.astype(np.float64).reshape(-1)
    if node.op == "Div" and not np.all(k != 0):
        return False
    zero, one = np.zeros_like(k), np.ones_like(k)
    s, t = {"Mul": (k, zero), "Div": (1 / k, zero), "Add": (one, k), "Sub": (one, -k)}[node.op]
    fold_channel_affine(graph, source, s, t)
    take_over_output(graph, source, node)
    return True
