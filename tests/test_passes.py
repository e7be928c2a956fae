"""Graph passes: each one fires where it should (node types change as expected),
leaves outputs unchanged on seeded random inputs (reference interpreter), and
stays away from the cases where rewriting would change the result."""
import numpy as np
import pytest

from mobconv.ir import Graph, infer_shapes
from mobconv.passes import (
    DEFAULT_PIPELINE,
    constant_folding,
    dead_code,
    fold_batchnorm,
    fold_mul_add,
    fold_pad,
    fuse_activation,
    identity_removal,
    optimize,
)
from mobconv.reference import run

RTOL, ATOL = 1e-4, 1e-5


def rng(seed=0):
    return np.random.default_rng(seed)


def ops(graph):
    return [n.op for n in graph.nodes]


def feeds_for(graph, seed=1):
    r = rng(seed)
    feeds = {}
    for name in graph.inputs:
        v = graph.values[name]
        shape = [d if isinstance(d, int) else 2 for d in v.shape]
        if v.dtype == "bool":
            feeds[name] = np.zeros(shape, bool)
        else:
            feeds[name] = r.standard_normal(shape).astype(v.dtype)
    return feeds


def apply(graph, pass_fn, fires=True, feeds=None, infer=True):
    """Run pass_fn on a copy; check it fired (or not) and that outputs are unchanged."""
    if infer:
        infer_shapes(graph)
    feeds = feeds or feeds_for(graph)
    expected = run(graph, feeds)
    result = graph.copy()
    changed = pass_fn(result)
    assert changed == fires, f"{getattr(pass_fn, '__name__', pass_fn)} fired={changed}, expected {fires}"
    assert result.inputs == graph.inputs and result.outputs == graph.outputs
    got = run(result, feeds)
    for name in graph.outputs:
        np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=ATOL, err_msg=name)
        assert got[name].dtype == expected[name].dtype
        assert result.values[name].dtype in (None, expected[name].dtype.name)
    infer_shapes(result)  # still valid
    return result


def const(graph, name, data):
    graph.add_constant(name, np.asarray(data))
    return name


def randc(graph, name, shape, seed=0, positive=False):
    data = rng(seed).standard_normal(shape).astype(np.float32)
    return const(graph, name, np.abs(data) + 0.5 if positive else data)


def add_bn(graph, x, channels, out, seed=3):
    names = [
        randc(graph, f"{out}_scale", (channels,), seed),
        randc(graph, f"{out}_bias", (channels,), seed + 1),
        randc(graph, f"{out}_mean", (channels,), seed + 2),
        randc(graph, f"{out}_var", (channels,), seed + 3, positive=True),
    ]
    return graph.add_node("BatchNormalization", [x] + names, [out], {"epsilon": 1e-3})


def conv_graph(bias=True, group=1, cin=4, cout=6):
    g = Graph("conv")
    g.add_input("x", "float32", (1, cin, 7, 7))
    inputs = ["x", randc(g, "w", (cout, cin // group, 3, 3))]
    if bias:
        inputs.append(randc(g, "b", (cout,), 1))
    g.add_node("Conv", inputs, ["c"], {"pads": [1, 1, 1, 1], "group": group})
    return g


# ---- constant_folding ----------------------------------------------------


def test_constant_folding_shape_chain_to_reshape():
    g = Graph()
    g.add_input("x", "float32", (2, 3, 4, 5))
    g.add_node("Shape", ["x"], ["s"])
    g.add_node("Gather", ["s", const(g, "i0", np.array(0, np.int64))], ["n"], {"axis": 0})
    g.add_node("Unsqueeze", ["n", const(g, "ax", np.array([0], np.int64))], ["n1"])
    g.add_node("Concat", ["n1", const(g, "m1", np.array([-1], np.int64))], ["shape"], {"axis": 0})
    g.add_node("Reshape", ["x", "shape"], ["y"])
    g.outputs = ["y"]
    out = apply(g, constant_folding, infer=False)  # Reshape needs the fold to be inferred
    assert ops(out) == ["Reshape"]
    assert out.values["y"].shape == (2, 60)
    np.testing.assert_array_equal(out.values["shape"].data, [2, -1])


def test_constant_folding_picks_static_dims_of_partly_symbolic_shape():
    g = Graph()
    g.add_input("x", "float32", ("N", 3, 4, 5))
    g.add_node("Shape", ["x"], ["s"])
    g.add_node("Gather", ["s", const(g, "i", np.array([1, 3], np.int64))], ["cw"], {"axis": 0})
    g.add_node("Gather", ["s", const(g, "i0", np.array(0, np.int64))], ["batch"], {"axis": 0})
    g.outputs = ["cw", "batch"]
    out = apply(g, constant_folding)
    assert ops(out) == ["Shape", "Gather"]  # the batch dim stays dynamic
    np.testing.assert_array_equal(out.values["cw"].data, [3, 5])


def test_constant_folding_weights_and_graph_output():
    g = Graph()
    g.add_input("x", "float32", (3, 4))
    w16 = const(g, "w16", rng().standard_normal((4, 4)).astype(np.float16))
    g.add_node("Cast", [w16], ["w"], {"to": 1})
    g.add_node("Transpose", ["w"], ["wt"], {"perm": [1, 0]})
    g.add_node("MatMul", ["x", "wt"], ["y"])
    g.add_node("Shape", ["x"], ["xs"])  # a graph output that becomes a constant
    g.outputs = ["y", "xs"]
    out = apply(g, constant_folding)
    assert ops(out) == ["MatMul"]
    assert out.values["xs"].data.tolist() == [3, 4]
    assert "w16" not in out.values


def test_constant_folding_skips_huge_expansion():
    g = Graph()
    g.add_input("x", "float32", (512, 512))
    g.add_node("ConstantOfShape", [const(g, "shp", np.array([512, 512], np.int64))], ["z"],
               {"value": np.array([1.0], np.float32)})
    g.add_node("Add", ["x", "z"], ["y"])
    g.outputs = ["y"]
    out = apply(g, constant_folding, fires=False)
    assert ops(out) == ["ConstantOfShape", "Add"]


def test_constant_folding_symbolic_shape_not_folded():
    g = Graph()
    g.add_input("x", "float32", ("N", 3))
    g.add_node("Shape", ["x"], ["s"])
    g.outputs = ["s"]
    apply(g, constant_folding, fires=False)


# ---- dead_code -------------------------------------------------------------


def test_dead_code_removes_unreachable_branch_and_values():
    g = Graph()
    g.add_input("x", "float32", (2, 3))
    g.add_input("unused", "float32", (2, 3))
    g.add_node("Relu", ["x"], ["y"])
    g.add_node("Mul", ["x", randc(g, "k", (2, 3))], ["dead1"])
    g.add_node("Sigmoid", ["dead1"], ["dead2"])
    randc(g, "orphan", (5,))
    g.outputs = ["y"]
    out = apply(g, dead_code)
    assert ops(out) == ["Relu"]
    assert set(out.values) == {"x", "unused", "y"}
    assert not dead_code(out)


# ---- identity_removal --------------------------------------------------------


def test_identity_removal_keeps_output_names():
    g = Graph()
    g.add_input("x", "float32", (2, 3))
    g.add_node("Relu", ["x"], ["a"])
    g.add_node("Identity", ["a"], ["b"])
    g.add_node("Sigmoid", ["b"], ["c"])
    g.add_node("Dropout", ["c", const(g, "ratio", np.array(0.5, np.float32))], ["y", "mask"])
    g.add_node("Tanh", ["c"], ["z"])
    g.outputs = ["y", "z"]
    out = apply(g, identity_removal)
    assert ops(out) == ["Relu", "Sigmoid", "Tanh"]
    assert out.nodes[1].outputs == ["y"] and out.nodes[2].inputs == ["y"]


def test_identity_removal_leaves_real_copies():
    g = Graph()
    g.add_input("x", "float32", (2, 3))
    g.add_input("train", "bool", ())
    g.add_node("Identity", ["x"], ["y"])  # graph input -> graph output: a real copy
    g.add_node("Relu", ["x"], ["r"])
    g.add_node("Dropout", ["r", "", "train"], ["z"])  # training_mode not constant
    g.add_node("Dropout", ["r"], ["w", "mask"])  # mask is used
    g.outputs = ["y", "z", "w", "mask"]
    apply(g, identity_removal, fires=False)


# ---- fold_batchnorm --------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_conv(bias):
    g = conv_graph(bias=bias)
    add_bn(g, "c", 6, "y")
    g.outputs = ["y"]
    out = apply(g, fold_batchnorm)
    assert ops(out) == ["Conv"] and out.nodes[0].outputs == ["y"]
    assert "w" not in out.values  # replaced, not edited in place


def test_fold_batchnorm_depthwise_conv_and_grouped_conv_transpose():
    g = conv_graph(group=4, cin=4, cout=8)
    add_bn(g, "c", 8, "bn1")
    w = randc(g, "wt", (8, 3, 2, 2), 5)  # C=8, M/g=3, group 2 -> M=6
    g.add_node("ConvTranspose", ["bn1", w], ["ct"], {"group": 2, "strides": [2, 2]})
    add_bn(g, "ct", 6, "y", seed=9)
    g.outputs = ["y"]
    out = apply(g, fold_batchnorm)
    assert ops(out) == ["Conv", "ConvTranspose"]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_fold_batchnorm_gemm(trans_b):
    g = Graph()
    g.add_input("x", "float32", (3, 5))
    w = randc(g, "w", (4, 5) if trans_b else (5, 4))
    g.add_node("Gemm", ["x", w, randc(g, "c", (4,), 1)], ["h"],
               {"transB": trans_b, "alpha": 0.5, "beta": 2.0})
    add_bn(g, "h", 4, "y")
    g.outputs = ["y"]
    out = apply(g, fold_batchnorm)
    assert ops(out) == ["Gemm"]


def test_fold_batchnorm_matmul_becomes_gemm():
    g = Graph()
    g.add_input("x", "float32", (3, 5))
    g.add_node("MatMul", ["x", randc(g, "w", (5, 4))], ["h"])
    add_bn(g, "h", 4, "y")
    g.outputs = ["y"]
    out = apply(g, fold_batchnorm)
    assert ops(out) == ["Gemm"]


def test_fold_batchnorm_not_when_conv_output_read_elsewhere():
    g = conv_graph()
    add_bn(g, "c", 6, "y")
    g.add_node("Relu", ["c"], ["r"])
    g.outputs = ["y", "r"]
    apply(g, fold_batchnorm, fires=False)


def test_fold_batchnorm_standalone_bn_stays():
    g = Graph()
    g.add_input("x", "float32", (1, 6, 4, 4))
    add_bn(g, "x", 6, "y")
    g.outputs = ["y"]
    out = apply(g, fold_batchnorm, fires=False)
    assert ops(out) == ["BatchNormalization"]


# ---- fold_mul_add ------------------------------------------------------------


def test_fold_mul_add_caffe_scale():
    g = conv_graph()
    g.add_node("Mul", [randc(g, "gamma", (6, 1, 1), 4), "c"], ["m"])
    g.add_node("Add", ["m", randc(g, "beta", (1, 6, 1, 1), 5)], ["a"])
    g.add_node("Div", ["a", const(g, "two", np.float32(2))], ["y"])
    g.outputs = ["y"]
    out = apply(g, fold_mul_add)
    assert ops(out) == ["Conv"] and out.nodes[0].outputs == ["y"]


def test_fold_mul_add_not_per_spatial_or_dynamic():
    g = conv_graph()
    g.add_input("k", "float32", (1, 6, 1, 1))
    g.add_node("Mul", ["c", randc(g, "spatial", (7, 7))], ["m"])
    g.add_node("Conv", ["m", randc(g, "w2", (6, 6, 1, 1))], ["c2"])
    g.add_node("Add", ["c2", "k"], ["y"])
    g.outputs = ["y"]
    apply(g, fold_mul_add, fires=False)


# ---- fuse_activation ---------------------------------------------------------


def _fuse_case(act, inputs_extra=(), attrs=None, producer="Conv"):
    g = Graph()
    if producer in ("Conv", "ConvTranspose"):
        g.add_input("x", "float32", (1, 4, 5, 5))
        g.add_node(producer, ["x", randc(g, "w", (4, 4, 3, 3)), randc(g, "b", (4,), 1)], ["h"])
    elif producer == "Gemm":
        g.add_input("x", "float32", (3, 5))
        g.add_node("Gemm", ["x", randc(g, "w", (4, 5))], ["h"], {"transB": 1})
    else:
        g.add_input("x", "float32", (2, 3, 5))
        g.add_node("MatMul", ["x", randc(g, "w", (5, 4))], ["h"])
    g.add_node(act, ["h", *inputs_extra], ["y"], attrs or {})
    g.outputs = ["y"]
    return g


@pytest.mark.parametrize(
    "act,extra,attrs,producer,fused",
    [
        ("Relu", (), {}, "Conv", "Relu"),
        ("Clip", ("lo", "hi"), {}, "Conv", "Clip"),
        ("Clip", ("lo",), {}, "Gemm", "Relu"),
        ("LeakyRelu", (), {"alpha": 0.2}, "Gemm", "LeakyRelu"),
        ("HardSigmoid", (), {"alpha": 0.3, "beta": 0.4}, "MatMul", "HardSigmoid"),
        ("HardSwish", (), {}, "ConvTranspose", "HardSwish"),
        ("Sigmoid", (), {}, "Conv", "Sigmoid"),
        ("Tanh", (), {}, "MatMul", "Tanh"),
    ],
)
def test_fuse_activation(act, extra, attrs, producer, fused):
    g = _fuse_case(act, extra, attrs, producer)
    g.add_constant("lo", np.float32(0.0))
    g.add_constant("hi", np.float32(0.5))
    out = apply(g, fuse_activation)
    assert ops(out) == [producer]
    node = out.nodes[0]
    assert node.attrs["activation"] == fused and node.outputs == ["y"]


def test_fuse_activation_not_with_dynamic_clip_or_shared_output():
    g = _fuse_case("Clip", ("lo",))
    g.add_input("lo", "float32", ())
    apply(g, fuse_activation, fires=False)

    g = _fuse_case("Relu")
    g.add_node("Sigmoid", ["h"], ["s"])
    g.outputs = ["y", "s"]
    apply(g, fuse_activation, fires=False)

    g = _fuse_case("Relu")  # already fused: the second activation stays
    g.nodes[0].attrs["activation"] = "Tanh"
    apply(g, fuse_activation, fires=False)


# ---- fold_pad ----------------------------------------------------------------


def _pad_graph(consumer, value=None, mode="constant", pads=(0, 0, 1, 2, 0, 0, 2, 1), attrs=None):
    g = Graph()
    g.add_input("x", "float32", (1, 3, 6, 6))
    inputs = ["x", const(g, "pads", np.array(pads, np.int64))]
    if value is not None:
        inputs.append(const(g, "value", np.array(value, np.float32)))
    g.add_node("Pad", inputs, ["p"], {"mode": mode})
    if consumer == "Conv":
        channels = 3 + pads[1] + pads[5]
        g.add_node("Conv", ["p", randc(g, "w", (2, channels, 3, 3))], ["y"], attrs or {})
    else:
        g.add_node(consumer, ["p"], ["y"], {"kernel_shape": [3, 3], **(attrs or {})})
    g.outputs = ["y"]
    return g


@pytest.mark.parametrize(
    "consumer,value,attrs",
    [
        ("Conv", None, {"pads": [1, 0, 0, 1], "strides": [2, 2]}),
        ("Conv", 0.0, {"auto_pad": "VALID"}),
        ("AveragePool", None, {}),  # no own pads: count_include_pad becomes 1
        ("AveragePool", 0.0, {"count_include_pad": 1, "pads": [1, 0, 0, 1], "strides": [2, 1]}),
        ("MaxPool", -np.inf, {"pads": [1, 0, 0, 0], "strides": [2, 2]}),
    ],
)
def test_fold_pad(consumer, value, attrs):
    out = apply(_pad_graph(consumer, value, attrs=attrs), fold_pad)
    assert ops(out) == [consumer]


@pytest.mark.parametrize(
    "consumer,value,mode,pads,attrs",
    [
        ("Conv", None, "reflect", (0, 0, 1, 1, 0, 0, 1, 1), {}),
        ("Conv", 1.0, "constant", (0, 0, 1, 1, 0, 0, 1, 1), {}),
        ("Conv", None, "constant", (0, 1, 1, 1, 0, 0, 1, 1), {}),  # pads the channel axis
        ("Conv", None, "constant", (0, 0, 1, 1, 0, 0, 1, 1), {"auto_pad": "SAME_UPPER"}),
        ("MaxPool", 0.0, "constant", (0, 0, 1, 1, 0, 0, 1, 1), {}),
        ("AveragePool", None, "constant", (0, 0, 1, 1, 0, 0, 1, 1), {"pads": [1, 1, 1, 1]}),
        ("AveragePool", None, "constant", (0, 0, 1, 1, 0, 0, 1, 1), {"ceil_mode": 1, "strides": [2, 2]}),
    ],
)
def test_fold_pad_not_when_illegal(consumer, value, mode, pads, attrs):
    apply(_pad_graph(consumer, value, mode, pads, attrs), fold_pad, fires=False)


# ---- optimize ----------------------------------------------------------------


def test_optimize_pipeline_small_net():
    g = Graph("net")
    g.add_input("image", "float32", (1, 3, 8, 8))
    g.add_node("Pad", ["image", const(g, "pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], ["p"])
    g.add_node("Conv", ["p", randc(g, "w1", (8, 3, 3, 3))], ["c1"])
    add_bn(g, "c1", 8, "bn1")
    g.add_node("Clip", ["bn1", const(g, "zero", np.float32(0)), const(g, "six", np.float32(6))], ["r1"])
    g.add_node("Identity", ["r1"], ["id1"])
    g.add_node("AveragePool", ["id1"], ["pool"], {"kernel_shape": [2, 2], "strides": [2, 2]})
    g.add_node("Shape", ["pool"], ["s"])
    g.add_node("Gather", ["s", const(g, "i0", np.array(0, np.int64))], ["n"], {"axis": 0})
    g.add_node("Unsqueeze", ["n", const(g, "ax", np.array([0], np.int64))], ["n1"])
    g.add_node("Concat", ["n1", const(g, "m1", np.array([-1], np.int64))], ["shape"], {"axis": 0})
    g.add_node("Reshape", ["pool", "shape"], ["flat"])
    g.add_node("Gemm", ["flat", randc(g, "fw", (10, 128), 7), randc(g, "fb", (10,), 8)], ["fc"],
               {"transB": 1})
    g.add_node("Dropout", ["fc"], ["logits"])
    g.outputs = ["logits"]
    out = apply(g, lambda graph: optimize(graph) is graph, infer=False)
    assert ops(out) == ["Conv", "AveragePool", "Reshape", "Gemm"]
    assert out.nodes[0].attrs["activation"] == "Clip"
    assert out.outputs == ["logits"] and out.inputs == ["image"]
    assert len(DEFAULT_PIPELINE) >= 6


def test_optimize_unknown_pass_name():
    from mobconv.errors import MobconvError

    with pytest.raises(MobconvError, match="unknown graph pass 'nope'"):
        optimize(Graph(), passes=["dead_code", "nope"])


def test_optimize_onnx_model_symbolic_batch():
    onnx = pytest.importorskip("onnx")
    load_onnx = pytest.importorskip("mobconv.frontends.onnx").load_onnx
    from onnx import TensorProto, helper, numpy_helper

    r = rng(5)
    inits = {
        "w": r.standard_normal((4, 3, 3, 3)), "s": r.random(4) + 0.5, "b": r.standard_normal(4),
        "m": r.standard_normal(4), "v": r.random(4) + 0.5, "fw": r.standard_normal((5, 64)),
    }
    initializers = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in inits.items()]
    initializers.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"))
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["c"], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "fw"], ["g"], transB=1),
        helper.make_node("Identity", ["g"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], initializers,
    )
    g = load_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    out = apply(g, lambda graph: optimize(graph) is graph)
    assert ops(out) == ["Conv", "Flatten", "Gemm"]
    assert out.values["y"].shape == ("N", 5)


@pytest.mark.parametrize("dilations,fires", [([1, 1], True), ([2, 2], False)])
def test_fold_pad_zero_before_maxpool_after_relu(dilations, fires):
    g = Graph()
    g.add_input("x", "float32", (1, 3, 5, 5))
    g.add_node("Relu", ["x"], ["r"])
    g.add_node("Pad", ["r", const(g, "pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], ["p"])
    g.add_node("MaxPool", ["p"], ["y"], {"kernel_shape": [3, 3], "dilations": dilations})
    g.outputs = ["y"]
    out = apply(g, fold_pad, fires=fires)
    assert ops(out) == (["Relu", "MaxPool"] if fires else ["Relu", "Pad", "MaxPool"])


@pytest.mark.parametrize("producer", ["ConvTranspose", "Gemm", "MatMul"])
def test_fold_mul_add_other_producers(producer):
    g = Graph()
    if producer == "ConvTranspose":
        g.add_input("x", "float32", (1, 4, 5, 5))
        g.add_node("ConvTranspose", ["x", randc(g, "w", (4, 3, 3, 3))], ["h"],
                   {"group": 2, "strides": [2, 2], "output_padding": [1, 0]})
        k_shape, t_shape = (6, 1, 1), (1, 6, 1, 1)
    elif producer == "Gemm":
        g.add_input("x", "float32", (3, 5))
        g.add_node("Gemm", ["x", randc(g, "w", (5, 4)), randc(g, "c", (3, 4), 2)], ["h"],
                   {"beta": 0.0})
        k_shape, t_shape = (4,), ()
    else:
        g.add_input("x", "float32", (3, 5))
        g.add_node("MatMul", ["x", randc(g, "w", (5, 4))], ["h"])
        k_shape, t_shape = (1, 4), (4,)
    g.add_node("Mul", ["h", randc(g, "k", k_shape, 3)], ["m"])
    g.add_node("Sub", ["m", randc(g, "t", t_shape, 4)], ["y"])
    g.outputs = ["y"]
    out = apply(g, fold_mul_add)
    assert ops(out) == ["Gemm" if producer == "MatMul" else producer]
