"""`mobconv quantize`: .onnx / .mob / Caffe sources, every scheme, the flags reaching the
quantizer, one-line errors with exit 2 and no output file, determinism, --report."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mobconv
from mobconv.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
import quant_core_nets as nets  # noqa: E402

ZOO = Path(__file__).parent.parent / "model_zoo"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("qcli")
    onnx_path = nets.build_cnn(d / "cnn.onnx")
    mobconv.convert(onnx_path).save(d / "cnn.mob")
    (d / "calib").mkdir()
    for i, feeds in enumerate(nets.samples(8)):
        np.save(d / "calib" / f"s{i:02d}.npy", feeds[nets.INPUT])
    return d


def cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _close_to_float(float_path, quant_path):
    f, q = mobconv.load(float_path), mobconv.load(quant_path)
    for feeds in nets.samples(3, seed=11, batch=2):
        assert nets.sqnr_db(f.run(feeds, backend="reference")[nets.OUTPUT],
                            q.run(feeds, backend="runtime")[nets.OUTPUT]) > 30


def test_onnx_source_to_int8(work, capsys):
    out = work / "a.int8.mob"
    code, stdout, stderr = cli(capsys, "quantize", work / "cnn.onnx", "-o", out, "--calib", work / "calib")
    assert code == 0, stderr
    assert stderr == ""
    line = stdout.strip().splitlines()[-1]
    assert line.startswith(f"Quantized {work / 'cnn.onnx'} -> {out} in ")
    assert ("scheme int8, method mse, per-channel weights, asymmetric activations, "
            "11 of 12 ops int8; weights 4.4 KiB float32 -> 1.2 KiB int8; file") in line
    meta = mobconv.load(out).metadata.extra
    assert meta["quantization.scheme"] == "int8" and meta["quantization.samples"] == "8"
    _close_to_float(work / "cnn.mob", out)


def test_mob_source_deterministic(work, capsys):
    outs = [work / "d1.mob", work / "d2.mob"]
    for out in outs:
        code, _, stderr = cli(capsys, "quantize", work / "cnn.mob", "-o", out, "--calib", work / "calib", "-q")
        assert code == 0, stderr
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_default_output_name(work, capsys):
    code, stdout, stderr = cli(capsys, "quantize", work / "cnn.mob", "--scheme", "int8-weights")
    assert code == 0, stderr
    assert (work / "cnn.int8w.mob").exists()
    assert "scheme int8-weights, per-channel weights; weights 4.4 KiB float32 -> 1.4 KiB int8" in stdout


def test_flags_reach_the_quantizer(work, capsys):
    out = work / "flags.mob"
    code, _, stderr = cli(capsys, "quantize", work / "cnn.mob", "-o", out, "--calib", work / "calib",
                          "--method", "percentile", "--percentile", "99.9", "--per-tensor",
                          "--symmetric-activations", "--io-dtype", "int8", "--exclude", "conv3,fc",
                          "--no-equalize", "--no-bias-correction", "--num-samples", "4")
    assert code == 0, stderr
    model = mobconv.load(out)
    meta = model.metadata.extra
    assert {k: meta[f"quantization.{k}"] for k in (
        "method", "percentile", "weights", "activations", "io_dtype", "exclude", "equalize",
        "bias_correction", "samples")} == {
        "method": "percentile", "percentile": "99.9", "weights": "per-tensor",
        "activations": "symmetric", "io_dtype": "int8", "exclude": "conv3,fc", "equalize": "false",
        "bias_correction": "false", "samples": "4"}
    assert [s.dtype for s in model.inputs] == ["int8"]


def test_fp16(work, capsys):
    out = work / "h.mob"
    code, stdout, stderr = cli(capsys, "quantize", work / "cnn.mob", "-o", out, "--scheme", "fp16")
    assert code == 0, stderr
    assert "scheme fp16; weights 4.4 KiB float32 -> " in stdout


def test_caffe_source(tmp_path, capsys):
    digits = ZOO / "caffe" / "digits"
    out = tmp_path / "digits.int8.mob"
    code, stdout, stderr = cli(capsys, "quantize", digits / "deploy.prototxt", digits / "digits.caffemodel",
                               "-o", out, "--calib", digits / "samples")
    assert code == 0, stderr
    q = mobconv.load(out)
    f = mobconv.convert(str(digits / "deploy.prototxt"), caffemodel=str(digits / "digits.caffemodel"))
    for sample in sorted((digits / "samples").iterdir()):
        x = {"data": np.load(sample)}
        want, got = f.run(x, backend="reference")["prob"], q.run(x, backend="runtime")["prob"]
        assert want.argmax() == got.argmax() and nets.sqnr_db(want, got) > 25


def test_report_is_written(work, capsys, tmp_path):
    out, rep = tmp_path / "r.mob", tmp_path / "rep"
    code, stdout, stderr = cli(capsys, "quantize", work / "cnn.mob", "-o", out, "--calib", work / "calib",
                               "--report", rep, "-q")
    assert code == 0, stderr
    assert out.exists() and (rep / "report.json").exists()
    assert stdout.strip().splitlines()[-1].endswith(f"; report in {rep}/.")


# ---- errors: one line, exit 2, nothing written ------------------------------------------


ERRORS = [
    ([], "--scheme int8 needs calibration data (--calib DIR: a folder of .npy/.npz files or "
         "images); without data use --scheme int8-weights (weight-only) or --scheme fp16"),
    (["--calib", "{calib}", "--percentile", "99"],
     "--percentile applies to --method percentile only (the method is 'mse')"),
    (["--calib", "{calib}", "--method", "percentile", "--percentile", "0"],
     "--percentile 0.0 must be a number in (0, 100], e.g. 99.99"),
    (["--calib", "{calib}", "--max-sqnr-drop", "1", "--min-sqnr", "30"],
     "--max-sqnr-drop and --min-sqnr are two budgets for the same output SQNR; give one of them"),
    (["--calib", "{calib}", "--num-samples", "0"], "--num-samples 0 must be a positive integer, e.g. 200"),
    (["--scheme", "fp16", "--calib", "{calib}"],
     "--scheme fp16 uses no calibration data (stores float16 weights: no int8 ranges); drop --calib, "
     "or use --scheme int8"),
    (["--scheme", "int8-weights", "--io-dtype", "int8"],
     "--io-dtype applies to --scheme int8 only (--scheme int8-weights stores int8 weights and "
     "computes in float: no activation ranges)"),
    (["--calib", "{work}/nope"], "--calib {work}/nope: no such file or directory"),
    (["--calib", "{calib}", "--report", "{work}/cnn.onnx"], "--report {work}/cnn.onnx: exists and is not a directory"),
    (["--scheme", "fp16", "--report", "{work}/rep"],
     "--report {work}/rep: needs --calib data (the report runs the float and the quantized model on it)"),
    (["--calib", "{calib}", "--input-shape", "x=1,3,12,12"],
     "--input-shape: {work}/cnn.mob is already a .mob model (its shapes are fixed; give the source "
     "model to change them)"),
    (["--calib", "{calib}", "--exclude", "conv9"],
     "{work}/cnn.mob: --exclude names no node of the model: 'conv9' (nodes: conv1, dw, pw, pool, "
     "conv3, concat, ...; `mobconv info` lists them)"),  # the residual Add + Relu fuse into pw
    (["--calib", "{calib}", "--method", "kl"], None),  # argparse's choices, one line
]


@pytest.mark.parametrize("args, message", ERRORS, ids=[" ".join(a)[:40] for a, _ in ERRORS])
def test_usage_errors_write_nothing(work, capsys, args, message):
    out = work / "never.mob"
    fill = lambda s: s.format(work=work, calib=work / "calib")  # noqa: E731
    code, stdout, stderr = cli(capsys, "quantize", work / "cnn.mob", "-o", out, *[fill(a) for a in args])
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("mobconv: error: ")
    if message is not None:
        assert stderr == f"mobconv: error: {fill(message)}\n"
    assert not out.exists() and stdout == ""
    assert not [p for p in os.listdir(work) if p.startswith(".mobconv-")]


@pytest.mark.parametrize("bad", ["shape", "nan"])
def test_bad_calibration_data_writes_nothing(work, tmp_path, capsys, bad):
    calib = tmp_path / "calib"
    calib.mkdir()
    x = nets.samples(1)[0][nets.INPUT]
    if bad == "shape":
        x = x[:, :, :8, :8]
    else:
        x[0, 0, 0, 0] = np.nan
    np.save(calib / "a.npy", x)
    out = tmp_path / "o.mob"
    out.write_bytes(b"old")
    code, stdout, stderr = cli(capsys, "quantize", work / "cnn.mob", "-o", out, "--calib", calib)
    assert code == 2 and stderr.count("\n") == 1 and "a.npy" in stderr
    assert out.read_bytes() == b"old"  # an existing output is left as it was


def test_source_argument_errors(work, capsys, tmp_path):
    digits = ZOO / "caffe" / "digits"
    out = tmp_path / "o.mob"
    cases = [
        ([digits / "deploy.prototxt"], f"{digits / 'deploy.prototxt'}: no caffemodel given (mobconv "
                                       f"quantize {digits / 'deploy.prototxt'} weights.caffemodel -o OUT.mob ...)"),
        ([work / "cnn.onnx", digits / "digits.caffemodel"],
         f"{digits / 'digits.caffemodel'}: a second model file is only for a Caffe .prototxt "
         f"(the model is {work / 'cnn.onnx'})"),
        ([work / "cnn.mob", "-o", work / "cnn.mob"],
         f"-o {work / 'cnn.mob'}: would overwrite the input file {work / 'cnn.mob'} (choose another output path)"),
    ]
    for args, message in cases:
        if "-o" not in args:
            args = args + ["-o", out]
        code, _, stderr = cli(capsys, "quantize", *args, "--scheme", "fp16")
        assert (code, stderr) == (2, f"mobconv: error: {message}\n")
    assert not out.exists()


def test_help_and_subprocess(work):
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-m", "mobconv", "quantize", "--help"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0 and "examples:" in done.stdout and "--calib" in done.stdout
    done = subprocess.run([sys.executable, "-m", "mobconv", "quantize", str(work / "cnn.mob"), "-o",
                           str(work / "sub.mob")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("mobconv: error: --scheme int8 needs calibration data")
    assert not (work / "sub.mob").exists()


def test_report_for_a_scheme_without_calibration(work, capsys, tmp_path):
    """--calib feeds only the report for int8-weights/fp16 (the quantizer refuses data)."""
    out, rep = tmp_path / "w.mob", tmp_path / "rep"
    code, stdout, stderr = cli(capsys, "quantize", work / "cnn.mob", "-o", out, "--scheme", "int8-weights",
                               "--calib", work / "calib", "--report", rep, "-q")
    assert code == 0, stderr
    assert (rep / "report.json").exists()
    assert "quantization.samples" not in mobconv.load(out).metadata.extra
