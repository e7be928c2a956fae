"""Seeded TensorFlow models for the TensorFlow frontend's tests (no downloads).

Real architectures from `keras.applications` (weights=None, small inputs, 16
classes, `classifier_activation=None` so the output is the logits), a U-Net-style
segmentation net (Conv2DTranspose, UpSampling2D nearest and bilinear), and a
detector head with dilated convolutions (Keras `Conv2D(dilation_rate=2)` and
`tf.nn.atrous_conv2d`, which TensorFlow writes as SpaceToBatchND -> Conv2D ->
BatchToSpaceND). TF1-style graphs (tf.compat.v1: placeholders, tf.cond on a
constant flag, FusedBatchNormV3, FakeQuant) are built in tests/test_tf1_graphs.py.

Weights: Keras' seeded initializers (`keras.utils.set_random_seed`), then every
BatchNormalization gets random gamma/beta and moving statistics measured on a
seeded calibration batch (momentum 0, one training-mode pass), so the moving
mean/variance are far from 0/1 and BN folding is really exercised, while the
activations stay well scaled through 100+ layers.

Each model is frozen to a GraphDef (`convert_variables_to_constants_v2` on a
tf.function of the model in inference mode) with one Placeholder named "input"
(NHWC, batch dim unknown) and outputs "Identity" ("Identity_1", ... for several),
and on request saved as a SavedModel (`tf.saved_model.save`, or Keras 3
`model.export`). TensorFlow's own results on the frozen graph (the oracle) are
computed once, for batch 1 and batch 3.

Everything is built lazily, once per test process, under one directory:
`zoo(tmp_path_factory)` returns the process-wide `TFZoo`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CLASSES = 16
BATCHES = (1, 3)


def tf():
    import tensorflow

    return tensorflow


def keras():
    import keras as k

    return k


# ---- architectures ----------------------------------------------------------------


def _app(name: str, hw: int, **kw):
    def build():
        k = keras()
        return getattr(k.applications, name)(input_shape=(hw, hw, 3), weights=None,
                                             classes=CLASSES, classifier_activation=None, **kw)
    return build


def _unet():
    """Encoder-decoder: Conv+BN+ReLU, MaxPool, UpSampling2D bilinear and nearest,
    Conv2DTranspose (stride 2, SAME and VALID), skip Concatenates, 1x1 logits."""
    k = keras()
    L = k.layers
    x = L.Input((32, 32, 3))

    def block(t, ch):
        t = L.Conv2D(ch, 3, padding="same", use_bias=False)(t)
        t = L.BatchNormalization()(t)
        return L.ReLU()(t)

    e1 = block(x, 8)                                            # 32
    e2 = block(L.MaxPooling2D()(e1), 12)                        # 16
    e3 = block(L.MaxPooling2D()(e2), 16)                        # 8
    mid = block(L.MaxPooling2D()(e3), 16)                       # 4
    d3 = L.UpSampling2D(interpolation="bilinear")(mid)          # 8
    d3 = block(L.Concatenate()([d3, e3]), 16)
    d2 = L.Conv2DTranspose(12, 3, strides=2, padding="same")(d3)  # 16
    d2 = block(L.Concatenate()([d2, e2]), 12)
    d1 = L.UpSampling2D(interpolation="nearest")(d2)            # 32
    d1 = block(L.Concatenate()([d1, e1]), 8)
    d0 = L.Conv2DTranspose(6, 2, strides=2, padding="valid", activation="relu")(d1)  # 64
    d0 = L.AveragePooling2D(2)(d0)                               # 32
    return k.Model(x, L.Conv2D(5, 1, name="seg_logits")(d0), name="unet")


def _detector():
    """A small backbone and an SSD-like head on a 21x21 feature map (odd, so
    SpaceToBatchND pads and BatchToSpaceND crops): Keras Conv2D(dilation_rate=2)
    SAME, tf.nn.atrous_conv2d rate 2 SAME and rate 3 VALID; two outputs (class
    logits, box deltas)."""
    k = keras()
    t = tf()
    L = k.layers

    class Atrous(L.Layer):
        def __init__(self, filters, rate, padding, **kw):
            super().__init__(**kw)
            self.filters, self.rate, self.padding = filters, rate, padding

        def build(self, shape):
            self.w = self.add_weight(shape=(3, 3, shape[-1], self.filters),
                                     initializer="glorot_uniform")
            self.b = self.add_weight(shape=(self.filters,), initializer="random_normal")

        def call(self, x):
            y = t.nn.atrous_conv2d(x, self.w, rate=self.rate, padding=self.padding)
            return t.nn.relu(t.nn.bias_add(y, self.b))

    x = L.Input((42, 42, 3))
    f = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)       # 21x21
    f = L.BatchNormalization()(f)
    f = L.Conv2D(16, 3, dilation_rate=2, padding="same", activation="relu")(f)  # Keras dilated
    f = Atrous(24, 2, "SAME", name="atrous_same")(f)                          # atrous SAME
    g = Atrous(16, 3, "VALID", name="atrous_valid")(f)                        # 15x15
    g = L.ZeroPadding2D(3)(g)                                                  # 21x21
    f = L.Concatenate()([f, g])
    cls = L.Conv2D(3 * 4, 3, padding="same", name="cls_logits")(f)
    box = L.Conv2D(3 * 4, 3, padding="same", name="box_deltas")(f)
    return k.Model(x, [cls, box], name="detector")


@dataclass(frozen=True)
class Spec:
    build: object
    hw: tuple            # input H, W
    pixel_range: tuple   # inputs drawn uniformly from this range


_UNIT = (-1.0, 1.0)
_PIXELS = (0.0, 255.0)   # models with their own Rescaling preprocessing
ARCHITECTURES = {
    "mobilenet": Spec(_app("MobileNet", 64), (64, 64), _UNIT),
    "mobilenet_v2": Spec(_app("MobileNetV2", 64), (64, 64), _UNIT),
    "mobilenet_v3_small": Spec(_app("MobileNetV3Small", 64), (64, 64), _PIXELS),
    "resnet50": Spec(_app("ResNet50", 64), (64, 64), _UNIT),
    "efficientnet_b0": Spec(_app("EfficientNetB0", 64), (64, 64), _PIXELS),
    "inception_v3": Spec(_app("InceptionV3", 75), (75, 75), _UNIT),
    "densenet121": Spec(_app("DenseNet121", 64), (64, 64), _UNIT),
    "xception": Spec(_app("Xception", 71), (71, 71), _UNIT),
    "unet": Spec(_unet, (32, 32), _UNIT),
    "detector": Spec(_detector, (42, 42), _UNIT),
}


def seeded_inputs(name: str, batch: int, seed: int = 0) -> np.ndarray:
    spec = ARCHITECTURES[name]
    lo, hi = spec.pixel_range
    rng = np.random.default_rng(seed * 1000 + batch)
    return rng.uniform(lo, hi, (batch, *spec.hw, 3)).astype(np.float32)


def _calibrate_batchnorm(model, x: np.ndarray, seed: int) -> int:
    """Random gamma/beta; moving mean = the batch mean of one training-mode pass
    over `x` (momentum 0), moving variance = its batch variance times U(1, 1.3).
    Returns how many BN layers were set.

    With the exact batch variance a random 100-layer net is so ill-conditioned
    that TensorFlow's own two runs of it (Keras vs its frozen graph) differ by
    ~7e-5 relative (InceptionV3), too close to the tests' 1e-4; the slightly
    inflated variance brings that noise floor to <= 2.5e-5 for every model here
    (ResNet50 worst), while the logits still vary across inputs (more would make
    MobileNet's output collapse to a constant: `TFZoo._build` checks it does not)."""
    k = keras()
    rng = np.random.default_rng(seed)
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, k.layers.BatchNormalization)]
    saved = []
    for layer in layers:
        c = int(layer.moving_mean.shape[0])
        if layer.gamma is not None:
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
        if layer.beta is not None:
            layer.beta.assign(rng.normal(0.0, 0.2, c).astype(np.float32))
        saved.append(layer.momentum)
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum
        var = np.asarray(layer.moving_variance)
        layer.moving_variance.assign((var * rng.uniform(1.0, 1.3, var.shape)).astype(np.float32))
    return len(layers)


# ---- freezing and running -----------------------------------------------------


def frozen_graph_def(fn, shape):
    """(GraphDef, frozen ConcreteFunction) of tf.function `fn` traced on one NHWC
    float32 input named "input" with an unknown batch dim, variables folded into
    Consts. Calling the frozen function is TensorFlow executing that GraphDef."""
    t = tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = t.function(fn).get_concrete_function(
        t.TensorSpec([None, *shape], t.float32, name="input"))
    frozen = convert_variables_to_constants_v2(concrete)
    return frozen.graph.as_graph_def(), frozen


def run_graph_def(graph_def, feeds: dict, fetches: list) -> list:
    """TensorFlow's own execution of a GraphDef (object or serialized bytes):
    feeds {tensor name: array}, fetches [tensor names]."""
    t = tf()
    if isinstance(graph_def, (bytes, bytearray)):
        parsed = t.compat.v1.GraphDef()
        parsed.ParseFromString(bytes(graph_def))
        graph_def = parsed
    graph = t.Graph()
    with graph.as_default():
        t.graph_util.import_graph_def(graph_def, name="")
    with t.compat.v1.Session(graph=graph) as sess:
        return sess.run([_tensor(f) for f in fetches], {_tensor(k): v for k, v in feeds.items()})


def _tensor(name: str) -> str:
    return name if ":" in name else name + ":0"


@dataclass
class Built:
    """One frozen model: paths, names and TensorFlow's outputs per batch size."""
    name: str
    pb: str
    input_name: str
    output_names: list            # TF node names of the outputs ("Identity", ...)
    inputs: dict                  # batch -> NHWC input
    expected: dict                # batch -> [TF output arrays], the oracle
    keras_model: object
    seconds: float
    saved_models: dict = field(default_factory=dict)


class TFZoo:
    """Builds each architecture once per process under `root`, on first use."""

    def __init__(self, root: str):
        self.root = root
        self._built: dict = {}

    def get(self, name: str) -> Built:
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def _build(self, name: str) -> Built:
        start = time.perf_counter()
        k = keras()
        spec = ARCHITECTURES[name]
        k.utils.set_random_seed(0)
        model = spec.build()
        calib = seeded_inputs(name, 8, seed=99)
        _calibrate_batchnorm(model, calib, seed=1)
        graph_def, frozen = frozen_graph_def(lambda x: model(x, training=False), (*spec.hw, 3))
        outputs = [n.name for n in graph_def.node if n.op == "Identity" and n.name.startswith("Identity")]
        outputs.sort(key=lambda n: (len(n), n))
        assert len(outputs) == len(frozen.outputs), (name, outputs)
        path = os.path.join(self.root, f"{name}.pb")
        with open(path, "wb") as f:
            f.write(graph_def.SerializeToString())
        inputs, expected = {}, {}
        for batch in BATCHES:
            inputs[batch] = seeded_inputs(name, batch)
            expected[batch] = [np.asarray(y) for y in frozen(tf().constant(inputs[batch]))]
        for y in expected[BATCHES[-1]]:  # the outputs depend on the input (no collapsed net)
            spread = float(np.abs(y - y[:1]).max())
            assert spread > 0.05 * float(np.abs(y).max()), f"{name}: outputs barely depend on the input"
        return Built(name, path, "input", outputs, inputs, expected, model,
                     time.perf_counter() - start)

    def saved_model(self, name: str, keras_export: bool = False) -> str:
        """A SavedModel directory of the same model (weights identical to the .pb):
        `tf.saved_model.save` of a module whose serving_default takes "input", or
        with keras_export Keras 3's `model.export` (signature input named by Keras)."""
        built = self.get(name)
        key = "keras" if keras_export else "tf"
        if key not in built.saved_models:
            t = tf()
            path = os.path.join(self.root, f"{name}_{key}_savedmodel")
            model = built.keras_model
            if keras_export:
                model.export(path, format="tf_saved_model", verbose=False)
            else:
                hw = ARCHITECTURES[name].hw
                module = t.Module()
                module.model = model
                module.serve = t.function(
                    lambda input: model(input, training=False),
                    input_signature=[t.TensorSpec([None, *hw, 3], t.float32, name="input")])
                t.saved_model.save(module, path, signatures={"serving_default": module.serve})
            built.saved_models[key] = path
        return built.saved_models[key]


def run_saved_model(path: str, x: np.ndarray) -> list:
    """TensorFlow's execution of a SavedModel's serving_default on its one input;
    outputs in the order of their signature keys."""
    t = tf()
    loaded = t.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    (arg,) = fn.structured_input_signature[1].keys()
    result = fn(**{arg: t.constant(x)})
    return [np.asarray(result[key]) for key in sorted(result)]


_ZOO = None


def zoo(tmp_path_factory) -> TFZoo:
    """The process-wide zoo (built once even when several test files use it)."""
    global _ZOO
    if _ZOO is None:
        _ZOO = TFZoo(str(tmp_path_factory.mktemp("tf_zoo")))
    return _ZOO


# ---- TF1-style graphs (tf.compat.v1) ------------------------------------------------


class _ControlFlowV1:
    """tf.cond writes Switch/Merge (as TF1 did) inside this block, not If ops."""

    def __enter__(self):
        from tensorflow.python.ops import control_flow_util

        self.util, self.old = control_flow_util, control_flow_util.ENABLE_CONTROL_FLOW_V2
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = False

    def __exit__(self, *exc):
        self.util.ENABLE_CONTROL_FLOW_V2 = self.old


def _freeze_v1(graph, outputs: list) -> bytes:
    """Classic TF1 freezing: initialize the variables in a Session, then
    graph_util.convert_variables_to_constants."""
    v1 = tf().compat.v1
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), outputs)
    return frozen.SerializeToString()


def tf1_classifier(seed: int = 0) -> bytes:
    """A TF1 deployment graph: uint8 placeholder "raw_images" [None, 24, 24, 3] ->
    preprocessing (Cast, Sub, Mul) -> "image" -> Conv2D -> FusedBatchNormV3 ->
    Relu6 -> dropout under tf.cond on a constant is_training=False (Switch/Merge)
    -> MaxPool -> Conv2D+BiasAdd -> Relu -> Mean -> MatMul+BiasAdd "logits" ->
    postprocessing Softmax "prob" and TopKV2 "top" (k=3). Variables, frozen."""
    t = tf()
    v1 = t.compat.v1
    rng = np.random.default_rng(seed)
    f32 = lambda *shape, lo=-0.4, hi=0.4: rng.uniform(lo, hi, shape).astype(np.float32)  # noqa: E731
    graph = t.Graph()
    with graph.as_default(), _ControlFlowV1():
        raw = v1.placeholder(t.uint8, [None, 24, 24, 3], name="raw_images")
        with t.name_scope("preprocess"):
            x = (t.cast(raw, t.float32) - 127.5) * (1 / 127.5)
        x = t.identity(x, name="image")
        training = t.constant(False, name="is_training")
        y = t.nn.conv2d(x, v1.Variable(f32(3, 3, 3, 8), name="conv1/weights"), 1, "SAME")
        bn = [v1.Variable(a, name=f"bn1/{n}") for n, a in (
            ("gamma", f32(8, lo=0.5, hi=1.5)), ("beta", f32(8)), ("moving_mean", f32(8)),
            ("moving_variance", f32(8, lo=0.5, hi=2.0)))]
        y, _, _ = v1.nn.fused_batch_norm(y, *bn, epsilon=1e-3, is_training=False, name="bn1")
        y = t.nn.relu6(y)
        y = t.cond(training, lambda: t.nn.dropout(y, rate=0.5), lambda: t.identity(y), name="dropout")
        y = t.nn.max_pool2d(y, 2, 2, "VALID")
        y = t.nn.conv2d(y, v1.Variable(f32(3, 3, 8, 12), name="conv2/weights"), 2, "SAME")
        y = t.nn.relu(t.nn.bias_add(y, v1.Variable(f32(12), name="conv2/biases")))
        y = t.reduce_mean(y, [1, 2], name="gap")
        logits = t.nn.bias_add(t.matmul(y, v1.Variable(f32(12, 10, lo=-1, hi=1), name="fc/weights")),
                               v1.Variable(f32(10), name="fc/biases"), name="logits")
        prob = t.nn.softmax(logits, name="prob")
        t.math.top_k(prob, 3, name="top")
    return _freeze_v1(graph, ["logits", "top"])


def tf1_qat(seed: int = 0) -> bytes:
    """A quantization-aware-trained TF1 graph as tf.contrib.quantize left them:
    FakeQuantWithMinMaxVars on the input and after every activation, per-channel
    FakeQuantWithMinMaxVarsPerChannel (narrow range) on conv weights, per-tensor on
    the depthwise and dense weights. Input "input" float [None, 16, 16, 3], output
    "logits" (fake-quantized too)."""
    t = tf()
    v1 = t.compat.v1
    rng = np.random.default_rng(seed)
    f32 = lambda *shape, lo=-0.5, hi=0.5: rng.uniform(lo, hi, shape).astype(np.float32)  # noqa: E731
    fq = t.quantization.fake_quant_with_min_max_vars

    def fq_weights(w, name):
        bound = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0)
        return t.quantization.fake_quant_with_min_max_vars_per_channel(
            v1.Variable(w, name=name), -bound, bound, narrow_range=True, name=name + "_quant")

    graph = t.Graph()
    with graph.as_default():
        x = v1.placeholder(t.float32, [None, 16, 16, 3], name="input")
        y = fq(x, -1.0, 1.0, name="input_quant")
        y = t.nn.conv2d(y, fq_weights(f32(3, 3, 3, 8), "conv1/weights"), 1, "SAME")
        y = fq(t.nn.relu6(t.nn.bias_add(y, f32(8, lo=-0.1, hi=0.1))), 0.0, 6.0, name="conv1/act_quant")
        w = f32(3, 3, 8, 1)
        dw = fq(v1.Variable(w, name="dw/weights"), float(w.min()), float(w.max()), name="dw/weights_quant")
        y = t.nn.depthwise_conv2d(y, dw, [1, 2, 2, 1], "SAME")
        y = fq(t.nn.relu6(t.nn.bias_add(y, f32(8, lo=-0.1, hi=0.1))), 0.0, 6.0, name="dw/act_quant")
        y = t.nn.conv2d(y, fq_weights(f32(1, 1, 8, 16), "conv2/weights"), 1, "SAME")
        y = fq(t.nn.relu(t.nn.bias_add(y, f32(16, lo=-0.1, hi=0.1))), 0.0, 4.0, name="conv2/act_quant")
        y = fq(t.reduce_mean(y, [1, 2]), 0.0, 4.0, name="gap_quant")
        w = f32(16, 10, lo=-1, hi=1)
        wd = fq(v1.Variable(w, name="fc/weights"), float(w.min()), float(w.max()), name="fc/weights_quant")
        y = t.nn.bias_add(t.matmul(y, wd), f32(10, lo=-0.1, hi=0.1))
        fq(y, -4.0, 4.0, name="logits")
    return _freeze_v1(graph, ["logits"])
