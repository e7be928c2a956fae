"""quantize.cluster: per-layer k-means palettes (exact properties against numpy oracles),
pruned zeros, int8 palettes, errors, file size and accuracy on the trained zoo nets."""
import math
import os

import numpy as np
import pytest

import mobconv
from mobconv import quantize
from mobconv.errors import ArgumentError
from mobconv.ir.graph import WeightStorage

import prune_nets

ROOT = os.path.join(os.path.dirname(__file__), "..")
ZOO = os.path.join(ROOT, "model_zoo", "onnx")
MIN_ELEMENTS = 256  # quantize/clustering.py: smaller weights stay as they are


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return mobconv.convert(prune_nets.build(tmp_path_factory.mktemp("cl") / "net.onnx"))


def _layers(model):
    """node name -> weight Value for each Conv/Gemm/MatMul."""
    g = model.graph
    return {n.name: g.values[n.inputs[1]] for n in g.nodes if n.op in ("Conv", "Gemm", "MatMul")}


def _bits(n):
    return next(b for b in (1, 2, 4, 8) if n <= 1 << b)


@pytest.mark.parametrize("k", [2, 3, 16, 32])
def test_each_weight_takes_at_most_k_values_each_its_nearest(net, k):
    before = {name: v.data.copy() for name, v in _layers(net).items()}
    out = quantize.cluster(net, k, progress=False)
    for name, value in _layers(out).items():
        w, got = before[name], value.data
        if w.size < MIN_ELEMENTS:  # conv1 (216) and dw (72) stay as they are
            assert np.array_equal(got, w) and value.storage is None, name
            continue
        palette = np.unique(got)
        assert got.dtype == np.float32 and palette.size <= k, name
        assert value.storage == WeightStorage("palette", _bits(palette.size)), name
        # every element took its nearest palette value (numpy oracle over all K)
        dist = np.abs(w.reshape(-1, 1).astype(np.float64) - palette.astype(np.float64))
        mine = np.abs(w.ravel().astype(np.float64) - got.ravel())
        assert np.all(mine <= dist.min(axis=1)), name
        # k-means beats K evenly spaced levels over the weight's range
        grid = np.linspace(w.min(), w.max(), k)
        uniform = grid[np.abs(w.reshape(-1, 1) - grid).argmin(axis=1)]
        assert np.sum((got.ravel() - w.ravel()) ** 2) < np.sum((uniform - w.ravel()) ** 2), name
    for name, w in before.items():  # the input model is untouched
        assert np.array_equal(_layers(net)[name].data, w) and _layers(net)[name].storage is None


def test_report_metadata_and_determinism(net):
    a, b = quantize.cluster(net, 16), quantize.cluster(net, 16)
    assert a.to_bytes() == b.to_bytes()
    rows = {r.name: r for r in a.clustered}
    assert set(rows) == set(_layers(net))
    assert "fewer than 256" in rows["conv1"].skipped and "fewer than 256" in rows["dw"].skipped
    w = _layers(net)["pw2"].data.astype(np.float64)
    got = _layers(a)["pw2"].data.astype(np.float64)
    sqnr = 10 * math.log10(np.sum(w ** 2) / np.sum((w - got) ** 2))
    assert rows["pw2"].sqnr_db == pytest.approx(sqnr) and rows["pw2"].values == len(np.unique(got))
    assert a.metadata.extra["compression.cluster"].startswith("k-means, 16 clusters: 4 of 6 layers")
    assert a.test_vectors == []


def test_exclude_keeps_a_layer(net):
    out = quantize.cluster(net, 8, exclude=["mm"])
    assert np.array_equal(_layers(out)["mm"].data, _layers(net)["mm"].data)
    assert _layers(out)["mm"].storage is None and _layers(out)["pw2"].storage.kind == "palette"


def test_pruned_zeros_stay_zeros(net):
    pruned = quantize.prune(net, 0.6, scope="layer", min_params=0)
    out = quantize.cluster(pruned, 4)
    for name, value in _layers(out).items():
        src = _layers(pruned)[name].data
        if src.size < MIN_ELEMENTS:
            continue
        zeros = src == 0
        assert zeros.mean() > 0.5, name
        assert np.all(value.data[zeros] == 0) and 0 in value.data, name  # 0 is a centroid
        assert len(np.unique(value.data)) <= 4, name
        assert value.storage.kind == "palette"


def test_save_load_and_runtime(net, tmp_path):
    out = quantize.cluster(net, 16)
    path = tmp_path / "k16.mob"
    out.save(path)
    back = mobconv.load(path)
    for name, value in _layers(out).items():
        assert np.array_equal(_layers(back)[name].data, value.data)
        assert _layers(back)[name].storage == value.storage
    assert path.stat().st_size < len(net.to_bytes())
    x = {prune_nets.INPUT: np.concatenate([s[prune_nets.INPUT] for s in prune_nets.samples(4)])}
    ref = back.run(x, backend="reference")[prune_nets.OUTPUT]
    np.testing.assert_allclose(back.run(x, backend="runtime")[prune_nets.OUTPUT], ref,
                               rtol=1e-4, atol=1e-5)


def test_int8_weights_get_an_int8_palette(net):
    q = quantize.quantize(net, scheme="int8-weights")
    out = quantize.cluster(q, 16)
    ints = {n: v for n, v in out.graph.values.items() if v.dtype == "int8" and v.data is not None}
    clustered = [v for v in ints.values() if v.data.size >= MIN_ELEMENTS]
    assert clustered
    for value in clustered:
        src = q.graph.values[value.name]
        assert value.data.dtype == np.int8 and len(np.unique(value.data)) <= 16
        assert value.storage == WeightStorage("palette", _bits(len(np.unique(value.data))))
        assert value.quant == src.quant  # the scales are unchanged
        palette = np.unique(value.data).astype(np.int64)
        dist = np.abs(src.data.reshape(-1, 1).astype(np.int64) - palette).min(axis=1)
        assert np.all(np.abs(src.data.ravel().astype(np.int64) - value.data.ravel()) == dist)


def test_int8_layer_with_fewer_values_than_clusters_is_refused(net):
    q = quantize.cluster(quantize.quantize(net, scheme="int8-weights"), 8)
    with pytest.raises(ArgumentError) as info:
        quantize.cluster(q, 16)
    message = str(info.value)
    assert "\n" not in message
    assert "layer 'pw1' has 8 distinct int8 values; cannot make 16 clusters" in message


@pytest.mark.parametrize("kwargs, words", [
    ({"clusters": 1}, "clusters must be an integer in [2, 256], got 1"),
    ({"clusters": 257}, "got 257"),
    ({"clusters": 16.0}, "got 16.0"),
    ({"clusters": True}, "got True"),
    ({"clusters": 16, "exclude": ["nope"]}, "exclude names 'nope', which is not a node"),
    ({"clusters": 16, "exclude": ["gap"]}, "'gap' (GlobalAveragePool), which is not a"),
    ({"clusters": 16, "progress": "yes"}, "progress must be None, True or False"),
])
def test_bad_options_are_one_line_errors(net, kwargs, words):
    with pytest.raises(ArgumentError) as info:
        quantize.cluster(net, **kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_nothing_to_cluster_names_the_reason(net):
    q = quantize.quantize(net, scheme="int8-weights")
    with pytest.raises(ArgumentError, match="nothing to cluster at 32 clusters: layer 'pw2': "
                                            "a palette of 32 int8 values with 8-bit indices"):
        quantize.cluster(q, 32)


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet"])
def test_zoo_16_clusters_third_of_the_file_and_top1(name):
    model = mobconv.convert(os.path.join(ZOO, f"digits_{name}.onnx"))
    held = np.load(os.path.join(ZOO, "digits_heldout.npz"))
    out = quantize.cluster(model, 16)
    assert len(out.to_bytes()) <= len(model.to_bytes()) / 3

    def top1(m):
        logits = m.run({"input": held["images"]}, backend="runtime")["logits"]
        return float(np.mean(logits.argmax(1) == held["labels"]))

    clustered = mobconv.api.Model(out.graph)  # runtime backend from bytes
    assert top1(clustered) >= top1(model) - 0.005
