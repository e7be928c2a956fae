"""C API features through ctypes (the ABI the JNI and Swift bindings use):
the observer callback (every intermediate of a run, equal to the numpy
reference's keep_intermediates values), caller-memory inputs without a copy,
a symbolic batch dim resized through the C API and through Interpreter.resize,
one model shared by interpreters on several threads (ctypes releases the GIL),
version queries, and the last-error string of each failure path."""
import ctypes
import threading

import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.reference.interpreter import run as reference_run

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

lib = runtime._load()
P = ctypes.c_void_p
TOL = dict(rtol=1e-4, atol=1e-5)


def batch_net(batch="N", size=12, channels=16):
    """Conv, depthwise conv, swish, pooling, Flatten, Gemm, Softmax over a batch dim
    that may be symbolic."""
    rng = np.random.default_rng(3)
    g = Graph("batch_net")
    g.add_input("x", "float32", (batch, 3, size, size))
    g.add_constant("w1", rng.standard_normal((channels, 3, 3, 3)).astype(np.float32) * 0.3)
    g.add_constant("b1", rng.standard_normal(channels).astype(np.float32))
    g.add_constant("w2", rng.standard_normal((channels, 1, 3, 3)).astype(np.float32) * 0.3)
    g.add_constant("fc", rng.standard_normal((5, channels)).astype(np.float32) * 0.2)
    g.add_node("Conv", ["x", "w1", "b1"], ["c1"], {"pads": [1, 1, 1, 1], "activation": "Relu"})
    g.add_node("Conv", ["c1", "w2"], ["c2"], {"group": channels, "strides": [2, 2], "pads": [1, 1, 1, 1]})
    g.add_node("Sigmoid", ["c2"], ["s"])
    g.add_node("Mul", ["c2", "s"], ["m"])
    g.add_node("GlobalAveragePool", ["m"], ["gap"])
    g.add_node("Flatten", ["gap"], ["flat"], {"axis": 1})
    g.add_node("Gemm", ["flat", "fc"], ["logits"], {"transB": 1})
    g.add_node("Softmax", ["logits"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def concrete(g, n):
    """The same graph with batch fixed to n (for the numpy reference)."""
    c = g.copy()
    c.values["x"].shape = (n,) + tuple(c.values["x"].shape[1:])
    for name, v in c.values.items():
        if v.data is None and name != "x":
            v.shape = None
    infer_shapes(c)
    return c


def x_of(n, size=12, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


# ---- observer --------------------------------------------------------------------


@pytest.mark.parametrize("isa", ["scalar", None])
def test_observer_delivers_every_intermediate_equal_to_reference(isa):
    g = concrete(batch_net(), 2)
    x = x_of(2)
    ref = reference_run(g, {"x": x}, keep_intermediates=True)
    seen, order = {}, []

    def observer(index, name, op_type, tensors):
        order.append(index)
        seen.update(tensors)

    with runtime.Interpreter(to_bytes(g), isa=isa) as it:
        outputs = it.run({"x": x}, observer=observer)
        assert order == list(range(len(g.nodes))), "one callback per operator, in file order (folded ones too)"
        every = it.run_with_intermediates({"x": x})
        again = it.run({"x": x})  # the observer is removed after the run
    produced = {o for n in g.nodes for o in n.outputs}
    assert set(seen) == produced
    for name in produced:
        np.testing.assert_allclose(seen[name], ref[name], err_msg=name, **TOL)
        np.testing.assert_array_equal(every[name], seen[name], err_msg=name)
    np.testing.assert_array_equal(outputs["y"], again["y"])
    assert set(every) == produced | {"x"}


def test_observer_on_zoo_ssd_head(tmp_path):
    """Calibration on a real graph: the Caffe SSD head (PriorBox folded, DetectionOutput last)."""
    from mobconv.frontends.caffe import load_caffe
    from model_zoo.caffe.nets import build_ssd

    g = load_caffe(*build_ssd(str(tmp_path)))
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)  # H/W symbolic
    ref = reference_run(g, {"data": x}, keep_intermediates=True)
    with runtime.Interpreter(to_bytes(g)) as it:
        got = it.run_with_intermediates({"data": x})
    for node in g.nodes:
        for name in node.outputs:
            if node.op == "DetectionOutput":
                assert got[name].shape == ref[name].shape
                continue
            np.testing.assert_allclose(got[name], ref[name], err_msg=f"{node.op} {name}", **TOL)


def test_observer_abort_and_exception():
    g = concrete(batch_net(), 1)
    with runtime.Interpreter(to_bytes(g)) as it:
        with pytest.raises(runtime.RuntimeError_, match="observer aborted the invoke after operator 2"):
            it.run({"x": x_of(1)}, observer=lambda i, *_: i != 2 and None)

        def boom(*_):
            raise KeyError("from the observer")

        with pytest.raises(KeyError, match="from the observer"):
            it.run({"x": x_of(1)}, observer=boom)
        assert it.run({"x": x_of(1)})["y"].shape == (1, 5)


# ---- caller memory -----------------------------------------------------------------


def test_set_input_pointer_reads_caller_memory_without_copy():
    g = concrete(batch_net(), 2)
    ref = {s: reference_run(g, {"x": x_of(2, seed=s)})["y"] for s in (0, 1)}
    buf = x_of(2, seed=0)
    with runtime.Interpreter(to_bytes(g)) as it:
        it.set_input_pointer("x", buf)
        it.invoke()
        np.testing.assert_allclose(it.outputs_now()["y"], ref[0], **TOL)
        buf[...] = x_of(2, seed=1)  # changed in place: the next invoke sees it (no copy was taken)
        it.invoke()
        np.testing.assert_allclose(it.outputs_now()["y"], ref[1], **TOL)
        internal = lib.mobrt_interpreter_input_data(it._it, 0)
        assert internal != buf.ctypes.data, "the interpreter's own buffer is not the caller's memory"
        with pytest.raises(runtime.RuntimeError_, match="needs 3456 bytes, got 1728"):
            it.set_input_pointer("x", buf[:1].copy())
        it.set_input_pointer("x", None)  # back to the internal buffer
        it.run({"x": x_of(2, seed=0)})


# ---- symbolic batch --------------------------------------------------------------


def test_symbolic_batch_through_the_c_api():
    g = batch_net()
    data = to_bytes(g)
    model, it = P(), P()
    assert lib.mobrt_model_create_from_buffer(data, len(data), 1, ctypes.byref(model)) == 0
    try:
        assert lib.mobrt_interpreter_create(model, None, ctypes.byref(it)) == 0
        dt, rank, dims = ctypes.c_int(), ctypes.c_int(), (ctypes.c_int64 * 8)()
        assert lib.mobrt_interpreter_input_info(it, 0, ctypes.byref(dt), ctypes.byref(rank), dims) == 0
        assert (dt.value, rank.value, list(dims[:4])) == (0, 4, [-1, 3, 12, 12])
        assert lib.mobrt_interpreter_input_dim_symbol(it, 0, 0) == b"N"
        assert lib.mobrt_interpreter_input_dim_symbol(it, 0, 1) is None
        assert lib.mobrt_interpreter_invoke(it) == 7  # NOT_READY
        assert b"resize" in lib.mobrt_interpreter_last_error(it)
        for n in (1, 3, 1):
            x = x_of(n, seed=n)
            shape = (ctypes.c_int64 * 4)(n, 3, 12, 12)
            assert lib.mobrt_interpreter_resize_input(it, 0, 4, shape) == 0
            assert lib.mobrt_interpreter_set_input(it, 0, x.ctypes.data, x.nbytes) == 0
            assert lib.mobrt_interpreter_invoke(it) == 0
            assert lib.mobrt_interpreter_output_info(it, 0, ctypes.byref(dt), ctypes.byref(rank), dims) == 0
            assert list(dims[:rank.value]) == [n, 5]
            size = lib.mobrt_interpreter_output_size(it, 0)
            got = np.frombuffer(ctypes.string_at(lib.mobrt_interpreter_output_data(it, 0), size), np.float32)
            exp = reference_run(concrete(g, n), {"x": x})["y"]
            np.testing.assert_allclose(got.reshape(n, 5), exp, **TOL)
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(model)


def test_symbolic_batch_through_interpreter_resize():
    g = batch_net()
    with runtime.Interpreter(to_bytes(g), threads=2) as it:
        assert it.inputs[0]["shape"] == (-1, 3, 12, 12) and it.input_symbol("x", 0) == "N"
        for n in (1, 3):
            it.resize("x", (n, 3, 12, 12))
            assert it.inputs[0]["shape"] == (n, 3, 12, 12) and it.outputs[0]["shape"] == (n, 5)
            x = x_of(n, seed=10 + n)
            got = it.run({"x": x})["y"]
            np.testing.assert_allclose(got, reference_run(concrete(g, n), {"x": x})["y"], **TOL)
        with pytest.raises(runtime.RuntimeError_, match="dim 1 is fixed to 3 in the model, got 4"):
            it.resize("x", (2, 4, 12, 12))


# ---- sharing and threads ------------------------------------------------------------


def test_one_model_shared_by_interpreters_on_threads():
    g = batch_net(batch=2, size=40, channels=32)
    model = runtime.Model(to_bytes(g))
    inputs = [x_of(2, size=40, seed=s) for s in range(6)]
    with runtime.Interpreter(model) as serial:
        expected = [serial.run({"x": x})["y"] for x in inputs]
    results, errors = {}, []

    def work(t):
        try:
            with runtime.Interpreter(model, threads=1 + t % 2) as it:
                for rep in range(3):
                    for k, x in enumerate(inputs):
                        results[(t, rep, k)] = it.run({"x": x})["y"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 4 * 3 * len(inputs)
    for (t, rep, k), got in results.items():
        np.testing.assert_array_equal(got, expected[k], err_msg=f"thread {t} rep {rep} input {k}")
    model.close()


def test_invoke_releases_the_gil():
    """Runtime calls go through ctypes.CDLL, whose foreign functions release the GIL
    for the duration of the call (PyDLL's would hold it), so Python threads keep
    running while one thread is inside invoke. Checked on the function objects
    themselves rather than by timing threads (this machine is shared and noisy)."""
    lib = runtime._load()
    assert isinstance(lib, ctypes.CDLL) and not isinstance(lib, ctypes.PyDLL)
    for name in ("mobrt_interpreter_invoke", "mobrt_interpreter_create", "mobrt_model_create_from_file"):
        fn = getattr(lib, name)
        assert not fn._flags_ & ctypes._FUNCFLAG_PYTHONAPI, f"{name} would hold the GIL"


# ---- version and errors ----------------------------------------------------------------


def test_version_query():
    assert lib.mobrt_version() == b"0.1.0" and runtime.version() == "0.1.0"
    assert lib.mobrt_format_version_major() == 1
    assert lib.mobrt_status_name(4) == b"MOBRT_SHAPE_ERROR" and lib.mobrt_status_name(99) == b"MOBRT_UNKNOWN"


def global_error():
    return lib.mobrt_global_last_error().decode()


def test_last_error_strings(tmp_path):
    model, it = P(), P()
    # model creation
    assert lib.mobrt_model_create_from_file(str(tmp_path / "missing.mob").encode(), ctypes.byref(model)) == 6
    assert "missing.mob: cannot open" in global_error() and model.value is None
    assert lib.mobrt_model_create_from_file(None, ctypes.byref(model)) == 1 and global_error() == "path is NULL"
    assert lib.mobrt_model_create_from_file(b"x", None) == 1 and global_error() == "out is NULL"
    assert lib.mobrt_model_create_from_buffer(None, 0, 1, ctypes.byref(model)) == 1
    assert "data is NULL or size is 0" in global_error()
    assert lib.mobrt_model_create_from_buffer(b"not a model at all", 18, 1, ctypes.byref(model)) == 2
    assert "file identifier" in global_error()
    empty = tmp_path / "empty.mob"
    empty.write_bytes(b"")
    assert lib.mobrt_model_create_from_file(str(empty).encode(), ctypes.byref(model)) == 2
    assert "file is empty" in global_error()
    # options
    opts = lib.mobrt_options_create()
    assert lib.mobrt_options_set_num_threads(opts, 0) == 1 and "threads must be in [1, 256], got 0" in global_error()
    assert lib.mobrt_options_set_max_isa(opts, 9) == 1 and "unknown isa 9" in global_error()
    assert lib.mobrt_options_set_num_threads(None, 2) == 1 and global_error() == "options is NULL"
    # interpreter creation
    assert lib.mobrt_interpreter_create(None, opts, ctypes.byref(it)) == 1 and global_error() == "model is NULL"
    lib.mobrt_options_delete(opts)
    data = to_bytes(batch_net())
    assert lib.mobrt_model_create_from_buffer(data, len(data), 1, ctypes.byref(model)) == 0
    assert lib.mobrt_interpreter_create(model, None, ctypes.byref(it)) == 0

    def err():
        return lib.mobrt_interpreter_last_error(it).decode()

    try:
        x = x_of(2)
        assert lib.mobrt_interpreter_set_input(it, 0, x.ctypes.data, x.nbytes) == 7
        assert "resize the symbolic inputs first" in err()
        assert lib.mobrt_interpreter_output_data(it, 0) is None
        dims = (ctypes.c_int64 * 4)(2, 3, 12, 12)
        assert lib.mobrt_interpreter_resize_input(it, 1, 4, dims) == 1 and "input index 1 out of range" in err()
        assert lib.mobrt_interpreter_resize_input(it, 0, 3, dims) == 4 and "rank 3 differs from the model's 4" in err()
        assert lib.mobrt_interpreter_resize_input(it, 0, 9, dims) == 1 and "rank out of range" in err()
        bad = (ctypes.c_int64 * 4)(-2, 3, 12, 12)
        assert lib.mobrt_interpreter_resize_input(it, 0, 4, bad) == 4 and "dim 0 is negative" in err()
        bad = (ctypes.c_int64 * 4)(2, 3, 12, 13)
        assert lib.mobrt_interpreter_resize_input(it, 0, 4, bad) == 4
        assert "dim 3 is fixed to 12 in the model, got 13" in err()
        assert lib.mobrt_interpreter_resize_input(it, 0, 4, dims) == 0
        assert lib.mobrt_interpreter_set_input(it, 0, x.ctypes.data, 5) == 1
        assert "input 'x' needs 3456 bytes, got 5" in err()
        assert lib.mobrt_interpreter_set_input(it, 0, None, x.nbytes) == 1 and "data is NULL" in err()
        assert lib.mobrt_interpreter_set_input_pointer(it, 0, x.ctypes.data + 1, x.nbytes) == 1
        assert "not aligned to the element size" in err()
        assert lib.mobrt_interpreter_output_data(it, 0) is None  # before the first invoke
        assert lib.mobrt_interpreter_input_info(it, 5, None, None, None) == 1
        assert "input index 5 out of range" in global_error()
        assert lib.mobrt_interpreter_profile_entry(it, 0, None) == 1 and global_error() == "NULL argument"
        assert lib.mobrt_interpreter_invoke(None) == 1 and global_error() == "interpreter is NULL"
        assert lib.mobrt_interpreter_input_index(it, b"nope") == -1 and lib.mobrt_interpreter_input_index(it, b"x") == 0
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(model)


def test_errors_name_the_op_and_rule():
    """A kernel-level failure at prepare names the operator and the broken rule."""
    g = Graph("bad_resize")
    g.add_input("x", "float32", (1, 1, 4, 4))
    g.add_constant("scales", np.array([1, 1, 2, 2], np.float32))
    g.add_node("Resize", ["x", "", "scales"], ["y"], {"mode": "lanczos"}, name="up")
    g.outputs = ["y"]
    g.values["y"].shape = (1, 1, 8, 8)
    g.values["y"].dtype = "float32"
    with pytest.raises(runtime.RuntimeError_, match=r"op 'up' \(Resize\): mode 'lanczos' is not nearest, linear or cubic"):
        runtime.Interpreter(to_bytes(g))
    g2 = Graph("missing_attr")
    g2.add_input("x", "float32", (1, 2, 3, 4))
    g2.add_node("Concat", ["x"], ["y"], {}, name="cat")
    g2.outputs = ["y"]
    g2.values["y"].shape = (1, 2, 3, 4)
    g2.values["y"].dtype = "float32"
    from mobconv.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match=r"operator 0 \('cat', Concat\): required attribute 'axis' is missing"):
        runtime.Interpreter(to_bytes(g2))
