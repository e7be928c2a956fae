"""Compressed constants in .mob files (format 1.1, docs/format-rules.md rules C1-C7).

- The writer's bytes follow the documented layout, checked with a decoder written here
  from the spec (bit i % 8 of mask byte i / 8; index i at bits [i*b, i*b + b), LSB
  first), independent of formats/reader.py.
- Round trips for every dtype, numel 0 / 1 / not a multiple of 8, index widths 1-8,
  palettes of 1 and of exactly 2^bits values, all-zero tensors, -0.0 vs 0.0; the dense
  fallback; byte-identical re-save; uncompressed files unchanged from format 1.0.
- Each rule's hand-built file gives its one-line message; a seeded mutation fuzz of the
  compressed fields and parts never raises anything but ModelFormatError.
- The numpy reference gives the same outputs before and after save/load.
(The C++ runtime's decode has its own tests: tests/test_format_rules_differential.py.)
"""
import contextlib
import hashlib
import math

import numpy as np
import pytest

from mobconv.api import Model as ApiModel
from mobconv.errors import MobconvError, ModelFormatError
from mobconv.formats import from_bytes, read_model, to_bytes, write_model, writer
from mobconv.formats.fb.Model import Model
from mobconv.formats.fb.StorageKind import StorageKind
from mobconv.ir import infer_shapes
from mobconv.ir.graph import Graph, WeightStorage

from test_format_malformed import small_graph
from test_format_roundtrip import rich_graph

DTYPES = ("float32", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool")
NP = {"float32": "<f4", "float16": "<f2", "bfloat16": "<u2", "int8": "i1", "uint8": "u1",
      "int16": "<i2", "int32": "<i4", "int64": "<i8", "bool": "?"}


# ---- helpers --------------------------------------------------------------------------


def pool(dtype: str, k: int, rng, zero: bool) -> np.ndarray:
    """k distinct values (distinct bit patterns) of `dtype`, 0 among them if `zero`."""
    if dtype == "bool":
        values = np.array([False, True][:k] if zero else [True, False][:k])
        return values
    seen, out = set(), []
    if zero:
        out.append(np.zeros(1, NP[dtype])[0])
        seen.add(out[0].tobytes())
    while len(out) < k:
        if dtype in ("float32", "float16"):
            v = np.array(rng.standard_normal() * 4, NP[dtype])
        elif dtype == "bfloat16":  # finite, non-NaN bit patterns
            v = np.array(int(rng.integers(0, 0x7F00)) | (0x8000 * int(rng.integers(0, 2))),
                         "<u2")
        else:
            info = np.iinfo(np.dtype(NP[dtype]))
            v = np.array(int(rng.integers(max(info.min, -(2**62)), min(info.max, 2**62))),
                         NP[dtype])
        if v.tobytes() not in seen:
            seen.add(v.tobytes())
            out.append(v[()])
    return np.array(out, NP[dtype])


def one_constant_graph(data: np.ndarray, dtype: str, storage=None, name="w") -> Graph:
    """A graph whose only constant `name` (an Identity's input) has `data` and `storage`."""
    g = Graph("c")
    g.add_value(name, dtype, tuple(data.shape), data=data)
    g.values[name].storage = storage
    g.add_node("Identity", [name], ["y"], name="id")
    g.values["y"].dtype, g.values["y"].shape = dtype, tuple(data.shape)
    g.outputs = ["y"]
    return g


def file_tensor(data: bytes, name: str):
    """(Model, Tensor table) of tensor `name` in a .mob file."""
    m = Model.GetRootAs(data, 0)
    g = m.Graph()
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        if t.Name().decode() == name:
            return m, t
    raise KeyError(name)


def buffer_bytes(m, index: int) -> bytes:
    b = m.Buffers(index)
    return b"" if b.DataIsNone() else b.DataAsNumpy().tobytes()


def spec_decode(data: bytes, name: str, dtype: str, shape) -> np.ndarray:
    """Decode tensor `name` from the file by the spec (docs/format-rules.md), in plain
    Python loops."""
    m, t = file_tensor(data, name)
    cd = t.Compressed()
    numel = math.prod(shape)
    dt = np.dtype(NP[dtype])
    out = np.zeros(numel, dt)
    if cd.Kind() == StorageKind.SPARSE_BITMASK:
        values = np.frombuffer(buffer_bytes(m, cd.Values()), dt)
        mask = buffer_bytes(m, cd.Mask())
        assert len(mask) == (numel + 7) // 8
        k = 0
        for i in range(numel):
            if (mask[i // 8] >> (i % 8)) & 1:
                out[i] = values[k]
                k += 1
        assert k == len(values)
    else:
        assert cd.Kind() == StorageKind.PALETTE
        palette = np.frombuffer(buffer_bytes(m, cd.Palette()), dt)
        b = cd.IndexBits()
        idx = buffer_bytes(m, cd.Values())
        assert len(idx) == (numel * b + 7) // 8
        for i in range(numel):
            out[i] = palette[(idx[i * b // 8] >> (i * b % 8)) & ((1 << b) - 1)]
    return out.reshape(shape)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


# ---- layout and round trips -------------------------------------------------------------


SHAPES = [(0,), (1,), (13,), (3, 5, 7)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("storage", ["sparse", "palette1", "palette2", "palette4", "palette8"])
def test_round_trip_every_dtype_and_width(dtype, storage):
    rng = np.random.default_rng(DTYPES.index(dtype) * 10 + len(storage))
    bits = int(storage[7:]) if storage.startswith("palette") else 0
    hint = WeightStorage("palette", bits) if bits else WeightStorage("sparse")
    for shape in SHAPES:
        numel = math.prod(shape)
        k = min(1 << bits, 2 if dtype == "bool" else 1 << bits, 5) if bits else 4
        values = pool(dtype, k, rng, zero=True)
        data = values[rng.integers(0, len(values), numel)].reshape(shape)
        if not bits:  # sparse: mostly zeros
            data.reshape(-1)[rng.random(numel) < 0.7] = 0
        g = one_constant_graph(data, dtype, hint)
        blob = to_bytes(g)
        m, t = file_tensor(blob, "w")
        itemsize = np.dtype(NP[dtype]).itemsize
        nnz = int(np.count_nonzero(data.reshape(-1).view(f"u{itemsize}") if itemsize > 1
                                   else data.reshape(-1).view("u1")))
        if bits:
            compressed = numel > 0
        else:  # sparse only when smaller than dense (independent size formula)
            compressed = numel > 0 and (numel + 7) // 8 + nnz * itemsize < numel * itemsize
        assert (t.Compressed() is not None) == compressed, (shape, storage)
        if compressed:
            assert t.Buffer() == 0
            assert same_bits(spec_decode(blob, "w", dtype, shape), data)
        else:
            assert t.Buffer() != 0
        back = from_bytes(blob)
        v = back.values["w"]
        assert same_bits(v.data, data), (dtype, storage, shape)
        assert v.storage == (hint if compressed else None)
        assert to_bytes(back) == blob  # load -> save is byte-identical


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_palette_holds_exactly_two_to_the_bits_values(bits):
    rng = np.random.default_rng(bits)
    k = 1 << bits
    values = pool("int16", k, rng, zero=False)
    data = values[rng.permutation(np.arange(301) % k)]
    g = one_constant_graph(data, "int16", WeightStorage("palette", bits))
    blob = to_bytes(g)
    m, t = file_tensor(blob, "w")
    palette = np.frombuffer(buffer_bytes(m, t.Compressed().Palette()), "<i2")
    assert list(palette) == sorted(values.tolist())  # sorted, each value once
    assert same_bits(spec_decode(blob, "w", "int16", data.shape), data)
    assert same_bits(from_bytes(blob).values["w"].data, data)
    # one value more than the index width holds: refused, one line naming the tensor
    more = np.concatenate([data, np.setdiff1d(pool("int16", k + 1, rng, zero=False), values)[:1]])
    with pytest.raises(ModelFormatError) as info:
        to_bytes(one_constant_graph(more, "int16", WeightStorage("palette", bits), name="big"))
    msg = str(info.value)
    assert "\n" not in msg and "'big'" in msg
    assert f"{k + 1} distinct values, {bits}-bit indices hold at most {k}" in msg


def test_palette_of_one_value_and_one_element():
    for data in (np.full((3, 11), 2.5, np.float32), np.array([7], np.int8)):
        dtype = data.dtype.name
        blob = to_bytes(one_constant_graph(data, dtype, WeightStorage("palette", 1)))
        m, t = file_tensor(blob, "w")
        assert t.Compressed().Kind() == StorageKind.PALETTE
        assert len(buffer_bytes(m, t.Compressed().Palette())) == data.itemsize  # K = 1
        idx = buffer_bytes(m, t.Compressed().Values())
        assert idx == bytes((data.size + 7) // 8)  # every index 0, trailing bits 0
        back = from_bytes(blob).values["w"]
        assert same_bits(back.data, data) and back.storage == WeightStorage("palette", 1)


def test_all_zero_sparse_tensor_has_an_empty_values_part():
    data = np.zeros((4, 9), np.float32)
    blob = to_bytes(one_constant_graph(data, "float32", WeightStorage("sparse")))
    m, t = file_tensor(blob, "w")
    cd = t.Compressed()
    assert cd.Kind() == StorageKind.SPARSE_BITMASK and cd.Values() == 0  # the empty buffer 0
    assert buffer_bytes(m, cd.Mask()) == bytes(5)
    back = from_bytes(blob)
    assert same_bits(back.values["w"].data, data) and to_bytes(back) == blob


def test_negative_zero_is_not_zero():
    data = np.array([0.0, -0.0, 1.0, 0.0, -0.0, 0.0, 0.0, 0.0, 0.0, 0.0], np.float32)
    sparse = to_bytes(one_constant_graph(data, "float32", WeightStorage("sparse")))
    m, t = file_tensor(sparse, "w")
    assert buffer_bytes(m, t.Compressed().Mask()) == bytes([0b10110, 0])  # -0.0 is stored
    assert same_bits(from_bytes(sparse).values["w"].data, data)
    palette = to_bytes(one_constant_graph(data, "float32", WeightStorage("palette", 2)))
    m, t = file_tensor(palette, "w")
    entries = np.frombuffer(buffer_bytes(m, t.Compressed().Palette()), "<f4")
    assert entries.tobytes() == np.array([-0.0, 0.0, 1.0], np.float32).tobytes()
    assert same_bits(from_bytes(palette).values["w"].data, data)


def test_nan_palette_is_refused_but_nan_sparse_is_kept():
    data = np.array([0, 1, np.nan, 0], np.float32)
    with pytest.raises(ModelFormatError, match=r"^cannot write tensor 'w' with palette storage: "
                                               r"it holds NaN"):
        to_bytes(one_constant_graph(data, "float32", WeightStorage("palette", 2)))
    bf = np.array([0, 0x7FC1, 0x3F80], np.uint16)  # a bfloat16 NaN
    with pytest.raises(ModelFormatError, match="NaN"):
        to_bytes(one_constant_graph(bf, "bfloat16", WeightStorage("palette", 2)))
    big = np.zeros(64, np.float32)
    big[[3, 40]] = [np.nan, -np.inf]
    back = from_bytes(to_bytes(one_constant_graph(big, "float32", WeightStorage("sparse"))))
    assert same_bits(back.values["w"].data, big)


def test_sparse_falls_back_to_dense_when_not_smaller():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((16, 16)).astype(np.float32)
    data[0, :8] = 0  # 3% zeros: mask (32 B) + 248 values (992 B) >= 1024 B dense
    g = one_constant_graph(data, "float32", WeightStorage("sparse"))
    blob = to_bytes(g)
    _, t = file_tensor(blob, "w")
    assert t.Compressed() is None and t.Buffer() != 0
    assert blob == to_bytes(one_constant_graph(data, "float32"))  # as if there were no hint
    data[0, :9] = 0  # 9 zeros: 32 + 988 < 1024
    _, t = file_tensor(to_bytes(one_constant_graph(data, "float32", WeightStorage("sparse"))),
                       "w")
    assert t.Compressed() is not None


def test_int8_palette_and_sparse_keep_quantization():
    rng = np.random.default_rng(4)
    g = from_bytes(to_bytes(small_graph()))  # float32-exact scales
    w = rng.integers(-3, 4, (3, 4)).astype(np.float32)
    g.values["w"].data = w
    g.values["w"].storage = WeightStorage("sparse")
    g.values["q"].storage = WeightStorage("palette", 2)
    blob = to_bytes(g)
    back = from_bytes(blob)
    assert back.values["q"].quant == g.values["q"].quant
    assert back.values["q"].storage == WeightStorage("palette", 2)
    assert same_bits(back.values["q"].data, g.values["q"].data)
    assert to_bytes(back) == blob


def test_buffers_stay_64_byte_aligned_and_version_and_min_runtime():
    from mobconv import __version__

    rng = np.random.default_rng(5)
    g = small_graph()
    g.metadata.min_runtime_version = "0.0.1"
    w = rng.standard_normal((3, 4)).astype(np.float32)
    w[w < 0.5] = 0
    g.values["w"].data, g.values["w"].storage = w, WeightStorage("palette", 4)
    blob = to_bytes(g)
    m = Model.GetRootAs(blob, 0)
    assert (m.VersionMajor(), m.VersionMinor()) == (1, 1)
    for i in range(1, m.BuffersLength()):
        b = m.Buffers(i)
        assert b._tab.Vector(b._tab.Offset(4)) % 64 == 0
    assert from_bytes(blob).metadata.min_runtime_version == __version__
    g.values["w"].storage = None  # no compressed tensor: the recorded version stays
    assert from_bytes(to_bytes(g)).metadata.min_runtime_version == "0.0.1"
    g.metadata.min_runtime_version = "9.0.0"  # a newer requirement is kept
    g.values["w"].storage = WeightStorage("sparse")
    assert from_bytes(to_bytes(g)).metadata.min_runtime_version == "9.0.0"


def test_uncompressed_files_are_the_1_0_bytes_but_for_the_version(monkeypatch):
    """SHA-256 of what the format 1.0 writer (commit 3bc9d4f) wrote for these graphs."""
    monkeypatch.setattr(writer, "FORMAT_VERSION", (1, 0))
    assert hashlib.sha256(to_bytes(rich_graph())).hexdigest() == (
        "b734c16567abc473dd2a994eaf30dfc611f06702599ed0ca3efe09fa66ddba4a")
    assert hashlib.sha256(to_bytes(small_graph())).hexdigest() == (
        "5ce6566ba3ef6094defd3ec0ed7aeb4801c1e7909aa4fc3f1ceacd3c5cb57b35")


def conv_gemm_graph() -> Graph:
    rng = np.random.default_rng(6)
    g = Graph("cg")
    g.add_input("x", "float32", (2, 8, 6, 6))
    w = rng.standard_normal((16, 8, 1, 1)).astype(np.float32)
    w[np.abs(w) < 1.0] = 0  # ~68% zeros
    g.add_constant("conv.w", w)
    g.values["conv.w"].storage = WeightStorage("sparse")
    g.add_constant("conv.b", rng.standard_normal(16).astype(np.float32))
    centers = rng.standard_normal(16).astype(np.float32)
    fc = centers[rng.integers(0, 16, (10, 16 * 36))]
    g.add_constant("fc.w", fc)
    g.values["fc.w"].storage = WeightStorage("palette", 4)
    g.add_constant("shape", np.array([2, -1], np.int64))
    g.add_node("Conv", ["x", "conv.w", "conv.b"], ["c"], name="conv")
    g.add_node("Relu", ["c"], ["r"], name="relu")
    g.add_node("Reshape", ["r", "shape"], ["f"], name="flatten")
    g.add_node("Gemm", ["f", "fc.w"], ["y"], {"transB": 1}, name="fc")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def test_reference_outputs_unchanged_after_save_and_load(tmp_path):
    g = conv_gemm_graph()
    feeds = {"x": np.random.default_rng(7).standard_normal((2, 8, 6, 6)).astype(np.float32)}
    before = ApiModel(g).run(feeds, backend="reference")
    path = tmp_path / "c.mob"
    write_model(g, path)
    loaded = read_model(path)
    assert loaded.values["conv.w"].storage == WeightStorage("sparse")
    assert loaded.values["fc.w"].storage == WeightStorage("palette", 4)
    after = ApiModel(loaded).run(feeds, backend="reference")
    assert np.array_equal(before["y"], after["y"])
    dense = conv_gemm_graph()
    for v in dense.values.values():
        v.storage = None
    assert path.stat().st_size < 0.45 * len(to_bytes(dense))  # and it is smaller


# ---- malformed files: each rule, its message ------------------------------------------------


def base_graph(storage=WeightStorage("sparse"), shape=(4, 6)) -> Graph:
    g = Graph("b")
    g.add_input("x", "float32", ("N", shape[0]))
    w = np.zeros(shape, np.float32)
    w.reshape(-1)[::5] = np.arange(1, 1 + w.reshape(-1)[::5].size)
    g.add_constant("w", w)
    g.values["w"].storage = storage
    g.add_node("MatMul", ["x", "w"], ["y"], name="mm")
    g.values["y"].dtype, g.values["y"].shape = "float32", ("N", shape[1])
    g.outputs = ["y"]
    return g


@contextlib.contextmanager
def crafted(parts=None, fields=None, tensor_buffer=None, no_checks=False):
    """Write with w's compressed parts replaced by `parts` ((kind, [arrays], bits)),
    CompressedData fields overridden by `fields`, w's Tensor.buffer by `tensor_buffer`."""
    mp = pytest.MonkeyPatch()
    encode, compressed_data, tensor = writer._encode, writer._compressed_data, writer._tensor
    if parts is not None:
        mp.setattr(writer, "_encode", lambda value, data: parts if value.name == "w"
                   else encode(value, data))
    if fields is not None:
        def raw(b, kind, buffers, bits):
            f = {"kind": kind, "values": buffers[0], "mask": buffers[1] if kind == 1 else 0,
                 "palette": buffers[1] if kind == 2 else 0, "index_bits": bits}
            f.update(fields)
            from mobconv.formats.fb import CompressedData as CD
            CD.Start(b)
            CD.AddKind(b, f["kind"])
            CD.AddValues(b, f["values"])
            CD.AddMask(b, f["mask"])
            CD.AddPalette(b, f["palette"])
            CD.AddIndexBits(b, f["index_bits"])
            return CD.End(b)
        mp.setattr(writer, "_compressed_data", raw)
    if tensor_buffer is not None:
        mp.setattr(writer, "_tensor", lambda b, entry, buffer, compressed=None: tensor(
            b, entry, tensor_buffer if entry[0] is not None and entry[0].name == "w" else buffer,
            compressed))
    if no_checks:
        mp.setattr(writer, "_check_value", lambda value, data: None)
    try:
        yield
    finally:
        mp.undo()


def refusal(blob: bytes) -> str:
    with pytest.raises(ModelFormatError) as info:
        from_bytes(blob, source="bad.mob")
    msg = str(info.value)
    assert msg.startswith("bad.mob: ") and "\n" not in msg, msg
    return msg[len("bad.mob: "):]


U8 = np.uint8
W = "tensor 1 ('w')"


def sparse_parts(mask, values):
    return (StorageKind.SPARSE_BITMASK, [np.asarray(values, np.float32),
                                         np.asarray(mask, U8)], 0)


def palette_parts(indices, palette, bits):
    return (StorageKind.PALETTE, [np.asarray(indices, U8), np.asarray(palette)], bits)


GOOD_MASK = [1, 0, 1, 0]  # 24 elements: bits 0 and 16 set


CASES = [
    # (id, crafted(...) arguments, expected message after "bad.mob: ")
    ("C3 kind DENSE", dict(fields={"kind": 0}), f"{W}: compressed data has unknown storage kind 0"),
    ("C3 kind 7", dict(fields={"kind": 7}), f"{W}: compressed data has unknown storage kind 7"),
    ("C4 values index", dict(fields={"values": 99}),
     f"{W}: compressed values refer to buffer 99, but the file has 3"),
    ("C4 mask index", dict(fields={"mask": 3}),
     f"{W}: compressed mask refers to buffer 3, but the file has 3"),
    ("C4 palette index", dict(parts=palette_parts([0] * 12, np.ones(2, np.float32), 4),
                              fields={"palette": 5}),
     f"{W}: compressed palette refers to buffer 5, but the file has 3"),
    ("C5 mask size", dict(parts=sparse_parts([1, 0], [1])),
     f"{W}: SPARSE_BITMASK mask has 2 bytes, expected 3 for 24 elements"),
    ("C5 mask absent", dict(fields={"mask": 0}),
     f"{W}: SPARSE_BITMASK mask has 0 bytes, expected 3 for 24 elements"),
    ("C5 popcount", dict(parts=sparse_parts([1, 0, 1], [1, 2, 3])),
     f"{W}: SPARSE_BITMASK has 12 bytes of values, expected 8 for the mask's 2 float32 "
     "elements"),
    ("C5 values absent", dict(fields={"values": 0}),
     f"{W}: SPARSE_BITMASK has 0 bytes of values, expected 20 for the mask's 5 float32 "
     "elements"),
    ("C6 bits 3", dict(parts=palette_parts([0] * 9, np.ones(2, np.float32), 3)),
     f"{W}: PALETTE index_bits is 3, must be 1, 2, 4 or 8"),
    ("C6 bits 0", dict(parts=palette_parts([0] * 3, np.ones(1, np.float32), 0)),
     f"{W}: PALETTE index_bits is 0, must be 1, 2, 4 or 8"),
    ("C6 palette bytes", dict(parts=palette_parts([0] * 12, np.ones(3, np.uint16), 4)),
     f"{W}: PALETTE palette has 6 bytes, not a whole number of float32 elements"),
    ("C6 palette empty", dict(parts=palette_parts([0] * 12, np.ones(0, np.float32), 4)),
     f"{W}: PALETTE palette has 0 entries, must be 1 to 16 for 4-bit indices"),
    ("C6 palette too big", dict(parts=palette_parts([0] * 6, np.ones(5, np.float32), 2)),
     f"{W}: PALETTE palette has 5 entries, must be 1 to 4 for 2-bit indices"),
    ("C6 indices size", dict(parts=palette_parts([0] * 11, np.ones(2, np.float32), 4)),
     f"{W}: PALETTE indices have 11 bytes, expected 12 for 24 4-bit indices"),
    ("C6 index out of range", dict(parts=palette_parts([0x20] + [0] * 11,
                                                       np.ones(2, np.float32), 4)),
     f"{W}: PALETTE index of element 1 is out of range for a palette of 2 entries"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_rule_has_its_message(case):
    _, kwargs, message = case
    with crafted(**kwargs):
        blob = to_bytes(base_graph())
    assert refusal(blob) == message


def test_trailing_bits_must_be_zero():
    g = base_graph(shape=(3, 5))  # 15 elements: 1 bit of the mask's last byte unused
    with crafted(parts=sparse_parts([1, 0x80], [1.0, 2.0])):
        assert refusal(to_bytes(g)) == (
            f"{W}: SPARSE_BITMASK mask has bits set past element 15")
    with crafted(parts=sparse_parts([1, 0x40], [1.0, 2.0])):
        assert from_bytes(to_bytes(g)).values["w"].data.reshape(-1)[[0, 14]].tolist() == [1, 2]
    for bits, last in ((1, 0x80), (2, 0x40), (4, 0x10)):  # 15 * bits is not a multiple of 8
        n = (15 * bits + 7) // 8
        with crafted(parts=palette_parts([0] * (n - 1) + [last], np.ones(2, np.float32), bits)):
            assert refusal(to_bytes(g)) == (
                f"{W}: PALETTE indices have bits set past element 15"), bits


def test_buffer_and_compressed_both_set():
    g = base_graph()
    g.add_constant("dense", np.ones((4, 6), np.float32))  # buffer 1: 96 bytes, w's size
    g.add_node("MatMul", ["x", "dense"], ["y2"], name="mm2")
    g.values["y2"].dtype, g.values["y2"].shape = "float32", ("N", 6)
    g.outputs.append("y2")
    order = ["x", "dense", "w", "y", "y2"]
    g.values = {k: g.values[k] for k in order}
    with crafted(tensor_buffer=1):
        assert refusal(to_bytes(g)) == (
            "tensor 2 ('w'): a compressed tensor must have buffer 0, has buffer 1")


def test_both_buffer_and_compressed_with_wrong_size_is_t6():
    with crafted(tensor_buffer=2):  # buffer 2 is the 3-byte mask: T6 runs first
        assert refusal(to_bytes(base_graph())) == (
            f"{W} has 3 bytes of data, expected 96 for float32[4, 6]")


def test_compressed_on_a_non_constant_is_refused():
    g = base_graph()  # the graph input carries compressed data
    g.values["x"].shape = (1, 4)
    g.values["x"].data = np.zeros((1, 4), np.float32)
    g.values["x"].storage = WeightStorage("palette", 1)
    assert refusal(to_bytes(g)) == "graph input tensor 0 ('x') has constant data"
    g = base_graph()  # an operator output carries compressed data
    g.values["y"].shape = (2, 6)
    g.values["y"].data = np.zeros((2, 6), np.float32)
    g.values["y"].storage = WeightStorage("palette", 1)
    assert "output 0 writes tensor 2 ('y'), which is already defined" in refusal(to_bytes(g))


def test_symbolic_shape_is_refused():
    g = base_graph()
    with crafted(no_checks=True):
        g.values["w"].shape = ("K", 6)
        assert refusal(to_bytes(g)) == f"{W}: a constant tensor needs a fully known shape"


def test_huge_dims_are_refused_before_any_allocation():
    """2^48 elements declared with a 3-byte mask / 3 bytes of indices: the size rules
    refuse it from the shape alone (an allocation first would be 1 PiB)."""
    for storage, message in (
            (WeightStorage("sparse"), "SPARSE_BITMASK mask has 3 bytes, expected "
                                      f"{2**45} for {2**48} elements"),
            (WeightStorage("palette", 4), f"PALETTE indices have 12 bytes, expected {2**47} "
                                          f"for {2**48} 4-bit indices")):
        g = base_graph(storage)
        g.values["w"].shape = (2**40, 2**8)
        with crafted(no_checks=True):
            assert refusal(to_bytes(g)) == f"{W}: {message}"


def test_zero_size_compressed_tensors_are_read():
    """The writer stores an empty tensor dense; a hand-built compressed one is valid too
    (all parts empty: buffer 0; a palette still has 1 to 2^bits entries)."""
    g = base_graph(shape=(0, 6))
    with crafted(parts=(StorageKind.SPARSE_BITMASK, [np.zeros(0, np.float32),
                                                     np.zeros(0, U8)], 0)):
        v = from_bytes(to_bytes(g)).values["w"]
    assert v.data.shape == (0, 6) and v.data.dtype == np.float32
    assert v.storage == WeightStorage("sparse")
    with crafted(parts=palette_parts([], np.ones(1, np.float32), 2)):
        v = from_bytes(to_bytes(g)).values["w"]
    assert v.data.shape == (0, 6) and v.storage == WeightStorage("palette", 2)
    with crafted(parts=palette_parts([], np.ones(0, np.float32), 2)):
        assert refusal(to_bytes(g)) == (
            f"{W}: PALETTE palette has 0 entries, must be 1 to 4 for 2-bit indices")
    assert to_bytes(from_bytes(to_bytes(g))) == to_bytes(g)  # written dense


def test_tensors_with_the_same_compressed_data_share_one_copy():
    g = base_graph()
    g.add_constant("w2", g.values["w"].data.copy())
    g.values["w2"].storage = WeightStorage("sparse")
    g.add_node("MatMul", ["x", "w2"], ["y2"], name="mm2")
    g.values["y2"].dtype, g.values["y2"].shape = "float32", ("N", 6)
    g.outputs.append("y2")
    blob = bytearray(to_bytes(g))
    m, t2 = file_tensor(bytes(blob), "w2")
    _, t1 = file_tensor(bytes(blob), "w")
    # point w2's values and mask at w's buffers (the writer never shares; a file may)
    for slot, value in ((6, t1.Compressed().Values()), (8, t1.Compressed().Mask())):
        tab = t2.Compressed()._tab
        p = tab.Pos + tab.Offset(slot)
        blob[p:p + 4] = int(value).to_bytes(4, "little")
    back = from_bytes(bytes(blob))
    a, b = back.values["w"].data, back.values["w2"].data
    assert same_bits(a, b) and np.shares_memory(a, b)


# ---- mutation fuzz of the compressed fields and parts ------------------------------------


def fuzz_seed_model() -> bytes:
    rng = np.random.default_rng(8)
    g = Graph("fuzz")
    g.add_input("x", "float32", (1, 13))
    specs = [("s32", "float32", (13, 5), WeightStorage("sparse")),
             ("p4", "int8", (5, 7), WeightStorage("palette", 4)),
             ("p1", "float16", (7, 3), WeightStorage("palette", 1)),
             ("s8", "uint8", (3, 9), WeightStorage("sparse"))]
    prev = "x"
    for name, dtype, shape, storage in specs:
        k = 16 if storage.bits == 4 else 2
        data = pool(dtype, k, rng, zero=True)[rng.integers(0, k, math.prod(shape))]
        data = data.reshape(shape)
        if storage.kind == "sparse":
            data[rng.random(shape) < 0.8] = 0
        g.add_value(name, dtype, shape, data=data)
        g.values[name].storage = storage
        g.add_node("MatMul", [prev, name], [name + "_y"], name=name + "_mm")
        prev = name + "_y"
    g.outputs = [prev]
    for name, dtype, shape, _ in specs:
        g.values[name + "_y"].dtype, g.values[name + "_y"].shape = "float32", (1, shape[1])
    return to_bytes(g)


def interesting_positions(blob: bytes) -> list:
    """Byte positions of every compressed tensor's CompressedData fields, its shape dims,
    and its parts' bytes and length words."""
    m = Model.GetRootAs(blob, 0)
    g = m.Graph()
    pos = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        cd = t.Compressed()
        if cd is None:
            continue
        tab = cd._tab
        for slot, size in ((4, 1), (6, 4), (8, 4), (10, 4), (12, 1)):
            off = tab.Offset(slot)
            if off:
                pos.extend(range(tab.Pos + off, tab.Pos + off + size))
        for d in range(t.ShapeLength()):
            dim = t.Shape(d)._tab
            off = dim.Offset(4)
            if off:
                pos.extend(range(dim.Pos + off, dim.Pos + off + 8))
        for k in (cd.Values(), cd.Mask(), cd.Palette()):
            if k:
                b = m.Buffers(k)
                start = b._tab.Vector(b._tab.Offset(4))
                pos.extend(range(start - 4, start + b.DataLength()))
    return sorted(set(pos))


def mutations(seed: bytes, positions, rng, count: int):
    """`count` copies of `seed`, the i-th with 1 + i % 3 of `positions` changed: a flipped
    bit (odd i) or a random byte (even i)."""
    for i in range(count):
        blob = bytearray(seed)
        for _ in range(1 + i % 3):
            p = positions[int(rng.integers(0, len(positions)))]
            if i % 2:
                blob[p] ^= 1 << int(rng.integers(0, 8))
            else:
                blob[p] = int(rng.integers(0, 256))
        yield bytes(blob)


def test_mutating_compressed_fields_never_escapes_model_format_error():
    seed = fuzz_seed_model()
    base = from_bytes(seed)
    assert {v.storage.kind for v in base.values.values() if v.storage} == {"sparse", "palette"}
    positions = interesting_positions(seed)
    outcomes = {"refused": 0, "accepted": 0}
    for blob in mutations(seed, positions, np.random.default_rng(9), 600):
        try:
            g = from_bytes(blob, source="fuzz.mob")
        except ModelFormatError as e:
            assert str(e).startswith("fuzz.mob: ") and "\n" not in str(e)
            outcomes["refused"] += 1
            continue
        outcomes["accepted"] += 1
        for v in g.values.values():
            if v.data is not None:
                assert v.data.shape == tuple(v.shape)
        try:  # what was read can be written (a mutated palette entry may be NaN: refused)
            to_bytes(g)
        except ModelFormatError as e:
            assert "NaN" in str(e)
    assert outcomes["refused"] > 100 and outcomes["accepted"] > 20, outcomes


def amplifying_file(tensors: int = 10) -> bytes:
    """`tensors` all-but-one-zero float32[256, 256] sparse constants that all point at the
    first one's 8 KiB mask (each has its own 4-byte values buffer, so their decoded copies
    are not shared): every tensor is valid on its own, together they decode to far more
    than 64 x the file."""
    g = Graph("amp")
    for i in range(tensors):
        w = np.zeros((256, 256), np.float32)
        w[0, 0] = i + 1
        g.add_constant(f"w{i}", w).storage = WeightStorage("sparse")
    g.add_input("x", "float32", (1,))
    g.add_node("Identity", ["x"], ["y"], name="id")
    g.values["y"].dtype, g.values["y"].shape = "float32", (1,)
    g.outputs = ["y"]
    encode, compressed_data = writer._encode, writer._compressed_data
    mp = pytest.MonkeyPatch()
    mp.setattr(writer, "_encode", lambda value, data: (
        encode(value, data) if value.name == "w0" else
        (StorageKind.SPARSE_BITMASK, [data.reshape(-1)[:1].copy(), np.ones(1, U8)], 0)))
    mp.setattr(writer, "_compressed_data", lambda b, kind, buffers, bits: compressed_data(
        b, kind, [buffers[0], 2], bits))  # buffer 2: w0's mask
    try:
        return to_bytes(g)
    finally:
        mp.undo()


def test_decoded_total_is_bounded_by_the_file_size():
    """Rule C7: a file cannot make the reader allocate more than 64 x its size."""
    blob = amplifying_file()
    dense = 256 * 256 * 4
    first = next(k for k in range(1, 11) if k * dense > 64 * len(blob))  # 1-based tensor count
    assert 1 < first <= 10
    assert refusal(blob) == (f"tensor {first - 1} ('w{first - 1}'): compressed constants decode "
                             f"to more than 64 times the file size ({len(blob)} bytes)")
    g = from_bytes(amplifying_file(first - 1))  # just under the bound: read, all share w0's mask
    for i in range(first - 1):
        w = g.values[f"w{i}"].data
        assert w[0, 0] == i + 1 and np.count_nonzero(w) == 1


def test_size_limit_counts_the_stored_bytes(monkeypatch):
    """The writer's file-size limit (2 GB; 64 KiB here) applies to what is written: a
    weight too big dense fits once it is stored sparse."""
    import flatbuffers

    monkeypatch.setattr(flatbuffers.Builder, "MAX_BUFFER_SIZE", 64 * 1024)
    data = np.zeros((256, 256), np.float32)  # 256 KiB dense, an 8 KiB mask sparse
    data[::17, ::13] = 1.0
    with pytest.raises(MobconvError, match="bytes of constants exceed the 2 GB limit"):
        to_bytes(one_constant_graph(data, "float32"))
    back = from_bytes(to_bytes(one_constant_graph(data, "float32", WeightStorage("sparse"))))
    assert same_bits(back.values["w"].data, data)
