"""TensorFlow fake quantization -> QuantizeLinear -> DequantizeLinear.

FakeQuantWithMinMaxArgs (min/max attributes), FakeQuantWithMinMaxVars (scalar
min/max inputs) and FakeQuantWithMinMaxVarsPerChannel (min/max along the last
axis) compute, in float32 (fake_quant_ops_functor.h):

    qmin = narrow_range ? 1 : 0,  qmax = 2^num_bits - 1
    scale = (max - min) / (qmax - qmin)
    zp = clamp(round_half_away(qmin - min / scale), qmin, qmax)      # the nudged zero point
    nudged_min = (qmin - zp) * scale,  nudged_max = (qmax - zp) * scale
    y = floor((clamp(x, nudged_min, nudged_max) - nudged_min) / scale + 0.5) * scale + nudged_min

which is DequantizeLinear(QuantizeLinear(x)) with that scale and zero point. The
integers are stored as int8 (zero point zp - 128) for num_bits <= 8, int16 (zp - 32768)
above, the signed types the QDQ lowering (passes/lower_qdq.py) deploys as int8 kernels.
When [qmin, qmax] is narrower than the storage type (narrow_range, num_bits < 8) a Clip
to [nudged_min, nudged_max] comes first. A constant input (weights) is quantized here
with TensorFlow's own arithmetic and becomes an integer constant -> DequantizeLinear,
so the weights equal TensorFlow's fake-quantized ones exactly. Activations round half
to even (QuantizeLinear) where TensorFlow rounds half up: only values within float
rounding of a .5 step can differ, by one step.

QuantizeAndDequantizeV2/V3/V4 (TensorFlow's symmetric QDQ, zero point 0) map the same
way, with their own range rule (`qdq_range`).
"""
from __future__ import annotations

import math

import numpy as np

from ..registry import TF_OPS


def nudge(mn, mx, num_bits: int, narrow: bool):
    """TensorFlow's Nudge in float32 -> (scale, inverse scale, zero point, nudged min,
    nudged max, qmin, qmax); numpy arrays of the min/max shape."""
    qmin, qmax = (1 if narrow else 0), (1 << num_bits) - 1
    mn, mx = np.asarray(mn, np.float32), np.asarray(mx, np.float32)
    span = np.float32(qmax - qmin)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = ((mx - mn) / span).astype(np.float32)
        inv = (span / (mx - mn)).astype(np.float32)
        zp_from_min = (np.float32(qmin) - mn / scale).astype(np.float32)
    zp = np.empty(mn.shape, np.int64)
    for i, z in np.ndenumerate(zp_from_min):
        zp[i] = qmin if z < qmin else qmax if z > qmax else math.floor(float(z) + 0.5)
    nudged_min = ((np.float32(qmin) - zp.astype(np.float32)) * scale).astype(np.float32)
    nudged_max = ((np.float32(qmax) - zp.astype(np.float32)) * scale).astype(np.float32)
    return scale, inv, zp, nudged_min, nudged_max, qmin, qmax


def _storage(num_bits: int):
    """(dtype, offset) of the signed integer type holding [0, 2^num_bits - 1] - offset."""
    return ("int8", 128) if num_bits <= 8 else ("int16", 32768)


@TF_OPS.register("FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars",
                 "FakeQuantWithMinMaxVarsPerChannel")
def fake_quant(cx):
    if cx.op_type == "FakeQuantWithMinMaxArgs":
        cx.check_attrs({"min", "max", "num_bits", "narrow_range"})
        mn = np.float32(cx.attrs.float("min", -6.0))
        mx = np.float32(cx.attrs.float("max", 6.0))
    else:
        cx.check_attrs({"num_bits", "narrow_range"})
        mn, mx = cx.const_value(1), cx.const_value(2)
        if mn is None or mx is None:
            raise cx.error("min and max must be constants (freeze the graph after training)")
    num_bits = cx.attrs.int("num_bits", 8)
    if not 2 <= num_bits <= 16:
        raise cx.error(f"num_bits ({num_bits}) must be between 2 and 16")
    narrow = bool(cx.attrs.get("narrow_range", False))
    per_channel = cx.op_type.endswith("PerChannel")
    mn, mx = np.asarray(mn, np.float32), np.asarray(mx, np.float32)
    if per_channel:
        shape = cx.shape(0)
        if mn.ndim != 1 or mn.shape != mx.shape or shape is None or \
                (isinstance(shape[-1], int) and shape[-1] != mn.size):
            raise cx.error(f"min {mn.shape} and max {mx.shape} must be 1-D with one value per "
                           f"channel of the last axis (input shape {shape})")
    elif mn.size != 1 or mx.size != 1:
        raise cx.error(f"min and max must be scalars, got shapes {mn.shape} and {mx.shape}")
    else:
        mn, mx = mn.reshape(()), mx.reshape(())
    if (mn > mx).any():
        raise cx.error(f"min ({mn.tolist()}) must not exceed max ({mx.tolist()})")
    scale, inv, zp, lo, hi, qmin, qmax = nudge(mn, mx, num_bits, narrow)
    if (scale <= 0).any() or not np.isfinite(scale).all():
        raise cx.error(f"min {mn.tolist()} and max {mx.tolist()} give no quantization step "
                       "(max must be greater than min)")
    dtype, offset = _storage(num_bits)
    zp_stored = (zp - offset).astype(dtype)
    attrs = {"axis": (cx.rank(0) or 1) - 1} if per_channel else {}
    x = cx.input(0)
    data = cx.const_value(0)
    if data is not None:
        # weights: quantized with TensorFlow's own arithmetic (float32)
        x32 = np.asarray(data, np.float32)
        shifted = np.minimum(np.maximum(x32, lo), hi) - lo
        q = qmin + np.floor(shifted * inv + np.float32(0.5)).astype(np.int64)  # nudged_min is qmin
        stored = cx.const((q - offset).astype(dtype), "quantized")
        cx.emit("DequantizeLinear", [stored, cx.const(scale, "scale"),
                                     cx.const(zp_stored, "zero_point")], cx.outputs[:1],
                attrs, fold=False)
        return
    lo_int, hi_int = np.iinfo(dtype).min + offset, np.iinfo(dtype).max + offset
    if qmin > lo_int or qmax < hi_int:
        clipped = cx.tmp("clipped")
        if per_channel:
            low = cx.tmp("low")
            cx.emit("Max", [x, cx.const(lo, "nudged_min")], [low])
            cx.emit("Min", [low, cx.const(hi, "nudged_max")], [clipped])
        else:
            cx.emit("Clip", [x, cx.const(lo, "nudged_min"), cx.const(hi, "nudged_max")], [clipped])
        x = clipped
    scale_c, zp_c = cx.const(scale, "scale"), cx.const(zp_stored, "zero_point")
    q = cx.tmp("quantized")
    cx.emit("QuantizeLinear", [x, scale_c, zp_c], [q], attrs)
    cx.emit("DequantizeLinear", [q, scale_c, zp_c], cx.outputs[:1], attrs)


def qdq_range(mn, mx, num_bits: int, signed: bool, narrow: bool):
    """TensorFlow's ComputeQuantizationRange (quantize_and_dequantize_op.h), float32:
    symmetric integer range [qmin, qmax]; the side that needs the smaller scale wins and
    the other end of the float range moves to match. Returns (scale, inverse scale, qmin,
    qmax, min, max) with y = round(clamp(x, min, max) * scale) * inverse (zero point 0)."""
    half = 1 << (num_bits - 1)
    qmin = (-half + 1 if narrow else -half) if signed else 0
    qmax = half - 1 if signed else (1 << num_bits) - 1
    mn, mx = np.float32(mn), np.float32(mx)
    big = np.finfo(np.float32).max
    with np.errstate(divide="ignore", invalid="ignore"):
        from_min = np.float32(qmin) / mn if qmin * float(mn) > 0 else big
        from_max = np.float32(qmax) / mx if qmax * float(mx) > 0 else big
        if from_min < from_max:
            scale, inv = from_min, np.float32(mn / np.float32(qmin))
            mx = np.float32(np.float32(qmax) * inv)
        else:
            scale, inv = from_max, np.float32(mx / np.float32(qmax))
            mn = np.float32(np.float32(qmin) * inv)
    return np.float32(scale), inv, qmin, qmax, mn, mx


@TF_OPS.register("QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3", "QuantizeAndDequantizeV4")
def quantize_and_dequantize(cx):
    """Symmetric (zero point 0) quantize-dequantize: y = round_half_to_even(clamp(x) *
    scale) / scale (`qdq_range`), QuantizeLinear's rounding. Ranges computed from the data
    at run time (range_given false) are refused unless the input is a constant (weights),
    whose own min/max (per tensor or per `axis`) are taken."""
    v3 = cx.op_type == "QuantizeAndDequantizeV3"
    cx.check_attrs({"T", "signed_input", "range_given", "narrow_range", "axis"} |
                   (set() if v3 else {"num_bits", "round_mode"}))
    if v3:
        bits = cx.const_value(3)
        if bits is None:
            raise cx.error("num_bits must be a constant")
        num_bits = int(np.asarray(bits).ravel()[0])
    else:
        num_bits = cx.attrs.int("num_bits", 8)
        if cx.attrs.get("round_mode", "HALF_TO_EVEN") != "HALF_TO_EVEN":
            raise cx.error(f"round_mode {cx.attrs.get('round_mode')!r} is not supported "
                           "(HALF_TO_EVEN: QuantizeLinear's rounding)")
    signed = bool(cx.attrs.get("signed_input", True))
    narrow = bool(cx.attrs.get("narrow_range", False))
    if not (2 <= num_bits <= (16 if signed else 8)):
        raise cx.error(f"num_bits ({num_bits}) must be 2..16 (signed) or 2..8 (unsigned)")
    axis = cx.attrs.int("axis", -1)
    rank = cx.rank(0)
    data = cx.const_value(0)
    if axis != -1 and rank is None:
        raise cx.error("a per-axis range needs the input rank")
    reduce = tuple(i for i in range(rank or 0) if i != axis) if axis != -1 else None
    if cx.attrs.get("range_given", False):
        mn, mx = cx.const_value(1), cx.const_value(2)
        if mn is None or mx is None:
            raise cx.error("input_min and input_max must be constants")
    elif data is not None:
        mn, mx = np.min(data, axis=reduce), np.max(data, axis=reduce)
    else:
        raise cx.error("range_given is false: the range comes from the data at run time, "
                       "which a static quantization cannot express")
    mn, mx = np.asarray(mn, np.float32).ravel(), np.asarray(mx, np.float32).ravel()
    ranges = [qdq_range(a, b, num_bits, signed, narrow) for a, b in zip(mn, mx)]
    scale, step, lo, hi = (np.asarray([r[k] for r in ranges], np.float32) for k in (0, 1, 4, 5))
    qmin, qmax = ranges[0][2], ranges[0][3]
    if not (np.isfinite(step).all() and (step > 0).all()):
        raise cx.error(f"the range [{mn.tolist()}, {mx.tolist()}] gives no quantization step")
    dtype = ("int8" if num_bits <= 8 else "int16") if signed else "uint8"
    attrs = {}
    if axis == -1:
        scale, step, lo, hi = (a.reshape(()) for a in (scale, step, lo, hi))
    else:
        attrs["axis"] = axis % rank
    scale_c = cx.const(step, "scale")
    zp_c = cx.const(np.zeros(step.shape, dtype), "zero_point")
    x = cx.input(0)
    info = np.iinfo(dtype)
    shape = [-1 if i == attrs.get("axis") else 1 for i in range(rank)] if attrs else []
    if data is not None:
        # weights: TensorFlow's own arithmetic at conversion, DequantizeLinear kept
        clamped = np.minimum(np.maximum(np.asarray(data, np.float32), lo.reshape(shape)),
                             hi.reshape(shape))
        q = np.round(clamped * scale.reshape(shape)).astype(dtype)  # half to even
        cx.emit("DequantizeLinear", [cx.const(q, "quantized"), scale_c, zp_c], cx.outputs[:1],
                attrs, fold=False)
        return
    if axis != -1:  # TensorFlow takes a per-axis range only from the data
        raise cx.error(f"a per-axis range (axis {axis}) on a non-constant input is not supported")
    if qmin > info.min or qmax < info.max:
        clipped = cx.tmp("clipped")
        cx.emit("Clip", [x, cx.const(lo, "low"), cx.const(hi, "high")], [clipped])
        x = clipped
    q = cx.tmp("quantized")
    cx.emit("QuantizeLinear", [x, scale_c, zp_c], [q], attrs)
    cx.emit("DequantizeLinear", [q, scale_c, zp_c], cx.outputs[:1], attrs)
