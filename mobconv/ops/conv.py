"""Convolutions: Conv and ConvTranspose (ONNX opset 22 semantics, N-d).

Both support groups (depthwise included), dilations, strides, explicit pads
and auto_pad, plus the fused activation attributes of `_fused.py`.

Conv algorithm (im2col): pad X, take a strided *view* of every kernel
window (no copy), copy it once into a (N, G, Cg*K, OH*OW) column matrix and
multiply it by the (G, M/G, Cg*K) weights with one batched matmul. Loops run
over nothing but batch-free numpy calls, so 224x224 networks take seconds.

ConvTranspose algorithm (col2im): one matmul turns each input pixel into
its (M/G, K) output contributions, then a loop over the K kernel offsets (not
over pixels) scatter-adds strided slices into the full output, which is
finally cropped by the pads (or zero-extended by output_padding).

The spatial helpers here (`conv_pads`, `spatial_out`) are shared with pool.py.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._fused import FUSED_ACTIVATION_ATTRS, apply_activation
from .registry import Attr, AttrKind, op

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def compute_dtype(dtype) -> np.dtype:
    """Accumulation dtype: float16/bfloat16 compute in float32, others as-is."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize < 4 else dtype


def _sym(d) -> bool:
    return not isinstance(d, (int, np.integer))


def conv_pads(in_sizes, kernel, strides, dilations, pads, auto_pad, ceil_mode=False):
    """Resolve (pads_begin, pads_end, out_sizes) for a sliding window op.

    Dims of `in_sizes` may be symbols (strings); their outputs become symbol
    expressions. ONNX rules: SAME_* -> out = ceil(in / stride) with the total
    padding split evenly (the extra one at the end for SAME_UPPER, at the
    beginning for SAME_LOWER); VALID -> no padding; NOTSET -> explicit pads,
    out = floor((in + pads - window) / stride) + 1 (ceil in ceil_mode, where
    the last window must start inside the input or the left padding).
    """
    nd = len(in_sizes)
    begin, end, out = [], [], []
    for i in range(nd):
        size, k, s, d = in_sizes[i], kernel[i], strides[i], dilations[i]
        window = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if _sym(size):
                begin.append(None)
                end.append(None)
                out.append(size if s == 1 else f"ceil({size}/{s})")
                continue
            o = -(-size // s)
            total = max(0, (o - 1) * s + window - size)
            small, big = total // 2, total - total // 2
            b, e = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        elif auto_pad == "VALID":
            b, e = 0, 0
            if _sym(size):
                begin.append(0)
                end.append(0)
                out.append(size if window == 1 and s == 1 else f"({size}-{window})//{s}+1")
                continue
            o = (size - window) // s + 1
        else:
            b, e = (pads[i], pads[i + nd]) if pads else (0, 0)
            if _sym(size):
                begin.append(b)
                end.append(e)
                extra = b + e - window
                if s == 1 and extra == -1:
                    out.append(size)
                else:
                    rounding = "ceil" if ceil_mode else "floor"
                    out.append(f"{rounding}(({size}{extra:+d})/{s})+1")
                continue
            span = size + b + e - window
            if ceil_mode:
                o = -(-span // s) + 1
                if (o - 1) * s >= size + b:  # last window would start in the right padding
                    o -= 1
            else:
                o = span // s + 1
        begin.append(b)
        end.append(e)
        out.append(o)
    return begin, end, out


def spatial_defaults(nd, kernel_shape, strides, dilations, pads):
    strides = list(strides) or [1] * nd
    dilations = list(dilations) or [1] * nd
    pads = list(pads) or [0] * (2 * nd)
    return list(kernel_shape), strides, dilations, pads


def window_view(xp, out_sizes, kernel, strides, dilations):
    """View of padded xp (N, C, *S) as (N, C, *kernel, *out) windows, without copying."""
    nd = len(out_sizes)
    st = xp.strides
    shape = xp.shape[:2] + tuple(kernel) + tuple(out_sizes)
    strides_ = st[:2] + tuple(st[2 + i] * dilations[i] for i in range(nd)) + tuple(
        st[2 + i] * strides[i] for i in range(nd)
    )
    return as_strided(xp, shape=shape, strides=strides_, writeable=False)


def pad_spatial(x, begin, end, value=0):
    """Pad spatial dims; negative amounts crop."""
    nd = x.ndim - 2
    crop = tuple(slice(max(-b, 0), x.shape[2 + i] - max(-e, 0)) for i, (b, e) in enumerate(zip(begin, end)))
    x = x[(slice(None), slice(None)) + crop]
    widths = [(0, 0), (0, 0)] + [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if any(w != (0, 0) for w in widths):
        x = np.pad(x, widths, mode="constant", constant_values=value)
    assert x.ndim == nd + 2
    return x


_CONV_ATTRS = (
    Attr("auto_pad", AttrKind.STRING, "NOTSET"),
    Attr("dilations", AttrKind.INTS, []),
    Attr("group", AttrKind.INT, 1),
    Attr("kernel_shape", AttrKind.INTS, []),
    Attr("pads", AttrKind.INTS, []),
    Attr("strides", AttrKind.INTS, []),
)


def _check_common(ctx, x, w, group, kernel_shape, strides, dilations, pads, auto_pad):
    if x is None or w is None:
        raise ctx.error("inputs X and W are required")
    if len(x) < 3:
        raise ctx.error(f"X must have rank >= 3 (N, C, spatial...), got shape {tuple(x)}")
    if len(w) != len(x):
        raise ctx.error(f"W rank {len(w)} must equal X rank {len(x)} (X {tuple(x)}, W {tuple(w)})")
    nd = len(x) - 2
    if group < 1:
        raise ctx.error(f"group must be >= 1, got {group}")
    if auto_pad not in AUTO_PADS:
        raise ctx.error(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got {auto_pad!r}")
    kernel = kernel_shape or list(w[2:])
    if any(_sym(k) for k in kernel):
        raise ctx.error(f"kernel spatial dims must be known, got W shape {tuple(w)}")
    for name, vals, n in (("kernel_shape", kernel, nd), ("strides", strides, nd),
                          ("dilations", dilations, nd), ("pads", pads, 2 * nd)):
        if vals and len(vals) != n:
            raise ctx.error(f"{name} must have {n} values for {nd} spatial dims, got {list(vals)}")
    if any(s < 1 for s in strides) or any(d < 1 for d in dilations):
        raise ctx.error(f"strides and dilations must be >= 1, got {list(strides)} / {list(dilations)}")
    if any(k < 1 for k in kernel):  # (an empty window: the runtime refuses it too)
        raise ctx.error(f"kernel spatial dims must be >= 1, got {list(kernel)} (W shape {tuple(w)})")
    if kernel_shape and not any(_sym(d) for d in w[2:]) and list(kernel_shape) != list(w[2:]):
        raise ctx.error(f"kernel_shape {list(kernel_shape)} does not match W spatial dims {list(w[2:])}")
    return nd, spatial_defaults(nd, kernel, strides, dilations, pads)


def _infer_conv(ctx):
    a = ctx.attrs
    x, w, b = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    nd, (kernel, strides, dilations, pads) = _check_common(
        ctx, x, w, a["group"], a["kernel_shape"], a["strides"], a["dilations"], a["pads"], a["auto_pad"])
    g = a["group"]
    c, m, cg = x[1], w[0], w[1]
    if not _sym(c) and not _sym(cg) and c != cg * g:
        raise ctx.error(f"X has {c} channels but W {tuple(w)} with group={g} expects {cg * g} "
                        "(W shape is (M, C/group, k...))")
    if not _sym(m) and m % g:
        raise ctx.error(f"W output channels {m} must be divisible by group={g}")
    if b is not None and (len(b) != 1 or (not _sym(b[0]) and not _sym(m) and b[0] != m)):
        raise ctx.error(f"B must have shape ({m},), got {tuple(b)}")
    _, _, out = conv_pads(x[2:], kernel, strides, dilations, pads, a["auto_pad"])
    for i, o in enumerate(out):
        if not _sym(o) and o < 1:
            raise ctx.error(f"output spatial dim {i} would be {o} (input {tuple(x)}, kernel {kernel}, "
                            f"strides {strides}, dilations {dilations}, pads {pads})")
    y = (x[0], m, *out)
    r = ctx.shape(3)
    if r is not None and (len(r) != len(y) or any(
            not _sym(p) and not _sym(q) and p != q for p, q in zip(r, y))):
        raise ctx.error(f"R (fused residual) must have the output shape {tuple(y)}, got {tuple(r)}")
    return [(ctx.dtype(0), y)]


@op("Conv", inputs=["X", "W", "B?", "R?"], outputs=["Y"],
    attrs=_CONV_ATTRS + FUSED_ACTIVATION_ATTRS, infer=_infer_conv)
def conv(x, w, b=None, r=None, *, auto_pad, dilations, group, kernel_shape, pads, strides,
         activation, activation_params):
    """ONNX Conv: X (N, C, *S), W (M, C/group, *k), B (M,) -> Y (N, M, *O).

    Extras beyond ONNX: `activation`/`activation_params` (fused activation, _fused.py)
    and the optional input R (fused residual, shape of Y, from passes/fuse_residual.py):
    Y = activation(conv(X, W) + B + R).
    """
    nd = x.ndim - 2
    kernel, strides, dilations, pads = spatial_defaults(nd, kernel_shape or w.shape[2:], strides, dilations, pads)
    begin, end, out = conv_pads(x.shape[2:], kernel, strides, dilations, pads, auto_pad)
    cdt = compute_dtype(x.dtype)
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    g = group
    mg = m // g
    xp = pad_spatial(x.astype(cdt, copy=False), begin, end)
    ksize = int(np.prod(kernel))
    osize = int(np.prod(out))
    wc = w.astype(cdt, copy=False)
    if ksize == 1 and all(s == 1 for s in strides):
        cols = xp.reshape(n, g, cg, osize)  # 1x1 conv, stride 1: X is its own column matrix
    else:
        view = window_view(xp, out, kernel, strides, dilations)  # (N, C, *k, *o)
        cols = view.reshape(n, g, cg * ksize, osize)
    if cg == 1 and mg == 1:  # depthwise: a per-channel dot product over the kernel
        y = np.einsum("ngko,gk->ngo", cols, wc.reshape(g, ksize), optimize=True)
    else:
        y = np.matmul(wc.reshape(g, mg, cg * ksize), cols)  # (N, G, Mg, O)
    y = y.reshape(n, m, *out)
    if b is not None:
        y = y + b.astype(cdt, copy=False).reshape((m,) + (1,) * nd)
    if r is not None:
        y = y + r.astype(cdt, copy=False)
    return apply_activation(y, activation, activation_params).astype(x.dtype, copy=False)


def _transpose_geometry(in_sizes, kernel, strides, dilations, pads, output_padding, output_shape, auto_pad):
    """(pads_begin, pads_end, out_sizes) of ConvTranspose following the ONNX spec."""
    nd = len(in_sizes)
    output_padding = list(output_padding) or [0] * nd
    full = [strides[i] * (in_sizes[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
            if not _sym(in_sizes[i]) else None for i in range(nd)]
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = list(output_shape[-nd:]) if output_shape else [
            in_sizes[i] * strides[i] if not _sym(in_sizes[i]) else
            (in_sizes[i] if strides[i] == 1 else f"{in_sizes[i]}*{strides[i]}") for i in range(nd)]
        begin, end = [], []
        for i in range(nd):
            if full[i] is None:
                begin.append(None)
                end.append(None)
                continue
            total = full[i] - target[i]
            if auto_pad == "SAME_UPPER":
                begin.append(total // 2)
                end.append(total - total // 2)
            else:
                begin.append(total - total // 2)
                end.append(total // 2)
        return begin, end, target
    if auto_pad == "VALID" or not pads:
        pads = [0] * (2 * nd)
    begin, end = list(pads[:nd]), list(pads[nd:])
    out = []
    for i in range(nd):
        if full[i] is None:
            extra = output_padding[i] + (kernel[i] - 1) * dilations[i] + 1 - begin[i] - end[i] - strides[i]
            out.append(f"{in_sizes[i]}*{strides[i]}{extra:+d}")
        else:
            out.append(full[i] - begin[i] - end[i])
    return begin, end, out


_CONVT_ATTRS = _CONV_ATTRS + (
    Attr("output_padding", AttrKind.INTS, []),
    Attr("output_shape", AttrKind.INTS, []),
)


def _infer_conv_transpose(ctx):
    a = ctx.attrs
    x, w, b = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    nd, (kernel, strides, dilations, pads) = _check_common(
        ctx, x, w, a["group"], a["kernel_shape"], a["strides"], a["dilations"], a["pads"], a["auto_pad"])
    g = a["group"]
    c, mg = x[1], w[1]
    if not _sym(c) and not _sym(w[0]) and c != w[0]:
        raise ctx.error(f"X has {c} channels but W {tuple(w)} expects {w[0]} (W shape is (C, M/group, k...))")
    if not _sym(c) and c % g:
        raise ctx.error(f"X channels {c} must be divisible by group={g}")
    m = mg * g if not _sym(mg) else mg
    if b is not None and (len(b) != 1 or (not _sym(b[0]) and not _sym(m) and b[0] != m)):
        raise ctx.error(f"B must have shape ({m},), got {tuple(b)}")
    op_ = a["output_padding"]
    if op_ and len(op_) != nd:
        raise ctx.error(f"output_padding must have {nd} values, got {op_}")
    if op_ and any(p >= max(s, d) for p, s, d in zip(op_, strides, dilations)):
        raise ctx.error(f"output_padding {op_} must be smaller than the stride or dilation")
    _, _, out = _transpose_geometry(x[2:], kernel, strides, dilations, pads, op_, a["output_shape"], a["auto_pad"])
    for i, o in enumerate(out):
        if not _sym(o) and o < 1:
            raise ctx.error(f"output spatial dim {i} would be {o}")
    return [(ctx.dtype(0), (x[0], m, *out))]


@op("ConvTranspose", inputs=["X", "W", "B?"], outputs=["Y"],
    attrs=_CONVT_ATTRS + FUSED_ACTIVATION_ATTRS, infer=_infer_conv_transpose)
def conv_transpose(x, w, b=None, *, auto_pad, dilations, group, kernel_shape, pads, strides,
                   output_padding, output_shape, activation, activation_params):
    """ONNX ConvTranspose: X (N, C, *S), W (C, M/group, *k), B (M,) -> Y (N, M, *O).

    If output_shape is set, pads are derived from it (SAME_UPPER puts the odd
    padding at the end, otherwise at the beginning). Extra attributes:
    `activation`/`activation_params` (fused activation, _fused.py).
    """
    nd = x.ndim - 2
    kernel, strides, dilations, pads = spatial_defaults(nd, kernel_shape or w.shape[2:], strides, dilations, pads)
    begin, end, out = _transpose_geometry(x.shape[2:], kernel, strides, dilations, pads,
                                          output_padding, output_shape, auto_pad)
    cdt = compute_dtype(x.dtype)
    n, c = x.shape[:2]
    g = group
    cg, mg = c // g, w.shape[1]
    m = mg * g
    ksize = int(np.prod(kernel))
    isize = int(np.prod(x.shape[2:]))
    if x.size == 0 or w.size == 0:  # no contributions (N, C or S empty, or M = 0): zeros + bias
        y = np.zeros((n, m, *out), dtype=cdt)
        if b is not None:
            y = y + b.astype(cdt, copy=False).reshape((m,) + (1,) * nd)
        return apply_activation(y, activation, activation_params).astype(x.dtype, copy=False)
    xc = x.astype(cdt, copy=False).reshape(n, g, cg, isize)
    wt = w.astype(cdt, copy=False).reshape(g, cg, mg * ksize).transpose(0, 2, 1)
    cols = np.matmul(wt, xc).reshape(n, g * mg, *kernel, *x.shape[2:])  # (N, M, *k, *S)
    # The "full" output: every contribution, before cropping by the pads.
    full = [(x.shape[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 for i in range(nd)]
    size = [max(full[i], begin[i] + out[i]) for i in range(nd)]
    lead = [max(0, -begin[i]) for i in range(nd)]  # negative begin pad: zeros before
    y = np.zeros((n, m, *[size[i] + lead[i] for i in range(nd)]), dtype=cdt)
    for k in np.ndindex(*kernel):
        dst = tuple(slice(lead[i] + k[i] * dilations[i],
                          lead[i] + k[i] * dilations[i] + (x.shape[2 + i] - 1) * strides[i] + 1,
                          strides[i]) for i in range(nd))
        y[(slice(None), slice(None)) + dst] += cols[(slice(None), slice(None)) + k]
    crop = tuple(slice(lead[i] + begin[i], lead[i] + begin[i] + out[i]) for i in range(nd))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.astype(cdt, copy=False).reshape((m,) + (1,) * nd)
    return apply_activation(y, activation, activation_params).astype(x.dtype, copy=False)
