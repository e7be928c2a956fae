"""The iOS bridge (ios_bridge/): the Xcode layout built on Linux and a C client that
imports it as the clang module Mobrt, natively and on arm64 under qemu.

- ios_bridge/CMakeLists.txt builds libmobrt_bridge.a (runtime + bridge) and lays out
  include/Mobrt/{mobrt.h, mobrt_bridge.h, module.modulemap} + lib/ (build/ios-bridge,
  incremental, under build/ios-bridge.lock).
- ios_bridge/examples/client.c is compiled with Debian's clang -fmodules through that
  module map (the module cache must then hold a Mobrt .pcm), strictly: one submodule per
  header under -fmodules-local-submodule-visibility, so a header that does not include
  what it uses fails. Mutations prove it: a broken module map, a module map naming a
  missing header, and headers that are not self-contained (which a plain textual
  compile of the same client still accepts) all fail the compile.
- The client runs the bundled digits models (Caffe, and the ONNX MobileNetV2) and its
  outputs equal the Python binding's (mobconv.runtime) bit for bit; the bridge's error
  out-parameters are checked on a wrong size, an unknown name and a missing file, and
  ios_bridge/tests/bridge_checks.c checks every bridge call's argument, size and state
  rules (also under ASan+UBSan).
- The same client is cross-compiled for arm64 (clang --target=aarch64-linux-gnu, same
  module map) with the bridge over the runtime of build/aarch64-tests (the shared arm64
  build of tests/test_runtime_aarch64.py, under its lock), run under qemu-aarch64 and
  compared with mobconv.runtime on the same inputs: bit for bit with the scalar kernels on
  both sides (MOBRT_MAX_ISA=scalar), within 1e-5 of max|ref| with NEON against the x86
  kernels (they sum in other orders).
- Objective-C's `@import Mobrt;` finds the module by name (as Swift's import does).
- docs/ios.md's C and Objective-C blocks are the tested files verbatim;
  make_xcframework.sh passes shellcheck.

Missing clang, cmake or the arm64 tools is a failure (scripts/install-system-deps.sh).
"""
from __future__ import annotations

import fcntl
import glob
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cmake_build import flatbuffers_include
from mobconv import runtime

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "ios_bridge"
BUILD = ROOT / "build" / "ios-bridge"
LAYOUT = BUILD / "ios-layout"
CLIENT = BRIDGE / "examples" / "client.c"
ZOO = ROOT / "model_zoo"
QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]
# Strict module compile: every header is its own submodule and sees only what it includes.
MODULE_FLAGS = ["-fmodules", "-Xclang", "-fmodules-local-submodule-visibility"]
WARN = ["-std=c11", "-Wall", "-Wextra", "-Werror"]


def _need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run scripts/install-system-deps.sh")


def _run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)


def _ok(cmd, **kw):
    proc = _run(cmd, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def layout() -> Path:
    """build/ios-bridge/ios-layout, built (incrementally) by ios_bridge/CMakeLists.txt."""
    _need("cmake", "clang")
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "ios-bridge.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (BUILD / "CMakeCache.txt").exists():
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            proc = _run(["cmake", "-S", BRIDGE, "-B", BUILD, *gen, "-DCMAKE_BUILD_TYPE=Release",
                         "-DMOBRT_IOS_LAYOUT=ON", f"-DFLATBUFFERS_INCLUDE_DIR={flatbuffers_include()}",
                         *_prebuilt_runtime()])
            if proc.returncode != 0:
                shutil.rmtree(BUILD, ignore_errors=True)
                pytest.fail(f"ios_bridge configure failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        # the package build dir is shared: merge its libmobrt.a while no one rebuilds it
        with open("/tmp/mobconv-build.lock", "a") as build_lock:
            fcntl.flock(build_lock, fcntl.LOCK_EX)
            _ok(["cmake", "--build", BUILD, "-j", str(os.cpu_count() or 2)])
    return LAYOUT


def _prebuilt_runtime() -> list:
    """-DMOBRT_IOS_PREBUILT_LIB=<the Python package build's libmobrt.a>, when there is one:
    the layout then holds the objects the Python binding runs (bitwise comparisons), and the
    suite does not compile the whole runtime a second time."""
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}-*"
    libs = sorted(glob.glob(str(ROOT / "build" / tag / "runtime" / "libmobrt.a")), key=os.path.getmtime)
    return [f"-DMOBRT_IOS_PREBUILT_LIB={libs[-1]}"] if libs else []


def test_layout_is_what_xcode_consumes(layout):
    inc = layout / "include" / "Mobrt"
    assert sorted(p.name for p in inc.iterdir()) == ["mobrt.h", "mobrt_bridge.h", "module.modulemap"]
    assert (inc / "mobrt.h").read_bytes() == (ROOT / "runtime" / "include" / "mobrt.h").read_bytes()
    assert (inc / "mobrt_bridge.h").read_bytes() == (BRIDGE / "include" / "mobrt_bridge.h").read_bytes()
    assert (inc / "module.modulemap").read_bytes() == (BRIDGE / "module.modulemap").read_bytes()
    # One archive with the runtime and the bridge: the C API and the bridge both defined.
    syms = _ok(["nm", "-g", "--defined-only", layout / "lib" / "libmobrt_bridge.a"]).stdout
    for name in ("mobrt_interpreter_invoke", "mobrt_tensor_quant_scale", "mobrt_bridge_session_create",
                 "mobrt_bridge_get_output_float"):
        assert re.search(rf" T {name}$", syms, re.M), f"{name} not defined in libmobrt_bridge.a"


def _compile_client(include: Path, obj: Path, cache: Path, target=None, modules=True, strict=True):
    """clang -c client.c against include/ (the folder holding Mobrt/); returns the process."""
    flags = [*(MODULE_FLAGS if strict else ["-fmodules"]), f"-fmodules-cache-path={cache}"] if modules else []
    tgt = [f"--target={target}"] if target else []
    return _run(["clang", *tgt, *WARN, *flags, "-I", include, "-c", CLIENT, "-o", obj])


def _pcms(cache: Path) -> list:
    return sorted(p.name.split("-")[0] for p in cache.rglob("*.pcm"))


def test_client_compiles_through_the_module_map(layout, tmp_path):
    proc = _compile_client(layout / "include", tmp_path / "client.o", tmp_path / "mc")
    assert proc.returncode == 0, proc.stderr
    assert "Mobrt" in _pcms(tmp_path / "mc"), "clang did not build the module Mobrt: the module map was not used"
    # The relaxed mode Xcode uses (no local submodule visibility) accepts it too.
    proc = _compile_client(layout / "include", tmp_path / "client2.o", tmp_path / "mc2", strict=False)
    assert proc.returncode == 0, proc.stderr
    assert "Mobrt" in _pcms(tmp_path / "mc2")


def _mutated(layout: Path, root: Path, name: str, old: str, new: str) -> Path:
    """A copy of the layout's include/ with `old` replaced by `new` in Mobrt/<name>."""
    inc = root / "include"
    shutil.copytree(layout / "include", inc)
    path = inc / "Mobrt" / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new))
    return inc


@pytest.mark.parametrize("name, old, new, textual_ok", [
    # a syntax error in the module map
    ("module.modulemap", "module Bridge {", "module Bridge {{", True),
    # the module map names a header that is not there
    ("module.modulemap", 'header "mobrt_bridge.h"', 'header "mobrt_bridges.h"', True),
    # mobrt_bridge.h uses mobrt.h's types without including it (the client includes mobrt.h first,
    # so a textual compile does not notice)
    ("mobrt_bridge.h", '#include "mobrt.h"', "", True),
    # mobrt.h uses size_t / int64_t without <stddef.h> / <stdint.h> (the client's <Mobrt/...>
    # includes come first, so neither compile sees them early)
    ("mobrt.h", "#include <stddef.h>\n#include <stdint.h>", "", False),
])
def test_broken_module_map_or_header_fails_the_compile(layout, tmp_path, name, old, new, textual_ok):
    inc = _mutated(layout, tmp_path, name, old, new)
    proc = _compile_client(inc, tmp_path / "client.o", tmp_path / "mc")
    assert proc.returncode != 0, f"the module compile accepted a broken {name}"
    assert "Mobrt" in proc.stderr or name in proc.stderr, proc.stderr
    # Control: only the module map makes the difference where the textual compile passes.
    proc = _compile_client(inc, tmp_path / "textual.o", tmp_path / "mc_t", modules=False)
    assert (proc.returncode == 0) == textual_ok, proc.stderr


def test_objective_c_imports_the_module_by_name(layout, models, tmp_path):
    """`@import Mobrt;` finds <include>/Mobrt/module.modulemap by the module's name, as
    Swift's `import Mobrt` does in Xcode; without the layout on the path it is not found."""
    src = BRIDGE / "examples" / "import_by_name.m"
    cmd = ["clang", "-x", "objective-c", "-fmodules", f"-fmodules-cache-path={tmp_path / 'mc'}", "-Wall",
           "-Wextra", "-Werror", "-c", src, "-o", tmp_path / "m.o"]
    proc = _run([*cmd, "-I", tmp_path])
    assert proc.returncode != 0 and "module 'Mobrt' not found" in proc.stderr, proc.stderr
    _ok([*cmd, "-I", layout / "include"])
    _ok(["clang++", tmp_path / "m.o", layout / "lib" / "libmobrt_bridge.a", "-lpthread", "-o", tmp_path / "m"])
    out = _ok([tmp_path / "m", models["digits"][0]]).stdout
    assert out == f"mobrt {runtime.version()}: 1 input(s), 1 output(s)\n", out


def test_each_header_compiles_alone(layout, tmp_path):
    for header in ("mobrt.h", "mobrt_bridge.h"):
        for lang, std in (("c", "-std=c99"), ("c++", "-std=c++11")):
            src = tmp_path / ("t.c" if lang == "c" else "t.cpp")
            src.write_text(f"#include <Mobrt/{header}>\n")
            _ok(["clang", "-x", lang, std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wno-nullability-extension", "-I", layout / "include",
                 "-fsyntax-only", src])


# ---- running the client ------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """The bundled digits models as .mob files with a seeded batch of their samples:
    name -> (path, input name, input array)."""
    import mobconv

    d = tmp_path_factory.mktemp("ios_models")
    caffe = ZOO / "caffe" / "digits"
    out = {}
    m = mobconv.convert(caffe / "deploy.prototxt", caffemodel=str(caffe / "digits.caffemodel"))
    m.save(str(d / "digits.mob"))
    x = np.concatenate([np.load(p) for p in sorted((caffe / "samples").glob("*.npy"))]).astype(np.float32)
    out["digits"] = (d / "digits.mob", "data", x)
    m = mobconv.convert(ZOO / "onnx" / "digits_mobilenetv2.onnx")
    m.save(str(d / "digits_mobilenetv2.mob"))
    info = runtime.Model(str(d / "digits_mobilenetv2.mob")).inputs[0]
    shape = tuple(3 if isinstance(s, str) or s is None or s < 0 else s for s in info["shape"])
    out["mobilenetv2"] = (d / "digits_mobilenetv2.mob", info["name"],
                          np.random.default_rng(11).standard_normal(shape).astype(np.float32))
    return out


def _python_outputs(path, name, x, isa=None) -> list:
    it = runtime.Interpreter(str(path), threads=1, isa=isa)
    try:
        got = it.run({name: x})
        return [got[o["name"]] for o in it.outputs]
    finally:
        it.close()


def _client_run(cmd_prefix, exe, model, name, x, tmp: Path, env=None):
    tmp.mkdir(parents=True, exist_ok=True)
    raw = tmp / "input.raw"
    np.ascontiguousarray(x, "<f4").tofile(raw)
    shape = "x".join(str(d) for d in x.shape)
    proc = _run([*cmd_prefix, exe, model, tmp, f"{name}:{shape}={raw}"], env=env)
    assert proc.returncode == 0, f"client failed:\n{proc.stdout}\n{proc.stderr}"
    outs = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("output ")]
    arrays = []
    for k, fields in enumerate(outs):
        assert fields[1] == str(k) and fields[3] == "float32", fields
        dims = tuple(int(v) for v in fields[4].strip("[]").split(",") if v)
        arrays.append(np.fromfile(tmp / f"output{k}.raw", "<f4").reshape(dims))
    return proc.stdout, arrays


@pytest.fixture(scope="module")
def native_client(layout, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ios_native")
    proc = _compile_client(layout / "include", d / "client.o", d / "mc")
    assert proc.returncode == 0, proc.stderr
    # The runtime inside is C++: link its standard library (Xcode does it from the map's `link "c++"`).
    _ok(["clang++", d / "client.o", layout / "lib" / "libmobrt_bridge.a", "-lpthread", "-o", d / "client"])
    return d / "client"


@pytest.mark.parametrize("model", ["digits", "mobilenetv2"])
@pytest.mark.parametrize("from_buffer", ["0", "1"])
def test_native_client_matches_python_bitwise(native_client, models, tmp_path, model, from_buffer):
    path, name, x = models[model]
    env = dict(os.environ, MOBRT_CLIENT_FROM_BUFFER=from_buffer)
    stdout, got = _client_run([], native_client, path, name, x, tmp_path, env=env)
    want = _python_outputs(path, name, x)
    assert len(got) == len(want) >= 1
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert g.tobytes() == w.tobytes(), f"{model}: max |diff| {np.max(np.abs(g - w))}"
    if model == "digits":  # the trained classifier: the labels in the sample names
        labels = [int(p.stem.split("label")[1]) for p in sorted((ZOO / "caffe" / "digits" / "samples").glob("*.npy"))]
        assert got[0].argmax(1).tolist() == labels
        assert f"input 0 data float32 [-1,1,8,8]" in stdout


def test_bridge_checks_and_error_buffer(layout, models, tmp_path):
    """ios_bridge/tests/bridge_checks.c: NULL, name, size, dtype-free byte and state checks, the
    count query with an empty buffer, error truncation; through the module map with clang, and
    again with the bridge and the checks under ASan+UBSan (gcc: Debian's clang lacks the
    sanitizer runtimes)."""
    checks = BRIDGE / "tests" / "bridge_checks.c"
    digits = models["digits"][0]
    _ok(["clang", *WARN, *MODULE_FLAGS, f"-fmodules-cache-path={tmp_path / 'mc'}", "-I", layout / "include",
         "-c", checks, "-o", tmp_path / "checks.o"])
    _ok(["clang++", tmp_path / "checks.o", layout / "lib" / "libmobrt_bridge.a", "-lpthread", "-o", tmp_path / "checks"])
    assert _ok([tmp_path / "checks", digits]).stdout == "ok\n"
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
    _ok(["gcc", *WARN, *san, "-I", layout / "include" / "Mobrt", "-c", BRIDGE / "src" / "mobrt_bridge.c", "-o",
         tmp_path / "bridge_asan.o"])
    _ok(["gcc", *WARN, *san, "-I", layout / "include", "-c", checks, "-o", tmp_path / "checks_asan.o"])
    # bridge_asan.o before the archive: the archive's (uninstrumented) bridge member is not pulled in
    _ok(["g++", *san, tmp_path / "checks_asan.o", tmp_path / "bridge_asan.o", layout / "lib" / "libmobrt_bridge.a",
         "-lpthread", "-o", tmp_path / "checks_asan"])
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
    assert _ok([tmp_path / "checks_asan", digits], env=env).stdout == "ok\n"


@pytest.mark.parametrize("arg, status, words", [
    ("data:5x1x8x8", "MOBRT_INVALID_ARGUMENT", ["mobrt_bridge_set_input_float", "input 'data' holds 320 float32 values, got 64"]),
    ("dta:1x1x8x8", "MOBRT_INVALID_ARGUMENT", ["no input 'dta'", "(inputs: 'data')"]),
    ("data:1x2x8x8", "MOBRT_SHAPE_ERROR", ["'data'", "dim 1"]),
])
def test_native_client_reports_bridge_errors(native_client, models, tmp_path, arg, status, words):
    path, _, x = models["digits"]
    raw = tmp_path / "input.raw"
    x[:1].astype("<f4").tofile(raw)
    proc = _run([native_client, path, tmp_path, f"{arg}={raw}"])
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith(f"{status}: {path}: "), line
    for w in words:
        assert w in line, line


def test_native_client_names_a_missing_model(native_client, tmp_path):
    missing = tmp_path / "none.mob"
    proc = _run([native_client, missing, tmp_path])
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"MOBRT_IO_ERROR: {missing}: "), proc.stderr
    assert proc.stderr.count(str(missing)) == 1, proc.stderr  # named once, not twice


# ---- arm64 under qemu ----------------------------------------------------------------


@pytest.fixture(scope="module")
def arm64_client(layout, tmp_path_factory) -> Path:
    """client.c + mobrt_bridge.c cross-compiled with clang for aarch64 (the module map again),
    linked statically with build/aarch64-tests/libmobrt.a (built under its lock)."""
    _need("clang", "aarch64-linux-gnu-g++", "qemu-aarch64")
    a64 = importlib.import_module("test_runtime_aarch64")
    with open(a64.BUILD.parent / "aarch64-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        a64._build_aarch64()  # configures build/aarch64-tests if needed and builds mobrt_run
        _ok(["cmake", "--build", a64.BUILD, "--target", "mobrt_static"])
        lib = a64.BUILD / "libmobrt.a"
        d = tmp_path_factory.mktemp("ios_arm64")
        shutil.copy(lib, d / "libmobrt.a")  # the shared build may be rebuilt once the lock is released
    target = "aarch64-linux-gnu"
    proc = _compile_client(layout / "include", d / "client.o", d / "mc", target=target, strict=False)
    assert proc.returncode == 0, proc.stderr
    assert "Mobrt" in _pcms(d / "mc")
    _ok(["clang", f"--target={target}", *WARN, "-O2", "-I", layout / "include" / "Mobrt", "-c",
         BRIDGE / "src" / "mobrt_bridge.c", "-o", d / "bridge.o"])
    _ok(["aarch64-linux-gnu-g++", "-static", d / "client.o", d / "bridge.o", d / "libmobrt.a", "-lpthread",
         "-o", d / "client"])
    return d / "client"


@pytest.mark.parametrize("model", ["digits", "mobilenetv2"])
@pytest.mark.parametrize("isa", ["scalar", None])
def test_arm64_client_under_qemu_matches_python(arm64_client, models, tmp_path, model, isa):
    """The scalar kernels (MOBRT_MAX_ISA=scalar on arm64, isa="scalar" in Python on x86) give
    the same bits on both; NEON against the x86 kernels agrees within 1e-5 of max |ref|."""
    path, name, x = models[model]
    env = dict(os.environ, MOBRT_MAX_ISA=isa) if isa else {k: v for k, v in os.environ.items() if k != "MOBRT_MAX_ISA"}
    _, got = _client_run(QEMU, arm64_client, path, name, x, tmp_path, env=env)
    want = _python_outputs(path, name, x, isa=isa)
    assert len(got) == len(want) >= 1
    for g, w in zip(got, want):
        assert g.shape == w.shape
        err = float(np.max(np.abs(g.astype(np.float64) - w)))
        if isa == "scalar":
            assert g.tobytes() == w.tobytes(), f"{model}: max |diff| {err}"
        else:
            assert err <= 1e-5 * max(1.0, float(np.max(np.abs(w)))), f"{model}: max |diff| {err}"
    if model == "digits":
        assert (got[0].argmax(1) == want[0].argmax(1)).all()


# ---- docs and the Mac-only script ------------------------------------------------------


def _doc_block(text: str, marker: str, lang: str = "c") -> str:
    m = re.search(rf"<!-- {re.escape(marker)} -->\n```{lang}\n(.*?)```", text, re.S)
    assert m, f"docs/ios.md has no ```{lang} block after <!-- {marker} -->"
    return m.group(1)


def test_docs_show_the_tested_code_verbatim():
    doc = (ROOT / "docs" / "ios.md").read_text()
    assert _doc_block(doc, "ios_bridge/examples/client.c") == CLIENT.read_text()
    assert _doc_block(doc, "ios_bridge/examples/import_by_name.m", "objc") == \
        (BRIDGE / "examples" / "import_by_name.m").read_text()


def test_make_xcframework_script_is_shellcheck_clean():
    _need("shellcheck")
    script = BRIDGE / "make_xcframework.sh"
    _ok(["bash", "-n", script])
    _ok(["shellcheck", script])
    text = script.read_text()
    for word in ("-create-xcframework", "iphoneos", "iphonesimulator", "-DMOBRT_IOS_LAYOUT=ON"):
        assert word in text, word
