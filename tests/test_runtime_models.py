"""Model level: zoo networks converted with mobconv.convert, run by the C++
runtime at 1 and 2 threads, vs onnxruntime (max relative error 1e-4); the
arena plan of MobileNetV2 is well under the sum of its activations."""
import importlib

import numpy as np
import pytest

from mobconv.formats.writer import to_bytes

runtime = pytest.importorskip("mobconv.runtime")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

RECIPES = {"mobilenet_v2": {"width": 0.5, "image_size": 96}, "resnet18": {"image_size": 64},
           "squeezenet": {"image_size": 64}}


def _build(name, tmp_path):
    mod = importlib.import_module(f"model_zoo.onnx.{name}")
    kwargs = RECIPES[name]
    builder = getattr(mod, f"build_{name}")
    try:
        proto = builder(**kwargs)
    except TypeError:
        proto = builder()
    path = tmp_path / f"{name}.onnx"
    onnx.save(proto, str(path))
    return path, proto


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_zoo_model_matches_onnxruntime(name, threads, tmp_path):
    import mobconv

    try:
        path, proto = _build(name, tmp_path)
    except ImportError as exc:
        pytest.skip(f"recipe {name} not available: {exc}")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = sess.run(None, {inp.name: x})
    model = mobconv.convert(str(path), input_shapes={inp.name: shape})
    with runtime.Interpreter(to_bytes(model.graph), threads=threads) as it:
        got = it.run({inp.name: x})
        names = [o["name"] for o in it.outputs]
        if name == "mobilenet_v2":
            assert it.arena_bytes < 0.5 * it.activation_bytes, (it.arena_bytes, it.activation_bytes)
    for k, exp in enumerate(expected):
        out = got[names[k]]
        assert out.shape == exp.shape
        err = np.max(np.abs(out - exp) / (np.abs(exp) + 1e-3))
        scale = np.max(np.abs(exp))
        assert np.max(np.abs(out - exp)) <= 1e-4 * max(scale, 1.0), (
            f"{name} threads={threads}: max abs error {np.max(np.abs(out - exp)):.3g} "
            f"(max |expected| {scale:.3g}, max rel {err:.3g})")
