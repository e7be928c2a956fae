"""Zero-size tensors on every instruction set (issue 7, findings 1 and 2).

Every case of runtime_cases.ZERO_CASES (each op of the per-op suite with a 0 in each
dim position it allows, K = 0 GEMMs, empty broadcasts, empty reduce axes, empty
concat parts...) runs through the C API with the scalar reference kernels and with
every optimized instruction set this CPU has, at 1 and 2 threads, and must equal the
numpy reference: empty outputs are empty tensors of the right shape, reductions over
nothing give their identity, K = 0 products give zeros (or the bias).

The interpreter is run twice, after a run of a graph that fills the arena with a
known pattern, so a kernel that leaves its output unwritten (finding 2: stale arena
values) is caught rather than passing on freshly zeroed memory.

End-to-end: the ONNX models of the findings (x[4,0] + const[1,1], const[0,1000] +
x[1,1], MatMul(x[2,0], W[0,3]), Gemm with K = 0 and a bias), converted with
`mobconv onnx2mob` and run with `mobconv run` and the Python API, against onnxruntime.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from runtime_cases import ZERO_CASES, check_case_on_isa, native_isas

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

ISAS = native_isas()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("op,variant,inputs,attrs,n_out,rtol,atol", ZERO_CASES)
def test_zero_size_case_matches_numpy(op, variant, inputs, attrs, n_out, rtol, atol, isa):
    check_case_on_isa(f"{op} [{variant}]", op, inputs, attrs, n_out, rtol, atol, isa, runs=2)


def _stale_arena_graph():
    """z[2,3] -> Neg -> Neg -> Add(., MatMul(x[2,0], W[0,3])): the MatMul output can take the
    arena slot the first Neg's output left, which holds -z when MatMul runs."""
    from mobconv.ir import Graph, infer_shapes

    g = Graph("stale_arena")
    g.add_input("z", "float32", (2, 3))
    g.add_input("x", "float32", (2, 0))
    g.add_constant("w", np.zeros((0, 3), np.float32))
    g.add_node("Neg", ["z"], ["a"])
    g.add_node("Neg", ["a"], ["b"])
    g.add_node("MatMul", ["x", "w"], ["m"])
    g.add_node("Add", ["b", "m"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    return g


@pytest.mark.parametrize("isa", ISAS)
def test_matmul_k0_does_not_read_stale_arena(isa):
    """Finding 2: MatMul with K = 0 writes zeros, whatever an earlier op left in its slot."""
    g = _stale_arena_graph()
    z = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    with runtime.Interpreter(to_bytes(g), isa=isa) as it:
        for _ in range(2):
            y = it.run({"z": z, "x": np.zeros((2, 0), np.float32)})["y"]
            np.testing.assert_array_equal(y, z, err_msg=f"isa={isa}: MatMul(x[2,0], W[0,3]) is not all zeros")


# ---- end to end: ONNX -> mobconv onnx2mob -> mobconv run / Python API vs onnxruntime ------


def _onnx_model(kind: str):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    if kind == "x4x0_plus_c1x1":  # finding 1 exactly as reported
        nodes = [helper.make_node("Add", ["x", "c"], ["y"])]
        inputs = [helper.make_tensor_value_info("x", f, [4, 0])]
        inits = [numpy_helper.from_array(np.full((1, 1), 2.5, np.float32), "c")]
        feeds = {"x": np.zeros((4, 0), np.float32)}
    elif kind == "c0x1000_times_x1x1":
        nodes = [helper.make_node("Mul", ["c", "x"], ["y"])]
        inputs = [helper.make_tensor_value_info("x", f, [1, 1])]
        inits = [numpy_helper.from_array(np.zeros((0, 1000), np.float32), "c")]
        feeds = {"x": np.full((1, 1), 3.0, np.float32)}
    elif kind == "matmul_k0":
        nodes = [helper.make_node("Relu", ["z"], ["r"]), helper.make_node("MatMul", ["x", "w"], ["m"]),
                 helper.make_node("Add", ["r", "m"], ["y"])]
        inputs = [helper.make_tensor_value_info("x", f, [2, 0]), helper.make_tensor_value_info("z", f, [2, 3])]
        inits = [numpy_helper.from_array(np.zeros((0, 3), np.float32), "w")]
        feeds = {"x": np.zeros((2, 0), np.float32), "z": np.arange(6, dtype=np.float32).reshape(2, 3) - 2}
    else:  # gemm_k0: Y = alpha * A B^T + beta * C with K = 0 -> beta * C
        nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=2.0, beta=0.5)]
        inputs = [helper.make_tensor_value_info("x", f, [3, 0])]
        inits = [numpy_helper.from_array(np.zeros((5, 0), np.float32), "w"),
                 numpy_helper.from_array(np.arange(5, dtype=np.float32) - 1.5, "c")]
        feeds = {"x": np.zeros((3, 0), np.float32)}
    graph = helper.make_graph(nodes, kind, inputs, [helper.make_tensor_value_info("y", f, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, feeds


@pytest.mark.parametrize("kind", ["x4x0_plus_c1x1", "c0x1000_times_x1x1", "matmul_k0", "gemm_k0"])
def test_onnx_zero_size_end_to_end_matches_onnxruntime(kind, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    model, feeds = _onnx_model(kind)
    src = tmp_path / f"{kind}.onnx"
    onnx.save(model, str(src))
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    expected = sess.run(None, feeds)[0]
    mob = tmp_path / f"{kind}.mob"
    cli = [sys.executable, "-m", "mobconv"]
    proc = subprocess.run([*cli, "onnx2mob", str(src), "-o", str(mob)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"onnx2mob {kind}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    # Python API, every instruction set, twice per interpreter.
    for isa in ISAS:
        with runtime.Interpreter(mob.read_bytes(), isa=isa) as it:
            for _ in range(2):
                got = it.run(feeds)["y"]
                assert got.shape == expected.shape, f"{kind} isa={isa}: shape {got.shape}, onnxruntime {expected.shape}"
                np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=f"{kind} isa={isa}")
    # The CLI, with the user's inputs as .npy files.
    args = []
    for name, arr in feeds.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, arr)
        args += ["--input", f"{name}={path}"]
    out_dir = tmp_path / "out"
    proc = subprocess.run([*cli, "run", str(mob), *args, "--save", str(out_dir)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"mobconv run {kind}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    got = np.load(out_dir / "y.npy")
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=f"mobconv run {kind}")
