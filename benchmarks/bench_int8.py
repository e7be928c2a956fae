"""int8 side by side, one run: mobconv fp32/int8 vs onnxruntime fp32/int8 (vs LiteRT int8).

    python benchmarks/bench_int8.py                      # mobilenet_v2, resnet50; 1 and 2 threads
    python benchmarks/bench_int8.py --quick              # mobilenet_v2 only, fewer runs
    python benchmarks/bench_int8.py --models resnet18 --threads 1 --runs 20 --budget 20

Per model (the builders of bench_models.py: model_zoo recipes or onnx's light ResNet-50,
seeded random weights), the same float network is quantized by both tools from the same
calibration set, `--calib-samples` inputs (default 8) of a seeded generator
(np.random.default_rng(1), standard normal, the input's shape):
  - mobconv int8: `quantize.quantize(model, calib)`, every option default (per-channel,
    asymmetric activations), saved as build/bench_models/<name>.int8.mob, which
    `mobconv bench` also times (it prints the per-op breakdown);
  - onnxruntime int8: `quant_pre_process`, then `quantize_static(QuantFormat.QDQ,
    per_channel=True, MinMax)` with int8 weights and int8 activations (s8s8) or uint8
    activations (u8s8, the form onnxruntime's x86 integer kernels prefer), run with
    ORT_ENABLE_ALL so the QDQ pairs fuse into QLinearConv/QLinearMatMul kernels;
  - LiteRT int8 when `ai-edge-litert` is importable and an int8 .tflite of the network is
    given (--tflite-int8 NAME=PATH or build/bench_models/<name>.int8.tflite; for
    mobilenet_v2 and resnet50 built by benchmarks/make_tflite.py when TensorFlow is there:
    Keras's architecture with seeded random weights, so the same network with other
    weights); otherwise the column is skipped with a printed note (LiteRT is not a
    dependency: `pip install -e '.[bench]'`).
Every variant gets the same input (bench_models.fixed_input). Per model and thread count
the variants run in alternating rounds, one alive at a time (idle thread pools spin).
Each variant gets `--runs` timed runs or `--budget` seconds, whichever ends first (at least
one run); a variant whose first (warm-up) run alone exceeds its share of the budget
contributes that single cold run, marked `*`. SQNR is each variant's first output against
onnxruntime fp32 (dB), a sanity check only: on random weights it is low, and a saturated
Softmax output (ResNet-50) makes it large for every variant; LiteRT's (other weights) is
not compared. After the first thread count, one line per model says where mobconv int8's
time goes (profiled, 1 thread: milliseconds per op type and kernel, largest first).
Ratios: mobconv int8 / the fastest onnxruntime int8 variant, mobconv int8 / mobconv fp32
(< 1: the int8 model is faster), then mobconv int8 / every other variant, by median latency
and by median process CPU time per run (at 1 thread the compute time even when other
processes load the machine). Numbers are reported, never asserted. `make bench` runs this
through benchmarks/bench_models.py.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_models as bm  # noqa: E402  (sets the BLAS thread variables, sys.path)
from ort_quant import ort_quantize_static, sqnr_db  # noqa: E402

VARIANTS = ("mobconv fp32", "mobconv int8", "ort fp32", "ort int8 s8s8", "ort int8 u8s8",
            "litert int8")
ORT_INT8 = ("ort int8 s8s8", "ort int8 u8s8")
# The ratio table: mobconv int8 / each of these (column label, variant).
RATIOS = (("/ort-s8s8", "ort int8 s8s8"), ("/ort-u8s8", "ort int8 u8s8"), ("/ort-fp32", "ort fp32"),
          ("/mob-fp32", "mobconv fp32"), ("/litert-i8", "litert int8"))


# ---- quantization ---------------------------------------------------------------------------
def modernized(model):
    """The same network in a form onnxruntime's quantizer takes: quant_pre_process upgrades
    opset < 11 with onnx's version converter, which fails on IR 3 files (onnx's light
    ResNet-50) whose weights are initializers beside graph inputs of the same name. Such a
    model gets IR 7 (weights are initializers only, unused ones dropped) and opset 13."""
    import onnx
    from onnx import version_converter

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if model.ir_version >= 4 and opset >= 11:
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    inits = [i for i in graph.initializer if i.name in used]
    names = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in names]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.input[:]
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 7)
    if opset < 13:
        model = version_converter.convert_version(model, 13)
    onnx.checker.check_model(model)
    return model


def convert(name: str, model, out_dir: Path) -> Path:
    """bench_models.convert (float .mob, default passes) writing into out_dir."""
    saved, bm.OUT = bm.OUT, out_dir
    try:
        return bm.convert(name, model)
    finally:
        bm.OUT = saved


def calibration(in_name: str, shape: tuple, samples: int) -> list:
    rng = np.random.default_rng(1)
    return [{in_name: rng.standard_normal(shape).astype(np.float32)} for _ in range(samples)]


def mobconv_int8(mob: Path, calib: list, out: Path) -> float:
    """Quantize the float .mob with every default option; write `out`; seconds taken."""
    import mobconv
    from mobconv import quantize

    start = time.perf_counter()
    q = quantize.quantize(mobconv.load(str(mob)), calib, progress=False)
    q.save(str(out))
    return time.perf_counter() - start


def ort_int8(float_onnx: Path, calib: list, activation: str, out: Path) -> float:
    """onnxruntime's static QDQ quantization, per channel, int8 weights, `activation`
    ('QInt8' or 'QUInt8') activations; write `out`; seconds taken."""
    return ort_quantize_static(float_onnx, float_onnx.with_suffix(".pre.onnx"), out, calib,
                               activation=activation)


# ---- runners: (load_ms, run -> first output as float ndarray, object to keep alive) ------------
def first_output(result) -> np.ndarray:
    if isinstance(result, dict):
        result = list(result.values())
    return np.asarray(result[0], dtype=np.float32)


def mobconv_runner(path: Path, threads: int, in_name: str, x):
    load, run, obj = bm.mobconv_runner(path, threads, in_name, x)
    return load, (lambda: first_output(run())), obj


def ort_runner(model, threads: int, in_name: str, x):
    load, run, obj = bm.ort_runner(model, threads, in_name, x)
    return load, (lambda: first_output(run())), obj


def litert_int8_runner(tflite: Path, threads: int, x):
    """LiteRT on a full-integer .tflite: an int8/uint8 input is quantized with the input's
    own parameters and the output dequantized with its own."""
    from ai_edge_litert.interpreter import Interpreter
    t0 = time.perf_counter()
    it = Interpreter(model_path=str(tflite), num_threads=threads)
    it.allocate_tensors()
    load = (time.perf_counter() - t0) * 1e3
    det, odet = it.get_input_details()[0], it.get_output_details()[0]
    xin = x if tuple(det["shape"]) == x.shape else np.transpose(x, (0, 2, 3, 1)).copy()  # NHWC
    if np.dtype(det["dtype"]).kind in "iu":
        scale, zp = det["quantization"]
        info = np.iinfo(det["dtype"])
        xin = np.clip(np.round(xin / scale) + zp, info.min, info.max).astype(det["dtype"])

    def run():
        it.set_tensor(det["index"], xin)
        it.invoke()
        y = it.get_tensor(odet["index"])
        if np.dtype(odet["dtype"]).kind in "iu":
            scale, zp = odet["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        return np.asarray(y, dtype=np.float32)
    return load, run, it


# ---- measurement ------------------------------------------------------------------------------
class Cell:
    """Timings of one variant at one thread count."""

    def __init__(self):
        self.times, self.cpu, self.cold, self.output, self.load_ms = [], [], False, None, None

    def median(self) -> float:
        return float(np.median(self.times))

    def cpu_median(self) -> float:
        """Median process CPU time per run (ms): at 1 thread the compute time even when other
        processes compete for the cores (wall-clock latency then is not)."""
        return float(np.median(self.cpu))


def measure(cell: Cell, make, warmup: int, runs: int, budget: float) -> None:
    load, run, obj = make()
    if cell.load_ms is None:
        cell.load_ms = load
    c0, t0 = time.process_time(), time.perf_counter()
    out = run()
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    if cell.output is None:
        cell.output = out
    if first > budget:
        # Too slow to repeat within the budget: the warm-up run is the one sample.
        cell.times.append(first * 1e3)
        cell.cpu.append(first_cpu * 1e3)
        cell.cold = True
    else:
        for _ in range(warmup - 1):
            run()
        deadline = time.perf_counter() + budget
        done = 0
        while done < runs and (done == 0 or time.perf_counter() < deadline):
            c0, t0 = time.process_time(), time.perf_counter()
            run()
            cell.times.append((time.perf_counter() - t0) * 1e3)
            cell.cpu.append((time.process_time() - c0) * 1e3)
            done += 1
    del run, obj
    gc.collect()


def kernel_breakdown(name: str, mob: Path, in_name: str, x, runs: int = 3) -> str:
    """Where mobconv int8's time goes (1 thread, profiled): milliseconds per kernel, largest
    first, as one line: which ops still run a reference kernel and what they cost."""
    from mobconv.runtime import Interpreter
    totals, counts = {}, {}
    with Interpreter(str(mob), threads=1, profile=True) as it:
        feeds = {it.inputs[0]["name"]: x}
        it.run(feeds)
        for _ in range(runs):
            it.run(feeds)
            for (_, _, ms), (_, op, kernel) in zip(it.profile(), it.kernels()):
                key = f"{op}:{kernel}"
                totals[key] = totals.get(key, 0.0) + ms / runs
                counts[key] = counts.get(key, 0) + 1
    total = sum(totals.values()) or 1.0
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:8]
    parts = [f"{k} x{counts[k] // runs} {v:.2f} ms ({100 * v / total:.0f}%)" for k, v in top]
    return f"{name:14s} mobconv int8 kernels (1 thread, {total:.1f} ms profiled): " + ", ".join(parts)


# ---- main -------------------------------------------------------------------------------------
def fmt_ms(cell) -> str:
    if cell is None:
        return "-"
    ms = cell.median()
    text = f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.3g}"
    return text + ("*" if cell.cold else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=None,
                    help="mobilenet_v2, resnet18, squeezenet, resnet50 or .onnx paths "
                         "(default: mobilenet_v2 resnet50; --quick: mobilenet_v2)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, default=None, help="timed runs per variant (default 20, --quick 6)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of timed runs per variant and thread count (default 4, --quick 3)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds over the variants")
    ap.add_argument("--calib-samples", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="mobilenet_v2 only, fewer runs")
    ap.add_argument("--tflite-int8", action="append", default=[],
                    help="NAME=PATH of an int8 .tflite of model NAME (LiteRT column)")
    ap.add_argument("--out", default=str(bm.OUT), help="directory of the generated models")
    args = ap.parse_args(argv)
    models = args.models or (["mobilenet_v2"] if args.quick else ["mobilenet_v2", "resnet50"])
    runs = args.runs or (6 if args.quick else 20)
    budget = args.budget if args.budget is not None else (3.0 if args.quick else 4.0)
    rounds = max(1, args.rounds)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tflites = dict(t.split("=", 1) for t in args.tflite_int8)
    litert_msg = bm.litert_available()
    if litert_msg:
        print(litert_msg.replace("LiteRT skipped", "LiteRT int8 column skipped"))
    elif not tflites:
        note = bm.ensure_tflite(models, out_dir)  # Keras architectures, when TensorFlow is there
        if note:
            print(note)

    import onnx
    rows = []
    for spec in models:
        name, model = bm.build_onnx(spec)
        model = modernized(model)  # every variant runs this same network
        mob = convert(name, model, out_dir)
        in_name, x = bm.fixed_input(model)
        calib = calibration(in_name, x.shape, args.calib_samples)
        float_onnx = out_dir / f"{name}.onnx"
        onnx.save(model, str(float_onnx))
        mob_int8 = out_dir / f"{name}.int8.mob"
        secs = mobconv_int8(mob, calib, mob_int8)
        print(f"{name}: mobconv quantize {secs:.1f} s ({args.calib_samples} samples) -> {mob_int8}",
              flush=True)
        ort_models = {}
        for variant, act in (("ort int8 s8s8", "QInt8"), ("ort int8 u8s8", "QUInt8")):
            path = out_dir / f"{name}.ort_{variant.split()[-1]}.onnx"
            secs = ort_int8(float_onnx, calib, act, path)
            ort_models[variant] = onnx.load(str(path))
            print(f"{name}: onnxruntime quantize_static {variant.split()[-1]} {secs:.1f} s -> {path}",
                  flush=True)
        tfl = Path(tflites.get(name, out_dir / f"{name}.int8.tflite"))
        use_litert = not litert_msg and tfl.exists()
        if not litert_msg and not use_litert:
            print(f"{name}: LiteRT int8 skipped, no int8 .tflite at {tfl}")
        for th in args.threads:
            factories = {
                "mobconv fp32": lambda: mobconv_runner(mob, th, in_name, x),
                "mobconv int8": lambda: mobconv_runner(mob_int8, th, in_name, x),
                "ort fp32": lambda: ort_runner(model, th, in_name, x),
            }
            for variant, qmodel in ort_models.items():
                factories[variant] = (lambda m=qmodel: ort_runner(m, th, in_name, x))
            if use_litert:
                factories["litert int8"] = lambda: litert_int8_runner(tfl, th, x)
            cells = {k: Cell() for k in factories}
            for r in range(rounds):
                for k, make in factories.items():
                    if r > 0 and cells[k].cold:
                        continue  # one cold run is all a too-slow variant gets
                    measure(cells[k], make, args.warmup, max(1, runs // rounds), budget / rounds)
            ref = cells["ort fp32"].output
            for k, c in cells.items():
                # LiteRT's network has other (random) weights: its output is not comparable.
                sq = "other weights" if k.startswith("litert") else f"{sqnr_db(ref, c.output):6.1f} dB"
                print(f"{name:14s} threads={th} {k:14s} median {fmt_ms(c):>9s} ms (cpu "
                      f"{c.cpu_median():8.2f} ms) over {len(c.times):2d} runs, load {c.load_ms:7.1f} ms, "
                      f"SQNR vs ort fp32 {sq}", flush=True)
            if th == args.threads[0]:
                print(kernel_breakdown(name, mob_int8, in_name, x), flush=True)
            rows.append((name, th, cells))
            del factories
            gc.collect()

    print()
    print("median latency, ms (* = one cold run: too slow to repeat within --budget)")
    head = (f"{'model':14s} {'thr':>3s} " + " ".join(f"{v:>13s}" for v in VARIANTS)
            + f" {'int8/ort-int8':>13s} {'int8/fp32':>9s}")
    print(head)
    for name, th, cells in rows:
        line = f"{name:14s} {th:3d} " + " ".join(f"{fmt_ms(cells.get(v)):>13s}" for v in VARIANTS)
        ort_best = min((cells[v].median() for v in ORT_INT8 if v in cells), default=None)
        m8, m32 = cells["mobconv int8"].median(), cells["mobconv fp32"].median()
        line += f" {m8 / ort_best:13.2f}" if ort_best else f" {'-':>13s}"
        line += f" {m8 / m32:9.2f}"
        print(line)
    print()
    print("int8/ort-int8 = mobconv int8 / the fastest onnxruntime int8 variant (target <= 1.0); "
          "int8/fp32 = mobconv int8 / mobconv fp32 (target <= 0.55, issue 9)")
    print()
    print("ratios: mobconv int8 median / each variant's median (< 1: mobconv int8 faster; "
          "- : not measured)")
    print(f"{'model':14s} {'thr':>3s} " + " ".join(f"{r:>11s}" for r, _ in RATIOS))
    for name, th, cells in rows:
        m8 = cells["mobconv int8"].median()
        print(f"{name:14s} {th:3d} " + " ".join(
            f"{m8 / cells[v].median():11.2f}" if v in cells else f"{'-':>11s}" for _, v in RATIOS))
    print()
    print("the same ratios by median process CPU time per run (1 thread: the compute time, robust "
          "to other load on the machine)")
    print(f"{'model':14s} {'thr':>3s} " + " ".join(f"{r:>11s}" for r, _ in RATIOS))
    for name, th, cells in rows:
        m8 = cells["mobconv int8"].cpu_median()
        print(f"{name:14s} {th:3d} " + " ".join(
            f"{m8 / cells[v].cpu_median():11.2f}" if v in cells and cells[v].cpu_median() > 0
            else f"{'-':>11s}" for _, v in RATIOS))
    if any("litert int8" in cells for _, _, cells in rows):
        print("litert int8: Keras's architecture with seeded random weights (benchmarks/make_tflite.py), "
              "not the same weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
