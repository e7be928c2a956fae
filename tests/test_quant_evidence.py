"""Issue 8's evidence claim, computed here: on the trained MobileNetV2-style and ResNet-style
digits nets (model_zoo/onnx, recipe model_zoo/torch/digits_train.py), mobconv's default
int8 quantization reaches at least onnxruntime's best logit SQNR (quantize_static, QDQ,
per-channel, MinMax and Percentile, same calibration set) with no more argmax flips against
fp32. The full table (every method, the Caffe model) is benchmarks/quant_vs_ort.py."""
import os
import sys
import tempfile

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import quant_vs_ort as bench  # noqa: E402

HELD_OUT = 300


@pytest.fixture(scope="module", params=("mobilenetv2", "resnet"))
def evidence(request):
    with tempfile.TemporaryDirectory() as workdir:
        case = bench.load_case(request.param, HELD_OUT, workdir)
        fp32 = bench.fp32_logits(case)
        q, _ = bench.mobconv_int8(case)  # the default method, every default option
        ours = q.run({"input": case.images}, backend="reference")["logits"]
        ort = {m: bench.run_ort(case, fp32, m, workdir) for m in bench.ORT_METHODS}
    return case, fp32, q, ours, ort


def test_default_is_a_real_int8_model(evidence):
    from mobconv import quantize

    case, fp32, q, ours, _ = evidence
    assert q.metadata.extra["quantization.method"] == quantize.DEFAULT_METHOD
    int8_convs = [n for n in q.graph.nodes if n.op in ("Conv", "Gemm")
                  and q.graph.values[n.inputs[1]].dtype == "int8"
                  and q.graph.values[n.outputs[0]].quant is not None]
    convs = [n for n in case.model.graph.nodes if n.op in ("Conv", "Gemm")]
    assert len(int8_convs) == len(convs)
    # every Conv/Gemm weight element stored as one int8 byte, and the file is smaller
    weights = sum(case.model.graph.values[n.inputs[1]].data.size for n in convs)
    assert sum(q.graph.values[n.inputs[1]].data.nbytes for n in int8_convs) == weights
    assert len(q.to_bytes()) < len(case.model.to_bytes())
    assert not np.array_equal(ours, fp32)
    assert (fp32.argmax(1) == case.labels).mean() > 0.97


def test_default_reaches_onnxruntime_best_sqnr_with_no_more_flips(evidence):
    case, fp32, _, ours, ort = evidence
    sqnr = bench.sqnr_db(fp32, ours)
    flips = int((ours.argmax(1) != fp32.argmax(1)).sum())
    best_sqnr = max(m["sqnr_db"] for m in ort.values())
    fewest_flips = min(m["flips"] for m in ort.values())
    summary = (f"{case.name}: mobconv default SQNR {sqnr:.2f} dB, {flips} flips; onnxruntime "
               + ", ".join(f"{k} {m['sqnr_db']:.2f} dB {m['flips']} flips" for k, m in ort.items()))
    assert np.isfinite(sqnr) and sqnr > 20, summary
    assert sqnr >= best_sqnr, summary
    assert flips <= fewest_flips, summary
