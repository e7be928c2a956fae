"""`cmake --install` of the runtime gives a usable CMake package: headers, the shared and
static libraries, mobrtConfig.cmake with the version file. A separate consumer project
(runtime/examples/cmake_consumer) finds it with find_package(mobrt), links mobrt::mobrt and
mobrt::mobrt_static, and its programs run the zoo's digits model (converted by mobconv)
giving the Python binding's outputs.

The runtime is built incrementally in build/cmake-package (under a file lock, like the
aarch64 test binary; tests/cmake_build.py, shared with test_runtime_cmake_example), then
installed into a temporary prefix for each run."""
import os
import shutil
import subprocess

import numpy as np
import pytest

import mobconv
from mobconv import runtime

from cmake_build import install_runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("cc") is None,
                                reason="cmake and a C compiler are needed")


def sh(*cmd, cwd=None, check=True):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1500)
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmake-package") / "prefix"
    install_runtime(out)
    return out


@pytest.fixture(scope="module")
def consumer(prefix, tmp_path_factory):
    app = tmp_path_factory.mktemp("consumer") / "app"
    sh("cmake", "-S", os.path.join(ROOT, "runtime", "examples", "cmake_consumer"), "-B", str(app),
       f"-DCMAKE_PREFIX_PATH={prefix}")
    sh("cmake", "--build", str(app))
    return app


def test_install_tree_layout(prefix):
    assert (prefix / "include" / "mobrt.h").read_text() == open(os.path.join(ROOT, "runtime", "include",
                                                                               "mobrt.h")).read()
    (cfg_dir,) = prefix.glob("lib*/cmake/mobrt")
    for name in ("mobrtConfig.cmake", "mobrtConfigVersion.cmake", "mobrtTargets.cmake"):
        assert (cfg_dir / name).exists(), name
    libdir = cfg_dir.parent.parent
    assert (libdir / "libmobrt.a").exists()
    assert (libdir / "libmobrt.so").exists() and (libdir / "libmobrt.so.0").exists()
    # the shared library exports only the C API
    syms = sh("nm", "-D", "--defined-only", str(libdir / "libmobrt.so")).stdout.split()
    exported = {s for s in syms if s.startswith("mobrt_")}
    header = (prefix / "include" / "mobrt.h").read_text()
    assert exported and all(f" {s}(" in header for s in exported)
    for fn in ("mobrt_interpreter_cancel", "mobrt_tensor_quant_scale", "mobrt_model_input_tensor",
               "mobrt_set_error_reporter", "mobrt_tensor_byte_size"):
        assert fn in exported


def test_version_mismatch_is_refused(prefix, tmp_path):
    """The version file: asking for a newer minor version fails at configure time."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.18)\nproject(v LANGUAGES C)\n"
                                        "find_package(mobrt 0.9 REQUIRED)\n")
    proc = sh("cmake", "-S", str(src), "-B", str(tmp_path / "b"), f"-DCMAKE_PREFIX_PATH={prefix}", check=False)
    assert proc.returncode != 0 and "mobrt" in proc.stderr


def _digits_mob(tmp_path):
    path = tmp_path / "digits.mob"
    mobconv.convert(os.path.join(ROOT, "model_zoo", "onnx", "digits_mobilenetv2.onnx")).save(str(path))
    return path


@pytest.mark.parametrize("program", ["mobrt_consumer", "mobrt_consumer_static"])
def test_consumer_runs_the_zoo_model_like_the_python_binding(consumer, program, tmp_path):
    mob = _digits_mob(tmp_path)
    x = np.load(os.path.join(ROOT, "model_zoo", "onnx", "digits_calib",
                             sorted(f for f in os.listdir(os.path.join(ROOT, "model_zoo", "onnx", "digits_calib"))
                                    if f.endswith(".npy"))[0]))
    x = np.ascontiguousarray(x[:1], dtype=np.float32)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    proc = sh(str(consumer / program), str(mob), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"), "2")
    lines = proc.stdout.splitlines()
    assert lines[0] == f"mobrt {runtime.version()}"
    with runtime.Interpreter(str(mob), threads=2) as it:
        want = it.run({"input": x})
        (out_name,) = [o["name"] for o in it.outputs]
    model = runtime.Model(str(mob))
    try:
        spec_in, spec_out = model.inputs[0], model.outputs[0]
    finally:
        model.close()
    dims = ", ".join(str(d) for d in spec_in["shape"])
    assert f"model input 0 input float32 [{dims}] bytes 0" in lines  # symbolic batch: no size yet
    assert any(ln.startswith(f"model output 0 {out_name} float32 [") for ln in lines)
    assert f"layout {spec_in['layout']} preprocessing mean count 0 channel_order ''" in lines
    y = want[out_name]
    assert f"output 0 {out_name} float32 [{', '.join(map(str, y.shape))}] bytes {y.nbytes}" in lines
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.float32).reshape(y.shape)
    # the same sources and CPU; build flags may differ from the wheel's: float32 rounding only
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-5)
    assert got.argmax() == y.argmax()


def test_consumer_reports_errors_through_the_reporter(consumer, tmp_path):
    mob = _digits_mob(tmp_path)
    (tmp_path / "short.bin").write_bytes(b"\0" * 12)
    proc = sh(str(consumer / "mobrt_consumer"), str(mob), str(tmp_path / "short.bin"), str(tmp_path / "o.bin"),
              check=False)
    assert proc.returncode == 1 and "expected exactly 3136 bytes for input 'input'" in proc.stderr
    proc = sh(str(consumer / "mobrt_consumer"), str(tmp_path / "missing.mob"), "x", "y", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("mobrt: MOBRT_IO_ERROR: ") and "missing.mob" in proc.stderr
