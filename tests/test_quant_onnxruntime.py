"""The integer reference (mobconv/ops/quant_math.py) against onnxruntime's quantized ops.

QuantizeLinear and DequantizeLinear define the same arithmetic as ONNX (float32
division, ties to even, saturation): they must agree bit for bit. onnxruntime's
QLinearConv / QLinearMatMul / QLinearAdd / QLinearMul / QLinearConcat /
QLinearAveragePool requantize in float (acc * float(s_x*s_w/s_y) rounded to even,
or lookup tables), not with the fixed-point multiplier of docs/quantization.md:
for them the test states the measured agreement (every element within 1 LSB, and
at least the fraction of exactly equal elements measured when this was written),
and `python tests/test_quant_onnxruntime.py` prints the numbers.
"""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mobconv.ir import QuantParams as Q
from mobconv.ops import quant_math as qm

ONNX_TYPE = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int16": TensorProto.INT16,
             "uint16": TensorProto.UINT16, "int32": TensorProto.INT32,
             "float32": TensorProto.FLOAT}
rng = np.random.default_rng(8)


def _run(op, inputs, consts, attrs=None, domain="", opset=21):
    """One-node model: `inputs` are fed (name -> array), `consts` are initializers."""
    names = list(inputs) + list(consts)
    order = attrs.pop("_order") if attrs and "_order" in attrs else names
    node = helper.make_node(op, order, ["y"], domain=domain, **(attrs or {}))
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, ONNX_TYPE[a.dtype.name], list(a.shape)) for n, a in inputs.items()],
        [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in consts.items()])
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


def _agreement(ours, theirs):
    d = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    return float((d == 0).mean()), int(d.max())


def _reseed(seed):
    """Each measurement draws from its own seed: its numbers do not depend on which tests ran."""
    global rng
    rng = np.random.default_rng(seed)


def _qvals(shape, dtype="int8"):
    lo, hi = qm.qrange(dtype)
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def _sc(v):
    return np.array(v, np.float32)


# ---- bit exact: QuantizeLinear / DequantizeLinear -------------------------------------------


@pytest.mark.parametrize("dtype,zp", [("int8", 0), ("int8", -7), ("uint8", 128), ("uint8", 3)])
def test_quantize_linear_matches_onnxruntime(dtype, zp):
    scale = np.float32(0.0137)
    x = rng.normal(0, 1.5, 4000).astype(np.float32)
    ties = (np.arange(-300, 300) + 0.5).astype(np.float32) * scale  # x / scale lands on (near) .5
    special = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 3.4e38], np.float32)
    for data in (x, ties, special, special[:3]):  # short inputs take onnxruntime's scalar path
        want = _run("QuantizeLinear", {"x": data}, {"s": scale, "z": np.array(zp, dtype)})
        got = qm.quantize_linear(data, Q([float(scale)], [zp]), dtype)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


def test_quantize_linear_per_axis_matches_onnxruntime():
    x = rng.normal(0, 2, (3, 5, 7)).astype(np.float32)
    scales = rng.uniform(0.005, 0.05, 5).astype(np.float32)
    zps = rng.integers(-20, 20, 5).astype(np.int8)
    want = _run("QuantizeLinear", {"x": x}, {"s": scales, "z": zps}, {"axis": 1})
    np.testing.assert_array_equal(qm.quantize_linear(x, Q(scales.tolist(), zps.tolist(), 1)), want)


@pytest.mark.parametrize("dtype,zp", [("int16", -300), ("uint16", 40000)])
def test_quantize_linear_16_bit_matches_onnxruntime(dtype, zp):
    x = np.concatenate([rng.normal(0, 300, 2000), [np.nan, np.inf, -np.inf, 1e9, -1e9]]).astype(np.float32)
    want = _run("QuantizeLinear", {"x": x}, {"s": _sc(0.01), "z": np.array(zp, dtype)})
    np.testing.assert_array_equal(qm.quantize_linear(x, Q([0.01], [zp]), dtype), want)
    q = rng.integers(*qm.qrange(dtype), 500).astype(dtype)
    want = _run("DequantizeLinear", {"q": q}, {"s": _sc(0.01), "z": np.array(zp, dtype)})
    np.testing.assert_array_equal(qm.dequantize_linear(q, Q([0.01], [zp])), want)


def test_blocked_quantize_dequantize_match_onnxruntime():
    # axis 1 of length 7 in blocks of 3: scales (3, 3, 5), the last block one element long
    x = rng.normal(0, 3, (3, 7, 5)).astype(np.float32)
    s = rng.uniform(0.01, 0.1, (3, 3, 5)).astype(np.float32)
    z = rng.integers(-10, 10, (3, 3, 5)).astype(np.int8)
    want = _run("QuantizeLinear", {"x": x}, {"s": s, "z": z}, {"axis": 1, "block_size": 3})
    np.testing.assert_array_equal(qm.quantize_linear(x, Q(s, z, 1), "int8", block_size=3), want)
    q = _qvals((3, 7, 5))
    want = _run("DequantizeLinear", {"q": q}, {"s": s, "z": z}, {"axis": 1, "block_size": 3})
    np.testing.assert_array_equal(qm.dequantize_linear(q, Q(s, z, 1), block_size=3), want)
    with pytest.raises(qm.MobconvError, match=r"blocked scales/zero points must have shape \(3, 3, 5\)"):
        qm.quantize_linear(x, Q(s[:, :2], z[:, :2], 1), "int8", block_size=3)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32"])
def test_dequantize_linear_matches_onnxruntime(dtype):
    q = _qvals((4, 6), dtype) if dtype != "int32" else rng.integers(-(1 << 31), 1 << 31, (4, 6)).astype(np.int32)
    zp = np.array(0 if dtype == "int32" else 5, dtype)
    want = _run("DequantizeLinear", {"q": q}, {"s": _sc(0.0371), "z": zp})
    np.testing.assert_array_equal(qm.dequantize_linear(q, Q([0.0371], [int(zp)])), want)
    scales = rng.uniform(0.01, 1, 6).astype(np.float32)
    zps = np.zeros(6, dtype) if dtype == "int32" else rng.integers(0, 100, 6).astype(dtype)
    want = _run("DequantizeLinear", {"q": q}, {"s": scales, "z": zps}, {"axis": 1})
    np.testing.assert_array_equal(qm.dequantize_linear(q, Q(scales.tolist(), zps.tolist(), 1)), want)


# ---- measured agreement: onnxruntime's QLinear ops requantize in float ----------------------


def conv_agreement():
    _reseed(1)
    x = _qvals((2, 8, 11, 9))
    w = _qvals((12, 4, 3, 3))
    w[w == -128] = -127
    ws = rng.uniform(0.002, 0.02, 12).astype(np.float32)
    b = rng.integers(-3000, 3000, 12).astype(np.int32)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 1], group=2)
    theirs = _run("QLinearConv", {"x": x}, dict(
        xs=_sc(0.03), xz=np.int8(-4), w=w, ws=ws, wz=np.zeros(12, np.int8), ys=_sc(0.25), yz=np.int8(6), b=b),
        dict(attrs))
    ours = qm.conv(x, Q([0.03], [-4]), w, Q(ws.tolist(), [0] * 12, 0), b, Q([0.25], [6]), **attrs)
    return _agreement(ours, theirs)


def depthwise_uint8_conv_agreement():
    _reseed(2)
    x = _qvals((1, 6, 9, 9), "uint8")
    w = _qvals((6, 1, 3, 3))
    w[w == -128] = -127
    ws = rng.uniform(0.002, 0.02, 6).astype(np.float32)
    b = rng.integers(-3000, 3000, 6).astype(np.int32)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=6)
    theirs = _run("QLinearConv", {"x": x}, dict(
        xs=_sc(0.03), xz=np.uint8(120), w=w, ws=ws, wz=np.zeros(6, np.int8), ys=_sc(0.1), yz=np.uint8(130), b=b),
        dict(attrs))
    ours = qm.conv(x, Q([0.03], [120]), w, Q(ws.tolist(), [0] * 6, 0), b, Q([0.1], [130]), "uint8", **attrs)
    return _agreement(ours, theirs)


def per_column_matmul_agreement():
    _reseed(3)
    a = _qvals((5, 40))
    b = _qvals((40, 16))
    bs = rng.uniform(0.002, 0.02, 16).astype(np.float32)
    theirs = _run("QLinearMatMul", {"a": a}, dict(
        as_=_sc(0.02), az=np.int8(3), b=b, bs=bs, bz=np.zeros(16, np.int8), ys=_sc(0.3), yz=np.int8(-5)),
        {"_order": ["a", "as_", "az", "b", "bs", "bz", "ys", "yz"]})
    ours = qm.matmul(a, Q([0.02], [3]), b, Q(bs.tolist(), [0] * 16, 1), Q([0.3], [-5]))
    return _agreement(ours, theirs)


def matmul_agreement():
    _reseed(4)
    a = _qvals((3, 7, 40))
    b = _qvals((40, 16))
    theirs = _run("QLinearMatMul", {"a": a}, dict(
        as_=_sc(0.02), az=np.int8(3), b=b, bs=_sc(0.01), bz=np.int8(0), ys=_sc(0.3), yz=np.int8(-5)),
        {"_order": ["a", "as_", "az", "b", "bs", "bz", "ys", "yz"]})
    ours = qm.matmul(a, Q([0.02], [3]), b, Q([0.01], [0]), Q([0.3], [-5]))
    return _agreement(ours, theirs)


def _binary_agreement(op, fn, dtype):
    _reseed(5)
    a = _qvals((16, 257), dtype)
    b = _qvals((1, 257), dtype)
    zp = 128 if dtype == "uint8" else 0
    za, zb, zy = np.array(zp + 5, dtype), np.array(zp - 9, dtype), np.array(zp + 2, dtype)
    theirs = _run(op, {"a": a}, dict(as_=_sc(0.05), az=za, b=b, bs=_sc(0.011), bz=zb, ys=_sc(0.07), yz=zy),
                  {"_order": ["a", "as_", "az", "b", "bs", "bz", "ys", "yz"]}, domain="com.microsoft")
    ours = fn(a, Q([0.05], [int(za)]), b, Q([0.011], [int(zb)]), Q([0.07], [int(zy)]), dtype)
    return _agreement(ours, theirs)


def concat_agreement():
    _reseed(6)
    xs = [_qvals((2, c, 7, 9)) for c in (3, 4, 2)]
    params = [(0.05, -3), (0.02, 0), (0.1, 7)]
    consts = {"ys": _sc(0.06), "yz": np.int8(1)}
    order = ["ys", "yz"]
    for i, (s, z) in enumerate(params):
        consts[f"s{i}"], consts[f"z{i}"] = _sc(s), np.int8(z)
    feeds = {f"x{i}": x for i, x in enumerate(xs)}
    for i in range(3):
        order += [f"x{i}", f"s{i}", f"z{i}"]
    theirs = _run("QLinearConcat", feeds, consts, {"_order": order, "axis": 1}, domain="com.microsoft")
    ours = qm.concat(xs, [Q([s], [z]) for s, z in params], Q([0.06], [1]), axis=1)
    return _agreement(ours, theirs)


def average_pool_agreement():
    _reseed(7)
    x = _qvals((2, 5, 10, 9))
    attrs = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    theirs = _run("QLinearAveragePool", {"x": x}, dict(xs=_sc(0.04), xz=np.int8(-2), ys=_sc(0.04), yz=np.int8(-2)),
                  dict(attrs), domain="com.microsoft")
    ours = qm.average_pool(x, Q([0.04], [-2]), **attrs)
    return _agreement(ours, theirs)


# (name, measurement, minimum fraction of exactly equal elements, as measured; all within 1 LSB)
MEASURED = [
    ("QLinearConv", conv_agreement, 0.99),
    ("QLinearConv uint8 depthwise", depthwise_uint8_conv_agreement, 0.99),
    ("QLinearMatMul", matmul_agreement, 0.99),
    ("QLinearMatMul per-column", per_column_matmul_agreement, 0.99),
    ("QLinearAdd int8", lambda: _binary_agreement("QLinearAdd", qm.add, "int8"), 0.99),
    ("QLinearAdd uint8", lambda: _binary_agreement("QLinearAdd", qm.add, "uint8"), 0.99),
    ("QLinearMul int8", lambda: _binary_agreement("QLinearMul", qm.mul, "int8"), 0.99),
    ("QLinearConcat", concat_agreement, 0.97),
    # onnxruntime averages in float and rounds ties to even, the spec rounds them away from zero
    ("QLinearAveragePool", average_pool_agreement, 0.95),
]


@pytest.mark.parametrize("name,measure,min_equal", MEASURED, ids=[m[0] for m in MEASURED])
def test_qlinear_ops_agree_within_one_lsb(name, measure, min_equal):
    equal, max_diff = measure()
    assert max_diff <= 1, f"{name}: {max_diff} LSB apart"
    assert equal >= min_equal, f"{name}: only {equal:.4f} of elements equal"


if __name__ == "__main__":
    for name, measure, _ in MEASURED:
        equal, max_diff = measure()
        print(f"{name:28s} equal {equal:.4f}  max |diff| {max_diff} LSB")
