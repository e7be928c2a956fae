"""Hostile TensorFlow inputs through `mobconv tf2mob` and `mobconv.convert`: zero-size and
huge tensors, negative dims, long chains, cycles, duplicate and odd names, odd paths,
unreadable files, Ctrl-C during a conversion, output into a missing directory.

Each either converts (and then runs like numpy says) or fails with one line that names
the file (and the node), with the exit code docs/cli.md gives, no traceback and no
output file. GraphDefs are built with the committed protos: no TensorFlow needed.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mobconv
from mobconv.cli.main import main
from mobconv.errors import ConversionError, MobconvError
from mobconv.frontends.tensorflow import load_tensorflow
from mobconv.frontends.tensorflow import reader as tf_reader
from mobconv.frontends.tensorflow.proto import graph_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOAT, INT32, BOOL = 1, 3, 10


def placeholder(g, name, dims, dtype=FLOAT):
    n = g.node.add()
    n.name, n.op = name, "Placeholder"
    n.attr["dtype"].type = dtype
    for d in dims:
        n.attr["shape"].shape.dim.add().size = d
    return n


def const(g, name, dims, values=(), dtype=FLOAT):
    n = g.node.add()
    n.name, n.op = name, "Const"
    n.attr["dtype"].type = dtype
    t = n.attr["value"].tensor
    t.dtype = dtype
    for d in dims:
        t.tensor_shape.dim.add().size = d
    {FLOAT: t.float_val, INT32: t.int_val, BOOL: t.bool_val}[dtype].extend(values)
    return n


def op(g, name, kind, *inputs, dtype=FLOAT, **int_attrs):
    n = g.node.add()
    n.name, n.op = name, kind
    n.input.extend(inputs)
    n.attr["T"].type = dtype
    for key, value in int_attrs.items():
        n.attr[key].i = value
    return n


def graph(*dims):
    g = graph_pb2.GraphDef()
    placeholder(g, "x", dims or (1, 3))
    return g


def write(tmp_path, g, name="g.pb"):
    path = tmp_path / name
    path.write_bytes(g.SerializeToString())
    return str(path)


def cli(tmp_path, capsys, path, out=None):
    """Run `mobconv tf2mob path -o out`; (exit code, stderr lines, out)."""
    out = str(out or tmp_path / "out.mob")
    code = main(["tf2mob", path, "-o", out])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err.strip().splitlines(), out


def assert_refused(tmp_path, capsys, g, fragment, code=1, name="g.pb"):
    path = write(tmp_path, g, name)
    got, lines, out = cli(tmp_path, capsys, path)
    assert got == code and len(lines) == 1 and path in lines[0] and fragment in lines[0], lines
    assert not os.path.exists(out)
    assert [f for f in os.listdir(tmp_path) if f != name] == []  # no partial or temporary file
    with pytest.raises(MobconvError) as info:
        mobconv.convert(path)
    msg = str(info.value)
    assert msg.startswith(path) and fragment in msg and "\n" not in msg, msg


# ---- crashes found by fuzzing the loader with mutated cond graphs (each was a traceback) ----


def test_switch_whose_predicate_names_no_node(tmp_path, capsys):
    g = graph()  # was KeyError in control_flow._origin
    op(g, "sw", "Switch", "x", "nopred")
    op(g, "y", "Relu", "sw:1")
    assert_refused(tmp_path, capsys, g, "'nopred'")


def test_concat_without_inputs(tmp_path, capsys):
    g = graph()  # was IndexError: the axis is input -1 of a node with no inputs
    op(g, "c", "ConcatV2", N=0)
    assert_refused(tmp_path, capsys, g, "node 'c' (type ConcatV2): axis (input -1) is missing")


def test_duplicate_names_in_a_graph_with_a_switch(tmp_path, capsys):
    g = graph()  # was StopIteration in control_flow's topological sort
    const(g, "p", [], [True], BOOL)
    op(g, "sw", "Switch", "x", "p")
    op(g, "y", "Relu", "sw:1")
    op(g, "y", "Relu", "sw:1")
    assert_refused(tmp_path, capsys, g, "two nodes are named 'y'")


def test_comparison_without_inputs_as_a_predicate(tmp_path, capsys):
    g = graph()  # was TypeError: GreaterEqual evaluated with no arguments
    op(g, "ge", "GreaterEqual")
    op(g, "sw", "Switch", "x", "ge")
    op(g, "y", "Relu", "sw:1")
    assert_refused(tmp_path, capsys, g, "its predicate 'ge' is not a constant")


def test_predicate_through_a_long_identity_chain_folds(tmp_path):
    g = graph()  # was RecursionError: the predicate was evaluated recursively
    const(g, "p", [], [False], BOOL)
    prev = "p"
    for i in range(2000):  # deeper than Python's recursion limit (1000 frames)
        op(g, f"i{i}", "Identity", prev, dtype=BOOL)
        prev = f"i{i}"
    op(g, "sw", "Switch", "x", prev)
    op(g, "t", "Relu", "sw:1")
    op(g, "f", "Neg", "sw")
    op(g, "m", "Merge", "f", "t", N=2)
    model = mobconv.convert(write(tmp_path, g))
    assert model.graph.outputs == ["m"]  # the folded predicate's chain is no output
    x = np.random.default_rng(0).standard_normal((1, 3)).astype(np.float32)
    for backend in ("reference", "runtime"):
        np.testing.assert_array_equal(model.run({"x": x}, backend=backend)["m"], -x)


# ---- shapes -------------------------------------------------------------------------------


def test_zero_size_placeholder_and_constant_convert_and_run(tmp_path, capsys):
    g = graph(1, 0, 3)
    op(g, "y", "Relu", "x")
    g2 = graph(1, 3)
    const(g2, "c", [0, 3])
    op(g2, "y", "AddV2", "x", "c")
    for name, g, shape, expect in (("zero_dim.pb", g, (1, 0, 3), lambda x: np.maximum(x, 0)),
                                   ("zero_const.pb", g2, (1, 3),
                                    lambda x: x + np.zeros((0, 3), np.float32))):
        path = write(tmp_path, g, name)
        code, lines, out = cli(tmp_path, capsys, path, tmp_path / (name + ".mob"))
        assert code == 0, lines
        model = mobconv.load(out)
        x = np.ones(shape, np.float32)
        for backend in ("reference", "runtime"):
            got = model.run({"x": x}, backend=backend)["y"]
            assert got.shape == expect(x).shape and got.dtype == np.float32


@pytest.mark.parametrize("build, fragment", [
    (lambda g: (const(g, "c", [1 << 20, 1 << 20]), op(g, "y", "AddV2", "x", "c")),
     "node 'c' (type Const): tensor of shape [1048576, 1048576] is too large"),
    (lambda g: (const(g, "c", [-2, 3]), op(g, "y", "AddV2", "x", "c")),
     "node 'c' (type Const): tensor has no fully known shape"),
])
def test_huge_and_negative_constants(tmp_path, capsys, build, fragment):
    g = graph()
    build(g)
    assert_refused(tmp_path, capsys, g, fragment)


@pytest.mark.parametrize("dims, fragment", [
    ((1 << 31, 1 << 31), "input 'x': shape [2147483648, 2147483648] (float32) needs"),
    ((1, -5), "input 'x' (node 'x', type Placeholder) declares shape [1, -5]: a dim is >= 0"),
])
def test_huge_and_negative_placeholders(tmp_path, capsys, dims, fragment):
    g = graph(*dims)
    op(g, "y", "Relu", "x")
    assert_refused(tmp_path, capsys, g, fragment)


# ---- graph structure ------------------------------------------------------------------------


def test_chain_of_100k_nodes_has_no_recursion_limit(tmp_path):
    g = graph()
    prev = "x"
    for i in range(100_000):
        op(g, f"n{i}", "Relu" if i % 1000 == 999 else "Identity", prev)
        prev = f"n{i}"
    start = time.perf_counter()
    graph_ir = load_tensorflow(write(tmp_path, g))
    assert [n.op for n in graph_ir.nodes] == ["Relu"] * 100
    assert time.perf_counter() - start < 60


def test_cycle(tmp_path, capsys):
    g = graph()
    op(g, "a", "AddV2", "x", "b")
    op(g, "b", "Relu", "a")
    op(g, "o", "Relu", "b")
    assert_refused(tmp_path, capsys, g, "the graph has a cycle through 2 node(s): 'a' (AddV2), 'b'")


def test_cycle_followed_by_a_long_chain_is_found_in_linear_time(tmp_path):
    g = graph()  # naming the cycle took a pass over the rest per node after it: 4000 took 45 s
    op(g, "a", "AddV2", "x", "b")
    op(g, "b", "Relu", "a")
    prev = "b"
    for i in range(20_000):
        op(g, f"r{i}", "Relu", prev)
        prev = f"r{i}"
    path = write(tmp_path, g)
    start = time.perf_counter()
    with pytest.raises(ConversionError, match=r"cycle through 2 node\(s\): 'a' \(AddV2\), 'b' \(Relu\) "):
        mobconv.convert(path)
    assert time.perf_counter() - start < 30


def test_duplicate_names(tmp_path, capsys):
    g = graph()
    op(g, "a", "Relu", "x")
    op(g, "a", "Neg", "x")
    assert_refused(tmp_path, capsys, g, "two nodes are named 'a'")


def test_names_with_spaces_unicode_and_colons_convert(tmp_path, capsys):
    g = graph_pb2.GraphDef()
    placeholder(g, "in put ü", (1, 3))
    op(g, "a b:c", "Relu", "in put ü")
    op(g, "résumé/𝛼", "Neg", "a b:c")
    path = write(tmp_path, g)
    code, lines, out = cli(tmp_path, capsys, path)
    assert code == 0, lines
    model = mobconv.load(out)
    assert [s.name for s in model.inputs] == ["in put ü"]
    assert [s.name for s in model.outputs] == ["résumé/𝛼"]
    x = np.random.default_rng(1).standard_normal((1, 3)).astype(np.float32)
    for backend in ("reference", "runtime"):
        np.testing.assert_array_equal(model.run({"in put ü": x}, backend=backend)["résumé/𝛼"],
                                      -np.maximum(x, 0))


@pytest.mark.parametrize("name", ["a:1", "^a"])
def test_names_that_read_as_a_tensor_or_control_input(tmp_path, capsys, name):
    g = graph()
    op(g, name, "Relu", "x")
    op(g, "o", "Relu", name)
    assert_refused(tmp_path, capsys, g, f"node 1 is named {name!r}, which reads as")


# ---- files and paths ---------------------------------------------------------------------


def test_paths_with_spaces_and_unicode(tmp_path, capsys):
    folder = tmp_path / "mo dèles ü"
    folder.mkdir()
    g = graph()
    op(g, "y", "Relu", "x")
    path = write(folder, g, "m ö.pb")
    code, lines, _ = cli(tmp_path, capsys, path, folder / "out ü.mob")
    assert code == 0 and "out ü.mob" in lines[0] if lines else code == 0
    assert sorted(os.listdir(folder)) == ["m ö.pb", "out ü.mob"]
    assert main(["tf2mob", path]) == 0  # default output beside the model
    assert "m ö.mob" in os.listdir(folder)


def test_directory_that_is_not_a_saved_model(tmp_path, capsys):
    folder = tmp_path / "not a model"
    folder.mkdir()
    (folder / "variables").mkdir()
    (folder / "notes.txt").write_text("hello")
    code, lines, out = cli(tmp_path, capsys, str(folder))
    assert code == 1 and len(lines) == 1 and str(folder) in lines[0], lines
    assert "without saved_model.pb" in lines[0] and not os.path.exists(out)


def test_unreadable_file(tmp_path, capsys, monkeypatch):
    g = graph()
    op(g, "y", "Relu", "x")
    path = write(tmp_path, g)

    def denied(file, *args, **kwargs):  # as open() on a file without read permission
        raise PermissionError(13, "Permission denied", file)

    monkeypatch.setattr(tf_reader, "open", denied, raising=False)
    code, lines, out = cli(tmp_path, capsys, path)
    assert code == 1 and len(lines) == 1 and path in lines[0] and "Permission denied" in lines[0]
    assert not os.path.exists(out)


def test_output_into_a_missing_directory(tmp_path, capsys):
    g = graph()
    op(g, "y", "Relu", "x")
    path = write(tmp_path, g)
    code, lines, out = cli(tmp_path, capsys, path, tmp_path / "no" / "such" / "out.mob")
    assert code == 1 and len(lines) == 1 and "does not exist" in lines[0], lines
    assert not os.path.exists(tmp_path / "no")


def test_ctrl_c_during_conversion_leaves_no_output(tmp_path):
    g = graph()
    prev = "x"
    for i in range(20_000):  # several seconds of conversion
        op(g, f"r{i}", "Relu", prev)
        prev = f"r{i}"
    path = write(tmp_path, g)
    out = tmp_path / "out.mob"
    proc = subprocess.Popen([sys.executable, "-m", "mobconv.cli.main", "tf2mob", path, "-o",
                             str(out)], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(3.0)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines == ["mobconv: interrupted by SIGINT; out.mob was not written"] or \
        (len(lines) == 1 and "interrupted by SIGINT" in lines[0] and str(out) in lines[0]), err
    assert sorted(os.listdir(tmp_path)) == ["g.pb"]


# ---- checkpoints (SavedModel variables read without TensorFlow) ---------------------------


@pytest.mark.parametrize("size, dims, fragment", [
    (33, [8], "33 bytes do not hold shape [8] of float32"),  # was numpy's ValueError (fuzzer)
    (32, [-2, -4], "shape [-2, -4] has a negative dim"),
])
def test_checkpoint_entry_that_does_not_fit_its_data(tmp_path, size, dims, fragment):
    from mobconv.frontends.tensorflow.bundle import Bundle
    from mobconv.frontends.tensorflow.proto import tensor_bundle_pb2

    prefix = str(tmp_path / "variables")
    (tmp_path / "variables.data-00000-of-00001").write_bytes(bytes(64))
    bundle = Bundle.__new__(Bundle)  # as if variables.index had been read
    bundle.prefix, bundle.num_shards = prefix, 1
    entry = tensor_bundle_pb2.BundleEntryProto(dtype=FLOAT, size=size)
    for d in dims:
        entry.shape.dim.add().size = d
    bundle.entries = {"w": entry}
    with pytest.raises(ConversionError) as info:
        bundle.read("w")
    assert str(info.value).startswith(prefix) and fragment in str(info.value)
    with pytest.raises(ConversionError, match="tensor 'v' is not in the checkpoint index"):
        bundle.read("v")


@pytest.mark.parametrize("stage", ["writing", "before-rename"])
def test_ctrl_c_while_tf2mob_writes_leaves_no_output(tmp_path, stage):
    g = graph()
    op(g, "y", "Relu", "x")
    path = write(tmp_path, g)
    out = tmp_path / "out.mob"
    env = dict(os.environ, MOBCONV_TEST_PAUSE_AT=stage, MOBCONV_TEST_PAUSE_SECONDS="30")
    proc = subprocess.Popen([sys.executable, "-m", "mobconv.cli.main", "tf2mob", path, "-o",
                             str(out)], stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stderr.readline().strip() == f"mobconv-test: paused at {stage}"
    assert any(f.startswith(".mobconv-") for f in os.listdir(tmp_path))  # the temporary file
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and len(err.strip().splitlines()) == 1, err
    assert "interrupted by SIGINT" in err and "was not written" in err, err
    assert sorted(os.listdir(tmp_path)) == ["g.pb"]


def _conv(g):
    const(g, "w", [3, 3, 3, 4], list(np.linspace(-1.0, 1.0, 108)))
    n = op(g, "y", "Conv2D", "x", "w")
    n.attr["strides"].list.i.extend([1, 1, 1, 1])
    n.attr["padding"].s = b"SAME"


def _mean(g):
    const(g, "axes", [2], [1, 2], INT32)
    op(g, "y", "Mean", "x", "axes").attr["Tidx"].type = INT32


def test_zero_size_batch_and_spatial_dims_through_conv_and_mean(tmp_path, capsys):
    g = graph(0, 8, 8, 3)  # an empty batch convolves to an empty batch
    _conv(g)
    model = mobconv.convert(write(tmp_path, g, "batch0.pb"))
    for backend in ("reference", "runtime"):
        assert model.run({"x": np.ones((0, 8, 8, 3), np.float32)}, backend=backend)["y"].shape \
            == (0, 8, 8, 4)
    g = graph(1, 8, 0, 3)  # the mean over an empty axis is NaN, as numpy (and TensorFlow) say
    _mean(g)
    model = mobconv.convert(write(tmp_path, g, "mean.pb"))
    for backend in ("reference", "runtime"):
        got = model.run({"x": np.ones((1, 8, 0, 3), np.float32)}, backend=backend)["y"]
        assert got.shape == (1, 3) and np.isnan(got).all()
    g = graph(1, 0, 8, 3)  # an empty image has nothing to convolve: refused at conversion
    _conv(g)
    path = write(tmp_path, g, "empty_image.pb")
    code, lines, out = cli(tmp_path, capsys, path)
    assert code == 1 and len(lines) == 1 and path in lines[0] and "node 'y/Conv'" in lines[0], lines
    assert not os.path.exists(out)
