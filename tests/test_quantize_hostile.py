"""The quantizer against hostile input: files that are not files, data the float model
overflows on, swapped debug() arguments, a metric that returns no number. Each case
was a hang, a traceback or an internal message before; now one line, the package's
error types, nothing written."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mobconv
from mobconv import quantize
from mobconv.errors import ArgumentError, UsageError
from mobconv.quantize.data import CalibrationDataError

sys.path.insert(0, str(Path(__file__).parent))
import quant_core_nets as nets  # noqa: E402


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    d = tmp_path_factory.mktemp("qhostile")
    path = nets.build_cnn(d / "cnn.onnx")
    return d, mobconv.convert(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_calibration_fifo_refused_not_hang(cnn, tmp_path):
    """A FIFO named like an .npy file in the calibration folder blocked the header read
    forever (nobody writes to it); it is refused as not a regular file."""
    d, _ = cnn
    calib = tmp_path / "calib dir"
    calib.mkdir()
    np.save(calib / "a.npy", nets.samples(1)[0][nets.INPUT])
    os.mkfifo(calib / "p.npy")
    out = tmp_path / "out.mob"
    try:
        proc = subprocess.run([sys.executable, "-m", "mobconv.cli.main", "quantize",
                               str(d / "cnn.onnx"), "-o", str(out), "--calib", str(calib), "-q"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("mobconv quantize hung on a FIFO in the calibration folder")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "p.npy: not a regular file" in lines[0], proc.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_activation_overflow_is_a_data_error(cnn):
    """Finite inputs the float model overflows on (Conv of 3e38 -> inf): every value of an
    activation is NaN/Inf, so it has no range; this was the internal 'insert_qdq: no
    calibration range' error, now a CalibrationDataError naming the tensor."""
    _, model = cnn
    data = [{nets.INPUT: np.full(nets.SHAPE, 3e38, np.float32)}]
    with pytest.raises(CalibrationDataError) as exc:
        quantize.quantize(model, data, progress=False, bias_correction=False)
    msg = str(exc.value)
    assert "\n" not in msg and "no finite value on the calibration data" in msg
    assert "insert_qdq" not in msg


def test_debug_swapped_models_refused(cnn):
    """debug(quantized, float, ...) raised OverflowError deep in a reference op."""
    _, model = cnn
    data = nets.samples(2)
    q = quantize.quantize(model, data, progress=False)
    with pytest.raises(UsageError) as exc:
        quantize.debug(q, model, data)
    assert "float_model" in str(exc.value) and "is quantized" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_evaluate_returning_non_number(cnn):
    """evaluate() returning a string gave float()'s bare ValueError."""
    _, model = cnn
    with pytest.raises(ArgumentError) as exc:
        quantize.quantize(model, nets.samples(2), progress=False, bias_correction=False,
                          evaluate=lambda m: "good", max_drop=0.1)
    assert "evaluate() must return a number" in str(exc.value)
    # a 0-d/1-element numpy score is a number
    q = quantize.quantize(model, nets.samples(2), progress=False, bias_correction=False,
                          evaluate=lambda m: np.array([1.0]), max_drop=0.1)
    assert q.graph.metadata.extra["quantization.scheme"] == "int8"


def _cli(capsys, *args):
    from mobconv.cli.main import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_output_into_calibration_data_refused(cnn, tmp_path, capsys):
    """-o calib/s1.npy replaced a calibration sample with the .mob (and the next run read
    it as data); the --calib file itself is an input like the model."""
    d, _ = cnn
    calib = tmp_path / "calib"
    (calib / "sub").mkdir(parents=True)
    for i, feeds in enumerate(nets.samples(2)):
        np.save(calib / f"s{i}.npy", feeds[nets.INPUT])
    before = (calib / "s1.npy").read_bytes()
    for out, calib_arg in [(calib / "s1.npy", calib), (calib / "sub" / "new.NPZ", calib),
                           (calib / "s0.npy", calib / "s0.npy")]:
        code, stdout, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "-o", out, "--calib",
                                    calib_arg, "-q")
        assert code == 2, (out, stdout)
        assert len(stderr.strip().splitlines()) == 1 and f"-o {out}:" in stderr
    assert (calib / "s1.npy").read_bytes() == before
    assert sorted(p.name for p in calib.rglob("*")) == ["s0.npy", "s1.npy", "sub"]
    # a .mob next to the data is not a calibration file
    code, _, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "-o", calib / "m.mob", "--calib",
                           calib, "-q")
    assert code == 0, stderr


def test_garbage_npz_message(cnn, tmp_path, capsys):
    """A file named .npz that is no zip got numpy's 'contains pickled (object) data'."""
    d, _ = cnn
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "bad.npz").write_bytes(b"xx")
    code, _, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "-o", tmp_path / "o.mob",
                           "--calib", calib, "-q")
    assert code == 2
    assert "bad.npz: cannot be read (neither an .npy nor an .npz" in stderr
    assert "allow_pickle" not in stderr and not (tmp_path / "o.mob").exists()
    # an .npy cut short got numpy's 'mmap length is greater than file size'
    (calib / "bad.npz").unlink()
    np.save(calib / "cut.npy", np.zeros((2,) + nets.SHAPE[1:], np.float32))
    data = (calib / "cut.npy").read_bytes()
    (calib / "cut.npy").write_bytes(data[:-100])
    code, _, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "-o", tmp_path / "o.mob",
                           "--calib", calib, "-q")
    assert code == 2 and "cut.npy: cannot be read (truncated" in stderr, stderr
    assert not (tmp_path / "o.mob").exists()


def test_report_collisions_refused_before_writing(cnn, tmp_path, capsys):
    """--report DIR with a directory where table.txt goes failed after the model was
    written (exit 1, model left behind); -o DIR/report.json was overwritten by the report."""
    d, _ = cnn
    calib = tmp_path / "calib"
    calib.mkdir()
    np.save(calib / "s0.npy", nets.samples(1)[0][nets.INPUT])
    rep = tmp_path / "rep"
    (rep / "table.txt").mkdir(parents=True)
    out = tmp_path / "o.mob"
    code, _, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "-o", out, "--calib", calib,
                           "--report", rep, "-q")
    assert code == 2 and "table.txt exists and is not a regular file" in stderr
    assert not out.exists()
    (rep / "table.txt").rmdir()
    code, _, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "-o", rep / "report.json",
                           "--calib", calib, "--report", rep, "-q")
    assert code == 2 and "is the report's report.json" in stderr
    assert list(rep.iterdir()) == []


def test_model_argument_directory_or_unknown_extension(cnn, tmp_path, capsys):
    """A directory or an unknown extension as the model gave the Python API's advice
    'pass framework=...', which the command line has no way to follow."""
    d, _ = cnn
    weird = tmp_path / "model.bin"
    weird.write_bytes((d / "cnn.onnx").read_bytes())
    for model, expected in [(tmp_path, "is a directory"), (weird, "cannot tell the source framework")]:
        code, _, stderr = _cli(capsys, "quantize", model, "--scheme", "fp16", "-o", tmp_path / "o.mob")
        assert code == 2 and expected in stderr, stderr
        assert "framework=" not in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.mob").exists()


def test_float64_beyond_float32_named(cnn):
    """float64 data beyond float32's range became inf in the cast with a bare numpy
    'overflow encountered in cast' warning and 'first inf' (a value not in the file)."""
    import warnings

    _, model = cnn
    x = nets.samples(1)[0][nets.INPUT].astype(np.float64)
    x[0, 1, 2, 3] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CalibrationDataError) as exc:
            quantize.quantize(model, [{nets.INPUT: x}], progress=False)
    assert "first 1e+300 at index [0, 1, 2, 3] is beyond float32's range" in str(exc.value)


def test_num_samples_limits_the_report_of_fp16(cnn, tmp_path, capsys):
    """`--scheme fp16 --calib DIR --report R` is allowed (the data feed the report), but
    --num-samples, which limits exactly that data, was refused as unused."""
    d, _ = cnn
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, feeds in enumerate(nets.samples(4)):
        np.save(calib / f"s{i}.npy", feeds[nets.INPUT])
    rep = tmp_path / "rep"
    code, stdout, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "--scheme", "fp16", "-o",
                                tmp_path / "o.mob", "--calib", calib, "--report", rep,
                                "--num-samples", "2", "-q")
    assert code == 0, stderr
    assert "argmax flips 0/2" in stdout  # 2 samples of batch 1 reached the report
    code, _, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "--scheme", "fp16", "-o",
                           tmp_path / "p.mob", "--calib", calib, "--report", rep,
                           "--num-samples", "0", "-q")
    assert code == 2 and "--num-samples 0 must be a positive integer" in stderr
    assert not (tmp_path / "p.mob").exists()


def test_debug_num_samples_like_quantize(cnn):
    """quantize() takes num_samples=np.int64(2) and refuses True; debug() refused the
    first and let the second through to a message without 'debug()'."""
    _, model = cnn
    data = nets.samples(3)
    q = quantize.quantize(model, data, progress=False, num_samples=np.int64(2))
    report = quantize.debug(model, q, data, num_samples=np.int64(2), progress=False)
    assert "2 sample(s)" in report.table().splitlines()[0]
    with pytest.raises(UsageError, match=r"^debug\(\): num_samples must be a positive integer"):
        quantize.debug(model, q, data, num_samples=True)


def test_output_with_trailing_slash_refused_before_work(cnn, tmp_path, capsys):
    """-o newdir/ passed the output check (realpath drops the '/'), the model was saved
    as the file 'newdir', and then the summary failed: exit 1 with a file left behind."""
    d, _ = cnn
    out = f"{tmp_path / 'newdir'}/"
    code, stdout, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "--scheme", "fp16", "-o", out)
    assert code == 1 and stdout == ""
    assert stderr.strip() == (f"mobconv: error: cannot write {out}: names a directory, which does "
                              "not exist (give a file name such as model.mob)")
    assert list(tmp_path.iterdir()) == []


def test_report_inside_calibration_folder_refused(cnn, tmp_path, capsys):
    """--report DIR equal to (or under) the --calib folder wrote table.txt, report.json
    and two PNGs among the samples: the next run saw 'both arrays and images' (or, for
    an image folder, calibrated on the plots)."""
    d, _ = cnn
    calib = tmp_path / "calib"
    calib.mkdir()
    np.save(calib / "s0.npy", nets.samples(1)[0][nets.INPUT])
    for rep in (calib, calib / "rep"):
        code, _, stderr = _cli(capsys, "quantize", d / "cnn.onnx", "-o", tmp_path / "o.mob",
                               "--calib", calib, "--report", rep, "-q")
        assert code == 2 and f"--report {rep}: is inside --calib {calib}" in stderr, stderr
    assert sorted(p.name for p in calib.iterdir()) == ["s0.npy"]
    assert not (tmp_path / "o.mob").exists()


def test_caffe_path_given_to_quantize(tmp_path):
    """quantize('deploy.prototxt') converted without weights and suggested
    random_weights=True, an argument quantize() does not take; a .caffemodel path got
    'pass framework=...'."""
    for name in ("deploy.prototxt", "weights.caffemodel"):
        path = tmp_path / name
        path.write_text("")
        with pytest.raises(ArgumentError, match="a Caffe model is two files; convert it first"):
            quantize.quantize(str(path), scheme="fp16")


def test_activation_range_below_the_scale_floor_warns(cnn):
    """Inputs of magnitude 1e-20: every activation range is far below the 1e-9 scale
    floor, the int8 model outputs only the biases' effect (0 dB), and nothing said so."""
    _, model = cnn
    data = [{nets.INPUT: feeds[nets.INPUT] * np.float32(1e-20)} for feeds in nets.samples(2)]
    with pytest.warns(UserWarning, match=r"tensor 'x': calibrated range .* spans under 2 int8 "
                                         r"steps at the scale floor 1e-09"):
        quantize.quantize(model, data, progress=False, bias_correction=False)
