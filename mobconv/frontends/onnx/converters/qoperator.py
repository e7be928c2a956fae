"""ONNX QOperator models -> the int8 IR ops (docs/quantization.md, "Import").

There is no QLinear op family in the IR: a `QLinearConv` is the IR `Conv` whose
X, W, B and Y carry `Value.quant` (scales and zero points, which QOperator passes as
constant inputs, move onto the tensors). Each converter:
1. reads the constant scale/zero-point inputs (a computed one is refused by name);
2. puts the parameters on the integer tensors (an activation that already carries
   other parameters is refused: the IR has one set per tensor);
3. emits the IR op; the output takes the output parameters.

  QLinearConv, QLinearMatMul      -> Conv / MatMul (weights per tensor or per output channel)
  com.microsoft.QGemm             -> Gemm (alpha 1, quantized output)
  com.microsoft.QLinearAdd / Mul  -> Add / Mul
  com.microsoft.QLinearConcat     -> Concat
  com.microsoft.QLinear(Global)AveragePool -> (Global)AveragePool when the output keeps the
        input's parameters, else DequantizeLinear -> float pool -> QuantizeLinear
  MatMulInteger, ConvInteger      -> their exact int32 result (no scale: nothing to
        requantize) on plain tensors: when every partial sum stays below 2**24 (reduction
        length * 255 * max|w - w_zp|), DequantizeLinear(scale 1) -> float32 MatMul/Conv ->
        Cast(int32), exact in any summation order and run by every backend; beyond that
        Cast/Sub -> int32 MatMul/Conv, which only the numpy reference runs (the runtime
        refuses it at load, naming the node).
"""
from __future__ import annotations

import numpy as np

from ....ir.graph import QuantParams
from . import converter

MS = "com.microsoft."
_INT = ("int8", "uint8")


def _params(cx, scale_i: int, zp_i: int, what: str, axis=None) -> QuantParams:
    """QuantParams from constant scale / zero-point inputs (zero point optional)."""
    scale = cx.const_value(scale_i)
    if scale is None:
        raise cx.error(f"{what} scale ({cx.input(scale_i)!r}) must be a constant")
    zp_name = cx.input(zp_i)
    zp = cx.const_value(zp_i) if zp_name else np.zeros(np.shape(scale), np.int64)
    if zp is None:
        raise cx.error(f"{what} zero point ({zp_name!r}) must be a constant")
    scale = np.asarray(scale, np.float32).reshape(-1)
    zp = np.asarray(zp).astype(np.int64).reshape(-1)
    if zp.size != scale.size:
        raise cx.error(f"{what}: {scale.size} scales but {zp.size} zero points")
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        raise cx.error(f"{what} scales must be finite and > 0, got {scale.tolist()[:8]}")
    if scale.size == 1:
        return QuantParams([float(scale[0])], [int(zp[0])], None)
    if axis is None:
        raise cx.error(f"{what} must be quantized per tensor, got {scale.size} scales")
    return QuantParams([float(s) for s in scale], [int(z) for z in zp], axis)


def _same(p: QuantParams, q: QuantParams) -> bool:
    from ....passes.lower_qdq import same_params

    return same_params(p, q)


def _quantize(cx, i: int, params: QuantParams, what: str) -> str:
    """Put `params` on input i (an int8/uint8 tensor); a constant already carrying other
    parameters is copied, an activation carrying others is refused."""
    name = cx.input(i)
    value = cx.graph.values[name]
    if value.dtype not in _INT:
        raise cx.error(f"{what} ({name!r}) must be int8 or uint8, got {value.dtype}")
    if value.quant is None:
        value.quant = params
        return name
    if _same(value.quant, params):
        return name
    if value.is_constant:
        copy = cx.tmp(f"{what}_q")
        cx.graph.add_constant(copy, value.data)
        cx.graph.values[copy].quant = params
        return copy
    raise cx.error(f"{what} ({name!r}) is given scale {params.scales[:4]} / zero point "
                   f"{params.zero_points[:4]}, but it was produced with {value.quant.scales[:4]} / "
                   f"{value.quant.zero_points[:4]} (one set of parameters per tensor)")


def _emit_quantized(cx, op: str, inputs, y_params: QuantParams, attrs=None, x_dtype=None) -> None:
    """Emit `op` and give its output the output parameters (dtype: the zero point's)."""
    out = cx.outputs[0]
    cx.emit(op, inputs, [out], attrs, fold=False)
    value = cx.graph.values[out]
    if x_dtype is not None and value.dtype not in (None, x_dtype):
        raise cx.error(f"output dtype {value.dtype} must be the input's ({x_dtype})")
    value.quant = y_params


def _zp_dtype(cx, i: int, default: str) -> str:
    zp = cx.const_value(i) if cx.input(i) else None
    return default if zp is None else np.asarray(zp).dtype.name


def _check_out_dtype(cx, y_zp_i: int, x_dtype: str) -> None:
    y_dtype = _zp_dtype(cx, y_zp_i, x_dtype)
    if y_dtype != x_dtype:
        raise cx.error(f"output zero point dtype {y_dtype} differs from the input's {x_dtype} "
                       "(an int8 op keeps its activation dtype)")


def _bias(cx, i: int, s_x: float, w: QuantParams, n: int) -> str:
    """int32 bias constant with scale s_x * s_w[c], zero point 0."""
    name = cx.input(i)
    if not name:
        return ""
    data = cx.const_value(i)
    if data is None or data.dtype != np.int32 or data.size != n:
        raise cx.error(f"bias ({name!r}) must be an int32 constant with {n} values")
    scales = np.float32(s_x) * np.asarray(w.scales, np.float32)
    copy = cx.tmp("bias_q")
    cx.graph.add_constant(copy, data.reshape(-1))
    cx.graph.values[copy].quant = (QuantParams([float(scales[0])], [0], None) if scales.size == 1 else
                                   QuantParams([float(s) for s in scales], [0] * n, 0))
    return copy


@converter("QLinearConv", ir=("Conv",))
def qlinear_conv(cx):
    """QLinearConv(x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp, B) -> int8 Conv."""
    cx.check_attrs({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"})
    x_dtype = cx.dtype(0)
    _check_out_dtype(cx, 7, x_dtype)
    xq = _params(cx, 1, 2, "x")
    w = cx.const_value(3)
    if w is None:
        raise cx.error(f"w ({cx.input(3)!r}) must be a constant")
    wq = _params(cx, 4, 5, "w", axis=0)
    x = _quantize(cx, 0, xq, "x")
    wname = _quantize(cx, 3, wq, "w")
    b = _bias(cx, 8, xq.scales[0], wq, w.shape[0])
    attrs = {k: v for k, v in cx.attrs.attrs.items()}
    _emit_quantized(cx, "Conv", [x, wname, b], _params(cx, 6, 7, "y"), attrs, x_dtype)


@converter("QLinearMatMul", ir=("MatMul",))
def qlinear_matmul(cx):
    """QLinearMatMul(a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp) -> int8 MatMul (b per tensor or
    per column)."""
    cx.check_attrs(set())
    a_dtype = cx.dtype(0)
    _check_out_dtype(cx, 7, a_dtype)
    rank_b = cx.rank(3)
    aq = _params(cx, 1, 2, "a")
    bq = _params(cx, 4, 5, "b", axis=None if rank_b is None else rank_b - 1)
    a = _quantize(cx, 0, aq, "a")
    b = _quantize(cx, 3, bq, "b")
    _emit_quantized(cx, "MatMul", [a, b], _params(cx, 6, 7, "y"), None, a_dtype)


@converter(MS + "QGemm", ir=("Gemm",))
def qgemm(cx):
    """com.microsoft QGemm(A, a_s, a_zp, B, b_s, b_zp, C, y_s, y_zp) -> int8 Gemm."""
    cx.check_attrs({"alpha", "transA", "transB"})
    if cx.attrs.float("alpha", 1.0) != 1.0:
        raise cx.error(f"alpha {cx.attrs.float('alpha', 1.0)} must be 1 for an int8 Gemm")
    if not cx.input(7):
        raise cx.error("a QGemm with a float output (no y_scale) is not supported")
    a_dtype = cx.dtype(0)
    _check_out_dtype(cx, 8, a_dtype)
    trans_b = cx.attrs.int("transB", 0)
    b = cx.const_value(3)
    if b is None or b.ndim != 2:
        raise cx.error(f"B ({cx.input(3)!r}) must be a 2-D constant")
    col_axis = 0 if trans_b else 1
    aq = _params(cx, 1, 2, "a")
    bq = _params(cx, 4, 5, "b", axis=col_axis)
    a_name = _quantize(cx, 0, aq, "a")
    b_name = _quantize(cx, 3, bq, "b")
    c = _bias(cx, 6, aq.scales[0], bq, b.shape[col_axis])
    attrs = {"transA": cx.attrs.int("transA", 0), "transB": trans_b}
    _emit_quantized(cx, "Gemm", [a_name, b_name, c], _params(cx, 7, 8, "y"), attrs, a_dtype)


@converter(MS + "QLinearAdd", MS + "QLinearMul", ir=("Add", "Mul"))
def qlinear_binary(cx):
    """QLinearAdd/QLinearMul(A, A_s, A_zp, B, B_s, B_zp, C_s, C_zp) -> int8 Add/Mul."""
    cx.check_attrs(set())
    a_dtype = cx.dtype(0)
    _check_out_dtype(cx, 7, a_dtype)
    a = _quantize(cx, 0, _params(cx, 1, 2, "A"), "A")
    b = _quantize(cx, 3, _params(cx, 4, 5, "B"), "B")
    _emit_quantized(cx, cx.op_type[len("QLinear"):], [a, b], _params(cx, 6, 7, "C"), None, a_dtype)


@converter(MS + "QLinearConcat", ir=("Concat",))
def qlinear_concat(cx):
    """QLinearConcat(Y_s, Y_zp, X1, X1_s, X1_zp, ...) -> int8 Concat."""
    cx.check_attrs({"axis"})
    n = len(cx.inputs) - 2
    if n < 3 or n % 3:
        raise cx.error(f"takes Y_scale, Y_zero_point and (X, scale, zero point) triples, got {len(cx.inputs)} inputs")
    xs = [_quantize(cx, 2 + 3 * k, _params(cx, 3 + 3 * k, 4 + 3 * k, f"X{k}"), f"X{k}") for k in range(n // 3)]
    dtype = cx.dtype(2)
    _check_out_dtype(cx, 1, dtype)
    _emit_quantized(cx, "Concat", xs, _params(cx, 0, 1, "Y"), {"axis": cx.attrs.int("axis")}, dtype)


@converter(MS + "QLinearAveragePool", MS + "QLinearGlobalAveragePool",
           ir=("AveragePool", "GlobalAveragePool", "QuantizeLinear", "DequantizeLinear"))
def qlinear_pool(cx):
    """QLinear(Global)AveragePool(X, x_s, x_zp, y_s, y_zp): the int8 pool, also when y has
    other parameters than x (an imported model computes with the float32 requantization
    rule, docs/quantization.md section 2, which is onnxruntime's arithmetic of these ops)."""
    op = cx.op_type[len("QLinear"):]
    known = {"channels_last"} | ({"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads",
                                  "strides"} if op == "AveragePool" else set())
    cx.check_attrs(known)
    if cx.attrs.int("channels_last", 0):
        raise cx.error("channels_last=1 is not supported (NCHW only)")
    attrs = {k: v for k, v in cx.attrs.attrs.items() if k != "channels_last"}
    dtype = cx.dtype(0)
    _check_out_dtype(cx, 4, dtype)
    xq, yq = _params(cx, 1, 2, "x"), _params(cx, 3, 4, "y")
    x = _quantize(cx, 0, xq, "x")
    _emit_quantized(cx, op, [x], yq, attrs, dtype)


FLOAT_EXACT = 1 << 24  # float32 holds every integer up to 2**24 exactly


def _centered(cx, i: int, zp_i: int, what: str, exact_float: bool, zp_shape=None) -> tuple:
    """x - zp as an exact float32 (exact_float) or int32 tensor, and max |x - zp|.

    A constant is folded here; an activation becomes DequantizeLinear(scale 1) (float) or
    Cast + Sub (int32)."""
    value = cx.graph.values[cx.input(i)]
    if value.dtype not in _INT:
        raise cx.error(f"{what} ({cx.input(i)!r}) must be int8 or uint8, got {value.dtype}")
    zp = cx.const_value(zp_i) if cx.input(zp_i) else np.zeros((), value.dtype)
    if zp is None:
        raise cx.error(f"{what} zero point ({cx.input(zp_i)!r}) must be a constant")
    if zp_shape is not None and np.size(zp) > 1:
        zp = np.asarray(zp).reshape(zp_shape)
    elif np.size(zp) != 1:
        raise cx.error(f"{what} zero point must be one value (per tensor), got {np.size(zp)}")
    else:
        zp = np.asarray(zp).reshape(())
    dtype = np.float32 if exact_float else np.int32
    if value.is_constant:
        centered = value.data.astype(np.int64) - zp.astype(np.int64)
        return cx.const(centered.astype(dtype), f"{what}_centered"), int(np.abs(centered).max(initial=0))
    out = cx.tmp(f"{what}_centered")
    if exact_float:
        cx.emit("DequantizeLinear", [cx.input(i), cx.const(np.float32(1.0), f"{what}_one"),
                                     cx.const(zp.astype(value.dtype), f"{what}_zero_point")], [out])
        return out, 255
    wide = cx.tmp(f"{what}_int32")
    cx.emit("Cast", [cx.input(i)], [wide], {"to": 6})  # TensorProto.INT32
    cx.emit("Sub", [wide, cx.const(zp.astype(np.int32), f"{what}_zero_point")], [out])
    return out, 255


def _integer_op(cx, op: str, reduction: int, w_zp_shape, attrs) -> None:
    """op on (x - x_zp) and (w - w_zp) with an exact int32 result. When every partial sum
    is below 2**24 in magnitude (reduction * 255 * max|w - w_zp|), float32 computes it
    exactly in any order: DequantizeLinear(scale 1) -> float op -> Cast(int32), which every
    backend runs. Otherwise Cast/Sub -> int32 op (numpy reference only)."""
    w = cx.const_value(1)
    w_max = 255
    if w is not None:
        zp = cx.const_value(3) if cx.input(3) else np.zeros(())
        if zp is not None:
            zp = np.asarray(zp).reshape(w_zp_shape) if np.size(zp) > 1 else np.asarray(zp).reshape(())
            w_max = int(np.abs(w.astype(np.int64) - zp.astype(np.int64)).max(initial=0))
    exact_float = reduction is not None and reduction * 255 * w_max < FLOAT_EXACT
    x, _ = _centered(cx, 0, 2, "x", exact_float)
    wc, _ = _centered(cx, 1, 3, "w", exact_float, w_zp_shape)
    if not exact_float:
        cx.emit(op, [x, wc], [cx.outputs[0]], attrs)
        return
    acc = cx.tmp("float_acc")
    cx.emit(op, [x, wc], [acc], attrs)
    cx.emit("Cast", [acc], [cx.outputs[0]], {"to": 6})


@converter("MatMulInteger", ir=("DequantizeLinear", "Cast", "Sub", "MatMul"))
def matmul_integer(cx):
    """MatMulInteger(A, B, a_zp, b_zp) = (A - a_zp) @ (B - b_zp) in int32, exactly."""
    cx.check_attrs(set())
    shape_b = cx.shape(1)
    k = shape_b[-2] if shape_b is not None and len(shape_b) >= 2 else None
    rank_b = None if shape_b is None else len(shape_b)
    zp_shape = (1,) * (rank_b - 1) + (-1,) if rank_b else None  # b_zp per column of B
    _integer_op(cx, "MatMul", k if isinstance(k, int) else None, zp_shape, None)


@converter("ConvInteger", ir=("DequantizeLinear", "Cast", "Sub", "Conv"))
def conv_integer(cx):
    """ConvInteger(x, w, x_zp, w_zp) = Conv(x - x_zp, w - w_zp) in int32, exactly (padding
    is real zero: x_zp before the subtraction, as the op defines)."""
    cx.check_attrs({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"})
    shape_w = cx.shape(1)
    taps = int(np.prod(shape_w[1:])) if shape_w is not None and all(isinstance(d, int) for d in shape_w) else None
    zp_shape = (-1,) + (1,) * (len(shape_w) - 1) if shape_w is not None else None  # per output channel
    _integer_op(cx, "Conv", taps, zp_shape, dict(cx.attrs.attrs))
