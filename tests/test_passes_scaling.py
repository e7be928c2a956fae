"""Conversion work grows linearly with the graph (issue 7 finding 9), checked without a clock.

Converting an Add chain took 3 s at 2,500 nodes and 60 s at 20,000: the passes
scanned every node once per node. Wall time is too noisy on a shared machine to
assert, so this counts work instead: the number of Python lines executed (a
`sys.settrace` line counter over all Python code, libraries included, e.g. the
dataclass `__eq__` that `list.remove` calls; deterministic for a given graph)
while the frontend, the passes and the writer each handle a graph of n and of
4n nodes. Linear work gives a ratio of about 4 per phase; quadratic work gives
about 16 (any whole-graph scan per node in Python shows up; a scan inside C
code, such as `x in some_list`, does not). Each graph shape of `long_graphs.py`
is checked; `benchmarks/bench_convert.py` reports the times.
"""
import sys

import numpy as np
import onnx
import pytest

from long_graphs import SHAPES, build
from mobconv import api
from mobconv.passes import optimize

SMALL, FACTOR, MAX_RATIO = 600, 4, 4.5


def lines_executed(fn) -> int:
    """Python lines executed (in any module) while calling fn()."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


def conversion_work(shape: str, nodes: int, tmp_path) -> dict:
    """Lines executed per phase converting `shape` with `nodes` nodes."""
    path = str(tmp_path / f"{shape}_{nodes}.onnx")
    onnx.save(build(shape, nodes), path)
    model = {}
    work = {
        "frontend": lines_executed(lambda: model.setdefault("m", api.convert(path, optimize=False))),
        "passes": lines_executed(lambda: optimize(model["m"].graph)),
    }
    work["writer"] = lines_executed(lambda: model.setdefault("bytes", model["m"].to_bytes()))
    model["nodes_after"] = len(model["m"].graph.nodes)
    return work, model


@pytest.mark.parametrize("shape", SHAPES)
def test_conversion_work_grows_linearly(shape, tmp_path):
    small, small_model = conversion_work(shape, SMALL, tmp_path)
    large, large_model = conversion_work(shape, FACTOR * SMALL, tmp_path)
    # the passes did their job at both sizes (so the counts measure real rewriting)
    expected_nodes = {"add_chain": lambda n: n, "conv_bn_relu": lambda n: n // 3,
                      "fan": lambda n: 2 * (n // 3) - 1, "reduce_chain": lambda n: n,
                      "shape_chain": lambda n: n // 5}[shape]
    assert small_model["nodes_after"] == expected_nodes(SMALL)
    assert large_model["nodes_after"] == expected_nodes(FACTOR * SMALL)
    for phase in small:
        ratio = large[phase] / small[phase]
        assert ratio <= MAX_RATIO, (
            f"{shape}: {phase} executed {small[phase]} lines at {SMALL} nodes and "
            f"{large[phase]} at {FACTOR * SMALL}: {ratio:.2f}x for {FACTOR}x the nodes "
            f"(linear would be ~{FACTOR}x)")


def test_optimized_long_chain_matches_reference(tmp_path):
    """The linear passes still rewrite correctly on a long graph: conv_bn_relu folds every
    BN and fuses every Relu, and the outputs match the unoptimized graph's."""
    path = str(tmp_path / "chain.onnx")
    onnx.save(build("conv_bn_relu", 300), path)
    plain = api.convert(path, optimize=False)
    optimized = api.convert(path)
    assert [n.op for n in optimized.graph.nodes] == ["Conv"] * 100
    assert all(n.attrs.get("activation") == "Relu" for n in optimized.graph.nodes)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32)
    (expected,) = plain.run({"x": x}, backend="reference").values()
    (got,) = optimized.run({"x": x}, backend="reference").values()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
