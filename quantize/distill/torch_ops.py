"""The PyTorch op table of the student adapter: one function per IR op.

Each function takes (env, node, attrs, args) -- `env` the Student (for constants read as
Python values: shapes, axes, pads), `attrs` the node's attributes completed with the
registry's defaults, `args` the input tensors (None for an absent optional input) -- and
returns the list of output tensors. The semantics are those of mobconv's numpy reference
(mobconv/ops/*), fused attributes included: Conv/ConvTranspose/Gemm/MatMul carry
`activation`/`activation_params` (mobconv/ops/_fused.py), and Conv's optional input R is
a fused residual: Y = activation(conv(X, W) + B + R) (mobconv/passes/fuse_residual.py).
Asymmetric pads and ceil_mode become an explicit F.pad so every case maps onto torch's
symmetric-padding functions; Resize builds each axis' interpolation from the reference
itself (mobconv/ops/resize.py) unless torch's F.interpolate computes the same thing.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from mobconv.ops.conv import conv_pads

OPS: dict = {}


def register(*names):
    def wrap(fn):
        for name in names:
            OPS[name] = fn
        return fn
    return wrap


# ---- activations -------------------------------------------------------------

def activation(y, name: str, params):
    if not name:
        return y
    if name == "Relu":
        return torch.relu(y)
    if name == "Clip":
        lo, hi = params
        return torch.clamp(y, min=None if math.isinf(lo) else lo, max=None if math.isinf(hi) else hi)
    if name == "LeakyRelu":
        return F.leaky_relu(y, params[0])
    if name == "HardSigmoid":
        alpha, beta = params
        return torch.clamp(y * alpha + beta, 0, 1)
    if name == "HardSwish":
        return y * torch.clamp(y / 6 + 0.5, 0, 1)
    if name == "Sigmoid":
        return torch.sigmoid(y)
    if name == "Tanh":
        return torch.tanh(y)
    raise ValueError(f"unknown fused activation {name!r}")


def _unary(fn):
    return lambda env, node, a, args: [fn(args[0])]


for _name, _fn in (("Relu", torch.relu), ("Sigmoid", torch.sigmoid), ("Tanh", torch.tanh),
                   ("Neg", torch.neg), ("Abs", torch.abs), ("Sqrt", torch.sqrt), ("Exp", torch.exp),
                   ("Log", torch.log), ("Erf", torch.erf), ("Softplus", F.softplus),
                   ("Mish", F.mish), ("Identity", lambda x: x), ("Floor", torch.floor),
                   ("Ceil", torch.ceil), ("Reciprocal", torch.reciprocal),
                   ("HardSwish", lambda x: activation(x, "HardSwish", []))):
    OPS[_name] = _unary(_fn)


@register("HardSigmoid")
def _hard_sigmoid(env, node, a, args):
    return [activation(args[0], "HardSigmoid", [a["alpha"], a["beta"]])]


@register("LeakyRelu")
def _leaky_relu(env, node, a, args):
    return [F.leaky_relu(args[0], a["alpha"])]


@register("Elu")
def _elu(env, node, a, args):
    return [F.elu(args[0], a["alpha"])]


@register("Gelu")
def _gelu(env, node, a, args):
    return [F.gelu(args[0], approximate="tanh" if a["approximate"] == "tanh" else "none")]


@register("PRelu")
def _prelu(env, node, a, args):
    x, slope = args
    return [torch.where(x >= 0, x, x * slope)]


@register("Clip")
def _clip(env, node, a, args):
    x = args[0]
    lo = args[1] if len(args) > 1 else None
    hi = args[2] if len(args) > 2 else None
    return [torch.clamp(x, min=lo, max=hi)]


@register("Dropout")
def _dropout(env, node, a, args):
    return [args[0]]


# ---- elementwise --------------------------------------------------------------

@register("Add", "Sub", "Mul", "Div", "Pow")
def _binary(env, node, a, args):
    x, y = args
    if node.op == "Div" and not x.is_floating_point():
        return [torch.div(x, y, rounding_mode="trunc")]
    fn = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow}
    return [fn[node.op](x, y)]


@register("Sum", "Mean", "Max", "Min")
def _variadic(env, node, a, args):
    out = args[0]
    for x in args[1:]:
        out = {"Sum": torch.add, "Mean": torch.add, "Max": torch.maximum, "Min": torch.minimum}[node.op](out, x)
    return [out / len(args) if node.op == "Mean" else out]


# ---- linear layers -------------------------------------------------------------

def _conv_fn(nd: int, transpose: bool = False):
    if not 1 <= nd <= 3:
        raise ValueError(f"{nd}-d convolution")
    return getattr(F, f"conv_transpose{nd}d" if transpose else f"conv{nd}d")


def _pad_list(begin, end):
    """F.pad's argument (last dim first) for per-spatial-dim begin/end pads."""
    out = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [int(b), int(e)]
    return out


@register("Conv")
def _conv(env, node, a, args):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    r = args[3] if len(args) > 3 else None
    nd = x.dim() - 2
    kernel = list(w.shape[2:])
    strides = list(a["strides"]) or [1] * nd
    dilations = list(a["dilations"]) or [1] * nd
    begin, end, _ = conv_pads(list(x.shape[2:]), kernel, strides, dilations, list(a["pads"]), a["auto_pad"])
    padding = [int(p) for p in begin]
    if list(begin) != list(end):
        x = F.pad(x, _pad_list(begin, end))
        padding = 0
    y = _conv_fn(nd)(x, w, b, stride=strides, padding=padding, dilation=dilations, groups=a["group"])
    if r is not None:
        y = y + r
    return [activation(y, a["activation"], a["activation_params"])]


@register("ConvTranspose")
def _conv_transpose(env, node, a, args):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    nd = x.dim() - 2
    if a["output_shape"] or a["auto_pad"] not in ("NOTSET", "VALID"):
        raise ValueError("output_shape / auto_pad SAME_* are not mapped; give explicit pads")
    strides = list(a["strides"]) or [1] * nd
    dilations = list(a["dilations"]) or [1] * nd
    pads = list(a["pads"]) if a["auto_pad"] == "NOTSET" and a["pads"] else [0] * (2 * nd)
    out_pad = list(a["output_padding"]) or [0] * nd
    begin, end = pads[:nd], pads[nd:]
    if begin == end and all(p < s or p < d for p, s, d in zip(out_pad, strides, dilations)):
        y = _conv_fn(nd, True)(x, w, b, stride=strides, padding=begin, output_padding=out_pad,
                               groups=a["group"], dilation=dilations)
    else:  # the full output, zero-extended by output_padding, then cropped by the pads
        y = _conv_fn(nd, True)(x, w, None, stride=strides, groups=a["group"], dilation=dilations)
        y = F.pad(y, _pad_list([0] * nd, out_pad))
        y = F.pad(y, _pad_list([-p for p in begin], [-p for p in end]))
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * nd)
    return [activation(y, a["activation"], a["activation_params"])]


@register("Gemm")
def _gemm(env, node, a, args):
    A, B = args[0], args[1]
    C = args[2] if len(args) > 2 else None
    if a["transB"] and not a["transA"] and a["alpha"] == 1.0 and a["beta"] == 1.0 and A.dim() == 2 \
            and (C is None or tuple(C.shape) == (B.shape[0],)):  # F.linear: exported to ONNX as Gemm(transB=1)
        return [activation(F.linear(A, B, C), a["activation"], a["activation_params"])]
    A = A.t() if a["transA"] else A
    B = B.t() if a["transB"] else B
    y = A @ B
    if a["alpha"] != 1.0:
        y = y * a["alpha"]
    if C is not None:
        y = y + (C if a["beta"] == 1.0 else C * a["beta"])
    return [activation(y, a["activation"], a["activation_params"])]


@register("MatMul")
def _matmul(env, node, a, args):
    return [activation(torch.matmul(args[0], args[1]), a["activation"], a["activation_params"])]


@register("BatchNormalization")
def _batchnorm(env, node, a, args):
    x, scale, bias, mean, var = args
    shape = (1, -1) + (1,) * (x.dim() - 2)
    inv = scale / torch.sqrt(var + a["epsilon"])
    return [(x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)]


@register("LayerNormalization")
def _layer_norm(env, node, a, args):
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise ValueError("the Mean/InvStdDev outputs are not mapped")
    x, scale = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    axis = _axis(a["axis"], x.dim())
    shape = tuple(x.shape[axis:])
    if tuple(scale.shape) == shape and (bias is None or tuple(bias.shape) == shape):
        return [F.layer_norm(x, shape, scale, bias, a["epsilon"])]
    y = F.layer_norm(x, shape, None, None, a["epsilon"]) * scale
    return [y + bias if bias is not None else y]


# ---- pooling -------------------------------------------------------------------

def _pool_geometry(x, a):
    nd = x.dim() - 2
    kernel = list(a["kernel_shape"])
    strides = list(a["strides"]) or [1] * nd
    dilations = list(a["dilations"]) or [1] * nd
    sizes = [int(s) for s in x.shape[2:]]
    begin, end, out = conv_pads(sizes, kernel, strides, dilations, list(a["pads"]), a["auto_pad"],
                                bool(a["ceil_mode"]))
    # explicit end padding so a floor-mode pool gives exactly `out` windows
    need = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(out, strides, kernel, dilations)]
    end_full = [n - (size + b) for n, size, b in zip(need, sizes, begin)]
    return nd, kernel, strides, dilations, sizes, begin, end, end_full, out


@register("MaxPool")
def _max_pool(env, node, a, args):
    x = args[0]
    if len(node.outputs) > 1 and node.outputs[1]:
        raise ValueError("the Indices output is not mapped")
    nd, kernel, strides, dilations, sizes, begin, end, end_full, out = _pool_geometry(x, a)
    fn = getattr(F, f"max_pool{nd}d")
    if begin == end == end_full and all(2 * p <= k for p, k in zip(begin, kernel)):
        return [fn(x, kernel, strides, padding=begin, dilation=dilations)]
    x = F.pad(x, _pad_list(begin, end_full), value=-math.inf)
    return [fn(x, kernel, strides, padding=0, dilation=dilations)]


@register("AveragePool")
def _average_pool(env, node, a, args):
    x = args[0]
    nd, kernel, strides, dilations, sizes, begin, end, end_full, out = _pool_geometry(x, a)
    if any(d != 1 for d in dilations):
        raise ValueError("dilated AveragePool is not mapped")
    fn = getattr(F, f"avg_pool{nd}d")
    include = bool(a["count_include_pad"])
    if begin == end == end_full and all(2 * p <= k for p, k in zip(begin, kernel)):
        return [fn(x, kernel, strides, padding=begin, count_include_pad=include)]
    # sum over the explicitly padded windows, then the reference's divisor
    y = fn(F.pad(x, _pad_list(begin, end_full)), kernel, strides, padding=0,
           count_include_pad=True) * float(np.prod(kernel))
    count = np.ones(())
    for i in range(nd):
        lo, hi = (-begin[i], sizes[i] + end[i]) if include else (0, sizes[i])
        taps = np.arange(out[i])[:, None] * strides[i] - begin[i] + np.arange(kernel[i])[None, :]
        count = np.multiply.outer(count, ((taps >= lo) & (taps < hi)).sum(axis=1))
    return [y / torch.as_tensor(np.maximum(count, 1), dtype=y.dtype, device=y.device)]


@register("GlobalAveragePool")
def _global_average_pool(env, node, a, args):
    x = args[0]  # adaptive pooling to 1: exported to ONNX as GlobalAveragePool
    if 3 <= x.dim() <= 5:
        return [getattr(F, f"adaptive_avg_pool{x.dim() - 2}d")(x, 1)]
    return [x.mean(dim=tuple(range(2, x.dim())), keepdim=True)]


@register("GlobalMaxPool")
def _global_max_pool(env, node, a, args):
    x = args[0]
    if 3 <= x.dim() <= 5:
        return [getattr(F, f"adaptive_max_pool{x.dim() - 2}d")(x, 1)]
    return [x.amax(dim=tuple(range(2, x.dim())), keepdim=True)]


# ---- shapes and layout ---------------------------------------------------------

def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


@register("Flatten")
def _flatten(env, node, a, args):
    x = args[0]
    axis = _axis(a["axis"], x.dim())
    if axis == 0:
        return [x.reshape(1, -1)]
    return [torch.flatten(torch.flatten(x, axis), 0, axis - 1) if axis > 1 else torch.flatten(x, 1)]


@register("Reshape")
def _reshape(env, node, a, args):
    x = args[0]
    shape = env.ints(node, 1, args)
    if not a["allowzero"]:
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


@register("Transpose")
def _transpose(env, node, a, args):
    x = args[0]
    perm = list(a["perm"]) or list(reversed(range(x.dim())))
    return [x.permute(perm)]


@register("Concat")
def _concat(env, node, a, args):
    tensors = [t for t in args if t is not None]
    return [torch.cat(tensors, dim=_axis(a["axis"], tensors[0].dim()))]


@register("Squeeze")
def _squeeze(env, node, a, args):
    x = args[0]
    axes = env.ints(node, 1, args) if len(args) > 1 and args[1] is not None else None
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return [x.squeeze(tuple(_axis(i, x.dim()) for i in axes))] if axes else [x]


@register("Unsqueeze")
def _unsqueeze(env, node, a, args):
    x = args[0]
    axes = env.ints(node, 1, args)
    rank = x.dim() + len(axes)
    for ax in sorted(_axis(i, rank) for i in axes):
        x = x.unsqueeze(ax)
    return [x]


@register("Softmax", "LogSoftmax")
def _softmax(env, node, a, args):
    fn = torch.softmax if node.op == "Softmax" else torch.log_softmax
    return [fn(args[0], dim=a["axis"])]


@register("ReduceMean")
def _reduce_mean(env, node, a, args):
    x = args[0]
    axes = env.ints(node, 1, args) if len(args) > 1 and args[1] is not None else []
    if not axes:
        if a["noop_with_empty_axes"]:
            return [x]
        axes = list(range(x.dim()))
    return [x.mean(dim=tuple(axes), keepdim=bool(a["keepdims"]))]


@register("Pad")
def _pad(env, node, a, args):
    x = args[0]
    pads = env.ints(node, 1, args)
    value = float(args[2].reshape(-1)[0]) if len(args) > 2 and args[2] is not None and args[2].numel() else 0.0
    axes = env.ints(node, 3, args) if len(args) > 3 and args[3] is not None else list(range(x.dim()))
    axes = [_axis(i, x.dim()) for i in axes]
    begin, end = [0] * x.dim(), [0] * x.dim()
    for i, ax in enumerate(axes):
        begin[ax], end[ax] = pads[i], pads[i + len(axes)]
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(a["mode"])
    if mode is None:
        raise ValueError(f"Pad mode {a['mode']!r} is not mapped")
    if mode == "constant":
        return [F.pad(x, _pad_list(begin, end), value=value)]
    first = next((i for i in range(x.dim()) if begin[i] or end[i]), x.dim())
    if first < 2:
        raise ValueError(f"{a['mode']} padding of the batch or channel axis is not mapped")
    return [F.pad(x, _pad_list(begin[2:], end[2:]), mode=mode)]


@register("Slice")
def _slice(env, node, a, args):
    x = args[0]
    starts, ends = env.ints(node, 1, args), env.ints(node, 2, args)
    axes = env.ints(node, 3, args) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
    steps = env.ints(node, 4, args) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = _axis(ax, x.dim())
        index = list(range(int(x.shape[ax])))[slice(s, e, st)]
        if st == 1:
            x = x.narrow(ax, index[0] if index else 0, len(index))
        else:
            x = x.index_select(ax, torch.as_tensor(index, dtype=torch.long, device=x.device))
    return [x]


@register("Gather")
def _gather(env, node, a, args):
    x, idx = args
    axis = _axis(a["axis"], x.dim())
    idx = idx.long()
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = x.index_select(axis, idx.reshape(-1))
    return [out.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))]


@register("Split")
def _split(env, node, a, args):
    x = args[0]
    axis = _axis(a["axis"], x.dim())
    n_out = len(node.outputs)
    if len(args) > 1 and args[1] is not None:
        sizes = env.ints(node, 1, args)
    else:
        total = int(x.shape[axis])
        chunk = -(-total // n_out)
        sizes = [min(chunk, total - i * chunk) for i in range(n_out)]
    return list(torch.split(x, sizes, dim=axis))


@register("Shape")
def _shape(env, node, a, args):
    x = args[0]
    dims = list(x.shape)[slice(a["start"], a["end"])]
    return [torch.tensor(dims, dtype=torch.long, device=x.device)]


# ---- Resize ----------------------------------------------------------------------

@register("Resize")
def _resize(env, node, a, args):
    from mobconv.ops import resize as ref

    x = args[0]
    scales = env.floats(node, 2, args) if len(args) > 2 and args[2] is not None else []
    sizes = env.ints(node, 3, args) if len(args) > 3 and args[3] is not None else []
    roi = env.floats(node, 1, args) if len(args) > 1 and args[1] is not None else []
    if a["coordinate_transformation_mode"] == "tf_crop_and_resize":
        raise ValueError("tf_crop_and_resize is not mapped")
    rank = x.dim()
    axes, full_scales, full_sizes, full_roi = ref._full_params(
        rank, a["axes"], scales or None, sizes or None, roi or None)
    in_shape = [int(d) for d in x.shape]
    full_scales, out = ref.output_geometry(in_shape, axes, full_scales, full_sizes,
                                           a["keep_aspect_ratio_policy"])
    resized = [ax for ax in axes if not (out[ax] == in_shape[ax] and full_scales[ax] == 1.0)]
    if not resized:
        return [x]
    fast = _interpolate(x, a, resized, full_scales, out, in_shape, bool(scales))
    if fast is not None:
        return [fast]
    for ax in resized:  # each axis: the reference's interpolation applied to an identity
        matrix = ref._resize_axis(np.eye(in_shape[ax]), 0, full_scales[ax], out[ax], None, a)
        m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
        x = torch.movedim(torch.movedim(x, ax, -1) @ m.t(), -1, ax)
    return [x]


def _interpolate(x, a, resized, scales, out, in_shape, from_scales):
    """F.interpolate where it computes exactly what the reference does, else None."""
    nd = x.dim() - 2
    if nd not in (1, 2, 3) or any(ax < 2 for ax in resized) or a["antialias"]:
        return None
    mode, coord = a["mode"], a["coordinate_transformation_mode"]
    spatial = list(range(2, x.dim()))
    kwargs = {"scale_factor": [scales[i] for i in spatial], "recompute_scale_factor": False} \
        if from_scales else {"size": [out[i] for i in spatial]}
    if mode == "nearest":
        ratios = [out[i] / in_shape[i] for i in spatial]
        integer = all(r == int(r) and r >= 1 and scales[i] == r for r, i in zip(ratios, spatial))
        rounding = a["nearest_mode"] in ("round_prefer_floor", "round_prefer_ceil")
        if integer and ((coord == "asymmetric" and a["nearest_mode"] == "floor")
                        or (coord in ("half_pixel", "pytorch_half_pixel") and rounding)):
            return F.interpolate(x, mode="nearest", **kwargs)
        return None
    if mode == "linear" and coord in ("half_pixel", "pytorch_half_pixel", "align_corners") \
            and all(out[i] > 1 for i in spatial):
        torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
        if coord == "align_corners":
            if any(scales[i] * in_shape[i] != out[i] for i in spatial):
                return None
            return F.interpolate(x, mode=torch_mode, align_corners=True, size=[out[i] for i in spatial])
        return F.interpolate(x, mode=torch_mode, align_corners=False, **kwargs)
    return None
