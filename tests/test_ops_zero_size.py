"""Zero-size inputs for every registry op: shape functions and the numpy reference agree.

The numpy reference is the specification the C++ kernels are checked against, so on
a zero-size input it must either compute the answer or have been refused up front by
the op's shape function with the package's error (ShapeError naming the node and the
rule) -- never crash with a numpy/Python exception.

Sweep (generated from the registry, so a new op is covered automatically): every op's
base cases -- tests/runtime_cases.CASES, the few cases below, and single-node graphs
drawn by tests/graph_fuzz.py (which has a builder for every registry op) -- with each
input in turn given a 0 in each dim position (and each element of a small integer input,
such as sizes, pads or repeats, set to 0). For each variant: the shape function
raises a MobconvError, or the reference returns outputs of exactly the dtypes and shapes
the shape function gave (a symbolic dim, a data-dependent row count, matches any size).

The rules chosen for empty tensors follow onnxruntime wherever the op is an ONNX op
(an empty output is an empty tensor; a reduction over nothing gives its identity; what
onnxruntime refuses -- pooling, sampling or normalizing over nothing, resizing an empty
dim to a non-empty size -- the shape function refuses). The regression tests at the end
check each finding of the graph fuzzer against onnxruntime.
"""
import functools
import warnings

import numpy as np
import pytest

import runtime_cases
from mobconv.errors import MobconvError, ShapeError
from mobconv.ir import Graph, infer_shapes
from mobconv.ops import load_all
from mobconv.ops.registry import AttrKind

REG = load_all()
FUZZ_SEEDS_PER_OP = 6  # single-node graphs drawn per op by graph_fuzz (fixed seeds)
_rng = np.random.default_rng(7)


def _f32(*shape):
    return _rng.uniform(-2, 2, shape).astype(np.float32)


C = runtime_cases.C
_PRIOR_ATTRS = {"min_sizes": [4.0], "max_sizes": [8.0], "aspect_ratios": [2.0], "variance": [0.1, 0.1, 0.2, 0.2]}
# Base cases for ops runtime_cases.CASES lacks, and the shapes the graph fuzzer found.
EXTRA_BASES = [
    ("PriorBox", [_f32(1, 3, 4, 2), _f32(1, 3, 32, 16)], _PRIOR_ATTRS, 1),
    ("DetectionOutput", [_f32(1, 6 * 4), _rng.uniform(0, 1, (1, 6 * 3)).astype(np.float32),
                         C(np.concatenate([np.sort(_rng.uniform(0, 1, (1, 1, 24)), -1),
                                           np.full((1, 1, 24), 0.1)], 1).astype(np.float32))],
     {"num_classes": 3, "confidence_threshold": 0.2}, 1),
    ("MaxPool", [_f32(1, 4, 65)], {"kernel_shape": [2], "dilations": [3], "auto_pad": "VALID"}, 2),
    ("MaxPool", [_f32(2, 63, 32, 9)], {"kernel_shape": [2, 3], "ceil_mode": 1, "strides": [2, 2]}, 1),
    ("GlobalMaxPool", [_f32(2, 8, 3, 1, 1)], {}, 1),
    ("GlobalAveragePool", [_f32(2, 8, 3, 1, 1)], {}, 1),
    ("LayerNormalization", [_f32(2, 3, 5), C(_f32(5)), C(_f32(3, 1))], {"axis": 1}, 3),
    ("Resize", [_f32(9, 2, 2, 3), ("absent", None), ("absent", None), C(np.array([9, 3, 2, 1], np.int64))], {}, 1),
    ("Pad", [_f32(2, 3), C(np.array([2, -1, -1, 2], np.int64))], {}, 1),
    ("ConvTranspose", [_f32(1, 2, 3), C(_f32(2, 3, 4)), C(_f32(3))], {"strides": [2], "dilations": [3]}, 1),
    ("Range", [C(np.array([2], np.int64)), C(np.array([17], np.int64)), C(np.array([3], np.int64))], {}, 1),
    ("OneHot", [np.array([1, 0, 2], np.int64), C(np.array([3], np.int64)), C(np.array([0.0, 1.0], np.float32))],
     {}, 1),
]


def _absent(item):
    return isinstance(item, tuple) and item[0] == "absent"


def _array(item):
    return np.asarray(item[1] if isinstance(item, tuple) else item)


def _fuzz_bases(op):
    """Single-node graphs graph_fuzz draws for `op`, as (op, inputs, attrs, n_out)."""
    import graph_fuzz

    out = []
    for seed in range(FUZZ_SEEDS_PER_OP):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            case = graph_fuzz.draw_graph(7919 * seed + 17, ops=[op], max_nodes=1)
        if case is None or len(case.graph.nodes) != 1:
            continue
        node, g = case.graph.nodes[0], case.graph
        inputs = []
        for name in node.inputs:
            if not name:
                inputs.append(("absent", None))
            elif g.values[name].data is not None:
                inputs.append(("const", g.values[name].data))
            else:
                inputs.append(np.asarray(case.feeds[name]))
        out.append((op, inputs, dict(node.attrs), len(node.outputs)))
    return out


@functools.lru_cache(maxsize=None)
def bases(op):
    """(op, inputs, attrs, n_out) base cases of `op` (never modified: variants copy)."""
    found = [(p.values[0], p.values[2], p.values[3], p.values[4]) for p in runtime_cases.CASES if p.values[0] == op]
    found += [b for b in EXTRA_BASES if b[0] == op]
    return found + _fuzz_bases(op)


def zero_variants(inputs):
    """(label, inputs) with input k's dim d set to 0, for every k and d."""
    for k, item in enumerate(inputs):
        if _absent(item):
            continue
        arr = _array(item)
        for d in range(arr.ndim):
            if arr.shape[d] == 0:
                continue
            shape = list(arr.shape)
            shape[d] = 0
            new = np.zeros(shape, arr.dtype)
            variant = list(inputs)
            variant[k] = ("const", new) if isinstance(item, tuple) else new
            yield f"input {k} dim {d} = 0", variant


def zero_value_variants(inputs):
    """(label, inputs) with element j of a small integer input (sizes, pads, axes, indices,
    repeats, shapes) set to 0."""
    for k, item in enumerate(inputs):
        arr = None if _absent(item) else _array(item)
        if arr is None or arr.dtype.kind not in "iu" or not 0 < arr.size <= 16:
            continue
        for j in np.flatnonzero(arr.reshape(-1)):
            new = arr.copy()
            new.reshape(-1)[j] = 0
            variant = list(inputs)
            variant[k] = ("const", new) if isinstance(item, tuple) else new
            yield f"input {k} element {j} = 0", variant


def one_node(op, inputs, attrs, n_out):
    g = Graph(f"zero_{op}")
    names, arrays = [], []
    for k, item in enumerate(inputs):
        if _absent(item):
            names.append("")
            arrays.append(None)
            continue
        name = f"in{k}"
        arr = _array(item)
        if isinstance(item, tuple):
            g.add_constant(name, arr)
        else:
            g.add_input(name, arr.dtype.name, arr.shape)
        names.append(name)
        arrays.append(arr)
    outs = [f"out{k}" for k in range(n_out)]
    node = g.add_node(op, names, outs, dict(attrs), name=f"node_{op}")
    g.outputs = outs
    return g, node, arrays


def check(op, inputs, attrs, n_out):
    """None if the shape function refuses with a MobconvError or the reference matches it; else why not."""
    g, node, arrays = one_node(op, inputs, attrs, n_out)
    try:
        infer_shapes(g)
    except MobconvError as exc:
        if "\n" in str(exc) or node.name not in str(exc):
            return f"shape function's error is not one line naming the node: {exc!r}"
        return None
    except Exception as exc:  # noqa: BLE001 - this is what the test looks for
        return f"shape function raised {type(exc).__name__}: {exc}"
    spec = REG[op]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            outs = spec.run_reference(arrays, spec.resolve_attrs(node))
    except Exception as exc:  # noqa: BLE001
        return f"reference raised {type(exc).__name__}: {str(exc)[:200]} after the shape function accepted it"
    for k in range(n_out):
        v, o = g.values[f"out{k}"], outs[k]
        if v.dtype != o.dtype.name or len(v.shape) != o.ndim or any(
                isinstance(d, int) and d != e for d, e in zip(v.shape, o.shape)):
            return f"output {k}: shape function says {v.dtype}{tuple(v.shape)}, reference gives {o.dtype}{o.shape}"
    return None


@pytest.mark.parametrize("op", sorted(REG))
def test_zero_size_inputs_are_refused_or_computed(op):
    failures, tried = [], 0
    for _, inputs, attrs, n_out in bases(op):
        for label, variant in [*zero_variants(inputs), *zero_value_variants(inputs)]:
            tried += 1
            msg = check(op, variant, attrs, n_out)
            if msg:
                shapes = [None if _absent(i) else _array(i).shape for i in variant]
                failures.append(f"{op} {attrs} inputs {shapes} ({label}): {msg}")
    assert tried, f"{op}: no base case with a tensor input to zero (add one to EXTRA_BASES)"
    assert not failures, f"{len(failures)} of {tried} zero-size variants fail:\n" + "\n".join(failures[:10])


def non_finite_variants(op, inputs, attrs):
    """(label, inputs, attrs) with NaN, inf or -inf in the first element, or all, of each float
    input (constants are parameters such as scales and roi), and in each float attribute."""
    for k, item in enumerate(inputs):
        arr = None if _absent(item) else _array(item)
        if arr is None or arr.dtype.kind != "f" or arr.size == 0:
            continue
        for value in (np.nan, np.inf, -np.inf):
            for where, new in (("[0]", arr.copy()), (" (all)", np.full_like(arr, value))):
                new.reshape(-1)[0] = value
                variant = list(inputs)
                variant[k] = ("const", new) if isinstance(item, tuple) else new
                yield f"input {k}{where} = {value}", variant, attrs
    for a in REG[op].attrs:
        for value in (np.nan, np.inf, -np.inf):
            if a.kind is AttrKind.FLOAT:
                yield f"{a.name} = {value}", inputs, {**attrs, a.name: value}
            elif a.kind is AttrKind.FLOATS and attrs.get(a.name):
                yield f"{a.name}[0] = {value}", inputs, {**attrs, a.name: [value] + list(attrs[a.name])[1:]}


@pytest.mark.parametrize("op", sorted(REG))
def test_non_finite_values_are_refused_or_computed(op):
    """NaN/inf data and parameters: the shape function refuses them (a NaN scale, roi or depth)
    with the package's error, or the reference computes outputs of the inferred shapes."""
    failures, tried = [], 0
    for _, inputs, attrs, n_out in bases(op):
        for label, variant, variant_attrs in non_finite_variants(op, inputs, attrs):
            tried += 1
            msg = check(op, variant, variant_attrs, n_out)
            if msg:
                failures.append(f"{op} {attrs} ({label}): {msg}")
    assert not failures, f"{len(failures)} of {tried} non-finite variants fail:\n" + "\n".join(failures[:10])


# ---- the graph fuzzer's findings (issue 7), each against onnxruntime where the op is ONNX's ----


def ours(op, inputs, attrs=None, n_out=1):
    """Outputs of the numpy reference interpreter on a one-node graph (shape inference first)."""
    from mobconv.reference import interpreter

    g, _, _ = one_node(op, inputs, attrs or {}, n_out)
    infer_shapes(g)
    feeds = {f"in{k}": _array(i) for k, i in enumerate(inputs) if not _absent(i) and not isinstance(i, tuple)}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        got = interpreter.run(g, feeds)
    for k in range(n_out):
        inferred, shape = g.values[f"out{k}"].shape, got[f"out{k}"].shape
        assert len(inferred) == len(shape) and all(isinstance(d, str) or d == e for d, e in zip(inferred, shape)), \
            f"{op}: inferred shape {inferred}, result {shape}"
    return [got[f"out{k}"] for k in range(n_out)]


def refused(op, inputs, attrs, *words):
    """The shape function refuses with one line naming the node and the rule."""
    g, node, _ = one_node(op, inputs, attrs, 1)
    with pytest.raises(ShapeError) as info:
        infer_shapes(g)
    msg = str(info.value)
    assert "\n" not in msg and node.name in msg and op in msg, msg
    for w in words:
        assert w in msg, f"{msg!r} does not say {w!r}"


def onnxruntime_run(op, inputs, attrs=None, n_out=1, opset=21):
    """(outputs, None) from onnxruntime, or (None, error message) if it refuses the node."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    graph_inputs, inits, names, feeds = [], [], [], {}
    for k, item in enumerate(inputs):
        if _absent(item):
            names.append("")
            continue
        name, arr = f"in{k}", _array(item)
        names.append(name)
        if isinstance(item, tuple):
            inits.append(numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype),
                                                              arr.shape))
            feeds[name] = arr
    outs = [f"out{k}" for k in range(n_out)]
    out_type = helper.np_dtype_to_tensor_dtype(_array(inputs[0]).dtype)
    second = TensorProto.INT64 if op in ("MaxPool", "TopK") else out_type  # indices, or more of Y
    graph = helper.make_graph([helper.make_node(op, names, outs, **(attrs or {}))], op, graph_inputs,
                              [helper.make_tensor_value_info(o, out_type if k == 0 else second, None)
                               for k, o in enumerate(outs)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return sess.run(None, feeds), None
    except Exception as exc:  # noqa: BLE001 - onnxruntime's refusal is the answer here
        return None, str(exc)


def same_as_onnxruntime(op, inputs, attrs=None, n_out=1, opset=21):
    expected, err = onnxruntime_run(op, inputs, attrs, n_out, opset)
    assert err is None, f"onnxruntime refuses {op}: {err}"
    got = ours(op, inputs, attrs, n_out)
    for g, e in zip(got, expected):
        assert g.shape == e.shape, f"{op}: shape {g.shape}, onnxruntime {e.shape}"
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=op)


def refused_like_onnxruntime(op, inputs, attrs, *words, opset=21):
    _, err = onnxruntime_run(op, inputs, attrs, opset=opset)
    assert err is not None, f"onnxruntime runs {op} {attrs} on {[_array(i).shape for i in inputs if not _absent(i)]}"
    refused(op, inputs, attrs, *words)


def _zeros(*shape):
    return np.zeros(shape, np.float32)


def test_resize_sizes_on_empty_dims_follow_onnxruntime():
    """P1: sizes on an input with a zero dim divided by zero in the shape function."""
    sizes = lambda *s: C(np.array(s, np.int64))  # noqa: E731
    same_as_onnxruntime("Resize", [_zeros(9, 0, 0, 3), ("absent", None), ("absent", None), sizes(9, 0, 0, 1)])
    same_as_onnxruntime("Resize", [_zeros(0, 2, 3, 4), ("absent", None), ("absent", None), sizes(0, 2, 7, 5)],
                        {"mode": "linear"})
    refused_like_onnxruntime("Resize", [_zeros(1, 2, 0, 4), ("absent", None), ("absent", None), sizes(1, 2, 7, 5)],
                             {"mode": "linear"}, "cannot resize the empty dim 2", "to size 7")
    refused("Resize", [_zeros(1, 2, 0, 4), ("absent", None), ("absent", None), sizes(7, 5)],
            {"axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}, "keep_aspect_ratio_policy")
    # size 0 on a non-empty dim: an empty output (as onnx.reference computes it)
    assert ours("Resize", [_f32(1, 2, 3, 4), ("absent", None), ("absent", None), sizes(1, 2, 0, 5)],
                {"mode": "linear"})[0].shape == (1, 2, 0, 5)
    # scales on an empty dim, in the coordinate mode whose formula divides by the output length
    same_as_onnxruntime("Resize", [_zeros(1, 2, 0, 7), ("absent", None), C(np.array([1, 1, 1.6, 2.3], np.float32))],
                        {"coordinate_transformation_mode": "half_pixel_symmetric", "mode": "linear"})
    refused("Resize", [_f32(1, 2, 5, 7), C(np.zeros(0, np.float32)), ("absent", None), sizes(1, 2, 6, 9)],
            {"coordinate_transformation_mode": "tf_crop_and_resize"}, "roi")


def test_pooling_of_an_empty_input_follows_onnxruntime():
    """P2: MaxPool on x[1,0,65] / x[0,63,32,9] could not reshape an empty array; GlobalMaxPool on
    x[0,63,0] / x[2,8,0,1,1] reduced one. onnxruntime's rule: only the batch N may be 0."""
    same_as_onnxruntime("MaxPool", [_zeros(0, 63, 32, 9)], {"kernel_shape": [2, 2]}, n_out=2)
    same_as_onnxruntime("MaxPool", [_zeros(0, 4, 65)], {"kernel_shape": [2], "dilations": [3], "auto_pad": "VALID"})
    same_as_onnxruntime("AveragePool", [_zeros(0, 3, 9, 5)], {"kernel_shape": [3, 2], "pads": [1, 1, 1, 1]})
    for op, attrs in [("MaxPool", {"kernel_shape": [2], "dilations": [3], "auto_pad": "VALID"}),
                      ("AveragePool", {"kernel_shape": [2]}), ("GlobalMaxPool", {}), ("GlobalAveragePool", {})]:
        refused_like_onnxruntime(op, [_zeros(1, 0, 65)], attrs, "empty channel dim", "only the batch dim N")
    for op in ("GlobalMaxPool", "GlobalAveragePool"):
        same_as_onnxruntime(op, [_zeros(0, 63, 0)])
        refused_like_onnxruntime(op, [_zeros(2, 8, 0, 1, 1)], {}, "empty spatial dim")


def test_softmax_family_on_empty_tensors():
    """P2: Softmax / LogSoftmax on x[0] or x[2,0,0] reduced an empty array; Hardmax took an empty argmax."""
    for op in ("Softmax", "LogSoftmax", "Hardmax"):
        same_as_onnxruntime(op, [_zeros(0)])
        same_as_onnxruntime(op, [_zeros(2, 0, 0)], {"axis": 1})
        same_as_onnxruntime(op, [_zeros(2, 5, 0)])


def test_grid_sample_zero_sizes_follow_onnxruntime():
    """P2: GridSample on x[1,5,0,3] indexed out of bounds; empty batch/channels/points crashed too."""
    grid = lambda *s: _rng.uniform(-1.2, 1.2, s).astype(np.float32)  # noqa: E731
    refused_like_onnxruntime("GridSample", [_zeros(1, 5, 0, 3), grid(1, 4, 6, 2)], {}, "empty spatial dim", opset=20)
    for x, g in [((0, 5, 3, 4), (0, 4, 6, 2)), ((1, 0, 3, 4), (1, 4, 6, 2)), ((1, 5, 3, 4), (1, 0, 6, 2))]:
        for mode in ("linear", "nearest", "cubic"):
            same_as_onnxruntime("GridSample", [_f32(*x), grid(*g)], {"mode": mode}, opset=20)
    refused_like_onnxruntime("GridSample", [_f32(2, 3, 5, 7), grid(0, 4, 6, 2)], {}, "same batch size", opset=20)


def test_prior_box_and_detection_output_with_no_priors():
    """P2: PriorBox on feature[1,3,0,2] divided by zero; DetectionOutput with 0 priors could not reshape."""
    priors = ours("PriorBox", [_zeros(1, 3, 0, 2), _zeros(1, 3, 32, 16)], _PRIOR_ATTRS)[0]
    assert priors.shape == (1, 2, 0)
    det = ours("DetectionOutput", [_zeros(1, 0), _zeros(1, 0), C(_zeros(1, 2, 0))], {"num_classes": 3})[0]
    np.testing.assert_array_equal(det, [[[[0, -1, -1, -1, -1, -1, -1]]]])  # Caffe's "no detection" row
    refused("PriorBox", [_zeros(1, 3, 4, 2), _zeros(1, 3, 0, 16)], _PRIOR_ATTRS, "image height is 0")
    refused("DetectionOutput", [_zeros(0, 24), _zeros(1, 18), C(_zeros(1, 2, 24))], {"num_classes": 3},
            "same batch size")
    refused("DetectionOutput", [_zeros(1, 24), _zeros(1, 18), C(_zeros(0, 2, 24))], {"num_classes": 3}, "prior")


def test_layer_normalization_scale_and_empty_normalized_dims_follow_onnxruntime():
    """Scale (0, 15) on X (2, 1, 15) axis 1 broadcast the output to (2, 0, 15); mean of nothing."""
    refused_like_onnxruntime("LayerNormalization", [_f32(2, 1, 15), C(_zeros(0, 15))], {"axis": 1}, "Scale",
                             opset=17)
    refused_like_onnxruntime("LayerNormalization", [_zeros(2, 3, 0), C(_zeros(0))], {"axis": -1},
                             "must not be empty", opset=17)
    same_as_onnxruntime("LayerNormalization", [_zeros(0, 3, 7), C(_f32(7)), C(_f32(3, 1))], {"axis": 1}, opset=17)


def test_pad_crop_past_the_input_follows_onnxruntime():
    """Negative pads larger than the dim: the shape function said dim + begin + end, the reference
    cropped, then padded the full amount."""
    for shape, pads in [((0,), [2, -1]), ((0,), [-1, 2]), ((3,), [-5, 4]), ((3,), [4, -5]), ((2, 0), [0, 3, 1, -2])]:
        same_as_onnxruntime("Pad", [_f32(*shape), C(np.array(pads, np.int64))])
    refused_like_onnxruntime("Pad", [_f32(3), C(np.array([-3, 2], np.int64))], {"mode": "edge"}, "after cropping")


def test_conv_transpose_of_an_empty_input_is_the_bias():
    """ConvTranspose of zero input pixels or channels: the output is still (stride-1)... long, all bias."""
    w, b = _f32(2, 3, 4), _f32(3)
    same_as_onnxruntime("ConvTranspose", [_zeros(1, 2, 0), C(w), C(b)], {"strides": [2], "dilations": [3]})
    same_as_onnxruntime("ConvTranspose", [_zeros(0, 2, 5), C(w), C(b)], {"strides": [2]})
    same_as_onnxruntime("ConvTranspose", [_zeros(1, 0, 5), C(_zeros(0, 3, 4)), C(b)], {})


def test_conv_kernel_of_size_zero_is_refused_like_onnxruntime():
    refused_like_onnxruntime("Conv", [_f32(1, 3, 13, 11), C(_f32(5, 3, 0, 3))], {}, "kernel spatial dims")
    refused_like_onnxruntime("ConvTranspose", [_f32(1, 4, 5, 5), C(_f32(4, 3, 0, 3))], {}, "kernel spatial dims")


def test_indices_into_an_empty_axis_are_refused():
    """Gather/GatherElements/ScatterND/ScatterElements with indices into an axis of size 0 raised
    numpy IndexErrors from the reference; every such index is out of range."""
    idx = lambda *s: np.zeros(s, np.int64)  # noqa: E731
    refused_like_onnxruntime("Gather", [_zeros(3, 0, 2), C(idx(2, 2))], {"axis": 1}, "empty")
    refused_like_onnxruntime("GatherElements", [_zeros(0, 4), C(idx(2, 4))], {"axis": 0}, "empty")
    refused_like_onnxruntime("ScatterND", [_zeros(0, 5, 7), idx(3, 2), _zeros(3, 7)], {}, "empty dim")
    refused_like_onnxruntime("ScatterElements", [_zeros(3, 0, 2), idx(3, 4, 2), _zeros(3, 4, 2)], {"axis": 1},
                             "empty")
    refused("ScatterElements", [_zeros(0, 5, 2), idx(3, 4, 2), _zeros(3, 4, 2)], {"axis": 1}, "exceed data")
    same_as_onnxruntime("Gather", [_f32(3, 0, 2), C(idx(2, 0))], {"axis": 1})  # no index at all: fine
    refused_like_onnxruntime("Gather", [_zeros(0, 0, 3), C(idx(7))], {"axis": 1}, "empty")  # even if Y is empty


def test_resize_non_finite_scales_and_roi_are_refused():
    """A NaN scale raised ValueError ('cannot convert float NaN to integer') in the shape function;
    a NaN roi made the nearest-mode reference index out of bounds."""
    x = _f32(1, 2, 5, 7)
    for bad in (np.nan, np.inf):
        refused("Resize", [x, ("absent", None), C(np.array([1, 1, bad, 2], np.float32))], {}, "scales must be finite")
        refused("Resize", [x, C(np.array([0.1, bad, 0.8, 1.2], np.float32)), ("absent", None),
                           C(np.array([4, 9], np.int64))],
                {"coordinate_transformation_mode": "tf_crop_and_resize", "axes": [2, 3]}, "roi must be finite")


def test_split_of_an_empty_or_short_dim_follows_onnxruntime():
    """Split {num_outputs} refused a dim smaller than num_outputs (0 included); onnxruntime
    splits it into ceil-sized pieces, the last ones empty."""
    for shape, axis, n in [((0, 3), 0, 3), ((1, 0), 1, 2), ((64, 33, 0), -1, 1), ((2, 5), 0, 3)]:
        same_as_onnxruntime("Split", [_f32(*shape)], {"axis": axis, "num_outputs": n}, n_out=n, opset=18)


def test_one_hot_depth_must_be_one_value():
    refused("OneHot", [np.array([1, 0, 2], np.int64), C(np.zeros(0, np.int64)), C(np.array([0.0, 1.0], np.float32))],
            {}, "depth")
    refused("OneHot", [np.array([1, 0, 2], np.int64), C(np.array(3, np.int64)), C(np.zeros(0, np.float32))],
            {}, "values")
    refused("OneHot", [np.array([1, 0, 2], np.int64), C(np.array(np.nan, np.float32)),
                       C(np.array([0.0, 1.0], np.float32))], {}, "finite")
