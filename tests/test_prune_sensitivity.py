"""quantize.sensitivity and SensitivityReport (quantize/prune_sensitivity.py): the curves
against SQNRs computed here from prune() + reference runs, evaluate=, propose(budget),
the plot, table and dict, errors."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import mobconv
from mobconv import quantize
from mobconv.errors import ArgumentError
from mobconv.quantize._compress_common import weight_layers
from mobconv.quantize.prune_sensitivity import (GENERATED_SAMPLES, LayerCurve,
                                                SensitivityReport)

from prune_nets import OUTPUT, WEIGHTS, build, samples, sqnr_db

ZOO = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "onnx")
LEVELS = (0.3, 0.6, 0.9)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return mobconv.convert(build(tmp_path_factory.mktemp("sens") / "net.onnx"))


@pytest.fixture(scope="module")
def data():
    return samples(6)


@pytest.fixture(scope="module")
def report(net, data):
    return quantize.sensitivity(net, data, sparsities=LEVELS, min_params=0,
                                backend="reference")


def reference_sqnr(model, pruned, feeds) -> float:
    refs = [model.run(f, backend="reference")[OUTPUT] for f in feeds]
    gots = [pruned.run(f, backend="reference")[OUTPUT] for f in feeds]
    return sqnr_db(refs, gots)


def test_each_value_is_the_output_sqnr_with_only_that_layer_pruned(net, data, report):
    assert [c.name for c in report.layers] == ["pw1", "pw2", "mm", "fc"]  # min_params=0
    assert report.sparsities == LEVELS and report.metric == "sqnr"
    assert report.num_samples == 6 and report.backend == "reference"
    for curve in report.layers:
        assert curve.params == net.graph.values[WEIGHTS[curve.name]].data.size
        for s, value in zip(LEVELS, curve.values):
            want = reference_sqnr(net, quantize.prune(net, per_layer={curve.name: s}), data)
            assert value == pytest.approx(want, abs=1e-3)  # batched: float32 sums differ, (curve.name, s)


def test_default_layers_are_what_prune_selects_and_layers_option(net, data):
    r = quantize.sensitivity(net, data, sparsities=(0.5,), backend="reference")
    assert [c.name for c in r.layers] == ["pw2", "mm"]
    r = quantize.sensitivity(net, data, sparsities=(0.5,), layers=["dw", "fc"],
                             backend="reference")
    assert [c.name for c in r.layers] == ["dw", "fc"]
    r = quantize.sensitivity(net, data, sparsities=(0.5,), exclude=["mm"], backend="reference")
    assert [c.name for c in r.layers] == ["pw2"]


def test_runtime_backend_agrees_with_reference(net, data, report):
    from mobconv import runtime

    if not runtime.available():
        pytest.fail("the C++ runtime is not built (pip install -e .)")
    r = quantize.sensitivity(net, data, sparsities=LEVELS, min_params=0, backend="auto")
    assert r.backend == "runtime"
    for a, b in zip(r.layers, report.layers):
        np.testing.assert_allclose(a.values, b.values, atol=0.05)


def test_patched_file_and_reserialized_file_give_the_same_numbers(net, data):
    """The runtime path writes the pruned weight over its bytes in the serialized file; a
    weight whose bytes are not found exactly once is serialized again instead."""
    from mobconv import runtime
    from mobconv.quantize.prune_sensitivity import _Runner

    if not runtime.available():
        pytest.fail("the C++ runtime is not built (pip install -e .)")
    work = net.graph.copy()
    runner = _Runner(work, data, "runtime")
    for layer in weight_layers(work):
        patched = runner.sqnr(layer, layer.size // 2)
        assert runner.offsets[layer.weight] is not None
        runner.offsets[layer.weight] = None
        assert runner.sqnr(layer, layer.size // 2) == patched, layer.name
        np.testing.assert_array_equal(work.values[layer.weight].data,
                                      net.graph.values[layer.weight].data)  # restored


def test_data_from_a_folder_of_npy_files(net, data, report, tmp_path):
    for i, feeds in enumerate(data):
        np.save(tmp_path / f"{i:02d}.npy", feeds["x"])
    r = quantize.sensitivity(net, str(tmp_path), sparsities=LEVELS, min_params=0,
                             backend="reference")
    assert r.num_samples == len(data) and str(tmp_path) in r.data
    for a, b in zip(r.layers, report.layers):
        np.testing.assert_allclose(a.values, b.values, atol=1e-9)
    r = quantize.sensitivity(net, str(tmp_path), sparsities=(0.5,), num_samples=2,
                             backend="reference")
    assert r.num_samples == 2


def test_samples_of_different_sizes_are_batched_apart(tmp_path):
    """A symbolic H x W: samples of two sizes run in two batches (np.concatenate of
    different sizes would fail); same SQNR as prune() + per-sample reference runs."""
    from mobconv.ir.graph import Graph

    rng = np.random.default_rng(3)
    graph = Graph("hw")
    graph.add_input("x", "float32", ("N", 16, "H", "W"))
    graph.add_constant("w", rng.standard_normal((64, 16, 1, 1)).astype(np.float32))
    graph.add_node("Conv", ["x", "w"], ["y"], {"kernel_shape": [1, 1]}, name="pw")
    graph.outputs = ["y"]
    model = mobconv.Model(graph)
    feeds = [{"x": rng.standard_normal((1, 16, h, h)).astype(np.float32)} for h in (3, 3, 5, 3)]
    r = quantize.sensitivity(model, feeds, sparsities=(0.5,), layers=["pw"],
                             backend="reference")
    refs = [model.run(f, backend="reference")["y"] for f in feeds]
    pruned = quantize.prune(model, per_layer={"pw": 0.5})
    gots = [pruned.run(f, backend="reference")["y"] for f in feeds]
    assert r.curve("pw").values[0] == pytest.approx(sqnr_db(refs, gots), abs=1e-3)


def test_int8_model_runtime_and_reference_agree_with_prune(net, data):
    q = quantize.quantize(net, samples(8, seed=5), progress=False)
    r = quantize.sensitivity(q, data, sparsities=(0.4, 0.9), min_params=0)
    ref = quantize.sensitivity(q, data, sparsities=(0.4, 0.9), min_params=0, backend="reference")
    assert r.backend == "runtime" and [c.name for c in r.layers] == ["pw1", "pw2", "mm", "fc"]
    for a, b in zip(r.layers, ref.layers):  # the int8 kernels are exact: same integers
        np.testing.assert_allclose(a.values, b.values, atol=1e-6)
    want = reference_sqnr(q, quantize.prune(q, per_layer={"mm": 0.9}), data)
    assert ref.curve("mm").values[1] == pytest.approx(want, abs=1e-3)


def test_generated_inputs_without_data_are_seeded_and_said(net):
    a = quantize.sensitivity(net, sparsities=(0.5,), backend="reference")
    b = quantize.sensitivity(net, sparsities=(0.5,), backend="reference")
    assert a.num_samples == GENERATED_SAMPLES and "generated inputs" in a.data
    assert [c.values for c in a.layers] == [c.values for c in b.layers]
    feeds = [net.random_inputs(seed=i) for i in range(GENERATED_SAMPLES)]
    want = reference_sqnr(net, quantize.prune(net, per_layer={"mm": 0.5}), feeds)
    assert a.curve("mm").values[0] == pytest.approx(want, abs=1e-3)  # batched: float32 sums differ


def test_evaluate_callback_scores_each_pruned_model(net):
    calls = []

    def evaluate(model):  # a score any pruning lowers: the kept weight energy of mm and fc
        calls.append(model)
        return float(sum(np.sum(np.square(model.graph.values[WEIGHTS[k]].data))
                         for k in ("mm", "fc")))

    r = quantize.sensitivity(net, evaluate=evaluate, sparsities=(0.5, 0.8), layers=["mm", "fc"])
    assert r.metric == "evaluate" and len(calls) == 1 + 2 * 2
    assert calls[0] is net
    assert r.baseline == pytest.approx(evaluate(net))
    for curve in r.layers:
        for s, value in zip((0.5, 0.8), curve.values):
            w = net.graph.values[WEIGHTS[curve.name]].data.astype(np.float64)
            k = int(math.floor(s * w.size + 0.5))
            lost = np.sum(np.sort(np.square(w).ravel())[:k])
            assert value == pytest.approx(r.baseline - lost, rel=1e-6)
    harm = r.harm(r.curve("mm"))
    assert np.all(harm >= 0) and np.all(np.diff(harm) >= 0)
    with pytest.raises(ArgumentError, match=r"evaluate\(\) must return a number"):
        quantize.sensitivity(net, evaluate=lambda m: "good", layers=["mm"])
    with pytest.raises(ArgumentError, match=r"evaluate\(\) returned nan for the unpruned model"):
        quantize.sensitivity(net, evaluate=lambda m: float("nan"), layers=["mm"])


def synthetic(curves: dict, sizes: dict, levels=(0.25, 0.5, 0.75, 0.9)) -> SensitivityReport:
    layers = [LayerCurve(name, "Conv", sizes[name], list(values)) for name, values in curves.items()]
    return SensitivityReport("sqnr", tuple(levels), layers, math.inf, "test", 1, "reference", 0.0)


def test_propose_meets_the_budget_exactly_and_spares_sensitive_layers():
    base = np.array([30.0, 22.0, 14.0, 8.0])
    # a, b, c, d: equally big, each 6 dB more sensitive than the previous at every level
    curves = {name: base - 6.0 * i for i, name in enumerate("abcd")}
    sizes = dict.fromkeys("abcd", 1000)
    r = synthetic(curves, sizes)
    previous = None
    for budget in (0.1, 0.3, 0.5, 0.7, 0.9):
        prop = r.propose(budget)
        removed = sum(round(prop[k] * sizes[k]) for k in prop)
        assert removed == int(math.floor(budget * 4000 + 0.5)), budget
        assert prop["a"] >= prop["b"] >= prop["c"] >= prop["d"], (budget, prop)
        assert all(0.0 <= v <= 0.9 for v in prop.values())
        if previous is not None:  # a larger budget never prunes a layer less
            assert all(prop[k] >= previous[k] for k in prop)
        previous = prop
    assert r.propose(0.3)["a"] > r.propose(0.3)["d"]


def test_propose_with_unequal_sizes_and_an_exact_layer():
    r = synthetic({"big": [20, 15, 10, 5], "small": [20, 15, 10, 5],
                   "exact": [math.inf, math.inf, math.inf, math.inf]},
                  {"big": 5000, "small": 300, "exact": 700})
    prop = r.propose(0.5)
    assert prop["exact"] == pytest.approx(0.9)  # pruning it costs nothing: as far as measured
    assert sum(round(prop[k] * n) for k, n in (("big", 5000), ("small", 300), ("exact", 700))) \
        == 3000
    with pytest.raises(ArgumentError, match=r"budget 0.95 is above the largest measured "
                                            r"sparsity 0.9"):
        r.propose(0.95)
    with pytest.raises(ArgumentError, match=r"budget must be a number in \[0, 1\), got 1.5"):
        r.propose(1.5)


def test_propose_takes_a_small_layer_past_grid_steps_that_remove_nothing():
    """50 weights: a 1 % step is half a weight, so some steps remove none; the walk must
    step over them to the robust small layer's next weight, not stop there."""
    r = synthetic({"tiny": [40.0, 40.0, 40.0, 40.0], "big": [10.0, 8.0, 6.0, 4.0]},
                  {"tiny": 50, "big": 10000})
    prop = r.propose(40 / 10050)
    assert prop == {"tiny": 0.8, "big": 0.0}


def test_propose_with_levels_finer_than_the_grid():
    r = synthetic({"a": [30.0], "b": [10.0]}, {"a": 1000, "b": 1000}, levels=(0.004,))
    assert r.propose(0.002) == {"a": 0.004, "b": 0.0}  # 4 of 2000, all from the robust layer
    assert r.propose(0.004) == {"a": 0.004, "b": 0.004}  # no layer beyond its measured level


def test_proposal_feeds_prune_and_reaches_the_budget(net, report):
    prop = report.propose(0.6)
    pruned = quantize.prune(net, per_layer=prop)
    total = sum(c.params for c in report.layers)
    zeros = sum(int(np.count_nonzero(pruned.graph.values[WEIGHTS[c.name]].data == 0))
                for c in report.layers)
    assert zeros == int(math.floor(0.6 * total + 0.5))


def test_plot_table_and_dict(report, tmp_path):
    path = report.plot(tmp_path / "sensitivity.png")
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    import matplotlib.pyplot as plt

    image = plt.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 400
    text = report.table()
    assert "output SQNR (dB)" in text and "30%" in text and "90%" in text
    for curve in report.layers:
        assert curve.name in text
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["sparsities"] == list(LEVELS) and d["baseline"] is None  # inf as null
    assert [layer["name"] for layer in d["layers"]] == [c.name for c in report.layers]
    assert d["layers"][0]["values"] == pytest.approx(report.layers[0].values)


def test_progress_bar_counts_layers_times_levels(net, data, capsys):
    quantize.sensitivity(net, data, sparsities=(0.5, 0.9), backend="reference", progress=True)
    err = capsys.readouterr().err
    assert "sensitivity [" in err and "4/4" in err  # 2 layers x 2 levels
    quantize.sensitivity(net, data, sparsities=(0.5, 0.9), backend="reference")
    assert capsys.readouterr().err == ""  # not a terminal: no bar by default


def test_plot_of_an_evaluate_report(tmp_path):
    r = SensitivityReport("evaluate", (0.5, 0.9), [LayerCurve("a", "Gemm", 10, [0.9, 0.5]),
                                                   LayerCurve("b", "Conv", 20, [0.95, None])],
                          0.97, "evaluate()", 0, "reference", 0.0)
    path = r.plot(str(tmp_path / "eval.png"))
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert "0.95" in r.table() and "-" in r.table().splitlines()[-1]


@pytest.mark.parametrize("kwargs, message", [
    ({"sparsities": ()}, r"sparsities must not be empty"),
    ({"sparsities": (0.0, 0.5)}, r"sparsities must be in \(0, 1\)"),
    ({"sparsities": (0.5, 1.0)}, r"sparsities must be a number in \[0, 1\), got 1.0"),
    ({"sparsities": 0.5}, r"sparsities must be a list of numbers"),
    ({"evaluate": 3}, r"evaluate must be a function"),
    ({"evaluate": len, "data": [{}]}, r"give data .* or evaluate, not both"),
    ({"layers": ["nope"]}, r"layers names 'nope', which is not a node"),
    ({"layers": ["flatten"]}, r"layers names 'flatten' \(Flatten\), which is not a"),
    ({"exclude": ["pw2", "mm"]}, r"no layer to measure"),
    ({"num_samples": 0}, r"num_samples must be an integer >= 1"),
    ({"backend": "gpu"}, r"backend must be auto, runtime or reference"),
])
def test_bad_options(net, kwargs, message):
    with pytest.raises(ArgumentError, match=message) as info:
        quantize.sensitivity(net, **kwargs)
    assert "\n" not in str(info.value) and str(info.value).startswith("sensitivity(): ")


def test_zoo_mobilenet_on_held_out_images():
    """On a trained model and real images: the later 1x1 convs of digits_mobilenetv2
    are measured on the runtime, and propose(0.5) pruned through prune() zeroes half of
    their weights."""
    model = mobconv.convert(os.path.join(ZOO, "digits_mobilenetv2.onnx"))
    images = np.load(os.path.join(ZOO, "digits_heldout.npz"))["images"][:32]
    feeds = [{"input": images[i:i + 1]} for i in range(len(images))]
    r = quantize.sensitivity(model, feeds, sparsities=(0.5, 0.9))
    names = [c.name for c in r.layers]
    assert len(names) == 13 and all(c.op == "Conv" for c in r.layers)
    for curve in r.layers:  # more pruning, more output error
        assert math.isfinite(curve.values[0]) and curve.values[0] > curve.values[1]
    prop = r.propose(0.5)
    pruned = quantize.prune(model, per_layer=prop)
    total = sum(c.params for c in r.layers)
    layers = {l.name: l for l in weight_layers(pruned.graph)}
    zeros = sum(int(np.count_nonzero(pruned.graph.values[layers[n].weight].data == 0))
                for n in names)
    assert zeros == int(math.floor(0.5 * total + 0.5))
