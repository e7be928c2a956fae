"""What a layer converter sees: `LayerContext`.

A converter is ``fn(ctx) -> None`` registered for one or more Caffe layer types
(`layers/`). It reads parameters through `ctx.param(...)` (an `AttrReader`
over the layer's parameter message, enum values as their names), weights
through `ctx.blob(i, shape)`, and emits IR nodes with `ctx.node(...)`, whose
output shapes are inferred at once so the next node (or converter) can use
them (`ctx.shape(name)`). The layer's results must end up in `ctx.outputs`
(one IR value name per Caffe top, already chosen by the loader), either by
naming them as node outputs or with `ctx.alias(i, value)`.

`LayerContext` is the frontends' shared `ConversionContext` (frontends/base.py):
`node`, `temp`, `const`, `shape(name)` are Caffe's names for its `emit`, `tmp`,
`const`, `shape`, so Caffe gets the same emit-time shape folding as ONNX and
TensorFlow. Caffe's shapes are always known, so a shape rule broken by a node is
reported at once (`strict_shapes`), naming the layer.
"""
from __future__ import annotations

import zlib
from typing import Optional

import numpy as np

from ...errors import ConversionError, MobconvError
from ...limits import check_tensor
from ..base import ConversionContext
from ..common import AttrReader


def message_to_dict(msg) -> dict:
    """Set fields (and fields with a declared default) of a protobuf message, enums as names."""
    result = {}
    for fd in msg.DESCRIPTOR.fields:
        repeated = fd.label == fd.LABEL_REPEATED if hasattr(fd, "label") else fd.is_repeated
        value = getattr(msg, fd.name)
        if repeated:
            if len(value):
                result[fd.name] = [_convert(fd, v) for v in value]
        elif fd.message_type is not None:
            if msg.HasField(fd.name):
                result[fd.name] = message_to_dict(value)
        elif msg.HasField(fd.name) or fd.has_default_value:
            result[fd.name] = _convert(fd, value)
    return result


def _convert(fd, value):
    if fd.enum_type is not None:
        return fd.enum_type.values_by_number[value].name
    if fd.message_type is not None:
        return message_to_dict(value)
    return value


class LayerContext(ConversionContext):
    strict_shapes = True  # Caffe's shapes are always known: a broken shape rule is final

    def __init__(self, graph, layer, inputs, outputs, random_weights: bool, source: str):
        # inputs: IR value names of the bottoms; outputs: the IR value names the tops must get
        super().__init__(graph, layer.name, layer.type,
                         f"Caffe layer '{layer.name}' (type {layer.type})", {}, inputs, outputs)
        self.layer = layer
        self.random_weights = random_weights
        self.source = source
        self.random_used = False
        self.generated = {}  # blob index -> random array drawn for it (random_weights)

    # ---- reading the layer ----------------------------------------------
    def param(self, field: str) -> AttrReader:
        """AttrReader over `layer.<field>` (e.g. "convolution_param")."""
        msg = getattr(self.layer.param, field)
        return AttrReader(message_to_dict(msg), self.where)

    def explicit(self, field: str, name: str) -> bool:
        """Whether `layer.<field>.<name>` is written in the file (not just defaulted)."""
        msg = getattr(self.layer.param, field)
        fd = msg.DESCRIPTOR.fields_by_name.get(name)
        if fd is None:
            return False
        return len(getattr(msg, name)) > 0 if fd.is_repeated else msg.HasField(name)

    def has_param(self, field: str) -> bool:
        return self.layer.param.HasField(field)

    def check_arity(self, bottoms, tops=1) -> None:
        def ok(n, want):
            return n in want if isinstance(want, (tuple, list, range)) else n == want

        if not ok(len(self.inputs), bottoms):
            raise self.error(f"takes {bottoms} bottom(s), got {len(self.inputs)}")
        if not ok(len(self.outputs), tops):
            raise self.error(f"has {tops} top(s), got {len(self.outputs)}")

    def num_blobs(self) -> int:
        return len(self.layer.blobs)

    def blob(self, i: int, shape, what: str = "weights", positive: bool = False) -> np.ndarray:
        """Blob i as float32 reshaped to `shape` (element counts must agree).

        Missing blobs are an error, or seeded random values with random_weights
        (positive=True draws from [0.5, 1.5], e.g. for variances)."""
        shape = tuple(int(d) for d in shape)
        blobs = self.layer.blobs
        if i < len(blobs):
            data = blobs[i]
            if data.size != int(np.prod(shape)):
                raise self.error(
                    f"blob {i} ({what}) has shape {tuple(data.shape)} ({data.size} values), "
                    f"expected {shape} from the layer parameters and input shape")
            return data.reshape(shape).astype(np.float32, copy=False)
        if not self.random_weights:
            if not blobs and not self.layer.weights_from:
                raise ConversionError(
                    f"{self.source}: no weights for {self.where}: "
                    + ("no caffemodel was given; pass the .caffemodel, or random_weights=True "
                       "(--random-weights) for seeded random weights"
                       if self.caffemodel_missing else
                       "the caffemodel has no layer of this name"))
            raise self.error(f"blob {i} ({what}) is missing: the layer has {len(blobs)} blob(s)")
        try:  # sizes first: never draw more than the runtime could hold
            check_tensor(shape, "float32", f"blob {i} ({what})")
        except MobconvError as exc:
            raise self.error(str(exc)) from None
        self.random_used = True
        rng = np.random.default_rng(zlib.crc32(f"{self.layer.name}/{i}".encode()))
        if positive:
            data = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
            data = rng.standard_normal(shape, dtype=np.float32)
            data *= np.float32(1 / np.sqrt(max(fan_in, 1)))
        self.generated[i] = data
        return data

    caffemodel_missing = False

    # ---- building the graph ---------------------------------------------
    def shape(self, name) -> tuple:
        """Shape of the IR value `name` (an error naming the layer if unknown); an int
        is an input index, as in ConversionContext (None if unknown)."""
        if not isinstance(name, str):
            return super().shape(name)
        value = self.graph.values[name]
        if value.shape is None:
            raise self.error(f"shape of {name!r} is unknown")
        return tuple(value.shape)

    def rank(self, name) -> int:
        if not isinstance(name, str):
            return super().rank(name)
        return len(self.shape(name))

    def norm_axis(self, axis: int, rank: int, name: str = "axis") -> int:
        if not -rank <= axis < rank:
            raise self.error(f"{name} ({axis}) must be in [{-rank}, {rank - 1}] for a {rank}-D input")
        return axis % rank

    def temp(self, suffix: str) -> str:
        return self.tmp(suffix)

    def const(self, data, suffix: str = "const", dtype=None) -> str:
        return super().const(np.asarray(data, dtype=dtype) if dtype is not None else data, suffix)

    def ints(self, values, suffix: str = "shape") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), suffix)

    def node(self, op: str, inputs, outputs=None, attrs: Optional[dict] = None, suffix: str = ""):
        """Add one IR node (`emit`: shapes inferred right away). Returns its first output
        name, or the list of outputs when several are given."""
        if outputs is None:
            outputs = [self.temp(suffix or op.lower())]
        elif isinstance(outputs, str):
            outputs = [outputs]
        self.emit(op, list(inputs), list(outputs), attrs or {})
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def _node_name(self, op: str, outputs) -> str:
        """The node writing one of the layer's tops is named after the layer, others
        "<layer>/<op>" (made unique)."""
        return self.graph.unique_name(f"{self.layer.name}/{op}" if outputs[0] not in self.outputs
                                      else self.layer.name)

    def alias(self, i: int, value: str) -> None:
        """Make top i an alias of an existing value (no node emitted)."""
        self.outputs[i] = value
