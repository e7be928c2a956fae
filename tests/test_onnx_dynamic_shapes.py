"""PyTorch exports with several independent dynamic dims, converted and run at several sizes.

Nets (model_zoo/torch/dynamic_nets.py): a BERT-style encoder over int64 input_ids and
attention_mask [batch, seq] (Range/Shape position ids, x.view(B, S, H, D) attention
reshapes, an additive mask built by Cast/Sub/Mul/Unsqueeze/Expand), a 1-D conv net over
[batch, channels, time] and a fully-convolutional net over [batch, 3, height, width] that
upsamples back to its input size with interpolate(size=x.shape[-2:]).

Each is exported by the TorchScript exporter at opsets 14 and 17 (dynamic_axes for every
dynamic dim) and by the dynamo exporter (Dim.AUTO), converted with and without the
optimization passes, and run by the numpy reference and the C++ runtime (inputs resized
at run time) at 2-3 size combinations. Checks: every dynamic input dim stays symbolic in
the signature (and the outputs keep their symbolic dims); outputs match onnxruntime within
max|ours - ort| <= 1e-4 * max|ort|.
"""
import contextlib
import inspect
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
from model_zoo.torch.dynamic_nets import DYNAMIC_NETS, build_dynamic  # noqa: E402

RTOL = 1e-4
EXPORTERS = ["opset14", "opset17", "dynamo"]
SIZES = {
    "bert": [(1, 5), (3, 12), (2, 1)],
    "speech": [(1, 33), (3, 64)],
    "fcn": [(1, 20, 28), (2, 37, 16)],
}


def rel_err(got, want) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def export(name, exporter, path):
    model, feeds, in_axes, out_axes, sizes = build_dynamic(name)
    example = feeds(*sizes)
    args = tuple(torch.from_numpy(v) for v in example.values())
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                import onnxscript  # noqa: F401  (a test dependency: fail loudly if missing)

                params = list(inspect.signature(model.forward).parameters)
                shapes = {p: {a: torch.export.Dim.AUTO for a in axes}
                          for p, axes in zip(params, in_axes.values())}
                program = torch.onnx.export(model, args, dynamo=True, input_names=list(example),
                                            output_names=list(out_axes), dynamic_shapes=shapes)
                program.save(str(path))
            else:
                torch.onnx.export(model, args, str(path), dynamo=False,
                                  opset_version=int(exporter.removeprefix("opset")),
                                  input_names=list(example), output_names=list(out_axes),
                                  dynamic_axes={**in_axes, **out_axes})
    finally:
        logging.disable(logging.NOTSET)
    return feeds, in_axes


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamic_exports")
    cache = {}

    def get(name, exporter):
        if (name, exporter) not in cache:
            path = root / f"{name}_{exporter}.onnx"
            feeds, in_axes = export(name, exporter, path)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            cache[name, exporter] = (path, feeds, in_axes, session)
        return cache[name, exporter]

    return get


@pytest.mark.parametrize("optimize", [False, True], ids=["plain", "optimized"])
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", sorted(DYNAMIC_NETS))
def test_dynamic_dims_convert_and_run(exported, name, exporter, optimize, tmp_path):
    path, feeds, in_axes, session = exported(name, exporter)
    converted = mobconv.convert(str(path), optimize=optimize)
    for spec in converted.inputs:
        for axis in in_axes[spec.name]:
            assert isinstance(spec.shape[axis], str), f"input {spec.name} lost dynamic dim {axis}: {spec.shape}"
    symbols = {d for spec in converted.inputs for d in spec.shape if isinstance(d, str)}
    assert len(symbols) == len({s for axes in in_axes.values() for s in axes.values()})
    for out in converted.outputs:
        assert isinstance(out.shape[0], str), f"output {out.name} lost the symbolic batch: {out.shape}"

    mob = tmp_path / "model.mob"
    converted.save(str(mob))
    loaded = mobconv.load(str(mob))
    names = loaded.graph.outputs
    for sizes in SIZES[name]:
        f = feeds(*sizes, seed=sum(sizes))
        want = session.run(None, f)
        got = run(loaded.graph, f)
        native = loaded.run(f, backend="runtime")
        for out, w in zip(names, want):
            assert got[out].shape == w.shape, f"{name}/{exporter} {sizes}: {out} shape {got[out].shape} vs {w.shape}"
            err = rel_err(got[out], w)
            assert err <= RTOL, f"{name}/{exporter} {sizes}: {out} reference rel err {err:.3g}"
            assert native[out].shape == w.shape
            err_rt = rel_err(native[out], w)
            assert err_rt <= RTOL, f"{name}/{exporter} {sizes}: {out} C++ runtime rel err {err_rt:.3g}"
