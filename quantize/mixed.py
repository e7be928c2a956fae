"""Accuracy-budgeted mixed precision: return the most sensitive layers to float until
the quantized model meets the user's budget.

`fit_budget(float_model, build, data, min_sqnr=... | max_sqnr_drop=... | evaluate=fn,
max_drop=...)`, where `build(exclude) -> quantized Model` quantizes with the layers
named in `exclude` kept float (api.quantize passes a closure over insert_qdq with
`config.exclude`). Budgets, all on the graph outputs over the evaluation samples
(the first `num_samples` of `data`, default 32, run on the numpy reference):

- min_sqnr=D: output SQNR against the float model >= D dB (SQNR = 10 log10(sum y^2 /
  sum (y_q - y)^2) over every output element of every sample).
- max_sqnr_drop=D: the SQNR *drop* is `ceiling - SQNR`, where `ceiling` is the SQNR of
  the float outputs themselves rounded to int8 (asymmetric, their min/max over the
  same samples): what a perfect int8 model with an int8 output could reach. The drop
  must be <= D dB. (An all-float model has SQNR +inf and a negative drop.)
- evaluate=fn, max_drop=M: fn(model) -> score, higher is better (the user's metric on
  their data); score(float) - score(quantized) <= M.

Algorithm:
1. Build with no fallback; if the budget holds, done.
2. Rank the quantized layers by their own error: debug()'s isolated SQNR (the layer run
   alone on float inputs), worst first: the greedy order.
3. Build with every ranked layer in float; if even that misses the budget, raise a
   one-line UsageError (exit 2; nothing is written: the caller has not saved anything).
4. Binary search the shortest prefix of the ranking that meets the budget (the
   score is close to monotone in the prefix length): about log2(layers) builds
   instead of one per layer; the prefix found is checked by its own build.
The report names the layers, their SQNR, the file size added (exact, from the
serialized models) and the MACs moved to float with a latency estimate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from mobconv.errors import ArgumentError, MobconvError, UsageError
from mobconv.reference.interpreter import run as reference_run

from .debug import ErrorStats, debug

FALLBACKS = ("float32", "float16")
DEFAULT_EVAL_SAMPLES = 32
RANK_SAMPLES = 8  # samples of the per-layer sensitivity runs
RANKS = ("isolated", "output")
# latency model: cost of one MAC relative to float32 (int8 kernels ~2x float32 throughput)
MAC_COST = {"int8": 0.5, "float16": 0.75, "float32": 1.0}
MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass
class FallbackLayer:
    name: str
    op: str
    own_sqnr_db: Optional[float]  # the layer alone on float inputs (why it fell back)
    sqnr_db: Optional[float]  # its output in the all-int8 run
    macs: int
    alone_sqnr_db: Optional[float] = None  # model output SQNR with only this layer quantized


@dataclass
class FallbackReport:
    """What fit_budget did. `score_*` are output SQNRs in dB, or the user's metric."""

    budget: str
    metric: str  # "output SQNR (dB)", "SQNR drop (dB)" or "evaluate()"
    fallback: str
    layers: list = field(default_factory=list)
    score_float: Optional[float] = None
    score_int8: Optional[float] = None  # with no fallback
    score_final: Optional[float] = None
    size_int8: Optional[int] = None  # bytes of the serialized all-int8 model
    size_final: Optional[int] = None
    macs_total: int = 0
    macs_float: int = 0
    latency_factor: Optional[float] = None  # estimated compute time vs the all-int8 model
    builds: int = 0
    candidates: int = 0

    @property
    def size_added(self) -> Optional[int]:
        if self.size_int8 is None or self.size_final is None:
            return None
        return self.size_final - self.size_int8

    def to_json(self) -> dict:
        def num(x):
            return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x

        return {"budget": self.budget, "metric": self.metric, "fallback": self.fallback,
                "score_float": num(self.score_float), "score_int8": num(self.score_int8),
                "score_final": num(self.score_final), "size_int8": self.size_int8,
                "size_final": self.size_final, "size_added": self.size_added,
                "macs_total": self.macs_total, "macs_float": self.macs_float,
                "latency_factor": num(self.latency_factor), "builds": self.builds,
                "candidates": self.candidates,
                "layers": [{"name": r.name, "op": r.op, "own_sqnr_db": num(r.own_sqnr_db),
                            "sqnr_db": num(r.sqnr_db), "alone_sqnr_db": num(r.alone_sqnr_db),
                            "macs": r.macs} for r in self.layers]}

    def __str__(self) -> str:
        def score(x):
            if x is None:
                return "-"
            if isinstance(x, float) and math.isinf(x):
                return "exact" if x > 0 else "-inf"
            return f"{x:.4g}" if self.metric == "evaluate()" else f"{x:.2f}"

        unit = "" if self.metric == "evaluate()" else " dB"
        lines = [f"Mixed precision, budget {self.budget}: all-int8 {self.metric} {score(self.score_int8)}{unit}"
                 + (f", float {score(self.score_float)}" if self.metric == "evaluate()" else "")
                 + f"; result {score(self.score_final)}{unit} with {len(self.layers)} of "
                 f"{self.candidates} layers in {self.fallback} ({self.builds} build(s))"]
        for r in self.layers:
            alone = ("" if r.alone_sqnr_db is None else
                     f", model output {score(r.alone_sqnr_db)} dB with it the only int8 layer")
            lines.append(f"  {r.name} ({r.op}): own SQNR {score(r.own_sqnr_db)} dB, output SQNR "
                         f"{score(r.sqnr_db)} dB in the all-int8 model{alone}, {r.macs:,} MACs")
        if self.layers:
            size = ""
            if self.size_added is not None:
                pct = 100.0 * self.size_added / self.size_int8 if self.size_int8 else 0.0
                size = f"size {self.size_added:+,} bytes ({pct:+.1f}%); "
            share = 100.0 * self.macs_float / self.macs_total if self.macs_total else 0.0
            lat = (f", estimated compute time x{self.latency_factor:.2f} of all-int8"
                   if self.latency_factor is not None else "")
            lines.append(f"  cost: {size}{self.macs_float:,} of {self.macs_total:,} MACs "
                         f"({share:.1f}%) in {self.fallback}{lat}")
        if self.layers and len(self.layers) == self.candidates:
            lines.append(f"  note: every quantized layer fell back: the result computes in {self.fallback}")
        return "\n".join(lines)


def _evaluated(evaluate, model) -> float:
    """evaluate(model) as a float; anything but a real number is refused in one line."""
    value = evaluate(model)
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise ArgumentError(f"evaluate() must return a number (a score, higher is better), "
                            f"got {type(value).__name__} {str(value)[:40]!r}")
    return float(value)


def _check(max_sqnr_drop, min_sqnr, evaluate, max_drop, fallback):
    given = [n for n, v in (("max_sqnr_drop", max_sqnr_drop), ("min_sqnr", min_sqnr),
                            ("evaluate", evaluate)) if v is not None]
    if len(given) != 1:
        raise ArgumentError("fit_budget() needs exactly one budget: min_sqnr=, max_sqnr_drop= or "
                            f"evaluate= with max_drop= (got {', '.join(given) or 'none'})")
    if (evaluate is None) != (max_drop is None):
        raise ArgumentError("fit_budget(): evaluate= and max_drop= go together")
    if evaluate is not None and not callable(evaluate):
        raise ArgumentError(f"fit_budget(): evaluate must be a function model -> score, "
                            f"got {type(evaluate).__name__}")
    for name, v in (("max_sqnr_drop", max_sqnr_drop), ("min_sqnr", min_sqnr), ("max_drop", max_drop)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ArgumentError(f"fit_budget(): {name} must be a finite number, got {v!r}")
    for name, v in (("max_sqnr_drop", max_sqnr_drop), ("max_drop", max_drop)):
        if v is not None and v < 0:
            raise ArgumentError(f"fit_budget(): {name} must be >= 0, got {v!r}")
    if fallback not in FALLBACKS:
        raise ArgumentError(f"fit_budget(): fallback must be one of {', '.join(FALLBACKS)}, "
                            f"got {fallback!r}")


def _int8_ceiling(float_outputs: list) -> float:
    """SQNR of the float outputs rounded to int8 with their own min/max range."""
    stats = ErrorStats()
    names = float_outputs[0].keys() if float_outputs else ()
    for name in names:
        arrays = [np.asarray(o[name], dtype=np.float64) for o in float_outputs]
        lo = min(0.0, min(float(a.min()) for a in arrays if a.size))
        hi = max(0.0, max(float(a.max()) for a in arrays if a.size))
        scale = (hi - lo) / 255.0 or 1.0
        zp = np.round(-128 - lo / scale)
        for a in arrays:
            q = np.clip(np.round(a / scale) + zp, -128, 127)
            stats.add(a, (q - zp) * scale)
    return stats.sqnr_db


def _macs(graph, shapes: dict) -> dict:
    """node name -> multiply-accumulates of one run, for Conv/Gemm/MatMul with a constant
    weight (output elements x weight elements per output channel)."""
    result = {}
    for node in graph.nodes:
        if node.op not in MAC_OPS or len(node.inputs) < 2:
            continue
        w = graph.values.get(node.inputs[1])
        out = shapes.get(node.outputs[0])
        if w is None or w.data is None or out is None or len(out) < 1:
            continue
        channels = out[1] if node.op in ("Conv", "ConvTranspose") and len(out) > 1 else out[-1]
        if channels:
            result[node.name] = int(np.prod(out)) * int(w.data.size // channels)
    return result


def fit_budget(float_model, build: Callable, data, *args, max_sqnr_drop=None, min_sqnr=None,
               evaluate=None, max_drop=None, fallback: str = "float32",
               num_samples: Optional[int] = DEFAULT_EVAL_SAMPLES, rank: str = "isolated"):
    """The quantized model with the fewest layers in float (greedy by sensitivity) that
    meets the budget, and a FallbackReport. See the module docstring for the budgets.

    The quantizer's pipeline calls it as `fit_budget(float_graph, qdq_graph, ranges, data,
    config)` (see fit_budget_qdq)."""
    if not callable(build) and hasattr(build, "nodes"):
        return fit_budget_qdq(float_model, build, data, *args)
    if args:
        raise ArgumentError(f"fit_budget() takes 3 positional arguments (float_model, build, data), "
                            f"got {3 + len(args)}")
    _check(max_sqnr_drop, min_sqnr, evaluate, max_drop, fallback)
    if rank not in RANKS:
        raise ArgumentError(f"fit_budget(): rank must be one of {', '.join(RANKS)}, got {rank!r}")
    from .debug import _feeds_iter

    graph = getattr(float_model, "graph", float_model)
    samples = [dict(f) for f in _feeds_iter(data, float_model, num_samples)]
    if not samples:
        raise MobconvError("mixed precision: the evaluation data gave no samples")
    float_out = [reference_run(graph, s) for s in samples]
    env = reference_run(graph, samples[0], keep_intermediates=True)
    macs = _macs(graph, {k: np.shape(v) for k, v in env.items()})

    if evaluate is not None:
        metric, budget = "evaluate()", f"evaluate() drop <= {max_drop:g}"
        if not hasattr(float_model, "graph"):
            from mobconv.api import Model

            float_model = Model(float_model)  # evaluate() gets Models, as the user wrote it for
        score_float = _evaluated(evaluate, float_model)
        if not math.isfinite(score_float):
            raise MobconvError(f"mixed precision: evaluate() returned {score_float} for the float model")
    else:
        ceiling = _int8_ceiling(float_out) if max_sqnr_drop is not None else None
        metric = "output SQNR"
        budget = (f"output SQNR >= {min_sqnr:g} dB" if min_sqnr is not None else
                  f"output SQNR drop <= {max_sqnr_drop:g} dB (int8 ceiling {ceiling:.2f} dB)")
        score_float = math.inf

    def score(model) -> float:
        if evaluate is not None:
            return _evaluated(evaluate, model)
        return output_sqnr(model)

    def meets(value: float) -> bool:
        if not isinstance(value, float) or math.isnan(value):
            return False
        if evaluate is not None:
            return score_float - value <= max_drop
        if min_sqnr is not None:
            return value >= min_sqnr
        return ceiling - value <= max_sqnr_drop

    report = FallbackReport(budget=budget, metric=metric, fallback=fallback, score_float=score_float,
                            macs_total=sum(macs.values()))
    report.score_fn, report.meets_fn = score, meets  # for a caller's own final check
    builds = {}

    def output_sqnr(model, n=None) -> float:
        stats = ErrorStats()
        for s, ref in list(zip(samples, float_out))[:n]:
            got = reference_run(model.graph, s)
            for name, value in ref.items():
                stats.add(value, got[name])
        return stats.sqnr_db

    def attempt(exclude: tuple, score_it: bool = True):
        if not score_it:
            report.builds += 1
            return build(list(exclude)), None
        if exclude not in builds:
            model = build(list(exclude))
            if fallback == "float16" and exclude:  # the fallback layers' weights stored as fp16
                from mobconv.api import Model

                from .fp16 import to_fp16

                model = Model(to_fp16(model.graph, nodes=exclude), source=getattr(model, "source", None))
            builds[exclude] = (model, score(model))
            report.builds += 1
        return builds[exclude]

    q0, s0 = attempt(())
    report.score_int8 = s0
    report.size_int8 = _size(q0)
    if meets(s0):
        report.score_final, report.size_final = s0, report.size_int8
        return q0, report

    diag = debug(float_model, q0, samples[:RANK_SAMPLES])
    ranked = [r for r in diag.layers if r.precision == "int8"]  # worst own error first
    report.candidates = len(ranked)
    alone = {}
    if rank == "output" and len(ranked) > 1:  # each layer quantized alone, the rest float
        every = tuple(r.name for r in ranked)
        for r in ranked:
            model, _ = attempt(tuple(n for n in every if n != r.name), score_it=False)
            alone[r.name] = output_sqnr(model, RANK_SAMPLES)
        ranked.sort(key=lambda r: (alone[r.name], r.sort_key))
    names = tuple(r.name for r in ranked)
    if not names:
        raise UsageError(f"cannot meet the accuracy budget ({budget}): the all-int8 model reaches "
                           f"{_fmt(s0)} and no layer of it can fall back to float")
    _, s_all = attempt(names)
    if not meets(s_all):
        raise UsageError(f"cannot meet the accuracy budget ({budget}): {metric} is {_fmt(s0)} all-int8 "
                           f"and {_fmt(s_all)} with all {len(names)} quantized layers in {fallback}; "
                           "relax the budget (nothing was written)")
    lo, hi = 0, len(names)  # prefix lo fails, prefix hi meets the budget
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(attempt(names[:mid])[1]):
            hi = mid
        else:
            lo = mid
    final, s_final = attempt(names[:hi])
    report.score_final = s_final
    report.size_final = _size(final)
    by_name = {r.name: r for r in ranked}
    for name in names[:hi]:
        r = by_name[name]
        report.layers.append(FallbackLayer(name, r.op, r.isolated_sqnr_db, r.sqnr_db, macs.get(name, 0),
                                           alone.get(name)))
    report.macs_float = sum(macs.get(n, 0) for n in names[:hi])
    if report.macs_total:
        cost_int8 = report.macs_total * MAC_COST["int8"]
        cost = (report.macs_total - report.macs_float) * MAC_COST["int8"] + report.macs_float * MAC_COST[fallback]
        report.latency_factor = cost / cost_int8
    return final, report


def _size(model) -> Optional[int]:
    try:
        return len(model.to_bytes())
    except Exception:  # a model the writer refuses still has a score; its size is unknown
        return None


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "exact" if x > 0 else "-inf"
    return f"{x:.2f}"


def fit_budget_qdq(float_graph, qdq_graph, ranges, data, config):
    """The pipeline's form (quantize/api.py): the budget of `config` (min_sqnr,
    max_sqnr_drop or evaluate + max_drop) met by re-inserting Q/DQ with more layers in
    `exclude` (and bias correction when the config has it). SQNR budgets are scored on
    the QDQ graph (fake-quantized float ops, which the int8 lowering reproduces within
    integer rounding); evaluate() gets the lowered int8 model, as the user would.
    Returns (qdq graph, {"fallback": [layer names], "report": FallbackReport})."""
    from dataclasses import replace

    from mobconv.api import Model

    from .qdq import insert_qdq

    def build(exclude, bias_correction=False):
        if not exclude:
            graph = qdq_graph
        else:
            cfg = replace(config, exclude=tuple(config.exclude) + tuple(exclude))
            graph = insert_qdq(float_graph, ranges, cfg)
            if bias_correction:
                from .bias_correction import correct_bias

                graph = correct_bias(float_graph, graph, data)
            elif config.bias_correction:
                _reuse_biases(graph, qdq_graph)
        model = Model(graph)
        model.qdq_graph = graph
        if config.evaluate is not None:
            from mobconv.passes.lower_qdq import lower_qdq

            lowered = Model(lower_qdq(graph))
            lowered.qdq_graph = graph
            return lowered
        return model

    model, report = fit_budget(float_graph, build, data, max_sqnr_drop=config.max_sqnr_drop,
                               min_sqnr=config.min_sqnr, evaluate=config.evaluate,
                               max_drop=config.max_drop, rank="output")
    if report.layers and config.bias_correction:
        # the search's tries reuse the all-int8 graph's corrected biases (a correction costs a
        # pass over the data); the prefix found gets its own now, kept if the budget holds
        names = [layer.name for layer in report.layers]
        corrected = build(names, bias_correction=True)
        report.builds += 1
        value = report.score_fn(corrected)
        if report.meets_fn(value):
            model, report.score_final = corrected, value
    if report.layers:  # sizes of the int8 files, not of the QDQ graphs
        from mobconv.passes.lower_qdq import lower_qdq

        report.size_int8 = _size(Model(lower_qdq(qdq_graph)))
        report.size_final = _size(Model(lower_qdq(model.qdq_graph)))
    return model.qdq_graph, {"fallback": [layer.name for layer in report.layers], "report": report}


def _reuse_biases(graph, corrected):
    """Copy the bias-corrected int32 biases of `corrected` (the all-int8 QDQ graph) into
    `graph` (the same layers, some now float) where a layer's bias is the same int32
    constant behind a DequantizeLinear with the same scale: the search scores a try with
    the corrections already found instead of a new pass over the data."""
    def bias_dq(g, producers, node):
        if node.op not in ("Conv", "Gemm") or len(node.inputs) < 3 or not node.inputs[2]:
            return None
        dq = producers.get(node.inputs[2])
        if dq is None or dq.op != "DequantizeLinear" or len(dq.inputs) < 2:
            return None
        const, scale = g.values.get(dq.inputs[0]), g.values.get(dq.inputs[1])
        if const is None or const.data is None or scale is None or scale.data is None:
            return None
        return const, scale.data

    src_producers, producers = corrected.producers(), graph.producers()
    src_nodes = {n.name: n for n in corrected.nodes}
    for node in graph.nodes:
        theirs = src_nodes.get(node.name)
        mine = bias_dq(graph, producers, node)
        other = bias_dq(corrected, src_producers, theirs) if theirs is not None else None
        if mine is None or other is None:
            continue
        (const, scale), (src, src_scale) = mine, other
        if const.data.shape == src.data.shape and const.data.dtype == src.data.dtype \
                and np.array_equal(np.asarray(scale), np.asarray(src_scale)):
            const.data = np.array(src.data)
