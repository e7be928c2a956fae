"""NaN and +-inf inputs on every instruction set (issue 7, finding 8).

Rule (docs/runtime.md, "NaN and infinities"): every kernel propagates NaN as the numpy
reference does. Each case of runtime_cases.NAN_CASES (the per-op suite with NaN or
+-inf injected, plus cases sized so the AVX2/AVX-512 vector bodies and tails see the
non-finite lanes: activations, clamps, Max/Min, pooling windows, softmax rows, GEMM
and conv epilogues, reductions, arg-max) runs with the scalar reference kernels and
every optimized instruction set this CPU has, at 1 and 2 threads, and must match the
numpy reference with NaN equal to NaN and infinities of the same sign.

The numpy reference is checked against onnxruntime on the ops where the two agree
(element-wise, activations, Clip, Max/Min, Softmax); where onnxruntime skips NaN
(MaxPool, GlobalMaxPool, ReduceMax/Min, ArgMax/Min, Hardmax) mobconv keeps numpy's
rule, as the docs say, and the test pins that difference so a change is noticed.
"""
import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from runtime_cases import NAN_CASES, REG, check_case_on_isa, native_isas

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

ISAS = native_isas()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("op,variant,inputs,attrs,n_out,rtol,atol", NAN_CASES)
def test_non_finite_case_matches_numpy(op, variant, inputs, attrs, n_out, rtol, atol, isa):
    check_case_on_isa(f"{op} [{variant}]", op, inputs, attrs, n_out, rtol, atol, isa)


# ---- the numpy reference vs onnxruntime on NaN -----------------------------------------

_X = np.array([[1.0, np.nan, 3.0, 2.0, 0.0, -1.0, 5.0, 4.0, np.inf, -np.inf, -2.0, np.nan]], np.float32)
_AGREE = [  # (op, attrs, extra constant inputs)
    ("Relu", {}, []), ("LeakyRelu", {"alpha": 0.1}, []), ("Sigmoid", {}, []), ("Tanh", {}, []),
    ("HardSigmoid", {}, []), ("HardSwish", {}, []), ("Elu", {}, []), ("Softplus", {}, []), ("Abs", {}, []),
    ("Exp", {}, []), ("Neg", {}, []), ("Softmax", {}, []), ("LogSoftmax", {}, []),
    ("Clip", {}, [np.float32(0.0), np.float32(2.0)]),
    ("Max", {}, [np.array([np.nan, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], np.float32)]),
    ("Min", {}, [np.array([np.nan, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], np.float32)]),
    ("Add", {}, [np.array([np.nan, 1, 1, 1, 1, 1, 1, 1, -np.inf, 1, 1, 1], np.float32)]),
]
# Ops where onnxruntime (1.x CPU) ignores NaN while numpy, and mobconv, propagate it.
_DIFFER = [("ReduceMax", {}), ("ReduceMin", {}), ("ArgMax", {"axis": 1}), ("Hardmax", {}),
           ("GlobalMaxPool", {}), ("MaxPool", {"kernel_shape": [2, 2]})]


def _ort_run(op, x, attrs, extra):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    names, inits = ["x"], []
    for i, e in enumerate(extra):
        inits.append(numpy_helper.from_array(np.asarray(e), f"e{i}"))
        names.append(f"e{i}")
    out_t = TensorProto.INT64 if op.startswith("Arg") else TensorProto.FLOAT
    graph = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", out_t, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _reference(op, x, attrs, extra):
    spec = REG[op]
    from mobconv.ir import Graph

    g = Graph("ref")
    g.add_input("x", "float32", x.shape)
    names = ["x"]
    for i, e in enumerate(extra):
        g.add_constant(f"e{i}", np.asarray(e))
        names.append(f"e{i}")
    node = g.add_node(op, names, ["y"], attrs)
    with np.errstate(all="ignore"):
        return spec.run_reference([x, *[np.asarray(e) for e in extra]], spec.resolve_attrs(node))[0]


@pytest.mark.parametrize("op,attrs,extra", _AGREE, ids=[a[0] for a in _AGREE])
def test_numpy_reference_matches_onnxruntime_on_nan(op, attrs, extra):
    expected = _ort_run(op, _X, attrs, extra)
    got = _reference(op, _X, attrs, extra)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True,
                               err_msg=f"{op}: numpy reference vs onnxruntime on NaN/inf input")


@pytest.mark.parametrize("op,attrs", _DIFFER, ids=[a[0] for a in _DIFFER])
def test_nan_wins_where_onnxruntime_skips_it(op, attrs):
    """numpy's rule (NaN wins a max/min/arg-max) is mobconv's; onnxruntime skips NaN here."""
    x = np.array([[1.0, np.nan, 3.0, 2.0]], np.float32)
    if op == "GlobalMaxPool":
        x = x.reshape(1, 1, 1, 4)
    if op == "MaxPool":  # onnxruntime's result depends on where the NaN is; here it skips it
        x = np.array([1.0, np.nan, 0.0, -1.0], np.float32).reshape(1, 1, 2, 2)
    got = _reference(op, x, attrs, [])
    ort_y = _ort_run(op, x, attrs, [])
    if op == "ArgMax":
        assert int(got.ravel()[0]) == 1 and int(ort_y.ravel()[0]) == 2
    elif op == "Hardmax":
        assert got.ravel().tolist() == [0, 1, 0, 0] and ort_y.ravel().tolist() == [0, 0, 1, 0]
    elif op == "MaxPool":
        assert np.isnan(got).all() and ort_y.ravel().tolist() == [1.0]
    else:
        assert np.isnan(got).all() and not np.isnan(ort_y).any()
    for isa in ISAS:
        from mobconv.ir import Graph, infer_shapes

        g = Graph("nan_rule")
        g.add_input("x", "float32", x.shape)
        g.add_node(op, ["x"], ["y"], attrs)
        g.outputs = ["y"]
        infer_shapes(g)
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            y = it.run({"x": x})["y"]
        np.testing.assert_array_equal(y, got, err_msg=f"{op} isa={isa}")


def test_lrn_reference_keeps_nan_inside_its_window():
    """LRN: a NaN or inf in channel c reaches only the windows that contain c, as the ONNX
    formula says (checked against that formula written out). The numpy reference used a
    running cumsum, which carried it into every later channel; onnxruntime does the same,
    which mobconv does not follow (docs/runtime.md)."""
    x = np.random.default_rng(3).uniform(-2, 2, (1, 7, 2, 3)).astype(np.float32)
    x[0, 1, 0, 0] = np.nan
    x[0, 2, 1, 2] = np.inf
    size, alpha, beta, bias = 3, 0.2, 0.75, 1.5
    expected = np.empty_like(x)
    for c in range(7):
        window = x[:, max(0, c - 1):min(7, c + 2)].astype(np.float64)
        with np.errstate(all="ignore"):
            expected[:, c] = x[:, c] / (bias + alpha / size * (window * window).sum(axis=1)) ** beta
    got = _reference("LRN", x, {"size": size, "alpha": alpha, "beta": beta, "bias": bias}, [])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(got[0, 4:, 0, 0]).all() and np.isfinite(got[0, 4:, 1, 2]).all()
    ort_y = _ort_run("LRN", x, {"size": size, "alpha": alpha, "beta": beta, "bias": bias}, [])
    assert np.isnan(ort_y[0, 4:, 0, 0]).all(), "onnxruntime no longer spreads NaN past the window: update docs/runtime.md"
