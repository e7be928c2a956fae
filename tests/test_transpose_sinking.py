"""transpose_sinking: NHWC graphs wrapped the way the TensorFlow converters (and tf2onnx)
wrap them, Transpose(perm [0,3,1,2]) -> op in NCHW -> Transpose(perm [0,2,3,1]), lose
every Transpose but the one at the graph input; the outputs equal the numpy reference's
on the unrewritten graph; the pass never adds Transposes and leaves graphs without
Transposes untouched."""
import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from mobconv import api
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.passes import DEFAULT_PIPELINE, optimize, transpose_sinking
from mobconv.reference import run

TO_NCHW, FROM_NCHW = [0, 3, 1, 2], [0, 2, 3, 1]


def transposes(graph) -> int:
    return sum(n.op == "Transpose" for n in graph.nodes)


class NHWC:
    """Builds an IR graph in NHWC the way the TensorFlow converters emit one."""

    def __init__(self, shape=(2, 7, 6, 3), seed=0):
        self.g = Graph("nhwc")
        self.rng = np.random.default_rng(seed)
        self.count = 0
        self.g.add_input("x", "float32", shape)
        self.x = "x"

    def name(self, hint):
        self.count += 1
        return f"{hint}{self.count}"

    def const(self, data):
        name = self.name("k")
        self.g.add_constant(name, np.asarray(data))
        return name

    def randc(self, shape, positive=False):
        data = self.rng.standard_normal(shape).astype(np.float32)
        return self.const(np.abs(data) + 0.5 if positive else data)

    def op(self, op, inputs, attrs=None, outputs=1):
        outs = [self.name(op.lower()) for _ in range(outputs)]
        self.g.add_node(op, inputs, outs, attrs)
        return outs[0] if outputs == 1 else outs

    def shape(self, x):
        infer_shapes(self.g)
        return self.g.values[x].shape

    def channels(self, x):
        return self.shape(x)[-1]

    def conv(self, x, cout=None, group=1, k=3):
        cin = self.channels(x)
        cout = cout or cin
        t = self.op("Transpose", [x], {"perm": TO_NCHW})
        w = self.randc((cout, cin // group, k, k))
        y = self.op("Conv", [t, w, self.randc((cout,))], {"pads": [k // 2] * 4, "group": group})
        return self.op("Transpose", [y], {"perm": FROM_NCHW})

    def bn(self, x):
        c = self.channels(x)
        return self.op("Add", [self.op("Mul", [x, self.randc((c,))]), self.randc((c,))])

    def relu6(self, x):
        return self.op("Clip", [x, self.const(np.float32(0)), self.const(np.float32(6))])

    def gap(self, x):
        return self.op("ReduceMean", [x, self.const(np.array([1, 2], np.int64))], {"keepdims": 0})

    def finish(self, *outputs):
        self.g.outputs = list(outputs)
        infer_shapes(self.g)
        return self.g


def feeds_for(graph, seed=1):
    r = np.random.default_rng(seed)
    return {n: r.standard_normal(graph.values[n].shape).astype(np.float32) for n in graph.inputs}


def check(graph, expected_after=None, pass_fn=transpose_sinking, fires=True):
    """Run pass_fn on a copy: outputs equal the reference on the original, the Transpose
    count never grows (and equals expected_after when given). Returns the copy."""
    feeds = feeds_for(graph)
    expected = run(graph, feeds)
    result = graph.copy()
    before = transposes(result)
    changed = pass_fn(result)
    if fires is not None and pass_fn is not optimize:
        assert bool(changed) == fires
    assert result.inputs == graph.inputs and result.outputs == graph.outputs
    got = run(result, feeds)
    for name in graph.outputs:
        assert got[name].shape == expected[name].shape, name
        assert got[name].dtype == expected[name].dtype, name
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
    infer_shapes(result)
    for name in graph.outputs:
        assert result.values[name].shape == graph.values[name].shape
    assert transposes(result) <= before
    if expected_after is not None:
        assert transposes(result) == expected_after, [n.op for n in result.nodes]
    return result


def no_transpose_next_to_conv(graph):
    """Transposes only at the edges: none between two ops inside the graph is next to a Conv."""
    producers = graph.producers()
    for node in graph.nodes:
        if node.op == "Transpose" and node.outputs[0] not in graph.outputs:
            source = producers.get(node.inputs[0])
            assert source is None or source.op != "Conv", f"{node.name} reads a Conv"
            readers = [n for n in graph.nodes if node.outputs[0] in n.inputs]
            if any(r.op == "Conv" for r in readers):
                assert node.inputs[0] in graph.inputs, f"{node.name} feeds a Conv inside the graph"


# ---- one op between two convolutions -------------------------------------------------


def _scalar(b, x):
    return b.op("Mul", [x, b.const(np.float32(1.5))])


def _left_const_sub(b, x):
    return b.op("Sub", [b.randc((b.channels(x),)), x])


def _hw_const(b, x):
    shape = b.shape(x)
    return b.op("Div", [x, b.randc((shape[1], 1, shape[3]), positive=True)])


def _full_const(b, x):
    return b.op("Add", [x, b.randc((1,) + tuple(b.shape(x)[1:]))])


def _residual(b, x):
    return b.op("Add", [b.conv(x), x])


def _concat(b, x):
    return b.op("Concat", [b.conv(x, 2), x, b.conv(x, 1)], {"axis": -1})


def _concat_const(b, x):
    shape = b.shape(x)
    return b.op("Concat", [x, b.randc(tuple(shape[:3]) + (2,))], {"axis": 3})


def _split(b, x):
    c = b.channels(x)
    first, second = b.op("Split", [x, b.const(np.array([1, c - 1], np.int64))], {"axis": 3}, outputs=2)
    return b.op("Concat", [b.conv(second, 2), b.op("Relu", [first])], {"axis": 3})


def _pad(b, x):
    return b.op("Pad", [x, b.const(np.array([0, 1, 0, 0, 0, 2, 1, 0], np.int64))])


def _pad_axes(b, x):
    return b.op("Pad", [x, b.const(np.array([1, 0, 2, 1], np.int64)), "",
                        b.const(np.array([1, -2], np.int64))], {"mode": "reflect"})


def _slice(b, x):
    k = b.const
    return b.op("Slice", [x, k(np.array([1, 0, 1], np.int64)), k(np.array([6, 5, 3], np.int64)),
                          k(np.array([1, 2, 3], np.int64)), k(np.array([2, 1, 1], np.int64))])


def _slice_no_axes(b, x):
    k = b.const
    return b.op("Slice", [x, k(np.array([0, 1], np.int64)), k(np.array([2, 5], np.int64))])


def _squeeze_excite(b, x):
    s = b.op("ReduceMean", [x, b.const(np.array([1, 2], np.int64))], {"keepdims": 1})
    return b.op("Mul", [x, b.op("Sigmoid", [b.conv(s, k=1)])])


def _reduce_channels(b, x):
    return b.op("ReduceSum", [x, b.const(np.array([-1], np.int64))], {"keepdims": 1})


def _softmax(b, x):
    return b.op("Softmax", [x], {"axis": -1})


def _log_softmax_w(b, x):
    return b.op("LogSoftmax", [x], {"axis": 2})


def _resize_scales(b, x):
    return b.op("Resize", [x, "", b.const(np.array([1, 2, 1.5, 1], np.float32))], {"mode": "linear"})


def _resize_sizes(b, x):
    shape = b.shape(x)
    sizes = np.array([shape[0], 5, 9, shape[3]], np.int64)
    return b.op("Resize", [x, "", "", b.const(sizes)], {"mode": "nearest"})


def _resize_axes(b, x):
    return b.op("Resize", [x, "", b.const(np.array([2, 2], np.float32))], {"axes": [1, 2]})


def _qdq_per_tensor(b, x):
    q = b.op("QuantizeLinear", [x, b.const(np.float32(0.05)), b.const(np.int8(3))])
    return b.op("DequantizeLinear", [q, b.const(np.float32(0.05)), b.const(np.int8(3))])


def _qdq_per_channel(b, x):
    c = b.channels(x)
    scale = b.const(np.linspace(0.02, 0.08, c).astype(np.float32))
    q = b.op("QuantizeLinear", [x, scale], {"axis": 3})
    return b.op("DequantizeLinear", [q, scale], {"axis": -1})


def _prelu(b, x):
    return b.op("PRelu", [x, b.randc((b.channels(x),))])


def _where(b, x):
    cond = b.const(np.arange(b.channels(x)) % 2 == 0)
    return b.op("Where", [cond, x, b.op("Neg", [x])])


def _cast_round_trip(b, x):
    return b.op("Cast", [b.op("Cast", [x], {"to": TensorProto.FLOAT16})], {"to": TensorProto.FLOAT})


def _mvn(b, x):
    return b.op("MeanVarianceNormalization", [x], {"axes": [0, 1, 2]})


def _unary_chain(b, x):
    for op, attrs in [("LeakyRelu", {"alpha": 0.2}), ("Elu", {}), ("HardSwish", {}),
                      ("Tanh", {}), ("Abs", {}), ("Sqrt", {}), ("Neg", {}), ("Softplus", {})]:
        x = b.op(op, [x], attrs)
    return x


def _topk(b, x):
    values, _ = b.op("TopK", [x, b.const(np.array([2], np.int64))], {"axis": 3}, outputs=2)
    return values


def _swish(b, x):
    """x * sigmoid(beta * x): one Transpose read by two ops that meet again (a region)."""
    return b.op("Mul", [x, b.op("Sigmoid", [b.op("Mul", [b.const(np.float32(1.2)), x])])])


def _se_reshape(b, x):
    """EfficientNet's squeeze-excite: Mean (keepdims=0) -> Reshape to (N,1,1,C) -> conv."""
    c = b.channels(x)
    s = b.op("ReduceMean", [x, b.const(np.array([1, 2], np.int64))], {"keepdims": 0})
    s = b.op("Reshape", [s, b.const(np.array([-1, 1, 1, c], np.int64))])
    return b.op("Mul", [b.op("Sigmoid", [b.conv(s, k=1)]), x])


def _upsample_repeat(b, x):
    """Keras UpSampling2D (nearest) on TensorFlow: repeat = Unsqueeze -> Tile -> Reshape
    on H, then on W."""
    n, h, w, c = b.shape(x)
    y = b.op("Unsqueeze", [x, b.const(np.array([2], np.int64))])
    y = b.op("Tile", [y, b.const(np.array([1, 1, 2, 1, 1], np.int64))])
    y = b.op("Reshape", [y, b.const(np.array([0, 2 * h, w, c], np.int64))])
    y = b.op("Unsqueeze", [y, b.const(np.array([-2], np.int64))])
    y = b.op("Tile", [y, b.const(np.array([1, 1, 1, 2, 1], np.int64))])
    return b.op("Reshape", [y, b.const(np.array([n, 2 * h, 2 * w, c], np.int64))])


def _squeeze_unsqueeze(b, x):
    y = b.op("ReduceMax", [x, b.const(np.array([2], np.int64))], {"keepdims": 1})
    y = b.op("Squeeze", [y, b.const(np.array([2], np.int64))])
    return b.op("Add", [x, b.op("Unsqueeze", [y, b.const(np.array([2], np.int64))])])


def _split_channels_reshape(b, x):
    """(N,H,W,C) -> (N,H,W,2,C/2) -> Relu -> back: C splits in place in both layouts."""
    n, h, w, c = b.shape(x)
    y = b.op("Reshape", [x, b.const(np.array([n, h, w, 2, c // 2], np.int64))])
    return b.op("Reshape", [b.op("Relu", [y]), b.const(np.array([n, h, w, c], np.int64))])


OP_CASES = {f.__name__.lstrip("_"): f for f in [
    _swish, _se_reshape, _upsample_repeat, _squeeze_unsqueeze, _split_channels_reshape,
    _scalar, _left_const_sub, _hw_const, _full_const, _residual, _concat, _concat_const,
    _split, _pad, _pad_axes, _slice, _slice_no_axes, _squeeze_excite, _reduce_channels,
    _softmax, _log_softmax_w, _resize_scales, _resize_sizes, _resize_axes, _qdq_per_tensor,
    _qdq_per_channel, _prelu, _where, _cast_round_trip, _mvn, _unary_chain, _topk,
]}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_between_convolutions_loses_its_transposes(case):
    """conv -> bias/BN -> Relu6 -> <op> -> conv -> GlobalAveragePool: only the input's
    Transpose is left, none next to a Conv inside the graph."""
    b = NHWC()
    y = b.relu6(b.bn(b.conv(b.x, 4)))
    y = OP_CASES[case](b, y)
    graph = b.finish(b.gap(b.conv(y, 3)))
    result = check(graph, expected_after=1)
    no_transpose_next_to_conv(result)


def test_argmax_output_needs_no_transpose():
    b = NHWC()
    y = b.op("ArgMax", [b.conv(b.x, 4)], {"axis": 3, "keepdims": 0})
    check(b.finish(y), expected_after=1)


def test_mobilenet_v2_like_blocks_then_pipeline_fuses():
    """Inverted residual blocks: after the whole pipeline, BN and Relu6 are folded into
    the Convs, the residual Add into the Conv, Pad into the depthwise Conv."""
    b = NHWC((1, 9, 9, 3))
    y = b.relu6(b.bn(b.conv(b.x, 8)))
    for _ in range(2):
        e = b.relu6(b.bn(b.conv(y, 16, k=1)))
        p = b.op("Pad", [e, b.const(np.array([0, 1, 1, 0, 0, 1, 1, 0], np.int64))])
        d = b.relu6(b.bn(b.conv(p, 16, group=16)))
        d = b.op("Slice", [d, b.const(np.array([1, 1], np.int64)), b.const(np.array([-1, -1], np.int64)),
                           b.const(np.array([1, 2], np.int64))])
        y = b.op("Add", [y, b.bn(b.conv(d, 8, k=1))])
    graph = b.finish(b.op("MatMul", [b.gap(y), b.randc((8, 5))]))
    assert transposes(graph) == 14
    result = check(graph, expected_after=1, pass_fn=optimize)
    ops = [n.op for n in result.nodes]
    assert ops.count("Conv") == 7 and not {"Add", "Mul", "Clip", "Pad"} & set(ops), ops
    no_transpose_next_to_conv(result)


def test_resnet_like_concat_and_pool_blocks():
    b = NHWC((2, 8, 8, 3))
    y = b.op("Relu", [b.bn(b.conv(b.x, 6))])
    t = b.op("Transpose", [b.op("Pad", [y, b.const(np.array([0, 1, 1, 0, 0, 1, 1, 0], np.int64))])],
             {"perm": TO_NCHW})
    pooled = b.op("MaxPool", [t], {"kernel_shape": [3, 3], "strides": [2, 2]})
    y = b.op("Transpose", [pooled], {"perm": FROM_NCHW})
    branch = b.op("Relu", [b.bn(b.conv(b.op("Relu", [b.bn(b.conv(y))])))])
    y = b.op("Relu", [b.op("Add", [branch, y])])
    y = b.op("Concat", [b.conv(y, 2), b.conv(y, 3), y], {"axis": 3})
    graph = b.finish(b.gap(y))
    result = check(graph, expected_after=1, pass_fn=optimize)
    no_transpose_next_to_conv(result)


def test_ops_that_meet_again_flip_together():
    """conv -> swish (x * sigmoid(x)) -> global pool: the conv's Transpose has two
    readers whose paths meet again and no Transpose follows, so no single op can move
    without adding one; flipping the three ops together removes it."""
    b = NHWC()
    check(b.finish(b.gap(_swish(b, b.conv(b.x, 4)))), expected_after=1)


def test_keras_mobilenet_head_reshape_reads_the_conv():
    """GlobalAveragePooling2D(keepdims) -> 1x1 conv -> Reshape([0, classes]): the
    Transpose between the (N,C,1,1) conv and the Reshape only moves size-1 axes."""
    b = NHWC()
    y = b.op("ReduceMean", [b.conv(b.x, 4), b.const(np.array([1, 2], np.int64))], {"keepdims": 1})
    graph = b.finish(b.op("Reshape", [b.conv(y, 5, k=1), b.const(np.array([0, 5], np.int64))]))
    check(graph, expected_after=1)


@pytest.mark.parametrize("target", [[0, 2, 0, 4], [2, 0, -1], [2, 4, 2, 1]])
def test_reshape_after_transpose_of_real_axes_stays_correct(target):
    """(2,4,2,1) -> Transpose([0,2,3,1]) moves the non-1 axes 1 and 2, and a 0 in the
    target on a moved axis copies another dim: the Reshape cannot read x directly."""
    g = Graph()
    g.add_input("x", "float32", (2, 4, 2, 1))
    g.add_node("Transpose", ["x"], ["t"], {"perm": FROM_NCHW})
    g.add_constant("shape", np.array(target, np.int64))
    g.add_node("Reshape", ["t", "shape"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    check(g, expected_after=1, fires=None)


def test_transpose_after_reshape_to_ones_folds_into_it():
    g = Graph()
    g.add_input("x", "float32", (3, 5))
    g.add_constant("shape", np.array([0, 1, 1, 5], np.int64))
    g.add_node("Reshape", ["x", "shape"], ["r"])
    g.add_node("Transpose", ["r"], ["t"], {"perm": TO_NCHW})
    g.add_node("Relu", ["t"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    result = check(g, expected_after=0)
    assert [n.op for n in result.nodes] == ["Reshape", "Relu"]


# ---- what the pass must not do ---------------------------------------------------------


def test_graph_without_transposes_is_untouched():
    g = Graph()
    g.add_input("x", "float32", (1, 3, 5, 5))
    g.add_constant("w", np.ones((4, 3, 1, 1), np.float32))
    g.add_node("Conv", ["x", "w"], ["y"])
    g.add_node("Relu", ["y"], ["z"])
    g.outputs = ["z"]
    infer_shapes(g)
    before = copy.deepcopy((g.nodes, sorted(g.values)))
    assert transpose_sinking(g) is False
    assert (g.nodes, sorted(g.values)) == before


def _zoo_sources(tmp_path):
    import glob
    import os

    from model_zoo.caffe import nets
    from real_onnx_models import light_model_paths, with_random_weights

    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "..", "model_zoo", "onnx", "*.onnx"))):
        yield os.path.basename(path), path, {}
    (shufflenet,) = [p for p in light_model_paths() if "shufflenet" in p]  # channel shuffles
    onnx.save(with_random_weights(onnx.load(shufflenet)), tmp_path / "shufflenet.onnx")
    yield "shufflenet", str(tmp_path / "shufflenet.onnx"), {}
    prototxt, caffemodel = nets.build_ssd(str(tmp_path))  # Permute layers
    yield "caffe ssd", prototxt, {"caffemodel": caffemodel}


def test_existing_models_convert_to_the_same_bytes(tmp_path):
    """ONNX and Caffe models (some with Transposes: ShuffleNet's channel shuffle, SSD's
    Permute) give the same .mob bytes with and without the pass."""
    without = [p for p in DEFAULT_PIPELINE if p != "transpose_sinking"]
    for name, path, options in _zoo_sources(tmp_path):
        graph = api.convert(path, optimize=False, **options).graph
        plain = graph.copy()
        optimize(graph)
        optimize(plain, without)
        assert to_bytes(graph) == to_bytes(plain), name


def test_no_move_when_a_transpose_would_be_duplicated():
    """A Transpose read by a Relu and by a Reshape (layout-specific) stays: pushing it
    through the Relu would need a second one for the Reshape."""
    b = NHWC()
    y = b.conv(b.x, 4)
    r = b.op("Relu", [y])
    flat = b.op("Reshape", [y, b.const(np.array([2, -1], np.int64))])
    graph = b.finish(r, flat)
    check(graph, expected_after=2, fires=False)


def test_flatten_keeps_nhwc_order():
    """Keras Flatten after a conv reads NHWC order: the Transpose before it stays."""
    b = NHWC()
    y = b.op("Relu", [b.bn(b.conv(b.x, 4))])
    graph = b.finish(b.op("Reshape", [y, b.const(np.array([0, -1], np.int64))]))
    result = check(graph, expected_after=2)
    assert [n.op for n in result.nodes][-2:] == ["Transpose", "Reshape"]


def test_nhwc_graph_output_keeps_name_shape_and_values():
    """An NHWC value that is both a graph output and read inside keeps its name."""
    b = NHWC()
    y = b.op("Relu", [b.bn(b.conv(b.x, 4))])
    z = b.gap(b.conv(y))
    result = check(b.finish(y, z), expected_after=2)
    assert result.producers()[y].op == "Transpose"


def test_other_operand_without_transpose_gets_one_only_if_it_pays():
    """Add(conv, graph input) read by a conv: one Transpose on the input replaces two."""
    b = NHWC()
    b.g.add_input("skip", "float32", (2, 7, 6, 4))
    s = b.op("Add", [b.conv(b.x, 4), "skip"])
    check(b.finish(b.gap(b.conv(s))), expected_after=2)
    b = NHWC()
    b.g.add_input("skip", "float32", (2, 7, 6, 4))
    s = b.op("Add", [b.conv(b.x, 4), "skip"])
    check(b.finish(b.op("Reshape", [s, b.const(np.array([2, -1], np.int64))])),
          expected_after=2, fires=False)


def test_misjudged_moves_leave_the_graph_as_it_was(monkeypatch):
    """Safety net: if the moves end with more Transposes than before (here every cost
    is forced to -1: the Relu takes the Transpose that the Reshape still needs), the
    pass restores the graph and reports no change."""
    import importlib

    module = importlib.import_module("mobconv.passes.transpose_sinking")
    b = NHWC()
    y = b.conv(b.x, 4)
    graph = b.finish(b.op("Relu", [y]), b.op("Reshape", [y, b.const(np.array([2, -1], np.int64))]))
    before = copy.deepcopy((graph.nodes, {k: (v.shape, v.dtype) for k, v in graph.values.items()}))
    monkeypatch.setattr(module._Sinker, "cost", lambda self, region, q: -1)
    monkeypatch.setattr(module, "MAX_FLIPS_PER_NODE", 1)  # or the Relu flips back and forth
    assert transpose_sinking(graph) is False
    assert (graph.nodes, {k: (v.shape, v.dtype) for k, v in graph.values.items()}) == before


def test_compose_and_identity():
    """T(p) -> T(q) becomes one Transpose; an identity one goes, or becomes an Identity
    when it writes a graph output."""
    g = Graph()
    g.add_input("x", "float32", (2, 3, 4, 5))
    g.add_node("Transpose", ["x"], ["a"], {"perm": [0, 2, 3, 1]})
    g.add_node("Transpose", ["a"], ["b"], {"perm": [1, 0, 3, 2]})
    g.add_node("Transpose", ["b"], ["c"], {"perm": [1, 0, 3, 2]})
    g.add_node("Transpose", ["c"], ["d"], {"perm": [0, 3, 1, 2]})
    g.add_node("Transpose", ["x"], ["e"], {"perm": [0, 2, 1, 3]})
    g.add_node("Relu", ["e"], ["f"])
    g.add_node("Transpose", ["f"], ["h"], {"perm": [0, 2, 1, 3]})
    g.outputs = ["d", "h"]
    infer_shapes(g)
    result = check(g, expected_after=0)
    assert [n.op for n in result.nodes] == ["Identity", "Relu", "Identity"]


def test_reverse_perm_and_no_rank():
    """Transpose without perm reverses the axes; pairs cancel through a Sigmoid."""
    g = Graph()
    g.add_input("x", "float32", (2, 3, 4))
    g.add_node("Transpose", ["x"], ["a"])
    g.add_node("Sigmoid", ["a"], ["b"])
    g.add_node("Transpose", ["b"], ["c"])
    g.add_node("Mul", ["c", "x"], ["d"])
    g.outputs = ["d"]
    infer_shapes(g)
    check(g, expected_after=0)


def test_quantized_values_are_not_flipped():
    b = NHWC()
    y = b.conv(b.x, 4)
    r = b.op("Relu", [y])
    graph = b.finish(b.gap(b.conv(r)))
    graph.values[r].quant = QuantParams([0.1], [0])
    result = graph.copy()
    transpose_sinking(result)
    producer = result.producers()[r]
    assert producer.op == "Relu" and result.values[producer.inputs[0]].shape == (2, 7, 6, 4)


def test_work_grows_linearly_with_the_graph():
    """Lines of Python executed by the pass on a chain of n and 4n NHWC conv blocks
    (with swish diamonds and residual Adds): about 4x, not 16x (as
    tests/test_passes_scaling.py measures the other passes)."""
    from test_passes_scaling import lines_executed

    def chain(n):
        b = NHWC((1, 4, 4, 2))
        b.channels = lambda x: 2  # every conv keeps 2 channels: no shape inference per block
        y = b.conv(b.x)
        for i in range(n):
            y = b.relu6(b.bn(b.conv(y)))
            if i % 3 == 0:
                y = b.op("Add", [y, _swish(b, y)])
        return b.finish(b.gap(y))

    work = []
    for n in (40, 160):
        graph = chain(n)
        work.append(lines_executed(lambda: transpose_sinking(graph)))
        assert transposes(graph) == 1
    assert work[1] / work[0] < 4.5, work


# ---- random chains -------------------------------------------------------------------


AGNOSTIC = ["bn", "relu6", "pad", "residual", "concat", "squeeze_excite", "unary_chain",
            "hw_const", "slice", "split", "qdq_per_channel", "softmax", "resize_axes"]


def _random_graph(seed, extra=()):
    rng = np.random.default_rng(seed)
    b = NHWC((1 + seed % 2, 6 + seed % 3, 5 + seed % 4, 2), seed=seed)
    y = b.conv(b.x, 3)
    pool = AGNOSTIC + list(extra)
    for _ in range(int(rng.integers(4, 9))):
        what = pool[int(rng.integers(len(pool)))]
        if what == "conv" or b.channels(y) > 12 or min(b.shape(y)[1:3]) > 12:
            y = b.conv(y, int(rng.integers(2, 5)))
        elif what == "bn":
            y = b.bn(y)
        elif what == "relu6":
            y = b.relu6(y)
        elif what == "reshape":  # layout-specific: the Transposes around it must stay correct
            y = b.op("Reshape", [y, b.const(np.array(b.shape(y), np.int64))])
        elif what == "flatten_back":
            shape = b.shape(y)
            flat = b.op("Reshape", [y, b.const(np.array([shape[0], -1], np.int64))])
            y = b.op("Reshape", [b.op("Relu", [flat]), b.const(np.array(shape, np.int64))])
        elif what == "slice" and min(b.shape(y)[1:3]) < 3:
            y = b.conv(y)
        else:
            y = OP_CASES[what](b, y)
        if rng.random() < 0.5:
            y = b.conv(y)
    return b.finish(b.gap(y) if rng.random() < 0.7 else y)


@pytest.mark.parametrize("seed", range(12))
def test_random_agnostic_chains_keep_only_edge_transposes(seed):
    graph = _random_graph(seed)
    rank4_output = len(graph.values[graph.outputs[0]].shape) == 4
    result = check(graph, expected_after=1 + rank4_output)
    no_transpose_next_to_conv(result)


@pytest.mark.parametrize("seed", range(8))
def test_random_chains_with_layout_specific_ops_stay_correct(seed):
    check(_random_graph(100 + seed, extra=["reshape", "flatten_back", "reshape"]))


def _any_perm_graph(seed):
    """Rank 2..5, Transposes with random permutations among unary, broadcasting,
    residual, Concat, Softmax, ReduceSum, Pad, Unsqueeze, Squeeze, Tile, Reshape (merge,
    split, insert a 1) and Split ops; sometimes a second output."""
    rng = np.random.default_rng(seed)
    g = Graph()
    rank = int(rng.integers(2, 6))
    g.add_input("x", "float32", tuple(int(d) for d in rng.integers(1, 5, rank)))
    b = NHWC.__new__(NHWC)
    b.g, b.rng, b.count, b.x = g, rng, 0, "x"
    y, seen = "x", ["x"]
    for _ in range(int(rng.integers(3, 12))):
        s = b.shape(y)
        rank, c = len(s), rng.random()
        if c < 0.35:
            y = b.op("Transpose", [y], {"perm": [int(p) for p in rng.permutation(rank)]})
        elif c < 0.45:
            y = b.op(str(rng.choice(["Relu", "Sigmoid", "Neg", "Tanh", "Abs"])), [y])
        elif c < 0.6:
            k = b.randc(tuple(d if rng.random() < 0.5 else 1 for d in s)[int(rng.integers(0, rank + 1)):])
            y = b.op(str(rng.choice(["Add", "Mul", "Sub"])), [y, k] if rng.random() < 0.5 else [k, y])
        elif c < 0.7:
            same = [v for v in seen if b.shape(v) == s and v != y]
            y = b.op("Add", [y, same[int(rng.integers(len(same)))]]) if same else y
        elif c < 0.76:
            axis = int(rng.integers(rank))
            fits = [v for v in seen if len(b.shape(v)) == rank
                    and all(p == q for i, (p, q) in enumerate(zip(b.shape(v), s)) if i != axis)]
            y = b.op("Concat", [y, fits[int(rng.integers(len(fits)))]], {"axis": axis - rank * int(rng.integers(2))})
        elif c < 0.82:
            y = b.op("Softmax", [y], {"axis": int(rng.integers(-rank, rank))})
        elif c < 0.88 and rank > 1:
            axes = sorted(int(a) for a in rng.choice(rank, int(rng.integers(1, rank)), replace=False))
            y = b.op("ReduceSum", [y, b.const(np.array(axes, np.int64))], {"keepdims": int(rng.integers(2))})
        elif c < 0.90:
            y = b.op("Pad", [y, b.const(rng.integers(0, 2, 2 * rank).astype(np.int64))])
        elif c < 0.92 and rank < 6:
            y = b.op("Unsqueeze", [y, b.const(np.array([int(rng.integers(rank + 1))], np.int64))])
        elif c < 0.93 and 1 in s and rank > 1:
            y = b.op("Squeeze", [y, b.const(np.array([s.index(1)], np.int64))])
        elif c < 0.95:
            y = b.op("Tile", [y, b.const(rng.integers(1, 3, rank).astype(np.int64))])
        elif c < 0.98:
            target, axis = list(s), int(rng.integers(rank))
            if rng.random() < 0.5 and axis + 1 < rank:
                target[axis:axis + 2] = [s[axis] * s[axis + 1]]
            elif s[axis] % 2 == 0:
                target[axis:axis + 1] = [2, s[axis] // 2]
            else:
                target.insert(axis, 1)
            y = b.op("Reshape", [y, b.const(np.array(target, np.int64))]) if len(target) < 7 else y
        elif s[int(rng.integers(rank))] >= 2:
            axis = int(np.argmax(s))
            first, rest = b.op("Split", [y, b.const(np.array([1, s[axis] - 1], np.int64))], {"axis": axis},
                               outputs=2)
            y = b.op("Concat", [b.op("Relu", [rest]), first], {"axis": axis})
        seen.append(y)
    extra = [seen[int(rng.integers(1, len(seen)))]] if rng.random() < 0.4 and len(seen) > 1 else []
    return b.finish(*dict.fromkeys([y] + extra))


@pytest.mark.parametrize("seed", range(0, 240, 4))
def test_random_graphs_with_any_permutation(seed):
    """Any rank and permutation: outputs equal, never more Transposes, through the pass
    alone and through the whole pipeline (2,400 seeds of this generator pass offline)."""
    graph = _any_perm_graph(seed)
    check(graph, fires=None)
    check(graph, fires=None, pass_fn=optimize)


# ---- through the ONNX frontend (tf2onnx-style Keras exports), against onnxruntime ---


def _tf2onnx_style_model():
    rng = np.random.default_rng(3)

    def init(name, data):
        return onnx.numpy_helper.from_array(np.asarray(data), name)

    nodes, inits = [], []
    x = "input"
    for i, (cin, cout) in enumerate([(3, 8), (8, 8)]):
        inits += [init(f"w{i}", rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)),
                  init(f"b{i}", rng.standard_normal(cout).astype(np.float32)),
                  init(f"g{i}", rng.standard_normal(cout).astype(np.float32))]
        nodes += [helper.make_node("Transpose", [x], [f"t{i}"], perm=TO_NCHW),
                  helper.make_node("Conv", [f"t{i}", f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Transpose", [f"c{i}"], [f"n{i}"], perm=FROM_NCHW),
                  helper.make_node("Add", [f"n{i}", f"b{i}"], [f"a{i}"]),
                  helper.make_node("Mul", [f"a{i}", f"g{i}"], [f"m{i}"]),
                  helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        x = f"r{i}"
    inits.append(init("axes", np.array([1, 2], np.int64)))
    nodes += [helper.make_node("Add", ["r0", "r1"], ["sum"]),
              helper.make_node("ReduceMean", ["sum", "axes"], ["logits"], keepdims=0)]
    graph = helper.make_graph(
        nodes, "keras_like", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 9, 7, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_tf2onnx_style_model_matches_onnxruntime(tmp_path):
    path = tmp_path / "keras_like.onnx"
    onnx.save(_tf2onnx_style_model(), path)
    model = api.convert(str(path))
    assert transposes(model.graph) == 1
    assert [n.op for n in model.graph.nodes] == ["Transpose", "Conv", "Conv", "Add", "ReduceMean"]
    x = np.random.default_rng(4).standard_normal((2, 9, 7, 3)).astype(np.float32)
    (want,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    for backend in ("reference", "runtime"):
        (got,) = model.run({"input": x}, backend=backend).values()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=backend)


# ---- names ---------------------------------------------------------------------------


def _speech_like(blocks=6):
    """Conv1d blocks (N, C, T) with GELU-like element-wise tails, then a Transpose to
    (N, T, C) and a MatMul head: the shape of a Conv1d speech model exported from PyTorch."""
    b = NHWC(shape=(2, 4, 9))
    x = b.x
    for _ in range(blocks):
        c = b.shape(x)[1]
        y = b.op("Conv", [x, b.randc((c, c, 3)), b.randc((c,))], {"pads": [1, 1]})
        h = b.op("Mul", [y, b.const(np.float32(0.5))])
        x = b.op("Mul", [h, b.op("Add", [b.op("Tanh", [y]), b.const(np.float32(1.0))])])
    t = b.op("Transpose", [x], {"perm": [0, 2, 1]})
    out = b.op("MatMul", [t, b.randc((4, 5))])
    return b.finish(out)


def _suffixes(name) -> int:
    return name.count("_nchw") + name.count("_t_") + name.endswith("_t")


def test_names_carry_one_suffix_at_most():
    """A value moved back and forth (rank 3: [0,2,1] is its own inverse) keeps its original
    name with one suffix, not `_nchw_nchw_...` once per move."""
    graph = _speech_like()
    result = check(graph, fires=None)
    names = list(result.values) + [n.name for n in result.nodes]
    assert max(_suffixes(n) for n in names) <= 1, sorted(names, key=len)[-1]
    result = graph.copy()
    optimize(result)
    names = list(result.values) + [n.name for n in result.nodes]
    assert max(_suffixes(n) for n in names) <= 1, sorted(names, key=len)[-1]
