"""`mobconv info` on quantized models: per-tensor dtypes and quantization parameters,
the `quantization.*` metadata, and the weight bytes against float32.

The graphs are built by hand (an int8 Conv with per-axis weights and an int32 bias
between QuantizeLinear/DequantizeLinear; an fp16 graph from quantize.fp16), so every
expected number below is computed from the arrays the test wrote, not read back from
`info`'s own output.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from mobconv import api
from mobconv.cli.main import main
from mobconv.ir import Graph
from mobconv.ir.graph import QuantParams
from mobconv.ir.infer import infer_shapes
from mobconv.quantize.fp16 import to_fp16

W_SCALES = [0.01, 0.02, 0.03, 0.04]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def int8_graph() -> Graph:
    """x -> QuantizeLinear -> int8 Conv (per-axis int8 W, int32 bias) -> DequantizeLinear -> y."""
    rng = np.random.default_rng(0)
    g = Graph("int8")
    g.add_input("x", "float32", (1, 3, 8, 8))
    g.add_constant("x/scale", np.float32(0.05))
    g.add_constant("x/zero_point", np.int8(-3))
    g.add_constant("y/scale", np.float32(0.1))
    g.add_constant("y/zero_point", np.int8(5))
    w = g.add_constant("W/q", rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8))
    w.quant = QuantParams(scales=list(W_SCALES), zero_points=[0] * 4, axis=0)
    b = g.add_constant("B/q", rng.integers(-1000, 1000, 4).astype(np.int32))
    b.quant = QuantParams(scales=[0.05 * s for s in W_SCALES], zero_points=[0] * 4, axis=0)
    g.add_node("QuantizeLinear", ["x", "x/scale", "x/zero_point"], ["x/q"])
    g.add_node("Conv", ["x/q", "W/q", "B/q"], ["y/q"], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
    g.add_node("DequantizeLinear", ["y/q", "y/scale", "y/zero_point"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    g.values["x/q"].quant = QuantParams(scales=[0.05], zero_points=[-3])
    g.values["y/q"].quant = QuantParams(scales=[0.1], zero_points=[5])
    g.metadata.extra.update({"quantization.scheme": "int8", "quantization.method": "mse",
                             "quantization.weights": "per-channel"})
    return g


def test_info_int8_table_parameters_and_sizes(capsys, tmp_path):
    g = int8_graph()
    path = tmp_path / "int8.mob"
    api.Model(g).save(path)
    stored = 108 + 4 * 4 + 4 + 1 + 4 + 1  # int8 W, int32 B, two float32 scales, two int8 zero points
    as_float = 4 * 108 + 4 * 4            # W and B in float32; a float model has no scales/zero points
    code, out, err = cli(capsys, "info", path, "--json")
    assert code == 0, err
    q = json.loads(out)["quantization"]
    assert q["scheme"] == "int8" and q["metadata"]["method"] == "mse"
    assert q["weight_bytes"] == stored and q["float32_weight_bytes"] == as_float
    assert q["saved_bytes"] == as_float - stored
    assert q["weight_bytes_by_dtype"] == {"int8": 110, "int32": 16, "float32": 8}
    assert q["float32_file_estimate"] == path.stat().st_size + as_float - stored
    rows = {r["name"]: r for r in q["tensors"]}
    assert set(rows) == {"W/q", "B/q", "x/q", "y/q"}
    w = rows["W/q"]
    assert (w["dtype"], w["role"], w["per_axis"], w["axis"], w["channels"]) == ("int8", "weight", True, 0, 4)
    assert w["scales"] == pytest.approx(W_SCALES) and w["zero_points"] == [0] * 4
    assert (w["scale_min"], w["scale_max"]) == pytest.approx((0.01, 0.04))
    assert rows["B/q"]["dtype"] == "int32" and rows["B/q"]["role"] == "bias"
    x = rows["x/q"]
    assert (x["per_axis"], x["role"], x["zero_point_min"]) == (False, "activation", -3)
    assert x["scale_min"] == pytest.approx(0.05)

    code, out, err = cli(capsys, "info", path)
    assert code == 0, err
    assert "Quantization: scheme int8 (method mse, weights per-channel)" in out
    assert "Quantized tensors: 4 (int8 3, int32 1)" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("W/q"))
    assert "per-axis (4 channels, axis 0)" in line and "0.01 .. 0.04" in line and line.split()[-1] == "0"
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("x/q"))
    assert "per-tensor" in line and "0.05" in line and line.split()[-1] == "-3"
    assert f"{as_float / stored:.1f}x smaller" in out


def test_info_fp16_graph_lists_float16_weights_and_kept_reasons(capsys, tmp_path):
    rng = np.random.default_rng(1)
    g = Graph("fp16")
    g.add_input("x", "float32", (2, 300))
    w = rng.standard_normal((300, 20)).astype(np.float32)
    big = w * 1e5
    g.add_constant("W", w)
    g.add_constant("W_big", big)
    g.add_node("MatMul", ["x", "W"], ["a"])
    g.add_node("MatMul", ["x", "W_big"], ["b"])
    g.outputs = ["a", "b"]
    infer_shapes(g)
    path = tmp_path / "fp16.mob"
    api.Model(to_fp16(g)).save(path)
    code, out, err = cli(capsys, "info", path, "--json")
    assert code == 0, err
    q = json.loads(out)["quantization"]
    assert q["scheme"] == "fp16"
    assert q["weight_bytes_by_dtype"] == {"float32": big.nbytes, "float16": w.size * 2}
    assert q["float32_weight_bytes"] == w.nbytes + big.nbytes
    assert [(r["name"], r["dtype"], r["shape"]) for r in q["tensors"]] == [("W/fp16", "float16", [300, 20])]
    assert len(q["kept_float32"]) == 1 and q["kept_float32"][0].startswith("W_big: ")
    code, out, err = cli(capsys, "info", path)
    assert code == 0, err
    assert "Quantization: scheme fp16" in out
    assert "kept float32: W_big: " in out and "65504" in out
    assert "float16 storage, widened to float32 at load" in out


def test_info_float_model_has_no_quantization_section(capsys, tmp_path):
    g = Graph("float")
    g.add_input("x", "float32", (1, 4))
    g.add_constant("W", np.ones((4, 4), np.float32))
    g.add_node("MatMul", ["x", "W"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    api.Model(g).save(tmp_path / "f.mob")
    code, out, _ = cli(capsys, "info", tmp_path / "f.mob", "--json")
    assert code == 0 and json.loads(out)["quantization"] is None
    code, out, _ = cli(capsys, "info", tmp_path / "f.mob")
    assert code == 0 and "Quantization" not in out and "Quantized tensors" not in out


def test_info_many_quantized_tensors_are_cut_with_a_pointer_to_json(capsys, tmp_path):
    from mobconv.cli.info import MAX_QUANT_ROWS

    g = Graph("many")
    g.add_input("x", "float32", (1, 4))
    prev = "x"
    for i in range(MAX_QUANT_ROWS + 5):
        g.add_constant(f"s{i}", np.float32(0.1))
        g.add_constant(f"z{i}", np.int8(0))
        g.add_node("QuantizeLinear", [prev, f"s{i}", f"z{i}"], [f"q{i}"])
        g.add_node("DequantizeLinear", [f"q{i}", f"s{i}", f"z{i}"], [f"d{i}"])
        prev = f"d{i}"
    g.outputs = [prev]
    infer_shapes(g)
    for i in range(MAX_QUANT_ROWS + 5):
        g.values[f"q{i}"].quant = QuantParams(scales=[0.1], zero_points=[0])
    api.Model(g).save(tmp_path / "m.mob")
    code, out, _ = cli(capsys, "info", tmp_path / "m.mob")
    assert code == 0
    assert f"Quantized tensors: {MAX_QUANT_ROWS + 5} (int8 {MAX_QUANT_ROWS + 5})" in out
    assert "... 5 more (mobconv info --json lists all)" in out
    code, out, _ = cli(capsys, "info", tmp_path / "m.mob", "--json")
    assert len(json.loads(out)["quantization"]["tensors"]) == MAX_QUANT_ROWS + 5


def test_info_qdq_weight_without_value_quant_reads_its_dequantize_inputs(capsys, tmp_path):
    """An imported QDQ weight: int8 constant -> DequantizeLinear(scale[4], zp[4], axis 0) -> Conv."""
    rng = np.random.default_rng(2)
    g = Graph("qdq")
    g.add_input("x", "float32", (1, 3, 6, 6))
    g.add_constant("W", rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8))
    g.add_constant("W/scale", np.array(W_SCALES, np.float32))
    g.add_constant("W/zero_point", np.array([0, 1, -1, 2], np.int8))
    g.add_node("DequantizeLinear", ["W", "W/scale", "W/zero_point"], ["W/dq"], {"axis": 0})
    g.add_node("Conv", ["x", "W/dq"], ["y"], {"kernel_shape": [3, 3]})
    g.outputs = ["y"]
    infer_shapes(g)
    api.Model(g).save(tmp_path / "qdq.mob")
    code, out, err = cli(capsys, "info", tmp_path / "qdq.mob", "--json")
    assert code == 0, err
    q = json.loads(out)["quantization"]
    assert q["scheme"] == "int8" and q["metadata"] == {}
    assert q["float32_weight_bytes"] == 4 * 108 and q["weight_bytes"] == 108 + 16 + 4
    [row] = q["tensors"]
    assert (row["name"], row["per_axis"], row["axis"], row["channels"]) == ("W", True, 0, 4)
    assert row["scales"] == pytest.approx(W_SCALES) and row["zero_points"] == [0, 1, -1, 2]
    code, out, _ = cli(capsys, "info", tmp_path / "qdq.mob")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("W "))
    assert "per-axis (4 channels, axis 0)" in line and line.rstrip().endswith("-1 .. 2")
