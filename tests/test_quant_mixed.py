"""Accuracy-budgeted mixed precision (quantize/mixed.py: fit_budget).

The quantized models come from tests/quant_debug_models.lower_by_hand, with a broken
activation range on the depthwise layer's output, so the all-int8 model misses the
budgets below and the fallback has something to find. Budgets are checked again here
by running the returned model, independently of fit_budget's own bookkeeping.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from quant_debug_models import lower_by_hand, samples, tiny_cnn  # noqa: E402

from mobconv.errors import ArgumentError, MobconvError, UsageError  # noqa: E402
from mobconv.reference.interpreter import run  # noqa: E402
from mobconv.quantize.mixed import fit_budget  # noqa: E402

MODEL = tiny_cnn()
CALIB = samples(8)
EVAL = samples(6, seed=9)
LAYERS = {"conv1", "dwconv", "gap", "flatten", "fc"}


def build(exclude):
    build.calls.append(list(exclude))
    return lower_by_hand(MODEL, CALIB, exclude=exclude, sabotage={"t2": 0.1})


WIDE = tiny_cnn(channels=32)  # weights of >= 256 elements, which fp16 storage keeps as float16


def build_wide(exclude):
    return lower_by_hand(WIDE, CALIB, exclude=exclude, sabotage={"t2": 0.1})


def output_sqnr(model, data=EVAL, float_model=MODEL):
    ref = np.concatenate([run(float_model.graph, d)["y"].ravel() for d in data]).astype(np.float64)
    got = np.concatenate([run(model.graph, d)["y"].ravel() for d in data]).astype(np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((got - ref) ** 2))


@pytest.fixture(autouse=True)
def _calls():
    build.calls = []


def test_min_sqnr_budget_met_with_the_broken_layer_in_float():
    assert output_sqnr(build([])) < 20  # the all-int8 model misses the budget
    model, report = fit_budget(MODEL, build, EVAL, min_sqnr=20)
    names = [layer.name for layer in report.layers]
    assert "dwconv" in names and names[0] == "dwconv"  # the worst layer goes first
    assert set(names) < LAYERS  # not everything
    assert output_sqnr(model) >= 20
    assert report.score_final == pytest.approx(output_sqnr(model), abs=1e-6)
    assert report.score_int8 == pytest.approx(output_sqnr(build([])), abs=1e-6)
    assert report.size_added == len(model.to_bytes()) - len(build([]).to_bytes())
    assert report.macs_float == sum(layer.macs for layer in report.layers) > 0
    assert report.latency_factor > 1.0
    assert len(build.calls) <= 2 + 2 + 3 + 3  # builds + the checks above: a binary search
    text = str(report)
    assert "dwconv" in text and "output SQNR >= 20 dB" in text


def test_budget_already_met_needs_no_fallback():
    model, report = fit_budget(MODEL, lambda ex: lower_by_hand(MODEL, CALIB, exclude=ex), EVAL,
                               min_sqnr=10)
    assert report.layers == [] and report.builds == 1
    assert output_sqnr(model) >= 10


def test_max_sqnr_drop_is_measured_from_the_int8_ceiling():
    ref = [run(MODEL.graph, d)["y"].astype(np.float64) for d in EVAL]
    lo, hi = min(0, min(r.min() for r in ref)), max(0, max(r.max() for r in ref))
    scale = (hi - lo) / 255
    zp = np.round(-128 - lo / scale)
    rounded = [(np.clip(np.round(r / scale) + zp, -128, 127) - zp) * scale for r in ref]
    allr = np.concatenate([r.ravel() for r in ref])
    ceiling = 10 * np.log10(np.sum(allr ** 2) / np.sum((np.concatenate([r.ravel() for r in rounded])
                                                         - allr) ** 2))
    model, report = fit_budget(MODEL, build, EVAL, max_sqnr_drop=25)
    assert f"int8 ceiling {ceiling:.2f} dB" in report.budget
    assert ceiling - output_sqnr(model) <= 25
    assert ceiling - output_sqnr(build([])) > 25


def test_evaluate_and_max_drop():
    def evaluate(model):  # the user's metric: minus the mean abs error of the logits vs float
        return -float(np.mean([np.abs(run(model.graph, d)["y"] - run(MODEL.graph, d)["y"]).mean()
                               for d in EVAL[:3]]))

    assert evaluate(MODEL) == 0.0 and -evaluate(build([])) > 0.05
    model, report = fit_budget(MODEL, build, EVAL, evaluate=evaluate, max_drop=0.05)
    assert -evaluate(model) <= 0.05
    assert report.metric == "evaluate()" and report.score_float == 0.0
    assert "dwconv" in [layer.name for layer in report.layers]


def test_unreachable_budget_refused_in_one_line():
    # fp16 fallback: even every layer in float16 cannot reach 150 dB
    with pytest.raises(UsageError, match="cannot meet the accuracy budget") as info:
        fit_budget(WIDE, build_wide, EVAL, min_sqnr=150, fallback="float16")
    assert "\n" not in str(info.value) and "float16" in str(info.value)
    assert info.value.exit_code == 2
    # a metric only the float model itself satisfies
    with pytest.raises(MobconvError, match="cannot meet the accuracy budget"):
        fit_budget(MODEL, build, EVAL, evaluate=lambda m: 1.0 if m is MODEL else 0.0, max_drop=0.5)


def test_float16_fallback_stores_the_fallback_weights_as_float16():
    model, report = fit_budget(WIDE, build_wide, EVAL, min_sqnr=20, fallback="float16")
    g = model.graph
    halves = {v.name for v in g.values.values() if v.data is not None and v.dtype == "float16"}
    assert halves  # the depthwise weights at least
    readers = {n.name for c in g.nodes if c.op == "Cast" and c.inputs[0] in halves
               for n in g.nodes if c.outputs[0] in n.inputs}
    assert readers and readers <= {layer.name for layer in report.layers}
    assert all(v.dtype != "float16" for v in build_wide([]).graph.values.values())
    assert output_sqnr(model, float_model=WIDE) >= 20


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "exactly one budget"),
    (dict(min_sqnr=20, max_sqnr_drop=3), "exactly one budget"),
    (dict(evaluate=lambda m: 0.0), "go together"),
    (dict(max_sqnr_drop=-1), ">= 0"),
    (dict(min_sqnr=float("nan")), "finite"),
    (dict(min_sqnr=20, fallback="int4"), "fallback must be one of"),
])
def test_arguments_checked_before_any_build(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        fit_budget(MODEL, build, EVAL, **kwargs)
    assert build.calls == []


def test_quantizer_pipeline_budget_holds_on_the_int8_model_it_returns():
    """quantize.quantize(min_sqnr=...) goes through fit_budget's pipeline form (QDQ graphs);
    the budget is checked here on the lowered int8 model the user gets."""
    from mobconv import quantize

    model = tiny_cnn(channels=32)
    calib = samples(8)
    plain = quantize.quantize(model, calib, progress=False)
    base = output_sqnr(plain, calib, float_model=model)
    budget = base + 4
    quant = quantize.quantize(model, calib, progress=False, min_sqnr=budget)
    fallback = quant.quantization_info["fallback"]
    assert fallback and quant.graph.metadata.extra["quantization.fallback"] == ",".join(fallback)
    assert output_sqnr(quant, calib, float_model=model) >= budget
    assert all(n.op in ("QuantizeLinear", "DequantizeLinear") or n.name in fallback
               or any(quant.graph.values[t].quant is not None for t in n.outputs if t)
               for n in quant.graph.nodes)


def test_rank_by_output_sensitivity():
    """rank="output": every candidate quantized alone (the rest float) ranks the layers by
    the model output's SQNR; the budget still holds and the ranking is reported."""
    model, report = fit_budget(MODEL, build, EVAL, min_sqnr=20, rank="output")
    assert output_sqnr(model) >= 20
    alone = [layer.alone_sqnr_db for layer in report.layers]
    first = report.layers[0].name
    assert first in ("dwconv", "gap") and alone == sorted(alone)  # both read the broken range
    only = build(sorted(LAYERS - {first}))  # the first layer alone in int8, measured here
    assert report.layers[0].alone_sqnr_db == pytest.approx(output_sqnr(only, EVAL[:8]), abs=1e-6)
    with pytest.raises(ArgumentError, match="rank must be one of"):
        fit_budget(MODEL, build, EVAL, min_sqnr=20, rank="random")


def test_cli_min_sqnr_prints_the_fallback_report(tmp_path, capsys):
    from mobconv import load, quantize
    from mobconv.cli.main import main

    model = tiny_cnn(channels=32)
    model.save(str(tmp_path / "f.mob"))
    (tmp_path / "calib").mkdir()
    for i, feeds in enumerate(samples(8)):
        np.save(tmp_path / "calib" / f"{i}.npy", feeds["x"])
    plain = quantize.quantize(model, samples(8), progress=False)
    budget = np.floor(output_sqnr(plain, samples(8), float_model=model) + 4) + 0.5  # "NN.5"
    code = main(["quantize", str(tmp_path / "f.mob"), "-o", str(tmp_path / "q.mob"), "--calib",
                 str(tmp_path / "calib"), "--min-sqnr", f"{budget:.1f}", "-q"])
    text = capsys.readouterr().out
    assert code == 0
    assert f"budget output SQNR >= {budget:.1f} dB" in text and "in float32" in text and "cost: size" in text
    fallback = load(str(tmp_path / "q.mob")).graph.metadata.extra["quantization.fallback"].split(",")
    assert all(f"  {name} (" in text for name in fallback)
