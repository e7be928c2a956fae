"""Calibration: run the float graph over the calibration data and choose, for every
float activation, the clipping range [lo, hi] its int8 quantization will cover.

    ranges = collect_ranges(graph, calibration_feeds("calib/", model), method="mse")
    ranges["conv1_out"].lo, ranges["conv1_out"].hi

Observed tensors: the graph's float inputs and every float output of a node
(constants are not activations). Methods (`METHODS`): see quantize/observers.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mobconv.errors import ArgumentError

METHODS = ("minmax", "percentile", "entropy", "mse")


@dataclass(frozen=True)
class TensorRange:
    """The clipping range chosen for one tensor, and what calibration saw of it.

    lo <= 0 <= hi always (zero must be representable). seen_min/seen_max are the
    extremes of the finite values seen; hist/edges the tensor's histogram (counts,
    and the len(hist) + 1 bin edges) when the method keeps one; clipped_fraction
    the fraction of the values seen that fall outside [lo, hi].
    """

    lo: float
    hi: float
    seen_min: float
    seen_max: float
    count: int = 0
    clipped_fraction: float = 0.0
    hist: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    edges: Optional[np.ndarray] = field(default=None, compare=False, repr=False)


def _is_float(array) -> bool:
    return isinstance(array, np.ndarray) and array.dtype.kind == "f"


def collect_ranges(graph, data, method: str = "mse", *, percentile: float = 99.99,
                   num_bins: int = 2048, progress=None) -> dict:
    """Clipping ranges of every float activation of `graph` over `data` (an iterable of
    feed dicts, e.g. quantize.data.calibration_feeds(...)), by `method`."""
    from mobconv.reference.interpreter import run

    if method not in METHODS:
        raise ArgumentError(f"unknown calibration method {method!r} (known: {', '.join(METHODS)})")
    graph = getattr(graph, "graph", graph)
    stats: dict = {}

    def observe(name, array):
        if not _is_float(array):
            return
        finite = array[np.isfinite(array)] if not np.isfinite(array).all() else array
        if finite.size == 0:
            return
        lo, hi = float(finite.min()), float(finite.max())
        old = stats.get(name)
        if old is None:
            stats[name] = [lo, hi, finite.size]
        else:
            old[0], old[1], old[2] = min(old[0], lo), max(old[1], hi), old[2] + finite.size

    def observer(node, inputs, outputs):
        for name, array in zip(node.outputs, outputs):
            if name:
                observe(name, array)

    for feeds in data:
        for name in graph.inputs:
            observe(name, feeds.get(name))
        run(graph, feeds, observer=observer)
    return {name: TensorRange(min(lo, 0.0), max(hi, 0.0), lo, hi, count)
            for name, (lo, hi, count) in sorted(stats.items())}
