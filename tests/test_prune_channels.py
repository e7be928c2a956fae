"""quantize.prune_channels: structured channel pruning.

The oracle, built here independently of the pruner: the ORIGINAL graph with the removed
output channels' weights set to zero (biases kept), i.e. what a masked model computes.
Which channels were removed comes from the pruned model's channel map; everything else
(slicing readers, depthwise chains, residual groups, Concat offsets, Flatten columns,
per-channel constants, folding the removed channels' constant act(bias) into the readers)
is checked by running both models on the numpy reference, and the pruned one on the C++
runtime. Small graphs are written as ONNX and converted, so the converter's fused forms
(activation, residual input R, folded BN) are what the pruner sees."""
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mobconv
from mobconv import quantize
from mobconv.api import Model
from mobconv.errors import ArgumentError
from mobconv.quantize.channel_pruning import kept_channels
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture: build/aarch64-tests)

ZOO = Path(__file__).resolve().parents[1] / "model_zoo" / "onnx"
RNG = np.random.default_rng(12)


# ---- the oracle ---------------------------------------------------------------------------


def zeroed(model, pruned, zero_bias=False, kept=None):
    """`model` with the output channels `pruned` removed zeroed in each layer's weights
    (every Conv/Gemm whose output lost channels); with zero_bias, their biases too.
    `kept`: the channel map to use instead of the pruned model's."""
    kept = kept_channels(pruned) if kept is None else kept
    assert kept, "nothing was pruned"
    graph = model.graph.copy()
    for node in graph.nodes:
        if node.op not in ("Conv", "ConvTranspose", "Gemm") or node.outputs[0] not in kept:
            continue
        transposed = (node.op == "Gemm" and not node.attrs.get("transB", 0)) or \
            node.op == "ConvTranspose"  # weight [C_in, M, k...]
        w = graph.values[node.inputs[1]].data.copy()
        rows = np.swapaxes(w, 0, 1) if transposed else w
        gone = np.ones(rows.shape[0], bool)
        gone[kept[node.outputs[0]]] = False
        rows[gone] = 0
        graph.values[node.inputs[1]].data = np.ascontiguousarray(
            np.swapaxes(rows, 0, 1) if transposed else rows)
        if zero_bias and len(node.inputs) > 2 and node.inputs[2]:
            b = graph.values[node.inputs[2]].data.copy()
            b[..., gone] = 0
            graph.values[node.inputs[2]].data = b
    return Model(graph)


def assert_close(got, want, what, atol=1e-4):
    for name in want:
        err = np.abs(got[name] - want[name]).max()
        assert err <= atol * max(1.0, np.abs(want[name]).max()), \
            f"{what}: output {name!r} differs by {err} (max |want| {np.abs(want[name]).max()})"


def check_against_oracle(model, pruned, feeds, zero_bias=False, runtime=True, kept=None):
    oracle = zeroed(model, pruned, zero_bias, kept)
    want = oracle.run(feeds, backend="reference")
    got = pruned.run(feeds, backend="reference")
    assert_close(got, want, "pruned vs zeroed original (reference)")
    if runtime:
        assert_close(pruned.run(feeds, backend="runtime"), got, "runtime vs reference")


# ---- small graphs, written as ONNX ------------------------------------------------------


def w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def onnx_model(tmp_path, nodes, inits, out_shape, in_shape=(1, 4, 6, 6), name="m.onnx"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def conv(name, x, out, cin, cout, k=1, pad=0, bias=True, group=1, inits=None):
    inits[name + ".w"] = w(cout, cin // group, k, k)
    inputs = [x, name + ".w"]
    if bias:
        inits[name + ".b"] = w(cout, scale=1.0)
        inputs.append(name + ".b")
    return helper.make_node("Conv", inputs, [out], name=name, kernel_shape=[k, k],
                            pads=[pad] * 4, group=group)


def feeds(model, n=2, seed=0):
    shape = tuple(d if isinstance(d, int) else n for d in model.inputs[0].shape)
    return {model.inputs[0].name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


@pytest.fixture(scope="module")
def concat_model(tmp_path_factory):
    """Two convs -> Concat -> Relu -> 1x1 conv -> GAP -> Flatten -> Gemm."""
    tmp, i = tmp_path_factory.mktemp("concat"), {}
    nodes = [conv("a", "x", "ya", 4, 6, k=3, pad=1, inits=i), conv("b", "x", "yb", 4, 10, inits=i),
             helper.make_node("Concat", ["ya", "yb"], ["cat"], name="cat", axis=1),
             helper.make_node("Relu", ["cat"], ["r"], name="relu"),
             conv("c", "r", "yc", 16, 8, inits=i),
             helper.make_node("GlobalAveragePool", ["yc"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
             helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    i["fc.w"], i["fc.b"] = w(3, 8), w(3)
    return mobconv.convert(onnx_model(tmp, nodes, i, (1, 3)))


def test_concat_offsets_and_classifier_match_the_zeroed_original(concat_model):
    pruned = quantize.prune_channels(concat_model, 0.5)
    kept = kept_channels(pruned)
    assert len(kept["ya"]) == 3 and len(kept["yb"]) == 5 and len(kept["yc"]) == 4
    # the Concat's channels: a's kept ones, then b's shifted by a's 6
    assert list(kept["cat"]) == list(kept["ya"]) + [6 + c for c in kept["yb"]]
    assert pruned.graph.values["cat"].shape[1] == 8
    assert pruned.graph.values["y"].shape == concat_model.graph.values["y"].shape
    check_against_oracle(concat_model, pruned, feeds(concat_model))
    assert "y" not in kept  # the classifier's outputs (a graph output) stay


def test_flatten_of_a_spatial_map_removes_c_h_w_columns(tmp_path):
    i = {}
    nodes = [conv("a", "x", "ya", 4, 6, inits=i),
             helper.make_node("Relu", ["ya"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["flat"], name="flat"),
             helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    i["fc.w"], i["fc.b"] = w(5, 6 * 36), w(5)
    model = mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 5)))
    pruned = quantize.prune_channels(model, 0.5)
    kept = kept_channels(pruned)
    channels = kept[model.graph.nodes[0].outputs[0]]
    assert len(channels) == 3
    np.testing.assert_array_equal(kept["flat"], (channels[:, None] * 36 + np.arange(36)).ravel())
    assert pruned.graph.values[pruned.graph.nodes[-1].inputs[1]].shape == (5, 3 * 36)
    check_against_oracle(model, pruned, feeds(model))


def test_unfolded_batchnorm_residual_add_and_per_channel_constants(tmp_path):
    """Converted without optimization: BatchNormalization, Relu, Mul/Add/PRelu by per-channel
    constants and a residual Add stay separate nodes. The residual members prune as one
    group; bn_gamma reads the gammas of the BatchNormalization nodes in the graph."""
    i = {"bn.s": np.abs(w(8)) + 0.1, "bn.b": w(8), "bn.m": w(8), "bn.v": np.abs(w(8)) + 0.5,
         "scale": w(8, 1, 1), "shift": w(1, 8, 1, 1), "slope": np.abs(w(8, 1, 1)),
         "fc.w": w(3, 8), "fc.b": w(3)}
    nodes = [conv("a", "x", "ya", 4, 8, inits=i),
             helper.make_node("BatchNormalization", ["ya", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn"),
             helper.make_node("Relu", ["bn"], ["r1"], name="relu1"),
             conv("b", "r1", "yb", 8, 8, inits=i),
             helper.make_node("Add", ["yb", "r1"], ["sum"], name="add"),
             helper.make_node("Mul", ["sum", "scale"], ["mul"], name="mul"),
             helper.make_node("Add", ["mul", "shift"], ["shifted"], name="shift"),
             helper.make_node("PRelu", ["shifted", "slope"], ["p"], name="prelu"),
             helper.make_node("GlobalAveragePool", ["p"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
             helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    model = mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 3)), optimize=False)
    assert any(n.op == "BatchNormalization" for n in model.graph.nodes)
    for criterion in ("l1", "bn_gamma"):
        pruned = quantize.prune_channels(model, 0.25, criterion=criterion)
        kept = kept_channels(pruned)
        assert len(kept["ya"]) == 6
        for name in ("bn", "r1", "yb", "sum", "p"):  # one group: the same channels everywhere
            np.testing.assert_array_equal(kept[name], kept["ya"])
        check_against_oracle(model, pruned, feeds(model))


def test_bn_gamma_scores_come_from_the_graph_batchnorm(tmp_path):
    """Network slimming on the unfolded graph: the channels with the smallest |gamma| go."""
    gamma = np.array([0.9, 0.01, 0.5, -0.02, 0.7, 0.3], np.float32)
    i = {"bn.s": gamma, "bn.b": w(6), "bn.m": w(6), "bn.v": np.abs(w(6)) + 0.5,
         "fc.w": w(3, 6), "fc.b": w(3)}
    nodes = [conv("a", "x", "ya", 4, 6, inits=i),
             helper.make_node("BatchNormalization", ["ya", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn"),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
             helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    path = onnx_model(tmp_path, nodes, i, (1, 3))
    unfolded = mobconv.convert(path, optimize=False)
    pruned = quantize.prune_channels(unfolded, 0.5, criterion="bn_gamma")
    assert sorted(kept_channels(pruned)["ya"]) == [0, 2, 4]
    check_against_oracle(unfolded, pruned, feeds(unfolded))
    # folded (the default conversion): the gammas come from the ONNX file it was converted from
    folded = mobconv.convert(path)
    assert not any(n.op == "BatchNormalization" for n in folded.graph.nodes)
    pruned = quantize.prune_channels(folded, 0.5, criterion="bn_gamma")
    assert sorted(kept_channels(pruned)[folded.graph.nodes[0].outputs[0]]) == [0, 2, 4]
    # a .mob file has no gammas left: one line says how to give them
    mob = tmp_path / "m.mob"
    folded.save(mob)
    with pytest.raises(ArgumentError, match=r"criterion 'bn_gamma' needs the BatchNormalization "
                                            r"scales of layer 'a'.*prune the ONNX source instead "
                                            r"\(mobconv compress model.onnx ..., or source='model.onnx'\)$"):
        quantize.prune_channels(str(mob), 0.5, criterion="bn_gamma")
    pruned = quantize.prune_channels(str(mob), 0.5, criterion="bn_gamma", source=path)
    assert sorted(kept_channels(pruned)[folded.graph.nodes[0].outputs[0]]) == [0, 2, 4]


def test_padded_reader_compensation_is_exact_inside_and_structure_exact_everywhere(tmp_path):
    """conv(Relu) -> 3x3 zero-padded conv: a removed channel's relu(b) is folded into the
    reader's bias, exact away from the border; with those biases zero, exact everywhere."""
    i = {}
    nodes = [conv("a", "x", "ya", 4, 6, inits=i), helper.make_node("Relu", ["ya"], ["r"], name="relu"),
             conv("b", "r", "y", 6, 5, k=3, pad=1, inits=i)]
    i["a.b"] = np.abs(i["a.b"]) + 0.5  # every removed channel contributes relu(b) > 0
    model = mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 5, 6, 6)))
    pruned = quantize.prune_channels(model, 0.5)
    assert "zero-padded" in pruned.metadata.extra["compression.prune_channels"]
    x = feeds(model)
    got = pruned.run(x, backend="reference")["y"]
    want = zeroed(model, pruned).run(x, backend="reference")["y"]
    np.testing.assert_allclose(got[:, :, 1:-1, 1:-1], want[:, :, 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    assert np.abs(got - want).max() > 1e-3  # the border is the documented approximation
    dropped = zeroed(model, pruned, zero_bias=True).run(x, backend="reference")["y"]
    assert np.abs(got - want).mean() < np.abs(dropped - want).mean()  # better than dropping
    base = Model(zeroed(model, pruned, zero_bias=True).graph)  # removed biases 0: no constant
    check_against_oracle(base, quantize.prune_channels(base, 0.5), x)


# ---- the zoo networks -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return np.load(ZOO / "digits_heldout.npz")


@pytest.mark.parametrize("net", ["mobilenetv2", "resnet"])
def test_zoo_nets_match_the_zeroed_original(net, digits):
    model = mobconv.convert(str(ZOO / f"digits_{net}.onnx"))
    x = {"input": digits["images"][:4]}
    pruned = quantize.prune_channels(model, 0.3)
    kept = kept_channels(pruned)
    assert pruned.summary().macs < 0.75 * model.summary().macs
    assert len(pruned.to_bytes()) < len(model.to_bytes())
    if net == "mobilenetv2":  # every reader of a removed channel is unpadded (1x1, depthwise
        check_against_oracle(model, pruned, x)  # members removed too, Gemm): exact
        dw = [n for n in pruned.graph.nodes if n.op == "Conv" and n.attrs.get("group", 1) > 1]
        assert all(n.attrs["group"] == pruned.graph.values[n.inputs[0]].shape[1] for n in dw)
        assert any(n.attrs["group"] < 16 for n in dw)
    else:  # 3x3 zero-padded readers: exact once the removed channels' constants are 0
        base = Model(zeroed(model, pruned, zero_bias=True).graph)
        again = quantize.prune_channels(base, 0.3)
        assert {k: list(v) for k, v in kept_channels(again).items()} == \
            {k: list(v) for k, v in kept.items()}  # l1 does not look at biases
        check_against_oracle(base, again, x)
    # residual members share their channels: each fused residual input R keeps the same ones
    for node in pruned.graph.nodes:
        if node.op == "Conv" and len(node.inputs) > 3 and node.inputs[3] in kept:
            np.testing.assert_array_equal(kept[node.inputs[3]], kept[node.outputs[0]])


def test_saved_pruned_model_runs_on_the_runtime_and_keeps_its_channel_map(tmp_path, digits):
    model = mobconv.convert(str(ZOO / "digits_mobilenetv2.onnx"))
    before = model.to_bytes()
    pruned = quantize.prune_channels(model, 0.5, progress=False)
    assert model.to_bytes() == before  # the input is never modified
    path = tmp_path / "p.mob"
    pruned.save(path)
    loaded = mobconv.load(str(path))
    x = {"input": digits["images"][:8]}
    assert_close(loaded.run(x, backend="runtime"), pruned.run(x, backend="reference"), "saved")
    assert {k: list(v) for k, v in kept_channels(loaded).items()} == \
        {k: list(v) for k, v in pruned.channel_map.items()}
    from mobconv.quantize.distill import channel_map_of
    name = next(iter(pruned.channel_map))
    assert channel_map_of(loaded, name) == list(pruned.channel_map[name])


# ---- refusals and options -------------------------------------------------------------------


def _refusal_model(tmp_path, reader):
    """conv 'a' (4 -> 6 channels, 6x6) followed by `reader` nodes, then a 1x1 conv 'c'."""
    i = {}
    nodes = [conv("a", "x", "ya", 4, 6, inits=i)] + reader(i)
    return mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 2, 6, 6)))


def _reshape(i):
    i["shape"] = np.array([1, 6, 36], np.int64)
    i["back"] = np.array([1, 6, 6, 6], np.int64)
    return [helper.make_node("Reshape", ["ya", "shape"], ["r"], name="reshape"),
            helper.make_node("Relu", ["r"], ["rr"], name="relu"),
            helper.make_node("Reshape", ["rr", "back"], ["b"], name="back"),
            conv("c", "b", "y", 6, 2, inits=i)]


def _split(i):
    i["sizes"] = np.array([3, 3], np.int64)
    return [helper.make_node("Split", ["ya", "sizes"], ["s0", "s1"], name="split", axis=1),
            helper.make_node("Add", ["s0", "s1"], ["s"], name="add"),
            conv("c", "s", "y", 3, 2, inits=i)]


def _grouped(i):
    return [conv("g", "ya", "yg", 6, 6, k=1, group=2, inits=i), conv("c", "yg", "y", 6, 2, inits=i)]


@pytest.mark.parametrize("reader, rule", [
    (_reshape, r"Reshape 'reshape' has a constant shape \[1, 6, 36\] that depends on the "
               r"channel count"),
    (_split, r"Split 'split' mixes or splits the channels"),
    (_grouped, r"Conv 'g' is a grouped convolution \(group=2\)"),
])
def test_unfixable_readers_are_refused_naming_layer_and_rule_unless_excluded(tmp_path, reader, rule):
    model = _refusal_model(tmp_path, reader)
    with pytest.raises(ArgumentError, match=r"^prune_channels\(\): .*m\.onnx: cannot remove output "
                                            r"channels of layer 'a': " + rule + r".*exclude=\['a'\]"):
        quantize.prune_channels(model, 0.5)
    pruned = quantize.prune_channels(model, 0.5, exclude=["a"])
    assert "ya" not in kept_channels(pruned)
    assert pruned.graph.values["ya"].shape[1] == 6


def test_graph_output_channels_stay_and_cannot_be_asked_for(concat_model):
    pruned = quantize.prune_channels(concat_model, 0.9)
    assert pruned.graph.values["y"].shape == (1, 3)
    with pytest.raises(ArgumentError, match=r"layer 'fc': its output channels are graph output 'y'"):
        quantize.prune_channels(concat_model, 0.3, per_layer={"fc": 0.5})


def test_every_layer_keeps_a_channel_and_per_layer_overrides(concat_model):
    pruned = quantize.prune_channels(concat_model, 0.99)
    kept = kept_channels(pruned)
    assert len(kept["ya"]) == 1 and len(kept["yb"]) == 1 and len(kept["yc"]) == 1
    check_against_oracle(concat_model, pruned, feeds(concat_model), runtime=True)
    pruned = quantize.prune_channels(concat_model, 0.0, per_layer={"b": 0.5})
    assert set(kept_channels(pruned)) >= {"yb"} and "ya" not in kept_channels(pruned)


@pytest.mark.parametrize("kwargs, message", [
    (dict(fraction=1.5), r"fraction must be a number in \[0, 1\), got 1.5"),
    (dict(fraction=-0.1), r"fraction must be a number in \[0, 1\)"),
    (dict(fraction=0.3, criterion="l2"), r"criterion must be one of l1, bn_gamma, got 'l2'"),
    (dict(fraction=0.3, exclude=["nope"]), r"exclude names 'nope', which is not a node"),
    (dict(fraction=0.3, per_layer={"a": 1.0}), r"per_layer\['a'\] must be a number in \[0, 1\)"),
    (dict(fraction=0.3, per_layer=[("a", 0.5)]), r"per_layer must be a dict"),
    (dict(fraction=0.3, progress="yes"), r"progress must be None, True or False"),
])
def test_bad_options_are_one_line_errors(concat_model, kwargs, message):
    fraction = kwargs.pop("fraction")
    with pytest.raises(ArgumentError, match=r"^prune_channels\(\): .*" + message):
        quantize.prune_channels(concat_model, fraction, **kwargs)


def test_residual_members_must_agree_and_quantized_models_are_refused():
    model = mobconv.convert(str(ZOO / "digits_resnet.onnx"))
    convs = [n.name for n in model.graph.nodes if n.op == "Conv"]
    with pytest.raises(ArgumentError, match=r"per_layer gives different fractions to layers "
                                            r"'.*', '.*', which share their output channels"):
        quantize.prune_channels(model, 0.3, per_layer={convs[0]: 0.5, convs[2]: 0.25})
    for scheme in ("int8-weights", "fp16"):  # fp16: weights behind a Cast, not "run time"
        q = quantize.quantize(model, scheme=scheme)
        with pytest.raises(ArgumentError, match=r"already quantized \(scheme '" + scheme +
                           r"'\); prune channels on the float model, then quantize"):
            quantize.prune_channels(q, 0.3)


def test_classifier_behind_a_softmax_is_kept_not_refused():
    """tiny_cnn ends Gemm -> Softmax -> output: the Softmax would block the Gemm's
    channels, but they reach the graph output, so the head simply stays."""
    model = mobconv.convert(str(ZOO / "tiny_cnn.onnx"))
    pruned = quantize.prune_channels(model, 0.3)
    gemm = next(n for n in pruned.graph.nodes if n.op == "Gemm")
    assert gemm.outputs[0] not in kept_channels(pruned)
    check_against_oracle(model, pruned, feeds(model))


def test_squeeze_excite_scale_joins_the_group_it_scales(tmp_path):
    """x = conv a; s = sigmoid(conv e(relu(conv q(gap(x))))); y = conv c(x * s): e's output
    channels multiply x's, so a and e lose the same channels; a removed channel is the
    constant a-bias times sigmoid(e-bias), folded into c's bias."""
    i = {}
    nodes = [conv("a", "x", "ya", 4, 8, inits=i),
             helper.make_node("GlobalAveragePool", ["ya"], ["g"], name="gap"),
             conv("q", "g", "yq", 8, 4, inits=i), helper.make_node("Relu", ["yq"], ["rq"], name="rq"),
             conv("e", "rq", "ye", 4, 8, inits=i),
             helper.make_node("Sigmoid", ["ye"], ["s"], name="sig"),
             helper.make_node("Mul", ["ya", "s"], ["m"], name="scale"),
             conv("c", "m", "y", 8, 3, inits=i)]
    model = mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 3, 6, 6)))
    pruned = quantize.prune_channels(model, 0.5)
    kept = kept_channels(pruned)
    out = {n.name: n.outputs[0] for n in model.graph.nodes}  # Relu/Sigmoid fused into q/e
    assert len(kept["ya"]) == 4 and len(kept[out["q"]]) == 2
    np.testing.assert_array_equal(kept[out["e"]], kept["ya"])
    np.testing.assert_array_equal(kept["m"], kept["ya"])
    check_against_oracle(model, pruned, feeds(model))


def test_all_refused_layers_in_one_line_and_excluding_them_prunes_the_rest(tmp_path):
    i = {"shape": np.array([1, 6, 36], np.int64), "back": np.array([1, 6, 6, 6], np.int64),
         "sizes": np.array([3, 3], np.int64)}
    nodes = [conv("a", "x", "ya", 4, 6, inits=i),
             helper.make_node("Reshape", ["ya", "shape"], ["r"], name="reshape"),
             helper.make_node("Reshape", ["r", "back"], ["rb"], name="back"),
             conv("d", "x", "yd", 4, 6, inits=i),
             helper.make_node("Split", ["yd", "sizes"], ["s0", "s1"], name="split", axis=1),
             helper.make_node("Add", ["s0", "s1"], ["s"], name="add"),
             conv("f", "x", "yf", 4, 6, inits=i),  # prunable: read by c only
             helper.make_node("Concat", ["rb", "s", "yf"], ["cat"], name="cat", axis=1),
             conv("c", "cat", "y", 15, 2, inits=i)]
    model = mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 2, 6, 6)))
    with pytest.raises(ArgumentError, match=r"layer 'a': Reshape 'reshape' .*; 1 more layer\(s\) "
                                            r"refused likewise: 'd'; exclude them "
                                            r"\(exclude=\['a', 'd'\]\)$") as info:
        quantize.prune_channels(model, 0.5)
    assert info.value.layers == ["a", "d"]
    pruned = quantize.prune_channels(model, 0.5, exclude=info.value.layers)
    assert set(kept_channels(pruned)) == {"yf", "cat"}
    assert list(kept_channels(pruned)["cat"]) == list(range(9)) + [9 + c for c in kept_channels(pruned)["yf"]]
    check_against_oracle(model, pruned, feeds(model))


def test_unet_like_conv_transpose_and_skip_concat(tmp_path):
    """conv a -> MaxPool -> conv b -> ConvTranspose u (k2 s2) -> Resize to constant sizes
    -> Concat(., a) -> conv c: u reads b's pruned channels (weight rows) and loses its own
    (weight columns); the Resize's sizes follow (torch's UNet upsampling exports that)."""
    i = {"u.w": w(8, 6, 2, 2), "u.b": w(6), "sizes": np.array([1, 6, 6, 6], np.int64)}
    nodes = [conv("a", "x", "ya", 4, 8, k=3, pad=1, inits=i),
             helper.make_node("MaxPool", ["ya"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             conv("b", "p", "yb", 8, 8, inits=i),
             helper.make_node("ConvTranspose", ["yb", "u.w", "u.b"], ["yu"], name="u",
                              kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Resize", ["yu", "", "", "sizes"], ["up"], name="resize", mode="nearest"),
             helper.make_node("Concat", ["up", "ya"], ["cat"], name="cat", axis=1),
             conv("c", "cat", "y", 14, 3, inits=i)]
    model = mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 3, 6, 6)))
    assert any(n.op == "Resize" for n in model.graph.nodes)
    pruned = quantize.prune_channels(model, 0.5)
    kept = kept_channels(pruned)
    assert len(kept["yu"]) == 3 and len(kept["yb"]) == 4
    assert list(kept["cat"]) == list(kept["yu"]) + [6 + c for c in kept["ya"]]
    assert pruned.graph.values["cat"].shape[1] == 7
    note = pruned.metadata.extra["compression.prune_channels"]
    assert "ConvTranspose(s) compensated by the kernel's mean" in note
    base = Model(zeroed(model, pruned, zero_bias=True).graph)  # constants 0: exact
    check_against_oracle(base, quantize.prune_channels(base, 0.5), feeds(model))


def test_reduce_mean_over_space_before_the_classifier(tmp_path):
    """x.mean((2, 3)) exports as ReduceMean(keepdims=0): [N, C] straight into the Gemm."""
    i = {"fc.w": w(3, 6), "fc.b": w(3)}
    nodes = [conv("a", "x", "ya", 4, 6, k=3, pad=1, inits=i),
             helper.make_node("Relu", ["ya"], ["r"], name="relu"),
             helper.make_node("ReduceMean", ["r"], ["m"], name="mean", axes=[2, 3], keepdims=0),
             helper.make_node("Gemm", ["m", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    model = mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 3)))
    pruned = quantize.prune_channels(model, 0.5)
    assert len(kept_channels(pruned)["m"]) == 3
    check_against_oracle(model, pruned, feeds(model))


# ---- random graphs -------------------------------------------------------------------------


HOSTILE = ["transpose", "slice", "pad", "grouped", "softmax", "reshape", "resize"]


def random_net(tmp_path, seed, hostile=False):
    """A random CNN from the blocks channel pruning must handle: conv (1x1 or 3x3 padded,
    fused-able activations with act(0) = 0), depthwise, residual Add, Concat, per-channel
    Mul, pools, squeeze-excite, then GAP->Flatten->Gemm or Flatten->Gemm. With `hostile`
    also blocks it must follow or refuse (HOSTILE), keeping the 6x6 map and channels."""
    rng = np.random.default_rng(seed)
    i, nodes, n = {}, [], [0]

    def name(base):
        n[0] += 1
        return f"{base}{n[0]}"

    def act(x):
        kind = rng.choice(["", "Relu", "Clip", "LeakyRelu", "HardSwish", "Tanh"])
        if not kind:
            return x
        y = name("act")
        if kind == "Clip":
            i[y + ".lo"], i[y + ".hi"] = np.array(0, np.float32), np.array(6, np.float32)
            nodes.append(helper.make_node("Clip", [x, y + ".lo", y + ".hi"], [y], name=y))
        else:
            nodes.append(helper.make_node(kind, [x], [y], name=y))
        return y

    def conv_(x, cin, cout, k=None, group=1):
        k = int(rng.choice([1, 3])) if k is None else k
        y = name("conv")
        nodes.append(conv(y, x, y, cin, cout, k=k, pad=k // 2, group=group, inits=i))
        return y

    x, c = "x", 4
    for step in range(int(rng.integers(3, 7))):
        # the first block reads the graph input, whose channels nothing may remove
        blocks = ["conv", "dw", "residual", "concat", "mul", "pool", "se"] + (HOSTILE if hostile else [])
        block = rng.choice(blocks[:1] if step == 0 else blocks)
        if block == "conv":
            cout = int(rng.integers(3, 11))
            x, c = act(conv_(x, c, cout)), cout
        elif block == "dw":
            x = act(conv_(x, c, c, k=3, group=c))
        elif block == "residual":
            mid = int(rng.integers(3, 11))
            h = conv_(act(conv_(x, c, mid)), mid, c)
            y = name("add")
            nodes.append(helper.make_node("Add", [x, h], [y], name=y))
            x = act(y)
        elif block == "concat":
            c1, c2 = int(rng.integers(2, 7)), int(rng.integers(2, 7))
            a, b = act(conv_(x, c, c1)), act(conv_(x, c, c2))
            y = name("cat")
            nodes.append(helper.make_node("Concat", [a, b], [y], name=y, axis=1))
            x, c = y, c1 + c2
        elif block == "mul":
            y = name("mul")
            i[y + ".s"] = w(c, 1, 1)
            nodes.append(helper.make_node("Mul", [x, y + ".s"], [y], name=y))
            x = y
        elif block == "pool":
            y = name("pool")
            op = str(rng.choice(["MaxPool", "AveragePool"]))
            nodes.append(helper.make_node(op, [x], [y], name=y, kernel_shape=[3, 3], pads=[1] * 4))
            x = y
        elif block in HOSTILE:
            x = hostile_block(block, x, c, i, nodes, name, conv_)
        else:
            g, y = name("gap"), name("se")
            nodes.append(helper.make_node("GlobalAveragePool", [x], [g], name=g))
            q = act(conv_(g, c, 2, k=1))
            e = conv_(q, 2, c, k=1)
            s = name("sig")
            nodes.append(helper.make_node("Sigmoid", [e], [s], name=s))
            nodes.append(helper.make_node("Mul", [x, s], [y], name=y))
            x = y
    flat = name("flat")
    if rng.random() < 0.5:
        g = name("gap")
        nodes.append(helper.make_node("GlobalAveragePool", [x], [g], name=g))
        nodes.append(helper.make_node("Flatten", [g], [flat], name=flat))
        i["fc.w"] = w(3, c)
    else:
        nodes.append(helper.make_node("Flatten", [x], [flat], name=flat))
        i["fc.w"] = w(3, c * 36)
    i["fc.b"] = w(3)
    nodes.append(helper.make_node("Gemm", [flat, "fc.w", "fc.b"], ["y"], name="fc", transB=1))
    return mobconv.convert(onnx_model(tmp_path, nodes, i, (1, 3), name=f"net{seed}.onnx"))


def hostile_block(block, x, c, i, nodes, name, conv_):
    y = name(block)
    if block == "transpose":  # NCHW -> NHWC -> NCHW: the channel axis moves and comes back
        t = name("t")
        nodes.append(helper.make_node("Transpose", [x], [t], name=t, perm=[0, 2, 3, 1]))
        nodes.append(helper.make_node("Transpose", [t], [y], name=y, perm=[0, 3, 1, 2]))
    elif block == "slice":  # spatial crop and re-pad: channels untouched
        i[y + ".s"], i[y + ".e"], i[y + ".a"] = (np.array(v, np.int64) for v in ([1, 1], [5, 5], [2, 3]))
        t = name("t")
        nodes.append(helper.make_node("Slice", [x, y + ".s", y + ".e", y + ".a"], [t], name=t))
        i[y + ".p"] = np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)
        nodes.append(helper.make_node("Pad", [t, y + ".p"], [y], name=y))
    elif block == "pad":  # pads the channel axis: refused
        i[y + ".p"] = np.array([0, 1, 0, 0, 0, 1, 0, 0], np.int64)
        t = name("t")
        nodes.append(helper.make_node("Pad", [x, y + ".p"], [t], name=t))
        nodes.append(conv(y, t, y, c + 2, c, inits=i))
    elif block == "grouped":  # refused when c is even (group 2), else a plain conv
        nodes.append(conv(y, x, y, c, c, group=2 if c % 2 == 0 else 1, inits=i))
    elif block == "softmax":  # over the channels: refused
        nodes.append(helper.make_node("Softmax", [x], [y], name=y, axis=1))
    elif block == "reshape":  # [N, C, 36] names C: refused
        i[y + ".s"], i[y + ".b"] = np.array([1, c, 36], np.int64), np.array([1, c, 6, 6], np.int64)
        t = name("t")
        nodes.append(helper.make_node("Reshape", [x, y + ".s"], [t], name=t))
        nodes.append(helper.make_node("Reshape", [t, y + ".b"], [y], name=y))
    else:  # nearest Resize to the same size, by scales
        i[y + ".sc"] = np.array([1, 1, 1, 1], np.float32)
        nodes.append(helper.make_node("Resize", [x, "", y + ".sc"], [y], name=y, mode="nearest"))
    return y


@pytest.mark.parametrize("seed", [*range(12), 16, 21])  # 16, 21: SE on a Concat
def test_random_graphs_match_the_zeroed_original(tmp_path, seed):
    model = random_net(tmp_path, seed)
    fraction = (0.25, 0.5, 0.75)[seed % 3]
    pruned = quantize.prune_channels(model, fraction)
    if not kept_channels(pruned):
        return  # every layer too small to lose a channel at this fraction
    x = feeds(model, seed=seed)
    if "zero-padded" not in pruned.metadata.extra["compression.prune_channels"]:
        check_against_oracle(model, pruned, x)
    # with the removed channels' biases 0 every removed channel is 0 (act(0) = 0, x * 0),
    # so even zero-padded readers must match exactly
    base = Model(zeroed(model, pruned, zero_bias=True).graph)
    again = quantize.prune_channels(base, fraction)
    assert {k: list(v) for k, v in kept_channels(again).items()} == \
        {k: list(v) for k, v in kept_channels(pruned).items()}
    check_against_oracle(base, again, x)


@pytest.mark.parametrize("seed", range(100, 110))
def test_random_hostile_graphs_prune_or_refuse_in_one_line(tmp_path, seed):
    """With readers it cannot fix: a one-line ArgumentError listing the layers; excluding
    exactly those prunes the rest, which matches the zeroed original."""
    model = random_net(tmp_path, seed, hostile=True)
    exclude = []
    try:
        pruned = quantize.prune_channels(model, 0.5)
    except ArgumentError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("prune_channels(): ")
        exclude = exc.layers
        pruned = quantize.prune_channels(model, 0.5, exclude=exclude)
    if not kept_channels(pruned):
        return
    base = Model(zeroed(model, pruned, zero_bias=True).graph)
    again = quantize.prune_channels(base, 0.5, exclude=exclude)
    check_against_oracle(base, again, feeds(model, seed=seed))


def test_pruning_twice_maps_channels_to_the_original(digits):
    """The channel map of a model pruned twice is relative to the first model (the teacher
    for distillation); the result equals the once-pruned model with the second round's
    channels zeroed (not the original: the first round's constants are in its biases)."""
    model = mobconv.convert(str(ZOO / "digits_mobilenetv2.onnx"))
    once = quantize.prune_channels(model, 0.25)
    twice = quantize.prune_channels(once, 0.25)
    first, second = kept_channels(once), kept_channels(twice)
    assert set(second) >= set(first)
    for name, kept in first.items():
        assert set(second[name]) < set(kept)  # a subset of the first round's, in its numbering
    relative = {name: np.searchsorted(first[name], kept) if name in first else kept
                for name, kept in second.items() if len(kept) < (
                    len(first[name]) if name in first else model.graph.values[name].shape[1])}
    check_against_oracle(once, twice, {"input": digits["images"][:4]}, kept=relative)


# ---- every kernel ---------------------------------------------------------------------------


def test_pruned_zoo_net_runs_on_every_isa_here_and_neon_under_qemu(mobrt_run_aarch64, tmp_path, digits):
    """The pruned graph is plain dense ops: every x86 instruction-set cap of this machine and
    the aarch64 NEON kernels (qemu-aarch64) compute it like the numpy reference."""
    import subprocess

    from mobconv import runtime
    from int8_harness import QEMU_MAX

    model = mobconv.convert(str(ZOO / "digits_mobilenetv2.onnx"))
    pruned = quantize.prune_channels(model, 0.5)
    x = {"input": digits["images"][:2]}
    want = pruned.run(x, backend="reference")
    data = pruned.to_bytes()
    for isa in runtime.supported_isas():
        with runtime.Interpreter(data, isa=isa, profile=False) as it:
            assert_close(it.run(x), want, f"isa={isa}")
    case = tmp_path / "0000"
    (case / "inputs").mkdir(parents=True)
    (case / "model.mob").write_bytes(data)
    np.save(case / "inputs" / "0.npy", x["input"])
    for isa in ("neon", "neon_dot"):
        proc = subprocess.run([*QEMU_MAX, str(mobrt_run_aarch64), "--batch", str(tmp_path), "--isa", isa],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        status = (case / f"outputs_{isa}" / "status").read_text().splitlines()
        assert status[0] == "ok", status
        assert_close({"logits": np.load(case / f"outputs_{isa}" / "0.npy")}, want, f"aarch64 {isa}")


def test_hand_built_graph_without_inferred_shapes_prunes():
    """An IR graph built by hand leaves value shapes None; the output-shape check after
    pruning compared None with the inferred shape and refused every such model."""
    from mobconv.ir import Graph

    rng = np.random.default_rng(0)
    g = Graph("hand")
    g.add_input("x", "float32", (1, 4, 5, 5))
    g.add_constant("W1", rng.standard_normal((16, 4, 1, 1)).astype(np.float32))
    g.add_constant("W2", rng.standard_normal((3, 16, 1, 1)).astype(np.float32))
    for name in ("h", "y"):
        g.add_value(name, "float32", None)
    g.add_node("Conv", ["x", "W1"], ["h"], {"kernel_shape": [1, 1]}, name="c1")
    g.add_node("Conv", ["h", "W2"], ["y"], {"kernel_shape": [1, 1]}, name="c2")
    g.outputs = ["y"]
    model = Model(g)
    pruned = quantize.prune_channels(model, 0.25, progress=False)
    c1 = next(n for n in pruned.graph.nodes if n.name == "c1")
    assert pruned.graph.values[c1.inputs[1]].data.shape[0] == 12
    check_against_oracle(model, pruned, feeds(model))
