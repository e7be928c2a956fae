"""A quantization-aware-trained TensorFlow graph deploys as int8, checked against TensorFlow's
own fake-quant execution and against LiteRT's int8 execution of the same graph.

The graph is what TF-MOT's default 8-bit scheme writes, with tf.quantization ops:
per-tensor activation FakeQuants (8 bits, full range), per-channel narrow-range symmetric
conv weights (the depthwise filter per channel of its channel axis), a per-tensor
narrow-range Dense kernel. Blocks: a stem conv, a MobileNetV2 inverted residual (1x1
Relu6, depthwise 3x3 Relu6, linear 1x1, residual Add), MaxPool, a ResNet basic block
with BN NOT folded into the convs (FakeQuant(weights) -> Conv2D -> FusedBatchNorm, Keras
QAT without BN folding), Add + Relu, AvgPool and MaxPool concatenated, Flatten + Dense.
It is trained briefly in float on scikit-learn's digits (real handwritten digits,
resized 8x8 -> 16x16) and the FakeQuant ranges and BN statistics are taken from the
training digits; the held-out digits are the test inputs.
"""
from __future__ import annotations

import numpy as np
import pytest

from tf_oracle import frozen, run_tf, convert_graph_def

import tensorflow as tf  # noqa: E402  (after tf_oracle, which sets the log level)

WEIGHTED = ("Conv", "Gemm", "MatMul", "Add")


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    images = tf.image.resize((d.images / 16.0).astype(np.float32)[..., None], (16, 16)).numpy()
    perm = np.random.default_rng(0).permutation(len(images))
    return images[perm], d.target[perm].astype(np.int64)


def _variables():
    def init(shape, seed):
        fan_in = int(np.prod(shape[:-1]))
        w = np.random.default_rng(seed).standard_normal(shape) * np.sqrt(2.0 / fan_in)
        return tf.Variable(w.astype(np.float32))

    v = {"stem": init((3, 3, 1, 8), 1), "exp": init((1, 1, 8, 16), 2), "dw": init((3, 3, 16, 1), 3),
         "prj": init((1, 1, 16, 8), 4), "r1": init((3, 3, 8, 8), 5), "r2": init((3, 3, 8, 8), 6),
         "fc": init((4 * 4 * 16, 10), 7)}
    for name, n in (("stem", 8), ("exp", 16), ("dw", 16), ("prj", 8), ("fc", 10)):
        v[name + "_b"] = tf.Variable(np.zeros(n, np.float32))
    for name in ("bn1", "bn2"):
        v[name + "_g"] = tf.Variable(np.ones(8, np.float32))
        v[name + "_b"] = tf.Variable(np.zeros(8, np.float32))
    return v


def _net(v, x, act, weight, bn):
    """act(name, t): activation FakeQuant; weight(w, kind): weight FakeQuant; bn(name, t)."""
    def conv(t, w, stride=1):
        return tf.nn.conv2d(t, weight(w, "conv"), stride, "SAME")

    x = act("in", x)
    y = act("stem", tf.nn.relu6(tf.nn.bias_add(conv(x, v["stem"]), v["stem_b"])))
    e = act("exp", tf.nn.relu6(tf.nn.bias_add(conv(y, v["exp"]), v["exp_b"])))
    e = tf.nn.depthwise_conv2d(e, weight(v["dw"], "depthwise"), [1, 1, 1, 1], "SAME")
    e = act("dw", tf.nn.relu6(tf.nn.bias_add(e, v["dw_b"])))
    p = act("prj", tf.nn.bias_add(conv(e, v["prj"]), v["prj_b"]))
    y = act("add1", y + p)
    y = tf.nn.max_pool2d(y, 2, 2, "VALID")                       # 8x8x8
    r = act("r1", tf.nn.relu(bn("bn1", conv(y, v["r1"]))))
    r = act("r2", bn("bn2", conv(r, v["r2"])))
    z = act("add2", tf.nn.relu(y + r))
    a = act("avg", tf.nn.avg_pool2d(z, 2, 2, "VALID"))           # 4x4x8
    c = act("cat", tf.concat([a, tf.nn.max_pool2d(z, 2, 2, "VALID")], axis=-1))
    f = tf.reshape(c, [-1, 4 * 4 * 16])                          # Flatten
    return act("logits", tf.nn.bias_add(tf.matmul(f, weight(v["fc"], "dense")), v["fc_b"]))


def _train(v, x, y, steps=120):
    def bn_batch(name, t):
        mean, var = tf.nn.moments(t, [0, 1, 2])
        return tf.nn.batch_normalization(t, mean, var, v[name + "_b"], v[name + "_g"], 1e-3)

    opt = tf.keras.optimizers.Adam(3e-3)
    variables = list(v.values())

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            logits = _net(v, xb, lambda n, t: t, lambda w, k: w, bn_batch)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for i in range(steps):
        j = (i * 64) % (len(x) - 64)
        step(x[j:j + 64], y[j:j + 64])


def _calibrate(v, x):
    """Activation ranges (min <= 0 <= max, as TF-MOT's range trackers) and BN statistics."""
    ranges, stats = {}, {}

    def act(name, t):
        ranges[name] = (min(float(tf.reduce_min(t)), 0.0), max(float(tf.reduce_max(t)), 0.0))
        return t

    def bn(name, t):
        mean, var = tf.nn.moments(t, [0, 1, 2])
        stats[name] = (mean.numpy(), var.numpy())
        return tf.nn.batch_normalization(t, mean, var, v[name + "_b"], v[name + "_g"], 1e-3)

    _net(v, tf.constant(x), act, lambda w, k: w, bn)
    return ranges, stats


def _qat_fn(v, ranges, stats):
    def act(name, t):
        lo, hi = ranges[name]
        return tf.quantization.fake_quant_with_min_max_vars(t, lo, hi, num_bits=8)

    def weight(w, kind):
        w = tf.convert_to_tensor(w)
        if kind == "dense":  # TF-MOT's Dense kernel: one symmetric range
            lim = tf.reduce_max(tf.abs(w))
            return tf.quantization.fake_quant_with_min_max_vars(w, -lim, lim, narrow_range=True)
        shape = w.shape
        if kind == "depthwise":  # per channel: (H, W, C, 1) with the channels last
            w = tf.reshape(w, [shape[0], shape[1], 1, shape[2] * shape[3]])
        lim = tf.reduce_max(tf.abs(tf.reshape(w, [-1, w.shape[-1]])), axis=0)
        w = tf.quantization.fake_quant_with_min_max_vars_per_channel(w, -lim, lim, narrow_range=True)
        return tf.reshape(w, shape)

    def bn(name, t):  # inference-mode FusedBatchNormV3, not folded
        mean, var = stats[name]
        return tf.compat.v1.nn.fused_batch_norm(t, v[name + "_g"], v[name + "_b"], mean, var,
                                                epsilon=1e-3, is_training=False)[0]

    return lambda x: _net(v, x, act, weight, bn)


@pytest.fixture(scope="module")
def qat(tmp_path_factory):
    tf.random.set_seed(0)
    images, labels = _digits()
    x_train, y_train, x_test, y_test = images[:1500], labels[:1500], images[1500:], labels[1500:]
    v = _variables()
    _train(v, x_train, y_train)
    ranges, stats = _calibrate(v, x_train)
    fn = _qat_fn(v, ranges, stats)
    f = frozen(fn, [tf.TensorSpec([None, 16, 16, 1], tf.float32, name="x")])
    tf_out = run_tf(f.graph_def, {"x": x_test}, f.outputs)[0]
    lo, hi = (np.float32(r) for r in ranges["logits"])
    out_scale = float((hi - lo) / np.float32(255))  # TensorFlow's FakeQuant step (Nudge)
    directory = tmp_path_factory.mktemp("tf_qat")
    model = convert_graph_def(f.graph_def, str(directory))
    path = directory / "qat.mob"
    model.save(str(path))
    concrete = tf.function(fn).get_concrete_function(
        tf.TensorSpec([1, 16, 16, 1], tf.float32, name="x"))
    return dict(fn=fn, x=x_test, y=y_test, tf_out=tf_out, scale=out_scale, model=model,
                mob=path, concrete=concrete)


def test_every_conv_gemm_and_add_runs_int8(qat):
    """Before the QDQ propagation the depthwise conv (filter reshaped), both convs followed by
    a FusedBatchNorm, the Add after them and the Dense after Flatten stayed float."""
    from mobconv.runtime import Interpreter

    graph = qat["model"].graph
    ops = [n for n in graph.nodes if n.op in WEIGHTED]
    assert sorted(n.op for n in ops) == ["Add", "Add"] + ["Conv"] * 6 + ["Gemm"]
    floats = [n.name for n in ops if graph.values[n.inputs[0]].dtype != "int8"
              or graph.values[n.outputs[0]].dtype != "int8"]
    assert not floats, f"float ops left: {floats}"
    assert not [n for n in graph.nodes if n.op == "BatchNormalization"]
    it = Interpreter(str(qat["mob"]))
    it.run({"x": qat["x"][:2]})
    kernels = [(name, op, k) for name, op, k in it.kernels() if op in WEIGHTED]
    assert len(kernels) == len(ops)
    assert all("_q8_" in k and "dynamic" not in k for _, _, k in kernels), kernels


def test_int8_output_within_one_step_of_tensorflow_fake_quant(qat):
    """TensorFlow computes the QAT graph in float on fake-quantized values; the int8 graph
    requantizes every layer once more (integer accumulators, one rounding per output), so
    the logits may differ by whole output steps: observed at most 1 step over the 297
    held-out digits (19 % of the logits off by that step); the bound is 2 steps, at most
    30 % off, and the predicted digit must agree on 99 %."""
    want, scale = qat["tf_out"], qat["scale"]
    for backend in ("reference", "runtime"):
        got = qat["model"].run({"x": qat["x"]}, backend=backend)["Identity"]
        steps = np.abs(got - want) / scale
        assert steps.max() <= 2.0 + 1e-3, (backend, steps.max())
        assert np.mean(steps > 0.5) <= 0.3, (backend, np.mean(steps > 0.5))
        agree = np.mean(got.argmax(1) == want.argmax(1))
        assert agree >= 0.99, (backend, agree)
        assert np.mean(got.argmax(1) == qat["y"]) >= 0.9


def test_int8_output_matches_litert_int8(qat):
    """An independent int8 implementation: TensorFlow's TFLite converter turns the same QAT
    graph into an int8 .tflite (every op int8, a requantize after AvgPool) run by LiteRT.
    Both round differently (LiteRT's fixed-point multipliers, its own BN fold), so the
    outputs are compared in output steps (LSBs): observed 73.5 % equal, 98.7 % within 1,
    at most 3 (LiteRT itself is up to 3 steps from TensorFlow's float fake-quant).
    TensorFlow's bundled tf.lite.Interpreter runs the LiteRT kernels (ai-edge-litert is
    not needed)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([qat["concrete"]])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    ops = [d["op_name"] for d in interpreter._get_ops_details()]
    assert "FULLY_CONNECTED" in ops and "DEQUANTIZE" in ops and ops.count("CONV_2D") == 5
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    lite = []
    for image in qat["x"]:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        lite.append(interpreter.get_tensor(out["index"])[0])
    lite = np.array(lite)
    got = qat["model"].run({"x": qat["x"]}, backend="runtime")["Identity"]
    lsb = np.round(np.abs(got - lite) / qat["scale"])
    assert np.mean(lsb == 0) >= 0.6, np.unique(lsb, return_counts=True)
    assert np.mean(lsb <= 1) >= 0.97, np.unique(lsb, return_counts=True)
    assert lsb.max() <= 5, np.unique(lsb, return_counts=True)
    assert np.mean(got.argmax(1) == lite.argmax(1)) >= 0.99
