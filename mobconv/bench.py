"""Measure one .mob model in the C++ runtime: what `mobconv bench` prints.

Load (mmap + verification), interpreter creation (shape inference, memory
plan, weight pre-packing), first run, then `runs` timed steady-state runs
(median and p90), the activation arena, the process's peak RSS, and the ten
op types that take the most time (from a separate profiled interpreter, so
profiling does not slow the timed runs). Numbers are measured, never asserted;
side-by-side comparisons with peer runtimes live in benchmarks/.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field

import numpy as np

from . import runtime
from .api import concrete_shape
from .feeds import check_random_shape, check_seed


@dataclass
class BenchResult:
    model: str
    threads: int
    runs: int
    load_ms: float
    create_ms: float
    first_run_ms: float
    median_ms: float
    p90_ms: float
    arena_bytes: int
    peak_rss_bytes: int
    top_ops: list = field(default_factory=list)  # [(op type, total ms per run, share, count)]


def _declared_shapes(path) -> dict:
    """input -> shape with the sizes the source file declared for symbolic dims
    (a Caffe deploy file's, api.declared_specs), or {}."""
    if path is None:
        return {}
    from .api import declared_specs, load

    model = load(path)
    return {s.name: tuple(s.shape) for s in declared_specs(model.graph, model.inputs)}


def _random_feeds(interpreter, seed: int, path=None) -> dict:
    rng = np.random.default_rng(check_seed(seed))
    feeds = {}
    declared = _declared_shapes(path)
    for info in interpreter.inputs:
        base = declared.get(info["name"], ())
        shape = concrete_shape(tuple(d if d >= 0 else base[i] if i < len(base) else 1
                                     for i, d in enumerate(info["shape"])))
        check_random_shape(shape, info["name"], path)
        dtype = np.dtype(info["dtype"])
        if dtype.kind == "f":
            feeds[info["name"]] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[info["name"]] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            feeds[info["name"]] = rng.integers(0, 10, size=shape).astype(dtype)
    return feeds


def _op_breakdown(model, feeds: dict, threads: int, runs: int) -> list:
    totals: dict = {}
    with runtime.Interpreter(model, threads=threads, profile=True) as interpreter:
        interpreter.run(feeds)  # warm-up
        for _ in range(runs):
            interpreter.run(feeds)
            for _name, op_type, ms in interpreter.profile():
                total, count = totals.get(op_type, (0.0, 0))
                totals[op_type] = (total + ms, count + 1)
    overall = sum(t for t, _ in totals.values()) or 1.0
    rows = [(op, t / runs, t / overall, c // runs) for op, (t, c) in totals.items()]
    return sorted(rows, key=lambda r: -r[1])[:10]


def bench(path: str, threads: int = 1, runs: int = 50, warmup: int = 3, seed: int = 0) -> BenchResult:
    start = time.perf_counter()
    model = runtime.Model(path)
    load_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    interpreter = runtime.Interpreter(model, threads=threads, profile=False)
    create_ms = (time.perf_counter() - start) * 1e3
    try:
        feeds = _random_feeds(interpreter, seed, path)
        start = time.perf_counter()
        interpreter.run(feeds)
        first_ms = (time.perf_counter() - start) * 1e3
        for _ in range(warmup):
            interpreter.run(feeds)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            interpreter.run(feeds)
            times.append((time.perf_counter() - start) * 1e3)
        arena = interpreter.arena_bytes
    finally:
        interpreter.close()
    top = _op_breakdown(model, feeds, threads, max(1, min(runs, 10)))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return BenchResult(path, threads, runs, load_ms, create_ms, first_ms,
                       float(np.median(times)), float(np.percentile(times, 90)),
                       arena, peak_rss, top)
