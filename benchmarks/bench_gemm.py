"""GEMM micro-benchmark: mobconv's packed SGEMM vs the machine's single-core FMA peak, and
its int8 GEMM vs the single-core VNNI peak.

    python benchmarks/bench_gemm.py                 # 1024^3, 1 thread; then int8 256..1024
    python benchmarks/bench_gemm.py 512 3136 576 --threads 2
    python benchmarks/bench_gemm.py --only int8 --int8-sizes 256 512 --isa avx512_vnni avx2

Builds benchmarks/bench_gemm.cpp with the kernels (runtime/tests/kernel_tests CMake
project, build dir build/kernel_tests-native, shared with the kernel tests) and runs it:
per instruction set it prints GFLOP/s of `sgemm` (packs A, gathers B per block: what a
MatMul pays) and of the packed-only core (what Conv/FC with pre-packed weights pay),
and both as a fraction of the FMA peak measured by a register-only FMA loop of the
same vector width. numpy's matmul (OpenBLAS here) is printed alongside for reference.

int8: the peak is benchmarks/bench_gemm_vnni_peak.cpp (built with plain g++ into
build/bench-gemm-peak): register-only loops of 24 independent `vpdpbusd` chains, zmm
(64 u8*s8 MACs each) and EVEX ymm (32: the width of the 256-bit VNNI kernels), and the
exact AVX2 path's vpmaddwd+vpaddd (16 int16 MACs), the best of 400 runs of ~0.2 ms (a
loaded machine interrupts longer loops), in GOPS (1 MAC = 2 ops). The GEMM is timed
through the runtime as an int8 model: one 1x1 int8 Conv (int8 activations, per-channel
int8 weights, int32 bias, int8 output) with M = output channels, K = input channels,
N = output pixels (M = N = K = each --int8-sizes value), run by mobconv.runtime.Interpreter
at --threads under each --isa cap (default: the best this CPU has); each line names the
kernel the runtime picked (Interpreter.kernels()), so the figure follows whatever int8
kernel is registered. Timing includes the per-run work a model pays
(packing the activations, requantizing the int32 tile to int8, the binding's copies). Then
the same for single int8 convolutions of the shapes ResNet-50 and MobileNetV2 time (3x3 via
im2col, 1x1, depthwise 3x3; --no-model-convs skips them), GOPS counting only the real MACs.
Numbers are reported, never asserted.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "kernel_tests-native"


def build() -> Path:
    if not (BUILD / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(ROOT / "runtime" / "tests" / "kernel_tests"), "-B", str(BUILD),
                        "-DCMAKE_BUILD_TYPE=Release"] + (["-G", "Ninja"] if shutil.which("ninja") else []),
                       check=True, capture_output=True, text=True)
    subprocess.run(["cmake", "--build", str(BUILD), "--target", "bench_gemm", "-j", str(os.cpu_count() or 2)],
                   check=True, capture_output=True, text=True)
    return BUILD / "bench_gemm"


def numpy_gflops(m: int, n: int, k: int, reps: int = 10) -> float:
    import numpy as np
    a = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)
    a @ b
    best = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * n * k / best / 1e9


# ---- int8 ------------------------------------------------------------------------------------
PEAK_SRC = ROOT / "benchmarks" / "bench_gemm_vnni_peak.cpp"
PEAK_BUILD = ROOT / "build" / "bench-gemm-peak"


def int8_peaks() -> dict:
    """{'vpdpbusd_zmm': GOPS, 'vpdpbusd_ymm': GOPS, 'vpmaddwd_ymm': GOPS} measured on one core
    (only the instructions this CPU runs; empty off x86 or without a C++ compiler)."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if not cxx:
        return {}
    PEAK_BUILD.mkdir(parents=True, exist_ok=True)
    exe = PEAK_BUILD / "bench_gemm_vnni_peak"
    if not exe.exists() or exe.stat().st_mtime < PEAK_SRC.stat().st_mtime:
        subprocess.run([cxx, "-O2", "-std=c++17", "-o", str(exe), str(PEAK_SRC)], check=True,
                       capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {f[0]: float(f[1]) for f in (line.split() for line in out.splitlines()) if len(f) >= 2}


def _factor(n: int) -> tuple:
    """(h, w) with h * w = n, as square as possible (the 1x1 Conv's output pixels)."""
    h = int(n ** 0.5)
    while n % h:
        h -= 1
    return h, n // h


def int8_conv(cin: int, cout: int, h: int, w: int, kernel: int = 1, stride: int = 1, group: int = 1,
              seed: int = 0):
    """(graph, feeds) of one int8 Conv (int8 activations, per-channel int8 weights, int32
    bias, int8 output), padded 'same' for odd kernels."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from mobconv.ir import Graph, QuantParams, infer_shapes

    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, cin, h, w)).astype(np.int8)
    wt = rng.integers(-127, 128, (cout, cin // group, kernel, kernel)).astype(np.int8)
    bias = rng.integers(-5000, 5000, cout).astype(np.int32)
    g = Graph("int8_conv")
    g.add_input("x", "int8", x.shape)
    g.values["x"].quant = QuantParams([0.02], [3])
    g.add_constant("w", wt)
    g.values["w"].quant = QuantParams((0.01 * (1 + rng.random(cout))).astype(np.float32).tolist(), [0] * cout, 0)
    g.add_constant("b", bias)
    pad = kernel // 2
    g.add_node("Conv", ["x", "w", "b"], ["y"], {"pads": [pad] * 4, "strides": [stride] * 2, "group": group},
               name="conv")
    g.outputs = ["y"]
    infer_shapes(g)
    g.values["y"].dtype = "int8"
    k = cin // group * kernel * kernel
    g.values["y"].quant = QuantParams([float(0.02 * 0.015 * 73 * 73 * k ** 0.5 / 40)], [-5])
    return g, {"x": x}


def int8_conv1x1(m: int, n: int, k: int, seed: int = 0):
    """(graph, feeds) of one int8 1x1 Conv: C[M, N] = W[M, K] x X[K, N], requantized to int8."""
    h, w = _factor(n)
    return int8_conv(k, m, h, w, seed=seed)


# Convolutions of the benchmark models (ResNet-50, MobileNetV2): (label, cin, cout, h=w, kernel,
# stride, group) -- how the GEMM path does on the shapes the models time.
MODEL_CONVS = [
    ("resnet50 3x3 64->64 @56", 64, 64, 56, 3, 1, 1),
    ("resnet50 3x3 256->256 @14", 256, 256, 14, 3, 1, 1),
    ("resnet50 1x1 256->64 @56", 256, 64, 56, 1, 1, 1),
    ("resnet50 1x1 1024->256 @14", 1024, 256, 14, 1, 1, 1),
    ("mobilenet_v2 1x1 64->384 @14", 64, 384, 14, 1, 1, 1),
    ("mobilenet_v2 dw3x3 144 @56", 144, 144, 56, 3, 1, 144),
    ("mobilenet_v2 dw3x3 960 @7", 960, 960, 7, 3, 1, 960),
]


def int8_time(g, feeds, threads: int, isa, reps: int, budget: float = 3.0) -> tuple:
    """(best seconds per run, kernel name) of a one-node int8 graph through the runtime."""
    from mobconv import runtime
    from mobconv.formats.writer import to_bytes

    data = to_bytes(g)
    with runtime.Interpreter(data, threads=threads, isa=isa, profile=True) as it:
        it.run(feeds)
        kernel = ",".join(kn for _, _, kn in it.kernels())
    with runtime.Interpreter(data, threads=threads, isa=isa, profile=False) as it:
        t0 = time.perf_counter()
        it.run(feeds)  # warm-up (and a cold-run estimate for slow reference kernels)
        best, deadline = time.perf_counter() - t0, time.perf_counter() + budget
        for _ in range(reps):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            it.run(feeds)
            best = min(best, time.perf_counter() - t0)
    return best, kernel


def int8_gemm(m: int, n: int, k: int, threads: int, isa, reps: int, budget: float = 3.0) -> tuple:
    """(best seconds per run, kernel name) of the int8 1x1 Conv through the runtime."""
    g, feeds = int8_conv1x1(m, n, k)
    return int8_time(g, feeds, threads, isa, reps, budget)


def int8_report(sizes, threads: int, isas, reps: int, model_convs: bool = True) -> None:
    from mobconv import runtime

    if not runtime.available():
        print("int8 GEMM: skipped, the runtime library is not built (make install)")
        return
    try:
        peaks = int8_peaks()
    except subprocess.CalledProcessError as e:
        print(f"int8 peak: build or run failed: {(e.stderr or '')[-300:]}")
        peaks = {}
    for name, gops in peaks.items():
        print(f"1-core int8 peak {name:13s} {gops:7.1f} GOPS ({gops / 2:.1f} GMAC/s)")
    peak = peaks.get("vpdpbusd_zmm") or peaks.get("vpmaddwd_ymm")
    label = "VNNI zmm" if "vpdpbusd_zmm" in peaks else "AVX2 vpmaddwd"
    label_peak = "1-core " + label
    supported = runtime.supported_isas()
    for isa in isas or [None]:
        if isa is not None and isa not in supported:
            print(f"int8 GEMM isa={isa}: skipped, this CPU does not run it (supported: {', '.join(supported)})")
            continue
        for size in sizes:
            secs, kernel = int8_gemm(size, size, size, threads, isa, reps)
            gops = 2.0 * size ** 3 / secs / 1e9
            line = (f"int8 GEMM 1x1 Conv {size}x{size}x{size} isa={isa or 'best'} threads={threads} "
                    f"{gops:7.1f} GOPS ({secs * 1e3:.2f} ms) kernel {kernel}")
            if peak:
                line += f"  -> {100 * gops / (peak * threads):.0f}% of the 1-core {label} peak"
                if "vpdpbusd_ymm" in peaks:  # the 256-bit VNNI kernels' own ceiling
                    line += f", {100 * gops / (peaks['vpdpbusd_ymm'] * threads):.0f}% of the ymm one"
                if "vpmaddwd_ymm" in peaks and "avx2" in kernel:  # the exact non-VNNI path's
                    line += f", {100 * gops / (peaks['vpmaddwd_ymm'] * threads):.0f}% of vpmaddwd's"
            print(line, flush=True)
        for label, cin, cout, hw, kern, stride, group in (MODEL_CONVS if model_convs else []):
            g, feeds = int8_conv(cin, cout, hw, hw, kern, stride, group)
            secs, kernel = int8_time(g, feeds, threads, isa, reps)
            out_hw = (hw + 2 * (kern // 2) - kern) // stride + 1
            macs = cout * out_hw * out_hw * (cin // group) * kern * kern
            gops = 2.0 * macs / secs / 1e9
            line = (f"int8 Conv {label:30s} isa={isa or 'best'} threads={threads} {gops:7.1f} GOPS "
                    f"({secs * 1e3:.3f} ms) kernel {kernel}")
            if peak:
                line += f"  -> {100 * gops / (peak * threads):.0f}% of the {label_peak} peak"
            print(line, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dims", nargs="*", type=int, help="M N K (default 1024 1024 1024)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--only", choices=["fp32", "int8"], help="run one of the two parts")
    ap.add_argument("--int8-sizes", nargs="+", type=int, default=[256, 512, 1024],
                    help="M = N = K of the int8 GEMMs (default 256 512 1024)")
    ap.add_argument("--isa", nargs="+", default=None,
                    help="instruction-set caps for the int8 GEMM (default: the best this CPU has)")
    ap.add_argument("--no-model-convs", action="store_true",
                    help="skip the int8 convolutions of ResNet-50/MobileNetV2 shapes")
    args = ap.parse_args(argv)
    if args.only == "int8":
        int8_report(args.int8_sizes, args.threads, args.isa, args.reps, not args.no_model_convs)
        return 0
    m, n, k = args.dims if len(args.dims) == 3 else (1024, 1024, 1024)
    exe = build()
    out = subprocess.run([str(exe), str(m), str(n), str(k), "--threads", str(args.threads), "--reps", str(args.reps)],
                         check=True, capture_output=True, text=True).stdout
    print(out, end="")
    try:
        threads_env = {"OPENBLAS_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
        code = (f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench_gemm as b; "
                f"print(f'{{b.numpy_gflops({m}, {n}, {k}):.1f}}')")
        gf = subprocess.run([sys.executable, "-c", code], env={**os.environ, **threads_env}, check=True,
                            capture_output=True, text=True).stdout.strip()
        print(f"numpy matmul (BLAS, {args.threads} thread(s))     {m}x{n}x{k}  {gf} GFLOP/s")
    except Exception as e:  # numpy is optional here
        print(f"numpy matmul: skipped ({e})")
    if args.only != "fp32":
        int8_report(args.int8_sizes, args.threads, args.isa, args.reps, not args.no_model_convs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
