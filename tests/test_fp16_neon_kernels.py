"""fp16 compute kernels on ARMv8.2 (Isa::NEONFP16, runtime/src/cpu/f16/), under
qemu-aarch64 -cpu max (which has FEAT_FP16).

With `--allow-fp16` (mobrt_options_set_allow_fp16) a float32 Conv / depthwise Conv /
Gemm / MatMul with constant weights runs the `_neon_fp16` kernel; without it the
float32 `_neon` kernel runs. The fp16 results are checked against the float32 numpy
reference interpreter with an error bound derived from the kernels' arithmetic
(f16_neon_fp16.h): inputs and weights rounded to fp16 (relative error <= u = 2^-11
each, so each product is off by <= (2u + u^2)|x w|), then a sequential fp16 fused
multiply-add over the reduction in the documented order from 0, which rounds once per
step (<= u |S_j| with S_j the partial sum after step j; fp16 subnormals add <= 2^-25
absolute per step), then float32 bias/residual/activation. So, per output element,

    |y16 - y| <= L * (1.05 * (2.001 u sum_k |x_k w_k| + u sum_j |S_j|) + K 2^-25)
                 + 2^-20 (|S_K| + |bias| + |residual|)

with L the activation's Lipschitz constant (1; HardSwish 1.5), 1.05 covering the
second-order terms (S_j computed, not exact) and the last term float32 rounding. It is
a proof-shaped bound for the stated order, not a fitted tolerance: a dropped tap or a
wrong weight is off by about |x w| >> u sum|x w| and fails. The test also checks that
the fp16 run really differs from float32 somewhere (so it computed in fp16) and that
results are identical at 1 and 2 threads.

The whole-model check: the digits MobileNetV2 through `mobconv quantize --scheme fp16`
(which also marks the model quantization.fp16_compute = allow) on the first 64 of the
held-out digits (qemu emulates fp16 arithmetic slowly): top-1 equals the float32
model's, logits within a relative bound.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from int8_harness import QEMU_MAX
from mobconv import runtime
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph
from mobconv.ir.infer import infer_shapes
from mobconv.quantize.fp16 import FP16_COMPUTE_KEY
from mobconv.reference.interpreter import run as ref_run
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (fixture: the aarch64 mobrt_run)

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "model_zoo" / "onnx"
U = 2.0 ** -11  # fp16 unit roundoff
LIPSCHITZ = {"": 1.0, "Relu": 1.0, "Clip": 1.0, "HardSwish": 1.5}


# ---- cases ------------------------------------------------------------------------------------
def _graph(op, x, consts, attrs, extra_inputs=()):
    g = Graph(op)
    g.add_input("x", "float32", x.shape)
    names = ["x"]
    for nm, arr in consts:
        if arr is None:
            names.append("")
            continue
        g.add_constant(nm, arr)
        names.append(nm)
    feeds = {"x": x}
    for nm, arr in extra_inputs:  # non-constant inputs after the constants (Conv's residual)
        g.add_input(nm, "float32", arr.shape)
        names.append(nm)
        feeds[nm] = arr
    g.add_node(op, names, ["y"], attrs, name="n1")
    g.outputs = ["y"]
    infer_shapes(g)
    return g, feeds


def _act(name):
    return {"activation": name, "activation_params": [0.0, 6.0] if name == "Clip" else []}


def conv_case(rng, x_shape, w_shape, *, bias=True, act="", residual=False, **attrs):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32) * 0.5 if bias else None
    a = dict(attrs, kernel_shape=list(w_shape[2:]), **_act(act))
    g0, _ = _graph("Conv", x, [("w", w), ("b", b)], a)
    extra = [("r", rng.standard_normal(g0.values["y"].shape).astype(np.float32))] if residual else []
    if residual and b is None:
        raise ValueError("a residual case needs the bias slot filled")
    g, feeds = _graph("Conv", x, [("w", w), ("b", b)], a, extra)
    return g, feeds, act


def gemm_case(rng, op, a_shape, k, n, *, trans_b=False, bias=True, act="", alpha=1.0, beta=1.0):
    x = rng.standard_normal(a_shape).astype(np.float32)
    w = (rng.standard_normal((n, k) if trans_b else (k, n)) / np.sqrt(k)).astype(np.float32)
    consts = [("w", w)]
    attrs = _act(act)
    if op == "Gemm":
        attrs.update(transB=int(trans_b), alpha=alpha, beta=beta)
        if bias:
            consts.append(("c", rng.standard_normal(n).astype(np.float32)))
    g, feeds = _graph(op, x, consts, attrs)
    return g, feeds, act


# ---- the error bound (float64, in the kernels' reduction order) ---------------------------------
def _conv_terms(g, feeds):
    """(sum_k |x_k w_k|, sum_j |S_j|, |S_K|, K) per output element of a one-node Conv, with
    S_j the partial sums over (input channel, kernel row, kernel column) of its group."""
    node = g.nodes[0]
    x = feeds["x"].astype(np.float64)
    w = g.values["w"].data.astype(np.float64)
    n, c, ih, iw = x.shape
    m, cg, kh, kw = w.shape
    grp = node.attrs.get("group", 1)
    sh, sw = node.attrs.get("strides", [1, 1])
    dh, dw = node.attrs.get("dilations", [1, 1])
    pt, pl, pb, pr = node.attrs.get("pads", [0, 0, 0, 0])
    oh = (ih + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (iw + pl + pr - (kw - 1) * dw - 1) // sw + 1
    xp = np.zeros((n, c, ih + pt + pb + sh * oh, iw + pl + pr + sw * ow))
    xp[:, :, pt:pt + ih, pl:pl + iw] = x
    # patches[n, c, ky, kx, oy, ox]
    patches = np.empty((n, c, kh, kw, oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            patches[:, :, ky, kx] = xp[:, :, ky * dh:ky * dh + sh * oh:sh, kx * dw:kx * dw + sw * ow:sw]
    mg = m // grp
    out = [np.empty((n, m, oh, ow)) for _ in range(3)]
    for gi in range(grp):
        pk = patches[:, gi * cg:(gi + 1) * cg].reshape(n, cg * kh * kw, oh, ow)  # (c, ky, kx) order
        for j in range(mg):
            oc = gi * mg + j
            prod = pk * w[oc].reshape(1, -1, 1, 1)
            s = np.cumsum(prod, axis=1)
            out[0][:, oc] = np.abs(prod).sum(1)
            out[1][:, oc] = np.abs(s).sum(1)
            out[2][:, oc] = s[:, -1]
    return out[0], out[1], out[2], cg * kh * kw


def _gemm_terms(g, feeds):
    node = g.nodes[0]
    x = feeds["x"].astype(np.float64)
    w = g.values["w"].data.astype(np.float64)
    if node.op == "Gemm":
        if node.attrs.get("transB", 0):
            w = w.T
        w = w * np.float32(node.attrs.get("alpha", 1.0))
    prod = x[..., :, None] * w  # (..., K, N)
    s = np.cumsum(prod, axis=-2)
    return np.abs(prod).sum(-2), np.abs(s).sum(-2), s[..., -1, :], w.shape[0]


def error_bound(g, feeds):
    node = g.nodes[0]
    sum_abs, sum_partial, total, k = (_conv_terms if node.op == "Conv" else _gemm_terms)(g, feeds)
    extra = np.abs(total)
    if node.op == "Conv":
        if "b" in g.values:
            extra = extra + np.abs(g.values["b"].data.astype(np.float64)).reshape(1, -1, 1, 1)
        if "r" in feeds:
            extra = extra + np.abs(feeds["r"])
    elif "c" in g.values:
        extra = extra + np.abs(g.values["c"].data.astype(np.float64) * node.attrs.get("beta", 1.0))
    lip = LIPSCHITZ[node.attrs.get("activation", "")]
    return lip * (1.05 * (2.001 * U * sum_abs + U * sum_partial) + k * 2.0 ** -25) + 2.0 ** -20 * extra


# ---- running under qemu ---------------------------------------------------------------------------
def run_batch(exe: Path, root: Path, cases, allow_fp16: bool, threads: int = 1):
    """Writes the cases (once) and runs them in one mobrt_run --batch under qemu -cpu max;
    returns [(status lines, [outputs])]."""
    for k, (g, feeds, *_rest) in enumerate(cases):
        d = root / f"{k:03d}"
        if not (d / "model.mob").exists():
            (d / "inputs").mkdir(parents=True, exist_ok=True)
            (d / "model.mob").write_bytes(to_bytes(g))
            for i, name in enumerate(g.inputs):
                np.save(d / "inputs" / f"{i}.npy", np.ascontiguousarray(feeds[name]))
    flags = ["--allow-fp16"] if allow_fp16 else []
    p = subprocess.run([*QEMU_MAX, str(exe), "--batch", str(root), "--threads", str(threads), *flags],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    out = "outputs_any" + (f"_t{threads}" if threads > 1 else "") + ("_fp16" if allow_fp16 else "")
    results = []
    for k, (g, *_rest) in enumerate(cases):
        d = root / f"{k:03d}" / out
        status = (d / "status").read_text().splitlines()
        outs = [np.load(d / f"{j}.npy") for j in range(len(g.outputs))] if status[0] == "ok" else []
        results.append((status, outs))
    return results


def kernel_cases():
    rng = np.random.default_rng(2024)
    return [
        # GEMM conv: 1x1 (63 pixels = 3 panels of 16 + 15; 19 channels = 2 panels of 8 + 3)
        (*conv_case(rng, (1, 13, 7, 9), (19, 13, 1, 1), act="Clip"), "conv_f16_gemm_neon_fp16"),
        (*conv_case(rng, (2, 5, 11, 10), (12, 5, 3, 3), pads=[1, 1, 1, 1], act="HardSwish"), "conv_f16_gemm_neon_fp16"),
        (*conv_case(rng, (1, 4, 9, 12), (9, 4, 3, 3), bias=False, strides=[2, 2], pads=[0, 1, 1, 0]),
         "conv_f16_gemm_neon_fp16"),
        (*conv_case(rng, (1, 6, 8, 8), (10, 3, 3, 3), group=2, dilations=[2, 2], pads=[2, 2, 2, 2], act="Relu"),
         "conv_f16_gemm_neon_fp16"),
        (*conv_case(rng, (1, 24, 5, 7), (17, 24, 5, 3), strides=[1, 2], pads=[2, 1, 2, 1], residual=True),
         "conv_f16_gemm_neon_fp16"),
        (*conv_case(rng, (1, 64, 4, 4), (8, 64, 3, 3), pads=[1, 1, 1, 1]), "conv_f16_gemm_neon_fp16"),  # K = 576
        # depthwise (group = channels): ow not a multiple of 8, strides 1 and 2, asymmetric pads
        (*conv_case(rng, (1, 10, 13, 11), (10, 1, 3, 3), group=10, pads=[1, 1, 1, 1], act="Clip"),
         "conv_f16_dw_neon_fp16"),
        (*conv_case(rng, (2, 9, 14, 17), (9, 1, 3, 3), group=9, strides=[2, 2], pads=[1, 1, 1, 1], act="HardSwish"),
         "conv_f16_dw_neon_fp16"),
        (*conv_case(rng, (1, 5, 12, 19), (5, 1, 5, 5), group=5, strides=[2, 2], pads=[2, 1, 0, 2]),
         "conv_f16_dw_neon_fp16"),
        (*conv_case(rng, (1, 3, 10, 9), (3, 1, 3, 3), group=3, dilations=[2, 2], pads=[2, 2, 2, 2], residual=True),
         "conv_f16_dw_neon_fp16"),
        # Gemm / MatMul: 37 rows = 2 blocks of 16 + 5 single rows; 21 features = 2 panels + 5
        (*gemm_case(rng, "Gemm", (37, 50), 50, 21, trans_b=True, alpha=0.5, beta=2.0, act="Relu"),
         "gemm_f16_packed_neon_fp16"),
        (*gemm_case(rng, "Gemm", (1, 64), 64, 10), "gemm_f16_packed_neon_fp16"),
        (*gemm_case(rng, "Gemm", (16, 300), 300, 40, bias=False, act="HardSwish"), "gemm_f16_packed_neon_fp16"),
        (*gemm_case(rng, "MatMul", (2, 3, 20, 33), 33, 17), "matmul_f16_packed_neon_fp16"),
    ]


def _kernels(status):
    return [line.split()[2] for line in status[1:] if line.startswith("kernel ")]


def test_fp16_kernels_under_qemu_within_the_fp16_bound(mobrt_run_aarch64, tmp_path):
    cases = kernel_cases()
    fp16 = run_batch(mobrt_run_aarch64, tmp_path, cases, allow_fp16=True)
    fp16_t2 = run_batch(mobrt_run_aarch64, tmp_path, cases, allow_fp16=True, threads=2)
    fp32 = run_batch(mobrt_run_aarch64, tmp_path, cases, allow_fp16=False)
    worst = []
    for k, (g, feeds, act, kernel) in enumerate(cases):
        where = f"case {k} ({g.nodes[0].op} {[np.shape(v) for v in feeds.values()]} act={act or 'none'})"
        want = ref_run(g, feeds)["y"].astype(np.float64)
        (st16, (y16,)), (st16t2, (y16t2,)), (st32, (y32,)) = fp16[k], fp16_t2[k], fp32[k]
        assert st16[0] == "ok" and _kernels(st16) == [kernel], f"{where}: {st16}"
        assert _kernels(st32)[0].endswith("_neon") and "f16" not in _kernels(st32)[0], f"{where}: {st32}"
        assert np.array_equal(y16, y16t2), f"{where}: fp16 results differ between 1 and 2 threads"
        bound = error_bound(g, feeds)
        err = np.abs(y16.astype(np.float64) - want)
        bad = np.argwhere(err > bound)
        assert not len(bad), (f"{where}: {len(bad)} of {err.size} beyond the fp16 bound, first at "
                              f"{tuple(bad[0])}: got {y16[tuple(bad[0])]}, want {want[tuple(bad[0])]}, "
                              f"bound {bound[tuple(bad[0])]:.3g}")
        assert err.max() > 0, f"{where}: equal to float32: the fp16 kernel did not round anything"
        # the float32 kernel is far closer: the difference measured is fp16's
        assert np.abs(y32 - want).max() <= 1e-5 * (1 + np.abs(want).max()), where
        worst.append(float((err / bound).max()))
    assert max(worst) > 0.01, f"the bound is loose everywhere (max err/bound {max(worst):.3g})"


def test_fp16_kernels_refuse_what_fp16_cannot_hold(mobrt_run_aarch64, tmp_path):
    """A weight beyond fp16's range (65504) keeps the float32 kernel even with --allow-fp16."""
    rng = np.random.default_rng(5)
    g, feeds, _ = conv_case(rng, (1, 3, 6, 6), (4, 3, 3, 3), pads=[1, 1, 1, 1])
    g.values["w"].data = g.values["w"].data.copy()
    g.values["w"].data[0, 0, 0, 0] = 1e5
    (status, (y,)), = run_batch(mobrt_run_aarch64, tmp_path, [(g, feeds)], allow_fp16=True)
    assert _kernels(status)[0].endswith("_neon") and "f16" not in _kernels(status)[0], status
    want = ref_run(g, feeds)["y"]
    assert np.allclose(y, want, rtol=1e-5, atol=1e-3)


def test_model_metadata_allows_fp16_compute(mobrt_run_aarch64, tmp_path):
    """quantization.fp16_compute = allow (written by the fp16 scheme) turns the fp16 kernels
    on without the option; float32 (or no entry) does not."""
    rng = np.random.default_rng(6)
    cases = []
    for value in ("allow", "float32"):
        g, feeds, _ = conv_case(rng, (1, 8, 6, 6), (8, 8, 3, 3), pads=[1, 1, 1, 1])
        g.metadata.extra[FP16_COMPUTE_KEY] = value
        cases.append((g, feeds))
    (st_allow, (y_allow,)), (st_f32, (y_f32,)) = run_batch(mobrt_run_aarch64, tmp_path, cases, allow_fp16=False)
    assert _kernels(st_allow) == ["conv_f16_gemm_neon_fp16"], st_allow
    assert _kernels(st_f32)[0].endswith("_neon") and "f16" not in _kernels(st_f32)[0], st_f32
    for (g, feeds), y in zip(cases, (y_allow, y_f32)):
        assert (np.abs(y - ref_run(g, feeds)["y"]) <= error_bound(g, feeds)).all()


def test_bad_fp16_compute_metadata_is_a_load_error(tmp_path):
    g, feeds, _ = conv_case(np.random.default_rng(7), (1, 2, 4, 4), (2, 2, 1, 1))
    g.metadata.extra[FP16_COMPUTE_KEY] = "sometimes"
    path = tmp_path / "bad.mob"
    path.write_bytes(to_bytes(g))
    with pytest.raises(runtime.ModelFormatError, match=r"bad\.mob.*quantization\.fp16_compute must be allow or float32, got 'sometimes'"):
        runtime.Interpreter(str(path))


# ---- a whole fp16 model ------------------------------------------------------------------------
MODEL_IMAGES = 64  # qemu runs fp16 arithmetic in software: ~0.2 s per digit image


def test_fp16_digits_mobilenetv2_computes_in_fp16_under_qemu(mobrt_run_aarch64, tmp_path):
    """`mobconv quantize --scheme fp16` of the digits MobileNetV2 runs its Conv/Gemm nodes in
    fp16 under qemu -cpu max (the model's metadata allows it; no option given): the top-1
    class equals the float32 model's on the first held-out digits, and the logits stay
    within 1e-2 of the largest float32 logit. Measured 3.5e-3 (the fp16 weight storage
    alone gives 4.6e-4, docs/quantization.md): 25 convolutions and a Gemm, each within the few-u
    bound checked per kernel above (u = 2^-11 = 4.9e-4) compound to a few times 1e-3;
    1e-2 (20 u) leaves a margin of about 3 while a wrong kernel is off by O(1)."""
    f32 = tmp_path / "digits_mobilenetv2.mob"
    f16 = tmp_path / "digits_mobilenetv2.fp16.mob"
    for args in (["onnx2mob", str(ZOO / "digits_mobilenetv2.onnx"), "-o", str(f32)],
                 ["quantize", str(f32), "--scheme", "fp16", "-o", str(f16)]):
        p = subprocess.run([sys.executable, "-m", "mobconv", *args], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    x = np.load(ZOO / "digits_heldout.npz")["images"].astype(np.float32)[:MODEL_IMAGES]
    with runtime.Interpreter(str(f32)) as it:
        want = it.run({"input": x})["logits"]
    root = tmp_path / "cases"
    (root / "m" / "inputs").mkdir(parents=True)
    shutil.copy(f16, root / "m" / "model.mob")
    np.save(root / "m" / "inputs" / "0.npy", x)
    p = subprocess.run([*QEMU_MAX, str(mobrt_run_aarch64), "--batch", str(root)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    status = (root / "m" / "outputs_any" / "status").read_text().splitlines()
    assert status[0] == "ok", status
    ran = [line.split()[1:3] for line in status[1:]]  # [op, kernel]
    assert {k for op, k in ran if op == "Conv"} == {"conv_f16_gemm_neon_fp16", "conv_f16_dw_neon_fp16"}, status
    assert [k for op, k in ran if op == "Gemm"] == ["gemm_f16_packed_neon_fp16"], status
    got = np.load(root / "m" / "outputs_any" / "0.npy")
    assert np.array_equal(got.argmax(1), want.argmax(1)), \
        f"top-1 differs on {np.flatnonzero(got.argmax(1) != want.argmax(1)).tolist()}"
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert 0 < rel <= 1e-2, rel


def test_allow_fp16_changes_nothing_without_fp16_hardware():
    """On a CPU without fp16 arithmetic (this x86-64 host) the option and the fp16 model's
    metadata change nothing: same kernels, bit-identical outputs (weights widened at load)."""
    assert "neon_fp16" not in runtime.supported_isas()
    rng = np.random.default_rng(8)
    g, feeds, _ = conv_case(rng, (1, 8, 9, 9), (16, 8, 3, 3), pads=[1, 1, 1, 1], act="Clip")
    g.metadata.extra[FP16_COMPUTE_KEY] = "allow"
    data = to_bytes(g)
    with runtime.Interpreter(data) as a, runtime.Interpreter(data, allow_fp16=True) as b:
        ya, yb = a.run(feeds)["y"], b.run(feeds)["y"]
        assert [k for _, _, k in a.kernels()] == [k for _, _, k in b.kernels()]
        assert not any("f16" in k for _, _, k in b.kernels())
    assert np.array_equal(ya, yb)
