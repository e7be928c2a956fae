"""Real ONNX model-zoo architectures (shipped with onnx) converted and run vs onnxruntime.

These are graphs we did not write: AlexNet, DenseNet-121, Inception v1/v2,
ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512 (opset 9, with weights as
graph inputs, Sum, LRN, Dropout, ...). Weights are seeded random (see
real_onnx_models.py). Tolerance: max|mobconv - ort| <= 1e-4 * max|ort| on the
outputs and on the logits feeding the final Softmax (a saturated softmax alone
would hide errors).
"""
import os

import numpy as np
import onnx
import pytest

import mobconv
from mobconv.reference import run
from real_onnx_models import light_model_paths, with_random_weights

ort = pytest.importorskip("onnxruntime")

RTOL = 1e-4


def _softmax_inputs(model):
    return [n.input[0] for n in model.graph.node if n.op_type == "Softmax"]


@pytest.mark.parametrize("path", light_model_paths(), ids=os.path.basename)
def test_light_model_matches_onnxruntime(path, tmp_path):
    model = with_random_weights(onnx.load(path))
    logits = _softmax_inputs(model)
    for name in logits:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    src = tmp_path / os.path.basename(path)
    onnx.save(model, src)

    converted = mobconv.convert(str(src))
    mob = tmp_path / "model.mob"
    converted.save(str(mob))
    loaded = mobconv.load(str(mob))

    rng = np.random.default_rng(0)
    feeds = {
        spec.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in spec.shape]).astype(
            np.float32
        )
        for spec in loaded.inputs
    }
    got = run(loaded.graph, feeds, keep_intermediates=True)
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    expected = dict(zip(names, session.run(None, feeds)))
    assert set(loaded.graph.outputs) <= set(expected)
    for name in list(loaded.graph.outputs) + [n for n in logits if n in got]:
        ref, out = expected[name], got[name]
        assert out.shape == ref.shape, f"{name}: shape {out.shape} vs {ref.shape}"
        err = np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-12)
        assert err <= RTOL, f"{os.path.basename(path)} tensor {name}: rel err {err:.3g} > {RTOL}"
