"""What every frontend's node converter sees: `ConversionContext`.

A converter is a small function `convert(cx)` registered in its frontend's
`ConverterRegistry` (`common.py`). It reads the source node through `cx`
(typed attributes via `cx.attrs`, constant inputs via `cx.const_value`,
shapes via `cx.shape`/`cx.rank`/`cx.dtype`) and emits IR nodes with
`cx.emit`, `cx.const` and `cx.tmp`; `cx.error(rule)` makes the located
one-line error ("cannot convert TensorFlow node 'x' (type Conv2D): rule").

`emit` infers each node's output shapes right away, so the next converter
can ask for them, and evaluates shape-only arithmetic (Shape -> Gather ->
Concat -> Reshape chains) so that shapes stay known at conversion time; the
folding and the rewrites of symbolic shape values are the functions of
`mobconv/passes/fold_shapes.py`, the same for every frontend.

After converting, every loader fills the signature and metadata with
`fill_signature` and `fill_metadata` (`file_sha256` hashes the source files).
"""
from __future__ import annotations

import hashlib
import os
from typing import Optional

import numpy as np

from ..errors import ConversionError, MobconvError
from ..ir import infer
from ..limits import check_tensor
from ..passes import fold_shapes
from ..passes.fold_shapes import ir_dtype_code  # noqa: F401 - converters import it from here
from .common import AttrReader


class ConversionContext:
    """One source node being converted: read its inputs, emit IR nodes.

    Frontends subclass it (ONNX `NodeContext`, TensorFlow `TFNodeContext`, Caffe
    `LayerContext`) and fill `attrs` from their own attribute encoding.
    `inputs`/`outputs` are IR value names, already mapped from the source's naming.
    `symbolic`: the loader's `SymbolicShapes` tracker, for the rewrites of symbolic
    shape values (None: constant folding only).
    """

    # Report a broken shape rule when the node is emitted (all shapes are known at
    # conversion), instead of leaving it to the loader's final infer_shapes.
    strict_shapes = False

    def __init__(self, graph, name: str, op_type: str, where: str, attrs: dict,
                 inputs, outputs, symbolic=None):
        self.graph = graph
        self.symbolic = symbolic  # SymbolicShapes of the model (shape arithmetic on dims)
        self.name = name
        self.op_type = op_type
        self.where = where  # e.g. "ONNX node 'conv1' (type Conv)", used in every error
        self.attrs = AttrReader(attrs, where)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._emitted = 0

    # ---- errors and attribute checks ---------------------------------------
    def error(self, rule: str) -> ConversionError:
        return self.attrs.error(rule)

    def check_attrs(self, known) -> None:
        """Refuse attributes the converter does not read (they could change the result)."""
        unknown = sorted(set(self.attrs.attrs) - set(known))
        if unknown:
            raise self.error(
                f"unknown attribute(s) {', '.join(unknown)}{self._attr_scope()} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )

    def _attr_scope(self) -> str:
        return ""  # frontends with versioned op sets name the version (" for opset 13")

    # ---- inputs --------------------------------------------------------
    def input(self, i: int) -> str:
        return self.inputs[i] if -len(self.inputs) <= i < len(self.inputs) else ""

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

    def emit(self, op: str, inputs, outputs, attrs=None, fold: bool = True) -> None:
        """Add one IR node, its output shapes inferred right away; fold=False keeps a
        node of constant inputs (a weight's DequantizeLinear, for lower_qdq).

        Shape arithmetic is evaluated instead of emitted (`passes/fold_shapes.py`):
        a node of small constant inputs becomes constants, a consumer of a symbolic
        shape value a constant form, so `const_value`/`shape` work right after."""
        name = self._node_name(op, outputs)
        self._emitted += 1
        inputs, outputs = list(inputs), list(outputs)
        while inputs and not inputs[-1]:
            inputs.pop()
        while outputs and not outputs[-1]:
            outputs.pop()
        try:
            self._emit(op, inputs, outputs, attrs, fold, name)
        except MobconvError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must not pass silently, nor as a traceback
            raise self.error(f"internal error in the IR {op} node {name!r} "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from exc

    def _emit(self, op, inputs, outputs, attrs, fold, name) -> None:
        if fold and fold_shapes.fold_constant_node(self.graph, op, inputs, outputs, attrs, name):
            return
        dims = None
        if self.symbolic is not None:
            if fold_shapes.rewrite_symbolic(self, op, inputs, outputs, attrs):
                return
            folded, dims = fold_shapes.fold_symbolic_values(self.graph, self.symbolic, op,
                                                            inputs, outputs, attrs)
            if folded:
                return
        node = self.graph.add_node(op, inputs, outputs, attrs, name=name)
        if dims is not None:
            for out, arr in zip(outputs, dims):
                self.symbolic.dims[out] = arr
        self._infer(node)

    def _node_name(self, op: str, outputs) -> str:
        """The first node a converter emits is named after the source node; later ones
        "<name>/<op>" (made unique)."""
        return self.name if self._emitted == 0 else self.graph.unique_name(f"{self.name}/{op}")

    def _infer(self, node) -> None:
        """Infer the node's output shapes now.

        An IR rule error (MobconvError) is left for the loader's final
        `infer_shapes`, which names the node: an input shape may only be known
        then (computed at run time, or fixed by the shape tracker of the whole
        graph). With `strict_shapes` (a frontend whose shapes are all known at
        conversion, Caffe) it is reported now, naming the source node, and the
        outputs are checked against mobconv.limits. Any other exception is a bug
        in an op's shape function: `emit` reports it, naming the source node."""
        try:
            infer.infer_node(self.graph, node)
        except ConversionError:
            if self.strict_shapes:
                raise
            return
        except MobconvError as exc:
            if self.strict_shapes:
                raise self.error(str(exc)) from None
            return
        if self.strict_shapes:
            for out in node.outputs:
                value = self.graph.values.get(out) if out else None
                if value is None:
                    continue
                try:
                    check_tensor(value.shape, value.dtype, f"output {out!r} of {node.op}")
                except MobconvError as exc:
                    raise self.error(str(exc)) from None


# ---- what every loader fills in after converting: signature, metadata ----------


def file_sha256(*paths) -> str:
    """sha256 (hex) of the paths' bytes read in order as one stream; None entries are
    skipped and a directory (a SavedModel) stands for its files in sorted order."""
    digest = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        for name in _files_of(os.fspath(path)):
            with open(name, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _files_of(path: str) -> list:
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files)]
    return found


def format_input_shapes(shapes: dict) -> str:
    """{"x": (1, 3, "h", 8)} -> "x=1,3,h,8" (';' between inputs, in the dict's order):
    the `input_shapes` entry of the metadata options."""
    return ";".join(f"{k}={','.join(str(d) for d in v)}" for k, v in shapes.items())


def fill_metadata(graph, framework: str, source_paths=(), options: Optional[dict] = None,
                  sha256: Optional[str] = None, extra: Optional[dict] = None,
                  input_shapes: Optional[dict] = None) -> None:
    """The metadata every converted model carries: producer, converter version, source
    framework, the source's sha256 (of `source_paths`' bytes, or `sha256` when the
    source is not a file), and the conversion `options` (str -> str, kept in order;
    `input_shapes` the user gave is added as "input_shapes"). `extra`: framework
    details (opset, producer, ...)."""
    import mobconv

    meta = graph.metadata
    meta.producer = "mobconv"
    meta.converter_version = mobconv.__version__
    meta.source_framework = framework
    meta.source_sha256 = sha256 if sha256 is not None else file_sha256(*source_paths)
    meta.options = dict(options or {})
    if input_shapes:
        meta.options["input_shapes"] = format_input_shapes(input_shapes)
    if extra is not None:
        meta.extra = dict(extra)


_FLOAT_DTYPES = ("float32", "float16", "bfloat16")


def fill_signature(graph, layouts: Optional[dict] = None, preprocessing=None) -> None:
    """The signature users see: a TensorSpec per graph input and output.

    An input's layout is "NCHW" when it is a 4-D floating-point tensor (an image
    batch, as Caffe and ONNX models take them), an output's is ""; `layouts`
    (value name -> "NCHW", "NHWC" or "") overrides both, e.g. a TensorFlow
    model's NHWC edges. `preprocessing`: what users do to raw input (Caffe's
    mean/scale/BGR), when the source says it."""
    from ..ir import TensorSpec

    layouts = layouts or {}

    def spec(name, is_input):
        v = graph.values[name]
        shape = tuple(v.shape) if v.shape is not None else ()
        layout = "NCHW" if is_input and len(shape) == 4 and v.dtype in _FLOAT_DTYPES else ""
        return TensorSpec(name, v.dtype, shape, layouts.get(name, layout))

    sig = graph.signature
    sig.inputs = [spec(n, True) for n in graph.inputs]
    sig.outputs = [spec(n, False) for n in graph.outputs]
    if preprocessing is not None:
        sig.preprocessing = preprocessing


# ---- files that are no model at all ---------------------------------------------

_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
_REPLACEMENT = b"\xef\xbf\xbd"  # U+FFFD in UTF-8: what a text decoder puts for bad bytes


def explain_unparsable(path, data: bytes, kind: str = "model", parsed: bool = False) -> Optional[str]:
    """A one-line reason why `data` (a file's bytes) is not a binary `kind` at all, or None.

    - a Git LFS pointer (the repository was cloned without `git lfs pull`);
    - a binary file corrupted by a text round trip (bytes >= 0x80 replaced by U+FFFD,
      EF BF BD: saved from a browser or an HTTP client as text);
    - a text file (Python, HTML, ...) given a model's name: only when `parsed` is False
      (the caller's parser failed), since a small binary protobuf can be valid UTF-8.
    Cheap (no parsing): loaders call it before parsing and again when parsing fails."""
    head = data[:1024]
    if head.startswith(_LFS_POINTER):
        size = next((line.split()[1].decode("ascii", "replace") for line in head.splitlines()
                     if line.startswith(b"size ") and len(line.split()) == 2), None)
        real = f" for a {size}-byte file" if size else ""
        return (f"{path}: this is a Git LFS pointer{real} (version https://git-lfs.github.com/"
                "spec/v1 ...), not the model; run `git lfs pull`")
    count = data.count(_REPLACEMENT)
    if count >= 4 and count * 3 * 50 >= len(data):  # >= 6 % of the bytes
        return (f"{path}: looks corrupted by a UTF-8 text conversion ({count} U+FFFD replacement "
                "characters, EF BF BD; downloaded as text?); download it again as a binary file")
    if parsed:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at 1024 bytes
            return None
        text = head[:exc.start].decode("utf-8")
    printable = sum(c.isprintable() or c in "\t\r\n" for c in text)
    if not text.strip() or printable < 0.95 * len(text):
        return None
    first = next(line.strip() for line in text.splitlines() if line.strip())
    shown = first if len(first) <= 60 else first[:57] + "..."
    low = text.lstrip().lower()
    what = ("an HTML page (a download link saved as its web page?)"
            if low.startswith(("<!doctype html", "<html")) else "a text file")
    return f"{path}: is {what} (starts {shown!r}), not a binary {kind}"
