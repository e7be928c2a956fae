"""Tensor metadata, creation, type conversion and pass-through ops (ONNX opset 28).

Shape and Size read a tensor's shape (int64 results); Cast converts dtypes
(`to` holds an ONNX TensorProto dtype enum value); ConstantOfShape and Range
create tensors whose shape comes from constant inputs; Identity and Dropout
(inference mode) pass their input through.
"""
import math

import numpy as np

from .registry import Attr, AttrKind, op, same_as_input
from .shape_ops import at_run_time, check_values, const_ints, dim_add, fmt_shape, param_count, run_time_dim, shape_input

try:  # ships with onnx; gives numpy dtypes for bfloat16, float8, int4, ...
    import ml_dtypes
except ImportError:  # pragma: no cover
    ml_dtypes = None


def _shape_range(rank, start, end):
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = rank if end is None else min(max(end + rank if end < 0 else end, 0), rank)
    return start, max(end, start)


def _shape_infer(ctx):
    rank = len(ctx.shape(0))
    start, end = _shape_range(rank, ctx.attrs["start"], ctx.attrs["end"])
    return [("int64", (end - start,))]


@op("Shape", inputs=["data"], outputs=["shape"],
    attrs=[Attr("start", AttrKind.INT, 0), Attr("end", AttrKind.INT, None)],
    infer=_shape_infer)
def shape(x, start, end):
    """The input's shape as an int64 1-D tensor, dims [start, end) (negative counts from
    the end, clamped to [0, rank]; end absent = rank)."""
    lo, hi = _shape_range(x.ndim, start, end)
    return np.array(x.shape[lo:hi], dtype=np.int64)


@op("Size", inputs=["data"], outputs=["size"], infer=lambda ctx: [("int64", ())])
def size(x):
    """Number of elements, as an int64 scalar."""
    return np.array(x.size, dtype=np.int64)


@op("Identity", inputs=["input"], outputs=["output"], infer=same_as_input(0))
def identity(x):
    """Copy of the input."""
    return x.copy()


def _dropout_infer(ctx):
    out = [(ctx.dtype(0), ctx.shape(0))]
    if ctx.num_outputs > 1:
        out.append(("bool", ctx.shape(0)))
    return out


@op("Dropout", inputs=["data", "ratio?", "training_mode?"], outputs=["output", "mask?"],
    attrs=[Attr("seed", AttrKind.INT, 0)], infer=_dropout_infer)
def dropout(x, ratio=None, training_mode=None, *, seed):
    """Inference (training_mode absent/false, or ratio 0): the identity, mask all True.

    With training_mode true, drops elements like ONNX's test generator:
    mask = RandomState(seed).uniform(0, 1, shape) >= ratio, output = x * mask / (1 - ratio).
    """
    r = 0.5 if ratio is None else float(np.asarray(ratio))
    if training_mode is None or not bool(np.asarray(training_mode)) or r == 0:
        return x.copy(), np.ones(x.shape, dtype=bool)
    mask = np.random.RandomState(seed).uniform(0, 1.0, x.shape) >= r
    scale = np.asarray(1 / (1 - r)).astype(x.dtype)
    return (mask * x * scale).astype(x.dtype), mask


# ---- Cast -----------------------------------------------------------------------

# ONNX TensorProto.DataType enum value -> numpy dtype name (ml_dtypes names for the
# narrow float/int types). STRING (8) and the complex types are not supported.
ONNX_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
    17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4_e2m1fn", 25: "uint2", 26: "int2",
}
_FLOAT8 = {17, 18, 19, 20}


def numpy_dtype(to: int) -> np.dtype:
    """numpy dtype of ONNX dtype enum value `to` (ValueError if unsupported)."""
    name = ONNX_DTYPES.get(to)
    if name is None:
        raise ValueError(f"Cast: ONNX dtype {to} is not supported "
                         f"(supported enum values: {sorted(ONNX_DTYPES)})")
    if hasattr(np, name) and name != "bool":
        return np.dtype(name)
    if name == "bool":
        return np.dtype(bool)
    if ml_dtypes is None:
        raise ValueError(f"Cast: dtype {name} needs the ml_dtypes package")
    return np.dtype(getattr(ml_dtypes, name))


def _cast_infer(ctx):
    from ..ir.graph import DTYPES

    to = ctx.attrs["to"]
    name = ONNX_DTYPES.get(to)
    if name not in DTYPES:
        raise ctx.error(f"cannot cast to ONNX dtype {to} ({name or 'unknown'}): the IR "
                        f"supports {', '.join(DTYPES)}")
    return [(name, ctx.shape(0))]


@op("Cast", inputs=["input"], outputs=["output"],
    attrs=[Attr("to", AttrKind.INT), Attr("saturate", AttrKind.INT, 1),
           Attr("round_mode", AttrKind.STRING, "up")],
    infer=_cast_infer)
def cast(x, to, saturate, round_mode):
    """Convert to the dtype whose ONNX TensorProto enum value is `to` (1 float32,
    2 uint8, 3 int8, 5 int16, 6 int32, 7 int64, 9 bool, 10 float16, 16 bfloat16; the
    IR supports those; the reference also does 4, 11-13 and the float8/int4 types).

    float -> int truncates toward zero (out of range is undefined, as in ONNX);
    int -> narrower int wraps; anything -> bool is `!= 0`. `saturate` (float8
    targets only): 1 clips finite and infinite values to the type's largest
    magnitude, 0 lets them overflow to inf/NaN. `round_mode` only concerns
    float8e8m0, which is not supported.
    """
    dtype = numpy_dtype(to)
    if to in _FLOAT8 and saturate:
        top = float(ml_dtypes.finfo(dtype).max)
        wide = x.astype(np.float32)
        return np.where(np.isnan(wide), wide, np.clip(wide, -top, top)).astype(dtype)
    if dtype == np.dtype(bool):
        return x != 0
    return x.astype(dtype)


# ---- ConstantOfShape / Range ------------------------------------------------------


def _constant_of_shape_infer(ctx):
    if at_run_time(ctx, 0, follows_symbols=True):
        rank = param_count(ctx, 0, "ConstantOfShape's shape")
        dims = [run_time_dim(ctx, k) for k in range(rank)]
    else:
        dims = shape_input(ctx, 0, "ConstantOfShape's shape")
    if any(isinstance(d, int) and d < 0 for d in dims):
        raise ctx.error(f"shape {dims} must not have negative dims")
    value = ctx.attrs["value"]
    if value.size != 1:
        raise ctx.error(f"value must hold exactly one element, got shape {value.shape}")
    return [(value.dtype.name, tuple(dims))]


@op("ConstantOfShape", inputs=["input"], outputs=["output"],
    attrs=[Attr("value", AttrKind.TENSOR, np.zeros(1, np.float32))],
    infer=_constant_of_shape_infer)
def constant_of_shape(shape, value):
    """A tensor of shape `input` (int64 1-D) filled with the single element of `value`
    (a 1-element TENSOR attribute whose dtype is the output's; default float32 0)."""
    check_values("ConstantOfShape", [shape], {"value": np.asarray(value)})
    value = np.asarray(value)
    dims = [int(d) for d in np.asarray(shape).reshape(-1)]
    return np.full(dims, value.reshape(-1)[0], dtype=value.dtype)


def _range_count(start, limit, delta):
    if all(isinstance(v, (int, np.integer)) for v in (start, limit, delta)):
        start, limit, delta = int(start), int(limit), int(delta)
        return max(-((start - limit) // delta), 0)
    span = (float(limit) - float(start)) / float(delta)
    if not math.isfinite(span):
        raise ValueError(f"Range: start, limit and delta must be finite, got {float(start)}, "
                         f"{float(limit)}, {float(delta)}")
    return max(math.ceil(span), 0)


def _range_infer(ctx):
    values = []
    sym = [ctx.sym_value(i) if ctx.const(i) is None else None for i in range(3)]
    if sym[1] is not None and len(sym[1]) == 1 and ctx.const(0) is not None and ctx.const(2) is not None:
        # arange(S) with S a run-time dim: length S - start for delta 1, else a fresh symbol
        start, delta = np.asarray(ctx.const(0)).reshape(-1), np.asarray(ctx.const(2)).reshape(-1)
        if start.size == 1 and delta.size == 1 and float(delta[0]) == 1 and float(start[0]) == int(start[0]):
            return [(ctx.dtype(0), (dim_add(sym[1][0], -int(start[0])),))]
        return [(ctx.dtype(0), (f"{ctx.node.name}_len",))]
    if any(at_run_time(ctx, i) for i in range(3)):
        for i, name in enumerate(("start", "limit", "delta")):
            if param_count(ctx, i, f"Range's {name}") != 1:
                raise ctx.error(f"{name} must be a scalar, got shape {fmt_shape(ctx.shape(i))}")
        return [(ctx.dtype(0), (run_time_dim(ctx, 0),))]
    for i, name in enumerate(("start", "limit", "delta")):
        data = ctx.const(i)
        if data is None:
            raise ctx.error(f"Range's {name} (input {i}) must be a constant to infer the "
                            "output length")
        if np.asarray(data).size != 1:
            raise ctx.error(f"{name} must be a scalar, got shape {fmt_shape(np.shape(data))}")
        values.append(np.asarray(data).reshape(-1)[0])
    if float(values[2]) == 0:
        raise ctx.error("delta must not be 0")
    if not all(math.isfinite(float(v)) for v in values):
        raise ctx.error("start, limit and delta must be finite, got "
                        + ", ".join(str(float(v)) for v in values))
    return [(ctx.dtype(0), (_range_count(*values),))]


@op("Range", inputs=["start", "limit", "delta"], outputs=["output"],
    attrs=[Attr("stash_type", AttrKind.INT, 1)], infer=_range_infer)
def range_(start, limit, delta, stash_type):
    """output[i] = start + i * delta for i < max(ceil((limit - start) / delta), 0).

    Scalars of one dtype. Integers are exact; float32 is computed in float64;
    float16/bfloat16 in float32 (stash_type 1) or float64 (stash_type 11).
    """
    check_values("Range", [start, limit, delta], {"stash_type": stash_type})
    dtype = start.dtype
    s, l, d = (np.asarray(v).reshape(-1)[0] for v in (start, limit, delta))
    if dtype.kind in "iu":
        n = _range_count(int(s), int(l), int(d))
        return (int(s) + np.arange(n, dtype=np.int64) * int(d)).astype(dtype)
    compute = np.float64
    if dtype.name in ("float16", "bfloat16"):
        if stash_type not in (1, 11):
            raise ValueError(f"Range: stash_type must be 1 (float) or 11 (double), got {stash_type}")
        compute = np.float32 if stash_type == 1 else np.float64
    s, l, d = (compute(float(v)) for v in (s, l, d))
    n = _range_count(float(s), float(l), float(d))
    return (s + np.arange(n, dtype=compute) * d).astype(dtype)
