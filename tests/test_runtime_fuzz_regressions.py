"""Regression cases for what the structure-aware graph fuzzer (tests/graph_fuzz.py) found
in the C++ reference kernels (issue 7; /tmp/graphfuzz_findings.md K3-K7, K9, K10, S3, S4).

Each case is one node run on every instruction set this machine has, at 1 and 2
threads, and compared with the numpy reference (mobconv/ops, the spec) with NaN equal
to NaN and infinities of the same sign:

- K3  ReduceL1/L2/SumSquare with noop_with_empty_axes=1 and no axes: |x|, |x|, x*x
      (the kernel copied x);
- K4  ArgMax/ArgMin with select_last_index=1: NaN wins and the *last* NaN is picked
      (the kernel kept the first);
- K5  MeanVarianceNormalization on constant and near-constant groups (the reference
      computed in float32, so a mean off by an ulp gave +-1 instead of 0; now both
      sides compute in float64);
- K6/K9 NaN and inf: ScatterElements max/min (NaN in the updates was dropped),
      LayerNormalization / InstanceNormalization (float32 overflow of sums and squares
      as the reference has it, epsilon=1e30), LRN with -inf/NaN in a neighbour channel;
- K10 LayerNormalization over a zero-size axis is refused by the runtime as by Python;
- S3  EyeLike of an empty input;
- S4  GridSample with NaN/inf/huge grid coordinates (UBSan: a NaN converted to
      int64): NaN gives NaN, +-inf reads padding (0, the edge; NaN for reflection);
- K7  Pad edge/reflect/wrap with pads larger than the dim and negative pads (crop
      first, then pad around the cropped part, as np.pad does);
- LpNormalization squares in float32 as the reference (1e-30 normalizes to 0), and
  Resize by `sizes` of an empty dim to 0 (refused by the runtime, accepted by Python).
"""
import numpy as np
import pytest

from mobconv.errors import MobconvError
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from runtime_cases import C, build, check_case_on_isa, i64, native_isas

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

ISAS = native_isas()
rng = np.random.default_rng(2026)
CASES = []


def f32(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def case(name, op, inputs, attrs=None, n_out=1, rtol=1e-4, atol=1e-5):
    CASES.append(pytest.param(op, inputs, attrs or {}, n_out, rtol, atol, id=name))


def sprinkle(a, values, every, start=1):
    a = a.copy()
    flat = a.reshape(-1)
    for j, i in enumerate(range(start, flat.size, every)):
        flat[i] = values[j % len(values)]
    return a


# K3: noop_with_empty_axes keeps the element-wise part of L1 / L2 / SumSquare
for _op in ("ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ReduceSum"):
    case(f"K3-{_op}-scalar_no_axes", _op, [np.array(-0.000414, np.float32)], {"noop_with_empty_axes": 1})
    case(f"K3-{_op}-empty_axes", _op, [sprinkle(f32(3, 5), [np.nan, -np.inf], 4), C(np.zeros(0, np.int64))],
         {"noop_with_empty_axes": 1, "keepdims": 0})

# K4: select_last_index picks the last NaN (and the last of tied values, -inf included)
_ax = rng.integers(-2, 3, (3, 7, 65)).astype(np.float32)
_ax[0, 2, 3] = _ax[0, 5, 3] = np.nan
_ax[1, 1, 4] = _ax[1, 6, 4] = -np.inf
_ax[1, 3, 9] = _ax[1, 4, 9] = np.inf
_ax[2, :, 7] = np.nan
for _op in ("ArgMin", "ArgMax"):
    for _last in (0, 1):
        case(f"K4-{_op}-nan_ties-axis-2-last{_last}", _op, [_ax], {"axis": -2, "keepdims": 0, "select_last_index": _last})
    case(f"K4-{_op}-nan_ties-axis2-last1", _op, [_ax], {"axis": 2, "keepdims": 1, "select_last_index": 1})

# K5: MeanVarianceNormalization, constant and near-constant groups, axes [2, 3]
_mvn = f32(3, 3, 9, 7)
_mvn[0] = np.float32(1.4341233)                                  # constant groups: 0
_mvn[1] = (100 + rng.uniform(-1e-3, 1e-3, (3, 9, 7))).astype(np.float32)  # spread of a few ulps
_mvn[2, 1] = np.float32(-0.8605950)
case("K5-MVN-axes23-constant_groups", "MeanVarianceNormalization", [_mvn], {"axes": [2, 3]})
case("K5-MVN-axes0-constant", "MeanVarianceNormalization", [np.full((64, 2), np.float32(-0.860595))], {"axes": [0]})
case("K5-MVN-axes0-constant3x15", "MeanVarianceNormalization", [np.full((3, 15), np.float32(1.4341233))], {"axes": [0]})
case("K5-MVN-huge_values", "MeanVarianceNormalization", [sprinkle(f32(2, 3, 4, 5), [1e30, -3e38, 3e38], 7)])

# K6 / K9: NaN and inf as the reference has them
_sd = sprinkle(f32(3, 4, 5), [np.nan], 17)
_su = sprinkle(f32(3, 4, 3), [np.nan, np.inf, -np.inf], 5, start=2)
_si = rng.integers(-5, 5, (3, 4, 3)).astype(np.int64)
for _red in ("max", "min", "add", "mul"):
    case(f"K6-ScatterElements-{_red}-nan", "ScatterElements", [_sd, _si, _su], {"axis": 2, "reduction": _red})
case("K6-ScatterND-max-nan", "ScatterND", [_sd, C(np.array([[0, 1], [2, 3], [0, 1]], np.int64)),
                                           sprinkle(f32(3, 5), [np.nan], 4)], {"reduction": "max"})
_ln = f32(1, 32, 32)
_ln[0, 3, 5] = np.inf
_ln[0, 7, 1] = -np.inf
_ln[0, 9, 30] = np.nan
case("K6-LayerNorm-eps1e30-inf", "LayerNormalization", [_ln, C(f32(32)), C(f32(32))], {"epsilon": 1e30}, n_out=3)
_lnh = f32(4, 6, 7)
_lnh[0, 1, 2] = _lnh[0, 3, 4] = np.float32(3e38)      # the row's sum overflows float32: NaN
_lnh[1, 2, 3] = np.float32(1e30)                       # its square overflows float32
_lnh[2, 0, 0] = np.float32(3e19)
case("K6-LayerNorm-axis1-overflow", "LayerNormalization", [_lnh, C(f32(6, 7))], {"axis": 1, "epsilon": 0.0}, n_out=3)
case("K6-LayerNorm-last-overflow", "LayerNormalization", [_lnh, C(f32(7)), C(f32(7))], n_out=3)
_in = sprinkle(f32(4, 5, 3, 7), [np.nan, np.inf, -np.inf], 23)
case("K9-InstanceNorm-eps1e30-nan_inf", "InstanceNormalization", [_in, C(f32(5)), C(f32(5))], {"epsilon": 1e30})
_inh = f32(3, 4, 2, 9)
_inh[0, 1, 0, 0] = _inh[0, 1, 1, 5] = np.float32(3e38)
_inh[1, 2, 1, 1] = np.float32(1e30)
_inh[2, 3, 0, 4] = np.float32(-3e19)
_inh[1, 0, 0, :3] = [3e38, 3e38, -3e38]             # numpy's pairwise sum overflows, the total does not
case("K9-InstanceNorm-overflow", "InstanceNormalization", [_inh, C(f32(4)), C(f32(4))])
_lnp = f32(3, 40)
_lnp[0, :3] = [3e38, 3e38, -3e38]
_lnp[1, [0, 8, 16]] = [3e38, -3e38, 3e38]
_lnp[2, 1] = np.float32(-3e38)
case("K9-LayerNorm-pairwise_overflow", "LayerNormalization", [_lnp, C(f32(40))], n_out=3)
_lrn = f32(2, 7, 3, 4)
_lrn[0, 2, 1, 1] = -np.inf
_lrn[1, 4, 2, 3] = np.nan
_lrn[1, 0, 0, 0] = np.float32(1e20)
case("K6-LRN-size1-inf", "LRN", [_lrn], {"size": 1, "alpha": 1e-7, "beta": 2.5, "bias": 0.001})
case("K6-LRN-size5-nan_neighbour", "LRN", [_lrn], {"size": 5, "bias": 2.0})
_lp = f32(3, 6)
_lp[0] = np.float32(1e-30)          # squares underflow in float32: norm 0, output 0
_lp[1, 2] = np.float32(2e19)        # a square overflows float32: norm inf
case("K9-LpNormalization-p2-float32_squares", "LpNormalization", [_lp], {"axis": 1})
case("K9-LpNormalization-p2-tiny", "LpNormalization", [np.array([1e-30], np.float32)], {"axis": 0})

# Resize by sizes of an empty dim to 0 (the shape function accepts it; the runtime refused any size)
case("Resize-sizes-empty_dim_to_0", "Resize", [np.zeros((0, 1, 4), np.float32), ("absent", None), ("absent", None),
                                               C(i64(0, 1, 16))], {"mode": "nearest"})
case("Resize-sizes-empty_batch_linear", "Resize", [np.zeros((0, 2, 3, 4), np.float32), ("absent", None),
                                                   ("absent", None), C(i64(0, 2, 6, 5))], {"mode": "linear"})

# S3: EyeLike of an empty input
case("S3-EyeLike-3x0", "EyeLike", [np.zeros((3, 0), np.float32)], {"k": 43})
case("S3-EyeLike-0x4", "EyeLike", [np.zeros((0, 4), np.float32)], {"k": -2})

# S4: GridSample with non-finite and huge coordinates, every mode and padding
_gx = f32(2, 3, 5, 6)
_gx[1, 1, 2, 3] = np.inf
_gg = f32(2, 4, 3, 2, lo=-1.3, hi=1.3)
_gg[0, 0, 0, 0] = np.nan
_gg[0, 1, 1, 1] = np.inf
_gg[1, 2, 2, 0] = -np.inf
_gg[1, 3, 0, :] = np.nan
_gg[0, 2, 1, 0] = np.float32(1e30)
_gg[0, 3, 2, 1] = np.float32(-3e38)
_gg[1, 0, 1, :] = [np.inf, np.nan]
_gg[1, 1, 1, :] = [np.float32(0.2), np.float32(0.5)]  # exact taps: weight-0 taps read X
for _mode in ("linear", "nearest", "cubic"):
    for _pad in ("zeros", "border", "reflection"):
        case(f"S4-GridSample-{_mode}-{_pad}-non_finite", "GridSample", [_gx, _gg],
             {"mode": _mode, "padding_mode": _pad, "align_corners": int(_pad == "border")})
case("S4-GridSample-cubic-border-1d", "GridSample",
     [f32(2, 2, 9), np.array([[[np.nan], [np.inf], [-np.inf], [0.3]], [[1e30], [-1e30], [np.nan], [-0.9]]],
                             np.float32)], {"mode": "cubic", "padding_mode": "border"})

# K7: Pad with pads larger than the dim and negative pads
for _mode in ("wrap", "reflect", "edge", "constant"):
    case(f"K7-Pad-{_mode}-x1x1x31", "Pad", [f32(1, 1, 31), C(i64(1, 1, 9, 2, 33, -1))], {"mode": _mode})
    case(f"K7-Pad-{_mode}-crop_then_pad", "Pad", [f32(4, 5), C(i64(-2, 13, 11, -1))], {"mode": _mode})
    case(f"K7-Pad-{_mode}-axes", "Pad", [f32(2, 3, 7), C(i64(-3, 20, 4, -2)), ("absent", None), C(i64(2, 1))],
         {"mode": _mode})

# R1: a ceil-mode window larger than the padded input gives one window (onnxruntime and the
# reference: [15,4,1,1]); the runtime refused it ("window 8 is larger than padded input 7")
case("R1-MaxPool-ceil-window_larger", "MaxPool", [f32(15, 4, 1, 7)],
     {"kernel_shape": [3, 8], "strides": [64, 7], "ceil_mode": 1})
case("R1-MaxPool-ceil-window_larger-indices", "MaxPool", [f32(15, 4, 1, 7)],
     {"kernel_shape": [3, 8], "strides": [64, 7], "ceil_mode": 1, "storage_order": 1}, n_out=2)
case("R1-AveragePool-ceil-dilated_window_larger", "AveragePool", [f32(15, 2, 9)],
     {"kernel_shape": [3], "dilations": [9], "strides": [64], "ceil_mode": 1, "count_include_pad": 1})
case("R1-AveragePool-ceil-pads-window_larger", "AveragePool", [f32(2, 3, 4, 5)],
     {"kernel_shape": [7, 3], "pads": [1, 0, 1, 0], "strides": [5, 2], "ceil_mode": 1})

# Clip with a NaN bound: every output is NaN (np.clip); AVX2/AVX-512 gave the other bound / x
_cx = sprinkle(f32(3, 37, lo=-1e30, hi=1e30), [np.nan, np.inf, -np.inf], 7)
case("Clip-min1e30-maxNaN", "Clip", [_cx, C(np.float32(1e30)), C(np.float32(np.nan))])
case("Clip-minNaN-max1", "Clip", [_cx, C(np.float32(np.nan)), C(np.float32(1.0))])
case("Clip-minNaN", "Clip", [_cx, C(np.float32(np.nan))])
case("Clip-maxNaN", "Clip", [_cx, ("absent", None), C(np.float32(np.nan))])
_gx2 = sprinkle(f32(5, 19), [np.nan, np.inf], 41)  # rows 1, 3, 4 finite
for _p in ([np.nan, 1.0], [-1.0, np.nan], [1e30, np.nan]):  # fused Clip (Gemm/Conv): scalar and vector kept y
    case(f"Clip-fused-Gemm-{_p}", "Gemm", [_gx2, C(f32(19, 7))], {"activation": "Clip", "activation_params": _p})
    case(f"Clip-fused-Conv-{_p}", "Conv", [f32(1, 3, 6, 5), C(f32(4, 3, 3, 3))],
         {"activation": "Clip", "activation_params": _p, "pads": [1, 1, 1, 1]})


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("op,inputs,attrs,n_out,rtol,atol", CASES)
def test_fuzz_finding_matches_numpy(op, inputs, attrs, n_out, rtol, atol, isa):
    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        check_case_on_isa(f"{op} {attrs}", op, inputs, attrs, n_out, rtol, atol, isa)


def test_reference_semantics_of_fixed_cases():
    """What the reference (and so the runtime) gives in the cases above, checked without
    the reference: written out by hand, so a change on both sides is noticed too."""
    import warnings

    from mobconv.ops import load_all

    reg = load_all()

    def ref(op, inputs, **attrs):
        g = Graph("r")
        names = []
        for k, a in enumerate(inputs):
            g.add_input(f"i{k}", a.dtype.name, a.shape)
            names.append(f"i{k}")
        node = g.add_node(op, names, ["y"], attrs)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return reg[op].run_reference(inputs, reg[op].resolve_attrs(node))[0]

    x = np.array([[-1.5, 2.0, -0.0]], np.float32)
    assert ref("ReduceL1", [x], noop_with_empty_axes=1).tolist() == [[1.5, 2.0, 0.0]]
    assert ref("ReduceSumSquare", [x], noop_with_empty_axes=1).tolist() == [[2.25, 4.0, 0.0]]
    a = np.array([[1.0, np.nan, 0.0, np.nan, 0.0]], np.float32)
    assert ref("ArgMin", [a], axis=1, select_last_index=1).ravel().tolist() == [3]
    assert ref("ArgMin", [a], axis=1).ravel().tolist() == [1]
    for shape, value in (((3, 15), 1.4341233), ((64, 2), -0.860595)):  # float32 means gave -0.99 / 0.998
        assert np.array_equal(ref("MeanVarianceNormalization", [np.full(shape, np.float32(value))], axes=[0]),
                              np.zeros(shape, np.float32))
    xw = np.arange(5, dtype=np.float32).reshape(1, 5)
    # crop 1 at the end (x[:4]), then wrap around those 4 values
    assert ref("Pad", [xw, np.array([0, 6, 0, -1], np.int64)], mode="wrap").ravel().tolist() == \
        [2, 3, 0, 1, 2, 3, 0, 1, 2, 3]
    img = np.arange(1, 13, dtype=np.float32).reshape(1, 1, 3, 4)
    grid = np.array([[[[np.nan, 0.1], [np.inf, 0.0], [-np.inf, 0.0], [0.0, 0.0]]]], np.float32)
    z = ref("GridSample", [img, grid], mode="cubic", padding_mode="zeros")
    assert np.isnan(z[0, 0, 0, 0]) and z[0, 0, 0, 1] == 0 and z[0, 0, 0, 2] == 0
    b = ref("GridSample", [img, grid], mode="linear", padding_mode="border", align_corners=1)
    assert np.isnan(b[0, 0, 0, 0]) and b[0, 0, 0, 1] == 8.0 and b[0, 0, 0, 2] == 5.0  # right / left edge
    r = ref("GridSample", [img, grid], mode="nearest", padding_mode="reflection")
    assert np.isnan(r[0, 0, 0, :3]).all()  # no position to reflect +-inf to


def test_layer_norm_over_an_empty_axis_is_refused_by_the_runtime():
    """K10: the numpy reference and onnxruntime refuse LayerNormalization over nothing; the
    runtime gave Mean 0. A symbolic dim lets the file through; the resize is refused."""
    g = Graph("ln_empty")
    g.add_input("x", "float32", (5, "n", 2))
    g.add_constant("s", np.ones(2, np.float32))
    g.add_node("LayerNormalization", ["x", "s"], ["y", "m", "v"], {"axis": 1})
    g.outputs = ["y", "m", "v"]
    infer_shapes(g)
    for isa in ISAS:
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            it.resize("x", [5, 3, 2])
            it.run({"x": f32(5, 3, 2)})
            with pytest.raises(MobconvError, match="must not be empty"):
                it.resize("x", [5, 0, 2])
                it.run({"x": np.zeros((5, 0, 2), np.float32)})


def test_resize_of_an_empty_dim_to_a_size_is_refused_by_the_runtime():
    """Python refuses sizes != 0 for an empty dim; so does the runtime, naming the rule."""
    g = Graph("resize_empty")
    g.add_input("x", "float32", ("n", 1, 4))
    g.add_constant("sz", i64(0, 1, 16))
    g.add_node("Resize", ["x", "", "", "sz"], ["y"], {"mode": "nearest"})
    g.outputs = ["y"]
    infer_shapes(g)
    with runtime.Interpreter(to_bytes(g)) as it:
        it.resize("x", [2, 1, 4])
        assert it.run({"x": f32(2, 1, 4)})["y"].shape == (0, 1, 16)
        it.resize("x", [0, 1, 4])
        assert it.run({"x": np.zeros((0, 1, 4), np.float32)})["y"].shape == (0, 1, 16)
    g2 = Graph("resize_empty2")
    g2.add_input("x", "float32", (2, "c", 4))
    g2.add_constant("sz", i64(2, 3, 8))
    g2.add_node("Resize", ["x", "", "", "sz"], ["y"], {"mode": "nearest"})
    g2.outputs = ["y"]
    infer_shapes(g2)
    with runtime.Interpreter(to_bytes(g2)) as it:
        with pytest.raises(MobconvError, match="cannot resize the empty dim 1"):
            it.resize("x", [2, 0, 4])
            it.run({"x": np.zeros((2, 0, 4), np.float32)})


# ---- Z1-Z5: what the reference (and onnxruntime) refuse, the runtime refuses, naming the node

def _refused_by_reference(op, inputs, attrs, match):
    """inputs: arrays (graph inputs) or C(array) constants; the reference's shape function
    refuses the concrete graph with a ShapeError naming the node and the rule."""
    from mobconv.errors import ShapeError

    g = Graph(f"ref_{op}")
    names = []
    for k, item in enumerate(inputs):
        if isinstance(item, tuple) and item[0] == "absent":
            names.append("")
            continue
        if isinstance(item, tuple):
            g.add_constant(f"in{k}", item[1])
        else:
            g.add_input(f"in{k}", item.dtype.name, item.shape)
        names.append(f"in{k}")
    g.add_node(op, names, ["y"], attrs, name=f"node_{op}")
    g.outputs = ["y"]
    with pytest.raises(ShapeError, match=match) as e:
        infer_shapes(g)
    assert "node_" + op in str(e.value)


def _resized_graph(op, declared, attrs, consts=None):
    """One-node graph whose graph inputs have the declared (partly symbolic) shapes."""
    g = Graph(f"rt_{op}")
    names = []
    for k, item in enumerate(declared):
        if isinstance(item, tuple) and item and item[0] == "const":
            g.add_constant(f"in{k}", item[1])
        elif item is None:
            names.append("")
            continue
        else:
            dtype, shape = item
            g.add_input(f"in{k}", dtype, shape)
        names.append(f"in{k}")
    g.add_node(op, names, ["y"], attrs, name=f"node_{op}")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def _runtime_refuses_resized(g, feeds, match):
    """Every ISA: resizing the inputs to the feeds' shapes (then running) is refused naming the node."""
    for isa in ISAS:
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            with pytest.raises(MobconvError, match=match) as e:
                for name, a in feeds.items():
                    it.resize(name, list(a.shape))
                it.run(feeds)
            assert f"node_{g.nodes[0].op}" in str(e.value), str(e.value)


def _runtime_runs_resized(g, feeds):
    for isa in ISAS:
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            for name, a in feeds.items():
                it.resize(name, list(a.shape))
            it.run(feeds)


Z_EMPTY = [
    # Z1: GridSample with an empty spatial dim in X (border clamps a tap to d-1 = -1)
    ("Z1-GridSample-empty_H-border", "GridSample", [("float32", (2, 3, "h", 4)), ("float32", (2, 5, 6, 2))],
     [f32(2, 3, 0, 4), f32(2, 5, 6, 2)], {"padding_mode": "border"}, "empty spatial dim"),
    ("Z1-GridSample-empty_W-reflection-cubic", "GridSample", [("float32", (1, 2, 3, "w")), ("float32", (1, 4, 5, 2))],
     [f32(1, 2, 3, 0), f32(1, 4, 5, 2)], {"padding_mode": "reflection", "mode": "cubic"}, "empty spatial dim"),
    ("Z1-GridSample-batch_differs", "GridSample", [("float32", ("n", 3, 4)), ("float32", (2, 5, 1))],
     [f32(3, 3, 4), f32(2, 5, 1)], {}, "batch size|must be"),
    # Z2: indices into an empty axis, even when the output is empty
    ("Z2-Gather-into_empty_axis", "Gather", [("float32", ("n", 3)), ("const", i64(0, 1))],
     [f32(0, 3)], {"axis": 0}, "which is empty"),
    ("Z2-Gather-into_empty_axis-empty_output", "Gather", [("float32", ("n", "m")), ("const", i64(0, 1))],
     [f32(0, 0)], {"axis": 0}, "which is empty"),
    ("Z2-GatherElements-into_empty_axis", "GatherElements",
     [("float32", (2, "n")), ("const", np.zeros((2, 3), np.int64))], [f32(2, 0)], {"axis": 1}, "which is empty"),
    ("Z2-GatherElements-empty_indices_exceed_data", "GatherElements",
     [("float32", ("n", 4)), ("int64", (5, 0))], [f32(3, 4), np.zeros((5, 0), np.int64)], {"axis": 1},
     "exceed data"),
    ("Z2-ScatterElements-into_empty_axis", "ScatterElements",
     [("float32", (2, "n")), ("const", np.zeros((2, 1), np.int64)), ("const", f32(2, 1))], [f32(2, 0)],
     {"axis": 1}, "which is empty"),
    ("Z2-ScatterND-into_empty_dim-empty_output", "ScatterND",
     [("float32", ("n", "m")), ("const", np.zeros((2, 1), np.int64)), ("float32", (2, "m"))],
     [f32(0, 0), f32(2, 0)], {}, "in an empty dim"),
    # Z5: pools with no channels or an empty spatial dim when N != 0
    ("Z5-MaxPool-no_channels", "MaxPool", [("float32", (2, "c", 5, 5))], [f32(2, 0, 5, 5)],
     {"kernel_shape": [2, 2]}, "empty channel dim"),
    ("Z5-AveragePool-empty_spatial", "AveragePool", [("float32", (2, 3, "h", 5))], [f32(2, 3, 0, 5)],
     {"kernel_shape": [1, 2], "ceil_mode": 1}, "empty spatial dim"),
    ("Z5-GlobalAveragePool-empty_spatial", "GlobalAveragePool", [("float32", (1, 9, 65, "w"))], [f32(1, 9, 65, 0)],
     {}, "empty spatial dim"),
    ("Z5-GlobalMaxPool-no_channels", "GlobalMaxPool", [("float32", (3, "c", 4))], [f32(3, 0, 4)], {},
     "empty channel dim"),
]


@pytest.mark.parametrize("name,op,declared,bad,attrs,match", Z_EMPTY, ids=[z[0] for z in Z_EMPTY])
def test_zero_size_refused_by_reference_and_runtime(name, op, declared, bad, attrs, match):
    feeds, ref_inputs, k = {}, [], 0
    for i, d in enumerate(declared):
        if d[0] == "const":
            ref_inputs.append(C(d[1]))
        else:
            feeds[f"in{i}"] = bad[k]
            ref_inputs.append(bad[k])
            k += 1
    _refused_by_reference(op, ref_inputs, attrs, match)
    _runtime_refuses_resized(_resized_graph(op, declared, attrs), feeds, match)


def test_zero_size_pools_with_empty_batch_still_run():
    """The pool rule refuses empty channels/spatial dims only when N != 0."""
    g = _resized_graph("MaxPool", [("float32", ("n", "c", 5, 5))], {"kernel_shape": [2, 2]})
    _runtime_runs_resized(g, {"in0": f32(0, 0, 5, 5)})
    g = _resized_graph("GlobalAveragePool", [("float32", ("n", 3, "h", 4))], {})
    _runtime_runs_resized(g, {"in0": f32(0, 3, 0, 4)})


def _with_bad_constant(op, inputs, attrs, k, bad):
    """The graph built with valid constants, then constant k replaced by `bad` (a file the
    Python side would not write, as another producer could)."""
    g, feeds, _ = build(op, inputs, attrs, 1)
    v = g.values[f"in{k}"]
    v.data, v.shape = np.asarray(bad), tuple(np.shape(bad))
    return g, feeds


def _runtime_refuses_file(g, feeds, match):
    for isa in ISAS:
        with pytest.raises(MobconvError, match=match) as e:
            with runtime.Interpreter(to_bytes(g), isa=isa) as it:
                it.run(feeds)
        assert f"node_{g.nodes[0].op}" in str(e.value), str(e.value)


@pytest.mark.parametrize("which", ["axes", "steps"])
def test_slice_with_an_empty_axes_or_steps_tensor_is_refused(which):
    """Z3: an empty axes/steps tensor is not an absent one (onnxruntime: incorrect length)."""
    x = f32(4, 6)
    ok = [x, C(i64(1)), C(i64(3)), C(i64(1)), C(i64(1))]
    k = 3 if which == "axes" else 4
    bad_inputs = list(ok)
    bad_inputs[k] = C(np.zeros(0, np.int64))
    _refused_by_reference("Slice", bad_inputs, {}, "one entry each per sliced axis")
    g, feeds = _with_bad_constant("Slice", ok, {}, k, np.zeros(0, np.int64))
    _runtime_refuses_file(g, feeds, "one entry each per sliced axis")


@pytest.mark.parametrize("roi_value", [np.nan, np.inf])
def test_resize_with_a_non_finite_roi_is_refused(roi_value):
    """Z4: tf_crop_and_resize with a NaN/inf roi gave arbitrary values; refused as by the reference."""
    x = f32(1, 1, 4, 4)
    attrs = {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}
    roi = np.array([0, 0, 0.1, 0.2, 1, 1, 0.9, 0.8], np.float32)
    bad = roi.copy()
    bad[3] = roi_value
    _refused_by_reference("Resize", [x, C(bad), C(np.ones(4, np.float32) * 2)], attrs, "roi must be finite")
    g, feeds = _with_bad_constant("Resize", [x, C(roi), C(np.array([1, 1, 2, 2], np.float32))], attrs, 1, bad)
    _runtime_refuses_file(g, feeds, "roi must be finite")


@pytest.mark.parametrize("scale", [np.nan, np.inf])
def test_resize_with_non_finite_scales_is_refused(scale):
    """Z4: the reference refuses non-finite scales; so does the runtime."""
    x = f32(1, 1, 4, 4)
    bad = np.array([1, 1, 2, scale], np.float32)
    _refused_by_reference("Resize", [x, ("absent", None), C(bad)], {"mode": "nearest"}, "scales must be finite")
    g, feeds = _with_bad_constant("Resize", [x, ("absent", None), C(np.array([1, 1, 2, 2], np.float32))],
                                  {"mode": "nearest"}, 2, bad)
    _runtime_refuses_file(g, feeds, "scales must be")


# ---- NaN-propagation findings of the longer graph_fuzz runs (seeds 11 and 3) -------------------
# ReduceProd: np.prod(dtype=float32) multiplies in float32, in order, so a partial product past
# FLT_MAX is inf and inf * 0 is NaN; the kernel multiplied in double (0 or a finite product).
_rp = np.array([[1e30, 1e30, 0.0, 2.0], [0.0, 3e38, 3e38, 1.0], [1e30, 1e-30, 1e30, -0.0],
                [1e-30, 1e-30, 1e30, 1e30], [np.nan, 0.0, 1.0, 2.0], [3e38, -3e38, 1e-30, 1e-30]], np.float32)
NAN_FUZZ_CASES = [
    ("ReduceProd-overflow_then_zero-axis-1", "ReduceProd", [_rp, C(i64(-1))], {}, 1),
    ("ReduceProd-overflow-axis0", "ReduceProd", [_rp.T.copy(), C(i64(0))], {"keepdims": 0}, 1),
]
# MaxPool Indices: a window whose real taps are all -inf and that starts in the padding: the
# reference took the first padded tap (an index outside the input, e.g. -2); padding never wins,
# as in the kernel (the fuzzer's MaxPool(x[3,15,16,15]) {pads=[0,4,0,4], kernel [1,5], ceil_mode=1})
_mp = sprinkle(f32(3, 15, 16, 15), [np.nan, -np.inf, -np.inf, np.inf], 13)
_mp[0, 1, 4, :3] = -np.inf
for _so in (0, 1):
    NAN_FUZZ_CASES.append((f"MaxPool-indices-minus_inf_window_in_padding-order{_so}", "MaxPool", [_mp],
                           {"pads": [0, 4, 0, 4], "kernel_shape": [1, 5], "ceil_mode": 1, "storage_order": _so}, 2))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name,op,inputs,attrs,n_out", NAN_FUZZ_CASES, ids=[c[0] for c in NAN_FUZZ_CASES])
def test_nan_fuzz_finding_matches_numpy(name, op, inputs, attrs, n_out, isa):
    test_fuzz_finding_matches_numpy(op, inputs, attrs, n_out, 1e-4, 1e-5, isa)


def test_max_pool_indices_never_point_into_padding():
    """By hand: [-inf, -inf, 3] with 2 pads each side -> windows (p, p, x0) (p, x0, x1) ... ;
    the -inf windows give the first real tap, not a padded position."""
    import warnings

    from mobconv.ops import load_all

    spec = load_all()["MaxPool"]
    g = Graph("r")
    g.add_input("x", "float32", (1, 1, 1, 3))
    node = g.add_node("MaxPool", ["x"], ["y", "i"], {"kernel_shape": [1, 3], "pads": [0, 2, 0, 2]})
    x = np.array([[[[-np.inf, -np.inf, 3.0]]]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, idx = spec.run_reference([x], spec.resolve_attrs(node))
    assert y.ravel().tolist() == [-np.inf, -np.inf, 3.0, 3.0, 3.0]
    assert idx.ravel().tolist() == [0, 0, 2, 2, 2]


# The fuzzer's MatMul/ConvTranspose-with-HardSigmoid and 3-D Conv NaN reports (seeds 11001173,
# 11001942, 11003719) were float32 overflow of finite products (3e38 x 1.7: inf - inf in the
# reference, FMA/double in the kernels; docs/runtime.md), not lost NaN inputs: these guard that a
# NaN input still reaches every output it feeds through the same kernels and fused activations.
_nb = sprinkle(f32(1, 4, 64, 1), [np.nan, np.inf, -np.inf], 41)
NAN_GUARD_CASES = [
    ("MatMul-dynamic-HardSigmoid-denormal_alpha", "MatMul", [f32(1, 4, 17, 64), _nb],
     {"activation": "HardSigmoid", "activation_params": [1e-40, 2.0]}),
    ("ConvTranspose-HardSigmoid-bias_minus_inf", "ConvTranspose",
     [sprinkle(f32(15, 64, 1, 1), [np.nan, np.inf], 37), C(f32(64, 1, 1, 1)), C(np.array([-np.inf], np.float32))],
     {"dilations": [1, 9], "activation": "HardSigmoid", "activation_params": [-1.0, -1e30]}),
    ("Conv3d-dynamic_W", "Conv", [sprinkle(f32(16, 64, 1, 2, 4), [np.nan, np.inf], 97), f32(3, 64, 1, 1, 3),
                                  C(f32(3))], {}),
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name,op,inputs,attrs", NAN_GUARD_CASES, ids=[c[0] for c in NAN_GUARD_CASES])
def test_nan_input_reaches_gemm_and_conv_outputs(name, op, inputs, attrs, isa):
    test_fuzz_finding_matches_numpy(op, inputs, attrs, 1, 1e-4, 1e-5, isa)
