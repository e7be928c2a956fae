"""What an ONNX op converter sees: one `NodeContext` per source node.

A converter is a small function `convert(cx)` that reads the ONNX node through
`cx` (typed attributes via `cx.attrs`, constant inputs via `cx.const_value`,
input ranks via `cx.rank`) and emits IR nodes with `cx.emit`. Helpers here do
the repetitive parts: checking for unknown attributes, turning an old-opset
attribute into the constant input the IR (newest opset) expects, and copying
attributes straight through for ops whose ONNX and IR forms agree.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from onnx import helper, numpy_helper

from ...errors import ConversionError, MobconvError
from ...ir import Node, infer
from ...ops.registry import get_spec
from ..common import AttrReader

_FOLD_LIMIT = 4096  # largest constant input (elements) folded at conversion time

# Attributes the fusion pass adds to some IR ops; never read from ONNX.
_FUSED = {"activation", "activation_params"}


def decode_attrs(node) -> dict:
    """ONNX AttributeProto list -> {name: python value} (tensors as numpy)."""
    result = {}
    for a in node.attribute:
        if a.type in (a.GRAPH, a.GRAPHS):
            result[a.name] = a  # subgraphs: only op-specific converters may accept them
        elif a.type == a.TENSOR:
            result[a.name] = numpy_helper.to_array(a.t)
        elif a.type == a.SPARSE_TENSOR:
            result[a.name] = a
        else:
            result[a.name] = _ir_attr(helper.get_attribute_value(a))
    return result


class NodeContext:
    def __init__(self, graph, node, name: str, opset: int, model_graph=None):
        self.graph = graph
        self.model_graph = model_graph  # the onnx GraphProto (for who-reads-what checks)
        self.node = node
        self.op_type = node.op_type
        self.name = name
        self.opset = opset
        self.where = f"ONNX node {name!r} (type {node.op_type})"
        self.attrs = AttrReader(decode_attrs(node), self.where)
        self.inputs = list(node.input)
        self.outputs = list(node.output)
        self._emitted = 0

    # ---- errors and attribute checks ---------------------------------------
    def error(self, rule: str) -> ConversionError:
        return self.attrs.error(rule)

    def check_attrs(self, known) -> None:
        unknown = sorted(set(self.attrs.attrs) - set(known))
        if unknown:
            raise self.error(
                f"unknown attribute(s) {', '.join(unknown)} for opset {self.opset} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )

    # ---- inputs --------------------------------------------------------
    def input(self, i: int) -> str:
        return self.inputs[i] if i < len(self.inputs) else ""

    def const_value(self, i: int) -> Optional[np.ndarray]:
        name = self.input(i)
        value = self.graph.values.get(name) if name else None
        return None if value is None else value.data

    def shape(self, i: int) -> Optional[tuple]:
        name = self.input(i)
        value = self.graph.values.get(name) if name else None
        return None if value is None else value.shape

    def rank(self, i: int) -> Optional[int]:
        shape = self.shape(i)
        return None if shape is None else len(shape)

    def dtype(self, i: int) -> Optional[str]:
        name = self.input(i)
        value = self.graph.values.get(name) if name else None
        return None if value is None else value.dtype

    # ---- emitting ------------------------------------------------------
    def tmp(self, hint: str) -> str:
        return self.graph.unique_name(f"{self.name}/{hint}")

    def const(self, data, hint: str = "const") -> str:
        name = self.tmp(hint)
        self.graph.add_constant(name, np.asarray(data))
        return name

    def emit(self, op: str, inputs, outputs, attrs=None) -> None:
        """Add one IR node (shape-inferred right away when its inputs are known)."""
        name = self.name if self._emitted == 0 else self.graph.unique_name(f"{self.name}/{op}")
        self._emitted += 1
        inputs, outputs = list(inputs), list(outputs)
        while inputs and not inputs[-1]:
            inputs.pop()
        while outputs and not outputs[-1]:
            outputs.pop()
        if self._fold(op, inputs, outputs, attrs, name):
            return
        node = self.graph.add_node(op, inputs, outputs, attrs, name=name)
        try:
            infer.infer_node(self.graph, node)
        except MobconvError:
            pass  # unknown input shapes: the final infer_shapes reports real problems
        except Exception:  # noqa: BLE001 - a reference choking on probe data
            pass

    def _fold(self, op, inputs, outputs, attrs, name) -> bool:
        """Shape-only computations become constants right away.

        Shape/Size of a statically shaped value, and any node whose inputs are
        all small constants (the index arithmetic of Shape -> Gather -> Concat
        -> Reshape chains and of function-expanded ops), are evaluated with the
        op's reference, because the IR infers shapes at conversion time and
        needs those values as constants. General constant folding of weights
        is left to `mobconv.passes`.
        """
        values = [self.graph.values.get(n) if n else None for n in inputs]
        if any(n and v is None for n, v in zip(inputs, values)):
            return False
        if op in ("Shape", "Size"):
            v = values[0]
            if v.data is None and (v.shape is None or v.dtype is None or
                                   not all(isinstance(d, int) for d in v.shape)):
                return False
        elif not inputs or any(
            v is not None and (v.data is None or v.data.size > _FOLD_LIMIT) for v in values
        ):
            return False
        spec = get_spec(op)
        probe = Node(op, name, list(inputs), list(outputs), dict(attrs or {}))
        try:
            spec.check_arity(probe)
            resolved = spec.resolve_attrs(probe)
            args = []
            for v in values:
                if v is None:
                    args.append(None)
                elif v.data is not None:
                    args.append(v.data)
                else:
                    args.append(np.broadcast_to(np.zeros((), dtype=v.dtype), v.shape))
            results = spec.run_reference(args, resolved)
        except Exception:  # noqa: BLE001 - let the regular path report the problem
            return False
        for out, data in zip(outputs, results):
            if out:
                self.graph.values.pop(out, None)
                self.graph.add_constant(out, np.array(data))
        return True

    def passthrough(self, ir_op: str, inputs=None, attrs=None, drop=(), outputs=None) -> None:
        """Emit `ir_op` with this node's attributes copied (after checking they are known).

        `attrs` overrides/extends the copied ones; `drop` names ONNX attributes
        that are read by the converter itself and not passed on.
        """
        spec = get_spec(ir_op)
        known = (set(spec.attr_index) - _FUSED) | set(drop) | set(attrs or {})
        self.check_attrs(known)
        out_attrs = {k: _ir_attr(v) for k, v in self.attrs.attrs.items() if k not in drop}
        out_attrs.update(attrs or {})
        ins = self.inputs if inputs is None else inputs
        outs = self.outputs if outputs is None else outputs
        self.emit(ir_op, ins, outs, out_attrs)

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
