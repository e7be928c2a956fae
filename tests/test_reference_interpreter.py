"""The numpy reference interpreter: feeds checking, intermediates, observer.

bfloat16 is a storage type in the IR (raw uint16 bits); ops that take it (Cast)
decode the bits, as ONNX's bfloat16 backend cases check.
"""
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
