"""The optimized int8 depthwise 3x3 convolution (runtime/src/cpu/int8/q8_dwconv*.cpp:
conv_q8_dw3x3_avx2 / _avx512 / _avx512_vnni / _neon) against the numpy integer reference, bit for bit,
under every instruction-set cap this machine runs (tests/int8_harness.py) and under
qemu-aarch64 (neon, neon_dot).

Every graph holds many depthwise nodes side by side (one input each), so one interpreter
covers a sweep: widths 1..40 (around the 8/16/32-output vector steps and the row kernels'
unrolled even/odd halves), heights 1..9, strides 1 and 2 (also mixed), every 0/1 pad
combination and SAME_UPPER/SAME_LOWER/VALID, per-tensor and per-channel weights, int8 and
uint8 activations and weights, zero points at the extremes, Relu/Relu6/Clip ranges, both
requantization rules, biases at the int32 exactness bound, batch 2. Each node must have run
the depthwise kernel under each cap (a silent fall back to the reference would pass the
equality alone); nodes it must not take (channel multiplier 2, 5x5, dilation 2, a bias one
past the exactness bound) must have run another kernel, with the same results.
"""
import numpy as np
import pytest

from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.ops import quant_math as qm
from int8_harness import check_every_isa, run_under_qemu
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture)

Q = QuantParams
RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
DW = "dw3x3"
# The kernel every depthwise node must have run under each cap (substring of its name).
EXPECT = {"scalar": "q8_reference", "avx2": "dw3x3_avx2", "avx_vnni": "dw3x3_avx2", "avx512": "dw3x3_avx512",
          "avx512_vnni": "dw3x3_avx512_vnni"}
EXPECT_ARM = {"neon": "dw3x3_neon", "neon_dot": "dw3x3_neon"}


def _rand(rng, shape, dtype):
    lo, hi = RANGE[dtype]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


class _Builder:
    """Depthwise Conv nodes side by side in one graph, each with its own input."""

    def __init__(self, float32=False):
        self.g = Graph("dw")
        if float32:
            self.g.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32
        self.feeds = {}
        self.out_q = {}
        self.n = 0

    def add(self, rng, shape, attrs, *, x_dtype="int8", w_dtype="int8", per_channel=True, extreme=False,
            act="", act_params=(), bias=True, mult=1, kernel=(3, 3), w=None, b=None, out_dtype=None,
            acc_to_100=None):
        n, c, h, wd = shape
        k = self.n
        self.n += 1
        x = _rand(rng, shape, x_dtype)
        lo, hi = RANGE[x_dtype]
        x_zp = int(rng.choice([lo, hi])) if extreme else int(rng.integers(lo, hi + 1))
        x_scale = float(np.float32(10 ** rng.uniform(-2.5, -0.5)))
        m = c * mult
        if w is None:
            w = _rand(rng, (m, 1) + tuple(kernel), w_dtype)
        if w_dtype == "int8":
            w_zps = [int(rng.choice([-128, 127])) if extreme else 0 for _ in range(m if per_channel else 1)]
        else:
            w_zps = [int(rng.choice([0, 255])) if extreme else int(rng.integers(0, 256))
                     for _ in range(m if per_channel else 1)]
        w_scales = (10 ** rng.uniform(-3, -1, len(w_zps))).astype(np.float32).tolist()
        wq = Q(w_scales, w_zps, 0) if per_channel else Q(w_scales, w_zps)
        if b is None and bias:
            b = rng.integers(-20000, 20000, m).astype(np.int32)
        # output scale around the accumulators' real spread (some values saturate, most not)
        ws = (w.astype(np.int64) - np.array(w_zps).reshape(-1, 1, 1, 1)).reshape(m, -1)
        spread = float(np.sqrt((ws.astype(np.float64) ** 2).sum(1).mean()) * 80 + 1)
        y_scale = float(np.float32(x_scale * float(np.median(w_scales)) * spread / 60))
        if acc_to_100 is not None:  # an accumulator of acc_to_100 requantizes to about 100
            y_scale = float(np.float32(x_scale * float(np.median(w_scales)) * acc_to_100 / 100))
        odt = out_dtype or x_dtype
        ylo, yhi = RANGE[odt]
        yq = Q([y_scale], [int(rng.integers(ylo + 40, yhi - 39)) if not extreme else int(rng.choice([ylo, yhi]))])
        xn, wn, bn, yn = f"x{k}", f"w{k}", f"b{k}", f"y{k}"
        self.g.add_input(xn, x_dtype, shape)
        self.g.values[xn].quant = Q([x_scale], [x_zp])
        self.g.add_constant(wn, w)
        self.g.values[wn].quant = wq
        ins = [xn, wn]
        if b is not None:
            self.g.add_constant(bn, np.asarray(b, np.int32))
            ins.append(bn)
        a = dict(attrs, group=m // mult)
        if act:
            a.update(activation=act, activation_params=list(act_params))
        self.g.add_node("Conv", ins, [yn], a, name=f"dw{k}")
        self.g.outputs.append(yn)
        self.out_q[yn] = (yq, odt)
        self.feeds[xn] = x
        return self

    def build(self):
        infer_shapes(self.g)
        for yn, (yq, odt) in self.out_q.items():
            self.g.values[yn].dtype = odt
            self.g.values[yn].quant = yq
        return self.g, self.feeds


def _kernels_per_isa(g, feeds):
    """{isa: {node name: kernel name}} for every cap this machine runs (1 thread)."""
    out = {}
    data = to_bytes(g)
    for isa in runtime.supported_isas():
        with runtime.Interpreter(data, threads=1, isa=isa) as it:
            it.run(feeds)
            out[isa] = {name: k for name, _, k in it.kernels()}
    return out


def _check(g, feeds, dw_nodes=None):
    """Exact equality under every cap and 1/2 threads; every node in dw_nodes (default: all)
    ran the depthwise kernel of the cap, every other node another kernel."""
    want = check_every_isa(g, feeds)
    names = [n.name for n in g.nodes]
    dw_nodes = set(names if dw_nodes is None else dw_nodes)
    for isa, ks in _kernels_per_isa(g, feeds).items():
        for name in names:
            if name in dw_nodes and isa in EXPECT:
                assert EXPECT[isa] in ks[name], f"isa={isa} node {name} ran {ks[name]}, expected *{EXPECT[isa]}*"
            elif name not in dw_nodes:
                assert DW not in ks[name], f"isa={isa} node {name} ran {ks[name]}, must not be the depthwise kernel"
    return want


def _pads_for(rng, w, h):
    """Random 0/1 pads with a valid 3x3 output (padded size >= 3)."""
    while True:
        p = [int(v) for v in rng.integers(0, 2, 4)]  # top, left, bottom, right
        if h + p[0] + p[2] >= 3 and w + p[1] + p[3] >= 3:
            return p


def _nonconstant(want, min_unique=20):
    vals = np.concatenate([v.ravel().astype(np.int64) for v in want.values()])
    assert len(np.unique(vals)) >= min_unique  # the outputs are not all saturated


# ---- geometry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2])
def test_widths_1_to_40_heights_1_to_9(stride):
    rng = np.random.default_rng(10 + stride)
    b = _Builder()
    for w in range(1, 41):
        h = int(rng.integers(1, 10))
        pads = _pads_for(rng, w, h)
        b.add(rng, (1, 2, h, w), dict(strides=[stride, stride], pads=pads))
    g, feeds = b.build()
    _nonconstant(_check(g, feeds))


def test_every_pad_combination_and_auto_pad():
    rng = np.random.default_rng(20)
    b = _Builder()
    for strides in ([1, 1], [2, 2], [1, 2], [2, 1]):
        for code in range(16):
            pads = [(code >> i) & 1 for i in range(4)]
            h, w = int(rng.integers(3, 10)), int(rng.integers(3, 34))
            b.add(rng, (1, 3, h, w), dict(strides=strides, pads=pads))
        for auto in ("SAME_UPPER", "SAME_LOWER", "VALID"):
            h, w = int(rng.integers(3, 10)), int(rng.integers(3, 36))
            b.add(rng, (1, 3, h, w), dict(strides=strides, auto_pad=auto))
    # pads of 2 (the kernel reads only padding in the first/last output column)
    b.add(rng, (1, 2, 5, 6), dict(pads=[2, 2, 2, 2]))
    b.add(rng, (1, 2, 7, 9), dict(strides=[2, 2], pads=[0, 2, 2, 0]))
    g, feeds = b.build()
    _nonconstant(_check(g, feeds))


def test_batch_2_many_channels_threads_split_planes():
    rng = np.random.default_rng(30)
    b = _Builder()
    b.add(rng, (2, 13, 11, 19), dict(pads=[1, 1, 1, 1]))
    b.add(rng, (2, 7, 16, 33), dict(strides=[2, 2], pads=[0, 0, 1, 1]), x_dtype="uint8")
    b.add(rng, (2, 5, 6, 64), dict(strides=[2, 2], pads=[1, 1, 1, 1]))
    g, feeds = b.build()
    _nonconstant(_check(g, feeds))


def test_tall_planes_span_several_row_chunks():
    """Planes taller than one kernel call's chunk of output rows (2048 outputs in the flat
    layout, 1024 per requant call in the row layout)."""
    rng = np.random.default_rng(35)
    b = _Builder()
    b.add(rng, (1, 2, 75, 40), dict(pads=[1, 1, 1, 1]))                      # stride 1, flat, 2 chunks
    b.add(rng, (1, 2, 131, 13), dict(strides=[2, 2], pads=[1, 0, 0, 1]))     # stride 2 narrow, flat
    b.add(rng, (2, 3, 97, 29), dict(pads=[0, 1, 1, 0]), x_dtype="uint8")     # stride 1, flat, 2 chunks
    b.add(rng, (1, 2, 90, 70), dict(strides=[2, 2], pads=[1, 1, 1, 1]))      # stride 2 wide: row layout
    b.add(rng, (1, 2, 60, 40), dict(strides=[2, 1], pads=[1, 1, 1, 1]))      # mixed strides: row layout
    g, feeds = b.build()
    _nonconstant(_check(g, feeds))


@pytest.mark.parametrize("float32", [False, True], ids=["fixed_point", "float32_rule"])
def test_fused_flat_planes_wide_rows_and_output_dtypes(float32):
    """The AVX-512 fused flat kernel (requantized in registers, rows copied out of a staging
    row): output widths at and around the 64-byte masked copy (63, 64, 65) and past it
    (memcpy), both output dtypes, narrow stride-2 planes, per-tensor and extreme zero points."""
    rng = np.random.default_rng(37 + float32)
    b = _Builder(float32=float32)
    for i, w in enumerate((62, 63, 64, 65, 66, 100, 129)):
        h = int(rng.integers(2, 7))
        b.add(rng, (1, 2, h, w), dict(pads=[1, 1, 1, 1] if i % 2 else [0, 1, 1, 0]),
              x_dtype="uint8" if i % 3 == 0 else "int8", out_dtype="uint8" if i % 2 else "int8",
              per_channel=i % 2 == 0, extreme=i == 3)
    for w in (9, 14, 27, 31, 32, 33):  # stride 2, ow <= 16: flat
        b.add(rng, (1, 3, int(rng.integers(3, 12)), w), dict(strides=[2, 2], pads=_pads_for(rng, w, 5)),
              out_dtype="uint8" if w % 2 else "int8", act="Relu" if w % 3 == 0 else "")
    g, feeds = b.build()
    _nonconstant(_check(g, feeds))


# ---- parameters: dtypes, zero points, fused ranges, both requantization rules -----------------

PARAMS = [  # x dtype, w dtype, per channel, extreme zero points, activation, its params, output dtype
    ("int8", "int8", True, False, "", (), None),
    ("int8", "int8", False, True, "Relu", (), None),
    ("uint8", "int8", True, True, "Clip", (0.0, 6.0), None),
    ("uint8", "int8", False, False, "Relu", (), None),
    ("int8", "uint8", True, False, "Clip", (-0.3, 0.2), None),
    ("uint8", "uint8", False, True, "", (), None),
    ("int8", "int8", True, True, "Clip", (-np.inf, 0.5), "uint8"),
    ("uint8", "int8", True, False, "", (), "int8"),
]


@pytest.mark.parametrize("float32", [False, True], ids=["fixed_point", "float32_rule"])
def test_dtypes_zero_points_activations(float32):
    rng = np.random.default_rng(40 + float32)
    b = _Builder(float32=float32)
    for xd, wd, pc, ext, act, ap, od in PARAMS:
        for stride in (1, 2):
            h, w = int(rng.integers(2, 10)), int(rng.integers(1, 41))
            b.add(rng, (1, 3, h, w), dict(strides=[stride, stride], pads=_pads_for(rng, w, h)), x_dtype=xd,
                  w_dtype=wd, per_channel=pc, extreme=ext, act=act, act_params=ap, out_dtype=od)
    # no bias; weights at the int8 extremes
    b.add(rng, (1, 2, 5, 17), dict(pads=[1, 1, 1, 1]), bias=False,
          w=np.array([-128, 127] * 9, np.int8).reshape(2, 1, 3, 3))
    g, feeds = b.build()
    _nonconstant(_check(g, feeds))


def test_requant_multipliers_above_one_and_tiny():
    rng = np.random.default_rng(50)
    b = _Builder()
    for y_scale in (1e-7, 1e-4, 10.0, 1e4):  # multipliers >> 1 (saturating shift) down to flushed
        b.add(rng, (1, 2, 4, 20), dict(pads=[1, 1, 1, 1]))
        yn = f"y{b.n - 1}"
        yq, odt = b.out_q[yn]
        b.out_q[yn] = (Q([y_scale], yq.zero_points), odt)
    g, feeds = b.build()
    _check(g, feeds)


# ---- the int32 exactness bound ----------------------------------------------------------------


def _bound(w, zw):
    return 255 * np.abs(w.astype(np.int64).reshape(w.shape[0], -1) - zw).sum(1)


@pytest.mark.parametrize("float32", [False, True], ids=["fixed_point", "float32_rule"])
def test_bias_at_the_int32_bound(float32):
    """Biases exactly at max |bias| + 255 * sum |w - zw| = 2^31 - 1 run the depthwise kernel
    (accumulators near +-(2^31 - 1) with x at the extremes); one past the bound must go to
    another kernel (the reference), with the same results."""
    rng = np.random.default_rng(60 + float32)
    lim = 2**31 - 1
    b = _Builder(float32=float32)
    cases = []
    for past in (0, 1):
        w = rng.integers(-128, 128, (4, 1, 3, 3)).astype(np.int8)
        bound = _bound(w, 0)
        bias = np.array([lim - bound[0] + past, -(lim - bound[1]), lim - bound[2], -(lim - bound[3])], np.int64)
        # x - zx = 255 in channels 0 and 2 (accumulators near +-(2^31 - 1)), 0 in 1 and 3 (the bias)
        b.add(rng, (1, 4, 3, 5), dict(pads=[0, 1, 0, 1]), w=w, b=bias.astype(np.int32), acc_to_100=2.0**31,
              per_channel=False)
        xn = f"x{b.n - 1}"
        b.g.values[xn].quant = Q(b.g.values[xn].quant.scales, [-128])
        x = np.full((1, 4, 3, 5), 127, np.int8)
        x[0, 1] = x[0, 3] = -128
        b.feeds[xn] = x
        cases.append(f"dw{b.n - 1}")
    g, feeds = b.build()
    want = _check(g, feeds, dw_nodes=[cases[0]])
    zp = b.out_q["y0"][0].zero_points[0]
    assert (want["y0"][0, 0].astype(int) - zp).max() > 60  # requantized from near 2^31 (about 100)


def test_sum_bound_refuses_full_scale_weights_only_near_the_limit():
    """255 * 9 * 255 = 585225: a large bias with full-scale uint8 weights (zw = 0) passes, a
    bias within 585225 of the limit does not."""
    rng = np.random.default_rng(70)
    b = _Builder()
    w = np.full((2, 1, 3, 3), 255, np.uint8)
    b.add(rng, (1, 2, 4, 4), dict(pads=[1, 1, 1, 1]), w_dtype="uint8", w=w,
          b=np.array([2**31 - 1 - 585225, -(2**31 - 1 - 585225)], np.int32), acc_to_100=2.0**31)
    b.add(rng, (1, 2, 4, 4), dict(pads=[1, 1, 1, 1]), w_dtype="uint8", w=w,
          b=np.array([2**31 - 585225, 0], np.int32), acc_to_100=2.0**31)
    for k in (0, 1):
        b.g.values[f"w{k}"].quant = Q(b.g.values[f"w{k}"].quant.scales, [0, 0], 0)
    g, feeds = b.build()
    _check(g, feeds, dw_nodes=["dw0"])


# ---- nodes the depthwise kernel must leave to others -------------------------------------------


def test_not_taken_channel_multiplier_5x5_dilation():
    rng = np.random.default_rng(80)
    b = _Builder()
    b.add(rng, (1, 3, 7, 9), dict(pads=[1, 1, 1, 1]), mult=2)                          # channel multiplier 2
    b.add(rng, (2, 4, 8, 8), dict(pads=[2, 2, 2, 2]), kernel=(5, 5))                   # 5x5
    b.add(rng, (1, 3, 9, 9), dict(pads=[2, 2, 2, 2], dilations=[2, 2]))                # dilation 2
    b.add(rng, (1, 3, 9, 9), dict(strides=[3, 3], pads=[1, 1, 1, 1]))                  # stride 3
    b.add(rng, (1, 3, 6, 7), dict(pads=[1, 1, 1, 1]))                                  # a depthwise one
    g, feeds = b.build()
    _check(g, feeds, dw_nodes=["dw4"])


# ---- aarch64 (qemu) ---------------------------------------------------------------------------


def test_on_aarch64_neon(mobrt_run_aarch64, tmp_path):
    cases = []
    for float32 in (False, True):
        rng = np.random.default_rng(90 + float32)
        b = _Builder(float32=float32)
        for stride in (1, 2):
            for w in list(range(1, 20)) + [23, 24, 25, 31, 32, 33, 40]:
                h = int(rng.integers(1, 10))
                xd, wd, pc, ext, act, ap, od = PARAMS[w % len(PARAMS)]
                b.add(rng, (1, 2, h, w), dict(strides=[stride, stride], pads=_pads_for(rng, w, h)), x_dtype=xd,
                      w_dtype=wd, per_channel=pc, extreme=ext, act=act, act_params=ap, out_dtype=od)
        b.add(rng, (2, 5, 9, 21), dict(strides=[1, 2], auto_pad="SAME_UPPER"))
        b.add(rng, (1, 3, 7, 9), dict(pads=[1, 1, 1, 1]), mult=2)  # not depthwise-taken: compared only
        cases.append(b.build())
    run_under_qemu(mobrt_run_aarch64, tmp_path, cases, expect=EXPECT_ARM)
    for k, (g, _) in enumerate(cases):  # every node but one (multiplier 2) ran the NEON kernel
        for isa in EXPECT_ARM:
            lines = (tmp_path / f"{k:04d}" / f"outputs_{isa}" / "status").read_text().splitlines()
            kernels = [line.split()[2] for line in lines if line.startswith("kernel ")]
            assert len(kernels) == len(g.nodes), lines
            assert sum(EXPECT_ARM[isa] in name for name in kernels) == len(g.nodes) - 1, (isa, kernels)
