"""Integer arithmetic of quantized tensors: the exact oracle (docs/quantization.md).

Everything here computes on int64 numpy arrays holding int32/int8 values and
reproduces, bit for bit, what docs/quantization.md specifies; the C++ int8
kernels must match it exactly. The primitives follow gemmlowp/TFLite:

  quantize_multiplier(M)            real M >= 0 -> (int32 q, shift), M ~ q * 2**(shift - 31)
  rounding_doubling_high_mul(a, b)  round(a * b / 2**31), ties toward +infinity, saturating
  rounding_divide_by_pot(x, e)      round(x / 2**e), ties away from zero
  multiply_by_quantized_multiplier  x * M with the two roundings above
  requantize(acc, M, zp, lo, hi)    zp + x * M, clamped to [lo, hi]

then the ops: quantize_linear / dequantize_linear (ONNX semantics, ties to even),
and the int8 forms of Conv, MatMul/Gemm, Add, Mul, Concat, MaxPool, AveragePool.
A quantized tensor's parameters are an `ir.QuantParams` (scales, zero_points, axis).

A model carries its requantization rule in metadata `quantization.requantize`
(docs/quantization.md section 2): "fixed_point" (the above, the default) or "float32"
(onnxruntime/fbgemm/XNNPACK, set on imported ONNX QDQ/QOperator models):

  requantize_float32(acc, scale, zp, lo, hi)  clamp(float32(acc) * scale) rounded half
                                              to even, + zp (MlasRequantizeOutput)
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import MobconvError
from ..ir.graph import QuantParams
from .conv import conv as float_conv
from .pool import _windows
from .pool import max_pool as float_max_pool
from .resize import _full_params, _present, _resize_axis, output_geometry

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
ADD_LEFT_SHIFT = 20  # pre-shift of Add's inputs (TFLite's int8/uint8 choice)
_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
           "int32": (INT32_MIN, INT32_MAX)}


def qrange(dtype) -> tuple:
    """(min, max) of a quantized dtype name or numpy dtype."""
    name = np.dtype(dtype).name
    if name not in _RANGES:
        raise MobconvError(f"quantized dtype must be one of {', '.join(_RANGES)}, got {name}")
    return _RANGES[name]


# ---- fixed-point primitives ---------------------------------------------------------------


def quantize_multiplier(real: float) -> tuple:
    """(q, shift) with real ~= q * 2**(shift - 31), q in [2**30, 2**31) or 0.

    real = f * 2**shift with f in [0.5, 1) (frexp); q = round(f * 2**31), ties away
    from zero; q == 2**31 becomes 2**30 with shift + 1. A multiplier below 2**-32
    (shift < -31) is 0. Multipliers of 2**31 or more are refused (no int32 result
    could hold them)."""
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise MobconvError(f"requantization multiplier must be a finite number >= 0, got {real}")
    if real == 0.0:
        return 0, 0
    f, shift = math.frexp(real)
    q = math.floor(f * (1 << 31) + 0.5)  # exact: f * 2**31 < 2**31 has 22 fraction bits
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 31:
        raise MobconvError(f"requantization multiplier {real} is too large (must be < 2**31)")
    return int(q), int(shift)


def _trunc_div(x, d):
    """x / d rounded toward zero (C's integer division), x an int64 array, d > 0."""
    q = np.abs(x) // d
    return np.where(x < 0, -q, q)


def rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: the high 32 bits of 2*a*b, rounded.

    a, b int32 values: ab = a*b exactly (64 bits); nudge = 2**30 if ab >= 0 else
    1 - 2**30; result = (ab + nudge) / 2**31 truncated toward zero, i.e.
    round(a*b / 2**31) with ties toward +infinity (1.5 -> 2 but -1.5 -> -1, -0.5 -> 0:
    the nudge for negatives is one short of a half). The one overflow, a = b = -2**31,
    gives 2**31 - 1."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    r = _trunc_div(ab + nudge, np.int64(1 << 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), r)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: round(x / 2**exponent), ties away from zero.

    mask = 2**e - 1; remainder = x & mask; threshold = mask >> 1, plus 1 when x < 0;
    result = (x >> e) + (remainder > threshold), with >> arithmetic (floor)."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    if np.any((e < 0) | (e > 31)):
        raise MobconvError(f"rounding shift must be in [0, 31], got {np.unique(e).tolist()}")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, q, shift):
    """x * (q * 2**(shift - 31)) in int32, TFLite's MultiplyByQuantizedMultiplier.

    left = max(shift, 0), right = max(-shift, 0); x * 2**left saturates to int32;
    then rounding_doubling_high_mul(., q), then rounding_divide_by_pot(., right).
    q, shift may be arrays broadcasting against x (per-channel)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = np.clip(x << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(rounding_doubling_high_mul(shifted, q), right)


def quantize_multipliers(reals) -> tuple:
    """quantize_multiplier over an array: (q int64 array, shift int64 array)."""
    reals = np.asarray(reals, dtype=np.float64)
    pairs = [quantize_multiplier(r) for r in reals.reshape(-1)]
    q = np.array([p[0] for p in pairs], dtype=np.int64).reshape(reals.shape)
    s = np.array([p[1] for p in pairs], dtype=np.int64).reshape(reals.shape)
    return q, s


def requantize(acc, real_multiplier, zero_point, lo, hi):
    """zp + acc * M (fixed point, M from `quantize_multiplier`), clamped to [lo, hi].

    acc must hold int32 values (an int32 accumulator); real_multiplier broadcasts
    against acc (per-channel)."""
    acc = np.asarray(acc, dtype=np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise MobconvError("int32 accumulator overflow: the sum of products does not fit in 32 bits")
    q, s = quantize_multipliers(real_multiplier)
    return np.clip(multiply_by_quantized_multiplier(acc, q, s) + int(zero_point), lo, hi)


# ---- the float32 requantization rule (onnxruntime MLAS, fbgemm, XNNPACK) -------------------

REQUANTIZE_KEY = "quantization.requantize"  # model metadata (graph.metadata.extra)
FIXED_POINT, FLOAT32 = "fixed_point", "float32"
REQUANTIZE_MODES = (FIXED_POINT, FLOAT32)


def requantize_mode(graph) -> str:
    """The requantization rule a graph's metadata names ("fixed_point" when absent);
    any other value is refused, naming the key."""
    extra = getattr(getattr(graph, "metadata", None), "extra", None) or {}
    mode = extra.get(REQUANTIZE_KEY) or FIXED_POINT
    if mode not in REQUANTIZE_MODES:
        raise MobconvError(f"metadata {REQUANTIZE_KEY} must be one of {', '.join(REQUANTIZE_MODES)}, got {mode!r}")
    return mode


def float32_scales(s_x, s_w, s_y) -> np.ndarray:
    """float32((float32(s_x) * float32(s_w[c])) / float32(s_y)): each operation one float32
    rounding, in this order (onnxruntime's QLinearConv/QLinearMatMul output scales)."""
    s_w = np.asarray(s_w, dtype=np.float32)
    return (np.float32(s_x) * s_w) / np.float32(s_y)


def requantize_float32(acc, scale, zero_point, lo, hi):
    """onnxruntime's MlasRequantizeOutput: v = float32(acc) * scale (float32, acc an
    int32 value incl. the bias), clamped to [float32(lo - zp), float32(hi - zp)], rounded
    to the nearest integer with ties to even, + zp. `scale` (float32) broadcasts against
    acc (per-channel)."""
    acc = np.asarray(acc, dtype=np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise MobconvError("int32 accumulator overflow: the sum of products does not fit in 32 bits")
    scale = np.asarray(scale, dtype=np.float32)
    if not (np.isfinite(scale).all() and (scale >= 0).all()):
        raise MobconvError(f"requantization scale must be a finite number >= 0, got {scale.reshape(-1).tolist()}")
    zp = int(zero_point)
    v = acc.astype(np.float32) * scale  # int32 -> float32 rounds to nearest even; float32 product
    v = np.minimum(np.maximum(v, np.float32(lo - zp)), np.float32(hi - zp))
    return np.rint(v).astype(np.int64) + zp


def _requantize_out(acc, s_x, s_w, yq, lo, hi, mode: str, nd: int):
    """The output of Conv/MatMul/Gemm under either rule; s_w per output channel, which
    is axis 1 of acc when nd >= 0 (Conv: nd trailing spatial axes), else the last axis."""
    zp_y = per_tensor(yq, "Y")[1]
    shape = (-1,) + (1,) * nd if nd >= 0 else (-1,)
    if mode == FLOAT32:
        scale = float32_scales(s_x, s_w, per_tensor(yq, "Y")[0]).reshape(shape)
        return requantize_float32(acc, scale, zp_y, lo, hi)
    if mode != FIXED_POINT:
        raise MobconvError(f"{REQUANTIZE_KEY} must be one of {', '.join(REQUANTIZE_MODES)}, got {mode!r}")
    real = np.float64(s_x) * np.asarray(s_w, dtype=np.float32).astype(np.float64) / _out_scale(yq)
    return requantize(acc, real.reshape(shape), zp_y, lo, hi)


# ---- quantization parameters -------------------------------------------------------------


def _params(qp: QuantParams, ndim: int, what: str, check_scales: bool = True):
    """(scale, zero_point) float32/int64 arrays of `qp` shaped to broadcast over a rank-ndim
    tensor (per-axis: along qp.axis). The integer ops need finite positive scales; the
    float boundaries (check_scales=False) compute with any float32 scale, as ONNX does."""
    scale = np.asarray(qp.scales, dtype=np.float32).reshape(-1)
    zp = np.asarray(qp.zero_points if qp.zero_points is not None and len(qp.zero_points) else
                    [0] * scale.size, dtype=np.int64).reshape(-1)
    if zp.size != scale.size:
        raise MobconvError(f"{what}: {scale.size} scales but {zp.size} zero points")
    if check_scales and not (np.isfinite(scale).all() and (scale > 0).all()):
        raise MobconvError(f"{what}: scales must be finite and > 0, got {scale.tolist()}")
    if qp.axis is None or scale.size == 1:  # one scale is per tensor whatever the axis (as the loader)
        if scale.size != 1:
            raise MobconvError(f"{what}: per-tensor quantization needs 1 scale, got {scale.size}")
        return scale.reshape(()), zp.reshape(())
    axis = qp.axis + ndim if qp.axis < 0 else qp.axis
    if not 0 <= axis < ndim:
        raise MobconvError(f"{what}: quantization axis {qp.axis} is out of range for rank {ndim}")
    shape = [1] * ndim
    shape[axis] = scale.size
    return scale.reshape(shape), zp.reshape(shape)


def per_tensor(qp: QuantParams, what: str) -> tuple:
    """(scale as float, zero point as int) of a per-tensor QuantParams."""
    scale, zp = _params(qp, 0 if qp.axis is None or len(qp.scales) == 1 else 1, what)
    if scale.size != 1:
        raise MobconvError(f"{what}: must be quantized per tensor, got {scale.size} scales")
    return float(scale.reshape(())), int(zp.reshape(()))


# ---- QuantizeLinear / DequantizeLinear ----------------------------------------------------


def _blocked_params(qp: QuantParams, shape, block_size: int, what: str):
    """ONNX blocked quantization: scales/zero points shaped like the tensor except along
    qp.axis, where each entry covers block_size consecutive elements (the last block may
    be short); expanded here to the tensor's shape."""
    scale = np.asarray(qp.scales, dtype=np.float32)
    zp = np.asarray(qp.zero_points if qp.zero_points is not None and np.size(qp.zero_points) else
                    np.zeros(scale.shape, np.int64), dtype=np.int64)
    axis = (qp.axis if qp.axis is not None else 1) % max(len(shape), 1)
    want = tuple(-(-d // block_size) if i == axis else d for i, d in enumerate(shape))
    if scale.shape != want or zp.shape != want:
        raise MobconvError(f"{what}: blocked scales/zero points must have shape {want} for input {tuple(shape)}, "
                           f"block_size {block_size} on axis {axis}; got {scale.shape} / {zp.shape}")
    n = shape[axis]
    return (np.repeat(scale, block_size, axis=axis).take(np.arange(n), axis=axis),
            np.repeat(zp, block_size, axis=axis).take(np.arange(n), axis=axis))


def quantize_linear(x, qp: QuantParams, dtype="int8", block_size: int = 0):
    """ONNX QuantizeLinear: saturate(round_half_to_even(x / scale) + zero_point).

    x / scale is one float32 division (not a multiplication by 1/scale); +-inf
    saturate; NaN gives the dtype's minimum (-128 / 0), as onnxruntime computes it.
    Per tensor, per axis, or blocked (block_size > 0, `_blocked_params`); int8, uint8,
    int16, uint16 outputs."""
    lo, hi = qrange(dtype)
    x = np.asarray(x, dtype=np.float32)
    if block_size:
        scale, zp = _blocked_params(qp, x.shape, block_size, "QuantizeLinear")
    else:
        scale, zp = _params(qp, x.ndim, "QuantizeLinear", check_scales=False)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        r = np.rint(x / scale)  # float32 division, then ties to even
    r = np.where(np.isnan(r), np.float32(-np.inf), r)  # NaN -> the dtype minimum
    r = np.clip(r.astype(np.float64), -(1 << 40), 1 << 40).astype(np.int64)  # +-inf: no int cast of inf
    return np.clip(r + zp, lo, hi).astype(np.dtype(dtype))


def dequantize_linear(q, qp: QuantParams, block_size: int = 0):
    """ONNX DequantizeLinear: float32(int32(q) - int32(zero_point)) * float32(scale);
    per tensor, per axis or blocked, as quantize_linear."""
    q = np.asarray(q)
    if block_size:
        scale, zp = _blocked_params(qp, q.shape, block_size, "DequantizeLinear")
    else:
        scale, zp = _params(qp, q.ndim, "DequantizeLinear", check_scales=False)
    diff = (q.astype(np.int64) - zp).astype(np.int32)  # the int32 difference, as ONNX says
    return diff.astype(np.float32) * scale


def quantize_bias(bias, input_scale: float, weight_scales) -> np.ndarray:
    """int32 bias of a Conv/Gemm: round_half_to_even(b / (s_in * s_w[c])), zero point 0,
    saturated to int32; the scale product is formed in float32 as ONNX's QDQ does."""
    scale = (np.float32(input_scale) * np.asarray(weight_scales, dtype=np.float32)).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        r = np.rint(np.asarray(bias, dtype=np.float32) / scale).astype(np.float64)
    return np.clip(np.nan_to_num(r), INT32_MIN, INT32_MAX).astype(np.int32)


# ---- fused activations -> output range ----------------------------------------------------


def activation_range(activation: str, params, qp: QuantParams, dtype) -> tuple:
    """The clamp range [lo, hi] of an int8 output with a fused activation: none -> the
    dtype's range; Relu -> [zp, max]; Clip(a, b) (Relu6 = Clip(0, 6)) -> [q(a), q(b)] with
    q = quantize_linear's rule, intersected with the dtype's range. Other activations
    cannot be fused into an integer output."""
    lo, hi = qrange(dtype)
    scale, zp = per_tensor(qp, "output")
    if not activation:
        return lo, hi
    if activation == "Relu":
        return max(lo, zp), hi
    if activation == "Clip":
        a, b = (float(v) for v in params)
        one = QuantParams([scale], [zp])
        qa = int(quantize_linear(np.float32(a), one, dtype)) if not math.isinf(a) else lo
        qb = int(quantize_linear(np.float32(b), one, dtype)) if not math.isinf(b) else hi
        return max(lo, qa), min(hi, qb)
    raise MobconvError(f"activation {activation!r} cannot be fused into a quantized output "
                       "(only Relu and Clip can; others run dequantized)")


# ---- quantized ops ------------------------------------------------------------------------


def _zp_removed(q, qp: QuantParams, what: str):
    _, zp = _params(qp, np.ndim(q), what)
    return np.asarray(q, dtype=np.int64) - zp


def _out_scale(qp: QuantParams) -> float:
    return float(np.float32(per_tensor(qp, "output")[0]))


def conv(x, xq, w, wq, bias, yq, dtype="int8", *, activation="", activation_params=(),
         requantize="fixed_point", **attrs):
    """int8/uint8 Conv (grouped and depthwise included).

    acc[n, m, o] = bias[m] + sum (x - zp_x) * (w - zp_w[m]) over the window (padding
    contributes real zero, i.e. x = zp_x), exact in int32; then
    y = requantize(acc, s_x * s_w[m] / s_y, zp_y, activation range) (fixed point), or
    requantize_float32 with float32_scales (requantize="float32"). `attrs` are the
    float Conv's (auto_pad, dilations, group, kernel_shape, pads, strides)."""
    xs = _zp_removed(x, xq, "Conv X")
    ws = _zp_removed(w, wq, "Conv W")
    a = dict(auto_pad="NOTSET", dilations=[], group=1, kernel_shape=[], pads=[], strides=[])
    a.update(attrs)
    acc = float_conv(xs, ws, None, None, activation="", activation_params=[], **a)  # int64 exact
    m = w.shape[0]
    nd = acc.ndim - 2
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64).reshape((m,) + (1,) * nd)
    s_x, _ = per_tensor(xq, "Conv X")
    s_w = np.asarray(wq.scales, dtype=np.float32).reshape(-1)
    if s_w.size not in (1, m):
        raise MobconvError(f"Conv W: {s_w.size} scales for {m} output channels")
    lo, hi = activation_range(activation, activation_params, yq, dtype)
    y = _requantize_out(acc, s_x, s_w, yq, lo, hi, requantize, nd)
    return y.astype(np.dtype(dtype))


def matmul(a, aq, b, bq, yq, dtype="int8", bias=None, *, activation="", activation_params=(),
           requantize="fixed_point"):
    """int8/uint8 MatMul (numpy broadcasting of batch dims): acc = sum_k (a - zp_a) *
    (b - zp_b[n]) (+ int32 bias[n]), y = requantize(acc, s_a * s_b[n] / s_y, zp_y, range)
    under the model's rule (see conv). B is per tensor or per column (its last axis)."""
    am = _zp_removed(a, aq, "MatMul A")
    bm = _zp_removed(b, bq, "MatMul B")
    acc = np.matmul(am, bm)
    n = b.shape[-1]
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64).reshape(-1)
    s_a, _ = per_tensor(aq, "MatMul A")
    s_b = np.asarray(bq.scales, dtype=np.float32).reshape(-1)
    if s_b.size not in (1, n):
        raise MobconvError(f"MatMul B: {s_b.size} scales for {n} columns")
    lo, hi = activation_range(activation, activation_params, yq, dtype)
    return _requantize_out(acc, s_a, s_b, yq, lo, hi, requantize, -1).astype(np.dtype(dtype))


def gemm(a, aq, b, bq, c, yq, dtype="int8", *, transA=0, transB=0, activation="", activation_params=(),
         requantize="fixed_point"):
    """int8 Gemm (alpha = beta = 1): matmul of A (or A^T) by B (or B^T) with the int32
    bias C per output column. Per-channel B scales are along the output-column axis
    (axis 1 of B, or 0 with transB)."""
    a = np.asarray(a).T if transA else np.asarray(a)
    if transB:
        b = np.asarray(b).T
        if bq.axis is not None:
            bq = QuantParams(bq.scales, bq.zero_points, 1 - (bq.axis % 2))
    return matmul(a, aq, b, bq, yq, dtype, c, activation=activation, activation_params=activation_params,
                  requantize=requantize)


def add(a, aq, b, bq, yq, dtype="int8", *, activation="", activation_params=()):
    """int8 Add with rescale (TFLite's scheme, left shift 20):
    m = 2 * max(s_a, s_b); a' = MBQM((a - zp_a) * 2**20, s_a / m); b' likewise;
    y = zp_y + MBQM(a' + b', m / (2**20 * s_y)), clamped. MBQM = multiply_by_quantized_multiplier
    with the multiplier from quantize_multiplier; multipliers in double."""
    s_a, _ = per_tensor(aq, "Add A")
    s_b, _ = per_tensor(bq, "Add B")
    s_y, zp_y = per_tensor(yq, "Add Y")
    twice_max = 2.0 * max(s_a, s_b)
    am = _zp_removed(a, aq, "Add A") << ADD_LEFT_SHIFT
    bm = _zp_removed(b, bq, "Add B") << ADD_LEFT_SHIFT
    a2 = multiply_by_quantized_multiplier(am, *quantize_multiplier(s_a / twice_max))
    b2 = multiply_by_quantized_multiplier(bm, *quantize_multiplier(s_b / twice_max))
    lo, hi = activation_range(activation, activation_params, yq, dtype)
    out_q = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * s_y))
    y = multiply_by_quantized_multiplier(a2 + b2, *out_q) + zp_y
    return np.clip(y, lo, hi).astype(np.dtype(dtype))


def mul(a, aq, b, bq, yq, dtype="int8", *, activation="", activation_params=()):
    """int8 Mul: y = zp_y + MBQM((a - zp_a) * (b - zp_b), s_a * s_b / s_y), clamped."""
    s_a, _ = per_tensor(aq, "Mul A")
    s_b, _ = per_tensor(bq, "Mul B")
    s_y, zp_y = per_tensor(yq, "Mul Y")
    prod = _zp_removed(a, aq, "Mul A") * _zp_removed(b, bq, "Mul B")
    lo, hi = activation_range(activation, activation_params, yq, dtype)
    return requantize(prod, s_a * s_b / s_y, zp_y, lo, hi).astype(np.dtype(dtype))


def requantize_tensor(q, qp: QuantParams, yq: QuantParams, dtype="int8"):
    """A tensor moved to other per-tensor parameters: a copy when they are equal, else
    zp_y + MBQM((q - zp) * 2**20, s / s_y / 2**20), saturated. The pre-shift (Add's) keeps
    the high multiply's rounding far below the last bit: without it an 8-bit value is
    rounded twice at nearly full weight (-127 * 1/3: -84.67 -> -85, then -42.5 -> -43,
    where -42.33 rounds to -42)."""
    s, zp = per_tensor(qp, "input")
    s_y, zp_y = per_tensor(yq, "output")
    q = np.asarray(q)
    if np.float32(s) == np.float32(s_y) and zp == zp_y:
        return q.astype(np.dtype(dtype))
    lo, hi = qrange(dtype)
    shifted = (q.astype(np.int64) - zp) << ADD_LEFT_SHIFT
    return requantize(shifted, s / s_y / (1 << ADD_LEFT_SHIFT), zp_y, lo, hi).astype(np.dtype(dtype))


def concat(inputs, qps, yq, axis, dtype="int8"):
    """int8 Concat: each input requantized to the output's parameters (requantize_tensor)."""
    return np.concatenate([requantize_tensor(q, p, yq, dtype) for q, p in zip(inputs, qps)], axis=axis)


def max_pool(x, xq, **attrs):
    """int8 MaxPool: the float op on the integers (max commutes with the monotone affine
    map); the output keeps X's parameters, padding never wins."""
    a = dict(auto_pad="NOTSET", ceil_mode=0, dilations=[], pads=[], strides=[], storage_order=0)
    a.update(attrs)
    return float_max_pool(np.asarray(x), **a)[0]


def average_pool(x, xq, dtype="int8", requantize="fixed_point", yq=None, **attrs):
    """int8 AveragePool, output parameters = X's: y = zp + round(sum(x - zp) / count) with
    ties away from zero (integer: (s + sign(s) * (count // 2)) / count truncated), padding
    contributing real zero; count as the float op counts it (count_include_pad).
    requantize="float32" (onnxruntime's QLinearAveragePool): each tap dequantized,
    d = float32(s * (x - zp)), summed in float32 in row-major kernel order from 0.0
    (padding adds +0.0), divided by float32(count), then
    y = round_half_to_even(float32(float32(avg / s_y) + zp_y)), saturated; the output
    parameters `yq` (default X's) may differ from X's under this rule."""
    a = dict(auto_pad="NOTSET", ceil_mode=0, dilations=[], pads=[], strides=[], count_include_pad=0)
    a.update(attrs)
    include = a.pop("count_include_pad")
    scale, zp = per_tensor(xq, "AveragePool X")
    xs = np.asarray(x, dtype=np.int64) - zp
    if requantize == FLOAT32:
        xs = np.float32(scale) * xs.astype(np.float32)
    view, kernel, strides, dilations, begin, end, out = _windows(xs, a, 0)
    nd = len(kernel)
    if requantize == FLOAT32:
        flat = view.reshape(view.shape[:2] + (int(np.prod(kernel)),) + view.shape[2 + nd:])
        total = np.zeros(flat.shape[:2] + flat.shape[3:], np.float32)
        for t in range(flat.shape[2]):  # sequential float32 sum in tap order
            total = total + flat[:, :, t]
    else:
        total = view.sum(axis=tuple(range(2, 2 + nd)))
    count = np.ones((), dtype=np.int64)
    for i in range(nd):
        size = x.shape[2 + i]
        lo, hi = (-begin[i], size + end[i]) if include else (0, size)
        taps = (np.arange(out[i])[:, None] * strides[i] - begin[i]
                + np.arange(kernel[i])[None, :] * dilations[i])
        count = np.multiply.outer(count, ((taps >= lo) & (taps < hi)).sum(axis=1))
    count = np.maximum(count, 1)
    lo, hi = qrange(dtype)
    if requantize == FLOAT32:
        s_y, zp_y = per_tensor(yq, "AveragePool Y") if yq is not None else (scale, zp)
        avg = total / count.astype(np.float32)
        r = np.rint((avg / np.float32(s_y)) + np.float32(zp_y)).astype(np.int64)
        return np.clip(r, lo, hi).astype(np.dtype(dtype))
    half = np.where(total >= 0, count // 2, -(count // 2))
    return np.clip(_trunc_div(total + half, count) + zp, lo, hi).astype(np.dtype(dtype))


# ---- the quantized variants of registry ops, keyed by the node's quantized tensors ----------
# An IR node whose inputs or outputs carry QuantParams is the quantized form of the same op
# (no second op family): `run_quantized` picks its integer reference here. Ops that only move
# or select elements compute exactly on the integers with the float reference, provided every
# output keeps the first input's parameters.

MOVE_OPS = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Slice",
                      "Split", "Gather", "Expand", "Tile", "DepthToSpace", "SpaceToDepth"})
_GEOMETRY = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
_POOL = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")


def _conv_node(args, qin, qout, attrs, dtypes, mode=FIXED_POINT):
    x, w, b, r = (list(args) + [None] * 4)[:4]
    if r is not None:
        raise MobconvError("a fused residual input R is not defined for a quantized Conv")
    return [conv(x, qin[0], w, qin[1], b, qout[0], dtypes[0], activation=attrs["activation"],
                 activation_params=attrs["activation_params"], requantize=mode,
                 **{k: attrs[k] for k in _GEOMETRY})]


def _gemm_node(args, qin, qout, attrs, dtypes, mode=FIXED_POINT):
    a, b, c = (list(args) + [None] * 3)[:3]
    if attrs["alpha"] != 1.0 or attrs["beta"] != 1.0:
        raise MobconvError("a quantized Gemm needs alpha = beta = 1 (fold them into the scales)")
    return [gemm(a, qin[0], b, qin[1], c, qout[0], dtypes[0], transA=attrs["transA"],
                 transB=attrs["transB"], activation=attrs["activation"],
                 activation_params=attrs["activation_params"], requantize=mode)]


# ops whose integer form depends on the model's requantization rule (called with it)
MODE_DEPENDENT = frozenset({"Conv", "Gemm", "MatMul", "AveragePool", "GlobalAveragePool"})

QUANTIZED = {
    "Conv": _conv_node,
    "Gemm": _gemm_node,
    "MatMul": lambda args, qin, qout, attrs, dtypes, mode=FIXED_POINT: [matmul(
        args[0], qin[0], args[1], qin[1], qout[0], dtypes[0], activation=attrs["activation"],
        activation_params=attrs["activation_params"], requantize=mode)],
    "Add": lambda args, qin, qout, attrs, dtypes: [add(args[0], qin[0], args[1], qin[1], qout[0], dtypes[0])],
    "Mul": lambda args, qin, qout, attrs, dtypes: [mul(args[0], qin[0], args[1], qin[1], qout[0], dtypes[0])],
    "Concat": lambda args, qin, qout, attrs, dtypes: [concat(args, qin, qout[0], attrs["axis"], dtypes[0])],
    "GlobalAveragePool": lambda args, qin, qout, attrs, dtypes, mode=FIXED_POINT: [global_average_pool(
        args[0], qin[0], dtypes[0], mode, qout[0])],
    "Relu": lambda args, qin, qout, attrs, dtypes: [relu(args[0], qin[0], qout[0], dtypes[0])],
    "AveragePool": lambda args, qin, qout, attrs, dtypes, mode=FIXED_POINT: [average_pool(
        args[0], qin[0], dtypes[0], mode, qout[0], count_include_pad=attrs["count_include_pad"],
        **{k: attrs[k] for k in _POOL})],
}


def global_average_pool(x, xq, dtype="int8", requantize="fixed_point", yq=None):
    """int8 GlobalAveragePool: average_pool over the whole spatial extent. requantize=
    "float32" (onnxruntime's QLinearGlobalAveragePool): acc = sum(x - zp_x) (int32),
    y = requantize_float32(acc, float32(s_x / float32(s_y * float32(count))), zp_y, range),
    output parameters `yq` (default X's)."""
    if requantize == FLOAT32:
        s_x, zp = per_tensor(xq, "GlobalAveragePool X")
        s_y, zp_y = per_tensor(yq, "GlobalAveragePool Y") if yq is not None else (s_x, zp)
        nd = np.ndim(x) - 2
        count = int(np.prod(np.shape(x)[2:]))
        acc = (np.asarray(x, dtype=np.int64) - zp).sum(axis=tuple(range(2, 2 + nd)), keepdims=True)
        lo, hi = qrange(dtype)
        y = requantize_float32(acc, np.float32(s_x) / (np.float32(s_y) * np.float32(count)), zp_y, lo, hi)
        return y.astype(np.dtype(dtype))
    return average_pool(x, xq, dtype, kernel_shape=list(np.shape(x)[2:]))


def relu(x, xq, yq, dtype="int8"):
    """int8 Relu: max(x, zp) with unchanged parameters (real zero is the zero point, not
    the integer 0); with other output parameters, requantize_tensor then max(., zp_y)."""
    y = requantize_tensor(x, xq, yq, dtype)
    return np.maximum(y, np.array(per_tensor(yq, "Relu Y")[1]).astype(y.dtype))


RESIZE_WEIGHT_BITS = 10


def resize_linear(x, xq, roi, scales, sizes, dtype="int8", **attrs):
    """int8 Resize, mode linear (docs/quantization.md): per resized axis, the float op's
    interpolation matrix W (n_out, n_in) (border taps merged), fixed to 10 fraction bits
    round_half_to_even(W * 2**10); the products with x - zp are exact integers; then
    y = zp + rounding_divide_by_pot(., 10 * axes) (ties away from zero), clamped. Output
    parameters = X's; at most two resized axes (bilinear), so sums stay in int32."""
    x = np.asarray(x)
    _, zp = per_tensor(xq, "Resize X")
    rank = x.ndim
    scales = np.asarray(scales, dtype=np.float64).ravel() if _present(scales) else None
    sizes = np.asarray(sizes, dtype=np.int64).ravel() if _present(sizes) else None
    roi = roi if _present(roi) else None
    axes, scales, sizes, roi = _full_params(rank, attrs["axes"], scales, sizes, roi)
    scales, out = output_geometry(x.shape, axes, scales, sizes, attrs["keep_aspect_ratio_policy"])
    acc = x.astype(np.int64) - zp
    resized = [ax for ax in axes if not (out[ax] == x.shape[ax] and scales[ax] == 1.0)]
    if len(resized) > 2:
        raise MobconvError(f"a quantized linear Resize resizes at most 2 axes, got {len(resized)}")
    for ax in resized:
        n_in = x.shape[ax]
        axis_roi = (roi[ax], roi[rank + ax]) if roi is not None else None
        w = _resize_axis(np.eye(n_in), 0, scales[ax], out[ax], axis_roi, attrs)  # (n_out, n_in)
        wq = np.rint(w * (1 << RESIZE_WEIGHT_BITS)).astype(np.int64)
        acc = np.moveaxis(np.tensordot(wq, np.moveaxis(acc, ax, 0), axes=1), 0, ax)
    lo, hi = qrange(dtype)
    y = rounding_divide_by_pot(acc, RESIZE_WEIGHT_BITS * len(resized)) + zp
    return np.clip(y, lo, hi).astype(np.dtype(dtype))


def _same_params(p: QuantParams, q: QuantParams) -> bool:
    """Both per tensor, with the same float32 scale and zero point."""
    if p is None or q is None or len(p.scales) != 1 or len(q.scales) != 1:
        return False
    zp = lambda v: int(v.zero_points[0]) if v.zero_points is not None and len(v.zero_points) else 0  # noqa: E731
    return np.float32(p.scales[0]) == np.float32(q.scales[0]) and zp(p) == zp(q)


def run_quantized(node, spec, args, attrs, in_quant, out_quant, out_dtypes, requantize=FIXED_POINT) -> list:
    """Outputs of `node` (a registry op) whose tensors are quantized: its integer
    reference, or the float reference for the element-moving ops, MaxPool, GlobalMaxPool,
    nearest Resize and Clip with quantized bounds (which select or clamp input elements,
    exactly, on integers) when the parameters pass through unchanged. Anything else is
    refused, naming the node. `requantize` is the model's rule (`requantize_mode`)."""
    where = f"node {node.name!r} ({node.op})"
    if node.op in ("QuantizeLinear", "DequantizeLinear"):  # the boundaries: parameters are inputs
        return spec.run_reference(args, attrs)
    from .dynamic_quant import is_dynamic, run_dynamic  # float A, int8 weight: dynamic range

    if is_dynamic(node, args, in_quant, out_quant):
        try:
            return run_dynamic(node, args, in_quant, attrs)
        except MobconvError as exc:
            raise MobconvError(f"{where}: {exc}") from None
    fn = QUANTIZED.get(node.op)
    if fn is not None:
        missing = [i for i, (q, a) in enumerate(zip(in_quant, args))
                   if a is not None and q is None and not (node.op in ("Conv", "Gemm") and i == 2)]
        if missing or any(q is None for q in out_quant):
            raise MobconvError(f"{where}: a quantized {node.op} needs quantization parameters on every "
                               f"input and output (missing on input {missing or 'none'} / an output)")
        if node.op in ("AveragePool", "GlobalAveragePool") and (
                np.dtype(out_dtypes[0]) != np.asarray(args[0]).dtype
                or not (_same_params(in_quant[0], out_quant[0]) if requantize != FLOAT32
                        else len(out_quant[0].scales) == 1)):
            raise MobconvError(f"{where}: a quantized {node.op} must keep its input's dtype and per-tensor "
                               "quantization parameters on its output (other output parameters need the "
                               "float32 requantization rule)")
        try:
            if node.op in MODE_DEPENDENT:
                return fn(args, in_quant, out_quant, attrs, out_dtypes, requantize)
            return fn(args, in_quant, out_quant, attrs, out_dtypes)
        except MobconvError as exc:
            raise MobconvError(f"{where}: {exc}") from None
    if node.op == "Resize" and (attrs["mode"] == "cubic" or attrs["antialias"]
                                or attrs["coordinate_transformation_mode"] == "tf_crop_and_resize"):
        raise MobconvError(f"{where}: a quantized Resize is defined for modes nearest and linear "
                           "without antialias or tf_crop_and_resize")
    if node.op == "Resize" and attrs["mode"] == "linear":
        if not _same_params(in_quant[0], out_quant[0]):
            raise MobconvError(f"{where}: a quantized Resize must keep its input's per-tensor "
                               "quantization parameters on its output")
        try:
            roi, scales, sizes = (list(args[1:]) + [None] * 3)[:3]
            return [resize_linear(args[0], in_quant[0], roi, scales, sizes, out_dtypes[0], **attrs)]
        except MobconvError as exc:
            raise MobconvError(f"{where}: {exc}") from None
    bounds = [q for a, q in zip(args[1:], in_quant[1:]) if a is not None] if node.op == "Clip" else []
    if not all(_same_params(in_quant[0], q) for q in bounds):
        raise MobconvError(f"{where}: a quantized Clip needs its min/max as integers with the "
                           "input's quantization parameters")
    if node.op in MOVE_OPS or node.op in ("MaxPool", "GlobalMaxPool", "Resize", "Clip"):
        outs = out_quant[:1] if node.op == "MaxPool" else out_quant  # MaxPool's Indices: int64
        if not all(_same_params(in_quant[0], q) for q in outs):
            raise MobconvError(f"{where}: a quantized {node.op} must keep its input's per-tensor "
                               "quantization parameters on its output")
        return spec.run_reference(args, attrs)
    raise MobconvError(f"{where}: no integer reference for a quantized {node.op} yet "
                       "(run it in float between DequantizeLinear and QuantizeLinear)")
