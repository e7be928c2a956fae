"""Shape arithmetic on symbolic dims, so exports with dynamic dims convert.

Used by shape inference (`mobconv.ir.infer`, constant folding) to follow small
int64 tensors computed from `Shape`, and by the ONNX frontend for the rewrites
below.

Exporters compute the shape inputs of Reshape/Expand/ConstantOfShape at run
time: ``Shape(x) -> Gather -> Unsqueeze -> Concat -> Reshape`` (torch.onnx's
``x.view(x.size(0), -1)``), ``Where(Equal(shape, -1), 1, shape) -> Expand``
(``expand(B, -1, -1)``), ``Shape(x, start=0, end=1) -> Concat -> Expand`` (the
dynamo exporter). The IR needs those inputs as constants to infer shapes, so
while converting, the frontend evaluates such chains on *dims*: every small
int64 tensor derived from a shape is tracked as an object array of ints and
symbol strings ("batch", "batch*3", ...). Where the result is all ints it simply
becomes a constant. Where a symbol remains, the nodes are still emitted (they
stay correct at run time) and the consumer is rewritten into a constant form:

- Reshape: a symbolic dim equal to the input's dim at the same index becomes 0
  (copy), one remaining symbolic dim becomes -1 (the element count fixes it).
- Expand / ConstantOfShape: a symbolic dim that the input already has (aligned
  from the right) becomes 1 (broadcast keeps it); one the input lacks (a
  class token expanded to the batch) is made by Gather along that axis with
  int64 zeros of that length, built from a tensor that has the symbol in its
  shape (Slice to one element per index along that axis, Cast to bool, Xor
  with itself, Cast to int64: values never matter, so NaN/Inf cannot leak in).
- Slice: a symbolic `ends` equal to the data's dim on that axis becomes INT64_MAX.
- Resize: symbolic `sizes` entries equal to the input's dim are dropped via the
  `axes` attribute (that axis is not resized).

The dead shape nodes are removed at the end of loading.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ops.registry import get_spec
from ..ops.shape_ops import dim_add, dim_div, dim_mul
from .graph import Node

INT64_MAX = np.iinfo(np.int64).max

# ops that only move elements: which inputs carry dims (the rest are parameters)
_MOVE = {
    "Gather": (0,), "Slice": (0,), "Concat": None, "Unsqueeze": (0,), "Squeeze": (0,),
    "Reshape": (0,), "Flatten": (0,), "Identity": (0,), "Transpose": (0,), "Expand": (0,),
    "Tile": (0,), "Cast": (0,),
}
_INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8")


class Unknown(Exception):
    """A dim expression the symbolic evaluator cannot represent."""


def _is_sym(d) -> bool:
    return isinstance(d, str)


def _norm(d):
    if isinstance(d, (bool, np.bool_)):
        return bool(d)
    if isinstance(d, (int, np.integer)):
        return int(d)
    if isinstance(d, str):
        return d
    raise Unknown


def as_object(array) -> np.ndarray:
    a = np.asarray(array)
    out = np.empty(a.shape, dtype=object)
    for idx, v in np.ndenumerate(a):
        out[idx] = _norm(v)
    return out


def _binary(op, a, b):
    if op == "Add":
        if _is_sym(a) and _is_sym(b):
            return dim_add(a, b)
        return dim_add(a, b)
    if op == "Sub":
        if _is_sym(b):
            if a == b:
                return 0
            raise Unknown
        return dim_add(a, -b)
    if op == "Mul":
        return dim_mul(a, b)
    if op == "Div":
        if _is_sym(b):
            if a == b:
                return 1
            raise Unknown
        if b == 0:
            raise Unknown
        if not _is_sym(a):
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b > 0) else -q  # integer Div truncates
        return dim_div([a], [b])
    if op == "Equal":
        if _is_sym(a) or _is_sym(b):
            if a == b:
                return True
            other = b if _is_sym(a) else a
            if not _is_sym(other) and other < 0:  # dims are never negative
                return False
            raise Unknown
        return a == b
    if op in ("Max", "Min"):
        if _is_sym(a) or _is_sym(b):
            if a == b:
                return a
            other = b if _is_sym(a) else a
            if not _is_sym(other) and other <= 0:
                return (a if _is_sym(a) else b) if op == "Max" else other
            raise Unknown
        return max(a, b) if op == "Max" else min(a, b)
    raise Unknown


class SymbolicShapes:
    """Per-model state: value name -> object array of dims; symbol -> where it lives."""

    def __init__(self, graph):
        self.graph = graph
        self.dims: dict = {}
        self.source: dict = {}  # symbol -> (value name, axis)
        self.zeros: dict = {}  # symbol -> name of an int64 zeros tensor of that length

    def note_shape(self, name: str) -> None:
        value = self.graph.values.get(name)
        if value is None or value.shape is None:
            return
        for axis, d in enumerate(value.shape):
            if _is_sym(d) and d not in self.source:
                self.source[d] = (name, axis)

    def value(self, name: str):
        """Object array of dims for `name` (constant or tracked), or None."""
        if not name:
            return None
        if name in self.dims:
            return self.dims[name]
        v = self.graph.values.get(name)
        if v is not None and v.data is not None and v.data.size <= 64 and v.dtype in _INT_DTYPES + ("bool",):
            return as_object(v.data)
        return None

    # ---- evaluation ----------------------------------------------------------
    def evaluate(self, op, inputs, attrs) -> Optional[list]:
        """Output dim arrays of `op`, or None when it is not shape arithmetic on dims."""
        if op == "Shape":
            v = self.graph.values.get(inputs[0])
            if v is None or v.shape is None:
                return None
            self.note_shape(inputs[0])
            spec = get_spec("Shape")
            a = spec.resolve_attrs(Node(op, op, list(inputs), ["y"], dict(attrs or {})))
            rank = len(v.shape)
            start, end = a.get("start", 0), a.get("end")
            start = max(0, min(rank, start + rank if start < 0 else start))
            end = rank if end is None else max(0, min(rank, end + rank if end < 0 else end))
            out = np.empty(max(0, end - start), dtype=object)
            for i, d in enumerate(v.shape[start:end]):
                out[i] = d
            return [out]
        vals = [self.value(n) if n else None for n in inputs]
        if not any(n in self.dims for n in inputs if n):
            return None
        if any(n and val is None for n, val in zip(inputs, vals)):
            return None
        try:
            if op in _MOVE:
                if op == "Cast" and not _int_cast(attrs):
                    return None
                return self._move(op, inputs, vals, attrs)
            if op in ("Add", "Sub", "Mul", "Div", "Equal", "Max", "Min"):
                if len(vals) != 2:
                    return None
                f = np.frompyfunc(lambda a, b: _binary(op, a, b), 2, 1)
                return [np.asarray(f(vals[0], vals[1]), dtype=object)]
            if op == "Where":
                cond, a, b = vals
                if any(_is_sym(c) for c in np.ravel(cond)):
                    return None
                c = np.asarray(cond.astype(bool))
                shape = np.broadcast_shapes(c.shape, a.shape, b.shape)
                out = np.empty(shape, dtype=object)
                cb, ab, bb = (np.broadcast_to(x, shape) for x in (c, a, b))
                for idx in np.ndindex(*shape):
                    out[idx] = ab[idx] if cb[idx] else bb[idx]
                return [out]
            if op == "Neg":
                return [np.asarray(np.frompyfunc(lambda a: _binary("Mul", a, -1), 1, 1)(vals[0]), dtype=object)]
        except Unknown:
            return None
        return None

    def _move(self, op, inputs, vals, attrs):
        carried = _MOVE[op]
        carried = range(len(inputs)) if carried is None else carried
        table: list = []
        args = []
        for i, val in enumerate(vals):
            if i in carried and val is not None:
                idx = np.arange(len(table), len(table) + val.size, dtype=np.int64).reshape(val.shape)
                table.extend(val.ravel().tolist())
                args.append(idx)
            elif val is None:
                args.append(None)
            else:
                args.append(np.asarray(val.astype(np.int64)))
        spec = get_spec(op)
        node = Node(op, op, list(inputs), ["y"], dict(attrs or {}))
        if op == "Cast":
            node.attrs = {k: v for k, v in node.attrs.items()}
            node.attrs["to"] = _cast_to_int64(node.attrs.get("to"))
        try:
            (pos,) = spec.run_reference(args, spec.resolve_attrs(node))
        except Exception:  # noqa: BLE001
            return None
        out = np.empty(pos.shape, dtype=object)
        for idx, p in np.ndenumerate(pos):
            out[idx] = table[int(p)]
        return [out]

    # ---- consumers -----------------------------------------------------------
    def zeros_like_dim(self, cx, symbol: str) -> Optional[str]:
        """An int64 tensor of zeros with shape (symbol,), computed from a tensor carrying it."""
        if symbol in self.zeros:
            return self.zeros[symbol]
        src = self.source.get(symbol)
        if src is None:
            return None
        name, axis = src
        rank = len(self.graph.values[name].shape)
        cur = name
        if rank > 1:
            others = [a for a in range(rank) if a != axis]
            sliced = cx.tmp(f"{symbol}_slice")
            cx.emit("Slice", [name, cx.const(np.zeros(len(others), np.int64), "starts"),
                              cx.const(np.ones(len(others), np.int64), "ends"),
                              cx.const(np.asarray(others, np.int64), "axes")], [sliced])
            flat = cx.tmp(f"{symbol}_flat")
            cx.emit("Reshape", [sliced, cx.const(np.asarray([-1], np.int64), "flat")], [flat])
            cur = flat
        as_bool, false, zeros = cx.tmp(f"{symbol}_bool"), cx.tmp(f"{symbol}_false"), cx.tmp(f"{symbol}_zeros")
        cx.emit("Cast", [cur], [as_bool], {"to": _cast_attr("bool")})
        cx.emit("Xor", [as_bool, as_bool], [false])
        cx.emit("Cast", [false], [zeros], {"to": _cast_attr("int64")})
        self.zeros[symbol] = zeros
        return zeros

    def broadcast_to_symbols(self, cx, produced: str, gathers, outputs) -> bool:
        """Gather `produced` along each (axis, symbol) in `gathers` with zeros -> outputs[0]."""
        cur = produced
        for k, (axis, symbol) in enumerate(gathers):
            zeros = self.zeros_like_dim(cx, symbol)
            if zeros is None:
                return False
            out = outputs[0] if k == len(gathers) - 1 else cx.tmp(f"bcast_{symbol}")
            cx.emit("Gather", [cur, zeros], [out], {"axis": axis})
            cur = out
        return True


def _int_cast(attrs) -> bool:
    to = (attrs or {}).get("to")
    if isinstance(to, str):
        return to in _INT_DTYPES
    import onnx

    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(to))).name in _INT_DTYPES
    except Exception:  # noqa: BLE001
        return False


def _cast_to_int64(to):
    return "int64" if isinstance(to, str) else 7


def _cast_attr(name: str):
    """Cast's `to` in the form the IR op takes (dtype name or ONNX enum)."""
    from ..ops.registry import AttrKind

    attr = get_spec("Cast").attr_index.get("to")
    if attr is not None and attr.kind is AttrKind.STRING:
        return name
    import onnx

    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(name)))
