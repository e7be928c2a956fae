"""The numpy reference interpreter: feeds checking, intermediates, observer, bfloat16 constants."""
import numpy as np
import pytest

from mobconv.errors import MobconvError
from mobconv.ir import Graph
from mobconv.reference import run


def _graph():
    g = Graph()
    g.add_input("x", "float32", ("N", 3))
    g.add_constant("w", np.array([[1.0, -2.0, 0.5]], np.float32))
    g.add_node("Mul", ["x", "w"], ["xw"])
    g.add_node("Relu", ["xw"], ["y"])
    g.outputs = ["y"]
    return g


def test_outputs_intermediates_and_observer():
    x = np.array([[1, 1, 1], [-1, 2, -4]], np.float32)
    seen = []
    out = run(_graph(), {"x": x}, observer=lambda node, ins, outs: seen.append(node.op))
    np.testing.assert_array_equal(out["y"], np.maximum(x * [1, -2, 0.5], 0))
    assert seen == ["Mul", "Relu"]
    every = run(_graph(), {"x": x}, keep_intermediates=True)
    np.testing.assert_array_equal(every["xw"], x * np.array([1, -2, 0.5], np.float32))


def test_feed_errors_name_the_input():
    with pytest.raises(MobconvError, match="missing input"):
        run(_graph(), {})
    with pytest.raises(MobconvError, match="unknown input"):
        run(_graph(), {"x": np.zeros((1, 3), np.float32), "z": 1})
    with pytest.raises(MobconvError, match=r"input 'x': expected shape \('N', 3\)"):
        run(_graph(), {"x": np.zeros((1, 4), np.float32)})


def test_bfloat16_constants_compute_as_the_values_they_encode():
    weights = np.array([[1.5, -2.0, 3.25]], np.float32)
    g = _graph()
    g.values["w"].dtype = "bfloat16"
    g.values["w"].data = (weights.view(np.uint32) >> 16).astype(np.uint16)  # exact in bf16
    out = run(g, {"x": np.ones((1, 3), np.float32)})
    np.testing.assert_array_equal(out["y"], np.maximum(weights, 0))
