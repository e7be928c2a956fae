"""What the compression passes share: weight-layer discovery, option checks, results.

    from ._compress_common import (PRUNABLE_OPS, weight_layers, load_model, result_model,
                                   check_fraction, check_layer_names, record)

    model = load_model(model, "prune")             # Model or path; ArgumentError otherwise
    layers = weight_layers(model.graph)            # [WeightLayer], graph order
    sparsity = check_fraction(sparsity, "sparsity", "prune")         # in [0, 1)
    check_layer_names(model, ["conv3"], "exclude", "prune", layers)  # known + prunable
    graph = model.graph.copy(); ...; record(graph, "prune", "global 0.5, 12 layers")
    return result_model(model, graph)               # new Model; the input is untouched

A "layer" is a node (by its name, as `mobconv info` shows it) of one of `ops`
(default PRUNABLE_OPS: Conv, ConvTranspose, Gemm, MatMul) that reads a constant
weight: directly (input 1; for Gemm/MatMul input 0 when input 1 is not constant), or
through a DequantizeLinear of a constant (the "int8-weights" and "dynamic" schemes),
or, with `casts=True`, through a Cast of a float16 constant (the "fp16" scheme).
`WeightLayer.weight` is the constant actually stored in the file (the int8 tensor
behind a DequantizeLinear), so setting `Value.storage` on it is what the writer sees.
A constant read by several layers is listed once, under its first reader (`readers`
names them all). Weights must be float or int8/uint8; anything else is not a layer.

Every check raises ArgumentError (one line: `func(): file: option ... rule`) and is
meant to run before any work.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mobconv.api import Model
from mobconv.errors import ArgumentError

PRUNABLE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
WEIGHT_DTYPES = ("float32", "float16", "int8", "uint8")  # bfloat16 data is not numpy floats
METADATA_PREFIX = "compression."


@dataclass
class WeightLayer:
    name: str                 # the node's name
    op: str                   # the node's op
    weight: str               # the stored constant's value name
    input_index: int          # which input of the node reads it (directly or dequantized)
    shape: tuple              # the weight's shape
    dtype: str                # the stored dtype ("float32", "int8", ...)
    dequantize: Optional[str] = None  # the DequantizeLinear node in between, if any
    depthwise: bool = False   # a grouped conv with one input channel per group
    first: bool = False       # no other weight layer upstream (the "first conv")
    readers: list = field(default_factory=list)  # every layer node reading this weight
    cast: Optional[str] = None  # the Cast node in between (fp16 storage), casts=True only

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def quantized(self) -> bool:
        return self.dtype in ("int8", "uint8")


def _stored_constant(graph, name, producers, casts: bool):
    """(constant value, DequantizeLinear or Cast node or None) behind value `name`, or
    (None, None). A Cast counts only with `casts` and only from a float constant."""
    value = graph.values.get(name) if name else None
    if value is None:
        return None, None
    if value.data is not None:
        return value, None
    node = producers.get(name)
    if node is not None and node.op in ("DequantizeLinear", "Cast") and node.inputs:
        inner = graph.values.get(node.inputs[0])
        if inner is None or inner.data is None:
            return None, None
        if node.op == "DequantizeLinear" or (casts and inner.dtype in ("float16", "float32")):
            return inner, node
    return None, None


def _is_depthwise(node, shape) -> bool:
    group = int(node.attrs.get("group", 1) or 1)
    return node.op in ("Conv", "ConvTranspose") and group > 1 and len(shape) >= 2 and shape[1] == 1


def weight_layers(graph, ops=PRUNABLE_OPS, casts: bool = False) -> list:
    """The nodes of `ops` that read a constant weight, in graph order (see module doc).
    casts=True: also a weight stored as float16 behind a Cast (the "fp16" scheme); only
    for passes that change values, not shapes (the Cast's output shape is recorded)."""
    producers = graph.producers()
    by_weight: dict = {}
    layers = []
    downstream: set = set()  # values computed from some weight layer's output
    for node in graph.nodes:
        layer = None
        if node.op in ops:
            candidates = [1, 0] if node.op in ("Gemm", "MatMul") else [1]
            for index in candidates:
                if index >= len(node.inputs):
                    continue
                value, dq = _stored_constant(graph, node.inputs[index], producers, casts)
                if value is None or value.dtype not in WEIGHT_DTYPES or value.data.size == 0:
                    continue
                if value.name in by_weight:
                    by_weight[value.name].readers.append(node.name)
                    break
                shape = tuple(int(d) for d in value.data.shape)
                data_inputs = [i for k, i in enumerate(node.inputs) if i and k != index]
                is_dq = dq is not None and dq.op == "DequantizeLinear"
                layer = WeightLayer(node.name, node.op, value.name, index, shape, value.dtype,
                                    dq.name if is_dq else None, _is_depthwise(node, shape),
                                    not any(i in downstream for i in data_inputs), [node.name],
                                    dq.name if dq is not None and not is_dq else None)
                by_weight[value.name] = layer
                layers.append(layer)
                break
        if layer is not None or any(i in downstream for i in node.inputs if i):
            downstream.update(o for o in node.outputs if o)
    return layers


def zero_points(graph, layer: WeightLayer) -> Optional[np.ndarray]:
    """The weight's zero point(s) (int64 array) for an int8/uint8 weight, else None."""
    if not layer.quantized:
        return None
    value = graph.values[layer.weight]
    if value.quant is not None:
        return np.asarray(value.quant.zero_points, dtype=np.int64).ravel()
    if layer.dequantize is not None:
        node = next(n for n in graph.nodes if n.name == layer.dequantize)
        zp = graph.values.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if zp is not None and zp.data is not None:
            return np.asarray(zp.data, dtype=np.int64).ravel()
    return np.zeros(1, dtype=np.int64)  # no zero point given: 0 (ONNX's default)


def real_magnitude(graph, layer: WeightLayer) -> np.ndarray:
    """|real weight| as float64, same shape as the stored weight (int8: |q - zp| * scale,
    per axis when the quantization is per axis)."""
    value = graph.values[layer.weight]
    data = np.asarray(value.data)
    if not layer.quantized:
        return np.abs(data.astype(np.float64))
    quant, axis = value.quant, None
    zps = zero_points(graph, layer).astype(np.float64)
    scales = np.ones(1)
    if quant is not None:
        scales, axis = np.asarray(quant.scales, dtype=np.float64), quant.axis
    elif layer.dequantize is not None:  # parameters on the DequantizeLinear (imported QDQ)
        node = next(n for n in graph.nodes if n.name == layer.dequantize)
        scale = graph.values.get(node.inputs[1]) if len(node.inputs) > 1 else None
        if scale is not None and scale.data is not None:
            scales, axis = np.asarray(scale.data, np.float64).ravel(), int(node.attrs.get("axis", 1))
    if scales.size > 1 and axis is not None:
        shape = [1] * data.ndim
        shape[axis] = -1
        scales = scales.reshape(shape)
        zps = zps.reshape(shape) if zps.size > 1 else zps[0]
    else:
        scales, zps = scales.ravel()[0], zps.ravel()[0]
    return np.abs(data.astype(np.float64) - zps) * scales


# ---- the model argument and the result ----------------------------------------------


def load_model(model, func: str) -> Model:
    """`model` as given, or loaded/converted from a path; ArgumentError naming `func`."""
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, bytes, os.PathLike)):
        from .api import as_model

        path = os.fsdecode(os.fspath(model))
        if path.lower().endswith((".prototxt", ".caffemodel")):
            raise ArgumentError(f"{func}(): {path}: a Caffe model is two files; convert it "
                                "first: model = mobconv.convert('deploy.prototxt', "
                                f"caffemodel='weights.caffemodel'), then {func}(model, ...)")
        return as_model(path)
    raise ArgumentError(f"{func}(): model must be a mobconv.Model or the path of a model file, "
                        f"got a {type(model).__name__}")


def label(model) -> str:
    return getattr(model, "source", None) or "the model"


def result_model(model: Model, graph) -> Model:
    """A new Model of `graph` (a modified copy of model.graph): no stale test vectors, and
    not the input file as its source (the runtime backend runs a .mob source from its file)."""
    graph.test_vectors = []
    result = Model(graph, source=None)
    result.compressed_source = model.source
    return result


class LayerRecord:
    """Mixin of the per-layer result dataclasses (ClusterLayer, LowRankLayer), which have
    `shape` and `sqnr_db` fields: their JSON form (shape a list, sqnr_db rounded, None
    when the weight is unchanged)."""

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["shape"] = list(self.shape)
        d["sqnr_db"] = None if math.isinf(self.sqnr_db) else round(self.sqnr_db, 2)
        return d


def weight_sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """SQNR of `got` against `ref` in dB (inf when they are equal)."""
    noise = float(np.sum((ref - got) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(float(np.sum(ref ** 2)), 1e-300) / noise)


def record(graph, what: str, text: str) -> None:
    """metadata.extra["compression.<what>"] = text (a short string)."""
    graph.metadata.extra = dict(graph.metadata.extra)
    graph.metadata.extra[METADATA_PREFIX + what] = str(text)


# ---- option checks ------------------------------------------------------------------


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def check_fraction(value, option: str, func: str, *, allow_one: bool = False) -> float:
    """A float in [0, 1) (or [0, 1] with allow_one); ArgumentError otherwise."""
    high = "1]" if allow_one else "1)"
    if not _is_real(value) or not math.isfinite(float(value)) or not (
            0.0 <= float(value) <= 1.0) or (float(value) == 1.0 and not allow_one):
        raise ArgumentError(f"{func}(): {option} must be a number in [0, {high}, got {value!r}")
    return float(value)


def check_int(value, option: str, func: str, low: int, high: Optional[int] = None) -> int:
    """An int in [low, high]; ArgumentError otherwise."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or value < low or (high is not None and value > high):
        where = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ArgumentError(f"{func}(): {option} must be an integer {where}, got {value!r}")
    return int(value)


def check_progress(progress, func: str):
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ArgumentError(f"{func}(): progress must be None, True or False, got {progress!r}")
    return progress


def check_names(names, option: str, func: str) -> list:
    """A list of node names from a str or an iterable of str (a lone str is one name)."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise ArgumentError(f"{func}(): {option} must be node names (a list of str), "
                            f"got a {type(names).__name__}") from None
    for name in names:
        if not isinstance(name, str):
            raise ArgumentError(f"{func}(): {option} must be node names (str), got {name!r}")
    return names


def check_layer_names(model: Model, names, option: str, func: str, layers,
                      ops=PRUNABLE_OPS) -> list:
    """`names` (see check_names) all name layers in `layers`: else ArgumentError naming the
    first bad one and the rule (unknown node; or not a layer of `ops` with a constant weight)."""
    names = check_names(names, option, func)
    known = {layer.name for layer in layers}
    shared = {r: layer.name for layer in layers for r in layer.readers if r != layer.name}
    nodes = {node.name: node for node in model.graph.nodes}
    what = "/".join(ops)
    for name in names:
        if name in known:
            continue
        if name in shared:
            raise ArgumentError(f"{func}(): {label(model)}: {option} names {name!r}, which shares "
                                f"its weight with layer {shared[name]!r}; name that layer instead")
        if name not in nodes:
            raise ArgumentError(f"{func}(): {label(model)}: {option} names {name!r}, which is not a "
                                f"node of the model (`mobconv info` lists the node names)")
        raise ArgumentError(f"{func}(): {label(model)}: {option} names {name!r} "
                            f"({nodes[name].op}), which is not a {what} node with a constant "
                            f"weight")
    return names


def progress_bar(progress, total: int, text: str):
    from .progress import Progress

    return Progress(total=total, label=text, enabled=progress)


__all__ = ["PRUNABLE_OPS", "WeightLayer", "weight_layers", "zero_points", "real_magnitude",
           "load_model", "label", "result_model", "record", "check_fraction", "check_int",
           "check_progress", "check_names", "check_layer_names", "progress_bar"]
