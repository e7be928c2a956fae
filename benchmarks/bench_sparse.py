"""Sparse fp32 kernels: file size and dense vs sparse latency per sparsity, in one run.

    python benchmarks/bench_sparse.py                 # models table (make bench runs this)
    python benchmarks/bench_sparse.py --quick         # fewer sparsities and runs
    python benchmarks/bench_sparse.py --layers        # per-layer crossover per instruction set
    python benchmarks/bench_sparse.py --threads 2 --runs 30

Models (seeded random weights, built as IR here):
  - mobilenet_v1: a MobileNet-v1-like stack at 112x112 input (3x3 stem, then depthwise
    3x3 + pointwise 1x1 blocks at 56x56, 28x28, 14x14 and 7x7, 64 -> 1024 channels, global
    average pool, a 1024 -> 1000 Gemm); the 1x1 convs hold ~95 % of the MACs;
  - mlp_b1 / mlp_b32: a 1024 -> 2048 -> 2048 -> 1000 MLP (Gemm + Relu, transB=1 as ONNX
    exporters write them) at batch 1 and batch 32.
Per sparsity level s (0, 50, 70, 80, 90, 95 %) the weights of every 1x1 conv and Gemm are
pruned per layer by magnitude (the s fraction of smallest |w| set to 0; the depthwise and
stem convs stay dense) and marked `Value.storage = WeightStorage("sparse")`; "file" is
the .mob size of `Model.to_bytes()` (the writer stores a sparse weight as bitmask + values
when smaller; without that writer the column is the dense size, "dense" is printed).
Latency: median of `--runs` timed runs after 2 warm-ups, the same model in one process with
MOBRT_SPARSE=off (the dense kernels) and MOBRT_SPARSE=always (the sparse kernels on every
eligible op) and the default (auto: the measured thresholds of
runtime/src/cpu/sparse/sparse_f32.h), interleaved in rounds; "speedup" = off / always.
`--layers` times single-layer models (1x1 convs at 56x56, 28x28, 14x14, 7x7; FC 1024x1024 at
batch 1 and 32) for each instruction set this CPU runs (the cap: MOBRT_MAX_ISA semantics)
and prints the off / always ratio per sparsity: the crossover the auto thresholds come from.
Numbers are reported, never asserted; the machine may be shared, so read the ratios.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mobconv.api import Model  # noqa: E402
from mobconv.formats.writer import to_bytes  # noqa: E402
from mobconv.ir import Graph, infer_shapes  # noqa: E402
from mobconv.ir.graph import WeightStorage  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
QUICK_SPARSITIES = (0.0, 0.7, 0.9)
MODES = ("off", "always", "auto")


def mobilenet_v1(rng) -> Graph:
    g = Graph("mobilenet_v1_like")
    g.add_input("x", "float32", (1, 3, 112, 112))
    k = [0]

    def const(name, arr):
        g.add_constant(name, arr.astype(np.float32))
        return name

    def conv(x, cin, cout, ksize, stride, group=1, act="Relu"):
        k[0] += 1
        n = f"conv{k[0]}"
        fan = cin // group * ksize * ksize
        w = const(n + ".w", rng.standard_normal((cout, cin // group, ksize, ksize)) * np.sqrt(2.0 / fan))
        b = const(n + ".b", rng.standard_normal(cout) * 0.01)
        p = ksize // 2
        g.add_node("Conv", [x, w, b], [n], {"strides": [stride, stride], "pads": [p, p, p, p], "group": group,
                                            "activation": act}, name=n)
        return n

    x = conv("x", 3, 32, 3, 2)                      # 56x56
    plan = [(32, 64, 1), (64, 128, 1), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
            (512, 512, 1), (512, 512, 1), (512, 1024, 2), (1024, 1024, 1)]
    for cin, cout, s in plan:
        x = conv(x, cin, cin, 3, s, group=cin)      # depthwise
        x = conv(x, cin, cout, 1, 1)                # pointwise
    g.add_node("GlobalAveragePool", [x], ["gap"], name="gap")
    g.add_node("Flatten", ["gap"], ["flat"], {"axis": 1}, name="flatten")
    w = const("fc.w", rng.standard_normal((1000, 1024)) * np.sqrt(1.0 / 1024))
    b = const("fc.b", rng.standard_normal(1000) * 0.01)
    g.add_node("Gemm", ["flat", w, b], ["y"], {"transB": 1}, name="fc")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def mlp(rng, batch: int) -> Graph:
    g = Graph(f"mlp_b{batch}")
    g.add_input("x", "float32", (batch, 1024))
    x = "x"
    dims = (1024, 2048, 2048, 1000)
    for i in range(3):
        w = g.add_constant(f"fc{i}.w", (rng.standard_normal((dims[i + 1], dims[i])) * np.sqrt(2.0 / dims[i]))
                           .astype(np.float32)).name
        b = g.add_constant(f"fc{i}.b", (rng.standard_normal(dims[i + 1]) * 0.01).astype(np.float32)).name
        attrs = {"transB": 1}
        if i < 2:
            attrs["activation"] = "Relu"
        g.add_node("Gemm", [x, w, b], [f"h{i}"], attrs, name=f"fc{i}")
        x = f"h{i}"
    g.outputs = [x]
    infer_shapes(g)
    return g


def prunable(g: Graph) -> list:
    """Weight names of the 1x1 convs (group 1) and the Gemm/MatMul constants."""
    out = []
    for node in g.nodes:
        if node.op == "Conv" and node.attrs.get("group", 1) == 1:
            w = g.values[node.inputs[1]]
            if w.data is not None and w.data.shape[2:] == (1, 1):
                out.append(w.name)
        elif node.op in ("Gemm", "MatMul") and g.values[node.inputs[1]].data is not None:
            out.append(node.inputs[1])
    return out


def pruned(g: Graph, sparsity: float) -> Graph:
    """A copy with each prunable weight's `sparsity` fraction of smallest |w| set to 0."""
    g = g.copy()
    for name in prunable(g):
        v = g.values[name]
        w = v.data.copy()
        if sparsity > 0:
            flat = np.abs(w).ravel()
            drop = np.argsort(flat, kind="stable")[:int(round(sparsity * flat.size))]
            w.reshape(-1)[drop] = 0.0
        v.data = w
        v.storage = WeightStorage("sparse")
    return g


def time_modes(blob: bytes, feeds: dict, runs: int, threads: int, isa: str | None = None) -> dict:
    """mode -> (median ms, kernel names of the Conv/Gemm/MatMul ops): one interpreter per
    MOBRT_SPARSE value (read when it is created), runs interleaved in rounds. At 1 thread the
    time is the calling thread's CPU time (the run executes on it), which other processes on
    a shared machine disturb far less than wall time; with more threads, wall time."""
    from mobconv import runtime

    clock = time.thread_time if threads == 1 else time.perf_counter
    its, kernels = {}, {}
    old = os.environ.get("MOBRT_SPARSE")
    try:
        for mode in MODES:
            os.environ["MOBRT_SPARSE"] = mode
            its[mode] = runtime.Interpreter(blob, threads=threads, isa=isa, profile=True)
    finally:
        if old is None:
            os.environ.pop("MOBRT_SPARSE", None)
        else:
            os.environ["MOBRT_SPARSE"] = old
    times = {m: [] for m in MODES}
    for m, it in its.items():  # warm-up
        for _ in range(2):
            it.run(feeds)
        kernels[m] = [k for _, op, k in it.kernels() if op in ("Conv", "Gemm", "MatMul")]
    for _ in range(runs):
        for m, it in its.items():
            t0 = clock()
            it.run(feeds)
            times[m].append((clock() - t0) * 1e3)
    for it in its.values():
        it.close()
    return {m: (statistics.median(times[m]), kernels[m]) for m in MODES}


def model_table(args, sparsities) -> None:
    rng = np.random.default_rng(0)
    models = [("mobilenet_v1", mobilenet_v1(rng), (1, 3, 112, 112)),
              ("mlp_b1", mlp(rng, 1), (1, 1024)), ("mlp_b32", mlp(rng, 32), (32, 1024))]
    print(f"bench_sparse: {args.threads} thread(s), median of {args.runs} runs "
          f"({'thread CPU time' if args.threads == 1 else 'wall time'}); speedup = dense (MOBRT_SPARSE=off) / "
          "sparse (always); auto = the default choice (sparse ops / prunable ops)")
    print(f"{'model':14s} {'sparsity':>8s} {'file':>10s} {'vs 0%':>6s} {'dense ms':>9s} {'sparse ms':>9s} "
          f"{'speedup':>7s} {'auto ms':>8s}  sparse under auto")
    for name, g, shape in models:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        base = None
        n_prunable = len(prunable(g))
        for s in sparsities:
            gs = pruned(g, s)
            blob = Model(gs).to_bytes()
            base = base or len(blob)
            # Without the sparse writer the file does not shrink: say so on the first pruned row.
            stored = "" if s == 0 or len(blob) < base else " dense"
            t = time_modes(blob, {"x": x}, args.runs, args.threads)
            n_sparse = sum("sparse" in k for k in t["auto"][1])
            print(f"{name:14s} {s * 100:7.0f}% {len(blob) / 1e6:8.2f}MB{stored} {len(blob) / base:6.2f} "
                  f"{t['off'][0]:9.2f} {t['always'][0]:9.2f} {t['off'][0] / t['always'][0]:6.2f}x "
                  f"{t['auto'][0]:8.2f}  {n_sparse}/{n_prunable}", flush=True)


def layer_graph(kind: str, rng) -> tuple:
    g = Graph(kind)
    if kind.startswith("conv"):
        c, hw = {"conv56": (128, 56), "conv28": (256, 28), "conv14": (512, 14), "conv7": (1024, 7)}[kind]
        g.add_input("x", "float32", (1, c, hw, hw))
        g.add_constant("w", (rng.standard_normal((c, c, 1, 1)) * 0.1).astype(np.float32))
        g.add_constant("b", np.zeros(c, np.float32))
        g.add_node("Conv", ["x", "w", "b"], ["y"], {"activation": "Relu"}, name="conv")
        shape = (1, c, hw, hw)
    else:
        m = {"fc_b1": 1, "fc_b32": 32}[kind]
        g.add_input("x", "float32", (m, 1024))
        g.add_constant("w", (rng.standard_normal((1024, 1024)) * 0.03).astype(np.float32))
        g.add_constant("b", np.zeros(1024, np.float32))
        g.add_node("Gemm", ["x", "w", "b"], ["y"], {"transB": 1}, name="fc")
        shape = (m, 1024)
    g.outputs = ["y"]
    infer_shapes(g)
    return g, shape


def layer_table(args, sparsities) -> None:
    from mobconv import runtime

    isas = [i for i in runtime.supported_isas() if i in ("avx2", "avx512", "neon")]
    rng = np.random.default_rng(0)
    print(f"bench_sparse --layers: dense / sparse latency ratio per ISA cap (> 1: sparse wins), "
          f"{args.threads} thread(s), median of {args.runs} runs")
    print(f"{'layer':8s} {'isa':7s} " + " ".join(f"{s * 100:5.0f}%" for s in sparsities) + "   dense ms")
    for kind in ("conv56", "conv28", "conv14", "conv7", "fc_b1", "fc_b32"):
        g, shape = layer_graph(kind, rng)
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        for isa in isas:
            ratios, dense = [], []
            for s in sparsities:
                t = time_modes(to_bytes(pruned(g, s)), {"x": x}, args.runs, args.threads, isa=isa)
                ratios.append(t["off"][0] / t["always"][0])
                dense.append(t["off"][0])
            print(f"{kind:8s} {isa:7s} " + " ".join(f"{r:5.2f}x" for r in ratios) +
                  f"   {statistics.median(dense):.3f}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="sparsities 0/70/90 %% and 5 runs")
    ap.add_argument("--layers", action="store_true", help="per-layer crossover per ISA instead of the models")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per variant (default 15, --quick 5)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    args.runs = args.runs or (5 if args.quick else 15)
    sparsities = QUICK_SPARSITIES if args.quick else SPARSITIES
    from mobconv import runtime

    if not runtime.available():
        print("bench_sparse: libmobrt is not built (make install)")
        return 1
    if args.layers:
        layer_table(args, sparsities)
    else:
        model_table(args, sparsities)
    return 0


if __name__ == "__main__":
    sys.exit(main())
