"""Python binding of the C++ runtime (libmobrt) over its C API, with ctypes.

    from mobconv.runtime import Interpreter, available
    with Interpreter("model.mob", threads=2) as it:
        outputs = it.run({"input": x})          # dict name -> np.ndarray
        it.profile()                             # [(op name, op type, ms), ...]

The same ABI the JNI and Swift bindings use. Errors raise `RuntimeError_`
(a `MobconvError`) with the runtime's message; malformed files raise
`ModelFormatError`; wrong arguments (feeds of the wrong kind, threads=2.5,
isa="bogus") `ArgumentError` (also a ValueError and a TypeError); use after
close() `ClosedError`. Messages start with the model's file name when known.
One Interpreter may be shared by threads (a lock serializes its calls).

The library is found in this order: env MOBCONV_RUNTIME_LIB; mobconv/_lib/
next to this package; mobconv/_lib/ under every sys.path entry (editable
installs place built files in site-packages); build/*/runtime/ and build/*/
under the source checkout.
"""
from __future__ import annotations

import ctypes
import glob
import operator
import os
import sys
import threading
from typing import Optional

import numpy as np

from . import _enums
from .errors import ArgumentError, ClosedError, MobconvError, ModelFormatError
from .feeds import as_input_array, check_mapping, check_threads

__all__ = ["Interpreter", "Model", "available", "library_path", "version", "op_table", "RuntimeError_"]


class RuntimeError_(MobconvError):
    """The C++ runtime reported an error (status name and message in the text)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


_DTYPES = {0: np.float32, 1: np.float16, 2: np.uint16, 3: np.int8, 4: np.uint8, 5: np.int16,
           6: np.int32, 7: np.int64, 8: np.bool_}
_DTYPE_NAMES = {k: np.dtype(v).name for k, v in _DTYPES.items()}
_STATUS = _enums.STATUS  # generated from mobrt.h (scripts/gen_binding_enums.py)
_ISA = {**_enums.ISA, None: _enums.ISA["any"]}  # = mobrt_isa
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
        "mobrt_isa_supported": (I, [I]),
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
        # tensor accessors, model-level info, signature, cancel (mobrt.h)
        "mobrt_dtype_size": (S, [I]),
        "mobrt_model_num_inputs": (I, [P]),
        "mobrt_model_num_outputs": (I, [P]),
        "mobrt_model_input_tensor": (P, [P, I]),
        "mobrt_model_output_tensor": (P, [P, I]),
        "mobrt_model_input_layout": (C, [P, I]),
        "mobrt_model_output_layout": (C, [P, I]),
        "mobrt_model_input_mean": (I, [P, I, ctypes.POINTER(ctypes.c_float), I]),
        "mobrt_model_input_scale": (I, [P, I, ctypes.POINTER(ctypes.c_float), I]),
        "mobrt_model_input_channel_order": (C, [P, I]),
        "mobrt_interpreter_input_tensor": (P, [P, I]),
        "mobrt_interpreter_output_tensor": (P, [P, I]),
        "mobrt_interpreter_cancel": (I, [P]),
        "mobrt_tensor_name": (C, [P]),
        "mobrt_tensor_dtype": (I, [P]),
        "mobrt_tensor_rank": (I, [P]),
        "mobrt_tensor_dim": (ctypes.c_int64, [P, I]),
        "mobrt_tensor_dim_symbol": (C, [P, I]),
        "mobrt_tensor_byte_size": (S, [P]),
        "mobrt_tensor_data": (P, [P]),
        "mobrt_tensor_mutable_data": (P, [P]),
        "mobrt_tensor_quant_scale_count": (I, [P]),
        "mobrt_tensor_quant_scale": (ctypes.c_float, [P, I]),
        "mobrt_tensor_quant_zero_point": (ctypes.c_int64, [P, I]),
        "mobrt_tensor_quant_axis": (I, [P]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def version() -> str:
    """The runtime library's version ("0.1.0")."""
    return _load().mobrt_version().decode()


def supported_isas() -> list:
    """Instruction-set names this build and CPU can run, lowest first ("scalar" always)."""
    lib = _load()
    names = [n for n, v in sorted(_ISA.items(), key=lambda kv: (kv[1], str(kv[0]))) if n and n != "any"]
    order = ["scalar", "avx2", "avx_vnni", "avx512", "avx512_vnni", "neon", "neon_dot", "neon_fp16"]
    return [n for n in order if n in names and lib.mobrt_isa_supported(_ISA[n])]


def op_table() -> list:
    """The C++ op table, one dict per OpType value: name, inputs/outputs [min, max]
    (max -1: variadic), attrs [{name, kind, presence, default}], kernels [{isa, dtype, dtype1, name}]
    (dtype/dtype1: the input 0 / input 1 dtypes the kernel is registered for, "any" a wildcard)."""
    import json

    lib = _load()
    return [json.loads(lib.mobrt_op_describe(i).decode()) for i in range(lib.mobrt_num_op_types())]


def _view_out(ptr, size: int, dtype, shape) -> np.ndarray:
    """An array of `dtype` and `shape` over the `size` bytes at address `ptr` (no copy:
    valid only while that memory is).

    Reads through a ctypes array over the memory (the buffer protocol), not
    ctypes.string_at, whose size is a C int: 2 GiB and more failed with
    "Negative size" and 4 GiB + n silently gave n bytes."""
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    count = 1
    for d in shape:
        count *= d
    if size != count * dtype.itemsize:
        raise RuntimeError_(f"INTERNAL: output of shape {list(shape)} ({dtype.name}) has {size} bytes, "
                            f"expected {count * dtype.itemsize}", 8)
    if size == 0 or not ptr:
        return np.zeros(shape, dtype=dtype)
    memory = (ctypes.c_char * size).from_address(ptr)
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


def _copy_out(ptr, size: int, dtype, shape) -> np.ndarray:
    """A copy of the runtime's memory at `ptr` as an array (outputs, observed tensors)."""
    return _view_out(ptr, size, dtype, shape).copy()


def _quantization(lib, t):
    """{scales, zero_points, axis (None: per tensor)} of a mobrt_tensor, or None if not quantized."""
    n = lib.mobrt_tensor_quant_scale_count(t)
    if n <= 0:
        return None
    axis = lib.mobrt_tensor_quant_axis(t)
    return {"scales": [float(lib.mobrt_tensor_quant_scale(t, k)) for k in range(n)],
            "zero_points": [int(lib.mobrt_tensor_quant_zero_point(t, k)) for k in range(n)],
            "axis": None if axis < 0 else int(axis)}


def _model_source(model, what: str):
    """(bytes or None, path or None) of a model argument, else ArgumentError."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), None
    try:
        path = os.fspath(model)
    except TypeError:
        raise ArgumentError(f"{what} needs a .mob file path, the file's bytes or a runtime.Model, "
                            f"got {'None' if model is None else type(model).__name__}") from None
    return None, os.fsdecode(path)


class Model:
    """A loaded, verified .mob model (path or bytes), shareable by any number of
    Interpreters on any threads (the C API's mobrt_model). close() refuses while
    interpreters created from it are open; otherwise it is closed when collected.
    `name` (default: the path) starts error messages."""

    def __init__(self, model, name: Optional[str] = None):
        lib = _load()
        self._lib = lib
        self._handle = ctypes.c_void_p()
        self._lock = threading.Lock()
        self._users = 0  # open Interpreters over this model
        self._close_pending = False
        data, path = _model_source(model, "runtime.Model()")
        self.name = name or path
        if data is not None:
            self._buffer = data
            st = lib.mobrt_model_create_from_buffer(self._buffer, len(self._buffer), 1, ctypes.byref(self._handle))
        else:
            st = lib.mobrt_model_create_from_file(path.encode(), ctypes.byref(self._handle))
        if st != 0:
            msg = _named(self.name, lib.mobrt_global_last_error().decode(errors="replace"))
            if st == 2:
                raise ModelFormatError(msg)
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {msg}", st)

    def _require_open(self):
        if not self._handle:
            raise ClosedError(_named(self.name, "the runtime.Model is closed"))

    @property
    def num_operators(self) -> int:
        self._require_open()
        return int(self._lib.mobrt_model_num_operators(self._handle))

    def metadata(self, key: str):
        self._require_open()
        if not isinstance(key, str):
            raise ArgumentError(f"metadata key must be a str, got {type(key).__name__}")
        v = self._lib.mobrt_model_metadata(self._handle, key.encode())
        return None if v is None else v.decode()

    def _tensors(self, is_input: bool) -> list:
        self._require_open()
        lib, h = self._lib, self._handle
        count = lib.mobrt_model_num_inputs(h) if is_input else lib.mobrt_model_num_outputs(h)
        out = []
        for i in range(count):
            t = lib.mobrt_model_input_tensor(h, i) if is_input else lib.mobrt_model_output_tensor(h, i)
            layout = lib.mobrt_model_input_layout(h, i) if is_input else lib.mobrt_model_output_layout(h, i)
            out.append({"name": lib.mobrt_tensor_name(t).decode(), "dtype": _DTYPE_NAMES[lib.mobrt_tensor_dtype(t)],
                        "shape": tuple(int(lib.mobrt_tensor_dim(t, k)) for k in range(lib.mobrt_tensor_rank(t))),
                        "layout": layout.decode(), "quantization": _quantization(lib, t)})
        return out

    @property
    def inputs(self) -> list:
        """[{name, dtype, shape (-1: symbolic), layout ("NCHW", "NHWC" or ""), quantization
        ({scales, zero_points, axis} or None)}] as the file declares them (no interpreter)."""
        return self._tensors(True)

    @property
    def outputs(self) -> list:
        """Like `inputs`, for the graph outputs."""
        return self._tensors(False)

    @property
    def preprocessing(self):
        """{mean, scale, channel_order} the file records for input 0 (model_input =
        (raw[channel_order] - mean) * scale, per channel), or None when it records none."""
        self._require_open()
        lib, h = self._lib, self._handle
        values = {}
        for key, fn in (("mean", lib.mobrt_model_input_mean), ("scale", lib.mobrt_model_input_scale)):
            n = fn(h, 0, None, 0)
            buf = (ctypes.c_float * max(n, 1))()
            fn(h, 0, buf, n)
            values[key] = [float(v) for v in buf[:max(n, 0)]]
        order = lib.mobrt_model_input_channel_order(h, 0)
        values["channel_order"] = order.decode() if order is not None else ""
        if not values["mean"] and not values["scale"] and not values["channel_order"]:
            return None
        return values

    def _acquire(self):
        with self._lock:
            self._require_open()
            self._users += 1

    def _release(self):
        with self._lock:
            self._users -= 1
            close = self._close_pending and self._users == 0
        if close:
            self.close()

    def close(self):
        """Free the model. Refused (RuntimeError_) while interpreters over it are open."""
        with self._lock:
            if self._users:
                raise RuntimeError_(_named(self.name, f"the runtime.Model is still used by {self._users} "
                                                      "open Interpreter(s); close them first"), 1)
            if getattr(self, "_handle", None):
                self._lib.mobrt_model_delete(self._handle)
                self._handle = ctypes.c_void_p()

    def __del__(self):
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        if self._users:  # collected together with its interpreters: the last one closes it
            self._close_pending = True
            return
        try:
            self.close()
        except Exception:
            pass


def _named(name, message: str) -> str:
    """`message` starting with the model's file name, unless it names it already."""
    if not name or name in message:
        return message
    return f"{name}: {message}"


class Interpreter:
    """A .mob model running in the C++ runtime.

    `model` is a path, the file's bytes, or a shared `Model` (kept alive by this
    interpreter; not closed by it). `threads` sets the fixed pool size (1..256);
    `isa` caps kernel instruction sets ("scalar" runs the reference kernels,
    "avx2", "avx_vnni", "avx512", "avx512_vnni", "neon", "neon_dot", "neon_fp16",
    None or "any" for the best the CPU has; see `supported_isas()`);
    `profile=True` records per-op timings for `.profile()`. `name` (default: the
    path) starts every error message, so it names the model file.
    `allow_fp16=True` lets Conv/Gemm/MatMul compute in float16 on CPUs with fp16
    arithmetic (ARMv8.2, isa "neon_fp16"); elsewhere it changes nothing
    (docs/quantization.md, "fp16 compute").

    Inputs follow the rules of `mobconv.feeds`: float inputs take float arrays
    (float64 is cast), integer, bool, complex, string and object arrays are
    refused for them, and a wrong argument raises ArgumentError (also a
    ValueError and a TypeError).

    Threads: one Interpreter may be shared by threads; its calls are serialized
    by a lock (run, invoke, resize, set_input_pointer and close wait for the
    call in progress). For parallel inference create one Interpreter per
    thread over a shared `Model`.
    """

    def __init__(self, model, threads: int = 1, isa: Optional[str] = None, profile: bool = True,
                 name: Optional[str] = None, allow_fp16: bool = False):
        lib = _load()
        self._lib = lib
        self._lock = threading.RLock()
        self._cancel_lock = threading.Lock()  # cancel() vs the delete in close()
        self._depth = 0  # run/invoke calls in progress on the thread holding the lock
        self._model = ctypes.c_void_p()
        self._it = ctypes.c_void_p()
        self._observer = None
        self._observer_error = None
        self._pinned = {}  # input index -> caller array given to set_input_pointer
        self._shared = self._own = None
        threads = check_threads(threads)
        if not isinstance(isa, (str, type(None))) or isa not in _ISA:
            raise ArgumentError(f"isa must be one of {', '.join(k for k in _ISA if k)} or None, got {isa!r}")
        if isinstance(model, Model):
            model._acquire()
            self._shared = model  # keeps the shared model alive; we do not own it
            self.name = name or model.name
            handle = model._handle
        else:
            self._own = Model(model, name=name)
            self.name = self._own.name
            self._own._acquire()
            handle = self._own._handle
        self._model = handle
        opts = lib.mobrt_options_create()
        try:
            self._check_global(lib.mobrt_options_set_num_threads(opts, threads))
            self._check_global(lib.mobrt_options_set_max_isa(opts, _ISA[isa]))
            lib.mobrt_options_set_profiling(opts, 1 if profile else 0)
            lib.mobrt_options_set_allow_fp16(opts, 1 if allow_fp16 else 0)
            st = lib.mobrt_interpreter_create(self._model, opts, ctypes.byref(self._it))
        finally:
            lib.mobrt_options_delete(opts)
        if st != 0:
            msg = _named(self.name, lib.mobrt_global_last_error().decode(errors="replace"))
            self._release_model()
            if st == 2:
                raise ModelFormatError(msg)
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {msg}", st)

    # ---- lifetime
    def _release_model(self):
        model, self._shared = self._shared or self._own, None
        self._model = ctypes.c_void_p()
        if model is not None:
            model._release()
            if model is self._own:
                model.close()
        self._own = None

    def close(self):
        """Free the interpreter (waits for a call in progress on another thread).
        Calls after close raise ClosedError."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed before the lock existed
            return
        with lock:
            if self._depth:
                raise RuntimeError_(_named(self.name, "cannot close the interpreter from its own "
                                                      "observer callback (during run or invoke)"), 1)
            if self._it:
                with self._cancel_lock:
                    self._lib.mobrt_interpreter_delete(self._it)
                    self._it = ctypes.c_void_p()
            self._pinned.clear()
            if self._shared is not None or self._own is not None:
                self._release_model()

    @property
    def closed(self) -> bool:
        return not self._it

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
    def _require_open(self):
        if not self._it:
            raise ClosedError(_named(self.name, "the interpreter is closed"))

    def _check_global(self, st):
        if st != 0:
            msg = _named(getattr(self, "name", None), self._lib.mobrt_global_last_error().decode(errors="replace"))
            if st == 1:
                raise ArgumentError(msg)
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {msg}", st)

    def _check(self, st):
        if st != 0:
            msg = self._lib.mobrt_interpreter_last_error(self._it).decode(errors="replace")
            raise RuntimeError_(f"{_STATUS.get(st, st)}: {_named(self.name, msg)}", st)

    # ---- description
    def _info(self, index, is_input):
        dt, rank = ctypes.c_int(), ctypes.c_int()
        dims = (ctypes.c_int64 * MAX_RANK)()
        fn = self._lib.mobrt_interpreter_input_info if is_input else self._lib.mobrt_interpreter_output_info
        self._check_global(fn(self._it, index, ctypes.byref(dt), ctypes.byref(rank), dims))
        name_fn = self._lib.mobrt_interpreter_input_name if is_input else self._lib.mobrt_interpreter_output_name
        shape = tuple(int(dims[i]) for i in range(rank.value))
        return {"name": name_fn(self._it, index).decode(), "dtype": _DTYPE_NAMES[dt.value], "shape": shape}

    @property
    def inputs(self) -> list:
        """[{name, dtype, shape}] of the graph inputs (-1 for unresolved symbolic dims)."""
        with self._lock:
            self._require_open()
            return [self._info(i, True) for i in range(self._lib.mobrt_interpreter_num_inputs(self._it))]

    @property
    def outputs(self) -> list:
        with self._lock:
            self._require_open()
            return [self._info(i, False) for i in range(self._lib.mobrt_interpreter_num_outputs(self._it))]

    def quantization(self, name):
        """{scales, zero_points, axis (None: per tensor)} of the input or output `name`
        (real = scale * (q - zero_point)), or None when it is not quantized."""
        with self._lock:
            self._require_open()
            lib = self._lib
            for count, get in ((lib.mobrt_interpreter_num_inputs, lib.mobrt_interpreter_input_tensor),
                               (lib.mobrt_interpreter_num_outputs, lib.mobrt_interpreter_output_tensor)):
                for i in range(count(self._it)):
                    t = get(self._it, i)
                    if lib.mobrt_tensor_name(t).decode() == name:
                        return _quantization(lib, t)
            raise ArgumentError(_named(self.name, f"no input or output named {name!r}"))

    def cancel(self):
        """Ask a run() in progress on another thread to stop before its next operator; it
        then raises RuntimeError_ with status CANCELLED (the interpreter stays usable).
        Ignored when no run is in progress. The one method callable while another thread
        is inside run()."""
        with self._cancel_lock:
            if not self._it:
                raise ClosedError(_named(self.name, "the interpreter is closed"))
            self._lib.mobrt_interpreter_cancel(self._it)

    @property
    def arena_bytes(self) -> int:
        with self._lock:
            self._require_open()
            return int(self._lib.mobrt_interpreter_arena_bytes(self._it))

    @property
    def activation_bytes(self) -> int:
        """Sum of all planned activation sizes (what a plan without reuse needs)."""
        with self._lock:
            self._require_open()
            return int(self._lib.mobrt_interpreter_activation_bytes(self._it))

    def _input_index(self, name) -> int:
        if isinstance(name, (int, np.integer)) and not isinstance(name, (bool, np.bool_)):
            count = self._lib.mobrt_interpreter_num_inputs(self._it)
            if not 0 <= name < count:
                raise ArgumentError(_named(self.name, f"input index {int(name)} out of range "
                                                      f"(the model has {count} input(s))"))
            return int(name)
        if not isinstance(name, str):
            raise ArgumentError(_named(self.name, f"an input is named by a str (or its index), "
                                                  f"got {type(name).__name__}"))
        index = self._lib.mobrt_interpreter_input_index(self._it, name.encode())
        if index < 0:
            names = ", ".join(i["name"] for i in self.inputs)
            raise ArgumentError(_named(self.name, f"no input named {name!r} (inputs: {names})"))
        return index

    # ---- running
    def resize(self, name, shape):
        """Give input `name` (or index) a new shape; symbolic dims take any size >= 0."""
        with self._lock:
            self._require_open()
            index = self._input_index(name)
            try:
                dims_list = [operator.index(d) for d in shape]
            except TypeError:
                raise ArgumentError(_named(self.name, f"resize: shape must be a sequence of ints, "
                                                      f"got {shape!r}")) from None
            if any(not -(1 << 63) <= d < (1 << 63) for d in dims_list):
                raise ArgumentError(_named(self.name, f"resize: dims {dims_list} do not fit int64"))
            self._pinned.pop(index, None)
            dims = (ctypes.c_int64 * max(len(dims_list), 1))(*dims_list)
            self._check(self._lib.mobrt_interpreter_resize_input(self._it, index, len(dims_list), dims))

    def _resize_all(self, resizes) -> None:
        """Resize every input before setting any. With several symbolic inputs that must agree
        (Add(x, y) with x and y both [N, 4]) a shape in between can be inconsistent (x at the
        new N, y at the old one): a resize refused then is tried again once all the others are
        applied, and only that verdict counts."""
        refused = []
        for index, shape in resizes:
            try:
                self.resize(index, shape)
            except MobconvError:
                refused.append((index, shape))
        for index, shape in refused:
            self.resize(index, shape)

    def input_symbol(self, name, dim: int):
        """Name of the symbolic dim `dim` of an input ("N"), or None if that dim is fixed."""
        with self._lock:
            self._require_open()
            index = self._input_index(name)
            v = self._lib.mobrt_interpreter_input_dim_symbol(self._it, index, int(dim))
            return None if v is None else v.decode()

    def set_input_pointer(self, name, array):
        """Read input `name` from `array`'s memory on following invokes (no copy).

        The array must be C-contiguous with the input's dtype and current shape;
        this object keeps a reference until another set_input_pointer, a run()
        or resize of that input, or close. None reverts to the internal buffer."""
        with self._lock:
            self._require_open()
            index = self._input_index(name)
            if array is None:
                self._pinned.pop(index, None)
                self._check(self._lib.mobrt_interpreter_set_input_pointer(self._it, index, None, 0))
                return
            info = self.inputs[index]
            if not isinstance(array, np.ndarray) or not array.flags.c_contiguous \
                    or array.dtype != np.dtype(info["dtype"]):
                raise ArgumentError(_named(self.name, f"input {info['name']!r}: set_input_pointer needs a "
                                                      f"C-contiguous {info['dtype']} numpy array"))
            self._check(self._lib.mobrt_interpreter_set_input_pointer(
                self._it, index, array.ctypes.data_as(ctypes.c_void_p), array.nbytes))
            self._pinned[index] = array

    def invoke(self):
        """Run the graph on the inputs already set (set_input_pointer); see outputs_now()."""
        with self._lock:
            self._require_open()
            self._depth += 1
            try:
                self._check(self._lib.mobrt_interpreter_invoke(self._it))
            finally:
                self._depth -= 1

    def outputs_now(self) -> dict:
        """Copies of the outputs of the last invoke (name -> array)."""
        with self._lock:
            self._require_open()
            result = {}
            for index, info in enumerate(self.outputs):
                ptr = self._lib.mobrt_interpreter_output_data(self._it, index)
                size = self._lib.mobrt_interpreter_output_size(self._it, index)
                if size == 0:
                    result[info["name"]] = np.zeros(info["shape"], dtype=info["dtype"])
                    continue
                if not ptr:
                    raise RuntimeError_(_named(self.name, "outputs are not available: invoke first"), 7)
                result[info["name"]] = _copy_out(ptr, size, info["dtype"], info["shape"])
            return result

    def run_with_intermediates(self, feeds: dict) -> dict:
        """Run and return every tensor of the run: the feeds, each operator's outputs
        (intermediates included, as observed right after their operator) and the
        graph outputs; name -> array. The counterpart of the numpy reference's
        run(..., keep_intermediates=True), for calibration and debugging."""
        seen = {name: np.asarray(v) for name, v in check_mapping(feeds, self.name).items()}

        def keep(_index, _name, _type, tensors):
            seen.update(tensors)

        seen.update(self.run(feeds, observer=keep))
        return seen

    def run(self, feeds: dict, observer=None, observe=None) -> dict:
        """Run with `feeds` (name -> array; missing inputs are an error); return name -> array (copies).

        `observer`, if given, is called as observer(op_index, op_name, op_type,
        {output name: array copy}) after every operator of this run (folded
        constant computations included); returning False aborts the run.
        `observe` (a set of tensor names) limits the copies to those tensors."""
        with self._lock:
            self._require_open()
            if observer is not None:
                previous = self._observer
                self.set_observer(observer, observe)
                try:
                    return self.run(feeds)
                finally:
                    self._observer = previous
                    if self._it:
                        self._check(self._lib.mobrt_interpreter_set_observer(self._it, previous or _OBSERVER(), None))
            feeds = check_mapping(feeds, self.name)
            infos = self.inputs
            names = [i["name"] for i in infos]
            unknown = sorted(set(feeds) - set(names))
            if unknown:
                raise ArgumentError(_named(self.name, f"unknown input(s) {', '.join(map(repr, unknown))} "
                                                      f"(inputs: {', '.join(names)})"))
            keep = []
            for index, info in enumerate(infos):
                if info["name"] not in feeds:
                    raise ArgumentError(_named(self.name, f"missing input {info['name']!r} "
                                                          f"(inputs: {', '.join(names)})"))
                dtype = "bfloat16" if info["dtype"] == "uint16" else info["dtype"]  # uint16 = bfloat16 bits
                arr = as_input_array(feeds[info["name"]], dtype, info["name"], self.name, bfloat16_bits=True)
                if not arr.flags.c_contiguous:
                    arr = arr.copy(order="C")
                keep.append(arr)
            self._resize_all([(i, arr.shape) for i, (arr, info) in enumerate(zip(keep, infos))
                              if tuple(arr.shape) != info["shape"]])
            for index, arr in enumerate(keep):
                self._pinned.pop(index, None)
                self._check(self._lib.mobrt_interpreter_set_input(
                    self._it, index, arr.ctypes.data_as(ctypes.c_void_p), arr.nbytes))
            self._observer_error = None
            self._depth += 1
            try:
                status = self._lib.mobrt_interpreter_invoke(self._it)
            finally:
                self._depth -= 1
            if self._observer_error is not None:
                error, self._observer_error = self._observer_error, None
                raise error
            self._check(status)
            return self.outputs_now()

    def profile(self) -> list:
        """[(op name, op type, milliseconds)] of the last run."""
        with self._lock:
            self._require_open()
            out = []
            entry = _ProfileEntry()
            for i in range(self._lib.mobrt_interpreter_profile_count(self._it)):
                self._check_global(self._lib.mobrt_interpreter_profile_entry(self._it, i, ctypes.byref(entry)))
                out.append((entry.op_name.decode(), entry.op_type.decode(), entry.microseconds / 1000.0))
            return out

    def kernels(self) -> list:
        """[(op name, op type, kernel name)] of the ops the last run executed: which
        registered kernel (and so which instruction set) each op was given."""
        with self._lock:
            self._require_open()
            out = []
            entry = _ProfileEntry()
            for i in range(self._lib.mobrt_interpreter_profile_count(self._it)):
                self._check_global(self._lib.mobrt_interpreter_profile_entry(self._it, i, ctypes.byref(entry)))
                out.append((entry.op_name.decode(), entry.op_type.decode(), (entry.kernel or b"?").decode()))
            return out

    def set_observer(self, fn, observe=None):
        """Call fn(op_index, op_name, op_type, {tensor name: array copy}) after each op; None removes it.
        With `observe` (a set of tensor names) only those outputs are copied and passed."""
        with self._lock:
            self._require_open()
            if fn is None:
                self._observer = None
                self._check(self._lib.mobrt_interpreter_set_observer(self._it, _OBSERVER(), None))
                return
            if not callable(fn):
                raise ArgumentError(_named(self.name, f"observer must be callable, got {type(fn).__name__}"))

            def trampoline(_user, op_index, op_name, op_type, n, infos):
                try:
                    tensors = {}
                    for k in range(n):
                        t = infos[k]
                        if observe is not None and t.name.decode() not in observe:
                            continue
                        shape = tuple(t.dims[d] for d in range(t.rank))
                        tensors[t.name.decode()] = _copy_out(t.data, t.size, _DTYPES[t.dtype], shape)
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
