"""The runtime has one kernel dispatch (issue 9, section 1).

The kernel registry (runtime/src/core/kernel.h: kernels keyed by op, the input 0 / input 1
dtypes they consume and instruction set) is the only choice of instruction set, with one
CPU detection (core/common.cpp) and one cap (the interpreter's max_isa / MOBRT_MAX_ISA):
- no second dispatch in the sources (SimdIsa tables, a MOBRT_ISA variable, another cpuid
  or getauxval) and the old MOBRT_ISA variable changes nothing;
- under every cap this machine supports, each op of an fp32 graph runs the registered
  kernel of the highest instruction set at or below the cap (never one above it), with the
  cap given either way, and the results equal the numpy reference;
- fp32 Conv/Gemm/MatMul are keyed {float32, float32}, so an int8-weight kernel key
  ({float32, int8}) never reaches them;
- runtime.supported_isas() (mobrt_isa_supported) agrees with /proc/cpuinfo's flags.
"""
from __future__ import annotations

import platform
import re
from pathlib import Path

import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.reference.interpreter import run as reference_run

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

SRC = Path(__file__).resolve().parents[1] / "runtime" / "src"
# The ISA chains of runtime/src/core/kernel.h, lowest first (a cap admits the sets at or below it).
CHAINS = (("scalar", "avx2", "avx_vnni", "avx512", "avx512_vnni"), ("scalar", "neon", "neon_dot", "neon_fp16"))


def _within(cap: str) -> list:
    """The sets a cap admits, lowest first."""
    for chain in CHAINS:
        if cap in chain[1:]:
            return list(chain[:chain.index(cap) + 1])
    return ["scalar"]


def _sources():
    for p in sorted(SRC.rglob("*")):
        if p.suffix in (".h", ".cpp", ".cc") and "generated" not in p.parts:
            yield p, p.read_text(errors="replace")


def test_no_second_dispatch_in_the_sources():
    found = []
    for p, text in _sources():
        rel = p.relative_to(SRC).as_posix()
        for pat in (r"\bSimdIsa\b", r"\bisa_kernels(_for)?\b", r"\bbest_isa\b", r"\bisa_available\b",
                    r"\"MOBRT_ISA\"", r"\bto_cpu_act\b", r"\bcpu::Act\b"):
            if re.search(pat, text):
                found.append(f"{rel}: {pat}")
        if rel != "core/common.cpp":  # the one CPU detection
            for pat in (r"__builtin_cpu_supports", r"__get_cpuid", r"\bcpuid\s*\(", r"getauxval\s*\("):
                if re.search(pat, text):
                    found.append(f"{rel}: CPU detection {pat}")
    assert not found, "a second dispatch or CPU detection in runtime/src:\n" + "\n".join(found)
    for gone in ("cpu/gemm/dispatch.cpp", "cpu/gemm/isa_table.h", "cpu/gemm/kernel_glue.h",
                 "cpu/x86/isa_x86.cpp", "cpu/neon/isa_neon.cpp"):
        assert not (SRC / gone).exists(), f"runtime/src/{gone} still exists"
    gemm = sorted(p.name for p in (SRC / "cpu" / "gemm").iterdir())
    assert all(n.startswith(("gemm", "sgemm", "f32_gemm", "ukernel")) for n in gemm), \
        f"cpu/gemm/ holds GEMM and its micro-kernels only, has {gemm}"


def fp32_net():
    """Every fp32 op family with an optimized kernel: Conv (+Relu), MaxPool, Add of a
    broadcast scalar constant, Sigmoid, GlobalAveragePool, Gemm, MatMul, Softmax."""
    rng = np.random.default_rng(9)
    g = Graph("one_dispatch")
    g.add_input("x", "float32", (1, 8, 10, 10))
    g.add_constant("w", (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float32))
    g.add_constant("half", np.asarray(0.5, dtype=np.float32))
    g.add_constant("fc", (rng.standard_normal((12, 16)) * 0.3).astype(np.float32))
    g.add_constant("mm", (rng.standard_normal((12, 7)) * 0.3).astype(np.float32))
    g.add_node("Conv", ["x", "w"], ["c"], {"pads": [1, 1, 1, 1], "activation": "Relu"}, name="conv")
    g.add_node("MaxPool", ["c"], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2]}, name="pool")
    g.add_node("Add", ["p", "half"], ["a"], name="add")
    g.add_node("Sigmoid", ["a"], ["s"], name="sigmoid")
    g.add_node("GlobalAveragePool", ["s"], ["gap"], name="gap")
    g.add_node("Flatten", ["gap"], ["flat"], {"axis": 1}, name="flatten")
    g.add_node("Gemm", ["flat", "fc"], ["h"], {"transB": 1}, name="gemm")
    g.add_node("MatMul", ["h", "mm"], ["z"], name="matmul")
    g.add_node("Softmax", ["z"], ["y"], name="softmax")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


FAST_OPS = ("Conv", "MaxPool", "Add", "Sigmoid", "GlobalAveragePool", "Gemm", "MatMul", "Softmax")


def _registered():
    """op type -> [(kernel name, isa)] of the kernels whose key admits fp32 inputs."""
    out = {}
    for row in runtime.op_table():
        for k in row["kernels"]:
            if k["dtype"] in ("float32", "any") and k["dtype1"] in ("float32", "any"):
                out.setdefault(row["name"], []).append((k["name"], k["isa"]))
    return out


def _run(cap, monkeypatch, via_env):
    g = fp32_net()
    x = np.random.default_rng(1).standard_normal((1, 8, 10, 10)).astype(np.float32)
    if via_env:
        monkeypatch.setenv("MOBRT_MAX_ISA", cap)
    else:
        monkeypatch.delenv("MOBRT_MAX_ISA", raising=False)
    with runtime.Interpreter(to_bytes(g), isa=None if via_env else cap, profile=True) as it:
        y = it.run({"x": x})["y"]
        kernels = {op: name for _, op, name in it.kernels()}
    np.testing.assert_allclose(y, reference_run(g, {"x": x})["y"], rtol=1e-4, atol=1e-6,
                               err_msg=f"cap {cap}")
    return kernels


@pytest.mark.parametrize("via_env", [False, True], ids=["max_isa", "MOBRT_MAX_ISA"])
@pytest.mark.parametrize("cap", runtime.supported_isas())
def test_every_cap_selects_the_best_kernel_at_or_below_it(cap, via_env, monkeypatch):
    registered = _registered()
    kernels = _run(cap, monkeypatch, via_env)
    allowed = _within(cap)
    for op in FAST_OPS:
        have = [isa for _, isa in registered.get(op, []) if isa in allowed and isa in runtime.supported_isas()]
        want = max(have, key=allowed.index)  # the highest set at or below the cap with a kernel
        names = {n for n, isa in registered[op] if isa == want}
        assert kernels.get(op) in names, (f"cap {cap}: {op} ran {kernels.get(op)!r}, expected the {want} "
                                          f"kernel {sorted(names)} (sets admitted: {allowed})")


def test_old_mobrt_isa_variable_changes_nothing(monkeypatch):
    best = runtime.supported_isas()[-1]
    base = _run(best, monkeypatch, via_env=False)
    monkeypatch.setenv("MOBRT_ISA", "scalar")
    assert _run(best, monkeypatch, via_env=False) == base, "MOBRT_ISA changed the kernels"
    monkeypatch.delenv("MOBRT_ISA")
    # while the one cap does change them
    assert all(k.endswith("_reference") for op, k in _run("scalar", monkeypatch, via_env=True).items()
               if op in FAST_OPS)


def test_fp32_gemm_kernels_take_float32_weights_only():
    """{float32, int8} (dynamic-range int8 weights) must never match an fp32 GEMM kernel."""
    for row in runtime.op_table():
        if row["name"] not in ("Conv", "Gemm", "MatMul"):
            continue
        for k in row["kernels"]:
            if "_f32_" in k["name"] and k["isa"] != "scalar":
                assert (k["dtype"], k["dtype1"]) == ("float32", "float32"), \
                    f"{row['name']} kernel {k['name']} ({k['isa']}) keyed {{{k['dtype']}, {k['dtype1']}}}"


def _cpuinfo_isas() -> list | None:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return None
    line = re.search(r"^(flags|Features)\s*:(.*)$", text, re.M)
    if line is None:
        return None
    f = set(line.group(2).split())
    machine = platform.machine()
    if machine in ("x86_64", "AMD64"):
        avx2 = {"avx2", "fma"} <= f
        avx512 = avx2 and {"avx512f", "avx512bw", "avx512vl"} <= f
        return [n for n, ok in (("scalar", True), ("avx2", avx2), ("avx_vnni", avx2 and "avx_vnni" in f),
                                ("avx512", avx512), ("avx512_vnni", avx512 and "avx512_vnni" in f)) if ok]
    if machine in ("aarch64", "arm64"):
        dot = "asimddp" in f
        return [n for n, ok in (("scalar", True), ("neon", True), ("neon_dot", dot),
                                ("neon_fp16", dot and {"fphp", "asimdhp"} <= f)) if ok]
    return None


def test_supported_isas_agree_with_proc_cpuinfo():
    want = _cpuinfo_isas()
    if want is None:
        pytest.skip("no /proc/cpuinfo flags on this system")
    assert runtime.supported_isas() == want, ("mobrt_isa_supported disagrees with /proc/cpuinfo: runtime "
                                              f"{runtime.supported_isas()}, cpuinfo {want}")
