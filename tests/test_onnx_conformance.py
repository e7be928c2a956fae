"""onnx backend node cases for every op the ONNX frontend claims.

Claimed = has a converter in the ONNX ConverterRegistry and every IR op it
emits exists in `mobconv.ops`. Every case of a claimed op (its plain case and
function-expanded variants, see tools/onnx_conformance.py for how cases map to
ops) must convert, run in the numpy reference and match with the case's own
rtol/atol. Cases that need something outside the IR (a dtype such as float64
or float8, or a helper op of an expansion that the frontend does not claim)
are decided statically before any test runs (`unsupported_reason`) and are not
collected as tests; `test_unsupported_cases_only_need_what_the_ir_lacks` checks
that every such reason is of that kind. There is no list of expected failures.
"""
import importlib.util
import os
import sys

import pytest

pytest.importorskip("onnx")

_TOOL = os.path.join(os.path.dirname(__file__), os.pardir, "tools", "onnx_conformance.py")
_spec = importlib.util.spec_from_file_location("onnx_conformance", _TOOL)
conformance = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("onnx_conformance", conformance)
_spec.loader.exec_module(conformance)


def _claimed_cases():
    from mobconv.frontends.onnx import claimed_ops

    claimed = set(claimed_ops())
    cases = conformance.collect_cases()
    types = conformance.case_op_types(cases)
    supported, unsupported = [], []
    for case in cases:
        if types[case.name] not in claimed:
            continue
        reason = conformance.unsupported_reason(case)
        if reason:
            unsupported.append((case.name, reason))
        else:
            supported.append(pytest.param(case, types[case.name], id=f"{types[case.name]}-{case.name}"))
    return supported, unsupported


CASES, UNSUPPORTED = _claimed_cases()

# What may make a case of a claimed op inexpressible: a dtype or value kind the
# IR does not have, an opset outside 7..28, or a helper op of a function expansion.
_ALLOWED_REASONS = ("dtype ", "value ", "opset ", "op ")


def test_unsupported_cases_only_need_what_the_ir_lacks():
    bad = [(name, reason) for name, reason in UNSUPPORTED if not reason.startswith(_ALLOWED_REASONS)]
    assert not bad, bad
    dtype_reasons = [r for _, r in UNSUPPORTED if r.startswith("dtype ")]
    for reason in dtype_reasons:  # float32/int64/... are IR dtypes: never a reason
        assert not any(f"dtype {d} " in reason + " " for d in ("float32", "int64", "int32", "bool")), reason


def test_frontend_claims_ops():
    assert len(CASES) > 0


@pytest.mark.parametrize("case,op_type", CASES)
def test_backend_case(case, op_type):
    result = conformance.run_case(case, op_type)
    assert result.status == "passed", f"{case.name} ({op_type}): {result.reason}"


def test_table_and_json(tmp_path, capsys):
    out = tmp_path / "conf.json"
    code = conformance.main(["--ops", "Relu,Softmax", "--json", str(out)])
    text = capsys.readouterr().out
    assert "Relu" in text and "total" in text
    assert code == 0
    import json

    data = json.loads(out.read_text())
    assert {row["op"] for row in data["ops"]} == {"Relu", "Softmax"}


def test_unsupported_ops_are_counted_not_failed():
    results = conformance.run_conformance(ops={"Einsum"})
    assert results and all(r.status == "unsupported" for r in results)
