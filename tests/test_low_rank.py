"""quantize.low_rank: SVD factors against numpy's own SVD, the energy rule, the rewritten
graph's outputs, MACs/params, layers kept when no MACs are saved, and errors."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mobconv
from mobconv import quantize
from mobconv.errors import ArgumentError
from mobconv.summary import summarize


def _low_rank_weight(rng, m, n, decay=0.7):
    """An m x n matrix with geometrically decaying singular values (a trained-like spectrum)."""
    u, _ = np.linalg.qr(rng.standard_normal((m, m)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    k = min(m, n)
    return (u[:, :k] * decay ** np.arange(k)) @ v[:, :k].T


def _net(path, seed=0):
    """x[N,24,7,7] -> pw (1x1 conv 48<-24, stride 2, pads 1, Relu fused) -> GAP -> Flatten
    -> fc (Gemm transB, alpha 0.5, beta 2, bias) -> mm (MatMul 40->30) -> out."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(_low_rank_weight(rng, 48, 24).reshape(48, 24, 1, 1).astype(np.float32), "wpw"),
        numpy_helper.from_array(rng.normal(0, 0.1, 48).astype(np.float32), "bpw"),
        numpy_helper.from_array(_low_rank_weight(rng, 40, 48).astype(np.float32), "wfc"),
        numpy_helper.from_array(rng.normal(0, 0.1, 40).astype(np.float32), "bfc"),
        numpy_helper.from_array(_low_rank_weight(rng, 40, 30).astype(np.float32), "wmm"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wpw", "bpw"], ["c"], strides=[2, 2], pads=[1] * 4, name="pw"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["y"], transB=1, alpha=0.5, beta=2.0, name="fc"),
        helper.make_node("MatMul", ["y", "wmm"], ["out"], name="mm"),
    ]
    graph = helper.make_graph(
        nodes, "low_rank_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 24, 7, 7])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 30])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return mobconv.convert(_net(tmp_path_factory.mktemp("lr") / "net.onnx"))


def _matrix(model, name):
    """The layer's weight as outputs x inputs."""
    node = next(n for n in model.graph.nodes if n.name == name)
    w = model.graph.values[node.inputs[1]].data.astype(np.float64)
    if node.op == "Conv":
        return w.reshape(w.shape[0], w.shape[1])
    return w if node.op == "Gemm" and node.attrs.get("transB", 0) else w.T


def _truncated(w, r):
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vt[:r]


def _with_weights(model, weights):
    """A copy of `model` whose layers compute with the given outputs x inputs matrices."""
    g = model.graph.copy()
    for node in g.nodes:
        if node.name in weights:
            value = g.values[node.inputs[1]]
            w = weights[node.name]
            if node.op == "Conv":
                w = w.reshape(value.data.shape)
            elif not (node.op == "Gemm" and node.attrs.get("transB", 0)):
                w = w.T
            value.data = np.ascontiguousarray(w, dtype=np.float32)
    return mobconv.api.Model(g)


def _x(n=3):
    return {"x": np.random.default_rng(5).standard_normal((n, 24, 7, 7)).astype(np.float32)}


@pytest.mark.parametrize("rank", [1, 4, 9])
def test_fixed_rank_computes_the_truncated_svd(net, rank):
    out = quantize.low_rank(net, rank=rank, progress=False)
    rows = {r.name: r for r in out.factorized}
    assert set(rows) == {"pw", "fc", "mm"}
    oracle = {name: _truncated(_matrix(net, name), rank) for name in rows}
    expected = _with_weights(net, oracle).run(_x(), backend="reference")["out"]
    for backend in ("reference", "runtime"):
        got = out.run(_x(), backend=backend)["out"]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=backend)
    ops = [n.op for n in out.graph.nodes]
    assert ops.count("Conv") == 2 and ops.count("Gemm") == 2 and ops.count("MatMul") == 2
    pw = [n for n in out.graph.nodes if n.op == "Conv"]
    assert pw[0].name == "pw/low_rank" and pw[1].name == "pw"  # the second keeps the name,
    assert pw[1].attrs["activation"] == "Relu" and not pw[0].attrs.get("activation")  # the act
    assert len(pw[1].inputs) >= 3 and len(pw[0].inputs) == 2  # and the bias


@pytest.mark.parametrize("energy", [0.5, 0.9, 0.99])
def test_energy_keeps_the_smallest_rank_holding_it(net, energy):
    out = quantize.low_rank(net, energy)
    for row in out.factorized:
        w = _matrix(net, row.name)
        s2 = np.linalg.svd(w, compute_uv=False) ** 2
        cum = np.cumsum(s2) / s2.sum()
        r = int(np.argmax(cum >= energy - 1e-12)) + 1  # numpy oracle
        assert row.rank == r and row.energy == pytest.approx(cum[r - 1])
        m, n = w.shape
        assert (row.skipped == "") == (r * (m + n) < m * n), row
        if not row.skipped:  # ||W - BA||^2 <= (1 - energy) ||W||^2
            assert row.sqnr_db >= -10 * np.log10(1 - energy) - 1e-3
            assert row.params_after == r * (m + n) and row.params_before == m * n


def test_macs_and_params_go_down(net):
    out = quantize.low_rank(net, rank=4)
    before, after = summarize(net.graph), summarize(out.graph)
    saved = sum(r.macs_before - r.macs_after for r in out.factorized)
    assert saved > 0 and before.macs - after.macs == saved
    pw = next(r for r in out.factorized if r.name == "pw")
    assert pw.macs_before == 48 * 24 * 25 and pw.macs_after == 4 * (48 + 24) * 25  # 5x5 output
    assert before.num_params - after.num_params == sum(r.params_before - r.params_after
                                                       for r in out.factorized)
    assert "3 of 3 layers factorized" in out.metadata.extra["compression.low_rank"]


def test_a_rank_that_saves_no_macs_keeps_the_layer(net):
    out = quantize.low_rank(net, rank=22)  # fc 40x48: 22*88 >= 1920; mm 30x40, pw 48x24 too
    assert all("saves no MACs" in r.skipped for r in out.factorized)
    assert [n.op for n in out.graph.nodes] == [n.op for n in net.graph.nodes]
    np.testing.assert_array_equal(out.run(_x(), backend="reference")["out"],
                                  net.run(_x(), backend="reference")["out"])


def test_exclude_and_then_quantize(net):
    out = quantize.low_rank(net, rank=4, exclude=["fc"])
    assert [r.name for r in out.factorized] == ["pw", "mm"]
    q = quantize.quantize(out, scheme="int8-weights")
    assert sum(n.op == "DequantizeLinear" for n in q.graph.nodes) == 5  # 2 + 2 + fc's 1


@pytest.mark.parametrize("kwargs, words", [
    ({}, "give exactly one of energy"),
    ({"energy": 0.9, "rank": 4}, "give exactly one of energy"),
    ({"energy": 0.0}, "energy must be a number in (0, 1]"),
    ({"energy": 1.5}, "energy must be a number in [0, 1]"),
    ({"rank": 0}, "rank must be an integer >= 1"),
    ({"rank": 2.5}, "rank must be an integer >= 1"),
    ({"rank": 4, "exclude": ["gap"]}, "'gap' (GlobalAveragePool), which is not a"),
])
def test_bad_options_are_one_line_errors(net, kwargs, words):
    with pytest.raises(ArgumentError) as info:
        quantize.low_rank(net, **kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_nothing_to_factorize(net):
    q = quantize.quantize(net, scheme="int8-weights")
    with pytest.raises(ArgumentError, match="nothing to factorize"):
        quantize.low_rank(q, 0.9)
