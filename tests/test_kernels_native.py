"""Optimized CPU kernels vs scalar references, as native code.

Builds runtime/tests/kernel_tests (a standalone C++ program over runtime/src/cpu/gemm,
f32/, x86/ and neon/: every fp32 F32Kernels table the build has) natively, and cross-compiled for aarch64 and run under qemu-aarch64,
so the AVX2/AVX-512 and NEON kernels all execute for real. Builds live in
build/kernel_tests-<target>/ and are incremental (CMake + Ninja), so re-runs are fast.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "runtime" / "tests" / "kernel_tests"
BUILD = ROOT / "build"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)


def _generator() -> list[str]:
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def _build(name: str, extra: list[str]) -> Path:
    out = BUILD / f"kernel_tests-{name}"
    if not (out / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(SRC), "-B", str(out), "-DCMAKE_BUILD_TYPE=Release",
                        *_generator(), *extra], check=True, capture_output=True, text=True)
    proc = subprocess.run(["cmake", "--build", str(out), "--target", "kernel_tests", "-j",
                           str(os.cpu_count() or 2)], capture_output=True, text=True)
    assert proc.returncode == 0, f"kernel_tests build ({name}) failed:\n{proc.stdout}\n{proc.stderr}"
    return out / "kernel_tests"


def _run(cmd: list[str], timeout: float) -> tuple[int, int, str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    m = SUMMARY.findall(proc.stdout)
    assert m, f"no summary line from {cmd}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    passed, failed = map(int, m[-1])
    failures = "\n".join(l for l in proc.stdout.splitlines() if l.startswith("FAIL"))[:8000]
    assert proc.returncode == 0 and failed == 0, f"{failed} kernel test(s) failed:\n{failures}"
    return passed, failed, proc.stdout


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_kernels_native():
    exe = _build("native", [])
    passed, _, out = _run([str(exe)], timeout=600)
    assert passed > 1000
    # Every instruction set this CPU supports is exercised (scalar always): the test's own
    # table list (kernel_tests/f32_tables.h) agrees with the runtime's CPU detection.
    assert "isa scalar" in out
    from mobconv import runtime
    if runtime.available():
        from runtime_cases import native_isas
        for isa in native_isas()[1:]:
            assert f"isa {isa} " in out, f"the fp32 {isa} table did not run (supported: {native_isas()})"


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_kernels_native_asan_ubsan():
    """Same program under AddressSanitizer + UBSan: no out-of-bounds reads in edge paths."""
    flags = "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
    exe = _build("asan", ["-DCMAKE_BUILD_TYPE=RelWithDebInfo", f"-DCMAKE_CXX_FLAGS={flags}",
                          "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"])
    passed, _, _ = _run([str(exe), "--quick"], timeout=600)
    assert passed > 500


@pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-g++") is None or shutil.which("qemu-aarch64") is None,
    reason="needs g++-aarch64-linux-gnu and qemu-user (scripts/install-system-deps.sh)")
def test_kernels_aarch64_neon_under_qemu():
    exe = _build("aarch64", [
        "-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
        "-DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++", "-DCMAKE_EXE_LINKER_FLAGS=-static"])
    passed, _, out = _run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", str(exe)], timeout=900)
    assert "isa neon" in out, "NEON kernels did not run"
    assert passed > 1000
