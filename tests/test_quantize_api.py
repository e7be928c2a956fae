"""The quantizer's spine: QuantConfig validation (exact messages), QDQ insertion
(scales and zero points against hand formulas, int8 weights, int32 biases, shared
parameters, exclude, io_dtype), and `quantize()` end to end: the int8 model runs on
the reference and the C++ runtime (bit-identical), stays close to the float model
(SQNR), is deterministic byte for byte, and leaves its input untouched."""
import sys
from pathlib import Path

import numpy as np
import pytest

import mobconv
from mobconv import quantize
from mobconv.errors import ArgumentError, MobconvError, UsageError
from mobconv.ir import Graph
from mobconv.ops import quant_math as qm
from mobconv.quantize.config import CLI_NAMES, QuantConfig
from mobconv.quantize.qdq import (activation_params, insert_qdq, prepare, quantizable_nodes,
                                  weight_scales)
from mobconv.reference.interpreter import run as run_graph

sys.path.insert(0, str(Path(__file__).parent))
import quant_core_nets as nets  # noqa: E402


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    path = nets.build_cnn(tmp_path_factory.mktemp("qcore") / "cnn.onnx")
    return mobconv.convert(path)


@pytest.fixture(scope="module")
def calib():
    return nets.samples(12)


@pytest.fixture(scope="module")
def test_feeds():
    return nets.samples(6, seed=7, batch=4)


@pytest.fixture(scope="module")
def int8_model(cnn, calib):
    return quantize.quantize(cnn, calib, progress=False)


def _sqnrs(float_model, quant_model, feeds, backend="reference"):
    return [nets.sqnr_db(float_model.run(f, backend="reference")[nets.OUTPUT],
                         quant_model.run(f, backend=backend)[nets.OUTPUT]) for f in feeds]


# ---- validation: every option, exact one-line messages, before any work ------------------

P = "quantize(): "
VALIDATION = [
    (dict(scheme="int4"), "scheme='int4' is not a quantization scheme (known: int8, int8-weights, dynamic, fp16)"),
    (dict(method="kl"), "method='kl' is not a calibration method (known: minmax, percentile, entropy, mse)"),
    (dict(method="percentile", percentile=0), "percentile=0 must be a number in (0, 100], e.g. 99.99"),
    (dict(method="percentile", percentile=100.5), "percentile=100.5 must be a number in (0, 100], e.g. 99.99"),
    (dict(method="percentile", percentile=float("nan")),
     "percentile=nan must be a number in (0, 100], e.g. 99.99"),
    (dict(percentile=99.9), "percentile applies to method='percentile' only (the method is 'mse')"),
    (dict(method="minmax", percentile=99.9),
     "percentile applies to method='percentile' only (the method is 'minmax')"),
    (dict(max_sqnr_drop=1.0, min_sqnr=30.0),
     "max_sqnr_drop and min_sqnr are two budgets for the same output SQNR; give one of them"),
    (dict(max_sqnr_drop=-1), "max_sqnr_drop=-1 must be >= 0"),
    (dict(min_sqnr=float("inf")), "min_sqnr=inf must be a finite number (decibels or metric units)"),
    (dict(evaluate=lambda m: 1.0),
     "evaluate needs max_drop (the largest drop of your metric the quantized model may have, e.g. 0.01)"),
    (dict(max_drop=0.01),
     "max_drop needs evaluate (a function model -> score that measures your metric on your data)"),
    (dict(evaluate=lambda m: 1.0, max_drop=0.01, min_sqnr=20.0),
     "evaluate with max_drop and min_sqnr are two accuracy budgets; give one of them"),
    (dict(evaluate="accuracy", max_drop=0.01),
     "evaluate must be a function model -> score (higher is better), got a str"),
    (dict(io_dtype="uint8"), "io_dtype='uint8' is not a graph input/output dtype (known: float32, int8)"),
    (dict(per_tensor=1), "per_tensor must be True or False, got 1"),
    (dict(equalize="auto"), "equalize must be None (automatic), True or False, got 'auto'"),
    (dict(num_samples=0), "num_samples=0 must be a positive integer, e.g. 200"),
    (dict(num_samples=2.0), "num_samples=2.0 must be a positive integer, e.g. 200"),
    (dict(exclude=[3]), "exclude must be a list of node names, got 3 in it"),
    (dict(scheme="fp16", method="mse", calibration=None),
     "method applies to scheme='int8' only (scheme='fp16' stores float16 weights: no int8 ranges)"),
    (dict(scheme="int8-weights", io_dtype="int8", calibration=None),
     "io_dtype applies to scheme='int8' only (scheme='int8-weights' stores int8 weights and "
     "computes in float: no activation ranges)"),
    (dict(scheme="fp16", per_tensor=True, calibration=None),
     "per_tensor applies to scheme='int8' only (scheme='fp16' stores float16 weights: no int8 ranges)"),
    (dict(scheme="fp16"),
     "scheme='fp16' uses no calibration data (stores float16 weights: no int8 ranges); drop "
     "calibration, or use scheme='int8'"),
    (dict(scheme="int8-weights", num_samples=10, calibration=None),
     "num_samples limits the calibration data, which scheme='int8-weights' does not use"),
    (dict(calibration=None),
     "scheme='int8' needs calibration data (calibration: a folder of .npy/.npz files or images, a "
     "list of feed dicts, or a reader with get_next()); without data use scheme='int8-weights' "
     "(weight-only) or scheme='fp16'"),
]


@pytest.mark.parametrize("kwargs, message", VALIDATION, ids=[m[:40] for _, m in VALIDATION])
def test_validation_messages(cnn, calib, kwargs, message, monkeypatch):
    import mobconv.quantize.api as qapi

    def no_work(*a, **k):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(qapi, "quantize_with_config", no_work)
    kwargs = dict(kwargs)
    data = kwargs.pop("calibration", calib)
    with pytest.raises(ArgumentError) as info:
        quantize.quantize(cnn, data, **kwargs)
    assert str(info.value) == P + message
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_cli_wording_names_flags():
    with pytest.raises(ArgumentError) as info:
        QuantConfig.create(scheme="fp16", method="entropy", names=CLI_NAMES, where="")
    assert str(info.value) == ("--method applies to --scheme int8 only (--scheme fp16 stores "
                               "float16 weights: no int8 ranges)")


def test_exclude_unknown_node(cnn, calib):
    with pytest.raises(ArgumentError) as info:
        quantize.quantize(cnn, calib, exclude=["conv1", "nope"])
    assert str(info.value).startswith(f"{cnn.source}: exclude names no node of the model: 'nope' "
                                      "(nodes: conv1, dw, pw, ")


def test_defaults_resolved():
    config = QuantConfig.create(calibration_given=True)
    assert (config.method, config.percentile, config.equalize, config.bias_correction) == \
        (quantize.DEFAULT_METHOD, 99.99, None, True)
    weights = QuantConfig.create(scheme="int8-weights")
    assert weights.bias_correction is False and weights.equalize is None
    assert QuantConfig.create(scheme="fp16").equalize is False
    assert QuantConfig.create(calibration_given=True, num_samples=np.int64(5)).num_samples == 5


def test_already_quantized_and_weightless_models_refused(int8_model, calib):
    with pytest.raises(UsageError, match=r"is already quantized \(scheme int8\); quantize the float model"):
        quantize.quantize(int8_model, calib)
    g = Graph("noweights")
    g.add_input("x", "float32", (1, 4))
    g.add_node("Relu", ["x"], ["y"])
    g.outputs = ["y"]
    with pytest.raises(UsageError, match=r"^m.mob: has no float32 weights to quantize$"):
        quantize.quantize(mobconv.Model(g, source="m.mob"), scheme="int8-weights")


def test_model_argument_type():
    with pytest.raises(ArgumentError, match=r"model must be a mobconv.Model or the path of a model "
                                            r"file, got a int"):
        quantize.quantize(3, scheme="fp16")


# ---- parameters: independent formulas ---------------------------------------------------


@pytest.mark.parametrize("lo, hi", [(-1.0, 3.0), (0.5, 2.0), (-4.0, -0.25), (0.0, 6.0), (-1e-3, 1e-3)])
def test_activation_params_asymmetric(lo, hi):
    scale, zp = activation_params(lo, hi)
    lo0, hi0 = min(lo, 0.0), max(hi, 0.0)  # the range always holds real zero
    assert scale == np.float32((hi0 - lo0) / 255)
    assert -128 <= zp <= 127
    # real zero is exactly representable, and both ends are within half a step
    q = qm.quantize_linear(np.array([lo0, 0.0, hi0], np.float32), mobconv.ir.QuantParams([scale], [zp]))
    deq = qm.dequantize_linear(q, mobconv.ir.QuantParams([scale], [zp]))
    assert deq[1] == 0.0
    assert abs(deq[0] - lo0) <= scale * 0.5001 and abs(deq[2] - hi0) <= scale * 0.5001


def test_activation_params_symmetric_and_degenerate():
    assert activation_params(-2.0, 1.0, symmetric=True) == (np.float32(2.0 / 127), 0)
    assert activation_params(0.0, 0.0) == (np.float32(1.0), 0)
    assert activation_params(0.0, 0.0, symmetric=True) == (np.float32(1.0), 0)
    assert activation_params(0.0, 1e-30)[0] == np.float32(1e-9)  # never a denormal scale


def test_weight_scales_per_channel_and_floor():
    w = np.array([[1.0, -2.54], [0.0, 0.0], [0.1, 0.05]], np.float32)
    np.testing.assert_array_equal(weight_scales(w, 0), np.float32([2.54 / 127, 1.0, 0.1 / 127]))
    np.testing.assert_array_equal(weight_scales(w, None), np.float32([2.54 / 127]))
    np.testing.assert_array_equal(weight_scales(w, 0, floor=0.01), np.float32([0.02, 0.01, 0.01]))


# ---- the QDQ graph --------------------------------------------------------------------


@pytest.fixture(scope="module")
def qdq(cnn, calib):
    from mobconv.quantize.calibration import collect_ranges

    graph = prepare(cnn.graph)
    ranges = collect_ranges(graph, calib, "minmax", progress=False)
    config = QuantConfig.create(calibration_given=True, method="minmax", bias_correction=False,
                                equalize=False)
    return graph, ranges, config, insert_qdq(graph, ranges, config)


def test_qdq_structure(qdq):
    graph, ranges, config, g = qdq
    producers = g.producers()
    # the residual Add and its Relu (fused into 'pw' with a symbolic batch too) are split
    # off again for quantization under the names the fusion gives them
    assert quantizable_nodes(graph, config) == ["conv1", "dw", "pw", "pw/residual", "pw/Relu", "pool",
                                                "conv3", "concat", "gap", "flatten", "fc"]
    assert g.inputs == graph.inputs and g.outputs == graph.outputs
    for node in g.nodes:
        if node.op in ("Conv", "Gemm"):
            x, w, b = node.inputs[:3]
            assert producers[x].op == "DequantizeLinear"
            assert producers[w].op == "DequantizeLinear" and producers[b].op == "DequantizeLinear"
            wq = g.values[producers[w].inputs[0]]
            assert wq.dtype == "int8" and int(np.abs(wq.data.astype(int)).max()) <= 127
            # every output channel uses the full symmetric range
            per_channel = np.abs(wq.data.reshape(wq.data.shape[0] if node.op == "Conv" else -1, -1)
                                 .astype(int)).max(axis=1) if node.op == "Conv" else None
            if per_channel is not None:
                assert (per_channel == 127).all()
            bq = g.values[producers[b].inputs[0]]
            assert bq.dtype == "int32"
            # int32 bias = round(b / (s_in * s_w[c])): recomputed from the float graph
            s_in = g.values[producers[x].inputs[1]].data
            s_w = g.values[producers[w].inputs[1]].data
            b_float = graph.values[node.inputs[2].rsplit("/", 1)[0]].data
            want = np.rint(b_float.astype(np.float32) / (np.float32(s_in) * s_w)).astype(np.int32)
            np.testing.assert_array_equal(bq.data, want)
        for out in node.outputs:
            if node.op not in ("QuantizeLinear", "DequantizeLinear") and out in ranges:
                readers = [n for n in g.nodes if out in n.inputs]
                assert [r.op for r in readers] == ["QuantizeLinear"], out


def test_qdq_scales_follow_ranges(qdq):
    graph, ranges, config, g = qdq
    shared = {"mp": "rres", "gap": "cat", "flat": "gap"}  # MaxPool, GlobalAveragePool, Flatten
    q_of = {n.inputs[0]: n for n in g.nodes if n.op == "QuantizeLinear"}
    params = lambda t: (g.values[q_of[t].inputs[1]].data, int(g.values[q_of[t].inputs[2]].data))  # noqa: E731
    checked = 0
    for t in q_of:
        if t in ranges and t not in shared:
            r = ranges[t]
            assert params(t) == activation_params(r.lo, r.hi), t
            checked += 1
    assert checked == 9
    # ops whose int8 form keeps the input's parameters get them on the output
    for out, src in shared.items():
        assert params(out) == params(src)


def test_qdq_graph_is_fake_quant_of_float(qdq, test_feeds):
    graph, ranges, config, g = qdq
    for feeds in test_feeds[:2]:
        want = run_graph(graph, feeds)[nets.OUTPUT]
        got = run_graph(g, feeds)[nets.OUTPUT]
        assert nets.sqnr_db(want, got) > 30


def test_lowered_matches_qdq_graph(qdq, test_feeds):
    """The integer model computes what the fake-quant graph does, within a few LSBs of
    the output (the fixed-point requantization differs from float rounding at ties)."""
    from mobconv.passes.lower_qdq import lower_qdq

    graph, ranges, config, g = qdq
    lowered = lower_qdq(g.copy())
    assert sum(1 for n in lowered.nodes if n.op == "Conv" and lowered.values[n.outputs[0]].dtype == "int8") == 4
    dq = next(n for n in g.nodes if n.outputs[0] == nets.OUTPUT)
    assert dq.op == "DequantizeLinear"
    out_scale = float(g.values[dq.inputs[1]].data)
    for feeds in test_feeds[:2]:
        a = run_graph(g, feeds)[nets.OUTPUT]
        b = run_graph(lowered, feeds)[nets.OUTPUT]
        assert np.abs(a - b).max() <= 4 * out_scale + 1e-6


def test_split_and_unfused_forms_are_output_equal(cnn, test_feeds):
    cnn = mobconv.convert(cnn.source, input_shapes={nets.INPUT: (4, 3, 12, 12)})  # known shapes: fused
    prepared = prepare(cnn.graph)
    assert any(n.op == "Conv" and len(n.inputs) > 3 and n.inputs[3] for n in cnn.graph.nodes)  # residual fused
    assert not any(n.op == "Conv" and len(n.inputs) > 3 and n.inputs[3] for n in prepared.nodes)
    assert [n.op for n in prepared.nodes if n.name.startswith("conv3")] == ["Conv", "LeakyRelu"]
    for feeds in test_feeds[:2]:
        np.testing.assert_allclose(run_graph(prepared, feeds)[nets.OUTPUT],
                                   run_graph(cnn.graph, feeds)[nets.OUTPUT], rtol=1e-5, atol=1e-5)


def test_fused_residual_net_quantizes_every_conv(cnn, calib, test_feeds):
    fixed = mobconv.convert(cnn.source, input_shapes={nets.INPUT: (1, 3, 12, 12)})
    assert any(n.op == "Conv" and len(n.inputs) > 3 and n.inputs[3] for n in fixed.graph.nodes)
    q = quantize.quantize(fixed, calib, progress=False)
    g = q.graph
    assert [n.name for n in g.nodes if n.op == "Conv" and g.values[n.outputs[0]].dtype == "int8"] == \
        ["conv1", "dw", "pw", "conv3"]
    assert [n.op for n in g.nodes if n.name == "pw/residual"] == ["Add"]
    feeds = [{nets.INPUT: f[nets.INPUT][:1]} for f in test_feeds[:3]]
    assert min(_sqnrs(fixed, q, feeds)) > 30


# ---- quantize() end to end --------------------------------------------------------------


def test_int8_model_is_integer_and_close_to_float(cnn, int8_model, test_feeds):
    g = int8_model.graph
    int8_convs = [n.name for n in g.nodes if n.op == "Conv" and g.values[n.outputs[0]].dtype == "int8"]
    assert len(int8_convs) == 4
    assert g.values[nets.INPUT].dtype == "float32" and g.values[nets.OUTPUT].dtype == "float32"
    assert int8_model.metadata.extra["quantization.scheme"] == "int8"
    assert int8_model.metadata.extra["quantization.method"] == quantize.DEFAULT_METHOD
    sqnr = _sqnrs(cnn, int8_model, test_feeds)
    assert min(sqnr) > 30, sqnr


def test_int8_model_runs_in_the_runtime_bit_exact(int8_model, test_feeds, tmp_path):
    path = tmp_path / "q.mob"
    int8_model.save(path)
    loaded = mobconv.load(path)
    for feeds in test_feeds[:3]:
        ref = loaded.run(feeds, backend="reference")[nets.OUTPUT]
        rt = loaded.run(feeds, backend="runtime")[nets.OUTPUT]
        np.testing.assert_array_equal(ref, rt)


def test_deterministic_and_input_untouched(cnn, calib, int8_model):
    before = cnn.to_bytes()
    again = quantize.quantize(cnn, calib, progress=False)
    assert again.to_bytes() == int8_model.to_bytes()
    assert cnn.to_bytes() == before


def test_one_pass_data_without_bias_correction(cnn, calib, int8_model):
    with pytest.raises(UsageError, match=r"can be read only once, and bias correction reads it again "
                                         r"after calibration: .*or pass bias_correction=False$"):
        quantize.quantize(cnn, iter(calib), progress=False)
    q = quantize.quantize(cnn, (f for f in calib), bias_correction=False, progress=False)
    assert q.metadata.extra["quantization.bias_correction"] == "false"


def test_per_tensor_weights(cnn, calib, test_feeds):
    q = quantize.quantize(cnn, calib, per_tensor=True, progress=False)
    weights = [v for v in q.graph.values.values() if v.data is not None and v.data.ndim >= 2
               and v.dtype == "int8"]
    assert len(weights) == 5 and all(len(v.quant.scales) == 1 for v in weights)
    assert min(_sqnrs(cnn, q, test_feeds)) > 25


def test_symmetric_activations(cnn, calib, test_feeds):
    q = quantize.quantize(cnn, calib, symmetric_activations=True, progress=False)
    acts = [v for v in q.graph.values.values() if v.data is None and v.dtype == "int8"]
    assert acts and all(v.quant.zero_points == [0] for v in acts)
    assert min(_sqnrs(cnn, q, test_feeds)) > 25


def test_io_dtype_int8(cnn, calib, test_feeds, int8_model):
    q = quantize.quantize(cnn, calib, io_dtype="int8", progress=False)
    assert [s.dtype for s in q.inputs] == ["int8"] and [s.dtype for s in q.outputs] == ["int8"]
    xq, yq = q.graph.values[nets.INPUT].quant, q.graph.values[nets.OUTPUT].quant
    for feeds in test_feeds[:3]:
        y = q.run({nets.INPUT: qm.quantize_linear(feeds[nets.INPUT], xq)}, backend="reference")[nets.OUTPUT]
        assert y.dtype == np.int8
        # the same integers as the float-edged model, dequantized at its output
        np.testing.assert_array_equal(qm.dequantize_linear(y, yq),
                                      int8_model.run(feeds, backend="reference")[nets.OUTPUT])


def test_io_dtype_int8_keeps_a_float_output_float():
    """tiny_cnn ends in Softmax (no int8 form): its input becomes int8, its output stays float."""
    model = mobconv.convert(str(Path(__file__).parent.parent / "model_zoo/onnx/tiny_cnn.onnx"))
    rng = np.random.default_rng(3)
    data = [{"input": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(4)]
    q = quantize.quantize(model, data, io_dtype="int8", bias_correction=False, progress=False)
    assert [s.dtype for s in q.inputs] == ["int8"] and [s.dtype for s in q.outputs] == ["float32"]
    xq = q.graph.values["input"].quant
    for feeds in data[:2]:
        got = q.run({"input": qm.quantize_linear(feeds["input"], xq)}, backend="reference")["probs"]
        want = model.run(feeds, backend="reference")["probs"]
        assert nets.sqnr_db(want, got) > 30


def test_exclude_keeps_layer_float(cnn, calib, test_feeds):
    q = quantize.quantize(cnn, calib, exclude=["conv3", "fc"], progress=False)
    g = q.graph
    node = {n.name: n for n in g.nodes}
    assert g.values[node["conv3"].outputs[0]].dtype == "float32"
    assert g.values[node["conv3"].inputs[1]].dtype == "float32"  # float weights, untouched
    assert g.values[node["fc"].outputs[0]].dtype == "float32"
    assert g.values[node["dw"].outputs[0]].dtype == "int8"
    assert q.metadata.extra["quantization.exclude"] == "conv3,fc"
    assert min(_sqnrs(cnn, q, test_feeds)) > 30


def test_int8_weights_scheme(cnn, test_feeds):
    q = quantize.quantize(cnn, scheme="int8-weights")
    g = q.graph
    acts = [v.name for v in g.values.values() if v.data is None and v.dtype != "float32"]
    assert acts == []  # activations stay float
    convs = [n for n in g.nodes if n.op in ("Conv", "Gemm")]
    producers = g.producers()
    for n in convs:
        dq = producers[n.inputs[1]]
        assert dq.op == "DequantizeLinear" and g.values[dq.inputs[0]].dtype == "int8"
    weight_bytes = lambda m: sum(v.data.nbytes for v in m.graph.values.values() if v.data is not None)  # noqa: E731
    assert weight_bytes(q) < 0.4 * weight_bytes(cnn)
    sqnr = _sqnrs(cnn, q, test_feeds)
    assert min(sqnr) > 30, sqnr
    for feeds in test_feeds[:2]:
        np.testing.assert_allclose(q.run(feeds, backend="runtime")[nets.OUTPUT],  # float kernels
                                   q.run(feeds, backend="reference")[nets.OUTPUT], rtol=1e-5, atol=1e-5)


def test_fp16_scheme(cnn, test_feeds):
    q = quantize.quantize(cnn, scheme="fp16")
    assert q.metadata.extra["quantization.scheme"] == "fp16"
    assert any(v.dtype == "float16" for v in q.graph.values.values() if v.data is not None)
    for feeds in test_feeds[:2]:
        np.testing.assert_allclose(q.run(feeds, backend="reference")[nets.OUTPUT],
                                   cnn.run(feeds, backend="reference")[nets.OUTPUT], rtol=2e-2, atol=2e-2)


def test_quantize_from_a_path(tmp_path, cnn, calib):
    path = tmp_path / "f.mob"
    cnn.save(path)
    q = quantize.quantize(str(path), calib, progress=False)
    assert q.float_source == str(path) and q.metadata.extra["quantization.scheme"] == "int8"


def test_wrong_calibration_data_is_one_line(cnn):
    bad = [{nets.INPUT: np.full((1, 3, 12, 12), np.nan, np.float32)}]
    with pytest.raises(MobconvError) as info:
        quantize.quantize(cnn, bad, progress=False)
    assert info.value.exit_code == 2 and "\n" not in str(info.value) and "'x'" in str(info.value)


def test_quantized_model_from_a_mob_runs_itself_in_the_runtime(tmp_path, cnn, calib, test_feeds):
    """The result must not carry the float file as its source: the runtime backend runs a
    Model with a .mob source from that file (it ran the float model)."""
    path = tmp_path / "float.mob"
    cnn.save(path)
    q = quantize.quantize(mobconv.load(path), calib, progress=False)
    feeds = test_feeds[0]
    np.testing.assert_array_equal(q.run(feeds, backend="runtime")[nets.OUTPUT],
                                  q.run(feeds, backend="reference")[nets.OUTPUT])


def test_exclude_a_fused_conv_keeps_its_residual_float(cnn, calib):
    """'pw' carries the fused residual Add and Relu in a graph with known shapes: excluding
    it keeps what is split off it ('pw/residual', 'pw/Relu') float too, and those names are
    accepted as well."""
    fixed = mobconv.convert(cnn.source, input_shapes={nets.INPUT: (1, 3, 12, 12)})
    for exclude, float_ops in ((["pw"], {"pw", "pw/residual", "pw/Relu"}),
                               (["pw/residual"], {"pw/residual"})):
        q = quantize.quantize(fixed, calib[:4], exclude=exclude, bias_correction=False, progress=False)
        g = q.graph
        floats = {n.name for n in g.nodes if n.name.startswith("pw")
                  and g.values[n.outputs[0]].dtype == "float32"}
        assert floats == float_ops


def test_exclude_checked_for_fp16(cnn):
    with pytest.raises(ArgumentError, match=r"exclude names no node of the model: 'nope'"):
        quantize.quantize(cnn, scheme="fp16", exclude=["nope"])


@pytest.mark.parametrize("io_dtype", ["float32", "int8"])
def test_an_intermediate_graph_output_keeps_its_name(tmp_path, calib, io_dtype):
    """'r1' is a graph output and also read by the next conv: it keeps its name (the
    inner float tensor is 'r1/float'), and both outputs follow the float model."""
    import onnx
    from onnx import TensorProto, helper

    path = nets.build_cnn(tmp_path / "multi.onnx")
    proto = onnx.load(path)
    proto.graph.output.append(helper.make_tensor_value_info("r1", TensorProto.FLOAT, None))
    onnx.save(proto, path)
    model = mobconv.convert(path)
    q = quantize.quantize(model, calib, io_dtype=io_dtype, progress=False)
    assert [s.name for s in q.outputs] == [nets.OUTPUT, "r1"]
    assert {s.dtype for s in q.outputs} == {io_dtype}
    feeds = nets.samples(1, seed=3)[0]
    qfeeds = feeds if io_dtype == "float32" else {
        nets.INPUT: qm.quantize_linear(feeds[nets.INPUT], q.graph.values[nets.INPUT].quant)}
    want = model.run(feeds, backend="reference")
    got = q.run(qfeeds, backend="runtime")
    assert got.keys() == want.keys()
    for name, array in got.items():
        quant = q.graph.values[name].quant
        deq = array if quant is None else qm.dequantize_linear(array, quant)
        assert nets.sqnr_db(want[name], deq) > 30, name


def test_gemm_alpha_beta_folded(tmp_path):
    """Gemm alpha/beta (not 1) are folded into B and C before quantizing (the integer Gemm
    has alpha = beta = 1); transB=0 puts the output channels on B's axis 1."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    b = numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), "B")
    c = numpy_helper.from_array(rng.standard_normal((1, 4)).astype(np.float32), "C")
    node = helper.make_node("Gemm", ["a", "B", "C"], ["y"], alpha=0.5, beta=2.0, name="gemm")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [b, c])
    path = tmp_path / "gemm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = mobconv.convert(str(path))
    float_gemm = next(n for n in model.graph.nodes if n.op == "Gemm")
    assert (float_gemm.attrs["alpha"], float_gemm.attrs["beta"]) == (0.5, 2.0)
    data = [{"a": rng.standard_normal((2, 6)).astype(np.float32)} for _ in range(8)]
    q = quantize.quantize(model, data, bias_correction=False, progress=False)
    gemm = next(n for n in q.graph.nodes if n.op == "Gemm")
    assert (gemm.attrs["alpha"], gemm.attrs["beta"]) == (1.0, 1.0)
    w = q.graph.values[gemm.inputs[1]]
    assert w.dtype == "int8" and w.quant.axis == 1 and len(w.quant.scales) == 4
    for feeds in data[:3]:
        assert nets.sqnr_db(model.run(feeds, backend="reference")["y"],
                            q.run(feeds, backend="runtime")["y"]) > 35
