"""Reading a TensorFlow source into a GraphDef (the committed `proto/` messages).

- binary GraphDef (.pb) and text GraphDef (.pbtxt, or a .pb that is text):
  parsed with protobuf alone, no TensorFlow;
- SavedModel directory (saved_model.pb + variables/): its signatures are read
  with protobuf alone (so a wrong or missing --signature is reported without
  TensorFlow), then the chosen signature is frozen with TensorFlow
  (tf.saved_model.load, convert_variables_to_constants_v2), imported lazily;
  without TensorFlow, by `savedmodel.py` (TF2 SavedModels: the checkpoint read
  and the signature's functions inlined), which says what to install when the
  SavedModel is beyond it.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Optional

from google.protobuf import message as _message
from google.protobuf import text_format

from ...errors import ConversionError, MobconvError, ModelFormatError, UsageError
from ..base import explain_unparsable
from .proto import graph_pb2, saved_model_pb2

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
INSTALL_TF = "pip install tensorflow-cpu"
DEFAULT_SIGNATURE = "serving_default"


@dataclass
class Source:
    graph_def: object  # graph_pb2.GraphDef
    kind: str  # "GraphDef", "text GraphDef" or "SavedModel"
    files: list  # the files it was read from (for the sha256)
    saved_model: bool = False
    signature: str = ""
    outputs: list = field(default_factory=list)  # SavedModel: the signature's output tensors
    input_rename: dict = field(default_factory=dict)  # IR name -> signature input key
    output_rename: dict = field(default_factory=dict)  # IR name -> signature output key
    tf_version: str = ""


def read_source(path: str, signature: Optional[str] = None) -> Source:
    if not os.path.exists(path):
        raise MobconvError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return read_saved_model(path, signature)
    if os.path.basename(path) in SAVED_MODEL_FILES:
        return read_saved_model(os.path.dirname(os.path.abspath(path)), signature, given=path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read TensorFlow graph ({exc.strerror})") from None
    if not data:
        raise ModelFormatError(f"{path}: empty file (0 bytes); was it fully written?")
    _check_is_a_model(path, data, parsed=True)  # a Git LFS pointer, text-mangled bytes
    text = os.path.splitext(path)[1].lower() == ".pbtxt"
    if text or _looks_like_text(data):
        graph_def = _parse_text(path, data, required=text)
        if graph_def is not None:
            return Source(graph_def, "text GraphDef", [path])
    graph_def = graph_pb2.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (_message.DecodeError, RuntimeError, ValueError) as exc:
        _check_not_saved_model(path, data)
        _check_is_a_model(path, data)
        raise ModelFormatError(f"{path}: not a TensorFlow GraphDef (protobuf: {_one_line(exc)})") from None
    _check_graph_def(path, graph_def, data)
    return Source(graph_def, "GraphDef", [path])


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return head.lstrip().startswith((b"node", b"versions", b"library", b"#"))


def _parse_text(path, data: bytes, required: bool):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if not required:
            return None
        raise ModelFormatError(f"{path}: a .pbtxt must be UTF-8 text (a binary GraphDef is "
                               "named .pb)") from None
    graph_def = graph_pb2.GraphDef()
    try:
        text_format.Parse(text, graph_def, allow_unknown_field=False)
    except text_format.ParseError as exc:
        if not required:
            return None
        raise ModelFormatError(f"{path}: not a text GraphDef ({_one_line(exc)})") from None
    _check_graph_def(path, graph_def, None)
    return graph_def


def _check_graph_def(path, graph_def, data) -> None:
    if len(graph_def.node) == 0:
        if data is not None:
            _check_not_saved_model(path, data)
            _check_is_a_model(path, data)
        raise ModelFormatError(f"{path}: not a TensorFlow GraphDef (no nodes)")
    for i, node in enumerate(graph_def.node):
        if not node.op:
            raise ModelFormatError(f"{path}: node {i} ({node.name!r}) has no op type "
                                   "(is this a GraphDef?)")


def _check_is_a_model(path, data: bytes, parsed: bool = False) -> None:
    reason = explain_unparsable(path, data, "TensorFlow GraphDef", parsed=parsed)
    if reason:
        raise ModelFormatError(reason)


def _check_not_saved_model(path, data: bytes) -> None:
    if _is_saved_model_proto(data):
        raise UsageError(f"{path}: is a SavedModel's saved_model.pb, not a frozen GraphDef; "
                         "give the SavedModel directory")


def _is_saved_model_proto(data: bytes) -> bool:
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(data)
    except (_message.DecodeError, RuntimeError, ValueError):  # not a SavedModel either
        return False
    return any(len(m.graph_def.node) for m in sm.meta_graphs)


# ---- SavedModel --------------------------------------------------------------------


def read_saved_model(directory: str, signature: Optional[str], given: Optional[str] = None) -> Source:
    meta, pb_path = _read_meta_graph(directory)
    signatures = {k: v for k, v in meta.signature_def.items() if not k.startswith("__")}
    key = _choose_signature(directory, signatures, signature)
    files = _files(directory)
    try:
        tf = _import_tensorflow()
    except ImportError:
        # no TensorFlow: read the variables and inline the signature's functions ourselves
        from .savedmodel import freeze_without_tensorflow

        frozen = freeze_without_tensorflow(directory, meta, key)
        return Source(frozen[0], "SavedModel", files, True, key, frozen[2], frozen[1], frozen[3])
    graph_def, input_rename, outputs, output_rename = _freeze(tf, directory, meta, key)
    return Source(graph_def, "SavedModel", files, True, key, outputs, input_rename,
                  output_rename, tf.__version__)


def _read_meta_graph(directory: str):
    pb = os.path.join(directory, "saved_model.pb")
    pbtxt = os.path.join(directory, "saved_model.pbtxt")
    sm = saved_model_pb2.SavedModel()
    if os.path.isfile(pb):
        path = pb
        try:
            with open(pb, "rb") as f:
                sm.ParseFromString(f.read())
        except OSError as exc:
            raise ModelFormatError(f"{pb}: cannot read ({exc.strerror})") from None
        except (_message.DecodeError, RuntimeError, ValueError) as exc:
            raise ModelFormatError(f"{pb}: not a SavedModel ({_one_line(exc)})") from None
    elif os.path.isfile(pbtxt):
        path = pbtxt
        try:
            with open(pbtxt, encoding="utf-8") as f:
                text_format.Parse(f.read(), sm, allow_unknown_extension=True)
        except (OSError, UnicodeDecodeError, text_format.ParseError) as exc:
            raise ModelFormatError(f"{pbtxt}: not a text SavedModel ({_one_line(exc)})") from None
    else:
        raise UsageError(f"{directory}: is a directory without saved_model.pb, so not a "
                         "TensorFlow SavedModel")
    if not sm.meta_graphs:
        raise ModelFormatError(f"{path}: the SavedModel holds no MetaGraph")
    for meta in sm.meta_graphs:  # the serving graph when there are several
        if "serve" in meta.meta_info_def.tags:
            return meta, path
    return sm.meta_graphs[0], path


def _choose_signature(directory, signatures: dict, wanted: Optional[str]) -> str:
    names = sorted(signatures)
    if not names:
        raise ConversionError(f"{directory}: the SavedModel has no signature to convert (save it "
                              "with tf.saved_model.save(obj, path, signatures=...))")
    if wanted is not None:
        if wanted not in signatures:
            raise UsageError(f"{directory}: no signature {wanted!r} (signatures: {', '.join(names)})")
        return wanted
    if len(names) == 1:
        return names[0]
    if DEFAULT_SIGNATURE in signatures:  # Keras' export() also writes "serve", the same function
        return DEFAULT_SIGNATURE
    raise UsageError(f"{directory}: the SavedModel has {len(names)} signatures: {', '.join(names)} "
                     f"and no {DEFAULT_SIGNATURE}; choose one with --signature NAME (signature=NAME)")


def _files(directory: str) -> list:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files)]
    return found


def _import_tensorflow():
    # quiet import: TensorFlow's C++ logs (and the oneDNN notice, which only the oneDNN switch
    # silences: freezing computes nothing) would break the CLI's one-line output; a value
    # the user set is kept
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf  # noqa: PLC0415 - heavy, only for SavedModel

    return tf


def _freeze(tf, directory, meta, key):
    """Freeze signature `key` with TensorFlow; (GraphDef, placeholder -> input key,
    output tensors, IR output name -> output key)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from .context import ir_name

    tags = list(meta.meta_info_def.tags) or None
    try:
        loaded = tf.saved_model.load(directory, tags=tags)
        func = loaded.signatures[key]
        frozen = convert_variables_to_constants_v2(func)
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many kinds
        raise ConversionError(f"{directory}: TensorFlow cannot load and freeze signature {key!r} "
                              f"({type(exc).__name__}: {_one_line(exc)})") from None
    graph_def = graph_pb2.GraphDef()
    graph_def.ParseFromString(frozen.graph.as_graph_def().SerializeToString())
    _, kwargs = func.structured_input_signature
    in_keys = sorted(kwargs)  # tf.nest order of a dict: sorted keys
    placeholders = [t for t in frozen.inputs if t.dtype != tf.resource]
    if len(placeholders) != len(in_keys):
        raise ConversionError(f"{directory}: signature {key!r} has inputs {', '.join(in_keys)} but "
                              f"the frozen function takes {len(placeholders)} tensors")
    input_rename = {ir_name(t.name): k for t, k in zip(placeholders, in_keys)}
    out_struct = func.structured_outputs
    if isinstance(out_struct, dict):
        out_keys = sorted(out_struct)
    else:
        out_keys = [f"output_{i}" for i in range(len(frozen.outputs))]
    if len(out_keys) != len(frozen.outputs):
        raise ConversionError(f"{directory}: signature {key!r} names {len(out_keys)} outputs but the "
                              f"frozen function returns {len(frozen.outputs)}")
    outputs, output_rename = [], {}
    for t, k in zip(frozen.outputs, out_keys):
        node, _, index = t.name.rpartition(":")
        outputs.append(f"{node}:{index}")
        output_rename[ir_name(t.name)] = k
    return graph_def, input_rename, outputs, output_rename
