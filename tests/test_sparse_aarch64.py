"""The sparse fp32 kernels on aarch64 (NEON), under qemu-aarch64.

The cases of tests/test_sparse_kernels.py (1x1 Conv, Gemm, MatMul: odd H*W, 1 channel,
zero rows, all-zero and dense weights, batch > 1 and 0, every fused activation, the
residual, NaN and infinities in the input) become one-node .mob files in case directories; runtime/tests/mobrt_run, cross-
compiled by test_runtime_aarch64's `mobrt_run_aarch64` fixture, runs them all in one
`--batch` process per configuration with MOBRT_SPARSE=always: NEON at 1 and 2 threads
(cap neon) and the scalar set (cap scalar). Each case must have run the sparse kernel of
the configuration's set and match the numpy reference within 1e-5 relative to
max|reference| (as natively); NEON at 1 and 2 threads must agree bit for bit. One more
batch under MOBRT_SPARSE=auto checks that a 97 %-sparse 1x1 conv takes the NEON sparse
kernel and a dense one the dense kernel.
"""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from runtime_cases import build, compare_outputs
from test_runtime_aarch64 import QEMU, mobrt_run_aarch64  # noqa: F401  (the fixture)
from test_sparse_kernels import CASES, RTOL, C

CONFIGS = [("neon", 1), ("neon", 2), ("scalar", 1)]


def _out_dir(isa: str, threads: int) -> str:
    return f"outputs_{isa}" + (f"_t{threads}" if threads > 1 else "")


def _write(root, cases) -> dict:
    info = {}
    for k, (cid, op, inputs, attrs) in enumerate(cases):
        with np.errstate(invalid="ignore"):  # the NaN / inf cases
            g, feeds, expected = build(op, inputs, attrs, 1)
        d = root / f"{k:03d}_{cid}"
        (d / "inputs").mkdir(parents=True)
        (d / "model.mob").write_bytes(to_bytes(g))
        for i, name in enumerate(g.inputs):
            np.save(d / "inputs" / f"{i}.npy", np.ascontiguousarray(feeds[name]))
        info[cid] = (d, op, expected)
    return info


def _batch(exe, root, isa, threads, mode):
    env = dict(os.environ, MOBRT_SPARSE=mode)
    proc = subprocess.run([*QEMU, str(exe), "--batch", str(root), "--isa", isa, "--threads", str(threads)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, f"mobrt_run --batch ({isa}, {threads} threads) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def _result(d, isa, threads):
    out = d / _out_dir(isa, threads)
    lines = (out / "status").read_text().splitlines()
    kernels = {ln.split()[1]: ln.split()[2] for ln in lines[1:] if ln.startswith("kernel ")}
    got = {"out0": np.load(out / "0.npy")} if lines and lines[0] == "ok" else None
    return lines[0] if lines else "no status", kernels, got


@pytest.fixture(scope="module")
def sparse_results(mobrt_run_aarch64, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("sparse_aarch64")
    info = _write(root, CASES)
    for isa, threads in CONFIGS:
        _batch(mobrt_run_aarch64, root, isa, threads, "always")
    return info


@pytest.mark.parametrize("cid", [c[0] for c in CASES])
def test_sparse_neon_matches_reference(cid, sparse_results):
    d, op, expected = sparse_results[cid]
    exp = np.asarray(expected[0])
    atol = RTOL * max(1.0, float(np.max(np.abs(exp))) if exp.size else 1.0)
    outs = {}
    for isa, threads in CONFIGS:
        status, kernels, got = _result(d, isa, threads)
        assert got is not None, f"{cid} ({isa}, {threads} threads): {status}"
        assert "sparse" in kernels[op] and kernels[op].endswith("_" + isa), \
            f"{cid} ({isa}, {threads} threads): {op} ran {kernels[op]!r}, expected the {isa} sparse kernel"
        msg = compare_outputs(f"{op} {cid} aarch64 {isa} threads {threads}", got, expected, 1, RTOL, atol)
        assert msg is None, msg
        outs[(isa, threads)] = got["out0"]
    assert np.array_equal(outs[("neon", 1)], outs[("neon", 2)], equal_nan=True), \
        f"{cid}: NEON at 1 and 2 threads differ"


def test_sparse_neon_auto_selection(mobrt_run_aarch64, tmp_path):  # noqa: F811
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 16, 9, 9)).astype(np.float32)
    sparse = rng.standard_normal((24, 16, 1, 1)).astype(np.float32)
    sparse.reshape(-1)[np.argsort(np.abs(sparse).ravel())[:int(0.97 * sparse.size)]] = 0
    dense = rng.standard_normal((24, 16, 1, 1)).astype(np.float32)
    info = _write(tmp_path, [("sparse97", "Conv", [x, C(sparse)], {}), ("dense", "Conv", [x, C(dense)], {})])
    _batch(mobrt_run_aarch64, tmp_path, "neon", 1, "auto")
    for cid, want_sparse in (("sparse97", True), ("dense", False)):
        d, op, expected = info[cid]
        status, kernels, got = _result(d, "neon", 1)
        assert got is not None, f"{cid}: {status}"
        assert ("sparse" in kernels["Conv"]) == want_sparse and kernels["Conv"].endswith("_neon"), \
            f"auto, {cid}: ran {kernels['Conv']}"
        msg = compare_outputs(f"Conv {cid} aarch64 auto", got, expected, 1, RTOL, RTOL)
        assert msg is None, msg
