"""TensorFlow tensor, math and control-flow op converters against TensorFlow itself.

Each case is a small tf.function frozen to a GraphDef (tf_oracle), converted,
and run on the numpy reference and the C++ runtime at batch 1 and 3; TensorFlow
runs the same GraphDef on the same feeds (integers exact, floats within 1e-4
relative). StridedSlice gets generated specs (every mask, negative strides) in
one graph per input. Switch/Merge come from tf.compat.v1 graphs built with TF1
control flow: folding is checked on its own (the folded GraphDef still runs in
TensorFlow with the same result) and end to end.
"""
from __future__ import annotations

import contextlib
import random
import re

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.ops import control_flow_util
from tf_oracle import (
    BACKENDS, assert_close, check_against_tf, check_graph_def, convert_graph_def, frozen, run_tf,
)

from mobconv.errors import ConversionError
from mobconv.frontends.tensorflow.control_flow import fold_constant_switches
from mobconv.frontends.tensorflow.proto import graph_pb2

S = tf.TensorSpec


def f32(*shape, name="x"):
    return S(list(shape), tf.float32, name=name)


def i32(*shape, name="i"):
    return S(list(shape), tf.int32, name=name)


def _c(seed, *shape, dtype=np.float32):
    return tf.constant(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# ---- tensor ops -------------------------------------------------------------------------

TENSOR_CASES = {
    "concat": (lambda x, y: tf.concat([x, y, x * 2.0], axis=-1), [f32(None, 4, 3), f32(None, 4, 2, name="y")]),
    "concat_axis0_int": (lambda i: tf.concat([i, i + 1], axis=0), [i32(None, 3)]),
    "split": (lambda x: [t * (k + 1.0) for k, t in enumerate(tf.split(x, 3, axis=2))], [f32(None, 2, 6)]),
    "split_v": (lambda x: tf.split(x, [1, -1, 2], axis=-1), [f32(None, 3, 7)]),
    "pack": (lambda x, y: tf.stack([x, y], axis=1), [f32(None, 3), f32(None, 3, name="y")]),
    "pack_last": (lambda x: tf.stack([x, -x, x * 3.0], axis=-1), [f32(None, 2, 3)]),
    "unpack": (lambda x: tf.unstack(x, axis=1), [f32(None, 3, 2)]),
    "unpack_neg_axis": (lambda x: tf.unstack(x, axis=-1), [f32(None, 4, 2)]),
    "reshape": (lambda x: tf.reshape(x, [-1, 12]), [f32(None, 3, 4)]),
    "reshape_from_shape": (lambda x: tf.reshape(x, tf.stack([tf.shape(x)[0], 2, -1])), [f32(None, 4, 3)]),
    "reshape_empty_dim": (lambda x: tf.concat([tf.reshape(x[:, :0], [2, 0, 3]), x[:, :1]], axis=1),
                          [f32(2, 4, 3)]),
    "squeeze_axes": (lambda x: tf.squeeze(x, axis=[1, -1]), [f32(None, 1, 5, 1)]),
    "squeeze_all_static": (lambda x: tf.squeeze(x), [f32(2, 1, 5, 1)]),
    "expand_dims": (lambda x: [tf.expand_dims(x, 0), tf.expand_dims(x, -1), tf.expand_dims(x, 2)], [f32(None, 3, 2)]),
    "transpose": (lambda x: tf.transpose(x, [0, 2, 3, 1]), [f32(None, 2, 3, 4)]),
    "slice": (lambda x: tf.slice(x, [0, 1, 0], [-1, 2, -1]), [f32(None, 4, 3)]),
    "gather_const_params": (lambda i: tf.gather(_c(1, 10, 4), i), [i32(None, 3)]),
    "gather_axis1": (lambda x: tf.gather(x, [2, 0, 2, 1], axis=1), [f32(None, 3, 4)]),
    "gather_axis_neg": (lambda x: tf.gather(x, [[1, 0], [3, 3]], axis=-1), [f32(None, 3, 4)]),
    "gather_batch_dims1": (lambda x: tf.gather(x, tf.constant([[0, 2], [1, 1]]), axis=1, batch_dims=1),
                           [f32(2, 3, 4)]),
    "gather_batch_dims1_axis2": (lambda x: tf.gather(x, tf.constant([[0, 3, 3], [1, 1, 0]]), axis=2,
                                                     batch_dims=1), [f32(2, 3, 4, 2)]),
    "gather_batch_dims_unknown_batch": (lambda x: [
        tf.gather(x[:, :, 0], tf.math.top_k(x[:, :, 0], 2).indices, batch_dims=1),
        tf.gather(x, tf.math.top_k(x[:, :, 0], 3).indices, batch_dims=1)], [f32(None, 5, 4)]),
    "gather_batch_dims_unknown_batch_axis2": (
        lambda x: tf.gather(x, tf.math.top_k(x[:, 0, :, 0], 2).indices, axis=2, batch_dims=1),
        [f32(None, 3, 5, 2)]),
    "gather_nd": (lambda x: tf.gather_nd(x, tf.constant([[0, 1], [2, 3], [1, 0]])), [f32(3, 4, 2)]),
    "gather_nd_full": (lambda i: tf.gather_nd(_c(2, 4, 5), tf.stack([i % 4, i % 5], axis=-1)), [i32(None, 3)]),
    "tile": (lambda x: tf.tile(x, [1, 2, 3]), [f32(None, 2, 3)]),
    "fill_from_shape": (lambda x: x + tf.fill(tf.shape(x), 2.5), [f32(None, 3)]),
    "fill_static": (lambda x: x + tf.fill([2, 3], 1.5), [f32(None, 2, 3)]),
    "shape_size_rank": (lambda x: [tf.shape(x), tf.size(x), tf.rank(x), tf.shape(x, out_type=tf.int64)],
                        [f32(None, 3, 2)]),
    "range": (lambda x: x + tf.cast(tf.range(1, 15, 2), tf.float32), [f32(None, 7)]),
    "cast": (lambda x: [tf.cast(x * 4.0, tf.int32), tf.cast(x, tf.bool), tf.cast(tf.cast(x * 3.0, tf.int32),
                                                                                  tf.float32)],
             [f32(None, 6)]),
    "cast_int": (lambda i: [tf.cast(i - 5, tf.float32), tf.cast(i, tf.int64), tf.cast(i - 3, tf.bool)],
                 [i32(None, 4)]),
    "pad": (lambda x: tf.pad(x, [[0, 0], [1, 2], [3, 0]]), [f32(None, 2, 3)]),
    "pad_v2": (lambda x: tf.pad(x, [[0, 1], [2, 1], [0, 0]], constant_values=-2.5), [f32(None, 2, 3)]),
    "mirror_pad_reflect": (lambda x: tf.pad(x, [[0, 0], [2, 1], [1, 2]], mode="REFLECT"), [f32(None, 3, 4)]),
    "mirror_pad_symmetric": (lambda x: tf.pad(x, [[0, 0], [3, 1], [1, 4]], mode="SYMMETRIC"),
                             [f32(None, 3, 4)]),
    "broadcast_to": (lambda x: tf.broadcast_to(x, [2, 4, 3]), [f32(4, 1)]),
    "zeros_ones_like": (lambda x: [tf.zeros_like(x), tf.ones_like(x) * x], [f32(None, 3)]),
    "identities": (lambda x: tf.identity_n([tf.stop_gradient(x) + 1.0, tf.ensure_shape(x, [None, 3])]),
                   [f32(None, 3)]),
    "argmax_argmin": (lambda x: [tf.argmax(x, axis=1), tf.argmin(x, axis=-1, output_type=tf.int32),
                                 tf.argmax(x, axis=0, output_type=tf.int32)], [f32(None, 5, 4)]),
    "top_k": (lambda x: tf.math.top_k(x, k=3), [f32(None, 7)]),
    "select_rows": (lambda c, x: tf.raw_ops.Select(condition=c, x=x, y=-x), [S([None], tf.bool, name="c"),
                                                                            f32(None, 3, 2)]),
    "select_elementwise": (lambda c, x: tf.raw_ops.Select(condition=c, x=x, y=x * 10.0),
                           [S([None, 3], tf.bool, name="c"), f32(None, 3)]),
    "select_v2_broadcast": (lambda c, x: tf.where(c, x, 7.0), [S([3], tf.bool, name="c"), f32(None, 3)]),
    "one_hot": (lambda i: [tf.one_hot(i - 2, 6), tf.one_hot(i, 4, axis=0, on_value=5.0, off_value=-1.0),
                           tf.one_hot(i, 8, axis=1, dtype=tf.int32)], [i32(None, 3)]),
    "reverse": (lambda x: [tf.reverse(x, [1]), tf.reverse(x, [0, -1])], [f32(None, 3, 4)]),
    "scatter_nd": (lambda u: tf.scatter_nd(tf.constant([[1], [3], [1]]), u, [5, 2]), [f32(3, 2, name="u")]),
    "tensor_scatter": (lambda x: [tf.tensor_scatter_nd_update(x, [[0, 1], [2, 0]], [5.0, 6.0]),
                                  tf.tensor_scatter_nd_add(x, [[1, 1], [1, 1]], [1.0, 2.0])], [f32(3, 2)]),
    "broadcast_args": (lambda x: tf.broadcast_to(x, tf.raw_ops.BroadcastArgs(s0=[3, 1], s1=[1, 4])),
                       [f32(3, 1)]),
}


@pytest.mark.parametrize("name", sorted(TENSOR_CASES))
def test_tensor_op(name):
    fn, specs = TENSOR_CASES[name]
    check_against_tf(fn, specs)


def test_top_k_ties_take_the_lower_index():
    x = np.array([[1, 3, 3, 2, 3, 0]], np.float32)
    check_against_tf(lambda x: tf.math.top_k(x, k=4), [f32(None, 6)], feeds={"x": x})


def _keras_layer(name):
    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    return {
        "dense_on_3d": layers.Dense(4),  # tensordot: Shape -> GatherV2 -> Prod -> Pack -> Reshape
        "repeat_vector": layers.RepeatVector(3),  # int32 shape arithmetic around Tile
        "upsampling1d": layers.UpSampling1D(2),
        "multi_head_attention": layers.MultiHeadAttention(2, 4),  # Einsum
        "embedding": layers.Embedding(10, 3),
    }[name]


KERAS_SPECS = {"dense_on_3d": f32(None, 5, 3), "repeat_vector": f32(None, 4), "upsampling1d": f32(None, 4, 3),
               "multi_head_attention": f32(None, 4, 8), "embedding": i32(None, 5)}


@pytest.mark.parametrize("name", sorted(KERAS_SPECS))
def test_keras_layer_shape_arithmetic(name):
    """Keras layers whose graphs compute shapes in int32 at run time (batch unknown)."""
    layer = _keras_layer(name)
    fn = (lambda x: layer(x, x)) if name == "multi_head_attention" else (lambda x: layer(x))
    check_against_tf(fn, [KERAS_SPECS[name]])


# ---- StridedSlice: generated specs ---------------------------------------------------------


def _random_spec(rng, n_max=5):
    n = rng.randint(1, n_max)
    begin = [rng.randint(-6, 6) for _ in range(n)]
    end = [rng.randint(-6, 6) for _ in range(n)]
    strides = [rng.choice([1, 1, 2, 3, -1, -2]) for _ in range(n)]
    masks = [rng.randint(0, (1 << n) - 1) if rng.random() < 0.5 else 0 for _ in range(5)]
    masks[2] = 1 << rng.randrange(n) if rng.random() < 0.35 else 0  # ellipsis: at most one
    return begin, end, strides, masks


def _valid_specs(shapes, count, seed, keep=lambda spec: True):
    """`count` random specs TensorFlow accepts on inputs of every shape in `shapes`."""
    rng = random.Random(seed)
    specs = []
    while len(specs) < count:
        spec = _random_spec(rng)
        if not keep(spec):
            continue
        try:
            for shape in shapes:
                _strided(np.zeros(shape, np.float32), spec)
        except (tf.errors.InvalidArgumentError, ValueError):
            continue
        specs.append(spec)
    return specs


def _strided(x, spec):
    begin, end, strides, m = spec
    return tf.raw_ops.StridedSlice(input=x, begin=begin, end=end, strides=strides, begin_mask=m[0],
                                   end_mask=m[1], ellipsis_mask=m[2], new_axis_mask=m[3],
                                   shrink_axis_mask=m[4])


def test_strided_slice_generated_static_shape():
    specs = _valid_specs([(3, 5, 4, 2)], 150, seed=1)
    check_against_tf(lambda x: [_strided(x, s) for s in specs], [f32(3, 5, 4, 2)], batches=(1,))


def test_strided_slice_generated_symbolic_batch():
    """Batch unknown at conversion: the converter keeps TensorFlow's raw bounds for it.
    A negative stride whose unmasked begin lies before -dim is left out: TensorFlow
    gives an empty slice there, IR Slice clamps (docs/tensorflow.md says so)."""

    def keep(spec):
        begin, _, strides, m = spec
        return not any(s < 0 and b < -1 and not (m[0] >> k) & 1
                       for k, (b, s) in enumerate(zip(begin, strides)))

    specs = _valid_specs([(1, 5, 4), (3, 5, 4)], 120, seed=2, keep=keep)
    check_against_tf(lambda x: [_strided(x, s) for s in specs], [f32(None, 5, 4)])


def test_strided_slice_python_forms():
    check_against_tf(lambda x: [x[..., 1], x[:, tf.newaxis, ::-2], x[-1], x[1:, ..., tf.newaxis, 0],
                                x[:, -1:0:-1, 2:], x[::-1, ::-1]], [f32(None, 5, 4)])


def test_strided_slice_of_shape_computes_reshape():
    """Keras-style shape arithmetic: tf.shape(x)[0] and [1:3] feed a Reshape."""
    check_against_tf(lambda x: tf.reshape(x, tf.concat([tf.shape(x)[:1], [tf.reduce_prod(tf.shape(x)[1:3])],
                                                        tf.shape(x)[3:]], 0)), [f32(None, 2, 3, 4)])


def test_strided_slice_end_from_the_same_unknown_dim(tmp_path):
    """x[:, 1:tf.shape(x)[1]] with dim 1 unknown: the end is that dim (to the end); the
    end of another tensor's unknown dim cannot be known at conversion and is refused."""
    check_against_tf(lambda x: x[:, 1:tf.shape(x)[1]] * 2.0, [f32(None, None, 3)])
    f = frozen(lambda x, y: x[:, :tf.shape(y)[1]], [f32(None, None, 3), f32(None, None, 3, name="y")])
    with pytest.raises(ConversionError, match=r"'strided_slice_1' \(type StridedSlice\): the end of dim 1 "
                                              r"\(y_d1\) is only known at run time"):
        convert_graph_def(f.graph_def, str(tmp_path))


def test_strided_slice_out_of_range_index_is_located_error(tmp_path):
    """x[:, 7] on 5 columns (TensorFlow refuses it when building the graph; here the
    frozen Const is edited afterwards, as a hand-made GraphDef could have it)."""
    f = frozen(lambda x: x[:, 1], [f32(None, 5)])
    g = tf.compat.v1.GraphDef()
    g.ParseFromString(f.graph_def)
    for node in g.node:
        if node.op == "Const" and list(tf.make_ndarray(node.attr["value"].tensor)) == [0, 1]:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array([0, 7], np.int32)))
        elif node.op == "Const" and list(tf.make_ndarray(node.attr["value"].tensor)) == [0, 2]:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array([0, 8], np.int32)))
    with pytest.raises(ConversionError, match=r"frozen\.pb: cannot convert TensorFlow node "
                       r"'strided_slice' \(type StridedSlice\): index 7 is out of bounds for dim 1 "
                       r"of size 5"):
        convert_graph_def(g.SerializeToString(), str(tmp_path))


# ---- math ops ---------------------------------------------------------------------------

def _pos(x):
    return tf.abs(x) + 0.25


MATH_CASES = {
    "arith_broadcast": (lambda x, y: [x + y, x - y, x * y, x / (tf.abs(y) + 1.0), tf.maximum(x, y),
                                      tf.minimum(x, y), tf.math.squared_difference(x, y)],
                        [f32(None, 3, 4), f32(4, name="y")]),
    "add_n": (lambda x: tf.add_n([x, x * 2.0, x * x]), [f32(None, 5)]),
    "pow": (lambda x: [tf.pow(_pos(x), 1.7), tf.pow(x, 2.0), tf.pow(_pos(x), x)], [f32(None, 5)]),
    "unary": (lambda x: [-x, tf.abs(x), tf.sign(x), 1.0 / _pos(x), tf.math.reciprocal(_pos(x)),
                         tf.floor(x * 3.0), tf.math.ceil(x * 3.0), tf.sqrt(_pos(x)), tf.math.rsqrt(_pos(x)),
                         tf.square(x), tf.exp(x), tf.math.log(_pos(x)), tf.sin(x), tf.cos(x), tf.math.erf(x)],
              [f32(None, 6)]),
    "clip_by_value": (lambda x: [tf.clip_by_value(x, -0.5, 0.75), tf.clip_by_value(x, [-1.0, 0.0, -0.2], 0.5)],
                      [f32(None, 3)]),
    "compare": (lambda x, y: [x < y, x <= y, x > y, x >= y, tf.equal(tf.round(x), tf.round(y)),
                              tf.not_equal(tf.round(x), tf.round(y))], [f32(None, 4), f32(None, 4, name="y")]),
    "logical": (lambda x, y: [tf.logical_and(x > 0, y > 0), tf.logical_or(x > 0, y > 0), tf.logical_not(x > 0),
                              tf.math.logical_xor(x > 0, y > 0)], [f32(None, 4), f32(None, 4, name="y")]),
    "int_arith": (lambda i: [i + 3, i * i - 7, tf.maximum(i, 4), tf.abs(i - 5), -i, tf.sign(i - 4)],
                  [i32(None, 4)]),
    "reduce": (lambda x: [tf.reduce_mean(x, axis=[1, 2]), tf.reduce_sum(x, axis=-1, keepdims=True),
                          tf.reduce_max(x, axis=1), tf.reduce_min(x, axis=[0, 2]),
                          tf.reduce_prod(x, axis=2, keepdims=True), tf.reduce_sum(x, axis=[])],
               [f32(None, 3, 4)]),
    "reduce_all_axes": (lambda x: [tf.reduce_sum(x), tf.reduce_mean(x)], [f32(None, 3)]),
    "reduce_bool": (lambda x: [tf.reduce_any(x > 1.0, axis=1), tf.reduce_all(x > -1.5, axis=[0, 1],
                                                                            keepdims=True)],
                    [f32(None, 5)]),
    "reduce_int": (lambda i: [tf.reduce_mean(i - 4, axis=1), tf.reduce_sum(i, axis=0), tf.reduce_max(i, 1)],
                   [i32(None, 3)]),
    "cumsum": (lambda x: [tf.cumsum(x, axis=1), tf.cumsum(x, axis=-1, exclusive=True, reverse=True)],
               [f32(None, 5)]),
    "is_nan_inf_finite": (lambda x: [tf.math.is_nan(tf.round(x) / tf.round(x)), tf.math.is_inf(1.0 / tf.round(x)),
                                     tf.math.is_finite(tf.round(x * 2.0) / tf.round(x))], [f32(None, 6)]),
    "euclidean_norm": (lambda x: [tf.norm(x, axis=1), tf.math.reduce_euclidean_norm(x, axis=[0, 2],
                                                                                keepdims=True)],
                       [f32(None, 3, 4)]),
    "div_no_nan": (lambda x, y: tf.math.divide_no_nan(x, tf.round(y)), [f32(None, 4), f32(None, 4, name="y")]),
}


@pytest.mark.parametrize("name", sorted(MATH_CASES))
def test_math_op(name):
    fn, specs = MATH_CASES[name]
    check_against_tf(fn, specs)


def test_integer_division_semantics():
    """FloorDiv/FloorMod round toward -inf (result sign of the divisor), Div and
    TruncateDiv/TruncateMod toward zero, on every sign combination."""
    a = np.array([[7, -7, 7, -7, 0, 9, -9, 3]], np.int32)
    b = np.array([[2, 2, -2, -2, 3, -4, 4, 5]], np.int32)

    def fn(a, b):
        return [tf.math.floordiv(a, b), tf.math.floormod(a, b), tf.raw_ops.Div(x=a, y=b),
                tf.truncatediv(a, b), tf.truncatemod(a, b)]

    check_against_tf(fn, [i32(None, 8, name="a"), i32(None, 8, name="b")],
                     feeds=[{"a": a, "b": b}, {"a": np.tile(a, (3, 1)) * 3, "b": np.tile(b, (3, 1))}])


def test_float_floor_div_mod():
    a = np.array([[7.5, -7.5, 7.5, -7.5, 0.0, 1e-3]], np.float32)
    b = np.array([[2.0, 2.0, -2.0, -2.0, 3.0, -0.7]], np.float32)
    check_against_tf(lambda a, b: [tf.math.floordiv(a, b), tf.math.floormod(a, b)],
                     [f32(None, 6, name="a"), f32(None, 6, name="b")], feeds={"a": a, "b": b})


def test_round_half_to_even():
    x = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 3.51]], np.float32)
    check_against_tf(lambda x: tf.round(x), [f32(None, 8)], feeds={"x": x})


def test_log1p_expm1_accurate_near_zero():
    x = np.array([[1e-8, -1e-7, 3e-6, 0.0, 0.5, -0.5, 2.0, 1e-30]], np.float32)
    check_against_tf(lambda x: [tf.math.log1p(x), tf.math.expm1(x)], [f32(None, 8)], feeds={"x": x})


# ---- control flow: Switch/Merge folding ---------------------------------------------------


@contextlib.contextmanager
def _v1_control_flow():
    """tf.compat.v1.cond builds Switch/Merge (not If) while this is active."""
    old = control_flow_util.ENABLE_CONTROL_FLOW_V2
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
    try:
        yield
    finally:
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = old


def _v1_graph(build, functional=False):
    """GraphDef bytes of a TF1 graph: build(x) gets placeholder x [None, 3] and returns the
    output tensor, which is named 'out'. functional: tf.compat.v1.cond as TF2 builds it
    in a graph (If/StatelessIf with branch functions), else Switch/Merge."""
    flow = contextlib.nullcontext() if functional else _v1_control_flow()
    with flow, tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        tf.identity(build(x), name="out")
    return graph.as_graph_def().SerializeToString()


def _ops(graph_def_bytes):
    g = graph_pb2.GraphDef()
    g.ParseFromString(graph_def_bytes)
    return g


def _conds():
    """TF1 graphs with conditionals on constants: (name, build)."""

    def training_flag(x):
        training = tf.compat.v1.placeholder_with_default(False, [], name="training")
        return tf.compat.v1.cond(training, lambda: x * 2.0, lambda: x - 1.0)

    def const_true(x):
        return tf.compat.v1.cond(tf.constant(True), lambda: tf.nn.relu(x), lambda: x * 0.0)

    def computed_pred(x):
        rate = tf.constant(0.5)
        pred = tf.logical_and(tf.greater(rate, 0.0), tf.logical_not(tf.constant(False)))
        return tf.compat.v1.cond(pred, lambda: x * rate, lambda: x)

    def nested(x):
        outer = tf.constant(True)
        inner = tf.compat.v1.placeholder_with_default(True, [], name="inner")
        return tf.compat.v1.cond(
            outer, lambda: tf.compat.v1.cond(inner, lambda: x + 10.0, lambda: x - 10.0), lambda: x)

    def two_outputs(x):
        a, b = tf.compat.v1.cond(tf.constant(False), lambda: (x, x * 2.0), lambda: (x * 3.0, x - 4.0))
        return a * b

    def dropout_like(x):  # a branch that reads the input after a constant-fed op
        keep = tf.compat.v1.placeholder_with_default(tf.constant(1.0), [], name="keep_prob")
        return tf.compat.v1.cond(tf.less(keep, 1.0), lambda: tf.nn.dropout(x, rate=0.5), lambda: x)

    return {f.__name__: f for f in (training_flag, const_true, computed_pred, nested, two_outputs, dropout_like)}


CONDS = _conds()


@pytest.mark.parametrize("functional", [False, True], ids=["switch_merge", "functional_if"])
@pytest.mark.parametrize("name", sorted(CONDS))
def test_fold_constant_switches_keeps_tf_result(name, functional):
    """The folded GraphDef has no Switch/Merge/If and TensorFlow computes the same output."""
    graph = _v1_graph(CONDS[name], functional)
    g = _ops(graph)
    assert any(n.op in (("If", "StatelessIf") if functional else ("Switch",)) for n in g.node)
    folded = fold_constant_switches(g, "model.pb")
    assert not any(n.op in ("Switch", "Merge", "If", "StatelessIf") for n in folded.node)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    want = run_tf(graph, {"x": x}, ["out"])[0]
    got = run_tf(folded.SerializeToString(), {"x": x}, ["out"])[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("functional", [False, True], ids=["switch_merge", "functional_if"])
@pytest.mark.parametrize("name", ["training_flag", "nested", "two_outputs"])
def test_constant_cond_converts(name, functional, tmp_path):
    check_graph_def(_v1_graph(CONDS[name], functional), ["x"], ["out:0"], tmp_dir=str(tmp_path))


def test_merge_value_index_becomes_constant():
    def build(x):
        with tf.compat.v1.name_scope("c"):
            sw_f, sw_t = tf.raw_ops.Switch(data=x, pred=tf.constant(False))
            merged, index = tf.raw_ops.Merge(inputs=[sw_f - 1.0, sw_t + 1.0])
        return merged * tf.cast(index + 5, tf.float32)

    graph = _v1_graph(build)
    folded = fold_constant_switches(_ops(graph), "model.pb")
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(run_tf(folded.SerializeToString(), {"x": x}, ["out"])[0],
                                  run_tf(graph, {"x": x}, ["out"])[0])
    check_graph_def(graph, ["x"], ["out:0"])


def test_tf2_cond_on_constant_lowered_and_folded():
    """tf.function's tf.cond on a tensor becomes If, lowered to Switch/Merge when frozen."""
    def fn(x):
        return tf.cond(tf.logical_not(tf.constant(True)), lambda: x * 2.0, lambda: x - 1.0)

    check_against_tf(fn, [f32(None, 3)])


@pytest.mark.parametrize("functional", [False, True], ids=["switch_merge", "functional_if"])
def test_non_constant_predicate_is_refused(functional, tmp_path):
    def build(x):
        training = tf.compat.v1.placeholder(tf.bool, [], name="training")
        return tf.compat.v1.cond(training, lambda: x * 2.0, lambda: x)

    graph = _v1_graph(build, functional)
    kept = [n for n in fold_constant_switches(_ops(graph), "model.pb").node
            if n.op in ("Switch", "StatelessIf")]
    assert kept, "the conditional stays in the graph, marked"
    with pytest.raises(ConversionError) as e:
        convert_graph_def(graph, str(tmp_path), outputs=["out"])
    msg = str(e.value)
    assert re.match(r".*frozen\.pb: cannot convert TensorFlow node 'cond[^']*' \(type "
                    + ("StatelessIf" if functional else "Switch") + r"\): its predicate", msg)
    assert "is not a constant" in msg and "(type Placeholder)" in msg and "'training'" in msg
    assert "\n" not in msg


def test_while_loop_is_refused_naming_the_loop(tmp_path):
    def loop(x):
        return tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 2.0), [tf.constant(0), x])[1]

    f = frozen(loop, [f32(None, 3)])
    with pytest.raises(ConversionError) as e:
        convert_graph_def(f.graph_def, str(tmp_path))
    msg = str(e.value)
    assert re.match(r".*frozen\.pb: cannot convert TensorFlow node 'while/[^']*' \(type \w+\): "
                    r"while loop 'while' is not supported", msg) and "\n" not in msg


def test_control_flow_cut_away_converts(tmp_path):
    """A loop in the preprocessing and a loop plus a conditional on data in the
    postprocessing: cut off with --inputs/--outputs, the network converts."""
    def build(x):
        pre = tf.map_fn(lambda row: row * 2.0 + 1.0, x)  # a while loop
        features = tf.identity(tf.nn.relu(tf.identity(pre, name="pre") * 3.0 - 1.0), name="features")
        post = tf.compat.v1.cond(tf.reduce_sum(features) > 0.0, lambda: features * 2.0, lambda: -features)
        return tf.map_fn(lambda row: row - 1.0, post)

    graph = _v1_graph(build)
    pre = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    model = convert_graph_def(graph, str(tmp_path), inputs={"pre": ("batch", 3)}, outputs=["features"])
    want = run_tf(graph, {"pre": pre}, ["features"])[0]
    for backend in BACKENDS:
        assert_close(model.run({"pre": pre}, backend=backend)["features"], want, what=backend)
    with pytest.raises(ConversionError, match=r"while loop 'map/while' is not supported"):
        convert_graph_def(graph, str(tmp_path), outputs=["features"])


def test_keras_lstm_is_refused_through_the_converter(tmp_path):
    layer = tf.keras.layers.LSTM(4)
    layer.build((None, 5, 3))
    f = frozen(lambda x: layer(x), [f32(None, 5, 3)])
    with pytest.raises(ConversionError) as e:
        convert_graph_def(f.graph_def, str(tmp_path))
    msg = str(e.value)
    assert "frozen.pb: cannot convert TensorFlow node 'lstm" in msg and "\n" not in msg
    assert re.search(r"while loop 'lstm[_0-9]*/while' is not supported", msg) and "unroll=True" in msg


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_keras_unrolled_rnn_converts(cell):
    """The way out the refusal names: unroll=True gives a loop-free graph."""
    tf.keras.utils.set_random_seed(0)
    layer = getattr(tf.keras.layers, cell)(4, unroll=True, return_sequences=True)
    layer.build((None, 5, 3))
    check_against_tf(lambda x: layer(x), [f32(None, 5, 3)])
