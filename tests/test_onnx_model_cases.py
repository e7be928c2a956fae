"""onnx's model-level backend cases through the converter, on both backends.

onnx ships real PyTorch-converted layers and small models with their data:
`onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}/test_*/`
(model.onnx + test_data_set_*/input_*.pb, output_*.pb). Each one whose ops the
ONNX frontend claims and whose dtypes/opset the IR supports is converted and
run in the numpy reference and in the C++ runtime (the graph serialized to
.mob bytes), one test per (case, backend), and compared with the stored
outputs at rtol 1e-5 / atol 1e-7 (onnx's own runner uses rtol 1e-3 for these;
every case holds the tighter bound on both backends).

The others are decided statically before collection
(`unsupported_reason`: an op the frontend does not claim, a dtype the IR
lacks such as float64, sequences/strings) and are not collected; no skips and
no list of expected failures. Runner: tools/onnx_conformance.py
(`--model-cases`).
"""
import importlib.util
import os
import sys

import pytest

pytest.importorskip("onnx")

_TOOL = os.path.join(os.path.dirname(__file__), os.pardir, "tools", "onnx_conformance.py")
if "onnx_conformance" in sys.modules:
    conformance = sys.modules["onnx_conformance"]
else:
    _spec = importlib.util.spec_from_file_location("onnx_conformance", _TOOL)
    conformance = importlib.util.module_from_spec(_spec)
    sys.modules["onnx_conformance"] = conformance
    _spec.loader.exec_module(conformance)


def _runtime_available() -> bool:
    try:
        from mobconv import runtime

        return runtime.available()
    except Exception:  # noqa: BLE001
        return False


def _collect():
    supported, unsupported = [], []
    backends = ["reference"] + (["runtime"] if _runtime_available() else [])
    for mc in conformance.collect_model_cases():
        reason = conformance.model_case_unsupported_reason(mc)
        if reason:
            unsupported.append((mc.name, reason))
            continue
        for backend in backends:
            supported.append(pytest.param(mc, backend, id=f"{backend}-{mc.name}"))
    return supported, unsupported


CASES, UNSUPPORTED = _collect()

# Reasons a model case may be inexpressible (see unsupported_reason).
_ALLOWED_REASONS = ("dtype ", "value ", "opset ", "op ")


def test_tolerance_is_at_least_onnx_runner_tight():
    assert conformance.MODEL_RTOL <= 1e-3 and conformance.MODEL_ATOL <= 1e-7


def test_model_cases_found():
    names = {p.values[0].name for p in CASES}
    # every PyTorch-converted layer converts (opset 6 legacy forms included)
    assert sum(n.startswith("pytorch-converted/") for n in names) == 82
    assert len(names) >= 118


def test_runtime_runs_every_case():
    if not _runtime_available():
        pytest.fail("libmobrt is not built: pip install -e . --no-build-isolation --no-deps")
    ref = {p.values[0].name for p in CASES if p.values[1] == "reference"}
    rt = {p.values[0].name for p in CASES if p.values[1] == "runtime"}
    assert ref == rt


def test_inexpressible_cases_only_need_what_the_ir_lacks():
    bad = [(n, r) for n, r in UNSUPPORTED if not r.startswith(_ALLOWED_REASONS)]
    assert not bad, bad
    for _, reason in UNSUPPORTED:
        # a dtype the IR has is never a reason; opset 6..28 is supported
        assert not any(f"dtype {d} " in reason for d in ("float32", "int64", "int32", "bool")), reason
        assert not reason.startswith("opset "), reason


@pytest.mark.parametrize("mc,backend", CASES)
def test_model_case(mc, backend):
    result = conformance.run_model_case(mc, backend)
    assert result.status == "passed", f"{mc.name} ({backend}): {result.reason}"


def test_tool_prints_model_cases(capsys):
    code = conformance.main(["--ops", "Relu", "--backend", "runtime", "--model-cases"])
    text = capsys.readouterr().out
    assert code == 0
    assert "model cases, backend runtime" in text and "pytorch-converted" in text
