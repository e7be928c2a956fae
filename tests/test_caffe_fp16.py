"""OpenCV's fp16 caffemodels (cv2.dnn.shrinkCaffeModel: BlobProto raw_data with
raw_data_type FLOAT16, fields 12 and 10 of opencv-caffe.proto) convert, and the
.mob keeps fp16 weight storage.

Oracles: OpenCV running the fp16 caffemodel (it widens the fp16 weights to float32)
and OpenCV running the float caffemodel. Tolerances (max |ours - cv| / max |cv|):
- vs OpenCV on the fp16 model: 5e-4 (measured 6e-5 on the ResNet, 3e-7 on LeNet).
  Weights read from the file are the same fp16 values; the difference is
  BatchNorm/Scale folded into the conv weights by `optimize`, which are then stored
  as fp16 again (one more 2^-11 rounding per weight).
- vs OpenCV on the float model: 2e-3 (measured 1.7e-4 and 3.3e-4: fp16 rounding of
  every weight). The unoptimized graph (no folding) matches the fp16 model at 1e-4.
"""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

import mobconv  # noqa: E402
from mobconv.frontends.caffe import caffe_pb2, load_caffe  # noqa: E402
from mobconv.errors import ModelFormatError  # noqa: E402
from mobconv.frontends.caffe.parser import blob_to_array  # noqa: E402
from mobconv.reference.interpreter import run  # noqa: E402
from model_zoo.caffe.nets import build_lenet, build_resnet  # noqa: E402

FP16_VS_FP16_MODEL = 5e-4
FP16_VS_FLOAT_MODEL = 2e-3


def rel_error(ours, theirs):
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64).reshape(ours.shape)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def opencv(prototxt, caffemodel, x, names):
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    net.setInput(x)
    return dict(zip(names, net.forward(names)))


@pytest.fixture(scope="module", params=["resnet", "lenet"])
def shrunk(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"fp16_{request.param}")
    build = {"resnet": build_resnet, "lenet": build_lenet}[request.param]
    prototxt, caffemodel = build(str(out))
    half = str(out / "half.caffemodel")
    cv2.dnn.shrinkCaffeModel(caffemodel, half)
    return request.param, prototxt, caffemodel, half


def fp16_blobs(path):
    net = caffe_pb2.NetParameter()
    with open(path, "rb") as f:
        net.ParseFromString(f.read())
    layers = list(net.layer) or list(net.layers)
    return [b for layer in layers for b in layer.blobs
            if b.HasField("raw_data") and b.raw_data_type == caffe_pb2.BlobProto.FLOAT16]


def test_shrunk_caffemodel_holds_raw_fp16_blobs(shrunk):
    _, _, _, half = shrunk
    blobs = fp16_blobs(half)
    assert blobs and all(len(b.data) == 0 for b in blobs)  # what failed as "data has 0"


def test_raw_blob_values_are_the_fp16_values():
    values = np.array([1.5, -2.25, 65504.0, 6.1e-5, 0.1], np.float16)
    blob = caffe_pb2.BlobProto(raw_data_type=caffe_pb2.BlobProto.FLOAT16, raw_data=values.tobytes())
    blob.shape.dim.extend([5])
    np.testing.assert_array_equal(blob_to_array(blob), values.astype(np.float32))
    blob = caffe_pb2.BlobProto(raw_data_type=caffe_pb2.BlobProto.DOUBLE,
                               raw_data=np.array([0.5, 3.0]).tobytes())
    np.testing.assert_array_equal(blob_to_array(blob), [0.5, 3.0])


@pytest.mark.parametrize("kind, raw, rule", [
    (caffe_pb2.BlobProto.INT, b"\0" * 8, "raw_data_type INT is not a float type"),
    (caffe_pb2.BlobProto.FLOAT16, b"\0" * 5, "raw_data holds 5 bytes"),
])
def test_bad_raw_blob_is_a_located_error(tmp_path, kind, raw, rule):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 3\n'
                        'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
                        '  convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }\n')
    net = caffe_pb2.NetParameter()
    blob = net.layer.add(name="conv", type="Convolution").blobs.add(raw_data_type=kind, raw_data=raw)
    blob.shape.dim.extend([1, 2, 1, 1])
    model = tmp_path / "net.caffemodel"
    model.write_bytes(net.SerializeToString())
    with pytest.raises(ModelFormatError, match=f"net.caffemodel: layer 'conv': {rule}"):
        load_caffe(str(prototxt), str(model))


def test_fp16_caffemodel_matches_opencv(shrunk):
    name, prototxt, caffemodel, half = shrunk
    graph = load_caffe(prototxt, half)
    assert graph.metadata.options["source_weights"] == "float16"
    shape = tuple(d if isinstance(d, int) else 2 for d in graph.values["data"].shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = graph.outputs[0]
    with_fp16 = opencv(prototxt, half, x, [out])[out]
    with_float = opencv(prototxt, caffemodel, x, [out])[out]
    assert rel_error(with_fp16, with_float) > 1e-6  # the shrink really rounded something
    # unoptimized: exactly the fp16 weights, float32 arithmetic as OpenCV
    assert rel_error(run(graph, {"data": x})[out], with_fp16) < 1e-4
    model = mobconv.convert(prototxt, caffemodel=half)
    stored = [v for v in model.graph.values.values() if v.data is not None and v.dtype == "float16"]
    assert stored, "fp16 weights were widened to float32 in the model"
    assert model.graph.metadata.extra.get("quantization.scheme") == "fp16"
    for backend in ("reference", "runtime"):
        ours = model.run({"data": x}, backend=backend)[out]
        assert rel_error(ours, with_fp16) < FP16_VS_FP16_MODEL, (name, backend)
        assert rel_error(ours, with_float) < FP16_VS_FLOAT_MODEL, (name, backend)


def test_fp16_model_file_is_smaller(shrunk, tmp_path):
    _, prototxt, caffemodel, half = shrunk
    full_path, half_path = tmp_path / "full.mob", tmp_path / "half.mob"
    mobconv.convert(prototxt, caffemodel=caffemodel).save(str(full_path))
    mobconv.convert(prototxt, caffemodel=half).save(str(half_path))
    assert half_path.stat().st_size < 0.75 * full_path.stat().st_size
