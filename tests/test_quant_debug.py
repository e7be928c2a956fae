"""The quantization debugger (quantize/debug.py, report.py, plots.py).

Quantized models are built by hand with the IR (tests/quant_debug_models.py), so the
numbers here do not depend on the quantizer; expected values are computed in the test
with numpy from the definitions (SQNR, cosine, clipping rate), not copied from output.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from quant_debug_models import lower_by_hand, samples, tiny_cnn  # noqa: E402

from mobconv.api import Model  # noqa: E402
from mobconv.errors import MobconvError  # noqa: E402
from mobconv.ir.graph import Graph, QuantParams  # noqa: E402
from mobconv.quantize.debug import ErrorStats, debug  # noqa: E402
from mobconv.quantize.report import LAYER_FIELDS, display_name  # noqa: E402

S, ZP = 0.02, -10  # activation parameters of the hand-made Relu model: range [-2.36, 2.74]


def relu_models():
    """float: x -> Relu -> y; int8: Q(x) -> int8 Relu (same parameters) -> DQ -> y."""
    f = Graph("relu")
    f.add_input("x", "float32", (2, 50))
    f.add_node("Relu", ["x"], ["y"], name="relu")
    f.values["y"].dtype = "float32"
    f.outputs = ["y"]
    qp = QuantParams([S], [ZP], None)
    q = Graph("relu-int8")
    q.add_input("x", "float32", (2, 50))
    q.add_constant("s", np.float32(S))
    q.add_constant("zp", np.int8(ZP))
    q.add_node("QuantizeLinear", ["x", "s", "zp"], ["x/q"], name="x/Quantize")
    q.add_value("x/q", "int8", None, quant=qp)
    q.add_node("Relu", ["x/q"], ["y/q"], name="relu")
    q.add_value("y/q", "int8", None, quant=qp)
    q.add_node("DequantizeLinear", ["y/q", "s", "zp"], ["y"], name="y/Dequantize")
    q.values["y"].dtype = "float32"
    q.outputs = ["y"]
    return Model(f), Model(q)


def fake_quant(x):
    q = np.clip(np.round(x.astype(np.float64) / S) + ZP, -128, 127)
    return (q - ZP) * S


def sqnr(ref, got):
    ref = np.concatenate([np.ravel(r) for r in ref]).astype(np.float64)
    got = np.concatenate([np.ravel(g) for g in got]).astype(np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((got - ref) ** 2))


def test_error_stats_match_the_definitions_over_several_batches():
    rng = np.random.default_rng(0)
    refs = [rng.standard_normal(7), rng.standard_normal(11)]
    gots = [r + 0.1 * rng.standard_normal(r.shape) for r in refs]
    stats = ErrorStats()
    for r, g in zip(refs, gots):
        stats.add(r, g)
    a, b = np.concatenate(refs), np.concatenate(gots)
    assert stats.sqnr_db == pytest.approx(sqnr(refs, gots), rel=1e-12)
    assert stats.cosine == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-12)
    assert stats.max_abs == pytest.approx(np.max(np.abs(a - b)))
    exact = ErrorStats()
    exact.add(a, a)
    assert exact.sqnr_db == math.inf and exact.cosine == pytest.approx(1.0)


def test_hand_made_relu_sqnr_cosine_clipping_known_answer():
    fm, qm = relu_models()
    rng = np.random.default_rng(3)
    data = [{"x": (1.5 * rng.standard_normal((2, 50))).astype(np.float32)} for _ in range(5)]
    report = debug(fm, qm, data)
    xs = [d["x"] for d in data]
    lo, hi = S * (-128 - ZP), S * (127 - ZP)

    row = report.layer("relu")
    ref = [np.maximum(x, 0) for x in xs]
    got = [np.maximum(fake_quant(x), 0) for x in xs]
    assert row.precision == "int8"
    assert row.sqnr_db == pytest.approx(sqnr(ref, got), abs=1e-6)
    a, b = np.concatenate([np.ravel(r) for r in ref]), np.concatenate([np.ravel(g) for g in got])
    assert row.cosine == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-6)
    assert row.max_abs_err == pytest.approx(np.max(np.abs(a - b)), abs=1e-6)
    assert row.clip_range == pytest.approx((lo, hi))
    assert row.clip_rate == pytest.approx(np.mean((a < lo) | (a > hi)))
    assert 0 < row.clip_rate < 0.2  # some positive values are above 2.74
    # the layer alone on float inputs: its input is the float x quantized with its own
    # parameters, which is the whole model here, so own error = accumulated error
    assert row.isolated_sqnr_db == pytest.approx(row.sqnr_db, abs=1e-9)

    inp = report.layer("x")
    allx = np.concatenate([np.ravel(x) for x in xs])
    assert inp.precision == "input"
    assert inp.sqnr_db == pytest.approx(sqnr(xs, [fake_quant(x) for x in xs]), abs=1e-6)
    assert inp.clip_rate == pytest.approx(np.mean((allx < lo) | (allx > hi)))

    out = report.output("y")
    assert out.sqnr_db == pytest.approx(row.sqnr_db, abs=1e-9)
    flips = sum(int(np.count_nonzero(np.argmax(r, 1) != np.argmax(g, 1))) for r, g in zip(ref, got))
    assert (out.argmax_flips, out.argmax_total) == (flips, 10)


def test_layers_sorted_worst_first_and_a_sabotaged_layer_shows_first():
    model = tiny_cnn()
    calib, data = samples(8), samples(3, seed=5)
    honest = debug(model, lower_by_hand(model, calib), data)
    assert honest.layers[0].name != "dwconv"  # so the check below can fail
    broken = debug(model, lower_by_hand(model, calib, sabotage={"t2": 0.1}), data)
    assert broken.layers[0].name == "dwconv"
    assert broken.layers[0].clip_rate > 0.2  # the shrunken range clips
    keys = [r.sort_key for r in broken.layers]
    assert keys == sorted(keys)
    assert {r.name for r in broken.layers} == {"x", "conv1", "dwconv", "gap", "flatten", "fc"}


def test_own_error_separates_created_from_accumulated():
    model = tiny_cnn()
    report = debug(model, lower_by_hand(model, samples(8), sabotage={"t1": 0.05}), samples(3, seed=5))
    conv1, fc = report.layer("conv1"), report.layer("fc")
    assert conv1.isolated_sqnr_db < 10  # the error is created here
    assert fc.sqnr_db < 10  # ... and carried to the classifier
    assert fc.isolated_sqnr_db > 25  # which on float inputs is fine
    assert report.layers[0].name == "conv1"


def test_fallback_layer_is_marked_float():
    model = tiny_cnn()
    report = debug(model, lower_by_hand(model, samples(8), exclude=("dwconv",)), samples(2, seed=5))
    precision = {r.name: r.precision for r in report.layers}
    assert precision == {"x": "input", "conv1": "int8", "dwconv": "float", "gap": "int8",
                         "flatten": "int8", "fc": "int8"}
    assert "float*" in report.table()


def test_weight_spread_per_channel():
    model = tiny_cnn(wide_channel=True)
    report = debug(model, lower_by_hand(model, samples(4)), samples(1, seed=5))
    w = np.abs(model.graph.values["w1"].data).reshape(8, -1).max(axis=1)
    assert report.layer("conv1").weight_spread == pytest.approx(w.max() / w.min())
    w3 = np.abs(model.graph.values["w3"].data).max(axis=1)  # Gemm transB: rows are channels
    assert report.layer("fc").weight_spread == pytest.approx(w3.max() / w3.min())
    assert report.layer("gap").weight_spread is None


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_report_dir_writes_table_json_and_pngs(tmp_path):
    model = tiny_cnn()
    out = tmp_path / "report"
    report = debug(model, lower_by_hand(model, samples(8), exclude=("gap",), sabotage={"t2": 0.1}),
                   samples(2, seed=5), report_dir=str(out))
    assert sorted(os.listdir(out)) == ["histograms.png", "report.json", "sqnr.png", "table.txt"]
    doc = json.loads((out / "report.json").read_text())
    assert doc["version"] == 1 and doc["num_samples"] == 2
    assert [entry["rank"] for entry in doc["layers"]] == list(range(1, 7))
    for entry in doc["layers"]:
        assert set(entry) == {"rank", *LAYER_FIELDS}
    assert doc["layers"][0]["name"] == "dwconv"
    assert [o["name"] for o in doc["outputs"]] == ["y"]
    assert set(doc["outputs"][0]) == {"name", "sqnr_db", "cosine", "max_abs_err", "argmax_flips",
                                      "argmax_total"}
    flat = next(e for e in doc["layers"] if e["name"] == "gap")
    assert flat["precision"] == "float"
    table = (out / "table.txt").read_text()
    assert table.splitlines()[2].split()[1] == "dwconv"  # worst first
    for name in ("sqnr.png", "histograms.png"):
        width, height = _png_size(out / name)
        assert 600 <= width <= 4000 and 200 <= height <= 6000
        assert os.path.getsize(out / name) > 10_000
    assert report.histograms  # the histograms drawn come from the debug run


def test_histograms_from_calibration_ranges_are_used():
    class Range:  # what calibration's TensorRange carries
        def __init__(self):
            self.lo, self.hi = -1.0, 1.0
            self.edges = np.linspace(-2, 2, 9)
            self.hist = np.arange(8)

    model = tiny_cnn()
    report = debug(model, lower_by_hand(model, samples(4)), samples(1, seed=5), ranges={"t1": Range()})
    counts, edges, lo, hi = report.histograms["t1"][:4]
    assert list(counts) == list(range(8)) and list(edges) == list(np.linspace(-2, 2, 9))
    assert (lo, hi) == pytest.approx(report.layer("conv1").clip_range)  # the model's actual range


def test_reader_protocol_and_sample_limit():
    model = tiny_cnn()
    quant = lower_by_hand(model, samples(4))

    class Reader:
        def __init__(self):
            self.items = iter(samples(5, seed=7))

        def get_next(self):
            return next(self.items, None)

    assert debug(model, quant, Reader()).num_samples == 5
    assert debug(model, quant, samples(5, seed=7), num_samples=2).num_samples == 2


def test_unrelated_models_refused_in_one_line():
    model = tiny_cnn()
    g = Graph("other")
    g.add_input("x", "float32", (1, 3, 8, 8))
    g.add_node("Relu", ["x"], ["z"], name="r")
    g.values["z"].dtype = "float32"
    g.outputs = ["z"]
    with pytest.raises(MobconvError, match="no tensor matches") as info:
        debug(model, Model(g), samples(1))
    assert "\n" not in str(info.value)


def test_display_names_drop_repeated_pytorch_prefixes():
    assert display_name("/features/features.3/body/body.2/body.2.0/Conv") == "/features.3/body.2.0/Conv"
    assert display_name("conv1") == "conv1"
    long = "/a" * 40
    assert len(display_name(long)) == 40 and display_name(long).endswith("/a/a")


def test_with_the_quantizer_pipeline():
    """A model from quantize.quantize: every float layer is matched through the lowering."""
    from mobconv import quantize

    model = tiny_cnn()
    quant = quantize.quantize(model, samples(8), progress=False)
    report = debug(model, quant, samples(2, seed=5))
    assert {r.name for r in report.layers} >= {"conv1", "dwconv", "gap", "fc"}
    assert all(r.precision in ("int8", "input") for r in report.layers)
    assert report.output("y").sqnr_db > 20


def test_cli_compare_quantized_mob_with_its_float_mob(tmp_path, capsys):
    from mobconv import quantize
    from mobconv.cli.main import main

    model = tiny_cnn()
    model.save(str(tmp_path / "f.mob"))
    quantize.quantize(model, samples(8), progress=False).save(str(tmp_path / "q.mob"))
    np.save(tmp_path / "x.npy", samples(1, seed=4)[0]["x"])
    for argv in (["q.mob", "f.mob"], ["f.mob", "q.mob"]):  # either order
        code = main(["compare", *[str(tmp_path / a) for a in argv], "--input", f"x={tmp_path / 'x.npy'}"])
        text = capsys.readouterr().out
        assert code == 0
        assert "worst first" in text and "own SQNR" in text
        assert {"conv1", "dwconv", "gap", "fc"} <= {line.split()[1] for line in text.splitlines()[2:8]}
        assert "argmax flips 0/1" in text or "argmax flips 1/1" in text
    code = main(["compare", str(tmp_path / "f.mob"), str(tmp_path / "f.mob")])
    err = capsys.readouterr().err
    assert code == 2 and "neither is quantized" in err and len(err.strip().splitlines()) == 1


def test_memory_does_not_grow_with_the_number_of_samples():
    """Streaming: 30 more samples add far less to the peak traced memory than keeping
    each sample's tensors would (~80 KB per sample of both models here: 2.4 MB)."""
    import gc
    import tracemalloc

    model = tiny_cnn(channels=64)
    quant = lower_by_hand(model, samples(4))

    def stream(n):
        rng = np.random.default_rng(0)
        for _ in range(n):
            yield {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}

    debug(model, quant, stream(2))  # imports and caches
    peaks = {}
    for n in (10, 40):
        gc.collect()
        tracemalloc.start()
        report = debug(model, quant, stream(n))
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report.num_samples == n
    assert peaks[40] - peaks[10] < 500_000, peaks


def test_models_given_as_paths(tmp_path):
    model = tiny_cnn()
    model.save(str(tmp_path / "f.mob"))
    lower_by_hand(model, samples(4)).save(str(tmp_path / "q.mob"))
    report = debug(str(tmp_path / "f.mob"), tmp_path / "q.mob", samples(1, seed=5))
    assert report.float_source.endswith("f.mob") and report.quant_source.endswith("q.mob")
    assert report.layers[0].name in {"x", "conv1", "dwconv", "gap", "flatten", "fc"}


def test_quantize_clamp_standing_in_for_a_relu_is_compared_after_the_clamp():
    """onnxruntime's QDQ drops a Relu before a QuantizeLinear whose zero point is qmin (the
    clamp is the Relu): the float op writing `t` then holds pre-Relu values, and only the
    quantized `t/q` approximates the float model's post-Relu `t`."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    f = Graph("f")
    f.add_input("x", "float32", (1, 3, 4, 4))
    f.add_constant("w", w)
    f.add_node("Conv", ["x", "w"], ["t"], dict(kernel_shape=[1, 1], activation="Relu"), name="conv")
    f.add_node("Flatten", ["t"], ["y"], dict(axis=1), name="flat")
    f.values["t"].dtype = f.values["y"].dtype = "float32"
    f.outputs = ["y"]

    s = 0.02
    q = Graph("q")
    q.add_input("x", "float32", (1, 3, 4, 4))
    q.add_constant("w", w)
    q.add_constant("s", np.float32(s))
    q.add_constant("zp", np.int8(-128))
    q.add_node("Conv", ["x", "w"], ["t"], dict(kernel_shape=[1, 1]), name="conv")  # no Relu
    q.add_node("QuantizeLinear", ["t", "s", "zp"], ["t/q"], name="t/Quantize")
    q.add_value("t/q", "int8", None, quant=QuantParams([s], [-128], None))
    q.add_node("Flatten", ["t/q"], ["y/q"], dict(axis=1), name="flat")
    q.add_value("y/q", "int8", None, quant=QuantParams([s], [-128], None))
    q.add_node("DequantizeLinear", ["y/q", "s", "zp"], ["y"], name="y/Dequantize")
    q.values["t"].dtype = q.values["y"].dtype = "float32"
    q.outputs = ["y"]

    report = debug(Model(f), Model(q), [{"x": rng.standard_normal((1, 3, 4, 4)).astype(np.float32)}])
    conv = report.layer("conv")
    assert conv.sqnr_db > 30 and conv.isolated_sqnr_db > 30  # rounding only, not the missing Relu
    assert conv.sqnr_db == pytest.approx(report.output("y").sqnr_db, abs=1e-9)


def test_progress_bar_on_request(capsys):
    model = tiny_cnn()
    debug(model, lower_by_hand(model, samples(4)), samples(3, seed=5), progress=True)
    err = capsys.readouterr().err
    assert "debugging" in err and "3/3" in err


def test_cli_compare_int8_mob_with_its_float_onnx(tmp_path, capsys):
    """An int8 .mob against the float .onnx it was quantized from: the debugger's table
    (a QDQ .onnx keeps the onnxruntime comparison)."""
    from mobconv import quantize
    from mobconv.cli.main import main

    src = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "onnx", "digits_resnet.onnx")
    x = np.load(os.path.join(os.path.dirname(src), "digits_heldout.npz"))["images"][:9].astype(np.float32)
    quantize.quantize(src, [{"input": x[i:i + 1]} for i in range(8)], progress=False,
                      bias_correction=False).save(str(tmp_path / "q.mob"))
    np.save(tmp_path / "x.npy", x[8:9])
    code = main(["compare", str(tmp_path / "q.mob"), src, "--input", f"input={tmp_path / 'x.npy'}"])
    text = capsys.readouterr().out
    assert code == 0 and "worst first" in text and "logits: SQNR" in text and "note: random" not in text
