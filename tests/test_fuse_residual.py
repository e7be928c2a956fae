"""Fused residual (Conv's optional input R, passes/fuse_residual.py).

The pass: fires on Conv -> Add(., r) (then Relu fuses too), leaves outputs unchanged,
and stays away from broadcasting adds, Convs with an activation, shared outputs.
The kernels: Conv with R on every path of the optimized kernel (1x1, strided 1x1,
im2col, shift-and-accumulate, grouped, depthwise) and the C++ reference, per isa,
at 1 and 2 threads, against the numpy reference.
"""
import numpy as np
import pytest

from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.ops import load_all
from mobconv.passes import fuse_activation, fuse_residual, optimize
from mobconv.reference import run
from runtime_cases import native_isas

REG = load_all()


def _rng(seed=0):
    return np.random.default_rng(seed)


def residual_block(shape_x=(1, 8, 9, 9), cout=8, k=3, add_op="Add", relu=True, conv_act="",
                   r_shape=None, swap=False):
    g = Graph("res")
    r = _rng(1)
    g.add_input("x", "float32", shape_x)
    g.add_input("r", "float32", r_shape or (shape_x[0], cout, shape_x[2], shape_x[3]))
    g.add_constant("w", r.standard_normal((cout, shape_x[1], k, k)).astype(np.float32) * 0.3)
    g.add_constant("b", r.standard_normal(cout).astype(np.float32))
    attrs = {"pads": [k // 2] * 4}
    if conv_act:
        attrs["activation"] = conv_act
    g.add_node("Conv", ["x", "w", "b"], ["c"], attrs, name="conv")
    g.add_node(add_op, ["r", "c"] if swap else ["c", "r"], ["s"], {}, name="add")
    out = "s"
    if relu:
        g.add_node("Relu", ["s"], ["y"], {}, name="relu")
        out = "y"
    g.outputs = [out]
    infer_shapes(g)
    return g


def feeds_for(g, seed=2):
    r = _rng(seed)
    return {n: r.standard_normal(g.values[n].shape).astype(np.float32) for n in g.inputs}


@pytest.mark.parametrize("add_op,swap", [("Add", False), ("Add", True), ("Sum", False)])
def test_pass_fuses_add_then_relu(add_op, swap):
    g = residual_block(add_op=add_op, swap=swap)
    feeds = feeds_for(g)
    expected = run(g, feeds)
    fused = g.copy()
    assert fuse_residual(fused)
    assert fuse_activation(fused)
    assert [n.op for n in fused.nodes] == ["Conv"]
    conv = fused.nodes[0]
    assert conv.inputs[3] == "r" and conv.attrs["activation"] == "Relu"
    infer_shapes(fused)
    got = run(fused, feeds)
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5, atol=1e-5)


def test_pass_moves_conv_after_the_residual_producer():
    # Add(conv(x), relu(x2)) where relu comes after the conv in node order.
    g = Graph("order")
    r = _rng(3)
    g.add_input("x", "float32", (1, 4, 5, 5))
    g.add_constant("w", r.standard_normal((4, 4, 1, 1)).astype(np.float32))
    g.add_node("Conv", ["x", "w"], ["c"], {}, name="conv")
    g.add_node("Relu", ["x"], ["rx"], {}, name="relu")
    g.add_node("Add", ["c", "rx"], ["y"], {}, name="add")
    g.outputs = ["y"]
    infer_shapes(g)
    feeds = feeds_for(g)
    expected = run(g, feeds)
    assert optimize(g) is g
    assert [n.op for n in g.nodes] == ["Relu", "Conv"]
    assert g.nodes[1].inputs == ["x", "w", "", "rx"]
    np.testing.assert_allclose(run(g, feeds)["y"], expected["y"], rtol=1e-5, atol=1e-5)


def test_pass_leaves_alone():
    assert not fuse_residual(residual_block(r_shape=(1, 8, 1, 1)))  # broadcasting add
    assert not fuse_residual(residual_block(conv_act="Relu"))  # activation before the add
    g = residual_block(relu=False)
    g.outputs = ["s", "c"]  # conv output read elsewhere
    assert not fuse_residual(g)


def test_pass_blocks_later_folds():
    # Conv(R) -> Mul(per-channel) must not fold the scale into W (R would escape it).
    g = residual_block(relu=False)
    g.add_constant("m", np.full((1, 8, 1, 1), 2.0, np.float32))
    g.add_node("Mul", ["s", "m"], ["z"], {}, name="mul")
    g.outputs = ["z"]
    infer_shapes(g)
    feeds = feeds_for(g)
    expected = run(g, feeds)
    optimize(g)
    assert "Mul" in [n.op for n in g.nodes]
    np.testing.assert_allclose(run(g, feeds)["z"], expected["z"], rtol=1e-5, atol=1e-5)


# ---- kernels ---------------------------------------------------------------------------
needs_runtime = pytest.mark.skipif(not runtime.available(), reason="libmobrt not built")


def _isas():
    """The reference ("scalar"), the best kernel (None) and every fp32 cap the CPU has."""
    return ["scalar", None] + native_isas()[1:] if runtime.available() else ["scalar", None]


# (x shape, W shape, attrs): one per path of the optimized Conv kernel.
CONV_CASES = {
    "1x1": ((1, 24, 17, 19), (37, 24, 1, 1), {}),
    "1x1_wide": ((2, 16, 20, 20), (20, 16, 1, 1), {}),  # B read in place, batch 2
    "1x1_s2": ((1, 16, 13, 13), (30, 16, 1, 1), {"strides": [2, 2]}),
    "3x3_s2_im2col": ((1, 8, 15, 15), (29, 8, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "3x3_shift": ((1, 64, 16, 16), (19, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
    "3x3_tap_major_small": ((1, 64, 5, 5), (17, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
    "grouped": ((1, 8, 9, 9), (12, 4, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    "depthwise": ((1, 12, 11, 11), (12, 1, 3, 3), {"group": 12, "pads": [1, 1, 1, 1]}),
}
ACTS = {"none": {}, "relu": {"activation": "Relu"},
        "hardswish": {"activation": "HardSwish"},
        "relu6": {"activation": "Clip", "activation_params": [0.0, 6.0]}}


@needs_runtime
@pytest.mark.parametrize("isa", _isas(), ids=lambda v: v or "best")
@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("path", list(CONV_CASES))
def test_conv_residual_kernel_matches_reference(path, act, isa):
    xs, ws, attrs = CONV_CASES[path]
    attrs = dict(attrs, **ACTS[act])
    r = _rng(5)
    x = r.uniform(-2, 2, xs).astype(np.float32)
    w = (r.uniform(-1, 1, ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = r.uniform(-1, 1, ws[0]).astype(np.float32)
    g = Graph("conv_r")
    g.add_input("x", "float32", xs)
    g.add_constant("w", w)
    g.add_constant("b", b)
    # R's shape: the conv output's, from shape inference of the plain conv.
    probe = Graph("probe")
    probe.add_input("x", "float32", xs)
    probe.add_constant("w", w)
    probe.add_node("Conv", ["x", "w"], ["y"], attrs)
    probe.outputs = ["y"]
    infer_shapes(probe)
    ys = probe.values["y"].shape
    res = r.uniform(-2, 2, ys).astype(np.float32)
    g.add_input("r", "float32", ys)
    node = g.add_node("Conv", ["x", "w", "b", "r"], ["y"], attrs, name="conv")
    g.outputs = ["y"]
    infer_shapes(g)
    spec = REG["Conv"]
    expected = spec.run_reference([x, w, b, res], spec.resolve_attrs(node))[0]
    unfused = spec.run_reference([x, w, b], spec.resolve_attrs(node))[0]
    assert not np.allclose(expected, unfused)  # R matters
    data = to_bytes(g)
    got = {}
    for threads in (1, 2):
        with runtime.Interpreter(data, threads=threads, isa=isa) as it:
            got[threads] = it.run({"x": x, "r": res})["y"]
    np.testing.assert_allclose(got[1], expected, rtol=1e-4, atol=1e-4,
                               err_msg=f"Conv+R path={path} act={act} isa={isa or 'best'}")
    assert np.array_equal(got[1], got[2]), f"path={path} act={act} isa={isa}: 1 and 2 threads disagree"


@needs_runtime
def test_fused_block_runtime_matches_unfused_reference():
    g = residual_block(shape_x=(1, 64, 14, 14), cout=64, k=1)
    feeds = feeds_for(g)
    expected = run(g, feeds)["y"]
    optimize(g)
    assert [n.op for n in g.nodes] == ["Conv"]
    for threads in (1, 2):
        with runtime.Interpreter(to_bytes(g), threads=threads) as it:
            np.testing.assert_allclose(it.run(feeds)["y"], expected, rtol=1e-4, atol=1e-4)
