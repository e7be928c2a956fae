"""ONNX frontend: zoo networks vs onnxruntime, opset forms, loader features, errors.

Numerical tolerance against onnxruntime: max|ours - ort| / max|ort| <= 1e-4
(relative to the output's largest magnitude), on a batch of 2 random images.
"""
import hashlib
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper, version_converter  # noqa: E402

import mobconv  # noqa: E402
from mobconv.errors import ConversionError, MobconvError, UnsupportedOpsError, UsageError  # noqa: E402
from mobconv.frontends.onnx import load_onnx  # noqa: E402
from mobconv.reference import run  # noqa: E402

REL_TOL = 1e-4


def rel_err(got, want) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def ort_run(model, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    data = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    sess = ort.InferenceSession(os.fspath(data) if isinstance(data, os.PathLike) else data, so,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _optimize_or_skip():
    try:
        from mobconv.passes import optimize
    except ImportError:
        pytest.skip("mobconv.passes.optimize is not available yet")
    return optimize


# ---- the zoo -------------------------------------------------------------

ZOO = {
    "mobilenet_v2": ("model_zoo.onnx.mobilenet_v2", "build_mobilenet_v2", 224),
    "resnet18": ("model_zoo.onnx.resnet18", "build_resnet18", 224),
    "squeezenet": ("model_zoo.onnx.squeezenet", "build_squeezenet", 224),
    "tiny_cnn": ("model_zoo.onnx.tiny_cnn", "build_tiny_cnn", 32),
}


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    import importlib

    root = tmp_path_factory.mktemp("onnx_zoo")
    files = {}
    for name, (module, fn, size) in ZOO.items():
        model = getattr(importlib.import_module(module), fn)()
        path = root / f"{name}.onnx"
        onnx.save(model, path)
        files[name] = (path, size)
    return files


@pytest.mark.parametrize("optimized", [False, True], ids=["plain", "optimized"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_matches_onnxruntime(zoo_files, name, optimized):
    path, size = zoo_files[name]
    graph = load_onnx(path)
    if optimized:
        optimize = _optimize_or_skip()
        optimize(graph)
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32)
    (want,) = ort_run(path, {"input": x})
    got = run(graph, {"input": x})[graph.outputs[0]]
    assert got.shape == want.shape
    err = rel_err(got, want)
    assert err <= REL_TOL, f"{name}: max|ours-ort|/max|ort| = {err:.3g}"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_signature_and_metadata(zoo_files, name):
    path, size = zoo_files[name]
    graph = load_onnx(path)
    (spec,) = graph.signature.inputs
    assert spec.name == "input" and spec.dtype == "float32"
    assert spec.shape == ("N", 3, size, size) and spec.layout == "NCHW"
    assert graph.signature.outputs[0].shape[0] == "N"
    assert graph.inputs == ["input"]
    md = graph.metadata
    assert md.source_framework == "onnx"
    assert md.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert md.converter_version == mobconv.__version__


def test_bundled_tiny_cnn_is_small_and_matches_recipe():
    from model_zoo.onnx.tiny_cnn import BUNDLED, build_tiny_cnn

    assert os.path.getsize(BUNDLED) < 200 * 1024
    bundled = onnx.load(BUNDLED)
    assert bundled.SerializeToString() == build_tiny_cnn().SerializeToString()


def test_input_shapes_override_fixes_batch(zoo_files):
    path, _ = zoo_files["tiny_cnn"]
    graph = load_onnx(path, input_shapes={"input": (1, 3, 32, 32)})
    assert graph.signature.inputs[0].shape == (1, 3, 32, 32)
    assert graph.signature.outputs[0].shape == (1, 10)
    assert "input_shapes" in graph.metadata.options


@pytest.mark.parametrize("shapes,words", [
    ({"image": (1, 3, 32, 32)}, ["'image'", "not a graph input", "input"]),
    ({"input": (1, 3, 32)}, ["'input'", "rank 3", "rank 4"]),
    ({"input": (1, 4, 32, 32)}, ["'input'", "dim 1 = 3"]),
    ({"input": (-1, 3, 32, 32)}, ["'input'", "non-negative integer"]),
])
def test_wrong_input_shapes_override(zoo_files, shapes, words):
    path, _ = zoo_files["tiny_cnn"]
    with pytest.raises(UsageError) as err:  # the caller's mistake: exit 2
        load_onnx(path, input_shapes=shapes)
    for w in words:
        assert w in str(err.value)


# ---- older opset forms -----------------------------------------------------


def _opset7_net():
    """A small opset-7 net using the attribute forms that later became inputs."""
    rng = np.random.default_rng(0)
    arrays = {
        "w": rng.normal(0, 0.3, (8, 4, 3, 3)), "b": rng.normal(0, 0.1, 8),
        "sc": rng.uniform(0.5, 1.5, 8), "bb": rng.normal(0, 0.1, 8),
        "mm": rng.normal(0, 0.1, 8), "vv": rng.uniform(0.5, 1.5, 8),
    }
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in arrays.items()]
    inits.append(numpy_helper.from_array(np.array([0, -1], np.int64), "shape"))
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c", "sc", "bb", "mm", "vv"], ["bn"], spatial=1, momentum=0.9),
        n("Clip", ["bn"], ["r6"], min=0.0, max=6.0),
        n("Pad", ["r6"], ["p"], mode="constant", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.5),
        n("Split", ["p"], ["s1", "s2"], axis=1, split=[3, 5]),
        n("ReduceMean", ["s1"], ["rm"], axes=[2, 3], keepdims=1),
        n("Add", ["s1", "rm"], ["a"]),
        n("Upsample", ["a"], ["up"], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0]),
        n("Slice", ["up"], ["sl"], starts=[1], ends=[7], axes=[1]),
        n("Softmax", ["sl"], ["sm"], axis=1),
        n("MaxPool", ["sm"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Reshape", ["mp", "shape"], ["rs"]),
        n("Unsqueeze", ["rs"], ["us"], axes=[0]),
        n("Squeeze", ["us"], ["sq"], axes=[0]),
        n("Dropout", ["sq"], ["y"], ratio=0.3),
    ]
    # IR version 3: initializers must also be listed as graph inputs
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, "opset7", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)])
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


def _at_opset(model, opset):
    if opset == 7:
        return model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.ir_version = 7
    converted = version_converter.convert_version(m, opset)
    converted.ir_version = max(converted.ir_version, helper.find_min_ir_version_for(list(converted.opset_import)))
    onnx.checker.check_model(converted)
    return converted


@pytest.mark.parametrize("opset", [7, 9, 10, 11, 13, 18])
def test_opset_variants_match_onnxruntime(opset):
    model = _at_opset(_opset7_net(), opset)
    graph = load_onnx(model)
    assert graph.metadata.extra["onnx_opset"] == str(opset)
    x = np.random.default_rng(2).standard_normal((2, 4, 8, 8)).astype(np.float32)
    (want,) = ort_run(model, {"x": x})
    got = run(graph, {"x": x})["y"]
    assert rel_err(got, want) <= REL_TOL


def test_initializers_listed_as_inputs_become_constants():
    graph = load_onnx(_opset7_net())
    assert graph.inputs == ["x"]
    assert [s.name for s in graph.signature.inputs] == ["x"]
    assert graph.values["w"].data is not None


def test_unsupported_opset_is_a_clear_error():
    model = _opset7_net()
    model.opset_import[0].version = 5
    with pytest.raises(ConversionError, match="opset 5 is not supported.*6..28"):
        load_onnx(model)


# ---- loader features -------------------------------------------------------


def _tiny(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "t", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_external_data(tmp_path):
    w = np.random.default_rng(3).standard_normal((64, 64)).astype(np.float32)
    model = _tiny(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 64])],
        [numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.weights", size_threshold=0)
    assert (tmp_path / "ext.weights").exists()
    graph = load_onnx(path)
    np.testing.assert_array_equal(graph.values["w"].data, w)
    x = np.ones((3, 64), np.float32)
    np.testing.assert_allclose(run(graph, {"x": x})["y"], x @ w, rtol=1e-5)

    (tmp_path / "ext.weights").unlink()
    with pytest.raises(ConversionError, match=r"'w'.*ext\.weights.*does not exist"):
        load_onnx(path)


def test_symbolic_and_unknown_dims():
    model = _tiny(
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", None, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", None, 5])],
    )
    graph = load_onnx(model)
    shape = graph.signature.inputs[0].shape
    assert shape[0] == "batch" and isinstance(shape[1], str) and shape[2] == 5
    assert graph.signature.inputs[0].layout == ""  # not 4-D
    assert graph.signature.outputs[0].shape == shape


def test_constant_nodes_become_constants():
    model = _tiny(
        [helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0]),
         helper.make_node("Add", ["x", "c"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    graph = load_onnx(model)
    assert [n.op for n in graph.nodes] == ["Add"]
    np.testing.assert_array_equal(graph.values["c"].data, [1.0, 2.0])


def test_shape_subgraph_is_folded_for_static_shapes():
    model = _tiny(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Constant", [], ["i"], value_ints=[0]),
         helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
         helper.make_node("Constant", [], ["m1"], value_ints=[-1]),
         helper.make_node("Concat", ["n", "m1"], ["shape"], axis=0),
         helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])],
    )
    graph = load_onnx(model)
    assert [n.op for n in graph.nodes] == ["Reshape"]
    assert graph.signature.outputs[0].shape == (2, 12)


# ---- errors ------------------------------------------------------------------


def test_unsupported_ops_listed_at_once():
    n = helper.make_node
    model = _tiny(
        [n("Relu", ["x"], ["a"], name="relu"),
         n("NonZero", ["a"], ["nz"], name="nz1"),
         n("Det", ["a"], ["e1"], name="det1"),
         n("Det", ["e1"], ["e2"], name="det2"),
         n("FusedConv", ["e2"], ["y"], domain="com.microsoft", name="fused")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
    )
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpsError) as err:
        load_onnx(model)
    assert err.value.unsupported == {
        "NonZero": ["nz1"], "Det": ["det1", "det2"], "com.microsoft.FusedConv": ["fused"],
    }
    msg = str(err.value)
    for part in ("3 unsupported ONNX op type(s)", "Det x2 ('det1', 'det2')", "NonZero x1 ('nz1')",
                 "com.microsoft.FusedConv x1 ('fused')"):
        assert part in msg
    assert err.value.exit_code == 2


def test_unknown_attribute_names_the_node():
    model = _tiny(
        [helper.make_node("Relu", ["x"], ["y"], name="act", alpha=0.5)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(ConversionError, match=r"ONNX node 'act' \(type Relu\): unknown attribute\(s\) alpha"):
        load_onnx(model)


def test_unsupported_attribute_value_names_the_node():
    model = _tiny(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn0", spatial=0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])],
        [numpy_helper.from_array(np.ones(2, np.float32), k) for k in "sbmv"],
        opset=7,
    )
    with pytest.raises(ConversionError, match=r"'bn0'.*spatial \(0\) must be 1"):
        load_onnx(model)


def test_bad_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all \xff\xff")
    with pytest.raises(MobconvError, match="bad.onnx"):
        load_onnx(bad)
    with pytest.raises(MobconvError, match="missing.onnx"):
        load_onnx(tmp_path / "missing.onnx")


OLD_RESIZES = [
    (op, opset, mode, scales)
    for op, opset in (("Upsample", 7), ("Upsample", 9), ("Resize", 10))
    for mode in ("nearest", "linear")
    for scales in ([1, 1, 2, 3], [1, 1, 1.5, 2.5], [1, 1, 0.5, 0.6])
    if op == "Resize" or min(scales) >= 1  # Upsample only upsamples
]


@pytest.mark.parametrize("op,opset,mode,scales", OLD_RESIZES)
def test_old_resize_forms_match_onnxruntime(op, opset, mode, scales):
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 7)).astype(np.float32)
    scales = np.array(scales, np.float32)
    if opset < 9:
        nodes, inits = [helper.make_node(op, ["x"], ["y"], mode=mode, scales=scales.tolist())], []
    else:
        nodes = [helper.make_node(op, ["x", "s"], ["y"], mode=mode)]
        inits = [numpy_helper.from_array(scales, "s")]
    model = _tiny(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits, opset=opset)
    model.ir_version = 5
    (want,) = ort_run(model, {"x": x})
    got = run(load_onnx(model), {"x": x})["y"]
    assert got.shape == want.shape
    assert rel_err(got, want) <= REL_TOL


# ---- shape arithmetic on a symbolic batch (what torch.onnx exports) -------------


def _c(name, values):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(values, np.int64)))


def _flatten_batch_net():
    """x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    return [
        helper.make_node("Shape", ["x"], ["s"]), _c("i0", 0),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0), _c("ax", [0]),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]), _c("m1", [-1]),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ], (2, 3, 4), ("B", 12)


def _expand_cls_net():
    """cls.expand(B, -1, -1) as torch exports it (Where(Equal(shape, -1), 1, shape)), then concat."""
    cls = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 1, 4), "cls")
    return [
        helper.make_node("Shape", ["x"], ["s"]), _c("i0", 0),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0), _c("ax", [0]),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]), _c("m1", [-1, -1]),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Shape", ["shape"], ["len"]),
        helper.make_node("ConstantOfShape", ["len"], ["ones"],
                         value=numpy_helper.from_array(np.ones(1, np.int64))),
        _c("neg", -1), helper.make_node("Mul", ["ones", "neg"], ["negs"]),
        helper.make_node("Equal", ["shape", "negs"], ["is_neg"]),
        helper.make_node("Where", ["is_neg", "ones", "shape"], ["target"]),
        helper.make_node("Expand", ["cls", "target"], ["tokens"]),
        helper.make_node("Concat", ["tokens", "x"], ["y"], axis=1),
    ], (3, 5, 4), ("B", 6, 4), [cls]


def _reshape_product_net():
    """x.reshape(B * C, 8, -1) (MobileViT-style unfold), then back with x.shape."""
    return [
        helper.make_node("Shape", ["x"], ["s"]), _c("i0", 0), _c("i1", 1),
        helper.make_node("Gather", ["s", "i0"], ["b"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["c"], axis=0),
        helper.make_node("Mul", ["b", "c"], ["bc"]), _c("ax", [0]),
        helper.make_node("Unsqueeze", ["bc", "ax"], ["bc1"]), _c("rest", [8, -1]),
        helper.make_node("Concat", ["bc1", "rest"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Relu", ["r"], ["rr"]),
        helper.make_node("Reshape", ["rr", "s"], ["y"]),
    ], (2, 4, 8, 8), ("B", 4, 8, 8)


def _slice_resize_net():
    """x[:, :, :H] with H from the shape, Resize to Concat(Shape[:2], sizes), ConstantOfShape(B)."""
    return [
        helper.make_node("Shape", ["x"], ["s"]), _c("st", [0]), _c("en", [2]), _c("z", [0]),
        helper.make_node("Slice", ["s", "st", "en", "z"], ["nc"]),
        _c("hw", [6, 10]), helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["up"], mode="linear"),
        _c("i0", [0]), _c("i3", [3]), _c("i4", [4]),
        helper.make_node("Gather", ["s", "i0"], ["b1"], axis=0),
        helper.make_node("Shape", ["up"], ["s_up"]),
        helper.make_node("Slice", ["s_up", "i3", "i4"], ["w1"]),
        helper.make_node("Concat", ["b1", "w1"], ["bw"], axis=0),
        helper.make_node("Slice", ["up", "z", "b1", "z"], ["upb"]),  # ends = B on axis 0
        helper.make_node("ConstantOfShape", ["bw"], ["fill"],
                         value=numpy_helper.from_array(np.full(1, 0.5, np.float32))),
        _c("a2", [1, 2]), helper.make_node("Unsqueeze", ["fill", "a2"], ["fill4"]),
        helper.make_node("Mul", ["upb", "fill4"], ["y"]),
    ], (2, 3, 4, 5), ("B", 3, 6, 10)


def _arange_batch_net():
    """torch.arange(B) as the dynamo exporter writes it: Range(0, Squeeze(Shape(x, 0, 1)), 1)."""
    return [
        helper.make_node("Shape", ["x"], ["b1"], start=0, end=1),
        helper.make_node("Squeeze", ["b1"], ["b"]), _c("zero", 0), _c("one", 1),
        helper.make_node("Range", ["zero", "b", "one"], ["idx"]),
        helper.make_node("Cast", ["idx"], ["idx_f"], to=TensorProto.FLOAT), _c("col", [-1, 1, 1]),
        helper.make_node("Reshape", ["idx_f", "col"], ["idx3"]),
        helper.make_node("Add", ["x", "idx3"], ["y"]),
    ], (2, 3, 4), ("B", 3, 4)


SYMBOLIC_NETS = {
    "arange_batch": _arange_batch_net,
    "flatten_batch": _flatten_batch_net,
    "expand_cls_token": _expand_cls_net,
    "reshape_product": _reshape_product_net,
    "slice_resize_fill": _slice_resize_net,
}


@pytest.mark.parametrize("optimized", [False, True], ids=["plain", "optimized"])
@pytest.mark.parametrize("name", sorted(SYMBOLIC_NETS))
def test_symbolic_batch_shape_chains(name, optimized):
    nodes, shape, out_shape, *inits = SYMBOLIC_NETS[name]()
    model = _tiny(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ("B",) + shape[1:])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                  inits[0] if inits else (), opset=17)
    model.ir_version = 8  # onnxruntime reads up to IR 13
    graph = load_onnx(model)
    if optimized:
        _optimize_or_skip()(graph)
    assert graph.signature.inputs[0].shape[0] == "B"
    assert graph.signature.outputs[0].shape == out_shape
    assert "Shape" not in {n.op for n in graph.nodes}
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch,) + shape[1:]).astype(np.float32)
        (want,) = ort_run(model, {"x": x})
        got = run(graph, {"x": x})["y"]
        assert got.shape == want.shape
        assert rel_err(got, want) <= REL_TOL


def test_symbolic_dims_needed_at_run_time_stay_a_shape_computation():
    """Two unrelated symbolic dims in one Reshape target cannot become a constant: the
    Shape chain stays in the graph (evaluated at run time) and the output shape is exact."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), _c("i", [0, 1]),
             helper.make_node("Gather", ["s", "i"], ["ab"], axis=0), _c("m1", [-1]),
             helper.make_node("Concat", ["m1", "ab"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    model = _tiny(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["A", "B", 4])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    graph = load_onnx(model)
    assert graph.signature.outputs[0].shape == (4, "A", "B")
    for a, b in ((1, 2), (3, 5)):
        x = np.random.default_rng(a).standard_normal((a, b, 4)).astype(np.float32)
        want = x.reshape(-1, a, b)
        np.testing.assert_array_equal(run(graph, {"x": x})["y"], want)
