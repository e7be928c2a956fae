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


# ---- ZERO_CASES: zero-size inputs and outputs (docs/runtime.md, "Empty tensors") --------
# A zero-element output is an empty tensor (no kernel reads or writes anything); a
# zero-element input of a reduction gives the reduction's identity, as the numpy
# reference does. Derived from CASES and SWEEP_CASES: each graph input (and float
# constant) in turn gets a 0 in each dim, and each dim position gets a 0 in every input
# that has the same size there; variants the numpy reference or shape inference refuse
# (broadcast mismatches...) are left out. Plus hand-written cases (K = 0 GEMMs, empty
# broadcasts as finding 1 of issue 7 had them, empty concat parts, empty reduce axes).
# Same tuple layout as CASES; run on every instruction set by
# tests/test_runtime_zero_size.py and under qemu by tests/test_runtime_aarch64.py.
ZERO_CASES = []
_zrng = np.random.default_rng(17)


def _z32(*shape, lo=-2.0, hi=2.0):
    return _zrng.uniform(lo, hi, shape).astype(np.float32)


def _empty_like(a, d):
    shape = list(np.shape(a))
    shape[d] = 0
    return np.zeros(shape, dtype=np.asarray(a).dtype)


# Conv/ConvTranspose weights: kernel dims of 0 are refused by the runtime (kernel sizes
# must be >= 1), so only their channel dims are zeroed.
_KERNEL_W = ("Conv", "ConvTranspose")


def _zero_variants(params):
    """(suffix, inputs) pairs: one input's dim set to 0, or one dim position in every input."""
    out, seen = [], set()
    for p in params:
        op, variant, inputs = p.values[0], p.values[1], p.values[2]
        def zeroable(item):
            if item is None or (isinstance(item, tuple) and item[0] == "absent"):
                return None
            arr = item[1] if isinstance(item, tuple) else item
            arr = np.asarray(arr)
            if isinstance(item, tuple) and arr.dtype.kind != "f":  # int constants are parameters
                return None
            return arr if arr.ndim >= 1 else None
        arrs = [zeroable(item) for item in inputs]

        def put(k, new):
            item = inputs[k]
            return ("const", new) if isinstance(item, tuple) else new
        for k, a in enumerate(arrs):
            if a is None:
                continue
            for d in range(a.ndim):
                if a.shape[d] == 0 or (op in _KERNEL_W and k == 1 and d >= 2):
                    continue
                ins = list(inputs)
                ins[k] = put(k, _empty_like(a, d))
                out.append((op, f"{variant}~in{k}d{d}", ins, p, (op, k, d, a.ndim)))
        first = next((a for a in arrs if a is not None), None)
        if first is not None:
            for d in range(1, first.ndim + 1):  # right-aligned position -d
                ins, n = list(inputs), 0
                for k, a in enumerate(arrs):
                    if op in _KERNEL_W and k == 1 and a.ndim - d >= 2:
                        continue
                    if a is not None and a.ndim >= d and a.shape[-d] == first.shape[-d] and a.shape[-d] > 0:
                        ins[k] = put(k, _empty_like(a, a.ndim - d))
                        n += 1
                if n > 1:
                    out.append((op, f"{variant}~all_d-{d}", ins, p, (op, "all", d, n)))
    # One variant per (op, input, dim, rank): the sweeps repeat shapes that differ only in size.
    for op, vid, ins, p, sig in out:
        if (op, vid) in seen or sig in seen:
            continue
        seen.update(((op, vid), sig))
        yield op, vid, ins, p


def _zcase(op, variant, inputs, attrs=None, n_out=1, rtol=1e-4, atol=1e-5, required=False):
    """required: the case must stay (an issue's finding); else it is left out when the
    reference's shape rules refuse it (they may forbid a 0 where the op cannot take one)."""
    if not required and not _reference_accepts(op, inputs, attrs or {}, n_out):
        return
    ZERO_CASES.append(pytest.param(op, variant, inputs, attrs or {}, n_out, rtol, atol, id=f"{op}-{variant}"))


def _reference_accepts(op, inputs, attrs, n_out) -> bool:
    import warnings

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            build(op, inputs, attrs, n_out)
    except Exception:  # the reference or shape inference refuses this variant
        return False
    return True


for _op, _vid, _ins, _p in _zero_variants(CASES + SWEEP_CASES):
    _attrs, _n_out, _rtol, _atol = _p.values[3], _p.values[4], _p.values[5], _p.values[6]
    if _op in REG and _reference_accepts(_op, _ins, _attrs, _n_out):
        _zcase(_op, _vid, _ins, _attrs, _n_out, _rtol, 1e-4 if _atol is None else _atol)

# finding 1 of issue 7: empty broadcast outputs (heap corruption in the AVX2/AVX-512 kernels)
for _op in ["Add", "Sub", "Mul", "Div", "Max", "Min"]:
    _zcase(_op, "x4x0_const1x1", [np.zeros((4, 0), np.float32), C(np.ones((1, 1), np.float32))], required=True)
    _zcase(_op, "const0x1000_x1x1", [C(np.zeros((0, 1000), np.float32)), _z32(1, 1)], required=True)
    _zcase(_op, "x0x1000_x1x1", [np.zeros((0, 1000), np.float32), _z32(1, 1, lo=0.5)], required=True)
    _zcase(_op, "x2x0x3_x1x1x3", [np.zeros((2, 0, 3), np.float32), _z32(1, 1, 3, lo=0.5)], required=True)
    _zcase(_op, "x3x1_x0", [_z32(3, 1), np.zeros((0,), np.float32)], required=True)
# finding 2: K = 0 GEMMs give zeros (or the bias / C), never stale memory
_zcase("MatMul", "k0_constB", [_z32(2, 0), C(np.zeros((0, 3), np.float32))], required=True)
_zcase("MatMul", "k0_dynB", [_z32(2, 0), np.zeros((0, 3), np.float32)], required=True)
_zcase("MatMul", "k0_batched", [_z32(2, 5, 0), np.zeros((2, 0, 7), np.float32)])
_zcase("MatMul", "k0_3d_constB", [_z32(2, 5, 0), C(np.zeros((0, 17), np.float32))])
_zcase("MatMul", "k0_relu", [_z32(4, 0), C(np.zeros((0, 33), np.float32))], {"activation": "Relu"})
_zcase("Gemm", "k0_bias", [_z32(2, 0), C(np.zeros((0, 3), np.float32)), C(_z32(3))], required=True)
_zcase("Gemm", "k0_transB_bias", [_z32(7, 0), C(np.zeros((19, 0), np.float32)), C(_z32(19))],
       {"transB": 1, "alpha": 2.0, "beta": 0.5})
_zcase("Gemm", "k0_matrix_C", [_z32(3, 0), C(np.zeros((0, 5), np.float32)), C(_z32(3, 5))])
_zcase("Gemm", "k0_bias_clip", [_z32(9, 0), C(np.zeros((0, 17), np.float32)), C(_z32(17, lo=-8, hi=8))],
       {"activation": "Clip", "activation_params": [-1.0, 1.0]})
_zcase("Gemm", "m0", [np.zeros((0, 5), np.float32), C(_z32(5, 3)), C(_z32(3))])
_zcase("Gemm", "n0", [_z32(4, 5), C(np.zeros((5, 0), np.float32))])
# Conv with zero input channels (K = 0 of im2col / 1x1): output = bias
_zcase("Conv", "cin0_3x3_bias", [np.zeros((1, 0, 5, 6), np.float32), C(np.zeros((4, 0, 3, 3), np.float32)),
                                  C(_z32(4))], {"pads": [1, 1, 1, 1]})
_zcase("Conv", "cin0_1x1_bias_relu", [np.zeros((2, 0, 3, 3), np.float32), C(np.zeros((5, 0, 1, 1), np.float32)),
                                       C(_z32(5))], {"activation": "Relu"})
_zcase("Conv", "cin0_no_bias", [np.zeros((1, 0, 4, 4), np.float32), C(np.zeros((3, 0, 3, 3), np.float32))])
_zcase("Conv", "batch0_dw", [np.zeros((0, 4, 7, 7), np.float32), C(_z32(4, 1, 3, 3))], {"group": 4, "pads": [1] * 4})
_zcase("Conv", "cout0", [_z32(1, 3, 5, 5), C(np.zeros((0, 3, 3, 3), np.float32))])
# reductions over empty axes: the identity (0, 1, -inf/+inf ...) as the reference gives it
for _op in ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
            "ReduceSumSquare", "ReduceLogSumExp"]:
    _zcase(_op, "empty_axis", [np.zeros((3, 0, 4), np.float32), C(i64(1))])
    _zcase(_op, "empty_all", [np.zeros((2, 0), np.float32)], {"keepdims": 0})
_zcase("GlobalAveragePool", "batch0", [np.zeros((0, 3, 5, 4), np.float32)])
_zcase("GlobalMaxPool", "batch0", [np.zeros((0, 3, 4, 5), np.float32)])
_zcase("Softmax", "len0", [np.zeros((3, 0), np.float32)])
_zcase("Softmax", "outer0_axis0", [np.zeros((0, 5), np.float32)], {"axis": 0})
_zcase("LayerNormalization", "rows0", [np.zeros((0, 7), np.float32), C(_z32(7)), C(_z32(7))])
_zcase("Concat", "empty_parts", [_z32(2, 3), np.zeros((2, 0), np.float32), _z32(2, 1), C(np.zeros((2, 0), np.float32))],
       {"axis": 1})
_zcase("Concat", "all_empty", [np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)], {"axis": 0})
_zcase("CumSum", "len0", [np.zeros((3, 0), np.float32), C(np.array(1, np.int64))])
_zcase("Einsum", "k0_contract", [_z32(3, 0), np.zeros((0, 4), np.float32)], {"equation": "ij,jk->ik"})
_zcase("TopK", "k0", [_z32(3, 9), C(i64(0))], n_out=2)
_zcase("Gather", "empty_indices", [_z32(3, 5), C(np.zeros((0,), np.int64))], {"axis": 1})
_zcase("Tile", "rep0", [_z32(2, 3), C(i64(0, 3))])
_zcase("Expand", "to0", [_z32(3, 1), C(i64(0, 3, 4))])
_zcase("Pad", "empty_in_const", [np.zeros((0, 3), np.float32), C(i64(1, 0, 2, 0)), C(np.float32(1.5))])
_zcase("Resize", "empty_batch", [np.zeros((0, 2, 3, 4), np.float32), ("absent", None),
                                 C(np.array([1, 1, 2, 2], np.float32))], {"mode": "linear"})
_zcase("MaxPool", "batch0", [np.zeros((0, 3, 7, 7), np.float32)], {"kernel_shape": [3, 3], "strides": [2, 2]})
_zcase("AveragePool", "batch0", [np.zeros((0, 2, 7, 7), np.float32)], {"kernel_shape": [3, 3], "pads": [1] * 4})
_zcase("Split", "part0", [_z32(2, 7), C(i64(0, 7))], {"axis": 1}, n_out=2)
_assert_unique = [p.id for p in ZERO_CASES]
assert len(set(_assert_unique)) == len(_assert_unique), "duplicate zero-size case ids"


# ---- NAN_CASES: NaN and +-inf inputs (docs/runtime.md, "NaN and infinities") ------------
# Every kernel propagates NaN as the numpy reference does (NaN wins max/min, pooling
# windows, reductions and arg-max; activations and clamps keep it). Derived from CASES
# and a spread of SWEEP_CASES: the first float graph input gets NaN at a few positions
# ("nan") or +-inf ("inf"); plus hand-written cases sized so the vector bodies and
# tails of the optimized kernels see the non-finite lanes.
NAN_CASES = []
_NAN_SKIP = {"TopK", "NonMaxSuppression", "Cast", "GridSample", "OneHot", "Resize", "Mod"}


def _with_non_finite(a, kind):
    a = np.array(a, dtype=a.dtype, copy=True)
    flat = a.reshape(-1)
    n = flat.size
    if kind == "nan":
        for i in sorted({0, n // 2, n - 1, (7 * n) // 11}):
            flat[i] = np.nan
    else:
        for j, i in enumerate(sorted({1 % n, n // 3, (2 * n) // 3, n - 2 if n > 2 else 0})):
            flat[i] = np.inf if j % 2 == 0 else -np.inf
    return a


def _ncase(op, variant, inputs, attrs=None, n_out=1, rtol=1e-4, atol=1e-5):
    NAN_CASES.append(pytest.param(op, variant, inputs, attrs or {}, n_out, rtol, atol, id=f"{op}-{variant}"))


def _nan_sources():
    by_op = {}
    for p in SWEEP_CASES:
        by_op.setdefault(p.values[0], []).append(p)
    picked = []
    for op, ps in by_op.items():
        step = max(1, len(ps) // 6)
        picked += ps[::step][:6]
    return list(CASES) + picked


_nan_seen = set()
for _p in _nan_sources():
    _op, _variant, _ins, _attrs, _n_out, _rtol, _atol = _p.values
    if _op in _NAN_SKIP or _op not in REG:
        continue
    _k = next((k for k, it in enumerate(_ins) if not isinstance(it, tuple) and np.asarray(it).dtype == np.float32
               and np.asarray(it).size > 0), None)
    if _k is None:
        continue
    for _kind in ("nan", "inf"):
        _vid = f"{_variant}~{_kind}"
        if (_op, _vid) in _nan_seen:
            continue
        _nan_seen.add((_op, _vid))
        _new = list(_ins)
        _new[_k] = _with_non_finite(np.asarray(_ins[_k]), _kind)
        if _reference_accepts(_op, _new, _attrs, _n_out):
            _ncase(_op, _vid, _new, _attrs, _n_out, _rtol, 1e-4 if _atol is None else _atol)

_nrng = np.random.default_rng(23)


def _nvec(n, kinds=(np.nan, np.inf, -np.inf), every=5, lo=-3.0, hi=3.0):
    a = _nrng.uniform(lo, hi, n).astype(np.float32)
    for j, i in enumerate(range(2, n, every)):
        a[i] = kinds[j % len(kinds)]
    return a


# activations and clamps, vector body + tail (37 = 2 x 16 + 5)
for _op, _attrs in [("Relu", {}), ("LeakyRelu", {"alpha": 0.1}), ("Sigmoid", {}), ("Tanh", {}), ("HardSwish", {}),
                    ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}), ("Softplus", {}), ("Elu", {})]:
    _ncase(_op, "nan_inf_n37", [_nvec(37)], _attrs)
    _ncase(_op, "nan_n37", [_nvec(37, (np.nan,), every=3)], _attrs)
_ncase("Clip", "nan_inf_n37", [_nvec(37), C(np.float32(-1.0)), C(np.float32(1.0))])
# binary: NaN on either side, in the vector body and in the tail; Max/Min keep NaN
for _op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"]:
    _ncase(_op, "nan_lhs_n37", [_nvec(37, (np.nan,), every=4), _nvec(37, (1.0,), every=50)])
    _ncase(_op, "nan_rhs_n37", [_nvec(37, (1.0,), every=50), _nvec(37, (np.nan,), every=4)])
    _ncase(_op, "inf_both_bcast", [_nvec(2 * 3 * 19).reshape(2, 3, 19), _nvec(19, (np.inf, np.nan, -np.inf), every=6)])
    _ncase(_op, "nan_scalar_rhs", [_nvec(33, (1.0,), every=50), C(np.float32(np.nan))])
_ncase("Max", "three_nan", [_nvec(20, (np.nan,), every=7), _nvec(20, (np.nan,), every=6), _nvec(20, (np.nan,), every=5)])
# pooling windows (2x2 / 3x3 stride-2 vector paths, stride 1, borders)
_pool_x = _nvec(2 * 3 * 11 * 37, (np.nan, np.inf, -np.inf), every=17).reshape(2, 3, 11, 37)
for _k, _s, _p in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (3, 2, 0)]:
    _pa = {"kernel_shape": [_k, _k], "strides": [_s, _s], "pads": [_p] * 4}
    _ncase("MaxPool", f"k{_k}s{_s}p{_p}_nan", [_pool_x], _pa)
    _ncase("AveragePool", f"k{_k}s{_s}p{_p}_nan", [_pool_x], _pa)
_ncase("MaxPool", "only_nan_col0", [np.where(np.arange(9 * 40).reshape(1, 1, 9, 40) % 40 == 0, np.float32(np.nan),
                                             np.float32(1.0)).astype(np.float32)], {"kernel_shape": [3, 3]})
_ncase("GlobalAveragePool", "nan", [_pool_x])
_ncase("GlobalMaxPool", "nan", [_pool_x])
# softmax rows (vector body + tail) and strided axis; all -inf row; inf row
_sm = _nvec(3 * 37, (0.0,), every=100).reshape(3, 37)
_sm[0, 5] = np.nan
_sm[1, 33] = np.inf
_sm[2, :] = -np.inf
for _op in ["Softmax", "LogSoftmax", "Hardmax"]:
    _ncase(_op, "rows_nan_inf", [_sm])
    _ncase(_op, "axis0_nan_inf", [_sm.T.copy()], {"axis": 0})
# GEMM / conv epilogues (fused activation clamps keep NaN)
_ga = _nvec(7 * 19, (np.nan, np.inf), every=23).reshape(7, 19)
_ncase("Gemm", "nan_relu", [_ga, C(_z32(19, 33)), C(_z32(33))], {"activation": "Relu"})
_ncase("Gemm", "nan_clip_transB", [_ga, C(_z32(17, 19)), C(_z32(17))],
       {"transB": 1, "activation": "Clip", "activation_params": [0.0, 6.0]})
_ncase("MatMul", "nan_dyn", [_ga, _z32(19, 9)])
_cx = _nvec(1 * 8 * 9 * 21, (np.nan, np.inf, -np.inf), every=41).reshape(1, 8, 9, 21)
_ncase("Conv", "3x3_nan_relu6", [_cx, C(_z32(5, 8, 3, 3)), C(_z32(5))], {"pads": [1] * 4, **_RELU6})
_ncase("Conv", "1x1_nan_relu", [_cx, C(_z32(6, 8, 1, 1))], {"activation": "Relu"})
_ncase("Conv", "dw3x3_nan_relu6", [_cx, C(_z32(8, 1, 3, 3)), C(_z32(8))], {"group": 8, "pads": [1] * 4, **_RELU6})
_ncase("Conv", "dw3x3_s2_nan_leaky", [_cx, C(_z32(8, 1, 3, 3))],
       {"group": 8, "strides": [2, 2], "pads": [1] * 4, "activation": "LeakyRelu", "activation_params": [0.1]})
_ncase("Conv", "dw3x3_nan_sigmoid", [_cx, C(_z32(8, 1, 3, 3))], {"group": 8, "pads": [1] * 4, "activation": "Sigmoid"})
# reductions and arg-max/min: NaN wins
_rx = _nvec(4 * 9, (np.nan,), every=11).reshape(4, 9)
for _op in ["ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2",
            "ReduceLogSumExp", "ReduceSumSquare"]:
    _ncase(_op, "nan_axis1", [_rx, C(i64(1))])
    _ncase(_op, "inf_axis0", [_nvec(4 * 9, (np.inf, -np.inf), every=7).reshape(4, 9), C(i64(0))])
for _op in ["ArgMax", "ArgMin"]:
    _ncase(_op, "nan_axis1", [_rx], {"axis": 1})
    _ncase(_op, "inf_axis0", [_nvec(4 * 9, (np.inf, -np.inf), every=7).reshape(4, 9)], {"axis": 0})
for _op, _ins in [("BatchNormalization", [_cx, C(_z32(8)), C(_z32(8)), C(_z32(8)), C(_z32(8, lo=0.5, hi=2))]),
                  ("InstanceNormalization", [_cx, C(_z32(8)), C(_z32(8))]),
                  ("LayerNormalization", [_ga, C(_z32(19)), C(_z32(19))]),
                  ("LpNormalization", [_ga]), ("LRN", [_cx]), ("MeanVarianceNormalization", [_cx]),
                  ("PRelu", [_cx, C(_z32(8, 1, 1))]), ("CumSum", [_ga, C(np.array(1, np.int64))])]:
    _ncase(_op, "non_finite", _ins, {"size": 3} if _op == "LRN" else {})
_nan_ids = [p.id for p in NAN_CASES]
assert len(set(_nan_ids)) == len(_nan_ids), "duplicate NaN case ids"


def native_isas(dtype: str | None = "float32") -> list:
    """Instruction-set caps this machine runs (runtime.supported_isas(): the runtime's one CPU
    detection), lowest first, keeping "scalar" and the caps that have kernels of their own for
    inputs of `dtype` (input 0 and input 1 of that dtype; a cap that adds none would rerun the
    one below it; None keeps every cap)."""
    from mobconv import runtime

    caps = runtime.supported_isas()
    if dtype is None:
        return caps
    have = {k["isa"] for row in runtime.op_table() for k in row["kernels"]
            if k["dtype"] == dtype and k["dtype1"] in (dtype, "any")}
    return [c for c in caps if c == "scalar" or c in have]


def compare_outputs(where: str, got: dict, expected: list, n_out: int, rtol: float, atol: float) -> str | None:
    """None when every output matches the reference (shape, dtype, values; NaN equals NaN), else a message."""
    for k, exp in enumerate(expected[:n_out]):
        exp = np.asarray(exp)
        out = got[f"out{k}"]
        w = f"{where} output {k}"
        if out.shape != exp.shape:
            return f"{w}: shape {out.shape}, expected {exp.shape}"
        if out.dtype != exp.dtype:
            return f"{w}: dtype {out.dtype}, expected {exp.dtype}"
        if exp.dtype.kind == "f":
            bad = ~np.isclose(out, exp, rtol=rtol, atol=atol, equal_nan=True)
            # the sign of an infinity matters; isclose already checks it
        else:
            bad = out != exp
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return (f"{w}: {int(bad.sum())} of {bad.size} mismatch, first at index {idx}: "
                    f"expected {exp[idx]!r}, got {out[idx]!r}")
    return None


def check_case_on_isa(label: str, op, inputs, attrs, n_out, rtol, atol, isa, runs: int = 1):
    """Run one case on `isa` at 1 and 2 threads (`runs` times each) against the numpy
    reference; fail with op, variant, ISA, threads, shapes, first index, expected and got;
    and require bit-identical results across thread counts."""
    from mobconv import runtime
    from mobconv.formats.writer import to_bytes

    g, feeds, expected = build(op, inputs, attrs, n_out)
    data = to_bytes(g)
    shapes = [np.shape(v) for v in feeds.values()]
    results = {}
    for threads in (1, 2):
        with runtime.Interpreter(data, threads=threads, isa=isa) as it:
            for run in range(runs):
                got = it.run(feeds)
                msg = compare_outputs(f"{label} isa={isa} threads={threads} run={run} inputs {shapes}",
                                      got, expected, n_out, rtol, atol)
                if msg:
                    pytest.fail(msg)
        results[threads] = got
    for k in range(n_out):
        a, b = results[1][f"out{k}"], results[2][f"out{k}"]
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f"{label} isa={isa}: 1 and 2 threads differ"


# ---- QuantizeLinear / DequantizeLinear (tests/test_quant_linear_ops.py) -------------------
_qrng = np.random.default_rng(88)
_qx = _qrng.normal(0, 4, (2, 7, 3)).astype(np.float32)
_qx.reshape(-1)[:5] = [np.nan, np.inf, -np.inf, 0.125, -0.125]  # 0.125 / 0.05 = 2.5: a tie
case("QuantizeLinear", "int8", [_qx, C(np.float32(0.05)), C(np.int8(-3))], rtol=0, atol=0)
case("QuantizeLinear", "uint8-default", [_qx, C(np.float32(0.05))], rtol=0, atol=0)
case("QuantizeLinear", "int16-axis", [_qx, C(np.float32([0.001, 0.01, 0.1])), C(np.int16([0, -7, 300]))],
     {"axis": -1}, rtol=0, atol=0)
case("QuantizeLinear", "blocked", [_qx, C(np.full((2, 3, 3), 0.05, np.float32)), C(np.full((2, 3, 3), 9, np.uint8))],
     {"axis": 1, "block_size": 3}, rtol=0, atol=0)
case("DequantizeLinear", "int8", [np.arange(-128, 128, dtype=np.int8).reshape(4, 64), C(np.float32(0.05)),
                                  C(np.int8(-3))], rtol=0, atol=0)
case("DequantizeLinear", "int32-axis", [_qrng.integers(-(1 << 31), 1 << 31, (3, 4)).astype(np.int32),
                                        C(np.float32([1e-3, 2e-4, 3e-5, 1.0])), C(np.zeros(4, np.int32))],
     {"axis": 1}, rtol=0, atol=0)
case("DequantizeLinear", "uint8-blocked", [_qrng.integers(0, 256, (2, 7, 3)).astype(np.uint8),
                                           C(np.full((2, 3, 3), 0.05, np.float32)), C(np.full((2, 3, 3), 9, np.uint8))],
     {"axis": 1, "block_size": 3}, rtol=0, atol=0)
