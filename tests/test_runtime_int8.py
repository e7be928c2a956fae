"""The C++ runtime's int8/uint8 reference kernels (runtime/src/cpu/reference/quant_ops.cpp)
against the numpy integer oracle (mobconv/ops/quant_math.py, through the reference
interpreter), bit for bit: every case is a small graph with quantized tensors, written to
.mob, run by the runtime under every instruction-set cap this CPU has (the optimized
int8 kernels of each) at 1 thread and at 2 threads, and compared with np.array_equal.

Parameters are drawn from fixed seeds and include the hostile corners: zero points at the
dtype's extremes, requantization multipliers above 1 and far below 2^-20, saturating
biases, odd kernel/stride/pad/dilation combinations, depthwise with a channel multiplier,
broadcasting, differing Concat scales, ceil_mode / count_include_pad pools, linear Resize
(whose 10-bit weights round), empty tensors. Unsupported quantized combinations must be
refused when the model is loaded, naming the operator and the rule. The Conv/MatMul/Gemm/pool
cases run again under the float32 requantization rule (metadata quantization.requantize,
onnxruntime's arithmetic; `_FLOAT32`).
"""
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobconv import runtime
from mobconv.errors import MobconvError
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.ops import quant_math as qm
from mobconv.reference.interpreter import run as ref_run
from test_runtime_aarch64 import QEMU, mobrt_run_aarch64  # noqa: F401  (mobrt_run_aarch64: a session fixture)

Q = QuantParams
RANGE = {"int8": (-128, 127), "uint8": (0, 255)}


def _rand(rng, shape, dtype="int8"):
    lo, hi = RANGE[dtype]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def _qp(rng, dtype="int8", extreme=False, scale=None):
    lo, hi = RANGE[dtype]
    zp = int(rng.choice([lo, hi])) if extreme else int(rng.integers(lo, hi + 1))
    s = np.float32(scale if scale is not None else 10 ** rng.uniform(-3, 0))
    return Q([float(s)], [zp])


_COLLECT = None  # a list while test_int8_cases_on_aarch64 gathers the cases instead of running them
_FLOAT32 = False  # True: the graphs _single builds say quantization.requantize = float32


def _configs(threads):
    """(isa cap, threads): every instruction set this CPU has at 1 thread (the optimized
    int8 kernels of each, or the reference where a node is not theirs), the best at 2."""
    isas = runtime.supported_isas()
    return [(isa, 1) for isa in isas if 1 in threads] + [(None, t) for t in threads if t != 1]


def _check(g, feeds, threads=(1, 2)):
    """Runtime outputs under every ISA cap (1 thread) and at 2 threads equal the reference
    interpreter's exactly."""
    want = ref_run(g, feeds)
    if _COLLECT is not None:
        _COLLECT.append((g, feeds, want))
        return want
    assert runtime.available(), "the C++ runtime is not built"
    data = to_bytes(g)
    for isa, t in _configs(threads):
        with runtime.Interpreter(data, threads=t, isa=isa) as it:
            got = it.run(feeds)
        for name in g.outputs:
            assert got[name].dtype == want[name].dtype, (name, isa, t)
            assert got[name].shape == want[name].shape, (name, isa, t)
            if not np.array_equal(got[name], want[name]):
                bad = np.argwhere(got[name] != want[name])
                i = tuple(bad[0])
                raise AssertionError(f"{name} isa={isa} threads={t}: {len(bad)} elements differ, first at {i}: "
                                     f"runtime {got[name][i]} reference {want[name][i]}")
    return want


def _single(op, inputs, attrs, out_q, *, out_dtype=None, name="n1", n_out=1):
    """A one-node graph. inputs: list of (name, array, QuantParams or None, is_constant);
    out_q: QuantParams for each output."""
    g = Graph(op)
    names = []
    for nm, arr, qp, const in inputs:
        if nm == "":
            names.append("")
            continue
        if const:
            g.add_constant(nm, arr)
        else:
            g.add_input(nm, arr.dtype.name, arr.shape)
        if qp is not None:
            g.values[nm].quant = qp
        names.append(nm)
    outs = [f"y{i}" for i in range(n_out)]
    g.add_node(op, names, outs, attrs, name=name)
    g.outputs = outs
    if _FLOAT32:
        g.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32
    infer_shapes(g)
    for o, q in zip(outs, out_q if isinstance(out_q, list) else [out_q] * n_out):
        if out_dtype:
            g.values[o].dtype = out_dtype
        g.values[o].quant = q
    feeds = {nm: arr for nm, arr, qp, const in inputs if nm and not const}
    return g, feeds


# ---- Conv -----------------------------------------------------------------------------------

# (x shape, W shape, attrs, activation, activation_params, x dtype, w dtype, extreme zps)
CONV_CASES = [
    ((1, 3, 7, 6), (5, 3, 3, 3), dict(pads=[1, 1, 1, 1]), "", [], "int8", "int8", False),
    ((2, 4, 9, 8), (6, 2, 3, 2), dict(group=2, strides=[2, 1], pads=[0, 1, 2, 0], dilations=[1, 2]), "Relu", [],
     "int8", "int8", True),
    ((1, 6, 8, 8), (12, 1, 3, 3), dict(group=6, pads=[1, 1, 1, 1], strides=[2, 2]), "Clip", [0.0, 6.0],
     "uint8", "int8", False),  # depthwise, channel multiplier 2 (Relu6)
    ((1, 5, 11, 5), (5, 1, 5, 1), dict(group=5, auto_pad="SAME_UPPER"), "Clip", [-0.3, 0.2], "int8", "int8", True),
    ((2, 3, 10), (4, 3, 4), dict(strides=[3], pads=[2, 1]), "", [], "uint8", "uint8", True),  # 1-D, uint8 weights
    ((1, 2, 4, 5, 3), (3, 2, 2, 3, 1), dict(pads=[1, 0, 0, 0, 1, 0]), "Relu", [], "int8", "int8", False),  # 3-D
    ((1, 8, 5, 5), (4, 8, 1, 1), dict(), "Clip", [-np.inf, 0.5], "int8", "int8", False),  # 1x1, infinite bound
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv(case):
    xs, ws, attrs, act, params, xdt, wdt, extreme = CONV_CASES[case]
    rng = np.random.default_rng(100 + case)
    x = _rand(rng, xs, xdt)
    wlo, whi = (-127, 127) if wdt == "int8" else (0, 255)
    w = rng.integers(wlo, whi + 1, ws).astype(wdt)
    m = ws[0]
    xq = _qp(rng, xdt, extreme)
    w_scales = (10 ** rng.uniform(-3, -1, m)).astype(np.float32)
    w_zps = [0] * m if wdt == "int8" else rng.integers(0, 256, m).tolist()
    wq = Q(w_scales.tolist(), w_zps, 0)
    bias = rng.integers(-3000, 3000, m).astype(np.int32)
    # output scale around the accumulator's real range; one channel saturates, one case has M > 1
    acc_scale = float(xq.scales[0]) * float(w_scales.max()) * np.sqrt(np.prod(ws[1:])) * 40
    yq = Q([float(np.float32(acc_scale / (300 if case == 3 else 8)))], [int(rng.integers(-20, 20))])
    out_dtype = "uint8" if xdt == "uint8" else "int8"
    if out_dtype == "uint8":
        yq = Q(yq.scales, [int(rng.integers(0, 256))])
    g, feeds = _single("Conv", [("x", x, xq, False), ("w", w, wq, True), ("b", bias, None, True)],
                       dict(attrs, activation=act, activation_params=params), yq, out_dtype=out_dtype)
    y = _check(g, feeds)["y0"]
    lo, hi = RANGE[out_dtype]
    assert y.min() >= lo and y.max() <= hi and len(np.unique(y)) > 3  # not a constant output


def test_conv_multipliers_above_one_and_tiny_per_tensor_weights():
    rng = np.random.default_rng(7)
    x = _rand(rng, (1, 3, 5, 5))
    w = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    for s_y, zp in ((1e-6, 3), (2.0, -128), (1e3, 127)):  # M ~ 1e2 (saturates), ~1e-6, ~1e-9 (flushes)
        g, feeds = _single("Conv", [("x", x, Q([0.02], [-128]), False), ("w", w, Q([0.01], [0]), True)],
                           {"pads": [1, 1, 1, 1]}, Q([s_y], [zp]))
        _check(g, feeds, threads=(2,))


def test_conv_bias_saturates_and_empty_batch():
    rng = np.random.default_rng(8)
    w = rng.integers(-127, 128, (3, 2, 2, 2)).astype(np.int8)
    bias = np.array([2**31 - 40000, -(2**31) + 40000, 0], np.int32)
    x = _rand(rng, (1, 2, 4, 4))
    g, feeds = _single("Conv", [("x", x, Q([0.1], [0]), False), ("w", w, Q([0.05] * 3, [0] * 3, 0), True),
                                ("b", bias, None, True)], {}, Q([0.01], [1]))
    y = _check(g, feeds)["y0"]
    assert (y[0, 0] == 127).all() and (y[0, 1] == -128).all()
    g, feeds = _single("Conv", [("x", x[:0], Q([0.1], [0]), False), ("w", w, Q([0.05], [0]), True)],
                       {}, Q([0.01], [1]))
    _check(g, feeds)


def test_conv_accumulator_overflow_is_an_error_on_both_sides():
    w = np.full((1, 4, 3, 3), 127, np.int8)
    x = np.full((1, 4, 3, 3), 127, np.int8)
    bias = np.array([2**31 - 1000], np.int32)  # + 36 * 255 * 127 > 2^31
    g, feeds = _single("Conv", [("x", x, Q([0.1], [-128]), False), ("w", w, Q([0.05], [0]), True),
                                ("b", bias, None, True)], {}, Q([0.01], [1]))
    with pytest.raises(MobconvError, match="int32 accumulator overflow"):
        ref_run(g, feeds)
    with runtime.Interpreter(to_bytes(g)) as it, pytest.raises(MobconvError, match="int32 accumulator overflow"):
        it.run(feeds)


# ---- MatMul / Gemm --------------------------------------------------------------------------


@pytest.mark.parametrize("a_shape,b_shape,per_column,b_const,dtype", [
    ((2, 3, 5, 7), (7, 4), True, True, "int8"),
    ((3, 1, 4, 6), (2, 6, 5), False, False, "int8"),  # broadcast batch, dynamic B
    ((6,), (6, 3), True, True, "uint8"),            # 1-D A
    ((4, 6), (6,), False, True, "int8"),            # 1-D B
    ((2, 5, 0), (0, 3), True, True, "int8"),        # K = 0: zero point only
])
def test_matmul(a_shape, b_shape, per_column, b_const, dtype):
    rng = np.random.default_rng(sum(a_shape) + 10 * len(b_shape))
    a, b = _rand(rng, a_shape, dtype), _rand(rng, b_shape, dtype)
    n = b_shape[-1]
    bq = (Q((10 ** rng.uniform(-3, -1, n)).astype(np.float32).tolist(), _rand(rng, n, dtype).tolist(), len(b_shape) - 1)
          if per_column else _qp(rng, dtype))
    g, feeds = _single("MatMul", [("a", a, _qp(rng, dtype, True), False), ("b", b, bq, b_const)],
                       {"activation": "Relu"} if dtype == "uint8" else {}, _qp(rng, dtype, scale=0.05))
    _check(g, feeds)


@pytest.mark.parametrize("trans_a,trans_b,bias", [(0, 0, "col"), (1, 0, None), (0, 1, "col"), (1, 1, "one")])
def test_gemm(trans_a, trans_b, bias):
    rng = np.random.default_rng(20 + 2 * trans_a + trans_b)
    m, k, n = 5, 9, 7
    a = _rand(rng, (k, m) if trans_a else (m, k))
    b = rng.integers(-127, 128, (n, k) if trans_b else (k, n)).astype(np.int8)
    bq = Q((10 ** rng.uniform(-3, -1, n)).astype(np.float32).tolist(), [0] * n, 0 if trans_b else 1)
    inputs = [("a", a, _qp(rng, "int8", True), False), ("b", b, bq, True)]
    if bias:
        inputs.append(("c", rng.integers(-5000, 5000, n if bias == "col" else 1).astype(np.int32), None, True))
    g, feeds = _single("Gemm", inputs, {"transA": trans_a, "transB": trans_b, "activation": "Clip",
                                        "activation_params": [-1.0, 2.0]}, Q([0.02], [5]))
    _check(g, feeds)


# ---- Add / Mul ------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["Add", "Mul"])
@pytest.mark.parametrize("a_shape,b_shape,dtype,extreme", [
    ((2, 3, 4, 5), (3, 1, 5), "int8", False),
    ((4, 1), (1, 6), "uint8", True),
    ((3, 4), (), "int8", True),
    ((0, 4), (1, 4), "int8", False),
])
def test_add_mul(op, a_shape, b_shape, dtype, extreme):
    rng = np.random.default_rng(len(a_shape) * 7 + len(b_shape) + (op == "Mul"))
    a, b = _rand(rng, a_shape, dtype), _rand(rng, b_shape, dtype)
    for scales in ((0.05, 0.3, 0.1), (0.01, 0.01, 0.002), (0.2, 0.001, 0.5)):  # M > 1, equal, tiny
        g, feeds = _single(op, [("a", a, _qp(rng, dtype, extreme, scales[0]), False),
                                ("b", b, _qp(rng, dtype, extreme, scales[1]), False)], {},
                           _qp(rng, dtype, extreme, scales[2]))
        _check(g, feeds)


def test_unquantized_int8_add_still_runs_the_plain_kernel():
    rng = np.random.default_rng(5)
    a, b = _rand(rng, (3, 4)), _rand(rng, (4,))
    g, feeds = _single("Add", [("a", a, None, False), ("b", b, None, False)], {}, None)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(_check(g, feeds)["y0"], a + b)  # wraps, as numpy does


# ---- Concat, Relu, Clip ---------------------------------------------------------------------


def test_concat_differing_scales():
    rng = np.random.default_rng(30)
    parts = [_rand(rng, (2, c, 3)) for c in (2, 1, 3, 0)]
    qps = [Q([0.1], [3]), Q([0.3], [-128]), Q([0.1 / 3], [127]), Q([0.5], [0])]
    inputs = [(f"x{i}", p, q, False) for i, (p, q) in enumerate(zip(parts, qps))]
    g, feeds = _single("Concat", inputs, {"axis": 1}, Q([0.1], [3]))  # input 0 is copied
    _check(g, feeds)
    u = [_rand(rng, (3, 2), "uint8") for _ in range(2)]
    g, feeds = _single("Concat", [("u0", u[0], Q([0.02], [0]), False), ("u1", u[1], Q([0.07], [255]), False)],
                       {"axis": -1}, Q([0.04], [128]))
    _check(g, feeds)


def test_relu_and_clip():
    rng = np.random.default_rng(31)
    x = _rand(rng, (2, 3, 4, 5))
    for yq in (Q([0.1], [-4]), Q([0.2], [0]), Q([0.04], [-128])):
        g, feeds = _single("Relu", [("x", x, Q([0.1], [-4]), False)], {}, yq)
        _check(g, feeds)
    u = _rand(rng, (3, 7), "uint8")
    g, feeds = _single("Relu", [("x", u, Q([0.1], [200]), False)], {}, Q([0.1], [200]))
    _check(g, feeds)
    xq = Q([0.1], [-4])
    g, feeds = _single("Clip", [("x", x, xq, False), ("lo", np.int8(-4), xq, True), ("hi", np.int8(26), xq, True)],
                       {}, xq)
    _check(g, feeds)


# ---- pools ----------------------------------------------------------------------------------

POOL_CASES = [
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 2], strides=[2, 3], pads=[1, 0, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1, pads=[0, 1, 0, 0])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, count_include_pad=1, pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[2, 2], dilations=[2, 1], pads=[1, 1, 0, 0], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[4])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("GlobalAveragePool", {}),
    ("GlobalMaxPool", {}),
]


@pytest.mark.parametrize("case", range(len(POOL_CASES)))
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_pools(case, dtype):
    op, attrs = POOL_CASES[case]
    rng = np.random.default_rng(40 + case)
    shape = (2, 3, 9) if len(attrs.get("kernel_shape", [1, 1])) == 1 else (2, 3, 7, 8)
    x = _rand(rng, shape, dtype)
    for extreme in (False, True):
        xq = _qp(rng, dtype, extreme)
        g, feeds = _single(op, [("x", x, xq, False)], attrs, xq)
        _check(g, feeds)
    g, feeds = _single(op, [("x", x[:0], xq, False)], attrs, xq)  # empty batch
    _check(g, feeds)


def test_average_pool_ties_round_away_from_zero():
    # windows of 2 elements (x - zp = [1, 2] -> 1.5 -> 2; [-1, -2] -> -1.5 -> -2), numbers by hand
    x = np.array([1, 2, -1, -2, 0, 1, 0, -1], np.int8).reshape(1, 1, 8)
    g, feeds = _single("AveragePool", [("x", x, Q([0.5], [0]), False)], {"kernel_shape": [2], "strides": [2]},
                       Q([0.5], [0]))
    np.testing.assert_array_equal(_check(g, feeds)["y0"].ravel(), [2, -2, 1, -1])


# ---- Resize ---------------------------------------------------------------------------------

RESIZE_CASES = [
    ("nearest", "half_pixel", "round_prefer_floor", [1, 1, 2, 1.5], None),
    ("nearest", "asymmetric", "floor", [1, 1, 0.6, 2.5], None),
    ("linear", "half_pixel", "round_prefer_floor", [1, 1, 2, 2], None),
    ("linear", "align_corners", "round_prefer_floor", [1, 1, 1.7, 0.55], None),
    ("linear", "asymmetric", "round_prefer_floor", None, [2, 3, 9, 5]),
    ("linear", "pytorch_half_pixel", "round_prefer_floor", [1, 1, 3, 1], None),
    ("linear", "half_pixel_symmetric", "round_prefer_floor", [1, 1, 1.3, 2.6], None),
]


@pytest.mark.parametrize("case", range(len(RESIZE_CASES)))
def test_resize(case):
    mode, ctm, nearest, scales, sizes = RESIZE_CASES[case]
    rng = np.random.default_rng(50 + case)
    for dtype in ("int8", "uint8"):
        x = _rand(rng, (2, 3, 5, 4), dtype)
        xq = _qp(rng, dtype, extreme=case % 2 == 0)
        inputs = [("x", x, xq, False), ("", None, None, True)]
        inputs.append(("scales", np.array(scales, np.float32), None, True) if scales else ("", None, None, True))
        if sizes:
            inputs.append(("sizes", np.array(sizes, np.int64), None, True))
        g, feeds = _single("Resize", inputs, {"mode": mode, "coordinate_transformation_mode": ctm,
                                              "nearest_mode": nearest, "exclude_outside": int(case == 5)}, xq)
        _check(g, feeds)


# ---- element-moving ops ---------------------------------------------------------------------


def test_element_moving_ops_keep_the_integers():
    rng = np.random.default_rng(60)
    x = _rand(rng, (2, 4, 3, 2))
    xq = Q([0.07], [-128])
    x1 = _rand(rng, (1, 4, 3, 2))
    cases = [
        ("Reshape", [("s", np.array([4, -1], np.int64), None, True)], {}, 1),
        ("Transpose", [], {"perm": [0, 2, 3, 1]}, 1),
        ("Flatten", [], {"axis": 2}, 1),
        ("Unsqueeze", [("ax", np.array([0], np.int64), None, True)], {}, 1),
        ("Slice", [("st", np.array([1], np.int64), None, True), ("en", np.array([3], np.int64), None, True),
                   ("axs", np.array([1], np.int64), None, True)], {}, 1),
        ("Split", [("sp", np.array([1, 3], np.int64), None, True)], {"axis": 1}, 2),
        ("Gather", [("ix", np.array([2, 0, 2], np.int64), None, True)], {"axis": 1}, 1),
        ("DepthToSpace", [], {"blocksize": 2}, 1),
        ("Tile", [("rp", np.array([1, 2, 1, 2], np.int64), None, True)], {}, 1),
        ("Identity", [], {}, 1),
        ("Squeeze", [("sq", np.array([0], np.int64), None, True)], {}, 1),
        ("Expand", [("ex", np.array([3, 1, 1, 1, 1], np.int64), None, True)], {}, 1),
        ("SpaceToDepth", [], {"blocksize": 1}, 1),
    ]
    for op, extra, attrs, n_out in cases:
        g, feeds = _single(op, [("x", x1 if op == "Squeeze" else x, xq, False)] + extra, attrs, xq, n_out=n_out)
        _check(g, feeds, threads=(1,))


def test_empty_tensors():
    """Zero-size inputs: no input channels (bias only), K = 0, empty batches and concatenations."""
    conv = _single("Conv", [("x", np.zeros((1, 0, 4, 4), np.int8), Q([0.1], [2]), False),
                            ("w", np.zeros((3, 0, 3, 3), np.int8), Q([0.1], [0]), True),
                            ("b", np.array([5, -7, 100], np.int32), None, True)], {"pads": [1, 1, 1, 1]},
                   Q([0.05], [1]))
    gemm = _single("Gemm", [("a", np.zeros((3, 0), np.int8), Q([0.1], [2]), False),
                            ("b", np.zeros((0, 4), np.int8), Q([0.1], [0]), True),
                            ("c", np.array([1, 2, 300, -400], np.int32), None, True)], {}, Q([0.05], [-3]))
    resize = _single("Resize", [("x", np.zeros((0, 2, 3, 3), np.int8), Q([0.1], [2]), False), ("", None, None, True),
                                ("s", np.array([1, 1, 2, 2], np.float32), None, True)], {"mode": "linear"},
                     Q([0.1], [2]))
    concat = _single("Concat", [("a", np.zeros((0, 3), np.int8), Q([0.1], [2]), False),
                                ("b", np.zeros((0, 2), np.int8), Q([0.3], [2]), False)], {"axis": 1}, Q([0.2], [0]))
    for g, feeds in (conv, gemm, resize, concat):
        _check(g, feeds)


# ---- a small quantized network with float edges ---------------------------------------------


def test_small_network_with_float_edges():
    rng = np.random.default_rng(70)
    g = Graph("net")
    g.add_input("x", "float32", (2, 3, 12, 12))
    consts = {
        "xs": np.float32(0.03), "xz": np.int8(-5),
        "w1": rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8), "b1": rng.integers(-900, 900, 8).astype(np.int32),
        "w2": rng.integers(-127, 128, (8, 1, 3, 3)).astype(np.int8), "b2": rng.integers(-900, 900, 8).astype(np.int32),
        "w3": rng.integers(-127, 128, (8, 5)).astype(np.int8), "b3": rng.integers(-900, 900, 5).astype(np.int32),
        "os": np.float32(0.04), "oz": np.int8(2), "shape": np.array([2, -1], np.int64),
    }
    for k, v in consts.items():
        g.add_constant(k, v)
    g.add_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q")
    g.add_node("Conv", ["xq", "w1", "b1"], ["c1"], {"pads": [1, 1, 1, 1], "activation": "Relu"}, name="conv1")
    g.add_node("MaxPool", ["c1"], ["p1"], {"kernel_shape": [2, 2], "strides": [2, 2]}, name="pool")
    g.add_node("Conv", ["p1", "w2", "b2"], ["c2"], {"group": 8, "pads": [1, 1, 1, 1], "activation": "Clip",
                                                    "activation_params": [0.0, 6.0]}, name="dw")
    g.add_node("Add", ["c2", "p1"], ["s"], name="add")
    g.add_node("GlobalAveragePool", ["s"], ["gap"], name="gap")
    g.add_node("Reshape", ["gap", "shape"], ["f"], name="flat")
    g.add_node("Gemm", ["f", "w3", "b3"], ["l"], name="fc")
    g.add_node("DequantizeLinear", ["l", "os", "oz"], ["y"], name="dq")
    g.outputs = ["y"]
    infer_shapes(g)
    qp = {"xq": Q([0.03], [-5]), "c1": Q([0.05], [-128]), "p1": Q([0.05], [-128]), "c2": Q([0.03], [-128]),
          "s": Q([0.06], [-100]), "gap": Q([0.06], [-100]), "f": Q([0.06], [-100]), "l": Q([0.04], [2]),
          "w1": Q((10 ** rng.uniform(-3, -2, 8)).astype(np.float32).tolist(), [0] * 8, 0),
          "w2": Q((10 ** rng.uniform(-3, -2, 8)).astype(np.float32).tolist(), [0] * 8, 0),
          "w3": Q((10 ** rng.uniform(-3, -2, 5)).astype(np.float32).tolist(), [0] * 5, 1)}
    for k, v in qp.items():
        g.values[k].quant = v
    x = rng.normal(0, 1.5, (2, 3, 12, 12)).astype(np.float32)
    y = _check(g, {"x": x})["y"]
    assert y.dtype == np.float32 and len(np.unique(y)) > 5


# ---- refusals at load -----------------------------------------------------------------------


def _refused(g, pattern):
    with pytest.raises(MobconvError, match=pattern):
        runtime.Interpreter(to_bytes(g))


def test_unsupported_quantized_nodes_are_refused_at_load():
    rng = np.random.default_rng(80)
    x = _rand(rng, (1, 2, 5, 5))
    w = rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)
    xq, wq, yq = Q([0.05], [3]), Q([0.01], [0]), Q([0.1], [-2])
    base = [("x", x, xq, False), ("w", w, wq, True)]
    # an op with no integer kernel, which the plain integer kernel would have computed
    g, _ = _single("Sub", [("a", x, xq, False), ("b", x, xq, False)], {}, yq, name="sub1")
    _refused(g, r"UNSUPPORTED: .*op 'sub1' \(Sub\): no integer kernel for a quantized Sub")
    g, _ = _single("Conv", base, {"activation": "LeakyRelu", "activation_params": [0.1]}, yq, name="c")
    _refused(g, r"op 'c' \(Conv\): fused activation 'LeakyRelu' cannot be fused into a quantized output")
    g, _ = _single("Conv", base, {}, None, name="c")
    _refused(g, r"op 'c' \(Conv\): a quantized Conv needs quantization parameters on every input and output")
    g, _ = _single("Conv", base, {}, Q([1e-30], [0]), name="c")
    _refused(g, r"op 'c' \(Conv\): requantization multiplier .* is too large")
    g, _ = _single("Reshape", [("x", x, xq, False), ("s", np.array([1, -1], np.int64), None, True)], {},
                   Q([0.2], [3]), name="r")
    _refused(g, r"op 'r' \(Reshape\): a quantized Reshape must keep its input's per-tensor quantization")
    for op, attrs in (("AveragePool", {"kernel_shape": [2, 2]}), ("GlobalAveragePool", {})):
        g, feeds = _single(op, [("x", x, xq, False)], attrs, Q([0.2], [3]), name="p")
        _refused(g, rf"op 'p' \({op}\): a quantized {op} must keep its input's dtype and per-tensor")
        with pytest.raises(MobconvError, match=rf"node 'p' \({op}\): a quantized {op} must keep its input's"):
            ref_run(g, feeds)  # the oracle refuses it too (it computed with X's parameters, ignoring Y's)
    g, _ = _single("Gemm", [("a", x[0, 0], xq, False), ("b", x[0, 0, :, :3].copy(), wq, True)], {"alpha": 2.0}, yq,
                   name="fc")
    _refused(g, r"op 'fc' \(Gemm\): a quantized Gemm needs alpha = beta = 1")
    g, _ = _single("Resize", [("x", x, xq, False), ("", None, None, True),
                              ("sc", np.array([1, 1, 2, 2], np.float32), None, True)], {"mode": "cubic"}, xq, name="rs")
    _refused(g, r"op 'rs' \(Resize\): a quantized Resize is defined for modes nearest and linear")
    g, _ = _single("Resize", [("x", x, xq, False), ("", None, None, True),
                              ("sc", np.array([2, 2, 2, 2], np.float32), None, True)], {"mode": "linear"}, xq,
                   name="rs")
    _refused(g, r"op 'rs' \(Resize\): a quantized linear Resize resizes at most 2 axes, got 4")
    g, _ = _single("Add", [("a", x, Q([0.05], [300]), False), ("b", x, xq, False)], {}, yq, name="a")
    _refused(g, r"op 'a' \(Add\): Add A: zero point 300 is outside the int8 range")
    g, _ = _single("Clip", [("x", x, xq, False), ("lo", np.int8(0), Q([0.2], [0]), True)], {}, xq, name="cl")
    _refused(g, r"op 'cl' \(Clip\): a quantized Clip needs its min/max as integers with the input's")


# ---- rounding corners that random data rarely reaches ---------------------------------------


def test_resize_linear_weights_at_exact_ties_round_to_even():
    # align_corners, width 2 -> 2049: x = y / 2048, weights (1 - y/2048, y/2048), so y * 1024 / 2048 = y / 2
    # lies exactly halfway between two 10-bit steps for every odd y (ties to even: 0.5 -> 0, 1.5 -> 2)
    x = np.array([[-128, 127], [127, -128], [0, 100]], np.int8).reshape(1, 3, 1, 2)
    xq = Q([0.1], [-7])
    g, feeds = _single("Resize", [("x", x, xq, False), ("", None, None, True), ("", None, None, True),
                                  ("sz", np.array([1, 3, 1, 2049], np.int64), None, True)],
                       {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, xq)
    _check(g, feeds, threads=(1,))


def test_fused_clip_bounds_at_ties_round_to_even():
    # s_y 0.25: Clip(-0.625, 0.875) -> -2.5 and 3.5 -> -2 and 4 (half to even), plus zp
    rng = np.random.default_rng(90)
    a = _rand(rng, (6, 10))
    b = rng.integers(-127, 128, (10, 8)).astype(np.int8)
    for zp in (0, 3, -128):
        g, feeds = _single("MatMul", [("a", a, Q([0.05], [1]), False), ("b", b, Q([0.02], [0]), True)],
                           {"activation": "Clip", "activation_params": [-0.625, 0.875]}, Q([0.25], [zp]))
        y = _check(g, feeds, threads=(1,))["y0"]
        assert y.min() == max(zp - 2, -128) and y.max() == zp + 4


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_every_int8_pair(op):
    """All 65536 (a, b) pairs under a few scale triples (ratios above 1, near 1, tiny)."""
    rng = np.random.default_rng(91 + (op == "Mul"))
    a = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(256, 1)
    b = a.reshape(1, 256)
    for _ in range(4):
        sa, sb, sy = (float(np.float32(10 ** rng.uniform(-3, 0))) for _ in range(3))
        g, feeds = _single(op, [("a", a, _qp(rng, scale=sa), False), ("b", b, _qp(rng, scale=sb), False)], {},
                           _qp(rng, scale=sy))
        _check(g, feeds, threads=(1,))


# ---- the fixed-point header itself, compiled standalone ---------------------------------------

_PRIMITIVES_MAIN = r"""
#include <cstdio>
#include <cstdlib>
#include "cpu/reference/quant_fixed_point.h"
using namespace mobrt::quant;
int main() {
  char op[16];
  while (std::scanf("%15s", op) == 1) {
    if (op[0] == 'Q') {  // Q real: quantize_multiplier
      char buf[64]; std::scanf("%63s", buf);
      Multiplier m; MultiplierError e = quantize_multiplier(std::strtod(buf, nullptr), &m);
      std::printf("%d %lld %d\n", static_cast<int>(e), static_cast<long long>(m.q), m.shift);
    } else if (op[0] == 'H') {  // H a b: rounding_doubling_high_mul
      long long a, b; std::scanf("%lld %lld", &a, &b);
      std::printf("%lld\n", static_cast<long long>(rounding_doubling_high_mul(a, b)));
    } else if (op[0] == 'D') {  // D x e: rounding_divide_by_pot
      long long x; int e; std::scanf("%lld %d", &x, &e);
      std::printf("%lld\n", static_cast<long long>(rounding_divide_by_pot(x, e)));
    } else {  // M x q shift: multiply_by_quantized_multiplier
      long long x, q; int s; std::scanf("%lld %lld %d", &x, &q, &s);
      Multiplier m; m.q = q; m.shift = s;
      std::printf("%lld\n", static_cast<long long>(multiply_by_quantized_multiplier(x, m)));
    }
  }
}
"""


def test_fixed_point_header_matches_quant_math(tmp_path):
    """runtime/src/cpu/reference/quant_fixed_point.h (shared by the reference and the future SIMD
    int8 kernels) equals quant_math's primitives on hand-picked corners and random values: the
    rounding of q (ties away from zero), the flush below 2^-32, the refusal at 2^31, the nudge of
    negative products, the -2^31 * -2^31 saturation, ties of the rounding shift and the
    saturating left shift of multipliers above 1."""
    cxx = shutil.which("g++") or shutil.which("c++")
    assert cxx, "no C++ compiler"
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "p.cpp").write_text(_PRIMITIVES_MAIN)
    subprocess.run([cxx, "-std=c++17", "-O2", f"-I{root / 'runtime' / 'src'}", str(tmp_path / "p.cpp"), "-o",
                    str(tmp_path / "p")], check=True)
    rng = np.random.default_rng(92)
    lines, want = [], []
    reals = [0.0, 0.5, 1.0, 0.3, 2.0 ** -32, 2.0 ** -31, 2.0 ** -33, 2.0 ** 31, 2.0 ** 31 - 2.0 ** -22,
             1 - 2.0 ** -40, 3.0, 1e-10, 1e-9, 123456.789]
    reals += list(10 ** rng.uniform(-12, 9, 300)) + [float(np.float32(r)) for r in 10 ** rng.uniform(-6, 3, 100)]
    reals += [math.ldexp(k + 0.5, -31 + e) for k, e in ((1 << 30, 0), ((1 << 31) - 1, -5), (1 << 30 | 12345, 7))]
    for r in reals:
        lines.append(f"Q {float(r).hex()}")
        try:
            q, s = qm.quantize_multiplier(r)
            want.append(f"0 {q} {s}")
        except MobconvError:
            want.append("2 0 0")
    i32 = [-(1 << 31), -(1 << 31) + 1, -(1 << 30), -3, -1, 0, 1, 3, (1 << 30), (1 << 31) - 1]
    pairs = [(a, b) for a in i32 for b in i32]
    pairs += [tuple(int(v) for v in rng.integers(-(1 << 31), 1 << 31, 2)) for _ in range(300)]
    pairs += [((1 << 30) + k, (1 << 30)) for k in (-3, -1, 1, 3)] + [(-3, 1 << 30), (-1, 1 << 30), (3, 1 << 30)]
    for a, b in pairs:
        lines.append(f"H {a} {b}")
        want.append(str(int(qm.rounding_doubling_high_mul(a, b))))
    xs = [-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 5, 6, -(1 << 31), (1 << 31) - 1]
    for x in xs + list(rng.integers(-(1 << 31), 1 << 31, 200)):
        for e in (0, 1, 2, 3, 7, 20, 31):
            lines.append(f"D {int(x)} {e}")
            want.append(str(int(qm.rounding_divide_by_pot(int(x), e))))
    for _ in range(600):
        r = float(10 ** rng.uniform(-11, 4))
        q, s = qm.quantize_multiplier(r)
        x = int(rng.integers(-(1 << 31), 1 << 31)) >> int(rng.integers(0, 31))
        lines.append(f"M {x} {q} {s}")
        want.append(str(int(qm.multiply_by_quantized_multiplier(x, q, s))))
    out = subprocess.run([str(tmp_path / "p")], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")
    bad = [(l, w, g) for l, w, g in zip(lines, want, out) if w != g]
    assert len(out) >= len(want) and not bad, bad[:5]


# ---- the float32 requantization rule (onnxruntime's; docs/quantization.md section 2) ---------


def _param_calls(fn) -> list:
    """kwargs of every call pytest makes of `fn` (the cartesian product of its parametrize marks)."""
    calls = [{}]
    for m in [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]:
        names = [n.strip() for n in m.args[0].split(",")]
        calls = [dict(c, **dict(zip(names, v if len(names) > 1 else (v,)))) for c in calls for v in m.args[1]]
    return calls


def test_float32_rule_runs_every_conv_matmul_gemm_pool_case_bit_exact():
    """Every Conv/MatMul/Gemm/pool case above again, the graph saying quantization.requantize =
    float32: the runtime equals the oracle exactly (1 and 2 threads)."""
    global _FLOAT32
    _FLOAT32 = True
    try:
        for fn in (test_conv, test_conv_multipliers_above_one_and_tiny_per_tensor_weights,
                   test_conv_bias_saturates_and_empty_batch, test_matmul, test_gemm, test_pools):
            for kwargs in _param_calls(fn):
                fn(**kwargs)
    finally:
        _FLOAT32 = False


def test_float32_rule_ties_round_half_to_even():
    """Hand-worked: s_x * s_w / s_y = 1 * 0.5 / 1, accumulators -5..5 (a 1x1 Conv of weight 1):
    acc * 0.5 = -2.5, -2, ..., 2.5. fixed_point rounds ties toward +infinity (gemmlowp's high
    multiply, shift 0): -2, -2, -1, -1, 0, 0, 1, 1, 2, 2, 3; float32 rounds them to even: -2, -2,
    -2, -1, 0, 0, 0, 1, 2, 2, 2. With zero point 3 and a Relu range [3, 127] the clamp comes before the
    rounding (the float domain) and gives the same integers as after it."""
    global _FLOAT32
    x = np.arange(-5, 6, dtype=np.int8).reshape(1, 1, 1, 11)
    w = np.ones((1, 1, 1, 1), np.int8)
    want = {False: [-2, -2, -1, -1, 0, 0, 1, 1, 2, 2, 3], True: [-2, -2, -2, -1, 0, 0, 0, 1, 2, 2, 2]}
    try:
        for f32 in (False, True):
            _FLOAT32 = f32
            g, feeds = _single("Conv", [("x", x, Q([1.0], [0]), False), ("w", w, Q([0.5], [0]), True)], {},
                               Q([1.0], [0]))
            np.testing.assert_array_equal(_check(g, feeds)["y0"].reshape(-1), want[f32])
            g, feeds = _single("Conv", [("x", x, Q([1.0], [0]), False), ("w", w, Q([0.5], [0]), True)],
                               {"activation": "Relu"}, Q([1.0], [3]))
            np.testing.assert_array_equal(_check(g, feeds)["y0"].reshape(-1), np.maximum(np.add(want[f32], 3), 3))
    finally:
        _FLOAT32 = False


def test_float32_rule_scale_is_formed_in_float32_in_onnxruntime_order():
    """s_x = 0.1f, s_w = 0.3f, s_y = 0.7f: float32((0.1f * 0.3f) / 0.7f) differs from the double
    product rounded once; an accumulator where the two scales give different integers shows the
    float32 order (onnxruntime's QLinearConv: X_scale * W_scale[i] / Y_scale, all float)."""
    s_x, s_w, s_y = np.float32(0.1), np.float32(0.3), np.float32(0.7)
    f32 = qm.float32_scales(s_x, [s_w], s_y)[0]
    f64 = np.float32(float(s_x) * float(s_w) / float(s_y))
    assert f32 == np.float32((s_x * s_w) / s_y) and f32 != f64
    acc = next(a for a in range(1, 1 << 24) if np.rint(np.float32(a) * f32) != np.rint(np.float32(a) * f64))
    got = qm.requantize_float32(np.array([acc]), f32, 0, INT32_MIN, INT32_MAX)
    assert int(got[0]) == int(np.rint(np.float32(acc) * f32))


INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@pytest.mark.parametrize("op", ["AveragePool", "GlobalAveragePool"])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_float32_pools_requantize_to_other_parameters(op, dtype):
    """Under the float32 rule an average pool may write other output parameters (onnxruntime's
    QLinear(Global)AveragePool); the fixed_point rule refuses them on both sides."""
    global _FLOAT32
    rng = np.random.default_rng(61 + len(op) + len(dtype))
    x = _rand(rng, (2, 3, 7, 8), dtype)
    attrs = {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1], "ceil_mode": 1} \
        if op == "AveragePool" else {}
    xq = _qp(rng, dtype)
    for yq in (_qp(rng, dtype, scale=float(xq.scales[0]) * 0.7), _qp(rng, dtype, True), xq):
        try:
            _FLOAT32 = True
            g, feeds = _single(op, [("x", x, xq, False)], attrs, yq)
        finally:
            _FLOAT32 = False
        _check(g, feeds)
    g, feeds = _single(op, [("x", x, xq, False)], attrs, Q([float(xq.scales[0]) * 2], xq.zero_points))
    with pytest.raises(MobconvError, match="must keep its input's dtype and per-tensor"):
        ref_run(g, feeds)
    if _COLLECT is None:
        with pytest.raises(MobconvError, match="must keep its input's dtype and per-tensor"):
            runtime.Interpreter(to_bytes(g)).close()


def test_requantize_metadata_value_is_checked():
    """An unknown quantization.requantize value is refused by the oracle and at load, naming the key."""
    g, feeds = _single("Conv", [("x", np.zeros((1, 1, 2, 2), np.int8), Q([1.0], [0]), False),
                                ("w", np.ones((1, 1, 1, 1), np.int8), Q([0.5], [0]), True)], {}, Q([1.0], [0]))
    g.metadata.extra[qm.REQUANTIZE_KEY] = "float64"
    with pytest.raises(MobconvError, match="quantization.requantize must be one of fixed_point, float32"):
        ref_run(g, feeds)
    with pytest.raises(MobconvError, match="quantization.requantize must be fixed_point or float32"):
        runtime.Interpreter(to_bytes(g)).close()


_FLOAT_REQUANT_MAIN = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "cpu/reference/quant_float_requant.h"
int main() {
  char op;
  while (std::scanf(" %c", &op) == 1) {
    if (op == 'S') {  // S s_x s_w s_y (hex floats) -> the float32 scale's bits
      float a, b, c;
      if (std::scanf("%a %a %a", &a, &b, &c) != 3) return 1;
      float r = mobrt::quant::float32_scale(a, b, c);
      unsigned u;
      std::memcpy(&u, &r, 4);
      std::printf("%u\n", u);
    } else if (op == 'R') {  // R acc scale zp lo hi
      long long acc, zp, lo, hi;
      float s;
      if (std::scanf("%lld %a %lld %lld %lld", &acc, &s, &zp, &lo, &hi) != 5) return 1;
      std::printf("%lld\n", static_cast<long long>(mobrt::quant::requantize_float32(acc, s, zp, lo, hi)));
    }
  }
  return 0;
}
"""


def test_float_requant_header_matches_quant_math(tmp_path):
    """runtime/src/cpu/reference/quant_float_requant.h, compiled with contraction allowed
    (-O3 -ffp-contract=fast, FMA where the host has it), equals quant_math's float32 rule on
    random scales and accumulators and on exact and near ties (k + 1/2 and its neighbours)."""
    cxx = shutil.which("g++") or shutil.which("c++")
    assert cxx, "no C++ compiler"
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "f.cpp").write_text(_FLOAT_REQUANT_MAIN)
    subprocess.run([cxx, "-std=c++17", "-O3", "-ffp-contract=fast", "-march=native",
                    f"-I{root / 'runtime' / 'src'}", str(tmp_path / "f.cpp"), "-o", str(tmp_path / "f")], check=True)
    rng = np.random.default_rng(93)
    lines, want = [], []
    for _ in range(500):
        s = (10 ** rng.uniform(-4, 0, 3)).astype(np.float32)
        lines.append("S " + " ".join(float(v).hex() for v in s))
        want.append(str(int(qm.float32_scales(s[0], [s[1]], s[2])[0].view(np.uint32))))
    cases = []
    for _ in range(1500):
        scale = np.float32(10 ** rng.uniform(-6, 0))
        acc = int(rng.integers(-(1 << 31), 1 << 31)) >> int(rng.integers(0, 31))
        cases.append((acc, scale))
    for k in range(-40, 40):  # ties: acc * 2^-e = k + 1/2 exactly, and 1 ulp of scale either side
        for e in (1, 3, 8):
            acc = (2 * k + 1) << (e - 1)
            s = np.float32(2.0 ** -e)
            for sc in (s, np.nextafter(s, np.float32(0)), np.nextafter(s, np.float32(1))):
                cases.append((acc, np.float32(sc)))
    for acc, scale in cases:
        zp, (lo, hi) = int(rng.integers(-128, 128)), ((-128, 127) if rng.random() < 0.8 else (INT32_MIN, INT32_MAX))
        if not lo <= zp <= hi:
            zp = 0
        lines.append(f"R {acc} {float(scale).hex()} {zp} {lo} {hi}")
        want.append(str(int(qm.requantize_float32(np.array([acc]), scale, zp, lo, hi)[0])))
    out = subprocess.run([str(tmp_path / "f")], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")
    bad = [(l, w, g) for l, w, g in zip(lines, want, out) if w != g]
    assert len(out) >= len(want) and not bad, bad[:5]


# ---- the same cases on aarch64 (cross-compiled mobrt_run under qemu) --------------------------


def test_int8_cases_on_aarch64(mobrt_run_aarch64, tmp_path):
    """Every case above except the refusals and the standalone header check, run by the aarch64
    build under the neon and the neon_dot caps (qemu -cpu max) at 1 and 2 threads: the outputs
    equal the numpy reference exactly."""
    global _COLLECT
    _COLLECT = []
    try:
        module = sys.modules[__name__]
        for name in sorted(dir(module)):
            fn = getattr(module, name)
            if not name.startswith("test_") or name in ("test_int8_cases_on_aarch64",
                                                         "test_fixed_point_header_matches_quant_math",
                                                         "test_float_requant_header_matches_quant_math",
                                                         "test_requantize_metadata_value_is_checked",
                                                         "test_unsupported_quantized_nodes_are_refused_at_load",
                                                         "test_hostile_quantization_parameters_are_refused_cleanly",
                                                         "test_conv_accumulator_overflow_is_an_error_on_both_sides"):
                continue
            for kwargs in _param_calls(fn):
                fn(**kwargs)
        cases = _COLLECT
    finally:
        _COLLECT = None
    assert len(cases) > 100
    for k, (g, feeds, _) in enumerate(cases):
        d = tmp_path / f"{k:04d}"
        (d / "inputs").mkdir(parents=True)
        (d / "model.mob").write_bytes(to_bytes(g))
        for i, name in enumerate(g.inputs):
            np.save(d / "inputs" / f"{i}.npy", np.ascontiguousarray(feeds[name]))
    for isa, threads in (("neon", 1), ("neon", 2), ("neon_dot", 1), ("neon_dot", 2)):  # armv8.0 and sdot kernels
        proc = subprocess.run([*QEMU, "-cpu", "max", str(mobrt_run_aarch64), "--batch", str(tmp_path), "--isa", isa,
                               "--threads", str(threads)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (f"mobrt_run --batch (isa={isa} threads={threads}) exited with "
                                      f"{proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        out = f"outputs_{isa}" + (f"_t{threads}" if threads > 1 else "")
        for k, (g, feeds, want) in enumerate(cases):
            status = (tmp_path / f"{k:04d}" / out / "status").read_text().splitlines()
            where = (f"case {k} ({g.nodes[0].op}, inputs {[np.shape(v) for v in feeds.values()]}) isa={isa} "
                     f"threads={threads}")
            assert status and status[0] == "ok", f"{where}: {status}"
            for j, name in enumerate(g.outputs):
                got = np.load(tmp_path / f"{k:04d}" / out / f"{j}.npy")
                assert got.dtype == want[name].dtype and np.array_equal(got, want[name]), where


def test_hostile_quantization_parameters_are_refused_cleanly():
    """Parameters a hostile or broken file may carry: refused at load with the rule, never a crash."""
    rng = np.random.default_rng(93)
    x = _rand(rng, (1, 2, 5, 5))
    w = rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)
    xq, wq, yq = Q([0.05], [3]), Q([0.01], [0]), Q([0.1], [-2])

    def conv(xq=xq, wq=wq, yq=yq, w=w, bias=None, out_dtype=None):
        inputs = [("x", x, xq, False), ("w", w, wq, True)] + ([("b", bias, None, True)] if bias is not None else [])
        return _single("Conv", inputs, {}, yq, out_dtype=out_dtype, name="c")[0]

    cases = [
        (conv(xq=Q([0.05, 0.1], [0, 0], 1)), r"X must be quantized per tensor, got 2 scales"),
        (conv(yq=Q([0.0], [0])), r"Y: scales must be finite and > 0"),
        (conv(yq=Q([float("nan")], [0])), r"Y: scales must be finite and > 0"),
        (conv(wq=Q([-0.01], [0])), r"W: scales must be finite and > 0"),
        (conv(wq=Q([0.01, 0.02], [0, 0], 1)), r"W must be quantized per tensor or per output channel \(axis 0, 4 "),
        (conv(bias=np.zeros(4, np.float32)), r"a quantized Conv needs an int32 bias, got float32"),
        (conv(w=w.astype(np.int32)), r"a quantized Conv needs W int8 or uint8, got int32"),
        (conv(out_dtype="int16"), r"needs its output int8 or uint8, got int16"),
        (conv(xq=Q([0.05], [-129])), r"X: zero point -129 is outside the int8 range"),
        (_single("Gemm", [("a", x[0, 0, :2], xq, False), ("b", _rand(rng, (5, 4)), wq, True),
                          ("c", np.zeros((2, 4), np.int32), None, True)], {}, yq, name="c")[0],
         r"a quantized Gemm needs C with one int32 value per output column \(4\) or one value, got shape \(2, 4\)"),
        (_single("MatMul", [("a", x[0, 0], xq, False), ("b", x[0, 0, 0].copy(), Q([0.1] * 5, [0] * 5, 0), True)], {},
                 yq, name="c")[0], r"B of a quantized MatMul is 1-D: it must be quantized per tensor"),
        (_single("Relu", [("x", _rand(rng, (3,), "uint8"), Q([0.1], [-1]), False)], {}, Q([0.1], [0]), name="c")[0],
         r"Relu X: zero point -1 is outside the uint8 range"),
    ]
    for g, pattern in cases:
        _refused(g, r"UNSUPPORTED: .*op 'c' \((Conv|Gemm|MatMul|Relu)\): .*" + pattern)
