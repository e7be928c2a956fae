"""IR Graph -> .mob bytes (FlatBuffers, schema formats/mobconv.fbs).

    data = to_bytes(graph)
    write_model(graph, "model.mob")   # atomic: temp file, fsync, os.replace

Layout decisions:
- Tensors are the graph's values in `graph.values` order, followed by one
  constant tensor per TENSOR attribute (named "<node>:<attr>", referenced by
  index from the attribute; the reader does not turn these into graph values).
- Buffer 0 is empty; every constant gets its own buffer whose bytes start at a
  multiple of 64 from the start of the file (the generated Python ignores
  `force_align`, so the writer starts those vectors itself). Test-vector arrays
  are aligned to 16. All data is little-endian, C order.
- Attribute kinds come from the Python values: bool/int -> INT, float -> FLOAT,
  str -> STRING, list of ints -> INTS, list with a float -> FLOATS, list of str
  -> STRINGS, np.ndarray -> TENSOR. An empty list takes the kind the op
  registry declares for that attribute, else INTS. Attributes are sorted by name.
- Floats (attributes, scales, preprocessing, tolerances) are stored as float32.
- Per-op version comes from the registry's `OpSpec.version`, else 1.

Constant bytes are copied into the builder in one slice assignment per tensor,
and the builder is pre-sized, so writing a large model is a few memcpys.

Compressed constants (format 1.1, `Value.storage`; docs/format-rules.md, rules C1-C7):
- "sparse": a SPARSE_BITMASK (mask of the elements whose bits are not all zero, LSB
  first, plus those elements), only when mask + elements take fewer bytes than the
  dense data; otherwise the tensor is written dense (an optimisation, silently).
  -0.0 is not zero here (its bits are not), so it is stored and comes back as -0.0.
- "palette": a PALETTE of the data's distinct bit patterns (sorted by value, -0.0
  before 0.0), each element an index of `bits` bits packed LSB first. Refused
  (ModelFormatError) for NaN or more distinct values than 2^bits.
- A tensor with no elements is always written dense (nothing to compress).
A compressed tensor has Tensor.buffer = 0 and Tensor.compressed set; its parts get
buffers of their own (64-byte aligned like every buffer), an empty part buffer 0.
A file with a compressed tensor records metadata min_runtime_version >= this
mobconv's version (the first that decodes them).
"""
from __future__ import annotations

import os

import flatbuffers
import numpy as np

from mobconv.errors import MobconvError, ModelFormatError

from . import dtypes
from .fb import (Attribute, Buffer, CompressedData, Dim, Graph as FbGraph, KeyValue, Metadata,
                 Model, NamedArray, Operator, Preprocessing, Quantization, Signature,
                 SignatureTensor, Tensor, TestVector)
from .fb.AttrType import AttrType
from .fb.OpType import OpType
from .fb.StorageKind import StorageKind
from .reader import quant_problem, shape_problem
from .version import BUFFER_ALIGNMENT, FILE_IDENTIFIER, FORMAT_VERSION

_INT64 = (-(2**63), 2**63 - 1)


def to_bytes(graph) -> bytes:
    """Serialize an IR Graph to .mob bytes."""
    buf, head = _build(graph)
    return bytes(memoryview(buf)[head:])


def write_model(graph, path, inputs=()) -> None:
    """Write `graph` to `path` atomically (`mobconv.output_files.write_atomic`: the
    output rules are checked, a link is followed, a failed or interrupted write
    leaves nothing behind, the file is fsync'ed). `inputs`: files it must not replace."""
    from mobconv.output_files import check_output, write_atomic

    path = os.fspath(path)
    check_output(path, inputs)  # before the (possibly slow) build
    buf, head = _build(graph)
    write_atomic(path, memoryview(buf)[head:], inputs)


# ---- building ----------------------------------------------------------------


def _registry() -> dict:
    from mobconv.ops import load_all

    return load_all()


def _build(graph) -> tuple:
    """Return (bytearray, head): the finished FlatBuffer is bytearray[head:]."""
    registry = _registry()
    tensors, attr_tensors = _collect_tensors(graph)
    # What each constant's buffers hold: its storage array, or its compressed parts.
    stored = [None if data is None else
              (_encode(value, data) if value is not None and value.storage else None) or data
              for value, data, _ in tensors]
    const_bytes = sum(sum(p.nbytes for p in s[1]) if isinstance(s, tuple) else s.nbytes
                      for s in stored if s is not None)
    estimate = const_bytes + 2 * BUFFER_ALIGNMENT * (len(tensors) + 1) + 4096 + 512 * (
        len(tensors) + len(graph.nodes))
    if estimate >= flatbuffers.Builder.MAX_BUFFER_SIZE:
        raise MobconvError(
            f"graph {graph.name!r}: {const_bytes} bytes of constants exceed the 2 GB "
            "limit of a .mob file")
    b = flatbuffers.Builder(estimate)

    # Constant buffers first: they end up at the end of the file.
    buffer_offsets = [_empty_buffer(b)]
    buffer_index, compressed = {}, {}

    def add_buffer(data) -> int:
        buffer_offsets.append(_data_buffer(b, data))
        return len(buffer_offsets) - 1

    for i, entry in enumerate(stored):
        if isinstance(entry, tuple):  # an empty part (an all-zero sparse tensor's values)
            kind, parts, bits = entry  # is the empty buffer 0
            compressed[i] = (kind, [add_buffer(p) if p.size else 0 for p in parts], bits)
        elif entry is not None:
            buffer_index[i] = add_buffer(entry)
    buffers_vec = _table_vector(b, buffer_offsets)

    index = {t[0].name: i for i, t in enumerate(tensors) if t[0] is not None}
    tensor_offsets = [_tensor(b, entry, buffer_index.get(i, 0), compressed.get(i))
                      for i, entry in enumerate(tensors)]
    op_offsets = [_operator(b, node, index, attr_tensors, registry) for node in graph.nodes]

    name = b.CreateString(graph.name or "")
    tensors_vec = _table_vector(b, tensor_offsets)
    ops_vec = _table_vector(b, op_offsets)
    inputs_vec = b.CreateNumpyVector(np.array([_idx(index, n, "graph input") for n in graph.inputs],
                                              dtype="<i4"))
    outputs_vec = b.CreateNumpyVector(np.array([_idx(index, n, "graph output")
                                                for n in graph.outputs], dtype="<i4"))
    FbGraph.Start(b)
    FbGraph.AddName(b, name)
    FbGraph.AddTensors(b, tensors_vec)
    FbGraph.AddOperators(b, ops_vec)
    FbGraph.AddInputs(b, inputs_vec)
    FbGraph.AddOutputs(b, outputs_vec)
    graph_off = FbGraph.End(b)

    signature = _signature(b, graph.signature)
    metadata = _metadata(b, graph.metadata, bool(compressed))
    vectors = _table_vector(b, [_test_vector(b, tv) for tv in graph.test_vectors])

    Model.Start(b)
    Model.AddVersionMajor(b, FORMAT_VERSION[0])
    Model.AddVersionMinor(b, FORMAT_VERSION[1])
    Model.AddGraph(b, graph_off)
    Model.AddBuffers(b, buffers_vec)
    Model.AddSignature(b, signature)
    Model.AddMetadata(b, metadata)
    Model.AddTestVectors(b, vectors)
    b.Finish(Model.End(b), file_identifier=FILE_IDENTIFIER)
    return b.Bytes, b.Head()


def _collect_tensors(graph) -> tuple:
    """Every tensor to write, and where each TENSOR attribute's array went.

    Returns ([(Value or None, storage array or None, (name, dtype, shape) of an
    attribute tensor or None)], {(id(node), attr name): tensor index}).
    """
    tensors = []
    for value in graph.values.values():
        if value.dtype is None:
            raise MobconvError(
                f"cannot write tensor {value.name!r}: its dtype is unknown "
                "(run mobconv.ir.infer_shapes(graph) first)")
        if value.dtype not in dtypes.known_names():
            raise MobconvError(f"cannot write tensor {value.name!r}: dtype {value.dtype!r} "
                               f"is not one of {', '.join(dtypes.known_names())}")
        data = None if value.data is None else dtypes.as_storage(value.data, value.dtype)
        _check_value(value, data)
        tensors.append((value, data, None))
    taken = set(graph.values)
    attr_tensors = {}
    for node in graph.nodes:
        for attr in sorted(node.attrs):
            array = node.attrs[attr]
            if not isinstance(array, np.ndarray):
                continue
            name = f"{node.name}:{attr}"
            while name in taken:
                name += "_"
            taken.add(name)
            dtype = dtypes.array_dtype_name(array)
            if dtype not in dtypes.known_names():
                raise MobconvError(f"node {node.name!r} ({node.op}): attribute {attr!r} has "
                                   f"dtype {dtype!r}, not one of {', '.join(dtypes.known_names())}")
            attr_tensors[(id(node), attr)] = len(tensors)
            tensors.append((None, dtypes.as_storage(array, dtype), (name, dtype, array.shape)))
    return tensors, attr_tensors


def _check_value(value, data) -> None:
    """Refuse what the reader would refuse: data not matching the shape, bad quantization."""
    where = f"cannot write tensor {value.name!r}"
    shape = value.shape
    if data is not None:
        if shape is None or any(not isinstance(d, (int, np.integer)) for d in shape):
            raise MobconvError(f"{where}: a constant needs a fully known shape, got {shape}")
        if int(np.prod(shape, dtype=np.int64)) != data.size:
            raise MobconvError(f"{where}: shape {tuple(shape)} does not match its data of "
                               f"shape {data.shape}")
    if shape is not None:
        for d in shape:
            if not isinstance(d, (str, int, np.integer)) or (not isinstance(d, str) and d < 0):
                raise MobconvError(f"{where}: bad dimension {d!r} in shape {tuple(shape)}")
            if isinstance(d, str) and not d:
                raise MobconvError(f"{where}: empty symbolic dimension in shape {tuple(shape)}")
        problem = shape_problem([d if isinstance(d, str) else int(d) for d in shape])
        if problem:  # the limits every reader enforces (docs/format-rules.md T3, T4)
            raise MobconvError(f"{where}: {problem}")
    q = value.quant
    if q is not None:
        problem = quant_problem(len(q.scales), len(q.zero_points), q.axis, shape)
        if problem:
            raise MobconvError(f"{where}: {problem}")


def _empty_buffer(b) -> int:
    Buffer.Start(b)
    return Buffer.End(b)


def _raw_vector(b, data: np.ndarray, alignment: int) -> int:
    """A [ubyte] vector holding `data`'s bytes, its first byte aligned to `alignment`."""
    raw = memoryview(data.reshape(-1)).cast("B")
    n = raw.nbytes
    b.StartVector(1, n, alignment)
    head = b.Head() - n
    b.Bytes[head:head + n] = raw
    b.head = head
    return b.EndVector()


def _data_buffer(b, data: np.ndarray) -> int:
    vec = _raw_vector(b, data, BUFFER_ALIGNMENT)
    Buffer.Start(b)
    Buffer.AddData(b, vec)
    return Buffer.End(b)


def _table_vector(b, offsets: list) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _string_vector(b, strings: list) -> int:
    return _table_vector(b, [b.CreateString(s) for s in strings])


def _dims(b, shape) -> int:
    offsets = []
    for d in shape:
        if isinstance(d, str):
            sym = b.CreateString(d)
            Dim.Start(b)
            Dim.AddSymbol(b, sym)
        else:
            Dim.Start(b)
            Dim.AddValue(b, int(d))
        offsets.append(Dim.End(b))
    return _table_vector(b, offsets)


def _idx(index: dict, name: str, what: str) -> int:
    if not name:
        return -1
    try:
        return index[name]
    except KeyError:
        raise MobconvError(f"cannot write {what} {name!r}: no such value in the graph") from None


def _tensor(b, entry, buffer: int, compressed=None) -> int:
    value, data, attr = entry
    if value is not None:
        name, dtype, shape, quant = value.name, value.dtype, value.shape, value.quant
    else:
        (name, dtype, shape), quant = attr, None
    name_off = b.CreateString(name)
    shape_off = None if shape is None else _dims(b, shape)
    quant_off = None if quant is None else _quantization(b, quant, name)
    compressed_off = None if compressed is None else _compressed_data(b, *compressed)
    Tensor.Start(b)
    Tensor.AddName(b, name_off)
    Tensor.AddDtype(b, dtypes.to_enum(dtype))
    if shape_off is not None:
        Tensor.AddShape(b, shape_off)
    Tensor.AddBuffer(b, buffer)
    if quant_off is not None:
        Tensor.AddQuantization(b, quant_off)
    if compressed_off is not None:
        Tensor.AddCompressed(b, compressed_off)
    return Tensor.End(b)


def _compressed_data(b, kind: int, buffers: list, bits: int) -> int:
    CompressedData.Start(b)
    CompressedData.AddKind(b, kind)
    CompressedData.AddValues(b, buffers[0])
    if kind == StorageKind.SPARSE_BITMASK:
        CompressedData.AddMask(b, buffers[1])
    else:
        CompressedData.AddPalette(b, buffers[1])
        CompressedData.AddIndexBits(b, bits)
    return CompressedData.End(b)


# ---- compressed storage (rules C1-C7) ----------------------------------------------


def _bits_view(data: np.ndarray) -> np.ndarray:
    """`data` (a storage array) as unsigned integers of its item size: its bit patterns."""
    return data.view(f"<u{data.dtype.itemsize}" if data.dtype.itemsize > 1 else "u1")


def _is_nan(data: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        return (data & 0x7F80 == 0x7F80) & (data & 0x7F != 0)
    if dtype in ("float32", "float16"):
        return np.isnan(data)
    return np.zeros(data.shape, bool)


def _sort_keys(values: np.ndarray, dtype: str) -> tuple:
    """np.lexsort keys that sort a palette by value (bfloat16 bits widened to float32),
    -0.0 before 0.0 (distinct values here: their bits differ)."""
    if dtype == "bfloat16":
        values = (values.astype("<u4") << 16).view("<f4")
    elif dtype not in ("float32", "float16"):
        return (values,)
    return (~np.signbit(values), values)


def encode_palette(data: np.ndarray, dtype: str, bits: int, name: str) -> tuple:
    """(palette, packed indices) of storage array `data`: the palette is the data's
    distinct bit patterns sorted by value (-0.0 before 0.0), each element's index is
    `bits` bits wide, packed LSB first. ModelFormatError (one line naming the tensor)
    for NaN or more distinct values than 2^bits."""
    flat = data.reshape(-1)
    if _is_nan(flat, dtype).any():
        raise ModelFormatError(f"cannot write tensor {name!r} with palette storage: it holds "
                               "NaN (a palette holds numbers; rule C6)")
    as_bits = _bits_view(flat)
    patterns = np.unique(as_bits)  # (searchsorted below is 2x faster than return_inverse)
    if len(patterns) > 1 << bits:
        raise ModelFormatError(
            f"cannot write tensor {name!r} with palette storage: {len(patterns)} distinct "
            f"values, {bits}-bit indices hold at most {1 << bits} (rule C6)")
    values = patterns.view(flat.dtype)
    order = np.lexsort(_sort_keys(values, dtype))
    rank = np.empty(len(order), np.uint8)
    rank[order] = np.arange(len(order), dtype=np.uint8)
    return np.ascontiguousarray(values[order]), dtypes.pack_indices(rank[np.searchsorted(patterns, as_bits)], bits)


def encode_sparse(data: np.ndarray) -> tuple:
    """(stored elements, mask) of storage array `data`: element i is stored when its bits
    are not all zero (bit i % 8 of mask byte i // 8)."""
    flat = data.reshape(-1)
    keep = _bits_view(flat) != 0
    return np.ascontiguousarray(flat[keep]), np.packbits(keep, bitorder="little")


def encode_storage(value, data: np.ndarray = None):
    """How the writer stores constant `value`: (StorageKind, [values, mask or palette],
    index bits) for a compressed tensor, or None when it is written dense (no hint, no
    elements, or sparse that would not be smaller). `data`: its storage array if already
    made. ModelFormatError for data a palette cannot hold. `mobconv info` uses it."""
    if value.data is None or value.storage is None:
        return None
    if data is None:
        data = dtypes.as_storage(value.data, value.dtype)
    return _encode(value, data)


def _encode(value, data: np.ndarray):
    """(StorageKind, [values, mask or palette], index bits) for `value`'s storage hint,
    or None to write it dense."""
    storage = value.storage
    if data.size == 0:
        return None
    if storage.kind == "sparse":
        values, mask = encode_sparse(data)
        if values.nbytes + mask.nbytes >= data.nbytes:
            return None
        return StorageKind.SPARSE_BITMASK, [values, mask], 0
    if storage.kind == "palette":
        palette, indices = encode_palette(data, value.dtype, storage.bits, value.name)
        return StorageKind.PALETTE, [indices, palette], storage.bits
    raise MobconvError(f"cannot write tensor {value.name!r}: unknown storage {storage.kind!r}")


def _quantization(b, quant, name: str) -> int:
    scales = b.CreateNumpyVector(np.asarray(quant.scales, dtype="<f4").reshape(-1))
    zps = np.asarray(quant.zero_points, dtype="<i8").reshape(-1)
    # All-zero zero points (symmetric weights, int32 biases) are omitted: absent means 0
    # (docs/format-rules.md), saving 8 bytes per output channel twice per layer.
    zero_points = b.CreateNumpyVector(zps) if zps.any() else None
    Quantization.Start(b)
    Quantization.AddScales(b, scales)
    if zero_points is not None:
        Quantization.AddZeroPoints(b, zero_points)
    Quantization.AddAxis(b, -1 if quant.axis is None else int(quant.axis))
    return Quantization.End(b)


# ---- operators and attributes --------------------------------------------------


def _attr_kind(node, name: str, value, registry: dict) -> int:
    if isinstance(value, np.ndarray):
        return AttrType.TENSOR
    if isinstance(value, (bool, int, np.integer, np.bool_)):
        return AttrType.INT
    if isinstance(value, (float, np.floating)):
        return AttrType.FLOAT
    if isinstance(value, (str, bytes)):
        return AttrType.STRING
    if isinstance(value, (list, tuple)):
        if not value:  # the registry says which kind of list; INTS if it does not know
            spec = registry.get(node.op)
            attr = spec.attr_index.get(name) if spec is not None else None
            kind = attr.kind.name if attr is not None else "INTS"
            return {"FLOATS": AttrType.FLOATS, "STRINGS": AttrType.STRINGS}.get(kind,
                                                                                AttrType.INTS)
        if all(isinstance(v, (str, bytes)) for v in value):
            return AttrType.STRINGS
        if all(isinstance(v, (bool, int, np.integer, np.bool_)) for v in value):
            return AttrType.INTS
        if all(isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)) for v in value):
            return AttrType.FLOATS
    raise MobconvError(
        f"cannot write node {node.name!r} ({node.op}): attribute {name!r} has unsupported "
        f"value {value!r} (expected int, float, str, a list of one of those, or a numpy array)")


def _check_int(node, name: str, v) -> int:
    v = int(v)
    if not _INT64[0] <= v <= _INT64[1]:
        raise MobconvError(f"cannot write node {node.name!r} ({node.op}): attribute {name!r} "
                           f"value {v} does not fit in 64 bits")
    return v


def _attribute(b, node, name: str, value, kind: int, tensor_index) -> int:
    name_off = b.CreateString(name)
    payload = None
    if kind == AttrType.STRING:
        payload = b.CreateString(value.decode() if isinstance(value, bytes) else value)
    elif kind == AttrType.INTS:
        payload = b.CreateNumpyVector(np.array([_check_int(node, name, v) for v in value],
                                               dtype="<i8"))
    elif kind == AttrType.FLOATS:
        payload = b.CreateNumpyVector(np.array([float(v) for v in value], dtype="<f4"))
    elif kind == AttrType.STRINGS:
        payload = _string_vector(b, [v.decode() if isinstance(v, bytes) else v for v in value])
    Attribute.Start(b)
    Attribute.AddName(b, name_off)
    Attribute.AddType(b, kind)
    if kind == AttrType.INT:
        Attribute.AddI(b, _check_int(node, name, value))
    elif kind == AttrType.FLOAT:
        Attribute.AddF(b, float(np.float32(value)))
    elif kind == AttrType.STRING:
        Attribute.AddS(b, payload)
    elif kind == AttrType.INTS:
        Attribute.AddInts(b, payload)
    elif kind == AttrType.FLOATS:
        Attribute.AddFloats(b, payload)
    elif kind == AttrType.STRINGS:
        Attribute.AddStrings(b, payload)
    else:
        Attribute.AddTensor(b, tensor_index)
    return Attribute.End(b)


def _operator(b, node, index: dict, attr_tensors: dict, registry: dict) -> int:
    op_type = getattr(OpType, node.op, None) if not node.op.startswith("_") else None
    if not isinstance(op_type, int):
        raise MobconvError(f"cannot write node {node.name!r}: op {node.op!r} has no OpType in "
                           "formats/mobconv.fbs")
    attrs = []
    for name in sorted(node.attrs):
        value = node.attrs[name]
        kind = _attr_kind(node, name, value, registry)
        attrs.append(_attribute(b, node, name, value, kind, attr_tensors.get((id(node), name))))
    attrs_vec = _table_vector(b, attrs)
    name_off = b.CreateString(node.name or "")
    where = f"node {node.name!r} ({node.op}) input"
    inputs = b.CreateNumpyVector(np.array([_idx(index, n, where) for n in node.inputs],
                                          dtype="<i4"))
    where = f"node {node.name!r} ({node.op}) output"
    outputs = b.CreateNumpyVector(np.array([_idx(index, n, where) for n in node.outputs],
                                           dtype="<i4"))
    spec = registry.get(node.op)
    Operator.Start(b)
    Operator.AddType(b, op_type)
    Operator.AddVersion(b, spec.version if spec is not None else 1)
    Operator.AddName(b, name_off)
    Operator.AddInputs(b, inputs)
    Operator.AddOutputs(b, outputs)
    Operator.AddAttributes(b, attrs_vec)
    return Operator.End(b)


# ---- signature, metadata, test vectors -------------------------------------------


def _signature(b, sig) -> int:
    def spec_offsets(specs):
        result = []
        for spec in specs:
            name = b.CreateString(spec.name)
            shape = _dims(b, spec.shape or ())
            layout = b.CreateString(spec.layout or "")
            SignatureTensor.Start(b)
            SignatureTensor.AddName(b, name)
            SignatureTensor.AddDtype(b, dtypes.to_enum(spec.dtype))
            SignatureTensor.AddShape(b, shape)
            SignatureTensor.AddLayout(b, layout)
            result.append(SignatureTensor.End(b))
        return _table_vector(b, result)

    inputs = spec_offsets(sig.inputs)
    outputs = spec_offsets(sig.outputs)
    pre = None
    if sig.preprocessing is not None:
        p = sig.preprocessing
        mean = b.CreateNumpyVector(np.asarray(p.mean, dtype="<f4").reshape(-1))
        scale = b.CreateNumpyVector(np.asarray(p.scale, dtype="<f4").reshape(-1))
        order = b.CreateString(p.channel_order or "")
        Preprocessing.Start(b)
        Preprocessing.AddMean(b, mean)
        Preprocessing.AddScale(b, scale)
        Preprocessing.AddChannelOrder(b, order)
        pre = Preprocessing.End(b)
    Signature.Start(b)
    Signature.AddInputs(b, inputs)
    Signature.AddOutputs(b, outputs)
    if pre is not None:
        Signature.AddPreprocessing(b, pre)
    return Signature.End(b)


def _key_values(b, mapping: dict) -> int:
    offsets = []
    for key, value in mapping.items():
        k, v = b.CreateString(str(key)), b.CreateString(str(value))
        KeyValue.Start(b)
        KeyValue.AddKey(b, k)
        KeyValue.AddValue(b, v)
        offsets.append(KeyValue.End(b))
    return _table_vector(b, offsets)


def _version_tuple(text: str) -> tuple:
    parts = []
    for p in (text or "").split("."):
        digits = "".join(c for c in p if c.isdigit())  # "0.2.0rc1" -> (0, 2, 01)
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _min_runtime_version(recorded: str, compressed: bool) -> str:
    """A file with compressed tensors needs a runtime that decodes them: at least this
    mobconv's version (the runtime ships with it, same version number)."""
    from mobconv import __version__

    if compressed and _version_tuple(recorded) < _version_tuple(__version__):
        return __version__
    return recorded


def _metadata(b, meta, compressed: bool = False) -> int:
    strings = [b.CreateString(s or "") for s in (
        meta.producer, meta.converter_version, meta.source_framework, meta.source_sha256,
        _min_runtime_version(meta.min_runtime_version, compressed))]
    options, extra = _key_values(b, meta.options), _key_values(b, meta.extra)
    Metadata.Start(b)
    Metadata.AddProducer(b, strings[0])
    Metadata.AddConverterVersion(b, strings[1])
    Metadata.AddSourceFramework(b, strings[2])
    Metadata.AddSourceSha256(b, strings[3])
    Metadata.AddMinRuntimeVersion(b, strings[4])
    Metadata.AddOptions(b, options)
    Metadata.AddExtra(b, extra)
    return Metadata.End(b)


def _named_arrays(b, arrays: dict) -> int:
    offsets = []
    for name, array in arrays.items():
        array = np.asarray(array)
        dtype = dtypes.array_dtype_name(array)
        if dtype not in dtypes.known_names():
            raise MobconvError(f"cannot write test vector array {name!r}: dtype {dtype!r} is not "
                               f"one of {', '.join(dtypes.known_names())}")
        data = _raw_vector(b, dtypes.as_storage(array, dtype), 16)
        name_off = b.CreateString(name)
        shape = b.CreateNumpyVector(np.array(array.shape, dtype="<i8"))
        NamedArray.Start(b)
        NamedArray.AddName(b, name_off)
        NamedArray.AddDtype(b, dtypes.to_enum(dtype))
        NamedArray.AddShape(b, shape)
        NamedArray.AddData(b, data)
        offsets.append(NamedArray.End(b))
    return _table_vector(b, offsets)


def _test_vector(b, tv) -> int:
    inputs, outputs = _named_arrays(b, tv.inputs), _named_arrays(b, tv.outputs)
    TestVector.Start(b)
    TestVector.AddInputs(b, inputs)
    TestVector.AddOutputs(b, outputs)
    TestVector.AddRtol(b, float(np.float32(tv.rtol)))
    TestVector.AddAtol(b, float(np.float32(tv.atol)))
    return TestVector.End(b)
