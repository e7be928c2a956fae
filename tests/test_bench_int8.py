"""benchmarks/bench_int8.py runs end to end on a tiny Conv -> Relu -> pool -> MatMul net
(both quantizers, every variant, 1 and 2 threads) and prints its table. Timings are never
asserted: only that every variant was measured and that the ratios are the ones it names."""
import os
import re
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import bench_int8  # noqa: E402


def tiny_onnx(path, opset=13, ir_version=8):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "b1"),
             numpy_helper.from_array((rng.standard_normal((8, 4)) * 0.3).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "w2"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])]
    if ir_version < 4:  # as the seeded light ResNet-50: some weights also graph inputs, some not
        inputs.append(helper.make_tensor_value_info("w1", TensorProto.FLOAT, [8, 3, 3, 3]))
    graph = helper.make_graph(nodes, "tiny", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.save(model, str(path))
    return model


def test_bench_int8_prints_the_table(tmp_path, capsys):
    tiny_onnx(tmp_path / "tiny.onnx")
    assert bench_int8.main(["--models", str(tmp_path / "tiny.onnx"), "--threads", "1", "2",
                            "--runs", "2", "--calib-samples", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "tiny.int8.mob").exists()
    assert (tmp_path / "tiny.ort_s8s8.onnx").exists() and (tmp_path / "tiny.ort_u8s8.onnx").exists()
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("model "))
    head = lines[at]
    for column in ("mobconv fp32", "mobconv int8", "ort fp32", "ort int8 s8s8", "ort int8 u8s8",
                   "litert int8", "int8/ort-int8", "int8/fp32"):
        assert column in head
    rows = {}
    for line in lines[at + 1:]:  # the latency table: the rows up to the first other line
        if not line.startswith("tiny "):
            break
        rows[int(line.split()[1])] = line.split()[2:]
    assert sorted(rows) == [1, 2]
    for cells in rows.values():
        mob32, mob8, ort32, s8, u8, litert, vs_ort, vs_fp32 = cells
        values = {k: float(v.rstrip("*")) for k, v in
                  (("mob32", mob32), ("mob8", mob8), ("s8", s8), ("u8", u8))}
        assert all(v > 0 for v in values.values())
        assert float(ort32) > 0
        if litert == "-":  # skipped: the note says why
            assert "LiteRT int8" in out
        # The ratios are the ones the table names (within the rounding of the printed milliseconds).
        best = min(values["s8"], values["u8"])
        assert abs(float(vs_ort) - values["mob8"] / best) <= 0.02 * float(vs_ort) + 0.01
        assert abs(float(vs_fp32) - values["mob8"] / values["mob32"]) <= 0.02 * float(vs_fp32) + 0.01
    # Both int8 models compute the float net within int8 error (a sanity column, on every row).
    sqnr = [float(m.group(1)) for m in re.finditer(r"mobconv int8 .*SQNR vs ort fp32\s+(\S+) dB", out)]
    assert len(sqnr) == 2 and all(s > 15 for s in sqnr)


def test_old_ir_models_are_modernized_for_ort_quantization(tmp_path):
    """onnx's light ResNet-50 with seeded weights (real_onnx_models.with_random_weights) is
    IR 3, opset 9, with weights that are initializers but not graph inputs: the version
    converter in quant_pre_process failed on it ('Input b1 is undefined!')."""
    import onnxruntime as ort

    model = tiny_onnx(tmp_path / "old.onnx", opset=9, ir_version=3)
    new = bench_int8.modernized(model)
    assert new.ir_version >= 7 and new.opset_import[0].version == 13
    assert [i.name for i in new.graph.input] == ["x"]
    onnx.save(new, str(tmp_path / "new.onnx"))
    calib = bench_int8.calibration("x", (1, 3, 16, 16), 2)
    bench_int8.ort_int8(tmp_path / "new.onnx", calib, "QUInt8", tmp_path / "new.u8.onnx")
    x = calib[0]
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    same = ort.InferenceSession(new.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_allclose(same, ref, rtol=1e-6, atol=1e-6)
