"""The optimized int8 GEMM kernels (runtime/src/cpu/int8/q8_gemm*.cpp: conv_q8_gemm_<isa>,
gemm_q8_<isa>, matmul_q8_<isa>; x86 micro-kernels avx2 (int16 vpmaddwd), avx_vnni /
avx512_vnni (vpdpbusd)) against the numpy integer reference, bit for bit, under every
instruction-set cap this machine runs, at 1 and 2 threads.

Each graph holds many nodes side by side (one input each), so one interpreter covers a
sweep: output channels around the micro-kernels' MR (6, 8) and the 64-row task chunks,
output pixels around NR (16, 32) and the narrow tail kernel, several column blocks, K not a
multiple of the kr (2, 4), 1x1 / 3x3 / 5x5 / strided / dilated / padded / grouped / 1-D and
3-D convolutions, per-channel and per-tensor weights, int8 and uint8 activations and
weights, zero points at the extremes, Relu/Clip ranges, both requantization rules, biases
exactly at the int32 exactness bound (the fast kernel must take the node) and one past it
(the reference must), Gemm with every transpose and MatMul with constant B; and the
quantizer's int8 digits zoo models. Every node must have run the kernel expected under each
cap: an equality alone would also pass on a silent fall back to the reference.
"""
import os

import numpy as np
import pytest

from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.ops import quant_math as qm
from mobconv.reference.interpreter import run as ref_run

Q = QuantParams
RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
INT32_MAX = 2**31 - 1
ROOT = os.path.join(os.path.dirname(__file__), "..")


def _rand(rng, shape, dtype):
    lo, hi = RANGE[dtype]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def _fits_int8(a):
    """The VNNI kernels pack w - zw as int8: nodes whose weights do not fit run AVX2's int16."""
    return bool(a.min() >= -128 and a.max() <= 127)


def _expected(isa, op, kind, s8_fits):
    """Substring of the kernel name a node of `kind` ("gemm" or "ref") must run under `isa`."""
    prefix = {"Conv": "conv_q8_", "Gemm": "gemm_q8_", "MatMul": "matmul_q8_"}[op]
    if kind == "ref" or isa == "scalar":
        return prefix + "reference"
    gemm = prefix + ("gemm_" if op == "Conv" else "")
    if isa in ("avx_vnni", "avx512_vnni") and s8_fits:
        return gemm + isa
    if isa in ("avx2", "avx_vnni", "avx512", "avx512_vnni"):
        return gemm + "avx2"
    return gemm  # other architectures: some GEMM kernel


class _Builder:
    """Quantized Conv / Gemm / MatMul nodes side by side, each with its own input."""

    def __init__(self, float32=False):
        self.g = Graph("q8gemm")
        if float32:
            self.g.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32
        self.feeds = {}
        self.out_q = {}
        self.expect = {}  # node name -> (op, kind, s8_fits)
        self.n = 0

    def _weights(self, rng, shape, axis, w_dtype, per_channel, extreme):
        m = shape[axis]
        lo, hi = RANGE[w_dtype]
        w = rng.integers(-127 if w_dtype == "int8" else 0, hi + 1, shape).astype(w_dtype)
        if extreme:  # the weights' own extremes too
            w.flat[0], w.flat[-1] = lo, hi
        count = m if per_channel else 1
        scales = (10 ** rng.uniform(-3, -1, count)).astype(np.float32)
        if w_dtype == "int8":
            zps = [0] * count
        else:
            zps = rng.integers(0, 256, count).tolist()
            if extreme:
                zps[0] = 255
        return w, (Q(scales.tolist(), zps, axis) if per_channel else Q(scales.tolist(), zps)), scales, zps

    def _bias(self, rng, a, bias):
        """a: (M, K) zero-point-removed weights; the bias of each mode."""
        m = a.shape[0]
        bound = np.abs(a).astype(np.int64).sum(1) * 255
        if bias in ("rand", "one"):
            return rng.integers(-3000, 3000, m).astype(np.int32)
        if bias == "at_bound":  # |bias| + sum |a| * 255 == 2^31 - 1 exactly: still provably exact
            sign = np.where(np.arange(m) % 2 == 0, 1, -1)
            return (sign * (INT32_MAX - bound)).astype(np.int32)
        assert bias == "past_bound"  # one past the bound on row 0: only the reference may run it
        b = rng.integers(-3000, 3000, m).astype(np.int64)
        b[0] = INT32_MAX - bound[0] + 1
        return b.astype(np.int32)

    def _finish(self, name, op, inputs, attrs, yq, out_dtype, kind, s8_fits):
        outs = [f"y{name}"]
        names = []
        for nm, arr, qp, const in inputs:
            if const:
                self.g.add_constant(nm, arr)
            else:
                self.g.add_input(nm, arr.dtype.name, arr.shape)
                self.feeds[nm] = arr
            self.g.values[nm].quant = qp
            names.append(nm)
        self.g.add_node(op, names, outs, attrs, name=name)
        self.out_q[outs[0]] = (yq, out_dtype)
        self.expect[name] = (op, kind, s8_fits)

    def conv(self, rng, x_shape, w_shape, attrs=None, *, x_dtype="int8", w_dtype="int8", per_channel=True,
             extreme=False, act="", act_params=(), bias="rand", out_dtype=None):
        k = self.n
        self.n += 1
        x = _rand(rng, x_shape, x_dtype)
        lo, hi = RANGE[x_dtype]
        x_zp = int(rng.choice([lo, hi])) if extreme else int(rng.integers(lo, hi + 1))
        x_scale = float(np.float32(10 ** rng.uniform(-2.5, -0.5)))
        w, wq, scales, zps = self._weights(rng, w_shape, 0, w_dtype, per_channel, extreme)
        m = w_shape[0]
        zcol = np.array([zps[i if per_channel else 0] for i in range(m)], np.int64)
        a = w.reshape(m, -1).astype(np.int64) - zcol[:, None]
        inputs = [(f"x{k}", x, Q([x_scale], [x_zp]), False), (f"w{k}", w, wq, True)]
        if bias:
            inputs.append((f"b{k}", self._bias(rng, a, bias), None, True))
        out_dtype = out_dtype or x_dtype
        acc_scale = x_scale * float(scales.max()) * np.sqrt(a.shape[1]) * 60
        olo, ohi = RANGE[out_dtype]
        yq = Q([float(np.float32(acc_scale / 8))], [int(rng.integers(olo, ohi + 1)) if not extreme else olo])
        attrs = dict(attrs or {}, activation=act, activation_params=list(act_params))
        kind = "ref" if bias == "past_bound" else "gemm"
        self._finish(f"conv{k}", "Conv", inputs, attrs, yq, out_dtype, kind, _fits_int8(a))

    def matmul(self, rng, op, a_shape, b_shape, *, trans_a=0, trans_b=0, dtype="int8", w_dtype="int8",
               per_column=True, extreme=False, bias="rand", act=""):
        k = self.n
        self.n += 1
        a = _rand(rng, a_shape, dtype)
        lo, hi = RANGE[dtype]
        a_zp = int(rng.choice([lo, hi])) if extreme else int(rng.integers(lo, hi + 1))
        a_scale = float(np.float32(10 ** rng.uniform(-2.5, -0.5)))
        axis = (0 if trans_b else 1) if op == "Gemm" else len(b_shape) - 1
        w, wq, scales, zps = self._weights(rng, b_shape, axis, w_dtype, per_column, extreme)
        wt = w.T if axis == 1 else w  # (N, K)
        n = wt.shape[0]
        zcol = np.array([zps[i if per_column else 0] for i in range(n)], np.int64)
        am = wt.astype(np.int64) - zcol[:, None]
        inputs = [(f"a{k}", a, Q([a_scale], [a_zp]), False), (f"w{k}", w, wq, True)]
        attrs = {"activation": act, "activation_params": []}
        if op == "Gemm":
            attrs.update(transA=trans_a, transB=trans_b)
            if bias:
                b = self._bias(rng, am, bias)
                inputs.append((f"c{k}", b if bias != "one" else b[:1], None, True))
        kk = am.shape[1]
        acc_scale = a_scale * float(scales.max()) * np.sqrt(kk) * 60
        yq = Q([float(np.float32(acc_scale / 8))], [int(rng.integers(lo, hi + 1))])
        kind = "ref" if bias == "past_bound" else "gemm"
        self._finish(f"{op.lower()}{k}", op, inputs, attrs, yq, dtype, kind,
                     _fits_int8(am))

    def graph(self):
        self.g.outputs = list(self.out_q)
        infer_shapes(self.g)
        for o, (q, dt) in self.out_q.items():
            self.g.values[o].dtype = dt
            self.g.values[o].quant = q
        return self.g, self.feeds


def _check(b, threads=(1, 2)):
    g, feeds = b.graph()
    want = ref_run(g, feeds)
    data = to_bytes(g)
    isas = runtime.supported_isas()
    assert "avx2" in isas or "neon" in isas
    for isa in isas:
        for t in threads:
            with runtime.Interpreter(data, threads=t, isa=isa) as it:
                got = it.run(feeds)
                ran = {name: kern for name, _, kern in it.kernels()}
            for name in g.outputs:
                if got[name].dtype != want[name].dtype or not np.array_equal(got[name], want[name]):
                    bad = np.argwhere(got[name] != want[name])
                    i = tuple(bad[0]) if len(bad) else ()
                    raise AssertionError(f"isa={isa} threads={t} {name} ({ran.get('conv' + name[5:])}): "
                                         f"{len(bad)} elements differ, first at {i}: runtime "
                                         f"{got[name][i] if i else got[name].shape} reference "
                                         f"{want[name][i] if i else want[name].shape}")
            for node, (op, kind, s8) in b.expect.items():
                exp = _expected(isa, op, kind, s8)
                assert exp in ran[node], f"isa={isa} threads={t} node {node}: ran {ran[node]}, expected *{exp}*"
    return want


def _conv_sweep(float32):
    rng = np.random.default_rng(1 if float32 else 0)
    b = _Builder(float32)
    # 1x1 (direct NCHW rows): channels around MR, pixels around NR / the narrow tail / blocks
    for m, c, hw in ((1, 3, (1, 1)), (5, 7, (3, 5)), (6, 4, (4, 4)), (7, 9, (1, 17)), (8, 16, (4, 8)),
                     (9, 5, (3, 11)), (13, 1, (5, 7)), (17, 33, (7, 7)), (70, 12, (2, 3)), (3, 8, (24, 24))):
        b.conv(rng, (1, c) + hw, (m, c, 1, 1), x_dtype=["int8", "uint8"][m % 2], per_channel=m % 3 != 0)
    # kxk im2col: padding, strides, dilations, asymmetric pads, auto_pad
    b.conv(rng, (1, 3, 7, 6), (5, 3, 3, 3), dict(pads=[1, 1, 1, 1]), act="Relu")
    b.conv(rng, (1, 4, 9, 8), (6, 4, 5, 5), dict(pads=[2, 1, 2, 0]), x_dtype="uint8", act="Clip",
           act_params=(0.0, 6.0))
    b.conv(rng, (2, 4, 9, 10), (9, 4, 3, 2), dict(strides=[2, 3], pads=[0, 1, 2, 0], dilations=[1, 2]),
           extreme=True)
    b.conv(rng, (1, 5, 11, 5), (8, 5, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2]), w_dtype="uint8")
    b.conv(rng, (1, 3, 6, 6), (4, 3, 3, 3), dict(dilations=[2, 2], pads=[2, 2, 2, 2]), x_dtype="uint8",
           w_dtype="uint8", extreme=True, per_channel=False)
    b.conv(rng, (1, 2, 13, 3), (3, 2, 1, 3), dict(strides=[1, 2], pads=[0, 1, 0, 1]))  # 1x3, stride 2 in W
    b.conv(rng, (1, 64, 20, 20), (9, 64, 3, 3), dict(pads=[1, 1, 1, 1]))  # several column blocks
    b.conv(rng, (1, 8, 3, 3), (33, 8, 3, 3), dict(), out_dtype="uint8")  # one output pixel
    b.conv(rng, (1, 4, 5, 5), (4, 4, 1, 1), dict(strides=[2, 2]))  # strided 1x1 (im2col)
    # stride 2 along long rows (the 8-wide gather), 7x7 stride 2 pad 3 on an odd width
    b.conv(rng, (1, 3, 9, 40), (5, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1]), x_dtype="uint8")
    b.conv(rng, (1, 3, 15, 41), (8, 3, 7, 7), dict(strides=[2, 2], pads=[3, 3, 3, 3]), extreme=True)
    b.conv(rng, (1, 16, 6, 38), (7, 16, 1, 1), dict(strides=[2, 2]))
    # grouped, not depthwise: channel groups, and a channel multiplier 2 depthwise-like node
    b.conv(rng, (1, 6, 7, 7), (9, 2, 3, 3), dict(group=3, pads=[1, 1, 1, 1]), extreme=True)
    b.conv(rng, (2, 4, 5, 6), (8, 1, 3, 3), dict(group=4, pads=[0, 1, 1, 0]), x_dtype="uint8")
    # 1-D and 3-D convolutions
    b.conv(rng, (2, 3, 10), (4, 3, 4), dict(strides=[3], pads=[2, 1]), x_dtype="uint8", w_dtype="uint8")
    b.conv(rng, (1, 2, 4, 5, 3), (3, 2, 2, 3, 1), dict(pads=[1, 0, 0, 0, 1, 0]), act="Relu")
    # zero points at the extremes with both activation dtypes, per-tensor weights
    b.conv(rng, (1, 16, 6, 6), (12, 16, 1, 1), extreme=True, per_channel=False)
    b.conv(rng, (1, 16, 6, 6), (12, 16, 3, 3), dict(pads=[1, 1, 1, 1]), x_dtype="uint8", extreme=True)
    # the int32 exactness bound: at it (fast kernel), one past it (reference), no bias
    b.conv(rng, (1, 8, 5, 5), (7, 8, 3, 3), bias="at_bound")
    b.conv(rng, (1, 8, 5, 5), (7, 8, 1, 1), x_dtype="uint8", bias="at_bound", w_dtype="uint8")
    b.conv(rng, (1, 8, 5, 5), (7, 8, 3, 3), bias="past_bound")
    b.conv(rng, (1, 5, 4, 4), (3, 5, 2, 2), bias=None)
    # stride 2 along rows wide enough for the ISA's 32-byte gather steps and its tails
    b.conv(rng, (1, 3, 7, 150), (6, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1]), x_dtype="uint8")
    b.conv(rng, (1, 3, 9, 135), (5, 3, 7, 7), dict(strides=[2, 2], pads=[3, 3, 3, 3]), extreme=True)
    return b


@pytest.mark.parametrize("float32", [False, True], ids=["fixed_point", "float32_rule"])
def test_conv_sweep_every_isa(float32):
    _check(_conv_sweep(float32))


@pytest.mark.parametrize("float32", [False, True], ids=["fixed_point", "float32_rule"])
def test_gemm_and_matmul_sweep_every_isa(float32):
    rng = np.random.default_rng(10 + float32)
    b = _Builder(float32)
    for ta in (0, 1):
        for tb in (0, 1):
            for rows, k, n in ((1, 9, 7), (5, 16, 33), (17, 3, 1), (2, 70, 65)):
                b.matmul(rng, "Gemm", (k, rows) if ta else (rows, k), (n, k) if tb else (k, n), trans_a=ta,
                         trans_b=tb, dtype=["int8", "uint8"][(rows + tb) % 2], per_column=(k + n) % 2 == 0,
                         bias=["rand", "one", None][(rows + ta) % 3], act="Relu" if n % 2 else "")
    b.matmul(rng, "Gemm", (3, 40), (40, 10), extreme=True, w_dtype="uint8")
    b.matmul(rng, "Gemm", (4, 24), (24, 9), bias="at_bound")
    b.matmul(rng, "Gemm", (4, 24), (24, 9), bias="past_bound")
    for a_shape, w_shape, dt in (((2, 3, 5, 7), (7, 4), "int8"), ((6,), (6, 3), "uint8"), ((4, 13), (13, 40), "int8"),
                                 ((1, 50, 19), (19, 17), "uint8")):
        b.matmul(rng, "MatMul", a_shape, w_shape, dtype=dt, per_column=len(a_shape) != 2, extreme=dt == "uint8")
    _check(b)


def test_exactness_bound_refusal_keeps_the_reference_overflow_error():
    """A node past the bound whose sum really leaves int32: the reference runs it under every
    cap and raises its run-time error (the fast kernel would have wrapped silently)."""
    from mobconv.errors import MobconvError

    g = Graph("overflow")
    w = np.full((1, 4, 3, 3), 127, np.int8)
    g.add_input("x", "int8", (1, 4, 3, 3))
    g.values["x"].quant = Q([0.1], [-128])
    g.add_constant("w", w)
    g.values["w"].quant = Q([0.05], [0])
    g.add_constant("b", np.array([2**31 - 1000], np.int32))
    g.add_node("Conv", ["x", "w", "b"], ["y"], {}, name="c")
    g.outputs = ["y"]
    infer_shapes(g)
    g.values["y"].dtype = "int8"
    g.values["y"].quant = Q([0.01], [1])
    x = np.full((1, 4, 3, 3), 127, np.int8)
    for isa in runtime.supported_isas():
        with runtime.Interpreter(to_bytes(g), isa=isa) as it, pytest.raises(MobconvError, match="int32 accumulator"):
            it.run({"x": x})


@pytest.fixture(scope="module", params=("mobilenetv2", "resnet"))
def zoo_int8(request):
    import mobconv
    from mobconv import quantize

    onnx_path = os.path.join(ROOT, "model_zoo", "onnx", f"digits_{request.param}.onnx")
    model = mobconv.convert(onnx_path)
    calib_dir = os.path.join(ROOT, "model_zoo", "onnx", "digits_calib")
    files = sorted(f for f in os.listdir(calib_dir) if f.endswith(".npy"))[:4]
    calib = [{"input": np.load(os.path.join(calib_dir, f))} for f in files]
    q = quantize.quantize(model, calib, scheme="int8", progress=False)
    images = np.load(os.path.join(ROOT, "model_zoo", "onnx", "digits_heldout.npz"))["images"][:3]
    return q, images


@pytest.mark.parametrize("float32", [False, True], ids=["fixed_point", "float32_rule"])
def test_int8_zoo_models_bit_exact_on_every_isa(zoo_int8, float32):
    q, images = zoo_int8
    g = q.graph
    saved = dict(g.metadata.extra)
    if float32:
        g.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32
    try:
        feeds = {g.inputs[0]: images}
        want = ref_run(g, feeds)
        data = to_bytes(g)
        for isa in runtime.supported_isas():
            for t in (1, 2):
                with runtime.Interpreter(data, threads=t, isa=isa) as it:
                    got = it.run(feeds)
                    kernels = [k for _, _, k in it.kernels()]
                for name in g.outputs:
                    assert got[name].dtype == want[name].dtype
                    assert np.array_equal(got[name], want[name]), (isa, t, name)
                if isa != "scalar":
                    gemm = [k for k in kernels if k.startswith("conv_q8_gemm_")]
                    assert gemm, (isa, kernels)
    finally:
        g.metadata.extra.clear()
        g.metadata.extra.update(saved)


@pytest.mark.parametrize("float32", [False, True], ids=["fixed_point", "float32_rule"])
def test_requant_rows_at_rounding_ties_and_int32_extremes(float32):
    """1x1 convs over one input channel whose x sweeps all 256 values: with power-of-two
    multipliers every odd accumulator is a rounding tie (half away from zero in the fixed
    point rule, half to even in the float32 rule); biases put the accumulators next to
    both int32 limits (the doubling high multiply and the left shift saturate there);
    widths hit the requant rows' 64-, 16- and 8-lane steps and their tails."""
    rng = np.random.default_rng(30)
    g = Graph("ties")
    if float32:
        g.metadata.extra[qm.REQUANTIZE_KEY] = qm.FLOAT32
    feeds, outs, nodes = {}, [], []
    k = 0
    for x_dtype in ("int8", "uint8"):
        for width in (256, 255, 71, 9):
            for s_y, bias in ((2.0, 0), (8.0, 1), (128.0, -3), (0.25, 0), (2.0**-9, 5),
                              (1.0, INT32_MAX - 255 * 127), (2.0**-20, -(INT32_MAX - 255 * 127)),
                              (2.0**20, 1000), (3.0, 17)):
                lo, hi = RANGE[x_dtype]
                x = np.arange(lo, hi + 1, dtype=np.int64)
                x = np.resize(x, width).astype(x_dtype).reshape(1, 1, 1, width)
                m = 3
                w = np.array([1, -1, 127], np.int8).reshape(m, 1, 1, 1)
                g.add_input(f"x{k}", x_dtype, x.shape)
                g.values[f"x{k}"].quant = Q([1.0], [lo if k % 2 else hi])
                feeds[f"x{k}"] = x
                g.add_constant(f"w{k}", w)
                g.values[f"w{k}"].quant = Q([1.0] * m, [0] * m, 0)
                b = np.array([bias, -bias, bias // 2], np.int64)
                b = np.clip(b, -(INT32_MAX - 255 * 127), INT32_MAX - 255 * 127).astype(np.int32)
                g.add_constant(f"b{k}", b)
                g.add_node("Conv", [f"x{k}", f"w{k}", f"b{k}"], [f"y{k}"], {}, name=f"conv{k}")
                outs.append((f"y{k}", Q([float(s_y)], [int(rng.integers(-5, 5)) if x_dtype == "int8" else 128]),
                             x_dtype))
                nodes.append(f"conv{k}")
                k += 1
    g.outputs = [o for o, _, _ in outs]
    infer_shapes(g)
    for o, q, dt in outs:
        g.values[o].dtype = dt
        g.values[o].quant = q
    want = ref_run(g, feeds)
    data = to_bytes(g)
    for isa in runtime.supported_isas():
        with runtime.Interpreter(data, threads=1, isa=isa) as it:
            got = it.run(feeds)
            ran = {name: kern for name, _, kern in it.kernels()}
        for o, _, _ in outs:
            assert np.array_equal(got[o], want[o]), (isa, o, got[o][got[o] != want[o]][:5], want[o][got[o] != want[o]][:5])
        if isa != "scalar":
            assert all("conv_q8_gemm_" in ran[n] for n in nodes), (isa, ran)
