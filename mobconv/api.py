"""The Python API: convert a source model, save/load `.mob` files, run them.

    import mobconv
    model = mobconv.convert("resnet18.onnx", input_shapes={"input": (1, 3, 224, 224)})
    model.add_test_vector()            # embed inputs + reference outputs
    model.save("resnet18.mob")         # atomic write
    outputs = mobconv.load("resnet18.mob").run({"input": x})

Frontends are looked up in `FRONTENDS`, a small table keyed by framework name
(each entry says which file extensions it claims and how to load them), so the
Caffe and TensorFlow frontends plug in by adding a row. Execution backends are
another table, `BACKENDS`; `backend="auto"` takes the first available one in
`AUTO_BACKENDS` (the numpy reference until the C++ runtime claims the front).
The "runtime" backend expects `mobconv.runtime` to provide
`run_model(model: Model, feeds: dict) -> dict` and `available() -> bool`.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import __version__
from . import feeds as _feeds
from .errors import ArgumentError, MobconvError, ModelFormatError, UsageError, ShapeError
from .ir import Graph, TensorSpec, TestVector


# ---- frontends ------------------------------------------------------------


@dataclass(frozen=True)
class Frontend:
    """One source framework: the file extensions it claims and its loader.

    `loader` is "module:function" (imported only when used) or a callable; it is
    called as ``fn(path, input_shapes=...)`` and returns an IR Graph.
    """

    name: str
    extensions: tuple
    loader: object

    def load(self, path: str, input_shapes: Optional[dict], **options) -> Graph:
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
    "tensorflow": Frontend("tensorflow", (".pb",), "mobconv.frontends.tensorflow:load_tensorflow"),
}


def detect_framework(path: str) -> str:
    """Framework name for a source model path, from its extension."""
    ext = os.path.splitext(str(path))[1].lower()
    for name, frontend in FRONTENDS.items():
        if ext in frontend.extensions:
            return name
    known = ", ".join(f"{e} ({n})" for n, f in FRONTENDS.items() for e in f.extensions)
    if ext == ".mob":
        raise UsageError(f"{path}: is already a .mob model; use mobconv.load() to open it")
    raise UsageError(
        f"{path}: cannot tell the source framework from the extension {ext or '(none)'!r} "
        f"(known: {known}); pass framework=..."
    )


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise MobconvError(f"{path}: no such file")
    if os.path.isdir(path):
        raise MobconvError(f"{path}: is a directory, expected a model file")
    if os.path.getsize(path) == 0:
        raise ModelFormatError(f"{path}: empty file (0 bytes); was it fully downloaded or written?")


# What a file given to the wrong converter probably is, by extension: (what, how to convert).
_OTHER_FORMATS = {
    ".caffemodel": ("a Caffe weights file", "mobconv caffe2mob deploy.prototxt {path}"),
    ".prototxt": ("a Caffe network description", "mobconv caffe2mob {path} weights.caffemodel"),
    ".onnx": ("an ONNX model", "mobconv onnx2mob {path}"),
    ".pb": ("a TensorFlow graph", "mobconv.convert('{path}') in Python"),
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
             "tensorflow": ("a TensorFlow graph", (".pb",))}


def check_source(path: str, framework: str) -> None:
    """Refuse a file that is plainly not a `framework` source file (empty, another
    framework's extension, a .mob), before a parser reports something cryptic.
    `framework` is a FRONTENDS name, or "caffemodel" for Caffe's weights file."""
    path = os.fspath(path)
    _check_readable(path)
    ext = os.path.splitext(path)[1].lower()
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] == b"MOB1":
        ext = ".mob"
    frontend = FRONTENDS.get(framework)
    wanted, extensions = _EXPECTED.get(framework, (
        f"a {framework} model", frontend.extensions if frontend else ()))
    if ext in extensions or (ext == ".pb" and framework == "onnx"):  # some ONNX files are .pb
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
    _check_readable(path)
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
    stats["ops_after"] = len(graph.nodes)
    stats["seconds"] = time.perf_counter() - start

    meta = graph.metadata
    meta.producer = meta.producer or "mobconv"
    meta.converter_version = __version__
    meta.source_framework = meta.source_framework or framework
    meta.source_sha256 = meta.source_sha256 or _file_sha256(path)
    meta.options = dict(meta.options)
    meta.options["optimize"] = "true" if optimize else "false"
    if shapes:
        meta.options["input_shapes"] = ";".join(
            f"{k}={','.join(str(d) for d in v)}" for k, v in shapes.items()
        )
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
        if ext in (".onnx", ".prototxt", ".caffemodel"):
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


# ---- backends -------------------------------------------------------------


def _run_reference(model: "Model", feeds: dict) -> dict:
    from .reference.interpreter import run

    return run(model.graph, feeds, source=model.source)


def _run_runtime(model: "Model", feeds: dict, threads: int = 1, isa: Optional[str] = None) -> dict:
    try:
        runtime = importlib.import_module("mobconv.runtime")
    except ImportError as exc:
        raise MobconvError(f"backend 'runtime' is not available: {exc}") from exc
    if not runtime.available():
        raise MobconvError("backend 'runtime' is not available: libmobrt.so was not found "
                           "(build it with `pip install -e .`, or set MOBCONV_RUNTIME_LIB)")
    # A model loaded from a .mob file runs from that file (mmap, zero copy);
    # a converted one from its serialized bytes.
    source = model.source if model.source and model.source.endswith(".mob") else model.to_bytes()
    with runtime.Interpreter(source, threads=threads, isa=isa, profile=False, name=model.source) as interpreter:
        return interpreter.run(feeds)


def _runtime_available() -> bool:
    try:
        runtime = importlib.import_module("mobconv.runtime")
    except ImportError:
        return False
    return runtime.available()


def _runtime_lacks_an_op(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 3  # MOBRT_UNSUPPORTED from mobconv.runtime


BACKENDS: dict = {"reference": _run_reference, "runtime": _run_runtime}
# backend="auto" takes the first of these whose probe says it is usable: the C++
# runtime when libmobrt is built, else the numpy reference.
AUTO_BACKENDS: list = [("runtime", _runtime_available), ("reference", lambda: True)]


def resolve_backend(backend: str) -> str:
    if backend == "auto":
        for name, usable in AUTO_BACKENDS:
            if usable():
                return name
        return "reference"
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (known: auto, {', '.join(BACKENDS)})")
    return backend


# ---- inputs ---------------------------------------------------------------


def concrete_shape(shape) -> tuple:
    """A runnable shape: symbolic (string) and unknown dims become 1."""
    return tuple(d if isinstance(d, int) and d >= 0 else 1 for d in (shape or ()))


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
        return random_inputs(self.inputs, seed, source=self.source)

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
