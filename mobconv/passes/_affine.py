"""Folding a per-output-channel affine map `y' = s * y + t` into a linear op's weights.

Shared by fold_batchnorm (BatchNormalization) and fold_mul_add (Caffe Scale ->
Mul + Add). The channel axis is 1 for Conv/ConvTranspose (NCHW) and for the
2-D outputs of Gemm and MatMul, so one helper serves all four:

- Conv           W (M, C/g, k...)      -> W * s[m],          B -> B * s + t
- ConvTranspose  W (C, M/g, k...)      -> W[c, j] * s[group(c) * M/g + j], B likewise
- Gemm           B (K, N) or (N, K)    -> columns/rows scaled, C -> C * s + t / beta
- MatMul         A (rows, K) @ W (K, N) becomes Gemm(A, W * s, t)

Nothing is edited in place: the scaled weights and the bias are new constants.
The arithmetic runs in float64 with numpy's warnings off, and a fold whose new
weights or bias would not be finite in the weight dtype (a huge scale, a tiny
Div or Gemm beta, an Inf or NaN parameter) is not made: the nodes stay as they
are, so folding never turns a finite output into Inf or NaN.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._util import attrs_of, is_float


def out_channels(uses, node) -> Optional[int]:
    """Number of output channels (axis 1) of a foldable linear node, or None if not foldable.

    `uses`: the pass's `_util.Uses` of the graph.
    """
    graph = uses.graph
    if node.op not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or len(node.outputs) != 1:
        return None
    attrs = attrs_of(node)
    if attrs.get("activation"):
        return None
    if len(node.inputs) > 3 and node.inputs[3]:  # a fused residual is not scaled with W
        return None
    weight_name = node.inputs[1]
    w = uses.const(weight_name)
    if w is None or not is_float(w.dtype.name) or graph.values[weight_name].quant is not None:
        return None
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    if bias_name and uses.const(bias_name) is None:
        return None
    if node.op == "Conv":
        return w.shape[0]
    if node.op == "ConvTranspose":
        return w.shape[1] * attrs["group"]
    if node.op == "Gemm":
        if w.ndim != 2:
            return None
        return w.shape[0] if attrs["transB"] else w.shape[1]
    a = graph.values.get(node.inputs[0])
    if w.ndim != 2 or a is None or a.shape is None or len(a.shape) != 2:
        return None
    return w.shape[1]


def fold_channel_affine(uses, node, s: np.ndarray, t: np.ndarray) -> bool:
    """Rewrite `node` (checked with out_channels) so its output becomes s * y + t per channel.

    False (and `node` unchanged) when the new weights or bias would not be finite.
    """
    with np.errstate(all="ignore"):
        folded = _folded_params(uses, node, s, t)
    if folded is None:
        return False
    w_new, b_new, beta = folded
    w_name = node.inputs[1]
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    w_new_name = uses.new_constant(f"{w_name}_folded", w_new)
    b_base = bias_name or f"{node.name}_bias"
    b_new_name = uses.new_constant(f"{b_base}_folded", b_new)
    if beta is not None:
        node.attrs["beta"] = beta
    if node.op == "MatMul":
        node.op = "Gemm"
    uses.set_inputs(node, [node.inputs[0], w_new_name, b_new_name])
    return True


def _folded_params(uses, node, s, t):
    """(new weights, new bias, new Gemm beta or None) in the weight dtype, or None when not finite."""
    attrs = attrs_of(node)
    w_name = node.inputs[1]
    w = uses.const(w_name)
    dtype = w.dtype
    m = out_channels(uses, node)
    s = np.broadcast_to(np.asarray(s, np.float64).reshape(-1), (m,))
    t = np.broadcast_to(np.asarray(t, np.float64).reshape(-1), (m,))
    w64 = w.astype(np.float64)
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    bias = uses.const(bias_name) if bias_name else None

    if node.op == "Conv":
        w_new = w64 * s.reshape((m,) + (1,) * (w.ndim - 1))
    elif node.op == "ConvTranspose":
        g = attrs["group"]
        grouped = w64.reshape((g, w.shape[0] // g) + w.shape[1:])
        w_new = (grouped * s.reshape((g, 1, m // g) + (1,) * (w.ndim - 2))).reshape(w.shape)
    elif node.op == "Gemm":
        w_new = w64 * (s[:, None] if attrs["transB"] else s[None, :])
    else:  # MatMul -> Gemm
        w_new = w64 * s[None, :]

    beta = None
    if node.op == "Gemm":
        if bias is None or attrs["beta"] == 0:
            b_new, beta = t, 1.0
        else:
            b_new = bias.astype(np.float64) * s + t / attrs["beta"]
    else:
        b_new = t if bias is None else bias.astype(np.float64) * s + t

    w_new, b_new = w_new.astype(dtype), np.asarray(b_new).astype(dtype)
    if not (np.isfinite(w_new).all() and np.isfinite(b_new).all()):
        return None
    return w_new, b_new, beta
