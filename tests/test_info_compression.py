"""`mobconv info` and `mobconv.summary.storage_summary` on pruned / clustered models:
per layer, dense and stored bytes, sparsity and clusters, with totals (text and --json).

Every expected number is computed here from the arrays the test wrote, with the
format's size formulas (docs/format-rules.md: a sparse tensor stores ceil(n/8) mask
bytes plus its non-zero elements; a palette ceil(n*bits/8) index bytes plus K entries),
not read back from `info`'s own output.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mobconv import api
from mobconv.cli.main import main
from mobconv.errors import ModelFormatError
from mobconv.ir import Graph, infer_shapes
from mobconv.ir.graph import WeightStorage
from mobconv.summary import human_bytes, storage_summary


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def compressed_graph(hints: bool = True) -> Graph:
    """x -> Conv (1x1, 70% zero weights, sparse) -> Relu -> Flatten -> Gemm (16-value
    weights, palette 4-bit) -> y, plus a small bias."""
    rng = np.random.default_rng(0)
    g = Graph("cmp")
    g.add_input("x", "float32", (1, 8, 4, 4))
    w = rng.standard_normal((32, 8, 1, 1)).astype(np.float32)
    w[rng.random(w.shape) < 0.7] = 0
    g.add_constant("conv1.weight", w)
    centers = np.linspace(-1, 1, 16, dtype=np.float32)
    g.add_constant("fc.weight", centers[rng.integers(0, 16, (10, 32 * 16))])
    g.add_constant("fc.bias", rng.standard_normal(10).astype(np.float32))
    g.add_node("Conv", ["x", "conv1.weight"], ["c"], name="conv1")
    g.add_node("Relu", ["c"], ["r"], name="relu1")
    g.add_node("Flatten", ["r"], ["f"], {"axis": 1}, name="flatten")
    g.add_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], {"transB": 1}, name="fc")
    g.outputs = ["y"]
    infer_shapes(g)
    if hints:
        g.values["conv1.weight"].storage = WeightStorage("sparse")
        g.values["fc.weight"].storage = WeightStorage("palette", 4)
    return g


def expected(g: Graph) -> dict:
    """name -> (dense bytes, stored bytes, sparsity, clusters) by the format's formulas."""
    out = {}
    for v in g.constants():
        d = np.asarray(v.data)
        n = d.size
        zeros = int(np.sum(d == 0))
        if v.storage is not None and v.storage.kind == "sparse" and \
                (n + 7) // 8 + (n - zeros) * d.itemsize < d.nbytes:
            stored, clusters = (n + 7) // 8 + (n - zeros) * d.itemsize, None
        elif v.storage is not None and v.storage.kind == "palette":
            k = len(np.unique(d))
            stored, clusters = math.ceil(n * v.storage.bits / 8) + k * d.itemsize, k
        else:
            stored, clusters = d.nbytes, None
        out[v.name] = (d.nbytes, stored, zeros / n, clusters)
    return out


def test_storage_summary_rows():
    g = compressed_graph()
    rows = {r["name"]: r for r in storage_summary(g)}
    want = expected(g)
    assert set(rows) == set(want)
    for name, (dense, stored, sparsity, clusters) in want.items():
        r = rows[name]
        assert (r["dense_bytes"], r["stored_bytes"], r["clusters"]) == (dense, stored, clusters)
        assert r["sparsity"] == pytest.approx(sparsity)
    assert (rows["conv1.weight"]["node"], rows["conv1.weight"]["op"]) == ("conv1", "Conv")
    assert rows["conv1.weight"]["storage"] == "sparse" and rows["conv1.weight"]["shape"] == [32, 8, 1, 1]
    assert rows["fc.weight"]["storage"] == "palette" and rows["fc.weight"]["index_bits"] == 4
    assert rows["fc.bias"]["storage"] == "dense" and rows["fc.bias"]["node"] == "fc"
    # the stored sizes are what the file holds: the file shrinks by dense - stored
    plain = compressed_graph(hints=False)
    saved = sum(want[n][0] - want[n][1] for n in want)
    size, plain_size = len(api.Model(g).to_bytes()), len(api.Model(plain).to_bytes())
    # each compressed tensor adds a buffer (<= 63 bytes of alignment padding, a 12-byte
    # table, a 4-byte offset) and a CompressedData table (<= 40 bytes): <= 120 bytes
    assert saved - 2 * 120 <= plain_size - size <= saved + 2 * 64


def test_storage_summary_refuses_what_the_writer_refuses():
    g = compressed_graph()
    g.values["fc.weight"].storage = WeightStorage("palette", 2)  # 16 values > 4
    with pytest.raises(ModelFormatError, match="'fc.weight'.*16 distinct values"):
        storage_summary(g)


def test_info_table_and_totals(capsys, tmp_path):
    g = compressed_graph()
    path = tmp_path / "c.mob"
    api.Model(g).save(path)
    code, out, err = cli(capsys, "info", path)
    assert code == 0 and err == ""
    want = expected(g)
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Compressed weights:"))
    assert "1 sparse, 1 palette stored compressed" in lines[head]
    dense = sum(w[0] for w in want.values())
    stored = sum(w[1] for w in want.values())
    assert f"{human_bytes(stored)} as stored, {human_bytes(dense)} dense" in lines[head + 1]
    assert f"file: {human_bytes(path.stat().st_size)}" in lines[head + 2]
    header = lines[head + 3].split()
    assert header == ["layer", "weight", "shape", "dtype", "storage", "dense", "stored",
                      "sparsity", "clusters"]
    conv = next(line for line in lines if line.split()[:2] == ["conv1", "conv1.weight"])
    d, s, sp, _ = want["conv1.weight"]
    assert conv.split()[2:] == ["[32,", "8,", "1,", "1]", "float32", "sparse",
                                *human_bytes(d).split(), *human_bytes(s).split(),
                                f"{100 * sp:.1f}%", "-"]
    fc = next(line for line in lines if line.split()[:2] == ["fc", "fc.weight"])
    d, s, sp, k = want["fc.weight"]
    assert fc.split()[2:] == ["[10,", "512]", "float32", "palette", "4-bit",
                              *human_bytes(d).split(), *human_bytes(s).split(),
                              f"{100 * sp:.1f}%", str(k)]
    total = next(line for line in lines if line.split()[:1] == ["total"])
    zeros = sum(w[2] * np.asarray(g.values[n].data).size for n, w in want.items())
    elements = sum(np.asarray(g.values[n].data).size for n in want)
    assert total.split()[1:] == ["3", "constants", *human_bytes(dense).split(),
                                 *human_bytes(stored).split(), f"{100 * zeros / elements:.1f}%"]
    assert "1 more constant (smaller than 256 elements" in out  # the bias


def test_info_json_lists_every_constant(capsys, tmp_path):
    g = compressed_graph()
    path = tmp_path / "c.mob"
    api.Model(g).save(path)
    code, out, _ = cli(capsys, "info", path, "--json")
    assert code == 0
    st = json.loads(out)["storage"]
    want = expected(g)
    assert {r["name"]: (r["dense_bytes"], r["stored_bytes"], r["clusters"]) for r in st["tensors"]} \
        == {n: (w[0], w[1], w[3]) for n, w in want.items()}
    assert st["compressed"] == {"sparse": 1, "palette": 1}
    assert st["dense_bytes"] - st["stored_bytes"] == st["saved_bytes"] > 0
    assert st["file_size"] == path.stat().st_size
    assert st["dense_file_estimate"] == st["file_size"] + st["saved_bytes"]


def test_info_without_compression_or_zeros_has_no_section(capsys, tmp_path):
    g = compressed_graph(hints=False)
    g.values["conv1.weight"].data = np.ones((32, 8, 1, 1), np.float32)
    path = tmp_path / "plain.mob"
    api.Model(g).save(path)
    code, out, _ = cli(capsys, "info", path)
    assert code == 0 and "Compressed weights" not in out
    code, out, _ = cli(capsys, "info", path, "--json")
    assert json.loads(out)["storage"] is None


def test_info_shows_sparsity_of_a_dense_stored_pruned_weight(capsys, tmp_path):
    g = compressed_graph(hints=False)  # 70% zeros, but stored dense (no hint)
    path = tmp_path / "pruned.mob"
    api.Model(g).save(path)
    code, out, _ = cli(capsys, "info", path)
    assert code == 0
    assert "Compressed weights: none stored compressed" in out
    sp = expected(g)["conv1.weight"][2]
    conv = next(line for line in out.splitlines() if line.split()[:2] == ["conv1", "conv1.weight"])
    assert "dense" in conv.split() and f"{100 * sp:.1f}%" in conv.split()


def test_info_long_tables_are_cut(capsys, tmp_path):
    rng = np.random.default_rng(1)
    g = Graph("many")
    g.add_input("x", "float32", (1, 16))
    prev = "x"
    for i in range(45):
        w = rng.standard_normal((16, 16)).astype(np.float32)
        w[np.abs(w) < 1] = 0
        g.add_constant(f"w{i}", w).storage = WeightStorage("sparse")
        g.add_node("MatMul", [prev, f"w{i}"], [f"y{i}"], name=f"mm{i}")
        prev = f"y{i}"
    g.outputs = [prev]
    infer_shapes(g)
    path = tmp_path / "many.mob"
    api.Model(g).save(path)
    code, out, _ = cli(capsys, "info", path)
    assert code == 0
    assert "45 sparse stored compressed" in out
    assert "mm39" in out and "mm40 " not in out
    assert "... 5 more constants" in out
    code, out, _ = cli(capsys, "info", path, "--json")
    assert len(json.loads(out)["storage"]["tensors"]) == 45


def test_rows_follow_the_layers_not_the_order_constants_were_added():
    g = compressed_graph()
    g.values = dict(reversed(list(g.values.items())))  # fc.bias, fc.weight, conv1.weight first
    g.add_constant("unused", np.zeros(300, np.float32))
    assert [r["name"] for r in storage_summary(g)] == [
        "conv1.weight", "fc.weight", "fc.bias", "unused"]
    assert storage_summary(g)[-1]["node"] == ""


def test_quantization_section_counts_compressed_int8_weights_as_stored(capsys, tmp_path):
    from test_info_quant import int8_graph

    g = int8_graph()
    w = g.values["W/q"]
    data = np.asarray(w.data).copy()
    data[np.random.default_rng(2).random(data.shape) < 0.8] = 0
    w.data, w.storage = data, WeightStorage("sparse")
    path = tmp_path / "int8.sparse.mob"
    api.Model(g).save(path)
    code, out, _ = cli(capsys, "info", path, "--json")
    q = json.loads(out)["quantization"]
    n, nnz = data.size, int(np.count_nonzero(data))
    assert q["weight_bytes_by_dtype"]["int8"] == (n + 7) // 8 + nnz + 2  # + 2 int8 zero points
    assert q["weight_bytes"] == sum(
        ((n + 7) // 8 + nnz) if v.name == "W/q" else np.asarray(v.data).nbytes
        for v in g.constants())
