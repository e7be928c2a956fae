"""Neural-network op references (mobconv/ops/{conv,linalg,norm,pool,softmax,resize,
activations,detection}.py) checked against independent implementations.

1. onnx's backend test cases: every one-node case of our ops whose node is in
   the IR form is run through our reference and its shape function.
2. Random shapes (odd sizes, pads/strides/dilations/groups, auto_pad, ceil
   mode) against onnx.reference.ReferenceEvaluator on a one-node model.
3. PriorBox/DetectionOutput against OpenCV's Caffe importer (if cv2 exists).
4. Shape functions: symbolic dims and error messages; conv speed at 224x224.
"""
from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from mobconv.errors import MobconvError, ShapeError  # noqa: E402
from mobconv.ir.graph import Node, Value  # noqa: E402
from mobconv.ops import get_spec  # noqa: E402
from mobconv.ops.registry import InferContext  # noqa: E402

MY_OPS = (
    "Conv ConvTranspose Gemm MatMul BatchNormalization InstanceNormalization LayerNormalization "
    "LRN LpNormalization MeanVarianceNormalization MaxPool AveragePool GlobalAveragePool "
    "GlobalMaxPool Softmax LogSoftmax Hardmax Resize DepthToSpace SpaceToDepth Relu LeakyRelu "
    "PRelu Clip Sigmoid Tanh HardSigmoid HardSwish Elu Selu Softplus Gelu Erf Exp Log Sqrt Abs "
    "Neg Reciprocal Floor Ceil Round Sign Sin Cos Softsign Mish Celu ThresholdedRelu Not"
).split()

# Backend cases that are not in the IR form (training-mode outputs).
NOT_IR_FORM = {"test_batchnorm_example_training_mode", "test_batchnorm_epsilon_training_mode"}

OPSET = 22  # for the random-model tests: the newest opset of every op used here (<= 28)


def run_ours(op_type, inputs, attrs, n_outputs=1):
    """Run our reference the way the interpreter does (attrs checked, defaults filled)."""
    spec = get_spec(op_type)
    node = Node(op_type, "n", [f"i{k}" if a is not None else "" for k, a in enumerate(inputs)],
                [f"o{k}" for k in range(n_outputs)], attrs)
    return spec.run_reference(list(inputs), spec.resolve_attrs(node))


def infer_ours(op_type, shapes, attrs, dtypes=None, consts=None, n_outputs=1):
    spec = get_spec(op_type)
    node = Node(op_type, "n", [f"i{k}" if s is not None else "" for k, s in enumerate(shapes)],
                [f"o{k}" for k in range(n_outputs)], attrs)
    consts = consts or {}
    vals = [None if s is None else Value(f"i{k}", (dtypes or {}).get(k, "float32"), tuple(s), consts.get(k))
            for k, s in enumerate(shapes)]
    spec.check_arity(node)
    ctx = InferContext(node=node, inputs=vals, attrs=spec.resolve_attrs(node), num_outputs=n_outputs)
    return spec.infer(ctx)


# ---- 1. onnx backend test cases ------------------------------------------------

def _backend_cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return [c for c in cases if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in MY_OPS]


BACKEND_CASES = _backend_cases()


def _close(got, expected, rtol, atol):
    expected = np.asarray(expected)
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return False
    if expected.dtype.kind in "fc":
        return np.allclose(got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    return np.array_equal(got, expected)


def _run_backend_case(case):
    g = case.model.graph
    n = g.node[0]
    spec = get_spec(n.op_type)
    attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
    node = Node(n.op_type, case.name, list(n.input), list(n.output), attrs)
    full = spec.resolve_attrs(node)
    for inputs, outputs in case.data_sets:
        feed = dict(zip([i.name for i in g.input], inputs))
        args = [feed[i] if i else None for i in n.input]
        got = spec.run_reference(args, full)
        for k, (exp, out) in enumerate(zip(outputs, got)):
            assert _close(out, exp, case.rtol, case.atol), (
                f"{case.name} output {k}: expected {np.asarray(exp).dtype}{np.shape(exp)}, got "
                f"{out.dtype}{out.shape}, max diff "
                f"{np.abs(out.astype(float) - np.asarray(exp, float)).max() if out.shape == np.shape(exp) else '-'}")
        if spec.infer is not None:  # the shape function agrees with the reference
            vals = [None if not name else Value(name, np.asarray(a).dtype.name, tuple(np.shape(a)),
                                                None if k == 0 else np.asarray(a))
                    for k, (name, a) in enumerate(zip(n.input, args))]
            ctx = InferContext(node=node, inputs=vals, attrs=full, num_outputs=len(n.output))
            for (dtype, shape), out in zip(spec.infer(ctx), got):
                if n.op_type == "DetectionOutput":
                    continue
                assert (dtype, tuple(shape)) == (out.dtype.name, out.shape), f"{case.name}: infer says {dtype}{shape}"


@pytest.mark.parametrize("case", [c for c in BACKEND_CASES if c.name not in NOT_IR_FORM],
                         ids=lambda c: c.name)
def test_onnx_backend_case(case):
    _run_backend_case(case)


def test_backend_case_counts():
    """Every op of ours has backend cases, and all IR-form cases pass (per-op counts)."""
    counts = collections.Counter(c.model.graph.node[0].op_type for c in BACKEND_CASES
                                 if c.name not in NOT_IR_FORM)
    assert set(counts) == set(MY_OPS), f"ops without backend cases: {set(MY_OPS) - set(counts)}"
    assert sum(counts.values()) >= 248


# ---- 2. random models vs onnx's ReferenceEvaluator -----------------------------

RNG = np.random.default_rng(1234)


def onnx_ref(op_type, inputs, attrs, n_outputs=1, opset=OPSET, oracle="onnx"):
    """Run one ONNX node with onnx.reference (or onnxruntime); None inputs are absent optional inputs."""
    names, graph_inputs, feeds = [], [], {}
    for k, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        name = f"i{k}"
        names.append(name)
        a = np.asarray(a)
        graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape))
        feeds[name] = a
    outs = [f"o{k}" for k in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, **attrs)
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if oracle == "ort":
        ort = pytest.importorskip("onnxruntime")
        for out, dtype in zip(model.graph.output, _ort_out_types(op_type, inputs, n_outputs)):
            out.type.tensor_type.elem_type = dtype
        model.ir_version = 10
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)
    return ReferenceEvaluator(model).run(None, feeds)


def _ort_out_types(op_type, inputs, n_outputs):
    first = helper.np_dtype_to_tensor_dtype(np.asarray(inputs[0]).dtype)
    return [first] + [TensorProto.INT64] * (n_outputs - 1)


def check(op_type, inputs, attrs=None, n_outputs=1, rtol=1e-4, atol=1e-5, our_attrs=None, opset=OPSET,
          oracle="onnx"):
    """Compare our reference (and shape function) with onnx.reference (or onnxruntime)."""
    attrs = attrs or {}
    expected = onnx_ref(op_type, inputs, attrs, n_outputs, opset, oracle)
    got = run_ours(op_type, inputs, our_attrs if our_attrs is not None else attrs, n_outputs)
    for k, (e, o) in enumerate(zip(expected, got)):
        e = np.asarray(e)
        assert o.shape == e.shape, f"{op_type} {attrs} output {k}: shape {o.shape} != {e.shape}"
        assert o.dtype == e.dtype, f"{op_type} {attrs} output {k}: dtype {o.dtype} != {e.dtype}"
        if e.dtype.kind in "fc":
            diff = np.abs(o.astype(np.float64) - e)
            bad = ~np.isclose(o, e, rtol=rtol, atol=atol, equal_nan=True)
            assert not bad.any(), (f"{op_type} {attrs} output {k} shape {e.shape}: first bad index "
                                   f"{np.argwhere(bad)[0].tolist()}, expected {e[bad][0]}, got {o[bad][0]}, "
                                   f"max diff {diff.max()}")
        else:
            np.testing.assert_array_equal(o, e, err_msg=f"{op_type} {attrs} output {k}")
    # The shape function agrees with the reference's output.
    if get_spec(op_type).infer is not None:
        shapes = [None if a is None else np.shape(a) for a in inputs]
        dtypes = {k: np.asarray(a).dtype.name for k, a in enumerate(inputs) if a is not None}
        consts = {k: np.asarray(a) for k, a in enumerate(inputs) if a is not None and k > 0}
        inferred = infer_ours(op_type, shapes, our_attrs if our_attrs is not None else attrs,
                              dtypes, consts, n_outputs)
        for (dtype, shape), o in zip(inferred, got):
            assert (dtype, tuple(shape)) == (o.dtype.name, o.shape), f"{op_type} {attrs}: infer {dtype}{shape}"


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


CONV_VARIANTS = [
    # (X shape, W shape, attrs)
    ((1, 3, 13, 11), (5, 3, 3, 3), {}),
    ((2, 4, 13, 11), (6, 2, 3, 3), {"group": 2, "pads": [1, 0, 2, 1], "strides": [2, 1]}),
    ((1, 6, 17, 13), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1], "strides": [2, 2]}),  # depthwise
    ((1, 6, 17, 13), (12, 1, 5, 5), {"group": 6, "dilations": [2, 3], "pads": [4, 6, 4, 6]}),  # multiplier 2
    ((1, 5, 15, 15), (7, 5, 3, 2), {"auto_pad": "SAME_UPPER", "strides": [2, 3]}),
    ((1, 5, 14, 15), (7, 5, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [3, 2]}),
    ((1, 5, 14, 15), (7, 5, 3, 3), {"auto_pad": "VALID", "strides": [2, 2], "dilations": [2, 1]}),
    ((1, 8, 7, 9), (16, 8, 1, 1), {}),  # pointwise fast path
    ((1, 8, 7, 9), (16, 8, 1, 1), {"strides": [2, 2]}),
    ((2, 3, 127), (4, 3, 5), {"pads": [2, 1], "strides": [3]}),  # 1-D
    ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), {"pads": [1, 0, 1, 1, 1, 0], "strides": [1, 2, 1]}),  # 3-D
    ((1, 3, 7, 7), (4, 3, 3, 3), {"kernel_shape": [3, 3], "pads": [0, 0, 0, 0]}),
]


@pytest.mark.parametrize("xs,ws,attrs", CONV_VARIANTS)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_random(xs, ws, attrs, bias):
    b = rand(ws[0]) if bias else None
    check("Conv", [rand(*xs), rand(*ws), b], attrs)


CONVT_VARIANTS = [
    ((1, 3, 5, 4), (3, 2, 3, 3), {}),
    ((2, 4, 5, 6), (4, 3, 3, 2), {"strides": [2, 3], "pads": [1, 0, 1, 1]}),
    ((1, 4, 5, 6), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "output_padding": [1, 1]}),
    ((1, 4, 5, 6), (4, 2, 3, 3), {"group": 2, "strides": [2, 2], "dilations": [2, 1]}),
    ((1, 3, 5, 6), (3, 2, 3, 3), {"strides": [2, 2], "output_shape": [11, 14]}),
    ((1, 3, 5, 6), (3, 2, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 3, 5, 6), (3, 2, 4, 3), {"strides": [3, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 9), (2, 3, 4), {"strides": [3], "pads": [1, 2]}),  # 1-D
]


@pytest.mark.parametrize("xs,ws,attrs", CONVT_VARIANTS)
def test_conv_transpose_random(xs, ws, attrs):
    # onnxruntime as the oracle: onnx.reference's grouped ConvTranspose only handles M/group == 1
    # and applies the first group's biases to every group.
    check("ConvTranspose", [rand(*xs), rand(*ws), rand(ws[1] * attrs.get("group", 1))], attrs, oracle="ort")


@pytest.mark.parametrize("activation,params", [
    ("Relu", []), ("Clip", [0.0, 6.0]), ("LeakyRelu", [0.1]), ("HardSigmoid", [0.2, 0.5]),
    ("HardSwish", []), ("Sigmoid", []), ("Tanh", []),
])
def test_fused_activation(activation, params):
    x, w, b = rand(1, 4, 9, 8), rand(6, 4, 3, 3), rand(6)
    plain = run_ours("Conv", [x, w, b], {"pads": [1, 1, 1, 1]})[0]
    fused = run_ours("Conv", [x, w, b], {"pads": [1, 1, 1, 1], "activation": activation,
                                         "activation_params": params})[0]
    extra = {"Clip": [np.float32(0), np.float32(6)]}.get(activation, [])
    attrs = {"LeakyRelu": {"alpha": 0.1}, "HardSigmoid": {"alpha": 0.2, "beta": 0.5}}.get(activation, {})
    expected = run_ours(activation, [plain, *extra], attrs)[0]
    np.testing.assert_allclose(fused, expected, rtol=1e-6, atol=1e-6)
    for op_type, inputs in (("Gemm", [rand(3, 4), rand(4, 5), rand(5)]), ("MatMul", [rand(2, 3, 4), rand(4, 5)]),
                            ("ConvTranspose", [x, rand(4, 3, 3, 3)])):
        plain = run_ours(op_type, inputs, {})[0]
        fused = run_ours(op_type, inputs, {"activation": activation, "activation_params": params})[0]
        np.testing.assert_allclose(fused, run_ours(activation, [plain, *extra], attrs)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sa,sb,sc,attrs", [
    ((3, 5), (5, 4), None, {}),
    ((5, 3), (5, 4), (4,), {"transA": 1, "alpha": 0.5, "beta": 2.0}),
    ((3, 5), (4, 5), (3, 1), {"transB": 1}),
    ((5, 3), (4, 5), (3, 4), {"transA": 1, "transB": 1, "beta": 0.0}),
    ((3, 5), (5, 4), (1,), {}),
])
def test_gemm_random(sa, sb, sc, attrs):
    check("Gemm", [rand(*sa), rand(*sb), None if sc is None else rand(*sc)], attrs)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((2, 3, 4), (4,)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((7,), (7,))])
def test_matmul_random(sa, sb):
    check("MatMul", [rand(*sa), rand(*sb)])
    check("MatMul", [rand(*sa, dtype=np.float64), rand(*sb, dtype=np.float64)])


POOL_VARIANTS = [
    ((1, 3, 13, 11), {"kernel_shape": [3, 3]}),
    ((2, 3, 13, 11), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]}),
    ((1, 2, 13, 11), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 2, 14, 12), {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1]}),
    ((1, 2, 12, 10), {"kernel_shape": [3, 3], "strides": [1, 1], "dilations": [2, 2]}),
    ((1, 2, 13, 11), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 13, 11), {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 13, 11), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    ((2, 3, 31), {"kernel_shape": [4], "strides": [3], "pads": [1, 2]}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [1, 1, 0, 0, 1, 1]}),
]


@pytest.mark.parametrize("xs,attrs", POOL_VARIANTS)
def test_max_pool_random(xs, attrs):
    # onnxruntime as the oracle: onnx.reference uses floor(in / stride) for SAME_LOWER.
    x = rand(*xs)
    check("MaxPool", [x], attrs, oracle="ort")
    if len(xs) == 4:
        for order in (0, 1):
            check("MaxPool", [x], {**attrs, "storage_order": order}, n_outputs=2, oracle="ort")


@pytest.mark.parametrize("xs,attrs", POOL_VARIANTS)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_random(xs, attrs, count_include_pad):
    check("AveragePool", [rand(*xs)], {**attrs, "count_include_pad": count_include_pad}, oracle="ort")


def test_pool_ceil_rule():
    """ceil_mode: the last window must start inside the input or the left padding."""
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    # in=6, k=2, s=2, pads=1/1: floor -> 4, ceil -> 4 (a 5th window would start in the right pad).
    y = run_ours("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1})[0]
    assert y.shape == (1, 1, 4, 4)
    # in=5, k=2, s=2, no pads: ceil gives 3 windows, the last one clipped to 1 tap.
    x5 = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    y = run_ours("AveragePool", [x5], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1})[0]
    assert y.shape == (1, 1, 3, 3) and y[0, 0, 2, 2] == 24.0
    y = run_ours("AveragePool", [x5], {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1,
                                       "pads": [1, 1, 1, 1], "count_include_pad": 1})[0]
    # windows start at -1, 1, 3 (5 would start in the right pad): last window covers {3, 4} fully.
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 0, 0] == pytest.approx(0 / 4)  # one real tap (0) out of 4 counted
    assert y[0, 0, 2, 2] == pytest.approx((18 + 19 + 23 + 24) / 4)


def test_global_pools():
    for shape in ((2, 3, 5, 7), (1, 4, 9), (1, 2, 3, 4, 5)):
        x = rand(*shape)
        check("GlobalAveragePool", [x])
        check("GlobalMaxPool", [x], oracle="ort")  # onnx.reference drops a dim for 1-D spatial


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("shape,axis", [((3, 7), -1), ((2, 3, 5), 1), ((2, 3, 5), 0), ((4,), 0)])
def test_softmax_family(op_type, shape, axis):
    check(op_type, [rand(*shape) * 5], {"axis": axis})
    check(op_type, [rand(*shape, dtype=np.float16)], {"axis": axis}, rtol=2e-3, atol=2e-3)


def test_norms_random():
    x = rand(2, 5, 7, 3)
    c = x.shape[1]
    scale, b, mean, var = rand(c), rand(c), rand(c), np.abs(rand(c)) + 0.1
    check("BatchNormalization", [x, scale, b, mean, var], {"epsilon": 1e-3})
    check("BatchNormalization", [rand(3, 5), scale, b, mean, var], {})
    check("InstanceNormalization", [x, scale, b], {"epsilon": 1e-4})
    check("InstanceNormalization", [rand(2, 5, 11), scale, b], {})
    for axis in (-1, -2, 1):
        shp = x.shape[axis:] if axis != 1 else x.shape[1:]
        check("LayerNormalization", [x, rand(*shp), rand(*shp)], {"axis": axis}, n_outputs=3)
    check("LayerNormalization", [x, rand(3), None], {"epsilon": 1e-2}, n_outputs=1)
    for axis, p in ((-1, 2), (1, 1), (0, 2)):
        check("LpNormalization", [x], {"axis": axis, "p": p}, oracle="ort")  # onnx.reference: L1 without abs
    check("MeanVarianceNormalization", [x], {})
    check("MeanVarianceNormalization", [x], {"axes": [1, 3]})


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(size):
    """LRN against a direct loop (onnx.reference's LRN loops over the batch axis)."""
    x = rand(2, 7, 4, 3)
    alpha, beta, bias = 2e-3, 0.6, 1.5
    y = run_ours("LRN", [x], {"size": size, "alpha": alpha, "beta": beta, "bias": bias})[0]
    expected = np.empty_like(x)
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    for ch in range(x.shape[1]):
        sq = (x[:, max(0, ch - lo): ch + hi + 1] ** 2).sum(axis=1)
        expected[:, ch] = x[:, ch] / (bias + alpha / size * sq) ** beta
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


UNARY = ["Relu", "Sigmoid", "Tanh", "HardSwish", "Softplus", "Softsign", "Mish", "Exp", "Abs", "Neg",
         "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Erf"]


@pytest.mark.parametrize("op_type", UNARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_unary_random(op_type, dtype):
    x = (rand(3, 17, 5) * 4).astype(dtype)
    x.flat[:4] = [0.5, -2.5, 1.5, 0.0]  # rounding ties
    tol = 2e-3 if dtype == np.float16 else 1e-5
    check(op_type, [x], rtol=tol, atol=tol)


@pytest.mark.parametrize("op_type,attrs", [
    ("LeakyRelu", {"alpha": 0.2}), ("Elu", {"alpha": 0.7}), ("Selu", {}), ("Celu", {"alpha": 1.3}),
    ("ThresholdedRelu", {"alpha": 0.3}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
    ("Gelu", {}), ("Gelu", {"approximate": "tanh"}),
])
def test_unary_attrs(op_type, attrs):
    check(op_type, [rand(4, 33) * 3], attrs)


def test_log_sqrt_reciprocal_not_prelu_clip():
    pos = np.abs(rand(5, 7)) + 0.01
    for op_type in ("Log", "Sqrt", "Reciprocal"):
        check(op_type, [pos])
    check("Not", [rand(3, 4) > 0])
    check("PRelu", [rand(2, 3, 4, 5), rand(3, 1, 1)])
    check("PRelu", [rand(2, 3, 4, 5), rand(5)])
    x = rand(3, 8)
    check("Clip", [x, np.float32(-0.5), np.float32(0.7)])
    check("Clip", [x, None, np.float32(0.1)])
    check("Clip", [x, np.float32(0.2), None])
    check("Clip", [x])
    check("Clip", [np.arange(-5, 5, dtype=np.int32), np.int32(-2), np.int32(3)])


def test_erf_precision():
    import math

    x = np.concatenate([np.linspace(-7, 7, 2001), [1e-9, -1e-7, 1.999999, 2.0, 2.000001, 30.0]])
    from mobconv.ops.activations import erf

    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=1e-13, atol=1e-15)


RESIZE_VARIANTS = [
    # (X shape, scales or None, sizes or None, attrs)
    ((1, 2, 5, 7), [1, 1, 2.0, 1.5], None, {"mode": "nearest"}),
    ((1, 2, 9, 7), [1, 1, 0.6, 0.5], None, {"mode": "nearest", "nearest_mode": "floor"}),
    ((1, 2, 5, 7), None, [1, 2, 11, 4], {"mode": "nearest", "nearest_mode": "round_prefer_ceil",
                                         "coordinate_transformation_mode": "asymmetric"}),
    ((1, 2, 5, 7), None, [1, 2, 8, 13], {"mode": "nearest", "nearest_mode": "ceil",
                                         "coordinate_transformation_mode": "align_corners"}),
    ((1, 2, 5, 7), [1, 1, 2.0, 3.0], None, {"mode": "linear"}),
    ((1, 2, 5, 7), [1, 1, 1.7, 0.6], None, {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
    ((1, 2, 5, 7), None, [1, 2, 9, 3], {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}),
    ((1, 2, 5, 7), None, [1, 2, 9, 3], {"mode": "linear",
                                        "coordinate_transformation_mode": "half_pixel_symmetric"}),
    ((1, 2, 16, 13), None, [1, 2, 5, 4], {"mode": "linear", "antialias": 1}),
    ((1, 2, 5, 7), [1, 1, 2.5, 1.3], None, {"mode": "cubic"}),
    ((1, 2, 5, 7), [1, 1, 2.5, 1.3], None, {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}),
    ((1, 2, 17, 12), None, [1, 2, 6, 5], {"mode": "cubic", "antialias": 1}),
    ((1, 2, 5, 7), None, [1, 2, 8, 9], {"mode": "cubic", "coordinate_transformation_mode": "asymmetric"}),
    ((1, 2, 6, 8), None, [7, 5], {"mode": "linear", "axes": [3, 2]}),
    ((1, 2, 6, 8), None, [9, 9], {"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}),
    ((1, 2, 6, 8), None, [9, 9], {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"}),
    ((2, 3, 5, 4, 3), [1, 1, 1.5, 2, 0.7], None, {"mode": "linear"}),  # 3-D spatial
]


@pytest.mark.parametrize("xs,scales,sizes,attrs", RESIZE_VARIANTS)
def test_resize_random(xs, scales, sizes, attrs):
    x = rand(*xs)
    s = None if scales is None else np.array(scales, dtype=np.float32)
    z = None if sizes is None else np.array(sizes, dtype=np.int64)
    check("Resize", [x, None, s, z], attrs, opset=19)


def test_resize_tf_crop_and_resize():
    x = rand(1, 1, 6, 7)
    roi = np.array([0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2], dtype=np.float32)
    for mode in ("nearest", "linear", "cubic"):
        check("Resize", [x, roi, None, np.array([1, 1, 5, 6], dtype=np.int64)],
              {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 7.5},
              opset=19)


def test_resize_uint8():
    x = RNG.integers(0, 256, (1, 1, 4, 5)).astype(np.uint8)
    y = run_ours("Resize", [x, None, np.array([1, 1, 2, 2], np.float32), None], {"mode": "linear"})[0]
    assert y.dtype == np.uint8 and y.shape == (1, 1, 8, 10)
    assert abs(int(y[0, 0, 0, 0]) - int(x[0, 0, 0, 0])) == 0


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_space(mode):
    x = rand(2, 12, 3, 5)
    check("DepthToSpace", [x], {"blocksize": 2, "mode": mode})
    y = run_ours("DepthToSpace", [x], {"blocksize": 2, "mode": mode})[0]
    back = run_ours("SpaceToDepth", [y], {"blocksize": 2, "mode": mode})[0]
    np.testing.assert_array_equal(back, x)  # SpaceToDepth inverts DepthToSpace of the same mode
    check("SpaceToDepth", [rand(1, 3, 6, 9)], {"blocksize": 3})


# ---- 3. SSD ops vs OpenCV's Caffe importer ------------------------------------

SSD_PROTOTXT = """
input: "feat"
input_shape { dim: 1 dim: 8 dim: 5 dim: 7 }
input: "img"
input_shape { dim: 1 dim: 3 dim: 100 dim: 140 }
input: "loc"
input_shape { dim: 1 dim: %(nloc)d }
input: "conf"
input_shape { dim: 1 dim: %(nconf)d }
layer { name: "pb" type: "PriorBox" bottom: "feat" bottom: "img" top: "pb"
  prior_box_param { %(prior)s } }
layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "pb" top: "det"
  detection_output_param { num_classes: 3 share_location: true background_label_id: 0
    nms_param { nms_threshold: 0.45 top_k: 50 } code_type: %(code)s keep_top_k: %(keep)d
    confidence_threshold: 0.2 } }
"""

SSD_VARIANTS = [
    ("min_size: 20 max_size: 45 aspect_ratio: 2 aspect_ratio: 3 flip: true clip: false variance: 0.1 variance: 0.1 "
     "variance: 0.2 variance: 0.2", dict(min_sizes=[20], max_sizes=[45], aspect_ratios=[2, 3], flip=1,
                                         variance=[.1, .1, .2, .2]), 6),
    ("min_size: 30 aspect_ratio: 2 flip: false clip: true variance: 0.1 step: 16 offset: 0.25",
     dict(min_sizes=[30], aspect_ratios=[2], flip=0, clip=1, variance=[.1], step=16.0, offset=0.25), 2),
    ("min_size: 10 min_size: 25 max_size: 20 max_size: 50 aspect_ratio: 2 flip: true clip: false img_h: 100 img_w: 140 "
     "step_h: 15 step_w: 18 variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2",
     dict(min_sizes=[10, 25], max_sizes=[20, 50], aspect_ratios=[2], img_h=100, img_w=140, step_h=15.0,
          step_w=18.0, variance=[.1, .1, .2, .2]), 8),
]


@pytest.mark.parametrize("prior_txt,prior_attrs,num_priors", SSD_VARIANTS)
@pytest.mark.parametrize("code", ["CENTER_SIZE", "CORNER"])  # OpenCV has no CORNER_SIZE
def test_ssd_ops_vs_opencv(tmp_path, prior_txt, prior_attrs, num_priors, code):
    cv2 = pytest.importorskip("cv2")
    p = 5 * 7 * num_priors
    keep = 20
    path = tmp_path / "ssd.prototxt"
    path.write_text(SSD_PROTOTXT % dict(nloc=p * 4, nconf=p * 3, prior=prior_txt, code=code, keep=keep))
    net = cv2.dnn.readNetFromCaffe(str(path))
    rng = np.random.default_rng(7)
    feeds = dict(feat=rng.standard_normal((1, 8, 5, 7)).astype(np.float32),
                 img=rng.standard_normal((1, 3, 100, 140)).astype(np.float32),
                 loc=(rng.standard_normal((1, p * 4)) * 0.2).astype(np.float32))
    conf = rng.random((1, p, 3)).astype(np.float32) ** 3
    feeds["conf"] = (conf / conf.sum(-1, keepdims=True)).reshape(1, -1)
    for name, value in feeds.items():
        net.setInput(value, name)
    cv_prior, cv_det = net.forward(["pb", "det"])
    prior = run_ours("PriorBox", [feeds["feat"], feeds["img"]], prior_attrs)[0]
    assert infer_ours("PriorBox", [(1, 8, 5, 7), (1, 3, 100, 140)], prior_attrs) == [("float32", prior.shape)]
    np.testing.assert_allclose(prior, cv_prior, rtol=1e-6, atol=1e-6)
    det = run_ours("DetectionOutput", [feeds["loc"], feeds["conf"], prior],
                   dict(num_classes=3, nms_threshold=0.45, top_k=50, code_type=code, keep_top_k=keep,
                        confidence_threshold=0.2))[0]
    # OpenCV 4.x returns keep_top_k rows sorted by score and zero-padded; Caffe (and we)
    # return only the kept rows, grouped by label. Compare as sets of rows.
    cv_rows = cv_det[0, 0][cv_det[0, 0, :, 2] > 0]
    rows = det[0, 0]
    assert rows.shape == cv_rows.shape

    def key(r):
        return r[np.lexsort((-r[:, 2], r[:, 1]))]

    np.testing.assert_allclose(key(rows), key(cv_rows), rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(rows[:, 1]) >= 0)  # grouped by label, like Caffe


def test_decode_corner_size():
    from mobconv.ops.detection import decode_boxes

    prior = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
    var = np.array([[0.1, 0.1, 0.2, 0.2]], np.float32)
    loc = np.array([[1.0, -1.0, 0.5, 2.0]], np.float32)
    expected = prior + var * loc * np.array([0.4, 0.4, 0.4, 0.4], np.float32)
    np.testing.assert_allclose(decode_boxes(loc, prior, var, "CORNER_SIZE", False), expected, rtol=1e-6)
    np.testing.assert_allclose(decode_boxes(loc, prior, var, "CORNER_SIZE", True), prior + loc * 0.4, rtol=1e-6)


def test_detection_output_none_and_caffe_order():
    prior = run_ours("PriorBox", [np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 20, 20), np.float32)],
                     dict(min_sizes=[5.0]))[0]
    p = 4
    loc = np.zeros((2, p * 4), np.float32)
    conf = np.zeros((2, p * 2), np.float32)
    det = run_ours("DetectionOutput", [loc, conf, prior], dict(num_classes=2, confidence_threshold=0.5))[0]
    np.testing.assert_array_equal(det, [[[[0, -1, -1, -1, -1, -1, -1], [1, -1, -1, -1, -1, -1, -1]]]])
    conf[1, 1::2] = [0.9, 0.6, 0.7, 0.95]  # image 1, class 1
    det = run_ours("DetectionOutput", [loc, conf, prior], dict(num_classes=2, confidence_threshold=0.5,
                                                               nms_threshold=0.5, keep_top_k=3))[0]
    assert det.shape == (1, 1, 3, 7)
    np.testing.assert_allclose(det[0, 0, :, :3], [[1, 1, 0.95], [1, 1, 0.9], [1, 1, 0.7]], rtol=1e-6)


# ---- 4. shape functions ---------------------------------------------------------

def test_symbolic_batch_dims():
    assert infer_ours("Conv", [("N", 3, 224, 224), (32, 3, 3, 3)], {"strides": [2, 2], "pads": [1, 1, 1, 1]}) \
        == [("float32", ("N", 32, 112, 112))]
    assert infer_ours("Conv", [("N", 8, "H", "W"), (8, 8, 3, 3)], {"pads": [1, 1, 1, 1]}) \
        == [("float32", ("N", 8, "H", "W"))]
    assert infer_ours("ConvTranspose", [("N", 4, 7, 7), (4, 2, 4, 4), None], {"strides": [2, 2], "pads": [1, 1, 1, 1],
                                                                             "group": 2}) \
        == [("float32", ("N", 4, 14, 14))]
    assert infer_ours("MaxPool", [("N", 64, 112, 112)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                          "pads": [1, 1, 1, 1]}, n_outputs=2) \
        == [("float32", ("N", 64, 56, 56)), ("int64", ("N", 64, 56, 56))]
    assert infer_ours("GlobalAveragePool", [("N", 64, 7, 7)], {}) == [("float32", ("N", 64, 1, 1))]
    assert infer_ours("Gemm", [("N", 512), (1000, 512), (1000,)], {"transB": 1}) == [("float32", ("N", 1000))]
    assert infer_ours("MatMul", [("B", "S", 64), (64, 128)], {}) == [("float32", ("B", "S", 128))]
    assert infer_ours("Resize", [("N", 3, 10, 12), None, (4,)], {"mode": "linear"},
                      consts={2: np.array([1, 1, 2, 2.5], np.float32)}) == [("float32", ("N", 3, 20, 30))]
    assert infer_ours("Resize", [("N", 3, 10, 12), None, None, (2,)], {"axes": [2, 3]},
                      consts={3: np.array([5, 6])}) == [("float32", ("N", 3, 5, 6))]
    assert infer_ours("LayerNormalization", [("B", "S", 64), (64,)], {}, n_outputs=3)[1] \
        == ("float32", ("B", "S", 1))
    assert infer_ours("DepthToSpace", [("N", 12, 4, 5)], {"blocksize": 2}) == [("float32", ("N", 3, 8, 10))]


@pytest.mark.parametrize("op_type,shapes,attrs,needle", [
    ("Conv", [(1, 3, 8, 8), (4, 5, 3, 3)], {}, "X has 3 channels"),
    ("Conv", [(1, 4, 8, 8), (6, 2, 3, 3)], {"group": 2, "strides": [1]}, "strides must have 2 values"),
    ("Conv", [(1, 3, 2, 2), (4, 3, 3, 3)], {}, "output spatial dim 0 would be 0"),
    ("ConvTranspose", [(1, 3, 8, 8), (4, 5, 3, 3)], {}, "X has 3 channels"),
    ("Gemm", [(3, 4), (5, 6)], {}, "inner dims differ"),
    ("MatMul", [(2, 3, 4), (5, 6)], {}, "inner dims differ"),
    ("MatMul", [(2, 3, 4), (3, 4, 6)], {}, "do not broadcast"),
    ("MaxPool", [(1, 3, 8)], {"kernel_shape": [3, 3]}, "kernel_shape must have 1 values"),
    ("BatchNormalization", [(1, 3, 4, 4), (4,), (3,), (3,), (3,)], {}, "scale must have shape (3,)"),
    ("DepthToSpace", [(1, 6, 4, 4)], {"blocksize": 2}, "divisible by blocksize^2"),
    ("Resize", [(1, 3, 4, 4), None, (4,), (4,)], {}, "exactly one of scales"),
])
def test_shape_errors(op_type, shapes, attrs, needle):
    with pytest.raises(ShapeError, match=None) as info:
        infer_ours(op_type, shapes, attrs)
    assert needle in str(info.value) and "node 'n'" in str(info.value), str(info.value)


def test_unknown_attribute_rejected():
    with pytest.raises(MobconvError, match="unknown attribute"):
        run_ours("Relu", [rand(3)], {"alpha": 1.0})
