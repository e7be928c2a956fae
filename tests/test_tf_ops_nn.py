"""TensorFlow NN op converters (frontends/tensorflow/ops/{conv,nn,activation,quant}.py and
the atrous pre-pass dilation.py) against TensorFlow itself.

Each test freezes a small tf.function (several ops per graph, as outputs), converts the
GraphDef and compares every output with TensorFlow's execution of the same GraphDef on
the numpy reference and the C++ runtime, at batch 1 and 3 (tf_oracle.check_against_tf:
fp32 within 1e-4 relative). Sizes are odd so SAME padding is asymmetric and strides do
not divide the input.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tf_oracle import assert_close, check_against_tf, convert_graph_def, frozen, run_tf

import mobconv
from mobconv.errors import ConversionError


def W(*shape, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return tf.constant((rng.standard_normal(shape) * scale).astype(np.float32))


def X(*shape, name="x"):
    """A float input with an unknown batch dim."""
    return tf.TensorSpec([None, *shape], tf.float32, name=name)


def ops_of(model) -> list:
    return [n.op for n in model.graph.nodes]


# ---- convolutions ---------------------------------------------------------------------------
def test_conv2d_padding_stride_dilation_groups():
    w, wg = W(3, 3, 4, 5), W(3, 2, 2, 6, seed=1)

    def fn(x):
        return (tf.nn.conv2d(x, w, 2, "SAME"),  # asymmetric SAME on 11x13
                tf.nn.conv2d(x, w, [1, 3, 2, 1], "SAME"),
                tf.nn.conv2d(x, w, 1, "VALID", dilations=2),
                tf.nn.conv2d(x, w, 1, "SAME", dilations=[2, 3]),
                tf.nn.conv2d(x, w, [1, 2, 1, 1], [[0, 0], [1, 2], [0, 3], [0, 0]]),  # EXPLICIT
                tf.nn.conv2d(x, wg, 1, "SAME"))  # groups = 4 / 2
    model = check_against_tf(fn, [X(11, 13, 4)])
    convs = [n for n in model.graph.nodes if n.op == "Conv"]
    assert len(convs) == 6 and sorted(n.attrs.get("group", 1) for n in convs) == [1, 1, 1, 1, 1, 2]


def test_nchw_data_format():
    w, wd, wt = W(3, 3, 3, 4), W(3, 3, 3, 2, seed=1), W(3, 3, 2, 3, seed=2)
    s = np.abs(np.asarray(W(3, seed=3))) + 0.5

    def fn(x):
        n = tf.shape(x)[0]
        return (tf.nn.conv2d(x, w, 2, "SAME", data_format="NCHW"),
                tf.nn.depthwise_conv2d(x, wd, [1, 1, 2, 2], "SAME", data_format="NCHW"),
                tf.nn.conv2d_transpose(x, wt, tf.stack([n, 2, 18, 15]), 2, "SAME",
                                       data_format="NCHW"),
                tf.nn.max_pool2d(x, 3, 2, "SAME", data_format="NCHW"),
                tf.nn.avg_pool2d(x, 3, 2, "SAME", data_format="NCHW"),
                tf.compat.v1.nn.fused_batch_norm(x, s, s * 0.1, s * 0.2, s, is_training=False,
                                                 data_format="NCHW")[0],
                tf.nn.bias_add(x, s, data_format="NCHW"))
    model = check_against_tf(fn, [X(3, 9, 8)])
    assert "Transpose" not in ops_of(model)


def test_conv3d():
    w3 = W(2, 3, 3, 3, 4, seed=1)
    check_against_tf(lambda x: (tf.nn.conv3d(x, w3, [1, 1, 2, 2, 1], "SAME"),
                                tf.nn.conv3d(x, w3, [1, 2, 1, 1, 1], "VALID")), [X(5, 7, 6, 3)])


def test_depthwise_multiplier_stride_dilation():
    w = W(3, 3, 3, 2)

    def fn(x):
        return (tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "SAME"),
                tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "VALID"),
                tf.raw_ops.DepthwiseConv2dNative(input=x, filter=w, strides=[1, 1, 1, 1],
                                                 padding="SAME", dilations=[1, 2, 2, 1]))
    check_against_tf(fn, [X(10, 9, 3)])


def test_conv2d_transpose_same_valid_output_padding():
    w = W(3, 3, 2, 4)  # (kh, kw, out channels, in channels)

    def fn(x):
        n = tf.shape(x)[0]
        return (tf.nn.conv2d_transpose(x, w, tf.stack([n, 11, 13, 2]), 2, "SAME"),
                tf.nn.conv2d_transpose(x, w, tf.stack([n, 12, 14, 2]), 2, "SAME"),
                tf.nn.conv2d_transpose(x, w, tf.stack([n, 13, 15, 2]), 2, "VALID"),
                tf.nn.conv2d_transpose(x, w, tf.stack([n, 14, 16, 2]), 2, "VALID"),  # + 1 row
                tf.nn.conv2d_transpose(x, w, tf.stack([n, 6, 7, 2]), 1, "SAME"))
    check_against_tf(fn, [X(6, 7, 4)])


def test_filters_computed_at_run_time():
    """A filter that is no constant is re-laid out by Transpose (and Reshape) nodes."""
    def fn(x, f, g):
        return (tf.nn.conv2d(x, f * 2.0, 1, "SAME"), tf.nn.depthwise_conv2d(x, g, [1] * 4, "VALID"),
                tf.nn.conv2d_transpose(x, f, tf.stack([tf.shape(x)[0], 9, 11, 3]), 2, "SAME"))
    check_against_tf(fn, [X(5, 6, 3), tf.TensorSpec([3, 3, 3, 3], tf.float32, name="f"),
                          tf.TensorSpec([2, 3, 3, 2], tf.float32, name="g")])


def test_keras_conv2d_transpose():
    import keras

    layer = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")
    layer.build((None, 5, 7, 4))
    layer.set_weights([np.asarray(W(3, 3, 3, 4)), np.arange(3, dtype=np.float32)])
    check_against_tf(lambda x: layer(x), [X(5, 7, 4)])


# ---- dilated convolutions: SpaceToBatchND -> conv -> BatchToSpaceND ---------------------------
def _no_space_to_batch(model):
    ops = ops_of(model)
    assert "Pad" not in ops and "Slice" not in ops and "Reshape" not in ops, ops
    dil = [n.attrs.get("dilations") for n in model.graph.nodes if n.op == "Conv"]
    assert dil and all(d and max(d) > 1 for d in dil), dil


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_atrous_conv2d_folds_to_one_dilated_conv(padding):
    w = W(3, 3, 3, 4)
    model = check_against_tf(lambda x: tf.nn.atrous_conv2d(x, w, 2, padding), [X(11, 13, 3)])
    _no_space_to_batch(model)


def test_keras_dilated_conv_and_depthwise_fold():
    import keras

    conv_same = keras.layers.Conv2D(4, 3, dilation_rate=(2, 3), padding="same")
    conv_valid = keras.layers.Conv2D(4, 3, dilation_rate=2, padding="valid")
    dw = keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same", depth_multiplier=2)
    for i, layer in enumerate((conv_same, conv_valid, dw)):
        layer.build((None, 12, 11, 3))
        layer.set_weights([np.asarray(W(*w.shape, seed=i)) for w in layer.get_weights()])
    model = check_against_tf(lambda x: (conv_same(x), conv_valid(x), dw(x)), [X(12, 11, 3)])
    _no_space_to_batch(model)


def test_keras_dilated_conv1d_folds():
    """Conv1D(dilation_rate) is SpaceToBatchND -> ExpandDims -> Conv2D -> Squeeze ->
    BatchToSpaceND; 'same' and 'causal' (a Pad first) both fold."""
    import keras

    same = keras.layers.Conv1D(4, 3, dilation_rate=2, padding="same")
    causal = keras.layers.Conv1D(4, 2, dilation_rate=3, padding="causal")
    for i, layer in enumerate((same, causal)):
        layer.build((None, 17, 3))
        layer.set_weights([np.asarray(W(*w.shape, seed=i)) for w in layer.get_weights()])
    model = check_against_tf(lambda x: (same(x), causal(x)), [X(17, 3)])
    assert "Reshape" not in ops_of(model) and "Slice" not in ops_of(model), ops_of(model)
    assert sorted(n.attrs["dilations"][1] for n in model.graph.nodes if n.op == "Conv") == [2, 3]


def test_dilated_conv_on_unknown_height_width_folds(tmp_path):
    """Run-time paddings (input H/W unknown) fold too, and their dead computation does not
    become an extra model output."""
    import keras

    conv = keras.layers.Conv2D(4, 3, dilation_rate=(2, 3), padding="same")
    conv.build((None, None, None, 3))
    conv.set_weights([np.asarray(W(3, 3, 3, 4)), np.arange(4, dtype=np.float32)])
    f = frozen(lambda x: conv(x), [tf.TensorSpec([None, None, None, 3], tf.float32, name="x")])
    path = tmp_path / "dilated.pb"
    path.write_bytes(f.graph_def)
    model = mobconv.convert(str(path))
    assert [o.name for o in model.outputs] == ["Identity"] and ops_of(model).count("Conv") == 1, ops_of(model)
    _no_space_to_batch(model)
    for shape in ((1, 9, 14, 3), (2, 16, 11, 3)):
        x = np.random.default_rng(shape[1]).standard_normal(shape).astype(np.float32)
        want = run_tf(f.graph_def, {"x": x}, f.outputs)[0]
        for backend in ("reference", "runtime"):
            assert_close(model.run({"x": x}, backend=backend)["Identity"], want,
                         what=f"{backend} {shape}")


def test_hand_written_atrous_patterns():
    """A BiasAdd between the conv and BatchToSpaceND folds too; crops larger than the paddings
    (a negative pad) leave the pattern to the ops themselves; both match TensorFlow."""
    w, bias = W(3, 3, 2, 3), W(3, seed=1)

    def folded(x):
        s = tf.space_to_batch_nd(x, [2, 3], [[2, 3], [3, 4]])
        y = tf.nn.bias_add(tf.nn.conv2d(s, w, 1, "VALID"), bias)
        return tf.batch_to_space(y, [2, 3], [[0, 1], [1, 1]])

    def not_folded(x):
        s = tf.space_to_batch_nd(x, [2, 2], [[0, 0], [0, 0]])
        return tf.batch_to_space(tf.nn.conv2d(s, w, 1, "VALID"), [2, 2], [[1, 1], [0, 0]])
    model = check_against_tf(folded, [X(7, 8, 2)])
    _no_space_to_batch(model)
    model = check_against_tf(not_folded, [X(8, 10, 2)])
    assert "Slice" in ops_of(model)


def test_space_to_batch_and_back_on_their_own():
    def fn(x):
        s = tf.space_to_batch_nd(x, [2, 3], [[1, 0], [2, 3]])
        b = tf.batch_to_space(tf.space_to_batch_nd(x, [2, 2], [[1, 0], [0, 1]]), [2, 2],
                              [[0, 1], [1, 0]])
        return s * 2.0, b + 1.0
    check_against_tf(fn, [X(5, 7, 2)])


# ---- matrix products, per-channel ops, pools -------------------------------------------------
def test_matmul_and_batch_matmul():
    w, wt = W(6, 4), W(4, 6, seed=1)

    def fn(x, y):
        return (tf.matmul(x, w), tf.matmul(x, wt, transpose_b=True),
                tf.matmul(tf.transpose(x), x, transpose_a=False),
                tf.matmul(x, x, transpose_a=True),
                tf.matmul(y, W(5, 3, seed=2)), tf.matmul(y, y, adjoint_b=True),
                tf.matmul(y, y, adjoint_a=True), tf.linalg.matmul(y, W(2, 5, 3, seed=3)[:1]))
    check_against_tf(fn, [X(6), X(4, 5, name="y")])


def test_bias_add_and_fused_batch_norm():
    w = W(3, 3, 3, 4)
    stats = [np.asarray(W(4, seed=s)) for s in range(2, 5)]
    var = np.abs(stats[2]) + 0.5

    def fn(x):
        y = tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), W(4, seed=1))
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(y, stats[0], stats[1], mean=stats[1] * 0.3,
                                                   variance=var, epsilon=1e-3, is_training=False)
        z, _, _ = tf.compat.v1.nn.fused_batch_norm(x, stats[0][:3], stats[1][:3],
                                                   mean=stats[2][:3], variance=var[:3],
                                                   is_training=False)
        return tf.nn.relu(y), z, tf.nn.bias_add(x, W(3, seed=5))
    model = check_against_tf(fn, [X(7, 9, 3)])
    assert "BatchNormalization" not in ops_of(model)  # folded into the conv, or Mul/Add


def test_bias_add_nchw():
    check_against_tf(lambda x: tf.nn.bias_add(x, W(3), data_format="NCHW"), [X(3, 4, 5)])


def test_pools():
    def fn(x):
        return (tf.nn.max_pool2d(x, 3, 2, "SAME"), tf.nn.avg_pool2d(x, 3, 2, "SAME"),
                tf.nn.max_pool2d(x, [2, 3], [2, 1], "VALID"), tf.nn.avg_pool2d(x, 2, 2, "VALID"),
                tf.nn.avg_pool2d(x, [3, 1], [1, 2], "SAME"),
                tf.nn.max_pool2d(x, 3, 2, [[0, 0], [1, 1], [0, 2], [0, 0]]),
                tf.raw_ops.MaxPoolV2(input=x, ksize=[1, 2, 3, 1], strides=[1, 2, 2, 1],
                                     padding="SAME"))
    check_against_tf(fn, [X(11, 8, 3)])
    check_against_tf(lambda x: (tf.nn.max_pool3d(x, 2, 2, "SAME"), tf.nn.avg_pool3d(x, 3, 2, "SAME")),
                     [X(5, 6, 7, 2)])


def test_softmax_log_softmax_lrn():
    def fn(x):
        return (tf.nn.softmax(x), tf.nn.log_softmax(x), tf.nn.softmax(tf.reshape(x, [-1, 70])),
                tf.nn.local_response_normalization(x, depth_radius=2, bias=1.5, alpha=0.3, beta=0.75))
    check_against_tf(fn, [X(2, 5, 7)])


def test_activations():
    def fn(x):
        return (tf.nn.relu(x), tf.nn.relu6(x * 4.0), tf.nn.elu(x), tf.nn.selu(x),
                tf.nn.leaky_relu(x, 0.15), tf.sigmoid(x), tf.tanh(x), tf.nn.softplus(x * 3.0),
                tf.nn.softsign(x))
    check_against_tf(fn, [X(3, 4)])


# ---- resize ----------------------------------------------------------------------------------
_SIZES = [(12, 19), (3, 4), (5, 10), (1, 1), (7, 3)]  # up, down, mixed; input 5 x 10


@pytest.mark.parametrize("op", ["bilinear", "nearest"])
def test_resize_align_corners_half_pixel(op):
    raw = tf.raw_ops.ResizeBilinear if op == "bilinear" else tf.raw_ops.ResizeNearestNeighbor

    def fn(x):
        outs = []
        for size in _SIZES:
            for align, half in ((False, False), (True, False), (False, True)):
                outs.append(raw(images=x, size=size, align_corners=align, half_pixel_centers=half))
        return tuple(outs)
    check_against_tf(fn, [X(5, 10, 2)])


@pytest.mark.parametrize("hw,sizes", [((5, 7), [(27, 29), (11, 7)]), ((14, 8), [(9, 28), (38, 21)]),
                                      ((12, 3), [(37, 36)])])
def test_resize_nearest_float32_ties(hw, sizes):
    """Sizes where TensorFlow's float32 source coordinate lands on (or next to) a rounding tie
    (7 -> 29 with align_corners: 7 * 0.21428572f = 1.5000000) pick TensorFlow's pixel."""
    def fn(x):
        return tuple(tf.raw_ops.ResizeNearestNeighbor(images=x, size=size, align_corners=align,
                                                      half_pixel_centers=half)
                     for size in sizes for align, half in ((True, False), (False, True)))
    check_against_tf(fn, [X(*hw, 2)], batches=(2,))


def test_resize_with_unknown_input_size():
    def fn(x):
        return tuple(raw(images=x, size=(7, 3), align_corners=align, half_pixel_centers=half)
                     for raw in (tf.raw_ops.ResizeBilinear, tf.raw_ops.ResizeNearestNeighbor)
                     for align, half in ((False, False), (True, False), (False, True)))
    model = check_against_tf(fn, [X(None, None, 2)])
    assert ops_of(model).count("Resize") == 6


def test_keras_upsampling_and_tf_image_resize():
    import keras

    up = keras.layers.UpSampling2D(2)  # Keras 3: repeat (Tile/Reshape), not a resize op
    up_bilinear = keras.layers.UpSampling2D((2, 3), interpolation="bilinear")
    check_against_tf(lambda x: (up(x), up_bilinear(x), tf.image.resize(x, [9, 4]),
                                tf.image.resize(x, [8, 13], method="nearest")), [X(5, 7, 3)])


# ---- depth / space ----------------------------------------------------------------------------
def test_depth_to_space_space_to_depth():
    def fn(x):
        return tf.nn.depth_to_space(x, 2), tf.nn.space_to_depth(x, 3), \
            tf.nn.depth_to_space(tf.nn.space_to_depth(x, 2) * 3.0, 2)
    check_against_tf(fn, [X(6, 12, 8)])


# ---- fake quantization ------------------------------------------------------------------------
def _off_ties(x, lo, hi, levels):
    """x moved off the rounding ties of the grid [lo, hi] with `levels` steps (TensorFlow rounds
    half up, QuantizeLinear half to even: equal everywhere else)."""
    step = (hi - lo) / levels
    k = np.round((x - lo) / step)
    frac = (x - lo) / step - k
    return (lo + (k + np.clip(frac, -0.35, 0.35)) * step).astype(np.float32)


def test_fake_quant_args_vars_per_channel():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 5, 6, 3)) * 3).astype(np.float32)
    feeds = {"x": _off_ties(x, -4.0, 4.0, 255 * 7)}  # off the ties of every grid below
    mins, maxs = tf.constant([-1.0, -2.5, 0.3]), tf.constant([1.0, 3.0, 2.5])

    def fn(x):
        return (tf.quantization.fake_quant_with_min_max_args(x, -3.0, 2.5),
                tf.quantization.fake_quant_with_min_max_vars(x, -2.1, 4.7),
                tf.quantization.fake_quant_with_min_max_vars(x, -2.1, 4.7, num_bits=4),
                tf.quantization.fake_quant_with_min_max_vars(x, -2.0, 2.0, narrow_range=True),
                tf.quantization.fake_quant_with_min_max_vars(x, -0.7, 0.9, num_bits=12),
                tf.quantization.fake_quant_with_min_max_vars(x, -1.5, 2.5, num_bits=16),
                tf.quantization.fake_quant_with_min_max_vars_per_channel(x, mins, maxs),
                tf.quantization.fake_quant_with_min_max_vars_per_channel(x, mins, maxs, 6,
                                                                         narrow_range=True))
    check_against_tf(fn, [X(5, 6, 3)], feeds=feeds)


def test_fake_quant_weights_equal_tensorflows():
    """Weights are quantized at conversion with TensorFlow's arithmetic: every element of a
    per-channel (narrow range, as QAT writes) and a per-tensor fake-quantized filter."""
    w = W(3, 3, 3, 4, seed=3)
    lim = tf.reduce_max(tf.abs(tf.reshape(w, [-1, 4])), axis=0)
    wd = W(3, 3, 3, 2, seed=4)

    def fn(x):
        wq = tf.quantization.fake_quant_with_min_max_vars_per_channel(w, -lim, lim, narrow_range=True)
        wdq = tf.quantization.fake_quant_with_min_max_vars(wd, -2.0, 2.0)
        wdc = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            wd, -tf.reduce_max(tf.abs(wd), [0, 1, 2]) * 2, tf.reduce_max(tf.abs(wd), [0, 1, 2]))
        return (tf.nn.conv2d(x, wq, 1, "SAME"), tf.nn.depthwise_conv2d(x, wdq, [1] * 4, "SAME"),
                tf.nn.depthwise_conv2d(x, wdc, [1] * 4, "VALID"))
    check_against_tf(fn, [X(6, 7, 3)])


def test_quantize_and_dequantize_v2_v3_v4():
    """Symmetric QDQ ops (TensorFlow's own QDQ, NVIDIA's QAT toolkit): given ranges on
    activations (TensorFlow takes per-axis ranges only from the data); weights with their
    own per-channel range."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 5, 6, 3)) * 2).astype(np.float32)
    w = W(3, 3, 3, 4, seed=7)
    qdq = tf.quantization.quantize_and_dequantize_v2

    def fn(x):
        return (qdq(x, -1.0, 3.0, range_given=True),
                qdq(x, 0.0, 2.5, signed_input=False, range_given=True),
                qdq(x, -2.0, 2.0, num_bits=4, narrow_range=True, range_given=True),
                tf.raw_ops.QuantizeAndDequantizeV3(input=x, input_min=-1.5, input_max=1.5,
                                                   num_bits=6, range_given=True),
                tf.nn.conv2d(x, qdq(w, [0.0] * 4, [0.0] * 4, range_given=False, axis=3,
                                          narrow_range=True),
                             1, "SAME"))
    check_against_tf(fn, [X(5, 6, 3)], feeds={"x": x})


def _qat_graph():
    """A quantization-aware-trained graph as tf.quantization writes it: fake-quantized input,
    per-channel narrow-range weights, BiasAdd + Relu6, fake-quantized activations, a Dense
    head on the pooled features."""
    w1, w2 = W(3, 3, 3, 8, seed=1, scale=0.3), W(3, 3, 8, 6, seed=2, scale=0.3)
    b1, b2 = W(8, seed=3, scale=0.1), W(5, seed=6, scale=0.1)
    wf = W(6, 5, seed=4, scale=0.3)

    def wq(w):
        flat = tf.reshape(w, [-1, w.shape[-1]])
        lim = tf.reduce_max(tf.abs(flat), axis=0)
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(w, -lim, lim,
                                                                        narrow_range=True)

    def fq(y, lo, hi):
        return tf.quantization.fake_quant_with_min_max_vars(y, lo, hi)

    def fn(x):
        x = fq(x, -3.0, 3.0)
        y = fq(tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(x, wq(w1), 1, "SAME"), b1)), 0.0, 6.0)
        y = tf.nn.depthwise_conv2d(y, wq(W(3, 3, 8, 1, seed=5, scale=0.5)), [1, 2, 2, 1], "SAME")
        y = fq(tf.nn.relu(y), 0.0, 4.0)
        y = fq(tf.nn.conv2d(y, wq(w2), 1, "SAME"), -6.0, 6.0)
        y = fq(tf.reduce_mean(y, axis=[1, 2]), -3.0, 3.0)
        return fq(tf.nn.bias_add(tf.matmul(y, wq(wf)), b2), -4.0, 4.0)
    return fn


def test_quantization_aware_graph_lowers_to_int8():
    """The QAT graph matches TensorFlow's fake-quant output, and every conv and the MatMul
    deploy as int8 ops (the QDQ lowering found DQ -> op -> Q around each)."""
    fn = _qat_graph()
    rng = np.random.default_rng(5)
    feeds = {"x": _off_ties(rng.uniform(-3, 3, (2, 8, 10, 3)), -3.0, 3.0, 255)}
    f = frozen(fn, [X(8, 10, 3)])
    want = run_tf(f.graph_def, feeds, f.outputs)[0]
    model = convert_graph_def(f.graph_def)
    weighted = [n for n in model.graph.nodes if n.op in ("Conv", "MatMul", "Gemm")]
    int8 = [n for n in weighted if model.graph.values[n.inputs[0]].dtype in ("int8", "uint8")]
    assert len(weighted) == 4 and len(int8) == 4, [(n.op, model.graph.values[n.inputs[0]].dtype)
                                                    for n in weighted]
    # int8 arithmetic rounds each requantized layer once more than TensorFlow's float
    # fake-quant graph: within a few steps of the last scale (12 / 255), not 1e-4.
    for backend in ("reference", "runtime"):
        got = model.run({"x": feeds["x"]}, backend=backend)
        out = got[next(iter(got))]
        assert np.max(np.abs(out - want)) < 0.1 * np.max(np.abs(want)), backend


# ---- errors --------------------------------------------------------------------------------
def _converted_with(fn, specs, edit, tmp_path):
    graph_def = tf.compat.v1.GraphDef()
    f = frozen(fn, specs)
    graph_def.ParseFromString(f.graph_def)
    for node in graph_def.node:
        edit(node)
    path = tmp_path / "edited.pb"
    path.write_bytes(graph_def.SerializeToString())
    return mobconv.convert(str(path))


def test_errors_name_the_node_and_rule(tmp_path):
    stats = np.ones(3, np.float32)

    def bn(x):
        return tf.compat.v1.nn.fused_batch_norm(x, stats, stats, stats, stats, is_training=False)[0]

    def training(node):
        if node.op == "FusedBatchNormV3":
            node.attr["is_training"].b = True
    with pytest.raises(ConversionError, match=r"edited.pb.*'FusedBatchNorm.*is_training is true"):
        _converted_with(bn, [X(4, 4, 3)], training, tmp_path)

    def ncdhw(node):
        if node.op == "Conv2D":
            node.attr["data_format"].s = b"NCDHW_VECT"
    with pytest.raises(ConversionError, match=r"type Conv2D\): data_format 'NCDHW_VECT'"):
        _converted_with(lambda x: tf.nn.conv2d(x, W(1, 1, 3, 2), 1, "SAME"), [X(4, 4, 3)],
                        ncdhw, tmp_path)

    def batch_stride(node):
        if node.op == "MaxPool":
            node.attr["strides"].list.i[:] = [2, 1, 1, 1]
    with pytest.raises(ConversionError, match=r"MaxPool\): strides \[2, 1, 1, 1\] must be 1 in "
                                              r"the batch and channel dims"):
        _converted_with(lambda x: tf.nn.max_pool2d(x, 2, 1, "SAME"), [X(4, 4, 3)], batch_stride,
                        tmp_path)


def test_fake_quant_refuses_an_empty_range(tmp_path):
    def fn(x):
        return tf.quantization.fake_quant_with_min_max_args(x, 1.0, 2.0)

    def empty(node):
        if node.op == "FakeQuantWithMinMaxArgs":
            node.attr["min"].f = 2.0
    with pytest.raises(ConversionError, match=r"FakeQuantWithMinMaxArgs\): .*no quantization step"):
        _converted_with(fn, [X(3)], empty, tmp_path)


def test_nudge_equals_tensorflows_fake_quant_grid():
    """quant.nudge reproduces TensorFlow's nudged range: TF's output on a dense ramp takes
    exactly the values nudged_min + k * scale, k = 0..qmax - qmin."""
    from mobconv.frontends.tensorflow.ops.quant import nudge

    ramp = tf.constant(np.linspace(-8, 8, 4001, dtype=np.float32))
    for mn, mx, bits, narrow in ((-3.0, 2.5, 8, False), (0.2, 1.7, 8, True), (-1.3, -0.2, 4, False),
                                 (-0.71, 0.93, 5, True)):
        got = tf.quantization.fake_quant_with_min_max_args(ramp, mn, mx, bits, narrow).numpy()
        scale, _, _, lo, hi, qmin, qmax = nudge(mn, mx, bits, narrow)
        levels = np.unique(got)
        assert len(levels) == qmax - qmin + 1
        assert_close(levels, (lo + np.arange(qmax - qmin + 1) * scale).astype(np.float32), 1e-6,
                     f"min {mn} max {mx} bits {bits} narrow {narrow}")
        assert levels[0] == pytest.approx(float(lo), abs=1e-6)
        assert levels[-1] == pytest.approx(float(hi), abs=1e-5)
