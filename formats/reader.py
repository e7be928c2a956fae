""".mob bytes -> IR Graph, checking everything before trusting it.

    graph = from_bytes(data, source="model.mob")   # bytes, bytearray, memoryview, mmap
    graph = read_model("model.mob")                 # mmaps the file

The rules a file must follow are written once, in docs/format-rules.md
(numbered S1-S8, M1-M3, T1-T7, C1-C7, G1-G3, O1-O6, V1); this reader and the C++
runtime's loader (runtime/src/core/file_structure.cpp, model.cpp) implement
each of them with the same message, and accept exactly the same files
(tests/test_format_rules_differential.py feeds both one corpus).

Order of checks (each failure is a one-line ModelFormatError naming the file):
  1. size and file identifier ("MOB1"): anything else is "not a mobconv model file";
  2. the root table and its version fields, then the version rule (formats/version.py):
     a newer major version is refused with an "upgrade mobconv" message;
  3. a structural walk (`_Verifier`) over every table, vector and string the
     schema reaches, checking each offset, length, alignment and string (UTF-8)
     against the buffer (the Python flatbuffers package has no verifier; the C++
     runtime runs the same walk, then the FlatBuffers verifier);
  4. semantic checks while building the IR: enum values known, shape limits,
     tensor / buffer / attribute indices in range, constant byte size ==
     prod(shape) * itemsize, compressed constants (format 1.1: sizes, mask
     popcount, palette indices; decoded to dense arrays with their Value.storage
     restored), quantization consistent with the axis dim, names
     unique, op versions, arity and attribute kinds the op registry declares,
     topological order with one producer per tensor, a signature that matches
     the graph, embedded test vectors consistent.
Only after 1-3 pass are the generated accessors (formats/fb) used to read.

Constants come back as numpy arrays copied out of the file (so it can be
closed); tensors that share one buffer share one copy (views of it).
bfloat16 tensors come back as uint16 arrays of the raw bits (formats/dtypes.py).
Floats are stored as float32 and come back as the exact stored value (a Python
float): lossless for values that came from ONNX/Caffe/TF (float32 already);
a Python-written 0.1 reads back as 0.10000000149011612.
Tensors referenced only by TENSOR attributes become those attributes' arrays,
not graph values.
"""
from __future__ import annotations

import math
import mmap
import os
import struct

import numpy as np

from mobconv.errors import ModelFormatError
from mobconv.ops.registry import REQUIRED
from mobconv.ir.graph import (PALETTE_BITS, Graph, Metadata, Node, Preprocessing, QuantParams,
                              Signature, TensorSpec, TestVector, Value, WeightStorage)

from . import dtypes
from .fb.AttrType import AttrType
from .fb.Model import Model
from .fb.OpType import OpType
from .fb.StorageKind import StorageKind
from .version import FILE_IDENTIFIER, check_version

# ---- the schema's table layouts, for the structural walk ------------------------
# One entry per field in declaration order (= vtable slot order). Kinds:
#   ("scalar", size), ("string",), ("table", T), ("vector", elem_size),
#   ("strings",) a vector of strings, ("tables", T) a vector of tables.
# tests/test_schema_rules.py checks this against formats/mobconv.fbs.
_S1, _S4, _S8 = ("scalar", 1), ("scalar", 4), ("scalar", 8)
_STR = ("string",)
LAYOUT = {
    "Dim": [("value", _S8), ("symbol", _STR)],
    "Quantization": [("scales", ("vector", 4)), ("zero_points", ("vector", 8)), ("axis", _S4)],
    "Tensor": [("name", _STR), ("dtype", _S1), ("shape", ("tables", "Dim")), ("buffer", _S4),
               ("quantization", ("table", "Quantization")),
               ("compressed", ("table", "CompressedData"))],
    "Buffer": [("data", ("vector", 1))],
    "Attribute": [("name", _STR), ("type", _S1), ("i", _S8), ("f", _S4), ("s", _STR),
                  ("ints", ("vector", 8)), ("floats", ("vector", 4)), ("strings", ("strings",)),
                  ("tensor", _S4)],
    "Operator": [("type", _S4), ("version", _S4), ("name", _STR), ("inputs", ("vector", 4)),
                 ("outputs", ("vector", 4)), ("attributes", ("tables", "Attribute"))],
    "Graph": [("name", _STR), ("tensors", ("tables", "Tensor")),
              ("operators", ("tables", "Operator")), ("inputs", ("vector", 4)),
              ("outputs", ("vector", 4))],
    "Preprocessing": [("mean", ("vector", 4)), ("scale", ("vector", 4)),
                      ("channel_order", _STR)],
    "SignatureTensor": [("name", _STR), ("dtype", _S1), ("shape", ("tables", "Dim")),
                        ("layout", _STR)],
    "Signature": [("inputs", ("tables", "SignatureTensor")),
                  ("outputs", ("tables", "SignatureTensor")),
                  ("preprocessing", ("table", "Preprocessing"))],
    "KeyValue": [("key", _STR), ("value", _STR)],
    "Metadata": [("producer", _STR), ("converter_version", _STR), ("source_framework", _STR),
                 ("source_sha256", _STR), ("min_runtime_version", _STR),
                 ("options", ("tables", "KeyValue")), ("extra", ("tables", "KeyValue"))],
    "NamedArray": [("name", _STR), ("dtype", _S1), ("shape", ("vector", 8)),
                   ("data", ("vector", 1))],
    "TestVector": [("inputs", ("tables", "NamedArray")), ("outputs", ("tables", "NamedArray")),
                   ("rtol", _S4), ("atol", _S4)],
    "Model": [("version_major", _S4), ("version_minor", _S4), ("graph", ("table", "Graph")),
              ("buffers", ("tables", "Buffer")), ("signature", ("table", "Signature")),
              ("metadata", ("table", "Metadata")), ("test_vectors", ("tables", "TestVector"))],
    "CompressedData": [("kind", _S1), ("values", _S4), ("mask", _S4), ("palette", _S4),
                       ("index_bits", _S1)],
}
# Smallest possible file: root offset, identifier, a 4-byte vtable and a table.
MIN_SIZE = 16
# Largest file a FlatBuffer can address (rule S2).
MAX_SIZE = 2**31 - 1
# Compressed constants decode to at most this many times the file size in total (C7).
DECODE_RATIO = 64
# Shape limits (rules T3, T4): the C API's MOBRT_MAX_RANK, a dim's largest size,
# the largest product of a shape's non-zero fixed dims. The number of tensors (M2).
MAX_RANK = 8
MAX_DIM = 1 << 40
MAX_ELEMENTS = 1 << 48
MAX_TENSORS = 1 << 24
_U16, _U32, _I32 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<i")


class _Verifier:
    """Bounded walk over a FlatBuffer: every offset and length is checked before use."""

    def __init__(self, buf: memoryview, source: str):
        self.buf, self.n, self.source = buf, len(buf), source
        # Bytes of tables, vectors and strings reached, counting repeats. A file
        # written by mobconv reaches each byte once; a crafted file whose offsets
        # all point at one big table would otherwise make decoding explode.
        self.budget = 2 * self.n + 1024

    def spend(self, nbytes: int, what: str) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            self.fail(f"{what} is referenced so many times that the file would decode to more "
                      "than twice its size")

    def fail(self, problem: str):
        raise ModelFormatError(f"{self.source}: corrupt model file ({problem})")

    def _get(self, fmt: struct.Struct, pos: int, what: str) -> int:
        if pos < 0 or pos + fmt.size > self.n:
            self.fail(f"{what} at byte {pos} lies outside the {self.n}-byte file")
        return fmt.unpack_from(self.buf, pos)[0]

    def _target(self, pos: int, what: str) -> int:
        """Follow the uoffset stored at `pos`."""
        if pos % 4:
            self.fail(f"misaligned offset to {what} at byte {pos}")
        off = self._get(_U32, pos, f"offset to {what}")
        if off == 0 or off >= 2**31:
            self.fail(f"offset to {what} at byte {pos} is {off}, not in [1, 2^31)")
        target = pos + off
        if target >= self.n:
            self.fail(f"offset to {what} at byte {pos} points past the end of the file")
        return target

    def table_fields(self, pos: int, name: str) -> tuple:
        """Check the table header at `pos`; return (vtable pos, vtable size)."""
        if pos % 4:
            self.fail(f"misaligned {name} table at byte {pos}")
        vtable = pos - self._get(_I32, pos, f"{name} table")
        if vtable % 2:
            self.fail(f"misaligned vtable of {name} table at byte {pos}")
        vsize = self._get(_U16, vtable, f"vtable of {name} table")
        tsize = self._get(_U16, vtable + 2, f"vtable of {name} table")
        if vsize < 4 or vsize % 2 or vtable + vsize > self.n:
            self.fail(f"bad vtable size {vsize} for {name} table at byte {pos}")
        if tsize < 4 or pos + tsize > self.n:
            self.fail(f"{name} table at byte {pos} ({tsize} bytes) runs past the end of the file")
        return vtable, vsize, tsize

    def field_pos(self, pos: int, name: str, slot: int, header: tuple, size: int) -> int:
        """Absolute position of field `slot` of the table at `pos`, or 0 if absent."""
        vtable, vsize, tsize = header
        if 4 + 2 * slot >= vsize:
            return 0
        off = _U16.unpack_from(self.buf, vtable + 4 + 2 * slot)[0]
        if off == 0:
            return 0
        if off < 4 or off + size > tsize:
            self.fail(f"field {LAYOUT[name][slot][0]!r} of {name} table at byte {pos} lies "
                      "outside the table")
        if (pos + off) % size:
            self.fail(f"misaligned field {LAYOUT[name][slot][0]!r} of {name} table at byte {pos}")
        return pos + off

    def table(self, pos: int, name: str) -> None:
        header = self.table_fields(pos, name)
        self.spend(header[2], f"{name} table at byte {pos}")
        for slot, (field, kind) in enumerate(LAYOUT[name]):
            size = kind[1] if kind[0] == "scalar" else 4
            fpos = self.field_pos(pos, name, slot, header, size)
            if fpos and kind[0] != "scalar":
                self.reference(self._target(fpos, f"{name}.{field}"), kind, f"{name}.{field}")

    def reference(self, target: int, kind: tuple, what: str) -> None:
        if kind[0] == "table":
            self.table(target, kind[1])
            return
        if kind[0] == "string":
            self.string(target, what)
            return
        elem = kind[1] if kind[0] == "vector" else 4
        length = self.vector(target, elem, what)
        if kind[0] in ("strings", "tables"):
            for k in range(length):
                e = target + 4 + 4 * k
                if kind[0] == "strings":
                    self.string(self._target(e, what), what)
                else:
                    self.table(self._target(e, what), kind[1])

    def vector(self, pos: int, elem: int, what: str) -> int:
        if pos % 4:
            self.fail(f"misaligned vector {what} at byte {pos}")
        length = self._get(_U32, pos, f"length of {what}")
        if length > (self.n - pos - 4) // elem:
            self.fail(f"vector {what} at byte {pos} ({length} elements) runs past the end of "
                      "the file")
        self.spend(4 + length * elem, f"vector {what} at byte {pos}")
        return length

    def string(self, pos: int, what: str) -> None:
        length = self.vector(pos, 1, what)
        end = pos + 4 + length
        if end >= self.n or self.buf[end] != 0:
            self.fail(f"string {what} at byte {pos} is not terminated")
        try:
            bytes(self.buf[pos + 4:end]).decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"string {what} at byte {pos} is not valid UTF-8")


# ---- entry points --------------------------------------------------------------------


def read_model(path) -> Graph:
    """Read a .mob file (memory-mapped) into an IR Graph."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < MIN_SIZE:
                return from_bytes(f.read(), source)
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise ModelFormatError(f"{source}: cannot read model file ({e.strerror or e})") from None
    graph = from_bytes(memoryview(mapped), source)
    try:
        mapped.close()
    except BufferError:  # a view is still alive somewhere; the GC unmaps it later
        pass
    return graph


def from_bytes(data, source: str = "<bytes>") -> Graph:
    """Parse .mob bytes (bytes, bytearray, memoryview or mmap) into an IR Graph."""
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    if len(buf) == 0:
        raise ModelFormatError(f"{source}: empty file, not a mobconv model")
    ident = bytes(buf[4:8])
    if len(buf) < 8 or ident != FILE_IDENTIFIER:
        shown = ident if len(buf) >= 8 else bytes(buf[:8])
        raise ModelFormatError(f"{source}: not a mobconv model file (bad identifier {shown!r}, "
                               f"expected {FILE_IDENTIFIER!r})")
    if len(buf) < MIN_SIZE:
        raise ModelFormatError(f"{source}: truncated model file ({len(buf)} bytes)")
    if len(buf) >= MAX_SIZE:
        raise ModelFormatError(f"{source}: file is larger than 2 GiB")
    verifier = _Verifier(buf, source)
    root = verifier._target(0, "root table")
    header = verifier.table_fields(root, "Model")
    versions = []
    for slot in (0, 1):
        fpos = verifier.field_pos(root, "Model", slot, header, 4)
        versions.append(_U32.unpack_from(buf, fpos)[0] if fpos else 0)
    check_version(versions[0], versions[1], source)
    verifier.table(root, "Model")
    try:
        return _Decoder(buf, root, source).graph()
    except ModelFormatError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError, TypeError, KeyError) as e:
        # The walk above should make these impossible; never let one escape raw.
        raise ModelFormatError(f"{source}: corrupt model file ({type(e).__name__}: {e})") from None


# ---- decoding (after verification) ---------------------------------------------------

_OP_NAMES = {v: k for k, v in vars(OpType).items() if not k.startswith("_") and isinstance(v, int)}


def _arity(names) -> tuple:
    """(min, max or None) inputs/outputs of a registry name list, as the C++ op table
    has them: "x?" is optional, "xs*" a variadic tail; an op whose only group is
    variadic ("inputs*") takes at least one (checked by tests/test_runtime_schema.py)."""
    lo = sum(1 for n in names if not n.endswith(("?", "*")))
    variadic = any(n.endswith("*") for n in names)
    return (max(lo, 1) if variadic else lo), (None if variadic else len(names))


def _arity_text(lo: int, hi) -> str:
    if hi is None:
        return f"at least {lo}"
    return str(lo) if lo == hi else f"{lo} to {hi}"


def _kind_compatible(declared: str, a) -> bool:
    """Does the stored attribute `a` satisfy a declaration of kind `declared` (rule O6)?
    As the C++ loader: an integral float serves as INT, INTS serve as FLOATS."""
    kind = a.Type()
    if declared == "INT":
        if kind == AttrType.FLOAT:
            f = np.float32(a.F())
            return bool(np.isfinite(f) and np.floor(f) == f and abs(f) < np.float32(9.0e18))
        return kind == AttrType.INT
    if declared == "FLOAT":
        return kind in (AttrType.FLOAT, AttrType.INT)
    if declared == "FLOATS":
        return kind in (AttrType.FLOATS, AttrType.INTS)
    return kind == getattr(AttrType, declared)


def _f32(x) -> float:
    """The exact value of a stored float32, as a Python float."""
    return float(np.float32(x))


def _text(raw) -> str:
    return "" if raw is None else bytes(raw).decode("utf-8")


def shape_problem(shape) -> str:
    """Why `shape` (ints, str for symbolic dims) breaks rules T3/T4, or "" if fine."""
    if len(shape) > MAX_RANK:
        return f"rank {len(shape)} exceeds the maximum {MAX_RANK}"
    elements = 1
    for d, size in enumerate(shape):
        if isinstance(size, str):
            continue
        if not 0 <= size <= MAX_DIM:
            return f"dim {d} has invalid size {size} (must be in [0, 2^40])"
        if size:
            elements *= size
        if elements > MAX_ELEMENTS:
            return "declared shape has more than 2^48 elements"
    return ""


def quant_problem(n_scales: int, n_zero_points: int, axis, shape) -> str:
    """Why these quantization parameters are inconsistent with `shape` (rule T7), or ""."""
    if n_scales == 0:
        return "quantization has no scales"
    if n_zero_points not in (0, n_scales):
        return f"quantization has {n_scales} scales but {n_zero_points} zero points"
    if axis is None:
        return "" if n_scales == 1 else f"per-tensor quantization has {n_scales} scales"
    if shape is None:
        return "per-axis quantization needs a shape"
    if not 0 <= axis < len(shape):
        return f"quantization axis {axis} is out of range for rank {len(shape)}"
    dim = shape[axis]
    if isinstance(dim, int) and dim != n_scales:
        return f"per-axis quantization has {n_scales} scales for axis {axis} of size {dim}"
    return ""


class _Decoder:
    def __init__(self, buf, root: int, source: str):
        self.buf, self.source = buf, source
        self.model = Model()
        self.model.Init(buf, root)
        self.attr_tensor_refs: set = set()  # tensor indices that TENSOR attributes use
        self.copies: dict = {}  # buffer index -> its bytes, copied out of the file
        self.decoded: dict = {}  # compressed fields -> the decoded data (shared)
        self.decoded_storage: dict = {}
        # Rule C7: what compressed constants may decode to, in total (a writer's file
        # needs at most 64 x the file: 1 mask or index bit per element of <= 8 bytes).
        self.decode_budget = DECODE_RATIO * len(buf)

    def fail(self, problem: str):
        raise ModelFormatError(f"{self.source}: {problem}")

    def text(self, raw, what: str) -> str:
        try:
            return _text(raw)
        except UnicodeDecodeError:
            self.fail(f"{what} is not valid UTF-8")

    def dtype(self, code: int, what: str) -> str:
        try:
            return dtypes.from_enum(code)
        except KeyError:
            self.fail(f"{what} has unknown dtype code {code}")

    def dims(self, obj, what: str):
        """A [Dim] vector as a tuple (str for symbolic dims), None if absent (rule T3/T4)."""
        if obj.ShapeIsNone():
            return None
        rank = obj.ShapeLength()
        if rank > MAX_RANK:
            self.fail(f"{what}: rank {rank} exceeds the maximum {MAX_RANK}")
        shape = []
        for j in range(rank):
            d = obj.Shape(j)
            sym = d.Symbol()
            if sym is not None:
                if not len(sym):
                    self.fail(f"{what}: dim {j} has an empty symbol")
                shape.append(self.text(sym, f"{what} shape"))
            else:
                shape.append(d.Value())
        problem = shape_problem(shape)
        if problem:
            self.fail(f"{what}: {problem}")
        return tuple(shape)

    # -- model parts --
    def graph(self) -> Graph:
        m = self.model
        fg = m.Graph()
        if fg is None:
            self.fail("model has no graph")
        graph = Graph(self.text(fg.Name(), "graph name"))
        self.read_graph(fg, graph)
        self.read_signature(m.Signature(), graph)
        if m.Metadata() is not None:
            graph.metadata = self.read_metadata(m.Metadata())
        graph.test_vectors = [self.read_test_vector(m.TestVectors(i), i)
                              for i in range(m.TestVectorsLength())]
        return graph

    def buffers(self) -> list:
        """Each buffer's bytes as a uint8 view into the file (copied on first use)."""
        m = self.model
        result = []
        for i in range(m.BuffersLength()):
            b = m.Buffers(i)
            data = b.DataAsNumpy() if not b.DataIsNone() else np.zeros(0, np.uint8)
            if i == 0 and data.size:
                self.fail(f"buffer 0 must be empty, has {data.size} bytes")
            if data.size:  # where the bytes start in the file, for the alignment rule (T6)
                data = (data, b._tab.Vector(b._tab.Offset(4)))
            else:
                data = (data, 0)
            result.append(data)
        return result

    def buffer_copy(self, buffers: list, i: int) -> np.ndarray:
        """A private copy of buffer i, made once: tensors sharing a buffer share its copy."""
        if i not in self.copies:
            self.copies[i] = buffers[i][0].copy()
        return self.copies[i]

    def read_tensor(self, t, i: int, buffers: list) -> Value:
        name = self.text(t.Name(), f"tensor {i} name")
        what = f"tensor {i} ({name!r})"
        if not name:
            self.fail(f"tensor {i} has no name")
        dtype = self.dtype(t.Dtype(), what)
        shape = self.dims(t, what)
        data = None
        if t.Buffer() >= max(len(buffers), 1):
            self.fail(f"{what} refers to buffer {t.Buffer()}, but the file has {len(buffers)}")
        if t.Buffer() != 0:
            raw, pos = buffers[t.Buffer()]
            if shape is None or any(isinstance(d, str) for d in shape):
                self.fail(f"{what}: a constant tensor needs a fully known shape")
            expected = math.prod(shape) * dtypes.itemsize(dtype)
            if raw.size != expected:
                self.fail(f"{what} has {raw.size} bytes of data, expected {expected} "
                          f"for {dtype}{list(shape)}")
            if raw.size and pos % dtypes.itemsize(dtype):
                self.fail(f"{what}: buffer {t.Buffer()} data is not aligned to its element size")
            raw = self.buffer_copy(buffers, t.Buffer())
            data = raw.view(dtypes.storage_dtype(dtype)).reshape(shape)
            data = data.astype(data.dtype.newbyteorder("="), copy=False)
        storage = None
        cd = t.Compressed()
        if cd is not None:  # rules C1-C7
            if t.Buffer() != 0:
                self.fail(f"{what}: a compressed tensor must have buffer 0, has buffer "
                          f"{t.Buffer()}")
            if shape is None or any(isinstance(d, str) for d in shape):
                self.fail(f"{what}: a constant tensor needs a fully known shape")
            data, storage = self.decompress(cd, dtype, shape, buffers, what)
        quant = None
        q = t.Quantization()
        if q is not None:
            axis = None if q.Axis() == -1 else q.Axis()
            scales = [] if q.ScalesIsNone() else [_f32(s) for s in q.ScalesAsNumpy()]
            zps = [] if q.ZeroPointsIsNone() else [int(z) for z in q.ZeroPointsAsNumpy()]
            problem = quant_problem(len(scales), len(zps), axis, shape)
            if problem:
                self.fail(f"{what}: {problem}")
            if not zps:  # absent zero points mean 0 (the writer omits an all-zero vector)
                zps = [0] * len(scales)
            quant = QuantParams(scales, zps, axis)
        return Value(name, dtype, shape, data, quant, storage)

    def decompress(self, cd, dtype: str, shape: tuple, buffers: list, what: str) -> tuple:
        """(dense data, WeightStorage) of a compressed constant, after checking every size
        (in Python integers, from the shape, before anything the size of the dense tensor
        is allocated). The same rules and messages as the C++ loader
        (runtime/src/core/compressed_weights.cpp). Tensors with identical compressed
        data share one decoded copy, as tensors sharing a buffer share one copy."""
        kind = cd.Kind()
        if kind not in (StorageKind.SPARSE_BITMASK, StorageKind.PALETTE):
            self.fail(f"{what}: compressed data has unknown storage kind {kind}")
        sparse = kind == StorageKind.SPARSE_BITMASK
        kname = "SPARSE_BITMASK" if sparse else "PALETTE"
        side_index = cd.Mask() if sparse else cd.Palette()
        for index, part in ((cd.Values(), "values refer"),
                            (side_index, "mask refers" if sparse else "palette refers")):
            if index >= max(len(buffers), 1):
                self.fail(f"{what}: compressed {part} to buffer {index}, but the file has "
                          f"{len(buffers)}")
        empty = np.zeros(0, np.uint8)
        values = buffers[cd.Values()][0] if cd.Values() else empty
        side = buffers[side_index][0] if side_index else empty
        numel = math.prod(shape)
        esize = dtypes.itemsize(dtype)
        bits = 0 if sparse else cd.IndexBits()
        key = (kind, cd.Values(), side_index, bits, dtype, numel)
        if key in self.decoded:
            return self.decoded[key].reshape(shape), self.decoded_storage[key]
        if sparse:
            need = (numel + 7) // 8
            if side.size != need:
                self.fail(f"{what}: {kname} mask has {side.size} bytes, expected {need} for "
                          f"{numel} elements")
            if numel % 8 and int(side[need - 1]) >> (numel % 8):
                self.fail(f"{what}: {kname} mask has bits set past element {numel}")
            keep = np.unpackbits(side, bitorder="little", count=numel).view(bool)
            stored = int(np.count_nonzero(keep))
            if values.size != stored * esize:
                self.fail(f"{what}: {kname} has {values.size} bytes of values, expected "
                          f"{stored * esize} for the mask's {stored} {dtype} elements")
            self.spend_decode(numel * esize, what)
            data = self.dense(numel, dtype, what)
            data[keep] = values.view(dtypes.storage_dtype(dtype))
            storage = WeightStorage("sparse")
        else:
            if bits not in PALETTE_BITS:
                self.fail(f"{what}: {kname} index_bits is {bits}, must be 1, 2, 4 or 8")
            if side.size % esize:
                self.fail(f"{what}: {kname} palette has {side.size} bytes, not a whole number "
                          f"of {dtype} elements")
            k = side.size // esize
            if not 1 <= k <= 1 << bits:
                self.fail(f"{what}: {kname} palette has {k} entries, must be 1 to {1 << bits} "
                          f"for {bits}-bit indices")
            need = (numel * bits + 7) // 8
            if values.size != need:
                self.fail(f"{what}: {kname} indices have {values.size} bytes, expected {need} "
                          f"for {numel} {bits}-bit indices")
            tail = numel * bits % 8
            if tail and int(values[need - 1]) >> tail:
                self.fail(f"{what}: {kname} indices have bits set past element {numel}")
            self.spend_decode(numel * esize, what)
            indices = dtypes.unpack_indices(values, bits, numel)
            bad = np.flatnonzero(indices >= k)
            if bad.size:
                self.fail(f"{what}: {kname} index of element {int(bad[0])} is out of range for "
                          f"a palette of {k} entries")
            data = self.dense(numel, dtype, what)
            data[:] = side.view(dtypes.storage_dtype(dtype))[indices]
            storage = WeightStorage("palette", bits)
        data = data.astype(data.dtype.newbyteorder("="), copy=False)
        self.decoded[key], self.decoded_storage[key] = data, storage
        return data.reshape(shape), storage

    def spend_decode(self, nbytes: int, what: str) -> None:
        """Rule C7, before the allocation: a crafted file whose tensors point at one big
        mask or index buffer cannot make the reader allocate unboundedly."""
        self.decode_budget -= nbytes
        if self.decode_budget < 0:
            self.fail(f"{what}: compressed constants decode to more than {DECODE_RATIO} times "
                      f"the file size ({len(self.buf)} bytes)")

    def dense(self, numel: int, dtype: str, what: str) -> np.ndarray:
        """A zeroed array for a decoded tensor (its size passed every rule: it is at most
        64 x the bytes of its compressed parts)."""
        try:
            return np.zeros(numel, dtypes.storage_dtype(dtype))
        except MemoryError:
            raise ModelFormatError(f"{self.source}: {what}: cannot allocate "
                                   f"{numel * dtypes.itemsize(dtype)} bytes to decode its "
                                   "compressed data") from None

    def read_graph(self, fg, graph: Graph) -> None:
        buffers = self.buffers()
        n = fg.TensorsLength()
        if n > MAX_TENSORS:
            self.fail(f"too many tensors ({n}, at most 2^24)")
        tensors = []
        names = set()
        for i in range(n):  # rules T1-T7
            v = self.read_tensor(fg.Tensors(i), i, buffers)
            if v.name in names:
                self.fail(f"tensor name {v.name!r} is used twice")
            names.add(v.name)
            tensors.append(v)
        self.tensors = tensors

        def io_list(values, what):
            result = []
            for k in values:
                k = int(k)
                if not 0 <= k < n:
                    self.fail(f"{what} refers to tensor {k}, but the graph has {n}")
                result.append(k)
            return result

        g_in = io_list(fg.InputsAsNumpy() if not fg.InputsIsNone() else [], "graph input")
        g_out = io_list(fg.OutputsAsNumpy() if not fg.OutputsIsNone() else [], "graph output")
        defined = {i for i, v in enumerate(tensors) if v.data is not None}
        for k in g_in:  # rule G1
            if tensors[k].data is not None:
                self.fail(f"graph input tensor {k} ({tensors[k].name!r}) has constant data")
            if k in defined:
                self.fail(f"graph input tensor {k} ({tensors[k].name!r}) is listed twice")
            defined.add(k)

        used = set(g_in + g_out)
        ops = []
        from mobconv.ops import load_all

        registry = load_all()
        for i in range(fg.OperatorsLength()):  # rules O1-O6
            o = fg.Operators(i)
            op = _OP_NAMES.get(o.Type())
            name = self.text(o.Name(), f"operator {i} name")
            what = f"operator {i} ({name!r})"
            spec = registry.get(op) if op is not None else None
            if spec is None:
                self.fail(f"{what} has unknown op type {o.Type()}; upgrade mobconv")
            what = f"operator {i} ({name!r}, {op})"
            if o.Version() < 1:
                self.fail(f"{what}: version {o.Version()} is invalid (versions start at 1)")
            if o.Version() > spec.version:
                self.fail(f"{what} uses {op} version {o.Version()}, this mobconv implements up "
                          f"to {spec.version}; upgrade mobconv")
            raw_in = o.InputsAsNumpy() if not o.InputsIsNone() else []
            raw_out = o.OutputsAsNumpy() if not o.OutputsIsNone() else []
            (min_in, max_in), (min_out, max_out) = _arity(spec.inputs), _arity(spec.outputs)
            for count, lo, hi, verb, noun in ((len(raw_in), min_in, max_in, "takes", "input"),
                                              (len(raw_out), min_out, max_out, "has", "output")):
                if count < lo or (hi is not None and count > hi):
                    self.fail(f"{what}: {verb} {_arity_text(lo, hi)} {noun}(s), got {count}")
            ins, outs = [], []
            for j, k in enumerate(int(k) for k in raw_in):
                if not -1 <= k < n:
                    self.fail(f"{what} input refers to tensor {k}, but the graph has {n}")
                if k == -1 and j < min_in:
                    self.fail(f"{what}: required input {j} is absent")
                if k >= 0 and k not in defined:
                    self.fail(f"{what}: input {j} reads tensor {k} ({tensors[k].name!r}) before "
                              "anything defines it (operators must be in topological order; a "
                              "cycle or a missing producer)")
                ins.append(k if k >= 0 else "")
            for j, k in enumerate(int(k) for k in raw_out):
                if not -1 <= k < n:
                    self.fail(f"{what} output refers to tensor {k}, but the graph has {n}")
                if k == -1 and j < min_out:
                    self.fail(f"{what}: required output {j} is absent")
                if k >= 0 and k in defined:
                    self.fail(f"{what}: output {j} writes tensor {k} ({tensors[k].name!r}), which "
                              "is already defined (a constant, graph input or another operator's "
                              "output)")
                if k >= 0:
                    defined.add(k)
                outs.append(k if k >= 0 else "")
            used.update(k for k in ins + outs if k != "")
            attrs = {}
            for j in range(o.AttributesLength()):
                a = o.Attributes(j)
                aname = self.text(a.Name(), f"{what} attribute name")
                if not aname:
                    self.fail(f"{what} has an attribute without a name")
                if aname in attrs:
                    self.fail(f"{what}: attribute {aname!r} appears twice")
                attrs[aname] = self.attribute(a, f"{what}: attribute {aname!r}", tensors)
                decl = spec.attr_index.get(aname)
                if decl is not None and not _kind_compatible(decl.kind.name, a):
                    self.fail(f"{what}: attribute {aname!r} must be {decl.kind.name}")
            for decl in spec.attrs:
                if decl.default is REQUIRED and decl.name not in attrs:
                    self.fail(f"{what}: required attribute {decl.name!r} is missing")
            ops.append((op, name, ins, outs, attrs))
        if not g_out:  # rule G2
            self.fail("graph has no outputs")
        for k, t in enumerate(g_out):
            if t not in defined:
                self.fail(f"graph output {k} ({tensors[t].name!r}) is not produced by any "
                          "operator")
        self.io = {"input": g_in, "output": g_out}

        attr_only = {i for i in self.attr_tensor_refs if i not in used}
        for i, v in enumerate(tensors):
            if i not in attr_only:
                graph.values[v.name] = v

        def names_of(idx):
            return [tensors[k].name if k != "" else "" for k in idx]

        graph.nodes = [Node(op, name, names_of(ins), names_of(outs), attrs)
                       for op, name, ins, outs, attrs in ops]
        graph.inputs, graph.outputs = names_of(g_in), names_of(g_out)

    def attribute(self, a, what: str, tensors: list):
        kind = a.Type()
        if kind == AttrType.INT:
            return int(a.I())
        if kind == AttrType.FLOAT:
            return _f32(a.F())
        if kind == AttrType.STRING:
            return self.text(a.S(), what)
        if kind == AttrType.INTS:
            return [] if a.IntsIsNone() else [int(v) for v in a.IntsAsNumpy()]
        if kind == AttrType.FLOATS:
            return [] if a.FloatsIsNone() else [_f32(v) for v in a.FloatsAsNumpy()]
        if kind == AttrType.STRINGS:
            return [self.text(a.Strings(k), what) for k in range(a.StringsLength())]
        if kind == AttrType.TENSOR:
            k = a.Tensor()
            if not 0 <= k < len(tensors):
                self.fail(f"{what} refers to tensor {k}, but the graph has {len(tensors)}")
            if tensors[k].data is None:
                self.fail(f"{what} refers to tensor {k}, which has no constant data")
            self.attr_tensor_refs.add(k)
            return tensors[k].data
        self.fail(f"{what} has unknown attribute type {kind}")

    def read_spec(self, s, what: str) -> TensorSpec:
        name = self.text(s.Name(), f"{what} name")
        return TensorSpec(name, self.dtype(s.Dtype(), f"{what} ({name!r})"),
                          self.dims(s, f"{what} ({name!r})") or (),
                          self.text(s.Layout(), f"{what} layout"))

    def read_specs(self, n: int, get, kind: str) -> list:
        """Signature inputs or outputs (rule G3): none, or one per graph input (output), in
        order, with that tensor's name, dtype and shape (a dim: same size or same symbol)."""
        io = self.io[kind]
        if n and n != len(io):
            self.fail(f"signature lists {n} {kind}(s), but the graph has {len(io)}")
        specs = []
        for k in range(n):
            spec = self.read_spec(get(k), f"signature {kind} {k}")
            where = f"signature {kind} {k} ({spec.name!r})"
            t = self.tensors[io[k]]
            if spec.name != t.name:
                self.fail(f"{where} does not match graph {kind} {k} ({t.name!r})")
            if spec.dtype != t.dtype:
                self.fail(f"{where} is {spec.dtype} but the graph's tensor is {t.dtype}")
            if list(spec.shape) != list(t.shape or ()):
                self.fail(f"{where} has shape {list(spec.shape)} but the graph's tensor has "
                          f"{list(t.shape or ())}")
            specs.append(spec)
        return specs

    def read_signature(self, s, graph: Graph) -> None:
        if s is None:
            return
        sig = Signature()
        sig.inputs = self.read_specs(s.InputsLength(), s.Inputs, "input")
        sig.outputs = self.read_specs(s.OutputsLength(), s.Outputs, "output")
        p = s.Preprocessing()
        if p is not None:
            sig.preprocessing = Preprocessing(
                [] if p.MeanIsNone() else [_f32(v) for v in p.MeanAsNumpy()],
                [] if p.ScaleIsNone() else [_f32(v) for v in p.ScaleAsNumpy()],
                self.text(p.ChannelOrder(), "preprocessing channel order"))
        graph.signature = sig

    def read_metadata(self, md) -> Metadata:
        def kv(n, get, what):
            result = {}
            for i in range(n):
                item = get(i)
                result[self.text(item.Key(), what)] = self.text(item.Value(), what)
            return result

        return Metadata(
            producer=self.text(md.Producer(), "metadata producer"),
            converter_version=self.text(md.ConverterVersion(), "metadata converter_version"),
            source_framework=self.text(md.SourceFramework(), "metadata source_framework"),
            source_sha256=self.text(md.SourceSha256(), "metadata source_sha256"),
            min_runtime_version=self.text(md.MinRuntimeVersion(), "metadata min_runtime_version"),
            options=kv(md.OptionsLength(), md.Options, "metadata options"),
            extra=kv(md.ExtraLength(), md.Extra, "metadata extra"),
        )

    def named_array(self, a, what: str) -> tuple:
        name = self.text(a.Name(), f"{what} name")
        what = f"{what} ({name!r})"
        dtype = self.dtype(a.Dtype(), what)
        shape = [] if a.ShapeIsNone() else [int(d) for d in a.ShapeAsNumpy()]
        problem = shape_problem(shape)
        if problem:
            self.fail(f"{what}: {problem}")
        raw = a.DataAsNumpy() if not a.DataIsNone() else np.zeros(0, np.uint8)
        expected = math.prod(shape) * dtypes.itemsize(dtype)
        if raw.size != expected:
            self.fail(f"{what} has {raw.size} bytes of data, expected {expected}")
        data = raw.view(dtypes.storage_dtype(dtype)).reshape(shape).copy()
        return name, data.astype(data.dtype.newbyteorder("="), copy=False)

    def read_test_vector(self, tv, i: int) -> TestVector:
        def arrays(n, get, what):
            result = {}
            for k in range(n):
                name, data = self.named_array(get(k), f"{what} {k}")
                if name in result:
                    self.fail(f"{what} {k} repeats the name '{name}'")
                result[name] = data
            return result

        return TestVector(arrays(tv.InputsLength(), tv.Inputs, f"test vector {i} input"),
                          arrays(tv.OutputsLength(), tv.Outputs, f"test vector {i} output"),
                          rtol=_f32(tv.Rtol()), atol=_f32(tv.Atol()))
