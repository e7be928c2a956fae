"""What a new user trips over: every error is one line naming the file and what would be
valid, usage errors exit 2, nothing half-written, help texts explain every option, and
the output of info/run shows what a mobile engineer needs."""
import argparse
import io
import os
import stat

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mobconv.cli import info as info_cmd
from mobconv.cli import run as run_cmd
from mobconv.cli import validate as validate_cmd
from mobconv.cli.common import cli_wording, shorten
from mobconv.cli.main import COMMANDS, build_parser, main
from mobconv.ir import TestVector

from test_api import make_tiny_onnx


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, *fragments, exit_code=None):
    """The error contract: one stderr line `mobconv: error: ...`, no traceback, non-zero."""
    assert code != 0
    if exit_code is not None:
        assert code == exit_code, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mobconv: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def files_in(directory):
    return sorted(os.listdir(directory))


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def tiny_mob(tiny, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "-q")
    assert code == 0, err
    return tiny[:-5] + ".mob"


@pytest.fixture
def two_inputs_mob(tmp_path, capsys):
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])], "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    code, _, err = cli(capsys, "onnx2mob", path)
    assert code == 0, err
    return str(tmp_path / "two.mob")


# ---- usage errors: one line, exit 2 -------------------------------------------


@pytest.mark.parametrize("argv, fragments", [
    ([], ["no command given", "usage: mobconv COMMAND", "onnx2mob", "bench"]),
    (["convert", "x.onnx"], ["invalid choice: 'convert'", "onnx2mob"]),
    (["onnx2mob"], ["onnx2mob: ", "required: model", "usage: mobconv onnx2mob [options] model",
                    "mobconv onnx2mob --help"]),
    (["compare", "m.mob"], ["compare: ", "required: source"]),
    (["bench", "m.mob", "--runs", "abc"], ["bench: ", "invalid int value: 'abc'"]),
    (["info", "--bogus", "m.mob"], ["info: unrecognized arguments: --bogus", "mobconv info --help"]),
    (["-v", "info", "m.mob", "extra"], ["info: unrecognized arguments: extra"]),
    (["onnx2mob", "m.onnx", "--input-shape", "x=1,3,a", "b"], ["onnx2mob: unrecognized arguments: b"]),
])
def test_argparse_errors_are_one_line_exit_2(capsys, argv, fragments):
    code, out, err = cli(capsys, *argv)
    one_line_error(code, err, *fragments, exit_code=2)
    assert out == ""


def test_top_level_help_lists_every_command_with_a_description(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        name = command.__name__.rsplit(".", 1)[1]
        line = next((l for l in out.splitlines() if l.strip().startswith(name + " ")), None)
        assert line is not None and len(line.split(None, 1)[1]) > 10, (name, out)


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("name", [c.__name__.rsplit(".", 1)[1] for c in COMMANDS])
def test_every_option_is_explained_with_an_example(capsys, name):
    """Each option has a help text, and an example: in its help ('e.g.') or in the epilog."""
    sub = _subparsers()[name]
    code, out, _ = cli(capsys, name, "--help")
    assert code == 0 and "examples:" in out and f"mobconv {name}" in out
    epilog = sub.epilog or ""
    for action in sub._actions:
        if action.dest in ("help", "verbose"):
            continue
        assert action.help, (name, action.dest)
        flags = action.option_strings
        example = "e.g." in action.help or any(f in epilog for f in flags)
        assert example, (name, action.dest, action.help)


# ---- wrong files ---------------------------------------------------------------


def test_caffemodel_given_to_onnx2mob(tmp_path, capsys):
    weights = tmp_path / "net.caffemodel"
    weights.write_bytes(b"\x0a\x03net")
    code, out, err = cli(capsys, "onnx2mob", weights)
    one_line_error(code, err, "net.caffemodel: is a Caffe weights file, expected an ONNX model",
                   "mobconv caffe2mob deploy.prototxt", exit_code=2)
    assert files_in(tmp_path) == ["net.caffemodel"] and out == ""


def test_onnx_given_to_caffe2mob_and_swapped_caffe_arguments(tiny, tmp_path, capsys):
    code, _, err = cli(capsys, "caffe2mob", tiny, "--random-weights")
    one_line_error(code, err, "tiny.onnx: is an ONNX model", "mobconv onnx2mob", exit_code=2)
    (tmp_path / "d.prototxt").write_text('name: "x"\n')
    (tmp_path / "w.caffemodel").write_bytes(b"\x0a\x01x")
    code, _, err = cli(capsys, "caffe2mob", tmp_path / "w.caffemodel", tmp_path / "d.prototxt")
    one_line_error(code, err, "swapped", "the .prototxt comes first", exit_code=2)


def test_mob_given_to_onnx2mob(tiny_mob, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny_mob)
    one_line_error(code, err, "tiny.mob: is already a .mob model", "mobconv info", exit_code=2)


@pytest.mark.parametrize("ext, hint", [(".prototxt", "mobconv caffe2mob"),
                                       (".caffemodel", "mobconv caffe2mob deploy.prototxt"),
                                       (".onnx", "mobconv onnx2mob")])
def test_source_file_given_to_info_says_how_to_convert(tmp_path, capsys, ext, hint):
    path = tmp_path / f"net{ext}"
    path.write_text('name: "net"\n')
    code, _, err = cli(capsys, "info", path)
    one_line_error(code, err, f"net{ext}: not a .mob model file", hint)


@pytest.mark.parametrize("command", ["onnx2mob", "info", "run", "validate", "bench"])
def test_empty_file(tmp_path, capsys, command):
    path = tmp_path / ("empty.onnx" if command == "onnx2mob" else "empty.mob")
    path.write_bytes(b"")
    code, _, err = cli(capsys, command, path)
    one_line_error(code, err, f"{path}: empty file (0 bytes)")
    assert files_in(tmp_path) == [path.name]


@pytest.mark.parametrize("command", ["onnx2mob", "info", "run"])
def test_directory_instead_of_file(tmp_path, capsys, command):
    code, _, err = cli(capsys, command, tmp_path)
    one_line_error(code, err, "is a directory")


# ---- --input-shape ---------------------------------------------------------------


@pytest.mark.parametrize("spec, fragment", [
    ("x=0,3,16,16", "dimension '0' is not a positive integer"),
    ("x=1x3x16x16", "dimension '1x3x16x16'"),
    ("1,3,16,16", "expected NAME=D1,D2,..."),
    ("x=", "expected NAME=D1,D2,..."),
])
def test_input_shape_syntax(tiny, tmp_path, capsys, spec, fragment):
    code, _, err = cli(capsys, "onnx2mob", tiny, "--input-shape", spec)
    one_line_error(code, err, f"--input-shape {spec!r}", fragment, "for example", exit_code=2)
    assert files_in(tmp_path) == ["tiny.onnx"]


def test_input_shape_given_twice(tiny, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "--input-shape", "x=1,3,16,16",
                       "--input-shape", "x=2,3,16,16")
    one_line_error(code, err, "input 'x' is given twice", exit_code=2)


@pytest.mark.parametrize("spec, fragment", [
    ("y=1,3,16,16", "--input-shape names 'y'"),
    ("x=1,3,16", "--input-shape x=1,3,16 has rank 3"),
    ("x=1,5,16,16", "--input-shape x=1,5,16,16 conflicts"),
])
def test_input_shape_not_fitting_the_model_is_a_usage_error(tiny, tmp_path, capsys, spec, fragment):
    code, _, err = cli(capsys, "onnx2mob", tiny, "--input-shape", spec)
    one_line_error(code, err, "tiny.onnx: ", fragment, exit_code=2)
    assert "input_shapes" not in err  # the CLI's words, not the API's
    assert files_in(tmp_path) == ["tiny.onnx"]


def test_cli_wording():
    assert cli_wording("m.onnx: input_shapes['x'] = (1, 'batch', 3) has rank 3") == \
        "m.onnx: --input-shape x=1,batch,3 has rank 3"


# ---- output paths ----------------------------------------------------------------


def test_empty_output_path(tiny, tmp_path, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", "")
    one_line_error(code, err, "output path is empty", exit_code=2)
    assert files_in(tmp_path) == ["tiny.onnx"]


def test_output_into_missing_directory(tiny, tmp_path, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", tmp_path / "no" / "m.mob")
    one_line_error(code, err, "does not exist", "create it first")


def test_output_is_a_directory(tiny, tmp_path, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", tmp_path)
    one_line_error(code, err, "is a directory", "model.mob")


def test_overwrite_replaces_and_keeps_permissions(tiny, tmp_path, capsys):
    out_path = tmp_path / "out.mob"
    out_path.write_bytes(b"old")
    os.chmod(out_path, 0o640)
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", out_path, "-q")
    assert code == 0, err
    assert out_path.read_bytes()[4:8] == b"MOB1"
    assert stat.S_IMODE(os.stat(out_path).st_mode) == 0o640
    assert not [f for f in files_in(tmp_path) if f.startswith(".mobconv-")]


def test_new_output_gets_umask_mode_not_0600(tiny, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        code, _, err = cli(capsys, "onnx2mob", tiny, "-o", tmp_path / "new.mob")
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(tmp_path / "new.mob").st_mode) == 0o644


def test_read_only_existing_output_is_refused(tiny, tmp_path, capsys):
    """By its mode bits, so also as root (tests/test_output_paths.py has more cases)."""
    target = tmp_path / "ro.mob"
    target.write_bytes(b"keep me")
    os.chmod(target, 0o444)
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", target)
    one_line_error(code, err, "existing file is read-only", exit_code=1)
    assert target.read_bytes() == b"keep me"


def test_paths_with_spaces_and_unicode(tmp_path, capsys):
    folder = tmp_path / "my models" / "ünïcode"
    folder.mkdir(parents=True)
    source = make_tiny_onnx(folder / "mödel ü.onnx")
    code, out, err = cli(capsys, "onnx2mob", source)
    assert code == 0, err
    mob = folder / "mödel ü.mob"
    assert str(mob) in out
    code, out, err = cli(capsys, "info", mob)
    assert code == 0 and out.startswith(str(mob))


# ---- run: --input files -----------------------------------------------------------


def test_run_integer_data_for_float_input_is_refused(tiny_mob, tmp_path, capsys):
    np.save(tmp_path / "pixels.npy", np.zeros((1, 3, 16, 16), np.uint8))
    code, out, err = cli(capsys, "run", tiny_mob, "--input", tmp_path / "pixels.npy")
    one_line_error(code, err, "pixels.npy: input 'x' is float32, the file holds uint8",
                   "preprocessing", ".astype(np.float32)")
    assert out == ""


def test_run_float64_is_cast_with_a_note(tiny_mob, tmp_path, capsys):
    np.save(tmp_path / "x64.npy", np.ones((1, 3, 16, 16)))
    code, out, err = cli(capsys, "run", tiny_mob, "--input", tmp_path / "x64.npy")
    assert code == 0, err
    assert "x64.npy: float64 cast to float32" in out


def test_run_wrong_shape_names_the_file(tiny_mob, tmp_path, capsys):
    np.save(tmp_path / "small.npy", np.ones((1, 3, 8, 8), np.float32))
    code, _, err = cli(capsys, "run", tiny_mob, "--input", f"x={tmp_path / 'small.npy'}")
    one_line_error(code, err, "small.npy: input 'x' expects shape [batch, 3, 16, 16]",
                   "holds [1, 3, 8, 8]", "batch may be any size")


def test_run_input_given_twice_and_two_inputs_without_name(two_inputs_mob, tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.ones((1, 4), np.float32))
    a = str(tmp_path / "a.npy")
    code, _, err = cli(capsys, "run", two_inputs_mob, "--input", a)
    one_line_error(code, err, "the model has 2 inputs (a, b)", f"--input a={a}", exit_code=2)
    code, _, err = cli(capsys, "run", two_inputs_mob, "--input", f"a={a}", "--input", f"a={a}")
    one_line_error(code, err, "input 'a' is given twice", exit_code=2)


def test_run_not_an_npy(tiny, tiny_mob, tmp_path, capsys):
    code, _, err = cli(capsys, "run", tiny_mob, "--input", tiny)
    one_line_error(code, err, "tiny.onnx: not a .npy array file", "numpy.save")
    np.savez(tmp_path / "x.npz", a=np.ones(3))
    code, _, err = cli(capsys, "run", tiny_mob, "--input", tmp_path / "x.npz")
    one_line_error(code, err, "x.npz", ".npz archive")


@pytest.mark.parametrize("threads", ["0", "1000"])
def test_run_threads_checked_before_anything_runs(tiny_mob, capsys, threads):
    code, out, err = cli(capsys, "run", tiny_mob, "--threads", threads)
    one_line_error(code, err, f"--threads {threads}: must be between 1 and 256", exit_code=2)
    assert out == ""


def test_run_save_onto_a_file(tiny, tiny_mob, capsys):
    code, out, err = cli(capsys, "run", tiny_mob, "--save", tiny)
    one_line_error(code, err, "exists and is not a directory")
    assert out == ""


# ---- run: what is shown ---------------------------------------------------------


def test_detections_shown_best_first_without_padding_rows():
    rows = np.array([[0, 1, 0.3, 0.1, 0.1, 0.5, 0.5],
                     [0, 2, 0.9, 0.2, 0.2, 0.6, 0.6],
                     [-1, 0, 0, 0, 0, 0, 0]], np.float32).reshape(1, 1, 3, 7)
    lines = run_cmd.describe_output("detection_out", rows)
    text = "\n".join(lines)
    assert "detection_out detections" in lines[0]
    assert "label" in text and "score" in text and "xmin" in text
    body = lines[1].splitlines()
    assert len(body) == 3  # header + two real detections
    assert body[1].split()[:3] == ["0", "2", "0.9000"]


def test_classifier_with_trailing_unit_dims_gets_top5():
    scores = np.zeros((1, 10, 1, 1), np.float32)
    scores[0, 7] = 1
    lines = run_cmd.describe_output("prob", scores)
    assert "top-5" in lines[0] and lines[1].strip().startswith("row 0: 7 (1)")


def test_segmentation_map_shows_class_histogram():
    logits = np.zeros((1, 3, 4, 4), np.float32)
    logits[0, 2, :2] = 1  # half the pixels are class 2, the rest class 0
    lines = run_cmd.describe_output("seg", logits)
    assert "argmax over 3 channels" in lines[0] and "4x4" in lines[0]
    assert "2 (50.0%)" in lines[1] and "0 (50.0%)" in lines[1]


# ---- info ----------------------------------------------------------------------


def test_info_shows_format_and_runtime_versions(tiny_mob, capsys):
    code, out, _ = cli(capsys, "info", tiny_mob)
    assert code == 0
    assert "format 1.1" in out.splitlines()[0] and "needs mobconv runtime >= 0.1.0" in out
    assert "format version       1.1" in out
    code, out, _ = cli(capsys, "info", tiny_mob, "--json")
    assert '"format_version": "1.1"' in out


def test_info_preprocessing_as_app_constants(tmp_path, capsys):
    proto = tmp_path / "pre.prototxt"
    proto.write_text(
        'name: "pre"\n'
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 '
        'dim: 8 dim: 8 } }\n'
        '  transform_param { mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.017 } }\n'
        'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
        'convolution_param { num_output: 2 kernel_size: 3 } }\n')
    code, _, err = cli(capsys, "caffe2mob", proto, "--random-weights", "-q")
    assert code == 0, err
    code, out, _ = cli(capsys, "info", tmp_path / "pre.mob")
    text = out[out.index("Preprocessing"):]
    assert "channel order  BGR" in text
    assert "mean           [104, 117, 123]" in text
    assert "scale          [0.017, 0.017, 0.017]" in text
    assert "input[c] = (raw[BGR][c] - mean[c]) * scale[c]" in text
    assert "val MEAN = floatArrayOf(104.0f, 117.0f, 123.0f)" in text
    assert "let scale: [Float] = [0.017, 0.017, 0.017]" in text
    assert "const float kMean[3] = {104.0f, 117.0f, 123.0f};" in text


def test_preprocessing_channel_order_only():
    lines = info_cmd.preprocessing_lines({"mean": [], "scale": [], "channel_order": "BGR"}, None)
    text = "\n".join(lines)
    assert "mean           none" in text and "input[c] = raw[BGR][c]" in text
    assert "Kotlin" not in text


def test_long_names_are_shortened_in_the_middle():
    name = "backbone/stage4/block_17/expand/conv_3x3/batchnorm/relu6_output_0"
    short = shorten(name)
    assert len(short) == 48 and short.startswith("backbone/") and short.endswith("output_0")
    assert shorten("prob") == "prob"


# ---- validate ------------------------------------------------------------------


class _StubModel:
    def __init__(self, outputs):
        self.outputs = outputs

    def run(self, inputs, backend="reference"):
        return self.outputs


def test_validate_tolerance_is_relative_to_the_tensor():
    """A near-zero logit off by 1e-4 in a tensor of magnitude 300 is float32 summation noise."""
    want = np.array([[300.0, 0.001, -50.0]], np.float32)
    got = want + np.array([[0, 1e-4, 0]], np.float32)
    vector = TestVector(inputs={}, outputs={"logits": want}, rtol=1e-4, atol=1e-5)
    passed, _ = validate_cmd.check_vector(_StubModel({"logits": got}), vector)
    assert passed
    got = want + np.array([[0.1, 0, 0]], np.float32)
    passed, msg = validate_cmd.check_vector(_StubModel({"logits": got}), vector)
    assert not passed and "outside tolerance: logits" in msg


# ---- bench ---------------------------------------------------------------------


@pytest.mark.parametrize("flag, value", [("--runs", "1000000000"), ("--runs", "0"),
                                         ("--threads", "1000"), ("--warmup", "-1")])
def test_bench_limits(tiny_mob, capsys, flag, value):
    code, out, err = cli(capsys, "bench", tiny_mob, flag, value)
    one_line_error(code, err, f"{flag} {value}: must be between", exit_code=2)
    assert out == ""


# ---- progress line -------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal_and_not_with_quiet(tiny, tmp_path, capsys, monkeypatch):
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", tmp_path / "a.mob")
    assert code == 0 and err == ""  # not a terminal: nothing on stderr
    fake = _Tty()
    monkeypatch.setattr("sys.stderr", fake)
    assert main(["onnx2mob", str(tiny), "-o", str(tmp_path / "b.mob")]) == 0
    assert "mobconv: converting" in fake.getvalue() and "writing" in fake.getvalue()
    assert fake.getvalue().endswith("\r\033[K")  # the status line is erased at the end
    fake = _Tty()
    monkeypatch.setattr("sys.stderr", fake)
    assert main(["onnx2mob", str(tiny), "-o", str(tmp_path / "c.mob"), "--quiet"]) == 0
    assert fake.getvalue() == ""


def test_interrupt_during_conversion_leaves_nothing(tiny, tmp_path, capsys, monkeypatch):
    from mobconv import api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api.Model, "add_test_vector", interrupted)
    code, out, err = cli(capsys, "onnx2mob", tiny, "--embed-test-vector")
    assert code == 130 and out == ""
    assert err.strip() == f"mobconv: interrupted by SIGINT; {tmp_path / 'tiny.mob'} was not written"
    assert files_in(tmp_path) == ["tiny.onnx"]
