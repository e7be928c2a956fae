"""An int8 .mob from the quantizer through the user-facing ways of running it, on every
instruction-set cap this CPU has, at 1 and 2 threads: `mobconv run --isa` (CLI), the
Python binding (`mobconv.Model.run(isa=)`), and -- in test_runtime_cmake_example.py --
a C program linked against the installed library. Every output equals the numpy
reference interpreter's exactly (tests/int8_harness.py does the same per kernel)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import mobconv
from mobconv import quantize, runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(ROOT, "model_zoo", "onnx")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mobconv.cli.main", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    out = d / "digits_resnet.int8.mob"
    proc = _cli("quantize", os.path.join(ZOO, "digits_resnet.onnx"), "-o", str(out), "--calib",
                os.path.join(ZOO, "digits_calib"), "--num-samples", "16")
    assert proc.returncode == 0, proc.stderr
    images = np.load(os.path.join(ZOO, "digits_heldout.npz"))["images"][:1].astype(np.float32)
    x = d / "x.npy"
    np.save(x, images)
    ref = d / "ref"
    proc = _cli("run", str(out), "--input", str(x), "--reference", "--save", str(ref))
    assert proc.returncode == 0, proc.stderr
    return d, out, x, images, {f: np.load(ref / f) for f in os.listdir(ref)}


def test_mobconv_run_every_isa_equals_the_reference(int8_model):
    d, model, x, _, want = int8_model
    assert runtime.available()
    for isa in runtime.supported_isas():
        for threads in (1, 2):
            got_dir = d / f"got_{isa}_{threads}"
            proc = _cli("run", str(model), "--input", str(x), "--isa", isa, "--threads", str(threads),
                        "--save", str(got_dir))
            assert proc.returncode == 0, proc.stderr
            assert f"kernels capped at {isa}" in proc.stdout
            for name, w in want.items():
                g = np.load(got_dir / name)
                assert g.dtype == w.dtype and np.array_equal(g, w), (isa, threads, name)


def test_python_binding_every_isa_equals_the_reference(int8_model):
    _, model_path, _, images, _ = int8_model
    model = mobconv.load(str(model_path))
    feeds = {model.inputs[0].name: images}
    want = model.run(feeds, backend="reference")
    for isa in runtime.supported_isas():
        for threads in (1, 2):
            got = model.run(feeds, backend="runtime", threads=threads, isa=isa)
            assert set(got) == set(want)
            for out_name, g in got.items():
                assert g.dtype == want[out_name].dtype and np.array_equal(g, want[out_name]), (isa, threads, out_name)


def test_run_isa_errors_are_one_line():
    model = os.path.join(ZOO, "digits_resnet.onnx")
    proc = _cli("run", model, "--isa", "sse9")
    assert proc.returncode == 2 and "--isa sse9: unknown instruction set" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _cli("run", model, "--isa", "avx2", "--reference")
    assert proc.returncode == 2 and "--isa and --reference" in proc.stderr
    foreign = "neon" if runtime.supported_isas()[-1].startswith("avx") else "avx2"
    proc = _cli("run", model, "--isa", foreign)
    assert proc.returncode == 2 and "this CPU cannot run it" in proc.stderr, proc.stderr


def test_empty_reductions_and_size_one_broadcasts_every_isa():
    """K = 0 MatMul/Gemm (the sum is empty: output = requantized bias, or zp), a 1x1x1 Conv,
    and Add with a size-1 tensor broadcast from either side, under every ISA cap, equal the
    reference exactly."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from int8_harness import check_every_isa
    from test_runtime_int8 import _qp, _single
    from mobconv.ir import QuantParams as Q

    rng = np.random.default_rng(7)
    a0, b0 = np.zeros((3, 0), np.int8), np.zeros((0, 5), np.int8)
    bias = rng.integers(-100, 100, 5).astype(np.int32)
    cases = [
        _single("MatMul", [("a", a0, _qp(rng), False), ("b", b0, Q([0.01], [0]), True)], {}, _qp(rng)),
        _single("Gemm", [("a", a0, _qp(rng), False), ("b", b0, Q([0.01], [0]), True),
                         ("c", bias, Q([0.0002], [0]), True)], {}, _qp(rng)),
        _single("Conv", [("x", rng.integers(-128, 128, (1, 3, 1, 1)).astype(np.int8), _qp(rng), False),
                         ("w", rng.integers(-127, 128, (1, 3, 1, 1)).astype(np.int8), Q([0.01], [0]), True)],
                {}, _qp(rng)),
    ]
    one, big = rng.integers(-128, 128, (1, 1, 1, 1)).astype(np.int8), rng.integers(-128, 128, (2, 3, 4, 5)).astype(np.int8)
    cases.append(_single("Add", [("a", one, _qp(rng), False), ("b", big, _qp(rng), False)], {}, _qp(rng)))
    cases.append(_single("Add", [("b", big, _qp(rng), False), ("a", one, _qp(rng), False)], {}, _qp(rng)))
    for g, feeds in cases:
        check_every_isa(g, feeds)
