"""The trained digits nets shipped in model_zoo/onnx (recipe: model_zoo/torch/digits_train.py)."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import mobconv

ZOO = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "onnx")
NETS = ("mobilenetv2", "resnet")


def _recorded():
    with open(os.path.join(ZOO, "digits_accuracy.json")) as f:
        return json.load(f)


def _held_out():
    data = np.load(os.path.join(ZOO, "digits_heldout.npz"))
    return data["images"], data["labels"]


@pytest.mark.parametrize("name", NETS)
def test_shipped_onnx_is_small_valid_and_keeps_batchnorm(name):
    path = os.path.join(ZOO, f"digits_{name}.onnx")
    assert os.path.getsize(path) < 1 << 20
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 13
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("BatchNormalization") == ops.count("Conv")  # BN unfolded after every conv
    assert "Add" in ops  # residual adds
    if name == "mobilenetv2":
        inits = {i.name: i for i in model.graph.initializer}
        depthwise = [n for n in model.graph.node if n.op_type == "Conv"
                     and any(a.name == "group" and a.i > 1 and a.i == inits[n.input[1]].dims[0]
                             for a in n.attribute)]
        assert len(depthwise) >= 5
        assert "Clip" in ops  # ReLU6


@pytest.mark.parametrize("name", NETS)
def test_float_accuracy_matches_recorded_with_onnxruntime(name):
    images, labels = _held_out()
    rec = _recorded()[name]
    sess = ort.InferenceSession(os.path.join(ZOO, rec["onnx"]), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": images})[0]
    accuracy = float((logits.argmax(1) == labels).mean())
    assert len(labels) == rec["held_out_images"]
    assert round(accuracy, 6) == rec["top1_accuracy"]
    assert accuracy > 0.97


@pytest.mark.parametrize("name", NETS)
def test_mobconv_conversion_agrees_with_onnxruntime(name):
    images, _ = _held_out()
    x = images[:32]
    path = os.path.join(ZOO, f"digits_{name}.onnx")
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    model = mobconv.convert(path)
    assert "BatchNormalization" not in {n.op for n in model.graph.nodes}  # folded by us
    for backend in ("reference", "runtime"):
        got = model.run({"input": x}, backend=backend)["logits"]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=backend)


def test_shipped_data_is_what_the_recipe_generates():
    from model_zoo.torch.digits_train import NUM_CALIB, load_split

    x_train, _, x_test, y_test = load_split()
    images, labels = _held_out()
    np.testing.assert_array_equal(images, x_test)
    np.testing.assert_array_equal(labels, y_test)
    assert images.dtype == np.float32 and images.shape[1:] == (1, 28, 28)
    assert np.array_equal(np.round(images * 255) / 255, images)  # exact 8-bit values
    calib = os.path.join(ZOO, "digits_calib")
    files = sorted(os.listdir(calib))
    assert len(files) == NUM_CALIB
    for i, name in enumerate(files):
        np.testing.assert_array_equal(np.load(os.path.join(calib, name)), x_train[i:i + 1])


def test_training_recipe_is_deterministic(tmp_path, monkeypatch):
    import torch

    from model_zoo.torch import digits_train

    monkeypatch.setitem(digits_train.EPOCHS, "resnet", 1)
    x_train, y_train, _, _ = digits_train.load_split()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        blobs = []
        for run in range(2):
            model = digits_train.train("resnet", x_train[:128], y_train[:128], log=lambda *_: None)
            path = tmp_path / f"run{run}.onnx"
            digits_train.export(model, str(path))
            blobs.append(path.read_bytes())
    finally:
        torch.set_num_threads(threads)
    assert blobs[0] == blobs[1]
