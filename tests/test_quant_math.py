"""The integer arithmetic of quantized tensors (docs/quantization.md, mobconv/ops/quant_math.py).

Three kinds of check: small cases worked out by hand in the comments (the spec's
rounding rules, ties and negative values included); properties against exact
rational arithmetic (the fixed-point primitives) or a float model of each op
(|int result - round(float result)| <= 1 LSB); and the reference interpreter /
runtime behaviour on a graph with quantized tensors.
"""
import numpy as np
import pytest

from mobconv.errors import MobconvError
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.ops import load_all
from mobconv.ops import quant_math as qm

REG = load_all()
Q = QuantParams


def _round_half_up(n: int, d: int) -> int:
    """round(n / d), ties toward +infinity, in exact integers (d > 0)."""
    return (2 * n + d) // (2 * d)


def _round_away(n: int, d: int) -> int:
    """round(n / d), ties away from zero, in exact integers (d > 0)."""
    return (1 if n >= 0 else -1) * ((2 * abs(n) + d) // (2 * d))


# ---- fixed-point primitives ---------------------------------------------------------------


def test_quantize_multiplier_by_hand():
    assert qm.quantize_multiplier(0.0) == (0, 0)
    assert qm.quantize_multiplier(0.5) == (1 << 30, 0)      # 0.5 = 0.5 * 2**0
    assert qm.quantize_multiplier(1.0) == (1 << 30, 1)      # 1 = 0.5 * 2**1
    assert qm.quantize_multiplier(0.25) == (1 << 30, -1)
    # 0.3 = 0.6 * 2**-1; 0.6 * 2**31 = 1288490188.8 -> 1288490189
    assert qm.quantize_multiplier(0.3) == (1288490189, -1)
    # f = 1 - 2**-40 rounds to 2**31: halved, shift + 1
    assert qm.quantize_multiplier(1 - 2.0 ** -40) == (1 << 30, 1)
    assert qm.quantize_multiplier(2.0 ** -40) == (0, 0)     # shift < -31: zero
    for bad in (-1.0, float("nan"), float("inf"), 2.0 ** 32):
        with pytest.raises(MobconvError, match="multiplier"):
            qm.quantize_multiplier(bad)


def test_quantize_multiplier_is_close():
    rng = np.random.default_rng(1)
    for real in np.exp(rng.uniform(-20, 5, 500)):
        q, shift = qm.quantize_multiplier(real)
        assert (1 << 30) <= q < (1 << 31)
        assert abs(q * 2.0 ** (shift - 31) - real) <= real * 2.0 ** -31


def test_rounding_doubling_high_mul_by_hand():
    a = np.array([3, -3, 1, -1, 5, -(1 << 31), 1 << 30])
    b = np.array([1 << 30] * 5 + [-(1 << 31), 1 << 30])
    # 3 * 2**30 / 2**31 = 1.5 -> 2; -1.5 -> -1; 0.5 -> 1; -0.5 -> 0 (ties toward +infinity:
    # gemmlowp's nudge for a negative product is 1 - 2**30); 2.5 -> 3; the one overflow
    # (-2**31)^2 saturates; 2**60 / 2**31 = 2**29
    np.testing.assert_array_equal(qm.rounding_doubling_high_mul(a, b), [2, -1, 1, 0, 3, (1 << 31) - 1, 1 << 29])
    # off the tie, negative values round to nearest: -3 * (2**30 + 1) / 2**31 = -1.5000000014 -> -2
    assert qm.rounding_doubling_high_mul(-3, (1 << 30) + 1) == -2


def test_rounding_doubling_high_mul_exact():
    rng = np.random.default_rng(2)
    a = rng.integers(-(1 << 31), 1 << 31, 2000)
    b = rng.integers(-(1 << 31), 1 << 31, 2000)
    got = qm.rounding_doubling_high_mul(a, b)
    want = [_round_half_up(int(x) * int(y), 1 << 31) for x, y in zip(a, b)]
    np.testing.assert_array_equal(got, want)
    # exact ties: odd multiples of 2**30
    a = rng.integers(-(1 << 20), 1 << 20, 500) * 2 + 1
    got = qm.rounding_doubling_high_mul(a, np.full(500, 1 << 30))
    np.testing.assert_array_equal(got, [_round_half_up(int(x) << 30, 1 << 31) for x in a])


def test_rounding_divide_by_pot_by_hand():
    x = np.array([-3, -2, -1, 1, 2, 3, 5, -5, 6, -6, 7])
    # /2: -1.5 -> -2, -1, -0.5 -> -1, 0.5 -> 1, 1, 1.5 -> 2, 2.5 -> 3, -2.5 -> -3, 3, -3, 3.5 -> 4
    np.testing.assert_array_equal(qm.rounding_divide_by_pot(x, 1), [-2, -1, -1, 1, 1, 2, 3, -3, 3, -3, 4])
    # /4: -0.75 -> -1, -0.5 -> -1, -0.25 -> 0, 0.25 -> 0, 0.5 -> 1, 0.75 -> 1, 1.25 -> 1, -1.25 -> -1,
    # 1.5 -> 2, -1.5 -> -2, 1.75 -> 2
    np.testing.assert_array_equal(qm.rounding_divide_by_pot(x, 2), [-1, -1, 0, 0, 1, 1, 1, -1, 2, -2, 2])
    np.testing.assert_array_equal(qm.rounding_divide_by_pot(x, 0), x)
    with pytest.raises(MobconvError, match="shift"):
        qm.rounding_divide_by_pot(x, 32)


def test_rounding_divide_by_pot_exact():
    rng = np.random.default_rng(3)
    x = rng.integers(-(1 << 31), 1 << 31, 3000)
    e = rng.integers(0, 32, 3000)
    want = [_round_away(int(v), 1 << int(k)) for v, k in zip(x, e)]
    np.testing.assert_array_equal(qm.rounding_divide_by_pot(x, e), want)


def test_multiply_by_quantized_multiplier_two_roundings():
    rng = np.random.default_rng(4)
    x = rng.integers(-(1 << 24), 1 << 24, 3000)
    reals = np.exp(rng.uniform(-12, 4, 3000))
    q, s = qm.quantize_multipliers(reals)
    got = qm.multiply_by_quantized_multiplier(x, q, s)
    for xi, qi, si, g in zip(x, q, s, got):
        left, right = max(int(si), 0), max(-int(si), 0)
        xs = min(max(int(xi) << left, qm.INT32_MIN), qm.INT32_MAX)
        want = _round_away(_round_half_up(xs * int(qi), 1 << 31), 1 << right)  # the spec, in exact ints
        assert g == want
    exact = x * reals
    ok = np.abs(exact) < 2 ** 31 - 2
    assert np.all(np.abs(got[ok] - exact[ok]) <= 1 + 1e-6 * np.abs(exact[ok]))
    # saturation of the left shift: 2**30 * 4 does not fit in int32
    # 2**30 * 2**2 saturates to 2**31 - 1; times 2**30 / 2**31: 2**30 - 0.5, a tie, up to 2**30
    assert qm.multiply_by_quantized_multiplier(1 << 30, 1 << 30, 2) == 1 << 30


def test_requantize_refuses_int32_overflow():
    with pytest.raises(MobconvError, match="int32 accumulator overflow"):
        qm.requantize(np.array([1 << 31]), 0.5, 0, -128, 127)


# ---- QuantizeLinear / DequantizeLinear by hand (onnxruntime: tests/test_quant_onnxruntime.py) -


def test_quantize_linear_by_hand():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.74, 300, -300, np.inf, -np.inf, np.nan], np.float32)
    # x / 1 rounded half to even: 0, 2, 2, -0, -2, -2, 1; +zp 3; saturate; NaN -> the minimum
    np.testing.assert_array_equal(qm.quantize_linear(x, Q([1.0], [3]), "int8"),
                                  [3, 5, 5, 3, 1, 1, 4, 127, -128, 127, -128, -128])
    np.testing.assert_array_equal(qm.quantize_linear(x, Q([1.0], [3]), "uint8"),
                                  [3, 5, 5, 3, 1, 1, 4, 255, 0, 255, 0, 0])
    # per axis 0 of a (2, 2) tensor: row 0 scale 0.5 zp 0, row 1 scale 2 zp -1
    xs = np.array([[1.0, -0.25], [3.0, 5.0]], np.float32)
    # row 0: 2, -0.5 -> -0 (even); row 1: 1.5 -> 2 -> 1, 2.5 -> 2 -> 1
    np.testing.assert_array_equal(qm.quantize_linear(xs, Q([0.5, 2.0], [0, -1], 0)), [[2, 0], [1, 1]])


def test_one_scale_is_per_tensor_whatever_the_axis():
    # the file may record an axis with a single scale; the loader treats it as per tensor
    assert qm.per_tensor(Q([0.5], [3], 2), "y") == (0.5, 3)
    np.testing.assert_array_equal(qm.dequantize_linear(np.int8([[5, 7]]), Q([0.5], [3], 1)), [[1.0, 2.0]])


def test_dequantize_linear_by_hand():
    q = np.array([-128, 0, 3, 127], np.int8)
    np.testing.assert_array_equal(qm.dequantize_linear(q, Q([0.5], [3])), np.float32([-65.5, -1.5, 0, 62]))
    assert qm.dequantize_linear(q, Q([0.5], [3])).dtype == np.float32


def test_quantize_bias():
    # b / (s_in * s_w[c]) = 1 / (0.5 * 0.25) = 8; 0.0625 / 0.125 = 0.5 -> 0 (ties to even); -0.1875 -> -1.5 -> -2
    np.testing.assert_array_equal(qm.quantize_bias([1.0, 0.0625, -0.1875], 0.5, [0.25, 0.25, 0.25]), [8, 0, -2])


def test_activation_ranges():
    yq = Q([0.5], [-3])
    assert qm.activation_range("", [], yq, "int8") == (-128, 127)
    assert qm.activation_range("Relu", [], yq, "int8") == (-3, 127)
    # Relu6 = Clip(0, 6): q(6) = 12 - 3 = 9
    assert qm.activation_range("Clip", [0.0, 6.0], yq, "int8") == (-3, 9)
    assert qm.activation_range("Clip", [-1e9, 1e9], yq, "int8") == (-128, 127)
    assert qm.activation_range("Relu", [], Q([0.5], [-200]), "uint8") == (0, 255)
    with pytest.raises(MobconvError, match="cannot be fused"):
        qm.activation_range("Sigmoid", [], yq, "int8")


# ---- ops by hand ----------------------------------------------------------------------------


def _hand_conv(activation="", params=()):
    # x (zp 1, scale 0.5):   x - zp = [[0,1,2],[3,4,5],[6,7,8]]
    x = (np.arange(9).reshape(1, 1, 3, 3) + 1).astype(np.int8)
    # channel 0: [[1,-1],[2,0]], channel 1 its negative; scale 0.25 each, zp 0
    w = np.array([[[[1, -1], [2, 0]]], [[[-1, 1], [-2, 0]]]], np.int8)
    b = np.array([9, -9], np.int32)  # int32, scale 0.5 * 0.25
    return qm.conv(x, Q([0.5], [1]), w, Q([0.25, 0.25], [0, 0], 0), b, Q([0.5], [-3]), "int8",
                   activation=activation, activation_params=list(params), kernel_shape=[2, 2])


def test_conv_by_hand():
    # windows of x - zp: [0,1,3,4], [1,2,4,5], [3,4,6,7], [4,5,7,8]
    # channel 0 dot [1,-1,2,0]: 5, 7, 11, 13; + 9 = 14, 16, 20, 22
    # M = 0.5 * 0.25 / 0.5 = 0.25: 3.5, 4, 5, 5.5 -> 4, 4, 5, 6 (ties away from zero); + zp -3
    # channel 1: -14, -16, -20, -22 -> -3.5, -4, -5, -5.5 -> -4, -4, -5, -6; + zp -3
    np.testing.assert_array_equal(_hand_conv(), [[[[1, 1], [2, 3]], [[-7, -7], [-8, -9]]]])
    # Relu fused: the lower bound is the zero point -3
    np.testing.assert_array_equal(_hand_conv("Relu"), [[[[1, 1], [2, 3]], [[-3, -3], [-3, -3]]]])
    # Clip(0, 1): q(1) = 2 - 3 = -1
    np.testing.assert_array_equal(_hand_conv("Clip", (0.0, 1.0)), [[[[-1, -1], [-1, -1]], [[-3, -3], [-3, -3]]]])


def test_conv_padding_is_real_zero():
    # 1x1 input 5 (zp 5 -> real 0) padded by 1 with a 3x3 kernel of ones: only real zeros are summed
    x = np.full((1, 1, 1, 1), 5, np.int8)
    w = np.ones((1, 1, 3, 3), np.int8)
    y = qm.conv(x, Q([1.0], [5]), w, Q([1.0], [0]), None, Q([1.0], [0]), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    assert y.item() == 0


def test_add_by_hand():
    # s_a 0.5, s_b 0.25, s_y 1, zero points 0: real sums 1.5+0.5 = 2, 0.5+0.5 = 1, 0.5 -> 1 and
    # -0.5 -> -1 (the tie rounds away from zero), 1.5-0.5 = 1, saturation at 127
    a = np.array([3, 1, 1, -1, 3, 127], np.int8)
    b = np.array([2, 2, 0, 0, -2, 127], np.int8)
    y = qm.add(a, Q([0.5], [0]), b, Q([0.25], [0]), Q([1.0], [0]))
    np.testing.assert_array_equal(y, [2, 1, 1, -1, 1, 95])  # 63.5 + 31.75 = 95.25 -> 95
    # zero points: a - 10, b - (-4) are the real multiples
    y = qm.add(a + 10, Q([0.5], [10]), b - 4, Q([0.25], [-4]), Q([1.0], [7]))
    np.testing.assert_array_equal(y[:5], [9, 8, 8, 6, 8])


def test_mul_by_hand():
    # s 0.5 each, s_y 0.5: M = 0.5 = 2**30 * 2**(0 - 31), no right shift, so the tie is decided by
    # the high multiply (ties up): products 3 -> 1.5 -> 2, -3 -> -1.5 -> -1, 9 -> 4.5 -> 5, 127*127 -> 127
    a = np.array([1, -1, 3, 127], np.int8)
    b = np.array([3, 3, 3, 127], np.int8)
    np.testing.assert_array_equal(qm.mul(a, Q([0.5], [0]), b, Q([0.5], [0]), Q([0.5], [0])), [2, -1, 5, 127])


def test_concat_by_hand():
    # a (scale 0.5) -> output scale 1: (x * 2**20) * 0.5 / 2**20, the high multiply is exact and
    # the final shift rounds the tie away from zero: 4 -> 2, -3 -> -1.5 -> -2; b already has
    # the output's parameters: copied
    a = np.array([4, -3], np.int8)
    b = np.array([5], np.int8)
    y = qm.concat([a, b], [Q([0.5], [0]), Q([1.0], [0])], Q([1.0], [0]), axis=0)
    np.testing.assert_array_equal(y, [2, -2, 5])
    # -127 * 1/3 = -42.33 -> -42: the 2**20 pre-shift keeps the high multiply's rounding from
    # deciding (without it: -84.67 -> -85, then -42.5 -> -43)
    y = qm.concat([np.array([-127], np.int8)], [Q([0.02], [0])], Q([0.06], [0]), axis=0)
    assert y.item() == -42


def test_average_pool_by_hand():
    # zp 2: x - zp = [0, 1, -1, -2]; windows of 2: 1/2 = 0.5 -> 1, -3/2 = -1.5 -> -2; + zp
    x = np.array([2, 3, 1, 0], np.int8).reshape(1, 1, 1, 4)
    y = qm.average_pool(x, Q([0.1], [2]), kernel_shape=[1, 2], strides=[1, 2])
    np.testing.assert_array_equal(y.reshape(-1), [3, 0])
    # padding: count_include_pad=1 divides by the window (padding adds real zero)
    x = np.array([4, 4], np.int8).reshape(1, 1, 1, 2)  # x - zp = [2, 2]
    y0 = qm.average_pool(x, Q([0.1], [2]), kernel_shape=[1, 3], pads=[0, 1, 0, 1])
    y1 = qm.average_pool(x, Q([0.1], [2]), kernel_shape=[1, 3], pads=[0, 1, 0, 1], count_include_pad=1)
    # 4/2 = 2 -> 4 both; included pad: 4/3 = 1.33 -> 1 -> 3
    np.testing.assert_array_equal(y0.reshape(-1), [4, 4])
    np.testing.assert_array_equal(y1.reshape(-1), [3, 3])


# ---- properties against a float model ------------------------------------------------------

rng = np.random.default_rng(20)


def _rand_q(shape, dtype="int8"):
    lo, hi = qm.qrange(dtype)
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def _float_model(real, yq, dtype, lo=None, hi=None):
    s, zp = qm.per_tensor(yq, "y")
    a, b = qm.qrange(dtype)
    return np.clip(np.round(real / np.float64(np.float32(s))) + zp, a if lo is None else lo, b if hi is None else hi)


@pytest.mark.parametrize("group,cin,cout", [(1, 3, 5), (2, 4, 6), (4, 4, 4), (7, 7, 7)])
def test_conv_vs_float_model(group, cin, cout):
    x = _rand_q((2, cin, 7, 6))
    w = _rand_q((cout, cin // group, 3, 3))
    w[w == -128] = -127  # symmetric weights
    xq = Q([0.02], [-5])
    wq = Q(list(rng.uniform(0.001, 0.01, cout)), [0] * cout, 0)
    b = rng.integers(-2000, 2000, cout).astype(np.int32)
    yq = Q([0.05 * np.sqrt(cin // group)], [3])
    attrs = dict(kernel_shape=[3, 3], pads=[1, 0, 1, 2], strides=[2, 1], group=group)
    y = qm.conv(x, xq, w, wq, b, yq, activation="Relu", **attrs)
    xf = (x.astype(np.float64) + 5) * np.float64(np.float32(0.02))
    wf = w.astype(np.float64) * np.float32(wq.scales).astype(np.float64).reshape(-1, 1, 1, 1)
    bf = b * np.float64(np.float32(0.02)) * np.float32(wq.scales).astype(np.float64)
    real = REG["Conv"].reference(xf, wf, bf, None, auto_pad="NOTSET", dilations=[], activation="",
                                 activation_params=[], **attrs)
    want = _float_model(real, yq, "int8", lo=3)
    diff = np.abs(y.astype(np.int64) - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.98


def test_gemm_matmul_vs_float_model():
    a = _rand_q((5, 33))
    b = _rand_q((33, 9))
    aq, bq, yq = Q([0.03], [7]), Q(list(rng.uniform(0.002, 0.02, 9)), [0] * 9, 1), Q([0.4], [-10])
    c = rng.integers(-5000, 5000, 9).astype(np.int32)
    real = ((a.astype(np.float64) - 7) * np.float64(np.float32(0.03))) @ (
        b * np.float32(bq.scales).astype(np.float64)) + c * np.float64(np.float32(0.03)) * np.float32(bq.scales)
    want = _float_model(real, yq, "int8")
    y = qm.gemm(a, aq, b, bq, c, yq)
    assert np.abs(y - want).max() <= 1
    yt = qm.gemm(a.T.copy(), aq, b.T.copy(), Q(bq.scales, bq.zero_points, 0), c, yq, transA=1, transB=1)
    np.testing.assert_array_equal(yt, y)
    y_nobias = qm.matmul(a, aq, b, bq, yq)
    want_nobias = _float_model(real - c * np.float64(np.float32(0.03)) * np.float32(bq.scales), yq, "int8")
    assert np.abs(y_nobias - want_nobias).max() <= 1


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_add_mul_vs_float_model(dtype):
    a = _rand_q((4, 1, 17), dtype)
    b = _rand_q((3, 1), dtype)
    zp = 128 if dtype == "uint8" else 0
    aq, bq = Q([0.07], [zp + 11]), Q([0.013], [zp - 20])
    ra = (a.astype(np.float64) - aq.zero_points[0]) * np.float64(np.float32(0.07))
    rb = (b.astype(np.float64) - bq.zero_points[0]) * np.float64(np.float32(0.013))
    for fn, real, yq in ((qm.add, ra + rb, Q([0.06], [zp - 3])), (qm.mul, ra * rb, Q([0.02], [zp + 5]))):
        y = fn(a, aq, b, bq, yq, dtype)
        assert y.dtype == np.dtype(dtype) and y.shape == (4, 3, 17)
        diff = np.abs(y.astype(np.int64) - _float_model(real, yq, dtype))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.95


def test_concat_and_pools_vs_float_model():
    x = _rand_q((2, 3, 9, 8))
    xq = Q([0.1], [4])
    real = (x.astype(np.float64) - 4) * np.float64(np.float32(0.1))
    attrs = dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1])
    y = qm.average_pool(x, xq, **attrs)
    want = _float_model(REG["AveragePool"].reference(real, auto_pad="NOTSET", ceil_mode=0, dilations=[],
                                                     count_include_pad=0, **attrs), xq, "int8")
    assert np.abs(y - want).max() <= 1
    ym = qm.max_pool(x, xq, **attrs)
    np.testing.assert_array_equal(ym, REG["MaxPool"].reference(x, auto_pad="NOTSET", ceil_mode=0, dilations=[],
                                                                storage_order=0, **attrs)[0])
    other = _rand_q((2, 1, 9, 8))
    yq = Q([0.13], [-2])
    y = qm.concat([x, other], [xq, Q([0.05], [0])], yq, axis=1)
    real = np.concatenate([real, other * np.float64(np.float32(0.05))], axis=1)
    assert np.abs(y - _float_model(real, yq, "int8")).max() <= 1


# ---- graphs: the reference interpreter and the runtime -------------------------------------


def _int8_conv_graph(out_quant=True):
    g = Graph("int8_conv")
    g.add_input("x", "int8", (1, 2, 5, 5))
    g.values["x"].quant = Q([0.05], [3])
    g.add_constant("w", rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8))
    g.values["w"].quant = Q([0.01, 0.02, 0.03, 0.04], [0] * 4, 0)
    g.add_node("Conv", ["x", "w"], ["y"], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, name="conv1")
    g.add_node("Reshape", ["y", "shape"], ["z"], name="flat")
    g.add_constant("shape", np.array([1, -1], np.int64))
    g.outputs = ["z"]
    infer_shapes(g)
    if out_quant:
        g.values["y"].quant = Q([0.1], [-2])
        g.values["z"].quant = Q([0.1], [-2])
    return g


def test_interpreter_runs_the_integer_conv():
    from mobconv.reference.interpreter import run

    g = _int8_conv_graph()
    x = rng.integers(-128, 128, (1, 2, 5, 5)).astype(np.int8)
    want = qm.conv(x, g.values["x"].quant, g.values["w"].data, g.values["w"].quant, None,
                   g.values["y"].quant, kernel_shape=[3, 3], pads=[1, 1, 1, 1]).reshape(1, -1)
    got = run(g, {"x": x})["z"]
    np.testing.assert_array_equal(got, want)
    # the plain integer convolution (what the float reference computes on int8) differs
    plain = REG["Conv"].reference(x, g.values["w"].data, None, None, auto_pad="NOTSET", dilations=[], group=1,
                                  kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[], activation="",
                                  activation_params=[]).reshape(1, -1)
    assert not np.array_equal(plain, got)


def test_interpreter_refuses_incomplete_or_unknown_quantized_nodes():
    from mobconv.reference.interpreter import run

    x = np.zeros((1, 2, 5, 5), np.int8)
    g = _int8_conv_graph(out_quant=False)
    with pytest.raises(MobconvError, match=r"node 'conv1' \(Conv\): a quantized Conv needs quantization"):
        run(g, {"x": x})
    g = _int8_conv_graph()
    g.values["z"].quant = Q([0.2], [-2])  # a Reshape cannot change the parameters
    with pytest.raises(MobconvError, match=r"node 'flat' \(Reshape\): a quantized Reshape must keep"):
        run(g, {"x": x})
    g = _int8_conv_graph()
    g.nodes[1].op = "Sigmoid"
    g.nodes[1].inputs = ["y"]
    with pytest.raises(MobconvError, match=r"node 'flat' \(Sigmoid\): no integer reference for a quantized Sigmoid"):
        run(g, {"x": x})


def test_runtime_refuses_a_quantized_op_without_integer_kernel_cleanly():
    # the int8 Conv runs (tests/test_runtime_int8.py); a quantized Sigmoid has no integer form
    from mobconv import runtime
    from mobconv.formats.writer import to_bytes

    if not runtime.available():
        pytest.fail("the C++ runtime is not built")
    g = _int8_conv_graph()
    g.nodes[1].op = "Sigmoid"
    g.nodes[1].inputs = ["y"]
    with pytest.raises(MobconvError, match=r"UNSUPPORTED: .*op 'flat' \(Sigmoid\): no integer kernel for a "
                                           r"quantized Sigmoid"):
        runtime.Interpreter(to_bytes(g))


def test_relu_and_global_average_pool_by_hand():
    # Relu on int8 clamps at the zero point (real 0), not at the integer 0
    x = np.array([-128, -5, -4, 0, 9], np.int8)
    np.testing.assert_array_equal(qm.relu(x, Q([0.1], [-4]), Q([0.1], [-4])), [-4, -4, -4, 0, 9])
    # with a new scale (0.2, zp 0): x - zp = [-124, -1, 0, 4, 13] * 0.5 = -62, -0.5, 0, 2, 6.5 ->
    # -62, -1, 0, 2, 7 (ties away from zero), then max(., 0)
    np.testing.assert_array_equal(qm.relu(x, Q([0.1], [-4]), Q([0.2], [0])), [0, 0, 0, 2, 7])
    # global average of x - zp = [[1, 2], [3, 5]] (zp -1): 11 / 4 = 2.75 -> 3; + zp = 2
    g = np.array([[0, 1], [2, 4]], np.int8).reshape(1, 1, 2, 2)
    assert qm.global_average_pool(g, Q([0.5], [-1])).item() == 2


def _chain_graph(op, attrs, extra_inputs=()):
    g = Graph("chain")
    g.add_input("x", "int8", (1, 2, 3, 4))
    g.values["x"].quant = Q([0.1], [-4])
    names = ["x"]
    for i, arr in enumerate(extra_inputs):
        if arr is None:
            names.append("")
            continue
        g.add_constant(f"c{i}", arr)
        names.append(f"c{i}")
    g.add_node(op, names, ["y"], attrs, name="n1")
    g.outputs = ["y"]
    infer_shapes(g)
    g.values["y"].quant = Q([0.1], [-4])
    return g


def test_interpreter_relu_pools_resize():
    from mobconv.reference.interpreter import run

    x = rng.integers(-128, 128, (1, 2, 3, 4)).astype(np.int8)
    y = run(_chain_graph("Relu", {}), {"x": x})["y"]
    np.testing.assert_array_equal(y, np.maximum(x, -4))  # the float reference would give max(x, 0)
    y = run(_chain_graph("GlobalAveragePool", {}), {"x": x})["y"]
    np.testing.assert_array_equal(y, qm.global_average_pool(x, Q([0.1], [-4])))
    y = run(_chain_graph("GlobalMaxPool", {}), {"x": x})["y"]
    np.testing.assert_array_equal(y, x.max(axis=(2, 3), keepdims=True))
    # Clip with bounds quantized with x's parameters: a clamp of the integers
    lo, hi = np.int8(-4), np.int8(26)  # real 0 and 3 at scale 0.1, zp -4
    g = _chain_graph("Clip", {}, [lo, hi])
    g.values["c0"].quant = g.values["c1"].quant = Q([0.1], [-4])
    np.testing.assert_array_equal(run(g, {"x": x})["y"], np.clip(x, -4, 26))
    g.values["c1"].quant = Q([0.2], [0])
    with pytest.raises(MobconvError, match=r"node 'n1' \(Clip\): a quantized Clip needs its min/max"):
        run(g, {"x": x})
    scales = np.array([1, 1, 2, 2], np.float32)
    y = run(_chain_graph("Resize", {"mode": "nearest"}, [None, scales]), {"x": x})["y"]
    np.testing.assert_array_equal(y, x.repeat(2, axis=2).repeat(2, axis=3))
    y = run(_chain_graph("Resize", {"mode": "linear"}, [None, scales]), {"x": x})["y"]
    np.testing.assert_array_equal(y, qm.resize_linear(x, Q([0.1], [-4]), None, scales, None, **_RESIZE_DEFAULTS))
    with pytest.raises(MobconvError, match=r"node 'n1' \(Resize\): a quantized Resize is defined for modes nearest"):
        run(_chain_graph("Resize", {"mode": "cubic"}, [None, scales]), {"x": x})


_RESIZE_DEFAULTS = dict(antialias=0, axes=[], coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75,
                        exclude_outside=0, extrapolation_value=0.0, keep_aspect_ratio_policy="stretch",
                        mode="linear", nearest_mode="round_prefer_floor")


def test_resize_linear_by_hand():
    # width 2 -> 4, half_pixel: source x = -0.25, 0.25, 0.75, 1.25 -> weights of (x0, x1):
    # (1, 0), (0.75, 0.25), (0.25, 0.75), (0, 1); in 10 bits 1024, 768/256, 256/768, 1024.
    # x - zp = [0, 10]: 0, 2560/1024 = 2.5 -> 3, 7.5 -> 8, 10 (ties away from zero); + zp 3
    # x - zp = [0, -10]: 0, -2.5 -> -3, -7.5 -> -8, -10
    scales = np.array([1, 1, 1, 2], np.float32)
    for xs, want in (([3, 13], [3, 6, 11, 13]), ([3, -7], [3, 0, -5, -7])):
        x = np.array(xs, np.int8).reshape(1, 1, 1, 2)
        y = qm.resize_linear(x, Q([0.1], [3]), None, scales, None, **_RESIZE_DEFAULTS)
        np.testing.assert_array_equal(y.reshape(-1), want)


@pytest.mark.parametrize("mode", ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"])
def test_resize_linear_vs_float_model(mode):
    x = _rand_q((2, 3, 5, 7))
    scales = np.array([1, 1, 2.5, 1.5], np.float32)
    attrs = dict(_RESIZE_DEFAULTS, coordinate_transformation_mode=mode)
    y = qm.resize_linear(x, Q([0.1], [3]), None, scales, None, **attrs)
    real = REG["Resize"].reference(x.astype(np.float64) - 3, None, scales, None, **attrs)
    diff = np.abs(y - np.clip(np.round(real) + 3, -128, 127))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.85
    with pytest.raises(MobconvError, match="at most 2 axes"):
        qm.resize_linear(x, Q([0.1], [3]), None, np.array([1, 2, 2, 2], np.float32), None, **attrs)
