"""The runtime's per-op suite and a model-level check on aarch64, under qemu-aarch64.

The runtime and its driver (runtime/tests/mobrt_run.cpp) are cross-compiled with
runtime/cmake/aarch64-linux-gnu.cmake into build/aarch64-tests/ (statically linked;
CMake + Ninja rebuild incrementally, so re-runs only pay for what changed) and run
under qemu-aarch64, so the NEON kernels execute for real.

Op level: every case of the native per-op tests -- tests/runtime_cases.py (the cases
of test_runtime_ops.py) and the optimized-kernel cases of test_kernels_runtime.py --
and the tile/tail sweep (runtime_cases.SWEEP_CASES: odd widths and channel counts,
GEMM sizes around the micro-tile edges, stride/pad/dilation/group variants, broadcast
patterns, short softmax axes; 1e-4 relative to max|reference|), the zero-size cases
(runtime_cases.ZERO_CASES) and the NaN/infinity cases (runtime_cases.NAN_CASES) -- each
becomes a one-node .mob in a case directory with its seeded inputs as .npy. One
`mobrt_run --batch` process per configuration runs them all (qemu start-up is slow):
NEON at 1 thread (cap neon) and 2 threads (cap neon_fp16, the top of the arm chain), and
the scalar reference kernels at 1 thread. Each case and
configuration is its own pytest item that compares the outputs with the numpy
reference at the tolerance the native test states for that case, and names op, isa,
shapes, the first bad index, expected and got. NEON cases of the optimized-kernel set
must have run the `_neon` kernel (or the reference, for the `falls_back` variants) under
both caps, and the NEON results at 1 and 2 threads must agree bitwise. A crash inside a case is
reported for that case and the batch resumes after it.

Model level: the zoo MobileNetV2 (width 0.5, 96x96) converted with mobconv.convert,
run by mobrt_run under qemu with NEON at 1 and 2 threads (and the scalar kernels) vs
onnxruntime: max|a-b|/max|b| <= 1e-4; NEON at 1 and 2 threads within 1e-6.

Missing cross compiler or qemu is a failure, not a skip: run
scripts/install-system-deps.sh (CI does).
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from cmake_build import flatbuffers_include
from runtime_cases import CASES as OP_CASES
from runtime_cases import NAN_CASES, REG, SWEEP_CASES, ZERO_CASES, build

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "aarch64-tests"
TOOLCHAIN = ROOT / "runtime" / "cmake" / "aarch64-linux-gnu.cmake"
QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]  # -L only matters if the link was not static
# (isa cap, threads): the configurations every op case runs in. The arm chain's top cap
# (neon_fp16; qemu-aarch64's default cpu "max" has dot product and fp16) must select the same
# fp32 NEON kernels as the neon cap: one dispatch, the fp32 kernels exist for neon only.
CONFIGS = [("neon", 1), ("neon_fp16", 2), ("scalar", 1)]
TOP = CONFIGS[1]
BATCH_TIMEOUT = 900


def _kernel_cases() -> list:
    """The optimized-kernel cases of test_kernels_runtime.py as (set, id, op, inputs, attrs, n_out, rtol, atol, fast)."""
    try:
        import test_kernels_runtime as tk
    except pytest.skip.Exception:  # native libmobrt not built: those definitions are unavailable
        return []
    out = []
    for p in tk.CASES:
        op, inputs, attrs, tol, fast = p.values
        out.append(("kern", p.id, op, inputs, attrs, 1, tol, tol, fast))
    return out


def _all_cases() -> list:
    cases = [("ops", p.id, p.values[0], *p.values[2:], None) for p in OP_CASES]  # (op, variant, ...)
    cases += [("sweep", p.id, p.values[0], *p.values[2:], None) for p in SWEEP_CASES]
    cases += [("zero", p.id, p.values[0], *p.values[2:], None) for p in ZERO_CASES]  # empty tensors
    cases += [("nan", p.id, p.values[0], *p.values[2:], None) for p in NAN_CASES]  # NaN / +-inf inputs
    return [c for c in cases + _kernel_cases() if c[2] in REG]


CASES = _all_cases()
CASE_IDS = [f"{c[0]}/{c[1]}" for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS), "duplicate case ids"


def _dir_name(k: int, case_id: str) -> str:
    return f"{k:04d}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id)


def _out_name(isa: str, threads: int) -> str:
    return f"outputs_{isa}" + (f"_t{threads}" if threads > 1 else "")


# ---- the cross build ----------------------------------------------------------------


@pytest.fixture(scope="session")
def mobrt_run_aarch64() -> Path:
    """build/aarch64-tests/mobrt_run, cross-compiled (incrementally) for aarch64."""
    missing = [t for t in ("aarch64-linux-gnu-g++", "qemu-aarch64", "cmake") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the aarch64 runtime tests need g++-aarch64-linux-gnu and "
                    f"qemu-user; run scripts/install-system-deps.sh")
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "aarch64-tests.lock", "w") as lock:  # one build at a time (parallel pytest runs)
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_aarch64()


def _build_aarch64() -> Path:
    cache = BUILD / "CMakeCache.txt"
    fb = re.search(r"^FLATBUFFERS_INCLUDE_DIR:\w+=(.*)$", cache.read_text(), re.M) if cache.exists() else None
    if not cache.exists() or not (fb and Path(fb.group(1), "flatbuffers", "flatbuffers.h").exists()):
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        proc = subprocess.run(
            ["cmake", "-S", str(ROOT / "runtime"), "-B", str(BUILD), *gen, "-DCMAKE_BUILD_TYPE=Release",
             f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}", f"-DFLATBUFFERS_INCLUDE_DIR={flatbuffers_include()}",
             "-DCMAKE_EXE_LINKER_FLAGS=-static"], capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(BUILD, ignore_errors=True)  # do not keep a half-configured cache
            pytest.fail(f"aarch64 cmake configure failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    proc = subprocess.run(["cmake", "--build", str(BUILD), "--target", "mobrt_run", "-j", str(os.cpu_count() or 2)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"aarch64 build of mobrt_run failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    exe = BUILD / "mobrt_run"
    assert exe.exists(), exe
    return exe


# ---- op cases: generate, run in batches, collect ---------------------------------------


def _write_cases(root: Path) -> dict:
    """Writes one directory per case; returns case id -> (dir, feeds, expected outputs)."""
    info = {}
    for k, (cset, cid, op, inputs, attrs, n_out, rtol, atol, fast) in enumerate(CASES):
        d = root / _dir_name(k, f"{cset}/{cid}")
        try:
            g, feeds, expected = build(op, inputs, attrs, n_out)
        except Exception as e:  # reported by this case's items
            info[f"{cset}/{cid}"] = (d, {}, f"building the case failed: {type(e).__name__}: {e}")
            continue
        (d / "inputs").mkdir(parents=True)
        (d / "model.mob").write_bytes(to_bytes(g))
        for i, name in enumerate(g.inputs):
            np.save(d / "inputs" / f"{i}.npy", np.ascontiguousarray(feeds[name]))
        info[f"{cset}/{cid}"] = (d, feeds, expected[:n_out])
    return info


def _run_batches(exe: Path, root: Path) -> dict:
    """Runs every configuration's batch (concurrently); returns (isa, threads) -> notes."""
    notes = {}
    procs = {cfg: None for cfg in CONFIGS}
    crashes = {cfg: 0 for cfg in CONFIGS}

    def start(cfg):
        isa, threads = cfg
        cmd = [*QEMU, str(exe), "--batch", str(root), "--isa", isa, "--threads", str(threads), "--resume"]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    for cfg in CONFIGS:
        procs[cfg] = start(cfg)
    while any(p is not None for p in procs.values()):
        for cfg, p in procs.items():
            if p is None:
                continue
            try:
                out, err = p.communicate(timeout=BATCH_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                notes[cfg] = f"batch timed out after {BATCH_TIMEOUT} s"
                procs[cfg] = None
                continue
            if p.returncode == 0 and "batch:" in out:
                procs[cfg] = None
                continue
            # A crash: the case that began and did not end gets a status naming it; resume after it.
            began = re.findall(r"^BEGIN (\S+)$", out, re.M)
            ended = set(re.findall(r"^END (\S+) ", out, re.M))
            open_cases = [c for c in began if c not in ended]
            if not open_cases or crashes[cfg] >= 10:
                notes[cfg] = f"batch failed (exit {p.returncode}):\n{out[-2000:]}\n{err[-2000:]}"
                procs[cfg] = None
                continue
            crashes[cfg] += 1
            status = root / open_cases[-1] / _out_name(*cfg) / "status"
            status.parent.mkdir(parents=True, exist_ok=True)
            status.write_text(f"crash: mobrt_run died with exit status {p.returncode} in this case "
                              f"(signal {-p.returncode if p.returncode < 0 else 'none'}); stderr: {err[-1500:]}\n")
            procs[cfg] = start(cfg)
    return notes


@pytest.fixture(scope="session")
def op_results(mobrt_run_aarch64, tmp_path_factory):
    """Runs every op case under qemu in each configuration; case id -> data for the per-item checks."""
    root = tmp_path_factory.mktemp("aarch64_cases")
    info = _write_cases(root)
    notes = _run_batches(mobrt_run_aarch64, root)
    return info, notes


def _load(case_dir: Path, isa: str, threads: int, n_out: int):
    """(status text, kernels list, outputs list or None)."""
    out = case_dir / _out_name(isa, threads)
    status_file = out / "status"
    if not status_file.exists():
        return "not run (the batch stopped before this case)", [], None
    lines = status_file.read_text().splitlines()
    if not lines or lines[0] != "ok":
        return "\n".join(lines), [], None
    kernels = [ln.split()[2] for ln in lines[1:] if ln.startswith("kernel ")]
    return "ok", kernels, [np.load(out / f"{k}.npy") for k in range(n_out)]


def _compare(where: str, got: list, expected: list, rtol: float, atol: float) -> str | None:
    for k, exp in enumerate(expected):
        exp = np.asarray(exp)
        out = got[k]
        w = f"{where} output {k}"
        if out.shape != exp.shape:
            return f"{w}: shape {out.shape}, expected {exp.shape}"
        if out.dtype != exp.dtype:
            return f"{w}: dtype {out.dtype}, expected {exp.dtype}"
        if exp.dtype.kind == "f":
            if atol is None:  # no tolerance stated for the case: 1e-4 relative to max|reference|
                finite = np.abs(exp[np.isfinite(exp)])
                atol = 1e-4 * max(float(np.max(finite, initial=0.0)), 1e-6)
            bad = ~np.isclose(out, exp, rtol=rtol, atol=atol, equal_nan=True)
        else:
            bad = out != exp
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            scale = float(np.max(np.abs(exp[np.isfinite(exp)]), initial=0.0)) if exp.dtype.kind == "f" else 0.0
            rel = (float(np.max(np.abs(out.astype(np.float64) - exp))) / max(scale, 1e-30)) if scale else float("nan")
            return (f"{w}: {int(bad.sum())} of {bad.size} mismatch (rtol={rtol}, atol={atol}), first at index {idx}: "
                    f"expected {exp[idx]!r}, got {out[idx]!r}; max|got-ref|/max|ref| = {rel:.3g}")
    return None


@pytest.mark.parametrize("isa,threads", CONFIGS, ids=[f"{i}-t{t}" for i, t in CONFIGS])
@pytest.mark.parametrize("case_index", range(len(CASES)), ids=CASE_IDS)
def test_op_case_under_qemu(op_results, case_index, isa, threads):
    info, notes = op_results
    cset, cid, op, inputs, attrs, n_out, rtol, atol, fast = CASES[case_index]
    d, feeds, expected = info[f"{cset}/{cid}"]
    if isinstance(expected, str):
        pytest.fail(f"{op} [{cset}/{cid}]: {expected}")
    shapes = [tuple(np.shape(v)) for v in feeds.values()]
    where = f"aarch64 {op} [{cset}/{cid}] isa={isa} threads={threads} input shapes {shapes}"
    status, kernels, got = _load(d, isa, threads, n_out)
    if status != "ok":
        note = notes.get((isa, threads), "")
        pytest.fail(f"{where}: {status}" + (f"\n{note}" if note else ""))
    msg = _compare(where + f" kernels {kernels}", got, expected, rtol, atol)
    if msg:
        pytest.fail(msg)
    if isa != "scalar" and fast is not None and kernels:
        want = "_neon" if fast else "_reference"
        assert kernels[0].endswith(want), f"{where}: kernel {kernels[0]!r} ran, expected one ending in {want!r}"
    if isa != "scalar" and threads > 1:
        st1, _, got1 = _load(d, "neon", 1, n_out)
        if st1 == "ok":
            for k, (a, b) in enumerate(zip(got1, got)):
                if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                    diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.shape == b.shape else float("nan")
                    pytest.fail(f"{where} output {k}: NEON results at 1 thread (cap neon) and {threads} threads "
                                f"(cap {isa}) differ (max {diff:.3g})")


def test_neon_kernels_ran_under_qemu(op_results):
    """The NEON kernel set registered on aarch64 and ran for every op it claims a case of."""
    info, _ = op_results
    neon, total = set(), 0
    for cset, cid, *_ in CASES:
        d, _, expected = info[f"{cset}/{cid}"]
        status = d / _out_name("neon", 1) / "status"
        if status.exists():
            total += 1
            for ln in status.read_text().splitlines():
                if ln.startswith("kernel ") and ln.endswith("_neon"):
                    neon.add(ln.split()[1])
    assert total == len(CASES), f"only {total} of {len(CASES)} cases ran with NEON"
    expected = {"Conv", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Mul", "Relu",
                "Sigmoid", "Tanh", "Softmax"}
    assert expected <= neon, f"no NEON kernel ran for {sorted(expected - neon)} (NEON kernels seen: {sorted(neon)})"


# ---- model level: MobileNetV2 ---------------------------------------------------------------


def test_mobilenet_v2_neon_under_qemu_matches_onnxruntime(mobrt_run_aarch64, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    import mobconv
    from model_zoo.onnx.mobilenet_v2 import build_mobilenet_v2

    path = tmp_path / "mobilenet_v2.onnx"
    onnx.save(build_mobilenet_v2(width=0.5, image_size=96), str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = sess.run(None, {inp.name: x})
    model = mobconv.convert(str(path), input_shapes={inp.name: shape})
    mob = tmp_path / "mobilenet_v2.mob"
    mob.write_bytes(to_bytes(model.graph))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "0.bin").write_bytes(x.tobytes())
    procs = {}
    for isa, threads in CONFIGS:
        out = tmp_path / f"out_{isa}_t{threads}"
        out.mkdir()
        procs[isa, threads] = (out, subprocess.Popen(
            [*QEMU, str(mobrt_run_aarch64), str(mob), "--threads", str(threads), "--isa", isa,
             "--inputs", str(tmp_path / "in"), "--outputs", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for (isa, threads), (out, p) in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        where = f"MobileNetV2 aarch64 isa={isa} threads={threads}"
        assert p.returncode == 0, f"{where}: mobrt_run failed with {p.returncode}\n{stdout}\n{stderr}"
        got = []
        for k, exp in enumerate(expected):
            raw = np.fromfile(out / f"{k}.bin", dtype=exp.dtype)
            assert raw.size == exp.size, f"{where} output {k}: {raw.size} values, onnxruntime has {exp.shape}"
            got.append(raw.reshape(exp.shape))
        results[isa, threads] = got
        for k, (a, b) in enumerate(zip(got, expected)):
            rel = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))
            print(f"{where} output {k}: max|a-b|/max|b| = {rel:.3g}")
            assert rel <= 1e-4, f"{where} output {k}: max|a-b|/max|b| = {rel:.3g} > 1e-4"
    for k, (a, b) in enumerate(zip(results["neon", 1], results[TOP])):
        diff = float(np.max(np.abs(a - b)))
        assert diff <= 1e-6, f"MobileNetV2 aarch64 NEON output {k}: 1 vs 2 threads differ by {diff:.3g}"
