"""Python API: mobconv.convert / load / Model, the frontend and backend tables, summary."""
import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mobconv
from mobconv import api
from mobconv.errors import MobconvError, ModelFormatError, UsageError
from mobconv.ir import Graph, infer_shapes
from mobconv.summary import human_bytes, human_count, summarize


def make_tiny_onnx(path, batch="batch", extra_nodes=(), ir_version=None):
    """Conv(pad 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> Softmax, 3x16x16 -> 10."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "B"),
        numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "G"),
        numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "GB"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["conv_out"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu_out"], ["pool_out"], name="gap"),
        helper.make_node("Flatten", ["pool_out"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "G", "GB"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=1, name="softmax"),
    ]
    last = "prob"
    for op in extra_nodes:  # e.g. unsupported ops appended at the end
        nodes.append(helper.make_node(op, [last], [f"{op}_out"], name=f"{op.lower()}_node"))
        last = f"{op}_out"
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if ir_version is not None:
        model.ir_version = ir_version
    onnx.save(model, str(path))
    return str(path)


def onnx_reference(path, feeds):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(str(path)).run(None, feeds)


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_onnx(tmp_path / "tiny.onnx")


def test_convert_signature_and_metadata(tiny):
    model = mobconv.convert(tiny)
    assert isinstance(model, mobconv.Model)
    assert [s.name for s in model.inputs] == ["x"]
    assert tuple(model.inputs[0].shape) == ("batch", 3, 16, 16)
    assert model.inputs[0].dtype == "float32"
    assert [s.name for s in model.outputs] == ["prob"]
    meta = model.metadata
    assert meta.converter_version == mobconv.__version__
    assert meta.source_framework == "onnx"
    assert meta.source_sha256 == hashlib.sha256(open(tiny, "rb").read()).hexdigest()
    assert meta.options["optimize"] == "true"
    stats = model.conversion_stats
    assert stats["ops_before"] >= stats["ops_after"] and stats["seconds"] >= 0


def test_convert_input_shapes_and_no_optimize(tiny):
    model = mobconv.convert(tiny, input_shapes={"x": [2, 3, 16, 16]}, optimize=False)
    assert tuple(model.inputs[0].shape) == (2, 3, 16, 16)
    assert "Relu" in [n.op for n in model.graph.nodes]
    assert model.metadata.options["optimize"] == "false"
    assert model.metadata.options["input_shapes"] == "x=2,3,16,16"
    out = model.run(backend="reference")
    assert out["prob"].shape == (2, 10)


def test_run_matches_onnx_reference(tiny):
    model = mobconv.convert(tiny)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    got = model.run({"x": x})
    (want,) = onnx_reference(tiny, {"x": x})
    np.testing.assert_allclose(got["prob"], want, rtol=1e-5, atol=1e-6)


def test_save_load_roundtrip_with_test_vector(tiny, tmp_path):
    model = mobconv.convert(tiny)
    vector = model.add_test_vector(seed=3)
    assert vector.inputs["x"].shape == (1, 3, 16, 16)  # symbolic batch -> 1
    path = tmp_path / "tiny.mob"
    model.save(path)
    loaded = mobconv.load(path)
    assert loaded.file_size == path.stat().st_size
    assert [s.name for s in loaded.inputs] == ["x"]
    assert len(loaded.test_vectors) == 1
    stored = loaded.test_vectors[0]
    np.testing.assert_array_equal(stored.inputs["x"], vector.inputs["x"])
    np.testing.assert_allclose(loaded.run(stored.inputs, backend="reference")["prob"],
                               stored.outputs["prob"], rtol=1e-6)
    # the C++ runtime (default backend) agrees within the stated fp32 tolerance
    np.testing.assert_allclose(loaded.run(stored.inputs)["prob"], stored.outputs["prob"],
                               rtol=stored.rtol, atol=stored.atol)


def test_run_random_inputs_are_seeded(tiny):
    model = mobconv.convert(tiny)
    a = model.run(seed=5)["prob"]
    b = model.run(seed=5)["prob"]
    c = model.run(seed=6)["prob"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_backends(tiny):
    model = mobconv.convert(tiny)
    assert api.resolve_backend("reference") == "reference"
    assert api.resolve_backend("auto") in api.BACKENDS
    with pytest.raises(UsageError, match="unknown backend 'gpu'"):
        model.run(backend="gpu")


def test_runtime_backend_unavailable_is_clear(tiny, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mobconv.runtime", None)  # import fails
    model = mobconv.convert(tiny)
    with pytest.raises(MobconvError, match="backend 'runtime' is not available"):
        model.run(backend="runtime")


def test_framework_detection_errors(tmp_path):
    path = tmp_path / "model.xyz"
    path.write_bytes(b"x")
    with pytest.raises(UsageError, match="cannot tell the source framework"):
        mobconv.convert(path)
    mob = tmp_path / "model.mob"
    mob.write_bytes(b"x")
    with pytest.raises(UsageError, match="already a .mob"):
        mobconv.convert(mob)
    with pytest.raises(MobconvError, match="no such file"):
        mobconv.convert(tmp_path / "missing.onnx")
    with pytest.raises(UsageError, match="unknown framework"):
        mobconv.convert(path, framework="keras")


def test_frontend_table_accepts_plugins(tmp_path, monkeypatch):
    def load_fake(path, input_shapes=None, scale=1.0):
        g = Graph("fake")
        g.add_input("a", "float32", (1, 4))
        g.add_constant("s", np.full((1, 4), scale, dtype=np.float32))
        g.add_node("Mul", ["a", "s"], ["b"])
        g.outputs = ["b"]
        infer_shapes(g)
        return g

    monkeypatch.setitem(api.FRONTENDS, "fake", api.Frontend("fake", (".fake",), load_fake))
    path = tmp_path / "m.fake"
    path.write_bytes(b"fake model")
    model = mobconv.convert(path, optimize=False, scale=2.0)
    assert model.metadata.source_framework == "fake"
    out = model.run({"a": np.ones((1, 4), np.float32)})
    np.testing.assert_array_equal(out["b"], np.full((1, 4), 2.0, np.float32))


def test_convert_unknown_input_shape_name(tiny):
    with pytest.raises(MobconvError, match="y"):
        mobconv.convert(tiny, input_shapes={"y": (1, 3, 16, 16)})


def test_load_rejects_onnx_with_hint(tiny):
    with pytest.raises(ModelFormatError, match="onnx2mob"):
        mobconv.load(tiny)


@pytest.mark.parametrize("kind", ["truncated", "random", "empty"])
def test_load_rejects_bad_files(tiny, tmp_path, kind):
    good = tmp_path / "good.mob"
    mobconv.convert(tiny).save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.mob"
    bad.write_bytes({"truncated": data[: len(data) // 2],
                     "random": np.random.default_rng(0).bytes(len(data)),
                     "empty": b""}[kind])
    with pytest.raises(ModelFormatError, match="bad.mob"):
        mobconv.load(bad)


def test_save_into_missing_directory(tiny, tmp_path):
    with pytest.raises(MobconvError, match="does not exist"):
        mobconv.convert(tiny).save(tmp_path / "nope" / "m.mob")


def test_random_inputs_dtypes_and_symbolic_dims():
    from mobconv.ir import TensorSpec

    feeds = api.random_inputs([
        TensorSpec("f", "float32", ("batch", 3)),
        TensorSpec("i", "int64", (4,)),
        TensorSpec("b", "bool", (2, 2)),
    ], seed=0)
    assert feeds["f"].shape == (1, 3) and feeds["f"].dtype == np.float32
    assert feeds["i"].dtype == np.int64 and feeds["i"].min() >= 0 and feeds["i"].max() < 10
    assert feeds["b"].dtype == bool


# ---- summary ---------------------------------------------------------------


def _graph_with(op, x_shape, w_shape, attrs=None):
    g = Graph()
    g.add_input("x", "float32", x_shape)
    g.add_constant("w", np.zeros(w_shape, np.float32))
    g.add_node(op, ["x", "w"], ["y"], attrs or {})
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def test_macs_conv_grouped_and_strided():
    g = _graph_with("Conv", (1, 8, 10, 10), (16, 4, 3, 3),
                    {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]})
    # output 1x16x5x5; each output element: 4 in-channels x 3x3
    s = summarize(g)
    assert s.macs == 16 * 5 * 5 * 4 * 9
    assert s.macs_by_op == {"Conv": s.macs}
    assert s.num_params == 16 * 4 * 9 and s.bytes_by_dtype == {"float32": 16 * 4 * 9 * 4}


def test_macs_conv_transpose_matmul_gemm():
    g = _graph_with("ConvTranspose", (1, 4, 5, 5), (4, 6, 3, 3))
    assert summarize(g).macs == 4 * 5 * 5 * 6 * 9
    g = _graph_with("MatMul", (2, 7, 5), (5, 3))
    assert summarize(g).macs == 2 * 7 * 3 * 5
    g = _graph_with("Gemm", (5, 7), (5, 3), {"transA": 1})  # A^T: 7x5 @ 5x3
    assert summarize(g).macs == 7 * 3 * 5
    g = _graph_with("MatMul", ("batch", 7, 5), (5, 3))  # symbolic dims count as 1
    assert summarize(g).macs == 7 * 3 * 5


def test_summary_histogram_and_formatting(tiny):
    s = mobconv.convert(tiny, optimize=False).summary()
    assert s.op_histogram == {"Conv": 1, "Relu": 1, "GlobalAveragePool": 1, "Flatten": 1,
                              "Gemm": 1, "Softmax": 1}
    assert s.num_params == 8 * 27 + 8 + 80 + 10
    assert s.macs == 8 * 16 * 16 * 27 + 80
    assert human_count(1_234_567) == "1.23M" and human_count(12) == "12"
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(10) == "10 B"


def test_tensorflow_pb_that_is_no_graph_names_the_file(tmp_path):
    pb = tmp_path / "frozen.pb"
    pb.write_bytes(b"\x0a\x00")  # one empty NodeDef: no name, no op
    with pytest.raises(ModelFormatError, match=r"frozen\.pb: node 0 .*has no op type"):
        mobconv.convert(pb)
