"""Fusions on graphs as the TensorFlow frontend and dynamic-batch ONNX exports leave them.

Symbolic batch dims (residual Add into the Conv), a per-channel affine before a Conv
without zero padding (DenseNet's BatchNorm -> Relu -> 1x1 conv is preceded by one) and
MobileNetV3's hard-swish/hard-sigmoid written as Relu6 arithmetic. Each graph is built
directly in IR; the oracle is the numpy reference on the unfused graph, and the C++
runtime runs the fused one at two batch sizes.
"""
import numpy as np
import pytest

from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.passes import fuse_residual, optimize
from mobconv.reference import run

needs_runtime = pytest.mark.skipif(not runtime.available(), reason="libmobrt not built")


def _const(g, name, data):
    g.add_constant(name, np.asarray(data))
    return name


def _feeds(g, batch, seed=2):
    r = np.random.default_rng(seed)
    feeds = {}
    for n in g.inputs:
        shape = tuple(batch if isinstance(d, str) else d for d in g.values[n].shape)
        feeds[n] = r.standard_normal(shape).astype(np.float32) * 2
    return feeds


def _check_outputs(original, fused, batches=(1, 3)):
    """The fused graph == the numpy reference on the original graph, in the reference
    and in the C++ runtime, at each batch size (the batch dim is symbolic)."""
    for batch in batches:
        feeds = _feeds(original, batch)
        expected = run(original, feeds)
        got = run(fused, feeds)
        for name in original.outputs:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
        if runtime.available():
            with runtime.Interpreter(to_bytes(fused), threads=1) as it:
                out = it.run(feeds)
            for name in original.outputs:
                np.testing.assert_allclose(out[name], expected[name], rtol=1e-4, atol=1e-4, err_msg=name)


def _ops(g):
    return [n.op for n in g.nodes]


# ---- residual Add with a symbolic batch ------------------------------------------------


def _residual(shape_r=None):
    g = Graph("res")
    r = np.random.default_rng(1)
    g.add_input("x", "float32", ("batch", 4, 6, 6))
    g.add_input("r", "float32", shape_r or ("batch", 4, 6, 6))
    w = _const(g, "w", r.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3)
    g.add_node("Conv", ["x", w], ["c"], {"pads": [1, 1, 1, 1]}, name="conv")
    g.add_node("Add", ["c", "r"], ["s"], name="add")
    g.add_node("Relu", ["s"], ["y"], name="relu")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def test_residual_add_with_symbolic_batch_fuses_into_the_conv():
    g = _residual()
    fused = optimize(g.copy())
    assert _ops(fused) == ["Conv"], _ops(fused)
    assert fused.nodes[0].inputs[3] == "r" and fused.nodes[0].attrs["activation"] == "Relu"
    _check_outputs(g, fused)


@pytest.mark.parametrize("shape_r", [("batch", 4, 1, 1), ("n", 4, 6, 6), (1, 4, 6, 6)])
def test_residual_add_that_may_broadcast_is_left_alone(shape_r):
    """Another symbol, a 1 against a symbol, a broadcast dim: not provably element-wise."""
    g = _residual(shape_r)
    assert not fuse_residual(g.copy())


# ---- per-channel affine before a Conv --------------------------------------------------


def _affine_then_conv(k=1, pads=0, group=1, cout=6, auto_pad=None, scale_shape=(1, 4, 1, 1), shift=True):
    g = Graph("bn_conv")
    r = np.random.default_rng(3)
    g.add_input("x", "float32", ("batch", 4, 5, 5))
    s = _const(g, "s", (r.uniform(0.5, 2, scale_shape) * np.sign(r.standard_normal(scale_shape))).astype(np.float32))
    t = _const(g, "t", r.standard_normal((4, 1, 1)).astype(np.float32))
    w = _const(g, "w", r.standard_normal((cout, 4 // group, k, k)).astype(np.float32) * 0.3)
    b = _const(g, "b", r.standard_normal(cout).astype(np.float32))
    g.add_node("Mul", ["x", s], ["m"], name="bn_mul")
    if shift:
        g.add_node("Add", [t, "m"], ["a"], name="bn_add")
    else:
        g.add_node("Div", ["m", s], ["a"], name="scale_div")
    attrs = {"pads": [pads] * 4, "group": group}
    if auto_pad:
        attrs = {"auto_pad": auto_pad, "group": group}
    g.add_node("Conv", ["a", w, b], ["y"], attrs, name="conv")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


@pytest.mark.parametrize("k,group,auto_pad", [(1, 1, None), (3, 1, None), (1, 2, None), (3, 2, "VALID")])
def test_affine_before_unpadded_conv_folds_into_it(k, group, auto_pad):
    g = _affine_then_conv(k=k, group=group, auto_pad=auto_pad)
    fused = optimize(g.copy())
    assert _ops(fused) == ["Conv"], _ops(fused)
    _check_outputs(g, fused)


@pytest.mark.parametrize("auto_pad", [None, "SAME_UPPER"])
def test_shift_before_padded_conv_stays_scale_folds(auto_pad):
    """A padded 0 would become t: the BN's Add stays (and the Mul before it); a scale
    alone (0 * s == 0) still folds."""
    g = _affine_then_conv(k=3, pads=1, auto_pad=auto_pad)
    fused = optimize(g.copy())
    assert _ops(fused) == ["Mul", "Add", "Conv"], _ops(fused)
    _check_outputs(g, fused)
    g = _affine_then_conv(k=3, pads=1, auto_pad=auto_pad, shift=False)
    fused = optimize(g.copy())
    assert _ops(fused) == ["Conv"], _ops(fused)
    _check_outputs(g, fused)


def test_scalar_scale_before_conv_folds():
    g = _affine_then_conv(k=3, pads=1, scale_shape=(), shift=False)
    fused = optimize(g.copy())
    assert _ops(fused) == ["Conv"], _ops(fused)
    _check_outputs(g, fused)


# ---- hard-swish / hard-sigmoid written with Relu6 --------------------------------------


def _hard(form, three=3.0, six=6.0, sixth=None, conv=True):
    """x = Conv(input) (or the input); then one spelling of hard-sigmoid/hard-swish."""
    g = Graph(form)
    r = np.random.default_rng(4)
    g.add_input("i", "float32", ("batch", 3, 5, 5))
    x = "i"
    if conv:
        w = _const(g, "w", r.standard_normal((4, 3, 1, 1)).astype(np.float32) * 2)
        g.add_node("Conv", ["i", w], ["x"], name="conv")
        x = "x"
    g.add_node("Add", [_const(g, "three", np.float32(three)), x], ["a"], name="add3")
    g.add_node("Clip", ["a", _const(g, "lo", np.float32(0)), _const(g, "hi", np.float32(6))], ["c"], name="relu6")
    scale = ("Mul", _const(g, "sixth", np.float32(1) / np.float32(6) if sixth is None else np.float32(sixth))) \
        if sixth is not None or form.endswith("mul") else ("Div", _const(g, "six", np.float32(six)))
    if form.startswith("sigmoid"):
        g.add_node(scale[0], ["c", scale[1]], ["y"], name="scale")
    elif form.startswith("swish_after"):  # x * hard_sigmoid(x)
        g.add_node(scale[0], ["c", scale[1]], ["h"], name="scale")
        g.add_node("Mul", [x, "h"], ["y"], name="gate")
    else:  # x * Relu6(x + 3) / 6
        g.add_node("Mul", ["c", x], ["m"], name="gate")
        g.add_node(scale[0], ["m", scale[1]], ["y"], name="scale")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


@pytest.mark.parametrize("form,op", [("sigmoid_div", "HardSigmoid"), ("sigmoid_mul", "HardSigmoid"),
                                     ("swish_after_div", "HardSwish"), ("swish_after_mul", "HardSwish"),
                                     ("swish_before_div", "HardSwish"), ("swish_before_mul", "HardSwish")])
def test_relu6_arithmetic_becomes_hard_curve_and_fuses(form, op):
    g = _hard(form)
    fused = optimize(g.copy())
    assert _ops(fused) == ["Conv"], _ops(fused)
    assert fused.nodes[0].attrs["activation"] == op
    _check_outputs(g, fused)
    alone = optimize(_hard(form, conv=False))
    assert _ops(alone) == [op], _ops(alone)
    _check_outputs(_hard(form, conv=False), alone)


@pytest.mark.parametrize("kw", [{"three": 2.5}, {"six": 6.5}, {"sixth": 0.1667}, {"three": 3.0001}])
def test_other_constants_are_left_alone(kw):
    form = "swish_before_mul" if "sixth" in kw else "swish_before_div"
    fused = optimize(_hard(form, conv=False, **kw))
    assert "HardSwish" not in _ops(fused) and "Clip" in _ops(fused), _ops(fused)
