"""Caffe input dims are defaults, not contracts (mobconv/frontends/caffe/dynamic.py).

Deploy files modelled on public ones: LeNet declaring batch 64, an AlexNet-like
net declaring batch 10, an MTCNN PNet-like fully convolutional net with a 12x12
placeholder (run on an image pyramid), an OpenPose-like net with a 1x1
placeholder. Converted once, run at batch 1 and at other sizes on the numpy
reference, through `Model.run` on the C++ runtime and through the C API
(`runtime.Interpreter`, which re-plans on each new shape), and compared with
OpenCV's DNN module, which reshapes the net to the input it is given, within
1e-4 relative (max |ours - cv| / max |cv|).
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

import mobconv  # noqa: E402
from mobconv import runtime  # noqa: E402
from mobconv.errors import MobconvError  # noqa: E402
from mobconv.frontends.caffe import load_caffe  # noqa: E402
from mobconv.frontends.caffe.dynamic import declared_input_shapes  # noqa: E402
from mobconv.frontends.caffe.weights import save_random_caffemodel  # noqa: E402
from mobconv.reference.interpreter import run  # noqa: E402

RTOL = 1e-4


def conv(name, bottom, n, k, stride=1, pad=0, group=1):
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ num_output: {n} kernel_size: {k} stride: {stride} pad: {pad} '
            f'group: {group} }} }}\n')


def act(name, kind, blob):
    return f'layer {{ name: "{name}" type: "{kind}" bottom: "{blob}" top: "{blob}" }}\n'


def pool(name, bottom, k, s, method="MAX", pad=0):
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" '
            f'pooling_param {{ pool: {method} kernel_size: {k} stride: {s} pad: {pad} }} }}\n')


def ip(name, bottom, n):
    return (f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" '
            f'inner_product_param {{ num_output: {n} }} }}\n')


def softmax(name, bottom):
    return f'layer {{ name: "{name}" type: "Softmax" bottom: "{bottom}" top: "{name}" }}\n'


def header(dims):
    return 'input: "data"\n' + "".join(f"input_dim: {d}\n" for d in dims)


# BVLC's examples/mnist/lenet.prototxt declares batch 64
LENET = (header((64, 1, 28, 28)) + conv("conv1", "data", 6, 5) + pool("pool1", "conv1", 2, 2)
         + conv("conv2", "pool1", 8, 5) + pool("pool2", "conv2", 2, 2) + ip("ip1", "pool2", 20)
         + act("relu1", "ReLU", "ip1") + ip("ip2", "ip1", 10) + softmax("prob", "ip2"))
# BVLC's bvlc_alexnet/deploy.prototxt declares batch 10 (here 67x67, fewer channels)
ALEXNET = (header((10, 3, 67, 67)) + conv("conv1", "data", 8, 11, stride=4) + act("relu1", "ReLU", "conv1")
           + 'layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" '
             'lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }\n'
           + pool("pool1", "norm1", 3, 2) + conv("conv2", "pool1", 16, 5, pad=2, group=2)
           + act("relu2", "ReLU", "conv2") + pool("pool2", "conv2", 3, 2) + ip("fc6", "pool2", 32)
           + act("relu6", "ReLU", "fc6")
           + 'layer { name: "drop6" type: "Dropout" bottom: "fc6" top: "fc6" }\n'
           + ip("fc8", "fc6", 10) + softmax("prob", "fc8"))
# MTCNN det1.prototxt (PNet): 12x12 placeholder, PReLU, ceil-mode 2x2 max pool, two heads
PNET = (header((1, 3, 12, 12)) + conv("conv1", "data", 10, 3) + act("PReLU1", "PReLU", "conv1")
        + pool("pool1", "conv1", 2, 2) + conv("conv2", "pool1", 16, 3) + act("PReLU2", "PReLU", "conv2")
        + conv("conv3", "conv2", 32, 3) + act("PReLU3", "PReLU", "conv3")
        + conv("conv4-1", "conv3", 2, 1) + conv("conv4-2", "conv3", 4, 1)
        + softmax("prob1", "conv4-1"))
# OpenPose pose_deploy.prototxt: "input_dim: 1 # This value will be defined at runtime"
OPENPOSE = (header((1, 3, 1, 1)) + conv("conv1_1", "data", 8, 3, pad=1) + act("relu1_1", "ReLU", "conv1_1")
            + pool("pool1", "conv1_1", 2, 2) + conv("conv2_1", "pool1", 12, 3, pad=1)
            + act("relu2_1", "ReLU", "conv2_1") + pool("pool2", "conv2_1", 3, 2, "AVE", pad=1)
            + conv("L1", "pool2", 6, 1) + conv("L2", "pool2", 3, 3, pad=1)
            + 'layer { name: "net_output" type: "Concat" bottom: "L2" bottom: "L1" top: "net_output" }\n')


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    out = tmp_path_factory.mktemp("caffe_dynamic")
    result = {}
    for name, text in (("lenet", LENET), ("alexnet", ALEXNET), ("pnet", PNET), ("openpose", OPENPOSE)):
        prototxt = out / f"{name}.prototxt"
        prototxt.write_text(text)
        caffemodel = str(out / f"{name}.caffemodel")
        save_random_caffemodel(str(prototxt), caffemodel)
        model = mobconv.convert(str(prototxt), caffemodel=caffemodel)
        path = str(out / f"{name}.mob")
        model.save(path)
        result[name] = (str(prototxt), caffemodel, path)
    return result


def rel_error(ours, theirs):
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64).reshape(ours.shape)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def opencv(prototxt, caffemodel, x, names):
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    net.setInput(x)
    return dict(zip(names, net.forward(names)))


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CASES = [
    ("lenet", ("N", 1, 28, 28), [(1, 1, 28, 28), (3, 1, 28, 28)]),
    ("alexnet", ("N", 3, 67, 67), [(1, 3, 67, 67), (2, 3, 67, 67)]),
    ("pnet", ("N", 3, "H", "W"), [(1, 3, 12, 12), (1, 3, 25, 31), (2, 3, 47, 40), (1, 3, 17, 13)]),
    ("openpose", ("N", 3, "H", "W"), [(1, 3, 46, 38), (2, 3, 23, 31)]),
]


@pytest.mark.parametrize("name, signature, sizes", CASES)
def test_dims_follow_the_input_like_opencv(nets, name, signature, sizes):
    prototxt, caffemodel, path = nets[name]
    graph = load_caffe(prototxt, caffemodel)
    assert tuple(graph.values["data"].shape) == signature
    model = mobconv.load(path)
    assert tuple(model.inputs[0].shape) == signature
    with runtime.Interpreter(path, threads=2) as it:  # one interpreter, re-planned per shape
        for seed, shape in enumerate(sizes):
            x = rand(shape, seed)
            want = opencv(prototxt, caffemodel, x, graph.outputs)
            got = {"reference": run(graph, {"data": x}), "Model.run": model.run({"data": x}, backend="runtime"),
                   "C API": it.run({"data": x})}
            for how, outputs in got.items():
                for out in graph.outputs:
                    assert outputs[out].shape == want[out].shape, (name, shape, how, out)
                    assert rel_error(outputs[out], want[out]) < RTOL, (name, shape, how, out)


@pytest.mark.parametrize("name, shape, dim", [("lenet", (1, 1, 32, 32), "2 is fixed to 28"),
                                              ("alexnet", (1, 3, 99, 67), "2 is fixed to 67")])
def test_fixed_size_is_a_one_line_error_naming_the_layer(nets, name, shape, dim):
    prototxt, caffemodel, path = nets[name]
    model = mobconv.load(path)
    fixed_by = {"lenet": "layer 'ip1' (InnerProduct)", "alexnet": "layer 'fc6' (InnerProduct)"}[name]
    assert model.graph.metadata.options["input_size_fixed_by"] == fixed_by
    with pytest.raises(MobconvError, match=r"expected shape \[N, ") as err:
        model.run({"data": rand(shape)})
    assert "\n" not in str(err.value)
    with runtime.Interpreter(path) as it, pytest.raises(MobconvError, match=f"resize of input 'data': dim {dim}"):
        it.run({"data": rand(shape)})


def test_cli_run_at_batch_1_of_a_batch_64_deploy_file(nets, tmp_path):
    prototxt, caffemodel, path = nets["lenet"]
    x = rand((1, 1, 28, 28), 5)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-m", "mobconv", "run", path, "--input", f"data={tmp_path / 'x.npy'}",
                           "--save", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out" / "prob.npy")
    assert rel_error(got, opencv(prototxt, caffemodel, x, ["prob"])["prob"]) < RTOL


def test_random_inputs_take_the_declared_sizes(nets):
    """Without inputs, `Model.run` and `mobconv run` draw the deploy file's sizes
    (a symbolic H/W of 1 would be too small for the net)."""
    _, _, path = nets["pnet"]
    model = mobconv.load(path)
    assert model.random_inputs()["data"].shape == (1, 3, 12, 12)
    assert model.run()["prob1"].shape == (1, 2, 1, 1)
    proc = subprocess.run([sys.executable, "-m", "mobconv", "run", path], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "data: float32[1, 3, 12, 12] random" in proc.stdout


def test_declared_shapes_are_kept_and_user_shapes_stay_fixed(nets):
    prototxt, caffemodel, _ = nets["pnet"]
    graph = load_caffe(prototxt, caffemodel)
    assert declared_input_shapes(graph) == {"data": (1, 3, 12, 12)}
    assert graph.metadata.options["declared_input_shapes"] == "data=1,3,12,12"
    fixed = load_caffe(prototxt, caffemodel, input_shapes={"data": (2, 3, 20, 24)})
    assert tuple(fixed.values["data"].shape) == (2, 3, 20, 24)
    assert "declared_input_shapes" not in fixed.metadata.options


def test_user_named_dims(nets):
    """--input-shape data=1,3,H,W: named dims take the file's size for the conversion,
    then become those symbols; a name on a dim the net fixes is a one-line usage error."""
    from mobconv.errors import UsageError

    prototxt, caffemodel, _ = nets["pnet"]
    graph = load_caffe(prototxt, caffemodel, input_shapes={"data": (1, 3, "h", "w")})
    assert tuple(graph.values["data"].shape) == (1, 3, "h", "w")
    x = rand((1, 3, 30, 21))
    want = opencv(prototxt, caffemodel, x, ["prob1"])["prob1"]
    assert rel_error(run(graph, {"data": x})["prob1"], want) < RTOL
    prototxt, caffemodel, _ = nets["lenet"]
    with pytest.raises(UsageError, match=r"lenet.prototxt: input_shapes\['data'\] names dim 2 \('H'\), "
                                         r"but layer 'ip1' \(InnerProduct\) fixes its size to 28; give a number"):
        load_caffe(prototxt, caffemodel, input_shapes={"data": ("N", 1, "H", "W")})
    graph = load_caffe(prototxt, caffemodel, input_shapes={"data": ("B", 1, 28, 28)})
    assert tuple(graph.values["data"].shape) == ("B", 1, 28, 28)


def test_layers_that_fix_the_spatial_size(tmp_path):
    """Crop to a reference blob and a pooling Caffe geometry the IR has no
    size-free form for (pad 0, stride > kernel, ceil mode) keep H/W; batch stays free."""
    crop = (header((1, 3, 16, 16)) + conv("a", "data", 4, 3) + conv("b", "data", 4, 5)
            + 'layer { name: "crop" type: "Crop" bottom: "a" bottom: "b" top: "crop" crop_param { offset: 1 } }\n')
    sparse = header((1, 2, 10, 10)) + pool("p", "data", 1, 3)
    for text, culprit in ((crop, "layer 'crop' (Crop)"), (sparse, "layer 'p' (Pooling)")):
        p = tmp_path / "n.prototxt"
        p.write_text(text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = load_caffe(str(p), random_weights=True)
        shape = tuple(graph.values["data"].shape)
        assert shape[0] == "N" and all(isinstance(d, int) for d in shape[1:]), shape
        assert graph.metadata.options["input_size_fixed_by"] == culprit


def test_ceil_mode_pooling_at_odd_sizes_matches_opencv(tmp_path):
    """Pooling is one IR node in ceil mode: MAX and AVE (Caffe's padded divisor),
    with pad, at sizes where the last window overhangs or is clipped."""
    text = (header((1, 2, 8, 8)) + pool("m", "data", 3, 2, pad=1) + pool("a", "data", 3, 2, "AVE", pad=1)
            + pool("a2", "data", 2, 2, "AVE") + pool("m3", "data", 3, 3))
    p = tmp_path / "pools.prototxt"
    p.write_text(text)
    graph = load_caffe(str(p))
    assert tuple(graph.values["data"].shape) == ("N", 2, "H", "W")
    assert [n.op for n in graph.nodes] == ["MaxPool", "AveragePool", "AveragePool", "MaxPool"]
    for shape in [(1, 2, 8, 8), (2, 2, 9, 7), (1, 2, 4, 5), (1, 2, 13, 10)]:
        x = rand(shape)
        ours = run(graph, {"data": x})
        net = cv2.dnn.readNetFromCaffe(str(p))
        net.setInput(x)
        want = dict(zip(["m", "a", "a2", "m3"], net.forward(["m", "a", "a2", "m3"])))
        for out in want:
            assert ours[out].shape == want[out].shape, (shape, out)
            assert rel_error(ours[out], want[out]) < RTOL, (shape, out)


def test_ssd_head_at_other_sizes_matches_opencv(tmp_path):
    """PriorBox reads the feature-map and image sizes at run time: the zoo SSD head
    (declared 1x3x32x32) at other sizes and batch 2 gives OpenCV's priors and
    detections (rows carry the image index)."""
    from model_zoo.caffe.nets import build_ssd

    prototxt, caffemodel = build_ssd(str(tmp_path))
    graph = load_caffe(prototxt, caffemodel)
    assert tuple(graph.values["data"].shape) == ("N", 3, "H", "W")
    model = mobconv.convert(prototxt, caffemodel=caffemodel)
    for shape in [(1, 3, 48, 40), (1, 3, 33, 31), (2, 3, 32, 32)]:
        x = rand(shape)
        want = opencv(prototxt, caffemodel, x, ["mbox_priorbox", "detection_out"])
        plain = run(graph, {"data": x}, keep_intermediates=True)
        assert rel_error(plain["mbox_priorbox"], want["mbox_priorbox"]) < RTOL, shape
        for backend in ("reference", "runtime"):
            got = model.run({"data": x}, backend=backend)["detection_out"].reshape(-1, 7)
            exp = want["detection_out"].reshape(-1, 7)
            got, exp = (r[r[:, 2] > 0] for r in (got, exp))
            got, exp = (r[np.lexsort(r.T[::-1])] for r in (got, exp))
            assert len(got) > 0 and got.shape == exp.shape, (shape, backend)
            np.testing.assert_allclose(got, exp, rtol=RTOL, atol=1e-5)


def test_interp_to_a_fixed_size_takes_any_batch_and_size(tmp_path):
    """PSPNet/DeepLab's Interp to height/width resizes only H and W: the batch and
    the input size stay free (zoom_factor keeps H/W fixed: its size rule has no IR form)."""
    text = (header((1, 3, 9, 9)) + conv("c", "data", 4, 3, pad=1)
            + 'layer { name: "i" type: "Interp" bottom: "c" top: "i" interp_param { height: 16 width: 12 } }\n')
    p = tmp_path / "interp.prototxt"
    p.write_text(text)
    cm = str(tmp_path / "interp.caffemodel")
    save_random_caffemodel(str(p), cm)
    model = mobconv.convert(str(p), caffemodel=cm)
    assert tuple(model.inputs[0].shape) == ("N", 3, "H", "W")
    for shape in [(2, 3, 9, 9), (1, 3, 7, 13)]:
        x = rand(shape)
        want = opencv(str(p), cm, x, ["i"])["i"]
        for backend in ("reference", "runtime"):
            got = model.run({"data": x}, backend=backend)["i"]
            assert got.shape == want.shape == (shape[0], 4, 16, 12)
            assert rel_error(got, want) < RTOL, (shape, backend)
    zoom = tmp_path / "zoom.prototxt"
    zoom.write_text(text.replace("height: 16 width: 12", "zoom_factor: 2"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = load_caffe(str(zoom), random_weights=True)
    assert tuple(graph.values["data"].shape) == ("N", 3, 9, 9)
    assert graph.metadata.options["input_size_fixed_by"] == "layer 'i' (Interp)"


def test_custom_layer_that_only_knows_the_declared_size(tmp_path):
    """A user's converter that fails at another size (here: it reads a number from
    the input shape) keeps H/W fixed, with the reason in the metadata."""
    from mobconv.frontends.caffe import register_layer
    from mobconv.frontends.caffe.layers import REGISTRY

    p = tmp_path / "custom.prototxt"
    p.write_text(header((1, 2, 6, 6)) + 'layer { name: "f" type: "Fixed6" bottom: "data" top: "f" }\n')
    try:
        @register_layer("Fixed6")
        def fixed6(ctx):
            scale = {6: 2.0}[ctx.shape(ctx.inputs[0])[2]]  # KeyError at any other height
            ctx.node("Mul", [ctx.inputs[0], ctx.const(np.float32(scale), "k")], ctx.outputs[0])

        graph = load_caffe(str(p))
        assert tuple(graph.values["data"].shape) == ("N", 2, 6, 6)
        assert graph.metadata.options["input_size_fixed_by"] == \
            "converting at another size failed (KeyError: 13)"
    finally:
        REGISTRY._converters.pop("Fixed6", None)


def test_bench_runs_a_fully_convolutional_model_at_its_declared_size(nets):
    from mobconv.bench import bench

    _, _, path = nets["pnet"]
    result = bench(path, runs=2, warmup=0)
    assert result.median_ms > 0
