"""Several symbolic inputs that must agree (Add(x, y) with x and y both [N, 4], a Concat of
two [N, C] inputs) run at a new N through the Python binding: resizing them one at a time
passes through a shape where they disagree, which must not be what the user sees."""
import numpy as np
import pytest

from mobconv import runtime
from mobconv.api import Model
from mobconv.errors import MobconvError
from mobconv.ir import Graph, infer_shapes
from mobconv.reference.interpreter import run as reference_run


def two_input_model(op: str) -> Model:
    g = Graph("agree")
    g.add_input("x", "float32", ("N", 4))
    g.add_input("y", "float32", ("N", 4))
    attrs = {"axis": 1} if op == "Concat" else {}
    g.add_node(op, ["x", "y"], ["z"], attrs)
    g.outputs = ["z"]
    infer_shapes(g)
    return Model(g)


@pytest.mark.parametrize("op", ["Add", "Mul", "Concat"])
@pytest.mark.parametrize("n", [1, 3, 7])
def test_inputs_that_must_agree_run_at_a_new_size(op, n):
    model = two_input_model(op)
    rng = np.random.default_rng(n)
    feeds = {"x": rng.standard_normal((n, 4), dtype=np.float32),
             "y": rng.standard_normal((n, 4), dtype=np.float32)}
    interpreter = runtime.Interpreter(model.to_bytes(), name="agree.mob")
    for size in (n, n + 2, n):  # one interpreter: sizes up and back down
        feeds = {k: np.resize(v, (size, 4)).astype(np.float32) for k, v in feeds.items()}
        got = interpreter.run(feeds)["z"]
        np.testing.assert_array_equal(got, reference_run(model.graph, feeds)["z"])
    interpreter.close()


def test_inputs_that_disagree_are_still_refused():
    model = two_input_model("Add")
    feeds = {"x": np.zeros((2, 4), np.float32), "y": np.zeros((3, 4), np.float32)}
    interpreter = runtime.Interpreter(model.to_bytes(), name="agree.mob")
    with pytest.raises(MobconvError):
        interpreter.run(feeds)
    interpreter.close()
