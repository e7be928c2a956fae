"""Same model, three runtimes, one run: mobconv's C++ runtime vs onnxruntime (vs LiteRT),
fp32 and int8.

    python benchmarks/bench_models.py                       # fp32: mobilenet_v2, resnet50, squeezenet;
                                                            # int8: mobilenet_v2, resnet50
    python benchmarks/bench_models.py --models mobilenet_v2 --threads 1 2 --runs 50
    python benchmarks/bench_models.py --models path/to/model.onnx --no-int8
    python benchmarks/bench_models.py --smoke               # a tiny net, seconds: the harness works

Per model and thread count, the runtimes run in alternating blocks (mobconv, onnxruntime,
LiteRT, repeated ROUNDS times) so machine-load drift hits all of them alike; only one
runtime is alive at a time, because idle thread pools keep spinning while their session
lives (onnxruntime's for long) and would steal the cores being measured.
Prints median and p90 latency and the ratio mobconv / onnxruntime (< 1: mobconv faster),
model load time (mobconv: mmap + verify + plan + pre-pack; onnxruntime: session creation),
and the runtime library size (host, and arm64 stripped when the cross compiler exists).

Models: `mobilenet_v2` (model_zoo recipe, width 1.0, 224x224), `resnet18` (zoo, width 1.0),
`squeezenet` (zoo), `resnet50` (onnx's light ResNet-50 with seeded random weights), `tiny`
(a seeded Conv-Relu-pool-MatMul net, for --smoke), or a path to an .onnx file.

int8 (after the fp32 table; --no-int8 skips it): benchmarks/bench_int8.py on --int8-models
(default mobilenet_v2 and resnet50, or the --models given), at the same thread counts: per
model, in one run with the same input, mobconv fp32, mobconv int8 (mobconv's quantizer,
default options), onnxruntime fp32, onnxruntime int8 from `quantize_static` QDQ s8s8 and u8s8
(ORT_ENABLE_ALL, so the QDQ pairs fuse into integer kernels) and LiteRT int8; printed as
latencies and as ratios mobconv int8 / each of them.

LiteRT (`pip install ai-edge-litert`) runs when a .tflite of the network sits next to the
generated model (build/bench_models/<name>.tflite, <name>.int8.tflite) or is given with
--tflite NAME=PATH (--tflite-int8 for the int8 one). For mobilenet_v2 and resnet50 missing
.tflite files are built by benchmarks/make_tflite.py when TensorFlow is importable here or
by $MOBCONV_TF_PYTHON (`pip install tensorflow-cpu`, or the optional extra
`pip install -e '.[bench]'`): Keras's MobileNetV2 / ResNet50 with weights=None, so LiteRT
runs the SAME ARCHITECTURE WITH DIFFERENT (seeded random) WEIGHTS. Otherwise one line says
how to install it and LiteRT is skipped. Numbers are reported, never asserted.
"""
from __future__ import annotations

import argparse
import gc
import os

# numpy's OpenBLAS threads spin after each call and would steal the cores being measured.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench_models"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


# ---- models -------------------------------------------------------------------------------
def build_onnx(name: str):
    import onnx
    if name.endswith(".onnx"):
        return Path(name).stem, onnx.load(name)
    if name == "mobilenet_v2":
        from model_zoo.onnx.mobilenet_v2 import build_mobilenet_v2
        return name, build_mobilenet_v2(width=1.0, batch=1)
    if name == "resnet18":
        from model_zoo.onnx.resnet18 import build_resnet18
        return name, build_resnet18(width=1.0, batch=1)
    if name == "squeezenet":
        from model_zoo.onnx.squeezenet import build_squeezenet
        return name, build_squeezenet(batch=1)
    if name == "tiny":
        return name, tiny_onnx()
    if name == "resnet50":
        from real_onnx_models import light_model_paths, with_random_weights
        path = [p for p in light_model_paths() if "resnet50" in p]
        if not path:
            raise SystemExit("resnet50: onnx's light model data is not installed")
        return name, with_random_weights(onnx.load(path[0]))
    raise SystemExit(f"unknown model {name!r} (mobilenet_v2, resnet18, squeezenet, resnet50, tiny "
                     "or an .onnx path)")


def tiny_onnx():
    """A seeded Conv -> Relu -> GlobalAveragePool -> Flatten -> MatMul net (1x3x32x32): the
    --smoke model, big enough for every runtime and both quantizers, run in milliseconds."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32), "w1"),
             numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b1"),
             numpy_helper.from_array((rng.standard_normal((16, 10)) * 0.3).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def convert(name: str, model) -> Path:
    from mobconv.frontends.onnx import load_onnx
    from mobconv.passes import optimize
    from mobconv.formats.writer import write_model
    OUT.mkdir(parents=True, exist_ok=True)
    graph = load_onnx(model)
    optimize(graph)
    path = OUT / f"{name}.mob"
    write_model(graph, str(path))
    return path


def fixed_input(model) -> tuple:
    inp = model.graph.input[0]
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    return inp.name, x


# ---- runners: each returns (load_ms, run callable) ------------------------------------------
def mobconv_runner(path: Path, threads: int, name: str, x):
    from mobconv.runtime import Interpreter
    t0 = time.perf_counter()
    it = Interpreter(str(path), threads=threads, profile=False)
    load = (time.perf_counter() - t0) * 1e3
    feeds = {it.inputs[0]["name"]: x}
    return load, (lambda: it.run(feeds)), it


ROUNDS = 3  # each runtime measured in this many alternating blocks of runs/ROUNDS


def ort_runner(model, threads: int, name: str, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    # The default, stated: full optimization fuses an int8 model's QDQ pairs into QLinear kernels.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    data = model.SerializeToString()
    t0 = time.perf_counter()
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    load = (time.perf_counter() - t0) * 1e3
    feeds = {name: x}
    return load, (lambda: sess.run(None, feeds)), sess


def litert_runner(tflite: Path, threads: int, x):
    from ai_edge_litert.interpreter import Interpreter
    t0 = time.perf_counter()
    it = Interpreter(model_path=str(tflite), num_threads=threads)
    it.allocate_tensors()
    load = (time.perf_counter() - t0) * 1e3
    det = it.get_input_details()[0]
    xin = x if tuple(det["shape"]) == x.shape else np.transpose(x, (0, 2, 3, 1)).copy()  # NHWC

    def run():
        it.set_tensor(det["index"], xin)
        it.invoke()
    return load, run, it


def litert_available() -> str:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
        return ""
    except Exception as e:  # ImportError or a broken install
        return f"LiteRT skipped: ai-edge-litert not importable ({type(e).__name__}); pip install ai-edge-litert"


TFLITE_ARCHS = ("mobilenet_v2", "resnet50")  # what benchmarks/make_tflite.py can build in Keras
TF_HINT = ("pip install tensorflow-cpu (or pip install -e '.[bench]'), or set MOBCONV_TF_PYTHON "
           "to the python of another environment that has it")


def tf_python() -> str:
    """A Python that can import tensorflow: this one, else $MOBCONV_TF_PYTHON; '' if none."""
    import importlib.util
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    return os.environ.get("MOBCONV_TF_PYTHON", "")


def ensure_tflite(names, out: Path) -> str:
    """Builds the missing <name>.tflite / <name>.int8.tflite of `names` (Keras, same
    architecture, seeded random weights) with benchmarks/make_tflite.py. Returns a one-line
    note when some cannot be built ('' otherwise)."""
    todo = [n for n in names if n in TFLITE_ARCHS and not
            ((out / f"{n}.tflite").exists() and (out / f"{n}.int8.tflite").exists())]
    if not todo:
        return ""
    py = tf_python()
    if not py:
        return (f"LiteRT: no .tflite of {', '.join(todo)} in {out} and no TensorFlow to build them: "
                + TF_HINT)
    proc = subprocess.run([py, str(Path(__file__).with_name("make_tflite.py")), "--out", str(out), *todo],
                          capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        print(line)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["?"]
        return f"LiteRT: building the .tflite of {', '.join(todo)} failed: {tail[0]}"
    return ""


# ---- library size -----------------------------------------------------------------------------
def library_sizes() -> list:
    lines = []
    try:
        from mobconv import runtime
        host = Path(runtime.library_path())
        lines.append(f"runtime library (host, as built): {host.stat().st_size / 1024:.0f} KiB  {host}")
    except Exception as e:
        lines.append(f"runtime library (host): unavailable ({e})")
    cxx = shutil.which("aarch64-linux-gnu-g++")
    strip = shutil.which("aarch64-linux-gnu-strip")
    if not cxx or not strip:
        lines.append("runtime library (arm64): skipped, needs g++-aarch64-linux-gnu")
        return lines
    build = ROOT / "build" / "bench-arm64-runtime"
    try:
        if not (build / "CMakeCache.txt").exists():
            subprocess.run(["cmake", "-S", str(ROOT / "runtime"), "-B", str(build), "-DCMAKE_BUILD_TYPE=MinSizeRel",
                            "-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
                            f"-DCMAKE_CXX_COMPILER={cxx}"] + (["-G", "Ninja"] if shutil.which("ninja") else []),
                           check=True, capture_output=True, text=True)
        subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)], check=True,
                       capture_output=True, text=True)
        libs = sorted(p for p in build.glob("libmobrt.so*") if p.is_file() and not p.is_symlink())
        if not libs:
            lines.append("runtime library (arm64): build produced no libmobrt.so")
            return lines
        stripped = build / "libmobrt.stripped.so"
        shutil.copy(libs[0], stripped)
        subprocess.run([strip, "--strip-unneeded", str(stripped)], check=True)
        size = stripped.stat().st_size
        lines.append(f"runtime library (arm64, MinSizeRel, stripped): {size / 1024:.0f} KiB "
                     f"({size / 1e6:.2f} MB; target < 1.5 MB)")
    except subprocess.CalledProcessError as e:
        lines.append(f"runtime library (arm64): build failed: {(e.stderr or '')[-500:]}")
    return lines


# ---- main ---------------------------------------------------------------------------------------
def stats(ts: list) -> tuple:
    a = np.asarray(ts)
    return float(np.median(a)), float(np.percentile(a, 90))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50", "squeezenet"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tflite", action="append", default=[], help="NAME=PATH of a .tflite of model NAME")
    ap.add_argument("--no-size", action="store_true", help="skip the arm64 library size build")
    ap.add_argument("--details", action="store_true", help="also print mobconv.bench's per-op report")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 comparison (bench_int8.py)")
    ap.add_argument("--int8-models", nargs="+", default=None,
                    help="models of the int8 comparison (default: --models if given, else mobilenet_v2 resnet50)")
    ap.add_argument("--int8-runs", type=int, default=None, help="timed runs per int8 variant (bench_int8's --runs)")
    ap.add_argument("--int8-budget", type=float, default=None,
                    help="seconds per int8 variant and thread count (bench_int8's --budget)")
    ap.add_argument("--tflite-int8", action="append", default=[], help="NAME=PATH of an int8 .tflite of model NAME")
    ap.add_argument("--smoke", action="store_true",
                    help="the tiny net only, 2 runs, no library size: checks the harness, measures nothing")
    args = ap.parse_args(argv)
    user_models = args.models != ap.get_default("models")
    if args.smoke:
        args.models = ["tiny"] if not user_models else args.models
        args.runs, args.warmup, args.no_size = min(args.runs, 3), 1, True
        args.int8_runs = args.int8_runs or 2
        args.int8_budget = args.int8_budget if args.int8_budget is not None else 1.0
    int8_models = [] if args.no_int8 else (
        args.int8_models or (args.models if user_models or args.smoke else ["mobilenet_v2", "resnet50"]))
    tflites = dict(t.split("=", 1) for t in args.tflite)
    litert_msg = litert_available()
    if litert_msg:
        print(litert_msg)
    else:
        note = ensure_tflite(sorted(set(args.models) | set(int8_models)), OUT)
        if note:
            print(note)
        if any((OUT / f"{n}.tflite").exists() for n in TFLITE_ARCHS if n in args.models):
            print("LiteRT: the .tflite models are Keras's architectures with seeded random weights "
                  "(benchmarks/make_tflite.py): same network, different weights")
    rows = []
    for spec in args.models:
        name, model = build_onnx(spec)
        mob = convert(name, model)
        in_name, x = fixed_input(model)
        tfl = Path(tflites.get(name, OUT / f"{name}.tflite"))
        use_litert = not litert_msg and tfl.exists()
        if not litert_msg and not use_litert:
            print(f"{name}: LiteRT skipped, no .tflite at {tfl}")
        for th in args.threads:
            factories = {
                "mobconv": lambda: mobconv_runner(mob, th, in_name, x),
                "onnxruntime": lambda: ort_runner(model, th, in_name, x),
            }
            if use_litert:
                factories["litert"] = lambda: litert_runner(tfl, th, x)
            times = {k: [] for k in factories}
            cpu = {k: [] for k in factories}
            loads = {}
            per_round = max(1, args.runs // ROUNDS)
            for _ in range(ROUNDS):
                for k, make in factories.items():
                    # One runtime alive at a time: thread pools keep spinning while their
                    # session lives (onnxruntime's for long), stealing the cores being
                    # measured at 2 threads. Rounds alternate runtimes to spread load drift.
                    load, run, obj = make()
                    loads.setdefault(k, load)
                    for _ in range(args.warmup):
                        run()
                    for _ in range(per_round):
                        c0 = time.process_time()
                        t0 = time.perf_counter()
                        run()
                        times[k].append((time.perf_counter() - t0) * 1e3)
                        cpu[k].append((time.process_time() - c0) * 1e3)
                    del run, obj
                    gc.collect()
            res = {k: stats(v) + (loads[k], float(np.median(cpu[k]))) for k, v in times.items()}
            rows.append((name, th, res))
            base = res["onnxruntime"][0]
            line = f"{name:14s} threads={th}"
            for k, (med, p90, load, cpu_ms) in res.items():
                line += f" | {k} median {med:7.2f} p90 {p90:7.2f} cpu {cpu_ms:7.2f} ms load {load:6.1f} ms"
            line += f" | ratio mobconv/ort {res['mobconv'][0] / base:.2f}"
            if "litert" in res:
                line += f", mobconv/litert {res['mobconv'][0] / res['litert'][0]:.2f}"
            print(line, flush=True)
        if args.details:  # mobconv's own per-model report (what `mobconv bench` prints)
            import dataclasses
            from mobconv.bench import bench
            result = bench(str(mob), threads=args.threads[0], runs=args.runs)
            fields = dataclasses.asdict(result) if dataclasses.is_dataclass(result) else dict(result)
            for key, value in fields.items():
                print(f"  {key}: {value}")
    print()
    # cpu ratio: median process CPU time per run; at 1 thread it is the compute time even
    # when other processes compete for the cores (wall-clock latency then is not).
    print(f"{'model':14s} {'thr':>3s} {'mobconv ms':>11s} {'ort ms':>8s} {'ratio':>6s} {'p90 ratio':>9s} "
          f"{'cpu ratio':>9s} {'mob load':>9s} {'ort load':>9s}")
    for name, th, res in rows:
        m, o = res["mobconv"], res["onnxruntime"]
        print(f"{name:14s} {th:3d} {m[0]:11.2f} {o[0]:8.2f} {m[0] / o[0]:6.2f} {m[1] / o[1]:9.2f} "
              f"{m[3] / o[3]:9.2f} {m[2]:8.1f}ms {o[2]:8.1f}ms")
        if "litert" in res:
            li = res["litert"]
            print(f"{'':14s} {'':3s} litert {li[0]:.2f} ms, mobconv/litert {m[0] / li[0]:.2f}")
    if int8_models:
        # The int8 comparison: every variant of each model in one run, the same input.
        print()
        print(f"int8: mobconv int8 vs onnxruntime int8 (s8s8, u8s8) vs fp32 vs LiteRT int8 "
              f"on {', '.join(int8_models)}", flush=True)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_int8
        int8_argv = ["--models", *int8_models, "--threads", *map(str, args.threads), "--out", str(OUT)]
        if args.int8_runs:
            int8_argv += ["--runs", str(args.int8_runs)]
        if args.int8_budget is not None:
            int8_argv += ["--budget", str(args.int8_budget)]
        for t in args.tflite_int8:
            int8_argv += ["--tflite-int8", t]
        bench_int8.main(int8_argv)
    if not args.no_size:
        print()
        for line in library_sizes():
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
