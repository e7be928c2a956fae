"""quantize.prune: unstructured magnitude pruning (quantize/pruning.py).

The expected zeros are computed here from the original weights (np.sort / a LAMP score
written out per element), not read back from prune's own bookkeeping."""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest

import mobconv
from mobconv import quantize
from mobconv.errors import ArgumentError
from mobconv.ir.graph import WeightStorage
from mobconv.quantize._compress_common import weight_layers

from prune_nets import OUTPUT, WEIGHTS, build, samples, sqnr_db

ZOO = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "onnx")
DEFAULT = ("pw2", "mm")  # the layers `sparsity` prunes by default in prune_nets
SMALL = ("pw1", "fc")    # under DEFAULT_MIN_PARAMS


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return mobconv.convert(build(tmp_path_factory.mktemp("prune") / "net.onnx"))


def weight(model, layer) -> np.ndarray:
    return np.asarray(model.graph.values[WEIGHTS[layer]].data)


def zeros(array) -> int:
    return int(array.size - np.count_nonzero(array))


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def assert_smallest_pruned(before: np.ndarray, after: np.ndarray, magnitude=np.abs):
    """Every zeroed element was no larger than every kept one."""
    mag = magnitude(before.astype(np.float64))
    cut = (after == 0) & (before != 0)
    kept = after != 0
    if cut.any() and kept.any():
        assert mag[cut].max() <= mag[kept].min()


def test_layer_scope_zeroes_exactly_round_s_n_smallest_per_layer(net):
    p = quantize.prune(net, 0.6, scope="layer", min_params=0)
    for layer in ("pw1", "pw2", "mm", "fc"):
        before, after = weight(net, layer), weight(p, layer)
        assert zeros(after) == round_half_up(0.6 * before.size), layer
        assert_smallest_pruned(before, after)
        kept = after != 0
        np.testing.assert_array_equal(after[kept], before[kept])  # the others untouched
    for layer in ("conv1", "dw"):  # first and depthwise: never by default
        np.testing.assert_array_equal(weight(p, layer), weight(net, layer))
    assert p.pruned == pytest.approx({k: zeros(weight(p, k)) / weight(p, k).size
                                      for k in ("pw1", "pw2", "mm", "fc")})


def lamp_scores(w: np.ndarray) -> np.ndarray:
    """LAMP per element, written out: w^2 / sum of v^2 over the v with |v| >= |w|."""
    flat = np.abs(w.astype(np.float64).ravel())
    return np.array([x * x / np.sum(flat[flat >= x] ** 2) for x in flat])


def test_global_scope_is_one_lamp_threshold_over_the_selected_layers(net):
    p = quantize.prune(net, 0.5)
    scores = {layer: lamp_scores(weight(net, layer)) for layer in DEFAULT}
    every = np.sort(np.concatenate(list(scores.values())))
    k = round_half_up(0.5 * every.size)
    threshold = every[k - 1]
    for layer in DEFAULT:
        after = weight(p, layer)
        assert zeros(after) == int(np.count_nonzero(scores[layer] <= threshold)), layer
        assert_smallest_pruned(weight(net, layer), after)
    assert sum(zeros(weight(p, layer)) for layer in DEFAULT) == k
    for layer in ("conv1", "dw") + SMALL:
        np.testing.assert_array_equal(weight(p, layer), weight(net, layer))


def test_global_scope_never_empties_a_layer(net):
    p = quantize.prune(net, 0.95, min_params=0)
    for layer in ("pw1", "pw2", "mm", "fc"):
        assert np.count_nonzero(weight(p, layer)) >= 1


def test_global_scope_keeps_one_weight_of_a_layer_of_equal_magnitudes(net):
    flat = mobconv.Model(net.graph.copy())
    flat.graph.values["wmm"].data = np.where(weight(net, "mm") > 0, 0.01, -0.01).astype(np.float32)
    p = quantize.prune(flat, 0.9)
    assert np.count_nonzero(weight(p, "mm")) == 1
    assert zeros(weight(p, "pw2")) + zeros(weight(p, "mm")) == round_half_up(0.9 * 2400)


def test_per_layer_prunes_exactly_the_named_layers_even_first_and_depthwise(net):
    p = quantize.prune(net, per_layer={"conv1": 0.25, "dw": 0.5, "fc": 0.9})
    for layer, s in (("conv1", 0.25), ("dw", 0.5), ("fc", 0.9)):
        assert zeros(weight(p, layer)) == round_half_up(s * weight(net, layer).size), layer
        assert_smallest_pruned(weight(net, layer), weight(p, layer))
    for layer in ("pw1", "pw2", "mm"):
        np.testing.assert_array_equal(weight(p, layer), weight(net, layer))


def test_per_layer_with_sparsity_prunes_the_rest_of_the_selection(net):
    p = quantize.prune(net, 0.5, per_layer={"mm": 0.2}, scope="layer")
    assert zeros(weight(p, "mm")) == round_half_up(0.2 * 1120)
    assert zeros(weight(p, "pw2")) == round_half_up(0.5 * 1280)
    np.testing.assert_array_equal(weight(p, "fc"), weight(net, "fc"))


def test_exclude_and_min_params(net):
    p = quantize.prune(net, 0.5, exclude=["mm"], min_params=0)
    np.testing.assert_array_equal(weight(p, "mm"), weight(net, "mm"))
    pruned = ("pw1", "pw2", "fc")
    assert sum(zeros(weight(p, k)) for k in pruned) == round_half_up(
        0.5 * sum(weight(net, k).size for k in pruned))
    p = quantize.prune(net, 0.5, min_params=1120, scope="layer")  # mm has exactly 1120
    assert zeros(weight(p, "mm")) == 560 and zeros(weight(p, "pw2")) == 640
    p = quantize.prune(net, 0.5, min_params=1121, scope="layer")
    np.testing.assert_array_equal(weight(p, "mm"), weight(net, "mm"))


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_pruning_again_at_the_same_target_changes_nothing(net, scope):
    once = quantize.prune(net, 0.7, scope=scope, min_params=0)
    twice = quantize.prune(once, 0.7, scope=scope, min_params=0)
    for layer in WEIGHTS:
        np.testing.assert_array_equal(weight(twice, layer), weight(once, layer))
    assert twice.pruned == once.pruned


def test_input_model_untouched_result_marked_sparse_and_recorded(net, tmp_path):
    before = copy.deepcopy(net.graph)
    p = quantize.prune(net, 0.5)
    for name, value in before.values.items():
        now = net.graph.values[name]
        assert now.storage == value.storage
        if value.data is not None:
            np.testing.assert_array_equal(now.data, value.data)
    assert net.graph.metadata.extra == before.metadata.extra
    for layer in WEIGHTS:
        expected = WeightStorage("sparse") if layer in DEFAULT else None
        assert p.graph.values[WEIGHTS[layer]].storage == expected, layer
    text = p.metadata.extra["compression.prune"]
    assert "global 0.5" in text and "1200/2400" in text
    assert p.source is None and p.test_vectors == []
    # the file keeps the zeros and the storage hint
    path = tmp_path / "pruned.mob"
    p.save(path)
    loaded = mobconv.load(str(path))
    for layer in DEFAULT:
        np.testing.assert_array_equal(weight(loaded, layer), weight(p, layer))
        assert loaded.graph.values[WEIGHTS[layer]].storage == WeightStorage("sparse")
    assert os.path.getsize(path) < len(net.to_bytes())


def test_pruned_model_runs_as_the_weights_say(net):
    """The reference run of the pruned model equals a run of the original graph with
    the zeros written in by hand (np.where on the sorted magnitudes)."""
    p = quantize.prune(net, 0.5, scope="layer")
    manual = net.graph.copy()
    for layer in DEFAULT:
        w = weight(net, layer)
        cut = np.sort(np.abs(w).ravel())[round_half_up(0.5 * w.size) - 1]
        manual.values[WEIGHTS[layer]].data = np.where(np.abs(w) <= cut, 0, w).astype(np.float32)
    feeds = samples(1)[0]
    got = p.run(feeds, backend="reference")[OUTPUT]
    want = mobconv.Model(manual).run(feeds, backend="reference")[OUTPUT]
    np.testing.assert_array_equal(got, want)


def int8_magnitude(value):
    q = value.data.astype(np.float64)
    shape = [1] * q.ndim
    shape[value.quant.axis] = -1  # per output channel (axis 1 for a MatMul weight)
    scales = np.asarray(value.quant.scales, np.float64).reshape(shape)
    return lambda _: np.abs(q) * scales


@pytest.mark.parametrize("scheme", ["int8", "int8-weights"])
def test_int8_weights_pruned_at_zero_point_zero(net, scheme):
    calib = samples(8) if scheme == "int8" else None
    q = quantize.quantize(net, calib, scheme=scheme, progress=False)
    layers = {l.name: l for l in weight_layers(q.graph)}
    p = quantize.prune(q, 0.5, scope="layer", min_params=0)
    for name in ("pw1", "pw2", "mm", "fc"):
        before = q.graph.values[layers[name].weight]
        after = p.graph.values[layers[name].weight].data
        assert after.dtype == np.int8
        z0 = zeros(before.data)  # int8 rounding already made some zeros: they count
        assert zeros(after) == max(round_half_up(0.5 * before.data.size), z0), name
        assert_smallest_pruned(before.data, after, int8_magnitude(before))
        assert p.graph.values[layers[name].weight].storage == WeightStorage("sparse")
    out = p.run(samples(1)[0], backend="reference")[OUTPUT]
    assert np.all(np.isfinite(out))


def test_int8_behind_dequantize_without_value_quant_ranks_by_its_scales(net):
    """An imported QDQ model carries the weight's scales on the DequantizeLinear only: the
    ranking must use them (|q| alone would rank channels of different scales wrongly)."""
    q = quantize.quantize(net, scheme="int8-weights", progress=False)
    bare = mobconv.Model(q.graph.copy())
    layers = weight_layers(bare.graph)
    for layer in layers:
        bare.graph.values[layer.weight].quant = None
    a = quantize.prune(q, 0.5, scope="layer")
    b = quantize.prune(bare, 0.5, scope="layer")
    for layer in layers:
        np.testing.assert_array_equal(b.graph.values[layer.weight].data,
                                      a.graph.values[layer.weight].data)


def test_fp16_weights_behind_a_cast(net):
    h = quantize.quantize(net, scheme="fp16", progress=False)
    p = quantize.prune(h, 0.5, scope="layer")
    for layer in DEFAULT:
        before = h.graph.values[WEIGHTS[layer] + "/fp16"]
        after = p.graph.values[WEIGHTS[layer] + "/fp16"]
        assert after.data.dtype == np.float16 and after.storage == WeightStorage("sparse")
        assert zeros(after.data) == round_half_up(0.5 * before.data.size)
        assert_smallest_pruned(before.data, after.data)
    got = p.run(samples(1)[0], backend="reference")[OUTPUT]
    assert np.all(np.isfinite(got))
    r = quantize.sensitivity(h, samples(2), sparsities=(0.5,))
    assert [c.name for c in r.layers] == list(DEFAULT)


def test_int8_weight_with_nonzero_zero_point_is_refused(net):
    q = quantize.quantize(net, scheme="int8-weights", progress=False)
    layer = {l.name: l for l in weight_layers(q.graph)}["mm"]
    q.graph.values[layer.weight].quant.zero_points[3] = 5
    with pytest.raises(ArgumentError, match=r"layer 'mm'.*zero point 5, not 0"):
        quantize.prune(q, per_layer={"mm": 0.5})
    quantize.prune(q, per_layer={"pw2": 0.5})  # the other layers are fine


@pytest.mark.parametrize("kwargs, message", [
    ({"sparsity": 1.5}, r"sparsity must be a number in \[0, 1\), got 1.5"),
    ({"sparsity": 1.0}, r"sparsity must be a number in \[0, 1\), got 1.0"),
    ({"sparsity": -0.1}, r"sparsity must be .* got -0.1"),
    ({"sparsity": float("nan")}, r"sparsity must be .* got nan"),
    ({"sparsity": "0.5"}, r"sparsity must be .* got '0.5'"),
    ({"sparsity": True}, r"sparsity must be .* got True"),
    ({}, r"give a sparsity"),
    ({"per_layer": {"pw9": 0.5}}, r"per_layer names 'pw9', which is not a node"),
    ({"per_layer": {"flatten": 0.5}}, r"per_layer names 'flatten' \(Flatten\), which is not a "
                                    r"Conv/ConvTranspose/Gemm/MatMul node with a constant weight"),
    ({"per_layer": {"mm": 1.2}}, r"per_layer\['mm'\] must be a number in \[0, 1\)"),
    ({"per_layer": [("mm", 0.5)]}, r"per_layer must be a dict"),
    ({"sparsity": 0.5, "exclude": ["gap"]}, r"exclude names 'gap' \(GlobalAveragePool\)"),
    ({"sparsity": 0.5, "exclude": ["nope"]}, r"exclude names 'nope', which is not a node"),
    ({"per_layer": {"mm": 0.5}, "exclude": "mm"}, r"layer 'mm' is both in per_layer and in "
                                                  r"exclude"),
    ({"sparsity": 0.5, "scope": "model"}, r"scope must be one of global, layer, got 'model'"),
    ({"sparsity": 0.5, "min_params": -1}, r"min_params must be an integer >= 0, got -1"),
    ({"sparsity": 0.5, "min_params": 2.5}, r"min_params must be an integer >= 0, got 2.5"),
    ({"sparsity": 0.5, "progress": "yes"}, r"progress must be None, True or False"),
    ({"sparsity": 0.5, "min_params": 1281}, r"no layer to prune at sparsity 0.5: every layer "
                                            r"is excluded, depthwise, first or under "
                                            r"min_params=1281"),
])
def test_bad_options_one_line_error_before_any_work(net, kwargs, message):
    before = {k: v.data.copy() for k, v in net.graph.values.items() if v.data is not None}
    with pytest.raises(ArgumentError, match=message) as info:
        quantize.prune(net, **kwargs)
    text = str(info.value)
    assert "\n" not in text and text.startswith("prune(): ")
    for name, data in before.items():
        np.testing.assert_array_equal(net.graph.values[name].data, data)


@pytest.mark.parametrize("seed", range(6))
def test_ties_and_existing_zeros_random_chains(seed):
    """MatMul chains with few distinct values (many ties, some zeros already): exactly
    max(k, zeros already there) zeros per layer (scope layer) / in total (global), never
    a kept weight smaller than a pruned one, and the same result twice."""
    from mobconv.ir.graph import Graph

    rng = np.random.default_rng(seed)
    graph = Graph("chain")
    width = int(rng.integers(20, 40))
    graph.add_input("x", "float32", ("N", width))
    src, names = "x", []
    for i in range(int(rng.integers(2, 5))):
        out = int(rng.integers(20, 40))
        w = (rng.integers(-3, 4, size=(width, out)) * rng.choice([0.5, 1, 2])).astype(np.float32)
        graph.add_constant(f"w{i}", w)
        graph.add_node("MatMul", [src, f"w{i}"], [f"y{i}"], name=f"mm{i}")
        src, width = f"y{i}", out
        names.append(f"mm{i}")
    graph.outputs = [src]
    model = mobconv.Model(graph)
    s = float(rng.uniform(0.05, 0.95))
    for scope in ("layer", "global"):
        p = quantize.prune(model, s, scope=scope, min_params=0)
        again = quantize.prune(model, s, scope=scope, min_params=0)
        pruned_layers = names[1:]  # mm0 reads the input: the first layer
        before = {n: graph.values[f"w{n[2:]}"].data for n in names}
        after = {n: p.graph.values[f"w{n[2:]}"].data for n in names}
        np.testing.assert_array_equal(after["mm0"], before["mm0"])
        for n in pruned_layers:
            assert_smallest_pruned(before[n], after[n])
            np.testing.assert_array_equal(after[n], again.graph.values[f"w{n[2:]}"].data)
            if scope == "layer":
                want = max(round_half_up(s * before[n].size), zeros(before[n]))
                assert zeros(after[n]) == want, (seed, n)
        if scope == "global":
            n_all = sum(before[n].size for n in pruned_layers)
            k = round_half_up(s * n_all)
            assert sum(zeros(after[n]) for n in pruned_layers) == max(
                k, sum(zeros(before[n]) for n in pruned_layers))
            # per layer: the first k of a stable sort of the per-element LAMP scores (ties
            # share a score; equal scores go in layer order, then flat index)
            scores = np.concatenate([lamp_scores(before[n]) for n in pruned_layers])
            owner = np.concatenate([np.full(before[n].size, i) for i, n in
                                    enumerate(pruned_layers)])
            picked = np.bincount(owner[np.argsort(scores, kind="stable")[:k]],
                                 minlength=len(pruned_layers))
            for i, n in enumerate(pruned_layers):
                assert zeros(after[n]) == max(picked[i], zeros(before[n])), (seed, n)


def test_non_finite_weight_is_refused(net):
    broken = mobconv.Model(net.graph.copy())
    broken.graph.values["wmm"].data = weight(net, "mm").copy()
    broken.graph.values["wmm"].data[2, 3] = np.nan
    with pytest.raises(ArgumentError, match=r"layer 'mm': its weight has NaN or infinite values"):
        quantize.prune(broken, 0.5)
    with pytest.raises(ArgumentError, match=r"sensitivity\(\): .*layer 'mm': its weight has NaN"):
        quantize.sensitivity(broken, sparsities=(0.5,))
    quantize.prune(broken, 0.5, exclude=["mm"], min_params=0)  # the others are fine


def test_progress_bar_on_request(net, capsys):
    quantize.prune(net, 0.5, progress=True)
    assert "pruning [" in capsys.readouterr().err
    quantize.prune(net, 0.5, progress=False)
    assert capsys.readouterr().err == ""


def test_a_weight_shared_by_two_layers_is_one_layer():
    from mobconv.ir.graph import Graph

    graph = Graph("shared")
    graph.add_input("x", "float32", ("N", 32))
    graph.add_constant("w", np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32))
    graph.add_node("MatMul", ["x", "w"], ["a"], name="mm_a")
    graph.add_node("MatMul", ["a", "w"], ["b"], name="mm_b")
    graph.outputs = ["b"]
    model = mobconv.Model(graph)
    layers = weight_layers(graph)
    assert [(l.name, l.readers) for l in layers] == [("mm_a", ["mm_a", "mm_b"])]
    with pytest.raises(ArgumentError, match=r"per_layer names 'mm_b', which shares its weight "
                                            r"with layer 'mm_a'; name that layer instead"):
        quantize.prune(model, per_layer={"mm_b": 0.5})
    p = quantize.prune(model, per_layer={"mm_a": 0.5})
    assert zeros(p.graph.values["w"].data) == 512


def test_model_argument(net, tmp_path):
    with pytest.raises(ArgumentError, match=r"prune\(\): model must be a mobconv.Model or the "
                                            r"path of a model file, got a int"):
        quantize.prune(3, 0.5)
    with pytest.raises(ArgumentError, match=r"prune\(\): deploy.prototxt: a Caffe model is two "
                                            r"files; convert it first: .* then prune\(model"):
        quantize.prune("deploy.prototxt", 0.5)
    path = tmp_path / "net.mob"
    net.save(path)
    p = quantize.prune(str(path), 0.5)
    np.testing.assert_array_equal(weight(p, "mm"), weight(quantize.prune(net, 0.5), "mm"))
    with pytest.raises(ArgumentError, match=rf"{path}: per_layer names 'x9'"):
        quantize.prune(str(path), per_layer={"x9": 0.5})


def test_lamp_keeps_the_zoo_resnet_closer_than_raw_or_uniform():
    """The choice of docs/compression-pruning.md: at 50 % the global (LAMP) threshold keeps
    the output SQNR of digits_resnet above one raw |w| threshold and above 50 % per layer."""
    from mobconv.quantize import pruning

    model = mobconv.convert(os.path.join(ZOO, "digits_resnet.onnx"))
    x = np.load(os.path.join(ZOO, "digits_heldout.npz"))["images"][:96]

    def run(m):  # dense storage: the same numbers, on the runtime when it is built
        graph = m.graph.copy()
        for value in graph.values.values():
            value.storage = None
        return mobconv.Model(graph).run({"input": x})["logits"]

    ref = run(model)

    def sqnr(m):
        return sqnr_db([ref], [run(m)])

    lamp = sqnr(quantize.prune(model, 0.5))
    uniform = sqnr(quantize.prune(model, 0.5, scope="layer"))
    original = pruning.global_counts
    try:
        pruning.global_counts = lambda g, layers, s, score="lamp": original(g, layers, s, "raw")
        raw = sqnr(quantize.prune(model, 0.5))
    finally:
        pruning.global_counts = original
    assert lamp > raw + 1.0 and lamp > uniform + 1.0, (lamp, raw, uniform)
