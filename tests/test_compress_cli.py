"""`mobconv compress`: each compression option and their fixed order (the file equals the
Python API's result, byte for byte), the summary, --report (atomic, proposal.json fed back
with --per-layer), composition with `mobconv quantize` in both orders, and bad input: one
line, exit 2 or 1, no output file, no temporary file or report folder left behind."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import mobconv
from mobconv import quantize
from mobconv.cli.main import main

ROOT = Path(__file__).parent.parent


def _net(path, reshape: bool = False, seed: int = 0) -> str:
    """x[N,3,8,8] -> conv1 3x3 (16) -> conv2 1x1 (64) -> conv3 3x3 (32) -> GAP -> fc1 (64)
    -> fc2 (10), Relu between; layers of 1024+ weights (prune's default) and 1x1/FC ones
    (low-rank). reshape=True: conv3 feeds a Reshape to a fixed [1, 2048] (its channel count
    is baked into the shape) and fc1 reads that."""
    rng = np.random.default_rng(seed)
    inits = []

    def const(name, array, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def w(name, *shape):
        fan_in = int(np.prod(shape[1:]))
        return const(name, rng.standard_normal(shape) * np.sqrt(2.0 / fan_in))

    def b(name, n):
        return const(name, rng.normal(0, 0.1, n))

    nodes = [
        helper.make_node("Conv", ["x", w("w1", 16, 3, 3, 3), b("b1", 16)], ["c1"], pads=[1] * 4,
                         name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", w("w2", 64, 16, 1, 1), b("b2", 64)], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", w("w3", 32, 64, 3, 3), b("b3", 32)], ["c3"], pads=[1] * 4,
                         name="conv3"),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
    ]
    if reshape:
        nodes.append(helper.make_node("Reshape", ["r3", const("shape", [1, 2048], np.int64)],
                                      ["flat"], name="reshape"))
        fc1_in = 2048
    else:
        nodes += [helper.make_node("GlobalAveragePool", ["r3"], ["gap"], name="gap"),
                  helper.make_node("Flatten", ["gap"], ["flat"], name="flatten")]
        fc1_in = 32
    nodes += [
        helper.make_node("Gemm", ["flat", w("wf1", 64, fc1_in), b("bf1", 64)], ["f1"], transB=1,
                         name="fc1"),
        helper.make_node("Relu", ["f1"], ["rf1"], name="relu4"),
        helper.make_node("Gemm", ["rf1", w("wf2", 10, 64), b("bf2", 10)], ["logits"], transB=1,
                         name="fc2"),
    ]
    batch = 1 if reshape else "N"
    graph = helper.make_graph(
        nodes, "compress_cli_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])], inits)
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("ccli")
    mobconv.convert(_net(d / "net.onnx")).save(d / "net.mob")
    (d / "data").mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        np.save(d / "data" / f"s{i}.npy", rng.standard_normal((1, 3, 8, 8)).astype(np.float32))
    return d


def cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leftovers(directory) -> list:
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith(".mobconv-"))


def api_bytes(path, *steps) -> bytes:
    """The Python API applied in the given order: what the command must write."""
    model = mobconv.load(path)
    for func, *args in steps:
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        model = getattr(quantize, func)(model, *args, **kwargs, progress=False)
    return model.to_bytes()


# ---- each option, and the order ---------------------------------------------------------


def test_prune_equals_the_api_and_prints_the_summary(work, capsys):
    out = work / "p.mob"
    code, stdout, stderr = cli(capsys, "compress", work / "net.mob", "--prune", "0.5", "-o", out)
    assert code == 0, stderr
    assert stderr == ""
    assert out.read_bytes() == api_bytes(work / "net.mob", ("prune", 0.5))
    assert out.stat().st_size < (work / "net.mob").stat().st_size
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith(f"Compressed {work / 'net.mob'} -> {out} in ")
    assert lines[-1].endswith(": prune 0.5.")
    # the per-layer table: the pruned layers' sparsity, then totals and the outputs' SQNR
    conv3 = next(line for line in lines if line.strip().startswith("conv3 "))
    assert "Conv" in conv3 and "%" in conv3
    model = mobconv.load(out)
    w3 = model.graph.values[next(n for n in model.graph.nodes if n.name == "conv3").inputs[1]]
    assert w3.storage is not None and w3.storage.kind == "sparse"
    assert f"{100 * np.mean(w3.data == 0):.1f}%" in conv3
    totals = next(line for line in lines if line.startswith("file "))
    before, after = (work / "net.mob").stat().st_size, out.stat().st_size
    assert f"({after / before:.2f}x)" in totals and "params" in totals and "MACs" in totals
    sqnr = next(line for line in lines if line.startswith("outputs vs "))
    assert "8 random inputs" in sqnr and "logits SQNR " in sqnr and "top-1 agreement" in sqnr


def test_options_compose_in_the_documented_order(work, capsys):
    """prune-channels -> low-rank -> prune -> cluster, whatever the order on the line."""
    out = work / "all.mob"
    code, stdout, stderr = cli(capsys, "compress", work / "net.mob", "--cluster", "16",
                               "--prune", "0.5", "--low-rank", "0.95", "--prune-channels", "0.25",
                               "-o", out, "-q")
    assert code == 0, stderr
    expected = api_bytes(work / "net.mob", ("prune_channels", 0.25), ("low_rank", 0.95),
                         ("prune", 0.5), ("cluster", 16))
    assert out.read_bytes() == expected
    assert ": prune-channels 0.25 (l1) -> low-rank energy 0.95 -> prune 0.5 -> cluster 16." in stdout


@pytest.mark.parametrize("args, steps", [
    (("--prune-channels", "0.3"), [("prune_channels", 0.3)]),
    (("--cluster", "16"), [("cluster", 16)]),
    (("--rank", "4"), [("low_rank", {"rank": 4})]),
])
def test_each_option_equals_the_api(work, capsys, args, steps):
    out = work / "each.mob"
    code, _, stderr = cli(capsys, "compress", work / "net.mob", *args, "-o", out)
    assert code == 0, stderr
    assert out.read_bytes() == api_bytes(work / "net.mob", *steps)
    assert out.stat().st_size < (work / "net.mob").stat().st_size


def test_onnx_source_and_default_output(work, capsys, tmp_path):
    src = tmp_path / "net.onnx"
    src.write_bytes((work / "net.onnx").read_bytes())
    code, _, stderr = cli(capsys, "compress", src, "--prune", "0.5", "--data", work / "data")
    assert code == 0, stderr
    out = tmp_path / "net.compressed.mob"
    assert out.read_bytes() == api_bytes(work / "net.mob", ("prune", 0.5))


def test_caffe_source(capsys, tmp_path):
    caffe = ROOT / "model_zoo" / "caffe" / "digits"
    proto, weights = caffe / "deploy.prototxt", caffe / "digits.caffemodel"
    out = tmp_path / "digits.k16.mob"
    code, _, stderr = cli(capsys, "compress", proto, weights, "--cluster", "16", "-o", out)
    assert code == 0, stderr
    expected = quantize.cluster(mobconv.convert(str(proto), caffemodel=str(weights)), 16,
                                progress=False)
    assert out.read_bytes() == expected.to_bytes()
    code, _, stderr = cli(capsys, "compress", weights, proto, "--cluster", "16", "-o", out)
    one_line(code, stderr, 2, "the arguments are swapped", f"mobconv compress {proto} {weights}")
    code, _, stderr = cli(capsys, "compress", proto, "--cluster", "16", "-o", out)
    one_line(code, stderr, 2, "no caffemodel given")


def test_outputs_error_is_measured_on_data(work, capsys):
    """The summary's SQNR is the compressed model's outputs against the input model's on
    --data (recomputed here with numpy)."""
    out = work / "d.mob"
    code, stdout, stderr = cli(capsys, "compress", work / "net.mob", "--cluster", "4", "-o", out,
                               "--data", work / "data", "--num-samples", "5")
    assert code == 0, stderr
    before, after = mobconv.load(work / "net.mob"), mobconv.load(out)
    ref, got = [], []
    for f in sorted((work / "data").iterdir())[:5]:
        x = {"x": np.load(f)}
        ref.append(before.run(x, backend="reference")["logits"])
        got.append(after.run(x, backend="reference")["logits"])
    ref, got = np.concatenate(ref).astype(np.float64), np.concatenate(got).astype(np.float64)
    sqnr = 10 * np.log10((ref ** 2).sum() / ((ref - got) ** 2).sum())
    line = next(line for line in stdout.splitlines() if line.startswith("outputs vs "))
    assert f"5 sample(s) of {work / 'data'}" in line
    assert f"logits SQNR {sqnr:.1f} dB" in line, (line, sqnr)


# ---- --report ---------------------------------------------------------------------------


def test_report_and_proposal_round_trip(work, capsys, tmp_path):
    out, report = tmp_path / "r.mob", tmp_path / "report"
    code, stdout, stderr = cli(capsys, "compress", work / "net.mob", "--prune", "0.5", "-o", out,
                               "--data", work / "data", "--report", report)
    assert code == 0, stderr
    assert sorted(os.listdir(report)) == ["proposal.json", "sensitivity.png", "summary.json",
                                          "table.txt"]
    assert leftovers(tmp_path) == []
    assert (report / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["version"] == 1 and summary["steps"] == ["prune 0.5"]
    assert summary["file_bytes"]["after"] == out.stat().st_size
    assert summary["file_bytes"]["before"] == (work / "net.mob").stat().st_size
    layers = {row["name"]: row for row in summary["layers"]}
    assert set(layers) == {"conv1", "conv2", "conv3", "fc1", "fc2"}
    assert layers["conv3"]["stored_bytes_after"] < layers["conv3"]["stored_bytes_before"]
    assert summary["outputs"]["samples"] == 8 and summary["sensitivity"]
    assert (report / "table.txt").read_text().strip() in stdout
    # the proposal is {layer: sparsity} for the same budget; --per-layer reads it back
    proposal = json.loads((report / "proposal.json").read_text())
    assert proposal and all(0 <= v < 1 for v in proposal.values())
    again = tmp_path / "again.mob"
    code, _, stderr = cli(capsys, "compress", work / "net.mob", "--per-layer",
                          report / "proposal.json", "-o", again)
    assert code == 0, stderr
    model = quantize.prune(mobconv.load(work / "net.mob"), per_layer=proposal, progress=False)
    assert again.read_bytes() == model.to_bytes()
    # a second report into the same folder without --prune: no stale plot is left
    code, _, stderr = cli(capsys, "compress", work / "net.mob", "--cluster", "16", "-o", out,
                          "--report", report)
    assert code == 0, stderr
    assert sorted(os.listdir(report)) == ["summary.json", "table.txt"]


def test_report_sensitivity_follows_exclude(work, capsys, tmp_path):
    report = tmp_path / "report"
    code, _, stderr = cli(capsys, "compress", work / "net.mob", "--prune", "0.5", "--exclude",
                          "conv3", "-o", tmp_path / "o.mob", "--report", report)
    assert code == 0, stderr
    summary = json.loads((report / "summary.json").read_text())
    measured = {layer["name"] for layer in summary["sensitivity"]["layers"]}
    assert measured and "conv3" not in measured
    assert "conv3" not in json.loads((report / "proposal.json").read_text())
    layers = {row["name"]: row for row in summary["layers"]}
    assert layers["conv3"]["sparsity"] == 0.0


def test_report_failure_leaves_nothing(work, capsys, tmp_path, monkeypatch):
    from mobconv.quantize import compress_report

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compress_report.json, "dumps", broken)
    out, report = tmp_path / "x.mob", tmp_path / "report"
    code, _, stderr = cli(capsys, "compress", work / "net.mob", "--prune", "0.5", "-o", out,
                          "--report", report)
    assert code == 1
    assert stderr.count("\n") == 1 and "No space left on device" in stderr and str(report) in stderr
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("stage", ["before-rename", "after-rename"])
def test_sigterm_while_writing(work, tmp_path, stage):
    """Interrupted before the model's rename: nothing (no model, no report, no temporary
    file); after it: the model is complete and the report, not yet moved, is not there."""
    out, report = tmp_path / "s.mob", tmp_path / "report"
    env = dict(os.environ, MOBCONV_TEST_PAUSE_AT=stage, MOBCONV_TEST_PAUSE_SECONDS="30")
    proc = subprocess.Popen([sys.executable, "-m", "mobconv", "compress", str(work / "net.mob"),
                             "--prune", "0.5", "-o", str(out), "--report", str(report)],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + 120
    line = ""
    while "paused at" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert not report.exists()
    if stage == "before-rename":
        assert sorted(os.listdir(tmp_path)) == []
        assert f"{out}, {report} were not written" in err
    else:
        assert out.read_bytes() == api_bytes(work / "net.mob", ("prune", 0.5))
        assert leftovers(tmp_path) == []
        assert f"after {out} was written completely; {report} was not written" in err


# ---- with `mobconv quantize` ------------------------------------------------------------


def _sqnr(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(10 * np.log10((a ** 2).sum() / ((a - b) ** 2).sum()))


@pytest.mark.parametrize("first", ["compress", "quantize"])
def test_composes_with_quantize_both_orders(work, capsys, tmp_path, first):
    mid, out = tmp_path / "mid.mob", tmp_path / "out.mob"
    compress = ["compress", "--prune", "0.5", "--cluster", "16", "-q"]
    quant = ["quantize", "--calib", work / "data", "-q"]
    a, b = (compress, quant) if first == "compress" else (quant, compress)
    code, _, stderr = cli(capsys, a[0], work / "net.mob", *a[1:], "-o", mid)
    assert code == 0, stderr
    code, _, stderr = cli(capsys, b[0], mid, *b[1:], "-o", out)
    assert code == 0, stderr
    float_model, model = mobconv.load(work / "net.mob"), mobconv.load(out)
    # int8 weights, still sparse and clustered: smaller than int8 alone
    int8_alone = quantize.quantize(float_model, str(work / "data"), progress=False)
    assert out.stat().st_size < len(int8_alone.to_bytes())
    w = model.graph.values[next(n for n in model.graph.nodes if n.name == "conv3").inputs[1]]
    assert w.dtype == "int8" and w.storage is not None
    assert np.mean(w.data == 0) >= 0.3 and len(np.unique(w.data)) <= 16
    x = {"x": np.stack([np.load(f)[0] for f in sorted((work / "data").iterdir())])}
    ref = float_model.run(x, backend="reference")["logits"]
    for backend in ("reference", "runtime"):
        assert _sqnr(ref, model.run(x, backend=backend)["logits"]) > 5


# ---- bad input ---------------------------------------------------------------------------


def one_line(code, stderr, exit_code, *fragments):
    assert code == exit_code, stderr
    assert stderr.startswith("mobconv: error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, (fragment, stderr)


@pytest.mark.parametrize("args, fragments", [
    (["--prune", "1.5"], ["--prune 1.5", "[0, 1)"]),
    (["--prune", "-0.1"], ["--prune -0.1", "[0, 1)"]),
    (["--prune", "half"], ["--prune", "invalid number: 'half'"]),
    (["--prune-channels", "1"], ["--prune-channels 1", "(0, 1)"]),
    (["--cluster", "300"], ["--cluster 300", "2..256"]),
    (["--cluster", "1"], ["--cluster 1", "2..256"]),
    (["--low-rank", "0"], ["--low-rank 0", "(0, 1]"]),
    (["--low-rank", "1.5"], ["--low-rank 1.5", "(0, 1]"]),
    (["--rank", "0"], ["--rank 0", "positive"]),
    (["--rank", "4", "--low-rank", "0.9"], ["--low-rank 0.9 --rank 4", "give one of them"]),
    ([], ["give at least one of --prune S, --prune-channels F, --cluster K, --low-rank E"]),
    (["--criterion", "l1", "--prune", "0.5"], ["--criterion l1", "--prune-channels only"]),
    (["--prune", "0.5", "--num-samples", "4"], ["--num-samples 4", "--data only"]),
    (["--prune", "0.5", "--exclude", "nope"], ["--exclude nope", "no node 'nope'"]),
    (["--prune", "0.5", "--exclude", "gap"], ["--exclude", "'gap'", "GlobalAveragePool"]),
    (["--prune", "0.5", "--data", "/nonexistent/data"], ["--data /nonexistent/data", "no such"]),
    (["--prune", "0.5", "--input-shape", "x=1,3,8,8"], ["--input-shape", "already a .mob"]),
])
def test_bad_options_write_nothing(work, capsys, tmp_path, args, fragments):
    out = tmp_path / "bad.mob"
    code, stdout, stderr = cli(capsys, "compress", work / "net.mob", *args, "-o", out)
    one_line(code, stderr, 2, *fragments)
    assert stdout == "" and sorted(os.listdir(tmp_path)) == []


def test_bad_data_writes_nothing(work, capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "a.npy", np.zeros((1, 3, 5, 5), np.float32))
    out = tmp_path / "o.mob"
    code, _, stderr = cli(capsys, "compress", work / "net.mob", "--prune", "0.5", "--data", data,
                          "-o", out)
    one_line(code, stderr, 2, "a.npy")
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_bad_per_layer_files(work, capsys, tmp_path):
    out = tmp_path / "o.mob"
    cases = [("[1, 2]", "expected a JSON object"), ("{", "not a JSON file"),
             ('{"conv3": 1.5}', "layer 'conv3': sparsity 1.5"),
             ('{"nope": 0.5}', "has no node 'nope'"),
             ('{"gap": 0.5}', "'gap'")]
    for text, fragment in cases:
        path = tmp_path / "layers.json"
        path.write_text(text)
        code, _, stderr = cli(capsys, "compress", work / "net.mob", "--per-layer", path, "-o", out)
        one_line(code, stderr, 2, "--per-layer", fragment)
        assert not out.exists()
    code, _, stderr = cli(capsys, "compress", work / "net.mob", "--per-layer", tmp_path / "no.json")
    one_line(code, stderr, 2, "--per-layer", "no such file")


def test_bad_files(work, capsys, tmp_path):
    code, _, stderr = cli(capsys, "compress", tmp_path / "missing.mob", "--prune", "0.5")
    one_line(code, stderr, 1, "missing.mob")
    copy = tmp_path / "m.mob"
    copy.write_bytes((work / "net.mob").read_bytes())
    code, _, stderr = cli(capsys, "compress", copy, "--prune", "0.5", "-o", copy)
    one_line(code, stderr, 2, f"-o {copy}", "would overwrite the input file")
    assert copy.read_bytes() == (work / "net.mob").read_bytes()
    (tmp_path / "rep").write_text("a file")
    code, _, stderr = cli(capsys, "compress", copy, "--prune", "0.5", "-o", tmp_path / "o.mob",
                          "--report", tmp_path / "rep")
    one_line(code, stderr, 2, "--report", "not a directory")
    code, _, stderr = cli(capsys, "compress", copy, "--prune", "0.5", "-o",
                          tmp_path / "r2" / "summary.json", "--report", tmp_path / "r2")
    one_line(code, stderr, 2, "is the report's summary.json")
    assert sorted(os.listdir(tmp_path)) == ["m.mob", "rep"]


def test_channels_a_reshape_depends_on(capsys, tmp_path):
    mobconv.convert(_net(tmp_path / "r.onnx", reshape=True)).save(tmp_path / "r.mob")
    out = tmp_path / "o.mob"
    code, _, stderr = cli(capsys, "compress", tmp_path / "r.mob", "--prune-channels", "0.3",
                          "-o", out)
    one_line(code, stderr, 2, "conv3", "Reshape")
    assert not out.exists()
    # excluding the layer the Reshape depends on makes it work
    code, _, stderr = cli(capsys, "compress", tmp_path / "r.mob", "--prune-channels", "0.3",
                          "--exclude", "conv3", "-o", out)
    assert code == 0, stderr


def test_cluster_int8_with_more_clusters_than_values(work, capsys, tmp_path):
    """An int8 layer with fewer distinct values than --cluster cannot be clustered."""
    from mobconv.quantize._compress_common import weight_layers

    int8 = tmp_path / "int8.mob"
    code, _, stderr = cli(capsys, "quantize", work / "net.mob", "--calib", work / "data",
                          "-o", int8, "-q")
    assert code == 0, stderr
    graph = mobconv.load(int8).graph
    counts = {layer.name: len(np.unique(graph.values[layer.weight].data))
              for layer in weight_layers(graph) if layer.dtype == "int8"}
    fewest = min(counts, key=counts.get)
    assert counts[fewest] < 200, counts
    out = tmp_path / "o.mob"
    code, _, stderr = cli(capsys, "compress", int8, "--cluster", "200", "-o", out)
    one_line(code, stderr, 2, repr(fewest), "distinct int8", "200")
    assert not out.exists()
    code, _, stderr = cli(capsys, "compress", int8, "--cluster", "16", "-o", out)  # a palette of int8
    assert code == 0, stderr
    graph = mobconv.load(out).graph
    for layer in weight_layers(graph):
        assert layer.dtype == "int8" and len(np.unique(graph.values[layer.weight].data)) <= 16


def test_help_has_examples():
    proc = subprocess.run([sys.executable, "-m", "mobconv", "compress", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and "mobconv compress model.mob --prune 0.5" in proc.stdout
    assert "--prune-channels, --low-rank, --prune,\n--cluster" in proc.stdout or \
        "--prune-channels, --low-rank, --prune, --cluster" in proc.stdout.replace("\n", " ")
