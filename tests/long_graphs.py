"""Long synthetic ONNX graphs (built with onnx.helper, float32, opset 17) for conversion-time
scaling: `benchmarks/bench_convert.py` times them, `tests/test_passes_scaling.py` counts the
work converting them takes.

- `add_chain`:    x -> Add(., c_i) -> Add(., c_i+1) -> ...: one constant per node
                  (issue 7: the passes scanned every node once per node);
- `conv_bn_relu`: Conv -> BatchNormalization -> Relu, repeated (BN folds, Relu fuses);
- `fan`:          x fans out to n/3 Mul(x, k_i) branches, each followed by an Identity,
                  summed by one pairwise Add tree (fan-out, then fan-in);
- `reduce_chain`: ReduceSum with an `axes` attribute (opset 11), repeated: the converter
                  adds a constant per node (Graph.unique_name walked every node per name);
- `shape_chain`:  x.view(x.size(0), -1) as exported: Shape -> Gather -> Unsqueeze ->
                  Concat -> Reshape per block on a symbolic batch; the frontend rewrites
                  each Reshape and drops the dead shape nodes (list.remove per node).
"""
from __future__ import annotations

import numpy as np

SHAPES = ("add_chain", "conv_bn_relu", "fan", "reduce_chain", "shape_chain")


def build(shape: str, nodes: int):
    """An onnx.ModelProto of `shape` with about `nodes` nodes."""
    builders = {"add_chain": add_chain, "conv_bn_relu": conv_bn_relu, "fan": fan,
                "reduce_chain": reduce_chain, "shape_chain": shape_chain}
    return builders[shape](nodes)


def _model(nodes, inits, x_shape, out_name, out_shape, opset=17):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def add_chain(n: int):
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(n):
        inits.append(numpy_helper.from_array(rng.standard_normal((1, 4)).astype(np.float32), f"c{i}"))
        nodes.append(helper.make_node("Add", [prev, f"c{i}"], [f"a{i}"]))
        prev = f"a{i}"
    return _model(nodes, inits, [1, 4], prev, [1, 4])


def conv_bn_relu(n: int):
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    c = 2
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    nodes, inits, prev = [], [], "x"
    for i in range(n // 3):
        inits += [numpy_helper.from_array(f32(c, c, 1, 1), f"w{i}"),
                  numpy_helper.from_array(f32(c), f"b{i}"),
                  numpy_helper.from_array(f32(c), f"g{i}"),
                  numpy_helper.from_array(f32(c), f"be{i}"),
                  numpy_helper.from_array(f32(c), f"m{i}"),
                  numpy_helper.from_array(np.abs(f32(c)) + 0.5, f"v{i}")]
        nodes += [helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"conv{i}"]),
                  helper.make_node("BatchNormalization",
                                   [f"conv{i}", f"g{i}", f"be{i}", f"m{i}", f"v{i}"], [f"bn{i}"]),
                  helper.make_node("Relu", [f"bn{i}"], [f"relu{i}"])]
        prev = f"relu{i}"
    return _model(nodes, inits, [1, c, 3, 3], prev, [1, c, 3, 3])


def fan(n: int):
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    branches = max(2, n // 3)
    nodes, inits, level = [], [], []
    for i in range(branches):
        inits.append(numpy_helper.from_array(rng.standard_normal((1, 4)).astype(np.float32), f"k{i}"))
        nodes += [helper.make_node("Mul", ["x", f"k{i}"], [f"m{i}"]),
                  helper.make_node("Identity", [f"m{i}"], [f"id{i}"])]
        level.append(f"id{i}")
    j = 0
    while len(level) > 1:  # pairwise Add tree: branches - 1 nodes
        nxt = []
        for a, b in zip(level[::2], level[1::2]):
            nodes.append(helper.make_node("Add", [a, b], [f"s{j}"]))
            nxt.append(f"s{j}")
            j += 1
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return _model(nodes, inits, [1, 4], level[0], [1, 4])


def reduce_chain(n: int):
    from onnx import helper

    nodes, prev = [], "x"
    for i in range(n):
        nodes.append(helper.make_node("ReduceSum", [prev], [f"r{i}"], axes=[1], keepdims=1))
        prev = f"r{i}"
    return _model(nodes, [], [1, 4], prev, [1, 1], opset=11)


def shape_chain(n: int):
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axis0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    nodes, prev = [], "x"
    for i in range(max(1, n // 5)):
        nodes += [helper.make_node("Shape", [prev], [f"s{i}"]),
                  helper.make_node("Gather", [f"s{i}", "zero"], [f"g{i}"], axis=0),
                  helper.make_node("Unsqueeze", [f"g{i}", "axis0"], [f"u{i}"]),
                  helper.make_node("Concat", [f"u{i}", "minus1"], [f"c{i}"], axis=0),
                  helper.make_node("Reshape", [prev, f"c{i}"], [f"r{i}"])]
        prev = f"r{i}"
    return _model(nodes, inits, ["N", 4], prev, ["N", 4])
