"""Matrix products: Gemm and MatMul (ONNX opset 13 semantics).

Both carry the fused activation attributes of `_fused.py` so that a
following Relu/Clip/... can run inside the same kernel. float16 inputs are
accumulated in float32 and rounded back once, as a careful kernel would.
"""
from __future__ import annotations

import numpy as np

from ._fused import FUSED_ACTIVATION_ATTRS, apply_activation
from .conv import compute_dtype
from .registry import Attr, AttrKind, broadcast_shapes, op


def _sym(d) -> bool:
    return not isinstance(d, (int, np.integer))


def _same_dim(a, b) -> bool:
    return _sym(a) or _sym(b) or a == b


def _infer_gemm(ctx):
    a, b, c = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if len(a) != 2 or len(b) != 2:
        raise ctx.error(f"A and B must be 2-D, got {tuple(a)} and {tuple(b)}")
    m, ka = (a[1], a[0]) if ctx.attrs["transA"] else (a[0], a[1])
    kb, n = (b[1], b[0]) if ctx.attrs["transB"] else (b[0], b[1])
    if not _same_dim(ka, kb):
        raise ctx.error(f"inner dims differ: A {tuple(a)} (transA={ctx.attrs['transA']}) and "
                        f"B {tuple(b)} (transB={ctx.attrs['transB']}) give K={ka} vs K={kb}")
    if c is not None:
        if len(c) > 2 or any(not _sym(d) and d != 1 and not _same_dim(d, t)
                             for d, t in zip(reversed(c), (n, m))):
            raise ctx.error(f"C {tuple(c)} must broadcast to (M, N) = ({m}, {n})")
    return [(ctx.dtype(0), (m, n))]


@op("Gemm", inputs=["A", "B", "C?"], outputs=["Y"], infer=_infer_gemm,
    attrs=(Attr("alpha", AttrKind.FLOAT, 1.0), Attr("beta", AttrKind.FLOAT, 1.0),
           Attr("transA", AttrKind.INT, 0), Attr("transB", AttrKind.INT, 0))
    + FUSED_ACTIVATION_ATTRS)
def gemm(a, b, c=None, *, alpha, beta, transA, transB, activation, activation_params):
    """ONNX Gemm: Y = alpha * A' B' + beta * C (C broadcast to (M, N)).

    Extra attributes: `activation`/`activation_params` (fused activation, _fused.py).
    """
    cdt = compute_dtype(a.dtype)
    aa = a.astype(cdt, copy=False)
    bb = b.astype(cdt, copy=False)
    if transA:
        aa = aa.T
    if transB:
        bb = bb.T
    y = aa @ bb
    if alpha != 1.0:
        y = y * cdt.type(alpha)
    if c is not None:
        cc = c.astype(cdt, copy=False)
        y = y + (cc if beta == 1.0 else cc * cdt.type(beta))
    return apply_activation(y.astype(cdt, copy=False), activation, activation_params).astype(a.dtype, copy=False)


def _infer_matmul(ctx):
    a, b = ctx.shape(0), ctx.shape(1)
    if len(a) == 0 or len(b) == 0:
        raise ctx.error(f"inputs must be at least 1-D, got {tuple(a)} and {tuple(b)}")
    a2 = (1, a[0]) if len(a) == 1 else tuple(a)
    b2 = (b[0], 1) if len(b) == 1 else tuple(b)
    if not _same_dim(a2[-1], b2[-2]):
        raise ctx.error(f"inner dims differ: A {tuple(a)} has K={a2[-1]}, B {tuple(b)} has K={b2[-2]}")
    batch = broadcast_shapes(a2[:-2], b2[:-2], ctx=ctx) if len(a2) > 2 or len(b2) > 2 else ()
    out = batch + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())
    return [(ctx.dtype(0), out)]


@op("MatMul", inputs=["A", "B"], outputs=["Y"], attrs=FUSED_ACTIVATION_ATTRS, infer=_infer_matmul)
def matmul(a, b, *, activation, activation_params):
    """ONNX MatMul (numpy.matmul semantics: batched, broadcast, 1-D promotion).

    Extra attributes: `activation`/`activation_params` (fused activation, _fused.py).
    """
    cdt = compute_dtype(a.dtype)
    y = np.matmul(a.astype(cdt, copy=False), b.astype(cdt, copy=False))
    return apply_activation(np.asarray(y), activation, activation_params).astype(a.dtype, copy=False)
