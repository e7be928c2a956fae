"""TensorFlow's own execution of a TensorFlow source, every tensor named as in the IR.

Used by `mobconv compare model.mob frozen.pb` (and a SavedModel directory): the
layer-by-layer diff of a .mob against TensorFlow. TensorFlow is imported only
here, and only when called (a one-line error says to install it).

Steps:
1. Read the source as the converter did (`reader.read_source`: the same GraphDef,
   for a SavedModel the same frozen signature), import it into a tf.Graph.
2. Feed the .mob's inputs to the tensors of the same names: a Placeholder, or the
   tensor a graph cut (--inputs) made an input; a SavedModel signature key is fed
   to the placeholder it names.
3. Fetch, in one session run, every TensorFlow tensor that a value of the .mob
   stands for: the value named after the tensor ("node" for "node:0", "node:k"),
   and a value "<tensor>_nchw" that the transpose pass made of it (the same
   tensor moved to channels-first, also "<tensor>/nchw" (a converter's result
   before its Transpose back): TensorFlow's is transposed to compare). Values
   with no TensorFlow counterpart (temporaries of a converter, fused or folded
   ones) are left out, as are tensors TensorFlow cannot hand back (resources,
   strings, the dead branch of a Switch). An int8 value of a quantization-aware
   graph's .mob stands for the FakeQuant output after its tensor; it is compared
   dequantized, within one quantization step (`as_float`).
"""
from __future__ import annotations

import os
import re
from typing import Optional

import numpy as np

from ...errors import MobconvError, UsageError
from .reader import read_source

# A value holding TensorFlow tensor <base> moved to channels-first: "<base>_nchw" (the
# transpose pass), "<base>/nchw" (a converter's NCHW result before its Transpose back),
# either with a "_<k>" that made the name unique.
_NCHW_NAME = re.compile(r"^(?P<base>.+?)(?:_nchw|/nchw)(?:_\d+)?$")
_FETCHABLE_KINDS = "biufc"


def import_tensorflow():
    """TensorFlow, imported with its C++ start-up log lines (absl's "All log messages
    before absl::InitializeLog()", oneDNN's notice; TF_CPP_MIN_LOG_LEVEL does not stop
    them) kept off the user's stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
    except ImportError:
        tf = None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    if tf is None:
        raise MobconvError("comparing with a TensorFlow model needs TensorFlow: "
                           "pip install tensorflow-cpu")
    return tf


def _tensor(name: str) -> str:
    """IR value name -> TensorFlow tensor name ("x" -> "x:0", "x:2" stays)."""
    node, sep, index = name.rpartition(":")
    return name if sep and index.isdigit() else f"{name}:0"


def channels_first(array: np.ndarray) -> np.ndarray:
    """NHWC (any rank >= 3) -> NCHW: the layout a `_nchw` value holds."""
    rank = array.ndim
    return np.transpose(array, (0, rank - 1, *range(1, rank - 1)))


def is_quantized_graph(source: str, signature: Optional[str] = None) -> bool:
    """Whether the TensorFlow model is itself quantization-aware (FakeQuant ops)."""
    try:
        src = read_source(source, signature)
    except MobconvError:
        return False  # tensorflow_values reports an unreadable source
    return any(n.op.startswith("FakeQuant") for n in src.graph_def.node)


def tensorflow_values(source: str, feeds: dict, names, signature: Optional[str] = None,
                      quantized=()) -> tuple:
    """Run `source` in TensorFlow on `feeds` (.mob input name -> array) and return
    ({.mob value name: TensorFlow's array}, note) for every name in `names` that has
    a TensorFlow counterpart. A name in `quantized` (an int8 value of the .mob) stands
    for the output of the FakeQuant that reads its tensor, when there is one (the QDQ
    lowering names an int8 op's output after the float op before the FakeQuant)."""
    tf = import_tensorflow()
    src = read_source(source, signature)
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(src.graph_def.SerializeToString())
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many kinds
        raise MobconvError(f"{source}: TensorFlow cannot import the graph: {_one_line(exc)}") from None

    renamed_in = {key: ir for ir, key in src.input_rename.items()}
    renamed_out = {key: ir for ir, key in src.output_rename.items()}
    tf_feeds = {}
    for name, array in feeds.items():
        tensor = _tensor(renamed_in.get(name, name))
        try:
            t = graph.get_tensor_by_name(tensor)
        except (KeyError, ValueError):
            raise UsageError(f"{source}: the .mob input {name!r} is no tensor of this TensorFlow "
                             "graph; compare a .mob with the TensorFlow model it was converted "
                             "from") from None
        tf_feeds[t] = np.asarray(array).astype(t.dtype.as_numpy_dtype)

    fake_quant = {op.inputs[0].name: op.outputs[0] for op in graph.get_operations()
                  if op.type.startswith("FakeQuant") and op.inputs}
    quantized = set(quantized)
    wanted = {}  # .mob name -> (tensor, transpose to channels first?)
    for name in names:
        if not name:
            continue
        base = renamed_out.get(name, renamed_in.get(name, name))
        layout = False
        moved = _NCHW_NAME.match(name)
        if _tensor_of(graph, base) is None and moved:
            base, layout = moved.group("base"), True
        t = _tensor_of(graph, base)
        if t is not None and name in quantized:
            t = fake_quant.get(t.name, t)
        if t is not None and t.dtype.as_numpy_dtype is not None \
                and np.dtype(t.dtype.as_numpy_dtype).kind in _FETCHABLE_KINDS:
            wanted[name] = (t, layout)

    note = ""
    with tf.compat.v1.Session(graph=graph) as sess:
        fetches = sorted({t.name: t for t, _ in wanted.values()}.values(), key=lambda t: t.name)
        try:
            results = dict(zip((t.name for t in fetches), sess.run(fetches, tf_feeds)))
        except Exception:  # noqa: BLE001 - e.g. a dead Switch branch: fetch one by one
            results, skipped = {}, 0
            for t in fetches:
                try:
                    results[t.name] = sess.run(t, tf_feeds)
                except Exception:  # noqa: BLE001
                    skipped += 1
            if skipped:
                note = f"TensorFlow could not compute {skipped} tensor(s) on these inputs; not compared"
    values = {}
    for name, (t, layout) in wanted.items():
        if t.name in results:
            array = np.asarray(results[t.name])
            if not layout:
                values[name] = array
            elif array.ndim >= 3:
                values[name] = channels_first(array)
    return values, note


def as_float(graph, node, name: str, array, atol: float) -> tuple:
    """(array, atol) for comparing .mob value `name` (output of `node`) with
    TensorFlow's float tensor. A quantized value (int8 integers, `Value.quant`) is
    dequantized, and it and a DequantizeLinear's output get `atol` widened by one
    quantization step: an int8 op of a quantization-aware graph holds the FakeQuant'ed
    value, which its integer requantization may round one step away from
    TensorFlow's float FakeQuant. Other values: unchanged."""
    array = np.asarray(array)
    value = graph.values.get(name)
    quant = getattr(value, "quant", None)
    if quant is None and node.op == "DequantizeLinear" and node.inputs[0] in graph.values:
        step = getattr(graph.values[node.inputs[0]], "quant", None)
        return array, atol + (float(np.max(step.scales)) if step is not None else 0.0)
    if quant is None or array.dtype.kind not in "iu":
        return array, atol
    scales = np.asarray(quant.scales, np.float64)
    zero_points = np.asarray(quant.zero_points or [0] * len(scales), np.float64)
    if quant.axis is not None and scales.size > 1:
        shape = [1] * array.ndim
        shape[quant.axis] = scales.size
        scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
    return (array.astype(np.float64) - zero_points) * scales, atol + float(np.max(scales))


def _tensor_of(graph, name: str):
    try:
        return graph.get_tensor_by_name(_tensor(name))
    except (KeyError, ValueError):
        return None


def _one_line(exc) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__

