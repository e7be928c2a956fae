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
A zero k is exact for Mul (weights and bias become 0), Add and Sub; a Div by a
zero is left alone (its result is Inf or NaN), and so is a fold whose weights
would overflow (see `_affine.py`). Only the map of the node's own op is
computed, so a zero bias or scale prints no divide-by-zero warning.
"""
from __future__ import annotations

import numpy as np

from ._affine import fold_channel_affine, out_channels
from ._util import Uses, is_float


def fold_mul_add(graph) -> bool:
    """Fold per-channel constant arithmetic into the preceding linear op; True if any was folded."""
    uses = Uses(graph)
    for node in [n for n in graph.nodes if n.op in ("Mul", "Add", "Sub", "Div")]:
        if len(node.inputs) != 2 or len(node.outputs) != 1:
            continue
        orders = [(0, 1), (1, 0)] if node.op in ("Mul", "Add") else [(0, 1)]
        for x_i, k_i in orders:
            if _try_fold(uses, node, node.inputs[x_i], node.inputs[k_i]):
                break
    changed = uses.commit()
    if changed:
        graph.remove_unused_values()
    return changed


def _affine_map(op: str, k: np.ndarray):
    """(s, t) with op(y, k) == s * y + t, or None (Div by zero)."""
    if op == "Mul":
        return k, np.zeros_like(k)
    if op == "Add":
        return np.ones_like(k), k
    if op == "Sub":
        return np.ones_like(k), -k
    if not np.all(k != 0):  # Div
        return None
    return 1 / k, np.zeros_like(k)


def _try_fold(uses, node, x, k_name) -> bool:
    graph = uses.graph
    k = uses.const(k_name)
    x_value = graph.values.get(x)
    if k is None or x_value is None or x_value.shape is None or not is_float(k.dtype.name):
        return False
    rank = len(x_value.shape)
    if k.ndim > rank or rank < 2:
        return False
    full = (1,) * (rank - k.ndim) + k.shape
    if any(d != 1 for i, d in enumerate(full) if i != 1):
        return False
    source = uses.producer(x)
    if source is None or not uses.only_reader(x, node):
        return False
    m = out_channels(uses, source)
    if m is None or k.size not in (1, m):
        return False
    affine = _affine_map(node.op, k.astype(np.float64).reshape(-1))
    if affine is None or not fold_channel_affine(uses, source, *affine):
        return False
    uses.take_over_output(source, node)
    return True
