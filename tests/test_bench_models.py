"""benchmarks/bench_models.py (what `make bench` runs) works end to end in its --smoke mode:
the fp32 table, then the int8 comparison on the same net (mobconv fp32/int8, onnxruntime
fp32 and QDQ s8s8/u8s8, LiteRT or the line saying why not) with its ratio table. Timings are
never asserted: only that every variant was measured and that the ratios are the ones the
table names."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import bench_models  # noqa: E402


def _table(lines, head_start):
    at = next(i for i, line in enumerate(lines) if line.startswith(head_start))
    rows = []
    for line in lines[at + 1:]:
        if not line.startswith("tiny "):
            break
        rows.append(line.split())
    return lines[at].split(), rows


def test_smoke_prints_fp32_and_int8_tables(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_models, "OUT", tmp_path)
    assert bench_models.main(["--smoke", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert (tmp_path / "tiny.mob").exists() and (tmp_path / "tiny.int8.mob").exists()
    assert (tmp_path / "tiny.ort_s8s8.onnx").exists() and (tmp_path / "tiny.ort_u8s8.onnx").exists()
    # fp32: one row per thread count
    _, fp32 = _table(lines, "model          thr  mobconv ms")
    assert [int(r[1]) for r in fp32] == [1]
    # int8 latencies, then ratios mobconv int8 / each variant
    head, lat = _table(lines, "model          thr  mobconv fp32")
    assert [int(r[1]) for r in lat] == [1]
    mob32, mob8, ort32, s8, u8, litert = (lat[0][2:8])
    ms = {k: float(v.rstrip("*")) for k, v in (("mob32", mob32), ("mob8", mob8), ("ort32", ort32),
                                                ("s8", s8), ("u8", u8))}
    assert all(v > 0 for v in ms.values())
    if litert == "-":  # a line says why: not installed (and how to install it) or no .tflite
        assert "LiteRT int8 column skipped" in out and "pip install ai-edge-litert" in out or \
            "LiteRT int8 skipped, no int8 .tflite" in out
    head, ratios = _table(lines, "model          thr   /ort-s8s8")
    assert head[2:] == ["/ort-s8s8", "/ort-u8s8", "/ort-fp32", "/mob-fp32", "/litert-i8"]
    r = ratios[0][2:]
    for got, den in zip(r, ("s8", "u8", "ort32", "mob32")):
        want = ms["mob8"] / ms[den]
        assert abs(float(got) - want) <= 0.03 * want + 0.01, (got, den, want)
    assert (r[4] == "-") == (litert == "-")
    head, _ = _table(lines, "model          thr   /ort-s8s8")  # the first such table: wall clock
    at = lines.index(next(line for line in lines if line.startswith("the same ratios by median process CPU")))
    assert lines[at + 1].split()[2:] == head[2:] and lines[at + 2].startswith("tiny ")
    # where mobconv int8's time goes: the kernel of every op type the int8 net has
    breakdown = next(line for line in lines if "mobconv int8 kernels (1 thread" in line)
    for op in ("Conv:", "MatMul:", "GlobalAveragePool:"):
        assert op in breakdown


def test_missing_tensorflow_is_one_line_saying_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_models, "tf_python", lambda: "")
    note = bench_models.ensure_tflite(["mobilenet_v2", "tiny"], tmp_path)
    assert "\n" not in note and "mobilenet_v2" in note and "tiny" not in note
    assert "pip install tensorflow-cpu" in note
    # Nothing to build (no Keras architecture, or the files exist): no note.
    assert bench_models.ensure_tflite(["tiny"], tmp_path) == ""
    (tmp_path / "resnet50.tflite").write_bytes(b"x")
    (tmp_path / "resnet50.int8.tflite").write_bytes(b"x")
    assert bench_models.ensure_tflite(["resnet50"], tmp_path) == ""
