"""Per-op runtime test cases, shared by the native per-op tests
(tests/test_runtime_ops.py, C++ kernels through ctypes) and the aarch64 ones
(tests/test_runtime_aarch64.py, the same graphs run by mobrt_run under qemu-aarch64).

CASES holds pytest.param(op, variant, inputs, attrs, n_out, rtol, atol); inputs are
arrays (graph inputs), ("const", array) (initializers) or ("absent", None) (skipped
optional inputs). build() turns one case into a one-node Graph, the feeds and the
numpy reference outputs.
"""
import numpy as np
import pytest

from mobconv.ir import Graph, infer_shapes
from mobconv.ops import load_all

REG = load_all()
rng = np.random.default_rng(0)


def f32(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def i64(*vals):
    return np.array(vals, dtype=np.int64)


# (op, variant, inputs [array or ("const", array)], attrs)
C = lambda a: ("const", np.asarray(a))  # noqa: E731
CASES = []


def case(op, variant, inputs, attrs=None, n_out=1, rtol=1e-5, atol=1e-5):
    CASES.append(pytest.param(op, variant, inputs, attrs or {}, n_out, rtol, atol, id=f"{op}-{variant}"))


for op in ["Relu", "Sigmoid", "Tanh", "HardSwish", "Softplus", "Softsign", "Mish", "Erf", "Exp", "Neg", "Abs",
           "Floor", "Ceil", "Round", "Sign", "Sin", "Cos"]:
    case(op, "odd", [f32(2, 3, 13)])
case("Relu", "int64", [np.arange(-5, 8, dtype=np.int64)])
case("Abs", "int32", [np.arange(-5, 8, dtype=np.int32)])
case("Log", "pos", [f32(3, 7, lo=0.1, hi=3)])
case("Sqrt", "pos", [f32(3, 7, lo=0.1, hi=3)])
case("Reciprocal", "pos", [f32(3, 7, lo=0.5, hi=3)])
case("LeakyRelu", "alpha", [f32(4, 5)], {"alpha": 0.3})
case("HardSigmoid", "ab", [f32(4, 5)], {"alpha": 0.25, "beta": 0.4})
case("Elu", "alpha", [f32(4, 5)], {"alpha": 0.7})
case("Selu", "default", [f32(4, 5)])
case("Celu", "alpha", [f32(4, 5)], {"alpha": 1.5})
case("ThresholdedRelu", "alpha", [f32(4, 5)], {"alpha": 0.5})
case("Gelu", "erf", [f32(4, 5)])
case("Gelu", "tanh", [f32(4, 5)], {"approximate": "tanh"})
case("Not", "bool", [rng.random((3, 5)) > 0.5])
case("PRelu", "channel", [f32(2, 3, 5, 5), C(f32(3, 1, 1))])
case("Clip", "minmax", [f32(3, 11), C(np.float32(-0.5)), C(np.float32(0.7))])
case("Clip", "min_only", [f32(3, 11), C(np.float32(-0.5))])
for op in ["Add", "Sub", "Mul", "Max", "Min", "Sum", "Mean"]:
    case(op, "bcast", [f32(2, 3, 5), f32(3, 1)])
case("Div", "bcast", [f32(2, 3, 5), f32(1, 5, lo=0.5, hi=2)])
case("Div", "int64", [np.array([7, -7, 9, 5], np.int64), np.array([2, 2, -4, 0], np.int64)])
case("Add", "int32_scalar", [np.arange(12, dtype=np.int32).reshape(3, 4), np.array(5, np.int32)])
case("Pow", "f32", [f32(3, 4, lo=0.5, hi=2), f32(3, 4)])
case("Mod", "fmod", [f32(3, 4), f32(3, 4, lo=0.5, hi=2)], {"fmod": 1})
case("Mod", "int", [np.array([5, -5, 7, -7], np.int64), np.array([3, 3, -2, -2], np.int64)])
for op in ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]:
    case(op, "int", [rng.integers(0, 3, (3, 4)), rng.integers(0, 3, (4,))])
for op in ["And", "Or", "Xor"]:
    case(op, "bool", [rng.random((3, 4)) > 0.5, rng.random((1, 4)) > 0.5])
case("Where", "bcast", [rng.random((3, 1)) > 0.5, f32(3, 4), f32(4)])
case("Max", "three", [f32(2, 3), f32(3), f32(2, 1)])
# conv family
case("Conv", "3x3_pad_stride", [f32(1, 3, 13, 11), C(f32(5, 3, 3, 3)), C(f32(5))],
     {"pads": [1, 1, 1, 1], "strides": [2, 2]}, rtol=1e-4, atol=1e-4)
case("Conv", "depthwise_dil", [f32(2, 4, 9, 9), C(f32(4, 1, 3, 3))],
     {"group": 4, "dilations": [2, 2], "pads": [2, 2, 2, 2]}, rtol=1e-4, atol=1e-4)
case("Conv", "group2_same_relu6", [f32(1, 4, 7, 8), C(f32(6, 2, 3, 3))],
     {"group": 2, "auto_pad": "SAME_UPPER", "activation": "Clip", "activation_params": [0.0, 6.0]},
     rtol=1e-4, atol=1e-4)
case("Conv", "1d", [f32(1, 3, 17), C(f32(4, 3, 5))], {"strides": [3]}, rtol=1e-4, atol=1e-4)
case("Conv", "1x1", [f32(1, 8, 5, 5), C(f32(7, 8, 1, 1)), C(f32(7))], rtol=1e-4, atol=1e-4)
case("ConvTranspose", "s2", [f32(1, 4, 5, 5), C(f32(4, 3, 3, 3)), C(f32(3))],
     {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, rtol=1e-4, atol=1e-4)
case("ConvTranspose", "group", [f32(1, 4, 4, 3), C(f32(4, 2, 2, 2))], {"group": 2, "strides": [2, 1]},
     rtol=1e-4, atol=1e-4)
case("Gemm", "transB_bias", [f32(5, 7), C(f32(3, 7)), C(f32(3))], {"transB": 1, "alpha": 0.5, "beta": 2.0},
     rtol=1e-4, atol=1e-4)
case("Gemm", "transA", [f32(7, 5), C(f32(7, 3))], {"transA": 1}, rtol=1e-4, atol=1e-4)
case("MatMul", "batched_bcast", [f32(2, 1, 3, 5), f32(4, 5, 6)], rtol=1e-4, atol=1e-4)
case("MatMul", "vec", [f32(5), f32(3, 5, 2)], rtol=1e-4, atol=1e-4)
case("BatchNormalization", "nchw", [f32(2, 3, 4, 5), C(f32(3)), C(f32(3)), C(f32(3)), C(f32(3, lo=0.5, hi=2))],
     rtol=1e-4, atol=1e-4)
case("InstanceNormalization", "nchw", [f32(2, 3, 4, 5), C(f32(3)), C(f32(3))], rtol=1e-4, atol=1e-4)
case("LayerNormalization", "last", [f32(2, 3, 7), C(f32(7)), C(f32(7))], rtol=1e-4, atol=1e-4)
case("LRN", "size3", [f32(1, 5, 3, 3)], {"size": 3}, rtol=1e-4, atol=1e-4)
case("LpNormalization", "p2", [f32(3, 5)], rtol=1e-4, atol=1e-5)
case("LpNormalization", "p1", [f32(3, 5)], {"p": 1, "axis": 0}, rtol=1e-4, atol=1e-5)
case("MeanVarianceNormalization", "default", [f32(2, 3, 4, 5)], rtol=1e-4, atol=1e-4)
case("MaxPool", "3x3s2_pad", [f32(1, 3, 13, 11)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
case("MaxPool", "ceil", [f32(1, 2, 8, 8)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
case("MaxPool", "indices", [f32(1, 2, 6, 7)], {"kernel_shape": [2, 2], "strides": [2, 2]}, n_out=2)
case("AveragePool", "pad_exclude", [f32(1, 3, 9, 9)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
case("AveragePool", "pad_include", [f32(1, 3, 9, 9)], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                                      "count_include_pad": 1})
case("GlobalAveragePool", "odd", [f32(2, 3, 7, 5)])
case("GlobalMaxPool", "odd", [f32(2, 3, 7, 5)])
case("Softmax", "axis1", [f32(2, 5, 3)], {"axis": 1})
case("LogSoftmax", "last", [f32(2, 5, 3)])
case("Hardmax", "last", [f32(2, 5, 3)])
# tensor / shape ops
case("Concat", "axis1", [f32(2, 3, 4), f32(2, 1, 4), f32(2, 2, 4)], {"axis": 1})
case("Split", "sizes", [f32(2, 7), C(i64(3, 4))], {"axis": 1}, n_out=2)
case("Split", "num_outputs", [f32(6, 3)], {"axis": 0, "num_outputs": 3}, n_out=3)
case("Slice", "steps", [f32(5, 7, 3), C(i64(1, -1)), C(i64(5, 0)), C(i64(0, 1)), C(i64(2, -2))])
case("Transpose", "perm", [f32(2, 3, 4)], {"perm": [1, 2, 0]})
case("Reshape", "minus1", [f32(2, 3, 4), C(i64(0, -1))])
case("Flatten", "axis2", [f32(2, 3, 4, 5)], {"axis": 2})
case("Squeeze", "axes", [f32(1, 3, 1, 4), C(i64(0, 2))])
case("Unsqueeze", "axes", [f32(3, 4), C(i64(0, 3))])
case("Pad", "constant", [f32(2, 3), C(i64(1, 0, 2, 1)), C(np.float32(1.5))])
case("Pad", "reflect", [f32(3, 4), C(i64(1, 2, 2, 1))], {"mode": "reflect"})
case("Pad", "edge", [f32(3, 4), C(i64(1, 2, 2, 1))], {"mode": "edge"})
case("Gather", "axis1", [f32(3, 5, 2), C(np.array([[0, 4], [-1, 2]], np.int64))], {"axis": 1})
case("GatherElements", "axis0", [f32(3, 4), C(rng.integers(0, 3, (2, 4)))], {"axis": 0})
case("Shape", "slice", [f32(2, 3, 4, 5)], {"start": 1, "end": -1})
case("Size", "all", [f32(2, 3, 4)])
case("Cast", "f2i", [f32(3, 4, lo=-10, hi=10)], {"to": 7})
case("Cast", "i64_i32", [np.arange(-3, 6, dtype=np.int64)], {"to": 6})
case("Cast", "i2f", [np.arange(6, dtype=np.int64)], {"to": 1})
case("Cast", "f2bool", [np.array([0.0, 1.5, -2.0], np.float32)], {"to": 9})
case("Tile", "rep", [f32(2, 3), C(i64(2, 3))])
case("Expand", "bcast", [f32(3, 1), C(i64(2, 3, 4))])
case("ConstantOfShape", "float", [C(i64(2, 3))], {"value": np.array([1.25], np.float32)})
case("Range", "int", [C(np.array(2, np.int64)), C(np.array(17, np.int64)), C(np.array(3, np.int64))])
case("Identity", "copy", [f32(3, 4)])
case("Dropout", "inference", [f32(3, 4)])
case("DepthToSpace", "DCR", [f32(1, 8, 2, 3)], {"blocksize": 2})
case("DepthToSpace", "CRD", [f32(1, 8, 2, 3)], {"blocksize": 2, "mode": "CRD"})
case("SpaceToDepth", "b2", [f32(1, 2, 4, 6)], {"blocksize": 2})
case("Resize", "nearest_scales", [f32(1, 2, 3, 4), ("absent", None), C(np.array([1, 1, 2, 1.5], np.float32))],
     {"mode": "nearest"})
case("Resize", "linear_sizes", [f32(1, 2, 3, 4), ("absent", None), ("absent", None), C(i64(1, 2, 7, 5))],
     {"mode": "linear"}, rtol=1e-4, atol=1e-5)
case("Resize", "linear_align", [f32(1, 1, 4, 4), ("absent", None), C(np.array([1, 1, 2, 2], np.float32))],
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, rtol=1e-4, atol=1e-5)
# Resize: every mode x coordinate transformation, nearest modes, cubic coefficient,
# antialias (down-sampling), exclude_outside, crop-and-resize, aspect policies, axes.
RESIZE_IN = f32(1, 2, 5, 7)
UP, DOWN = C(np.array([1, 1, 1.6, 2.3], np.float32)), C(np.array([1, 1, 0.6, 0.45], np.float32))
CTMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]
for mode in ["nearest", "linear", "cubic"]:
    for ctm in CTMS:
        for tag, scales in [("up", UP), ("down", DOWN)]:
            case("Resize", f"{mode}_{ctm}_{tag}", [RESIZE_IN, ("absent", None), scales],
                 {"mode": mode, "coordinate_transformation_mode": ctm}, rtol=1e-4, atol=1e-5)
for nearest_mode in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
    case("Resize", f"nearest_{nearest_mode}", [RESIZE_IN, ("absent", None), ("absent", None), C(i64(1, 2, 10, 14))],
         {"mode": "nearest", "nearest_mode": nearest_mode, "coordinate_transformation_mode": "asymmetric"})
for mode in ["linear", "cubic"]:
    case("Resize", f"{mode}_antialias_down", [f32(1, 2, 13, 17), ("absent", None), C(np.array([1, 1, 0.4, 0.3], np.float32))],
         {"mode": mode, "antialias": 1}, rtol=1e-4, atol=1e-5)
    case("Resize", f"{mode}_antialias_up", [RESIZE_IN, ("absent", None), UP],
         {"mode": mode, "antialias": 1}, rtol=1e-4, atol=1e-5)
    case("Resize", f"{mode}_crop_and_resize", [RESIZE_IN, C(np.array([0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3], np.float32)),
                                                ("absent", None), C(i64(1, 2, 6, 9))],
         {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -3.5},
         rtol=1e-4, atol=1e-5)
case("Resize", "nearest_crop_and_resize", [RESIZE_IN, C(np.array([0.1, -0.3, 0.8, 1.2], np.float32)),
                                            ("absent", None), C(i64(4, 9))],
     {"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize", "axes": [2, 3]})
case("Resize", "cubic_a_exclude_outside", [RESIZE_IN, ("absent", None), UP],
     {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, rtol=1e-4, atol=1e-5)
case("Resize", "cubic_antialias_exclude", [f32(1, 1, 11, 9), ("absent", None), C(np.array([1, 1, 0.5, 0.7], np.float32))],
     {"mode": "cubic", "antialias": 1, "exclude_outside": 1}, rtol=1e-4, atol=1e-5)
for policy in ["not_larger", "not_smaller"]:
    case("Resize", f"linear_{policy}", [RESIZE_IN, ("absent", None), ("absent", None), C(i64(8, 9))],
         {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": policy}, rtol=1e-4, atol=1e-5)
case("Resize", "linear_axes_neg", [f32(2, 3, 7), ("absent", None), C(np.array([2.5], np.float32))],
     {"mode": "linear", "axes": [-1]}, rtol=1e-4, atol=1e-5)
case("Resize", "linear_1d_3d_input", [f32(1, 2, 3, 4, 5), ("absent", None), C(np.array([1, 1, 2, 0.5, 1.5], np.float32))],
     {"mode": "linear"}, rtol=1e-4, atol=1e-5)
case("MaxPool", "indices_storage_order1", [f32(2, 3, 7, 6)], {"kernel_shape": [3, 2], "strides": [2, 2],
                                                              "pads": [1, 0, 1, 1], "storage_order": 1}, n_out=2)
case("MaxPool", "indices_3d_storage_order1", [f32(1, 2, 4, 5, 6)], {"kernel_shape": [2, 2, 3], "storage_order": 1},
     n_out=2)
case("MaxPool", "indices_1d_storage_order1", [f32(1, 2, 9)], {"kernel_shape": [3], "strides": [2],
                                                              "storage_order": 1}, n_out=2)
for op in ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceSumSquare", "ReduceLogSumExp"]:
    case(op, "axes", [f32(2, 3, 5, lo=0.5, hi=1.5), C(i64(1, -1))], rtol=1e-4, atol=1e-5)
case("ReduceSum", "all_nokeep", [f32(2, 3, 5)], {"keepdims": 0}, rtol=1e-4, atol=1e-5)
case("ArgMax", "axis1", [f32(3, 7, 2)], {"axis": 1})
case("ArgMin", "nokeep", [f32(3, 7, 2)], {"axis": -1, "keepdims": 0})
case("TopK", "largest", [f32(3, 9), C(i64(4))], n_out=2)
case("CumSum", "rev_excl", [f32(3, 5), C(np.array(1, np.int64))], {"reverse": 1, "exclusive": 1}, rtol=1e-5)


def build(op, inputs, attrs, n_out):
    g = Graph(f"one_{op}")
    names, feeds, arrays = [], {}, []
    for k, item in enumerate(inputs):
        if isinstance(item, tuple) and item[0] == "absent":
            names.append("")
            arrays.append(None)
            continue
        name = f"in{k}"
        if isinstance(item, tuple) and item[0] == "const":
            g.add_constant(name, item[1])
            arrays.append(item[1])
        else:
            arr = np.asarray(item)
            g.add_input(name, arr.dtype.name, arr.shape)
            feeds[name] = arr
            arrays.append(arr)
        names.append(name)
    outs = [f"out{k}" for k in range(n_out)]
    node = g.add_node(op, names, outs, attrs, name=f"node_{op}")
    g.outputs = outs
    infer_shapes(g)
    spec = REG[op]
    expected = spec.run_reference(arrays, spec.resolve_attrs(node))
    return g, feeds, expected


# ---- SWEEP_CASES: shapes around the optimized kernels' tile and tail boundaries ----------
# Odd channel counts and widths (vector tails), GEMM sizes around the micro-tile edges,
# stride/pad/dilation/group/activation variants, broadcast patterns and short reduction
# axes; run per instruction set (tests/test_runtime_aarch64.py runs them with NEON under
# qemu). Same tuple layout as CASES; atol None means 1e-4 * max|reference|.
SWEEP_CASES = []
_srng = np.random.default_rng(11)


def _s32(*shape, lo=-2.0, hi=2.0):
    return _srng.uniform(lo, hi, shape).astype(np.float32)


def _sweep(op, variant, inputs, attrs=None, n_out=1, rtol=1e-4, atol=None):
    SWEEP_CASES.append(pytest.param(op, variant, inputs, attrs or {}, n_out, rtol, atol, id=f"{op}-{variant}"))


_RELU6 = {"activation": "Clip", "activation_params": [0.0, 6.0]}
# depthwise 3x3, stride 1 and 2, widths 1..33 (NEON processes 4 lanes; tails and borders)
for _c, _h, _w in [(1, 1, 1), (3, 2, 2), (5, 3, 3), (8, 4, 5), (17, 5, 7), (4, 7, 9), (2, 9, 16), (3, 6, 17),
                   (6, 5, 33), (1, 13, 6)]:
    for _s in (1, 2):
        for _p in (0, 1):
            if (_h + 2 * _p - 3) < 0 or (_w + 2 * _p - 3) < 0:
                continue
            _attrs = {"group": _c, "strides": [_s, _s], "pads": [_p] * 4}
            _ins = [_s32(1, _c, _h, _w), C(_s32(_c, 1, 3, 3))]
            if (_c + _w) % 2:
                _ins.append(C(_s32(_c)))
                _attrs.update(_RELU6)
            _sweep("Conv", f"dw3x3_c{_c}_{_h}x{_w}_s{_s}_p{_p}", _ins, _attrs)
_sweep("Conv", "dw3x3_asym_pads", [_s32(2, 3, 8, 11), C(_s32(3, 1, 3, 3))], {"group": 3, "pads": [0, 1, 1, 0]})
_sweep("Conv", "dw3x3_s2_asym_pads", [_s32(1, 5, 9, 10), C(_s32(5, 1, 3, 3))],
       {"group": 5, "strides": [2, 2], "pads": [1, 0, 0, 1]})
_sweep("Conv", "dw3x3_dil2", [_s32(1, 4, 9, 11), C(_s32(4, 1, 3, 3))], {"group": 4, "dilations": [2, 2],
                                                                         "pads": [2, 2, 2, 2]})
_sweep("Conv", "dw3x3_mult2", [_s32(1, 3, 7, 7), C(_s32(6, 1, 3, 3))], {"group": 3, "pads": [1, 1, 1, 1]})
_sweep("Conv", "dw5x5_s1", [_s32(1, 6, 11, 13), C(_s32(6, 1, 5, 5)), C(_s32(6))], {"group": 6, "pads": [2] * 4})
_sweep("Conv", "dw3x3_s2_same_upper", [_s32(1, 7, 10, 13), C(_s32(7, 1, 3, 3))],
       {"group": 7, "strides": [2, 2], "auto_pad": "SAME_UPPER"})
_sweep("Conv", "dw3x3_s1_relu_batch3", [_s32(3, 5, 6, 7), C(_s32(5, 1, 3, 3)), C(_s32(5))],
       {"group": 5, "pads": [1] * 4, "activation": "Relu"})
# dense conv: GEMM tile edges in output channels (M) and pixels (N), K from Cin*kh*kw
for _cin, _cout, _k, _hw, _s, _p, _d, _act in [
        (1, 1, 1, (1, 1), 1, 0, 1, None), (2, 3, 1, (3, 5), 1, 0, 1, "Relu"), (7, 5, 1, (4, 4), 1, 0, 1, None),
        (16, 9, 1, (5, 3), 2, 0, 1, None), (3, 4, 3, (5, 5), 1, 1, 1, None), (3, 8, 3, (7, 6), 2, 1, 1, "Relu"),
        (5, 17, 3, (6, 9), 1, 1, 1, "relu6"), (4, 33, 3, (3, 11), 1, 0, 1, None), (2, 7, 5, (9, 9), 2, 2, 1, None),
        (3, 12, 3, (11, 10), 1, 2, 2, None), (8, 13, 3, (9, 8), 2, 1, 2, "Relu"), (1, 16, 7, (13, 13), 2, 3, 1, None),
        (9, 31, 1, (1, 1), 1, 0, 1, None), (6, 3, 3, (2, 2), 1, 1, 1, None), (4, 24, 3, (8, 8), 1, 1, 1, "hswish")]:
    _attrs = {"strides": [_s, _s], "pads": [_p] * 4, "dilations": [_d, _d]}
    if _act == "relu6":
        _attrs.update(_RELU6)
    elif _act == "hswish":
        _attrs["activation"] = "HardSwish"
    elif _act:
        _attrs["activation"] = _act
    _sweep("Conv", f"k{_k}_ci{_cin}_co{_cout}_{_hw[0]}x{_hw[1]}_s{_s}_p{_p}_d{_d}_{_act}",
           [_s32(1, _cin, *_hw), C(_s32(_cout, _cin, _k, _k)), C(_s32(_cout))], _attrs)
_sweep("Conv", "group4_3x3", [_s32(1, 8, 7, 9), C(_s32(12, 2, 3, 3)), C(_s32(12))], {"group": 4, "pads": [1] * 4})
_sweep("Conv", "group2_1x1_batch2", [_s32(2, 6, 5, 5), C(_s32(10, 3, 1, 1))], {"group": 2})
_sweep("Conv", "rect_kernel_3x1", [_s32(1, 4, 9, 7), C(_s32(6, 4, 3, 1))], {"pads": [1, 0, 1, 0]})
_sweep("Conv", "asym_stride_2x1", [_s32(1, 3, 10, 9), C(_s32(5, 3, 3, 3))], {"strides": [2, 1], "pads": [1, 1, 1, 1]})
_sweep("Conv", "same_lower_s2", [_s32(1, 3, 10, 11), C(_s32(4, 3, 3, 3))], {"strides": [2, 2], "auto_pad": "SAME_LOWER"})
_sweep("Conv", "1x1_batch3", [_s32(3, 5, 3, 7), C(_s32(6, 5, 1, 1)), C(_s32(6))])
# Gemm / MatMul around micro-tile sizes
for _m, _k, _n in [(1, 1, 1), (1, 3, 5), (2, 5, 7), (3, 7, 4), (4, 8, 8), (5, 9, 16), (7, 16, 17), (8, 17, 9),
                   (9, 31, 33), (13, 33, 12), (16, 2, 31), (17, 64, 24)]:
    _sweep("Gemm", f"transB_{_m}x{_k}x{_n}", [_s32(_m, _k), C(_s32(_n, _k)), C(_s32(_n))], {"transB": 1})
    _sweep("MatMul", f"constB_{_m}x{_k}x{_n}", [_s32(_m, _k), C(_s32(_k, _n))])
    _sweep("MatMul", f"dyn_{_m}x{_k}x{_n}", [_s32(2, _m, _k), _s32(_k, _n)])
_sweep("Gemm", "noTransB_bias_row", [_s32(6, 10), C(_s32(10, 7)), C(_s32(1, 7))], {"alpha": 1.5, "beta": 0.5})
_sweep("Gemm", "relu_bias_scalar", [_s32(3, 9), C(_s32(9, 5)), C(_s32(1))], {"activation": "Relu"})
_sweep("MatMul", "dyn_bcast_batch", [_s32(3, 1, 5, 6), _s32(1, 2, 6, 7)])
_sweep("MatMul", "dyn_vec_vec", [_s32(9), _s32(9)])
# pooling
for _h, _w in [(1, 1), (2, 3), (5, 5), (7, 9), (8, 17), (13, 6)]:
    for _k, _s, _p in [(2, 2, 0), (3, 1, 1), (3, 2, 1), (3, 2, 0)]:
        if _h + 2 * _p < _k or _w + 2 * _p < _k:
            continue
        _pa = {"kernel_shape": [_k, _k], "strides": [_s, _s], "pads": [_p] * 4}
        _sweep("MaxPool", f"k{_k}s{_s}p{_p}_{_h}x{_w}", [_s32(1, 3, _h, _w)], _pa)
        _sweep("AveragePool", f"k{_k}s{_s}p{_p}_{_h}x{_w}", [_s32(1, 2, _h, _w)], _pa)
_sweep("MaxPool", "ceil_k3s2_10x7", [_s32(1, 2, 10, 7)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
_sweep("AveragePool", "ceil_pad_exclude", [_s32(1, 2, 10, 7)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                                 "pads": [1, 1, 1, 1], "ceil_mode": 1})
_sweep("AveragePool", "include_pad_s2", [_s32(1, 3, 7, 8)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                             "pads": [1, 0, 1, 1], "count_include_pad": 1})
_sweep("MaxPool", "rect_k2x3", [_s32(2, 3, 7, 8)], {"kernel_shape": [2, 3], "strides": [1, 2], "pads": [0, 1, 1, 0]})
_sweep("MaxPool", "dilated", [_s32(1, 2, 9, 9)], {"kernel_shape": [2, 2], "dilations": [2, 2]})
for _h, _w in [(1, 1), (1, 5), (3, 3), (7, 7), (9, 13)]:
    _sweep("GlobalAveragePool", f"{_h}x{_w}", [_s32(2, 5, _h, _w)])
# element-wise: broadcast patterns
_PATTERNS = [("same_odd", (3, 13), (3, 13)), ("scalar_rhs", (2, 17), ()), ("scalar_lhs", (), (2, 17)),
             ("channel", (2, 5, 3, 7), (1, 5, 1, 1)), ("channel_lhs", (5, 1, 1), (2, 5, 3, 3)),
             ("row", (4, 9), (9,)), ("col", (4, 9), (4, 1)), ("outer", (7, 1), (1, 9)),
             ("rank_diff", (3,), (2, 4, 3)), ("both_bcast", (2, 1, 5), (1, 3, 1)), ("one_elem", (1,), (1, 1, 1)),
             ("len1", (1,), (1,)), ("len4k1", (4101,), (4101,)), ("mid", (2, 3, 5), (2, 1, 5))]
for _op in ["Add", "Sub", "Mul", "Div", "Max", "Min"]:
    for _name, _a, _b in _PATTERNS:
        _lo = 0.5 if _op == "Div" else -2.0
        _sweep(_op, _name, [_s32(*_a), _s32(*_b, lo=_lo, hi=2.0)])
_sweep("Add", "const_channel", [_s32(1, 6, 4, 5), C(_s32(6, 1, 1))])
_sweep("Mul", "const_scalar", [_s32(3, 11), C(np.float32(-1.5))])
_sweep("Sum", "two_bcast", [_s32(2, 3, 5), _s32(3, 1)])
# activations: lengths 1..17 and a long one (vector body + tails)
for _n in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1027]:
    _sweep("Relu", f"n{_n}", [_s32(_n)])
    _sweep("Sigmoid", f"n{_n}", [_s32(_n, lo=-20, hi=20)])
    _sweep("Tanh", f"n{_n}", [_s32(_n, lo=-8, hi=8)])
    _sweep("HardSwish", f"n{_n}", [_s32(_n, lo=-5, hi=5)])
_sweep("Sigmoid", "extremes", [np.array([-100, -88, -87, -20, -1e-3, 0, 1e-3, 20, 87, 88, 100], np.float32)])
_sweep("Tanh", "extremes", [np.array([-100, -10, -9, -5, -1e-4, 0, 1e-4, 5, 9, 10, 100], np.float32)])
_sweep("HardSigmoid", "n13", [_s32(13, lo=-4, hi=4)], {"alpha": 0.2, "beta": 0.5})
_sweep("LeakyRelu", "n13", [_s32(13)], {"alpha": 0.1})
_sweep("Clip", "n13", [_s32(13), C(np.float32(-1.0)), C(np.float32(1.0))])
_sweep("Clip", "min_only_n9", [_s32(9), C(np.float32(0.0))])
# softmax: short and odd reduction axes, inner axes
for _n in [1, 2, 3, 4, 5, 7, 8, 9, 17, 33]:
    _sweep("Softmax", f"last_{_n}", [_s32(3, _n, lo=-10, hi=10)])
    _sweep("LogSoftmax", f"last_{_n}", [_s32(2, _n, lo=-10, hi=10)])
_sweep("Softmax", "axis1_inner5", [_s32(2, 7, 5)], {"axis": 1})
_sweep("Softmax", "axis0", [_s32(6, 3)], {"axis": 0})
_sweep("Softmax", "large_values", [_s32(2, 9, lo=50, hi=90)])
# larger shapes: several GEMM K/N blocks, fused activations on the depthwise path,
# non-finite values (NaN propagation, -inf logits)
_sweep("Conv", "3x3_k576_co67", [_s32(1, 64, 15, 17), C(_s32(67, 64, 3, 3)), C(_s32(67))], {"pads": [1] * 4})
_sweep("Conv", "1x1_k300_co129", [_s32(1, 300, 11, 13), C(_s32(129, 300, 1, 1))])
_sweep("Conv", "dw3x3_sigmoid", [_s32(1, 9, 10, 11), C(_s32(9, 1, 3, 3)), C(_s32(9))],
       {"group": 9, "pads": [1] * 4, "activation": "Sigmoid"})
_sweep("Conv", "dw3x3_s2_tanh", [_s32(1, 9, 10, 11), C(_s32(9, 1, 3, 3))],
       {"group": 9, "strides": [2, 2], "pads": [1] * 4, "activation": "Tanh"})
_sweep("Conv", "dw3x3_leaky", [_s32(1, 5, 6, 19), C(_s32(5, 1, 3, 3))],
       {"group": 5, "pads": [1] * 4, "activation": "LeakyRelu", "activation_params": [0.1]})
_sweep("Conv", "3x3_hardsigmoid", [_s32(1, 5, 6, 19), C(_s32(7, 5, 3, 3))],
       {"pads": [1] * 4, "activation": "HardSigmoid", "activation_params": [0.2, 0.5]})
_sweep("Gemm", "67x300x129", [_s32(67, 300), C(_s32(300, 129)), C(_s32(129))])
_sweep("Gemm", "transB_5x513x1001", [_s32(5, 513), C(_s32(1001, 513)), C(_s32(1001))], {"transB": 1})
_sweep("MatMul", "dyn_3x29x257x71", [_s32(3, 29, 257), _s32(3, 257, 71)])
_sweep("MatMul", "dyn_k1", [_s32(7, 1), _s32(1, 9)])
_sweep("MaxPool", "k3s2p1_17x57x59", [_s32(1, 17, 57, 59)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                             "pads": [1] * 4})
_sweep("AveragePool", "k5s3p2", [_s32(1, 3, 17, 19)], {"kernel_shape": [5, 5], "strides": [3, 3], "pads": [2] * 4})
_sweep("Add", "channel_33x17x19", [_s32(2, 33, 17, 19), _s32(33, 1, 1)])
_sweep("Div", "inner_bcast", [_s32(3, 7, 1), _s32(1, 7, 9, lo=0.5)])
_sweep("GlobalAveragePool", "1280x7x7", [_s32(1, 1280, 7, 7)])
_sweep("Softmax", "axis2_of4", [_s32(2, 3, 19, 5)], {"axis": 2})
_sweep("Softmax", "neg_inf", [np.array([[-np.inf, 0, 1, 2, -np.inf], [1, 1, 1, 1, 1]], np.float32)])
_sweep("Relu", "non_finite", [np.array([np.nan, -1, 1, np.inf, -np.inf, -0.0, 3, np.nan, 5], np.float32)])
_sweep("Max", "nan", [np.array([np.nan, 1, 2, 3, 4, 5, np.nan, 1, 2], np.float32),
                      np.array([0, np.nan, 2, 3, 4, 5, 6, 7, np.nan], np.float32)])


# ---- Scatter, matrix-building, Einsum, GridSample, Shrink (tests/test_ops_extra.py) -------
# Indices are graph inputs (read at run time), negative ones included; odd sizes.
_x = np.random.default_rng(5)
_nd_idx = np.array([[0, -1], [2, 1], [-3, 4]], np.int64)  # into (3, 5, 7): rows of 7
case("ScatterND", "none_neg", [f32(3, 5, 7), _nd_idx, f32(3, 7)])
case("ScatterND", "add_dup", [f32(3, 5, 7), np.array([[1], [-2], [1]], np.int64), f32(3, 5, 7)],
     {"reduction": "add"})
case("ScatterND", "mul_elem", [f32(3, 5), np.array([[0, 0], [2, -1], [0, 0]], np.int64), f32(3)],
     {"reduction": "mul"})
case("ScatterND", "max_int32_idx", [f32(4, 3, 5), np.array([[[3], [0]], [[-1], [1]]], np.int32), f32(2, 2, 3, 5)],
     {"reduction": "max"})
case("ScatterND", "min", [f32(3, 5, 7), _nd_idx, f32(3, 7)], {"reduction": "min"})
case("ScatterND", "int64_add", [np.arange(15, dtype=np.int64).reshape(3, 5), np.array([[1], [1]], np.int64),
                                np.ones((2, 5), np.int64)], {"reduction": "add"})
case("ScatterND", "k0_whole", [f32(2, 3), np.zeros((1, 0), np.int64), f32(1, 2, 3)])
_se_idx = _x.integers(-5, 5, (3, 4, 2))
case("ScatterElements", "axis1_neg", [f32(3, 5, 2), _se_idx, f32(3, 4, 2)], {"axis": 1})
for _red in ("add", "mul", "max", "min"):
    case("ScatterElements", f"{_red}_dup", [f32(3, 5, 2), _se_idx, f32(3, 4, 2)],
         {"axis": -2, "reduction": _red})
case("ScatterElements", "axis0_small_idx", [f32(4, 7), _x.integers(-4, 4, (2, 3)).astype(np.int32), f32(2, 3)])
case("ScatterElements", "int64_data", [np.arange(10, dtype=np.int64).reshape(2, 5), np.array([[4, 0]], np.int64),
                                       np.array([[-1, -2]], np.int64)], {"axis": 1, "reduction": "add"})
for _k in (-2, 0, 3, 9):
    case("Trilu", f"upper_k{_k}", [f32(2, 3, 5, 7), C(i64(_k))])
    case("Trilu", f"lower_k{_k}", [f32(5, 3), np.array(_k, np.int64)], {"upper": 0})
case("Trilu", "int64_no_k", [np.arange(1, 22, dtype=np.int64).reshape(3, 7)], {"upper": 0})
case("OneHot", "last_axis_neg_oor", [np.array([[0, -1, 4], [7, -9, 2]], np.int64), C(np.float32(5)),
                                     np.array([-1, 3], np.float32)])
case("OneHot", "axis0_float_idx", [np.array([1.7, -2.2, 0.0], np.float32), C(np.array([4], np.int64)),
                                   np.array([0, 1], np.int32)], {"axis": 0})
case("OneHot", "axis1_3d", [_x.integers(-3, 3, (2, 3)).astype(np.int32), C(np.int32(3)),
                            np.array([2.5, -1.5], np.float32)], {"axis": -2})
for _eq, _ins in [("bij,bjk->bik", [f32(2, 3, 5), f32(2, 5, 7)]), ("...ii->...i", [f32(2, 3, 4, 4)]),
                  ("ij,jk", [f32(3, 5), f32(5, 2)]), ("ij,jk,kl->il", [f32(3, 4), f32(4, 5), f32(5, 2)]),
                  ("...ij,...jk->...ik", [f32(2, 1, 3, 4), f32(5, 4, 2)]), ("ij->", [f32(3, 7)]),
                  ("i,j->ij", [f32(5), f32(3)]), ("ji", [f32(3, 5)]), ("iij->j", [f32(3, 3, 5)]),
                  ("bhqd,bhkd->bhqk", [f32(1, 2, 3, 8), f32(1, 2, 5, 8)])]:
    case("Einsum", _eq.replace(",", "_").replace("->", "_to_").replace("...", "E"), _ins, {"equation": _eq},
         rtol=1e-4, atol=1e-5)
case("Einsum", "int64_matmul", [np.arange(6, dtype=np.int64).reshape(2, 3), np.arange(12, dtype=np.int64).reshape(3, 4)],
     {"equation": "ij,jk->ik"})
for _mode in ("linear", "nearest", "cubic"):
    for _pad in ("zeros", "border", "reflection"):
        for _al in (0, 1):
            case("GridSample", f"{_mode}_{_pad}_a{_al}", [f32(2, 3, 5, 7), f32(2, 4, 6, 2, lo=-1.4, hi=1.4)],
                 {"mode": _mode, "padding_mode": _pad, "align_corners": _al}, rtol=1e-4, atol=1e-5)
case("GridSample", "volumetric_linear", [f32(1, 2, 3, 4, 5), f32(1, 2, 3, 4, 3, lo=-1.2, hi=1.2)],
     {"align_corners": 1}, rtol=1e-4, atol=1e-5)
case("GridSample", "volumetric_nearest_reflect", [f32(1, 2, 3, 4, 5), f32(1, 2, 3, 4, 3, lo=-1.5, hi=1.5)],
     {"mode": "nearest", "padding_mode": "reflection"})
case("GridSample", "one_d_cubic", [f32(2, 3, 9), f32(2, 5, 1, lo=-1.3, hi=1.3)], {"mode": "cubic"},
     rtol=1e-4, atol=1e-5)
case("Shrink", "default", [f32(3, 13)])
case("Shrink", "soft", [f32(3, 13)], {"lambd": 1.0, "bias": 1.0})
case("Shrink", "int32", [np.arange(-7, 8, dtype=np.int32)], {"lambd": 2.0, "bias": 1.5})
case("EyeLike", "k1", [f32(4, 7)], {"k": 1})
case("EyeLike", "k_neg_int64", [f32(5, 3)], {"k": -2, "dtype": 7})
case("EyeLike", "k_beyond", [np.zeros((3, 3), np.int32)], {"k": 4})


# NonMaxSuppression: a data-dependent row count (planned at the bound, shrunk after run).
def _boxes(n, b):
    c = _x.uniform(0, 1, (n, b, 2)).astype(np.float32)
    s = _x.uniform(0.1, 0.5, (n, b, 2)).astype(np.float32)
    return np.concatenate([c, c + s], axis=-1)


_nb, _ns = _boxes(2, 9), _x.uniform(0, 1, (2, 3, 9)).astype(np.float32)
case("NonMaxSuppression", "two_batches", [_nb, _ns, C(i64(4)), C(np.array([0.3], np.float32)),
                                          C(np.array([0.2], np.float32))])
case("NonMaxSuppression", "inputs_at_run_time", [_nb, _ns, np.array([9], np.int64), np.array([0.5], np.float32)])
case("NonMaxSuppression", "flipped_center", [_nb[..., ::-1].copy(), _ns, C(i64(3)), C(np.array([0.1], np.float32))],
     {"center_point_box": 1})
case("NonMaxSuppression", "none_selected", [_nb, _ns, C(i64(5)), C(np.array([0.5], np.float32)),
                                            C(np.array([2.0], np.float32))])
case("NonMaxSuppression", "no_limit_given", [_nb, _ns])
