"""GEMM micro-benchmark: mobconv's packed SGEMM vs the machine's single-core FMA peak.

    python benchmarks/bench_gemm.py                 # 1024^3, 1 thread
    python benchmarks/bench_gemm.py 512 3136 576 --threads 2

Builds benchmarks/bench_gemm.cpp with the kernels (runtime/tests/kernel_tests CMake
project, build dir build/kernel_tests-native, shared with the kernel tests) and runs it:
per instruction set it prints GFLOP/s of `sgemm` (packs A, gathers B per block: what a
MatMul pays) and of the packed-only core (what Conv/FC with pre-packed weights pay),
and both as a fraction of the FMA peak measured by a register-only FMA loop of the
same vector width. numpy's matmul (OpenBLAS here) is printed alongside for reference.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dims", nargs="*", type=int, help="M N K (default 1024 1024 1024)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
