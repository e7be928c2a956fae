"""The optimized QuantizeLinear / DequantizeLinear kernels (runtime/src/cpu/int8/q8_quantize*:
quantize_linear_q8_<isa>, dequantize_linear_q8_<isa>) against the numpy reference
(mobconv/ops/quant_math.py through the reference interpreter), bit for bit, under every
instruction set this machine has (1 and 2 threads) and under qemu-aarch64 (neon, neon_dot).

The inputs aim at every corner of the element rule saturate(rint(x / scale) + zp): lengths
0..70 around the vector widths (8, 16, 32, 64 lanes and their tails), exact .5 ties of the
float32 quotient (and their neighbours one ulp away), values that saturate, +-inf, NaN,
-0.0, denormals, huge / tiny / denormal / zero / negative scales, zero points at the dtype's
extremes, int8 and uint8, per tensor and per axis; every byte value for DequantizeLinear and
int32 data whose difference with the zero point wraps or does not fit a float32 mantissa;
and the quantizer's digits models with float32 I/O (their input QuantizeLinear and output
DequantizeLinear).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from int8_harness import check_every_isa, run_under_qemu
from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.reference.interpreter import run as ref_run
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
F32 = np.float32


def _native(kind: str) -> dict:
    """The kernel each native instruction-set cap must run (scalar: the reference)."""
    return {isa: f"{kind}_linear_q8_{'avx512' if isa.startswith('avx512') else isa}"
            for isa in runtime.supported_isas() if isa != "scalar"}


QEXPECT = {"neon": "quantize_linear_q8_neon", "neon_dot": "quantize_linear_q8_neon"}
DQEXPECT = {"neon": "dequantize_linear_q8_neon", "neon_dot": "dequantize_linear_q8_neon"}


def _graph(op, x, scale, zp, axis=None, out_dtype=None, **extra):
    """One QuantizeLinear / DequantizeLinear node; scale and zero point are constants."""
    g = Graph(op.lower())
    g.add_input("x", x.dtype.name, x.shape)
    g.add_constant("s", np.asarray(scale, F32))
    names = ["x", "s"]
    if zp is not None:
        g.add_constant("z", zp)
        names.append("z")
    attrs = dict(extra) if axis is None else {"axis": axis, **extra}
    if out_dtype is not None:
        attrs["output_dtype"] = out_dtype
    g.add_node(op, names, ["y"], attrs, name="n1")
    g.outputs = ["y"]
    infer_shapes(g)
    return g, {"x": x}


@np.errstate(all="ignore")
def _ties(rng, scale: np.float32, n: int) -> np.ndarray:
    """float32 x whose float32 quotient x / scale is exactly k + 0.5, and the float32
    neighbours of such x (quotients one ulp beside the tie)."""
    out = []
    for k in rng.integers(-300, 300, 4 * n):
        x = F32((k + 0.5) * float(scale))
        for cand in (x, np.nextafter(x, F32(np.inf)), np.nextafter(x, F32(-np.inf))):
            if F32(cand) / scale == F32(k + 0.5):
                    out += [cand, np.nextafter(cand, F32(np.inf)), np.nextafter(cand, F32(-np.inf))]
                    break
        if len(out) >= n:
            break
    return np.asarray(out[:n], F32)


SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-38, 3.4e38, -3.4e38,
                    1e10, -1e10, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 127.5, -128.5, 255.5, 126.5], F32)


@np.errstate(all="ignore")
def _values(rng, n: int, scale) -> np.ndarray:
    """n float32 values for one scale: ties, specials, values that saturate, ordinary ones."""
    s = F32(scale)
    pool = np.concatenate([
        _ties(rng, s, 24) if np.isfinite(s) and s != 0 else np.zeros(0, F32),
        SPECIAL, SPECIAL * s if np.isfinite(s) else SPECIAL,
        (rng.normal(0, 200, 32) * float(s)).astype(F32),  # many saturate
        (rng.normal(0, 30, 32) * float(s)).astype(F32)])
    return rng.choice(pool, n) if n else np.zeros(0, F32)


SCALES = [0.25, 0.0123, 1.0, 3.7e-3, 1e38, 3.0e-39, 1e-44, 7.5, 0.0, -0.05, 1.1e-20]


def _zp(dtype, v):
    return np.asarray(v, dtype=dtype)


def _quantize_cases():
    """(graph, feeds) of QuantizeLinear: per tensor at every length 0..70 (int8 and uint8,
    zero points at the extremes), every scale corner, and per axis."""
    rng = np.random.default_rng(9)
    cases = []
    for n in range(71):
        dtype = ("int8", "uint8")[n % 2]
        lo, hi = RANGE[dtype]
        zp = (lo, hi, 0, int(rng.integers(lo, hi + 1)))[n % 4]
        scale = SCALES[n % len(SCALES)]
        cases.append(_graph("QuantizeLinear", _values(rng, n, scale).reshape(1, n), F32(scale), _zp(dtype, zp)))
    for scale in SCALES:  # a long row per scale (vector body + tail), both dtypes, no zero point: uint8
        cases.append(_graph("QuantizeLinear", _values(rng, 203, scale), F32(scale), None))
        cases.append(_graph("QuantizeLinear", _values(rng, 157, scale), [F32(scale)], _zp("int8", [-128])))
    # per axis: NCHW axis 1 (rows of H*W), the last axis (rows of 1), axis 0, rank 2
    for shape, axis, dtype in [((2, 5, 7, 9), 1, "int8"), ((1, 4, 3, 11), -1, "uint8"), ((3, 2, 40), 0, "int8"),
                               ((6, 33), 1, "uint8"), ((2, 3, 8, 8), 1, "uint8")]:
        n = shape[axis]
        lo, hi = RANGE[dtype]
        scales = np.asarray([SCALES[(i * 3) % len(SCALES)] for i in range(n)], F32)
        zps = _zp(dtype, [(lo, hi, 0)[i % 3] if i < 3 else int(rng.integers(lo, hi + 1)) for i in range(n)])
        x = np.moveaxis(np.stack([_values(rng, int(np.prod(shape)) // n, s) for s in scales]), 0, axis)
        cases.append(_graph("QuantizeLinear", np.ascontiguousarray(x.reshape(shape)), scales, zps, axis=axis))
    # no zero point: the output dtype from output_dtype (ONNX 3 = int8), per tensor and per axis
    cases.append(_graph("QuantizeLinear", _values(rng, 45, 0.02).reshape(5, 9), F32(0.02), None, out_dtype=3))
    cases.append(_graph("QuantizeLinear", _values(rng, 45, 0.3).reshape(5, 9), np.full(9, 0.3, F32), None,
                        axis=1, out_dtype=3))
    # a large tensor: several parallel blocks, a tail block
    x = (rng.normal(0, 1, (1, 3, 61, 67)) * 2).astype(F32)
    cases.append(_graph("QuantizeLinear", x, F32(0.0157), _zp("uint8", 128)))
    cases.append(_graph("QuantizeLinear", x, F32([0.01, 0.02, 0.03]), _zp("int8", [-128, 0, 127]), axis=1))
    return cases


def _dequantize_cases():
    """(graph, feeds) of DequantizeLinear: every byte value at lengths around the vector
    widths, extreme zero points, scales that overflow / underflow, per tensor and per axis; int32
    data with wrapping differences."""
    rng = np.random.default_rng(19)
    cases = []
    dq_scales = [0.25, 0.0123, 3e38, 1e-44, 3.0e-39, -7.5, 0.0, 1.0]
    for n in list(range(0, 71, 3)) + [256, 300]:
        dtype = ("int8", "uint8")[n % 2]
        lo, hi = RANGE[dtype]
        x = np.resize(np.arange(lo, hi + 1), n).astype(dtype)
        rng.shuffle(x)
        zp = (lo, hi, 0, int(rng.integers(lo, hi + 1)))[(n // 3) % 4]
        cases.append(_graph("DequantizeLinear", x.reshape(1, n), F32(dq_scales[n % len(dq_scales)]), _zp(dtype, zp)))
    for shape, axis, dtype in [((2, 5, 7, 9), 1, "int8"), ((1, 4, 3, 11), -1, "uint8"), ((3, 2, 40), 0, "uint8")]:
        n = shape[axis]
        lo, hi = RANGE[dtype]
        x = rng.integers(lo, hi + 1, shape).astype(dtype)
        scales = np.asarray([dq_scales[i % len(dq_scales)] for i in range(n)], F32)
        zps = _zp(dtype, [(lo, hi, 0)[i % 3] for i in range(n)])
        cases.append(_graph("DequantizeLinear", x, scales, zps, axis=axis))
    x = rng.integers(-128, 128, (1, 3, 61, 67)).astype(np.int8)
    cases.append(_graph("DequantizeLinear", x, F32(0.0157), None))
    # int32 data: the difference wraps in int32, then rounds to float32 (2^24 + 1 and up)
    i32 = np.iinfo(np.int32)
    edge = np.array([i32.min, i32.max, 0, -1, 1, (1 << 24) + 1, (1 << 24) + 3, -(1 << 25) - 2, 123456789,
                     i32.max - 64, i32.min + 64], np.int64)
    for n, zp in [(1, 0), (7, i32.max), (19, i32.min), (37, -(1 << 24) - 1), (64, 77), (70, 1 << 30)]:
        x = np.concatenate([edge, rng.integers(i32.min, i32.max, n, endpoint=True)])[:n].astype(np.int32)
        cases.append(_graph("DequantizeLinear", x, F32(dq_scales[n % len(dq_scales)]), np.int32(zp)))
    x = rng.integers(i32.min, i32.max, (2, 3, 21), endpoint=True).astype(np.int32)
    cases.append(_graph("DequantizeLinear", x, F32([0.5, 1e-3, 3e30]), np.int32([i32.min, 0, i32.max]), axis=1))
    return cases


def test_quantize_linear_every_isa():
    for g, feeds in _quantize_cases():
        check_every_isa(g, feeds, expect=_native("quantize"))


def test_dequantize_linear_every_isa():
    for g, feeds in _dequantize_cases():
        check_every_isa(g, feeds, expect=_native("dequantize"))


def test_unsupported_layouts_run_the_reference():
    """int16 outputs and blocked parameters are not this kernel's: the reference runs them,
    with the reference's results (an int8 node beside them runs the optimized kernel)."""
    rng = np.random.default_rng(3)
    x = _values(rng, 24, 0.1).reshape(2, 12)
    blocked, _ = _graph("QuantizeLinear", x, np.full((2, 3), 0.1, F32), _zp("int8", np.full((2, 3), -5)), axis=1,
                        block_size=4)
    for g, kernel in [(_graph("QuantizeLinear", x, F32(0.1), _zp("int16", 7))[0], "quantize_linear_reference"),
                      (blocked, "quantize_linear_reference"),
                      (_graph("QuantizeLinear", x, F32(0.1), _zp("int8", 7))[0], "quantize_linear_q8_")]:
        feeds = {"x": x}
        want = ref_run(g, feeds)["y"]
        for isa in runtime.supported_isas():
            with runtime.Interpreter(to_bytes(g), isa=isa) as it:
                got = it.run(feeds)["y"]
                ran = [k for _, _, k in it.kernels()]
            assert got.dtype == want.dtype and np.array_equal(got, want), (isa, ran)
            assert ran[0].startswith(kernel if isa != "scalar" else "quantize_linear_reference"), (isa, ran)


def test_quantize_kernels_under_qemu(mobrt_run_aarch64, tmp_path):
    cases = [(g, f, QEXPECT) for g, f in _quantize_cases()] + [(g, f, DQEXPECT) for g, f in _dequantize_cases()]
    run_under_qemu(mobrt_run_aarch64, tmp_path, cases)


def _digits_float_io():
    import mobconv
    from mobconv import quantize

    zoo = os.path.join(ROOT, "model_zoo", "onnx")
    calib_dir = os.path.join(zoo, "digits_calib")
    files = sorted(f for f in os.listdir(calib_dir) if f.endswith(".npy"))[:4]
    calib = [{"input": np.load(os.path.join(calib_dir, f))} for f in files]
    images = np.load(os.path.join(zoo, "digits_heldout.npz"))["images"][:3].astype(F32)
    images[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, -0.0]  # the boundary's corners in a real model
    out = []
    for net in ("mobilenetv2", "resnet"):
        q = quantize.quantize(mobconv.convert(os.path.join(zoo, f"digits_{net}.onnx")), calib, scheme="int8",
                              progress=False)
        g = q.graph
        ops = [n.op for n in g.nodes]
        assert ops[0] == "QuantizeLinear" and "DequantizeLinear" in ops
        out.append((g, {g.inputs[0]: images}))
    return out


@pytest.fixture(scope="module")
def digits():
    return _digits_float_io()


def test_digits_models_float_io_every_isa(digits):
    """The quantizer's digits models with float32 I/O: outputs equal the numpy reference
    under every instruction set, their input QuantizeLinear and output DequantizeLinear
    running this file's kernels."""
    for g, feeds in digits:
        check_every_isa(g, feeds, expect=_native("quantize"))
        check_every_isa(g, feeds, expect=_native("dequantize"))


def test_digits_models_float_io_under_qemu(digits, mobrt_run_aarch64, tmp_path):
    cases = [(g, f, QEXPECT) for g, f in digits] + [(g, f, DQEXPECT) for g, f in digits]
    run_under_qemu(mobrt_run_aarch64, tmp_path, cases, threads=(1,))
