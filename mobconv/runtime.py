"""Python binding of the C++ runtime (libmobrt) over its C API, with ctypes.

    from mobconv.runtime import Interpreter, available
    with Interpreter("model.mob", threads=2) as it:
        outputs = it.run({"input": x})          # dict name -> np.ndarray
        it.profile()                             # [(op name, op type, ms), ...]

The same ABI the JNI and Swift bindings use. Errors raise `RuntimeError_`
(a `MobconvError`) with the runtime's message; malformed files raise
`ModelFormatError`.

The library is found in this order: env MOBCONV_RUNTIME_LIB; mobconv/_lib/
next to this package; mobconv/_lib/ under every sys.path entry (editable
installs place built files in site-packages); build/*/runtime/ and build/*/
under the source checkout.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
from typing import Optional

import numpy as np

from .errors import MobconvError, ModelFormatError

__all__ = ["Interpreter", "Model", "available", "library_path", "version", "op_table", "RuntimeError_"]


class RuntimeError_(MobconvError):
    """The C++ runtime reported an error (status name and message in the text)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


_DTYPES = {0: np.float32, 1: np.float16, 2: np.uint16, 3: np.int8, 4: np.uint8, 5: np.int16,
           6: np.int32, 7: np.int64, 8: np.bool_}
_STATUS = {0: "OK", 1: "INVALID_ARGUMENT", 2: "INVALID_MODEL", 3: "UNSUPPORTED", 4: "SHAPE_ERROR",
           5: "OUT_OF_MEMORY", 6: "IO_ERROR", 7: "NOT_READY", 8: "INTERNAL"}
_ISA = {"scalar": 0, "avx2": 1, "avx512": 2, "neon": 3, None: 4, "any": 4}
MAX_RANK = 8


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("dims", ctypes.c_int64 * MAX_RANK), ("data", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _ProfileEntry(ctypes.Structure):
    _fields_ = [("op_name", ctypes.c_char_p), ("op_type", ctypes.c_char_p), ("kernel", ctypes.c_char_p),
                ("microseconds", ctypes.c_double)]


_OBSERVER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                             ctypes.c_int, ctypes.POINTER(_TensorInfo))


def _candidates():
    env = os.environ.get("MOBCONV_RUNTIME_LIB")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "_lib", "libmobrt.so")
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            yield os.path.join(entry, "mobconv", "_lib", "libmobrt.so")
    root = os.path.dirname(here)
    for pattern in ("build/*/runtime/libmobrt.so", "build/*/libmobrt.so"):
        yield from sorted(glob.glob(os.path.join(root, pattern)), key=os.path.getmtime, reverse=True)


_lib = None
_lib_path: Optional[str] = None


def _load():
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    tried = []
    for path in _candidates():
        if not os.path.exists(path):
            tried.append(path)
            continue
        lib = ctypes.CDLL(path)
        _declare(lib)
        _lib, _lib_path = lib, path
        return lib
    raise MobconvError("the mobconv C++ runtime (libmobrt.so) was not found; build it with "
                       "`pip install -e .` or set MOBCONV_RUNTIME_LIB (looked in: "
                       + ", ".join(tried[:6]) + (", ..." if len(tried) > 6 else "") + ")")


def available() -> bool:
    """True if libmobrt can be loaded."""
    try:
        _load()
        return True
    except (MobconvError, OSError):
        return False


def library_path() -> str:
    _load()
    return _lib_path


def _declare(lib):
    P, I, S, C = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
    sig = {
        "mobrt_version": (C, []),
        "mobrt_global_last_error": (C, []),
        "mobrt_format_version_major": (ctypes.c_uint32, []),
        "mobrt_num_op_types": (I, []),
        "mobrt_op_describe": (C, [I]),
        "mobrt_status_name": (C, [I]),
        "mobrt_model_create_from_file": (I, [C, ctypes.POINTER(P)]),
        "mobrt_model_create_from_buffer": (I, [P, S, I, ctypes.POINTER(P)]),
        "mobrt_model_delete": (None, [P]),
        "mobrt_model_num_operators": (I, [P]),
        "mobrt_options_create": (P, []),
        "mobrt_options_delete": (None, [P]),
        "mobrt_options_set_num_threads": (I, [P, I]),
        "mobrt_options_set_max_isa": (I, [P, I]),
        "mobrt_options_set_profiling": (I, [P, I]),
        "mobrt_options_set_allow_fp16": (I, [P, I]),
        "mobrt_interpreter_create": (I, [P, P, ctypes.POINTER(P)]),
        "mobrt_interpreter_delete": (None, [P]),
        "mobrt_interpreter_last_error": (C, [P]),
        "mobrt_interpreter_num_inputs": (I, [P]),
        "mobrt_interpreter_num_outputs": (I, [P]),
        "mobrt_interpreter_input_name": (C, [P, I]),
        "mobrt_interpreter_output_name": (C, [P, I]),
        "mobrt_interpreter_input_info": (I, [P, I, ctypes.POINTER(I), ctypes.POINTER(I), ctypes.POINTER(ctypes.c_int64)]),
        "mobrt_interpreter_output_info": (I, [P, I, ctypes.POINTER(I), ctypes.POINTER(I), ctypes.POINTER(ctypes.c_int64)]),
        "mobrt_interpreter_resize_input": (I, [P, I, I, ctypes.POINTER(ctypes.c_int64)]),
        "mobrt_interpreter_set_input": (I, [P, I, P, S]),
        "mobrt_interpreter_set_input_pointer": (I, [P, I, P, S]),
        "mobrt_interpreter_invoke": (I, [P]),
        "mobrt_interpreter_output_data": (P, [P, I]),
        "mobrt_interpreter_output_size": (S, [P, I]),
        "mobrt_interpreter_arena_bytes": (S, [P]),
        "mobrt_interpreter_activation_bytes": (S, [P]),
        "mobrt_interpreter_profile_count": (I, [P]),
        "mobrt_interpreter_profile_entry": (I, [P, I, ctypes.POINTER(_ProfileEntry)]),
        "mobrt_interpreter_set_observer": (I, [P, _OBSERVER, P]),
        "mobrt_interpreter_input_dim_symbol": (C, [P, I, I]),
        "mobrt_interpreter_input_index": (I, [P, C]),
        "mobrt_interpreter_output_index": (I, [P, C]),
        "mobrt_interpreter_input_data": (P, [P, I]),
        "mobrt_model_last_error": (C, [P]),
        "mobrt_model_metadata": (C, [P, C]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def version() -> str:
    """The runtime library's version ("0.1.0")."""
    return _load().mobrt_version().decode()


def op_table() -> list:
    """The C++ op table, one dict per OpType value: name, inputs/outputs [min, max]
    (max -1: variadic), attrs [{name, kind, presence, default}], kernels [{isa, dtype, name}]."""
    import json

    lib = _load()
    return [json.loads(lib.mobrt_op_describe(i).decode()) for i in range(lib.mobrt_num_op_types())]


class Model:
    """A loaded, verified .mob model (path or bytes), shareable by any number of
    Interpreters on any threads (the C API's mobrt_model). Close it (or let it be
    collected) only after its interpreters."""

    def __init__(self, model):
        lib = _load()
        self._lib = lib
        self._handle = ctypes.c_void_p()
        if isinstance(model, (bytes, bytearray, memoryview)):
            self._buffer = bytes(model)
            st = lib.mobrt_model_create_from_buffer(self._buffer, len(self._buffer), 1, ctypes.byref(self._handle))
        else:
            st = lib.mobrt_model_create_from_file(os.fspath(model).encode(), ctypes.byref(self._handle))
        if st != 0:
            msg = lib.mobrt_global_last_error().decode(errors="replace")
            if st == 2:
                raise ModelFormatError(msg)
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {msg}", st)

    @property
    def num_operators(self) -> int:
        return int(self._lib.mobrt_model_num_operators(self._handle))

    def metadata(self, key: str):
        v = self._lib.mobrt_model_metadata(self._handle, key.encode())
        return None if v is None else v.decode()

    def close(self):
        if getattr(self, "_handle", None):
            self._lib.mobrt_model_delete(self._handle)
            self._handle = ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _as_input_array(value, dtype) -> np.ndarray:
    """The array to hand to the runtime. bfloat16 tensors travel as their raw uint16
    bits: a bfloat16 array (ml_dtypes) is reinterpreted, never converted by value."""
    arr = np.asarray(value)
    if np.dtype(dtype) == np.uint16 and arr.dtype.name == "bfloat16":
        return arr.view(np.uint16)
    return np.asarray(arr, dtype=dtype)


class Interpreter:
    """A .mob model running in the C++ runtime.

    `model` is a path, the file's bytes, or a shared `Model` (kept alive by this
    interpreter; not closed by it). `threads` sets the fixed pool size;
    `isa` caps kernel instruction sets ("scalar" runs the reference kernels);
    `profile=True` records per-op timings for `.profile()`.
    """

    def __init__(self, model, threads: int = 1, isa: Optional[str] = None, profile: bool = True):
        lib = _load()
        self._lib = lib
        self._model = ctypes.c_void_p()
        self._it = ctypes.c_void_p()
        self._observer = None
        self._observer_error = None
        self._pinned = {}  # input index -> caller array given to set_input_pointer
        if isinstance(model, Model):
            self._shared = model  # keeps the shared model alive; we do not own it
            handle = model._handle
        else:
            self._shared = None
            self._own = Model(model)
            handle = self._own._handle
        self._model = handle
        opts = lib.mobrt_options_create()
        try:
            self._check_global(lib.mobrt_options_set_num_threads(opts, int(threads)))
            self._check_global(lib.mobrt_options_set_max_isa(opts, _ISA[isa]))
            lib.mobrt_options_set_profiling(opts, 1 if profile else 0)
            st = lib.mobrt_interpreter_create(self._model, opts, ctypes.byref(self._it))
        finally:
            lib.mobrt_options_delete(opts)
        if st != 0:
            msg = lib.mobrt_global_last_error().decode(errors="replace")
            if self._shared is None:
                self._own.close()
            self._model = ctypes.c_void_p()
            if st == 2:
                raise ModelFormatError(msg)
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {msg}", st)

    # ---- lifetime
    def close(self):
        if getattr(self, "_it", None):
            self._lib.mobrt_interpreter_delete(self._it)
            self._it = ctypes.c_void_p()
        if getattr(self, "_own", None) is not None:
            self._own.close()
        self._model = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ---- errors
    def _check_global(self, st):
        if st != 0:
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {self._lib.mobrt_global_last_error().decode()}", st)

    def _check(self, st):
        if st != 0:
            msg = self._lib.mobrt_interpreter_last_error(self._it).decode(errors="replace")
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {msg}", st)

    # ---- description
    def _info(self, index, is_input):
        dt, rank = ctypes.c_int(), ctypes.c_int()
        dims = (ctypes.c_int64 * MAX_RANK)()
        fn = self._lib.mobrt_interpreter_input_info if is_input else self._lib.mobrt_interpreter_output_info
        self._check_global(fn(self._it, index, ctypes.byref(dt), ctypes.byref(rank), dims))
        name_fn = self._lib.mobrt_interpreter_input_name if is_input else self._lib.mobrt_interpreter_output_name
        shape = tuple(int(dims[i]) for i in range(rank.value))
        return {"name": name_fn(self._it, index).decode(), "dtype": np.dtype(_DTYPES[dt.value]).name,
                "shape": shape}

    @property
    def inputs(self) -> list:
        """[{name, dtype, shape}] of the graph inputs (-1 for unresolved symbolic dims)."""
        return [self._info(i, True) for i in range(self._lib.mobrt_interpreter_num_inputs(self._it))]

    @property
    def outputs(self) -> list:
        return [self._info(i, False) for i in range(self._lib.mobrt_interpreter_num_outputs(self._it))]

    @property
    def arena_bytes(self) -> int:
        return int(self._lib.mobrt_interpreter_arena_bytes(self._it))

    @property
    def activation_bytes(self) -> int:
        """Sum of all planned activation sizes (what a plan without reuse needs)."""
        return int(self._lib.mobrt_interpreter_activation_bytes(self._it))

    def _input_index(self, name) -> int:
        for i, info in enumerate(self.inputs):
            if info["name"] == name:
                return i
        raise RuntimeError_(f"no input named {name!r} (inputs: {', '.join(i['name'] for i in self.inputs)})", 1)

    # ---- running
    def resize(self, name, shape):
        index = self._input_index(name) if isinstance(name, str) else int(name)
        self._pinned.pop(index, None)
        dims = (ctypes.c_int64 * max(len(shape), 1))(*[int(d) for d in shape])
        self._check(self._lib.mobrt_interpreter_resize_input(self._it, index, len(shape), dims))

    def input_symbol(self, name, dim: int):
        """Name of the symbolic dim `dim` of an input ("N"), or None if that dim is fixed."""
        index = self._input_index(name) if isinstance(name, str) else int(name)
        v = self._lib.mobrt_interpreter_input_dim_symbol(self._it, index, dim)
        return None if v is None else v.decode()

    def set_input_pointer(self, name, array):
        """Read input `name` from `array`'s memory on following invokes (no copy).

        The array must be C-contiguous with the input's dtype and current shape;
        this object keeps a reference until another set_input_pointer, a run()
        or resize of that input, or close. None reverts to the internal buffer."""
        index = self._input_index(name) if isinstance(name, str) else int(name)
        if array is None:
            self._pinned.pop(index, None)
            self._check(self._lib.mobrt_interpreter_set_input_pointer(self._it, index, None, 0))
            return
        info = self.inputs[index]
        if not isinstance(array, np.ndarray) or not array.flags.c_contiguous or array.dtype != np.dtype(info["dtype"]):
            raise RuntimeError_(f"input {info['name']!r}: set_input_pointer needs a C-contiguous "
                                f"{info['dtype']} numpy array", 1)
        self._check(self._lib.mobrt_interpreter_set_input_pointer(
            self._it, index, array.ctypes.data_as(ctypes.c_void_p), array.nbytes))
        self._pinned[index] = array

    def invoke(self):
        """Run the graph on the inputs already set (set_input_pointer); see outputs_now()."""
        self._check(self._lib.mobrt_interpreter_invoke(self._it))

    def outputs_now(self) -> dict:
        """Copies of the outputs of the last invoke (name -> array)."""
        result = {}
        for index, info in enumerate(self.outputs):
            ptr = self._lib.mobrt_interpreter_output_data(self._it, index)
            size = self._lib.mobrt_interpreter_output_size(self._it, index)
            dtype = np.dtype(info["dtype"])
            if size == 0 or not ptr:
                if not ptr and size:
                    raise RuntimeError_("outputs are not available: invoke first", 7)
                result[info["name"]] = np.zeros(info["shape"], dtype=dtype)
                continue
            raw = ctypes.string_at(ptr, size)
            result[info["name"]] = np.frombuffer(raw, dtype=dtype).reshape(info["shape"]).copy()
        return result

    def run_with_intermediates(self, feeds: dict) -> dict:
        """Run and return every tensor of the run: the feeds, each operator's outputs
        (intermediates included, as observed right after their operator) and the
        graph outputs; name -> array. The counterpart of the numpy reference's
        run(..., keep_intermediates=True), for calibration and debugging."""
        seen = {name: np.asarray(v) for name, v in feeds.items()}

        def keep(_index, _name, _type, tensors):
            seen.update(tensors)

        seen.update(self.run(feeds, observer=keep))
        return seen

    def run(self, feeds: dict, observer=None) -> dict:
        """Run with `feeds` (name -> array; missing inputs are an error); return name -> array (copies).

        `observer`, if given, is called as observer(op_index, op_name, op_type,
        {output name: array copy}) after every operator of this run (folded
        constant computations included); returning False aborts the run."""
        if observer is not None:
            previous = self._observer
            self.set_observer(observer)
            try:
                return self.run(feeds)
            finally:
                self._observer = previous
                self._check(self._lib.mobrt_interpreter_set_observer(self._it, previous or _OBSERVER(), None))
        infos = self.inputs
        names = [i["name"] for i in infos]
        unknown = sorted(set(feeds) - set(names))
        if unknown:
            raise RuntimeError_(f"unknown input(s) {', '.join(unknown)} (inputs: {', '.join(names)})", 1)
        keep = []
        for index, info in enumerate(infos):
            if info["name"] not in feeds:
                raise RuntimeError_(f"missing input {info['name']!r}", 1)
            arr = _as_input_array(feeds[info["name"]], info["dtype"])
            if not arr.flags.c_contiguous:
                arr = arr.copy(order="C")
            if tuple(arr.shape) != info["shape"]:
                # resize every input before setting any: with several symbolic inputs the
                # interpreter is only ready once all of them have concrete shapes
                self.resize(index, arr.shape)
            keep.append(arr)
        for index, arr in enumerate(keep):
            self._pinned.pop(index, None)
            self._check(self._lib.mobrt_interpreter_set_input(
                self._it, index, arr.ctypes.data_as(ctypes.c_void_p), arr.nbytes))
        self._observer_error = None
        status = self._lib.mobrt_interpreter_invoke(self._it)
        if self._observer_error is not None:
            error, self._observer_error = self._observer_error, None
            raise error
        self._check(status)
        return self.outputs_now()

    def profile(self) -> list:
        """[(op name, op type, milliseconds)] of the last run."""
        out = []
        entry = _ProfileEntry()
        for i in range(self._lib.mobrt_interpreter_profile_count(self._it)):
            self._check_global(self._lib.mobrt_interpreter_profile_entry(self._it, i, ctypes.byref(entry)))
            out.append((entry.op_name.decode(), entry.op_type.decode(), entry.microseconds / 1000.0))
        return out

    def set_observer(self, fn):
        """Call fn(op_index, op_name, op_type, {tensor name: array copy}) after each op; None removes it."""
        if fn is None:
            self._observer = None
            self._check(self._lib.mobrt_interpreter_set_observer(self._it, _OBSERVER(), None))
            return

        def trampoline(_user, op_index, op_name, op_type, n, infos):
            try:
                tensors = {}
                for k in range(n):
                    t = infos[k]
                    shape = tuple(t.dims[d] for d in range(t.rank))
                    raw = ctypes.string_at(t.data, t.size) if t.size else b""
                    tensors[t.name.decode()] = np.frombuffer(raw, dtype=_DTYPES[t.dtype]).reshape(shape).copy()
                return 1 if fn(op_index, op_name.decode(), op_type.decode(), tensors) is False else 0
            except BaseException as exc:  # re-raised by run() after the invoke returns
                self._observer_error = exc
                return 1

        self._observer = _OBSERVER(trampoline)
        self._check(self._lib.mobrt_interpreter_set_observer(self._it, self._observer, None))


def run_model(model, feeds: dict, threads: int = 1) -> dict:
    """Run a `mobconv.Model` (or IR Graph) through the C++ runtime: used by backend='runtime'."""
    from mobconv.formats.writer import to_bytes

    graph = getattr(model, "graph", model)
    with Interpreter(to_bytes(graph), threads=threads, profile=False) as it:
        return it.run(feeds)
