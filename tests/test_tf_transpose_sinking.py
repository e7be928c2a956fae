"""transpose_sinking on real TensorFlow graphs: the converters wrap every NHWC op in
Transpose pairs; after the pass only the model input's Transpose is left (none between
two ops inside the graph next to a Conv), and the outputs still match TensorFlow.

Keras MobileNetV2 and ResNet50 come from tests/tf_models.py (seeded, shared with
test_tf_architectures.py in one process); small tf.functions cover the ops Keras
models put between convolutions (Pad, squeeze-excite, Concat, Split, Softmax on
channels, resize, UpSampling2D's repeat, global pooling).
"""
import numpy as np
import pytest
import tensorflow as tf

import mobconv
import tf_models
from tf_oracle import check_against_tf

RTOL = 1e-4


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    return tf_models.zoo(tmp_path_factory)


def transposes(graph) -> int:
    return sum(n.op == "Transpose" for n in graph.nodes)


def inner_transposes_next_to_conv(graph) -> list:
    """Transposes that are not at the model's edges and read or feed a Conv."""
    producers = graph.producers()
    found = []
    for node in graph.nodes:
        if node.op != "Transpose" or node.inputs[0] in graph.inputs or node.outputs[0] in graph.outputs:
            continue
        source = producers.get(node.inputs[0])
        readers = [n for n in graph.nodes if node.outputs[0] in n.inputs]
        if (source is not None and source.op == "Conv") or any(r.op == "Conv" for r in readers):
            found.append(node.name)
    return found


@pytest.mark.parametrize("name, before_at_least", [("mobilenet_v2", 100), ("resnet50", 100)])
def test_keras_architecture_keeps_only_the_input_transpose(zoo, tmp_path, name, before_at_least):
    built = zoo.get(name)
    plain = mobconv.convert(built.pb, optimize=False)
    assert transposes(plain.graph) >= before_at_least  # the converters' NHWC wrapping
    mob = str(tmp_path / f"{name}.mob")
    mobconv.convert(built.pb).save(mob)
    model = mobconv.load(mob)
    graph = model.graph
    (only,) = [n for n in graph.nodes if n.op == "Transpose"]
    assert only.inputs == graph.inputs and only.attrs["perm"] == [0, 3, 1, 2]
    assert not inner_transposes_next_to_conv(graph)
    ops = {n.op for n in graph.nodes}
    assert not ops & {"Mul", "Clip", "Pad", "Relu", "Sub"} - ({"Relu"} if name == "resnet50" else set())
    assert graph.signature.inputs[0].shape[1:] == (*built.inputs[1].shape[1:],)
    for batch, x in built.inputs.items():
        for backend in ("reference", "runtime"):
            (got,) = model.run({graph.inputs[0]: x}, backend=backend).values()
            (want,) = built.expected[batch]
            err = np.abs(got - want).max() / np.abs(want).max()
            assert err <= RTOL, f"{name} {backend} batch {batch}: max rel err {err:.3g}"


def _small_net(x):
    rng = np.random.default_rng(0)

    def w(*shape):
        return tf.constant(rng.standard_normal(shape).astype(np.float32) * 0.3)

    y = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(x, w(3, 3, 3, 8), 1, "SAME"), w(8)))
    y = tf.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]])
    y = tf.nn.depthwise_conv2d(y, w(3, 3, 8, 1), [1, 1, 1, 1], "VALID")
    se = tf.reduce_mean(y, axis=[1, 2], keepdims=True)
    se = tf.sigmoid(tf.nn.conv2d(se, w(1, 1, 8, 8), 1, "VALID"))
    y = y * se
    a, b = tf.split(y, [3, 5], axis=3)
    y = tf.concat([tf.nn.conv2d(a, w(1, 1, 3, 4), 1, "SAME"), tf.nn.relu(b)], axis=-1)
    y = tf.nn.softmax(y, axis=-1) + y
    y = tf.image.resize(y, [14, 10], method="nearest")
    y = tf.repeat(tf.repeat(y, 2, axis=1), 2, axis=2)  # Keras UpSampling2D (nearest)
    y = tf.nn.max_pool2d(y, 4, 4, "VALID")
    y = tf.nn.conv2d(y, w(3, 3, 9, 6), 2, "SAME")
    return tf.reduce_mean(y, axis=[1, 2])


def test_ops_between_tf_convolutions_lose_their_transposes():
    model = check_against_tf(_small_net, [tf.TensorSpec([None, 7, 5, 3], tf.float32, name="x")])
    graph = model.graph
    assert transposes(graph) == 1, [n.op for n in graph.nodes]
    assert not inner_transposes_next_to_conv(graph)


def test_nhwc_output_keeps_its_layout():
    """A model whose output is a feature map still returns it in NHWC, with one
    Transpose at the output and one at the input."""
    rng = np.random.default_rng(1)
    w1 = tf.constant(rng.standard_normal((3, 3, 3, 4)).astype(np.float32))
    w2 = tf.constant(rng.standard_normal((3, 3, 4, 2)).astype(np.float32))

    def fn(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w1, 1, "SAME")) + 1.0
        return tf.nn.relu(tf.nn.conv2d(y, w2, 1, "SAME"))

    model = check_against_tf(fn, [tf.TensorSpec([None, 6, 5, 3], tf.float32, name="x")])
    assert transposes(model.graph) == 2
    assert not inner_transposes_next_to_conv(model.graph)
