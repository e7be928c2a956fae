"""`sensitivity()`: how much each layer's output quality drops as it alone is pruned.

    report = quantize.sensitivity(model, "calib/")        # output SQNR vs sparsity per layer
    print(report.table()); report.plot("sensitivity.png")
    per_layer = report.propose(0.5)                       # half of those weights, least harm
    pruned = quantize.prune(model, per_layer=per_layer)

For every layer and every level in `sparsities`, only that layer is pruned (exactly as
`prune(model, per_layer={layer: s})` does) and the model is run on the samples: the
metric is the SQNR (dB) of all outputs against the unpruned model's on the same samples
and backend, or the user's `evaluate(model) -> score` (higher is better). Without data
the samples are generated: seeded standard-normal inputs from the model's signature
(say so in anything you publish: real data gives curves that mean more).

Speed: the SQNR runs use the C++ runtime when it is built and runs the model (else the
numpy reference), batch the samples when the inputs have a symbolic batch dim, and
swap one weight in a working copy instead of copying the model per run. Storage hints are
left out of that working copy (the data is dense either way). `evaluate=` gets a fresh
pruned Model per run.

`propose(budget)`: per-layer sparsities that zero `budget` of the report's layers'
weights together, pruning the least sensitive layers most. Each curve becomes a harm
h(s) that adds up across layers: 10^(-SQNR/10), the output noise power relative to
the signal (noise from independent layers adds), or, with evaluate=, the score's drop.
Curves are made monotone (running max), interpolated linearly between the measured
levels (h(0) = 0) on a 1 % grid; a greedy walk then takes the grid step with the least
added harm per removed weight (steps that remove no weight of a small layer merged with
the next) until the budget is met, the last step trimmed to the exact count. The
sparsities come out as k / n (n the layer's weights), so `prune` zeroes exactly k and
the total is exactly target_count(budget, N). Budgets beyond the largest measured
level are refused (no curve there).
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from mobconv.errors import ArgumentError, MobconvError

from ._compress_common import (check_fraction, check_int, check_layer_names, check_progress,
                               label, load_model, progress_bar, weight_layers)
from .pruning import (DEFAULT_MIN_PARAMS, apply, check_weights, default_selection, prune,
                      target_count)

DEFAULT_SPARSITIES = (0.3, 0.5, 0.7, 0.8, 0.9)
DATA_SAMPLES = 64       # samples of `data` used (num_samples=None)
GENERATED_SAMPLES = 16  # generated samples without data
BATCH = 32              # samples per run when the inputs have a symbolic batch dim
GRID = 0.01             # propose(): sparsity step of the greedy walk
FUNC = "sensitivity"
JSON_VERSION = 1


@dataclass
class LayerCurve:
    name: str
    op: str
    params: int
    values: list  # metric at each of the report's sparsities (SQNR dB or score)


@dataclass
class SensitivityReport:
    metric: str            # "sqnr" (output SQNR, dB) or "evaluate" (the user's score)
    sparsities: tuple
    layers: list           # [LayerCurve], graph order
    baseline: float        # the unpruned model's metric (inf for SQNR)
    data: str              # where the samples came from
    num_samples: int
    backend: str
    seconds: float
    model: str = ""
    notes: list = field(default_factory=list)

    @property
    def metric_label(self) -> str:
        return "output SQNR (dB)" if self.metric == "sqnr" else "evaluate() score"

    def curve(self, name: str) -> LayerCurve:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ArgumentError(f"{name!r} is not a layer of this sensitivity report")

    def table(self) -> str:
        from .report import _table, display_name

        def cell(v):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "-"
            if math.isinf(v):
                return "exact" if v > 0 else "-inf"
            return f"{v:.1f}" if self.metric == "sqnr" else f"{v:.4g}"

        headers = ["layer", "op", "params"] + [f"{100 * s:g}%" for s in self.sparsities]
        rows = [[display_name(c.name), c.op, c.params] + [cell(v) for v in c.values]
                for c in self.layers]
        base = "" if self.metric == "sqnr" else f", unpruned {cell(self.baseline)}"
        head = (f"{self.metric_label} with one layer pruned at a time ({self.num_samples} "
                f"sample(s): {self.data}{base}; {self.backend}, {self.seconds:.1f} s)")
        return head + "\n" + _table(rows, headers)

    def to_dict(self) -> dict:
        from .report import _json_float

        return {"version": JSON_VERSION, "metric": self.metric, "model": self.model,
                "sparsities": [float(s) for s in self.sparsities],
                "baseline": _json_float(self.baseline), "data": self.data,
                "num_samples": self.num_samples, "backend": self.backend,
                "seconds": round(self.seconds, 3), "notes": list(self.notes),
                "layers": [{"name": c.name, "op": c.op, "params": c.params,
                            "values": [_json_float(v) for v in c.values]}
                           for c in self.layers]}

    def plot(self, path) -> str:
        from .sensitivity_plot import plot_sensitivity

        return plot_sensitivity(self, path)

    def harm(self, curve: LayerCurve) -> np.ndarray:
        """The harm at each measured sparsity (see the module doc), non-decreasing."""
        values = np.array([np.nan if v is None else v for v in curve.values], dtype=np.float64)
        if self.metric == "sqnr":
            with np.errstate(over="ignore"):
                harm = np.where(np.isnan(values), np.inf, np.power(10.0, -values / 10.0))
        else:
            harm = np.where(np.isnan(values), np.inf, np.maximum(self.baseline - values, 0.0))
        return np.maximum.accumulate(harm)

    def propose(self, budget: float) -> dict:
        """{layer: sparsity} zeroing at least `budget` of the report's layers' weights
        together, least sensitive layers most (module doc); feed it to
        prune(model, per_layer=...)."""
        budget = check_fraction(budget, "budget", "propose")
        if not self.layers:
            raise ArgumentError("propose(): the sensitivity report has no layers")
        top = max(self.sparsities)
        if budget > top:
            raise ArgumentError(f"propose(): budget {budget:g} is above the largest measured "
                                f"sparsity {top:g}; measure higher levels (sparsities=...)")
        sizes = [c.params for c in self.layers]
        total = sum(sizes)
        need = target_count(budget, total)
        steps = max(1, int(round(top / GRID)))
        grid = np.linspace(0.0, top, steps + 1)
        levels = np.concatenate([[0.0], np.asarray(self.sparsities, dtype=np.float64)])
        harms, counts = [], []
        for c, n in zip(self.layers, sizes):
            h = np.concatenate([[0.0], self.harm(c)])
            order = np.argsort(levels, kind="stable")
            with np.errstate(invalid="ignore"):
                harms.append(_interp(grid, levels[order], h[order]))
            counts.append(np.array([target_count(g, n) for g in grid]))
        at = [0] * len(self.layers)
        removed = 0
        heap = []
        for i in range(len(self.layers)):
            _push(heap, harms[i], counts[i], 0, i)
        last = None
        while removed < need and heap:
            _, i, j = heapq.heappop(heap)
            removed += int(counts[i][j] - counts[i][at[i]])
            at[i], last = j, i
            _push(heap, harms[i], counts[i], j, i)
        k = [int(counts[i][at[i]]) for i in range(len(self.layers))]
        if last is not None and removed > need:  # trim the last step to the exact count
            k[last] -= removed - need
        return {c.name: k[i] / c.params for i, c in enumerate(self.layers)}


def _interp(grid, xs, ys) -> np.ndarray:
    """Linear interpolation that keeps infinities (np.interp turns inf segments to nan)."""
    out = np.interp(grid, xs, np.where(np.isinf(ys), 0.0, ys))
    for j in range(1, len(xs)):
        if np.isinf(ys[j]):
            out[(grid > xs[j - 1]) & (grid <= xs[j])] = np.inf
            out[grid > xs[j]] = np.inf
    return out


def _push(heap, harm, counts, j: int, i: int) -> None:
    """Push layer i's next step from grid point j: to the next point that removes at least
    one more weight (a small layer gains nothing on some 1 % steps), with its cost, the
    added harm per removed weight (ties: the earlier layer)."""
    later = np.flatnonzero(counts[j + 1:] > counts[j])
    if later.size == 0:
        return
    to = j + 1 + int(later[0])
    cost = math.inf if math.isinf(harm[to]) else (harm[to] - harm[j]) / (counts[to] - counts[j])
    heapq.heappush(heap, (cost, i, to))


# ---- measuring -----------------------------------------------------------------------


def _check_sparsities(sparsities) -> tuple:
    try:
        values = list(sparsities)
    except TypeError:
        raise ArgumentError(f"{FUNC}(): sparsities must be a list of numbers in (0, 1), got "
                            f"{sparsities!r}") from None
    if not values:
        raise ArgumentError(f"{FUNC}(): sparsities must not be empty")
    checked = sorted({check_fraction(v, "sparsities", FUNC) for v in values})
    if checked[0] == 0.0:
        raise ArgumentError(f"{FUNC}(): sparsities must be in (0, 1) (0 is the unpruned model), "
                            f"got {values!r}")
    return tuple(checked)


def _samples(model, data, num_samples: Optional[int]) -> tuple:
    """([feed dict], description) of `data`, or generated when data is None."""
    if data is None:
        n = num_samples or GENERATED_SAMPLES
        return ([model.random_inputs(seed=i) for i in range(n)],
                f"generated inputs (seeded standard normal, {n} samples; no data given)")
    from .debug import _feeds_iter

    reader = _feeds_iter(data, model, num_samples or DATA_SAMPLES)
    samples = [dict(f) for f in reader]
    return samples, reader.describe()


def _batches(model, samples: list) -> list:
    """Consecutive samples of equal shapes concatenated along a symbolic batch dim (BATCH at
    a time), when every input has one; else the samples as they are."""
    specs = model.inputs
    if len(samples) < 2 or not all(s.shape and isinstance(s.shape[0], str) for s in specs):
        return samples
    batches, group = [], []

    def key(sample):
        return tuple((name, np.shape(sample[name])) for name in sorted(sample))

    for sample in samples:
        if group and (len(group) == BATCH or key(sample) != key(group[0])):
            batches.append(group)
            group = []
        group.append(sample)
    batches.append(group)
    return [{name: np.concatenate([np.asarray(s[name]) for s in group]) for name in group[0]}
            if len(group) > 1 else group[0] for group in batches]


class _Runner:
    """Runs the working graph on the batches: the runtime when it runs the model, else the
    numpy reference; `sqnr(layer, k)` = output SQNR with the layer's k smallest zeroed.

    On the runtime the graph is serialized once: a measurement writes the pruned weight
    over the dense bytes of the original in a copy of the file (found once per layer, and
    used only when they occur exactly once), then runs every batch on one interpreter.
    Serializing the whole model per run cost 80 % of the time on the zoo nets."""

    def __init__(self, graph, batches, backend: str):
        from mobconv.api import Model

        self.graph, self.batches = graph, batches
        self.backend, self.note = backend, None
        if backend == "auto":
            from mobconv.backends import _runtime_available

            self.backend = "runtime" if _runtime_available() else "reference"
        self.blob = Model(graph).to_bytes() if self.backend == "runtime" else None
        self.offsets: dict = {}
        try:
            self.reference = self._run(self.blob)
        except MobconvError as exc:
            if backend != "auto" or self.backend != "runtime":
                raise
            self.backend, self.blob = "reference", None
            self.note = f"the C++ runtime cannot run it ({exc}); used the numpy reference"
            self.reference = self._run(None)

    def _run(self, blob) -> list:
        if blob is None:
            from mobconv.api import Model

            model = Model(self.graph)
            return [model.run(b, backend="reference") for b in self.batches]
        from mobconv import runtime

        with runtime.Interpreter(blob, threads=1, profile=False) as interpreter:
            return [interpreter.run(b) for b in self.batches]

    def _offset(self, layer, data: np.ndarray):
        if layer.weight not in self.offsets:
            raw = np.ascontiguousarray(data).tobytes()
            at = self.blob.find(raw)
            unique = at >= 0 and self.blob.find(raw, at + 1) < 0
            self.offsets[layer.weight] = at if unique else None
        return self.offsets[layer.weight]

    def sqnr(self, layer, k: int) -> float:
        value = self.graph.values[layer.weight]
        original = value.data
        try:
            apply(self.graph, layer, k)
            value.storage = None
            blob = None
            if self.blob is not None:
                at = self._offset(layer, original)
                if at is None:
                    from mobconv.api import Model

                    blob = Model(self.graph).to_bytes()
                else:
                    raw = np.ascontiguousarray(value.data).tobytes()
                    blob = self.blob[:at] + raw + self.blob[at + len(raw):]
            outputs = self._run(blob)
        finally:
            value.data = original
        from .debug import ErrorStats

        stats = ErrorStats()
        for ref, got in zip(self.reference, outputs):
            for name, array in ref.items():
                stats.add(array, got[name])
        return stats.sqnr_db


def sensitivity(model, data=None, *, sparsities=DEFAULT_SPARSITIES,
                evaluate: Optional[Callable] = None, layers=None, exclude=(),
                min_params: int = DEFAULT_MIN_PARAMS, num_samples: Optional[int] = None,
                backend: str = "auto", progress: Optional[bool] = None) -> SensitivityReport:
    """Per-layer pruning sensitivity of `model` (a mobconv.Model or a model path).

    data: samples for the output SQNR (quantize/data.py: a folder of .npy/.npz/images, an
      iterable of feed dicts, a reader); None: generated inputs (GENERATED_SAMPLES).
    sparsities: levels in (0, 1) measured for every layer.
    evaluate: fn(model) -> score (higher is better) instead of the SQNR; then no data.
    layers: the layer names to measure; default: those prune(model, s) prunes (no
      depthwise, first or < min_params layers), less `exclude`.
    num_samples: at most this many samples of `data` (default DATA_SAMPLES).
    backend: "auto" (the C++ runtime when it can), "runtime" or "reference".
    progress: None = a bar on a terminal.
    """
    start = time.perf_counter()
    sparsities = _check_sparsities(sparsities)
    if evaluate is not None and not callable(evaluate):
        raise ArgumentError(f"{FUNC}(): evaluate must be a function model -> score, got a "
                            f"{type(evaluate).__name__}")
    if evaluate is not None and data is not None:
        raise ArgumentError(f"{FUNC}(): give data (for the output SQNR) or evaluate, not both "
                            "(evaluate() reads its own data)")
    if num_samples is not None:
        num_samples = check_int(num_samples, "num_samples", FUNC, 1)
    min_params = check_int(min_params, "min_params", FUNC, 0)
    if backend not in ("auto", "runtime", "reference"):
        raise ArgumentError(f"{FUNC}(): backend must be auto, runtime or reference, got "
                            f"{backend!r}")
    check_progress(progress, FUNC)
    model = load_model(model, FUNC)
    every = weight_layers(model.graph, casts=True)
    exclude = check_layer_names(model, exclude, "exclude", FUNC, every)
    if layers is None:
        chosen = default_selection(every, min_params, exclude)
    else:
        names = check_layer_names(model, layers, "layers", FUNC, every)
        chosen = [layer for layer in every if layer.name in names and layer.name not in exclude]
    if not chosen:
        raise ArgumentError(f"{FUNC}(): {label(model)}: no layer to measure (every layer is "
                            f"excluded, depthwise, first or under min_params={min_params})")
    check_weights(model, chosen, FUNC)

    notes = []
    if evaluate is not None:
        from .mixed import _evaluated

        baseline = _evaluated(evaluate, model)
        if not math.isfinite(baseline):
            raise ArgumentError(f"{FUNC}(): evaluate() returned {baseline} for the unpruned "
                                "model; it must score it with a finite number")
        data_text, count, used = "evaluate()", 0, "evaluate()"

        def measure(layer, s):
            return _evaluated(evaluate, prune(model, per_layer={layer.name: s}))
    else:
        samples, data_text = _samples(model, data, num_samples)
        count = len(samples)
        work = model.graph.copy()
        work.test_vectors = []
        for value in work.values.values():
            value.storage = None
        runner = _Runner(work, _batches(model, samples), backend)
        if runner.note:
            notes.append(runner.note)
        baseline, used = math.inf, runner.backend

        def measure(layer, s):
            return runner.sqnr(layer, target_count(s, layer.size))

    curves = []
    with progress_bar(progress, len(chosen) * len(sparsities), "sensitivity") as bar:
        for layer in chosen:
            values = []
            for s in sparsities:
                values.append(measure(layer, s))
                bar.advance()
            curves.append(LayerCurve(layer.name, layer.op, layer.size, values))
    return SensitivityReport("evaluate" if evaluate is not None else "sqnr", sparsities,
                             curves, baseline, data_text, count, used,
                             time.perf_counter() - start, model=label(model), notes=notes)


__all__ = ["sensitivity", "SensitivityReport", "LayerCurve", "DEFAULT_SPARSITIES"]
