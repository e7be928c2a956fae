"""The ARM int8 GEMM (runtime/src/cpu/int8/q8_gemm_ukernel_neon*.cpp, q8_gemm_pack_neon.cpp,
q8_requant_neon.cpp under the driver q8_gemm.cpp) under qemu-aarch64 -cpu max, both instruction
sets chosen at run time:

  neon      armv8.0: q8_gemm_ukernel_8x12__neon / 8x4__neon, S16 operands, smlal by lane
  neon_dot  armv8.2: q8_gemm_ukernel_8x12c4__neon_dot / 8x4c4__neon_dot, S8 operands, sdot by lane

Every output must equal the numpy reference interpreter's bit for bit (tests/int8_harness.py), at
1 and 2 threads, and each case must have run the kernel it names: conv_q8_gemm_neon_dot for
symmetric int8 weights under neon_dot, conv_q8_gemm_neon where w - zw leaves int8 (uint8 weights)
or under neon, conv_q8_reference where the int32 bound cannot be proven.

- op cases (again on a cortex-a53 with the cap at neon_dot: the neon kernels): Conv 1x1 (direct
  rows) / kxk / strided / dilated / grouped / 1-D / 3-D, Gemm (transA, transB, bias per column /
  one / none), MatMul with constant B; sizes around the 8x12 tile, the
  8x4 narrow tile and KR = 4 (K = 1, 3, 5, 27, 50, ...); int8 and uint8 activations, per-channel
  and per-tensor weights, zero points at the dtype extremes, biases at the int32 bound (and one
  past it), multipliers above one and below 2^-31, both requantization rules;
- a requantization sweep through 1x1 convs: every shift in [-31, 31], rounding ties, left-shift
  saturation, both rules, int8 and uint8 outputs;
- the trained digits zoo models (model_zoo/onnx/digits_*.onnx quantized by mobconv.quantize);
- the micro-kernels, the B packers and the requant row alone against their scalar definitions
  (runtime/tests/int8_ukernel_tests/q8_neon_ukernel_test.cpp), the armv8.0 set also on a
  cortex-a53 (no dot product), and the disassembly: sdot in the neon_dot kernels, none in the neon.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from int8_harness import check_every_isa, run_under_qemu
from mobconv.ir import QuantParams as Q
from mobconv.ops import quant_math as qm
from cmake_build import flatbuffers_include
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture)
from test_runtime_int8 import RANGE, _qp, _rand, _single

ROOT = Path(__file__).resolve().parents[1]
INT32_MAX = (1 << 31) - 1
ISAS = ("neon", "neon_dot")
OP_NAME = {"Conv": "conv_q8_gemm", "Gemm": "gemm_q8", "MatMul": "matmul_q8"}
REFERENCE = {"Conv": "conv_q8_reference", "Gemm": "gemm_q8_reference", "MatMul": "matmul_q8_reference"}


def _float32(g):
    g.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32
    return g


def _weights(rng, shape, wdt, per_channel, axis=0):
    """Weights with their QuantParams; int8 weights are symmetric (zero point 0) and reach
    -128 and 127, uint8 weights have zero points (per channel: one each)."""
    n = shape[axis] if per_channel else 1
    w = _rand(rng, shape, wdt)
    flat = np.moveaxis(w, axis, 0)
    flat[0] = RANGE[wdt][1]  # a full-scale channel: the largest sums
    if flat.shape[0] > 1:
        flat[1] = RANGE[wdt][0]
    scales = (10 ** rng.uniform(-3, -1, n)).astype(np.float32).tolist()
    zps = [0] * n if wdt == "int8" else rng.integers(0, 256, n).tolist()
    return w, Q(scales, zps, axis if per_channel else None)


def _centered(w, wq, axis):
    """w - zw as int64, output channel first, flattened per channel."""
    zw = np.asarray(wq.zero_points, np.int64)
    a = np.moveaxis(w.astype(np.int64), axis, 0).reshape(w.shape[axis], -1)
    return a - (zw[:, None] if len(zw) > 1 else zw[0])


def _bias(rng, a, mode):
    """mode: 'small'; 'limit' (channels 0 and 1 at +-(2^31 - 1 - sum|w - zw| * 255), the
    largest bias the int32 proof accepts); 'over' (channel 0 one past it)."""
    m = a.shape[0]
    b = rng.integers(-3000, 3000, m).astype(np.int64)
    bound = np.abs(a).sum(axis=1) * 255
    if mode in ("limit", "over"):
        b[0] = INT32_MAX - bound[0] + (mode == "over")
        if m > 1:
            b[1] = -(INT32_MAX - bound[1])
    return b.astype(np.int32)


def _expect(op, a, bias, bias_mode):
    """The kernel each instruction set must take: the sdot kernels need w - zw in int8."""
    if bias_mode == "over":
        return {isa: REFERENCE[op] for isa in ISAS}
    fits_s8 = a.min() >= -128 and a.max() <= 127
    return {"neon": f"{OP_NAME[op]}_neon", "neon_dot": f"{OP_NAME[op]}_neon" + ("_dot" if fits_s8 else "")}


def _out_q(rng, dtype, acc_scale, extreme):
    lo, hi = RANGE[dtype]
    zp = int(rng.choice([lo, hi])) if extreme else int(rng.integers(lo, hi + 1) if dtype == "uint8" else
                                                       rng.integers(-20, 21))
    return Q([float(np.float32(acc_scale))], [zp])


def conv_case(seed, xs, ws, attrs=None, *, xdt="int8", wdt="int8", per_channel=True, extreme=False,
              bias="small", act="", params=(), float32=False, y_div=8.0):
    rng = np.random.default_rng(seed)
    x = _rand(rng, xs, xdt)
    w, wq = _weights(rng, ws, wdt, per_channel)
    xq = _qp(rng, xdt, extreme)
    a = _centered(w, wq, 0)
    b = _bias(rng, a, bias)
    acc_scale = float(xq.scales[0]) * max(wq.scales) * np.sqrt(a.shape[1]) * 40 / y_div
    if bias in ("limit", "over"):
        acc_scale = float(xq.scales[0]) * max(wq.scales) * 2.0**31 / 100  # the limit requantizes to ~100
    g, feeds = _single("Conv", [("x", x, xq, False), ("w", w, wq, True), ("b", b, None, True)],
                       dict(attrs or {}, activation=act, activation_params=list(params)),
                       _out_q(rng, xdt, acc_scale, extreme), out_dtype=xdt)
    return (_float32(g) if float32 else g), feeds, _expect("Conv", a, b, bias)


def gemm_case(seed, m, k, n, *, trans_a=0, trans_b=0, bias="col", xdt="int8", wdt="int8", per_channel=True,
              extreme=False, float32=False, act="", params=()):
    rng = np.random.default_rng(seed)
    x = _rand(rng, (k, m) if trans_a else (m, k), xdt)
    axis = 0 if trans_b else 1
    w, wq = _weights(rng, (n, k) if trans_b else (k, n), wdt, per_channel, axis)
    xq = _qp(rng, xdt, extreme)
    a = _centered(w, wq, axis)
    inputs = [("a", x, xq, False), ("b", w, wq, True)]
    bvec = np.zeros(n, np.int32)
    if bias == "one":
        bvec = np.full(n, rng.integers(-5000, 5000), np.int32)
        inputs.append(("c", bvec[:1].copy(), None, True))
    elif bias:
        bvec = _bias(rng, a, "small" if bias == "col" else bias)
        inputs.append(("c", bvec, None, True))
    acc_scale = float(xq.scales[0]) * max(wq.scales) * np.sqrt(k) * 40 / 8
    g, feeds = _single("Gemm", inputs, {"transA": trans_a, "transB": trans_b, "activation": act,
                                        "activation_params": list(params)},
                       _out_q(rng, xdt, acc_scale, extreme), out_dtype=xdt)
    return (_float32(g) if float32 else g), feeds, _expect("Gemm", a, bvec, bias)


def matmul_case(seed, a_shape, n, *, xdt="int8", wdt="int8", per_channel=True, extreme=False, float32=False):
    rng = np.random.default_rng(seed)
    k = a_shape[-1]
    x = _rand(rng, a_shape, xdt)
    w, wq = _weights(rng, (k, n), wdt, per_channel, 1)
    xq = _qp(rng, xdt, extreme)
    a = _centered(w, wq, 1)
    acc_scale = float(xq.scales[0]) * max(wq.scales) * np.sqrt(k) * 40 / 8
    g, feeds = _single("MatMul", [("a", x, xq, False), ("b", w, wq, True)], {},
                       _out_q(rng, xdt, acc_scale, extreme), out_dtype=xdt)
    return (_float32(g) if float32 else g), feeds, _expect("MatMul", a, np.zeros(n), "small")


# (x shape, W shape, attrs): around MR = 8, NR = 12 (narrow 4), KR = 4
CONV_SHAPES = [
    ((1, 5, 3, 4), (8, 5, 1, 1), {}),                       # 1x1 direct, one exact tile, K = 5
    ((2, 16, 5, 5), (9, 16, 1, 1), {}),                     # N = 25: 2 tiles + 1 column (narrow), M = 9
    ((1, 4, 1, 13), (17, 4, 1, 1), {}),                     # K = 4, M = 17, N = 13
    ((1, 7, 4, 4), (7, 7, 1, 1), {}),                       # N = 16 = 12 + a full narrow tile
    ((1, 33, 1, 1), (24, 33, 1, 1), {}),                    # N = 1
    ((1, 1, 2, 3), (3, 1, 1, 1), {}),                       # K = 1
    ((1, 3, 7, 6), (5, 3, 3, 3), {"pads": [1, 1, 1, 1]}),   # K = 27
    ((1, 6, 11, 9), (16, 6, 3, 3), {"strides": [2, 2], "pads": [1, 0, 0, 1]}),
    ((1, 4, 9, 10), (10, 4, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((2, 8, 6, 7), (12, 4, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),  # 6 rows per group
    ((1, 8, 5, 5), (8, 2, 1, 1), {"group": 4}),             # grouped 1x1, 2 rows per group
    ((1, 8, 7, 7), (9, 8, 1, 1), {"strides": [2, 2]}),      # strided 1x1: im2col
    ((1, 2, 8, 8), (3, 2, 5, 5), {"pads": [2, 2, 2, 2]}),   # K = 50
    ((1, 32, 10, 10), (40, 32, 3, 3), {"pads": [1, 1, 1, 1]}),  # K = 288, N = 100, M = 40
    ((2, 3, 10), (4, 3, 4), {"strides": [3], "pads": [2, 1]}),  # 1-D
    ((1, 2, 4, 5, 3), (3, 2, 2, 3, 1), {"pads": [1, 0, 0, 0, 1, 0]}),  # 3-D
]


def _op_cases() -> list:
    cases = []
    for i, (xs, ws, attrs) in enumerate(CONV_SHAPES):
        cases.append(conv_case(300 + i, xs, ws, attrs))
        cases.append(conv_case(400 + i, xs, ws, attrs, xdt="uint8", per_channel=False, extreme=True, float32=True,
                               act="Relu"))
        cases.append(conv_case(500 + i, xs, ws, attrs, xdt="int8", wdt="uint8", extreme=True,
                               float32=i % 2 == 1, act="Clip", params=(-0.5, 0.4)))
    # uint8 weights with zero point 128 (per tensor): w - zw fits int8, the sdot kernel takes them
    g, feeds, _ = conv_case(600, (1, 6, 5, 6), (10, 6, 3, 3), {"pads": [0, 1, 1, 0]}, xdt="uint8", wdt="uint8",
                            per_channel=False)
    g.values["w"].quant = Q(g.values["w"].quant.scales, [128])
    cases.append((g, feeds, {"neon": "conv_q8_gemm_neon", "neon_dot": "conv_q8_gemm_neon_dot"}))
    # biases at the int32 bound (the compensation term of uint8 activations under sdot wraps
    # in init and back), and one past it (the reference kernel)
    for j, (xdt, f32) in enumerate([("int8", False), ("uint8", False), ("int8", True), ("uint8", True)]):
        cases.append(conv_case(610 + j, (1, 7, 5, 5), (10, 7, 3, 3), {"pads": [1, 1, 1, 1]}, xdt=xdt,
                               extreme=True, bias="limit", float32=f32))
    cases.append(conv_case(620, (1, 7, 5, 5), (10, 7, 3, 3), {"pads": [1, 1, 1, 1]}, bias="over"))
    # multipliers above one (left shift, saturating) and tiny ones (flushed to 0)
    for j, y_div in enumerate((1e6, 1e-6, 1e-12)):
        cases.append(conv_case(630 + j, (1, 9, 4, 4), (11, 9, 3, 3), {"pads": [1, 1, 1, 1]}, y_div=y_div))
        cases.append(conv_case(640 + j, (1, 9, 4, 4), (11, 9, 3, 3), {"pads": [1, 1, 1, 1]}, y_div=y_div,
                               xdt="uint8", float32=True))
    # Gemm: rows of A (N of the GEMM) 1, 3, 4, 5, 13; output columns (M) 1, 8, 9, 20, 24
    for j, (m, k, n, ta, tb, bias) in enumerate([(1, 17, 9, 0, 1, "col"), (3, 64, 8, 1, 0, None),
                                                  (4, 4, 24, 0, 0, "one"), (5, 3, 1, 1, 1, "col"),
                                                  (13, 33, 20, 0, 1, "limit"), (2, 300, 16, 0, 0, "col")]):
        cases.append(gemm_case(700 + j, m, k, n, trans_a=ta, trans_b=tb, bias=bias))
        cases.append(gemm_case(720 + j, m, k, n, trans_a=ta, trans_b=tb, bias=bias, xdt="uint8", per_channel=False,
                               extreme=True, float32=True, act="Relu"))
        cases.append(gemm_case(740 + j, m, k, n, trans_a=ta, trans_b=tb, bias=bias, wdt="uint8",
                               float32=j % 2 == 0, act="Clip", params=(-1.0, 2.0)))
    for j, (shape, n) in enumerate([((2, 5, 17), 10), ((7,), 12), ((3, 1, 4, 9), 13)]):
        cases.append(matmul_case(760 + j, shape, n))
        cases.append(matmul_case(770 + j, shape, n, xdt="uint8", per_channel=False, extreme=True, float32=True))
        cases.append(matmul_case(780 + j, shape, n, wdt="uint8"))
    return cases


def _ran(root: Path, k: int, isa: str, threads: int) -> list:
    out = root / f"{k:04d}" / (f"outputs_{isa}" + (f"_t{threads}" if threads > 1 else ""))
    return [ln.split()[2] for ln in (out / "status").read_text().splitlines() if ln.startswith("kernel ")]


def _run_exact(exe, root, cases, threads=(1, 2)):
    """run_under_qemu, then: the (single) node ran exactly the kernel the case names."""
    run_under_qemu(exe, root, [(g, f) for g, f, _ in cases], threads=threads)
    for k, (g, feeds, expect) in enumerate(cases):
        for isa in ISAS:
            for t in threads:
                ran = _ran(root, k, isa, t)
                assert ran == [expect[isa]], (f"case {k} ({g.nodes[0].op}, inputs "
                                              f"{[np.shape(v) for v in feeds.values()]}) isa={isa} threads={t}: "
                                              f"ran {ran}, expected {expect[isa]}")


def test_conv_gemm_matmul_cases(mobrt_run_aarch64, tmp_path):
    """Every op case under neon and neon_dot (qemu -cpu max, 1 and 2 threads) equals the reference
    and ran the kernel it names; then under a CPU without the dot product (-cpu cortex-a53) with
    the cap still at neon_dot: the run-time choice takes the neon kernels, same outputs."""
    cases = _op_cases()
    assert len(cases) > 80
    kinds = {e["neon_dot"] for _, _, e in cases}
    assert {"conv_q8_gemm_neon_dot", "conv_q8_gemm_neon", "conv_q8_reference", "gemm_q8_neon_dot",
            "gemm_q8_neon", "matmul_q8_neon_dot", "matmul_q8_neon"} <= kinds, kinds
    _run_exact(mobrt_run_aarch64, tmp_path, cases)
    proc = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a53", "-L", "/usr/aarch64-linux-gnu", str(mobrt_run_aarch64),
                           "--batch", str(tmp_path), "--isa", "neon_dot", "--threads", "1"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"cortex-a53: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    for k, (g, _, expect) in enumerate(cases):
        ran = _ran(tmp_path, k, "neon_dot", 1)  # (overwritten by the cortex-a53 run)
        assert ran == [expect["neon"]], f"case {k} on cortex-a53, cap neon_dot: ran {ran}, expected {expect['neon']}"
        for j in range(len(g.outputs)):
            got = np.load(tmp_path / f"{k:04d}" / "outputs_neon_dot" / f"{j}.npy")
            want = np.load(tmp_path / f"{k:04d}" / "outputs_neon" / f"{j}.npy")  # equal to the reference
            assert got.dtype == want.dtype and np.array_equal(got, want), f"case {k} on cortex-a53: output {j}"


def test_inverted_fused_clip_gives_its_max_on_every_isa(mobrt_run_aarch64, tmp_path):
    """A fused Clip whose min is above its max quantizes to lo > hi: numpy's clip (the oracle)
    and the float32 rule give hi for every output; the fixed-point clamp of the C++ reference
    (quant::clamp, also the scalar requant row) gave lo to the values below lo. Natively under
    every ISA cap, and under qemu with neon and neon_dot."""
    cases = []
    for f32 in (False, True):
        cases.append(conv_case(650 + f32, (1, 4, 5, 5), (8, 4, 3, 3), {"pads": [1, 1, 1, 1]}, act="Clip",
                               params=(0.5, -0.5), float32=f32))
        cases.append(gemm_case(660 + f32, 5, 20, 9, trans_b=1, act="Clip", params=(0.3, -0.2), float32=f32))
    for g, feeds, _ in cases:
        want = check_every_isa(g, feeds)
        assert len(np.unique(want["y0"])) == 1, np.unique(want["y0"])  # all hi
    _run_exact(mobrt_run_aarch64, tmp_path, cases)


def _sweep_case(xdt, float32, zp, seed):
    """A 1x1 conv whose accumulators are bias[c] + x (weight 1, s_x = s_y = 1, zx = 0 or 128),
    x over the whole dtype range (259 columns: 16-wide vector body and a scalar tail); channel c
    has multiplier s_w[c] = f * 2^e for every e in [-32, 30] (shifts -31..31; 2^-32 flushes) and
    f = 1 (q = 2^30) or a random mantissa; the biases put k + 1/2 (ties of the final right
    shift) at x = 0 and reach the saturating left shift near 2^31."""
    rng = np.random.default_rng(seed)
    lo, hi = RANGE[xdt]
    x = np.concatenate([np.arange(lo, hi + 1), rng.integers(lo, hi + 1, 3)]).astype(xdt).reshape(1, 1, 1, -1)
    scales, bias = [], []
    for e in range(-32, 31):
        for f in (1.0, float(rng.uniform(0.5, 1.0))):
            scales.append(float(np.float32(f * 2.0**e)))
            if e < 0:  # acc * 2^e lands in the output range; (m + 1/2) * 2^-e: a tie at x = 0
                step = 2**-e
                b = int(rng.integers(-100, 101)) * step + step // 2
            else:
                b = int(rng.integers(-300, 301)) if rng.random() < 0.7 else int(rng.choice([-1, 1])) * (INT32_MAX - 300)
            bias.append(int(np.clip(b, -(INT32_MAX - 300), INT32_MAX - 300)))
    m = len(scales)
    w = np.ones((m, 1, 1, 1), np.int8)
    xq = Q([1.0], [0 if xdt == "int8" else 128])
    g, feeds = _single("Conv", [("x", x, xq, False), ("w", w, Q(scales, [0] * m, 0), True),
                                ("b", np.array(bias, np.int32), None, True)], {}, Q([1.0], [zp]), out_dtype=xdt)
    return (_float32(g) if float32 else g), feeds, {"neon": "conv_q8_gemm_neon", "neon_dot": "conv_q8_gemm_neon_dot"}


def test_requant_sweep_through_1x1_conv(mobrt_run_aarch64, tmp_path):
    cases = []
    for i, (xdt, zps) in enumerate([("int8", (0, -128, 127, 9)), ("uint8", (0, 255, 128, 77))]):
        for j, zp in enumerate(zps):
            cases.append(_sweep_case(xdt, j % 2 == 1, zp, 900 + 10 * i + j))
    _run_exact(mobrt_run_aarch64, tmp_path, cases, threads=(1,))


def _zoo_cases():
    from mobconv import quantize as mq
    zoo = ROOT / "model_zoo" / "onnx"
    images = np.load(zoo / "digits_heldout.npz")["images"][:3].astype(np.float32)
    cases = []
    for net in ("mobilenetv2", "resnet"):
        model = mq.quantize(str(zoo / f"digits_{net}.onnx"), str(zoo / "digits_calib"), num_samples=16,
                            progress=False, io_dtype="int8")
        g = model.graph
        name = g.inputs[0]
        iq = g.values[name].quant
        x = np.clip(np.rint(images.reshape(-1, *g.values[name].shape[1:]) / iq.scales[0]) + iq.zero_points[0],
                    *RANGE[g.values[name].dtype]).astype(g.values[name].dtype)
        cases.append((g, {name: x}))
        cases.append((_float32(g.copy()), {name: x}))  # the same integers under the float32 rule
    return cases


def test_digits_zoo_models_int8(mobrt_run_aarch64, tmp_path):
    """The trained digits MobileNetV2 and ResNet, quantized by mobconv.quantize (int8 I/O), on
    three held-out images: every output equals the numpy reference under neon and neon_dot
    (1 and 2 threads), their Convs running the GEMM kernels of each set."""
    cases = _zoo_cases()
    run_under_qemu(mobrt_run_aarch64, tmp_path, cases,
                   expect={"neon": "conv_q8_gemm_neon", "neon_dot": "conv_q8_gemm_neon_dot"})
    for k in range(len(cases)):
        assert "conv_q8_gemm_neon_dot" not in _ran(tmp_path, k, "neon", 1)


def _cross(args, cwd):
    proc = subprocess.run(["aarch64-linux-gnu-g++", "-std=c++17", "-O2", "-Wall", "-Werror",
                           f"-I{ROOT / 'runtime' / 'src'}", f"-I{flatbuffers_include()}", *args],
                          capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_ukernels_and_requant_row_alone(tmp_path):
    """q8_neon_ukernel_test (every mr x nr corner, kgroups 0..9 and 33, wrapping init; the B
    packers' layout; the requant row on every shift and tie, both rules) under qemu -cpu max; the armv8.0 set again
    on a cortex-a53, which has no dot product; and the disassembly: the neon_dot kernels issue
    sdot (24 per k-group in the 8x12 loop), the armv8.0 ones only smlal/smlal2."""
    assert shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64"), \
        "needs g++-aarch64-linux-gnu and qemu-user (scripts/install-system-deps.sh)"
    src = ROOT / "runtime" / "src" / "cpu" / "int8"
    _cross(["-march=armv8.2-a+dotprod", "-c", str(src / "q8_gemm_ukernel_neon_dot.cpp"), "-o", "dot.o"], tmp_path)
    _cross(["-c", str(src / "q8_gemm_ukernel_neon.cpp"), "-o", "neon.o"], tmp_path)
    _cross(["-c", str(src / "q8_requant_neon.cpp"), "-o", "requant.o"], tmp_path)
    _cross(["-c", str(src / "q8_gemm_pack_neon.cpp"), "-o", "pack.o"], tmp_path)
    _cross(["-static", str(ROOT / "runtime" / "tests" / "int8_ukernel_tests" / "q8_neon_ukernel_test.cpp"),
            "neon.o", "dot.o", "requant.o", "pack.o", "-o", "t"], tmp_path)
    for cpu, sets in (("max", ["neon", "neon_dot"]), ("cortex-a53", ["neon"])):
        proc = subprocess.run(["qemu-aarch64", "-cpu", cpu, str(tmp_path / "t"), *sets], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, f"-cpu {cpu}: {proc.stdout[-3000:]}{proc.stderr[-1000:]}"
        assert proc.stdout.count("ok ") == (7 if cpu == "max" else 4), proc.stdout
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    assert objdump, "aarch64-linux-gnu-objdump not found (binutils-aarch64-linux-gnu)"

    def mnemonics(obj):
        text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(tmp_path / obj)], capture_output=True,
                              text=True, check=True).stdout
        return [ln.split("\t")[1].split()[0] for ln in text.splitlines() if ln.count("\t") >= 1 and ":" in ln
                and len(ln.split("\t")) > 1 and ln.split("\t")[1].strip()]

    dot, neon = mnemonics("dot.o"), mnemonics("neon.o")
    assert dot.count("sdot") == 24 + 8, dot.count("sdot")  # 8x12 and 8x4 loops
    assert "sdot" not in neon and neon.count("smlal") + neon.count("smlal2") == 24 + 8
