"""Real PyTorch exports (torch.onnx.export) converted by mobconv and run vs onnxruntime and torch.

The architectures (model_zoo/torch/nets.py) follow their published structure:
MobileNetV3 Small/Large, EfficientNet-B0, ResNet-50, DenseNet, ShuffleNetV2,
ConvNeXt, ViT, a UNet and a YOLO-style detect head, at small widths and input
sizes, seeded, in eval mode. Each is exported here at test time with a dynamic
batch axis, by the TorchScript exporter at opsets 13 and 17 and by the
dynamo exporter (opset 18+, needs onnxscript), then converted with and
without the optimization passes, and run by the numpy reference at batch 1 and 3.

Checks: the batch stays symbolic in the signature; outputs match onnxruntime
and torch itself within max|ours - ref| <= 1e-4 * max|ref|; the converted model
survives a .mob round trip.
"""
import contextlib
import io
import logging
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import mobconv  # noqa: E402
from mobconv.reference import run  # noqa: E402
from model_zoo.torch.nets import ARCHITECTURES, build  # noqa: E402

RTOL = 1e-4
EXPORTERS = ["opset13", "opset17", "dynamo"]
BATCHES = (1, 3)


def rel_err(got, want) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def export(model, size: int, path, exporter: str) -> None:
    x = torch.randn(2, 3, size, size)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=64)
            program = torch.onnx.export(model, (x,), dynamo=True, input_names=["input"],
                                        output_names=["output"], dynamic_shapes={"x": {0: batch}})
            program.save(str(path))
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False,
                              opset_version=int(exporter.removeprefix("opset")),
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(arch, exporter) -> (path, torch model, input size); exported once per module."""
    root = tmp_path_factory.mktemp("torch_exports")
    cache = {}

    def get(arch, exporter):
        key = (arch, exporter)
        if key not in cache:
            if exporter == "dynamo":
                import onnxscript  # noqa: F401  (a test dependency: fail loudly if missing)
            model, size = build(arch)
            path = root / f"{arch}_{exporter}.onnx"
            logging.disable(logging.WARNING)
            try:
                export(model, size, path, exporter)
            finally:
                logging.disable(logging.NOTSET)
            cache[key] = (path, model, size)
        return cache[key]

    return get


@pytest.mark.parametrize("optimize", [False, True], ids=["plain", "optimized"])
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_torch_export_matches(exported, arch, exporter, optimize, tmp_path):
    path, model, size = exported(arch, exporter)
    converted = mobconv.convert(str(path), optimize=optimize)
    (spec,) = converted.inputs
    assert isinstance(spec.shape[0], str) and tuple(spec.shape[1:]) == (3, size, size), spec.shape
    for out in converted.outputs:
        assert isinstance(out.shape[0], str), f"output {out.name} lost the symbolic batch: {out.shape}"
    ops = {n.op for n in converted.graph.nodes}
    assert "Shape" not in ops, "shape arithmetic should have been resolved at conversion"

    mob = tmp_path / "model.mob"
    converted.save(str(mob))
    loaded = mobconv.load(str(mob))
    assert loaded.inputs[0].shape == spec.shape

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in BATCHES:
        x = np.random.default_rng(batch).standard_normal((batch, 3, size, size)).astype(np.float32)
        got = run(loaded.graph, {spec.name: x})[loaded.graph.outputs[0]]
        (want,) = session.run(None, {session.get_inputs()[0].name: x})
        with torch.no_grad():
            reference = model(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape == reference.shape
        err_ort, err_torch = rel_err(got, want), rel_err(got, reference)
        assert err_ort <= RTOL, f"{arch}/{exporter} batch {batch}: rel err vs onnxruntime {err_ort:.3g}"
        assert err_torch <= RTOL, f"{arch}/{exporter} batch {batch}: rel err vs torch {err_torch:.3g}"
        # the C++ runtime (what apps link) on the same file, batch resized at run time
        native = loaded.run({spec.name: x}, backend="runtime")[loaded.graph.outputs[0]]
        err_rt = rel_err(native, want)
        assert err_rt <= RTOL, f"{arch}/{exporter} batch {batch}: C++ runtime rel err {err_rt:.3g}"
