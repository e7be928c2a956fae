"""What a TensorFlow op converter sees: one `TFNodeContext` per NodeDef.

It is the shared `ConversionContext` (frontends/base.py: emit, const, tmp,
shapes, located errors) with the NodeDef's attributes decoded to Python and
the layout helpers NHWC ops need:

- attributes: int, float, bool, bytes -> str, `type` -> numpy dtype name
  ("float32"), `shape` -> tuple (-1 for an unknown dim) or None (unknown rank),
  `tensor` -> numpy array, lists of those, `func` -> the function's name.
- naming: TensorFlow output `node:0` is IR value `node`, `node:k` is `node:k`
  (`ir_name`); control inputs `^x` never reach a converter. `cx.outputs` names
  outputs 0..k where k is the highest output index the graph reads (at least
  one); `cx.output(i)` names any output.
- layout: TensorFlow values keep TensorFlow's layout in the IR; an NHWC op is
  emitted as `to_nchw` -> NCHW IR op -> `from_nchw`, and the transpose sinking
  pass cancels the pairs between consecutive NHWC ops.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConversionError
from ..base import ConversionContext
from ..common import _MISSING, AttrReader
from .tensors import dtype_name, shape_tuple, tensor_to_array

_TO_NCHW = {4: [0, 3, 1, 2], 5: [0, 4, 1, 2, 3], 3: [0, 2, 1]}
_FROM_NCHW = {4: [0, 2, 3, 1], 5: [0, 2, 3, 4, 1], 3: [0, 2, 1]}


def ir_name(tf_name: str) -> str:
    """TensorFlow tensor name -> IR value name: "x:0" -> "x", "x:2" -> "x:2", "x" -> "x"."""
    node, sep, index = tf_name.rpartition(":")
    if sep and index.isdigit():
        return node if int(index) == 0 else f"{node}:{int(index)}"
    return tf_name


def split_input(tf_input: str):
    """A NodeDef input -> (node name, output index); control inputs "^x" -> (x, -1)."""
    if tf_input.startswith("^"):
        return tf_input[1:], -1
    node, sep, index = tf_input.rpartition(":")
    if sep and index.isdigit():
        return node, int(index)
    return tf_input, 0


def output_name(node_name: str, index: int) -> str:
    return node_name if index == 0 else f"{node_name}:{index}"


def decode_attr(value, where: str, name: str):
    """One AttrValue -> Python (see the module docstring)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "list":
        lst = value.list
        for field in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
            items = getattr(lst, field)
            if len(items):
                return [_decode_scalar(field, v, where, name) for v in items]
        return []
    if kind == "placeholder":
        return value.placeholder
    return _decode_scalar(kind, getattr(value, kind), where, name)


def _decode_scalar(kind, v, where, name):
    if kind == "s":
        try:
            return bytes(v).decode()
        except UnicodeDecodeError:
            return bytes(v)  # binary payloads (rare): left as bytes
    if kind == "i":
        return int(v)
    if kind == "f":
        return float(v)
    if kind == "b":
        return bool(v)
    if kind == "type":
        name_ = dtype_name(v)
        if name_.startswith("dt"):
            raise ConversionError(f"cannot convert {where}: attribute {name!r} has the unknown "
                                  f"type code {int(v)}")
        return name_
    if kind == "shape":
        return shape_tuple(v)
    if kind == "tensor":
        return tensor_to_array(v, f"cannot convert {where}: attribute {name!r}")
    if kind == "func":
        return v.name
    return v


# Tensor types no IR value can have: a node computing on them cannot be converted.
_NO_IR_TYPE = {"string", "resource", "variant", "complex64", "complex128", "qint8", "quint8",
               "qint16", "quint16", "qint32"}


def decode_attrs(node, where: str) -> dict:
    """NodeDef.attr -> {name: python value}; TensorFlow's internal "_..." attributes
    (colocation, output shapes, XLA hints) are left out. A `type` attribute naming a
    tensor type the IR has not (string, resource, complex, ...) is refused here, once
    for every converter."""
    attrs = {}
    for key, value in sorted(node.attr.items()):
        if key.startswith("_"):
            continue
        attrs[key] = decode_attr(value, where, key)
        if value.WhichOneof("value") == "type" and attrs[key] in _NO_IR_TYPE:
            raise ConversionError(f"cannot convert {where}: computes on {attrs[key]} tensors "
                                  f"(attribute {key!r}), which mobconv models cannot hold; "
                                  "cut the graph after it with --inputs")
    return attrs


class TFAttrReader(AttrReader):
    """AttrReader plus the raw `get` and the TensorFlow kinds (bool, type, shape)."""

    def get(self, name: str, default=None):
        """The decoded value, or `default` when the node does not set it."""
        return self.attrs[name] if self.has(name) else default

    def bool(self, name: str, default=_MISSING) -> bool:
        value = self._get(name, default)
        if not isinstance(value, (bool, np.bool_)):
            raise self.error(f"{name} ({value!r}) must be a bool")
        return bool(value)

    def dtype(self, name: str, default=None) -> str:
        """A `type` attribute as a numpy dtype name ("float32")."""
        value = self.get(name, default)
        if not isinstance(value, str):
            raise self.error(f"required type attribute {name!r} is missing")
        return value


class TFNodeContext(ConversionContext):
    def __init__(self, graph, node, inputs, outputs, symbolic=None, source: str = ""):
        where = f"TensorFlow node {node.name!r} (type {node.op})"
        super().__init__(graph, node.name, node.op, where, decode_attrs(node, where),
                         inputs, outputs, symbolic)
        self.attrs = TFAttrReader(self.attrs.attrs, where)
        self.node = node  # the NodeDef
        self.source = source  # the model file, for messages that need it

    def output(self, i: int) -> str:
        """IR value name of this node's output `i` (also one nobody reads)."""
        return self.outputs[i] if i < len(self.outputs) else output_name(self.name, i)

    # ---- layout ----------------------------------------------------------
    def data_format(self, default: str = "NHWC") -> str:
        """"NHWC" (channels last, TensorFlow's default) or "NCHW"; 5-D "NDHWC"/"NCDHW"
        are reported as "NHWC"/"NCHW". Other values are refused."""
        fmt = self.attrs.string("data_format", default) if self.attrs.has("data_format") else default
        known = {"NHWC": "NHWC", "NCHW": "NCHW", "NDHWC": "NHWC", "NCDHW": "NCHW", "NWC": "NHWC",
                 "NCW": "NCHW"}
        if fmt not in known:
            raise self.error(f"data_format {fmt!r} is not supported (supported: NHWC, NCHW, "
                             "NDHWC, NCDHW)")
        return known[fmt]

    def to_nchw(self, value: str, rank: int = None) -> str:
        """A new value: `value` (channels last) transposed to channels first."""
        rank = rank or self._rank_of(value)
        out = self.tmp("to_nchw")
        self.emit("Transpose", [value], [out], {"perm": _TO_NCHW[rank]})
        return out

    def from_nchw(self, value: str, out: str, rank: int = None) -> None:
        """Write `value` (channels first) transposed back to channels last into `out`."""
        rank = rank or self._rank_of(value)
        self.emit("Transpose", [value], [out], {"perm": _FROM_NCHW[rank]})

    def _rank_of(self, value: str) -> int:
        v = self.graph.values.get(value)
        rank = len(v.shape) if v is not None and v.shape is not None else 4
        if rank not in _TO_NCHW:
            raise self.error(f"expects a 3-D, 4-D or 5-D tensor, got rank {rank} ({value!r})")
        return rank
