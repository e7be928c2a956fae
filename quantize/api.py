"""`quantize()`: a float `mobconv.Model` -> a quantized one (int8, weight-only int8, fp16).

    from mobconv import quantize
    q = quantize.quantize(model, "calib/", method="mse")     # static int8
    q.save("model.int8.mob"); q.run({"input": x})

Pipeline (scheme "int8"): copy the float graph -> split fused forms without an
integer rule (qdq.prepare) -> cross-layer equalization (equalize.py; `equalize=None`
turns it on where it helps) -> calibration ranges (calibration.py) -> QDQ insertion
(qdq.py) -> bias correction (bias_correction.py) -> [accuracy budget: layers back to
float (mixed.py)] -> lowering to int8 ops (mobconv/passes/lower_qdq.py). "int8-weights"
skips the data steps; "fp16" stores the float weights as float16 (fp16.py). The
input model is never modified. Every option is checked before any work
(config.QuantConfig).
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional

from mobconv.api import Model, convert, load
from mobconv.errors import ArgumentError, UsageError

from .config import PY_NAMES, QuantConfig

METADATA_PREFIX = "quantization."


def quantize(model, calibration=None, *, scheme: str = "int8", method: Optional[str] = None,
             per_tensor: bool = False, symmetric_activations: bool = False,
             io_dtype: str = "float32", percentile: Optional[float] = None,
             equalize: Optional[bool] = None, bias_correction: Optional[bool] = None,
             exclude=(), max_sqnr_drop: Optional[float] = None, min_sqnr: Optional[float] = None,
             evaluate=None, max_drop: Optional[float] = None, progress: Optional[bool] = None,
             num_samples: Optional[int] = None) -> Model:
    """Quantize `model` (a float `mobconv.Model`, or the path of a .mob/.onnx/.prototxt).

    calibration: the data activations are calibrated on (scheme "int8" only): a folder
      of .npy/.npz files or images, an iterable of feed dicts, or a reader with
      get_next() (onnxruntime's CalibrationDataReader).
    scheme: "int8" (static: int8 weights and activations), "int8-weights" (int8
      weights, float activations, no data), "dynamic" (int8 weights; MatMul/Gemm
      quantize their activations per row at run time, no data), "fp16" (float16
      weight storage).
    method: the calibration method, "minmax", "percentile", "entropy" or "mse"
      (default config.DEFAULT_METHOD); percentile: for method "percentile" (99.99).
    per_tensor: one weight scale per tensor instead of per output channel.
    symmetric_activations: activation zero points 0 (default: asymmetric).
    io_dtype: "float32" (quantize/dequantize at the graph's edges) or "int8".
    equalize: cross-layer equalization; None = where it helps. bias_correction:
      empirical bias correction from the calibration data; None = on for "int8".
    exclude: node names that stay float.
    max_sqnr_drop / min_sqnr (dB, on the outputs) or evaluate=fn(model) -> score with
      max_drop: an accuracy budget; the most sensitive layers return to float until
      it holds.
    progress: None = a progress bar on a terminal; True/False to force.
    num_samples: use at most this many calibration samples.

    Returns a new `mobconv.Model` (save/run it; `quantize.debug` compares it with the
    float model). Invalid options raise ArgumentError (one line) before any work.
    """
    config = QuantConfig.create(
        scheme=scheme, method=method, per_tensor=per_tensor,
        symmetric_activations=symmetric_activations, io_dtype=io_dtype, percentile=percentile,
        equalize=equalize, bias_correction=bias_correction, exclude=exclude,
        max_sqnr_drop=max_sqnr_drop, min_sqnr=min_sqnr, evaluate=evaluate, max_drop=max_drop,
        progress=progress, num_samples=num_samples, calibration_given=calibration is not None)
    return quantize_with_config(as_model(model), calibration, config)


def as_model(model) -> Model:
    """A `Model` as given, or loaded/converted from a path (.mob, or a source model)."""
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(model))
        if path.lower().endswith(".mob"):
            return load(path)
        if path.lower().endswith((".prototxt", ".caffemodel")):  # two files: convert() takes both
            raise ArgumentError(f"quantize(): {path}: a Caffe model is two files; convert it "
                                "first: model = mobconv.convert('deploy.prototxt', "
                                "caffemodel='weights.caffemodel'), then quantize(model, ...)")
        return convert(path)
    raise ArgumentError(f"quantize(): model must be a mobconv.Model or the path of a model file, "
                        f"got a {type(model).__name__}")


def _label(model: Model) -> str:
    return model.source or "the model"


def check_model(model: Model, config: QuantConfig, names=None) -> None:
    """Refuse a model that cannot be quantized with `config`, naming the file and why."""
    graph = model.graph
    where = _label(model)
    done = graph.metadata.extra.get(METADATA_PREFIX + "scheme")
    quantized = [v.name for v in graph.values.values()
                 if v.quant is not None or (v.data is not None and v.dtype in ("int8", "uint8"))]
    if done or quantized:
        what = f"scheme {done}" if done else f"quantized tensor {quantized[0]!r}"
        raise UsageError(f"{where}: is already quantized ({what}); quantize the float model")
    if not any(v.data is not None and v.dtype == "float32" and v.data.size > 1
               for v in graph.values.values()):
        raise UsageError(f"{where}: has no float32 weights to quantize")


def quantize_with_config(model: Model, calibration, config: QuantConfig,
                         names=None, timings: Optional[dict] = None) -> Model:
    """`quantize()` with a checked config (the command line builds its own, whose
    messages name its flags). `timings`, when given, receives the seconds of each step."""
    from .qdq import insert_qdq, make_int8_io, prepare, quantizable_nodes

    names = names or PY_NAMES
    check_model(model, config, names)
    timings = {} if timings is None else timings
    start = time.perf_counter()
    graph = model.graph.copy()
    meta = config.metadata()
    info = {}

    if config.scheme == "fp16":
        from .fp16 import to_fp16

        config.check_against(model.graph, _label(model), names)

        graph = to_fp16(graph, [node.name for node in graph.nodes if node.name not in config.exclude]
                        if config.exclude else None)
        return _result(model, graph, meta, timings, start)

    graph = prepare(graph)
    original = {node.name for node in model.graph.nodes}
    split = [node.name for node in graph.nodes if node.name not in original]
    config.check_against(model.graph, _label(model), names, also=split)
    # excluding a fused node keeps what was split off it float too ('pw' -> 'pw/residual')
    derived = tuple(s for s in split if any(s.startswith(f"{e}/") for e in config.exclude))
    if derived:
        config = dataclasses.replace(config, exclude=config.exclude + derived)
    targets = quantizable_nodes(graph, config)
    if not targets:
        what = ("Conv, Gemm or MatMul with a constant float weight" if config.scheme in ("int8-weights", "dynamic")
                else "op with an int8 form (Conv, Gemm, MatMul, Add, Mul, Concat, pools, ...)")
        raise UsageError(f"{_label(model)}: nothing to quantize: no {what} outside "
                         f"{names['exclude']}")

    from .data import calibration_feeds
    from .equalize import equalize_for_quantization

    data = (calibration_feeds(calibration, model, num_samples=config.num_samples)
            if config.scheme == "int8" else None)
    if config.equalize is False:
        meta["equalize"] = "false"
    else:  # None: where it helps (equalize.should_equalize); ReLU6 checked on the data
        t = time.perf_counter()
        # a one-shot reader is not read here: calibration would miss its first samples
        eq_data = data if data is not None and getattr(data, "reiterable", True) else None
        graph, eq_info = equalize_for_quantization(graph, eq_data, per_tensor=config.per_tensor,
                                                   force=bool(config.equalize))
        meta.update(eq_info.metadata())
        timings["equalize"] = time.perf_counter() - t

    if config.scheme in ("int8-weights", "dynamic"):
        qdq = insert_qdq(graph, {}, config)
        return _result(model, _lower(qdq, dynamic=config.scheme == "dynamic"), meta, timings, start)

    from .calibration import collect_ranges

    bias_correction = config.bias_correction
    reiterable = getattr(data, "reiterable", True)
    if not reiterable and (bias_correction or config.budget):
        flag = names["bias_correction"]
        flag = flag if flag.startswith("--") else f"{flag}=False"
        how = f", or pass {flag}" if bias_correction and not config.budget else ""
        step = "bias correction" if bias_correction else "the accuracy budget"
        raise UsageError(f"calibration data {data.describe()} can be read only once, and "
                         f"{step} reads it again after calibration: give a list, a directory or "
                         f"a reader with rewind(){how}")
    t = time.perf_counter()
    ranges = collect_ranges(graph, data, config.method, percentile=config.percentile,
                            progress=config.progress, symmetric=config.symmetric_activations)
    timings["calibrate"] = time.perf_counter() - t
    meta["samples"] = str(getattr(data, "_samples_seen", None) or data.total or "")
    if not meta["samples"]:
        del meta["samples"]
    # bias correction and the budget run the QDQ graph on the float calibration data:
    # int8 graph inputs/outputs come last
    qdq = insert_qdq(graph, ranges, dataclasses.replace(config, io_dtype="float32"))
    if bias_correction:
        from .bias_correction import correct_bias

        t = time.perf_counter()
        qdq = correct_bias(graph, qdq, data)
        timings["bias_correction"] = time.perf_counter() - t
    if config.budget:
        from .mixed import fit_budget

        t = time.perf_counter()
        qdq, info = _fit_budget(fit_budget, graph, qdq, ranges, data, config)
        timings["budget"] = time.perf_counter() - t
        if info.get("fallback"):
            meta["fallback"] = ",".join(info["fallback"])
    if config.io_dtype == "int8":
        qdq = make_int8_io(qdq)
    result = _result(model, _lower(qdq), meta, timings, start)
    result.quantization_ranges = ranges
    result.quantization_info = info
    return result


def _fit_budget(fit_budget, float_graph, qdq, ranges, data, config):
    """Mixed precision under the accuracy budget (quantize/mixed.py). Returns
    (qdq graph with the fallback layers float, info dict)."""
    result = fit_budget(float_graph, qdq, ranges, data, config)
    if isinstance(result, tuple):
        qdq, info = result
        return qdq, dict(info) if isinstance(info, dict) else {"fallback": list(getattr(info, "fallback", []))}
    return result, {}


def _lower(qdq, dynamic: bool = False):
    from mobconv.passes.lower_qdq import lower_qdq

    graph = lower_qdq(qdq, dynamic=dynamic)
    return graph if graph is not None else qdq


def _result(model: Model, graph, meta: dict, timings: dict, start: float) -> Model:
    graph.metadata.extra = dict(graph.metadata.extra)
    for key, value in meta.items():
        graph.metadata.extra[METADATA_PREFIX + key] = str(value)
    graph.test_vectors = []  # the float model's expected outputs no longer hold
    # not the float file as source: the runtime backend runs a .mob source from its file
    result = Model(graph, source=None)
    result.float_source = model.source
    timings["total"] = time.perf_counter() - start
    result.conversion_stats = dict(timings)
    return result


def float_size(model: Model) -> int:
    """Bytes of the model's constants (weights) as stored."""
    return int(sum(v.data.nbytes for v in model.graph.values.values() if v.data is not None))


__all__ = ["quantize", "quantize_with_config", "as_model", "check_model", "float_size"]
