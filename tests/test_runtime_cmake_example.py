"""The C usage example (runtime/examples/c_usage) builds with plain CMake against
the installed package config, as Android NDK / Xcode users do: build and
install the runtime into a temporary prefix, configure the example with
find_package(mobrt), run it on a .mob (symbolic batch resized to 1) and
compare its printed outputs with the numpy reference."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from mobconv.formats.writer import write_model
from mobconv.ir import Graph, infer_shapes
from mobconv.reference.interpreter import run as reference_run

from cmake_build import install_runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("cc") is None,
                                reason="cmake and a C compiler are needed")


def sh(*cmd, cwd=None):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def small_model(path):
    rng = np.random.default_rng(5)
    g = Graph("example")
    g.add_input("x", "float32", ("batch", 2, 6, 6))
    g.add_constant("w", rng.standard_normal((4, 2, 3, 3)).astype(np.float32))
    g.add_constant("b", rng.standard_normal(4).astype(np.float32))
    g.add_node("Conv", ["x", "w", "b"], ["c"], {"activation": "Relu"})
    g.add_node("GlobalAveragePool", ["c"], ["p"])
    g.add_node("Flatten", ["p"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    write_model(g, str(path))
    return g


def test_c_example_builds_against_installed_package(tmp_path):
    prefix, app = tmp_path / "prefix", tmp_path / "app"
    install_runtime(prefix)  # the build shared with test_cmake_package (build/cmake-package)
    assert (prefix / "include" / "mobrt.h").exists()
    assert list(prefix.glob("lib*/cmake/mobrt/mobrtConfig.cmake"))
    sh("cmake", "-S", os.path.join(ROOT, "runtime", "examples", "c_usage"), "-B", str(app),
       f"-DCMAKE_PREFIX_PATH={prefix}")
    sh("cmake", "--build", str(app))
    g = small_model(tmp_path / "example.mob")
    out = sh(str(app / "mobrt_example"), str(tmp_path / "example.mob"), "2")
    assert out.startswith("mobrt 0.1.0\n"), out
    line = [ln for ln in out.splitlines() if ln.startswith("output y shape (1, 4)")]
    assert line, out
    got = np.array([float(v) for v in line[0].split("values")[1].split()], np.float32)
    x = (np.arange(72) % 17 / np.float32(17) - np.float32(0.5)).astype(np.float32).reshape(1, 2, 6, 6)
    c = g.copy()
    c.values["x"].shape = (1, 2, 6, 6)
    for name in ("c", "p", "y"):
        c.values[name].shape = None
    infer_shapes(c)
    np.testing.assert_allclose(got, reference_run(c, {"x": x})["y"].ravel(), rtol=1e-5, atol=1e-5)

    # The same installed library and C program on an int8 model from the quantizer (float
    # input and output around int8 layers), under every instruction-set cap this CPU has
    # (MOBRT_MAX_ISA, the runtime's one cap) at 1 and 2 threads: the C API gives exactly
    # the numpy reference's numbers (%.9g prints a float32 exactly).
    int8_path, x8, want = _int8_digits_model(tmp_path)
    from mobconv import runtime

    for isa in runtime.supported_isas():
        for threads in ("1", "2"):
            env = dict(os.environ, MOBRT_MAX_ISA=isa)
            proc = subprocess.run([str(app / "mobrt_example"), str(int8_path), threads], capture_output=True,
                                  text=True, timeout=600, env=env)
            assert proc.returncode == 0, proc.stderr
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("output ")][0]
            got = np.array([float(v) for v in line.split("values")[1].split()], np.float32)
            assert np.array_equal(got, want.ravel()), (isa, threads, got[:5], want.ravel()[:5])


def _int8_digits_model(tmp_path):
    """The zoo's digits MobileNetV2 quantized to int8 by mobconv.quantize; the example's input
    pattern and the numpy reference's output for it."""
    import mobconv
    from mobconv import quantize

    onnx_path = os.path.join(ROOT, "model_zoo", "onnx", "digits_mobilenetv2.onnx")
    calib_dir = os.path.join(ROOT, "model_zoo", "onnx", "digits_calib")
    files = sorted(f for f in os.listdir(calib_dir) if f.endswith(".npy"))[:4]
    q = quantize.quantize(mobconv.convert(onnx_path), [{"input": np.load(os.path.join(calib_dir, f))} for f in files],
                          scheme="int8", progress=False)
    path = tmp_path / "digits.int8.mob"
    q.save(str(path))
    spec = q.inputs[0]
    shape = tuple(1 if not isinstance(d, int) or d < 0 else d for d in spec.shape)
    n = int(np.prod(shape))
    x = ((np.arange(n) % 17).astype(np.float32) / np.float32(17) - np.float32(0.5)).reshape(shape)
    want = q.run({spec.name: x}, backend="reference")
    assert any(n.op == "Conv" and n.inputs and q.graph.values[n.inputs[0]].dtype == "int8" for n in q.graph.nodes)
    return path, x, next(iter(want.values()))
