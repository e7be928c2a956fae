"""mobconv's int8 quantizer against onnxruntime.quantization.quantize_static, in one run.

    python benchmarks/quant_vs_ort.py                    # every model, every method
    python benchmarks/quant_vs_ort.py --models mobilenetv2 --held-out 300 --json out.json

Models (model_zoo): the trained digits nets `digits_mobilenetv2.onnx` and
`digits_resnet.onnx` (model_zoo/torch/digits_train.py) and the bundled Caffe digits
model (model_zoo/caffe/digits; onnxruntime gets the same network written as ONNX by
`caffe_digits_onnx`, checked against mobconv's float conversion).

Data: the same calibration set for both tools (the 200 images of
model_zoo/onnx/digits_calib/, for Caffe the first 200 images of its own training split),
fed in batches of 50; the held-out images (model_zoo/onnx/digits_heldout.npz; Caffe: its
held-out split) never take part in calibration.

mobconv: `quantize.quantize(model, calibration, method=m, scheme="int8")` for every
method in quantize.METHODS, everything else default (per-channel weights, asymmetric
activations, equalization auto, bias correction on); the int8 model runs in the
reference interpreter (exact integer arithmetic).
onnxruntime: `quant_pre_process` (its recommended preprocessing: shape inference, BN
folding) then `quantize_static(QuantFormat.QDQ, per_channel=True, QInt8 activations and
weights)` with CalibrationMethod.MinMax and Percentile; the QDQ model runs in
onnxruntime.

Per model and method: fp32 top-1, int8 top-1, argmax flips against fp32 (on the
held-out images), logit SQNR in dB (10 log10 of sum(ref^2) / sum((ref - int8)^2) over
all held-out logits; the Caffe model's output is its Softmax, so there it is the
probabilities) and the file size (.mob for mobconv, .onnx for onnxruntime). fp32 is
onnxruntime on the float ONNX for both tools (mobconv's float conversion agrees within
1e-5, tests/test_digits_zoo.py). Numbers are reported here; tests/test_quant_evidence.py
asserts the claims with numbers it computes itself.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ort_quant import ort_quantize_static, sqnr_db  # noqa: E402

ZOO = ROOT / "model_zoo" / "onnx"
CAFFE = ROOT / "model_zoo" / "caffe" / "digits"
MODELS = ("mobilenetv2", "resnet", "caffe_digits")
ORT_METHODS = ("MinMax", "Percentile")
CALIB_BATCH = 50


# ---- data and models -----------------------------------------------------------------------


class Case:
    """One model: its float ONNX (for onnxruntime), its float mobconv Model, the
    calibration batches and the held-out images/labels."""

    def __init__(self, name, onnx_path, mob_model, input_name, calib, images, labels):
        self.name, self.onnx_path, self.model = name, str(onnx_path), mob_model
        self.input_name, self.calib, self.images, self.labels = input_name, calib, images, labels

    def calib_feeds(self):
        return [{self.input_name: self.calib[i:i + CALIB_BATCH]}
                for i in range(0, len(self.calib), CALIB_BATCH)]


def digits_calibration() -> np.ndarray:
    folder = ZOO / "digits_calib"
    return np.concatenate([np.load(folder / f) for f in sorted(os.listdir(folder))
                           if f.endswith(".npy")])


def caffe_digits_onnx(path: str) -> None:
    """The bundled Caffe digits net (Power scale -> InnerProduct -> ReLU -> InnerProduct ->
    Softmax) written as the equivalent ONNX graph for onnxruntime: mobconv's Caffe
    frontend yields ONNX-named ops (Mul, Flatten, Gemm, Relu, Softmax), copied one to one
    with a batch dimension N."""
    import onnx
    from onnx import helper, numpy_helper

    from mobconv.frontends.caffe import load_caffe

    graph = load_caffe(str(CAFFE / "deploy.prototxt"), str(CAFFE / "digits.caffemodel"))
    nodes, inits = [], []
    for name, value in graph.values.items():
        if getattr(value, "data", None) is not None:
            inits.append(numpy_helper.from_array(np.asarray(value.data), name))
    for node in graph.nodes:
        nodes.append(helper.make_node(node.op, node.inputs, node.outputs, name=node.name,
                                      **node.attrs))
    (inp,), (out,) = graph.inputs, graph.outputs
    model = helper.make_model(
        helper.make_graph(nodes, "caffe_digits", [
            helper.make_tensor_value_info(inp, onnx.TensorProto.FLOAT, ["N", 1, 8, 8])],
            [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, ["N", 10])], inits),
        opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def load_case(name: str, held_out: int, workdir: str) -> Case:
    import mobconv

    if name == "caffe_digits":
        from model_zoo.caffe.digits.train import load_split

        x_train, _, x_test, y_test = load_split()
        onnx_path = os.path.join(workdir, "caffe_digits.onnx")
        caffe_digits_onnx(onnx_path)
        model = mobconv.convert(str(CAFFE / "deploy.prototxt"),
                                caffemodel=str(CAFFE / "digits.caffemodel"),
                                input_shapes={"data": ("N", 1, 8, 8)})
        case = Case(name, onnx_path, model, "data", x_train[:200], x_test[:held_out],
                    y_test[:held_out])
        ours = model.run({"data": case.images}, backend="reference")["prob"]
        gap = float(np.abs(ours - fp32_logits(case)).max())
        if gap > 1e-5:
            raise RuntimeError(f"{onnx_path}: the ONNX copy of the Caffe digits net differs from "
                               f"mobconv's conversion by {gap:g}")
        return case
    onnx_path = ZOO / f"digits_{name}.onnx"
    data = np.load(ZOO / "digits_heldout.npz")
    return Case(name, onnx_path, mobconv.convert(str(onnx_path)), "input", digits_calibration(),
                data["images"][:held_out], data["labels"][:held_out])


# ---- metrics -------------------------------------------------------------------------------


def metrics(case: Case, fp32: np.ndarray, int8: np.ndarray, size: int, seconds: float) -> dict:
    return {
        "fp32_top1": float((fp32.argmax(1) == case.labels).mean()),
        "int8_top1": float((int8.argmax(1) == case.labels).mean()),
        "flips": int((fp32.argmax(1) != int8.argmax(1)).sum()),
        "sqnr_db": sqnr_db(fp32, int8),
        "size": int(size),
        "seconds": round(seconds, 2),
    }


def ort_run(path: str, case: Case) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return sess.run(None, {case.input_name: case.images})[0]


def fp32_logits(case: Case) -> np.ndarray:
    return ort_run(case.onnx_path, case)


# ---- the two quantizers ----------------------------------------------------------------------


def mobconv_int8(case: Case, method=None, **options):
    """(int8 Model, seconds) from mobconv's quantizer; method None = its default."""
    from mobconv import quantize

    start = time.perf_counter()
    if method is not None:
        options["method"] = method
    q = quantize.quantize(case.model, case.calib_feeds(), scheme="int8", progress=False,
                          **options)
    return q, time.perf_counter() - start


def run_mobconv(case: Case, fp32: np.ndarray, method=None, **options) -> dict:
    q, seconds = mobconv_int8(case, method, **options)
    out = q.run({case.input_name: case.images}, backend="reference")
    logits = out[case.model.outputs[0].name]
    return metrics(case, fp32, logits, len(q.to_bytes()), seconds)


def ort_int8(case: Case, method: str, workdir: str) -> tuple:
    """(path of onnxruntime's QDQ int8 model, seconds)."""
    out = os.path.join(workdir, f"{case.name}.ort_{method}.onnx")
    seconds = ort_quantize_static(case.onnx_path, os.path.join(workdir, f"{case.name}.pre.onnx"),
                                  out, case.calib_feeds(), method=method)
    return out, seconds


def run_ort(case: Case, fp32: np.ndarray, method: str, workdir: str) -> dict:
    path, seconds = ort_int8(case, method, workdir)
    return metrics(case, fp32, ort_run(path, case), os.path.getsize(path), seconds)


# ---- the table -----------------------------------------------------------------------------


def depthwise_spread(case: Case) -> float:
    """The largest spread, over the depthwise convolutions of the converted float model
    (BN folded), of the per-output-channel weight ranges: max / median
    (quantize.equalize.range_spread); None without depthwise convolutions."""
    from mobconv.quantize.equalize import weight_range_spread

    spread = weight_range_spread(case.model.graph)
    dw = [n.name for n in case.model.graph.nodes if n.op == "Conv" and n.attrs.get("group", 1) > 1]
    return max((spread[n] for n in dw if n in spread), default=None)


def benchmark(models=MODELS, methods=None, ort_methods=ORT_METHODS, held_out=300,
              per_tensor=False, log=print) -> dict:
    """{model: {"fp32_size_onnx", "fp32_size_mob", "mobconv:<method>": metrics,
    "onnxruntime:<method>": metrics}}; per_tensor adds "mobconv-per-tensor:<default>
    equalize off|on" rows (per-tensor weights) and "depthwise_spread"."""
    from mobconv import quantize

    methods = tuple(quantize.METHODS if methods is None else methods)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in models:
            case = load_case(name, held_out, workdir)
            fp32 = fp32_logits(case)
            row = {"fp32_size_onnx": os.path.getsize(case.onnx_path),
                   "fp32_size_mob": len(case.model.to_bytes()), "held_out": len(case.labels)}
            for method in methods:
                row[f"mobconv:{method}"] = run_mobconv(case, fp32, method)
                log(f"{name} mobconv:{method} {row[f'mobconv:{method}']}")
            if per_tensor:
                row["depthwise_spread"] = depthwise_spread(case)
                for eq in (False, True):
                    key = f"mobconv-per-tensor:{quantize.DEFAULT_METHOD} equalize {'on' if eq else 'off'}"
                    row[key] = run_mobconv(case, fp32, per_tensor=True, equalize=eq)
                    log(f"{name} {key} {row[key]}")
            for method in ort_methods:
                row[f"onnxruntime:{method}"] = run_ort(case, fp32, method, workdir)
                log(f"{name} onnxruntime:{method} {row[f'onnxruntime:{method}']}")
            results[name] = row
    return results


def table(results: dict, default_method: str) -> str:
    lines = ["| model | quantizer | method | fp32 top-1 | int8 top-1 | flips | logit SQNR (dB) "
             "| size (bytes) |", "|---|---|---|---|---|---|---|---|"]
    for name, row in results.items():
        if row.get("depthwise_spread") is not None:
            lines.append(f"| {name} | depthwise weight range spread, max/median channel (BN folded): "
                         f"{row['depthwise_spread']:.1f}x | | | | | | |")
        lines.append(f"| {name} | fp32 | - | | | | | {row['fp32_size_onnx']} (.onnx), "
                     f"{row['fp32_size_mob']} (.mob) |")
        for key, m in row.items():
            if ":" not in key:
                continue
            tool, method = key.split(":")
            label = f"{method} (default)" if tool == "mobconv" and method == default_method else method
            lines.append(f"| {name} | {tool} | {label} | {m['fp32_top1']:.4f} | {m['int8_top1']:.4f} "
                         f"| {m['flips']}/{row['held_out']} | {m['sqnr_db']:.2f} | {m['size']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--methods", nargs="+", help="mobconv methods (default: all)")
    parser.add_argument("--held-out", type=int, default=300, help="held-out images per model")
    parser.add_argument("--per-tensor", action="store_true",
                        help="also per-tensor weights with equalization off and on")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    from mobconv import quantize

    results = benchmark(args.models, args.methods, held_out=args.held_out,
                        per_tensor=args.per_tensor, log=lambda s: print(s, file=sys.stderr))
    print(table(results, quantize.DEFAULT_METHOD))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
