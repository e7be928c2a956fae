"""The Python API: convert a source model, save/load `.mob` files, run them.

    import mobconv
    model = mobconv.convert("resnet18.onnx", input_shapes={"input": (1, 3, 224, 224)})
    model.add_test_vector()            # embed inputs + reference outputs
    model.save("resnet18.mob")         # atomic write
    outputs = mobconv.load("resnet18.mob").run({"input": x})

Frontends are looked up in `FRONTENDS`, a small table keyed by framework name
(each entry says which file extensions it claims and how to load them), so a
frontend plugs in by adding a row; it and `detect_framework` live in
`mobconv/frontends/__init__.py`. Execution backends are another table,
`BACKENDS` (`mobconv/backends.py`); `backend="auto"` takes the first available
one in `AUTO_BACKENDS`. Both are re-exported here.
"""
from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Optional

import numpy as np

from . import __version__
from . import feeds as _feeds
from .backends import (  # noqa: F401 - the public names of mobconv.api
    AUTO_BACKENDS, BACKENDS, _run_reference, _run_runtime, _runtime_available,
    _runtime_lacks_an_op, resolve_backend)
from .errors import ArgumentError, MobconvError, ModelFormatError, UsageError, ShapeError
from .frontends import (  # noqa: F401 - FRONTENDS, Frontend, detect_framework are public here
    FRONTENDS, Frontend, detect_framework, is_graph_def, is_onnx_model, is_saved_model)
from .ir import Graph, TensorSpec, TestVector


def _path_arg(path, what: str) -> str:
    """`path` (str or os.PathLike) as a str, else ArgumentError: load(None) says so."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise ArgumentError(f"{what} needs a file path (str or os.PathLike), got "
                            f"{'None' if path is None else type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ArgumentError(f"{what} needs a file path, got an empty string")
    return path


_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_DIM = (1 << 63) - 1


def check_input_shapes(path: str, input_shapes) -> dict:
    """`input_shapes` as {name: tuple of dims}, by the CLI's --input-shape rule
    (cli/common.py parse_input_shapes): every dim a positive integer or a symbol
    name such as "batch". ArgumentError (a UsageError, exit 2) naming the file,
    the input and the dim otherwise; a 0 dim is refused as on the command line."""
    if input_shapes is None:
        return {}
    if not isinstance(input_shapes, Mapping):
        raise ArgumentError(f"{path}: input_shapes must be a dict of input name -> shape, "
                            f"got a {type(input_shapes).__name__}")
    shapes = {}
    for name, shape in input_shapes.items():
        if not isinstance(name, str):
            raise ArgumentError(f"{path}: input_shapes names must be strings, got {name!r}")
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
            raise ArgumentError(f"{path}: input_shapes[{name!r}] must be a tuple of dims, got {shape!r}")
        dims = tuple(shape)
        for i, d in enumerate(dims):
            if isinstance(d, str) and _SYMBOL.match(d):
                continue
            if isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) \
                    and 0 < d <= _MAX_DIM:
                continue
            raise ArgumentError(
                f"{path}: input_shapes[{name!r}] = {dims!r}: dim {i} ({d!r}) is not a positive "
                "integer or a symbol name (for example (1, 3, 224, 224) or ('batch', 128))")
        shapes[name] = tuple(int(d) if not isinstance(d, str) else d for d in dims)
    return shapes


def _check_readable(path: str, directories: bool = False) -> None:
    """A model file that exists and is not empty; with `directories`, a TensorFlow
    SavedModel directory (holding saved_model.pb) is accepted too."""
    if not os.path.exists(path):
        raise MobconvError(f"{path}: no such file")
    if os.path.isdir(path):
        if directories and is_saved_model(path):
            return
        if directories:
            raise MobconvError(f"{path}: is a directory without saved_model.pb, expected a "
                               "model file or a TensorFlow SavedModel directory")
        raise MobconvError(f"{path}: is a directory, expected a model file")
    if os.path.getsize(path) == 0:
        raise ModelFormatError(f"{path}: empty file (0 bytes); was it fully downloaded or written?")


# What a file given to the wrong converter probably is, by extension: (what, how to convert).
_OTHER_FORMATS = {
    ".caffemodel": ("a Caffe weights file", "mobconv caffe2mob deploy.prototxt {path}"),
    ".prototxt": ("a Caffe network description", "mobconv caffe2mob {path} weights.caffemodel"),
    ".onnx": ("an ONNX model", "mobconv onnx2mob {path}"),
    ".pb": ("a TensorFlow graph", "mobconv tf2mob {path}"),
    ".pbtxt": ("a TensorFlow text graph", "mobconv tf2mob {path}"),
    ".mob": ("already a .mob model", "mobconv info {path}"),
    ".tflite": ("a TensorFlow Lite model", "convert the source model it came from"),
    ".mnn": ("an MNN model", "convert the source model it came from"),
    ".param": ("an ncnn model", "convert the source model it came from"),
    ".pt": ("a PyTorch checkpoint", "export it with torch.onnx.export, then mobconv onnx2mob"),
    ".pth": ("a PyTorch checkpoint", "export it with torch.onnx.export, then mobconv onnx2mob"),
}


# What each converter input is called and which extensions it claims.
_EXPECTED = {"onnx": ("an ONNX model", (".onnx",)),
             "caffe": ("a Caffe deploy file", (".prototxt",)),
             "caffemodel": ("a Caffe weights file", (".caffemodel",)),
             "tensorflow": ("a TensorFlow graph or SavedModel directory", (".pb", ".pbtxt"))}


def check_source(path: str, framework: str) -> None:
    """Refuse a file that is plainly not a `framework` source file (empty, another
    framework's extension, a .mob), before a parser reports something cryptic.
    `framework` is a FRONTENDS name, or "caffemodel" for Caffe's weights file."""
    path = os.fspath(path)
    frontend = FRONTENDS.get(framework)
    _check_readable(path, directories=frontend is not None and frontend.directories)
    if os.path.isdir(path):
        return  # a SavedModel directory, for a frontend that takes them
    ext = os.path.splitext(path)[1].lower()
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] == b"MOB1":
        ext = ".mob"
    if ext == ".pb" and framework == "tensorflow" and is_onnx_model(path):
        raise UsageError(f"{path}: is an ONNX model (named .pb), expected a TensorFlow graph; "
                         f"for this file use: mobconv onnx2mob {path}")
    wanted, extensions = _EXPECTED.get(framework, (
        f"a {framework} model", frontend.extensions if frontend else ()))
    if ext == ".pb" and framework == "onnx":  # some ONNX files are .pb
        if not is_onnx_model(path) and is_graph_def(path):
            raise UsageError(f"{path}: is a TensorFlow graph, expected an ONNX model (.onnx); "
                             f"for this file use: mobconv tf2mob {path}")
        return
    if ext in extensions:
        return
    if ext in _OTHER_FORMATS:
        what, how = _OTHER_FORMATS[ext]
        raise UsageError(f"{path}: is {what}, expected {wanted} ({'/'.join(extensions)}); "
                         f"for this file use: {how.format(path=path)}")


def convert(path, input_shapes: Optional[dict] = None, optimize: bool = True,
            framework: Optional[str] = None, **frontend_options) -> "Model":
    """Convert a source model file to a `Model` (IR graph + signature + metadata).

    input_shapes: input name -> shape (ints, or strings for symbolic dims), overriding
    the source model's shapes. optimize: run the default pass pipeline.
    framework: "onnx", ... (default: detected from the file extension).
    frontend_options: passed to the frontend's loader (e.g. caffemodel=... for Caffe).
    """
    path = _path_arg(path, "convert()")
    _check_readable(path, directories=framework is None or (
        framework in FRONTENDS and FRONTENDS[framework].directories))
    if framework is None:
        framework = detect_framework(path)
    else:
        check_source(path, framework)
    if framework not in FRONTENDS:
        raise UsageError(f"unknown framework {framework!r} (known: {', '.join(FRONTENDS)})")
    shapes = check_input_shapes(path, input_shapes)

    stats = {}
    start = time.perf_counter()
    try:
        graph = FRONTENDS[framework].load(path, shapes or None, **frontend_options)
    except MobconvError:
        raise  # frontends raise UsageError (exit 2) themselves for bad input_shapes
    unknown = sorted(set(shapes) - set(graph.inputs))
    if unknown:
        raise UsageError(
            f"{path}: input_shapes names unknown input(s) {', '.join(unknown)} "
            f"(model inputs: {', '.join(graph.inputs) or 'none'})"
        )
    stats["ops_before"] = len(graph.nodes)
    if optimize:
        from .passes import optimize as run_passes

        run_passes(graph)
    if graph.metadata.options.get("source_weights") == "float16":  # e.g. Caffe fp16 raw_data
        from .quantize.fp16 import to_fp16  # keep the source's fp16 storage

        graph = to_fp16(graph)
    stats["ops_after"] = len(graph.nodes)
    stats["seconds"] = time.perf_counter() - start

    # a frontend fills the metadata with frontends.base.fill_metadata; a plugged-in
    # one (a FRONTENDS row) may not: the defaults
    from .frontends.base import file_sha256, format_input_shapes

    meta = graph.metadata
    meta.producer = meta.producer or "mobconv"
    meta.converter_version = __version__
    meta.source_framework = meta.source_framework or framework
    meta.source_sha256 = meta.source_sha256 or file_sha256(path)
    meta.options = dict(meta.options)
    meta.options["optimize"] = "true" if optimize else "false"
    if shapes:
        meta.options["input_shapes"] = format_input_shapes(shapes)
    model = Model(graph, source=path)
    model.conversion_stats = stats
    return model


def load(path) -> "Model":
    """Read a `.mob` file. Malformed files raise ModelFormatError naming the file."""
    from .formats.reader import from_bytes

    path = _path_arg(path, "load()")
    _check_readable(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[4:8] != b"MOB1":
        ext = os.path.splitext(path)[1].lower()
        hint = ""
        if ext in (".onnx", ".prototxt", ".caffemodel", ".pb", ".pbtxt"):
            hint = "; convert it first: " + _OTHER_FORMATS[ext][1].format(path=path)
        elif any(ext in f.extensions for f in FRONTENDS.values()):
            hint = f"; convert it first: mobconv.convert({path!r})"
        elif ext in _OTHER_FORMATS:
            hint = f" ({_OTHER_FORMATS[ext][0]}: {_OTHER_FORMATS[ext][1].format(path=path)})"
        raise ModelFormatError(
            f"{path}: not a .mob model file (missing 'MOB1' file identifier){hint}"
        )
    try:
        graph = from_bytes(data, source=path)
    except MobconvError:
        raise
    except Exception as exc:  # the reader should not get here; never show users a traceback
        raise ModelFormatError(f"{path}: malformed .mob file ({type(exc).__name__}: {exc})") from exc
    model = Model(graph, source=path)
    model.file_size = len(data)
    model.format_version = _format_version(data)
    return model


def _format_version(data: bytes) -> tuple:
    """(major, minor) of a verified .mob file's format."""
    from .formats.fb.Model import Model as FbModel

    root = FbModel.GetRootAs(data, 0)
    return int(root.VersionMajor()), int(root.VersionMinor())


def check_writable(path: str) -> None:
    """MobconvError unless `path` can be (over)written as a model file."""
    if not path:
        raise UsageError("output path is empty (give a file name such as model.mob)")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise MobconvError(f"cannot write {path}: is a directory (give a file name such as "
                           f"{os.path.join(path, 'model.mob')})")
    if not os.path.isdir(parent):
        raise MobconvError(f"cannot write {path}: directory {parent} does not exist "
                           "(create it first)")
    if not os.access(parent, os.W_OK):
        raise MobconvError(f"cannot write {path}: directory {parent} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise MobconvError(f"cannot write {path}: the existing file is read-only "
                           "(remove it or choose another path)")


# ---- inputs ---------------------------------------------------------------


def concrete_shape(shape) -> tuple:
    """A runnable shape: symbolic (string) and unknown dims become 1."""
    return tuple(d if isinstance(d, int) and d >= 0 else 1 for d in (shape or ()))


def declared_specs(graph, specs) -> list:
    """`specs` with their symbolic dims set to the sizes the source file declared
    (metadata "declared_input_shapes", written by the Caffe frontend), so random
    inputs have a size the model runs at; other specs unchanged."""
    from dataclasses import replace

    declared = {}
    for item in filter(None, graph.metadata.options.get("declared_input_shapes", "").split(";")):
        name, _, dims = item.rpartition("=")
        declared[name] = [int(d) for d in dims.split(",")]
    return [replace(s, shape=tuple(d if isinstance(d, int) else declared[s.name][i]
                                   for i, d in enumerate(s.shape)))
            if len(declared.get(s.name, ())) == len(s.shape or ()) else s for s in specs]


def random_inputs(specs, seed: int = 0, source: Optional[str] = None) -> dict:
    """Seeded random data for each TensorSpec: standard normal floats, small ints
    in [0, 10), random bools. Symbolic dims are set to 1.

    ArgumentError (naming `source`, the model file, and the input) for a negative
    seed, or a declared shape too large to draw (mobconv.feeds.MAX_RANDOM_ELEMENTS,
    MAX_RANDOM_RANK), checked for every input before anything is allocated."""
    seed = _feeds.check_seed(seed)
    shapes = [concrete_shape(spec.shape) for spec in specs]
    for spec, shape in zip(specs, shapes):
        _feeds.check_random_shape(shape, spec.name, source)
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec, shape in zip(specs, shapes):
        dtype = spec.dtype or "float32"
        if dtype == "bool":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        elif dtype.startswith(("int", "uint")):
            feeds[spec.name] = rng.integers(0, 10, size=shape).astype(dtype)
        else:
            np_dtype = "float32" if dtype == "bfloat16" else dtype
            feeds[spec.name] = rng.standard_normal(shape).astype(np_dtype)
    return feeds


def check_feeds(specs, feeds: dict, source: Optional[str] = None) -> None:
    """Same checks for every backend: known names, all inputs given, rank and fixed dims.
    Messages start with `source` (the model file) when given."""
    where = f"{source}: " if source else ""
    names = [s.name for s in specs]
    unknown = sorted(set(feeds) - set(names), key=str)
    if unknown:
        raise ShapeError(f"{where}unknown input(s) {', '.join(map(str, unknown))} "
                         f"(model inputs: {', '.join(names)})")
    for spec in specs:
        if spec.name not in feeds:
            raise ShapeError(f"{where}missing input {spec.name!r} (model inputs: {', '.join(names)})")
        shape = np.shape(feeds[spec.name])
        want = tuple(spec.shape or ())
        if len(shape) != len(want) or any(
            isinstance(d, int) and d >= 0 and d != got for d, got in zip(want, shape)
        ):
            shown = "[" + ", ".join(str(d) for d in want) + "]"
            raise ShapeError(f"{where}input {spec.name!r}: expected shape {shown}, got {list(shape)}")


# ---- the model ------------------------------------------------------------


class Model:
    """A converted model: the IR graph plus what the `.mob` file carries with it."""

    def __init__(self, graph: Graph, source: Optional[str] = None):
        self.graph = graph
        self.source = source
        self.file_size: Optional[int] = None
        self.format_version: Optional[tuple] = None  # (major, minor) of a loaded file
        self.conversion_stats: dict = {}
        self.last_backend: Optional[str] = None  # which backend the last run() used

    def _specs(self, names, declared) -> list:
        if declared:
            return list(declared)
        specs = []
        for name in names:
            value = self.graph.values.get(name)
            dtype = value.dtype if value is not None else None
            shape = value.shape if value is not None else None
            specs.append(TensorSpec(name, dtype or "float32", tuple(shape or ())))
        return specs

    @property
    def inputs(self) -> list:
        """Input TensorSpecs (from the signature, else from the graph inputs)."""
        return self._specs(self.graph.inputs, self.graph.signature.inputs)

    @property
    def outputs(self) -> list:
        return self._specs(self.graph.outputs, self.graph.signature.outputs)

    @property
    def metadata(self):
        return self.graph.metadata

    @property
    def test_vectors(self) -> list:
        return self.graph.test_vectors

    def save(self, path) -> None:
        """Write the model as a `.mob` file, atomically (nothing is left on failure)."""
        from .formats.writer import write_model

        path = _path_arg(path, "save()")
        check_writable(path)
        write_model(self.graph, path)  # atomic; keeps an existing file's mode

    def to_bytes(self) -> bytes:
        from .formats.writer import to_bytes

        return to_bytes(self.graph)

    def random_inputs(self, seed: int = 0) -> dict:
        return random_inputs(declared_specs(self.graph, self.inputs), seed, source=self.source)

    def _coerce(self, inputs) -> dict:
        """`inputs` checked and cast by the rules of mobconv.feeds (ArgumentError naming
        the file and the input otherwise); names not in the model pass through, for
        check_feeds to report with the model's input list."""
        given = _feeds.check_mapping(inputs, self.source)
        dtypes = {spec.name: spec.dtype or "float32" for spec in self.inputs}
        return {name: _feeds.as_input_array(value, dtypes[name], name, self.source)
                if name in dtypes else value for name, value in given.items()}

    def run(self, inputs: Optional[dict] = None, backend: str = "auto", seed: int = 0,
            threads: int = 1, isa: Optional[str] = None) -> dict:
        """Run the model on `inputs` (name -> array; seeded random data when None).

        backend: "auto" (the C++ runtime when built, else numpy), "reference"
        (numpy) or "runtime" (C++). With "auto", a model using an op the runtime
        has no kernel for runs on the numpy reference instead, with a warning.
        isa caps the runtime's instruction sets ("scalar", "avx2", "avx512_vnni",
        "neon_dot", ...; None: the best this CPU has; see runtime.supported_isas()).
        Returns output name -> numpy array.
        """
        threads = _feeds.check_threads(threads)
        feeds = self.random_inputs(seed) if inputs is None else self._coerce(inputs)
        check_feeds(self.inputs, feeds, self.source)
        self.last_backend = resolve_backend(backend)
        if self.last_backend == "reference":
            return _run_reference(self, feeds)
        try:
            return _run_runtime(self, feeds, threads=threads, isa=isa)
        except MobconvError as exc:
            if backend != "auto" or not _runtime_lacks_an_op(exc):
                raise
            warnings.warn(f"C++ runtime cannot run this model ({exc}); using the numpy reference")
            self.last_backend = "reference"
            return _run_reference(self, feeds)

    def add_test_vector(self, inputs: Optional[dict] = None, seed: int = 0,
                        rtol: float = 1e-4, atol: float = 1e-5) -> TestVector:
        """Run the numpy reference on `inputs` (random when None) and embed inputs and
        outputs in the model, so the saved file can check itself (`mobconv validate`)."""
        feeds = self.random_inputs(seed) if inputs is None else {
            k: np.asarray(v) for k, v in inputs.items()
        }
        outputs = self.run(feeds, backend="reference")
        vector = TestVector(inputs=feeds, outputs=outputs, rtol=rtol, atol=atol)
        self.graph.test_vectors.append(vector)
        return vector

    def summary(self):
        from .summary import summarize

        return summarize(self.graph, file_size=self.file_size)

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}{list(s.shape)}" for s in self.inputs)
        outs = ", ".join(f"{s.name}{list(s.shape)}" for s in self.outputs)
        return f"<mobconv.Model {len(self.graph.nodes)} ops, inputs: {ins}; outputs: {outs}>"
