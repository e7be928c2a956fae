"""QDQ propagation (mobconv/passes/qdq_propagation.py) on hand-built ONNX QDQ graphs, with
onnxruntime as the oracle: the forms a quantization-aware TensorFlow graph takes after the
NHWC->NCHW layout pass (tests/test_tf_qat.py runs the whole TensorFlow graph), written
directly in ONNX so they run without TensorFlow:
- DQ -> MaxPool -> Transpose -> Reshape -> MatMul(DQ weight) -> Q (Dense after Flatten);
- DQ(integer filter) -> Transpose -> Reshape -> Conv (a filter quantized in another layout);
- DQ weight -> Conv -> BatchNormalization -> Q (BN not folded, negative gamma included);
- Add -> Relu -> Q.
Each op must compute in int8 and the output must stay within one output step of
onnxruntime running the graph as written (optimizations off: float ops between the
boundaries; its own QDQ propagation, on, fails on the MaxPool graph with onnxruntime's
"output_dtype INT8 does not match y_zero_point type UINT8").
"""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import mobconv

S_OUT, ZP_OUT = 0.05, -3


def _model(nodes, inits, inputs, path):
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    path.write_bytes(model.SerializeToString())
    return str(path)


def _q_dq(nodes, inits, x, y, scale, zp, name):
    inits[f"{name}_s"], inits[f"{name}_z"] = np.float32(scale), np.int8(zp)
    nodes.append(helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_z"], [f"{name}_q"]))
    nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [y]))


def _weight(inits, name, q, scales, axis):
    inits[f"{name}_q"] = q.astype(np.int8)
    inits[f"{name}_s"] = np.asarray(scales, np.float32)
    inits[f"{name}_z"] = np.zeros(np.shape(scales), np.int8)
    return helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [name],
                            axis=axis)


def _check(path, feeds, ops):
    """mobconv's int8 graph (given ops int8) vs onnxruntime within one output step."""
    model = mobconv.convert(path)
    g = model.graph
    for op in ops:
        nodes = [n for n in g.nodes if n.op == op]
        assert nodes, f"no {op} in {[n.op for n in g.nodes]}"
        for n in nodes:
            assert g.values[n.inputs[0]].dtype == "int8" and g.values[n.outputs[0]].dtype == "int8", \
                (op, [(m.op, g.values[m.outputs[0]].dtype) for m in g.nodes])
    options = ort.SessionOptions()  # the QDQ graph as written: float ops between Q/DQ
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    for backend in ("reference", "runtime"):
        got = model.run(feeds, backend=backend)["y"]
        lsb = np.round(np.abs(got - want) / S_OUT)
        assert lsb.max() <= 1, (backend, np.unique(lsb, return_counts=True))
    return model


def test_dense_after_maxpool_transpose_flatten_runs_int8(tmp_path):
    rng = np.random.default_rng(0)
    nodes, inits = [], {}
    _q_dq(nodes, inits, "x", "xd", 0.02, 3, "in")
    nodes.append(helper.make_node("MaxPool", ["xd"], ["p"], kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("Transpose", ["p"], ["t"], perm=[0, 2, 3, 1]))
    inits["shape"] = np.array([-1, 36], np.int64)
    nodes.append(helper.make_node("Reshape", ["t", "shape"], ["f"]))
    nodes.append(_weight(inits, "w", rng.integers(-127, 128, (36, 5)), rng.uniform(0.002, 0.004, 5), 1))
    nodes.append(helper.make_node("MatMul", ["f", "w"], ["m"]))
    _q_dq(nodes, inits, "m", "y", S_OUT, ZP_OUT, "out")
    path = _model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 6, 6])],
                  tmp_path / "dense.onnx")
    feeds = {"x": rng.uniform(-2.5, 2.5, (2, 4, 6, 6)).astype(np.float32)}
    model = _check(path, feeds, ["MaxPool", "Transpose", "Reshape"])
    weighted = [n for n in model.graph.nodes if n.op in ("MatMul", "Gemm")]
    assert len(weighted) == 1 and model.graph.values[weighted[0].inputs[0]].dtype == "int8"


def test_filter_quantized_in_another_layout_runs_int8(tmp_path):
    """A per-channel filter quantized as (kh, kw, cin, cout), moved to OIHW by
    Transpose + Reshape: the integers move, the per-channel axis follows (3 -> 0)."""
    rng = np.random.default_rng(1)
    nodes, inits = [], {}
    _q_dq(nodes, inits, "x", "xd", 0.03, -5, "in")
    nodes.append(_weight(inits, "w_hwio", rng.integers(-127, 128, (3, 3, 4, 6)),
                         rng.uniform(0.005, 0.01, 6), 3))
    nodes.append(helper.make_node("Transpose", ["w_hwio"], ["w_t"], perm=[3, 2, 0, 1]))
    inits["wshape"] = np.array([6, 4, 3, 3], np.int64)
    nodes.append(helper.make_node("Reshape", ["w_t", "wshape"], ["w"]))
    nodes.append(helper.make_node("Conv", ["xd", "w"], ["c"], pads=[1, 1, 1, 1]))
    _q_dq(nodes, inits, "c", "y", S_OUT, ZP_OUT, "out")
    path = _model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
                  tmp_path / "filter.onnx")
    _check(path, {"x": rng.uniform(-3, 3, (1, 4, 5, 5)).astype(np.float32)}, ["Conv"])


def test_batchnorm_after_quantized_conv_folds_into_weight_scales(tmp_path):
    """Conv(DQ(int8 W)) -> BatchNormalization -> Q: the integer weights are kept, the
    per-channel scales multiplied by |gamma / sqrt(var + eps)| (a negative factor negates
    the channel's integers), the bias becomes the BN's shift."""
    rng = np.random.default_rng(2)
    nodes, inits = [], {}
    _q_dq(nodes, inits, "x", "xd", 0.03, 0, "in")
    nodes.append(_weight(inits, "w", rng.integers(-127, 128, (6, 4, 3, 3)), rng.uniform(0.004, 0.008, 6), 0))
    nodes.append(helper.make_node("Conv", ["xd", "w"], ["c"], pads=[1, 1, 1, 1]))
    inits["g"] = np.array([1.2, -0.7, 0.5, 2.0, 0.9, -1.5], np.float32)
    inits["b"] = rng.uniform(-0.5, 0.5, 6).astype(np.float32)
    inits["mean"] = rng.uniform(-0.3, 0.3, 6).astype(np.float32)
    inits["var"] = rng.uniform(0.2, 1.5, 6).astype(np.float32)
    nodes.append(helper.make_node("BatchNormalization", ["c", "g", "b", "mean", "var"], ["bn"],
                                  epsilon=1e-3))
    _q_dq(nodes, inits, "bn", "y", S_OUT, ZP_OUT, "out")
    path = _model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 5, 5])],
                  tmp_path / "bn.onnx")
    model = _check(path, {"x": rng.uniform(-3, 3, (2, 4, 5, 5)).astype(np.float32)}, ["Conv"])
    assert not [n for n in model.graph.nodes if n.op == "BatchNormalization"]


def test_add_before_relu_runs_int8(tmp_path):
    rng = np.random.default_rng(3)
    nodes, inits = [], {}
    _q_dq(nodes, inits, "a", "ad", 0.02, 4, "qa")
    _q_dq(nodes, inits, "b", "bd", 0.03, -6, "qb")
    nodes.append(helper.make_node("Add", ["ad", "bd"], ["s"]))
    nodes.append(helper.make_node("Relu", ["s"], ["r"]))
    _q_dq(nodes, inits, "r", "y", S_OUT, -128, "out")
    shape = [2, 3, 4, 4]
    path = _model(nodes, inits, [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "ab"],
                  tmp_path / "add.onnx")
    feeds = {n: rng.uniform(-2.5, 2.5, shape).astype(np.float32) for n in "ab"}
    _check(path, feeds, ["Add", "Relu"])


def test_layout_op_before_a_graph_output_keeps_the_output_float_and_exact(tmp_path):
    """DQ -> Transpose -> graph output: the Transpose runs on the integers (a Q/DQ pair is
    put after it), the output keeps its name and float dtype and equals onnxruntime's."""
    rng = np.random.default_rng(4)
    nodes, inits = [], {}
    _q_dq(nodes, inits, "x", "xd", 0.02, 3, "in")
    nodes.append(helper.make_node("Transpose", ["xd"], ["y"], perm=[0, 2, 3, 1]))
    path = _model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
                  tmp_path / "out.onnx")
    feeds = {"x": rng.uniform(-2.5, 2.5, (1, 3, 4, 5)).astype(np.float32)}
    model = _check(path, feeds, ["Transpose"])
    assert model.graph.outputs == ["y"] and model.graph.values["y"].dtype == "float32"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    for backend in ("reference", "runtime"):
        np.testing.assert_array_equal(model.run(feeds, backend=backend)["y"], want)
