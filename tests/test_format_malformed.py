"""Malformed .mob input always gives a one-line ModelFormatError, never another exception."""
import numpy as np
import pytest

from mobconv.errors import ModelFormatError
from mobconv.formats import from_bytes, read_model, to_bytes, writer
from mobconv.formats.fb import Attribute, Operator, Tensor
from mobconv.ir.graph import Graph, QuantParams, TestVector


def small_graph() -> Graph:
    g = Graph("small")
    g.add_input("x", "float32", ("batch", 3))
    g.add_constant("w", np.arange(12, dtype=np.float32).reshape(3, 4))
    g.add_value("q", "int8", (4,), data=np.arange(4, dtype=np.int8),
                quant=QuantParams([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], axis=0))
    g.add_node("MatMul", ["x", "w"], ["y"], {"alpha": 0.5, "names": ["a"], "k": [1, 2]})
    g.add_node("Add", ["y", "q"], ["z"], {"t": np.ones(3, np.float32)})
    g.values["y"].dtype = g.values["z"].dtype = "float32"
    g.outputs = ["z"]
    g.test_vectors = [TestVector({"x": np.ones((1, 3), np.float32)},
                                 {"z": np.ones((1, 4), np.float32)})]
    return g


VALID = to_bytes(small_graph())


def expect_error(data, match=None):
    """Parse `data`; a ModelFormatError is fine, any other exception fails the test."""
    try:
        from_bytes(data, source="bad.mob")
    except ModelFormatError as e:
        msg = str(e)
        assert msg.startswith("bad.mob: ") and "\n" not in msg, msg
        if match:
            assert match in msg, msg
        return msg
    return None


def test_valid_file_parses():
    assert from_bytes(VALID).nodes[0].op == "MatMul"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mob"
    path.write_bytes(b"")
    with pytest.raises(ModelFormatError, match=f"^{path}: empty file"):
        read_model(path)
    assert expect_error(b"", "empty file")


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="cannot read model file"):
        read_model(tmp_path / "nope.mob")


def test_png_given_as_mob(tmp_path):
    path = tmp_path / "image.mob"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(ModelFormatError, match=r"image.mob: not a mobconv model file \(bad "
                                               r"identifier"):
        read_model(path)


def test_onnx_given_as_mob(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "model.mob"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(ModelFormatError, match="not a mobconv model file"):
        read_model(path)


def test_newer_major_version_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(writer, "FORMAT_VERSION", (2, 0))
    path = tmp_path / "new.mob"
    writer.write_model(small_graph(), path)
    with pytest.raises(ModelFormatError) as info:
        read_model(path)
    assert str(info.value) == (f"{path}: model format version 2.0 is newer than this mobconv "
                               "supports (1.x); upgrade mobconv")


def test_newer_minor_version_is_read(monkeypatch):
    monkeypatch.setattr(writer, "FORMAT_VERSION", (1, 7))
    assert from_bytes(to_bytes(small_graph())).outputs == ["z"]


def test_truncated_at_every_cut_point():
    for cut in range(len(VALID)):
        assert expect_error(VALID[:cut]) is not None, f"file cut at {cut} bytes was accepted"


def test_random_bytes():
    rng = np.random.default_rng(1)
    for i in range(200):
        data = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        if i % 2:  # get past the identifier check into the structural walk
            data = data[:4] + b"MOB1" + data[8:]
        expect_error(data)


def test_bit_flips_and_byte_mutations():
    rng = np.random.default_rng(2)
    errors = 0
    for i in range(400):
        data = bytearray(VALID)
        for _ in range(1 + i % 4):
            pos = int(rng.integers(0, len(data)))
            if i % 3:
                data[pos] ^= 1 << int(rng.integers(0, 8))
            else:
                data[pos] = int(rng.integers(0, 256))
        errors += expect_error(bytes(data)) is not None
    assert errors > 50  # most mutations hit structure, not payload


def test_mutated_header_bytes_every_position():
    """Set every byte of the non-constant part of the file to 0xFF in turn."""
    for pos in range(0, len(VALID)):
        data = bytearray(VALID)
        data[pos] = 0xFF
        expect_error(bytes(data))


# ---- semantic checks: files that are structurally fine but wrong ------------------


def build_with(monkeypatch, module, name, replace):
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda b, x: original(b, replace(x)))
    return to_bytes(small_graph())


def test_unknown_op_type(monkeypatch):
    data = build_with(monkeypatch, Operator, "AddType", lambda t: 9999)
    expect_error(data, "has unknown op type 9999")


def test_tensor_index_out_of_range(monkeypatch):
    real = writer._idx
    monkeypatch.setattr(writer, "_idx", lambda index, n, what: 57 if n == "w" else real(index, n,
                                                                                         what))
    expect_error(to_bytes(small_graph()), "input refers to tensor 57, but the graph has")


def test_buffer_index_out_of_range(monkeypatch):
    data = build_with(monkeypatch, Tensor, "AddBuffer", lambda i: i + 40 if i else 0)
    expect_error(data, "refers to buffer 4")


def test_buffer_size_mismatch(monkeypatch):
    data = build_with(monkeypatch, Tensor, "AddDtype", lambda d: 7)  # everything int64
    expect_error(data, "bytes of data, expected")


def test_unknown_dtype(monkeypatch):
    data = build_with(monkeypatch, Tensor, "AddDtype", lambda d: 42)
    expect_error(data, "unknown dtype code 42")


def test_attribute_tensor_index_out_of_range(monkeypatch):
    data = build_with(monkeypatch, Attribute, "AddTensor", lambda i: 1000)
    expect_error(data, "refers to tensor 1000")


def test_unknown_attribute_type(monkeypatch):
    data = build_with(monkeypatch, Attribute, "AddType", lambda t: 99)
    expect_error(data, "unknown attribute type 99")


def test_quantization_length_mismatch(monkeypatch):
    monkeypatch.setattr(writer, "quant_problem", lambda *a: "")
    g = small_graph()
    g.values["q"].quant = QuantParams([0.1, 0.2], [0, 0], axis=0)
    expect_error(to_bytes(g), "2 scales for axis 0 of size 4")
    g.values["q"].quant = QuantParams([0.1], [0, 0])
    expect_error(to_bytes(g), "1 scales but 2 zero points")
    g.values["q"].quant = QuantParams([0.1], [0], axis=3)
    expect_error(to_bytes(g), "axis 3 is out of range")


def test_newer_op_version_is_refused(monkeypatch):
    from mobconv.ops import load_all

    spec = load_all()["MatMul"]
    data = build_with(monkeypatch, Operator, "AddVersion",
                      lambda v: spec.version + 1 if v == spec.version else v)
    expect_error(data, "upgrade mobconv")


# ---- hand-built files: sharing ------------------------------------------------------


def hand_built(tensor_refs, buffer_bytes=4096, names=None):
    """A model whose Graph.tensors lists the Tensor tables `tensor_refs` (indices into the
    distinct tables named `names`), each a float32 constant on buffer 1."""
    import flatbuffers

    from mobconv.formats.fb import Buffer, Dim, Graph as FbGraph, Model

    b = flatbuffers.Builder(1024)
    data = b.CreateNumpyVector(np.zeros(buffer_bytes, np.uint8))
    Buffer.Start(b)
    empty = Buffer.End(b)
    Buffer.Start(b)
    Buffer.AddData(b, data)
    full = Buffer.End(b)
    tables = []
    for name in names or ["t"]:
        n = b.CreateString(name)
        Dim.Start(b)
        Dim.AddValue(b, buffer_bytes // 4)
        dim = Dim.End(b)
        b.StartVector(4, 1, 4)
        b.PrependUOffsetTRelative(dim)
        shape = b.EndVector()
        Tensor.Start(b)
        Tensor.AddName(b, n)
        Tensor.AddShape(b, shape)
        Tensor.AddBuffer(b, 1)
        tables.append(Tensor.End(b))
    b.StartVector(4, len(tensor_refs), 4)
    for k in reversed(tensor_refs):
        b.PrependUOffsetTRelative(tables[k])
    tensors = b.EndVector()
    b.StartVector(4, 2, 4)
    b.PrependUOffsetTRelative(full)
    b.PrependUOffsetTRelative(empty)
    buffers = b.EndVector()
    outputs = b.CreateNumpyVector(np.array([0], "<i4"))
    FbGraph.Start(b)
    FbGraph.AddTensors(b, tensors)
    FbGraph.AddOutputs(b, outputs)
    graph = FbGraph.End(b)
    Model.Start(b)
    Model.AddVersionMajor(b, 1)
    Model.AddGraph(b, graph)
    Model.AddBuffers(b, buffers)
    b.Finish(Model.End(b), file_identifier=b"MOB1")
    return bytes(b.Output())


def test_tensors_sharing_a_buffer_share_one_copy():
    g = from_bytes(hand_built([0, 1], names=["a", "b"]))
    a, b = g.values["a"].data, g.values["b"].data
    assert a.shape == (1024,) and np.shares_memory(a, b)


def test_one_table_referenced_many_times_is_refused():
    expect_error(hand_built([0] * 5000), "referenced so many times")
