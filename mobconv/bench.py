"""Benchmark one .mob model in the C++ runtime: the numbers behind `mobconv bench`.

    from mobconv.bench import bench, format_report
    result = bench("model.mob", threads=1, runs=50)
    print(format_report(result))

Measures, in this order: load (model mmap + verification + interpreter creation, which
includes shape inference, memory planning and weight pre-packing), the first run, then
`runs` steady-state runs (median / p90 / min). Reports the activation arena, the sum of
activations without reuse, the process's peak RSS, and the ten ops with the most time
(averaged over the steady runs, from the runtime's per-op profile).
"""
from __future__ import annotations

import os
import resource
import sys
import time
from typing import Optional

import numpy as np

__all__ = ["bench", "format_report", "random_feeds"]


def random_feeds(inputs: list, seed: int = 0, dim_default: int = 1) -> dict:
    """Random inputs for the interpreter's input specs; unresolved dims (-1) become dim_default."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in inputs:
        shape = tuple(d if d >= 0 else dim_default for d in spec["shape"])
        dtype = np.dtype(spec["dtype"])
        if dtype.kind == "f":
            feeds[spec["name"]] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec["name"]] = rng.integers(0, 2, shape).astype(dtype)
        else:
            feeds[spec["name"]] = rng.integers(0, 10, shape).astype(dtype)
    return feeds


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)  # Linux reports KiB


def bench(model_path, threads: int = 1, runs: int = 50, warmup: int = 2, isa: Optional[str] = None,
          feeds: Optional[dict] = None, top: int = 10) -> dict:
    """Benchmark `model_path` (a .mob path or its bytes) in the C++ runtime; returns a dict.

    Keys: model, threads, runs, isa, load_ms, first_run_ms, median_ms, p90_ms, min_ms,
    mean_ms, arena_bytes, activation_bytes, peak_rss_bytes, top_ops (list of dicts with
    name, type, ms, percent), ops_total_ms.
    """
    from mobconv.runtime import Interpreter

    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    t0 = time.perf_counter()
    it = Interpreter(model_path, threads=threads, isa=isa, profile=True)
    load_ms = (time.perf_counter() - t0) * 1e3
    try:
        if feeds is None:
            feeds = random_feeds(it.inputs)
        t0 = time.perf_counter()
        it.run(feeds)
        first_ms = (time.perf_counter() - t0) * 1e3
        for _ in range(max(0, warmup - 1)):
            it.run(feeds)
        times = []
        per_op: dict = {}
        for _ in range(runs):
            t0 = time.perf_counter()
            it.run(feeds)
            times.append((time.perf_counter() - t0) * 1e3)
            for name, op_type, ms in it.profile():
                acc = per_op.setdefault(name, [op_type, 0.0])
                acc[1] += ms
        arena, acts = it.arena_bytes, it.activation_bytes
    finally:
        it.close()
    t = np.asarray(times)
    total = sum(v[1] for v in per_op.values()) / runs
    ops = sorted(((n, v[0], v[1] / runs) for n, v in per_op.items()), key=lambda e: -e[2])[:top]
    return {
        "model": os.fspath(model_path) if not isinstance(model_path, (bytes, bytearray)) else "<bytes>",
        "threads": threads,
        "runs": runs,
        "isa": isa or "best",
        "load_ms": load_ms,
        "first_run_ms": first_ms,
        "median_ms": float(np.median(t)),
        "p90_ms": float(np.percentile(t, 90)),
        "min_ms": float(t.min()),
        "mean_ms": float(t.mean()),
        "arena_bytes": int(arena),
        "activation_bytes": int(acts),
        "peak_rss_bytes": _peak_rss_bytes(),
        "ops_total_ms": total,
        "top_ops": [{"name": n, "type": ty, "ms": ms, "percent": 100.0 * ms / total if total else 0.0}
                    for n, ty, ms in ops],
    }


def format_report(r: dict) -> str:
    """Human-readable text of a bench() result."""
    mib = 1024.0 * 1024.0
    lines = [
        f"model        {r['model']}",
        f"threads      {r['threads']}   isa {r['isa']}   runs {r['runs']}",
        f"load         {r['load_ms']:.2f} ms (mmap, verify, plan, pre-pack)",
        f"first run    {r['first_run_ms']:.2f} ms",
        f"steady       median {r['median_ms']:.3f} ms   p90 {r['p90_ms']:.3f} ms   min {r['min_ms']:.3f} ms",
        f"arena        {r['arena_bytes'] / mib:.2f} MiB (activations without reuse: {r['activation_bytes'] / mib:.2f} MiB)",
        f"peak RSS     {r['peak_rss_bytes'] / mib:.1f} MiB (whole process)",
        f"top {len(r['top_ops'])} ops by time (mean of steady runs; ops total {r['ops_total_ms']:.3f} ms):",
    ]
    for e in r["top_ops"]:
        lines.append(f"  {e['ms']:8.3f} ms {e['percent']:5.1f}%  {e['type']:<18s} {e['name']}")
    return "\n".join(lines)
