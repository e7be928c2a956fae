"""Every model_zoo/caffe net through the whole product path: converted
(`mobconv.convert`, optimized), saved as a .mob file, run by the C++ runtime,
compared with OpenCV's independent Caffe importer (cv2.dnn.readNetFromCaffe).

Outputs agree within 1e-4 relative (max |ours - cv| / max |cv|). The SSD head
ends in DetectionOutput, whose rows OpenCV orders by score and Caffe/mobconv
by label: rows are compared as the same set after sorting, no-detection
padding rows (score <= 0) left out. The runtime runs with 1 and 2 threads,
through `mobconv.runtime.Interpreter` and through `Model.run(backend="runtime")`.
"""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt (the C++ runtime) is not built", allow_module_level=True)

import mobconv  # noqa: E402
from mobconv.frontends.caffe.dynamic import declared_input_shapes  # noqa: E402
from model_zoo.caffe.nets import MODELS  # noqa: E402

RTOL = 1e-4


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("caffe_zoo_runtime")
    result = {}
    for name, build in MODELS.items():
        prototxt, caffemodel = build(str(out))
        model = mobconv.convert(prototxt, framework="caffe", caffemodel=caffemodel)
        path = str(out / f"{name}.mob")
        model.save(path)
        result[name] = (prototxt, caffemodel, path)
    return result


def rel_error(ours, theirs):
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64).reshape(ours.shape)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def detections(d):
    rows = np.asarray(d, np.float64).reshape(-1, 7)
    rows = rows[rows[:, 2] > 0]
    return rows[np.lexsort(rows.T[::-1])]


def opencv(prototxt, caffemodel, feeds, names):
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    for name, x in feeds.items():
        net.setInput(x, name)
    return dict(zip(names, net.forward(names)))


def check(name, ours, theirs):
    for out, want in theirs.items():
        got = ours[out]
        if name == "ssd":
            a, b = detections(got), detections(want)
            assert len(a) > 0 and a.shape == b.shape, (out, a.shape, b.shape)
            np.testing.assert_array_equal(a[:, :2], b[:, :2])
            np.testing.assert_allclose(a[:, 2:], b[:, 2:], rtol=RTOL, atol=1e-5)
        else:
            assert got.size == want.size, (name, out, got.shape, want.shape)
            assert rel_error(got, want) < RTOL, (name, out, rel_error(got, want))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", list(MODELS))
def test_zoo_model_on_the_runtime_matches_opencv(zoo, name, threads):
    prototxt, caffemodel, path = zoo[name]
    model = mobconv.load(path)
    feeds = {name: np.random.default_rng(7).standard_normal(shape).astype(np.float32)
             for name, shape in declared_input_shapes(model.graph).items()}
    with runtime.Interpreter(path, threads=threads) as it:
        ours = it.run(feeds)
    names = [s.name for s in model.outputs]
    assert sorted(ours) == sorted(names)
    check(name, ours, opencv(prototxt, caffemodel, feeds, names))


@pytest.mark.parametrize("name", list(MODELS))
def test_model_run_backend_runtime(zoo, name):
    prototxt, caffemodel, path = zoo[name]
    model = mobconv.load(path)
    feeds = model.random_inputs(seed=3)
    ours = model.run(feeds, backend="runtime")
    assert model.last_backend == "runtime"
    check(name, ours, opencv(prototxt, caffemodel, feeds, [s.name for s in model.outputs]))
