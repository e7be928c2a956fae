"""The optimized int8/uint8 element-wise, pooling and concat kernels (runtime/src/cpu/int8/
q8_elementwise*, q8_pool*, q8_concat*: add_q8_<isa>, mul_q8_, relu_q8_, clip_q8_, concat_q8_,
maxpool_q8_, avgpool_q8_, gavgpool_q8_, gmaxpool_q8_) against the numpy reference interpreter,
bit for bit, under every instruction-set cap of this machine at 1 and 2 threads
(tests/int8_harness.py) and under qemu-aarch64 (neon, neon_dot). Every case also asserts which
kernel ran, so a case cannot pass by falling back to the reference kernel.

Hostile corners: lengths 0..70 around the vector widths (8/32 on AVX2, 16/64 masked on AVX-512,
16 on NEON), zero points at the dtype's extremes, requantization multipliers above 1 (the
saturating left shift) and below 2^-31 (flushed to 0), exact rounding ties, every (a, b) pair of
the dtype, the broadcast kinds (scalar either side, per channel [1, C, 1, 1], trailing rows, a
block of middle dims), general broadcasts that must stay with the reference (declared, and
brought by a resize), pools with padding/stride/dilation/ceil_mode/count_include_pad, both
requantization rules of AveragePool and GlobalAveragePool, Concat of differing scales on axis 1 and other axes,
Clip bounds (one, both, none, crossed), GlobalMaxPool, and NEON's rescale by table lookup (rows of
2048 elements and more: Relu, Concat).
"""
import numpy as np
import pytest

from int8_harness import check_every_isa, run_under_qemu
from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.ops import quant_math as qm
from mobconv.reference.interpreter import run as ref_run
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture)
from test_runtime_int8 import Q, _rand, _single

LENGTHS = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 47, 48, 63, 64, 65, 70]
X86_OPT = ("avx2", "avx_vnni", "avx512", "avx512_vnni")
LO = {"int8": -128, "uint8": 0}
HI = {"int8": 127, "uint8": 255}


def _x86_set(isa):
    """The kernel set these ops run under an x86 cap: avx2 (also under avx_vnni) or avx512."""
    return "avx512" if isa.startswith("avx512") else "avx2"


def _x86(kernel):
    """expect: kernel_q8_avx2 or kernel_q8_avx512 under every x86 cap above scalar, or a
    reference kernel ("reference")."""
    return {isa: "reference" if kernel == "reference" else f"{kernel}_q8_{_x86_set(isa)}" for isa in X86_OPT}


def _arm(kernel):
    name = "reference" if kernel == "reference" else f"{kernel}_q8_neon"
    return {"neon": name, "neon_dot": name}


def _zp(rng, dtype, extreme):
    return int(rng.choice([LO[dtype], HI[dtype]])) if extreme else int(rng.integers(LO[dtype], HI[dtype] + 1))


def _q(rng, dtype, scale, extreme):
    return Q([float(np.float32(scale))], [_zp(rng, dtype, extreme)])


def _float32(g):
    g.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32
    return g


# (sa, sb, sy): Add's output multiplier 2 max(sa, sb) / (2^20 sy) above 1 (saturating left
# shift), near 1, tiny; an input multiplier below 2^-31 (flushed to 0); ties (powers of two).
ADD_SCALES = [(0.05, 0.3, 0.1), (1.0, 0.5, 1e-7), (0.02, 0.02, 50.0), (1e-10, 0.7, 0.01), (0.5, 0.25, 0.75)]
# Mul's multiplier sa sb / sy: above 1, tiny, ties
MUL_SCALES = [(0.5, 0.5, 0.01), (0.001, 0.002, 10.0), (0.25, 0.5, 2.0), (0.05, 0.3, 0.1)]


# ---- case builders: (graph, feeds, kernel base name) -------------------------------------------


def binary_cases():
    cases = []
    rng = np.random.default_rng(900)
    for op, scales in (("Add", ADD_SCALES), ("Mul", MUL_SCALES)):
        for dtype in ("int8", "uint8"):
            for k, n in enumerate(LENGTHS):  # same shape, every length around the vector widths
                sa, sb, sy = scales[k % len(scales)]
                ext = k % 2 == 0
                a, b = _rand(rng, (n,), dtype), _rand(rng, (n,), dtype)
                g, f = _single(op, [("a", a, _q(rng, dtype, sa, ext), False), ("b", b, _q(rng, dtype, sb, ext), False)],
                               {}, _q(rng, dtype, sy, ext))
                cases.append((g, f, op.lower()))
            # every (a, b) pair of the dtype, same shape, under each scale triple
            v = np.arange(LO[dtype], HI[dtype] + 1).astype(dtype)
            a, b = np.repeat(v, 256), np.tile(v, 256)
            for sa, sb, sy in scales:
                for ext in (False, True):
                    g, f = _single(op, [("a", a, _q(rng, dtype, sa, ext), False),
                                        ("b", b, _q(rng, dtype, sb, ext), False)], {}, _q(rng, dtype, sy, ext))
                    cases.append((g, f, op.lower()))
    # broadcast kinds the kernels take: (a shape, b shape)
    shapes = [((2, 3, 5, 7), ()), ((), (2, 3, 5, 7)), ((2, 5, 3, 11), (1, 5, 1, 1)), ((1, 5, 1, 1), (2, 5, 3, 11)),
              ((2, 4, 6, 9), (4, 1, 1)), ((3, 4, 35), (35,)), ((37,), (2, 3, 37)), ((2, 4, 3, 33), (1, 4, 3, 1)),
              ((1, 64, 7, 7), (1, 64, 1, 1)), ((2, 3, 1), (1, 1, 1))]
    for k, (sa_shape, sb_shape) in enumerate(shapes):
        for op, scales in (("Add", ADD_SCALES), ("Mul", MUL_SCALES)):
            dtype = ("int8", "uint8")[k % 2]
            sa, sb, sy = scales[k % len(scales)]
            a, b = _rand(rng, sa_shape, dtype), _rand(rng, sb_shape, dtype)
            g, f = _single(op, [("a", a, _q(rng, dtype, sa, k % 3 == 0), False),
                                ("b", b, _q(rng, dtype, sb, k % 3 == 1), False)], {}, _q(rng, dtype, sy, False))
            cases.append((g, f, op.lower()))
    # general broadcasts: refused by supports(), the reference runs them
    for sa_shape, sb_shape in (((4, 1), (1, 6)), ((2, 1, 3, 4), (1, 5, 1, 1)), ((3, 1, 5), (4, 1))):
        a, b = _rand(rng, sa_shape), _rand(rng, sb_shape)
        g, f = _single("Add", [("a", a, Q([0.1], [3]), False), ("b", b, Q([0.2], [-7]), False)], {}, Q([0.15], [1]))
        cases.append((g, f, "reference"))
    return cases


def relu_cases():
    cases = []
    rng = np.random.default_rng(901)
    for dtype in ("int8", "uint8"):
        # (x scale, y scale): copy (same parameters), rescale up/down, multiplier above 1, tiny
        for k, n in enumerate(LENGTHS):
            sx, sy = [(0.1, 0.1), (0.1, 0.03), (1.0, 1e-7), (0.01, 0.5), (0.02, 2000.0)][k % 5]
            x = _rand(rng, (n,), dtype)
            xq = _q(rng, dtype, sx, k % 2 == 0)
            yq = xq if sx == sy else _q(rng, dtype, sy, k % 3 == 0)
            g, f = _single("Relu", [("x", x, xq, False)], {}, yq)
            cases.append((g, f, "relu"))
        # large enough for NEON's table lookup (2048 elements and more): every byte value
        for sx, sy in [(0.1, 0.03), (1.0, 1e-7), (0.01, 0.5), (0.02, 2000.0)]:
            x = np.concatenate([np.arange(LO[dtype], HI[dtype] + 1), _rand(rng, (4099 - 256,), dtype)]).astype(dtype)
            g, f = _single("Relu", [("x", x.reshape(1, 4099), _q(rng, dtype, sx, sy < 1e-3), False)], {},
                           _q(rng, dtype, sy, sx > 0.5))
            cases.append((g, f, "relu"))
    return cases


def clip_cases():
    cases = []
    rng = np.random.default_rng(907)
    for dtype in ("int8", "uint8"):
        xq = _q(rng, dtype, 0.1, False)
        for k, n in enumerate(LENGTHS):
            x = _rand(rng, (2, n), dtype)
            lo, hi = sorted(int(v) for v in rng.integers(LO[dtype], HI[dtype] + 1, 2))
            bounds = [(lo, hi), (lo, None), (None, hi), (None, None), (hi, lo)][k % 5]  # (hi, lo): all hi
            inputs = [("x", x, xq, False)]
            for nm, v in zip(("lo", "hi"), bounds):
                inputs.append((nm, np.array(v, dtype), xq, True) if v is not None else ("", None, None, False))
            while inputs[-1][0] == "":
                inputs.pop()
            g, f = _single("Clip", inputs, {}, xq)
            cases.append((g, f, "clip"))
        x = _rand(rng, (3, 50), dtype)  # without quantization parameters: the same integers
        g, f = _single("Clip", [("x", x, None, False), ("lo", np.array(LO[dtype] + 20, dtype), None, True),
                                ("hi", np.array(HI[dtype] - 9, dtype), None, True)], {}, None)
        cases.append((g, f, "clip"))
    return cases


def concat_cases():
    cases = []
    rng = np.random.default_rng(902)
    for dtype in ("int8", "uint8"):
        lo, hi = LO[dtype], HI[dtype]
        yq = Q([0.1], [lo + 3])
        # axis 1: a copied input, differing scales and zero points (extremes), empty and odd sizes
        parts = [_rand(rng, (2, c, 5, 7), dtype) for c in (2, 1, 3, 0, 5)]
        qps = [yq, Q([0.3], [lo]), Q([0.1 / 3], [hi]), Q([0.5], [lo + 1]), Q([1e-4], [hi])]
        g, f = _single("Concat", [(f"x{i}", p, q, False) for i, (p, q) in enumerate(zip(parts, qps))],
                       {"axis": 1}, yq)
        cases.append((g, f, "concat"))
        # other axes: 0, the last (rows of a few elements), a middle one; multiplier above 1
        for axis, shapes in ((0, [(3, 4, 9), (1, 4, 9)]), (-1, [(3, 4, 1), (3, 4, 33)]),
                             (2, [(2, 3, 17, 2), (2, 3, 40, 2)])):
            xs = [_rand(rng, s, dtype) for s in shapes]
            qs = [Q([2000.0], [_zp(rng, dtype, True)]), Q([0.07], [_zp(rng, dtype, False)])]
            g, f = _single("Concat", [(f"x{i}", x, q, False) for i, (x, q) in enumerate(zip(xs, qs))],
                           {"axis": axis}, Q([0.0009], [_zp(rng, dtype, False)]))
            cases.append((g, f, "concat"))
        # one long row per input (blocks of the parallel split)
        xs = [_rand(rng, (1, 20000), dtype), _rand(rng, (1, 17001), dtype)]
        g, f = _single("Concat", [("x0", xs[0], Q([0.2], [lo + 9]), False), ("x1", xs[1], Q([0.05], [hi]), False)],
                       {"axis": 1}, Q([0.1], [lo + 50]))
        cases.append((g, f, "concat"))
    return cases


POOL_ATTRS = [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),  # ResNet's stem
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),  # stride 1: the vector column pass
    ("MaxPool", dict(kernel_shape=[3, 2], strides=[2, 3], pads=[2, 0, 1, 1], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 2, 0, 1])),
    ("MaxPool", dict(kernel_shape=[5], strides=[2], pads=[2, 2])),  # 1-D
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[1, 1], auto_pad="SAME_UPPER")),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 2], strides=[2, 3], pads=[1, 0, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1, pads=[0, 1, 0, 0])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, count_include_pad=1, pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[2, 2], dilations=[2, 1], pads=[1, 1, 0, 0], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[7, 7])),  # ResNet's head: the whole 7x7 plane
    ("AveragePool", dict(kernel_shape=[4], strides=[3], pads=[3, 1])),  # 1-D
]


def pool_cases():
    cases = []
    rng = np.random.default_rng(903)
    for k, (op, attrs) in enumerate(POOL_ATTRS):
        kernel = "maxpool" if op == "MaxPool" else "avgpool"
        for dtype in ("int8", "uint8"):
            for j, w in enumerate((7, 33, 70)):  # rows around the vector widths
                shape = (2, 3, w + 5) if len(attrs["kernel_shape"]) == 1 else (2, 3, (9, 8, 7)[j], w)
                x = _rand(rng, shape, dtype)
                xq = _q(rng, dtype, 10 ** rng.uniform(-3, 0), (j + k) % 2 == 0)
                g, f = _single(op, [("x", x, xq, False)], attrs, xq)
                cases.append((g, f, kernel))
                if op == "AveragePool":  # the float32 rule, same and other output parameters
                    yq = xq if j == 0 else _q(rng, dtype, 10 ** rng.uniform(-3, 0), j == 2)
                    g, f = _single(op, [("x", x, xq, False)], attrs, yq)
                    cases.append((_float32(g), f, kernel))
    # horizontal stride 2 on wide rows (the even/odd split: 64-byte steps and their tails), even and
    # odd taps, dilated taps
    for attrs in (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                  dict(kernel_shape=[2, 4], strides=[1, 2], pads=[0, 1, 1, 2]),
                  dict(kernel_shape=[1, 3], strides=[1, 2], dilations=[1, 2], ceil_mode=1)):
        for w in (129, 230):
            for dtype in ("int8", "uint8"):
                x = _rand(rng, (1, 2, 4, w), dtype)
                xq = _q(rng, dtype, 0.1, w % 2 == 0)
                g, f = _single("MaxPool", [("x", x, xq, False)], attrs, xq)
                cases.append((g, f, "maxpool"))
    # a stride-1 MaxPool on a wide row, an unquantized int8 MaxPool (max is exact either way)
    x = _rand(rng, (1, 2, 3, 131))
    g, f = _single("MaxPool", [("x", x, Q([0.1], [-128]), False)], {"kernel_shape": [2, 4], "pads": [0, 3, 0, 0]},
                   Q([0.1], [-128]))
    cases.append((g, f, "maxpool"))
    g, f = _single("MaxPool", [("x", x, None, False)], {"kernel_shape": [3, 3], "strides": [2, 2]}, None)
    cases.append((g, f, "maxpool"))
    # AveragePool ties: windows of 2 with x - zp = [1, 2] -> 2, [-1, -2] -> -2 (away from zero)
    x = np.tile(np.array([1, 2, -1, -2, 0, 1, 0, -1], np.int8), 9).reshape(1, 1, 72)
    g, f = _single("AveragePool", [("x", x, Q([0.5], [0]), False)], {"kernel_shape": [2], "strides": [2]},
                   Q([0.5], [0]))
    cases.append((g, f, "avgpool"))
    # the float32 rule on a wide row with stride 2 and padding (the even/odd split), ties to even
    x = _rand(rng, (1, 2, 5, 261))
    g, f = _single("AveragePool", [("x", x, Q([0.5], [-128]), False)],
                   {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, Q([0.25], [3]))
    cases.append((_float32(g), f, "avgpool"))
    # the float32 rule at exact ties: windows of 2 with s_x = s_y make most outputs (a + b) / 2 =
    # k + 1/2 up to the roundings of the products and sums, so a product fused into its add (an
    # FMA) moves some of them across the tie
    for dtype in ("int8", "uint8"):
        x = _rand(rng, (1, 4, 999), dtype)
        for s in (0.1, 0.0123):
            xq = Q([s], [_zp(rng, dtype, False)])
            g, f = _single("AveragePool", [("x", x, xq, False)], {"kernel_shape": [2]}, xq)
            cases.append((_float32(g), f, "avgpool"))
    return cases


def gap_cases():
    cases = []
    rng = np.random.default_rng(904)
    for dtype in ("int8", "uint8"):
        for k, n in enumerate(LENGTHS + [97, 200, 3136]):  # spatial sizes: 0..70, odd, 56*56
            x = _rand(rng, (2, 3, n) if n else (0, 3, 4), dtype)  # only the batch may be empty
            xq = _q(rng, dtype, 10 ** rng.uniform(-3, 0), k % 2 == 0)
            g, f = _single("GlobalAveragePool", [("x", x, xq, False)], {}, xq)
            cases.append((g, f, "gavgpool"))
            # the float32 rule, other output parameters allowed
            g, f = _single("GlobalAveragePool", [("x", x, xq, False)], {}, _q(rng, dtype, 0.02, k % 3 == 0))
            cases.append((_float32(g), f, "gavgpool"))
        for n in (1, 63, 127, 128, 129, 200, 3136):  # GlobalMaxPool: the 64-wide fold and its tail
            x = _rand(rng, (2, 3, n), dtype)
            if n == 200:
                x[:] = LO[dtype]  # every element the lowest value
            xq = _q(rng, dtype, 0.05, n % 2 == 0)
            g, f = _single("GlobalMaxPool", [("x", x, xq, False)], {}, xq)
            cases.append((g, f, "gmaxpool"))
        x = _rand(rng, (1, 64, 7, 7), dtype)  # MobileNet/ResNet's head shape
        xq = _q(rng, dtype, 0.05, True)
        g, f = _single("GlobalAveragePool", [("x", x, xq, False)], {}, xq)
        cases.append((g, f, "gavgpool"))
    return cases


GROUPS = {"binary": binary_cases, "relu": relu_cases, "clip": clip_cases, "concat": concat_cases,
          "pool": pool_cases, "gap": gap_cases}


# ---- natively, every instruction-set cap ---------------------------------------------------------


@pytest.mark.parametrize("group", list(GROUPS))
def test_int8_elementwise_kernels_every_isa(group):
    for g, feeds, kernel in GROUPS[group]():
        check_every_isa(g, feeds, expect=_x86(kernel))


def test_general_broadcast_brought_by_a_resize_runs_the_reference_arithmetic():
    """A symbolic dim hides the broadcast at load: the kernel is selected, and at run time a
    shape it has no plan for ([N, 1, 5] + [3, 1]) goes to the reference kernel."""
    g = Graph("dyn")
    g.add_input("a", "int8", ("N", 1, 5))
    g.add_input("b", "int8", (3, 1))
    g.values["a"].quant = Q([0.1], [3])
    g.values["b"].quant = Q([0.2], [-128])
    g.add_node("Add", ["a", "b"], ["y"], name="add")
    g.outputs = ["y"]
    infer_shapes(g)
    g.values["y"].quant = Q([0.15], [127])
    rng = np.random.default_rng(905)
    for isa in runtime.supported_isas():
        with runtime.Interpreter(to_bytes(g), threads=2, isa=isa) as it:
            for n in (2, 1, 3):
                feeds = {"a": _rand(rng, (n, 1, 5)), "b": _rand(rng, (3, 1))}
                it.resize("a", (n, 1, 5))
                got = it.run(feeds)["y"]
                want = ref_run(_concrete(g, n), feeds)["y"]
                assert got.dtype == want.dtype and np.array_equal(got, want), (isa, n)
            if isa in X86_OPT:
                assert [k for _, _, k in it.kernels()] == [f"add_q8_{_x86_set(isa)}"]


def _concrete(g, n):
    """g with its symbolic batch dim fixed to n (the reference interpreter needs shapes)."""
    c = Graph("dyn")
    c.add_input("a", "int8", (n, 1, 5))
    c.add_input("b", "int8", (3, 1))
    c.values["a"].quant, c.values["b"].quant = g.values["a"].quant, g.values["b"].quant
    c.add_node("Add", ["a", "b"], ["y"], name="add")
    c.outputs = ["y"]
    infer_shapes(c)
    c.values["y"].quant = g.values["y"].quant
    return c


def test_unquantized_int8_nodes_keep_the_plain_kernels():
    """No quantization parameters: plain integer arithmetic (Add wraps) through the reference
    (run_or_plain), not the requantizing kernels, whose supports() must refuse the node."""
    rng = np.random.default_rng(906)
    a, b = _rand(rng, (3, 40)), _rand(rng, (3, 40))
    g, feeds = _single("Add", [("a", a, None, False), ("b", b, None, False)], {}, None)
    with np.errstate(over="ignore"):
        assert np.array_equal(check_every_isa(g, feeds)["y0"], a + b)
    for isa in runtime.supported_isas():
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            it.run(feeds)
            assert all(k.endswith("_reference") for _, _, k in it.kernels()), it.kernels()
    x = _rand(rng, (2, 3, 5, 5))
    g, feeds = _single("Concat", [("x0", x, None, False), ("x1", x, None, False)], {"axis": 1}, None)
    for isa in runtime.supported_isas():
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            assert np.array_equal(it.run(feeds)["y0"], np.concatenate([x, x], 1))
            assert all(k.endswith("_reference") for _, _, k in it.kernels()), it.kernels()


# ---- aarch64 under qemu: neon and neon_dot (the neon kernels under both caps) -------------------


def test_int8_elementwise_kernels_on_aarch64(mobrt_run_aarch64, tmp_path):
    cases = []
    for build in GROUPS.values():
        cases += [(g, feeds, _arm(kernel)) for g, feeds, kernel in build()]
    run_under_qemu(mobrt_run_aarch64, tmp_path, cases, isas=("neon", "neon_dot"))
