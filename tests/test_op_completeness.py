"""Every IR op has everything it needs, in every layer of the project.

STYLE.md convention 2: a test fails if an op lacks any of: a numpy reference
(with a shape function or the probe fallback), a slot in the file format's
OpType enum, a C++ kernel, a per-op runtime test case, a numpy-reference test
(an onnx backend case or a random-input test), and an ONNX converter for every
op the ONNX frontend claims.
"""
import sys
from pathlib import Path

import pytest

from mobconv.formats.fb.OpType import OpType
from mobconv.ops import load_all

sys.path.insert(0, str(Path(__file__).parent))
import runtime_cases  # noqa: E402

REGISTRY = load_all()
ENUM = {k for k in vars(OpType) if not k.startswith("_")}
CASE_OPS = {p.values[0] for p in runtime_cases.CASES + runtime_cases.SWEEP_CASES}
# the SSD ops have their own per-op runtime tests (zoo SSD head, every code type)
_DETECTION_TESTS = (Path(__file__).parent / "test_runtime_detection.py").read_text()
CASE_OPS |= {op for op in ("PriorBox", "DetectionOutput") if f'"{op}"' in _DETECTION_TESTS}
CAFFE_ONLY = {"PriorBox", "DetectionOutput"}  # Caffe SSD ops: not ONNX ops


def _numpy_tested_ops() -> set:
    import test_ops_extra
    import test_ops_nn
    import test_ops_tensor
    import test_quant_linear_ops

    covered = set()
    for module in (test_ops_nn, test_ops_tensor, test_ops_extra, test_quant_linear_ops):
        for name in ("OPS", "MY_OPS", "NN_OPS"):
            covered |= set(getattr(module, name, ()))
        for case in getattr(module, "BACKEND_CASES", ()):
            covered.add(case.model.graph.node[0].op_type)
    return covered


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_op_is_complete(op):
    from mobconv import runtime
    from mobconv.frontends.onnx import claimed_ops

    spec = REGISTRY[op]
    assert callable(spec.reference), f"{op}: no numpy reference"
    assert op in ENUM, f"{op}: not in formats/mobconv.fbs OpType"
    kernels = {entry["name"]: entry["kernels"] for entry in runtime.op_table()}
    assert op in kernels, f"{op}: not in the runtime's op table"
    assert any(k["isa"] == "scalar" for k in kernels[op]), f"{op}: no C++ reference kernel"
    assert op in CASE_OPS, f"{op}: no per-op runtime test case (tests/runtime_cases.py)"
    if op not in CAFFE_ONLY:
        assert op in claimed_ops(), f"{op}: the ONNX frontend does not map it"


def test_every_op_reference_is_tested():
    missing = sorted(set(REGISTRY) - _numpy_tested_ops() - CAFFE_ONLY)
    assert not missing, f"ops without a numpy-reference test: {missing}"
