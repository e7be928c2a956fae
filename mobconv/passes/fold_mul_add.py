"""Mul/Add/Sub/Div by a per-channel constant after Conv/ConvTranspose/Gemm/MatMul, folded into weights.

First, hard-sigmoid/hard-swish written as Relu6(x + 3) / 6 arithmetic become the
IR's HardSigmoid/HardSwish (`_hard_curves.py`), before their constants fold away.

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

Before a Conv (DenseNet-style BN -> Conv, Rescaling before the stem), when the
arithmetic node has no fold after a producer: y = Conv(s * x + t) is
Conv(x) with W[o, j] *= s[c] and B[o] += sum_j,k W[o, j, k] * t[c] (c the input
channel j of o's group). This is exact only where the Conv reads no zero
padding: a padded cell holds 0, not s * 0 + t, so a shift t != 0 would be added
where the unfolded graph added nothing. So Mul/Div (t = 0, a padded 0 stays 0)
fold before any Conv, Add/Sub only before a Conv whose pads are all 0 and whose
auto_pad is NOTSET or VALID (1x1 convs, VALID); otherwise they stay. The
constant must be per input channel (axis 1), the Conv the node's only reader
(as its input 0), with constant float weights, no fused residual, and the
folded weights finite.
"""
from __future__ import annotations

import numpy as np

from ._hard_curves import fuse_hard_curves
from ._affine import fold_channel_affine, out_channels
from ._util import Uses, attrs_of, is_float


def fold_mul_add(graph) -> bool:
    """Fold per-channel constant arithmetic into the preceding linear op; True if any was folded."""
    uses = Uses(graph)
    fuse_hard_curves(uses)  # first: the + 3 of Relu6(x + 3) / 6 must not fold into x's Conv
    for node in [n for n in graph.nodes if n.op in ("Mul", "Add", "Sub", "Div")]:
        if uses.is_removed(node) or node.op not in ("Mul", "Add", "Sub", "Div"):
            continue
        if len(node.inputs) != 2 or len(node.outputs) != 1:
            continue
        orders = [(0, 1), (1, 0)] if node.op in ("Mul", "Add") else [(0, 1)]
        for x_i, k_i in orders:
            if _try_fold(uses, node, node.inputs[x_i], node.inputs[k_i]):
                break
            if _try_fold_before(uses, node, node.inputs[x_i], node.inputs[k_i]):
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


def _channel_constant(graph, uses, x, k_name):
    """The constant k as a float64 vector when it varies at most along axis 1 of x."""
    k = uses.const(k_name)
    x_value = graph.values.get(x)
    if k is None or x_value is None or x_value.shape is None or not is_float(k.dtype.name):
        return None
    rank = len(x_value.shape)
    if k.ndim > rank or rank < 2 or graph.values[k_name].quant is not None:
        return None
    full = (1,) * (rank - k.ndim) + k.shape
    if any(d != 1 for i, d in enumerate(full) if i != 1):
        return None
    return k.astype(np.float64).reshape(-1)


def _try_fold_before(uses, node, x, k_name) -> bool:
    """Fold op(x, k) into the Conv that is its only reader (see the module docstring)."""
    graph = uses.graph
    out = node.outputs[0]
    k = _channel_constant(graph, uses, x, k_name)
    if k is None or out in uses.outputs or graph.values[x].quant is not None:
        return False
    readers = uses.readers(out)
    if len(readers) != 1 or readers[0].op != "Conv":
        return False
    conv = readers[0]
    if conv.inputs[0] != out or out in conv.inputs[1:] or (len(conv.inputs) > 3 and conv.inputs[3]):
        return False
    attrs = attrs_of(conv)
    w = uses.const(conv.inputs[1])
    if w is None or not is_float(w.dtype.name) or graph.values[conv.inputs[1]].quant is not None:
        return False
    bias_name = conv.inputs[2] if len(conv.inputs) > 2 else ""
    b = uses.const(bias_name) if bias_name else np.zeros(w.shape[0], w.dtype)
    if b is None:
        return False
    affine = _affine_map(node.op, k)
    if affine is None:
        return False
    s, t = affine
    shifts = np.any(t != 0)
    if shifts and (any(int(p) != 0 for p in attrs.get("pads") or []) or
                   attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID")):
        return False  # a padded 0 would become t after the fold
    group = int(attrs.get("group", 1))
    per_group = w.shape[1]
    channels = per_group * group
    if k.size not in (1, channels):
        return False
    s = np.broadcast_to(s, (channels,))
    t = np.broadcast_to(t, (channels,))
    out_per_group = w.shape[0] // group
    # input channel read by W[o, j]: (o // out_per_group) * per_group + j
    index = (np.arange(w.shape[0])[:, None] // out_per_group) * per_group + np.arange(per_group)[None, :]
    w64 = w.astype(np.float64)
    extra = (1,) * (w.ndim - 2)
    with np.errstate(all="ignore"):
        new_w = w64 * s[index].reshape(index.shape + extra)
        new_b = b.astype(np.float64) + (w64 * t[index].reshape(index.shape + extra)).reshape(w.shape[0], -1).sum(1)
    new_w, new_b = new_w.astype(w.dtype), new_b.astype(b.dtype)
    if not (np.all(np.isfinite(new_w)) and np.all(np.isfinite(new_b))):
        return False
    inputs = list(conv.inputs) + [""] * (3 - len(conv.inputs))
    inputs[0] = x
    inputs[1] = uses.new_constant(conv.inputs[1], new_w)
    inputs[2] = uses.new_constant(bias_name or f"{conv.name}_bias", new_b)
    uses.set_inputs(conv, inputs)
    uses.remove(node)
    return True
