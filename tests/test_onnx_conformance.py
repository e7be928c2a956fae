"""onnx backend node cases for every op the ONNX frontend claims.

Claimed = has a converter in the ONNX ConverterRegistry and every IR op it
emits exists in `mobconv.ops`. Every case of a claimed op (its plain case and
function-expanded variants, see tools/onnx_conformance.py for how cases map to
ops) must convert, run on each backend -- the numpy reference, and the C++
runtime (libmobrt) on the graph serialized to .mob bytes -- and match with the
case's own rtol/atol (one test per case and backend). Cases that need something outside the IR (a dtype such as float64
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
    runtime_ok = _runtime_available()
    for case in cases:
        if types[case.name] not in claimed:
            continue
        reason = conformance.unsupported_reason(case)
        if reason:
            unsupported.append((case.name, reason))
            continue
        supported.append(pytest.param(case, types[case.name], "reference", id=f"reference-{types[case.name]}-{case.name}"))
        if runtime_ok:
            reason = conformance.runtime_unsupported_reason(case)
            if reason:
                unsupported.append((case.name, "runtime " + reason))
            else:
                supported.append(pytest.param(case, types[case.name], "runtime", id=f"runtime-{types[case.name]}-{case.name}"))
    return supported, unsupported


def _runtime_available() -> bool:
    try:
        from mobconv import runtime

        return runtime.available()
    except Exception:  # noqa: BLE001
        return False


CASES, UNSUPPORTED = _claimed_cases()

# What may make a case of a claimed op inexpressible: a dtype or value kind the
# IR does not have, an opset outside 6..28, or a helper op of a function expansion.
# Cases the runtime cannot express although the IR can carry the prefix
# "runtime " (conformance.RUNTIME_UNSUPPORTED; currently empty).
_ALLOWED_REASONS = ("dtype ", "value ", "opset ", "op ", "runtime ")


def test_unsupported_cases_only_need_what_the_ir_lacks():
    bad = [(name, reason) for name, reason in UNSUPPORTED if not reason.startswith(_ALLOWED_REASONS)]
    assert not bad, bad
    dtype_reasons = [r for _, r in UNSUPPORTED if r.startswith("dtype ")]
    for reason in dtype_reasons:  # float32/int64/... are IR dtypes: never a reason
        assert not any(f"dtype {d} " in reason + " " for d in ("float32", "int64", "int32", "bool")), reason


def test_parameters_computed_at_run_time_are_no_reason():
    """Every case runs with its graph inputs fed at run time (nothing is baked into a
    constant); the only inputs that must be constants are QOperator quantization
    parameters, which the IR keeps on tensors."""
    value_reasons = [(n, r) for n, r in UNSUPPORTED if r.startswith("value ")]
    bad = [(n, r) for n, r in value_reasons if "is not a tensor" not in r and "quantization parameter" not in r]
    assert not bad, bad
    assert not hasattr(conformance, "_bake")


def test_frontend_claims_ops():
    assert len(CASES) > 0


def test_runtime_covers_every_expressible_case():
    if not _runtime_available():
        pytest.fail("libmobrt is not built: pip install -e . --no-build-isolation --no-deps")
    ref = {p.values[0].name for p in CASES if p.values[2] == "reference"}
    rt = {p.values[0].name for p in CASES if p.values[2] == "runtime"}
    assert ref - rt == {n for n, r in UNSUPPORTED if r.startswith("runtime ")}


@pytest.mark.parametrize("case,op_type,backend", CASES)
def test_backend_case(case, op_type, backend):
    result = conformance.run_case(case, op_type, backend)
    assert result.status == "passed", f"{case.name} ({op_type}, {backend}): {result.reason}"


def test_table_and_json(tmp_path, capsys):
    out = tmp_path / "conf.json"
    code = conformance.main(["--ops", "Relu,Softmax", "--backend", "both", "--json", str(out)])
    text = capsys.readouterr().out
    assert "Relu" in text and "total" in text
    assert "backend reference" in text and "backend runtime" in text
    assert code == 0
    import json

    data = json.loads(out.read_text())
    assert set(data["backends"]) == {"reference", "runtime"}
    for entry in data["backends"].values():
        assert {row["op"] for row in entry["ops"]} == {"Relu", "Softmax"}
        assert all(c["status"] == "passed" for c in entry["cases"])


@pytest.mark.parametrize("backend", ["reference", "runtime"])
def test_unsupported_ops_are_counted_not_failed(backend):
    results = conformance.run_conformance(ops={"Det"}, backend=backend)
    assert results and all(r.status == "unsupported" for r in results)
