"""What an ONNX op converter sees: one `NodeContext` per source node.

A converter is a small function `convert(cx)` that reads the ONNX node through
`cx` (typed attributes via `cx.attrs`, constant inputs via `cx.const_value`,
input ranks via `cx.rank`) and emits IR nodes with `cx.emit`. Helpers here do
the repetitive parts: checking for unknown attributes, turning an old-opset
attribute into the constant input the IR (newest opset) expects, and copying
attributes straight through for ops whose ONNX and IR forms agree.
"""
from __future__ import annotations


import numpy as np
from onnx import helper

from ...errors import ConversionError
from ...ops.registry import get_spec
from ..base import ConversionContext

# Attributes the fusion pass adds to some IR ops; never read from ONNX.
_FUSED = {"activation", "activation_params"}


def decode_attrs(node, where: str = "") -> dict:
    """ONNX AttributeProto list -> {name: python value} (tensors as numpy, checked
    like initializers; strings must be UTF-8)."""
    from .tensors import tensor_to_array

    result = {}
    for a in node.attribute:
        if a.type in (a.GRAPH, a.GRAPHS):
            result[a.name] = a  # subgraphs: only op-specific converters may accept them
        elif a.type == a.TENSOR:
            result[a.name] = tensor_to_array(a.t, f"cannot convert {where}: attribute {a.name!r}")
        elif a.type == a.SPARSE_TENSOR:
            result[a.name] = a
        else:
            try:
                result[a.name] = _ir_attr(helper.get_attribute_value(a))
            except UnicodeDecodeError:
                raise ConversionError(f"cannot convert {where}: attribute {a.name!r} is not UTF-8 text") from None
            except Exception as exc:  # noqa: BLE001 - onnx.helper on an attribute of no/unknown type
                raise ConversionError(f"cannot convert {where}: attribute {a.name!r} cannot be read "
                                      f"({' '.join(str(exc).split())[:100]})") from None
    return result


# ONNX attribute type -> the IR attribute kind it carries (mobconv.ops.registry.AttrKind).
_ATTR_KINDS = {1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 6: "FLOATS", 7: "INTS", 8: "STRINGS"}


class NodeContext(ConversionContext):
    def __init__(self, graph, node, name: str, opset: int, model_graph=None, symbolic=None):
        where = f"ONNX node {name!r} (type {node.op_type})"
        super().__init__(graph, name, node.op_type, where, decode_attrs(node, where),
                         node.input, node.output, symbolic)
        self.model_graph = model_graph  # the onnx GraphProto (for who-reads-what checks)
        self.node = node
        self.opset = opset

    def _attr_scope(self) -> str:
        return f" for opset {self.opset}"

    def passthrough(self, ir_op: str, inputs=None, attrs=None, drop=(), outputs=None, fold: bool = True) -> None:
        """Emit `ir_op` with this node's attributes copied (after checking they are known).

        `attrs` overrides/extends the copied ones; `drop` names ONNX attributes
        that are read by the converter itself and not passed on.
        """
        spec = get_spec(ir_op)
        known = (set(spec.attr_index) - _FUSED) | set(drop) | set(attrs or {})
        self.check_attrs(known)
        for a in self.node.attribute:  # copied attributes keep their ONNX type: it must fit
            declared = spec.attr_index.get(a.name)
            if a.name in drop or a.name in (attrs or {}) or declared is None:
                continue
            got = _ATTR_KINDS.get(a.type, str(a.type))
            if got != declared.kind.name and not (got == "INT" and declared.kind.name == "FLOAT"):
                raise self.error(f"attribute {a.name!r} must be of type {declared.kind.name}, "
                                 f"got {got}")
        out_attrs = {k: _ir_attr(v) for k, v in self.attrs.attrs.items() if k not in drop}
        out_attrs.update(attrs or {})
        ins = self.inputs if inputs is None else inputs
        outs = self.outputs if outputs is None else outputs
        self.emit(ir_op, ins, outs, out_attrs, fold=fold)

    def attr_as_input(self, name: str, dtype, default=None) -> str:
        """An old-opset attribute turned into a constant input ('' when absent)."""
        if self.attrs.has(name):
            return self.const(np.asarray(self.attrs.attrs[name], dtype=dtype), name)
        if default is None:
            return ""
        return self.const(np.asarray(default, dtype=dtype), name)


def _ir_attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value
