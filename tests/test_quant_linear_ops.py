"""The QuantizeLinear / DequantizeLinear IR ops (mobconv/ops/quantize_linear.py): onnx's
backend cases within the IR's dtypes, random inputs against onnxruntime (bit for bit:
per tensor, per axis, blocked, int8/uint8/int16, NaN/inf/ties), the shape functions'
rules, a Q -> DQ graph through the reference interpreter, and the C++ reference
kernels against the numpy reference on the same hostile values.
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mobconv.errors import MobconvError
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.ops import get_spec, load_all

OPS = ["QuantizeLinear", "DequantizeLinear"]
REG = load_all()
rng = np.random.default_rng(81)
_IR = {TensorProto.FLOAT, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, TensorProto.INT32}


def _backend_cases():
    from onnx.backend.test.case.node import collect_testcases

    out = []
    for c in collect_testcases():
        if c.kind != "node" or len(c.model.graph.node) != 1 or c.model.graph.node[0].op_type not in OPS:
            continue
        types = [v.type.tensor_type.elem_type for v in list(c.model.graph.input) + list(c.model.graph.output)]
        if all(t in _IR for t in types):
            out.append(c)
    return out


BACKEND_CASES = _backend_cases()


def run_ref(op, attrs, inputs):
    spec = get_spec(op)
    node = type("N", (), {"name": "n", "op": op, "attrs": attrs})()
    return spec.run_reference(list(inputs), spec.resolve_attrs(node))[0]


def test_backend_cases_are_found():
    names = {c.name for c in BACKEND_CASES}
    assert {"test_quantizelinear", "test_quantizelinear_axis", "test_quantizelinear_int16",
            "test_quantizelinear_blocked_asymmetric", "test_quantizelinear_blocked_symmetric",
            "test_dequantizelinear", "test_dequantizelinear_axis", "test_dequantizelinear_int16",
            "test_dequantizelinear_blocked"} <= names


@pytest.mark.parametrize("case", BACKEND_CASES, ids=[c.name for c in BACKEND_CASES])
def test_onnx_backend_case(case):
    node = case.model.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for inputs, outputs in case.data_sets:
        got = run_ref(node.op_type, attrs, inputs)
        want = outputs[0] if isinstance(outputs[0], np.ndarray) else numpy_helper.to_array(outputs[0])
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def _ort(op, x, scale, zp, attrs):
    inits = [numpy_helper.from_array(np.asarray(scale), "s")]
    names = ["x", "s"]
    if zp is not None:
        inits.append(numpy_helper.from_array(np.asarray(zp), "z"))
        names.append("z")
    xtype = helper.np_dtype_to_tensor_dtype(x.dtype)
    g = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "g",
                          [helper.make_tensor_value_info("x", xtype, list(x.shape))],
                          [helper.make_empty_tensor_value_info("y")], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _hostile(shape, scale=0.05):
    x = rng.normal(0, 4, shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[:6] = [np.nan, np.inf, -np.inf, 2.5 * scale, -2.5 * scale, 1e30]
    return x


QUANTIZE_CONFIGS = [
    ("per-tensor int8", (3, 40), np.float32(0.05), np.int8(-3), {}),
    ("per-tensor uint8 default", (3, 40), np.float32(0.05), None, {}),
    ("int16 by output_dtype", (3, 40), np.float32(0.001), None, {"output_dtype": TensorProto.INT16}),
    ("per-axis", (2, 4, 9), np.float32([0.01, 0.05, 0.1, 1.0]), np.uint8([0, 7, 128, 255]), {"axis": 1}),
    ("per-axis negative", (2, 4, 3), np.float32([0.01, 0.05, 0.1]), np.int8([0, 7, -9]), {"axis": -1}),
    ("blocked", (2, 7, 3), np.full((2, 3, 3), 0.04, np.float32) * np.arange(1, 4, dtype=np.float32),
     np.full((2, 3, 3), 2, np.int8), {"axis": 1, "block_size": 3}),
]


@pytest.mark.parametrize("name,shape,scale,zp,attrs", QUANTIZE_CONFIGS, ids=[c[0] for c in QUANTIZE_CONFIGS])
def test_quantize_dequantize_match_onnxruntime(name, shape, scale, zp, attrs):
    x = _hostile(shape)
    want = _ort("QuantizeLinear", x, scale, zp, attrs)
    got = run_ref("QuantizeLinear", attrs, [x, scale, zp])
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    dq_attrs = {k: v for k, v in attrs.items() if k != "output_dtype"}
    want = _ort("DequantizeLinear", got, scale, zp, dq_attrs)
    np.testing.assert_array_equal(run_ref("DequantizeLinear", dq_attrs, [got, scale, zp]), want)


def test_dequantize_int32():
    x = rng.integers(-(1 << 31), 1 << 31, 300).astype(np.int32)
    want = _ort("DequantizeLinear", x, np.float32(0.001), np.int32(0), {})
    np.testing.assert_array_equal(run_ref("DequantizeLinear", {}, [x, np.float32(0.001), np.int32(0)]), want)


def _graph(op, x_dtype, x_shape, scale, zp=None, attrs=None):
    g = Graph("q")
    g.add_input("x", x_dtype, x_shape)
    g.add_constant("s", np.asarray(scale))
    names = ["x", "s"]
    if zp is not None:
        g.add_constant("z", np.asarray(zp))
        names.append("z")
    g.add_node(op, names, ["y"], attrs or {}, name="q1")
    g.outputs = ["y"]
    return g


@pytest.mark.parametrize("op,x_dtype,shape,scale,zp,attrs,rule", [
    ("QuantizeLinear", "float16", (2, 3), np.float32(1), None, {}, "x must be float32"),
    ("QuantizeLinear", "float32", (2, 3), np.float32([1, 2]), None, {}, r"scale \(2,\) must be a scalar or 1-D with 3"),
    ("QuantizeLinear", "float32", (2, 3), np.float32([1, 2, 3]), np.int8([0, 0]), {},
     r"zero point \(2,\) must have the scale's shape \(3,\)"),
    ("QuantizeLinear", "float32", (2, 3), np.float32(1), np.int8(0), {"output_dtype": TensorProto.UINT8},
     "output_dtype uint8 differs from the zero point's dtype int8"),
    ("QuantizeLinear", "float32", (2, 3), np.float32(1), None, {"output_dtype": TensorProto.FLOAT8E4M3FN},
     "output_dtype 17"),
    ("QuantizeLinear", "float32", (2, 3), np.float16(1), None, {}, "y scale must be float32, got float16"),
    ("QuantizeLinear", "float32", (2, 7), np.ones((2, 2), np.float32), None, {"block_size": 3},
     r"blocked scale \(2, 2\) must have shape \(2, 3\)"),
    ("DequantizeLinear", "float32", (2, 3), np.float32(1), None, {}, "x dtype float32 must be one of"),
    ("DequantizeLinear", "int8", (2, 3), np.float32(1), np.uint8(0), {},
     "zero point dtype uint8 must be x's dtype int8"),
    ("DequantizeLinear", "int8", (2, 3), np.float32([1, 2]), None, {"axis": 0, "block_size": 0},
     r"scale \(2,\) must be a scalar or 1-D with 2"),
])
def test_shape_rules(op, x_dtype, shape, scale, zp, attrs, rule):
    g = _graph(op, x_dtype, shape, scale, zp, attrs)
    if "1-D with 2" in rule:  # a valid per-axis case: axis 0 has 2 slices
        infer_shapes(g)
        return
    with pytest.raises(MobconvError, match=rf"node 'q1' \({op}\): {rule}"):
        infer_shapes(g)


def test_quantize_dequantize_graph_in_the_interpreter():
    from mobconv.reference.interpreter import run

    g = Graph("qdq")
    g.add_input("x", "float32", (2, 5))
    g.add_constant("s", np.float32(0.1))
    g.add_constant("z", np.int8(4))
    g.add_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q")
    g.add_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq")
    g.outputs = ["y"]
    infer_shapes(g)
    assert g.values["q"].dtype == "int8" and g.values["y"].dtype == "float32"
    x = np.array([[0.05, 0.15, -0.05, 13.3, -13.3], [1, 2, 3, np.nan, 0.449]], np.float32)
    # x / 0.1 rounded to even: 0 (0.5), 2 (1.5), -0 (-0.5), 133 -> +4 saturates at 127, -133 + 4 -> -128;
    # NaN -> -128; back: (q - 4) * 0.1
    g.values["q"].quant = QuantParams([0.1], [4])  # as a quantizer marks it: still the boundary op
    y = run(g, {"x": x})["y"]
    q = np.array([[4, 6, 4, 127, -128], [14, 24, 34, -128, 8]])
    np.testing.assert_array_equal(y, ((q - 4).astype(np.float32) * np.float32(0.1)))


def test_runtime_kernels_match_the_reference():
    from mobconv import runtime
    from mobconv.formats.writer import to_bytes

    assert runtime.available(), "the C++ runtime is not built"
    for name, shape, scale, zp, attrs in QUANTIZE_CONFIGS:
        x = _hostile(shape)
        g = _graph("QuantizeLinear", "float32", shape, scale, zp, attrs)
        infer_shapes(g)
        with runtime.Interpreter(to_bytes(g)) as it:
            q = it.run({"x": x})["y"]
        want = run_ref("QuantizeLinear", attrs, [x, scale, zp])
        assert q.dtype == want.dtype, name
        np.testing.assert_array_equal(q, want, err_msg=name)
        dq_attrs = {k: v for k, v in attrs.items() if k != "output_dtype"}
        g = _graph("DequantizeLinear", q.dtype.name, shape, scale, zp, dq_attrs)
        infer_shapes(g)
        with runtime.Interpreter(to_bytes(g)) as it:
            y = it.run({"x": q})["y"]
        np.testing.assert_array_equal(y, run_ref("DequantizeLinear", dq_attrs, [q, scale, zp]), err_msg=name)


def test_runtime_matches_the_reference_on_degenerate_scales():
    """Scales are data: NaN, +-inf, 0 and negative ones compute as float32 arithmetic does
    (x / 0 saturates, 0 / 0 is NaN -> the minimum), identically on both sides."""
    from mobconv import runtime
    from mobconv.formats.writer import to_bytes

    scale = np.float32([np.nan, np.inf, -np.inf, 0.0, -0.5, 1e-45])
    zp = np.int8([0, 1, -1, 3, 5, 0])
    x = np.float32([[0.0, 1.0, -1.0, 0.0, 3.0, 1.0], [np.nan, np.inf, 2.0, -2.0, -1.25, -1e-44]])
    for op, data, z in (("QuantizeLinear", x, zp), ("DequantizeLinear", np.int8([[0, 1, -1, 3, 5, 127]] * 2), zp)):
        g = _graph(op, data.dtype.name, data.shape, scale, z, {"axis": 1})
        infer_shapes(g)
        want = run_ref(op, {"axis": 1}, [data, scale, z])
        with runtime.Interpreter(to_bytes(g)) as it:
            got = it.run({"x": data})["y"]
        np.testing.assert_array_equal(got, want, err_msg=op)


def test_onnxruntime_qdq_model_converts_and_runs(tmp_path):
    """A Conv+Relu model quantized by onnxruntime.quantization (QDQ, per-channel int8) converts
    to an int8 Conv (passes.lower_qdq) and runs on both backends within one output step of
    onnxruntime's own int8 execution (fixed-point vs onnxruntime's float requantization:
    measured 99.4% equal, the rest 1 step)."""
    import logging

    import onnx
    import mobconv
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    r = np.random.default_rng(3)
    w = r.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    b = r.normal(0, 0.1, 8).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "f.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": r.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.items, None)

    logging.getLogger().setLevel(logging.ERROR)
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    qmodel = onnx.load(tmp_path / "q.onnx")
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in qmodel.graph.node}
    out_scale = [numpy_helper.to_array(i) for i in qmodel.graph.initializer
                 if i.name == qmodel.graph.node[-1].input[1]][0]
    x = r.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    converted = mobconv.convert(str(tmp_path / "q.onnx"))
    for backend in ("reference", "runtime"):
        got = converted.run({"x": x}, backend=backend)["y"]
        steps = np.abs(got - want) / out_scale
        assert steps.max() <= 1.0001 and (steps < 0.5).mean() >= 0.99, backend
