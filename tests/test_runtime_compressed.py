"""Compressed constants in the C++ runtime (format 1.1, Tensor.compressed): a sparse
bitmask or a palette of packed indices is checked, then expanded once at load into a
dense buffer, so the kernels see the same bytes as for the dense file.

Oracles, each independent of the runtime's decoder:
- the constants: a model whose output is the compressed constant itself (through an
  Identity) returns exactly the numpy array it was encoded from, for every dtype;
- the kernels: a compressed Conv/Gemm model's outputs equal, bit for bit, the same
  model stored dense (and the dense model equals the numpy reference elsewhere).

The files here are built by a small FlatBuffers builder of this test (its own
encoder: numpy packbits for the mask, np.unique for the palette), so each rule of
docs/format-rules.md's compressed-data section can be broken on purpose; the files
the Python writer produces from `Value.storage` are tested at the end.
"""
import ctypes
import os
import subprocess
import sys

import flatbuffers
import numpy as np
import pytest

from mobconv.errors import ModelFormatError
from mobconv.formats.fb import (Attribute, Buffer, CompressedData, Dim, Graph as FbGraph, Model,
                                Operator, Quantization, Tensor)
from mobconv.formats.fb.AttrType import AttrType
from mobconv.formats.fb.DType import DType
from mobconv.formats.fb.OpType import OpType
from mobconv.formats.fb.StorageKind import StorageKind

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = {"float32": DType.FLOAT32, "float16": DType.FLOAT16, "bfloat16": DType.BFLOAT16,
          "int8": DType.INT8, "uint8": DType.UINT8, "int16": DType.INT16, "int32": DType.INT32,
          "int64": DType.INT64, "bool": DType.BOOL}
INVALID_MODEL, SHAPE_ERROR = 2, 4  # mobrt_status


# ---- an independent encoder ---------------------------------------------------------


def raw_bits(a: np.ndarray) -> np.ndarray:
    """The elements as unsigned integers of their size (bitwise identity: -0.0 != 0.0)."""
    flat = np.ascontiguousarray(a).reshape(-1)
    return flat.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[flat.itemsize])


def encode_sparse(a: np.ndarray) -> dict:
    keep = raw_bits(a) != 0
    return {"kind": StorageKind.SPARSE_BITMASK,
            "mask": np.packbits(keep, bitorder="little").tobytes(),
            "values": np.ascontiguousarray(a).reshape(-1)[keep].tobytes()}


def pack_indices(idx: np.ndarray, bits: int) -> bytes:
    per = 8 // bits
    idx = np.concatenate([idx.astype(np.uint8), np.zeros(-len(idx) % per, np.uint8)]).reshape(-1, per)
    packed = np.zeros(len(idx), np.uint8)
    for j in range(per):
        packed |= (idx[:, j] << (j * bits)).astype(np.uint8)
    return packed.tobytes()


def encode_palette(a: np.ndarray, bits: int) -> dict:
    u = raw_bits(a)
    values, idx = np.unique(u, return_inverse=True)
    assert len(values) <= 1 << bits
    palette = values.view(np.ascontiguousarray(a).reshape(-1).dtype) if len(values) else a.reshape(-1)[:0]
    if not len(values):  # an empty tensor still has a palette of at least one entry
        palette = np.zeros(1, a.dtype)
    return {"kind": StorageKind.PALETTE, "palette": palette.tobytes(), "index_bits": bits,
            "values": pack_indices(idx.reshape(-1), bits)}


# ---- a small .mob builder (format 1.1) ----------------------------------------------


class T:
    """A tensor of the built file: `data` (numpy) is stored dense when `comp` is None, else
    `comp` (an encode_* dict, possibly broken on purpose) is stored; `buffer` overrides the
    tensor's buffer index."""

    def __init__(self, name, dtype="float32", shape=None, data=None, comp=None, buffer=None, quant=None):
        self.name, self.dtype, self.data, self.comp, self.buffer, self.quant = name, dtype, data, comp, buffer, quant
        self.shape = tuple(data.shape) if shape is None and data is not None else shape


def build(tensors, ops, inputs, outputs) -> bytes:
    """ops: [(OpType name, [input names], [output names], {attr: int | [ints] | float})]."""
    b = flatbuffers.Builder(1024)
    blobs = [None]

    def add_blob(raw: bytes) -> int:
        blobs.append(raw)
        return len(blobs) - 1

    plan = []  # per tensor: (buffer index, compressed fields with buffer indices)
    for t in tensors:
        comp = None
        if t.comp is not None:
            comp = dict(t.comp)
            for key in ("values", "mask", "palette"):
                if isinstance(comp.get(key), (bytes, bytearray)):
                    comp[key] = add_blob(bytes(comp[key]))
        buf = t.buffer if t.buffer is not None else (
            add_blob(np.ascontiguousarray(t.data).tobytes()) if t.data is not None and t.comp is None else 0)
        plan.append((buf, comp))
    buffer_offs = []
    for raw in blobs:
        vec = None
        if raw is not None:
            b.StartVector(1, len(raw), 64)
            b.head -= len(raw)
            b.Bytes[b.head:b.head + len(raw)] = raw
            vec = b.EndVector()
        Buffer.Start(b)
        if vec is not None:
            Buffer.AddData(b, vec)
        buffer_offs.append(Buffer.End(b))

    def table_vector(offs):
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    tensor_offs = []
    for t, (buf, comp) in zip(tensors, plan):
        name = b.CreateString(t.name)
        shape = None
        if t.shape is not None:
            dims = []
            for d in t.shape:
                Dim.Start(b)
                Dim.AddValue(b, int(d))
                dims.append(Dim.End(b))
            shape = table_vector(dims)
        quant = None
        if t.quant is not None:
            scales = b.CreateNumpyVector(np.asarray(t.quant[0], "<f4"))
            Quantization.Start(b)
            Quantization.AddScales(b, scales)
            Quantization.AddAxis(b, t.quant[1])
            quant = Quantization.End(b)
        cd = None
        if comp is not None:
            CompressedData.Start(b)
            CompressedData.AddKind(b, comp["kind"])
            for key, add in (("values", CompressedData.AddValues), ("mask", CompressedData.AddMask),
                             ("palette", CompressedData.AddPalette), ("index_bits", CompressedData.AddIndexBits)):
                if key in comp:
                    add(b, comp[key])
            cd = CompressedData.End(b)
        Tensor.Start(b)
        Tensor.AddName(b, name)
        Tensor.AddDtype(b, DTYPES[t.dtype])
        if shape is not None:
            Tensor.AddShape(b, shape)
        Tensor.AddBuffer(b, buf)
        if quant is not None:
            Tensor.AddQuantization(b, quant)
        if cd is not None:
            Tensor.AddCompressed(b, cd)
        tensor_offs.append(Tensor.End(b))
    index = {t.name: i for i, t in enumerate(tensors)}
    op_offs = []
    for k, (op, ins, outs, attrs) in enumerate(ops):
        attr_offs = []
        for key in sorted(attrs):
            v = attrs[key]
            name = b.CreateString(key)
            ints = b.CreateNumpyVector(np.asarray(v, "<i8")) if isinstance(v, list) else None
            Attribute.Start(b)
            Attribute.AddName(b, name)
            if ints is not None:
                Attribute.AddType(b, AttrType.INTS)
                Attribute.AddInts(b, ints)
            elif isinstance(v, float):
                Attribute.AddType(b, AttrType.FLOAT)
                Attribute.AddF(b, v)
            else:
                Attribute.AddType(b, AttrType.INT)
                Attribute.AddI(b, int(v))
            attr_offs.append(Attribute.End(b))
        name = b.CreateString(f"op{k}")
        in_vec = b.CreateNumpyVector(np.array([index[n] for n in ins], "<i4"))
        out_vec = b.CreateNumpyVector(np.array([index[n] for n in outs], "<i4"))
        attrs_vec = table_vector(attr_offs)
        Operator.Start(b)
        Operator.AddType(b, getattr(OpType, op))
        Operator.AddName(b, name)
        Operator.AddInputs(b, in_vec)
        Operator.AddOutputs(b, out_vec)
        Operator.AddAttributes(b, attrs_vec)
        op_offs.append(Operator.End(b))
    gname = b.CreateString("compressed")
    tensors_vec, ops_vec = table_vector(tensor_offs), table_vector(op_offs)
    in_vec = b.CreateNumpyVector(np.array([index[n] for n in inputs], "<i4"))
    out_vec = b.CreateNumpyVector(np.array([index[n] for n in outputs], "<i4"))
    FbGraph.Start(b)
    FbGraph.AddName(b, gname)
    FbGraph.AddTensors(b, tensors_vec)
    FbGraph.AddOperators(b, ops_vec)
    FbGraph.AddInputs(b, in_vec)
    FbGraph.AddOutputs(b, out_vec)
    graph = FbGraph.End(b)
    buffers_vec = table_vector(buffer_offs)
    Model.Start(b)
    Model.AddVersionMajor(b, 1)
    Model.AddVersionMinor(b, 1)
    Model.AddGraph(b, graph)
    Model.AddBuffers(b, buffers_vec)
    b.Finish(Model.End(b), file_identifier=b"MOB1")
    return bytes(b.Output())


def constant_model(w: np.ndarray, comp) -> bytes:
    """y = Identity(w): the runtime's output is the decoded constant itself."""
    return build([T("w", w.dtype.name if w.dtype != np.bool_ else "bool", data=w, comp=comp),
                  T("y", w.dtype.name if w.dtype != np.bool_ else "bool", shape=w.shape)],
                 [("Identity", ["w"], ["y"], {})], [], ["y"])


def run(data: bytes, feeds=None, isa=None) -> dict:
    with runtime.Interpreter(data, isa=isa) as it:
        return it.run(feeds or {})


def refusal(data: bytes):
    """(status, message) of the C API loading `data` (must refuse it)."""
    lib = runtime._load()
    handle = ctypes.c_void_p()
    status = lib.mobrt_model_create_from_buffer(data, len(data), 1, ctypes.byref(handle))
    if status == 0:
        lib.mobrt_model_delete(handle)
        return 0, ""
    return status, lib.mobrt_global_last_error().decode(errors="replace")


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str):
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, got.shape, want.shape)
    diff = np.flatnonzero(raw_bits(got) != raw_bits(want))
    assert diff.size == 0, (f"{what}: {diff.size} elements differ, first at flat index {diff[0]}: "
                            f"expected {want.reshape(-1)[diff[0]]!r}, got {got.reshape(-1)[diff[0]]!r}")


# ---- the decoded constants equal the encoded arrays ----------------------------------


def sample(dtype: str, shape, zeros: float, distinct: int, seed: int) -> np.ndarray:
    """`shape` elements of `dtype`, about `zeros` of them 0, the rest from `distinct` values."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    distinct = max(distinct - (zeros > 0), 1)  # 0 is one of the distinct values
    if dtype == "bool":
        pool = np.array([True])
    elif dtype == "bfloat16":  # no numpy dtype: stored as the upper half of float32 bits
        pool = (rng.standard_normal(distinct).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    elif dtype.startswith("float"):
        pool = rng.standard_normal(distinct).astype(dtype)
        pool[0] = -0.0  # bitwise: kept by sparse, its own palette entry
    else:
        info = np.iinfo(dtype)
        pool = rng.integers(max(info.min, -1000), min(info.max, 1000), distinct, endpoint=True).astype(dtype)
    a = pool[rng.integers(0, len(pool), n)]
    a[rng.random(n) < zeros] = 0
    return a.reshape(shape)


CONSTANT_CASES = [  # dtype, shape, zero fraction, distinct values, palette bits
    ("float32", (7, 13), 0.5, 200, 8), ("float32", (5, 3, 3), 0.0, 3, 2), ("float32", (64,), 1.0, 1, 1),
    ("float16", (3, 11), 0.7, 15, 4), ("bfloat16", (2, 9), 0.3, 4, 2), ("int8", (17,), 0.5, 16, 4),
    ("uint8", (3, 5), 0.2, 2, 1), ("int16", (4, 4), 0.9, 9, 4), ("int32", (9,), 0.5, 100, 8),
    ("int64", (2, 2, 3), 0.5, 5, 4), ("bool", (13,), 0.5, 1, 1), ("float32", (0, 4), 0.5, 1, 1),
    ("float32", (1,), 0.0, 1, 1), ("int8", (8,), 0.0, 256, 8),
]


@pytest.mark.parametrize("dtype,shape,zeros,distinct,bits", CONSTANT_CASES)
@pytest.mark.parametrize("kind", ["sparse", "palette"])
def test_decoded_constant_equals_the_encoded_array(kind, dtype, shape, zeros, distinct, bits):
    w = sample(dtype, shape, zeros, distinct, seed=len(shape) * 31 + bits)
    if dtype == "bfloat16":  # the builder stores bfloat16 as its raw uint16 bits
        comp = encode_sparse(w) if kind == "sparse" else encode_palette(w, bits)
        data = build([T("w", "bfloat16", data=w, comp=comp), T("y", "bfloat16", shape=w.shape)],
                     [("Identity", ["w"], ["y"], {})], [], ["y"])
        got = run(data)["y"]
        assert_same_bits(got.view(np.uint16), w, f"{kind} bfloat16")
        return
    comp = encode_sparse(w) if kind == "sparse" else encode_palette(w, bits)
    got = run(constant_model(w, comp))["y"]
    assert_same_bits(got, w, f"{kind} {dtype}{shape}")


# ---- kernels see the same weights ---------------------------------------------------


def pruned(shape, sparsity: float, seed: int, distinct=None) -> np.ndarray:
    """Random fp32 weights with the smallest `sparsity` of them set to 0; `distinct`: drawn
    from that many values (a clustered layer)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(np.float32)
    if distinct:
        w = rng.standard_normal(distinct).astype(np.float32)[rng.integers(0, distinct, w.shape)]
    k = int(round(sparsity * w.size))
    if k:
        w.reshape(-1)[np.argsort(np.abs(w).reshape(-1), kind="stable")[:k]] = 0
    return w


def conv_gemm_model(w_conv, w_fc, storage) -> bytes:
    """x[1,8,9,7] -> Conv 3x3 (pad 1, bias) -> Relu fused -> Flatten -> Gemm(transB) + bias.
    storage(array) -> comp dict or None (dense)."""
    rng = np.random.default_rng(5)
    bc = rng.standard_normal(w_conv.shape[0]).astype(np.float32)
    bf = rng.standard_normal(w_fc.shape[0]).astype(np.float32)
    co = w_conv.shape[0]
    tensors = [T("x", shape=(1, 8, 9, 7)), T("wc", data=w_conv, comp=storage(w_conv)), T("bc", data=bc),
               T("c", shape=(1, co, 9, 7)), T("f", shape=(1, co * 63)),
               T("wf", data=w_fc, comp=storage(w_fc)), T("bf", data=bf), T("y", shape=(1, w_fc.shape[0]))]
    ops = [("Conv", ["x", "wc", "bc"], ["c"], {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}),
           ("Flatten", ["c"], ["f"], {"axis": 1}),
           ("Gemm", ["f", "wf", "bf"], ["y"], {"transB": 1})]
    return build(tensors, ops, ["x"], ["y"])


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("kind", ["sparse", "palette16", "palette256"])
def test_conv_and_gemm_outputs_identical_to_the_dense_file(kind, sparsity):
    distinct = {"sparse": None, "palette16": 15, "palette256": 255}[kind]
    w_conv = pruned((6, 8, 3, 3), sparsity, 1, distinct)
    w_fc = pruned((10, 6 * 63), sparsity, 2, distinct)
    if kind == "sparse":
        storage = encode_sparse
    else:
        bits = 4 if kind == "palette16" else 8
        storage = lambda a: encode_palette(a, bits)  # noqa: E731
    x = np.random.default_rng(3).standard_normal((1, 8, 9, 7)).astype(np.float32)
    dense = conv_gemm_model(w_conv, w_fc, lambda a: None)
    comp = conv_gemm_model(w_conv, w_fc, storage)
    assert len(comp) < len(dense) or sparsity == 0.0 or kind == "palette256"
    for isa in (None, "scalar"):
        want = run(dense, {"x": x}, isa)["y"]
        got = run(comp, {"x": x}, isa)["y"]
        assert_same_bits(got, want, f"{kind} at {sparsity:.0%} zeros, isa {isa or 'best'}")
