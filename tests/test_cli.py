"""The `mobconv` command line, run in-process via main(argv) and a few times as a subprocess."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mobconv
from mobconv.cli.common import parse_input_shapes, sanitize_filename
from mobconv.cli.main import main
from mobconv.errors import UsageError

from test_api import make_tiny_onnx


def cli(capsys, *argv):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments, expected_code=None):
    assert code != 0
    if expected_code is not None:
        assert code == expected_code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mobconv: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def tiny_mob(tiny, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "--embed-test-vector")
    assert code == 0, err
    return tiny[: -len(".onnx")] + ".mob"


# ---- help, version ---------------------------------------------------------


def test_version(capsys):
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and mobconv.__version__ in out


@pytest.mark.parametrize("command", ["onnx2mob", "info", "run", "compare", "validate"])
def test_subcommand_help_has_examples(capsys, command):
    code, out, _ = cli(capsys, command, "--help")
    assert code == 0
    assert "examples:" in out and f"mobconv {command}" in out


def test_no_command_is_usage_error(capsys):
    code, _, err = cli(capsys)
    assert code == 2 and "usage:" in err


# ---- onnx2mob --------------------------------------------------------------


def test_onnx2mob_default_output_and_summary(tiny, capsys):
    code, out, err = cli(capsys, "onnx2mob", tiny)
    assert code == 0, err
    mob = tiny[:-5] + ".mob"
    assert os.path.isfile(mob)
    assert "ops before optimization" in out and "parameters" in out and "MACs" in out
    assert "Inputs: x float32[batch, 3, 16, 16]" in out
    assert len(out.strip().splitlines()) == 1  # one paragraph


def test_onnx2mob_options(tiny, tmp_path, capsys):
    out_path = tmp_path / "sub.mob"
    code, out, err = cli(capsys, "onnx2mob", tiny, "-o", out_path, "--no-optimize",
                         "--input-shape", "x=2,3,16,16")
    assert code == 0, err
    assert "optimization skipped" in out
    model = mobconv.load(out_path)
    assert tuple(model.inputs[0].shape) == (2, 3, 16, 16)
    assert "Relu" in [n.op for n in model.graph.nodes]
    assert model.test_vectors == []


def test_parse_input_shapes():
    assert parse_input_shapes(["a=1,3,224,224", "b=batch,128"]) == {
        "a": (1, 3, 224, 224), "b": ("batch", 128)}
    for bad in ["a", "a=", "=1,2", "a=1,,2", "a=1,-3", "a=1x3"]:
        with pytest.raises(UsageError):
            parse_input_shapes([bad])


@pytest.mark.parametrize("spec", ["x", "x=1,3,a b,16", "x=1;3"])
def test_onnx2mob_bad_input_shape_syntax(tiny, capsys, spec):
    code, _, err = cli(capsys, "onnx2mob", tiny, "--input-shape", spec)
    assert_one_line_error(code, err, "--input-shape", expected_code=2)
    assert not os.path.exists(tiny[:-5] + ".mob")


def test_onnx2mob_missing_file(tmp_path, capsys):
    code, _, err = cli(capsys, "onnx2mob", tmp_path / "missing.onnx")
    assert_one_line_error(code, err, "missing.onnx", "no such file")


def test_onnx2mob_unsupported_ops_listed_and_no_output(tmp_path, capsys):
    src = make_tiny_onnx(tmp_path / "weird.onnx", extra_nodes=["Det", "FancyOp", "FancyOp"])
    code, _, err = cli(capsys, "onnx2mob", src)
    assert_one_line_error(code, err, "Det", "FancyOp", expected_code=2)
    assert sorted(os.listdir(tmp_path)) == ["weird.onnx"]


def test_onnx2mob_output_dir_missing(tiny, tmp_path, capsys):
    target = tmp_path / "nope" / "out.mob"
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", target)
    assert_one_line_error(code, err, "does not exist")
    assert not (tmp_path / "nope").exists()


def test_onnx2mob_output_dir_not_writable(tiny, tmp_path, capsys):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root writes through file modes; /proc refuses new files even for root
        code, _, err = cli(capsys, "onnx2mob", tiny, "-o", "/proc/mobconv-test.mob")
        assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not os.path.exists("/proc/mobconv-test.mob")
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = cli(capsys, "onnx2mob", tiny, "-o", ro / "out.mob")
        assert_one_line_error(code, err, "not writable")
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_onnx2mob_output_dir_not_writable_simulated(tiny, tmp_path, capsys, monkeypatch):
    """Same check as above, runnable as root: the directory reports no write access."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(ro)
                        else real_access(p, mode, **kw))
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", ro / "out.mob")
    assert_one_line_error(code, err, "not writable")
    assert os.listdir(ro) == []


def test_onnx2mob_write_failure_leaves_nothing(tiny, tmp_path, capsys, monkeypatch):
    """A failure while writing (disk full, ...) is one line and leaves no file behind."""
    def failing_replace(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", failing_replace)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", out_dir / "m.mob")
    assert_one_line_error(code, err, "No space left on device")
    assert os.listdir(out_dir) == []


def test_verbose_shows_traceback(tmp_path, capsys):
    code, _, err = cli(capsys, "-v", "onnx2mob", tmp_path / "missing.onnx")
    assert code == 1 and "Traceback" in err and "mobconv: error:" in err


def test_ctrl_c_exits_130(tiny_mob, capsys, monkeypatch):
    from mobconv import api

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "load", interrupted)
    code, _, err = cli(capsys, "info", tiny_mob)
    assert code == 130 and "Traceback" not in err


# ---- info ------------------------------------------------------------------


def test_info_table(tiny_mob, capsys):
    code, out, err = cli(capsys, "info", tiny_mob)
    assert code == 0, err
    for text in ["Inputs:", "x", "float32", "[batch, 3, 16, 16]", "Outputs:", "prob",
                 "Ops:", "Conv", "Gemm", "Parameters: 314", "MACs", "source sha256",
                 "converter version", mobconv.__version__, "Preprocessing",
                 "Test vectors: 1 embedded"]:
        assert text in out, text


def test_info_json(tiny_mob, capsys):
    code, out, _ = cli(capsys, "info", tiny_mob, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["inputs"][0]["name"] == "x"
    assert data["inputs"][0]["shape"] == ["batch", 3, 16, 16]
    assert data["summary"]["num_params"] == 314
    assert data["summary"]["macs"] == 8 * 16 * 16 * 27 + 80
    assert data["summary"]["op_histogram"]["Conv"] == 1
    assert data["metadata"]["source_framework"] == "onnx"
    assert len(data["test_vectors"]) == 1


def test_info_on_onnx_file(tiny, capsys):
    code, _, err = cli(capsys, "info", tiny)
    assert_one_line_error(code, err, "not a .mob", "onnx2mob")


@pytest.mark.parametrize("command", ["info", "run", "validate"])
@pytest.mark.parametrize("kind", ["truncated", "random", "empty"])
def test_bad_mob_files(tiny_mob, tmp_path, capsys, command, kind):
    data = open(tiny_mob, "rb").read()
    bad = tmp_path / "bad.mob"
    bad.write_bytes({"truncated": data[: len(data) // 2],
                     "random": np.random.default_rng(1).bytes(len(data)),
                     "empty": b""}[kind])
    code, _, err = cli(capsys, command, bad)
    assert_one_line_error(code, err, "bad.mob")


def test_directory_instead_of_file(tmp_path, capsys):
    code, _, err = cli(capsys, "info", tmp_path)
    assert_one_line_error(code, err, "is a directory")


# ---- run -------------------------------------------------------------------


def test_run_random_inputs_and_save(tiny_mob, tmp_path, capsys):
    save = tmp_path / "outs"
    code, out, err = cli(capsys, "run", tiny_mob, "--save", save, "--seed", "7", "--reference")
    assert code == 0, err
    assert "random (seed 7)" in out and "prob" in out and "top-5" in out
    saved = np.load(save / "prob.npy")
    want = mobconv.load(tiny_mob).run(seed=7, backend="reference")["prob"]
    np.testing.assert_array_equal(saved, want)


def test_run_input_file(tiny_mob, tmp_path, capsys):
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = cli(capsys, "run", tiny_mob, "--input", f"x={tmp_path / 'x.npy'}",
                         "--save", tmp_path)
    assert code == 0, err
    assert "from file" in out
    want = mobconv.load(tiny_mob).run({"x": x})["prob"]
    np.testing.assert_allclose(np.load(tmp_path / "prob.npy"), want, rtol=1e-6)


def test_run_bad_inputs(tiny_mob, tmp_path, capsys):
    code, _, err = cli(capsys, "run", tiny_mob, "--input", "y=whatever.npy")
    assert_one_line_error(code, err, "no input 'y'", expected_code=2)
    code, _, err = cli(capsys, "run", tiny_mob, "--input", f"x={tmp_path / 'nope.npy'}")
    assert_one_line_error(code, err, "nope.npy")
    np.save(tmp_path / "wrong.npy", np.zeros((1, 4, 16, 16), np.float32))
    code, _, err = cli(capsys, "run", tiny_mob, "--input", str(tmp_path / "wrong.npy"))
    assert_one_line_error(code, err, "shape")


def test_sanitize_filename():
    assert sanitize_filename("conv/1:0") == "conv_1_0"
    assert sanitize_filename("../../etc/passwd") == "_.._etc_passwd"
    assert sanitize_filename("..") == "tensor"


# ---- compare ---------------------------------------------------------------


def test_compare_passes(tiny, tiny_mob, capsys):
    pytest.importorskip("onnxruntime")
    code, out, err = cli(capsys, "compare", tiny_mob, tiny)
    assert code == 0, out + err
    assert "max abs err" in out and "cosine" in out
    assert "PASS prob" in out
    # relu_out was fused into the Conv by the passes: no row for conv_out, relu_out matched
    assert "relu_out" in out


def test_compare_runtime_by_default_reference_on_request(tiny, tiny_mob, capsys):
    pytest.importorskip("onnxruntime")
    code, out, err = cli(capsys, "compare", tiny_mob, tiny)
    assert code == 0 and "(C++ runtime) vs" in out, out + err
    code, out, err = cli(capsys, "compare", tiny_mob, tiny, "--reference")
    assert code == 0 and "(numpy reference) vs" in out, out + err


def test_compare_flags_first_divergence(tiny, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = mobconv.convert(tiny, optimize=False)
    gemm = next(n for n in model.graph.nodes if n.op == "Gemm")
    weights = model.graph.values[gemm.inputs[1]]
    weights.data = weights.data * 1.5
    broken = tmp_path / "broken.mob"
    model.save(broken)
    code, out, _ = cli(capsys, "compare", broken, tiny)
    assert code == 1
    assert "first divergence: 'logits'" in out
    assert ">>" in out and "FAIL prob" in out


def test_compare_unrenamed_values_show_dash(tiny, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = mobconv.convert(tiny, optimize=False)
    model.graph.values["pool_renamed"] = model.graph.values.pop("pool_out")
    model.graph.values["pool_renamed"].name = "pool_renamed"
    model.graph.replace_uses("pool_out", "pool_renamed")
    for node in model.graph.nodes:
        node.outputs = ["pool_renamed" if o == "pool_out" else o for o in node.outputs]
    path = tmp_path / "renamed.mob"
    model.save(path)
    code, out, _ = cli(capsys, "compare", path, tiny)
    assert code == 0
    row = next(line for line in out.splitlines() if "pool_renamed" in line)
    assert row.split()[-1] == "-"


def test_compare_needs_onnx_source(tiny_mob, capsys):
    code, _, err = cli(capsys, "compare", tiny_mob, tiny_mob)
    assert_one_line_error(code, err, "source ONNX model", expected_code=2)


def test_compare_missing_onnxruntime(tiny, tiny_mob, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, _, err = cli(capsys, "compare", tiny_mob, tiny)
    assert_one_line_error(code, err, "onnxruntime")


# ---- validate --------------------------------------------------------------


def test_validate_passes(tiny_mob, capsys):
    code, out, err = cli(capsys, "validate", tiny_mob)
    assert code == 0, err
    assert "PASS test vector 0" in out and out.strip().endswith("PASS")


def test_validate_without_vectors(tiny, tmp_path, capsys):
    path = tmp_path / "plain.mob"
    mobconv.convert(tiny).save(path)
    code, out, _ = cli(capsys, "validate", path)
    assert code == 0 and "no embedded test vectors" in out


def test_validate_detects_wrong_vector(tiny, tmp_path, capsys):
    model = mobconv.convert(tiny)
    vector = model.add_test_vector()
    vector.outputs["prob"] = vector.outputs["prob"] + 0.1
    path = tmp_path / "tampered.mob"
    model.save(path)
    code, out, _ = cli(capsys, "validate", path)
    assert code == 1
    assert "FAIL test vector 0" in out and out.strip().endswith("FAIL")


# ---- as a real process -----------------------------------------------------


def _mobconv(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "mobconv", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_subprocess_convert_info_validate(tiny, tmp_path):
    result = _mobconv("--version")
    assert result.returncode == 0 and mobconv.__version__ in result.stdout
    out_path = tmp_path / "p.mob"
    result = _mobconv("onnx2mob", tiny, "-o", out_path, "--embed-test-vector")
    assert result.returncode == 0, result.stderr
    result = _mobconv("validate", out_path)
    assert result.returncode == 0 and "PASS" in result.stdout


def test_subprocess_error_is_one_line(tmp_path):
    bad = tmp_path / "junk.mob"
    bad.write_bytes(os.urandom(500))
    result = _mobconv("info", bad)
    assert result.returncode == 1
    assert result.stderr.startswith("mobconv: error: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = _mobconv("onnx2mob", tmp_path / "x.onnx", "--input-shape", "bad")
    assert result.returncode == 2


def test_bench_reports_load_latency_arena_and_top_ops(tiny_mob, capsys):
    code, out, err = cli(capsys, "bench", tiny_mob, "--runs", "3", "--warmup", "1")
    assert code == 0, err
    for field in ("model load", "first run", "steady median", "steady p90", "activation arena",
                  "peak RSS", "Top ops by time"):
        assert field in out, field
    assert "Conv" in out


def test_bench_rejects_bad_counts(tiny_mob, capsys):
    code, _, err = cli(capsys, "bench", tiny_mob, "--runs", "0")
    assert_one_line_error(code, err, "--runs", expected_code=2)
