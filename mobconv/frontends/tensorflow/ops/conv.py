"""TensorFlow convolutions -> IR Conv / ConvTranspose (NCHW).

Conv2D, Conv3D, DepthwiseConv2dNative and Conv2DBackpropInput (Keras
Conv2DTranspose). TensorFlow's NHWC input goes through `cx.to_nchw` -> IR op ->
`cx.from_nchw` (the transpose sinking pass cancels the pairs between ops);
NCHW graphs use the IR op directly.

Attributes: `strides`/`dilations`/`ksize` have one value per dim of the data
format, 1 in batch and channel. Padding: VALID is no padding; SAME is
TensorFlow's rule, out = ceil(in / stride), total padding split with the
extra one at the end (the IR's SAME_UPPER; explicit pads when the sizes are
known); EXPLICIT reads `explicit_paddings` (one pair per dim).

Filters are re-laid out at conversion time (frozen graphs hold them as
constants): Conv2D HWIO -> OIHW (Conv3D DHWIO -> OIDHW), depthwise HWCM ->
(C*M, 1, H, W) with group C, transpose conv HWOI -> IOHW. A filter that is a
DequantizeLinear of a constant (a FakeQuant of the weights, ops/quant.py) is
re-laid out on its integers, so the QDQ lowering still sees DQ -> Conv; any
other non-constant filter gets a Transpose node.
"""
from __future__ import annotations

import numpy as np

from ....ops.conv import conv_pads
from ..registry import TF_OPS

_CONV_ATTRS = {"T", "strides", "padding", "explicit_paddings", "data_format", "dilations",
               "use_cudnn_on_gpu"}


# ---- shared helpers (also used by nn.py's pools) -----------------------------------
def spatial_attr(cx, name: str, fmt: str, nd: int, values=None) -> list:
    """Attribute `name` (or `values`: one per dim in data-format order) -> its spatial
    values; the batch and channel entries must be 1."""
    if values is None:
        values = cx.attrs.ints(name, [1] * (nd + 2))
    if len(values) != nd + 2:
        raise cx.error(f"{name} {values} must have {nd + 2} values (one per dim of {fmt})")
    outer = (values[0], values[-1]) if fmt == "NHWC" else (values[0], values[1])
    spatial = values[1:-1] if fmt == "NHWC" else values[2:]
    if outer != (1, 1):
        raise cx.error(f"{name} {values} must be 1 in the batch and channel dims")
    if any(v < 1 for v in spatial):
        raise cx.error(f"{name} {values} must be positive")
    return spatial


def spatial_dims(shape, fmt: str, nd: int):
    """The spatial dims of a data-format shape, or None when the rank is unknown."""
    if shape is None or len(shape) != nd + 2:
        return None
    return list(shape[1:-1] if fmt == "NHWC" else shape[2:])


def padding_attrs(cx, fmt: str, nd: int, in_spatial, kernel, strides, dilations,
                  allowed=("SAME", "VALID", "EXPLICIT")) -> dict:
    """The IR's pads/auto_pad for TensorFlow's `padding` (+ `explicit_paddings`)."""
    padding = cx.attrs.string("padding")
    if padding not in allowed:
        raise cx.error(f"padding {padding!r} must be one of {', '.join(allowed)}")
    if padding == "VALID":
        return {"pads": [0] * (2 * nd)}
    if padding == "SAME":
        sizes = in_spatial if in_spatial is not None else ["d"] * nd
        begin, end, _ = conv_pads(sizes, kernel, strides, dilations, [], "SAME_UPPER")
        if any(b is None for b in begin):
            return {"auto_pad": "SAME_UPPER"}
        return {"pads": list(begin) + list(end)}
    pairs = cx.attrs.ints("explicit_paddings", [])
    if len(pairs) != 2 * (nd + 2):
        raise cx.error(f"explicit_paddings {pairs} must have {2 * (nd + 2)} values "
                       f"(a pair per dim of {fmt})")
    pairs = [pairs[2 * i:2 * i + 2] for i in range(nd + 2)]
    outer = [pairs[0], pairs[-1]] if fmt == "NHWC" else pairs[:2]
    spatial = pairs[1:-1] if fmt == "NHWC" else pairs[2:]
    if any(v != 0 for p in outer for v in p):
        raise cx.error(f"explicit_paddings must be 0 in the batch and channel dims, got {outer}")
    if any(v < 0 for p in spatial for v in p):
        raise cx.error(f"explicit_paddings {spatial} must not be negative")
    return {"pads": [p[0] for p in spatial] + [p[1] for p in spatial]}


def producer(graph, value: str):
    """The node writing `value` (the most recent first: usually just emitted), or None."""
    for node in reversed(graph.nodes):
        if value in node.outputs:
            return node
    return None


def nchw_input(cx, fmt: str, nd: int) -> str:
    return cx.to_nchw(cx.input(0), nd + 2) if fmt == "NHWC" else cx.input(0)


def nchw_output(cx, fmt: str, nd: int, op: str, inputs, attrs) -> None:
    """Emit `op` producing NCHW and write the node's output in the graph's layout."""
    if fmt == "NCHW":
        cx.emit(op, inputs, cx.outputs[:1], attrs)
        return
    y = cx.tmp("nchw")
    cx.emit(op, inputs, [y], attrs)
    cx.from_nchw(y, cx.outputs[0], nd + 2)


def relaid_filter(cx, i: int, perm, reshape=None, axis_map=None) -> str:
    """Input `i` (a filter) transposed by `perm` (then reshaped to `reshape`), as a value name.

    Constant: transformed with numpy. A DequantizeLinear of a constant: its integers are
    transformed and a new DequantizeLinear is emitted, its per-channel axis moved by
    `axis_map(axis, scale) -> (new_axis, new_scale, new_zero_point_fn)`. Otherwise a
    Transpose (and Reshape) node.
    """
    name = cx.input(i)
    data = cx.const_value(i)

    def relayout(a):
        a = np.ascontiguousarray(np.transpose(a, perm))
        return a.reshape(reshape) if reshape is not None else a

    if data is not None:
        return cx.const(relayout(data), "filter")
    dq = producer(cx.graph, name)
    if dq is not None and dq.op == "DequantizeLinear" and len(dq.inputs) >= 2:
        q = cx.graph.values.get(dq.inputs[0])
        scale = cx.graph.values.get(dq.inputs[1])
        zp = cx.graph.values.get(dq.inputs[2]) if len(dq.inputs) > 2 and dq.inputs[2] else None
        if q is not None and q.data is not None and scale is not None and scale.data is not None \
                and (zp is None or zp.data is not None):
            s, z = scale.data, (zp.data if zp is not None else None)
            attrs = dict(dq.attrs)
            if s.size > 1:  # per channel: the axis moves (and may be widened)
                new_axis, s, z = axis_map(attrs.get("axis", 1) % q.data.ndim, s, z)
                attrs["axis"] = new_axis
            ins = [cx.const(relayout(q.data), "filter_q"), cx.const(s, "filter_scale")]
            if z is not None:
                ins.append(cx.const(z, "filter_zero_point"))
            out = cx.tmp("filter")
            cx.emit("DequantizeLinear", ins, [out], attrs, fold=False)
            return out
    out = cx.tmp("filter")
    if reshape is None:
        cx.emit("Transpose", [name], [out], {"perm": list(perm)})
        return out
    moved = cx.tmp("filter_t")
    cx.emit("Transpose", [name], [moved], {"perm": list(perm)})
    cx.emit("Reshape", [moved, cx.const(np.asarray(reshape, np.int64), "shape")], [out])
    return out


def _moved_axis(perm):
    def move(axis, scale, zp):
        return list(perm).index(axis), scale, zp
    return move


# ---- converters ----------------------------------------------------------------
@TF_OPS.register("Conv2D", "Conv3D")
def conv(cx):
    """Conv2D/Conv3D: filter (*k, C/groups, M); grouped when the input has more channels."""
    cx.check_attrs(_CONV_ATTRS)
    nd = 3 if cx.op_type == "Conv3D" else 2
    fmt = cx.data_format()
    wshape = cx.shape(1)
    if wshape is None or len(wshape) != nd + 2 or any(not isinstance(d, int) for d in wshape):
        raise cx.error(f"the filter must have a known {nd + 2}-D shape, got {wshape}")
    kernel, cin_g = list(wshape[:nd]), wshape[nd]
    strides = spatial_attr(cx, "strides", fmt, nd)
    dilations = spatial_attr(cx, "dilations", fmt, nd)
    xshape = cx.shape(0)
    attrs = padding_attrs(cx, fmt, nd, spatial_dims(xshape, fmt, nd), kernel, strides, dilations,
                          ("SAME", "VALID", "EXPLICIT") if nd == 2 else ("SAME", "VALID"))
    group = 1
    cin = xshape[-1 if fmt == "NHWC" else 1] if xshape is not None and len(xshape) == nd + 2 else None
    if isinstance(cin, int) and cin_g > 0 and cin != cin_g:
        if cin % cin_g:
            raise cx.error(f"input channels {cin} must be a multiple of the filter's {cin_g}")
        group = cin // cin_g
    perm = [nd + 1, nd] + list(range(nd))  # HWIO -> OIHW
    w = relaid_filter(cx, 1, perm, axis_map=_moved_axis(perm))
    attrs.update(kernel_shape=kernel, strides=strides, dilations=dilations, group=group)
    nchw_output(cx, fmt, nd, "Conv", [nchw_input(cx, fmt, nd), w], attrs)


@TF_OPS.register("DepthwiseConv2dNative")
def depthwise(cx):
    """Filter (H, W, C, M): output channel c*M + m reads input channel c -> group C."""
    cx.check_attrs(_CONV_ATTRS - {"use_cudnn_on_gpu"})
    fmt = cx.data_format()
    wshape = cx.shape(1)
    if wshape is None or len(wshape) != 4 or any(not isinstance(d, int) for d in wshape):
        raise cx.error(f"the filter must have a known 4-D shape, got {wshape}")
    kh, kw, c, m = wshape
    strides = spatial_attr(cx, "strides", fmt, 2)
    dilations = spatial_attr(cx, "dilations", fmt, 2)
    attrs = padding_attrs(cx, fmt, 2, spatial_dims(cx.shape(0), fmt, 2), [kh, kw], strides,
                          dilations)

    def per_channel(axis, scale, zp):
        """Output channel c*M + m: a scale along C repeats M times, one along M tiles C
        times; one along H or W stays on that axis (2 or 3 of (C*M, 1, H, W))."""
        if axis < 2:
            return axis + 2, scale, zp

        def full(a):
            if a is None:
                return None
            a = np.asarray(a).reshape(-1)
            return np.repeat(a, m) if axis == 2 else np.tile(a, c)
        return 0, full(scale), full(zp)

    w = relaid_filter(cx, 1, (2, 3, 0, 1), reshape=(c * m, 1, kh, kw), axis_map=per_channel)
    attrs.update(kernel_shape=[kh, kw], strides=strides, dilations=dilations, group=c)
    nchw_output(cx, fmt, 2, "Conv", [nchw_input(cx, fmt, 2), w], attrs)


@TF_OPS.register("Conv2DBackpropInput", "Conv3DBackpropInputV2")
def conv_transpose(cx):
    """The gradient of a conv w.r.t. its input (Keras Conv2DTranspose).

    Inputs: input_sizes (the result's shape), filter (*k, M, C) and out_backprop
    (N, *S, C). The forward conv's padding comes from input_sizes (TensorFlow's
    rule); ConvTranspose gets those pads and the output_padding that makes its
    size exactly input_sizes.
    """
    cx.check_attrs(_CONV_ATTRS)
    nd = 3 if cx.op_type == "Conv3DBackpropInputV2" else 2
    fmt = cx.data_format()
    wshape = cx.shape(1)
    if wshape is None or len(wshape) != nd + 2 or any(not isinstance(d, int) for d in wshape):
        raise cx.error(f"the filter must have a known {nd + 2}-D shape, got {wshape}")
    kernel = list(wshape[:nd])
    strides = spatial_attr(cx, "strides", fmt, nd)
    dilations = spatial_attr(cx, "dilations", fmt, nd)
    sizes = _int_values(cx, 0)
    target = spatial_dims(sizes, fmt, nd) if sizes is not None else None
    if target is None or any(not isinstance(d, int) for d in target):
        raise cx.error(f"input_sizes must be known at conversion time in the spatial dims, got {sizes}")
    attrs = padding_attrs(cx, fmt, nd, target, kernel, strides, dilations,
                          ("SAME", "VALID", "EXPLICIT") if nd == 2 else ("SAME", "VALID"))
    pads = attrs["pads"]
    dy = spatial_dims(cx.shape(2), fmt, nd)
    if dy is None or any(not isinstance(d, int) for d in dy):
        raise cx.error(f"out_backprop must have known spatial dims, got {cx.shape(2)}")
    output_padding = []
    for i in range(nd):
        window = (kernel[i] - 1) * dilations[i] + 1
        made = strides[i] * (dy[i] - 1) + window - pads[i] - pads[i + nd]
        extra = target[i] - made
        if not 0 <= extra < max(strides[i], dilations[i]):
            raise cx.error(f"input_sizes {sizes} do not match out_backprop {cx.shape(2)} with "
                           f"strides {strides} and padding {cx.attrs.string('padding')}")
        output_padding.append(extra)
    perm = [nd + 1, nd] + list(range(nd))  # (*k, M, C) -> (C, M, *k)
    w = relaid_filter(cx, 1, perm, axis_map=_moved_axis(perm))
    dy_nchw = cx.to_nchw(cx.input(2), nd + 2) if fmt == "NHWC" else cx.input(2)
    attrs.update(kernel_shape=kernel, strides=strides, dilations=dilations,
                 output_padding=output_padding)
    nchw_output(cx, fmt, nd, "ConvTranspose", [dy_nchw, w], attrs)


def _int_values(cx, i: int):
    """Input `i` as a list of ints and symbols (a shape computed from the input), or None."""
    data = cx.const_value(i)
    if data is not None:
        return [int(v) for v in np.asarray(data).ravel()]
    if cx.symbolic is not None:
        dims = cx.symbolic.value(cx.input(i))
        if dims is not None:
            return [d if isinstance(d, str) else int(d) for d in dims.ravel()]
    return None
