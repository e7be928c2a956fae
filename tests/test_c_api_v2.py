"""The C API the mobile bindings wrap (mobrt.h), called through ctypes on the built
libmobrt: tensor accessors (quantization parameters, byte sizes) of interpreters and
of models without an interpreter, the signature/preprocessing the file records,
cancellation from another thread, error reporters, bad arguments, the profile and
tensor-observer accessors that replace the frozen structs.

Oracles: the IR graph the file was written from (names, dtypes, shapes, quantization,
preprocessing), numpy (a MatMul/Tanh chain), the Python binding's deprecated calls."""
import ctypes
import os
import threading
import time

import numpy as np
import pytest

import mobconv
from mobconv import runtime
from mobconv.formats.writer import write_model
from mobconv.ir import Graph, infer_shapes
from mobconv.ir.graph import Preprocessing, Signature, TensorSpec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(ROOT, "model_zoo", "onnx")

OK, INVALID_ARGUMENT, IO_ERROR, CANCELLED = 0, 1, 6, 10
REPORTER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
TENSOR_OBSERVER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                                   ctypes.c_int, ctypes.POINTER(ctypes.c_void_p))
P = ctypes.c_void_p


@pytest.fixture(scope="module")
def lib():
    L = runtime._load()
    L.mobrt_set_error_reporter.restype = None
    L.mobrt_set_error_reporter.argtypes = [REPORTER, P]
    L.mobrt_options_set_error_reporter.argtypes = [P, REPORTER, P]
    L.mobrt_interpreter_set_tensor_observer.argtypes = [P, TENSOR_OBSERVER, P]
    for name in ("op_name", "op_type", "kernel"):
        fn = getattr(L, "mobrt_interpreter_profile_" + name)
        fn.restype, fn.argtypes = ctypes.c_char_p, [P, ctypes.c_int]
    L.mobrt_interpreter_profile_microseconds.restype = ctypes.c_double
    L.mobrt_interpreter_profile_microseconds.argtypes = [P, ctypes.c_int]
    L.mobrt_dtype_name.restype, L.mobrt_dtype_name.argtypes = ctypes.c_char_p, [ctypes.c_int]
    return L


def load(L, path):
    m = P()
    assert L.mobrt_model_create_from_file(str(path).encode(), ctypes.byref(m)) == OK, L.mobrt_global_last_error()
    return m


def interpreter(L, m, options=None):
    it = P()
    assert L.mobrt_interpreter_create(m, options, ctypes.byref(it)) == OK, L.mobrt_global_last_error()
    return it


def shape(L, t):
    return tuple(L.mobrt_tensor_dim(t, k) for k in range(L.mobrt_tensor_rank(t)))


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    """The zoo's digits MobileNetV2 quantized by mobconv's quantizer with int8 inputs and outputs."""
    from mobconv import quantize

    calib = os.path.join(ZOO, "digits_calib")
    files = sorted(f for f in os.listdir(calib) if f.endswith(".npy"))[:4]
    q = quantize.quantize(mobconv.convert(os.path.join(ZOO, "digits_mobilenetv2.onnx")),
                          [{"input": np.load(os.path.join(calib, f))} for f in files],
                          scheme="int8", io_dtype="int8", progress=False)
    path = tmp_path_factory.mktemp("capi") / "digits.int8.mob"
    q.save(str(path))
    return path, q.graph


def signature_model(path):
    rng = np.random.default_rng(3)
    g = Graph("sig")
    g.add_input("image", "float32", ("batch", 3, 4, 4))
    g.add_input("bias", "float32", (2,))
    g.add_constant("w", rng.standard_normal((2, 3, 1, 1)).astype(np.float32))
    g.add_node("Conv", ["image", "w", "bias"], ["c"])
    g.add_node("GlobalAveragePool", ["c"], ["p"])
    g.add_node("Flatten", ["p"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    g.signature = Signature(inputs=[TensorSpec("image", "float32", ("batch", 3, 4, 4), "NCHW"),
                                    TensorSpec("bias", "float32", (2,), "")],
                            outputs=[TensorSpec("y", "float32", ("batch", 2), "")],
                            preprocessing=Preprocessing([123.5, 116.75, 103.25], [0.5, 0.25, 0.125], "BGR"))
    write_model(g, str(path))
    return g


DTYPES = {0: np.float32, 1: np.float16, 2: None, 3: np.int8, 4: np.uint8, 5: np.int16, 6: np.int32,
          7: np.int64, 8: np.bool_}


def test_dtype_size_and_name(lib):
    for code, np_type in DTYPES.items():
        want = 2 if np_type is None else np.dtype(np_type).itemsize  # 2: bfloat16
        assert lib.mobrt_dtype_size(code) == want
        assert lib.mobrt_dtype_name(code).decode() == ("bfloat16" if np_type is None else np.dtype(np_type).name)
    assert lib.mobrt_dtype_size(9) == 0 and lib.mobrt_dtype_size(-1) == 0
    assert lib.mobrt_dtype_name(99) == b"unknown"
    assert lib.mobrt_status_name(CANCELLED) == b"MOBRT_CANCELLED"


def test_model_level_info_and_preprocessing_without_interpreter(lib, tmp_path):
    g = signature_model(tmp_path / "sig.mob")
    m = load(lib, tmp_path / "sig.mob")
    try:
        assert lib.mobrt_model_num_inputs(m) == 2 and lib.mobrt_model_num_outputs(m) == 1
        for k, spec in enumerate(g.signature.inputs):
            t = lib.mobrt_model_input_tensor(m, k)
            assert lib.mobrt_tensor_name(t).decode() == spec.name
            assert lib.mobrt_tensor_dtype(t) == 0
            v = g.values[spec.name]
            assert shape(lib, t) == tuple(-1 if isinstance(d, str) else d for d in v.shape)
            assert [lib.mobrt_tensor_dim_symbol(t, d) for d in range(len(v.shape))] == \
                [d.encode() if isinstance(d, str) else None for d in v.shape]
            # declared shape: symbolic -> no byte size yet; fixed -> elements * 4
            fixed = all(isinstance(d, int) for d in v.shape)
            assert lib.mobrt_tensor_byte_size(t) == (4 * int(np.prod(v.shape)) if fixed else 0)
            assert lib.mobrt_tensor_data(t) is None and lib.mobrt_tensor_mutable_data(t) is None
            assert lib.mobrt_tensor_quant_scale_count(t) == 0 and lib.mobrt_tensor_quant_axis(t) == -1
            assert lib.mobrt_model_input_layout(m, k).decode() == spec.layout
        out = lib.mobrt_model_output_tensor(m, 0)
        assert lib.mobrt_tensor_name(out) == b"y" and shape(lib, out) == (-1, 2)
        assert lib.mobrt_model_output_layout(m, 0) == b""

        pre = g.signature.preprocessing
        buf = (ctypes.c_float * 8)()
        assert lib.mobrt_model_input_mean(m, 0, buf, 8) == 3
        assert list(buf[:3]) == pre.mean
        assert lib.mobrt_model_input_scale(m, 0, buf, 2) == 3  # count, though only 2 copied
        assert list(buf[:2]) == pre.scale[:2] and buf[2] == pre.mean[2]
        assert lib.mobrt_model_input_scale(m, 0, None, 0) == 3
        assert lib.mobrt_model_input_channel_order(m, 0) == b"BGR"
        # the file records one preprocessing, for input 0
        assert lib.mobrt_model_input_mean(m, 1, buf, 8) == 0
        assert lib.mobrt_model_input_channel_order(m, 1) == b""
        # bad arguments
        assert lib.mobrt_model_input_mean(m, 2, buf, 8) == -1
        assert lib.mobrt_model_input_mean(m, 0, None, 3) == -1
        assert lib.mobrt_model_input_mean(m, 0, buf, -1) == -1
        assert lib.mobrt_model_input_mean(None, 0, buf, 8) == -1
        assert lib.mobrt_model_input_channel_order(m, -1) is None
        assert lib.mobrt_model_input_layout(m, 2) is None and lib.mobrt_model_output_layout(m, 1) is None
        assert lib.mobrt_model_input_tensor(m, 2) is None and lib.mobrt_model_output_tensor(m, -1) is None
        assert lib.mobrt_model_input_tensor(None, 0) is None
        assert lib.mobrt_model_num_inputs(None) == 0
    finally:
        lib.mobrt_model_delete(m)


def test_model_without_preprocessing_reports_none(lib, tmp_path):
    g = signature_model(tmp_path / "sig.mob")
    g.signature.preprocessing = None
    write_model(g, str(tmp_path / "nopre.mob"))
    m = load(lib, tmp_path / "nopre.mob")
    try:
        buf = (ctypes.c_float * 4)()
        assert lib.mobrt_model_input_mean(m, 0, buf, 4) == 0
        assert lib.mobrt_model_input_scale(m, 0, buf, 4) == 0
        assert lib.mobrt_model_input_channel_order(m, 0) == b""
        assert lib.mobrt_model_input_layout(m, 0) == b"NCHW"
    finally:
        lib.mobrt_model_delete(m)


def test_quantization_params_of_int8_inputs_and_outputs(lib, int8_model):
    path, graph = int8_model
    m = load(lib, path)
    it = interpreter(lib, m)
    try:
        for count_fn, tensor_fn, names in (
                (lib.mobrt_model_num_inputs, lib.mobrt_model_input_tensor, graph.inputs),
                (lib.mobrt_model_num_outputs, lib.mobrt_model_output_tensor, graph.outputs),
                (lib.mobrt_interpreter_num_inputs, lib.mobrt_interpreter_input_tensor, graph.inputs),
                (lib.mobrt_interpreter_num_outputs, lib.mobrt_interpreter_output_tensor, graph.outputs)):
            handle = m if "model" in count_fn.__name__ else it
            assert count_fn(handle) == len(names)
            for k, name in enumerate(names):
                t = tensor_fn(handle, k)
                v = graph.values[name]
                assert lib.mobrt_tensor_name(t).decode() == name
                assert lib.mobrt_tensor_dtype(t) == 3  # int8
                q = v.quant
                assert lib.mobrt_tensor_quant_scale_count(t) == len(q.scales) == 1
                assert lib.mobrt_tensor_quant_scale(t, 0) == np.float32(q.scales[0])
                assert lib.mobrt_tensor_quant_zero_point(t, 0) == q.zero_points[0]
                assert lib.mobrt_tensor_quant_axis(t) == -1
                assert lib.mobrt_tensor_quant_scale(t, 1) == 0.0 and lib.mobrt_tensor_quant_zero_point(t, -1) == 0
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(m)


def test_tensor_observer_reports_per_axis_and_per_tensor_quantization(lib, int8_model):
    """Intermediates through the tensor observer: quantization equals the IR's; the data
    pointer and byte size agree with dims; at least one int8 tensor is seen."""
    path, graph = int8_model
    m = load(lib, path)
    it = interpreter(lib, m)
    seen = []
    try:
        dims = (ctypes.c_int64 * 4)(2, 1, 28, 28)
        assert lib.mobrt_interpreter_resize_input(it, 0, 4, dims) == OK

        @TENSOR_OBSERVER
        def observe(_user, op_index, op_name, op_type, n, outputs):
            for k in range(n):
                t = outputs[k]
                name = lib.mobrt_tensor_name(t).decode()
                count = lib.mobrt_tensor_quant_scale_count(t)
                scales = [lib.mobrt_tensor_quant_scale(t, j) for j in range(count)]
                zps = [lib.mobrt_tensor_quant_zero_point(t, j) for j in range(count)]
                nbytes = lib.mobrt_tensor_byte_size(t)
                elems = int(np.prod(shape(lib, t)))
                seen.append((name, lib.mobrt_tensor_dtype(t), scales, zps, nbytes, elems,
                             lib.mobrt_tensor_data(t) is not None, lib.mobrt_tensor_quant_axis(t)))
            return 0

        assert lib.mobrt_interpreter_set_tensor_observer(it, observe, None) == OK
        assert lib.mobrt_interpreter_invoke(it) == OK, lib.mobrt_interpreter_last_error(it)
        assert lib.mobrt_interpreter_set_tensor_observer(it, TENSOR_OBSERVER(), None) == OK
        assert lib.mobrt_interpreter_invoke(it) == OK
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(m)
    assert len(seen) >= 10
    int8_seen = 0
    for name, dtype, scales, zps, nbytes, elems, has_data, axis in seen:
        v = graph.values[name]
        assert dtype == {"float32": 0, "int8": 3, "int32": 6, "uint8": 4}[v.dtype], name
        assert nbytes == elems * np.dtype(v.dtype).itemsize and (has_data or nbytes == 0), name
        if v.quant is None:
            assert scales == [] and axis == -1, name
        else:
            int8_seen += 1
            assert scales == [np.float32(s) for s in v.quant.scales], name
            assert zps == [int(z) for z in (v.quant.zero_points or [0] * len(scales))], name
    assert int8_seen >= 5


def test_byte_sizes_and_data_of_all_io_tensors(lib, int8_model):
    """Byte sizes follow resize; input data is the buffer set_input fills; output data is
    the output_data pointer and its bytes are the Python binding's result."""
    path, graph = int8_model
    m = load(lib, path)
    it = interpreter(lib, m)
    try:
        ti, to = lib.mobrt_interpreter_input_tensor(it, 0), lib.mobrt_interpreter_output_tensor(it, 0)
        assert lib.mobrt_tensor_byte_size(ti) == 0  # symbolic batch unresolved
        assert lib.mobrt_tensor_data(ti) is None
        for batch in (3, 1):
            dims = (ctypes.c_int64 * 4)(batch, 1, 28, 28)
            assert lib.mobrt_interpreter_resize_input(it, 0, 4, dims) == OK
            assert shape(lib, ti) == (batch, 1, 28, 28) and shape(lib, to) == (batch, 10)
            assert lib.mobrt_tensor_byte_size(ti) == batch * 784
            assert lib.mobrt_tensor_byte_size(to) == batch * 10 == lib.mobrt_interpreter_output_size(it, 0)
            x = np.random.default_rng(batch).integers(-128, 128, (batch, 1, 28, 28), dtype=np.int8)
            assert lib.mobrt_interpreter_set_input(it, 0, x.ctypes.data, x.nbytes) == OK
            got_in = np.ctypeslib.as_array(ctypes.cast(lib.mobrt_tensor_data(ti), ctypes.POINTER(ctypes.c_int8)),
                                           (x.size,))
            assert np.array_equal(got_in, x.ravel())
            assert lib.mobrt_tensor_mutable_data(ti) == lib.mobrt_tensor_data(ti)
            assert lib.mobrt_tensor_mutable_data(to) is None
            assert lib.mobrt_interpreter_invoke(it) == OK
            assert lib.mobrt_tensor_data(to) == lib.mobrt_interpreter_output_data(it, 0)
            y = np.ctypeslib.as_array(ctypes.cast(lib.mobrt_tensor_data(to), ctypes.POINTER(ctypes.c_int8)),
                                      (batch * 10,)).copy()
            with runtime.Interpreter(str(path)) as py:
                want = py.run({"input": x})["logits"]
            assert np.array_equal(y, want.ravel())
        # model tensors keep the declared shape whatever the interpreter does
        assert shape(lib, lib.mobrt_model_input_tensor(m, 0)) == (-1, 1, 28, 28)
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(m)


def chain_model(path, layers=120, n=192):
    rng = np.random.default_rng(11)
    g = Graph("chain")
    g.add_input("x", "float32", (n, n))
    h = "x"
    ws = []
    for k in range(layers):
        w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
        ws.append(w)
        g.add_constant(f"w{k}", w)
        g.add_node("MatMul", [h, f"w{k}"], [f"m{k}"])
        g.add_node("Tanh", [f"m{k}"], [f"h{k}"])
        h = f"h{k}"
    g.outputs = [h]
    infer_shapes(g)
    write_model(g, str(path))
    return ws


def test_cancel_from_another_thread_then_usable(lib, tmp_path):
    ws = chain_model(tmp_path / "chain.mob")
    m = load(lib, tmp_path / "chain.mob")
    reports = []

    @REPORTER
    def reporter(_user, status, message):
        reports.append((status, message.decode()))

    opts = lib.mobrt_options_create()
    assert lib.mobrt_options_set_error_reporter(opts, reporter, None) == OK
    it = interpreter(lib, m, opts)
    lib.mobrt_options_delete(opts)
    try:
        x = np.random.default_rng(0).standard_normal((192, 192)).astype(np.float32)
        assert lib.mobrt_interpreter_set_input(it, 0, x.ctypes.data, x.nbytes) == OK
        # a cancel while idle is ignored: the next invoke runs to the end
        assert lib.mobrt_interpreter_cancel(it) == OK
        t0 = time.perf_counter()
        assert lib.mobrt_interpreter_invoke(it) == OK
        full = time.perf_counter() - t0
        want = x
        for w in ws:
            want = np.tanh(want @ w)
        to = lib.mobrt_interpreter_output_tensor(it, 0)

        def output():
            return np.ctypeslib.as_array(ctypes.cast(lib.mobrt_tensor_data(to), ctypes.POINTER(ctypes.c_float)),
                                         (192, 192)).copy()

        np.testing.assert_allclose(output(), want, rtol=1e-4, atol=1e-4)

        done = threading.Event()
        result = {}

        def run():
            result["status"] = lib.mobrt_interpreter_invoke(it)  # ctypes releases the GIL
            done.set()

        th = threading.Thread(target=run)
        th.start()
        cancels = 0
        while not done.is_set():
            assert lib.mobrt_interpreter_cancel(it) == OK  # from this thread, while the other invokes
            cancels += 1
            time.sleep(0.0005)
        th.join()
        assert result["status"] == CANCELLED, (result, full, cancels)
        msg = lib.mobrt_interpreter_last_error(it).decode()
        assert "cancelled" in msg and "mobrt_interpreter_cancel" in msg, msg
        assert reports and reports[-1] == (CANCELLED, msg)
        assert lib.mobrt_tensor_data(to) is None  # no valid outputs after a cancelled invoke
        # usable afterwards: the same numbers as before
        assert lib.mobrt_interpreter_invoke(it) == OK
        np.testing.assert_allclose(output(), want, rtol=1e-4, atol=1e-4)
        assert lib.mobrt_interpreter_cancel(None) == INVALID_ARGUMENT
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(m)


def test_error_reporters_get_the_message(lib, tmp_path):
    got_global, got_own = [], []

    @REPORTER
    def global_reporter(_user, status, message):
        got_global.append((status, message.decode()))

    @REPORTER
    def own_reporter(user, status, message):
        got_own.append((user, status, message.decode()))

    lib.mobrt_set_error_reporter(global_reporter, None)
    try:
        m = P()
        missing = str(tmp_path / "missing.mob").encode()
        assert lib.mobrt_model_create_from_file(missing, ctypes.byref(m)) == IO_ERROR
        assert got_global == [(IO_ERROR, lib.mobrt_global_last_error().decode())]
        assert "missing.mob" in got_global[0][1]

        signature_model(tmp_path / "sig.mob")
        m = load(lib, tmp_path / "sig.mob")
        it = interpreter(lib, m)  # no reporter in the options: the global one
        opts = lib.mobrt_options_create()
        assert lib.mobrt_options_set_error_reporter(opts, own_reporter, 1234) == OK
        it2 = interpreter(lib, m, opts)
        lib.mobrt_options_delete(opts)
        try:
            assert lib.mobrt_interpreter_set_input(it, 7, b"1234", 4) == INVALID_ARGUMENT
            assert got_global[-1] == (INVALID_ARGUMENT, lib.mobrt_interpreter_last_error(it).decode())
            assert "input index 7" in got_global[-1][1]
            n_global = len(got_global)
            assert lib.mobrt_interpreter_invoke(it2) != OK  # symbolic batch not resized
            assert got_own == [(1234, 7, lib.mobrt_interpreter_last_error(it2).decode())]
            assert len(got_global) == n_global  # the interpreter's own reporter replaced the global one
        finally:
            lib.mobrt_interpreter_delete(it2)
            lib.mobrt_interpreter_delete(it)
            lib.mobrt_model_delete(m)
        lib.mobrt_set_error_reporter(REPORTER(), None)
        assert lib.mobrt_model_create_from_file(missing, ctypes.byref(m)) == IO_ERROR
        assert len(got_global) == n_global  # removed
    finally:
        lib.mobrt_set_error_reporter(REPORTER(), None)


def test_bad_arguments(lib, tmp_path):
    signature_model(tmp_path / "sig.mob")
    m = load(lib, tmp_path / "sig.mob")
    it = interpreter(lib, m)
    try:
        for status in (lib.mobrt_interpreter_invoke(None), lib.mobrt_interpreter_set_input(None, 0, b"x", 1),
                       lib.mobrt_interpreter_resize_input(None, 0, 0, None),
                       lib.mobrt_interpreter_set_input(it, -1, b"x", 1),
                       lib.mobrt_interpreter_set_input(it, 2, b"x", 1),
                       lib.mobrt_interpreter_resize_input(it, 5, 1, (ctypes.c_int64 * 1)(2)),
                       lib.mobrt_options_set_error_reporter(None, REPORTER(), None),
                       lib.mobrt_interpreter_set_tensor_observer(None, TENSOR_OBSERVER(), None),
                       lib.mobrt_model_create_from_file(None, ctypes.byref(P())),
                       lib.mobrt_interpreter_create(None, None, ctypes.byref(P()))):
            assert status == INVALID_ARGUMENT
        assert lib.mobrt_interpreter_input_tensor(it, 2) is None
        assert lib.mobrt_interpreter_output_tensor(it, 1) is None
        assert lib.mobrt_interpreter_input_tensor(None, 0) is None
        assert lib.mobrt_tensor_name(None) is None and lib.mobrt_tensor_rank(None) == -1
        assert lib.mobrt_tensor_dim(None, 0) == -1 and lib.mobrt_tensor_byte_size(None) == 0
        assert lib.mobrt_tensor_data(None) is None and lib.mobrt_tensor_quant_scale_count(None) == 0
        t = lib.mobrt_interpreter_input_tensor(it, 0)
        assert lib.mobrt_tensor_dim(t, 4) == -1 and lib.mobrt_tensor_dim(t, -1) == -1
        assert lib.mobrt_tensor_dim_symbol(t, 9) is None and lib.mobrt_tensor_dim_symbol(t, 1) is None
        assert lib.mobrt_interpreter_profile_op_name(it, 0) is None
        assert lib.mobrt_interpreter_profile_microseconds(None, 0) == -1.0
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(m)


def test_profile_accessors_match_the_deprecated_struct(lib, int8_model):
    path, _ = int8_model
    with runtime.Interpreter(str(path), profile=True) as py:
        py.run({"input": np.zeros((1, 1, 28, 28), np.int8)})
        old = py.kernels()  # the deprecated mobrt_profile_entry struct
        it = py._it
        n = lib.mobrt_interpreter_profile_count(it)
        assert n == len(old) > 0
        new = [(lib.mobrt_interpreter_profile_op_name(it, i).decode(),
                lib.mobrt_interpreter_profile_op_type(it, i).decode(),
                lib.mobrt_interpreter_profile_kernel(it, i).decode(),
                lib.mobrt_interpreter_profile_microseconds(it, i)) for i in range(n)]
        assert lib.mobrt_interpreter_profile_kernel(it, n) is None
    assert old == [e[:3] for e in new]
    assert all(e[3] >= 0 for e in new)


def test_inputs_survive_invoke(lib, tmp_path):
    """An invoke must not reuse the input buffers for activations: invoking again
    without setting the inputs (after a cancel, or to time a run) gives the same outputs.
    Before the fix the arena plan let the 2nd MatMul's output overwrite the input."""
    ws = chain_model(tmp_path / "chain.mob", layers=3, n=32)
    m = load(lib, tmp_path / "chain.mob")
    it = interpreter(lib, m)
    try:
        x = np.random.default_rng(1).standard_normal((32, 32)).astype(np.float32)
        assert lib.mobrt_interpreter_set_input(it, 0, x.ctypes.data, x.nbytes) == OK
        to = lib.mobrt_interpreter_output_tensor(it, 0)
        want = x
        for w in ws:
            want = np.tanh(want @ w)
        for _ in range(3):
            assert lib.mobrt_interpreter_invoke(it) == OK
            got = np.ctypeslib.as_array(ctypes.cast(lib.mobrt_tensor_data(to), ctypes.POINTER(ctypes.c_float)),
                                        (32, 32))
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    finally:
        lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(m)


def test_python_binding_model_info_quantization_preprocessing(int8_model, tmp_path):
    path, graph = int8_model
    model = runtime.Model(str(path))
    try:
        assert [d["name"] for d in model.inputs] == graph.inputs
        for d, name in zip(model.inputs + model.outputs, graph.inputs + graph.outputs):
            v = graph.values[name]
            assert d["dtype"] == v.dtype == "int8"
            assert d["shape"] == tuple(-1 if isinstance(s, str) else s for s in v.shape)
            q = d["quantization"]
            assert q["scales"] == [float(np.float32(s)) for s in v.quant.scales]
            assert q["zero_points"] == list(v.quant.zero_points) and q["axis"] is None
        assert model.inputs[0]["layout"] == "NCHW"
        assert model.preprocessing is None
        with runtime.Interpreter(model) as it:
            assert it.quantization(graph.inputs[0]) == model.inputs[0]["quantization"]
            assert it.quantization(graph.outputs[0]) == model.outputs[0]["quantization"]
            with pytest.raises(mobconv.errors.ArgumentError, match="no input or output named 'nope'"):
                it.quantization("nope")
    finally:
        model.close()
    g = signature_model(tmp_path / "sig.mob")
    sig = runtime.Model(str(tmp_path / "sig.mob"))
    try:
        pre = g.signature.preprocessing
        assert sig.preprocessing == {"mean": pre.mean, "scale": pre.scale, "channel_order": "BGR"}
        assert [d["layout"] for d in sig.inputs] == ["NCHW", ""]
        assert sig.inputs[1]["quantization"] is None
        with runtime.Interpreter(sig) as it:
            assert it.quantization("y") is None
    finally:
        sig.close()


def test_python_binding_cancel(tmp_path):
    ws = chain_model(tmp_path / "chain.mob")
    x = np.random.default_rng(2).standard_normal((192, 192)).astype(np.float32)
    want = x
    for w in ws:
        want = np.tanh(want @ w)
    with runtime.Interpreter(str(tmp_path / "chain.mob")) as it:
        it.cancel()  # idle: ignored
        errors = []
        done = threading.Event()

        def run():
            try:
                it.run({"x": x})
            except runtime.RuntimeError_ as e:
                errors.append(e)
            done.set()

        th = threading.Thread(target=run)
        th.start()
        while not done.is_set():
            it.cancel()
            time.sleep(0.0005)
        th.join()
        assert len(errors) == 1 and errors[0].status == CANCELLED and "CANCELLED" in str(errors[0])
        np.testing.assert_allclose(it.run({"x": x})[f"h{len(ws) - 1}"], want, rtol=1e-4, atol=1e-4)
    with pytest.raises(mobconv.errors.ClosedError):
        it.cancel()


def test_docs_example_compiles_and_runs(tmp_path):
    """The C example of docs/runtime.md ("Tensors, quantization, preprocessing, cancel,
    errors") compiles warning-free against mobrt.h, links against the built library and runs
    on the zoo's digits model (its dims are the example's 1x1x28x28)."""
    import re
    import subprocess

    text = open(os.path.join(ROOT, "docs", "runtime.md")).read()
    section = text[text.index("### Tensors, quantization, preprocessing, cancel, errors"):]
    code = re.search(r"```c\n(.*?)```", section, re.S).group(1)
    top, body = code.split("mobrt_set_error_reporter(on_error", 1)
    src = ("#include <stdio.h>\n#include <string.h>\n" + top +
           "static void consume(const void* p, size_t n) { printf(\"consumed %zu bytes %d\\n\", n, p != NULL); }\n"
           "int main(void) {\n  static float pixels[784];\n  mobrt_set_error_reporter(on_error" + body + "  return 0;\n}\n")
    (tmp_path / "example.c").write_text(src)
    mobconv.convert(os.path.join(ZOO, "digits_mobilenetv2.onnx")).save(str(tmp_path / "model.mob"))
    lib_dir = os.path.dirname(runtime.library_path())
    cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                         "-I", os.path.join(ROOT, "runtime", "include"), str(tmp_path / "example.c"),
                         "-o", str(tmp_path / "example"), "-L", lib_dir, "-lmobrt", f"-Wl,-rpath,{lib_dir}"],
                        capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    run = subprocess.run([str(tmp_path / "example")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == ["input float32 rank 4 dim0 -1 (N)", "layout NCHW, 0 channels, order ''",
                                       "consumed 40 bytes 1"], run.stdout


@pytest.mark.parametrize("compiler,lang", [("clang", "c"), ("clang++", "c++"), ("cc", "c"), ("c++", "c++")])
def test_header_is_warning_free_and_nullability_complete(compiler, lang, tmp_path):
    """mobrt.h alone, under -pedantic -Werror (clang: -Weverything, which includes
    -Wnullability-completeness: one pointer without MOBRT_NULLABLE/MOBRT_NONNULL fails; the
    nullability specifiers themselves are silenced inside the header only)."""
    import subprocess

    src = tmp_path / "h.c"
    src.write_text("#include <mobrt.h>\nint main(void) { return mobrt_version()[0] == 0 ? 1 : 0; }\n")
    flags = ["-pedantic", "-Werror", "-Wall", "-Wextra"]
    if compiler.startswith("clang"):
        flags += ["-Weverything", "-Wno-padded", "-Wno-c++98-compat"]
    std = ["-std=c99"] if lang == "c" else ["-std=c++11"]
    proc = subprocess.run([compiler, "-fsyntax-only", "-x", lang, *std, *flags,
                           "-I", os.path.join(ROOT, "runtime", "include"), str(src)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if compiler == "clang":  # and the check bites: one unannotated pointer is an error
        header = tmp_path / "inc" / "mobrt.h"
        header.parent.mkdir()
        text = open(os.path.join(ROOT, "runtime", "include", "mobrt.h")).read()
        header.write_text(text.replace("const char* MOBRT_NONNULL mobrt_version(void)",
                                       "const char* mobrt_version(void)", 1))
        bad = subprocess.run([compiler, "-fsyntax-only", "-x", lang, *std, *flags, "-I", str(header.parent),
                              str(src)], capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "nullability" in bad.stderr, bad.stderr
