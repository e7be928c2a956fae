"""QuantizeLinear and DequantizeLinear (ONNX opset 28): the float boundaries of a
quantized model (docs/quantization.md section 3; arithmetic in quant_math.py).

  QuantizeLinear:   y = saturate(round_half_to_even(x / y_scale) + y_zero_point)
  DequantizeLinear: y = float32(int32(x) - int32(x_zero_point)) * x_scale

Scales are float32; a scalar (or one-element) scale is per tensor, a 1-D one per
slice along `axis`, and with block_size > 0 the scales have x's shape except along
`axis`, where each covers block_size elements. The zero point has the scale's shape.
IR subset of the ONNX op: x of QuantizeLinear is float32; quantized dtypes are int8,
uint8 and int16 (plus int32 as DequantizeLinear input); `precision` must be 0 or 1
(float32 division); `saturate` only concerns float8 and is ignored.
"""
import numpy as np

from ..ir.graph import QuantParams
from . import quant_math as qm
from .registry import Attr, AttrKind, op
from .shape_ops import fmt_shape, norm_axis
from .tensor_ops import ONNX_DTYPES

_Q_OUT = ("int8", "uint8", "int16")
_DQ_IN = ("int8", "uint8", "int16", "int32")


def _param_layout(ctx, x_shape, what: str):
    """Check scale/zero point shapes against x: None (per tensor), or the axis."""
    s = tuple(ctx.shape(1))
    block = ctx.attrs["block_size"]
    if block < 0:
        raise ctx.error(f"block_size {block} must be >= 0")
    if ctx.dtype(1) != "float32":
        raise ctx.error(f"{what} scale must be float32, got {ctx.dtype(1)}")
    zp = ctx.shape(2)
    if zp is not None and tuple(zp) != s:
        raise ctx.error(f"zero point {fmt_shape(zp)} must have the scale's shape {fmt_shape(s)}")
    if block == 0 and (len(s) == 0 or s == (1,)):
        return None
    axis = norm_axis(ctx, ctx.attrs["axis"], len(x_shape))
    n = x_shape[axis]
    if block == 0:
        if len(s) != 1 or (isinstance(n, int) and s[0] != n):
            raise ctx.error(f"scale {fmt_shape(s)} must be a scalar or 1-D with {n} values "
                            f"(x {fmt_shape(x_shape)}, axis {axis})")
        return axis
    want = tuple((-(-d // block) if isinstance(d, int) else None) if i == axis else d
                 for i, d in enumerate(x_shape))
    if len(s) != len(want) or any(isinstance(w, int) and w != d for w, d in zip(want, s)):
        raise ctx.error(f"blocked scale {fmt_shape(s)} must have shape {fmt_shape(want)} "
                        f"(x {fmt_shape(x_shape)}, block_size {block} on axis {axis})")
    return axis


def _quantize_dtype(zp_dtype, output_dtype: int, fail) -> str:
    named = ONNX_DTYPES.get(output_dtype) if output_dtype else None
    if output_dtype and named not in _Q_OUT:
        raise fail(f"output_dtype {output_dtype} ({named or 'unknown'}) must be one of "
                   f"{', '.join(_Q_OUT)} (ONNX 3, 2, 5)")
    if zp_dtype is not None:
        if zp_dtype not in _Q_OUT:
            raise fail(f"zero point dtype {zp_dtype} must be one of {', '.join(_Q_OUT)}")
        if named and named != zp_dtype:
            raise fail(f"output_dtype {named} differs from the zero point's dtype {zp_dtype}")
        return zp_dtype
    return named or "uint8"


def _infer_quantize(ctx):
    x = ctx.shape(0)
    if ctx.dtype(0) != "float32":
        raise ctx.error(f"x must be float32, got {ctx.dtype(0)}")
    if ctx.attrs["precision"] not in (0, 1):
        raise ctx.error(f"precision {ctx.attrs['precision']} is not supported (0 or 1: float32)")
    _param_layout(ctx, x, "y")
    return [(_quantize_dtype(ctx.dtype(2), ctx.attrs["output_dtype"], ctx.error), x)]


def _params(scale, zp, axis, block):
    scale = np.asarray(scale, dtype=np.float32)
    if block == 0 and scale.size == 1 and scale.ndim <= 1:
        axis = None
    zps = None if zp is None else np.asarray(zp).astype(np.int64)
    if zps is None:
        zps = np.zeros(scale.shape, np.int64)
    if block:
        return QuantParams(scale, zps, axis)
    return QuantParams(scale.reshape(-1), zps.reshape(-1), axis)


@op("QuantizeLinear", inputs=["x", "y_scale", "y_zero_point?"], outputs=["y"],
    attrs=[Attr("axis", AttrKind.INT, 1), Attr("block_size", AttrKind.INT, 0),
           Attr("output_dtype", AttrKind.INT, 0), Attr("precision", AttrKind.INT, 0),
           Attr("saturate", AttrKind.INT, 1)],
    infer=_infer_quantize)
def quantize_linear(x, y_scale, y_zero_point=None, *, axis, block_size, output_dtype, precision, saturate):
    """saturate(round_half_to_even(x / y_scale) + y_zero_point) in float32 (NaN -> the
    dtype's minimum, as onnxruntime); dtype = the zero point's, else output_dtype, else uint8."""
    dtype = _quantize_dtype(None if y_zero_point is None else np.asarray(y_zero_point).dtype.name,
                            output_dtype, ValueError)
    axis = axis + x.ndim if axis < 0 else axis
    return qm.quantize_linear(x, _params(y_scale, y_zero_point, axis, block_size), dtype, block_size)


def _infer_dequantize(ctx):
    x = ctx.shape(0)
    if ctx.dtype(0) not in _DQ_IN:
        raise ctx.error(f"x dtype {ctx.dtype(0)} must be one of {', '.join(_DQ_IN)}")
    if ctx.dtype(2) is not None and ctx.dtype(2) != ctx.dtype(0):
        raise ctx.error(f"zero point dtype {ctx.dtype(2)} must be x's dtype {ctx.dtype(0)}")
    if ctx.attrs["output_dtype"] not in (0, 1):
        raise ctx.error(f"output_dtype {ctx.attrs['output_dtype']} is not supported (0 or 1: float32)")
    _param_layout(ctx, x, "x")
    return [("float32", x)]


@op("DequantizeLinear", inputs=["x", "x_scale", "x_zero_point?"], outputs=["y"],
    attrs=[Attr("axis", AttrKind.INT, 1), Attr("block_size", AttrKind.INT, 0),
           Attr("output_dtype", AttrKind.INT, 0)],
    infer=_infer_dequantize)
def dequantize_linear(x, x_scale, x_zero_point=None, *, axis, block_size, output_dtype):
    """float32(int32(x) - int32(x_zero_point)) * x_scale, float32."""
    axis = axis + x.ndim if axis < 0 else axis
    return qm.dequantize_linear(x, _params(x_scale, x_zero_point, axis, block_size), block_size)
