"""ONNX parameters computed at run time: shapes that depend on input *values*.

ONNX lets the parameters of many ops be tensors computed by the graph: the target shape
of Reshape/Expand, Tile's repeats, Slice's starts/ends/axes/steps, Pad's pads, Resize's
scales/sizes, the axes of Reduce*/Squeeze/Unsqueeze, TopK's K, Range, ConstantOfShape,
OneHot's depth, Split's sizes, CumSum's axis. Here each arrives as a graph input, so
nothing is known at conversion: the IR gives the output dims that depend on it run-time
symbols, the numpy reference just computes, and the C++ runtime infers those shapes at
invoke (and every shape downstream of them), with their memory planned then.

Oracle: onnxruntime on the same model. Each case runs several parameter values through
one runtime interpreter (a larger output after a smaller one and back), so buffers
sized at invoke must grow and be reused.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from mobconv import runtime  # noqa: E402
from mobconv.errors import MobconvError  # noqa: E402
from mobconv.formats.reader import from_bytes  # noqa: E402
from mobconv.formats.writer import to_bytes  # noqa: E402
from mobconv.frontends.onnx import load_onnx  # noqa: E402
from mobconv.reference import run as run_reference  # noqa: E402

OPSET = 18
RNG = np.random.default_rng(10)
_NP_TO_ONNX = {"float32": T.FLOAT, "int64": T.INT64, "int32": T.INT32, "float16": T.FLOAT16}


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def i64(*values):
    return np.asarray(values, np.int64)


def model(nodes, inputs, outputs, inits=(), opset=OPSET):
    """An ONNX model; `inputs`: name -> (numpy dtype name, shape); outputs: names (float32
    unless given as (name, dtype))."""
    ins = [oh.make_tensor_value_info(n, _NP_TO_ONNX[d], s) for n, (d, s) in inputs.items()]
    outs = []
    for o in outputs:
        name, dtype = (o, "float32") if isinstance(o, str) else o
        outs.append(oh.make_tensor_value_info(name, _NP_TO_ONNX[dtype], None))
    graph = oh.make_graph(nodes, "g", ins, outs, [numpy_helper.from_array(a, n) for n, a in inits])
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])


def signature(feeds):
    return {n: (a.dtype.name, list(a.shape)) for n, a in feeds.items()}


def node(op, inputs, outputs="y", **attrs):
    return oh.make_node(op, inputs, [outputs] if isinstance(outputs, str) else outputs, **attrs)


# case name -> (nodes, outputs, [feeds, ...]); every feed set of one case has the same shapes
CASES = {
    "reshape": ([node("Reshape", ["x", "shape"])], ["y"],
                [{"x": f32(2, 3, 4), "shape": i64(4, 3, 2)},
                 {"x": f32(2, 3, 4), "shape": i64(0, -1, 2)},
                 {"x": f32(2, 3, 4), "shape": i64(24, 1, 1)}]),
    "expand": ([node("Expand", ["x", "shape"])], ["y"],
               [{"x": f32(3, 1), "shape": i64(2, 3, 4)},
                {"x": f32(3, 1), "shape": i64(5, 3, 9)},
                {"x": f32(3, 1), "shape": i64(1, 1, 1)}]),
    "tile": ([node("Tile", ["x", "repeats"])], ["y"],
             [{"x": f32(2, 3), "repeats": i64(1, 2)},
              {"x": f32(2, 3), "repeats": i64(4, 3)},
              {"x": f32(2, 3), "repeats": i64(0, 2)}]),
    "slice": ([node("Slice", ["x", "starts", "ends", "axes", "steps"])], ["y"],
              [{"x": f32(5, 7), "starts": i64(1, 0), "ends": i64(4, 7), "axes": i64(0, 1), "steps": i64(1, 2)},
               {"x": f32(5, 7), "starts": i64(-1, 6), "ends": i64(-9, -100), "axes": i64(1, 0),
                "steps": i64(-1, -2)},
               {"x": f32(5, 7), "starts": i64(3, 3), "ends": i64(3, 3), "axes": i64(0, -1), "steps": i64(1, 1)}]),
    "pad_constant": ([node("Pad", ["x", "pads", "value"], mode="constant")], ["y"],
                     [{"x": f32(3, 4), "pads": i64(1, 0, 2, 3), "value": np.array(1.5, np.float32)},
                      {"x": f32(3, 4), "pads": i64(4, 5, 6, 7), "value": np.array(-2, np.float32)},
                      {"x": f32(3, 4), "pads": i64(-1, 0, 0, -2), "value": np.array(0, np.float32)}]),
    "pad_reflect_axes": ([node("Pad", ["x", "pads", "", "axes"], mode="reflect")], ["y"],
                         [{"x": f32(2, 5, 6), "pads": i64(1, 2, 2, 1), "axes": i64(1, 2)},
                          {"x": f32(2, 5, 6), "pads": i64(0, 4, 5, 3), "axes": i64(2, 1)}]),
    "resize_scales": ([node("Resize", ["x", "", "scales"], mode="linear")], ["y"],
                      [{"x": f32(1, 2, 4, 5), "scales": np.array([1, 1, 2, 1.5], np.float32)},
                       {"x": f32(1, 2, 4, 5), "scales": np.array([1, 1, 3.5, 4], np.float32)},
                       {"x": f32(1, 2, 4, 5), "scales": np.array([1, 1, 0.5, 0.6], np.float32)}]),
    "resize_sizes": ([node("Resize", ["x", "", "", "sizes"], mode="nearest")], ["y"],
                     [{"x": f32(1, 2, 4, 5), "sizes": i64(1, 2, 7, 3)},
                      {"x": f32(1, 2, 4, 5), "sizes": i64(1, 2, 16, 20)},
                      {"x": f32(1, 2, 4, 5), "sizes": i64(1, 2, 1, 1)}]),
    "reduce_sum_drop": ([node("ReduceSum", ["x", "axes"], keepdims=0)], ["y"],
                        [{"x": f32(3, 4, 5), "axes": i64(1)}, {"x": f32(3, 4, 5), "axes": i64(-1)},
                         {"x": f32(3, 4, 5), "axes": i64(0)}]),
    "reduce_max_keep": ([node("ReduceMax", ["x", "axes"], keepdims=1)], ["y"],
                        [{"x": f32(3, 4, 5), "axes": i64(0, 2)}, {"x": f32(3, 4, 5), "axes": i64(1, -1)}]),
    "reduce_mean_all": ([node("ReduceMean", ["x", "axes"], keepdims=0)], ["y"],
                        [{"x": f32(3, 4), "axes": np.zeros(0, np.int64)}]),
    "squeeze": ([node("Squeeze", ["x", "axes"])], ["y"],
                [{"x": f32(1, 3, 1, 2), "axes": i64(0, 2)}, {"x": f32(1, 3, 1, 2), "axes": i64(-2, 0)}]),
    "unsqueeze": ([node("Unsqueeze", ["x", "axes"])], ["y"],
                  [{"x": f32(3, 2), "axes": i64(0, 3)}, {"x": f32(3, 2), "axes": i64(1, -1)}]),
    "topk": ([node("TopK", ["x", "k"], ["v", "i"])], ["v", ("i", "int64")],
             [{"x": f32(3, 7), "k": i64(2)}, {"x": f32(3, 7), "k": i64(7)}, {"x": f32(3, 7), "k": i64(0)}]),
    "range_int": ([node("Range", ["start", "limit", "delta"])], [("y", "int64")],
                  [{"start": np.array(2, np.int64), "limit": np.array(9, np.int64), "delta": np.array(3, np.int64)},
                   {"start": np.array(-5, np.int64), "limit": np.array(40, np.int64),
                    "delta": np.array(1, np.int64)},
                   {"start": np.array(5, np.int64), "limit": np.array(5, np.int64), "delta": np.array(-1, np.int64)}]),
    "range_float": ([node("Range", ["start", "limit", "delta"])], ["y"],
                    [{"start": np.array(0.5, np.float32), "limit": np.array(3, np.float32),
                      "delta": np.array(0.25, np.float32)},
                     {"start": np.array(10, np.float32), "limit": np.array(-1, np.float32),
                      "delta": np.array(-0.5, np.float32)}]),
    "constant_of_shape": ([oh.make_node("ConstantOfShape", ["shape"], ["y"],
                                        value=numpy_helper.from_array(np.array([2.5], np.float32)))], ["y"],
                          [{"shape": i64(2, 3)}, {"shape": i64(7, 9)}, {"shape": i64(0, 4)}]),
    "onehot": ([node("OneHot", ["idx", "depth", "values"], axis=0)], ["y"],
               [{"idx": i64(0, 2, -1, 5), "depth": np.array(4, np.int64), "values": np.array([0, 3], np.float32)},
                {"idx": i64(0, 2, -1, 5), "depth": np.array(9, np.int64),
                 "values": np.array([-1, 1], np.float32)}]),
    "split": ([node("Split", ["x", "split"], ["a", "b"], axis=0)], ["a", "b"],
              [{"x": f32(6, 4), "split": i64(2, 4)}, {"x": f32(6, 4), "split": i64(6, 0)}]),
    "cumsum_axis": ([node("CumSum", ["x", "axis"], exclusive=1)], ["y"],
                    [{"x": f32(3, 4), "axis": np.array(0, np.int32)},
                     {"x": f32(3, 4), "axis": np.array(-1, np.int32)}]),
    # every op after a run-time shape is shaped at invoke too, including Shape of it
    "chain": ([node("Reshape", ["x", "shape"], "r"), node("Relu", ["r"], "a"),
               node("MatMul", ["a", "w"], "m"), node("Shape", ["m"], "s"),
               oh.make_node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.ones(1, np.float32))),
               node("Add", ["m", "c"], "y")], ["y"],
              [{"x": f32(4, 6), "shape": i64(3, -1, 2)}, {"x": f32(4, 6), "shape": i64(12, 1, 2)},
               {"x": f32(4, 6), "shape": i64(1, 12, 2)}]),
}
INITS = {"chain": [("w", f32(2, 5))]}


def onnx_model(name):
    nodes, outputs, feeds = CASES[name]
    inputs = {n: (a.dtype.name, list(a.shape)) for n, a in feeds[0].items()}
    return model(nodes, inputs, outputs, INITS.get(name, ()))


def check_same(got, want, what):
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("name", sorted(CASES))
def test_parameter_fed_at_run_time(name):
    m = onnx_model(name)
    feeds_list = CASES[name][2]
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    graph = load_onnx(m)
    out_names = [o.name for o in m.graph.output]
    with runtime.Interpreter(to_bytes(graph)) as it:
        for k, feeds in enumerate(feeds_list):
            wants = dict(zip(out_names, sess.run(None, feeds)))
            ref = run_reference(graph, feeds)
            got = it.run(feeds)
            for o in out_names:
                check_same(ref[o], wants[o], f"{name} feed {k} reference {o}")
                check_same(got[o], wants[o], f"{name} feed {k} runtime {o}")


@pytest.mark.parametrize("op,opset", [("Resize", 10), ("Upsample", 9)])
def test_old_nearest_resize_with_run_time_scales_rounds_per_axis(op, opset):
    """Resize-10/Upsample nearest rounds down when an axis upsamples and up when it
    downsamples (onnxruntime): with run-time scales that is decided per axis at run time."""
    m = model([node(op, ["x", "scales"], mode="nearest")], {"x": ("float32", [1, 2, 5, 7]),
                                                           "scales": ("float32", [4])}, ["y"], opset=opset)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    graph = load_onnx(m)
    x = f32(1, 2, 5, 7)
    all_scales = [[1, 1, 2, 3], [1, 1, 1.5, 1.25]]
    if op == "Resize":  # Upsample takes scales >= 1 only
        all_scales += [[1, 1, 0.6, 0.45], [1, 1, 0.6, 2.5], [1, 1, 1.7, 0.8]]
    with runtime.Interpreter(to_bytes(graph)) as it:
        for scales in all_scales:
            feeds = {"x": x, "scales": np.asarray(scales, np.float32)}
            want = sess.run(None, feeds)[0]
            check_same(run_reference(graph, feeds)["y"], want, f"reference {scales}")
            check_same(it.run(feeds)["y"], want, f"runtime {scales}")


def test_run_time_dims_are_symbols_in_the_ir_and_the_file():
    graph = load_onnx(onnx_model("reshape"))
    shape = graph.values["y"].shape
    assert len(shape) == 3 and all(isinstance(d, str) for d in shape), shape
    back = from_bytes(to_bytes(graph))
    assert back.values["y"].shape == shape
    assert tuple(back.signature.outputs[0].shape) == shape
    with runtime.Interpreter(to_bytes(graph)) as it:
        assert it.outputs[0]["shape"] == (-1, -1, -1)  # known once the op has run
        it.run(CASES["reshape"][2][0])
        assert it.outputs[0]["shape"] == (4, 3, 2)


def test_constant_parameters_keep_static_shapes():
    """The same models with the parameters as initializers: exact dims at conversion and
    in the runtime before any invoke (nothing is left to run time)."""
    for name in ("reshape", "slice", "resize_scales", "topk", "onehot", "split"):
        nodes, outputs, feeds_list = CASES[name]
        feeds = feeds_list[0]
        data = {n for nd in nodes for n in nd.input[:1]}
        params = [(n, a) for n, a in feeds.items() if n not in data]
        inputs = {n: (a.dtype.name, list(a.shape)) for n, a in feeds.items() if n in data}
        m = model(nodes, inputs, outputs, params)
        graph = load_onnx(m)
        want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {n: feeds[n] for n in inputs})
        for o, w in zip(graph.outputs, want):
            assert graph.values[o].shape == w.shape, (name, o)
        with runtime.Interpreter(to_bytes(graph)) as it:
            assert [tuple(i["shape"]) for i in it.outputs] == [w.shape for w in want], name


def test_detector_resize_scales_computed_from_the_input():
    """A detector-style upsampling whose scales are computed from the input's size and a
    run-time factor (float arithmetic the converter cannot follow), then a Conv and a
    reduction over run-time axes; the input is resized between runs."""
    w = f32(4, 3, 3, 3)
    nodes = [
        node("Shape", ["x"], "sx", start=2, end=4), node("Cast", ["sx"], "fx", to=T.FLOAT),
        node("Div", ["target", "fx"], "ratio"), node("Concat", ["ones", "ratio"], "scales", axis=0),
        node("Resize", ["x", "", "scales"], "up", mode="nearest"),
        node("Conv", ["up", "w"], "c", pads=[1, 1, 1, 1]), node("Relu", ["c"], "r"),
        node("ReduceMean", ["r", "axes"], "y", keepdims=1),
    ]
    m = model(nodes, {"x": ("float32", [1, 3, "H", "W"]), "target": ("float32", [2]), "axes": ("int64", [1])},
              ["y"], [("ones", np.ones(2, np.float32)), ("w", w)])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    graph = load_onnx(m)
    with runtime.Interpreter(to_bytes(graph)) as it:
        for h, wd, target, axis in ((4, 5, (8, 10), 3), (6, 3, (24, 6), 2), (5, 5, (5, 5), 1)):
            feeds = {"x": f32(1, 3, h, wd), "target": np.asarray(target, np.float32), "axes": i64(axis)}
            want = sess.run(None, feeds)[0]
            check_same(run_reference(graph, feeds)["y"], want, f"reference {h}x{wd}")
            check_same(it.run(feeds)["y"], want, f"runtime {h}x{wd}")


def test_bad_run_time_values_are_errors_at_invoke_and_the_interpreter_recovers():
    graph = load_onnx(onnx_model("reshape"))
    bad = {"x": f32(2, 3, 4), "shape": i64(5, -1, 1)}
    with pytest.raises(MobconvError, match="Reshape"):
        run_reference(graph, bad)
    with runtime.Interpreter(to_bytes(graph)) as it:
        with pytest.raises(runtime.RuntimeError_, match=r"SHAPE_ERROR: .*'y', Reshape|SHAPE_ERROR: .*Reshape"):
            it.run(bad)
        good = CASES["reshape"][2][0]
        check_same(it.run(good)["y"], good["x"].reshape(4, 3, 2), "after a failed invoke")
    huge = load_onnx(onnx_model("expand"))
    with runtime.Interpreter(to_bytes(huge)) as it:
        with pytest.raises(runtime.RuntimeError_, match="too large"):
            it.run({"x": f32(3, 1), "shape": i64(1 << 20, 3, 1 << 20)})
        with pytest.raises(runtime.RuntimeError_, match="negative"):
            it.run({"x": f32(3, 1), "shape": i64(-2, 3, 1)})


# (case, parameter values, message of the rule) found by fuzzing the parameters of CASES:
# values a converter used to check as constants now reach both backends at run time
BAD_VALUES = [
    ("reshape", {"shape": i64(-2, 12, 1)}, "must be >= -1"),
    ("onehot", {"depth": np.array(-5, np.int64)}, "depth"),
    ("cumsum_axis", {"axis": np.array(-4, np.int32)}, "out of range"),
    ("reduce_max_keep", {"axes": i64(-1, 2)}, "repeated axis"),
    ("squeeze", {"axes": i64(0, -4)}, "repeated axis"),
    ("pad_reflect_axes", {"pads": i64(1, 1, 1, 1), "axes": i64(1, -2)}, "repeated axis"),
    ("unsqueeze", {"axes": i64(0, 0)}, "repeated axis"),
    ("topk", {"k": i64(8)}, "K"),
    ("split", {"split": i64(2, 5)}, "sum"),
]


@pytest.mark.parametrize("name,params,rule", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_invalid_run_time_values_are_refused_by_both_backends(name, params, rule):
    graph = load_onnx(onnx_model(name))
    feeds = dict(CASES[name][2][0], **params)
    with pytest.raises(MobconvError, match=rule):
        run_reference(graph, feeds)
    with runtime.Interpreter(to_bytes(graph)) as it:
        with pytest.raises(runtime.RuntimeError_, match="SHAPE_ERROR"):
            it.run(feeds)


def test_slice_with_a_step_near_int64_max():
    """ceil((end - start) / step) overflowed in the runtime for a step near 2^63."""
    graph = load_onnx(onnx_model("slice"))
    feeds = {"x": f32(5, 7), "starts": i64(1, 0), "ends": i64(5, 7), "axes": i64(0, 1),
             "steps": i64(1, (1 << 63) - 1)}
    want = feeds["x"][1:5, 0:1]
    check_same(run_reference(graph, feeds)["y"], want, "reference")
    with runtime.Interpreter(to_bytes(graph)) as it:
        check_same(it.run(feeds)["y"], want, "runtime")


def test_onnx_expand_shape_model_suites():
    """onnx's own backend model cases simple/test_expand_shape_model1..4: the shape is a
    graph input, fed as such (nothing baked into a constant), on both backends."""
    import glob
    import os

    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "simple")
    dirs = sorted(glob.glob(os.path.join(root, "test_expand_shape_model*")))
    assert len(dirs) == 4
    for d in dirs:
        m = onnx.load(os.path.join(d, "model.onnx"))
        read = lambda path: numpy_helper.to_array(onnx.load_tensor(path))  # noqa: E731
        feeds = {vi.name: read(os.path.join(d, "test_data_set_0", f"input_{k}.pb"))
                 for k, vi in enumerate(m.graph.input)}
        want = read(os.path.join(d, "test_data_set_0", "output_0.pb"))
        graph = load_onnx(m)
        assert graph.inputs == [vi.name for vi in m.graph.input]
        out = m.graph.output[0].name
        check_same(run_reference(graph, feeds)[out], want, f"{d} reference")
        with runtime.Interpreter(to_bytes(graph)) as it:
            check_same(it.run(feeds)[out], want, f"{d} runtime")


def test_torch_export_with_parameters_computed_from_a_dynamic_dim(tmp_path):
    """torch.onnx (TorchScript exporter, dynamic batch and width): topk(x, x.shape[1] // 2),
    x[:, :x.shape[1] // 3] and pad by x.shape[1] % 3 compute K, the slice end and the pads
    from the dynamic width; converted with the optimization passes (mobconv.convert) and run
    at three widths on both backends."""
    import contextlib
    import io
    import logging
    import warnings

    import mobconv

    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def forward(self, x):
            v, i = torch.topk(x, x.shape[1] // 2, dim=1)
            head = x[:, : x.shape[1] // 3].sum(dim=1, keepdim=True)
            return v * 2, i, head, torch.nn.functional.pad(x, (0, x.shape[1] % 3))

    path = str(tmp_path / "net.onnx")
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(Net(), (torch.randn(2, 9),), path, input_names=["x"],
                              output_names=["v", "i", "head", "padded"], opset_version=17, dynamo=False,
                              dynamic_axes={"x": {0: "B", 1: "W"}})
    finally:
        logging.disable(logging.NOTSET)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    converted = mobconv.convert(path)
    graph = converted.graph
    with runtime.Interpreter(converted.to_bytes()) as it:
        for shape in ((2, 9), (3, 14), (1, 5)):
            feeds = {"x": f32(*shape)}
            wants = dict(zip(["v", "i", "head", "padded"], sess.run(None, feeds)))
            ref = run_reference(graph, feeds)
            got = it.run(feeds)
            for o, want in wants.items():
                check_same(ref[o], want, f"{shape} reference {o}")
                check_same(got[o], want, f"{shape} runtime {o}")
