"""Folding passes print no numpy warnings and never turn a finite output into Inf or NaN.

Issue 7 finding 6: a Caffe Scale layer with a zero bias (or zero scale) printed
`warning: divide by zero` from fold_mul_add, which computed 1/k for every op.
The oracle is a hand-written numpy formula of the unfused layers (1x1 Conv,
then the Scale), not mobconv's own reference of the unoptimized graph.
"""
import warnings

import numpy as np
import pytest

from mobconv import api
from mobconv.cli.main import main
from mobconv.ir import Graph, infer_shapes
from mobconv.passes import constant_folding, fold_batchnorm, fold_mul_add, optimize
from mobconv.reference import run
from model_zoo.caffe._builder import NetBuilder

C_IN, C_OUT = 3, 4


def conv1x1_scale(x, w, b, gamma, beta):
    """numpy: Caffe Convolution (1x1) then Scale (per channel, optional bias)."""
    y = np.einsum("oc,nchw->nohw", w.astype(np.float64), x.astype(np.float64)) + b[None, :, None, None]
    y = y * gamma[None, :, None, None]
    if beta is not None:
        y = y + beta[None, :, None, None]
    return y


def caffe_conv_scale(tmp_path, gamma, beta):
    net = NetBuilder("scale_net", seed=5)
    net.input("data", (1, C_IN, 5, 7))
    w, b = net.randn(C_OUT, C_IN, 1, 1), net.randn(C_OUT)
    net.layer("Convolution", "conv", "data", None, [w, b],
              convolution_param={"numOutput": C_OUT, "kernelSize": [1]})
    blobs = [gamma] + ([beta] if beta is not None else [])
    net.layer("Scale", "scale", "conv", None, blobs,
              scale_param={"biasTerm": beta is not None})
    prototxt, caffemodel = net.save(str(tmp_path))
    return prototxt, caffemodel, w.reshape(C_OUT, C_IN), b


SCALES = {
    "zero_bias": (np.array([0.5, -2.0, 1.5, 3.0], np.float32), np.zeros(C_OUT, np.float32)),
    "zero_scale": (np.zeros(C_OUT, np.float32), np.array([0.1, -0.2, 0.3, 0.0], np.float32)),
    "some_zero_scales": (np.array([0.0, 2.0, 0.0, -1.0], np.float32), np.zeros(C_OUT, np.float32)),
    "zero_scale_no_bias": (np.zeros(C_OUT, np.float32), None),
}


@pytest.mark.parametrize("case", sorted(SCALES))
def test_caffe_scale_with_zeros_converts_silently_and_exactly(tmp_path, capfd, case):
    gamma, beta = SCALES[case]
    prototxt, caffemodel, w, b = caffe_conv_scale(tmp_path, gamma, beta)
    out = str(tmp_path / "net.mob")
    code = main(["caffe2mob", prototxt, caffemodel, "-o", out, "-q"])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert captured.err == "", f"stderr not empty: {captured.err!r}"

    model = api.load(out)
    assert [n.op for n in model.graph.nodes] == ["Conv"], "the Scale should fold into the Conv"
    x = np.random.default_rng(2).standard_normal((1, C_IN, 5, 7)).astype(np.float32)
    (got,) = model.run({"data": x}, backend="reference").values()
    expected = conv1x1_scale(x, w, b, gamma, beta)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if not gamma.any():
        assert np.all(got == (0 if beta is None else beta[None, :, None, None]))  # exact


# ---- the passes on hand-built graphs -------------------------------------------------


def conv_graph(w, b=None, shape=(1, 2, 3, 3)):
    g = Graph("conv")
    g.add_input("x", "float32", shape)
    g.add_constant("w", np.asarray(w, np.float32))
    inputs = ["x", "w"]
    if b is not None:
        g.add_constant("b", np.asarray(b, np.float32))
        inputs.append("b")
    g.add_node("Conv", inputs, ["c"])
    return g


def run_pass_strictly(graph, pass_fn):
    """Run pass_fn on a copy with every numpy floating-point warning turned into an error."""
    result = graph.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="warn"):
            changed = pass_fn(result)
    return result, changed


def check_finite_preserved(graph, result, feeds):
    with np.errstate(all="ignore"):  # the unfolded graph's own Inf/NaN
        expected = run(graph, feeds)
        got = run(result, feeds)
    for name in graph.outputs:
        finite = np.isfinite(expected[name])
        assert np.isfinite(got[name])[finite].all(), f"{name}: a finite output became Inf/NaN"
        np.testing.assert_allclose(got[name][finite], expected[name][finite], rtol=1e-5, atol=1e-6)


def test_fold_mul_add_skips_a_fold_whose_weights_overflow():
    # W holds +-1e30 that cancel on equal input channels: the Conv output is 0 and
    # 0 * 1e10 = 0; folded, W * 1e10 overflows float32 and Inf - Inf gives NaN.
    g = conv_graph(np.array([[[[1e30]], [[-1e30]]], [[[1.0]], [[1.0]]]]))
    g.add_constant("k", np.array([1e10, 2.0], np.float32).reshape(1, 2, 1, 1))
    g.add_node("Mul", ["c", "k"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    result, changed = run_pass_strictly(g, fold_mul_add)
    assert not changed and [n.op for n in result.nodes] == ["Conv", "Mul"]
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 3)).astype(np.float32)
    check_finite_preserved(g, result, {"x": np.concatenate([x, x], axis=1)})


@pytest.mark.parametrize("op,k,folds", [
    ("Div", [1e-45, 1.0], False),  # 1/k overflows float32
    ("Div", [0.0, 1.0], False),
    ("Mul", [0.0, 0.0], True),
    ("Add", [0.0, 0.0], True),
    ("Sub", [0.0, -0.0], True),
    ("Mul", [np.inf, 1.0], False),
    ("Add", [np.nan, 1.0], False),
])
def test_fold_mul_add_silent_and_finite(op, k, folds):
    g = conv_graph(np.random.default_rng(1).standard_normal((2, 2, 1, 1)), b=[0.5, -0.5])
    g.add_constant("k", np.array(k, np.float32).reshape(1, 2, 1, 1))
    g.add_node(op, ["c", "k"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    result, changed = run_pass_strictly(g, fold_mul_add)
    assert changed == folds
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 3)).astype(np.float32)
    check_finite_preserved(g, result, {"x": x})


def bn_graph(var, eps=1e-5, scale=(1.0, 2.0), w_scale=1.0):
    g = conv_graph(np.random.default_rng(3).standard_normal((2, 2, 1, 1)) * w_scale, b=[0.1, 0.2])
    for name, data in (("s", scale), ("bb", [0.3, -0.3]), ("m", [0.05, -0.05]), ("v", var)):
        g.add_constant(name, np.array(data, np.float32))
    g.add_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"], {"epsilon": eps})
    g.outputs = ["y"]
    infer_shapes(g)
    return g


@pytest.mark.parametrize("var,eps,scale,w_scale,folds", [
    ([1.0, 0.0], 0.0, (1.0, 2.0), 1.0, False),   # var + eps == 0: 1/sqrt(0)
    ([1.0, -1.0], 1e-5, (1.0, 2.0), 1.0, False),  # negative: sqrt of a negative
    ([1.0, np.nan], 1e-5, (1.0, 2.0), 1.0, False),
    ([1.0, 1e-45], 0.0, (1.0, 1e30), 1e8, False),  # s = 1e52: float32 weights overflow
    ([1.0, 1.0], 1e-5, (0.0, 0.0), 1.0, True),     # zero scale folds exactly
    ([1e-20, 1.0], 0.0, (1.0, 1.0), 1.0, True),    # tiny but representable
])
def test_fold_batchnorm_silent_and_finite(var, eps, scale, w_scale, folds):
    g = bn_graph(var, eps, scale, w_scale)
    result, changed = run_pass_strictly(g, fold_batchnorm)
    assert changed == folds
    assert [n.op for n in result.nodes] == (["Conv"] if folds else ["Conv", "BatchNormalization"])
    x = np.random.default_rng(4).standard_normal((1, 2, 3, 3)).astype(np.float32)
    check_finite_preserved(g, result, {"x": x})


@pytest.mark.parametrize("op,data", [
    ("Log", 0.0), ("Sqrt", -1.0), ("Reciprocal", 0.0), ("Exp", 1000.0), ("Sigmoid", -1000.0),
])
def test_constant_folding_prints_no_numpy_warning(op, data):
    g = Graph("g")
    g.add_input("x", "float32", (1, 3))
    g.add_constant("c", np.full((1, 3), data, np.float32))
    g.add_node(op, ["c"], ["k"])
    g.add_node("Add", ["x", "k"], ["y"])
    g.outputs = ["y"]
    result, changed = run_pass_strictly(g, constant_folding)
    assert changed and [n.op for n in result.nodes] == ["Add"]
    with np.errstate(all="ignore"):
        expected = run(g, {"x": np.ones((1, 3), np.float32)})["y"]
    np.testing.assert_array_equal(run(result, {"x": np.ones((1, 3), np.float32)})["y"], expected)


def test_optimize_whole_pipeline_is_silent_on_zero_scale_and_bias():
    g = conv_graph(np.random.default_rng(5).standard_normal((2, 2, 1, 1)), b=[1.0, 2.0])
    g.add_constant("gamma", np.zeros((1, 2, 1, 1), np.float32))
    g.add_constant("beta", np.zeros((1, 2, 1, 1), np.float32))
    g.add_node("Mul", ["c", "gamma"], ["m"])
    g.add_node("Add", ["m", "beta"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    result, _ = run_pass_strictly(g, optimize)
    assert [n.op for n in result.nodes] == ["Conv"]
    x = np.random.default_rng(6).standard_normal((1, 2, 3, 3)).astype(np.float32)
    assert np.all(run(result, {"x": x})["y"] == 0)
