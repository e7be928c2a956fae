"""`mobconv compare model.mob frozen.pb` (and a SavedModel directory): layer by layer
against TensorFlow's own execution (mobconv/frontends/tensorflow/tf_runner.py).

The model is tests/tf_models.py's dilated detector head (convolutions, BatchNorm,
atrous convs, Pad, Concat, two 4-D outputs): after the transpose pass its
intermediate values are NCHW ("<tensor>_nchw", "<node>/nchw"), which compare
matches to TensorFlow's NHWC tensors transposed.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import mobconv
import tf_models
from mobconv.cli.main import main
from mobconv.frontends.tensorflow.tf_runner import tensorflow_values


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    return tf_models.zoo(tmp_path_factory)


@pytest.fixture(scope="module")
def detector(zoo, tmp_path_factory):
    built = zoo.get("detector")
    mob = tmp_path_factory.mktemp("tf_compare") / "detector.mob"
    mobconv.convert(built.pb).save(str(mob))
    return built, str(mob)


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def compared_rows(text: str) -> dict:
    """tensor -> rel err of the rows that have a TensorFlow counterpart."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(>>)?\s*(\S+)\s+\S+\s+\[[^\]]*\]\s+\S+\s+(\S+)\s+\S+$", line)
        if m and m.group(3) != "-":
            rows[m.group(2)] = float(m.group(3))
    return rows


@pytest.mark.parametrize("backend", [[], ["--reference"]])
def test_compare_matches_tensorflow_layer_by_layer(detector, capsys, backend):
    built, mob = detector
    code, out, err = cli(capsys, "compare", mob, built.pb, *backend)
    assert code == 0, out + err
    assert "(TensorFlow)" in out.splitlines()[0]
    rows = compared_rows(out)
    model = mobconv.load(mob)
    convs = [n for n in model.graph.nodes if n.op == "Conv"]
    # every Conv output (NCHW inside the .mob) was matched with TensorFlow's tensor
    assert {n.outputs[0] for n in convs} <= set(rows), sorted(rows)
    assert len(convs) == 6 and all(err <= 1e-5 for err in rows.values()), rows
    assert "PASS Identity:" in out and "PASS Identity_1:" in out


def test_compare_finds_the_first_wrong_layer(detector, capsys, tmp_path):
    """One weight of the third convolution changed: compare marks that layer first."""
    built, mob = detector
    model = mobconv.load(mob)
    conv = [n for n in model.graph.nodes if n.op == "Conv"][2]
    weights = model.graph.values[conv.inputs[1]]
    weights.data = weights.data.copy()
    weights.data.flat[0] += 0.5
    bad = tmp_path / "bad.mob"
    model.save(str(bad))
    code, out, _ = cli(capsys, "compare", bad, built.pb)
    assert code == 1
    first = [line for line in out.splitlines() if line.lstrip().startswith(">>")]
    assert len(first) == 1 and first[0].split()[1] == conv.outputs[0], out
    assert f"first divergence: {conv.outputs[0]!r}" in out
    assert "FAIL Identity" in out
    earlier = compared_rows(out.split(conv.outputs[0])[0])
    assert earlier and all(err <= 1e-5 for err in earlier.values())


def test_compare_saved_model(zoo, detector, capsys, tmp_path):
    built, _ = detector
    path = zoo.saved_model("detector")
    mob = tmp_path / "saved.mob"
    mobconv.convert(path).save(str(mob))
    code, out, err = cli(capsys, "compare", mob, path)
    assert code == 0, out + err
    assert len(compared_rows(out)) >= 8, out


def test_tensorflow_values_transposes_nchw_values(detector):
    """A value "<tensor>_nchw" is TensorFlow's NHWC tensor moved to channels-first;
    one with no TensorFlow tensor of its name is left out."""
    built, mob = detector
    model = mobconv.load(mob)
    x = built.inputs[1]
    names = [o for n in model.graph.nodes for o in n.outputs]
    values, note = tensorflow_values(built.pb, {"input": x}, names)
    assert note == ""
    moved = [n for n in values if n.endswith("_nchw")]
    assert moved
    ours = mobconv.load(mob).run({"input": x}, backend="reference")
    np.testing.assert_allclose(values["Identity"], built.expected[1][0], rtol=0, atol=0)
    assert values["Identity"].shape == ours["Identity"].shape == (1, 21, 21, 12)
    raw = tf_models.run_graph_def(open(built.pb, "rb").read(), {"input": x},
                                  [moved[0][:-len("_nchw")]])[0]
    np.testing.assert_array_equal(values[moved[0]], raw.transpose(0, 3, 1, 2))
    assert not any(n.endswith("to_nchw") for n in values)


def test_compare_wrong_model_is_a_usage_error(detector, zoo, capsys, tmp_path):
    built, mob = detector
    other = tmp_path / "other.pb"
    other.write_bytes(open(built.pb, "rb").read().replace(b"input", b"image"))
    code, _, err = cli(capsys, "compare", mob, other)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "'input' is no tensor of this TensorFlow graph" in lines[0], err


def test_compare_without_tensorflow_says_what_to_install(detector, capsys, monkeypatch):
    built, mob = detector
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    code, _, err = cli(capsys, "compare", mob, built.pb)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "pip install tensorflow-cpu" in lines[0], err


def test_compare_quantization_aware_graph(capsys, tmp_path):
    """The int8 .mob of a FakeQuant graph against that graph: each int8 Conv's output
    is matched with TensorFlow's FakeQuant after it (not the float tensor before, whose
    name it carries), dequantized, within one quantization step."""
    pb, mob = tmp_path / "qat.pb", tmp_path / "qat.mob"
    pb.write_bytes(tf_models.tf1_qat())
    mobconv.convert(str(pb)).save(str(mob))
    model = mobconv.load(str(mob))
    convs = [n for n in model.graph.nodes if n.op == "Conv"]
    assert len(convs) == 3 and all(model.graph.values[n.outputs[0]].quant for n in convs)
    code, out, err = cli(capsys, "compare", mob, pb)
    assert code == 0, out + err
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(>>)?\s*(\S+)\s+\S+\s+\[[^\]]*\]\s+(\S+)\s+\S+\s+\S+$", line)
        if m:
            rows[m.group(2)] = m.group(3)
    for conv in convs:
        step = max(model.graph.values[conv.outputs[0]].quant.scales)
        assert rows[conv.outputs[0]] != "-", out
        assert float(rows[conv.outputs[0]]) <= step * 1.001, (conv.outputs[0], out)
        assert f"first divergence: {conv.outputs[0]!r}" not in out
    assert "PASS logits: max abs err 0.000e+00" in out


def test_compare_keeps_tensorflow_start_up_logs_off_stderr(detector):
    """A fresh process (TensorFlow not yet imported): stdout has the table, stderr
    nothing (no absl/oneDNN start-up lines)."""
    built, mob = detector
    run = subprocess.run([sys.executable, "-m", "mobconv", "compare", mob, built.pb],
                         capture_output=True, text=True, timeout=600,
                         env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert run.returncode == 0, run.stderr
    assert "PASS Identity:" in run.stdout
    assert run.stderr == ""
