"""Calibration: run the float graph over the calibration data and choose, for every
float activation, the clipping range [lo, hi] its int8 quantization will cover.

    data = calibration_feeds("calib/", model)           # quantize/data.py
    ranges = collect_ranges(model.graph, data, method="mse")
    ranges["conv1"].lo, ranges["conv1"].hi

Observed tensors: the graph's float inputs and every float output of a node, keyed
by tensor name, in graph order (constants are weights, not activations). Methods
(`METHODS`): minmax, percentile, entropy (KL), mse; quantize/observers.py says how
each chooses the range.

Where the float graph runs (`backend`): "reference" is the numpy reference
(mobconv/reference/interpreter.py, the oracle) with its observer hook; "runtime"
the C++ runtime with its observer hook (mobconv/runtime.py, one thread, so runs are
deterministic; 20-50x faster, and the tensors it reports are the IR's, equal to the
reference's within float32 rounding); "auto" (default) takes the runtime when it is
built and can run the graph, else the reference.

How memory stays bounded (independent of the number of samples): samples are run
one at a time with the backend's observer hook, so only one sample's intermediates
are alive (the runtime hands each op's outputs over as copies, dropped once binned);
each observed
tensor's statistics are a fixed-size histogram (`num_bins` int64 counts, re-binned
by merging when the range grows) plus min/max/count, updated and then the sample
is dropped. So the state is O(number of tensors x num_bins), whether 10 or 10^6
samples are calibrated (tests/test_quant_calibration.py measures peak RSS for 200
vs 2000 samples). The histogram is exact under any batch split, so ranges depend
only on the data, never on batching or on the order of the samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mobconv.errors import ArgumentError, MobconvError

from .observers import TensorObserver, choose_range, clipped_fraction
from .progress import Progress

METHODS = ("minmax", "percentile", "entropy", "mse")
BACKENDS = ("auto", "reference", "runtime")


@dataclass(frozen=True)
class TensorRange:
    """The clipping range chosen for one tensor, and what calibration saw of it.

    lo <= 0 <= hi always (zero must be representable; lo == hi == 0 for a tensor
    that was always zero). seen_min/seen_max: the extremes of the finite values
    seen; count: how many finite values; hist/edges: the tensor's histogram (counts,
    and the len(hist) + 1 bin edges); clipped_fraction: the fraction of the values
    seen that lie outside [lo, hi].
    """

    lo: float
    hi: float
    seen_min: float
    seen_max: float
    count: int = 0
    clipped_fraction: float = 0.0
    hist: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    edges: Optional[np.ndarray] = field(default=None, compare=False, repr=False)


def check_method(method, percentile=99.99) -> None:
    """ArgumentError unless `method` is one of METHODS and `percentile` in (50, 100]."""
    if method not in METHODS:
        raise ArgumentError(f"unknown calibration method {method!r} (known: {', '.join(METHODS)})")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.floating)) \
            or not 50 < float(percentile) <= 100:
        raise ArgumentError(f"percentile must be a number in (50, 100] (a percentage such as "
                            f"99.99), got {percentile!r}")


class _ReferenceRunner:
    name = "reference"

    def __init__(self, graph):
        self.graph = graph

    def __call__(self, feeds: dict, hook) -> None:
        from mobconv.reference.interpreter import run

        run(self.graph, feeds, observer=lambda node, ins, outs: hook(zip(node.outputs, outs)))

    def close(self) -> None:
        pass


class _RuntimeRunner:
    name = "runtime"

    def __init__(self, graph):
        from mobconv import runtime
        from mobconv.api import Model

        if not runtime.available():
            raise MobconvError("calibration backend 'runtime' is not available: libmobrt.so was "
                               "not found (build it with `pip install -e .`)")
        self.interpreter = runtime.Interpreter(Model(graph).to_bytes(), threads=1, profile=False,
                                               name="calibration")

    def __call__(self, feeds: dict, hook) -> None:
        self.interpreter.run(feeds, observer=lambda i, name, op, tensors: hook(tensors.items()))

    def close(self) -> None:
        self.interpreter.close()


def _runner(graph, backend: str):
    if backend not in BACKENDS:
        raise ArgumentError(f"unknown calibration backend {backend!r} (known: {', '.join(BACKENDS)})")
    if backend == "reference":
        return _ReferenceRunner(graph)
    try:
        return _RuntimeRunner(graph)
    except MobconvError:
        if backend == "runtime":
            raise
        return _ReferenceRunner(graph)  # not built, or an op without a C++ kernel


class RangeCollector:
    """Observers for every float activation of `graph`; `observe(feeds)` runs one sample
    on `backend` (see the module docstring); `close()` releases the runtime."""

    def __init__(self, graph, num_bins: int = 2048, backend: str = "reference"):
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) \
                or not 128 <= num_bins <= 1 << 20:
            raise ArgumentError(f"num_bins must be an integer in [128, 1048576], got {num_bins!r}")
        self.graph = getattr(graph, "graph", graph)
        self.num_bins = int(num_bins)
        self.observers: dict = {}  # tensor name -> TensorObserver, in graph order
        for name in self.graph.inputs:
            self.observers[name] = TensorObserver(self.num_bins)
        constants = {v.name for v in self.graph.constants()}
        for node in self.graph.nodes:
            for name in node.outputs:
                if name and name not in constants and name not in self.observers:
                    self.observers[name] = TensorObserver(self.num_bins)
        self.samples = 0
        self._runner = _runner(self.graph, backend)
        self.backend = self._runner.name  # the one actually used

    def _update(self, name, array) -> None:
        if isinstance(array, np.ndarray) and array.dtype.kind == "f" and name in self.observers:
            self.observers[name].update(array)

    def _hook(self, named_outputs) -> None:
        for name, array in named_outputs:
            if name:
                self._update(name, array)

    def observe(self, feeds: dict) -> None:
        for name in self.graph.inputs:
            self._update(name, feeds.get(name))
        self._runner(feeds, self._hook)
        self.samples += 1

    def close(self) -> None:
        self._runner.close()

    def ranges(self, method: str = "mse", percentile: float = 99.99,
               symmetric: bool = False) -> dict:
        check_method(method, percentile)
        out = {}
        for name, obs in self.observers.items():
            if obs.counts is None:
                continue  # not a float tensor (or never finite)
            lo, hi = choose_range(obs, method, float(percentile), bool(symmetric))
            out[name] = TensorRange(lo, hi, obs.min, obs.max, obs.count,
                                    clipped_fraction(obs, lo, hi), obs.counts.copy(), obs.edges())
        return out


def collect_ranges(graph, data, method: str = "mse", *, percentile: float = 99.99,
                   num_bins: int = 2048, progress=None, symmetric: bool = False,
                   backend: str = "auto") -> dict:
    """Clipping ranges {tensor name: TensorRange} of every float activation of `graph`
    (a Graph or Model) over `data`: an iterable of feed dicts, normally
    `quantize.data.calibration_feeds(...)` (which checks them). progress: None shows a
    bar with ETA when stderr is a terminal, True/False force it. symmetric: the ranges
    will be quantized with zero point 0 over [-max(-lo, hi), max(-lo, hi)] (the mse
    method then minimises the error of that grid; the others are unchanged). backend:
    "auto", "reference" or "runtime" (module docstring)."""
    check_method(method, percentile)
    collector = RangeCollector(graph, num_bins, backend)
    total = getattr(data, "total", None)
    try:
        with Progress(total=total, label="calibrating", enabled=progress) as bar:
            for feeds in data:
                collector.observe(feeds)
                bar.advance()
    finally:
        collector.close()
    if collector.samples == 0:
        from .data import CalibrationDataError

        raise CalibrationDataError("calibration data is empty: no samples (calibration needs "
                                   "at least one)")
    return collector.ranges(method, percentile, symmetric)
