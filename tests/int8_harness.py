"""Shared checks of the optimized int8 kernels: a quantized graph runs under every
instruction set this machine (or qemu-aarch64) can execute, at 1 and 2 threads, and
every output must equal the numpy reference interpreter's bit for bit.

    want = check_every_isa(g, feeds, expect={"avx2": "conv_q8_gemm_avx2"})
    run_under_qemu(mobrt_run_aarch64, tmp_path, [(g, feeds), ...], expect={"neon_dot": "_neon_dot"})

`expect` maps an instruction-set cap to a substring of the kernel name the graph's
first node must have run with under that cap (so a test cannot pass by silently
falling back to the reference kernel). Graphs are built like tests/test_runtime_int8.py's
(`mobconv.ir.Graph`, `QuantParams` on the tensors).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.reference.interpreter import run as ref_run

# qemu-aarch64's default CPU is "max" (dot product, fp16, i8mm); named so the tests say it.
QEMU_MAX = ["qemu-aarch64", "-cpu", "max", "-L", "/usr/aarch64-linux-gnu"]
ARM_ISAS = ("neon", "neon_dot")


def _first_difference(name: str, where: str, got: np.ndarray, want: np.ndarray) -> str:
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"{where} {name}: got {got.dtype}{got.shape}, reference {want.dtype}{want.shape}"
    bad = np.argwhere(got != want)
    i = tuple(bad[0])
    return (f"{where} {name}: {len(bad)} of {got.size} elements differ, first at {i}: "
            f"runtime {got[i]} reference {want[i]}")


def _kernel_matches(kernels: list, expect: str | None) -> bool:
    return expect is None or any(expect in k for k in kernels)


def check_every_isa(g, feeds: dict, expect: dict | None = None, threads=(1, 2), want: dict | None = None) -> dict:
    """Runs `g` under every supported instruction-set cap and thread count; asserts the
    outputs equal the reference exactly and (expect) which kernel the nodes ran."""
    assert runtime.available(), "the C++ runtime is not built"
    if want is None:
        want = ref_run(g, feeds)
    data = to_bytes(g)
    for isa in runtime.supported_isas():
        for t in threads:
            with runtime.Interpreter(data, threads=t, isa=isa) as it:
                got = it.run(feeds)
                kernels = [k for _, _, k in it.kernels()]
            where = f"isa={isa} threads={t} kernels={kernels}"
            for name in g.outputs:
                if got[name].dtype != want[name].dtype or not np.array_equal(got[name], want[name]):
                    raise AssertionError(_first_difference(name, where, got[name], want[name]))
            if expect and isa in expect:
                assert _kernel_matches(kernels, expect[isa]), f"{where}: expected a kernel named *{expect[isa]}*"
    return want


def run_under_qemu(exe: Path, root: Path, cases: list, isas=ARM_ISAS, threads=(1, 2),
                   expect: dict | None = None, timeout: int = 900) -> None:
    """cases: [(graph, feeds)] (or [(graph, feeds, expect_dict)] to override `expect` per case).
    Writes one case directory each, runs the aarch64 mobrt_run once per (isa, threads) under
    qemu-aarch64 -cpu max, and compares every output with the reference exactly."""
    wants = []
    for k, case in enumerate(cases):
        g, feeds = case[0], case[1]
        d = root / f"{k:04d}"
        (d / "inputs").mkdir(parents=True, exist_ok=True)
        (d / "model.mob").write_bytes(to_bytes(g))
        for i, name in enumerate(g.inputs):
            np.save(d / "inputs" / f"{i}.npy", np.ascontiguousarray(feeds[name]))
        wants.append(ref_run(g, feeds))
    for isa in isas:
        for t in threads:
            proc = subprocess.run([*QEMU_MAX, str(exe), "--batch", str(root), "--isa", isa, "--threads", str(t)],
                                  capture_output=True, text=True, timeout=timeout)
            assert proc.returncode == 0, (f"mobrt_run --batch --isa {isa} --threads {t} exited with "
                                          f"{proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            out = f"outputs_{isa}" + (f"_t{t}" if t > 1 else "")
            for k, case in enumerate(cases):
                g, feeds = case[0], case[1]
                exp = case[2] if len(case) > 2 else expect
                status = (root / f"{k:04d}" / out / "status").read_text().splitlines()
                where = (f"case {k} ({g.nodes[0].op}, inputs {[np.shape(v) for v in feeds.values()]}) "
                         f"isa={isa} threads={t}")
                assert status and status[0] == "ok", f"{where}: {status}"
                kernels = [line.split()[2] for line in status[1:] if line.startswith("kernel ")]
                if exp and isa in exp:
                    assert _kernel_matches(kernels, exp[isa]), f"{where}: kernels {kernels}, expected *{exp[isa]}*"
                for j, name in enumerate(g.outputs):
                    got = np.load(root / f"{k:04d}" / out / f"{j}.npy")
                    if got.dtype != wants[k][name].dtype or not np.array_equal(got, wants[k][name]):
                        raise AssertionError(_first_difference(name, where, got, wants[k][name]))
