"""Every model_zoo/caffe net: load_caffe (+ optimize), run the numpy reference,
compare with OpenCV's independent Caffe importer (cv2.dnn.readNetFromCaffe).

Outputs must agree within 1e-4 relative (max |ours - cv| / max |cv|); the
DetectionOutput rows must be the same set after sorting (OpenCV orders rows
by score, Caffe and mobconv by label, then score). Probe blobs (logits before
Softmax, SSD heads) are compared too, from the unoptimized graph.
LeNet is written in the V1 format; ResNet/MobileNet use in-place BatchNorm,
Scale and ReLU layers.
"""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mobconv.frontends.caffe import load_caffe  # noqa: E402
from mobconv.frontends.caffe.dynamic import declared_input_shapes  # noqa: E402
from mobconv.passes import optimize  # noqa: E402
from mobconv.reference.interpreter import run  # noqa: E402
from model_zoo.caffe.nets import MODELS  # noqa: E402

RTOL = 1e-4
PROBES = {
    "lenet": ["ip2"], "alexnet": ["fc8", "norm2"], "vgg": ["fc7", "pool_ave"],
    "inception": ["inc/output", "loss3/classifier"], "resnet": ["pool5", "fc10"],
    "squeezenet": ["pool10"], "mobilenet": ["flatten"],
    "ssd": ["conv2_norm", "mbox_loc", "mbox_conf_flatten", "mbox_priorbox"],
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("caffe_zoo")
    return {name: build(str(out)) for name, build in MODELS.items()}


def rel_error(ours, theirs):
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64).reshape(ours.shape)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def opencv_forward(prototxt, caffemodel, x, names):
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    net.setInput(x)
    return dict(zip(names, net.forward(names)))


def sorted_detections(d):
    rows = np.asarray(d).reshape(-1, 7)
    rows = rows[rows[:, 2] > 0]  # OpenCV pads nothing, Caffe may pad with -1 rows
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("name", list(MODELS))
def test_zoo_model_matches_opencv(zoo, name):
    prototxt, caffemodel = zoo[name]
    graph = load_caffe(prototxt, caffemodel)
    assert graph.metadata.source_framework == "caffe"
    x = np.random.default_rng(0).standard_normal(declared_input_shapes(graph)["data"]).astype(np.float32)
    plain = run(graph, {"data": x}, keep_intermediates=True)
    optimized = optimize(graph.copy())
    assert len(optimized.nodes) <= len(graph.nodes)
    ours = run(optimized, {"data": x})
    theirs = opencv_forward(prototxt, caffemodel, x, graph.outputs + PROBES[name])
    for out in graph.outputs:
        if name == "ssd":
            a, b = sorted_detections(ours[out]), sorted_detections(theirs[out])
            assert len(a) > 0 and a.shape == b.shape, (a.shape, b.shape)
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-5)
        else:
            assert rel_error(ours[out], theirs[out]) < RTOL, (name, out)
    for probe in PROBES[name]:
        assert rel_error(plain[probe], theirs[probe]) < RTOL, (name, probe)


def test_optimize_folds_batchnorm_and_scale(zoo):
    graph = optimize(load_caffe(*zoo["resnet"]))
    ops = [n.op for n in graph.nodes]
    assert "BatchNormalization" not in ops and "Mul" not in ops, ops
