"""Compression composed with quantization, both orders: the int8/fp16 weights keep the
storage hints (sparse zeros at the same places, palettes of at most K values), the files
save and run, and equalization leaves palettes alone."""
import numpy as np
import pytest

import mobconv
from mobconv import quantize
from mobconv.ir.graph import WeightStorage

import prune_nets

LAYERS = ("pw1", "pw2", "mm", "fc")  # the layers of 256+ weights (clustered)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return mobconv.convert(prune_nets.build(tmp_path_factory.mktemp("cq") / "net.onnx"))


def _weight(model, layer):
    """The stored weight Value of `layer` (behind a DequantizeLinear or Cast, if any)."""
    g = model.graph
    name = next(n for n in g.nodes if n.name == layer).inputs[1]
    producer = g.producers().get(name)
    if producer is not None and producer.op in ("DequantizeLinear", "Cast"):
        name = producer.inputs[0]
    return g.values[name]


def _bits(n):
    return next(b for b in (1, 2, 4, 8) if n <= 1 << b)


@pytest.mark.parametrize("scheme", ["int8", "int8-weights", "dynamic", "fp16"])
def test_pruned_weights_stay_sparse(net, scheme):
    pruned = quantize.prune(net, 0.6, scope="layer", min_params=256)
    calib = prune_nets.samples(8) if scheme == "int8" else None
    q = quantize.quantize(pruned, calib, scheme=scheme, progress=False)
    for layer in ("pw1", "pw2", "mm", "fc"):
        src, w = _weight(pruned, layer), _weight(q, layer)
        assert w.dtype == ("float16" if scheme == "fp16" else "int8"), layer
        assert w.storage == WeightStorage("sparse"), (layer, w.storage)
        assert np.all(w.data[src.data == 0] == 0), layer  # every pruned zero is still zero
        if w.quant is not None:
            assert not any(w.quant.zero_points)


@pytest.mark.parametrize("scheme", ["int8", "int8-weights", "fp16"])
def test_clustered_weights_stay_palettes_of_k(net, scheme):
    clustered = quantize.cluster(net, 16)
    calib = prune_nets.samples(8) if scheme == "int8" else None
    q = quantize.quantize(clustered, calib, scheme=scheme, progress=False)
    for layer in LAYERS:
        src, w = _weight(clustered, layer), _weight(q, layer)
        values = np.unique(w.data)
        assert values.size <= 16 and w.storage == WeightStorage("palette", _bits(values.size))
        if scheme == "fp16":
            np.testing.assert_array_equal(w.data, src.data.astype(np.float16))
            continue
        # one scale per tensor: int8 = round(w / s), s = max|w| / 127 (numpy oracle)
        assert len(w.quant.scales) == 1, layer
        s = np.float32(np.abs(src.data).max() / 127)
        assert w.quant.scales[0] == pytest.approx(float(s), rel=1e-6)
        expected = np.clip(np.rint(src.data / np.float32(w.quant.scales[0])), -127, 127)
        np.testing.assert_array_equal(w.data, expected.astype(np.int8))


def test_equalization_leaves_palettes_alone(net):
    clustered = quantize.cluster(net, 16)
    q = quantize.quantize(clustered, prune_nets.samples(8), equalize=True, progress=False)
    for layer in LAYERS:
        w = _weight(q, layer)
        assert np.unique(w.data).size <= 16 and w.storage.kind == "palette", layer


def test_quantize_then_cluster_and_prune(net):
    q = quantize.quantize(net, prune_nets.samples(8), progress=False)
    both = quantize.cluster(quantize.prune(q, 0.5, scope="layer", min_params=256), 16)
    for layer in LAYERS:
        src, w = _weight(q, layer), _weight(both, layer)
        assert w.dtype == "int8" and np.unique(w.data).size <= 16
        assert w.quant == src.quant and w.storage.kind == "palette"
        assert np.mean(w.data == 0) >= 0.5


@pytest.mark.parametrize("order", ["compress_first", "quantize_first"])
def test_files_are_smaller_and_run(net, tmp_path, order):
    calib = prune_nets.samples(8)
    if order == "compress_first":
        model = quantize.quantize(quantize.cluster(net, 16), calib, progress=False)
    else:
        model = quantize.cluster(quantize.quantize(net, calib, progress=False), 16)
    path = tmp_path / "m.mob"
    model.save(path)
    int8_alone = quantize.quantize(net, calib, progress=False)
    assert path.stat().st_size < len(int8_alone.to_bytes())
    back = mobconv.load(path)
    for layer in LAYERS:
        assert _weight(back, layer).storage == _weight(model, layer).storage
        np.testing.assert_array_equal(_weight(back, layer).data, _weight(model, layer).data)
    x = {prune_nets.INPUT: np.concatenate([s[prune_nets.INPUT] for s in calib])}
    ref = back.run(x, backend="reference")[prune_nets.OUTPUT]
    got = back.run(x, backend="runtime")[prune_nets.OUTPUT]
    np.testing.assert_allclose(got, ref, atol=2 * float(np.abs(ref).max()) / 127)
