"""The op registry: one entry per IR op, declared beside its numpy reference.

An `OpSpec` names the op's inputs and outputs, its typed attributes with
defaults, a shape/dtype function and the numpy reference that *is* the
specification every kernel is tested against. IR op semantics follow the
newest ONNX opset the installed onnx knows, unless an op's docstring says
otherwise (ops added for Caffe/TensorFlow, fused activations).

Declaring an op:

    @op("Relu", inputs=["X"], outputs=["Y"], infer=same_as_input(0))
    def relu(x):
        return np.maximum(x, 0)

The reference is called as ``fn(*inputs, **attrs)`` with every declared
attribute present (defaults filled in); absent optional inputs are None. It
returns one array or a tuple of arrays (one per output).

Input/output names: "B?" marks an optional one, "inputs*" a variadic tail.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..errors import MobconvError, ShapeError


class AttrKind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    INTS = "ints"
    FLOATS = "floats"
    STRINGS = "strings"
    TENSOR = "tensor"  # np.ndarray


REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    name: str
    kind: AttrKind
    default: Any = REQUIRED

    def check(self, value, where: str):
        """Coerce `value` to this attribute's Python type or raise a clear error.

        The value must already be of the attribute's kind: an int (or an integral
        float) for INT, a number for FLOAT, a list of those for INTS/FLOATS, a string
        for STRING; a tensor or a list where a scalar is declared (ONNX `transB`
        given as a tensor) is refused, as the runtime refuses it. Ints must fit
        in 64 bits, as the file stores them."""
        kind = self.kind
        try:
            if kind is AttrKind.INT:
                return as_int64(value)
            if kind is AttrKind.FLOAT:
                return as_number(value)
            if kind is AttrKind.STRING:
                if isinstance(value, bytes):
                    value = value.decode()
                if not isinstance(value, str):
                    raise TypeError
                return value
            if kind is AttrKind.INTS:
                return [as_int64(v) for v in as_sequence(value)]
            if kind is AttrKind.FLOATS:
                return [as_number(v) for v in as_sequence(value)]
            if kind is AttrKind.STRINGS:
                return [v.decode() if isinstance(v, bytes) else _string(v) for v in as_sequence(value)]
            if kind is AttrKind.TENSOR:
                return np.asarray(value)
        except (TypeError, ValueError, UnicodeDecodeError, OverflowError):
            pass
        shown = " ".join(repr(value).split())  # one line, also for arrays
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise MobconvError(f"{where}: attribute {self.name!r} must be {_KIND_WORDS[kind]}, "
                           f"got {type(value).__name__} {shown}")


_KIND_WORDS = {
    AttrKind.INT: "an integer", AttrKind.FLOAT: "a number", AttrKind.STRING: "a string",
    AttrKind.INTS: "a list of integers", AttrKind.FLOATS: "a list of numbers",
    AttrKind.STRINGS: "a list of strings", AttrKind.TENSOR: "a tensor",
}
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def as_int64(value) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value) or float(value) != int(value):
            raise TypeError
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise TypeError
    value = int(value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError
    return value


def as_number(value) -> float:
    if isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)):
        return float(value)
    raise TypeError


def _string(value) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def as_sequence(value) -> list:
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise TypeError
        return value.tolist()
    if not isinstance(value, (list, tuple)):
        raise TypeError
    return list(value)


@dataclass
class InferContext:
    """What a shape function sees: input Values (dtype, shape, maybe data) and attributes."""

    node: Any
    inputs: list  # list[Optional[Value]]
    attrs: dict
    num_outputs: int
    # symbolic values of small int tensors computed from shapes (Shape -> Gather -> Concat):
    # per input an object array of ints and dim symbols, or None (see mobconv.ir.infer)
    sym: Optional[list] = None

    def error(self, rule: str) -> ShapeError:
        return ShapeError(f"node {self.node.name!r} ({self.node.op}): {rule}")

    def shape(self, i: int):
        v = self.inputs[i] if i < len(self.inputs) else None
        return None if v is None else v.shape

    def dtype(self, i: int):
        v = self.inputs[i] if i < len(self.inputs) else None
        return None if v is None else v.dtype

    def const(self, i: int):
        """The constant data of input i, or None if it is not known at conversion time."""
        v = self.inputs[i] if i < len(self.inputs) else None
        return None if v is None else v.data

    def sym_value(self, i: int):
        """Input i's value as a flat list of ints and symbolic dims, when it is computed from
        shapes at run time (None if unknown or already a constant)."""
        if self.sym is None or i >= len(self.sym) or self.sym[i] is None:
            return None
        return [d if isinstance(d, str) else int(d) for d in np.asarray(self.sym[i]).reshape(-1)]


@dataclass(frozen=True)
class OpSpec:
    name: str
    inputs: tuple
    outputs: tuple
    attrs: tuple
    reference: Callable
    infer: Optional[Callable] = None  # (InferContext) -> list[(dtype, shape)]
    version: int = 1
    doc: str = ""
    attr_index: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def min_inputs(self) -> int:
        return sum(1 for n in self.inputs if not n.endswith(("?", "*")))

    @property
    def max_inputs(self) -> Optional[int]:
        return None if any(n.endswith("*") for n in self.inputs) else len(self.inputs)

    @property
    def min_outputs(self) -> int:
        return sum(1 for n in self.outputs if not n.endswith(("?", "*")))

    @property
    def max_outputs(self) -> Optional[int]:
        return None if any(n.endswith("*") for n in self.outputs) else len(self.outputs)

    def resolve_attrs(self, node) -> dict:
        """Attributes of `node` checked, coerced and completed with defaults."""
        where = f"node {node.name!r} ({node.op})"
        unknown = sorted(set(node.attrs) - set(self.attr_index))
        if unknown:
            raise MobconvError(
                f"{where}: unknown attribute(s) {', '.join(unknown)} "
                f"(known: {', '.join(a.name for a in self.attrs) or 'none'})"
            )
        result = {}
        for attr in self.attrs:
            if attr.name in node.attrs:
                result[attr.name] = attr.check(node.attrs[attr.name], where)
                if attr.kind is not AttrKind.TENSOR:
                    # the file stores what the node holds (an ndarray would be written as
                    # a TENSOR): store the declared kind
                    value = result[attr.name]
                    node.attrs[attr.name] = list(value) if isinstance(value, list) else value
            elif attr.default is REQUIRED:
                raise MobconvError(f"{where}: required attribute {attr.name!r} is missing")
            else:
                default = attr.default
                result[attr.name] = list(default) if isinstance(default, (list, tuple)) else default
        return result

    def check_arity(self, node) -> None:
        where = f"node {node.name!r} ({node.op})"
        n_in, n_out = len(node.inputs), len(node.outputs)
        if n_in < self.min_inputs or (self.max_inputs is not None and n_in > self.max_inputs):
            raise MobconvError(
                f"{where}: takes {_arity(self.min_inputs, self.max_inputs)} input(s), got {n_in}"
            )
        for i, name in enumerate(node.inputs[: len(self.inputs)]):
            if not name and not self.inputs[min(i, len(self.inputs) - 1)].endswith(("?", "*")):
                raise MobconvError(f"{where}: input {i} ({self.inputs[i]}) is required")
        if n_out < self.min_outputs or (self.max_outputs is not None and n_out > self.max_outputs):
            raise MobconvError(
                f"{where}: has {_arity(self.min_outputs, self.max_outputs)} output(s), got {n_out}"
            )

    def run_reference(self, inputs: list, attrs: dict) -> list:
        result = self.reference(*inputs, **attrs)
        if isinstance(result, (tuple, list)):
            return [np.asarray(r) for r in result]
        return [np.asarray(result)]


def _arity(lo, hi) -> str:
    if hi is None:
        return f"at least {lo}"
    return str(lo) if lo == hi else f"{lo} to {hi}"


REGISTRY: dict = {}


def op(name, inputs, outputs, attrs=(), infer=None, version=1):
    """Decorator: register the decorated numpy function as the reference of op `name`."""

    def wrap(fn):
        if name in REGISTRY:
            raise RuntimeError(f"op {name!r} registered twice")
        attr_tuple = tuple(attrs)
        spec = OpSpec(
            name=name,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            attrs=attr_tuple,
            reference=fn,
            infer=infer,
            version=version,
            doc=(fn.__doc__ or "").strip(),
            attr_index={a.name: a for a in attr_tuple},
        )
        REGISTRY[name] = spec
        return fn

    return wrap


def get_spec(name: str) -> OpSpec:
    from . import load_all

    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise MobconvError(f"unknown IR op {name!r}") from None


# ---- helpers for shape functions ----------------------------------------


def broadcast_shapes(*shapes, ctx: Optional[InferContext] = None) -> tuple:
    """Numpy-style broadcast of shapes whose dims may be ints or symbol strings."""
    ndim = max(len(s) for s in shapes)
    result = []
    for axis in range(ndim):
        dims = [s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0]
        known = {d for d in dims if isinstance(d, int) and d != 1}
        symbols = [d for d in dims if isinstance(d, str)]
        if len(known) > 1:
            msg = f"shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast"
            raise ctx.error(msg) if ctx else ShapeError(msg)
        if known:
            result.append(known.pop())
        elif symbols:
            result.append(symbols[0])
        else:
            result.append(1)
    return tuple(result)


def same_as_input(i: int = 0):
    """Shape function: every output has input i's dtype and shape."""

    def infer(ctx: InferContext):
        return [(ctx.dtype(i), ctx.shape(i))] * max(ctx.num_outputs, 1)

    return infer


def broadcast_infer(dtype_from: int = 0, out_dtype: Optional[str] = None):
    """Shape function for element-wise ops with numpy broadcasting."""

    def infer(ctx: InferContext):
        shapes = [v.shape for v in ctx.inputs if v is not None]
        dtype = out_dtype or ctx.dtype(dtype_from)
        return [(dtype, broadcast_shapes(*shapes, ctx=ctx))]

    return infer


def probe_infer(ctx: InferContext) -> list:
    """Fallback shape function: run the reference on placeholder data.

    Constant inputs use their data; others are zeros (ones for ints) with each
    symbolic dim replaced by a distinct probe size. Output dims equal to a probe
    size are mapped back to the symbol. Used for ops without an explicit infer.
    """
    probes, probe_of = {}, {}
    next_probe = 97  # primes unlikely to collide with real dims
    primes = [97, 89, 83, 79, 73, 71, 67, 61, 59, 53]
    arrays = []
    for v in ctx.inputs:
        if v is None:
            arrays.append(None)
            continue
        if v.data is not None:
            arrays.append(v.data)
            continue
        if v.shape is None or v.dtype is None:
            raise ctx.error(f"shape of input {v.name!r} is unknown")
        dims = []
        for d in v.shape:
            if isinstance(d, str):
                if d not in probes:
                    next_probe = primes[len(probes) % len(primes)]
                    probes[d] = next_probe
                    probe_of[next_probe] = d
                d = probes[d]
            dims.append(d)
        dtype = "float32" if v.dtype == "bfloat16" else v.dtype
        arrays.append(np.zeros(dims, dtype=dtype))
    spec = REGISTRY[ctx.node.op]
    outs = spec.run_reference(arrays, ctx.attrs)
    return [
        (o.dtype.name, tuple(probe_of.get(d, d) if probes else d for d in o.shape)) for o in outs
    ]
