"""Hostile use of the Python API and of `mobconv run` (issue 7, findings 5-7): huge
declared input dims, outputs over 2 GiB, negative seeds, a NaN Range limit, arrays of
the wrong kind, feeds that are not a dict, bad arguments, use after close. Every
failure is the package's error type (mobconv.errors) with one message naming the
file and the input, never a numpy or ctypes exception."""
import ctypes
import mmap

import numpy as np
import pytest

import mobconv
from mobconv import api, feeds
from mobconv.cli.main import main
from mobconv.errors import ArgumentError, ClosedError, MobconvError, ShapeError, UsageError
from mobconv.formats.writer import write_model
from mobconv.ir import Graph, TensorSpec, infer_shapes

from test_api import make_tiny_onnx

runtime = pytest.importorskip("mobconv.runtime")
needs_runtime = pytest.mark.skipif(not runtime.available(), reason="libmobrt not built")


def relu_graph(shape, dtype="float32"):
    """x -> Relu -> y with the declared (possibly huge) input shape; shapes set by hand,
    so no inference or allocation ever sees the dims."""
    g = Graph("huge")
    g.add_input("x", dtype, shape)
    g.add_node("Relu", ["x"], ["y"], name="relu")
    g.outputs = ["y"]
    g.values["y"].shape, g.values["y"].dtype = tuple(shape), dtype
    return g


def gather_graph():
    """y = Gather(d[5, 3], i[2], axis 0): indices are a run-time input."""
    g = Graph("gather")
    g.add_input("i", "int64", (2,))
    g.add_constant("d", np.arange(15, dtype=np.float32).reshape(5, 3))
    g.add_node("Gather", ["d", "i"], ["y"], {"axis": 0}, name="pick")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def scale_graph():
    """y = x * 2 over float32 x[2, 3]."""
    g = Graph("scale")
    g.add_input("x", "float32", (2, 3))
    g.add_constant("two", np.array(2, np.float32))
    g.add_node("Mul", ["x", "two"], ["y"], name="mul")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, exit_code, *fragments):
    lines = err.strip().splitlines()
    assert code == exit_code, (code, err)
    assert len(lines) == 1 and lines[0].startswith("mobconv: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---- finding 5: huge declared input dims, outputs over 2 GiB, seeds, NaN Range --------


HUGE = {"2^33": (1 << 33,), "2^40x3x16x16": (1 << 40, 3, 16, 16), "over 2^64": (1 << 40, 1 << 40),
        "2^63-1 x 2^63-1": ((1 << 63) - 1, (1 << 63) - 1)}


@pytest.mark.parametrize("shape", list(HUGE.values()), ids=list(HUGE))
def test_random_inputs_refuse_huge_declared_dims_before_allocating(shape):
    spec = TensorSpec("x", "float32", shape)
    with pytest.raises(ShapeError, match=r"^big\.mob: input 'x' declares shape \[.*random inputs are "
                                         r"limited to 268,435,456 elements"):
        api.random_inputs([spec], source="big.mob")
    model = api.Model(relu_graph(shape), source="big.mob")  # as loaded, without the reader's checks
    for backend in ("reference", "auto"):
        with pytest.raises(ShapeError, match=r"^big\.mob: input 'x' declares shape"):
            model.run(backend=backend)


def test_random_inputs_refuse_rank_over_the_limit():
    spec = TensorSpec("x", "float32", (1,) * 65)
    with pytest.raises(ShapeError, match=r"^r\.mob: input 'x' has rank 65: random inputs are limited to rank 32"):
        api.random_inputs([spec], source="r.mob")
    # at the limits: accepted (drawing 2^28 elements would take seconds, so only checked)
    assert api.random_inputs([TensorSpec("x", "float32", (1,) * 32)])["x"].ndim == 32
    feeds.check_random_shape((feeds.MAX_RANDOM_ELEMENTS // 4, 4), "x")
    with pytest.raises(ShapeError, match="limited to 268,435,456 elements"):
        feeds.check_random_shape((feeds.MAX_RANDOM_ELEMENTS + 1,), "x")


@pytest.mark.parametrize("shape", [(1 << 33,), (1 << 40, 3)], ids=["2^33", "2^40x3"])
def test_cli_run_on_huge_declared_dims_is_one_line(capsys, tmp_path, shape):
    """Whichever layer refuses the file (reader, runtime or random inputs), `mobconv run`
    prints one line naming the file, exit 1."""
    path = tmp_path / "huge.mob"
    write_model(relu_graph(shape), str(path))
    code, _, err = cli(capsys, "run", path)
    one_line_error(code, err, 1, str(path))
    code, _, err = cli(capsys, "run", path, "--reference")
    one_line_error(code, err, 1, str(path))


def test_outputs_over_2_gib_are_read_whole():
    """Outputs of 2 GiB or more: ctypes.string_at takes a C int size ("Negative size"
    at 2 GiB, a silently short copy at 4 GiB + n). The view that output copies are
    taken from spans a 2 GiB + 4 KiB buffer whole: an anonymous mapping, of which only
    the three marked pages are ever touched (copying 2 GiB takes seconds to a minute on
    a busy machine; the copy itself is np.ndarray.copy, run by every other test)."""
    size = (1 << 31) + 4096
    mm = mmap.mmap(-1, size)
    try:
        mm[:4] = b"head"
        mm[size - 4:] = b"tail"
        mm[1 << 31:(1 << 31) + 4] = b"2GiB"
        anchor = ctypes.c_char.from_buffer(mm)
        try:
            view = runtime._view_out(ctypes.addressof(anchor), size, np.uint8, (2, size // 2))
            assert view.shape == (2, size // 2) and view.dtype == np.uint8
            flat = view.reshape(-1)
            assert flat.size == size
            assert bytes(flat[:4]) == b"head" and bytes(flat[-4:]) == b"tail"
            assert bytes(flat[1 << 31:(1 << 31) + 4]) == b"2GiB"
            wide = runtime._view_out(ctypes.addressof(anchor), size, np.float32, (size // 4,))
            assert wide.shape == (size // 4,) and wide[:1].tobytes() == b"head"
            del view, flat, wide
        finally:
            del anchor
    finally:
        mm.close()
    buf = np.arange(6, dtype=np.float32)
    got = runtime._copy_out(buf.ctypes.data, buf.nbytes, np.float32, (2, 3))
    buf[:] = -1  # a copy, not a view of the runtime's memory
    np.testing.assert_array_equal(got, np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(runtime.RuntimeError_, match="has 7 bytes, expected 8"):
        runtime._copy_out(0, 7, np.float32, (2,))


def test_negative_seed_is_a_clear_error(capsys, tmp_path):
    with pytest.raises(ArgumentError, match="seed must be a non-negative integer, got -1"):
        api.random_inputs([TensorSpec("x", "float32", (2,))], seed=-1)
    model = api.Model(scale_graph(), source="scale.mob")
    for seed in (-1, 1.5, "3", True):
        with pytest.raises(ArgumentError, match="seed must be a non-negative integer"):
            model.run(seed=seed, backend="reference")
    path = tmp_path / "scale.mob"
    write_model(scale_graph(), str(path))
    code, _, err = cli(capsys, "run", path, "--seed", "-5")
    one_line_error(code, err, 2, "--seed -5: must be a non-negative integer")
    assert cli(capsys, "run", path, "--seed", "5")[0] == 0


def test_range_with_nan_limit_is_one_line_in_validate_and_run(capsys, tmp_path):
    g = Graph("range_nan")
    g.add_input("x", "float32", (1,))
    for name, v in (("s", 0.0), ("l", np.nan), ("d", 1.0)):
        g.add_constant(name, np.array(v, np.float32))
    g.add_node("Range", ["s", "l", "d"], ["r"], name="r")
    g.add_node("Add", ["x", "x"], ["y"], name="add")
    g.outputs = ["y", "r"]
    g.values["r"].shape, g.values["r"].dtype = (3,), "float32"
    g.values["y"].shape, g.values["y"].dtype = (1,), "float32"
    path = tmp_path / "range_nan.mob"
    write_model(g, str(path))
    code, out, err = cli(capsys, "validate", path)
    assert code == 1 and "Traceback" not in err, err
    assert "FAIL shapes" in out and "start, limit and delta must be finite" in out, out
    code, _, err = cli(capsys, "run", path, "--reference")
    one_line_error(code, err, 1, str(path), "'r' (Range)", "must be finite")


# ---- finding 6: run-time errors name the model file ------------------------------------


@needs_runtime
def test_run_time_errors_name_the_model_file(tmp_path):
    path = str(tmp_path / "gather.mob")
    write_model(gather_graph(), path)
    bad = {"i": np.array([0, 7])}
    model = mobconv.load(path)
    with pytest.raises(MobconvError, match=rf"{path}: .*'pick' \(Gather\).*7"):
        model.run(bad, backend="runtime")
    with pytest.raises(MobconvError, match=rf"^{path}: node 'pick' \(Gather\)"):
        model.run(bad, backend="reference")
    with pytest.raises(ShapeError, match=rf"^{path}: unknown input\(s\) j"):
        model.run({"i": np.array([0, 1]), "j": np.zeros(1)})
    with runtime.Interpreter(path) as it:
        with pytest.raises(runtime.RuntimeError_, match=rf"{path}: .*'pick' \(Gather\)"):
            it.run(bad)
        with pytest.raises(runtime.RuntimeError_, match=rf"{path}: resize of input 'i': dim 0 is fixed to 2"):
            it.resize("i", (3,))
        with pytest.raises(ArgumentError, match=rf"^{path}: unknown input\(s\) 'j' \(inputs: i\)"):
            it.run({"i": np.array([0, 1]), "j": np.zeros(1)})
        with pytest.raises(ArgumentError, match=rf"^{path}: no input named 'j'"):
            it.resize("j", (2,))
        np.testing.assert_array_equal(it.run({"i": np.array([4, 0])})["y"], [[12, 13, 14], [0, 1, 2]])
    # a converted model (not a .mob) runs from bytes: errors name its source file
    with runtime.Interpreter(open(path, "rb").read(), name="from_memory.onnx") as it:
        with pytest.raises(runtime.RuntimeError_, match=r"from_memory\.onnx: .*'pick' \(Gather\)"):
            it.run(bad)


# ---- finding 7: the Python API is strict and raises the package's errors ---------------


WRONG_KINDS = {
    "int32": np.ones((2, 3), np.int32), "uint8": np.ones((2, 3), np.uint8), "bool": np.ones((2, 3), bool),
    "complex": np.ones((2, 3), np.complex64), "object": np.ones((2, 3), object),
    "str": np.full((2, 3), "1.0"), "python ints": [[1, 2, 3], [4, 5, 6]],
}


@pytest.mark.parametrize("backend", ["reference", pytest.param("runtime", marks=needs_runtime)])
@pytest.mark.parametrize("kind", list(WRONG_KINDS))
def test_wrong_array_kinds_for_a_float_input_are_refused(kind, backend):
    model = api.Model(scale_graph(), source="scale.mob")
    with pytest.raises(ArgumentError, match=rf"^scale\.mob: input 'x' is float32, got a \w+ array; it is not cast"):
        model.run({"x": WRONG_KINDS[kind]}, backend=backend)


@needs_runtime
@pytest.mark.parametrize("kind", list(WRONG_KINDS))
def test_interpreter_refuses_wrong_array_kinds(kind):
    from mobconv.formats.writer import to_bytes

    with runtime.Interpreter(to_bytes(scale_graph()), name="scale.mob") as it:
        with pytest.raises(ArgumentError, match=r"^scale\.mob: input 'x' is float32, got a \w+ array"):
            it.run({"x": WRONG_KINDS[kind]})
        with pytest.raises(ValueError):  # ArgumentError is also a ValueError (and a TypeError)
            it.run({"x": WRONG_KINDS[kind]})


@pytest.mark.parametrize("backend", ["reference", pytest.param("runtime", marks=needs_runtime)])
def test_float64_is_cast_to_float32_like_the_cli(backend, tmp_path):
    """float -> float is cast by value (mobconv run does the same with a note); only a
    change of kind is refused. The numpy oracle: x.astype(float32) * 2."""
    x = np.random.default_rng(0).standard_normal((2, 3))
    write_model(scale_graph(), str(tmp_path / "scale.mob"))
    model = mobconv.load(str(tmp_path / "scale.mob"))
    got = model.run({"x": x}, backend=backend)["y"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x.astype(np.float32) * np.float32(2))


def test_integer_and_bool_inputs_follow_the_cli_rules():
    int_spec, bool_spec = "int32", "bool"
    assert feeds.as_input_array(np.array([1, 2], np.int64), int_spec, "i").dtype == np.int32
    with pytest.raises(ArgumentError, match=r"input 'i' is int32, got int64 values outside the int32 range"):
        feeds.as_input_array(np.array([1 << 40]), int_spec, "i")
    with pytest.raises(ArgumentError, match=r"input 'i' is int32, got a float64 array"):
        feeds.as_input_array(np.array([1.0]), int_spec, "i")
    assert feeds.as_input_array(np.array([0, 1]), bool_spec, "b").dtype == bool
    with pytest.raises(ArgumentError, match="values other than 0 and 1"):
        feeds.as_input_array(np.array([0, 2]), bool_spec, "b")


@pytest.mark.parametrize("backend", ["reference", pytest.param("runtime", marks=needs_runtime)])
def test_feeds_must_be_a_dict_of_str_names(backend):
    model = api.Model(scale_graph(), source="scale.mob")
    x = np.zeros((2, 3), np.float32)
    cases = [(x, "got a numpy array"), ([x], "got a list"), ({1: x}, "input names must be strings, got 1"),
             ({b"x": x}, "input names must be strings, got b'x'")]
    for given, message in cases:
        with pytest.raises(ArgumentError, match=message):
            model.run(given, backend=backend)
        with pytest.raises(TypeError):  # ArgumentError is also a TypeError
            model.run(given, backend=backend)


@needs_runtime
def test_interpreter_arguments_are_checked(tmp_path):
    path = str(tmp_path / "scale.mob")
    write_model(scale_graph(), path)
    for threads in (2.5, 0, -1, 257, True, "2", None):
        with pytest.raises(ArgumentError, match=r"threads must be"):
            runtime.Interpreter(path, threads=threads)
    with pytest.raises(ArgumentError, match=r"isa must be one of scalar, avx2, avx512, neon, any, avx_vnni, avx512_vnni, neon_dot, "
                       r"neon_fp16 or None, got 'bogus'"):
        runtime.Interpreter(path, isa="bogus")
    for model in (None, 3, 1.5):
        with pytest.raises(ArgumentError, match="needs a .mob file path"):
            runtime.Interpreter(model)
    it = runtime.Interpreter(path, threads=2)
    for given, message in (({1: 2}, "input names must be strings"), (np.zeros((2, 3)), "got a numpy array"),
                           ([], "got a list")):
        with pytest.raises(ArgumentError, match=message):
            it.run(given)
    with pytest.raises(ArgumentError, match="missing input 'x'"):
        it.run({})
    with pytest.raises(ArgumentError, match="shape must be a sequence of ints"):
        it.resize("x", (2.5, 3))
    with pytest.raises(ArgumentError, match=r"input index 3 out of range \(the model has 1 input"):
        it.resize(3, (2, 3))
    with pytest.raises(ArgumentError, match="an input is named by a str"):
        it.resize(None, (2, 3))
    it.close()
    for call in (lambda: it.run({"x": np.zeros((2, 3), np.float32)}), lambda: it.inputs, it.invoke,
                 lambda: it.resize("x", (2, 3)), it.profile, it.outputs_now):
        with pytest.raises(ClosedError, match=rf"^{path}: the interpreter is closed"):
            call()
    it.close()  # twice is fine


@needs_runtime
def test_model_run_threads_are_checked():
    model = api.Model(scale_graph(), source="scale.mob")
    for threads in (2.5, 0, -3, 1000, True):
        with pytest.raises(ArgumentError, match="threads must be"):
            model.run({"x": np.zeros((2, 3), np.float32)}, threads=threads)


@needs_runtime
def test_shared_model_cannot_be_closed_under_its_interpreters(tmp_path):
    path = str(tmp_path / "scale.mob")
    write_model(scale_graph(), path)
    model = runtime.Model(path)
    it = runtime.Interpreter(model)
    with pytest.raises(runtime.RuntimeError_, match=r"still used by 1 open Interpreter\(s\); close them first"):
        model.close()
    np.testing.assert_array_equal(it.run({"x": np.ones((2, 3), np.float32)})["y"], np.full((2, 3), 2, np.float32))
    it.close()
    model.close()
    with pytest.raises(ClosedError, match="the runtime.Model is closed"):
        runtime.Interpreter(model)
    with pytest.raises(ClosedError):
        model.num_operators


def test_load_convert_save_need_a_path(tmp_path):
    for fn, what in ((mobconv.load, "load()"), (mobconv.convert, "convert()")):
        for bad in (None, 42):
            with pytest.raises(ArgumentError, match=rf"{what.replace('(', '[(]').replace(')', '[)]')} needs a file path"):
                fn(bad)
        with pytest.raises(ArgumentError, match="got an empty string"):
            fn("")
    model = api.Model(scale_graph())
    with pytest.raises(ArgumentError, match=r"save\(\) needs a file path"):
        model.save(None)


@pytest.mark.parametrize("dims", [(0, 3, 16, 16), (-1, 3, 16, 16), (1.5, 3, 16, 16), (True, 3, 16, 16),
                                  ("1x", 3, 16, 16), (None, 3, 16, 16), (1 << 63, 3, 16, 16)])
def test_convert_input_shapes_follow_the_cli_rule(tmp_path, capsys, dims):
    """convert() refuses what `--input-shape` refuses (a 0 dim included), as a UsageError."""
    tiny = make_tiny_onnx(tmp_path / "tiny.onnx")
    with pytest.raises(UsageError, match=rf"tiny\.onnx: input_shapes\['x'\] = .*dim 0 .* is not a positive integer"):
        mobconv.convert(tiny, input_shapes={"x": dims})
    if dims[0] == 0:
        code, _, err = cli(capsys, "onnx2mob", tiny, "--input-shape", "x=0,3,16,16", "-o", tmp_path / "t.mob")
        one_line_error(code, err, 2, "is not a positive integer")
    with pytest.raises(UsageError, match="must be a tuple of dims"):
        mobconv.convert(tiny, input_shapes={"x": 5})
    with pytest.raises(UsageError, match="must be a dict"):
        mobconv.convert(tiny, input_shapes=[("x", (1, 3, 16, 16))])
    assert mobconv.convert(tiny, input_shapes={"x": ("n", 3, 16, 16)}).inputs[0].shape == ("n", 3, 16, 16)


def test_run_statistics_are_chunked_and_equal_numpys(monkeypatch):
    """`mobconv run` summarizes outputs in float64 chunks (a 2 GiB uint8 output would need
    16 GiB as one float64 copy); the oracle is numpy on the whole float64 array."""
    from mobconv.cli import run as run_cmd

    monkeypatch.setattr(run_cmd, "STATS_CHUNK", 7)
    rng = np.random.default_rng(5)
    for a in (rng.standard_normal((5, 13)).astype(np.float32) * 100 + 3, rng.integers(0, 255, 50).astype(np.uint8),
              np.array([2.5]), np.arange(7, dtype=np.int64)):
        f = a.astype(np.float64)
        np.testing.assert_allclose(run_cmd.summary_stats(a), (f.min(), f.max(), f.mean(), f.std()), rtol=1e-12)
    with_nan = np.array([1.0, np.nan] + [0.0] * 20)
    assert all(np.isnan(v) for v in run_cmd.summary_stats(with_nan))
