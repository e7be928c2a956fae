"""Sparse fp32 kernels (runtime/src/cpu/sparse/: 1x1 Conv, Gemm, MatMul with constant weights).

Every case is a one-node model (tests/runtime_cases.build: the numpy reference computes the
expected output) run with MOBRT_SPARSE=always under each instruction-set cap that has
sparse kernels here (scalar, avx2, avx512), at 1 and 2 threads: the sparse kernel of that
set must be the one that ran (the profile's kernel name), the result must match the
reference within 1e-5 relative to max|reference| (atol = 1e-5 * max(1, max|ref|), rtol
1e-5: fp32 sums in another order), and 1 and 2 threads must agree bit for bit.
Shapes: H*W below, at and off the vector widths and the 64-column block, 1 channel,
rows that are all zero, an all-zero and a dense weight, batch > 1 and batch 0, every
fused activation kind, Conv's fused residual, Gemm's transB/alpha/beta/C, MatMul with a
1-D and a 3-D A; NaN and infinities in the input (a pruned weight's 0 * inf is NaN in the
reference, so the sparse kernels must give NaN there too). Then the selection: MOBRT_SPARSE=off runs the dense kernels, auto takes
the sparse kernel above the set's threshold only (never at the scalar cap, which stays the
reference), and nodes the sparse kernels do not handle fall back whatever the mode.
NEON runs the same cases under qemu in tests/test_sparse_aarch64.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from runtime_cases import build, compare_outputs, native_isas

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

from mobconv.formats.writer import to_bytes  # noqa: E402

RTOL = 1e-5
_rng = np.random.default_rng(1212)


def f32(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


def C(a):
    return ("const", np.asarray(a, dtype=np.float32))


def pruned(*shape, sparsity=0.8, zero_rows=(), axis=0):
    """Random weights with the `sparsity` fraction of smallest magnitudes set to 0 and the
    given rows (along `axis`, the outputs) all zero."""
    w = f32(*shape)
    k = int(round(sparsity * w.size))
    if k:
        w.reshape(-1)[np.argsort(np.abs(w).ravel(), kind="stable")[:k]] = 0.0
    for r in zero_rows:
        np.moveaxis(w, axis, 0)[r] = 0.0
    return C(w)


def nonfinite(a, **where):
    """`a` with NaN / +inf / -inf at the given index tuples (nan=[...], inf=[...], ninf=[...])."""
    a = a.copy()
    for key, val in (("nan", np.nan), ("inf", np.inf), ("ninf", -np.inf)):
        for idx in where.get(key, ()):
            a[idx] = val
    return a


ACTS = {
    "relu": {"activation": "Relu"},
    "clip": {"activation": "Clip", "activation_params": [-0.5, 1.0]},
    "leaky": {"activation": "LeakyRelu", "activation_params": [0.1]},
    "hsig": {"activation": "HardSigmoid", "activation_params": [0.2, 0.5]},
    "hswish": {"activation": "HardSwish"},
    "sigmoid": {"activation": "Sigmoid"},
    "tanh": {"activation": "Tanh"},
}

# (id, op, inputs, attrs): one line per case.
CASES = [
    ("conv_7x9_relu", "Conv", [f32(2, 13, 7, 9), pruned(11, 13, 1, 1), C(f32(11))], ACTS["relu"]),
    ("conv_1x1_pixel", "Conv", [f32(1, 8, 1, 1), pruned(5, 8, 1, 1, sparsity=0.5), C(f32(5))], {}),
    ("conv_1ch_in_out", "Conv", [f32(1, 1, 5, 5), C(np.full((1, 1, 1, 1), 1.5))], {}),
    ("conv_1ch_in", "Conv", [f32(2, 1, 3, 7), pruned(3, 1, 1, 1, sparsity=0.34)], ACTS["leaky"]),
    ("conv_15x17_clip", "Conv", [f32(1, 16, 15, 17), pruned(24, 16, 1, 1, sparsity=0.7), C(f32(24))],
     {**ACTS["clip"], "kernel_shape": [1, 1], "strides": [1, 1], "pads": [0, 0, 0, 0]}),
    ("conv_zero_rows", "Conv", [f32(1, 9, 6, 11), pruned(7, 9, 1, 1, sparsity=0.5, zero_rows=(0, 3, 6))],
     ACTS["hswish"]),
    ("conv_all_zero", "Conv", [f32(1, 6, 5, 3), C(np.zeros((4, 6, 1, 1))), C(f32(4))], ACTS["sigmoid"]),
    ("conv_dense", "Conv", [f32(1, 12, 9, 8), pruned(10, 12, 1, 1, sparsity=0.0), C(f32(10))], ACTS["hsig"]),
    ("conv_batch3_residual", "Conv", [f32(3, 6, 4, 5), pruned(10, 6, 1, 1), C(f32(10)), f32(3, 10, 4, 5)],
     ACTS["relu"]),
    ("conv_zero_batch", "Conv", [f32(0, 6, 4, 5), pruned(10, 6, 1, 1), C(f32(10))], ACTS["relu"]),
    ("conv_40ch_20x20_tanh", "Conv", [f32(1, 40, 20, 20), pruned(36, 40, 1, 1, sparsity=0.9), C(f32(36))],
     ACTS["tanh"]),
    ("conv_valid_pad", "Conv", [f32(1, 5, 8, 8), pruned(6, 5, 1, 1)], {"auto_pad": "VALID"}),
    # A pruned weight's skipped 0 * x is NaN for x = NaN or +-inf in the reference (and dense).
    ("conv_nan_inf", "Conv", [nonfinite(f32(2, 6, 5, 7), nan=[(0, 1, 2, 3)], inf=[(1, 4, 0, 0)], ninf=[(0, 0, 4, 6)]),
                              pruned(8, 6, 1, 1, sparsity=0.6), C(f32(8))], ACTS["relu"]),
    ("gemm_b1_transB_relu", "Gemm", [f32(1, 37), pruned(19, 37), C(f32(19))], {"transB": 1, **ACTS["relu"]}),
    ("gemm_b1_long_rows", "Gemm", [f32(1, 300), pruned(50, 300, sparsity=0.5), C(f32(50))], {"transB": 1}),
    ("gemm_b2_alpha_beta", "Gemm", [f32(2, 37), pruned(37, 19, axis=1), C(f32(19))],
     {"alpha": 0.5, "beta": 2.0, **ACTS["tanh"]}),
    ("gemm_b5_no_c", "Gemm", [f32(5, 23), pruned(23, 9, axis=1)], {}),
    ("gemm_b33_c_row", "Gemm", [f32(33, 70), pruned(45, 70, zero_rows=(2,)), C(f32(1, 45))],
     {"transB": 1, **ACTS["clip"]}),
    ("gemm_b70", "Gemm", [f32(70, 20), pruned(20, 9, axis=1)], ACTS["leaky"]),
    ("gemm_b1_nan_inf", "Gemm", [nonfinite(f32(1, 40), nan=[(0, 3)], inf=[(0, 17)]), pruned(12, 40), C(f32(12))],
     {"transB": 1}),
    ("gemm_b6_nan_inf", "Gemm", [nonfinite(f32(6, 30), nan=[(2, 5)], ninf=[(4, 0)]), pruned(30, 10, axis=1)],
     ACTS["sigmoid"]),
    ("gemm_b0", "Gemm", [f32(0, 8), pruned(8, 4, axis=1), C(f32(4))], {}),
    ("gemm_all_zero", "Gemm", [f32(3, 8), C(np.zeros((8, 6))), C(f32(6))], ACTS["hswish"]),
    ("gemm_dense", "Gemm", [f32(4, 16), pruned(16, 12, sparsity=0.0, axis=1), C(f32(12))], ACTS["sigmoid"]),
    ("matmul_1d", "MatMul", [f32(37), pruned(37, 11, axis=1)], {}),
    ("matmul_3d", "MatMul", [f32(2, 3, 37), pruned(37, 11, axis=1)], ACTS["relu"]),
    ("matmul_b1_wide", "MatMul", [f32(1, 64), pruned(64, 130, sparsity=0.9, axis=1)], ACTS["hsig"]),
]

SPARSE_ISAS = {"scalar": "scalar", "avx2": "avx2", "avx512": "avx512", "avx512_vnni": "avx512",
               "neon": "neon", "neon_dot": "neon", "neon_fp16": "neon"}
# Each set with sparse kernels once: the highest cap of each set this CPU runs.
CAPS = [c for c in native_isas() if c in ("scalar", "avx2", "avx512", "neon")]


def _run(g, feeds, cap, threads, monkeypatch, mode):
    monkeypatch.setenv("MOBRT_SPARSE", mode)
    with runtime.Interpreter(to_bytes(g), threads=threads, isa=cap, profile=True) as it:
        out = it.run(feeds)
        kernels = {op: k for _, op, k in it.kernels()}
    return out, kernels


@pytest.mark.parametrize("cap", CAPS)
@pytest.mark.parametrize("cid,op,inputs,attrs", CASES, ids=[c[0] for c in CASES])
def test_sparse_kernel_matches_reference(cid, op, inputs, attrs, cap, monkeypatch):
    with np.errstate(invalid="ignore"):  # the NaN / inf cases
        g, feeds, expected = build(op, inputs, attrs, 1)
    exp = np.asarray(expected[0])
    atol = RTOL * max(1.0, float(np.max(np.abs(exp))) if exp.size else 1.0)
    results = []
    for threads in (1, 2):
        out, kernels = _run(g, feeds, cap, threads, monkeypatch, "always")
        want = "_sparse" if op != "Conv" else "_sparse1x1"
        assert want in kernels[op] and kernels[op].endswith("_" + SPARSE_ISAS[cap]), \
            f"{cid} cap {cap}: {op} ran {kernels[op]!r}, expected the {SPARSE_ISAS[cap]} sparse kernel"
        shapes = [np.shape(x[1] if isinstance(x, tuple) else x) for x in inputs]
        msg = compare_outputs(f"{op} {cid} cap {cap} threads {threads} inputs {shapes}", out, expected, 1,
                              RTOL, atol)
        assert msg is None, msg
        results.append(out["out0"])
    assert np.array_equal(results[0], results[1], equal_nan=True), \
        f"{cid} cap {cap}: 1 and 2 threads differ (max {np.max(np.abs(results[0] - results[1]))})"


def _graph(case_id):
    cid, op, inputs, attrs = next(c for c in CASES if c[0] == case_id)
    return build(op, inputs, attrs, 1)[:2]


def _one_conv(sparsity, attrs=None, wshape=(32, 16, 1, 1)):
    rng = np.random.default_rng(5)
    w = rng.standard_normal(wshape).astype(np.float32)
    w.reshape(-1)[np.argsort(np.abs(w).ravel())[:int(round(sparsity * w.size))]] = 0
    x = rng.standard_normal((1, 16, 10, 10)).astype(np.float32)
    g, feeds, _ = build("Conv", [x, C(w)], attrs or {}, 1)
    return g, feeds


def test_off_runs_the_dense_kernels(monkeypatch):
    for case_id, op in (("conv_40ch_20x20_tanh", "Conv"), ("gemm_b33_c_row", "Gemm"), ("matmul_3d", "MatMul")):
        g, feeds = _graph(case_id)
        _, kernels = _run(g, feeds, None, 1, monkeypatch, "off")
        assert "sparse" not in kernels[op], f"MOBRT_SPARSE=off: {case_id} ran {kernels[op]}"


@pytest.mark.parametrize("cap", [c for c in CAPS if c != "scalar"])
def test_auto_takes_sparse_above_the_threshold_only(cap, monkeypatch):
    g, feeds = _one_conv(0.97)
    assert "sparse" in _run(g, feeds, cap, 1, monkeypatch, "auto")[1]["Conv"]
    monkeypatch.delenv("MOBRT_SPARSE")  # unset is auto
    with runtime.Interpreter(to_bytes(g), isa=cap, profile=True) as it:
        it.run(feeds)
        assert "sparse" in dict((op, k) for _, op, k in it.kernels())["Conv"]
    g, feeds = _one_conv(0.2)
    assert "sparse" not in _run(g, feeds, cap, 1, monkeypatch, "auto")[1]["Conv"]
    # An unknown value is auto too (as MOBRT_MAX_ISA ignores an unknown name).
    g, feeds = _one_conv(0.97)
    assert "sparse" in _run(g, feeds, cap, 1, monkeypatch, "sometimes")[1]["Conv"]


def test_scalar_cap_auto_stays_on_the_reference(monkeypatch):
    g, feeds = _one_conv(0.97)
    assert _run(g, feeds, "scalar", 1, monkeypatch, "auto")[1]["Conv"] .endswith("_reference")


@pytest.mark.parametrize("attrs,wshape", [
    ({"pads": [1, 1, 1, 1]}, (32, 16, 3, 3)),
    ({"strides": [2, 2]}, (32, 16, 1, 1)),
    ({"group": 2}, (32, 8, 1, 1)),
    ({"dilations": [2, 2]}, (32, 16, 1, 1)),
    ({"pads": [0, 1, 0, 1]}, (32, 16, 1, 1)),
], ids=["3x3", "stride2", "group2", "dilation2", "padded"])
def test_ineligible_convs_fall_back_even_when_always(attrs, wshape, monkeypatch):
    g, feeds = _one_conv(0.9, attrs, wshape)
    out, kernels = _run(g, feeds, None, 1, monkeypatch, "always")
    assert "sparse" not in kernels["Conv"], f"{attrs}: {kernels['Conv']}"


def test_ineligible_fc_falls_back_even_when_always(monkeypatch):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((7, 5)).astype(np.float32), rng.standard_normal((7, 4)).astype(np.float32)
    g, feeds, _ = build("Gemm", [a, C(b)], {"transA": 1}, 1)
    assert "sparse" not in _run(g, feeds, None, 1, monkeypatch, "always")[1]["Gemm"]
    g, feeds, _ = build("MatMul", [a.T.copy(), b], {}, 1)  # B not a constant
    assert "sparse" not in _run(g, feeds, None, 1, monkeypatch, "always")[1]["MatMul"]


def test_symbolic_shapes_resize_between_runs(monkeypatch):
    """One interpreter, inputs of several sizes (scratch is re-sized per shape; FC batch 1
    takes the gather path, larger batches the SpMM): each run equals the reference."""
    from mobconv.ir import Graph, infer_shapes
    from mobconv.reference.interpreter import run as reference_run

    rng = np.random.default_rng(8)
    g = Graph("sparse_resize")
    g.add_input("x", "float32", ("N", 12, "H", "W"))
    g.add_constant("w", pruned(20, 12, 1, 1)[1])
    g.add_constant("b", f32(20))
    g.add_node("Conv", ["x", "w", "b"], ["c"], {"activation": "Relu"}, name="conv")
    g.add_node("GlobalAveragePool", ["c"], ["gap"], name="gap")
    g.add_node("Flatten", ["gap"], ["flat"], {"axis": 1}, name="flatten")
    g.add_constant("fc", pruned(7, 20)[1])
    g.add_node("Gemm", ["flat", "fc"], ["y"], {"transB": 1}, name="fc")
    g.outputs = ["y", "c"]
    infer_shapes(g)
    monkeypatch.setenv("MOBRT_SPARSE", "always")
    with runtime.Interpreter(to_bytes(g), threads=2, profile=True) as it:
        for shape in ((1, 12, 5, 7), (3, 12, 20, 9), (40, 12, 2, 3), (1, 12, 1, 1)):
            x = rng.standard_normal(shape).astype(np.float32)
            got, want = it.run({"x": x}), reference_run(g, {"x": x})
            for name in ("y", "c"):
                np.testing.assert_allclose(got[name], want[name], rtol=RTOL, atol=RTOL * max(1, np.abs(want[name]).max()),
                                           err_msg=f"{name} at input {shape}")
            kernels = {op: k for _, op, k in it.kernels()}
            assert "sparse" in kernels["Conv"] and "sparse" in kernels["Gemm"], kernels
