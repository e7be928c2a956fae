"""Optimized fp32 kernels through the runtime's kernel table, per instruction set.

The native kernel tests (test_kernels_native.py) check the kernels themselves; this
checks the table entries around them (runtime/src/cpu/f32/*_f32_kernel.h): attribute
handling (pads, auto_pad, ceil_mode, dilations, groups, fused activations, Gemm
alpha/beta/transB, Clip inputs, Softmax axis) and the fallback to the reference for
configurations the fast path declines. Each one-node graph runs with the reference
kernels (isa="scalar") and with every optimized instruction set this CPU has, at 1 and
2 threads; results must agree with the numpy reference, and across thread counts.
"""
import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from mobconv.ops import load_all

import runtime_cases  # shared one-node graph builder (tests/ is on sys.path under pytest)

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

REG = load_all()
rng = np.random.default_rng(7)


def _isas() -> list:
    """Optimized fp32 instruction sets the running CPU can execute (plus None: the best one)."""
    return [None] + runtime_cases.native_isas()[1:]


def f32(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


C = lambda a: ("const", np.asarray(a))  # noqa: E731
CASES = []


def case(op, variant, inputs, attrs=None, tol=1e-4):
    fast = "falls_back" not in variant  # else the reference kernel must be chosen
    CASES.append(pytest.param(op, inputs, attrs or {}, tol, fast, id=f"{op}-{variant}"))


RELU6 = {"activation": "Clip", "activation_params": [0.0, 6.0]}
# Conv: im2col + GEMM, 1x1 as GEMM, strided 1x1, depthwise 3x3 s1/s2, generic depthwise.
case("Conv", "3x3_s1_p1_bias_relu", [f32(1, 13, 17, 19), C(f32(29, 13, 3, 3)), C(f32(29))],
     {"pads": [1, 1, 1, 1], "activation": "Relu"})
case("Conv", "3x3_s2_asym_pads", [f32(2, 5, 16, 15), C(f32(16, 5, 3, 3))], {"strides": [2, 2], "pads": [0, 1, 1, 0]})
case("Conv", "same_upper_s2", [f32(1, 6, 15, 14), C(f32(8, 6, 3, 3))], {"strides": [2, 2], "auto_pad": "SAME_UPPER"})
case("Conv", "7x7_s2_p3", [f32(1, 3, 45, 45), C(f32(16, 3, 7, 7)), C(f32(16))], {"strides": [2, 2], "pads": [3, 3, 3, 3]})
case("Conv", "1x1_127ch", [f32(1, 127, 9, 11), C(f32(33, 127, 1, 1)), C(f32(33))], {**RELU6})
case("Conv", "1x1_s2", [f32(1, 24, 14, 14), C(f32(40, 24, 1, 1)), C(f32(40))], {"strides": [2, 2]})
case("Conv", "dilated", [f32(1, 4, 13, 13), C(f32(6, 4, 3, 3))], {"dilations": [2, 2], "pads": [2, 2, 2, 2]})
case("Conv", "groups3_hswish", [f32(1, 12, 10, 10), C(f32(24, 4, 3, 3)), C(f32(24))],
     {"group": 3, "pads": [1, 1, 1, 1], "activation": "HardSwish"})
case("Conv", "dw3x3_s1_relu6", [f32(2, 24, 28, 28), C(f32(24, 1, 3, 3)), C(f32(24))],
     {"group": 24, "pads": [1, 1, 1, 1], **RELU6})
case("Conv", "dw3x3_s2_wide", [f32(1, 8, 80, 130), C(f32(8, 1, 3, 3)), C(f32(8))],
     {"group": 8, "pads": [1, 1, 1, 1], "strides": [2, 2]})
case("Conv", "dw3x3_s1_wide_sigmoid", [f32(1, 3, 70, 100), C(f32(3, 1, 3, 3))],
     {"group": 3, "pads": [1, 1, 1, 1], "activation": "Sigmoid"})
case("Conv", "dw5x5_s2", [f32(1, 6, 19, 19), C(f32(6, 1, 5, 5)), C(f32(6))], {"group": 6, "pads": [2, 2, 2, 2], "strides": [2, 2]})
case("Conv", "leaky_tanh_chain_leaky", [f32(1, 8, 9, 9), C(f32(8, 8, 3, 3))],
     {"activation": "LeakyRelu", "activation_params": [0.2]})
case("Conv", "tanh", [f32(1, 8, 9, 9), C(f32(8, 8, 1, 1))], {"activation": "Tanh"})
case("Conv", "hardsigmoid", [f32(1, 8, 9, 9), C(f32(8, 8, 1, 1))],
     {"activation": "HardSigmoid", "activation_params": [0.2, 0.5]})
case("Conv", "3x3_s1_64ch_shift_accumulate", [f32(1, 64, 20, 21, lo=-1, hi=1), C(f32(24, 64, 3, 3, lo=-0.2, hi=0.2)),
                                                C(f32(24))], {"pads": [1, 1, 1, 1], **RELU6})
case("Conv", "3x3_s1_96ch_small_tap_major", [f32(2, 96, 7, 7, lo=-1, hi=1), C(f32(16, 96, 3, 3, lo=-0.2, hi=0.2))],
     {"pads": [1, 1, 1, 1]})
case("Conv", "1d_falls_back", [f32(1, 3, 17), C(f32(4, 3, 5))], {"strides": [3]})
case("Conv", "weights_as_input_falls_back", [f32(1, 3, 8, 8), f32(4, 3, 3, 3)])
# Gemm / MatMul with constant B.
case("Gemm", "fc_transB_alpha_beta", [f32(3, 127), C(f32(1000, 127)), C(f32(1000))],
     {"transB": 1, "alpha": 0.5, "beta": 2.0})
case("Gemm", "batch1_relu", [f32(1, 1280), C(f32(1280, 13)), C(f32(13))], {"activation": "Relu"})
case("Gemm", "transA_falls_back", [f32(7, 5), C(f32(7, 3))], {"transA": 1})
case("Gemm", "matrix_C_falls_back", [f32(4, 5), C(f32(5, 6)), C(f32(4, 6))])
case("MatMul", "const_B_3d", [f32(2, 7, 33), C(f32(33, 17))])
case("MatMul", "const_B_vec_in", [f32(33), C(f32(33, 5))])
case("MatMul", "dynamic_batched_bcast", [f32(2, 1, 3, 5), f32(4, 5, 6)])
case("MatMul", "dynamic_vec_A", [f32(5), f32(3, 5, 2)])
case("MatMul", "dynamic_vec_B", [f32(2, 3, 5), f32(5)])
case("MatMul", "dynamic_big", [f32(2, 37, 131), f32(2, 131, 45)])
case("MatMul", "dynamic_fused_relu", [f32(13, 17), f32(17, 33)], {"activation": "Relu"})
# Pooling.
case("MaxPool", "3x3s2_pad", [f32(2, 3, 111, 111)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
case("MaxPool", "2x2s2", [f32(1, 5, 14, 14)], {"kernel_shape": [2, 2], "strides": [2, 2]})
case("MaxPool", "ceil", [f32(1, 2, 8, 8)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
case("MaxPool", "wide_s1", [f32(1, 2, 9, 70)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
case("AveragePool", "exclude_pad", [f32(1, 3, 13, 40)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
case("AveragePool", "include_pad", [f32(1, 3, 9, 9)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
case("AveragePool", "ceil_include", [f32(1, 2, 8, 8)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                                         "count_include_pad": 1, "pads": [1, 1, 1, 1]})
case("GlobalAveragePool", "odd", [f32(2, 13, 7, 5)])
# Element-wise.
for op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"]:
    case(op, "bcast_channel", [f32(2, 16, 9, 9), f32(1, 16, 1, 1, lo=0.5, hi=2)])
case("Add", "scalar_rhs", [f32(3, 127), C(np.float32(0.25))])
case("Mul", "rank_diff", [f32(13), f32(2, 3, 13)])
case("Add", "outer", [f32(5, 1), f32(1, 131)])
case("Relu", "odd", [f32(2, 3, 131)])
case("Relu", "nan_inf", [np.array([np.nan, -np.inf, np.inf, -1.0, 2.0] * 7, np.float32)])
case("Clip", "nan", [np.array([np.nan, -3.0, 0.1, 3.0] * 9, np.float32), C(np.float32(-0.5)), C(np.float32(0.7))])
case("Sigmoid", "odd", [f32(2, 3, 131, lo=-30, hi=30)])
case("Tanh", "odd", [f32(2, 3, 131, lo=-10, hi=10)])
case("HardSwish", "odd", [f32(127, lo=-5, hi=5)])
case("HardSigmoid", "ab", [f32(4, 33)], {"alpha": 0.25, "beta": 0.4})
case("LeakyRelu", "alpha", [f32(4, 33)], {"alpha": 0.3})
case("Clip", "minmax", [f32(3, 33), C(np.float32(-0.5)), C(np.float32(0.7))])
case("Clip", "max_only", [f32(3, 33), ("absent",), C(np.float32(0.7))])
# Softmax.
case("Softmax", "last_1000", [f32(2, 1000, lo=-10, hi=10)])
case("Softmax", "axis1_inner", [f32(2, 21, 7, 7)], {"axis": 1})
case("LogSoftmax", "axis0", [f32(5, 13)], {"axis": 0})


def build(op, inputs, attrs):
    """One-node graph, feeds and the numpy reference's single output (runtime_cases.build)."""
    g, feeds, expected = runtime_cases.build(op, inputs, attrs, 1)
    return g, feeds, expected[0]


def kernel_name(it) -> str:
    """Name of the kernel that ran the graph's only op ('' if the binding cannot tell)."""
    entry_t = getattr(runtime, "_ProfileEntry", None)
    if entry_t is None or not hasattr(it, "_lib") or not hasattr(it, "_it"):
        return ""
    import ctypes
    entry = entry_t()
    if it._lib.mobrt_interpreter_profile_entry(it._it, 0, ctypes.byref(entry)) != 0:
        return ""
    return (getattr(entry, "kernel", b"") or b"").decode()


@pytest.mark.parametrize("isa", _isas(), ids=lambda v: v or "best")
@pytest.mark.parametrize("op,inputs,attrs,tol,fast", CASES)
def test_optimized_kernel_matches_reference(op, inputs, attrs, tol, fast, isa):
    g, feeds, expected = build(op, inputs, attrs)
    data = to_bytes(g)
    results = {}
    for threads in (1, 2):
        with runtime.Interpreter(data, threads=threads, isa=isa) as it:
            results[threads] = it.run(feeds)["out0"]
            name = kernel_name(it)
        if name and isa is not None:
            want = f"_{isa}" if fast else "_reference"
            assert name.endswith(want), f"{op}: kernel {name!r} ran, expected one ending in {want!r}"
    got = results[1]
    where = f"{op} isa={isa or 'best'} shape={[np.shape(a) for a in feeds.values()]}"
    assert got.shape == expected.shape, f"{where}: shape {got.shape}, expected {expected.shape}"
    bad = ~np.isclose(got, expected, rtol=tol, atol=tol, equal_nan=True)
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        pytest.fail(f"{where}: {int(bad.sum())} mismatches, first at {i}: expected {expected[i]!r}, got {got[i]!r}")
    assert np.array_equal(results[1], results[2], equal_nan=True), f"{where}: 1 and 2 threads disagree"
