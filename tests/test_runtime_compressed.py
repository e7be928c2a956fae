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
from mobconv.formats import from_bytes
from mobconv.formats.writer import to_bytes
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


def test_c_api_reports_a_compressed_graph_output_as_the_dense_tensor():
    """A graph output that is itself a compressed constant (no operator): the C API's
    mobrt_tensor_byte_size / mobrt_tensor_data give the dense tensor's bytes."""
    w = sample("int16", (3, 5), 0.5, 6, seed=1)
    for comp in (encode_sparse(w), encode_palette(w, 4)):
        data = build([T("w", "int16", data=w, comp=comp)], [], [], ["w"])
        lib = runtime._load()
        model, it = ctypes.c_void_p(), ctypes.c_void_p()
        assert lib.mobrt_model_create_from_buffer(data, len(data), 1, ctypes.byref(model)) == 0
        opts = lib.mobrt_options_create()
        try:
            assert lib.mobrt_interpreter_create(model, opts, ctypes.byref(it)) == 0
            assert lib.mobrt_interpreter_invoke(it) == 0
            out = lib.mobrt_interpreter_output_tensor(it, 0)
            size = lib.mobrt_tensor_byte_size(out)
            assert size == w.nbytes
            got = np.frombuffer(ctypes.string_at(lib.mobrt_tensor_data(out), size), np.int16).reshape(w.shape)
            assert_same_bits(got, w, f"C API, {comp['kind']}")
        finally:
            lib.mobrt_interpreter_delete(it)
            lib.mobrt_options_delete(opts)
            lib.mobrt_model_delete(model)


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
    """x[1,7,9,7] -> Conv 3x3 (pad 1, bias) -> Flatten -> Gemm(transB) + bias.
    storage(array) -> comp dict or None (dense)."""
    return build(*conv_gemm_spec(w_conv, w_fc, storage, storage))


def conv_gemm_spec(w_conv, w_fc, conv_storage, fc_storage):
    rng = np.random.default_rng(5)
    bc = rng.standard_normal(w_conv.shape[0]).astype(np.float32)
    bf = rng.standard_normal(w_fc.shape[0]).astype(np.float32)
    co = w_conv.shape[0]
    tensors = [T("x", shape=(1, 7, 9, 7)), T("wc", data=w_conv, comp=conv_storage(w_conv)), T("bc", data=bc),
               T("c", shape=(1, co, 9, 7)), T("f", shape=(1, co * 63)),
               T("wf", data=w_fc, comp=fc_storage(w_fc)), T("bf", data=bf), T("y", shape=(1, w_fc.shape[0]))]
    ops = [("Conv", ["x", "wc", "bc"], ["c"], {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}),
           ("Flatten", ["c"], ["f"], {"axis": 1}),
           ("Gemm", ["f", "wf", "bf"], ["y"], {"transB": 1})]
    return tensors, ops, ["x"], ["y"]


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("kind", ["sparse", "palette16", "palette256"])
def test_conv_and_gemm_outputs_identical_to_the_dense_file(kind, sparsity):
    distinct = {"sparse": None, "palette16": 15, "palette256": 255}[kind]
    w_conv = pruned((5, 7, 3, 3), sparsity, 1, distinct)  # 315 and 2835 elements: a partial last byte
    w_fc = pruned((9, 5 * 63), sparsity, 2, distinct)
    if kind == "sparse":
        storage = encode_sparse
    else:
        bits = 4 if kind == "palette16" else 8
        storage = lambda a: encode_palette(a, bits)  # noqa: E731
    x = np.random.default_rng(3).standard_normal((1, 7, 9, 7)).astype(np.float32)
    dense = conv_gemm_model(w_conv, w_fc, lambda a: None)
    comp = conv_gemm_model(w_conv, w_fc, storage)
    assert len(comp) < len(dense) or sparsity == 0.0 or kind == "palette256"
    for isa in (None, "scalar"):
        want = run(dense, {"x": x}, isa)["y"]
        got = run(comp, {"x": x}, isa)["y"]
        assert_same_bits(got, want, f"{kind} at {sparsity:.0%} zeros, isa {isa or 'best'}")


# ---- every rule broken: a clean refusal naming the tensor and the rule -----------------


W = sample("float32", (5, 7), 0.5, 9, seed=11)  # 35 elements: the mask's last byte has 5 used bits


def with_comp(comp, **tensor):
    return build([T("w", data=W, comp=comp, **tensor), T("y", shape=W.shape)],
                 [("Identity", ["w"], ["y"], {})], [], ["y"])


def sparse(**change):
    return dict(encode_sparse(W), **change)


def palette(bits=4, **change):
    return dict(encode_palette(W, bits), **change)


def set_bit(raw: bytes, bit: int) -> bytes:
    b = bytearray(raw)
    b[bit // 8] |= 1 << (bit % 8)
    return bytes(b)


def index_past(bits: int, k: int) -> bytes:
    """The 4-bit palette encoding of W with element 6's index set to k (out of range)."""
    enc = palette(bits)
    b = bytearray(enc["values"])
    b[6 * bits // 8] |= k << (6 * bits % 8)
    return bytes(b)


def dense_buffer_file():
    """W compressed, with buffer 1 (the dense bytes of another tensor of W's shape) as well."""
    return build([T("d", data=W), T("w", data=W, comp=encode_sparse(W), buffer=1), T("y", shape=W.shape)],
                 [("Identity", ["w"], ["y"], {})], [], ["y"])


MASK = encode_sparse(W)["mask"]
STORED = int(np.count_nonzero(raw_bits(W)))
K = len(np.unique(raw_bits(W)))  # palette entries
assert 4 < K < 15 and STORED < 35
RULES = [  # (id, file, message after "<buffer>: tensor 0 ('w')" or "tensor 1 ('w')")
    ("C1_buffer_and_compressed", dense_buffer_file, "tensor 1 ('w'): a compressed tensor must have buffer 0, "
                                                    "has buffer 1"),
    ("C2_no_shape", lambda: build([T("w", shape=None, comp=sparse()), T("y")], [("Identity", ["w"], ["y"], {})],
                                  [], ["y"]), "tensor 0 ('w'): a constant tensor needs a fully known shape"),
    ("C3_kind_dense", lambda: with_comp(sparse(kind=0)), "compressed data has unknown storage kind 0"),
    ("C3_kind_unknown", lambda: with_comp(sparse(kind=3)), "compressed data has unknown storage kind 3"),
    ("C3_kind_negative", lambda: with_comp(sparse(kind=-128)), "compressed data has unknown storage kind -128"),
    ("C4_values_buffer", lambda: with_comp(sparse(values=9)), "compressed values refer to buffer 9, but the file "
                                                              "has 2"),
    ("C4_mask_buffer", lambda: with_comp(sparse(mask=0xFFFFFFFF)), "compressed mask refers to buffer 4294967295, "
                                                                   "but the file has 2"),
    ("C4_palette_buffer", lambda: with_comp(palette(palette=3)), "compressed palette refers to buffer 3, but the "
                                                                 "file has 2"),
    ("C5_mask_short", lambda: with_comp(sparse(mask=MASK[:-1])), "SPARSE_BITMASK mask has 4 bytes, expected 5 for "
                                                                 "35 elements"),
    ("C5_mask_long", lambda: with_comp(sparse(mask=MASK + b"\0")), "SPARSE_BITMASK mask has 6 bytes, expected 5 "
                                                                   "for 35 elements"),
    ("C5_mask_absent", lambda: with_comp(sparse(mask=0)), "SPARSE_BITMASK mask has 0 bytes, expected 5 for 35 "
                                                          "elements"),
    ("C5_mask_bit_past_end", lambda: with_comp(sparse(mask=set_bit(MASK, 37))), "SPARSE_BITMASK mask has bits set "
                                                                                "past element 35"),
    ("C5_values_one_short", lambda: with_comp(sparse(values=sparse()["values"][:-4])),
     f"SPARSE_BITMASK has {4 * STORED - 4} bytes of values, expected {4 * STORED} for the mask's {STORED} float32 "
     "elements"),
    ("C5_values_partial", lambda: with_comp(sparse(values=sparse()["values"] + b"\0\0")),
     f"SPARSE_BITMASK has {4 * STORED + 2} bytes of values, expected {4 * STORED} for the mask's {STORED} "
     "float32 elements"),
    ("C6_bits_0", lambda: with_comp(palette(index_bits=0)), "PALETTE index_bits is 0, must be 1, 2, 4 or 8"),
    ("C6_bits_3", lambda: with_comp(palette(index_bits=3)), "PALETTE index_bits is 3, must be 1, 2, 4 or 8"),
    ("C6_bits_16", lambda: with_comp(palette(index_bits=16)), "PALETTE index_bits is 16, must be 1, 2, 4 or 8"),
    ("C6_palette_partial", lambda: with_comp(palette(palette=palette()["palette"][:-2])),
     f"PALETTE palette has {4 * K - 2} bytes, not a whole number of float32 elements"),
    ("C6_palette_empty", lambda: with_comp(palette(palette=0)), "PALETTE palette has 0 entries, must be 1 to 16 "
                                                                "for 4-bit indices"),
    ("C6_palette_too_big", lambda: with_comp(palette(8, index_bits=2, values=bytes(9))),
     f"PALETTE palette has {K} entries, must be 1 to 4 for 2-bit indices"),
    ("C6_indices_short", lambda: with_comp(palette(values=palette()["values"][:-1])),
     "PALETTE indices have 17 bytes, expected 18 for 35 4-bit indices"),
    ("C6_indices_for_8_bits", lambda: with_comp(palette(index_bits=8)),
     "PALETTE indices have 18 bytes, expected 35 for 35 8-bit indices"),
    ("C6_indices_bit_past_end", lambda: with_comp(palette(values=set_bit(palette()["values"], 140))),
     "PALETTE indices have bits set past element 35"),
    ("C6_index_out_of_range", lambda: with_comp(palette(values=index_past(4, 15))),
     f"PALETTE index of element 6 is out of range for a palette of {K} entries"),
]


@pytest.mark.parametrize("rule,make,message", RULES, ids=[r[0] for r in RULES])
def test_each_broken_rule_is_a_clean_refusal_the_python_reader_agrees_with(rule, make, message):
    data = make()
    status, got = refusal(data)
    assert status == INVALID_MODEL, (rule, status, got)
    assert got.startswith("<buffer>: tensor ") and got.endswith(message) and "\n" not in got, (rule, got)
    with pytest.raises(ModelFormatError) as e:  # formats/reader.py: the same rule, the same words
        from_bytes(data, source="<buffer>")
    assert str(e.value) == got


def test_the_intact_rule_files_load():
    """The files above differ from valid ones only in the broken field."""
    for comp in (sparse(), palette(), palette(8)):
        assert_same_bits(run(with_comp(comp))["y"], W, str(comp["kind"]))


def test_over_the_tensor_limit_is_refused_before_allocating():
    """MOBRT_MAX_TENSOR_BYTES bounds the decoded size (a machine limit, so MOBRT_SHAPE_ERROR,
    as for any tensor over it): 140 bytes of W against a 100-byte limit. In a subprocess:
    the limit is read once per process."""
    code = (
        "import ctypes, sys\n"
        "from mobconv import runtime\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "lib = runtime._load(); h = ctypes.c_void_p()\n"
        "st = lib.mobrt_model_create_from_buffer(data, len(data), 1, ctypes.byref(h))\n"
        "print(st, lib.mobrt_global_last_error().decode())\n")
    path = os.path.join(ROOT, "build", f"compressed_limit_{os.getpid()}.mob")
    try:
        with open(path, "wb") as f:
            f.write(with_comp(palette()))
        for limit, want in (("100", f"{SHAPE_ERROR} <buffer>: tensor 0 ('w') decodes to 140 bytes, over the "
                                    "runtime's tensor limit of 100 (MOBRT_MAX_TENSOR_BYTES)"), ("140", "0 ")):
            proc = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120,
                                  env=dict(os.environ, MOBRT_MAX_TENSOR_BYTES=limit))
            assert proc.returncode == 0, proc.stderr[-2000:]
            assert proc.stdout.strip() == want.strip(), (limit, proc.stdout)
    finally:
        os.unlink(path)


# ---- a mutation fuzz of the compressed fields ----------------------------------------

RUNNER = r"""
import sys, numpy as np
from mobconv import runtime
from mobconv.errors import MobconvError
x = np.random.default_rng(3).standard_normal((1, 7, 9, 7)).astype(np.float32)
for path in sys.argv[1:]:
    print("BEGIN", path, flush=True)
    outs = []
    for p in (path, path + ".dense"):
        try:
            with runtime.Interpreter(open(p, "rb").read()) as it:
                outs.append(it.run({"x": x})["y"].tobytes())
        except FileNotFoundError:
            break
        except MobconvError as e:
            outs.append(str(e).splitlines()[0])
    same = len(outs) == 2 and outs[0] == outs[1]
    print("END", path, "same" if same else "", flush=True)
"""


def compressed_fields(data: bytes):
    """[(position, size)] of every present CompressedData field, and [(start, length)] of every
    buffer a compressed field names."""
    from mobconv.formats.fb import Model as FbModel

    m = FbModel.Model.GetRootAs(data, 0)
    g = m.Graph()
    fields, buffers = [], set()
    for i in range(g.TensorsLength()):
        cd = g.Tensors(i).Compressed()
        if cd is None:
            continue
        for slot, size in ((4, 1), (6, 4), (8, 4), (10, 4), (12, 1)):
            off = cd._tab.Offset(slot)
            if off:
                fields.append((cd._tab.Pos + off, size))
        buffers.update(b for b in (cd.Values(), cd.Mask(), cd.Palette()) if b)
    spans = []
    for j in sorted(buffers):
        buf = m.Buffers(j)
        off = buf._tab.Offset(4)
        spans.append((buf._tab.Vector(off), buf._tab.VectorLen(off)))
    return fields, spans, m.BuffersLength()


def mutate(data: bytes, rng, fields, spans, nbuf) -> bytes:
    m = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        what = rng.integers(0, 4)
        if what < 2:  # a field: kind / index_bits (1 byte) or a buffer index (4 bytes)
            pos, size = fields[int(rng.integers(0, len(fields)))]
            if size == 1:
                m[pos] = int(rng.choice([0, 1, 2, 3, 4, 8, 16, 127, 128, 255, int(rng.integers(0, 256))]))
            else:
                v = int(rng.choice([0, 1, 2, nbuf - 1, nbuf, nbuf + 1, 2**31, 2**32 - 1,
                                    int(rng.integers(0, 2**32))]))
                m[pos:pos + 4] = v.to_bytes(4, "little")
        else:  # the bytes of a mask, values, palette or index buffer
            start, length = spans[int(rng.integers(0, len(spans)))]
            if length:  # the last byte a third of the time: its unused bits are a rule
                i = start + (length - 1 if rng.random() < 1 / 3 else int(rng.integers(0, length)))
                m[i] = int(rng.integers(0, 256)) if what == 2 else m[i] ^ (1 << int(rng.integers(0, 8)))
    return bytes(m)


def test_mutated_compressed_fields_never_crash_and_both_readers_agree(tmp_path):
    """300 seeded mutations of the compressed fields and the buffers they name (a Conv with a
    sparse weight, a Gemm with a 4-bit palette): the runtime, in a subprocess so a crash is
    caught and named, loads or refuses each cleanly; the Python reader takes the same decision
    with the same message; and a mutant both accept computes exactly what the dense file of the
    Python reader's decoded weights computes."""
    w_conv, w_fc = pruned((5, 7, 3, 3), 0.6, 1), pruned((9, 5 * 63), 0.0, 2, 16)
    seed = build(*conv_gemm_spec(w_conv, w_fc, encode_sparse, lambda a: encode_palette(a, 4)))
    fields, spans, nbuf = compressed_fields(seed)
    assert len(fields) == 7 and len(spans) == 4
    rng = np.random.default_rng(20240612)
    paths, verdicts = [], {}
    for k in range(300):
        data = mutate(seed, rng, fields, spans, nbuf)
        path = tmp_path / f"{k:03d}.mob"
        path.write_bytes(data)
        paths.append(str(path))
        try:
            g = from_bytes(data, source="<buffer>")
        except ModelFormatError as e:
            verdicts[str(path)] = str(e)
            continue
        verdicts[str(path)] = None
        for v in g.values.values():
            v.storage = None
        (tmp_path / f"{k:03d}.mob.dense").write_bytes(to_bytes(g))
    proc = subprocess.run([sys.executable, "-c", RUNNER, *paths], capture_output=True, text=True, timeout=600)
    lines = proc.stdout.splitlines()
    begun = [ln.split()[1] for ln in lines if ln.startswith("BEGIN")]
    assert proc.returncode == 0, f"runtime crashed on {begun[-1] if begun else '?'}:\n{proc.stderr[-3000:]}"
    accepted = 0
    for path in paths:
        status, message = refusal(open(path, "rb").read())
        assert (status == 0) == (verdicts[path] is None), (path, message, verdicts[path])
        if status:
            assert status == INVALID_MODEL and message == verdicts[path], (path, message, verdicts[path])
        else:
            accepted += 1
            assert f"END {path} same" in lines, f"{path}: runtime output differs from the dense file's"
    assert 20 <= accepted <= 280, accepted  # the fuzz reaches both sides


def test_half_weights_decoded_then_widened_identical_to_dense():
    """A float16 Conv weight read by a float32 Conv is widened at load (model.cpp
    WidenHalfWeights); compressed, its decoded half copy is widened the same way (and then
    freed); two tensors naming the same compressed data share one decoded copy."""
    w = pruned((5, 7, 3, 3), 0.5, 4, 12).astype(np.float16)
    x = np.random.default_rng(6).standard_normal((1, 7, 9, 7)).astype(np.float32)

    def model(comp):
        tensors = [T("x", shape=(1, 7, 9, 7)), T("w", "float16", data=w, comp=comp),
                   T("w2", "float16", data=w, comp=comp), T("c", shape=(1, 5, 9, 7)), T("y", shape=(1, 5, 9, 7))]
        ops = [("Conv", ["x", "w"], ["c"], {"pads": [1, 1, 1, 1]}), ("Conv", ["x", "w2"], ["y"], {"pads": [1, 1, 1, 1]})]
        return build(tensors, ops, ["x"], ["y"])

    want = run(model(None), {"x": x})["y"]
    for comp in (encode_sparse(w), encode_palette(w, 4)):
        data = model(comp)
        g = from_bytes(data)
        assert g.values["w"].storage == g.values["w2"].storage is not None
        assert_same_bits(run(data, {"x": x})["y"], want, f"float16 {comp['kind']}")


# ---- files from the Python writer (Value.storage) -----------------------------------


def float_model():
    from mobconv.api import Model as ApiModel
    from mobconv.ir import Graph, infer_shapes

    rng = np.random.default_rng(9)
    g = Graph("net")
    g.add_input("x", "float32", (2, 7, 11, 9))
    g.add_constant("w1", pruned((12, 7, 3, 3), 0.5, 10))
    g.add_constant("b1", rng.standard_normal(12).astype(np.float32))
    g.add_constant("w2", pruned((16, 12, 1, 1), 0.7, 11))
    g.add_constant("w3", pruned((10, 16), 0.5, 12))
    g.add_constant("b3", rng.standard_normal(10).astype(np.float32))
    g.add_node("Conv", ["x", "w1", "b1"], ["c1"], {"pads": [1, 1, 1, 1], "activation": "Relu"}, name="conv1")
    g.add_node("Conv", ["c1", "w2"], ["c2"], {}, name="conv2")
    g.add_node("GlobalAveragePool", ["c2"], ["p"])
    g.add_node("Flatten", ["p"], ["f"], {"axis": 1})
    g.add_node("Gemm", ["f", "w3", "b3"], ["y"], {"transB": 1}, name="fc")
    g.outputs = ["y"]
    infer_shapes(g)
    return ApiModel(g)


def weights(graph, dtypes=("float32", "float16", "int8")):
    """The constant weights of Conv/Gemm (the data a DequantizeLinear or Cast reads, after
    quantization)."""
    names = []
    for node in graph.nodes:
        if node.op in ("Conv", "Gemm", "DequantizeLinear", "Cast") and len(node.inputs) > 1 or node.op in (
                "DequantizeLinear", "Cast"):
            name = node.inputs[1] if node.op in ("Conv", "Gemm") else node.inputs[0]
            v = graph.values.get(name)
            if v is not None and v.data is not None and v.dtype in dtypes and v.data.ndim >= 2:
                names.append(name)
    return names


def with_storage(model, kind: str):
    """A copy of `model` whose three weights the writer stores as `kind` (a palette of the
    fewest bits that hold the weight's distinct values)."""
    from mobconv.api import Model as ApiModel
    from mobconv.ir.graph import WeightStorage

    g = model.graph.copy()
    names = weights(g)
    assert len(names) == 3, names
    for name in names:
        v = g.values[name]
        distinct = len(np.unique(raw_bits(v.data)))
        v.storage = WeightStorage("sparse") if kind == "sparse" else WeightStorage(
            "palette", min(b for b in (1, 2, 4, 8) if 1 << b >= distinct))
    return ApiModel(g)


def stored_kinds(data: bytes) -> list:
    from mobconv.formats.fb import Model as FbModel

    g = FbModel.Model.GetRootAs(data, 0).Graph()
    return sorted(g.Tensors(i).Compressed().Kind() for i in range(g.TensorsLength()) if g.Tensors(i).Compressed())


@pytest.mark.parametrize("scheme", ["float32", "int8-weights", "fp16"])
@pytest.mark.parametrize("kind", ["sparse", "palette"])
def test_writer_files_run_identical_to_dense(scheme, kind):
    """float32, int8 (quantize scheme int8-weights: int8 weights through DequantizeLinear)
    and float16 weights, stored sparse or as a palette by formats/writer.py, run bit for bit
    as the dense file through the C API, runtime.Interpreter and Model.run(backend='runtime')."""
    from mobconv import quantize

    model = float_model()
    if scheme == "int8-weights":
        model = quantize.quantize(model, scheme="int8-weights")
    elif scheme == "fp16":
        model = quantize.quantize(model, scheme="fp16")
    x = np.random.default_rng(13).standard_normal((2, 7, 11, 9)).astype(np.float32)
    if kind == "palette":  # cluster the weights (float or int8): 16 distinct values, 4-bit indices
        from mobconv.api import Model as ApiModel

        g = model.graph.copy()
        for name in weights(g):
            v = g.values[name]
            centers = np.quantile(v.data, np.linspace(0, 1, 16)).astype(v.data.dtype)
            v.data = centers[np.abs(v.data[..., None].astype(np.float32) - centers.astype(np.float32)).argmin(-1)]
        model = ApiModel(g)
    comp = with_storage(model, kind)
    dense_bytes, comp_bytes = model.to_bytes(), comp.to_bytes()
    want_kind = StorageKind.SPARSE_BITMASK if kind == "sparse" else StorageKind.PALETTE
    assert stored_kinds(comp_bytes) == [want_kind] * 3 and not stored_kinds(dense_bytes)
    assert len(comp_bytes) < len(dense_bytes)
    want = run(dense_bytes, {"x": x})["y"]
    assert_same_bits(run(comp_bytes, {"x": x})["y"], want, f"{scheme} {kind}")
    assert_same_bits(comp.run({"x": x}, backend="runtime")["y"], want, f"{scheme} {kind} Model.run")


# ---- aarch64 (cross-compiled mobrt_run under qemu) -----------------------------------

from test_runtime_aarch64 import QEMU, mobrt_run_aarch64  # noqa: E402,F401  (a session fixture)


def test_aarch64_compressed_models_identical_to_dense(mobrt_run_aarch64, tmp_path):  # noqa: F811
    """The aarch64 loader decodes sparse and palette weights to the same dense bytes: under
    qemu, the NEON kernels give the compressed files exactly the dense file's outputs (and the
    x86 runtime's to float tolerance)."""
    w_conv, w_fc = pruned((5, 7, 3, 3), 0.5, 1, 15), pruned((9, 5 * 63), 0.5, 2, 15)
    x = np.random.default_rng(3).standard_normal((1, 7, 9, 7)).astype(np.float32)
    files = {"dense": conv_gemm_model(w_conv, w_fc, lambda a: None),
             "sparse": conv_gemm_model(w_conv, w_fc, encode_sparse),
             "palette": conv_gemm_model(w_conv, w_fc, lambda a: encode_palette(a, 4))}
    for name, data in files.items():
        (tmp_path / name / "inputs").mkdir(parents=True)
        (tmp_path / name / "model.mob").write_bytes(data)
        np.save(tmp_path / name / "inputs" / "0.npy", x)
    proc = subprocess.run([*QEMU, str(mobrt_run_aarch64), "--batch", str(tmp_path), "--isa", "neon"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    outs = {}
    for name in files:
        status = (tmp_path / name / "outputs_neon" / "status").read_text().splitlines()
        assert status and status[0] == "ok", (name, status)
        outs[name] = np.load(tmp_path / name / "outputs_neon" / "0.npy")
    for name in ("sparse", "palette"):
        assert_same_bits(outs[name], outs["dense"], f"aarch64 {name}")
    np.testing.assert_allclose(outs["dense"], run(files["dense"], {"x": x})["y"], rtol=1e-4, atol=1e-4)


# ---- memory: the dense copy is the only resident copy ---------------------------------

RSS_PROBE = r"""
import ctypes, sys
from mobconv import runtime

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

lib = runtime._load()
h = ctypes.c_void_p()
before = rss_kb()
assert lib.mobrt_model_create_from_file(sys.argv[1].encode(), ctypes.byref(h)) == 0
print(rss_kb() - before)
"""


def test_loading_a_mapped_file_keeps_only_the_dense_copy_resident(tmp_path):
    """16 MiB of float32, half zeros, stored sparse (8.5 MiB of mask and values): after
    create_from_file, the process holds the 16 MiB decoded copy but not the compressed pages
    it decoded from (model.cpp ReleaseCompressedPages; they would add ~8 MiB)."""
    w = pruned((2048, 2048), 0.5, 7)
    path = tmp_path / "big.mob"
    path.write_bytes(constant_model(w, encode_sparse(w)))
    proc = subprocess.run([sys.executable, "-c", RSS_PROBE, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    grown_mib = int(proc.stdout) / 1024
    assert 15 <= grown_mib <= 16 + 2, f"RSS grew {grown_mib:.1f} MiB loading a 16 MiB weight from an 8.5 MiB file"
