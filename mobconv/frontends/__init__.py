"""The source frameworks: the frontend table and how a source path is recognised.

Each row of `FRONTENDS` says which file extensions a framework claims and how
to load it ("module:function", imported only when used), so a frontend plugs in
by adding a row (`mobconv.api` re-exports the table). A loader is called as
``fn(path, input_shapes=..., **options)`` and returns an IR Graph.

`detect_framework(path)` picks the row for a path:

- a directory holding `saved_model.pb` (or `.pbtxt`) is a TensorFlow SavedModel;
- `.pb` is a TensorFlow GraphDef, unless its bytes are an ONNX ModelProto with
  a graph (ONNX files are sometimes named `.pb`): then ONNX;
- `.pbtxt` is a text GraphDef (TensorFlow), `.prototxt` a Caffe deploy file,
  `.onnx` an ONNX model.

The frontends share `base.ConversionContext` (what a node converter sees),
`common.ConverterRegistry`/`AttrReader`, and the signature/metadata helpers in
`base.py`.
"""
from __future__ import annotations

import importlib
import mmap
import os
from dataclasses import dataclass
from typing import Optional

from ..errors import MobconvError, UsageError

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


@dataclass(frozen=True)
class Frontend:
    """One source framework: the file extensions it claims and its loader.

    `loader` is "module:function" (imported only when used) or a callable; it is
    called as ``fn(path, input_shapes=..., **options)`` and returns an IR Graph.
    `directories`: whether a directory can be a source (a TensorFlow SavedModel).
    """

    name: str
    extensions: tuple
    loader: object
    directories: bool = False

    def load(self, path: str, input_shapes: Optional[dict], **options):
        func = self.loader
        if isinstance(func, str):
            module_name, func_name = func.split(":")
            try:
                func = getattr(importlib.import_module(module_name), func_name)
            except (ImportError, AttributeError) as exc:
                raise MobconvError(
                    f"the {self.name} frontend is not available in this build ({exc})"
                ) from exc
        return func(path, input_shapes=input_shapes, **options)


FRONTENDS = {
    "onnx": Frontend("onnx", (".onnx",), "mobconv.frontends.onnx:load_onnx"),
    "caffe": Frontend("caffe", (".prototxt",), "mobconv.frontends.caffe:load_caffe"),
    "tensorflow": Frontend("tensorflow", (".pb", ".pbtxt"),
                           "mobconv.frontends.tensorflow:load_tensorflow", directories=True),
}


def is_saved_model(path) -> bool:
    """Whether `path` is a directory holding a TensorFlow SavedModel (saved_model.pb, or
    its text form saved_model.pbtxt)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, name))
                                       for name in SAVED_MODEL_FILES)


def detect_framework(path) -> str:
    """Framework name (a FRONTENDS key) for a source model path (see the module docstring)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if is_saved_model(path):
            return "tensorflow"
        raise UsageError(f"{path}: is a directory without {SAVED_MODEL_FILES[0]}, so not a TensorFlow "
                         "SavedModel; give a model file (.onnx, .prototxt, .pb, .pbtxt) or a "
                         "SavedModel directory")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".pb" and is_onnx_model(path):
        return "onnx"
    for name, frontend in FRONTENDS.items():
        if ext in frontend.extensions:
            return name
    known = ", ".join(f"{e} ({n})" for n, f in FRONTENDS.items() for e in f.extensions)
    if ext == ".mob":
        raise UsageError(f"{path}: is already a .mob model; use mobconv.load() to open it")
    raise UsageError(
        f"{path}: cannot tell the source framework from the extension {ext or '(none)'!r} "
        f"(known: {known}, or a SavedModel directory); pass framework=..."
    )


def is_graph_def(path) -> bool:
    """Whether the file parses as a TensorFlow GraphDef with at least one node that has an
    op type (a full parse: for error messages, not for detection)."""
    from google.protobuf.message import DecodeError

    from .tensorflow.proto import graph_pb2

    try:
        with open(path, "rb") as f:
            graph_def = graph_pb2.GraphDef.FromString(f.read())
    except (OSError, DecodeError):
        return False
    return len(graph_def.node) > 0 and all(n.op for n in graph_def.node)


# The ONNX ModelProto's graph field (onnx.proto) and protobuf wire types.
_ONNX_GRAPH_FIELD = 7
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def is_onnx_model(path) -> bool:
    """Whether the file's bytes are an ONNX ModelProto with a graph.

    Reads only the top-level protobuf fields (length-delimited payloads are
    skipped, not parsed), so a large TensorFlow GraphDef costs a few page reads.
    As protobuf's parser does, a field of another wire type than the message
    declares counts as an unknown field; the fields must be well formed and a
    graph (field 7, a message) present. A TensorFlow GraphDef has no field 7.
    A model whose graph itself is corrupt still counts as ONNX, so the ONNX
    loader reports it (as a broken ONNX file, not as a TensorFlow graph).
    """
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _scan_onnx_fields(data)
    except (OSError, ValueError):
        return False


def _scan_onnx_fields(data) -> bool:
    pos, end, graph = 0, len(data), False
    while pos < end:
        key, pos = _varint(data, pos, end)
        if key is None or key >> 3 == 0:
            return False
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, pos = _varint(data, pos, end)
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
        elif wire == _LEN:
            length, pos = _varint(data, pos, end)
            if length is not None:
                graph = graph or field == _ONNX_GRAPH_FIELD
                pos += length
        else:
            return False  # groups: never in an ONNX model
        if pos is None or pos > end:
            return False
    return graph


def _varint(data, pos: int, end: int):
    """(value, next position) of the varint at `pos`, or (None, None) if malformed."""
    value = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, None
