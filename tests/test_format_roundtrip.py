"""IR Graph -> .mob -> IR Graph is lossless; constant buffers are 64-byte aligned."""
import os

import numpy as np
import pytest

from mobconv.errors import MobconvError
from mobconv.formats import FORMAT_VERSION, from_bytes, read_model, to_bytes, write_model
from mobconv.formats.fb.AttrType import AttrType
from mobconv.formats.fb.Model import Model
from mobconv.ir.graph import (Graph, Metadata, Preprocessing, QuantParams, Signature, TensorSpec,
                              TestVector)
from mobconv.ops import load_all

def f32(*values):
    """Values exactly representable in float32 (what the file stores), as Python floats."""
    result = [float(np.float32(v)) for v in values]
    return result[0] if len(values) == 1 else result


def rich_graph() -> Graph:
    """A graph touching every field of the format (floats are float32-exact, as from a
    frontend, so the round trip is bit-exact)."""
    rng = np.random.default_rng(0)
    g = Graph("rich")
    g.add_input("x", "float32", ("batch", 3, "h", "w"))
    g.add_input("mask", "bool", (1, "n"))
    g.add_constant("w_f32", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    g.add_constant("w_f16", rng.standard_normal((5, 7)).astype(np.float16))
    g.add_value("w_bf16", "bfloat16", (3, 2), data=rng.integers(0, 2**16, (3, 2), dtype=np.uint16))
    g.add_value("w_i8", "int8", (4, 3), data=rng.integers(-128, 128, (4, 3), dtype=np.int8),
                quant=QuantParams(f32(0.5, 0.25, 0.125, 0.1), [0, 1, -2, 3], axis=0))
    g.add_value("w_u8", "uint8", (13,), data=rng.integers(0, 256, 13, dtype=np.uint8),
                quant=QuantParams([f32(0.02)], [128]))
    g.add_constant("w_i16", rng.integers(-2**15, 2**15, (2, 2), dtype=np.int16))
    g.add_constant("w_i32", rng.integers(-2**31, 2**31, (6,), dtype=np.int32))
    g.add_constant("w_i64", np.array([2**62, -2**63, 0, 2**63 - 1], dtype=np.int64))
    g.add_constant("w_bool", np.array([[True, False, True]]))
    g.add_constant("scalar", np.array(3.5, dtype=np.float32))
    g.add_constant("empty", np.zeros((0, 4), dtype=np.float32))
    g.add_node("Conv", ["x", "w_f32", ""], ["y"], {
        "i": 7, "flag": True, "neg": -(2**62), "f": f32(0.1), "tiny": f32(1e-5), "s": "SAME",
        "ints": [1, -2, 3], "floats": f32(0.5, 1.25, -3.1), "strings": ["a", "", "ünï"],
        "empty_ints": [], "t": np.arange(6, dtype=np.int64).reshape(2, 3),
        "t16": np.ones((2,), np.float16),
    })
    g.add_node("Relu", ["y"], ["z"], name="relu_1")
    g.add_node("Add", ["z", "scalar"], ["out"])
    g.add_node("Split", ["out"], ["s0", "", "s2"], {"axis": 1})
    for name in ("y", "z", "out", "s0", "s2"):
        g.values[name].dtype = "float32"
    g.values["y"].shape = g.values["out"].shape = ("batch", 4, "h", "w")
    g.values["z"].quant = QuantParams([f32(0.05)], [0])
    g.outputs = ["out", "s2"]
    g.signature = Signature(
        inputs=[TensorSpec("x", "float32", ("batch", 3, "h", "w"), "NCHW"),
                TensorSpec("mask", "bool", (1, "n"))],
        outputs=[TensorSpec("out", "float32", ("batch", 4, "h", "w"), "NCHW"),
                 TensorSpec("s2", "float32", ())],
        preprocessing=Preprocessing(f32(123.675, 116.28, 103.53), f32(0.017, 0.0175, 0.0174),
                                    "RGB"),
    )
    g.metadata = Metadata(producer="mobconv", converter_version="0.1.0",
                          source_framework="onnx", source_sha256="ab" * 32,
                          min_runtime_version="0.1.0",
                          options={"quantize": "int8", "fuse": "true"},
                          extra={"author": "me", "note": "ünicode"})
    g.test_vectors = [
        TestVector({"x": rng.standard_normal((1, 3, 4, 4)).astype(np.float32),
                    "mask": np.array([[True, False]])},
                   {"out": rng.standard_normal((1, 4, 4, 4)).astype(np.float32)},
                   rtol=f32(1e-4), atol=f32(1e-5)),
        TestVector({"x": np.zeros((2, 3, 1, 1), np.float32)}, {}, rtol=f32(0.01), atol=0.5),
    ]
    return g


def assert_arrays_equal(a, b, where):
    assert isinstance(b, np.ndarray), where
    assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape, b.shape)
    assert a.tobytes() == b.tobytes(), where


def assert_graphs_equal(g1: Graph, g2: Graph):
    assert g1.name == g2.name
    assert list(g1.values) == list(g2.values)
    for name, v1 in g1.values.items():
        v2 = g2.values[name]
        assert (v1.dtype, v1.shape, v1.quant) == (v2.dtype, v2.shape, v2.quant), name
        assert (v1.data is None) == (v2.data is None), name
        if v1.data is not None:
            assert_arrays_equal(v1.data, v2.data, name)
    assert len(g1.nodes) == len(g2.nodes)
    for n1, n2 in zip(g1.nodes, g2.nodes):
        assert (n1.op, n1.name, n1.inputs, n1.outputs) == (n2.op, n2.name, n2.inputs, n2.outputs)
        assert sorted(n1.attrs) == sorted(n2.attrs), n1.name
        for k, a in n1.attrs.items():
            if isinstance(a, np.ndarray):
                assert_arrays_equal(a, n2.attrs[k], f"{n1.name}.{k}")
            else:
                expected = int(a) if isinstance(a, bool) else a
                assert n2.attrs[k] == expected and type(n2.attrs[k]) is type(expected), k
    assert (g1.inputs, g1.outputs) == (g2.inputs, g2.outputs)
    assert g1.signature == g2.signature
    assert g1.metadata == g2.metadata
    assert len(g1.test_vectors) == len(g2.test_vectors)
    for t1, t2 in zip(g1.test_vectors, g2.test_vectors):
        assert (t1.rtol, t1.atol) == (t2.rtol, t2.atol)
        for d1, d2 in ((t1.inputs, t2.inputs), (t1.outputs, t2.outputs)):
            assert list(d1) == list(d2)
            for k in d1:
                assert_arrays_equal(d1[k], d2[k], k)


def test_roundtrip_is_lossless():
    g = rich_graph()
    data = to_bytes(g)
    assert data[4:8] == b"MOB1"
    g2 = from_bytes(data)
    assert_graphs_equal(g, g2)
    assert to_bytes(g2) == data  # and stable


def test_bfloat16_holds_raw_bits():
    g = from_bytes(to_bytes(rich_graph()))
    assert g.values["w_bf16"].dtype == "bfloat16"
    assert g.values["w_bf16"].data.dtype == np.uint16


def test_file_header_and_versions():
    m = Model.GetRootAs(to_bytes(rich_graph()), 0)
    assert (m.VersionMajor(), m.VersionMinor()) == FORMAT_VERSION
    assert m.Buffers(0).DataLength() == 0  # buffer 0 is the empty buffer


def vector_start(table, slot):
    """Absolute file offset of the first element of the vector in vtable slot `slot`."""
    return table._tab.Vector(table._tab.Offset(slot))


def test_constant_buffers_are_64_byte_aligned():
    data = to_bytes(rich_graph())
    m = Model.GetRootAs(data, 0)
    starts = []
    for i in range(1, m.BuffersLength()):
        b = m.Buffers(i)
        starts.append(vector_start(b, 4))
    assert len(starts) == 13  # 11 constants + 2 TENSOR attributes
    assert all(s % 64 == 0 for s in starts), starts
    for i in range(m.TestVectorsLength()):
        tv = m.TestVectors(i)
        for k in range(tv.InputsLength()):
            assert vector_start(tv.Inputs(k), 10) % 16 == 0


def test_attribute_kinds_in_file():
    m = Model.GetRootAs(to_bytes(rich_graph()), 0)
    op = m.Graph().Operators(0)
    kinds = {op.Attributes(j).Name().decode(): op.Attributes(j).Type()
             for j in range(op.AttributesLength())}
    names = [op.Attributes(j).Name().decode() for j in range(op.AttributesLength())]
    assert names == sorted(names)
    assert kinds["i"] == kinds["flag"] == AttrType.INT
    assert kinds["f"] == AttrType.FLOAT and kinds["s"] == AttrType.STRING
    assert kinds["ints"] == kinds["empty_ints"] == AttrType.INTS
    assert kinds["floats"] == AttrType.FLOATS and kinds["strings"] == AttrType.STRINGS
    assert kinds["t"] == AttrType.TENSOR


def test_empty_list_attribute_takes_registry_kind(monkeypatch):
    from mobconv.ops.registry import REGISTRY, Attr, AttrKind, OpSpec

    load_all()
    spec = OpSpec("Mish", ("X",), ("Y",), (Attr("scales", AttrKind.FLOATS, []),), lambda x: x,
                  version=3, attr_index={"scales": Attr("scales", AttrKind.FLOATS, [])})
    monkeypatch.setitem(REGISTRY, "Mish", spec)
    g = Graph()
    g.add_input("x", "float32", (2,))
    g.add_node("Mish", ["x"], ["y"], {"scales": [], "other": []})
    g.values["y"].dtype = "float32"
    op = Model.GetRootAs(to_bytes(g), 0).Graph().Operators(0)
    kinds = {op.Attributes(j).Name().decode(): op.Attributes(j).Type() for j in range(2)}
    assert kinds == {"scales": AttrType.FLOATS, "other": AttrType.INTS}
    assert op.Version() == 3


def test_op_version_defaults_to_registry_or_1():
    registry = load_all()
    m = Model.GetRootAs(to_bytes(rich_graph()), 0)
    for i in range(m.Graph().OperatorsLength()):
        op = m.Graph().Operators(i)
        spec = registry.get(rich_graph().nodes[i].op)
        assert op.Version() == (spec.version if spec else 1)


def test_unknown_shape_and_minimal_graph_roundtrip():
    g = Graph("min")
    g.add_input("a", "int32", ())
    g.add_value("b", "int32")  # shape not inferred yet
    g.add_node("Identity", ["a"], ["b"])
    g.values["b"].dtype = "int32"
    g.outputs = ["b"]
    g2 = from_bytes(to_bytes(g))
    assert g2.values["a"].shape == () and g2.values["b"].shape is None
    assert g2.signature == Signature() and g2.metadata == Metadata() and g2.test_vectors == []


def test_write_and_read_model_file(tmp_path):
    path = tmp_path / "m.mob"
    g = rich_graph()
    write_model(g, path)
    assert os.listdir(tmp_path) == ["m.mob"]
    assert_graphs_equal(g, read_model(path))
    assert_graphs_equal(g, read_model(str(path)))


def test_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "m.mob"
    path.write_bytes(b"old")
    g = rich_graph()
    g.nodes[0].op = "NoSuchOp"
    with pytest.raises(MobconvError, match="NoSuchOp"):
        write_model(g, path)
    assert os.listdir(tmp_path) == ["m.mob"] and path.read_bytes() == b"old"


@pytest.mark.parametrize("mutate, message", [
    (lambda g: setattr(g.values["y"], "dtype", None), "dtype is unknown"),
    (lambda g: g.nodes[1].inputs.__setitem__(0, "nope"), "'nope'"),
    (lambda g: setattr(g.values["w_i8"], "quant", QuantParams([1.0, 2.0], [0, 0], 0)),
     "2 scales for axis 0 of size 4"),
    (lambda g: setattr(g.values["w_f32"], "shape", (4, 3)), "does not match"),
    (lambda g: g.nodes[0].attrs.__setitem__("bad", {"x": 1}), "'bad'"),
    (lambda g: g.nodes[0].attrs.__setitem__("big", 2**64), "64 bits"),
])
def test_writer_refuses_bad_graphs(mutate, message):
    g = rich_graph()
    mutate(g)
    with pytest.raises(MobconvError, match=message):
        to_bytes(g)


def test_large_model_writes_fast(tmp_path):
    g = Graph("big")
    g.add_input("x", "float32", (1, 1024))
    weights = [np.full((1024, 1024), i, dtype=np.float32) for i in range(32)]  # 128 MB
    prev = "x"
    for i, w in enumerate(weights):
        g.add_constant(f"w{i}", w)
        g.add_node("MatMul", [prev, f"w{i}"], [f"h{i}"])
        g.values[f"h{i}"].dtype = "float32"
        prev = f"h{i}"
    g.outputs = [prev]
    path = tmp_path / "big.mob"
    write_model(g, path)  # bulk copies (no per-byte Python loop); timing is not asserted
    assert path.stat().st_size > 128 * 2**20
    g2 = read_model(path)
    assert g2.values["w31"].data[5, 7] == 31


def test_reader_accepts_bytearray_and_memoryview():
    g = rich_graph()
    data = to_bytes(g)
    for view in (bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert_graphs_equal(g, from_bytes(view))


def test_floats_come_back_as_the_stored_float32():
    g = Graph()
    g.add_input("x", "float32", (1,))
    g.add_node("LeakyRelu", ["x"], ["y"], {"alpha": 0.1, "list": [0.1, 2]})
    g.values["y"].dtype = "float32"
    g.outputs = ["y"]
    g.test_vectors = [TestVector({}, {})]  # default rtol=1e-4
    g2 = from_bytes(to_bytes(g))
    assert g2.nodes[0].attrs == {"alpha": f32(0.1), "list": [f32(0.1), 2.0]}
    assert g2.test_vectors[0].rtol == f32(1e-4)
    assert to_bytes(g2) == to_bytes(g)


def test_converted_onnx_model_roundtrips_exactly():
    from pathlib import Path

    fixture = Path(__file__).resolve().parent.parent / "model_zoo" / "onnx" / "tiny_cnn.onnx"
    from mobconv.frontends.onnx import load_onnx

    g = load_onnx(str(fixture))
    data = to_bytes(g)
    assert_graphs_equal(g, from_bytes(data))
    assert to_bytes(from_bytes(data)) == data


def test_all_zero_zero_points_are_omitted_and_read_back_as_zeros():
    """Symmetric int8 weights and int32 biases carry zero points 0 per channel: the writer
    leaves the vector out (8 bytes a channel) and the reader restores the zeros."""
    g = Graph("zp")
    n = 64
    g.add_value("x", "float32", [n])
    g.add_value("w", "int8", [n], data=np.arange(n, dtype=np.int8),
                quant=QuantParams([np.float32(0.5)] * n, [0] * n, axis=0))
    g.add_value("v", "int8", [n], data=np.arange(n, dtype=np.int8),
                quant=QuantParams([np.float32(0.5)] * n, [0] * (n - 1) + [3], axis=0))
    g.add_value("y", "float32", [n])
    g.add_node("Add", ["x", "x"], ["y"], name="add")
    g.inputs, g.outputs = ["x"], ["y"]
    data = to_bytes(g)
    back = from_bytes(data)
    assert back.values["w"].quant.zero_points == [0] * n
    assert back.values["v"].quant.zero_points == [0] * (n - 1) + [3]
    g.values["w"].quant = QuantParams([np.float32(0.5)] * n, [0] * (n - 1) + [1], axis=0)
    assert len(to_bytes(g)) >= len(data) + 8 * n  # the non-zero vector is stored whole
