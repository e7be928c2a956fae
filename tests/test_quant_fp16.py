"""fp16 weight storage (quantize/fp16.py) and load-time widening in the C++ runtime.

- The trained digits nets (model_zoo/onnx, real held-out images) and the zoo
  ResNet-18 recipe: float16 weights halve the weight bytes and keep the outputs within
  1e-3 of float32 (max|a-b|/max|a|) with no argmax flip.
- Oracle for the runtime: the same graph with every Cast-of-constant replaced by hand
  by its float32 value (`widened`). The fp16 model must give bit-identical outputs on
  every instruction set (and on NEON under qemu), select the same (fast) kernels,
  execute no Cast and need the same arena: the Cast ran once, at load.
- Ops of constants in general (a DequantizeLinear -> Transpose chain) also run once at
  load; a MatMul B that only becomes known at prepare (Shape-dependent) runs on every ISA
  (it crashed the optimized MatMul).
- What float16 cannot hold stays float32 with the reason in the metadata.
- `mobconv quantize --scheme fp16` and `quantize.quantize(scheme="fp16")` end to end.
"""
from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobconv import api
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph
from mobconv.ir.infer import infer_shapes
from mobconv.reference.interpreter import run as reference_run
from mobconv.quantize.fp16 import KEPT_KEY, MIN_ELEMENTS, plan_fp16, to_fp16
from runtime_cases import native_isas
from test_runtime_aarch64 import QEMU, mobrt_run_aarch64  # noqa: F401  (a fixture: the aarch64 build)

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.fail("libmobrt is not built (pip install -e .)", pytrace=False)

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "model_zoo" / "onnx"
DIGITS = ("digits_resnet", "digits_mobilenetv2")


@pytest.fixture(scope="module")
def heldout():
    return np.load(ZOO / "digits_heldout.npz")["images"].astype(np.float32)


@pytest.fixture(scope="module")
def digits():
    """name -> converted float Model (cached for the module)."""
    return {name: api.convert(str(ZOO / f"{name}.onnx")) for name in DIGITS}


def widened(graph16: Graph) -> Graph:
    """`graph16` with each Cast of a float16 constant replaced by its float32 value,
    computed here with numpy: what load-time widening must be equivalent to."""
    g = graph16.copy()
    keep = []
    for node in g.nodes:
        src = g.values.get(node.inputs[0]) if node.op == "Cast" else None
        if src is not None and src.data is not None and src.dtype == "float16":
            g.values[node.outputs[0]].data = src.data.astype(np.float32)
            del g.values[node.inputs[0]]
        else:
            keep.append(node)
    g.nodes[:] = keep
    return g


def executed(it) -> list:
    """(op type, kernel name) of each operator the last invoke executed."""
    entry = runtime._ProfileEntry()
    out = []
    for i in range(it._lib.mobrt_interpreter_profile_count(it._it)):
        assert it._lib.mobrt_interpreter_profile_entry(it._it, i, ctypes.byref(entry)) == 0
        out.append((entry.op_type.decode(), entry.kernel.decode()))
    return out


def rel_err(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ---- size and accuracy ----------------------------------------------------------------


@pytest.mark.parametrize("name", DIGITS)
def test_trained_digits_net_fp16_halves_weights_within_1e3(digits, heldout, name, tmp_path):
    model = digits[name]
    half = api.Model(to_fp16(model.graph))
    model.save(tmp_path / "f32.mob")
    half.save(tmp_path / "f16.mob")
    f32, f16 = api.load(tmp_path / "f32.mob"), api.load(tmp_path / "f16.mob")
    s32, s16 = f32.summary(), f16.summary()
    converted = sum(c.elements for c in plan_fp16(model.graph) if c.to_fp16)
    assert s16.bytes_by_dtype["float16"] == 2 * converted
    # constants under MIN_ELEMENTS stay float32: 4.8% of the digits MobileNetV2's weights
    assert s16.param_bytes <= 0.53 * s32.param_bytes, (s16.param_bytes, s32.param_bytes)
    # the graph itself (nodes, names) is a fixed cost: ~15% of these small files
    assert f16.file_size <= 0.65 * f32.file_size, (f16.file_size, f32.file_size)
    a = f32.run({"input": heldout}, backend="runtime")["logits"]
    b = f16.run({"input": heldout}, backend="runtime")["logits"]
    assert rel_err(b, a) <= 1e-3, rel_err(b, a)
    assert np.array_equal(a.argmax(1), b.argmax(1))


def test_zoo_resnet18_fp16_file_is_half(tmp_path):
    onnx = pytest.importorskip("onnx")
    from model_zoo.onnx.resnet18 import build_resnet18

    path = tmp_path / "resnet18.onnx"
    onnx.save(build_resnet18(width=0.5, num_classes=100, image_size=64), str(path))
    model = api.convert(str(path), input_shapes={"input": [2, 3, 64, 64]})
    f32, f16 = to_bytes(model.graph), to_bytes(to_fp16(model.graph))
    assert 0.49 <= len(f16) / len(f32) <= 0.51, (len(f16), len(f32))
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with runtime.Interpreter(f32) as i32, runtime.Interpreter(f16) as i16:
        a, b = i32.run({"input": x}), i16.run({"input": x})
    for k in a:
        assert rel_err(b[k], a[k]) <= 1e-3, (k, rel_err(b[k], a[k]))


# ---- the runtime: widened once, at load ---------------------------------------------------


@pytest.mark.parametrize("isa", native_isas())
def test_fp16_model_runs_as_its_widened_graph_on_every_isa(digits, heldout, isa):
    half = to_fp16(digits["digits_mobilenetv2"].graph)
    wide = widened(half)
    assert not any(n.op == "Cast" for n in wide.nodes) and any(n.op == "Cast" for n in half.nodes)
    x = heldout[:8]
    for threads in (1, 2):
        with runtime.Interpreter(to_bytes(half), threads=threads, isa=isa) as i16, \
                runtime.Interpreter(to_bytes(wide), threads=threads, isa=isa) as i32:
            got, want = i16.run({"input": x}), i32.run({"input": x})
            assert np.array_equal(got["logits"], want["logits"]), f"isa={isa} threads={threads}"
            ran16, ran32 = executed(i16), executed(i32)
            assert ran16 == ran32, f"isa={isa}: kernels differ\n{ran16}\n{ran32}"
            assert i16.arena_bytes == i32.arena_bytes
            if isa != "scalar":
                assert all(not k.endswith("_reference") for op, k in ran16 if op == "Conv"), ran16


def test_fp16_graph_on_the_numpy_reference_is_its_widened_graph(digits, heldout):
    half = to_fp16(digits["digits_resnet"].graph)
    x = {"input": heldout[:4]}
    got = reference_run(half, x)["logits"]
    assert np.array_equal(got, reference_run(widened(half), x)["logits"])
    with runtime.Interpreter(to_bytes(half)) as it:
        assert rel_err(it.run(x)["logits"], got) <= 1e-5


def _constant_weight_graph() -> Graph:
    """x[N, 4, 9, 9] -> Conv(W = Cast(W16)) -> Flatten -> MatMul(Transpose(DequantizeLinear(M8))) -> y:
    a Cast of a constant (fp16 storage) and a chain of other ops of constants (int8
    weights dequantized per row, as the int8-weights scheme stores them, then transposed)."""
    rng = np.random.default_rng(3)
    g = Graph("consts")
    g.add_input("x", "float32", ("N", 4, 9, 9))
    g.add_constant("W16", rng.standard_normal((8, 4, 3, 3)).astype(np.float16))
    g.add_constant("b", rng.standard_normal(8).astype(np.float32))
    g.add_constant("M8", rng.integers(-127, 128, (5, 8 * 7 * 7)).astype(np.int8))
    g.add_constant("M/scale", rng.uniform(0.001, 0.01, 5).astype(np.float32))
    g.add_constant("M/zero_point", np.zeros(5, np.int8))
    g.add_node("DequantizeLinear", ["M8", "M/scale", "M/zero_point"], ["M"], {"axis": 0})
    g.add_node("Cast", ["W16"], ["W"], {"to": 1})
    g.add_node("Conv", ["x", "W", "b"], ["c"], {"kernel_shape": [3, 3]})
    g.add_node("Flatten", ["c"], ["f"], {"axis": 1})
    g.add_node("Transpose", ["M"], ["Mt"], {"perm": [1, 0]})
    g.add_node("MatMul", ["f", "Mt"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    return g


def test_ops_of_constants_run_once_at_load_not_at_invoke():
    g = _constant_weight_graph()
    best = native_isas()[-1]
    rng = np.random.default_rng(4)
    with runtime.Interpreter(to_bytes(g), isa=best) as it, \
            runtime.Interpreter(to_bytes(widened_all(g)), isa=best) as ref_it:
        for n in (2, 5, 1):  # resizes re-plan: the load-time constants stay
            x = {"x": rng.standard_normal((n, 4, 9, 9)).astype(np.float32)}
            got = it.run(x)["y"]
            ran = executed(it)
            assert [op for op, _ in ran] == ["Conv", "Flatten", "MatMul"], ran
            want = ref_it.run(x)["y"]
            assert np.array_equal(got, want), f"batch {n}"
            assert ran == executed(ref_it), (ran, executed(ref_it))
            assert it.arena_bytes == ref_it.arena_bytes
            expected = reference_run(g, x)["y"]
            assert rel_err(got, expected) <= 1e-5
            if best != "scalar":  # the fast kernels need constant weights at kernel selection
                assert not any(k.endswith("_reference") for op, k in ran if op in ("Conv", "MatMul")), ran


def _late_b_graph() -> Graph:
    """x[N, 40] @ B with B = Reshape(M[200], [Shape(x)[1], -1]): B is known only once x's
    dims are (folded at prepare, after kernel selection), never at load."""
    rng = np.random.default_rng(7)
    g = Graph("late_b")
    g.add_input("x", "float32", ("N", 40))
    g.add_constant("M", rng.standard_normal(200).astype(np.float32))
    g.add_constant("one", np.array([1], np.int64))
    g.add_constant("two", np.array([2], np.int64))
    g.add_constant("minus1", np.array([-1], np.int64))
    g.add_node("Shape", ["x"], ["s"])
    g.add_node("Slice", ["s", "one", "two"], ["k"])
    g.add_node("Concat", ["k", "minus1"], ["shape"], {"axis": 0})
    g.add_node("Reshape", ["M", "shape"], ["B"])
    g.add_node("MatMul", ["x", "B"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    return g


@pytest.mark.parametrize("isa", native_isas())
def test_matmul_whose_b_is_folded_at_prepare_not_load(isa):
    """The optimized MatMul chose its dynamic-B path at prepare (B unknown) and switched to
    the never-packed constant-B path at run (B folded by then): a segfault on AVX2/AVX-512
    (and NEON). Found while testing the load-time fold of this file's constant chains."""
    g = _late_b_graph()
    rng = np.random.default_rng(8)
    for n in (3, 1):
        x = rng.standard_normal((n, 40)).astype(np.float32)
        with runtime.Interpreter(to_bytes(g), isa=isa) as it:
            got = it.run({"x": x})["y"]
        np.testing.assert_allclose(got, x @ g.values["M"].data.reshape(40, 5), rtol=1e-5, atol=1e-5)


def widened_all(g: Graph) -> Graph:
    """`g` with every op whose inputs are all constants computed by the numpy reference."""
    w = g.copy()
    keep = []
    for node in w.nodes:
        vals = [w.values[n] for n in node.inputs if n]
        if vals and all(v.data is not None for v in vals):
            out = reference_run(_single(w, node), {})
            for name in node.outputs:
                w.values[name].data = out[name]
        else:
            keep.append(node)
    w.nodes[:] = keep
    return w


def _single(g: Graph, node) -> Graph:
    one = Graph("one")
    for name in node.inputs:
        if name:
            one.add_constant(name, g.values[name].data)
    one.nodes.append(node)
    for name in node.outputs:
        one.add_value(name, g.values[name].dtype, g.values[name].shape)
    one.outputs = list(node.outputs)
    return one


# ---- what stays float32 ---------------------------------------------------------------------


def test_values_float16_cannot_hold_stay_float32_with_the_reason(tmp_path):
    rng = np.random.default_rng(5)
    k = 300
    ok = rng.standard_normal((k, 16)).astype(np.float32)
    ok[0, 0], ok[0, 1], ok[0, 2] = np.inf, -np.inf, np.nan
    big = rng.standard_normal((k, 16)).astype(np.float32)
    big[3, 4] = 1.0e5
    tiny = (rng.standard_normal((k, 16)) * 1e-7).astype(np.float32)
    g = Graph("ranges")
    g.add_input("x", "float32", (2, k))
    for name, data in (("W_ok", ok), ("W_big", big), ("W_tiny", tiny),
                       ("b_small", rng.standard_normal(16).astype(np.float32)),
                       ("scale", np.full(k, 0.05, np.float32)), ("zp", np.zeros(k, np.int8))):
        g.add_constant(name, data)
    g.add_node("MatMul", ["x", "W_ok"], ["a"])
    g.add_node("MatMul", ["x", "W_big"], ["b"])
    g.add_node("MatMul", ["x", "W_tiny"], ["c"])
    g.add_node("Add", ["a", "b_small"], ["a2"])
    g.add_node("QuantizeLinear", ["x", "scale", "zp"], ["q"], {"axis": 1})
    g.add_node("DequantizeLinear", ["q", "scale", "zp"], ["dq"], {"axis": 1})
    g.outputs = ["a2", "b", "c", "dq"]
    infer_shapes(g)
    choices = {c.name: c for c in plan_fp16(g)}
    assert choices["W_ok"].to_fp16
    assert not choices["W_big"].to_fp16 and "65504" in choices["W_big"].reason
    assert not choices["W_tiny"].to_fp16 and "normal range" in choices["W_tiny"].reason
    assert not choices["b_small"].to_fp16 and str(MIN_ELEMENTS) in choices["b_small"].reason
    assert not choices["scale"].to_fp16 and "parameter" in choices["scale"].reason
    assert "zp" not in choices  # int8: not a float32 constant

    half = to_fp16(g)
    assert g.values["W_ok"].data is not None and "W_ok/fp16" not in g.values  # input untouched
    kept = half.metadata.extra[KEPT_KEY]
    assert "W_big: 1 value(s) up to 100000 exceed float16's largest 65504" in kept
    assert "W_tiny: " in kept and "W_ok" not in kept
    assert half.metadata.extra["quantization.scheme"] == "fp16"
    api.Model(half).save(tmp_path / "r.mob")
    loaded = api.load(tmp_path / "r.mob").graph
    stored = loaded.values["W_ok/fp16"]
    assert stored.dtype == "float16"
    assert np.array_equal(stored.data.view(np.uint16), ok.astype(np.float16).view(np.uint16))
    for name in ("W_big", "W_tiny", "b_small", "scale"):
        assert loaded.values[name].dtype == "float32"
        assert np.array_equal(loaded.values[name].data, g.values[name].data, equal_nan=True)
    x = np.random.default_rng(6).standard_normal((2, k)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        want = x @ ok.astype(np.float16).astype(np.float32) + g.values["b_small"].data
    for backend in ("reference", "runtime"):
        got = api.load(tmp_path / "r.mob").run({"x": x}, backend=backend)
        np.testing.assert_allclose(got["a2"], want, rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=backend)
        np.testing.assert_allclose(got["b"], x @ big, rtol=1e-5, atol=1e-2, err_msg=backend)  # kept float32


def test_embedded_test_vectors_of_the_float_model_are_dropped(digits, heldout, tmp_path):
    model = api.convert(str(ZOO / "digits_resnet.onnx"))
    model.add_test_vector({"input": heldout[:2]})
    assert model.graph.test_vectors and not to_fp16(model.graph).test_vectors
    api.Model(to_fp16(model.graph)).save(tmp_path / "m.mob")  # validate would compare at rtol 1e-4
    assert not api.load(tmp_path / "m.mob").test_vectors
    assert model.graph.test_vectors  # the input model keeps its own


def test_nodes_limits_the_conversion_to_their_constants(digits):
    g = digits["digits_resnet"].graph
    first = next(n for n in g.nodes if n.op == "Conv" and g.values[n.inputs[1]].data.size >= MIN_ELEMENTS)
    half = to_fp16(g, nodes=[first.name, "no such node"])
    assert [n.outputs[0] for n in half.nodes if n.op == "Cast"] == [first.inputs[1]]
    # the Cast sits right before its reader; everything else is unchanged
    i = [n.name for n in half.nodes].index(first.name)
    assert half.nodes[i - 1].op == "Cast"
    assert [n.name for n in half.nodes if n.op != "Cast"] == [n.name for n in g.nodes]


# ---- end to end ---------------------------------------------------------------------------


def test_python_api_quantize_fp16(digits, heldout):
    from mobconv import quantize

    q = quantize.quantize(digits["digits_resnet"], scheme="fp16")
    assert q.metadata.extra["quantization.scheme"] == "fp16"
    assert any(v.dtype == "float16" for v in q.graph.constants())
    a = digits["digits_resnet"].run({"input": heldout[:32]}, backend="runtime")["logits"]
    assert rel_err(q.run({"input": heldout[:32]}, backend="runtime")["logits"], a) <= 1e-3


def test_cli_quantize_scheme_fp16_end_to_end(digits, heldout, tmp_path):
    src = tmp_path / "digits_resnet.onnx"
    shutil.copy(ZOO / "digits_resnet.onnx", src)
    out = tmp_path / "m.mob"
    p = subprocess.run([sys.executable, "-m", "mobconv", "quantize", str(src), "--scheme", "fp16", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    model = api.load(out)
    assert model.metadata.extra["quantization.scheme"] == "fp16"
    a = digits["digits_resnet"].run({"input": heldout}, backend="runtime")["logits"]
    b = model.run({"input": heldout}, backend="runtime")["logits"]
    assert rel_err(b, a) <= 1e-3
    assert out.stat().st_size <= 0.6 * len(digits["digits_resnet"].to_bytes())
    info = subprocess.run([sys.executable, "-m", "mobconv", "info", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["summary"]["bytes_by_dtype"]["float16"] > 0


# ---- aarch64 (NEON under qemu) ------------------------------------------------------------


def test_fp16_model_under_qemu_neon_matches_its_widened_graph(digits, heldout, tmp_path, mobrt_run_aarch64):
    exe = mobrt_run_aarch64
    half = to_fp16(digits["digits_mobilenetv2"].graph)
    x = heldout[:4]
    late_b, xb = _late_b_graph(), np.random.default_rng(9).standard_normal((3, 40)).astype(np.float32)
    for case, g, feed in (("fp16", half, x), ("wide", widened(half), x), ("late_b", late_b, xb)):
        d = tmp_path / "cases" / case
        (d / "inputs").mkdir(parents=True)
        (d / "model.mob").write_bytes(to_bytes(g))
        np.save(d / "inputs" / "0.npy", feed)
    p = subprocess.run([*QEMU, str(exe), "--batch", str(tmp_path / "cases"), "--isa", "neon"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    status, outs = {}, {}
    for case in ("fp16", "wide"):
        out = tmp_path / "cases" / case / "outputs_neon"
        status[case] = (out / "status").read_text().splitlines()
        assert status[case][0] == "ok", status[case][:2]
        outs[case] = np.load(out / "0.npy")
    assert status["fp16"][1:] == status["wide"][1:]
    assert not any(line.startswith("kernel Cast") for line in status["fp16"])
    assert all(line.endswith("_neon") for line in status["fp16"] if line.startswith("kernel Conv")), status["fp16"]
    assert np.array_equal(outs["fp16"], outs["wide"])
    want = reference_run(half, {"input": x})["logits"]
    assert rel_err(outs["fp16"], want) <= 1e-4
    out = tmp_path / "cases" / "late_b" / "outputs_neon"
    assert (out / "status").read_text().splitlines()[0] == "ok"
    np.testing.assert_allclose(np.load(out / "0.npy"), xb @ late_b.values["M"].data.reshape(40, 5),
                               rtol=1e-5, atol=1e-5)
