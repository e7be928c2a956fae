"""Element-wise binary/variadic ops with numpy (multidirectional) broadcasting.

Arithmetic (Add, Sub, Mul, Div, Pow, Mod), variadic (Max, Min, Sum, Mean),
logical (And, Or, Xor), comparisons (Equal, Less, ...) and Where, with the
semantics of ONNX opset 28. Every reference returns the dtype ONNX produces:
the first input's dtype for arithmetic, bool for logic and comparisons, X's
dtype for Where. Integer arithmetic wraps around like C; integer Div truncates
toward zero (C semantics), not toward minus infinity (numpy's //).
Shapes: `registry.broadcast_shapes` (symbolic dims allowed).
"""
import numpy as np

from .registry import Attr, AttrKind, broadcast_shapes, op

_INTEGER_KINDS = "iu"


def _same_dtype_infer(out_dtype=None, first=0):
    """Broadcast inputs `first`.. and require them to share one dtype (ONNX type constraint T)."""

    def infer(ctx):
        values = [v for v in ctx.inputs[first:] if v is not None]
        dtypes = sorted({v.dtype for v in values})
        if len(dtypes) > 1:
            got = ", ".join(f"{v.name}: {v.dtype}" for v in values)
            raise ctx.error(f"inputs must all have the same dtype (got {got})")
        shapes = [v.shape for v in ctx.inputs if v is not None]
        dtype = out_dtype or values[0].dtype
        return [(dtype, broadcast_shapes(*shapes, ctx=ctx))]

    return infer


def _binary(name, fn, out_dtype=None):
    """Register a two-input op `C = fn(A, B)` whose output has A's dtype (or `out_dtype`)."""

    def reference(a, b):
        with np.errstate(all="ignore"):
            result = fn(a, b)
        return np.asarray(result).astype(out_dtype or a.dtype, copy=False)

    reference.__name__ = name.lower()
    reference.__doc__ = f"{name}(A, B) element-wise with numpy broadcasting (ONNX {name})."
    op(name, inputs=["A", "B"], outputs=["C"], infer=_same_dtype_infer(out_dtype))(reference)


def _int_div(a, b):
    """Integer division truncating toward zero (C semantics); x / 0 gives 0 instead of trapping."""
    q = np.floor_divide(a, b)
    r = np.remainder(a, b)
    if a.dtype.kind == "i":
        q = q + ((r != 0) & ((a < 0) ^ (b < 0))).astype(q.dtype)
    return q


def _div(a, b):
    if a.dtype.kind in _INTEGER_KINDS and b.dtype.kind in _INTEGER_KINDS:
        return _int_div(a, b)
    return np.divide(a, b)


_binary("Add", np.add)
_binary("Sub", np.subtract)
_binary("Mul", np.multiply)
_binary("Div", _div)
_binary("And", np.logical_and, "bool")
_binary("Or", np.logical_or, "bool")
_binary("Xor", np.logical_xor, "bool")
_binary("Equal", np.equal, "bool")
_binary("Less", np.less, "bool")
_binary("Greater", np.greater, "bool")
_binary("LessOrEqual", np.less_equal, "bool")
_binary("GreaterOrEqual", np.greater_equal, "bool")


def _pow_infer(ctx):
    return [(ctx.dtype(0), broadcast_shapes(ctx.shape(0), ctx.shape(1), ctx=ctx))]


@op("Pow", inputs=["X", "Y"], outputs=["Z"], infer=_pow_infer)
def pow_(x, y):
    """Z = X ** Y element-wise; X and Y may have different dtypes, Z has X's dtype.

    An integer base with a negative integer exponent is computed in float64
    and converted back (numpy would refuse it).
    """
    with np.errstate(all="ignore"):
        if x.dtype.kind in _INTEGER_KINDS and y.dtype.kind in _INTEGER_KINDS and np.any(y < 0):
            result = np.power(x.astype(np.float64), y.astype(np.float64))
        else:
            result = np.power(x, y)
    return np.asarray(result).astype(x.dtype, copy=False)


@op("Mod", inputs=["A", "B"], outputs=["C"], attrs=[Attr("fmod", AttrKind.INT, 0)],
    infer=_same_dtype_infer())
def mod(a, b, fmod):
    """Remainder. fmod=0: sign of B (A - floor(A/B)*B, numpy `mod`); fmod=1: sign of A
    (A - trunc(A/B)*B, C `fmod`). Integer remainder by zero gives 0."""
    if fmod not in (0, 1):
        raise ValueError(f"Mod: fmod must be 0 or 1, got {fmod}")
    with np.errstate(all="ignore"):
        result = np.fmod(a, b) if fmod else np.mod(a, b)
    return np.asarray(result).astype(a.dtype, copy=False)


def _variadic(name, fold, finish=None):
    def reference(*inputs):
        if not inputs:
            raise ValueError(f"{name} needs at least one input")
        dtype = inputs[0].dtype
        with np.errstate(all="ignore"):
            result = inputs[0]
            for x in inputs[1:]:
                result = fold(result, x)
            if finish is not None:
                result = finish(result, len(inputs))
        return np.array(result).astype(dtype, copy=False)

    reference.__name__ = name.lower()
    reference.__doc__ = (
        f"{name} of all inputs element-wise with numpy broadcasting (ONNX {name}); "
        "the output has the inputs' dtype."
    )
    op(name, inputs=["data_0", "data*"], outputs=[name.lower()],
       infer=_same_dtype_infer())(reference)


_variadic("Max", np.maximum)  # NaN propagates, like ONNX's reference
_variadic("Min", np.minimum)
_variadic("Sum", np.add)
_variadic("Mean", np.add, lambda total, n: total / n)


def _where_infer(ctx):
    if ctx.dtype(0) != "bool":
        raise ctx.error(f"condition must be bool, got {ctx.dtype(0)}")
    return _same_dtype_infer(first=1)(ctx)


@op("Where", inputs=["condition", "X", "Y"], outputs=["output"], infer=_where_infer)
def where(condition, x, y):
    """X where condition (bool) is true, else Y; all three broadcast together."""
    return np.where(condition.astype(bool, copy=False), x, y).astype(x.dtype, copy=False)
