"""Output paths that must not destroy a user's files, and interrupts that must not leave
half-written ones (issue 7, finding 3).

Real files and real processes: symbolic and hard links to the inputs, a FIFO, a device
node, a socket, a directory, a 0444 file (we run as root in CI, where EACCES does not
protect it), and SIGTERM/SIGINT/SIGHUP sent to a `python -m mobconv` process while it
writes. Each test checks: the command's exit code, a one-line message, the inputs
unchanged byte for byte, and no `.mobconv-*.tmp` file left in the output directory.

The signal tests use the writer's test hook MOBCONV_TEST_PAUSE_AT=<stage>
(mobconv/output_files.py): the process prints `mobconv-test: paused at <stage>` and
sleeps at that point, so the signal lands at a known step (mid-write with a partial
temporary file on disk, or just after the rename) instead of at a random one.
"""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mobconv
from mobconv.cli.main import main
from mobconv.errors import MobconvError

from test_api import make_tiny_onnx

ZOO = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "caffe", "digits")


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, *fragments, exit_code):
    assert code == exit_code, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mobconv: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def temp_files(directory):
    return [f for f in os.listdir(directory) if f.startswith(".mobconv-")]


def snapshot(*paths):
    """Bytes of each regular file (to check that it is untouched)."""
    return {str(p): open(p, "rb").read() for p in paths}


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture
def caffe(tmp_path):
    proto = tmp_path / "deploy.prototxt"
    weights = tmp_path / "digits.caffemodel"
    shutil.copy(os.path.join(ZOO, "deploy.prototxt"), proto)
    shutil.copy(os.path.join(ZOO, "digits.caffemodel"), weights)
    return proto, weights


# ---- the output is one of the command's inputs ---------------------------------------


@pytest.mark.parametrize("how", ["source_is_link", "output_is_link", "dir_link", "hard_link"])
def test_onnx_output_that_is_the_source_through_a_link_is_refused(tmp_path, capsys, how):
    real = make_tiny_onnx(tmp_path / "real.onnx")
    (tmp_path / "sub").mkdir()
    if how == "source_is_link":      # onnx2mob link.onnx -o real.onnx
        os.symlink("real.onnx", tmp_path / "link.onnx")
        source, output = tmp_path / "link.onnx", real
    elif how == "output_is_link":    # onnx2mob real.onnx -o link.mob (link.mob -> real.onnx)
        os.symlink("real.onnx", tmp_path / "link.mob")
        source, output = real, tmp_path / "link.mob"
    elif how == "dir_link":          # a parent directory of the output is a link
        os.symlink(tmp_path, tmp_path / "sub" / "up")
        source, output = real, tmp_path / "sub" / "up" / "real.onnx"
    else:                            # hard.mob is another name of real.onnx
        os.link(real, tmp_path / "hard.mob")
        source, output = real, tmp_path / "hard.mob"
    before = snapshot(real)
    code, out, err = cli(capsys, "onnx2mob", source, "-o", output)
    one_line_error(code, err, "would overwrite", exit_code=2)
    assert out == ""
    assert snapshot(real) == before
    assert temp_files(tmp_path) == []
    if how in ("source_is_link", "output_is_link"):
        assert os.path.islink(tmp_path / ("link.onnx" if how == "source_is_link" else "link.mob"))


@pytest.mark.parametrize("target", ["prototxt", "caffemodel"])
@pytest.mark.parametrize("link", ["symlink", "hard_link"])
def test_caffe_output_that_is_an_input_is_refused(caffe, tmp_path, capsys, target, link):
    proto, weights = caffe
    victim = proto if target == "prototxt" else weights
    output = tmp_path / "out.mob"
    (os.symlink if link == "symlink" else os.link)(victim, output)
    before = snapshot(proto, weights)
    code, _, err = cli(capsys, "caffe2mob", proto, weights, "-o", output)
    one_line_error(code, err, "would overwrite", victim.name, exit_code=2)
    assert snapshot(proto, weights) == before
    assert temp_files(tmp_path) == []


def test_onnx_external_data_file_is_an_input(tmp_path, capsys):
    """-o naming the model's external weights file (directly or through a link)."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True,
              location="ext.weights", size_threshold=0)
    os.symlink("ext.weights", tmp_path / "weights.mob")
    before = snapshot(tmp_path / "ext.onnx", tmp_path / "ext.weights")
    for output in ("ext.weights", "weights.mob"):
        code, _, err = cli(capsys, "onnx2mob", tmp_path / "ext.onnx", "-o", tmp_path / output)
        one_line_error(code, err, "would overwrite", "ext.weights", exit_code=2)
    assert snapshot(tmp_path / "ext.onnx", tmp_path / "ext.weights") == before
    assert temp_files(tmp_path) == []
    # and a real output next to it still works
    code, _, err = cli(capsys, "onnx2mob", tmp_path / "ext.onnx", "-q")
    assert code == 0, err
    assert mobconv.load(tmp_path / "ext.mob").outputs[0].name == "y"


def test_run_save_would_overwrite_an_input_file(tiny, tmp_path, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "-q")
    assert code == 0, err
    mob = tmp_path / "tiny.mob"
    x = tmp_path / "prob.npy"           # the input file has the output's name
    np.save(x, np.ones((1, 3, 16, 16), np.float32))
    before = snapshot(x, mob)
    code, out, err = cli(capsys, "run", mob, "--input", f"x={x}", "--save", tmp_path)
    one_line_error(code, err, "would overwrite", "prob.npy", exit_code=2)
    assert out == ""  # refused before running
    assert snapshot(x, mob) == before


def test_random_caffemodel_writer_never_replaces_the_prototxt(caffe, tmp_path):
    """`python -m mobconv.frontends.caffe.weights deploy.prototxt OUT` writes with the same
    writer: OUT may not be the prototxt (here through a link) nor a FIFO."""
    from mobconv.errors import UsageError
    from mobconv.frontends.caffe.weights import save_random_caffemodel

    proto, _ = caffe
    os.symlink(proto.name, tmp_path / "w.caffemodel")
    before = snapshot(proto)
    with pytest.raises(UsageError, match="would overwrite the input file"):
        save_random_caffemodel(proto, tmp_path / "w.caffemodel")
    os.mkfifo(tmp_path / "fifo.caffemodel")
    with pytest.raises(MobconvError, match="FIFO"):
        save_random_caffemodel(proto, tmp_path / "fifo.caffemodel")
    assert snapshot(proto) == before and temp_files(tmp_path) == []
    save_random_caffemodel(proto, tmp_path / "random.caffemodel")
    assert os.path.getsize(tmp_path / "random.caffemodel") > 0


# ---- the output is not a regular file --------------------------------------------------


def make_special(kind, path):
    """A FIFO, character device, socket or directory at `path` (returns what to keep open)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "chardev":
        # a private copy of /dev/null's device numbers: replacing it damages nothing
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return sock
    elif kind == "directory":
        os.mkdir(path)
    return None


KIND_TEST = {"fifo": stat.S_ISFIFO, "chardev": stat.S_ISCHR, "socket": stat.S_ISSOCK,
             "directory": stat.S_ISDIR}
KIND_WORDS = {"fifo": "FIFO", "chardev": "character device", "socket": "socket",
              "directory": "is a directory"}


@pytest.mark.parametrize("through_link", [False, True])
@pytest.mark.parametrize("kind", ["fifo", "chardev", "socket", "directory"])
def test_output_that_is_not_a_regular_file_is_refused(tiny, tmp_path, capsys, kind, through_link):
    """A FIFO in a subprocess with a timeout: opening it for writing would block forever."""
    if kind == "chardev" and os.geteuid() != 0:
        special = "/dev/null"  # without root nothing can replace it, so the test is harmless
    else:
        special = str(tmp_path / f"special_{kind}")
    keep = make_special(kind, special) if special != "/dev/null" else None
    output = special
    if through_link:
        output = str(tmp_path / "link.mob")
        os.symlink(special, output)
    try:
        if kind == "fifo":
            proc = subprocess.run([sys.executable, "-m", "mobconv", "onnx2mob", tiny, "-o", output],
                                  capture_output=True, text=True, timeout=60)
            code, err = proc.returncode, proc.stderr
        else:
            code, _, err = cli(capsys, "onnx2mob", tiny, "-o", output)
    finally:
        if keep is not None:
            keep.close()
    one_line_error(code, err, KIND_WORDS[kind], exit_code=1)
    assert KIND_TEST[kind](os.stat(special).st_mode), f"{special} was replaced"
    assert temp_files(tmp_path) == []
    if through_link:
        assert os.path.islink(output)


def test_dangling_symlink_output_is_refused(tiny, tmp_path, capsys):
    os.symlink("missing/dir/m.mob", tmp_path / "dangling.mob")
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", tmp_path / "dangling.mob")
    one_line_error(code, err, "symbolic link", "does not exist", exit_code=1)
    assert os.path.islink(tmp_path / "dangling.mob")
    assert temp_files(tmp_path) == []


def test_symlink_output_is_followed_and_kept(tiny, tmp_path, capsys):
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "current.mob"
    target.write_bytes(b"old model")
    os.chmod(target, 0o640)
    os.symlink("models/current.mob", tmp_path / "latest.mob")
    code, out, err = cli(capsys, "onnx2mob", tiny, "-o", tmp_path / "latest.mob", "-q")
    assert code == 0, err
    assert os.readlink(tmp_path / "latest.mob") == "models/current.mob"
    assert target.read_bytes()[4:8] == b"MOB1"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert temp_files(tmp_path) == [] and temp_files(tmp_path / "models") == []


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o555])
def test_read_only_output_is_refused_by_its_mode_even_for_root(tiny, tmp_path, capsys, mode):
    target = tmp_path / "ro.mob"
    target.write_bytes(b"keep me")
    os.chmod(target, mode)
    code, _, err = cli(capsys, "onnx2mob", tiny, "-o", target)
    one_line_error(code, err, "read-only", exit_code=1)
    assert target.read_bytes() == b"keep me"
    assert stat.S_IMODE(os.stat(target).st_mode) == mode
    assert temp_files(tmp_path) == []


def test_run_save_refuses_special_and_read_only_files(tiny, tmp_path, capsys):
    code, _, err = cli(capsys, "onnx2mob", tiny, "-q")
    assert code == 0, err
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    os.mkfifo(out_dir / "prob.npy")
    code, out, err = cli(capsys, "run", tmp_path / "tiny.mob", "--save", out_dir)
    one_line_error(code, err, "FIFO", "prob.npy", exit_code=1)
    assert out == "" and stat.S_ISFIFO(os.stat(out_dir / "prob.npy").st_mode)
    os.unlink(out_dir / "prob.npy")
    (out_dir / "prob.npy").write_bytes(b"keep")
    os.chmod(out_dir / "prob.npy", 0o444)
    code, out, err = cli(capsys, "run", tmp_path / "tiny.mob", "--save", out_dir)
    one_line_error(code, err, "read-only", exit_code=1)
    assert (out_dir / "prob.npy").read_bytes() == b"keep"
    os.chmod(out_dir / "prob.npy", 0o644)
    code, out, err = cli(capsys, "run", tmp_path / "tiny.mob", "--save", out_dir)
    assert code == 0, err
    assert np.load(out_dir / "prob.npy").shape == (1, 10)
    assert temp_files(out_dir) == []


def test_api_save_uses_the_same_rules(tiny, tmp_path):
    model = mobconv.convert(tiny)
    os.mkfifo(tmp_path / "fifo.mob")
    ro = tmp_path / "ro.mob"
    ro.write_bytes(b"keep")
    os.chmod(ro, 0o444)
    with pytest.raises(MobconvError, match="FIFO"):
        model.save(tmp_path / "fifo.mob")
    with pytest.raises(MobconvError, match="read-only"):
        model.save(ro)
    assert ro.read_bytes() == b"keep"
    assert temp_files(tmp_path) == []
    os.symlink("ro.mob", tmp_path / "link.mob")
    os.chmod(ro, 0o644)
    model.save(tmp_path / "link.mob")
    assert os.path.islink(tmp_path / "link.mob") and ro.read_bytes()[4:8] == b"MOB1"


# ---- signals while writing --------------------------------------------------------------


def make_big_onnx(path, megabytes=24):
    """y = x + C with a C of `megabytes` MB, so the .mob is written in several chunks."""
    n = megabytes * (1 << 20) // 4
    c = numpy_helper.from_array(np.arange(n, dtype=np.float32), "C")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "C"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], [c])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return make_big_onnx(tmp_path_factory.mktemp("big") / "big.onnx")


def start_paused(argv, stage, preexec_fn=None, pause=60):
    """Start `python -m mobconv argv` and wait until the writer pauses at `stage`."""
    env = dict(os.environ, MOBCONV_TEST_PAUSE_AT=stage, MOBCONV_TEST_PAUSE_SECONDS=str(pause))
    proc = subprocess.Popen([sys.executable, "-m", "mobconv", *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec_fn)
    seen = []
    for line in proc.stderr:  # lines before the pause (none expected) are kept for the report
        if line.strip() == f"mobconv-test: paused at {stage}":
            return proc
        seen.append(line)
    proc.wait()
    pytest.fail(f"the writer did not pause at {stage} (exit {proc.returncode}): {''.join(seen)}")


SIGNALS = [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT"),
           (signal.SIGHUP, 129, "SIGHUP")]


@pytest.mark.parametrize("signum, exit_code, name", SIGNALS)
def test_signal_while_writing_leaves_no_temp_file(big, tmp_path, signum, exit_code, name):
    """The signal lands after the first chunk of the temporary file is on disk."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "big.mob"
    output.write_bytes(b"the previous model")
    source_before = snapshot(big)
    proc = start_paused(["onnx2mob", big, "-o", output], "writing")
    partial = temp_files(out_dir)
    assert len(partial) == 1 and os.path.getsize(out_dir / partial[0]) > 0  # really mid-write
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == exit_code, err
    assert err.splitlines() == [f"mobconv: interrupted by {name}; {output} was not written"]
    assert out == ""
    assert temp_files(out_dir) == []
    assert output.read_bytes() == b"the previous model"  # the old output is kept whole
    assert snapshot(big) == source_before


def test_write_error_mid_file_leaves_nothing(big, tmp_path):
    """A real failure half-way through the write (a 4 MiB file size limit: EFBIG, as a
    full disk gives ENOSPC): one line, the old output kept, no temporary file."""
    import resource

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))

    output = tmp_path / "big.mob"
    output.write_bytes(b"the previous model")
    proc = subprocess.run([sys.executable, "-m", "mobconv", "onnx2mob", big, "-o", output],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size)
    one_line_error(proc.returncode, proc.stderr, f"cannot write {output}", "File too large",
                   exit_code=1)
    assert output.read_bytes() == b"the previous model"
    assert temp_files(tmp_path) == []


def test_repeated_signals_still_clean_up(big, tmp_path):
    """Ctrl-C pressed again while the first one is being handled: still one line, no temp."""
    proc = start_paused(["onnx2mob", big, "-o", tmp_path / "big.mob"], "writing")
    for _ in range(5):
        proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, 143), err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mobconv: interrupted by SIG"), err
    assert lines[0].endswith(f"{tmp_path / 'big.mob'} was not written")
    assert temp_files(tmp_path) == [] and not (tmp_path / "big.mob").exists()


def test_signal_before_the_rename_leaves_no_file(tiny, tmp_path):
    """The temporary file is complete and fsync'ed but not renamed: nothing is left."""
    proc = start_paused(["onnx2mob", tiny, "-o", tmp_path / "m.mob"], "before-rename")
    assert len(temp_files(tmp_path)) == 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.splitlines() == [f"mobconv: interrupted by SIGTERM; {tmp_path / 'm.mob'} was not written"]
    assert sorted(os.listdir(tmp_path)) == ["tiny.onnx"]


def test_late_ctrl_c_after_the_output_is_complete_says_so(tiny, tmp_path):
    output = tmp_path / "m.mob"
    proc = start_paused(["onnx2mob", tiny, "-o", output], "after-rename")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.splitlines() == [
        f"mobconv: interrupted by SIGINT after {output} was written completely"]
    assert temp_files(tmp_path) == []
    assert mobconv.load(output).outputs[0].name == "prob"  # the file is whole and loads


def test_run_save_interrupted_names_what_was_written(tiny, tmp_path, capsys):
    """--save writes one file per output: the message says which ones are complete."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["x"], ["b"])], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "two.onnx"))
    code, _, err = cli(capsys, "onnx2mob", tmp_path / "two.onnx", "-q")
    assert code == 0, err
    out_dir = tmp_path / "out"
    proc = start_paused(["run", tmp_path / "two.mob", "--save", out_dir], "after-rename")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.splitlines() == [f"mobconv: interrupted by SIGTERM after {out_dir / 'a.npy'} was "
                                f"written completely; {out_dir / 'b.npy'} was not written"]
    assert sorted(os.listdir(out_dir)) == ["a.npy"]


def test_ignored_sighup_stays_ignored(tiny, tmp_path):
    """Under nohup (SIGHUP ignored) a hang-up must not stop the conversion."""
    def ignore_hup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = start_paused(["onnx2mob", tiny, "-o", tmp_path / "m.mob", "-q"], "writing",
                        preexec_fn=ignore_hup, pause=1)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert mobconv.load(tmp_path / "m.mob").outputs[0].name == "prob"
