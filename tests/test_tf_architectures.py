"""Real TensorFlow architectures converted and run against TensorFlow itself.

Keras MobileNet v1/v2/v3-Small, ResNet50, EfficientNetB0, InceptionV3,
DenseNet121, Xception, a U-Net and a dilated detector head (tests/tf_models.py:
seeded weights, non-trivial BatchNorm statistics, no downloads), frozen to
GraphDef, converted with `mobconv.convert` (one with `mobconv tf2mob`, three
from SavedModels), saved as .mob, loaded, and run on the numpy reference and on
the C++ runtime at batch 1 and batch 3 through the same model (the batch dim is
symbolic). Outputs are the logits (no softmax).

Metric, per output tensor: max|ours - tf| / max|tf| <= 1e-4 (the largest
element-wise error over the whole tensor, relative to the tensor's largest
magnitude; the same as tests/test_onnx_real_models.py).
"""
import os

import numpy as np
import pytest

import mobconv
import tf_models
from mobconv.cli.main import main

RTOL = 1e-4
BACKENDS = ("reference", "runtime")

_CONVERTED = {}


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    return tf_models.zoo(tmp_path_factory)


def rel_err(got, want) -> float:
    """max|got - want| / max|want| (a shape mismatch is an assertion)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape} vs TensorFlow's {want.shape}"
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def converted(zoo, name: str):
    """`mobconv.convert` of the frozen .pb, saved as .mob and loaded back (once)."""
    if name not in _CONVERTED:
        built = zoo.get(name)
        mob = os.path.splitext(built.pb)[0] + ".mob"
        mobconv.convert(built.pb).save(mob)
        _CONVERTED[name] = mobconv.load(mob)
    return _CONVERTED[name]


def check_model(model, built, expected=None, what=""):
    """Every output at batch 1 and 3 on both backends within RTOL of TensorFlow's."""
    expected = expected or built.expected
    errors, failures = {}, []
    (spec,) = model.inputs
    for batch, x in built.inputs.items():
        for backend in BACKENDS:
            got = model.run({spec.name: x}, backend=backend)
            for out, want in zip(model.graph.outputs, expected[batch]):
                err = rel_err(got[out], want)
                errors[(backend, batch, out)] = err
                if not err <= RTOL:
                    failures.append(f"{backend} batch {batch} output {out}: max rel err {err:.3g}")
    assert not failures, f"{what or built.name} differs from TensorFlow: " + "; ".join(failures)
    return errors


def transposes_off_edges(model) -> list:
    """Transpose nodes that neither read a model input nor write a model output."""
    graph = model.graph
    return [n.name for n in graph.nodes if n.op == "Transpose"
            and not (set(n.inputs) & set(graph.inputs) or set(n.outputs) & set(graph.outputs))]


@pytest.mark.parametrize("name", list(tf_models.ARCHITECTURES))
def test_architecture_matches_tensorflow(zoo, name):
    built = zoo.get(name)
    model = converted(zoo, name)
    (spec,) = model.inputs
    h, w = tf_models.ARCHITECTURES[name].hw
    assert spec.name == "input" and tuple(spec.shape) == ("batch", h, w, 3), spec
    assert list(model.graph.outputs) == built.output_names
    errors = check_model(model, built)
    print(f"{name}: max rel err reference {max(v for k, v in errors.items() if k[0] == 'reference'):.2e},"
          f" runtime {max(v for k, v in errors.items() if k[0] == 'runtime'):.2e}, "
          f"{sum(n.op == 'Transpose' for n in model.graph.nodes)} Transpose")


@pytest.mark.parametrize("name", ["mobilenet", "mobilenet_v2", "resnet50", "inception_v3",
                                  "densenet121", "xception", "efficientnet_b0",
                                  "mobilenet_v3_small", "unet"])
def test_no_transpose_inside(zoo, name):
    """NHWC -> NCHW happens once at the input (and back at a 4-D output): the
    transpose pass cancels every Transpose the converters put around convolutions,
    pools, resizes and concatenations."""
    model = converted(zoo, name)
    assert transposes_off_edges(model) == []
    edge = [n for n in model.graph.nodes if n.op == "Transpose"]
    assert len(edge) == 1 + (len(model.outputs[0].shape) == 4), [n.name for n in edge]


def test_dilated_convs_fold_into_one_conv(zoo):
    """SpaceToBatchND -> Conv2D -> BatchToSpaceND (Keras dilation_rate, atrous_conv2d
    SAME and VALID, on an odd 21x21 map) become single dilated Convs."""
    model = converted(zoo, "detector")
    ops = [n.op for n in model.graph.nodes]
    assert "SpaceToDepth" not in ops and not any("Batch" in op and "Space" in op for op in ops)
    dilated = [n for n in model.graph.nodes if n.op == "Conv" and tuple(n.attrs.get("dilations", (1, 1))) != (1, 1)]
    assert sorted(tuple(n.attrs["dilations"]) for n in dilated) == [(2, 2), (2, 2), (3, 3)]
    assert transposes_off_edges(model) == []


def test_tf2mob_cli_matches_tensorflow(zoo, tmp_path, capsys):
    built = zoo.get("mobilenet_v3_small")
    out = tmp_path / "v3.mob"
    assert main(["tf2mob", built.pb, "-o", str(out), "-q"]) == 0, capsys.readouterr().err
    check_model(mobconv.load(str(out)), built, what="tf2mob mobilenet_v3_small")


# SavedModel round trips of every architecture cost ~20 s of CPU each (TensorFlow's save,
# trace and reload): the suite takes the two exporters on the conv-transpose and dilated
# nets and two classifiers; the loader's tests cover SavedModels read without TensorFlow.
@pytest.mark.parametrize("name, keras_export", [("unet", True), ("detector", False),
                                                 ("mobilenet", False), ("mobilenet_v2", False)])
def test_saved_model_matches_tensorflow(zoo, tmp_path, name, keras_export):
    """SavedModel directories (Keras 3 `model.export` and `tf.saved_model.save`)
    against TensorFlow running the SavedModel's serving_default signature."""
    built = zoo.get(name)
    path = zoo.saved_model(name, keras_export=keras_export)
    model = mobconv.convert(path)
    mob = tmp_path / "saved.mob"
    model.save(str(mob))
    model = mobconv.load(str(mob))
    (spec,) = model.inputs
    assert tuple(spec.shape)[1:] == (*tf_models.ARCHITECTURES[name].hw, 3)
    expected = {b: tf_models.run_saved_model(path, x) for b, x in built.inputs.items()}
    for b in expected:  # the same model as the frozen graph (TensorFlow's own runs of
        for got, want in zip(expected[b], built.expected[b]):  # the two differ by ~1e-5)
            assert rel_err(got, want) <= RTOL
    check_model(model, built, expected, what=f"SavedModel {name}")
