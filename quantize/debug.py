"""The quantization debugger: where a quantized model loses accuracy, layer by layer.

`debug(float_model, quant_model, data)` runs both models on the same inputs, one
feed dict at a time, through the numpy reference, and compares every tensor of the
quantized model with the float tensor it approximates. Steps:

1. Match tensors by name (quantize/matching.py; docs/quantization.md "Debugger"): the quantized tensor
   named `T` (or `T/q`, `T/dq` in an unlowered QDQ graph, or the int8 input of the
   DequantizeLinear that produces `T` at a graph output) approximates float `T`; the
   last such tensor in graph order is the layer's quantized output. Int8 tensors are
   dequantized with their `Value.quant`; tensors that stayed float compare as they are.
2. Per layer (float node), streaming accumulators over all samples: SQNR and cosine of
   the quantized output against the float output (the error accumulated up to here),
   max abs error, the clipping rate of the activation range (fraction of float values
   outside [scale*(qmin-zp), scale*(qmax-zp)]), and a fixed-size histogram.
3. The layer's own error, in isolation: the layer's quantized form is run on the
   *float* values of its inputs, quantized with its own input parameters, and compared
   with the float output: where error is created, as opposed to inherited.
4. Weight range spread per output channel for Conv/Gemm/MatMul (max/min of the
   per-channel max |w|): large spreads are what per-tensor weights cannot represent.
5. Graph outputs: SQNR, cosine, max error and argmax flips (over axis 1).

Memory is bounded by one sample's tensors of both models plus a fixed-size
accumulator per tensor, whatever the number of samples. Layers are sorted worst
first by their isolated SQNR (the layer's own error), ties by accumulated SQNR.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mobconv.errors import MobconvError, UsageError
from mobconv.ops import quant_math as qm
from mobconv.reference.interpreter import run as reference_run

from .matching import (QDQ_OPS, Isolated, aligned_float_graph, dequantized, layer_segment,
                       match_tensors, precision_of, qparams_of)

HIST_BINS = 256
WEIGHT_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")


# ---- statistics -----------------------------------------------------------


class ErrorStats:
    """Streaming SQNR / cosine / max abs error of `got` against `ref` (float64 sums)."""

    def __init__(self):
        self.ref_power = 0.0  # sum ref^2
        self.got_power = 0.0  # sum got^2
        self.err_power = 0.0  # sum (got - ref)^2
        self.dot = 0.0  # sum ref * got
        self.max_abs = 0.0
        self.count = 0

    def add(self, ref, got) -> None:
        r = np.asarray(ref, dtype=np.float64).ravel()
        g = np.asarray(got, dtype=np.float64).ravel()
        if r.shape != g.shape:
            raise MobconvError(f"shapes differ: float {np.shape(ref)} vs quantized {np.shape(got)}")
        if r.size == 0:
            return
        e = g - r
        # einsum, not BLAS dot: OpenBLAS threads made each 12K-element dot ~15 ms on a busy machine
        self.ref_power += float(np.einsum("i,i->", r, r))
        self.got_power += float(np.einsum("i,i->", g, g))
        self.err_power += float(np.einsum("i,i->", e, e))
        self.dot += float(np.einsum("i,i->", r, g))
        self.max_abs = max(self.max_abs, float(np.max(np.abs(e))))
        self.count += r.size

    @property
    def sqnr_db(self) -> float:
        """10 log10(sum ref^2 / sum err^2); +inf without error, -inf for error on zero signal."""
        if self.err_power == 0.0 or not math.isfinite(self.err_power):
            return math.inf if self.err_power == 0.0 else -math.inf
        if self.ref_power == 0.0:
            return -math.inf
        return 10.0 * math.log10(self.ref_power / self.err_power)

    @property
    def cosine(self) -> float:
        if self.ref_power == 0.0 and self.got_power == 0.0:
            return 1.0
        if self.ref_power == 0.0 or self.got_power == 0.0:
            return 0.0
        return self.dot / math.sqrt(self.ref_power * self.got_power)


class Histogram:
    """Fixed-size histogram of a float tensor over all samples. The edges are fixed at the
    first sample: the clipping range and that sample's range together, 10% wider; values
    outside them later are counted in `below`/`above`, not in the bins."""

    def __init__(self, lo: Optional[float], hi: Optional[float]):
        self.clip = (lo, hi)
        self.edges = None
        self.counts = np.zeros(HIST_BINS, dtype=np.int64)
        self.below = self.above = 0
        self.seen_min, self.seen_max = math.inf, -math.inf

    def add(self, x) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        x = x[np.isfinite(x)]
        if x.size == 0:
            return
        self.seen_min = min(self.seen_min, float(x.min()))
        self.seen_max = max(self.seen_max, float(x.max()))
        if self.edges is None:
            lo, hi = self.seen_min, self.seen_max
            if self.clip[0] is not None:
                lo, hi = min(lo, self.clip[0]), max(hi, self.clip[1])
            pad = 0.1 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.5
            self.edges = np.linspace(lo - pad, hi + pad, HIST_BINS + 1)
        self.below += int(np.count_nonzero(x < self.edges[0]))
        self.above += int(np.count_nonzero(x > self.edges[-1]))
        inside = x[(x >= self.edges[0]) & (x <= self.edges[-1])]
        idx = np.clip(np.searchsorted(self.edges, inside, side="right") - 1, 0, HIST_BINS - 1)
        self.counts += np.bincount(idx, minlength=HIST_BINS)


# ---- the report -----------------------------------------------------------


@dataclass
class LayerStats:
    """One layer (a float node) of the comparison. SQNR in dB (+inf: no error)."""

    name: str
    op: str
    tensor: str
    order: int  # position in the float graph
    precision: str  # "int8" (quantized), "float" (stayed float: fallback), "input"
    sqnr_db: float
    cosine: float
    max_abs_err: float
    isolated_sqnr_db: Optional[float] = None
    isolated_cosine: Optional[float] = None
    isolated_max_abs_err: Optional[float] = None
    clip_rate: Optional[float] = None
    clip_range: Optional[tuple] = None
    weight_spread: Optional[float] = None
    float_min: Optional[float] = None
    float_max: Optional[float] = None

    @property
    def sort_key(self) -> tuple:
        own = self.isolated_sqnr_db if self.isolated_sqnr_db is not None else self.sqnr_db
        return (own, self.sqnr_db, self.order)


@dataclass
class OutputStats:
    name: str
    sqnr_db: float
    cosine: float
    max_abs_err: float
    argmax_flips: int
    argmax_total: int


@dataclass
class DebugReport:
    """What `debug` found. `layers` is sorted worst first; `histograms` maps a layer's
    tensor to (counts, edges, clip lo, clip hi, count below, count above the edges)."""

    layers: list
    outputs: list
    num_samples: int
    histograms: dict = field(default_factory=dict)
    float_source: Optional[str] = None
    quant_source: Optional[str] = None
    # when the per-layer reference is the float graph as the quantizer saw it (split,
    # equalized): what changed, and the SQNR of its outputs against float_model's (dB)
    reference_note: Optional[str] = None
    reference_sqnr_db: Optional[float] = None
    histogram_source: Optional[str] = None  # "calibration data" when ranges= supplied them

    def worst(self, n: int = 10) -> list:
        return self.layers[:n]

    def layer(self, name: str) -> LayerStats:
        for row in self.layers:
            if row.name == name or row.tensor == name:
                return row
        raise KeyError(name)

    def output(self, name: str) -> OutputStats:
        for row in self.outputs:
            if row.name == name:
                return row
        raise KeyError(name)

    def table(self, top: Optional[int] = 20) -> str:
        from .report import format_table

        return format_table(self, top=top)

    def to_json(self) -> dict:
        from .report import to_json

        return to_json(self)

    def save(self, directory: str) -> list:
        from .report import write_report

        return write_report(self, directory)

    def __str__(self) -> str:
        return self.table()


def weight_spread(graph, node) -> Optional[float]:
    """max/min over output channels of max |w| for a constant Conv/Gemm/MatMul weight."""
    if node.op not in WEIGHT_OPS or len(node.inputs) < 2:
        return None
    w = graph.values.get(node.inputs[1])
    if w is None or w.data is None or np.ndim(w.data) < 1:
        return None
    data = np.abs(np.asarray(w.data, dtype=np.float64))
    if node.op == "Conv":
        axis = 0
    elif node.op == "ConvTranspose":
        axis = 1
    elif node.op == "Gemm":
        axis = 0 if node.attrs.get("transB") else data.ndim - 1
    else:
        axis = data.ndim - 1
    moved = np.moveaxis(data, axis, 0).reshape(data.shape[axis], -1)
    if moved.shape[1] == 0:
        return None
    per_channel = moved.max(axis=1)
    lo, hi = float(per_channel.min()), float(per_channel.max())
    if hi == 0.0:
        return 1.0
    return math.inf if lo == 0.0 else hi / lo


# ---- running --------------------------------------------------------------


def _as_model(model):
    """A path (.mob, .onnx, .prototxt) is loaded or converted; anything else is returned."""
    import os

    if isinstance(model, (str, bytes, os.PathLike)):
        from .api import as_model

        return as_model(model)
    return model


def _graph(model, what):
    graph = getattr(model, "graph", model)
    if not hasattr(graph, "nodes") or not hasattr(graph, "values"):
        raise UsageError(f"debug(): {what} must be a mobconv.Model or an IR Graph, "
                         f"got {type(model).__name__}")
    return graph


def _feeds_iter(data, float_model, num_samples):
    """The checked feed dicts of `data` (quantize.data.calibration_feeds: a feed dict, an
    iterable of them, a get_next() reader, a folder of .npy/.npz files or images)."""
    from collections.abc import Mapping

    from .data import calibration_feeds

    if isinstance(data, Mapping):
        data = [data]
    return calibration_feeds(data, float_model, num_samples=num_samples)


def _quant_feeds(quant_graph, feeds):
    out = {}
    for name in quant_graph.inputs:
        if name not in feeds:
            raise UsageError(f"debug(): the quantized model's input {name!r} is not in the data "
                             f"(inputs given: {', '.join(map(str, feeds))})")
        v = quant_graph.values[name]
        x = np.asarray(feeds[name])
        if v.quant is not None and v.dtype and v.dtype.startswith(("int", "uint")) and x.dtype.kind == "f":
            x = qm.quantize_linear(x, v.quant, v.dtype)
        out[name] = x
    return out


def _argmax_positions(x):
    x = np.asarray(x)
    if x.ndim == 0 or x.size == 0:
        return None
    return np.argmax(x, axis=1 if x.ndim >= 2 else 0)


def debug(float_model, quant_model, data, *, ranges=None, report_dir=None,
          num_samples: Optional[int] = None, progress=None) -> DebugReport:
    """Compare `quant_model` with `float_model` layer by layer on `data`.

    float_model / quant_model: mobconv.Models (or IR Graphs), or paths (a .mob is loaded,
    a source model converted).
    data: a feed dict, an iterable of feed dicts (one run each), an object with
    get_next() (onnxruntime's reader protocol) or a folder for quantize.data.
    ranges: calibration ranges (name -> TensorRange) whose histograms are drawn when
    given. report_dir: also write table.txt, report.json, sqnr.png and histograms.png
    there. num_samples: stop after that many feed dicts. progress: None = a progress bar
    on a terminal (stderr), True/False to force. Returns a DebugReport.
    """
    float_model, quant_model = _as_model(float_model), _as_model(quant_model)
    fgraph = _graph(float_model, "float_model")
    qgraph = _graph(quant_model, "quant_model")
    fsource = getattr(float_model, "source", None)
    fquant = [v.name for v in fgraph.values.values() if v.quant is not None]
    if fquant:  # e.g. the arguments swapped: an int8 reference gives no meaningful SQNR
        raise UsageError(f"debug(): float_model {fsource or ''} is quantized (tensor "
                         f"{fquant[0]!r} has int8 parameters): give the float model first, "
                         "then the quantized one".replace("  ", " "))
    qsource = getattr(quant_model, "source", None)
    if num_samples is not None and (isinstance(num_samples, (bool, np.bool_))
                                    or not isinstance(num_samples, (int, np.integer))
                                    or num_samples < 1):
        raise UsageError(f"debug(): num_samples must be a positive integer, got {num_samples!r}")
    num_samples = None if num_samples is None else int(num_samples)
    fgraph_out = fgraph  # the user's float model: the reference of the graph outputs
    fgraph = aligned_float_graph(fgraph, qgraph)  # what the quantizer quantized: per-layer reference
    qmap = match_tensors(fgraph, qgraph)
    qproducers = qgraph.producers()
    qconsumers = qgraph.consumers()
    qorder = {}
    for i, node in enumerate(qgraph.nodes):
        for o in node.outputs:
            if o:
                qorder[o] = i
    for i, name in enumerate(qgraph.inputs):
        qorder.setdefault(name, -1)
    approx: dict = {}  # float tensor -> last quant tensor approximating it
    approximations: dict = {}  # float tensor -> every quant tensor approximating it
    for qname, b in qmap.items():
        approximations.setdefault(b, []).append(qname)
    compute: dict = {}  # float tensor -> quant compute node producing an approximation
    for qname, b in qmap.items():
        if b not in approx or qorder.get(qname, -1) > qorder.get(approx[b], -1):
            approx[b] = qname
        node = qproducers.get(qname)
        if node is not None and node.op not in QDQ_OPS and b not in compute:
            compute[b] = node

    # the layers: graph inputs that get quantized, then every float node output with a match
    layers = []  # (name, op, tensor, order, precision, float node or None)
    for name in fgraph.inputs:
        if name in approx and qparams_of(qgraph, approximations, qproducers, name):
            layers.append((name, "input", name, -1, "input", None))
    for i, node in enumerate(fgraph.nodes):
        for out in node.outputs:
            if out and out in approx:
                segment = layer_segment(qgraph, approx[out], out, qmap, qproducers) or [compute.get(out)]
                precision = "int8" if any(precision_of(qgraph, n, qproducers, qconsumers) == "int8"
                                          for n in segment) else "float"
                layers.append((node.name, node.op, out, i, precision, node))
    if not layers:
        raise MobconvError(f"{qsource or 'quant_model'}: no tensor matches a tensor of "
                           f"{fsource or 'float_model'} by name; compare a quantized model with the "
                           "float model it was quantized from")
    params = {t: qparams_of(qgraph, approximations, qproducers, t) for _, _, t, _, _, _ in layers}
    clip = {}
    for t, p in params.items():
        if p is not None:
            scale, zp, dtype = p
            lo, hi = qm.qrange(dtype)
            clip[t] = (scale * (lo - zp), scale * (hi - zp))
    acc = {t: ErrorStats() for _, _, t, _, _, _ in layers}
    iso = {t: ErrorStats() for _, _, t, _, prec, _ in layers if prec != "input" and t in compute}
    clipped = {t: 0 for t in clip}
    totals = {t: 0 for _, _, t, _, _, _ in layers}
    extremes = {t: [math.inf, -math.inf] for t in totals}
    hists = {t: Histogram(*clip.get(t, (None, None))) for t in totals}
    out_pairs = {}  # float graph output -> quant graph output
    for qname in qgraph.outputs:
        fname = qname if qname in fgraph_out.outputs else qmap.get(qname)
        if fname in fgraph_out.outputs and fname not in out_pairs:
            out_pairs[fname] = qname
    out_acc = {name: ErrorStats() for name in out_pairs}
    ref_acc = ErrorStats()  # aligned float graph vs the user's float model, at the outputs
    flips = {name: [0, 0] for name in out_acc}
    isolated = Isolated(qgraph, qmap, qproducers)

    from .progress import Progress

    samples = 0
    feeds_data = _feeds_iter(data, float_model, num_samples)
    total = getattr(feeds_data, "total", None)
    if num_samples is not None and total is not None:
        total = min(total, num_samples)
    with Progress(total=total, label="debugging", enabled=progress) as bar:
        for feeds in feeds_data:
            ffeeds = {k: np.asarray(v) for k, v in feeds.items()}
            fenv = reference_run(fgraph, ffeeds, keep_intermediates=True, source=fsource)
            fout = fenv if fgraph is fgraph_out else reference_run(fgraph_out, ffeeds, source=fsource)
            if fout is not fenv:
                for name in fgraph_out.outputs:
                    if name in fenv:
                        ref_acc.add(fout[name], fenv[name])
            qfeeds = _quant_feeds(qgraph, ffeeds)
            qenv = reference_run(qgraph, qfeeds, keep_intermediates=True, source=qsource)
            for _, _, t, _, _, _ in layers:
                ref = np.asarray(fenv[t], dtype=np.float64)
                got = dequantized(qgraph.values.get(approx[t]), qenv[approx[t]])
                acc[t].add(ref, got)
                totals[t] += ref.size
                if ref.size:
                    extremes[t][0] = min(extremes[t][0], float(np.nanmin(ref)))
                    extremes[t][1] = max(extremes[t][1], float(np.nanmax(ref)))
                if t in clip:
                    lo, hi = clip[t]
                    clipped[t] += int(np.count_nonzero((ref < lo) | (ref > hi)))
                hists[t].add(ref)
                if t in iso:
                    iso[t].add(ref, isolated.run(approx[t], t, fenv, qfeeds))
            for name, stats in out_acc.items():
                got = dequantized(qgraph.values.get(out_pairs[name]), qenv[out_pairs[name]])
                stats.add(fout[name], got)
                a, b = _argmax_positions(fout[name]), _argmax_positions(got)
                if a is not None and b is not None and a.shape == b.shape:
                    flips[name][0] += int(np.count_nonzero(a != b))
                    flips[name][1] += int(a.size)
            samples += 1
            bar.advance()
    if samples == 0:
        raise UsageError("debug(): the data gave no samples (an empty iterable or folder)")

    rows = []
    for name, op, t, order, precision, node in layers:
        s = acc[t]
        row = LayerStats(name=name, op=op, tensor=t, order=order, precision=precision,
                         sqnr_db=s.sqnr_db, cosine=s.cosine, max_abs_err=s.max_abs,
                         float_min=extremes[t][0] if totals[t] else None,
                         float_max=extremes[t][1] if totals[t] else None)
        if precision == "input":  # quantizing an input is all its own error
            row.isolated_sqnr_db, row.isolated_cosine, row.isolated_max_abs_err = \
                row.sqnr_db, row.cosine, row.max_abs_err
        elif t in iso:
            row.isolated_sqnr_db = iso[t].sqnr_db
            row.isolated_cosine = iso[t].cosine
            row.isolated_max_abs_err = iso[t].max_abs
        if t in clip:
            row.clip_range = clip[t]
            row.clip_rate = clipped[t] / totals[t] if totals[t] else 0.0
        if node is not None:
            row.weight_spread = weight_spread(fgraph, node)
        rows.append(row)
    rows.sort(key=lambda r: r.sort_key)
    histograms = {}  # tensor -> (counts, edges, clip lo, clip hi, values below, above the edges)
    from_ranges = False
    for t, h in hists.items():
        r = ranges.get(t) if ranges else None
        lo, hi = clip.get(t, (None, None))
        if r is not None and getattr(r, "hist", None) is not None and getattr(r, "edges", None) is not None:
            histograms[t] = (np.asarray(r.hist), np.asarray(r.edges), lo, hi, 0, 0)
            from_ranges = True
        elif h.edges is not None:
            histograms[t] = (h.counts, h.edges, lo, hi, h.below, h.above)
    outputs = [OutputStats(name, s.sqnr_db, s.cosine, s.max_abs, flips[name][0], flips[name][1])
               for name, s in out_acc.items()]
    report = DebugReport(layers=rows, outputs=outputs, num_samples=samples, histograms=histograms,
                         float_source=fsource, quant_source=qsource)
    if fgraph is not fgraph_out:
        how = getattr(fgraph, "aligned_changes", "") or "as given"
        report.reference_note = f"per-layer reference: the float graph as the quantizer saw it, {how}"
        report.reference_sqnr_db = ref_acc.sqnr_db
    if from_ranges:
        report.histogram_source = "calibration data"
    if report_dir is not None:
        report.save(report_dir)
    return report


