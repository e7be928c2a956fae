"""Caffe frontend plumbing: generated code, file forms (V1, old blob dims,
input declarations, weights in the prototxt, TEST-phase rules, in-place and
Split layers), signature/metadata, errors, the custom-layer hook and the CLI."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from mobconv.cli.main import main as cli
from mobconv.errors import ConversionError, MobconvError, UnsupportedOpsError
from mobconv.frontends.caffe import caffe_pb2, load_caffe, register_layer
from mobconv.frontends.caffe.layers import REGISTRY
from mobconv.reference.interpreter import run

CONV = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
"""


def write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def weights(tmp_path, layers, name="w.caffemodel", v1_dims=False):
    net = caffe_pb2.NetParameter()
    for layer_name, arrays in layers.items():
        layer = net.layer.add(name=layer_name)
        for a in arrays:
            blob = layer.blobs.add()
            if v1_dims:
                blob.num, blob.channels, blob.height, blob.width = (1,) * (4 - a.ndim) + a.shape
            else:
                blob.shape.dim.extend(a.shape)
            blob.data.extend(a.ravel().tolist())
    path = tmp_path / name
    path.write_bytes(net.SerializeToString())
    return str(path)


W = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3) / 10
B = np.array([0.5, -100.0], np.float32)


def conv_reference(x):
    out = np.zeros((1, 2, 3, 3), np.float32)
    for o in range(2):
        for i in range(3):
            for j in range(3):
                out[0, o, i, j] = (x[0, 0, i:i + 3, j:j + 3] * W[o, 0]).sum() + B[o]
    return np.maximum(out, 0)


def test_generated_code_is_fresh():
    result = subprocess.run([sys.executable, "-m", "mobconv.frontends.caffe.generate_proto", "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("inputs", [
    'input: "data" input_dim: 1 input_dim: 1 input_dim: 5 input_dim: 5',
    'input: "data" input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }',
    'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 5 dim: 5 } } }',
])
def test_input_forms_inplace_relu_and_weights(tmp_path, inputs):
    proto = write(tmp_path, inputs + CONV)
    graph = load_caffe(proto, weights(tmp_path, {"conv1": [W, B]}, v1_dims=True))
    assert graph.inputs == ["data"] and graph.outputs == ["conv1"]
    assert len({o for n in graph.nodes for o in n.outputs}) == len(graph.nodes)  # SSA
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run(graph, {"data": x})["conv1"], conv_reference(x), rtol=1e-5, atol=1e-5)


def test_v1_format_and_weights_inside_prototxt(tmp_path):
    blobs = "".join(f"blobs {{ num: {a.shape[0]} channels: {a.shape[1]} height: {a.shape[2]} width: {a.shape[3]} "
                    + " ".join(f"data: {v}" for v in a.ravel()) + " }"
                    for a in (W, B.reshape(1, 1, 1, 2)))
    proto = write(tmp_path, 'input: "data" input_dim: 1 input_dim: 1 input_dim: 5 input_dim: 5\n'
                  'layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" '
                  f'convolution_param {{ num_output: 2 kernel_size: 3 }} {blobs} }}\n'
                  'layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }\n')
    graph = load_caffe(proto)  # weights in the prototxt: no caffemodel needed
    x = np.random.default_rng(1).standard_normal((1, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run(graph, {"data": x})["conv1"], conv_reference(x), rtol=1e-5, atol=1e-5)


def test_phase_rules_split_and_multiple_outputs(tmp_path):
    proto = write(tmp_path, 'input: "data" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }\n'
                  'layer { name: "split" type: "Split" bottom: "data" top: "a" top: "b" }\n'
                  'layer { name: "t" type: "TanH" bottom: "a" top: "t" include { phase: TEST } }\n'
                  'layer { name: "train_only" type: "Sigmoid" bottom: "b" top: "t2" include { phase: TRAIN } }\n'
                  'layer { name: "not_test" type: "Sigmoid" bottom: "b" top: "t3" exclude { phase: TEST } }\n'
                  'layer { name: "s" type: "Sigmoid" bottom: "b" top: "s" }\n'
                  'layer { name: "acc" type: "Accuracy" bottom: "s" bottom: "label" top: "accuracy" }\n')
    graph = load_caffe(proto)
    assert graph.outputs == ["t", "s"]
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 3)).astype(np.float32)
    out = run(graph, {"data": x})
    np.testing.assert_allclose(out["t"], np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(out["s"], 1 / (1 + np.exp(-x)), rtol=1e-6)


def test_signature_preprocessing_and_metadata(tmp_path):
    proto = write(tmp_path, 'layer { name: "data" type: "Input" top: "data" '
                  'transform_param { scale: 0.017 mean_value: 104 mean_value: 117 mean_value: 123 } '
                  'input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }\n'
                  'layer { name: "prob" type: "Softmax" bottom: "data" top: "prob" }\n')
    graph = load_caffe(proto, input_shapes={"data": (2, 3, 4, 4)})
    sig = graph.signature
    assert sig.inputs[0].layout == "NCHW" and sig.inputs[0].shape == (2, 3, 4, 4)
    assert sig.preprocessing.channel_order == "BGR"
    assert sig.preprocessing.mean == [104, 117, 123]
    assert sig.preprocessing.scale == pytest.approx([0.017] * 3)
    assert graph.metadata.source_framework == "caffe" and len(graph.metadata.source_sha256) == 64


def test_error_names_file_layer_and_rule(tmp_path):
    proto = write(tmp_path, 'input: "data" input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }\n'
                  'layer { name: "conv5" type: "Convolution" bottom: "data" top: "c" '
                  'convolution_param { num_output: 2 kernel_size: 0 } }\n')
    with pytest.raises(ConversionError) as err:
        load_caffe(proto, random_weights=True)
    assert str(err.value) == (f"{proto}: cannot convert Caffe layer 'conv5' (type Convolution): "
                              "kernel_size (0) must be positive")


def test_missing_caffemodel_refused_unless_random_weights(tmp_path):
    proto = write(tmp_path, 'input: "data" input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }' + CONV)
    with pytest.raises(MobconvError, match="no caffemodel was given.*random_weights"):
        load_caffe(proto)
    with pytest.warns(UserWarning, match="random weights"):
        graph = load_caffe(proto, random_weights=True)
    assert graph.metadata.options["random_weights"] == "true"
    out = tmp_path / "net.mob"
    assert cli(["caffe2mob", proto, "-o", str(out)]) == 2 and not out.exists()
    assert cli(["caffe2mob", proto, "-o", str(out), "--random-weights"]) == 0 and out.exists()


UNSUPPORTED = ('input: "data" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }\n'
               'layer { name: "p1" type: "Python" bottom: "data" top: "p1" }\n'
               'layer { name: "y1" type: "Yolo" bottom: "p1" top: "y1" }\n'
               'layer { name: "p2" type: "Python" bottom: "y1" top: "p2" }\n')


def test_unsupported_layers_listed_once_exit_2_nothing_written(tmp_path, capsys):
    proto = write(tmp_path, UNSUPPORTED)
    with pytest.raises(UnsupportedOpsError) as err:
        load_caffe(proto)
    assert err.value.unsupported == {"Python": ["p1", "p2"], "Yolo": ["y1"]}
    out = tmp_path / "net.mob"
    assert cli(["caffe2mob", proto, "--random-weights", "-o", str(out)]) == 2
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and "Python x2 ('p1', 'p2')" in stderr[0] and "Yolo x1 ('y1')" in stderr[0]
    assert not out.exists() and os.listdir(tmp_path) == ["net.prototxt"]


def test_custom_layer_hook(tmp_path):
    proto = write(tmp_path, UNSUPPORTED.replace('"Python"', '"Sigmoid"'))
    try:
        @register_layer("Yolo")
        def yolo(ctx):
            ctx.node("Mul", [ctx.inputs[0], ctx.const(np.float32(3.0), "k")], ctx.outputs[0])

        graph = load_caffe(proto)
        x = np.random.default_rng(4).standard_normal((1, 2, 3, 3)).astype(np.float32)
        s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        np.testing.assert_allclose(run(graph, {"data": x})["p2"], s(3 * s(x)), rtol=1e-6)
    finally:
        REGISTRY._converters.pop("Yolo", None)


def test_large_caffemodel_over_64mb(tmp_path):
    """Hand-encoded caffemodel with one 67 MB InnerProduct weight blob."""
    n, k = 4100, 4100
    w = np.zeros((n, k), np.float32)
    w[np.arange(n), np.arange(k)] = 2.0

    def varint(v):
        out = bytearray()
        while True:
            b, v = v & 0x7F, v >> 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    def field(num, payload):  # length-delimited
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    shape = field(7, field(1, varint(n) + varint(k)))
    blob = shape + field(5, w.tobytes())
    layer = field(1, b"ip") + field(2, b"InnerProduct") + field(7, blob)
    path = tmp_path / "big.caffemodel"
    path.write_bytes(field(100, layer))
    assert path.stat().st_size > 64 << 20
    proto = write(tmp_path, f'input: "data" input_shape {{ dim: 1 dim: {k} }}\n'
                  f'layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                  f'inner_product_param {{ num_output: {n} bias_term: false }} }}\n')
    graph = load_caffe(proto, str(path))
    x = np.random.default_rng(5).standard_normal((1, k)).astype(np.float32)
    np.testing.assert_allclose(run(graph, {"data": x})["ip"], 2 * x, rtol=1e-6)


def test_malformed_files(tmp_path):
    proto = write(tmp_path, "layer { name: ")
    with pytest.raises(MobconvError, match="not a valid Caffe prototxt"):
        load_caffe(proto)
    good = write(tmp_path, 'input: "data" input_shape { dim: 1 dim: 1 dim: 5 dim: 5 }' + CONV, "good.prototxt")
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(b"\xff\xff\xff\xff garbage")
    with pytest.raises(MobconvError, match="not a valid binary caffemodel"):
        load_caffe(good, str(bad))
