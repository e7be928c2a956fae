"""Dynamic-range int8 (docs/quantization.md, "Dynamic-range int8"): the exact oracle.

A MatMul or Gemm (or a 1x1 stride-1 Conv, each pixel's channel vector a row) whose
weight (input 1) is an int8 constant with symmetric quantization parameters (zero
points 0; per tensor or per output column) and whose
activation input and output are float32. At run time every row of A (each vector
along A's last axis; a column of A for Gemm with transA) is quantized to int8,
symmetrically, with its own scale (TFLite's dynamic-range scheme):

    amax  = max_k |a[k]|                      (exact; NaN/inf rows: below)
    inv   = float32(127 / amax)               one float32 division
    q[k]  = clamp(round_half_to_even(float32(a[k] * inv)), -127, 127)
    s_a   = float32(amax / 127)               one float32 division
    acc   = sum_k q[k] * w[k, n]              exact integers
    v     = float32(float32(acc) * float32(s_a * s_w[n]))
    y     = float32(v + bias[n])              (Gemm C, float32; no addition without C)
    y     = activation(y)                     fused Relu / Clip only

each arrow one IEEE binary32 operation, products never fused into the addition.
A row whose `inv` overflows (amax == 0 or below ~3.7e-37: all zeros or subnormal)
quantizes to zeros with s_a = 0 (its outputs are bias + activation). A row holding a
NaN or an infinity gives NaN in every output of that row (before and regardless of
the activation). `acc` is exact in int32 for K <= 132,104 (127 * 128 * K < 2**31).
"""
from __future__ import annotations

import numpy as np

from ..errors import MobconvError
from ..ir.graph import QuantParams

_ABS_MASK = np.int32(0x7FFFFFFF)
_INF_BITS = np.int32(0x7F800000)
MAX_K = (2**31 - 1) // (127 * 128)
ACTIVATIONS = ("", "Relu", "Clip")


def quantize_rows(a) -> tuple:
    """(q int8 [R, K], s_a float32 [R], nonfinite bool [R]) of float32 rows a [R, K]."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    r, k = a.shape
    bits = a.view(np.int32) & _ABS_MASK  # |a| as integers: ordered like the floats, NaN above inf
    amax_bits = bits.max(axis=1) if k else np.zeros(r, np.int32)
    nonfinite = amax_bits >= _INF_BITS
    amax = np.where(nonfinite, 0, amax_bits).astype(np.int32).view(np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = np.float32(127) / amax  # float32 division
        zero = ~np.isfinite(inv)
        inv = np.where(zero, np.float32(0), inv).astype(np.float32)
        q = np.rint(a * inv[:, None])  # float32 product, ties to even
    q = np.where(nonfinite[:, None], 0, np.clip(q, -127, 127)).astype(np.int8)
    s_a = np.where(zero, np.float32(0), amax / np.float32(127)).astype(np.float32)
    return q, s_a, nonfinite


def _weight_scales(wq: QuantParams, n: int, axis: int, what: str) -> np.ndarray:
    scales = np.asarray(wq.scales, np.float32).reshape(-1)
    zps = np.asarray(wq.zero_points if wq.zero_points is not None and len(wq.zero_points) else [0], np.int64)
    if np.any(zps != 0):
        raise MobconvError(f"{what}: a dynamic-range weight must be quantized symmetrically (zero points 0), "
                           f"got {sorted(set(zps.tolist()))}")
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise MobconvError(f"{what}: scales must be finite and > 0, got {scales.tolist()}")
    if scales.size == 1:
        return np.broadcast_to(scales, (n,))
    if scales.size != n or wq.axis is None or wq.axis != axis:
        raise MobconvError(f"{what}: a dynamic-range weight is quantized per tensor or per output column "
                           f"(axis {axis}, {n} scales), got {scales.size} scales on axis {wq.axis}")
    return scales


def _activation(y, activation: str, params):
    if activation == "Relu":
        return np.where((y > 0) | np.isnan(y), y, np.float32(0)).astype(np.float32)
    if activation == "Clip":
        lo, hi = (np.float32(p) for p in params)
        return np.where(y < lo, lo, np.where(y > hi, hi, y)).astype(np.float32)
    if activation:
        raise MobconvError(f"a dynamic-range int8 op fuses Relu or Clip only, got {activation!r}")
    return y


def gemm_rows(a2, w, s_w, bias=None, activation="", activation_params=()):
    """y [R, N] of float rows a2 [R, K] times int8 w [K, N] (s_w float32 [N]); `bias`
    broadcasts against [R, N] (float32)."""
    r, k = a2.shape
    if k > MAX_K:
        raise MobconvError(f"a dynamic-range int8 op needs K <= {MAX_K} (int32 accumulators), got {k}")
    q, s_a, nonfinite = quantize_rows(a2)
    acc = q.astype(np.int64) @ np.asarray(w, np.int64)
    scale = (s_a[:, None] * np.asarray(s_w, np.float32)[None, :]).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # float32 overflow to inf is the rule
        y = acc.astype(np.float32) * scale
        if bias is not None:
            y = (y + np.broadcast_to(np.asarray(bias, np.float32), y.shape)).astype(np.float32)
    y = _activation(y.astype(np.float32), activation, activation_params)
    return np.where(nonfinite[:, None], np.float32(np.nan), y).astype(np.float32)


def matmul(a, w, wq: QuantParams, *, activation="", activation_params=()):
    """Dynamic-range MatMul: A [..., K] (or [K]) float32, W [K, N] int8 constant."""
    a = np.asarray(a, np.float32)
    w = np.asarray(w)
    if w.ndim != 2 or w.dtype != np.int8:
        raise MobconvError(f"a dynamic-range MatMul needs a 2-D int8 weight B, got {w.dtype} {w.shape}")
    k, n = w.shape
    if a.ndim < 1 or a.shape[-1] != k:
        raise MobconvError(f"MatMul: A {a.shape} and B {w.shape} do not multiply")
    s_w = _weight_scales(wq, n, 1, "MatMul B")
    rows = int(np.prod(a.shape[:-1], dtype=np.int64))
    y = gemm_rows(a.reshape(rows, k), w, s_w, None, activation, activation_params)
    return y.reshape(a.shape[:-1] + (n,))


def gemm(a, w, wq: QuantParams, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, activation="",
         activation_params=()):
    """Dynamic-range Gemm: A [M, K] (transA: [K, M]) float32, W [K, N] (transB: [N, K])
    int8 constant, C float32 broadcasting to [M, N]; alpha = beta = 1."""
    if alpha != 1.0 or beta != 1.0:
        raise MobconvError("a dynamic-range Gemm needs alpha = beta = 1")
    a = np.asarray(a, np.float32)
    w = np.asarray(w)
    if a.ndim != 2 or w.ndim != 2 or w.dtype != np.int8:
        raise MobconvError(f"a dynamic-range Gemm needs 2-D A and an int8 2-D B, got {a.shape} and {w.dtype} {w.shape}")
    a2 = a.T if transA else a
    wk = w.T if transB else w
    if a2.shape[1] != wk.shape[0]:
        raise MobconvError(f"Gemm: A {a.shape} and B {w.shape} do not multiply")
    n = wk.shape[1]
    s_w = _weight_scales(wq, n, 0 if transB else 1, "Gemm B")
    if c is not None and np.asarray(c).dtype != np.float32:
        raise MobconvError(f"a dynamic-range Gemm needs a float32 C, got {np.asarray(c).dtype}")
    return gemm_rows(a2, wk, s_w, c, activation, activation_params)


def pointwise_geometry(attrs, w_shape) -> bool:
    """A Conv that is a matrix product per pixel: 1x1 kernel, stride 1, no padding,
    dilation 1, group 1 (any auto_pad: a 1x1 stride-1 kernel pads nothing)."""
    ones = lambda v: all(int(x) == 1 for x in v)  # noqa: E731
    return (len(w_shape) >= 3 and ones(w_shape[2:]) and ones(attrs["strides"]) and ones(attrs["dilations"])
            and not any(int(p) for p in attrs["pads"]) and int(attrs["group"]) == 1
            and (not attrs["kernel_shape"] or ones(attrs["kernel_shape"])))


def conv1x1(x, w, wq: QuantParams, bias=None, *, activation="", activation_params=(), **geometry):
    """Dynamic-range 1x1 Conv: X [N, C, *spatial] float32, W [M, C, 1, ...] int8 constant
    (per tensor or per output channel, axis 0), bias float32 [M]. Each pixel's C-vector is
    a row (quantized on its own); y[n, m, p] = that row's output column m."""
    x = np.asarray(x, np.float32)
    w = np.asarray(w)
    if w.dtype != np.int8 or not pointwise_geometry(geometry, w.shape):
        raise MobconvError("a dynamic-range int8 Conv is 1x1, stride 1, no padding, dilation 1, group 1, "
                           f"with an int8 weight; got W {w.dtype} {w.shape}")
    n, c = x.shape[:2]
    m = w.shape[0]
    if w.shape[1] != c:
        raise MobconvError(f"Conv: X {x.shape} has {c} channels, W {w.shape} expects {w.shape[1]}")
    spatial = x.shape[2:]
    p = int(np.prod(spatial, dtype=np.int64))
    rows = x.reshape(n, c, p).transpose(0, 2, 1).reshape(n * p, c)
    s_w = _weight_scales(wq, m, 0, "Conv W")
    y = gemm_rows(rows, w.reshape(m, c).T, s_w, bias, activation, activation_params)
    return np.ascontiguousarray(y.reshape(n, p, m).transpose(0, 2, 1)).reshape((n, m) + tuple(spatial))


def is_dynamic(node, args, in_quant, out_quant) -> bool:
    """The node is the dynamic-range form: MatMul/Gemm, float32 A without parameters, int8
    B with parameters, every other tensor float without parameters."""
    if node.op not in ("MatMul", "Gemm", "Conv") or len(args) < 2 or in_quant[0] is not None or in_quant[1] is None:
        return False
    if any(q is not None for q in list(in_quant[2:]) + list(out_quant)):
        return False
    return np.asarray(args[0]).dtype == np.float32 and np.asarray(args[1]).dtype == np.int8


def run_dynamic(node, args, in_quant, attrs) -> list:
    """The reference of a dynamic-range node (is_dynamic)."""
    act = dict(activation=attrs["activation"], activation_params=attrs["activation_params"])
    if node.op == "MatMul":
        return [matmul(args[0], args[1], in_quant[1], **act)]
    if node.op == "Conv":
        if len(args) > 3 and args[3] is not None:
            raise MobconvError("a fused residual input R is not defined for a dynamic-range int8 Conv")
        geometry = {k: attrs[k] for k in ("strides", "dilations", "pads", "group", "kernel_shape")}
        return [conv1x1(args[0], args[1], in_quant[1], args[2] if len(args) > 2 else None, **act, **geometry)]
    c = args[2] if len(args) > 2 else None
    return [gemm(args[0], args[1], in_quant[1], c, alpha=attrs["alpha"], beta=attrs["beta"],
                 transA=attrs["transA"], transB=attrs["transB"], **act)]
