"""TensorFlow as the oracle for the TensorFlow frontend's tests.

    from tf_oracle import check_against_tf
    import tensorflow as tf

    def fn(x):
        return tf.nn.relu(x) * 2.0

    check_against_tf(fn, [tf.TensorSpec([None, 8, 8, 3], tf.float32, name="x")])

`check_against_tf` freezes the function to a GraphDef (as a user's frozen .pb:
variables become Consts via convert_variables_to_constants_v2), converts that
file with `mobconv.convert`, runs it on the numpy reference and on the C++
runtime, and compares every output with TensorFlow's own execution of the same
GraphDef. The comparison is relative: |ours - tf| <= rtol * (|tf| + max|tf|)
element-wise, so a tensor near zero is judged against the tensor's scale.
Unknown dims (None) are tried at batch 1 and at batch 3 by default.

Only tests/test_tf_*.py import this module (it imports TensorFlow).
"""
from __future__ import annotations

import os
import tempfile
from typing import NamedTuple, Optional, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

import mobconv  # noqa: E402

RTOL = 1e-4
BACKENDS = ("reference", "runtime")


class Frozen(NamedTuple):
    graph_def: bytes  # serialized GraphDef
    inputs: list  # placeholder names ("x"), in the function's argument order
    outputs: list  # output tensor names ("Identity:0"), in the function's output order


def _as_spec(spec):
    if isinstance(spec, tf.TensorSpec):
        return spec
    shape, dtype, *name = spec  # (shape, dtype[, name])
    return tf.TensorSpec(shape, dtype, name=name[0] if name else None)


def frozen(fn, input_specs: Sequence) -> Frozen:
    """Freeze `fn` (Python function, tf.function or tf.Module method) for `input_specs`
    (tf.TensorSpec or (shape, dtype[, name]) tuples)."""
    specs = [_as_spec(s) for s in input_specs]
    func = fn if hasattr(fn, "get_concrete_function") else tf.function(fn)
    concrete = func.get_concrete_function(*specs)
    const = convert_variables_to_constants_v2(concrete)
    graph_def = const.graph.as_graph_def()
    inputs = [t.name.split(":")[0] for t in const.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in const.outputs]
    return Frozen(graph_def.SerializeToString(), inputs, outputs)


def freeze(fn, input_specs: Sequence) -> bytes:
    """GraphDef bytes of `fn` frozen for `input_specs` (see `frozen`)."""
    return frozen(fn, input_specs).graph_def


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def run_tf(graph_def_bytes: bytes, feeds: dict, fetches: Sequence[str]) -> list:
    """Run a serialized GraphDef in TensorFlow (TF1 session); feeds/fetches by tensor
    or node name. Returns numpy arrays in `fetches` order."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_def_bytes)
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as sess:
            return sess.run([_tensor_name(f) for f in fetches],
                            {_tensor_name(k): v for k, v in feeds.items()})


def ir_name(tf_name: str) -> str:
    """The IR value name the converter gives a TensorFlow tensor ("x:0" -> "x")."""
    node, _, index = tf_name.rpartition(":")
    if node and index.isdigit():
        return node if index == "0" else tf_name
    return tf_name


def random_feeds(graph_def_bytes: bytes, inputs: Sequence[str], batch: int = 1,
                 seed: int = 0, unknown: int = 5) -> dict:
    """Seeded inputs for the placeholders `inputs`: dim 0 unknown -> `batch`, other unknown
    dims -> `unknown`; floats standard normal, ints in [0, 10), bools random."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_def_bytes)
    nodes = {n.name: n for n in graph_def.node}
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in inputs:
        node = nodes[name]
        shape = tf.TensorShape(node.attr["shape"].shape)
        dtype = tf.as_dtype(node.attr["dtype"].type).as_numpy_dtype
        if shape.rank is None:
            raise ValueError(f"placeholder {name!r} has unknown rank: give feeds")
        dims = [d if d is not None else (batch if i == 0 else unknown)
                for i, d in enumerate(shape.as_list())]
        if np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(dims).astype(dtype)
        elif dtype == np.bool_:
            feeds[name] = rng.integers(0, 2, size=dims).astype(bool)
        else:
            feeds[name] = rng.integers(0, 10, size=dims).astype(dtype)
    return feeds


def assert_close(got, want, rtol: float = RTOL, what: str = "") -> None:
    """|got - want| <= rtol * (|want| + max|want|), element-wise; same shape and dtype kind."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != TensorFlow's {want.shape}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    want64, got64 = want.astype(np.float64), got.astype(np.float64)
    assert np.array_equal(np.isnan(got64), np.isnan(want64)), f"{what}: NaN positions differ"
    finite = ~np.isnan(want64)
    scale = float(np.max(np.abs(want64[finite]), initial=0.0))
    err = np.abs(got64 - want64)[finite]
    bound = rtol * (np.abs(want64[finite]) + scale)
    bad = err > bound
    if bad.any():
        i = int(np.argmax(err - bound))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {err.size} elements differ from TensorFlow beyond "
            f"rtol {rtol}: worst |diff| {err[i]:.3g} at flat index {i} (tf {want64[finite][i]:.6g}, "
            f"ours {got64[finite][i]:.6g}, scale {scale:.3g})")


def convert_graph_def(graph_def_bytes: bytes, tmp_dir: Optional[str] = None, **options):
    """Write the GraphDef to a .pb file and convert it with `mobconv.convert`."""
    directory = tmp_dir or tempfile.mkdtemp(prefix="tf_oracle_")
    path = os.path.join(directory, "frozen.pb")
    with open(path, "wb") as f:
        f.write(graph_def_bytes)
    return mobconv.convert(path, framework="tensorflow", **options)


def check_graph_def(graph_def_bytes: bytes, inputs: Sequence[str], outputs: Sequence[str],
                    feeds=None, batches=(1, 3), rtol: float = RTOL, backends=BACKENDS,
                    seed: int = 0, tmp_dir: Optional[str] = None, **options):
    """Convert a GraphDef and compare it with TensorFlow on every feed set and backend.

    feeds: one dict (placeholder name -> array), a list of them, or None (random
    feeds per batch size in `batches`). outputs: tensor names ("Identity:0"); they
    are passed to the converter as its outputs. options go to mobconv.convert.
    Returns the converted Model.
    """
    options.setdefault("outputs", [o.split(":")[0] if o.endswith(":0") else o for o in outputs])
    model = convert_graph_def(graph_def_bytes, tmp_dir, **options)
    if feeds is None:
        feed_sets = [random_feeds(graph_def_bytes, inputs, b, seed + b) for b in batches]
    elif isinstance(feeds, dict):
        feed_sets = [feeds]
    else:
        feed_sets = list(feeds)
    for feed in feed_sets:
        want = run_tf(graph_def_bytes, feed, outputs)
        ours_feed = {ir_name(k): v for k, v in feed.items()}
        for backend in backends:
            got = model.run(ours_feed, backend=backend)
            for name, ref in zip(outputs, want):
                key = ir_name(name)
                assert key in got, f"output {key!r} missing from {backend} results {sorted(got)}"
                shapes = {k: list(np.shape(v)) for k, v in feed.items()}
                assert_close(got[key], ref, rtol, f"{backend}, output {name}, inputs {shapes}")
    return model


def check_against_tf(fn, input_specs: Sequence, feeds=None, **kwargs):
    """Freeze `fn` for `input_specs`, convert, compare with TensorFlow (see check_graph_def).

    feeds are keyed by the placeholder names: the TensorSpec names, or TensorFlow's
    argument names when the specs have none. Returns the converted Model."""
    f = frozen(fn, input_specs)
    return check_graph_def(f.graph_def, f.inputs, f.outputs, feeds, **kwargs)
