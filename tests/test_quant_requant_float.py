"""The float32 requantization rule (docs/quantization.md section 2) against onnxruntime itself.

An imported ONNX QDQ/QOperator model computes with the arithmetic of the framework that
quantized it: metadata `quantization.requantize` = "float32". Here onnxruntime's own int8
kernels (QLinearConv, QLinearMatMul, com.microsoft QLinearAveragePool and
QLinearGlobalAveragePool) are the independent oracle: on random int8/uint8 data with random
scales and zero points, quant_math under the float32 rule gives the same integers, every
element (the fixed-point rule differs at near-ties: test_runtime_int8's hand-worked ties). Also: the ONNX
import marks quantized models, a float model and our own quantizer's output keep the default,
and `mobconv info` names the rule.
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import mobconv
from mobconv.ir import QuantParams
from mobconv.ops import quant_math as qm

Q = QuantParams
ONNX_DTYPE = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8}
RANGE = {"int8": (-128, 127), "uint8": (0, 255)}


def _ort_run(nodes, inputs, output, consts, feeds, dtype, domain_ms=False):
    """Run a one-node ONNX model on onnxruntime (graph optimizations off: the op's own kernel)."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, ONNX_DTYPE[dtype], s) for n, s in inputs],
                              [helper.make_tensor_value_info(output, ONNX_DTYPE[dtype], None)], inits)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid("com.microsoft", 1)] if domain_ms else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _params(rng, dtype, n=1, lo=-3, hi=-1):
    scales = (10 ** rng.uniform(lo, hi, n)).astype(np.float32)
    a, b = RANGE[dtype]
    zps = rng.integers(a, b + 1, n).astype(dtype)
    return scales, zps


def _scalar(v):
    return np.asarray(v).reshape(())


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("group", [1, 4])
def test_qlinearconv_equals_onnxruntime_under_the_float32_rule(dtype, group):
    rng = np.random.default_rng(5 + group + len(dtype))
    a, b = RANGE[dtype]
    x = rng.integers(a, b + 1, (2, 8, 9, 9)).astype(dtype)
    m = 8
    w = rng.integers(-127, 128, (m, 8 // group, 3, 3)).astype(np.int8)
    xs, xz = _params(rng, dtype)
    ws = (10 ** rng.uniform(-3, -1, m)).astype(np.float32)
    ys, yz = _params(rng, dtype, lo=-2, hi=0)
    bias = rng.integers(-5000, 5000, m).astype(np.int32)
    attrs = dict(pads=[1, 1, 1, 1], strides=[2, 1], group=group)
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], **attrs)
    consts = {"xs": _scalar(xs), "xz": _scalar(xz), "w": w, "ws": ws, "wz": np.zeros(m, np.int8),
              "ys": _scalar(ys), "yz": _scalar(yz), "b": bias}
    want = _ort_run([node], [("x", x.shape)], "y", consts, {"x": x}, dtype)
    xq, yq = Q([float(xs[0])], [int(xz[0])]), Q([float(ys[0])], [int(yz[0])])
    wq = Q(ws.tolist(), [0] * m, 0)
    got = qm.conv(x, xq, w, wq, bias, yq, dtype, requantize="float32", **attrs)
    assert want.size > 500 and len(np.unique(want)) > 20
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("per_column", [False, True])
def test_qlinearmatmul_equals_onnxruntime_under_the_float32_rule(dtype, per_column):
    rng = np.random.default_rng(11 + per_column + len(dtype))
    a_lo, a_hi = RANGE[dtype]
    n = 16
    a = rng.integers(a_lo, a_hi + 1, (3, 40, 24)).astype(dtype)
    bmat = rng.integers(a_lo, a_hi + 1, (24, n)).astype(dtype)
    as_, az = _params(rng, dtype)
    bs, bz = _params(rng, dtype, n if per_column else 1)
    ys, yz = _params(rng, dtype, lo=-1, hi=0.5)
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    consts = {"as": _scalar(as_), "az": _scalar(az), "b": bmat, "bs": bs if per_column else _scalar(bs),
              "bz": bz if per_column else _scalar(bz), "ys": _scalar(ys), "yz": _scalar(yz)}
    want = _ort_run([node], [("a", a.shape)], "y", consts, {"a": a}, dtype)
    bq = Q(bs.tolist(), bz.astype(np.int64).tolist(), 1 if per_column else None)
    got = qm.matmul(a, Q([float(as_[0])], [int(az[0])]), bmat, bq, Q([float(ys[0])], [int(yz[0])]), dtype,
                    requantize="float32")
    assert len(np.unique(want)) > 20
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("op,attrs", [
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("GlobalAveragePool", {}),
])
@pytest.mark.parametrize("same", [True, False])
def test_qlinear_pools_equal_onnxruntime_under_the_float32_rule(dtype, op, attrs, same):
    rng = np.random.default_rng(17 + len(op) + len(attrs) + same)
    lo, hi = RANGE[dtype]
    x = rng.integers(lo, hi + 1, (2, 5, 8, 8)).astype(dtype)
    xs, xz = _params(rng, dtype)
    ys, yz = (xs, xz) if same else _params(rng, dtype)
    node = helper.make_node("QLinear" + op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", **attrs)
    consts = {"xs": _scalar(xs), "xz": _scalar(xz), "ys": _scalar(ys), "yz": _scalar(yz)}
    want = _ort_run([node], [("x", x.shape)], "y", consts, {"x": x}, dtype, domain_ms=True)
    xq, yq = Q([float(xs[0])], [int(xz[0])]), Q([float(ys[0])], [int(yz[0])])
    if op == "GlobalAveragePool":
        got = qm.global_average_pool(x, xq, dtype, "float32", yq)
    else:
        got = qm.average_pool(x, xq, dtype, "float32", yq, **attrs)
    np.testing.assert_array_equal(got, want)


def _qdq_model(path):
    """A float Conv quantized by onnxruntime's quantize_static (QDQ)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    float_path = str(path / "float.onnx")
    with open(float_path, "wb") as f:
        f.write(model.SerializeToString())

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(float_path, str(path / "qdq.onnx"), Reader(), per_channel=True, weight_type=QuantType.QInt8)
    return float_path, str(path / "qdq.onnx")


def test_import_marks_the_float32_rule_and_info_shows_it(tmp_path, capsys):
    from mobconv.cli.main import main

    float_path, qdq_path = _qdq_model(tmp_path)
    assert qm.REQUANTIZE_KEY not in mobconv.convert(float_path).graph.metadata.extra
    model = mobconv.convert(qdq_path)
    assert model.graph.metadata.extra[qm.REQUANTIZE_KEY] == "float32"
    assert any(n.op == "Conv" and model.graph.values[n.outputs[0]].quant is not None for n in model.graph.nodes)
    model.save(str(tmp_path / "m.mob"))
    loaded = mobconv.load(str(tmp_path / "m.mob"))
    assert qm.requantize_mode(loaded.graph) == "float32"
    assert main(["info", str(tmp_path / "m.mob")]) == 0
    assert "Quantization: scheme int8 (requantize float32)" in capsys.readouterr().out


def test_our_quantizer_keeps_the_fixed_point_rule(tmp_path):
    from mobconv import quantize

    float_path, _ = _qdq_model(tmp_path)
    rng = np.random.default_rng(4)
    data = [{"x": rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    q = quantize.quantize(mobconv.convert(float_path), data, method="minmax", progress=False)
    assert qm.requantize_mode(q.graph) == "fixed_point"
    assert any(v.quant is not None for v in q.graph.values.values())
