"""Dynamic-range int8 MatMul/Gemm (docs/quantization.md, "Dynamic-range int8"): float32
activations quantized per row at run time, int8 constant weights, float32 output.

- the numpy oracle (mobconv/ops/dynamic_quant.py) on hand-worked rows and against
  float64 arithmetic on its own integers;
- the C++ kernels (reference, AVX2, AVX512-VNNI; NEON and NEON dot product under
  qemu-aarch64) equal the oracle bit for bit under every instruction-set cap at 1 and 2
  threads, on
  sizes around the vector widths and tiles, zero / huge / tiny / subnormal / NaN / inf
  rows, per-tensor and per-column weights, bias, transB, Relu/Clip, batched MatMul;
- models breaking the rules are refused at load, naming the operator;
- `lower_qdq(dynamic=True)` and `mobconv quantize --scheme dynamic` end to end on an MLP
  trained (numpy, closed form) on the digits split of the model zoo: held-out accuracy
  against float, `mobconv info` and `mobconv run`.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from int8_harness import QEMU_MAX
from mobconv import runtime
from mobconv.errors import MobconvError
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, QuantParams, infer_shapes
from mobconv.ops import dynamic_quant as dq
from mobconv.reference.interpreter import run as ref_run
from test_runtime_aarch64 import mobrt_run_aarch64  # noqa: F401  (a session fixture)

ROOT = Path(__file__).resolve().parents[1]
EXPECT = {"scalar": "dynamic_q8_reference", "avx2": "dynamic_q8_avx2", "avx512": "dynamic_q8_avx2",
          "avx512_vnni": "dynamic_q8_avx512_vnni"}


# ---- the oracle ----------------------------------------------------------------------------


def test_quantize_rows_hand_worked():
    a = np.array([[1.0, -0.5, 0.25, 0.0],        # amax 1: inv 127, -63.5 -> -64 (ties to even)
                  [0.0, 0.0, 0.0, 0.0],           # zeros: s_a 0
                  [2.0, np.nan, 0.0, 1.0],        # NaN: flagged
                  [-np.inf, 1.0, 0.0, 0.0],       # inf: flagged
                  [1e-38, -1e-38, 0.0, 0.0],      # 127 / 1e-38 overflows float32: zeros
                  [3.0, 1.5, -3.0, 0.0351]], np.float32)
    q, s_a, bad = dq.quantize_rows(a)
    assert q[0].tolist() == [127, -64, 32, 0]
    assert s_a[0] == np.float32(1) / np.float32(127)
    assert q[1].tolist() == [0, 0, 0, 0] and s_a[1] == 0
    assert bad.tolist() == [False, False, True, True, False, False]
    assert q[4].tolist() == [0, 0, 0, 0] and s_a[4] == 0
    # 1.5 * (127 / 3) = 63.5 -> 64 (even); 0.0351 * 42.333 = 1.486 -> 1
    assert q[5].tolist() == [127, 64, -127, 1]
    assert s_a[5] == np.float32(3) / np.float32(127)


def test_gemm_rows_equals_float64_of_its_integers():
    """y = float(acc) * (s_a * s_w) + b, each a float32 rounding: within a few ulps of the
    float64 value of the same integers, and close to the float product."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 40)).astype(np.float32)
    w = rng.integers(-127, 128, (40, 9)).astype(np.int8)
    s_w = (10 ** rng.uniform(-3, -1, 9)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    y = dq.gemm_rows(a, w, s_w, b)
    q, s_a, _ = dq.quantize_rows(a)
    exact = (q.astype(np.float64) @ w.astype(np.float64)) * (s_a[:, None].astype(np.float64) * s_w) + b
    assert np.allclose(y, exact, rtol=1e-6, atol=1e-6)
    real = a.astype(np.float64) @ (w.astype(np.float64) * s_w) + b
    assert np.abs(y - real).max() < 0.02 * np.abs(real).max()


# ---- graphs ------------------------------------------------------------------------------------


def _graph(op, a_shape, w, wq, bias=None, **attrs):
    g = Graph("dyn")
    g.add_input("a", "float32", a_shape)
    g.add_constant("w", w)
    g.values["w"].quant = wq
    ins = ["a", "w"]
    if bias is not None:
        g.add_constant("c", bias)
        ins.append("c")
    g.add_node(op, ins, ["y"], attrs, name="fc")
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def _wq(rng, n, per_channel, axis):
    if per_channel:
        return QuantParams([float(s) for s in (10 ** rng.uniform(-3, 0, n)).astype(np.float32)], [0] * n, axis)
    return QuantParams([float(np.float32(10 ** rng.uniform(-3, 0)))], [0], None)


def _rows(rng, m, k, kind):
    a = rng.standard_normal((m, k)).astype(np.float32)
    if kind == "scaled":  # every row its own magnitude, 1e-30 .. 1e30
        a *= (10 ** rng.uniform(-30, 30, (m, 1))).astype(np.float32)
    elif kind == "hostile" and m >= 1:
        special = [np.zeros(k), np.full(k, 3.4e38), np.full(k, -1e-40), np.full(k, 4e-37),
                   np.full(k, 1e-37), np.where(np.arange(k) == k - 1, np.nan, 1.0),
                   np.where(np.arange(k) == 0, -np.inf, 1.0), np.where(np.arange(k) % 2, 2.5, -2.5),
                   np.where(np.arange(k) == k // 2, np.inf, 0.0)]
        for i in range(min(m, len(special))):
            a[i] = special[i]
    return a


def _cases():
    """(graph, feeds) for the native and the qemu runs."""
    rng = np.random.default_rng(9)
    cases = []
    sizes = [(1, 1, 1), (1, 7, 8), (3, 8, 15), (4, 16, 16), (5, 17, 17), (1, 31, 63), (2, 32, 64),
             (9, 33, 65), (4, 64, 129), (1, 65, 7), (6, 127, 33), (8, 129, 200), (13, 3, 5), (2, 250, 1)]
    for i, (m, k, n) in enumerate(sizes):
        trans_b = i % 2
        w = rng.integers(-128, 128, (n, k) if trans_b else (k, n)).astype(np.int8)
        wq = _wq(rng, n, i % 3 != 0, 0 if trans_b else 1)
        bias = rng.standard_normal(n).astype(np.float32) * 3 if i % 4 != 1 else None
        act = ["", "Relu", "Clip"][i % 3]
        attrs = {"transB": trans_b, "activation": act, "activation_params": [-0.75, 1.5] if act == "Clip" else []}
        kind = ["plain", "scaled", "hostile"][i % 3]
        cases.append((_graph("Gemm", (m, k), w, wq, bias, **attrs), {"a": _rows(rng, m, k, kind)}))
    # MatMul: batched A, 1-D A, and a per-column B
    for shape, n in (((2, 3, 20), 24), ((20,), 17), ((2, 1, 5, 48), 70)):
        k = shape[-1]
        w = rng.integers(-127, 128, (k, n)).astype(np.int8)
        a = _rows(rng, int(np.prod(shape[:-1])), k, "hostile").reshape(shape)
        cases.append((_graph("MatMul", shape, w, _wq(rng, n, True, 1), activation="Relu"), {"a": a}))
    # 1x1 Conv: each pixel's channel vector is a row (gathered at stride H*W)
    for i, (n, c, hw, m) in enumerate(((1, 3, (4, 4), 5), (2, 17, (3, 5), 33), (1, 64, (7, 7), 70), (3, 1, (1, 1), 1),
                                      (1, 130, (2, 3), 16), (2, 9, (5,), 20))):
        w = rng.integers(-128, 128, (m, c) + (1,) * len(hw)).astype(np.int8)
        act = ["", "Relu", "Clip"][i % 3]
        attrs = {"activation": act, "activation_params": [-0.5, 0.5] if act == "Clip" else []}
        bias = rng.standard_normal(m).astype(np.float32) if i % 2 == 0 else None
        x = _rows(rng, n * int(np.prod(hw)), c, ["plain", "scaled", "hostile"][i % 3])
        x = np.ascontiguousarray(x.reshape((n,) + hw + (c,)).transpose((0, len(hw) + 1) + tuple(range(1, len(hw) + 1))))
        cases.append((_graph("Conv", x.shape, w, _wq(rng, m, i % 2 == 1, 0), bias, **attrs), {"a": x}))
    # all weights at the int8 extremes, activations at +-amax: the largest sums
    k = 300
    w = np.where(rng.random((k, 40)) < 0.5, -128, 127).astype(np.int8)
    a = np.ascontiguousarray(np.where(w[:, :4].T > 0, 5.0, -5.0), dtype=np.float32)
    cases.append((_graph("Gemm", (4, k), w, _wq(rng, 40, True, 1)), {"a": a}))
    return cases


def _equal(got, want) -> bool:
    return got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want, equal_nan=True)


def _first_diff(got, want):
    bad = np.argwhere(~((got == want) | (np.isnan(got) & np.isnan(want))))
    i = tuple(bad[0])
    return f"{len(bad)} differ, first at {i}: runtime {got[i]!r} reference {want[i]!r}"


@pytest.mark.parametrize("case", range(len(_cases())))
def test_every_isa_equals_oracle(case):
    g, feeds = _cases()[case]
    want = ref_run(g, feeds)["y"]
    data = to_bytes(g)
    assert runtime.available(), "the C++ runtime is not built"
    for isa in runtime.supported_isas():
        for t in (1, 2):
            with runtime.Interpreter(data, threads=t, isa=isa) as it:
                got = it.run(feeds)["y"]
                kernels = [k for _, _, k in it.kernels()]
            where = f"isa={isa} threads={t} kernels={kernels}"
            assert _equal(got, want), f"{where}: {_first_diff(got, want)}"
            if isa in EXPECT:
                assert EXPECT[isa] in kernels[0], f"{where}: expected *{EXPECT[isa]}*"


@pytest.mark.parametrize("op, m, k, n", [("Gemm", 0, 5, 3), ("Gemm", 2, 0, 3), ("Gemm", 2, 5, 0), ("MatMul", 3, 0, 4)])
def test_empty_dims(op, m, k, n):
    """Zero rows, an empty reduction (K = 0: every output is the bias) or zero columns."""
    rng = np.random.default_rng(6)
    bias = rng.standard_normal(n).astype(np.float32) if op == "Gemm" else None
    g = _graph(op, (m, k), np.zeros((k, n), np.int8), _wq(rng, n, False, 1), bias)
    feeds = {"a": np.ones((m, k), np.float32)}
    want = ref_run(g, feeds)["y"]
    assert want.shape == (m, n)
    if k == 0 and bias is not None:
        assert np.array_equal(want, np.broadcast_to(bias, (m, n)))
    for isa in runtime.supported_isas():
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            assert _equal(it.run(feeds)["y"], want), isa


def test_nan_rows_give_nan_and_others_do_not():
    rng = np.random.default_rng(3)
    g = _graph("Gemm", (3, 10), rng.integers(-127, 128, (10, 6)).astype(np.int8), _wq(rng, 6, True, 1),
               rng.standard_normal(6).astype(np.float32), activation="Relu")
    a = rng.standard_normal((3, 10)).astype(np.float32)
    a[1, 4] = np.nan
    for y in (ref_run(g, {"a": a})["y"], runtime.Interpreter(to_bytes(g)).run({"a": a})["y"]):
        assert np.isnan(y[1]).all() and not np.isnan(y[[0, 2]]).any()


def test_aarch64_under_qemu(mobrt_run_aarch64, tmp_path):  # noqa: F811
    """The aarch64 kernels (scalar reference, armv8.0 NEON smull/sadalp, armv8.2 sdot; GCC
    contracts a*b+c there by default) equal the oracle, NaN rows included, at 1 and 2 threads."""
    cases = _cases()
    wants = []
    for k, (g, feeds) in enumerate(cases):
        d = tmp_path / f"{k:04d}"
        (d / "inputs").mkdir(parents=True)
        (d / "model.mob").write_bytes(to_bytes(g))
        np.save(d / "inputs" / "0.npy", np.ascontiguousarray(feeds["a"]))
        wants.append(ref_run(g, feeds)["y"])
    suffix = {"scalar": "reference", "neon": "neon", "neon_dot": "neon_dot"}
    for isa in suffix:
        for t in (1, 2):
            proc = subprocess.run([*QEMU_MAX, str(mobrt_run_aarch64), "--batch", str(tmp_path), "--isa", isa,
                                   "--threads", str(t)], capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr[-2000:]
            out = f"outputs_{isa}" + (f"_t{t}" if t > 1 else "")
            for k, want in enumerate(wants):
                status = (tmp_path / f"{k:04d}" / out / "status").read_text().splitlines()
                assert status and status[0] == "ok", (k, isa, t, status)
                kernels = [line.split()[2] for line in status[1:] if line.startswith("kernel ")]
                assert kernels and kernels[0].endswith(f"dynamic_q8_{suffix[isa]}"), (k, isa, kernels)
                got = np.load(tmp_path / f"{k:04d}" / out / "0.npy")
                assert _equal(got, want), f"case {k} isa={isa} threads={t}: {_first_diff(got, want)}"


# ---- refusals ------------------------------------------------------------------------------


def test_conv_that_is_not_pointwise_is_refused(tmp_path):
    rng = np.random.default_rng(8)
    g = Graph("dyn")
    g.add_input("a", "float32", (1, 4, 6, 6))
    g.add_constant("w", rng.integers(-127, 128, (3, 4, 3, 3)).astype(np.int8))
    g.values["w"].quant = _wq(rng, 3, True, 0)
    g.add_node("Conv", ["a", "w"], ["y"], {"pads": [1, 1, 1, 1]}, name="fc")
    g.outputs = ["y"]
    infer_shapes(g)
    with pytest.raises(MobconvError, match="is 1x1, stride 1"):
        ref_run(g, {"a": np.ones((1, 4, 6, 6), np.float32)})
    path = tmp_path / "bad.mob"
    path.write_bytes(to_bytes(g))
    with pytest.raises(Exception, match="'fc' \\(Conv\\): a dynamic-range int8 Conv is 1x1, stride 1"):
        runtime.Interpreter(str(path))


@pytest.mark.parametrize("change, rule", [
    ("zero_point", "zero points 0"),
    ("axis", "per tensor or per output column"),
    ("sigmoid", "Relu or Clip"),
    ("alpha", "alpha = beta = 1"),
])
def test_rule_breaking_nodes_are_refused(change, rule, tmp_path):
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (8, 5)).astype(np.int8)
    wq = _wq(rng, 5, True, 1)
    attrs = {}
    if change == "zero_point":
        wq = QuantParams(wq.scales, [0, 0, 3, 0, 0], 1)
    elif change == "axis":
        w = rng.integers(-127, 128, (5, 5)).astype(np.int8)
        wq = QuantParams(wq.scales, [0] * 5, 0)
    elif change == "sigmoid":
        attrs = {"activation": "Sigmoid"}
    else:
        attrs = {"alpha": 2.0}
    g = _graph("Gemm", (2, w.shape[0]), w, wq, **attrs)
    path = tmp_path / "bad.mob"
    path.write_bytes(to_bytes(g))
    with pytest.raises(MobconvError, match=rule):
        ref_run(g, {"a": np.ones((2, w.shape[0]), np.float32)})
    with pytest.raises(Exception) as exc:
        runtime.Interpreter(str(path))
    assert "'fc' (Gemm)" in str(exc.value) and rule in str(exc.value), str(exc.value)


# ---- lowering and the quantizer ------------------------------------------------------------------


def _mlp_float(hidden=256, seed=0):
    """Gemm(784 -> hidden) + Relu -> Gemm(hidden -> 10) on the zoo's digits split: random
    first layer, least-squares output layer (numpy, closed form)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from model_zoo.torch.digits_train import load_split

    x_train, y_train, _, _ = load_split()
    x = x_train.reshape(len(x_train), -1)
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((hidden, x.shape[1])) * 0.1).astype(np.float32)
    b1 = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
    h = np.maximum(x @ w1.T + b1, 0)
    h1 = np.concatenate([h, np.ones((len(h), 1), np.float32)], 1)
    onehot = np.eye(10, dtype=np.float32)[y_train]
    sol = np.linalg.solve(h1.T @ h1 + 1e-1 * np.eye(h1.shape[1]), h1.T @ onehot).astype(np.float32)
    g = Graph("digits_mlp")
    g.add_input("input", "float32", ("N", 1, 28, 28))
    g.add_constant("shape", np.array([-1, 784], np.int64))
    g.add_constant("w1", w1)
    g.add_constant("b1", b1)
    g.add_constant("w2", np.ascontiguousarray(sol[:-1]))
    g.add_constant("b2", np.ascontiguousarray(sol[-1]))
    g.add_node("Reshape", ["input", "shape"], ["flat"], name="flatten")
    g.add_node("Gemm", ["flat", "w1", "b1"], ["h"], {"transB": 1, "activation": "Relu"}, name="fc1")
    g.add_node("Gemm", ["h", "w2", "b2"], ["logits"], name="fc2")
    g.outputs = ["logits"]
    infer_shapes(g)
    return g


def test_lower_qdq_dynamic_rewrites_only_when_asked():
    from mobconv.passes.lower_qdq import lower_qdq
    from quantize.config import QuantConfig
    from quantize.qdq import insert_qdq

    g = _mlp_float(hidden=32)
    qdq = insert_qdq(g, {}, QuantConfig.create(scheme="int8-weights"))
    plain = lower_qdq(qdq.copy())
    assert sum(n.op == "DequantizeLinear" for n in plain.nodes) == 2  # int8-weights: unchanged
    dyn = lower_qdq(qdq.copy(), dynamic=True)
    assert not any(n.op == "DequantizeLinear" for n in dyn.nodes)
    for node in (n for n in dyn.nodes if n.op == "Gemm"):
        w = dyn.values[node.inputs[1]]
        assert w.dtype == "int8" and w.quant is not None and not any(w.quant.zero_points)
    x = np.load(ROOT / "model_zoo/onnx/digits_heldout.npz")["images"][:16]
    want = ref_run(plain, {"input": x})["logits"]
    got = ref_run(dyn, {"input": x})["logits"]
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9


def test_cli_dynamic_scheme_end_to_end(tmp_path):
    """mobconv quantize --scheme dynamic: the MLP's Gemms become dynamic-range int8; held-out
    accuracy within 1 point of float; info shows the scheme; run executes the file."""
    from mobconv.api import Model

    g = _mlp_float()
    src = tmp_path / "mlp.mob"
    Model(g).save(str(src))
    out = tmp_path / "mlp.dyn8.mob"
    cli = [sys.executable, "-m", "mobconv"]
    proc = subprocess.run([*cli, "quantize", str(src), "--scheme", "dynamic", "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "scheme dynamic" in proc.stdout and "2 of 3 ops dynamic-range int8" in proc.stdout, proc.stdout
    info = subprocess.run([*cli, "info", str(out)], capture_output=True, text=True)
    assert info.returncode == 0 and "scheme dynamic" in info.stdout, info.stdout

    held = np.load(ROOT / "model_zoo/onnx/digits_heldout.npz")
    x, labels = held["images"], held["labels"]
    with runtime.Interpreter(str(src)) as it:
        float_acc = (it.run({"input": x})["logits"].argmax(1) == labels).mean()
    with runtime.Interpreter(str(out)) as it:
        got = it.run({"input": x})["logits"]
        assert all("dynamic_q8" in k for _, op, k in it.kernels() if op == "Gemm"), it.kernels()
    from mobconv.api import load

    want = ref_run(load(str(out)).graph, {"input": x})["logits"]
    assert np.array_equal(got, want)  # the runtime equals the oracle on the whole model
    dyn_acc = (got.argmax(1) == labels).mean()
    assert float_acc > 0.85, float_acc
    assert dyn_acc >= float_acc - 0.01, (dyn_acc, float_acc)

    np.save(tmp_path / "x.npy", x[:2])
    run = subprocess.run([*cli, "run", str(out), "--input", str(tmp_path / "x.npy")], capture_output=True, text=True)
    assert run.returncode == 0 and "logits" in run.stdout, run.stdout + run.stderr


def test_optimize_does_not_fuse_other_activations_into_a_dynamic_node():
    """passes.optimize on a dynamic-range graph: a Relu fuses, a LeakyRelu stays a float node
    (fused, the node would be refused: dynamic-range int8 fuses Relu/Clip only)."""
    from mobconv.passes import optimize

    rng = np.random.default_rng(5)
    for act, fused in (("LeakyRelu", False), ("Relu", True)):
        g = _graph("MatMul", (3, 8), rng.integers(-127, 128, (8, 4)).astype(np.int8), _wq(rng, 4, True, 1))
        g.add_node(act, ["y"], ["o"], {"alpha": 0.1} if act == "LeakyRelu" else {}, name="act")
        g.outputs = ["o"]
        infer_shapes(g)
        a = rng.standard_normal((3, 8)).astype(np.float32)
        want = ref_run(g, {"a": a})["o"]
        optimize(g)
        assert (len(g.nodes) == 1) == fused, [(n.op, n.attrs) for n in g.nodes]
        assert np.array_equal(ref_run(g, {"a": a})["o"], want)


def test_quantized_output_is_refused_at_load(tmp_path):
    """Float A and an int8 weight but an int8 output with parameters is neither form."""
    rng = np.random.default_rng(7)
    g = _graph("Gemm", (2, 6), rng.integers(-127, 128, (6, 3)).astype(np.int8), _wq(rng, 3, True, 1))
    g.values["y"].dtype = "int8"
    g.values["y"].quant = QuantParams([0.1], [0], None)
    with pytest.raises(MobconvError, match="needs quantization parameters on every input"):
        ref_run(g, {"a": np.ones((2, 6), np.float32)})
    path = tmp_path / "bad.mob"
    path.write_bytes(to_bytes(g))
    with pytest.raises(Exception, match="'fc' \\(Gemm\\): a dynamic-range int8 Gemm needs a float32 output"):
        runtime.Interpreter(str(path))


def test_mobilenetv2_dynamic_pointwise_convs(monkeypatch):
    """The zoo's digits MobileNetV2 under --scheme dynamic: by default only the classifier
    (its 1x1 convs have fewer than CONV_MIN_CHANNELS channels: slower in dynamic form);
    with the threshold at 0 its 16 pointwise convs too (3x3 and depthwise stay float), the
    runtime runs them with the dynamic kernels and the predictions match float."""
    import mobconv
    from mobconv import quantize
    from mobconv.passes import lower_dynamic

    model = mobconv.convert(str(ROOT / "model_zoo/onnx/digits_mobilenetv2.onnx"))

    def dynamic_nodes(q):
        return [n for n in q.graph.nodes if n.op in ("Conv", "Gemm") and q.graph.values[n.inputs[1]].dtype == "int8"]

    assert [n.op for n in dynamic_nodes(quantize.quantize(model, scheme="dynamic"))] == ["Gemm"]
    monkeypatch.setattr(lower_dynamic, "CONV_MIN_CHANNELS", 0)
    q = quantize.quantize(model, scheme="dynamic")
    dyn = dynamic_nodes(q)
    assert len(dyn) == 17 and sum(n.op == "Gemm" for n in dyn) == 1
    held = np.load(ROOT / "model_zoo/onnx/digits_heldout.npz")
    x = held["images"][:24]
    want = ref_run(q.graph, {"input": x})["logits"]
    with runtime.Interpreter(to_bytes(q.graph), threads=2) as it:
        got = it.run({"input": x})["logits"]
        kernels = dict((name, k) for name, _, k in it.kernels())
    assert all("dynamic_q8" in kernels[n.name] for n in dyn), kernels
    # the float ops between them (3x3/depthwise convs, adds) are not bit-exact across
    # implementations, and a last-bit change can move a row's rounding: close, not equal
    assert np.abs(got - want).max() <= 1e-2 * np.abs(want).max()
    assert np.array_equal(got.argmax(1), want.argmax(1))
    float_out = ref_run(model.graph, {"input": x})["logits"]
    assert (want.argmax(1) == float_out.argmax(1)).mean() >= 23 / 24


def test_dynamic_scheme_refuses_calibration_data_and_int8_options():
    from mobconv.api import Model
    from mobconv.errors import ArgumentError
    from mobconv import quantize

    model = Model(_graph("MatMul", (2, 8), np.zeros((8, 4), np.int8), QuantParams([0.1], [0], None)))
    with pytest.raises(ArgumentError, match="scheme='dynamic' uses no calibration data"):
        quantize.quantize(model, [{"a": np.ones((2, 8), np.float32)}], scheme="dynamic")
    with pytest.raises(ArgumentError, match="method applies to scheme='int8' only"):
        quantize.quantize(model, scheme="dynamic", method="minmax")
