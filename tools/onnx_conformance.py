"""Run onnx's backend test cases through the ONNX frontend + numpy reference / C++ runtime.

    python tools/onnx_conformance.py                 # table over every op type
    python tools/onnx_conformance.py --ops Conv,Relu # only these op types
    python tools/onnx_conformance.py --claimed --json out.json
    python tools/onnx_conformance.py --claimed --backend both --model-cases
    python tools/onnx_conformance.py --backend runtime --isa scalar

Each case (`onnx.backend.test.case.node.collect_testcases()`) is converted
with `load_onnx`, run on each of its data sets with `mobconv.reference.run`
(--backend reference) or in the C++ runtime on the graph serialized with
`mobconv.formats.writer.to_bytes` (--backend runtime; --isa caps its kernels),
and compared with `np.testing.assert_allclose(rtol=case.rtol, atol=case.atol)`
plus an exact dtype check (what onnx's own backend runner does).

Which op a case counts toward: a plain case has exactly one node, whose type
it is. A function-expanded case (`test_x_expanded`, `..._expanded_ver18`) is
the same computation spelled with primitive ops; it counts toward the op of
its base case `test_x`, so e.g. Softmax's tally includes its expansions.

Outcomes: "passed"; "failed" (conversion raised, running raised, or the
numbers/dtypes differ: the reason is kept); "unsupported" when the case uses
an op type the frontend does not convert (any node, so an expansion that
needs an unsupported helper op is unsupported, not failed), a dtype the IR
does not have (float64, strings, float8, int4, ...), an opset outside the frontend's 6..28,
or optional/sequence-typed values.

Run-time parameters: backend cases pass Reshape's shape, Slice's starts, Resize's
scales, Range's limits, ... as graph inputs, and they are run that way: the IR gives
the dims that depend on them run-time symbols and the runtime infers those shapes at
invoke. Nothing is baked into initializers. Only the quantization parameters of the
QOperator ops (QLinearConv/QLinearMatMul scales and zero points, ConvInteger/
MatMulInteger zero points) must be constants, because the IR keeps them on the
tensors: a case feeding them as graph inputs is "unsupported" (a `value` reason).

Model cases (--model-cases): onnx's model-level directories
`backend/test/data/{pytorch-converted,pytorch-operator,simple}/test_*`
(model.onnx + test_data_set_*/{input,output}_*.pb), run the same way with
rtol 1e-5 / atol 1e-7 (onnx's runner uses rtol 1e-3); one row per directory.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from dataclasses import asdict, dataclass

import numpy as np

SUPPORTED_NP = {"float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool"}


@dataclass
class CaseResult:
    name: str
    op_type: str
    status: str  # "passed" | "failed" | "unsupported"
    reason: str = ""


def collect_cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c for c in collect_testcases() if c.kind == "node"]


def case_op_types(cases) -> dict:
    """case name -> the op type it counts toward (see module docstring)."""
    from mobconv.frontends.onnx.loader import op_type_name

    base = {}
    for c in cases:
        if "_expanded" not in c.name and len(c.model.graph.node) == 1:
            base[c.name] = op_type_name(c.model.graph.node[0])
    result = {}
    for c in cases:
        key = re.sub(r"_expanded.*$", "", c.name)
        if key in base:
            result[c.name] = base[key]
        else:  # no single-node base case: first non-Constant node
            types = [op_type_name(n) for n in c.model.graph.node if n.op_type != "Constant"]
            result[c.name] = types[0] if types else "Constant"
    return result


def _value_dtype_ok(vi) -> str:
    """'' if the value's type is a tensor of an IR dtype, else the reason."""
    import onnx

    if not vi.type.HasField("tensor_type"):
        return f"value {vi.name!r} is not a tensor ({vi.type.WhichOneof('value')})"
    et = vi.type.tensor_type.elem_type
    if et == onnx.TensorProto.BFLOAT16:
        return ""
    try:
        name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(et)).name
    except Exception:  # noqa: BLE001
        name = onnx.TensorProto.DataType.Name(et)
    if name not in SUPPORTED_NP:
        return f"dtype {name} of {vi.name!r}"
    return ""


def unsupported_reason(case) -> str:
    import onnx

    from mobconv.frontends.onnx.converters import is_supported
    from mobconv.frontends.onnx.loader import DEFAULT_DOMAINS, MAX_OPSET, MIN_OPSET, op_type_name

    model = case.model
    opsets = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if opsets and not MIN_OPSET <= max(opsets) <= MAX_OPSET:
        return f"opset {max(opsets)}"
    missing = sorted(
        {op_type_name(n) for n in model.graph.node if n.domain not in DEFAULT_DOMAINS or not is_supported(n.op_type)}
    )
    if missing:
        return "op " + ", ".join(missing)
    for vi in list(model.graph.input) + list(model.graph.output):
        reason = _value_dtype_ok(vi)
        if reason:
            return reason
    reason = _quant_params_at_run_time(model)
    if reason:
        return reason
    for node in model.graph.node:
        for a in node.attribute:
            if a.name == "to" and a.type == a.INT and node.op_type == "Cast":
                try:
                    name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(a.i)).name
                except Exception:  # noqa: BLE001
                    name = onnx.TensorProto.DataType.Name(a.i)
                if name not in SUPPORTED_NP and a.i != onnx.TensorProto.BFLOAT16:
                    return f"dtype {name} (Cast to)"
            if a.type == a.TENSOR:
                if a.t.data_type == onnx.TensorProto.BFLOAT16:
                    continue
                try:
                    name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(a.t.data_type)).name
                except Exception:  # noqa: BLE001
                    name = str(a.t.data_type)
                if name not in SUPPORTED_NP:
                    return f"dtype {name} of attribute {node.op_type}.{a.name}"
    return ""


# Inputs of the QOperator ops that the IR keeps on tensors as quantization parameters
# (frontends/onnx/converters/qoperator.py): they must be constants.
QUANT_PARAM_INPUTS = {
    "QLinearConv": (1, 2, 4, 5, 6, 7), "QLinearMatMul": (1, 2, 4, 5, 6, 7),
    "ConvInteger": (2, 3), "MatMulInteger": (2, 3),
}


def _quant_params_at_run_time(model) -> str:
    """'' unless a QOperator node reads a quantization parameter from a graph input."""
    inits = {t.name for t in model.graph.initializer}
    fed = {vi.name for vi in model.graph.input} - inits
    for node in model.graph.node:
        for i in QUANT_PARAM_INPUTS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i] in fed:
                return (f"value {node.input[i]!r}: a quantization parameter of {node.op_type} must be "
                        "a constant (the IR keeps scales and zero points on the tensors)")
    return ""


def _array(x) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    if isinstance(x, onnx.TensorProto):
        return numpy_helper.to_array(x)
    return np.asarray(x)


def _convert(model, feeds: dict):
    """load_onnx on the case model, every graph input fed at run time with its data set's shape."""
    from mobconv.frontends.onnx import load_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_onnx(model, input_shapes={n: tuple(a.shape) for n, a in feeds.items()} or None)


def _run_graph(graph, feeds: dict, backend: str, isa=None) -> dict:
    """Outputs of the converted graph on `feeds`: numpy reference, or the C++
    runtime on the graph serialized to .mob bytes (a bfloat16 output comes back
    as raw uint16 bits and is viewed as ml_dtypes.bfloat16)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if backend == "reference":
            from mobconv.reference import interpreter

            return interpreter.run(graph, feeds)
        from mobconv.formats.writer import to_bytes
        from mobconv.runtime import Interpreter

        # mobconv.runtime passes bfloat16 as its raw uint16 bits
        feeds = {n: (a.view(np.uint16) if a.dtype.name == "bfloat16" else a) for n, a in feeds.items()}
        with Interpreter(to_bytes(graph), isa=isa, profile=False) as it:
            got = it.run(feeds)
    for name, arr in got.items():
        if name in graph.values and graph.values[name].dtype == "bfloat16":
            import ml_dtypes

            got[name] = arr.view(ml_dtypes.bfloat16)
    return got


def compare(got: dict, output_names, expected, rtol, atol) -> str:
    """'' if every expected output matches (exact dtype and shape, allclose), else why not."""
    for name, want in zip(output_names, expected):
        if name not in got:
            return f"output {name}: missing"
        a, b = np.asarray(got[name]), _array(want)
        if a.dtype != b.dtype:
            return f"output {name}: dtype {a.dtype} != {b.dtype}"
        if a.shape != b.shape:
            return f"output {name}: shape {a.shape} != {b.shape}"
        try:
            if a.dtype.kind not in "biuf" and str(a.dtype) == "bfloat16":
                a, b = a.astype(np.float32), b.astype(np.float32)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
        except AssertionError as exc:
            return f"output {name}: " + " ".join(str(exc).split())[:300]
    return ""


def run_case(case, op_type: str, backend: str = "reference", isa=None) -> CaseResult:
    """Convert and run one backend node case; backend "reference" (numpy) or
    "runtime" (C++ libmobrt, `isa` caps its kernels: "scalar" = reference kernels)."""
    reason = unsupported_reason(case) or (runtime_unsupported_reason(case) if backend == "runtime" else "")
    if reason:
        return CaseResult(case.name, op_type, "unsupported", reason)
    model = case.model
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    for ins, expected in case.data_sets:
        feeds = {vi.name: _array(x) for vi, x in zip(inputs, ins)}
        try:
            graph = _convert(model, feeds)
        except Exception as exc:  # noqa: BLE001
            return CaseResult(case.name, op_type, "failed", f"convert: {type(exc).__name__}: {exc}")
        try:
            got = _run_graph(graph, feeds, backend, isa)
        except Exception as exc:  # noqa: BLE001
            return CaseResult(case.name, op_type, "failed", f"run: {type(exc).__name__}: {exc}")
        why = compare(got, [o.name for o in model.graph.output], expected, case.rtol, case.atol)
        if why:
            return CaseResult(case.name, op_type, "failed", why)
    return CaseResult(case.name, op_type, "passed")


# Cases the C++ runtime cannot express although the IR can: case name (or
# op type) -> reason. Decided statically; keep small and honest.
RUNTIME_UNSUPPORTED: dict = {}


def runtime_unsupported_reason(case) -> str:
    return RUNTIME_UNSUPPORTED.get(case.name, "")


def run_conformance(ops=None, claimed_only=False, backend="reference", isa=None) -> list:
    from mobconv.frontends.onnx import claimed_ops

    cases = collect_cases()
    types = case_op_types(cases)
    claimed = set(claimed_ops())
    results = []
    for case in cases:
        t = types[case.name]
        if ops and t not in ops:
            continue
        if claimed_only and t not in claimed:
            continue
        results.append(run_case(case, t, backend, isa))
    return results


def summarize(results) -> list:
    rows = {}
    for r in results:
        row = rows.setdefault(r.op_type, {"op": r.op_type, "cases": 0, "passed": 0, "failed": 0,
                                          "unsupported": 0, "first_failure": ""})
        row["cases"] += 1
        row[r.status] += 1
        if r.status == "failed" and not row["first_failure"]:
            row["first_failure"] = f"{r.name}: {r.reason}"
    return [rows[k] for k in sorted(rows)]


def format_table(rows) -> str:
    head = f"{'op type':<28} {'cases':>5} {'passed':>6} {'failed':>6} {'unsup':>5}  first failure"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['op']:<28} {r['cases']:>5} {r['passed']:>6} {r['failed']:>6} {r['unsupported']:>5}  "
            f"{r['first_failure'][:110]}"
        )
    tot = {k: sum(r[k] for r in rows) for k in ("cases", "passed", "failed", "unsupported")}
    lines.append("-" * len(head))
    lines.append(
        f"{'total (' + str(len(rows)) + ' op types)':<28} {tot['cases']:>5} {tot['passed']:>6} "
        f"{tot['failed']:>6} {tot['unsupported']:>5}"
    )
    return "\n".join(lines)


# ---- model-level cases: onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}

MODEL_CASE_DIRS = ("pytorch-converted", "pytorch-operator", "simple")
# onnx's own runner uses rtol 1e-3 / atol 1e-7 for these directories; every
# expressible case passes 100x tighter on both backends, so hold that line.
MODEL_RTOL, MODEL_ATOL = 1e-5, 1e-7


@dataclass
class ModelCase:
    name: str  # "<dir>/<test name>"
    path: str  # the test directory (model.onnx + test_data_set_*)


def collect_model_cases() -> list:
    import glob
    import os

    import onnx

    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    cases = []
    for kind in MODEL_CASE_DIRS:
        for d in sorted(glob.glob(os.path.join(root, kind, "test_*"))):
            if os.path.exists(os.path.join(d, "model.onnx")):
                cases.append(ModelCase(f"{kind}/{os.path.basename(d)}", d))
    return cases


def _load_model_case(mc):
    import glob
    import os

    import onnx

    model = onnx.load(os.path.join(mc.path, "model.onnx"))
    data_sets = []
    for ds in sorted(glob.glob(os.path.join(mc.path, "test_data_set_*"))):
        def read(prefix):
            out = []
            for k in range(len(glob.glob(os.path.join(ds, f"{prefix}_*.pb")))):
                t = onnx.TensorProto()
                with open(os.path.join(ds, f"{prefix}_{k}.pb"), "rb") as f:
                    t.ParseFromString(f.read())
                out.append(t)
            return out

        data_sets.append((read("input"), read("output")))
    return model, data_sets


class _ModelAsCase:
    """A model directory seen through the node-case interface (name, model, data_sets, rtol, atol)."""

    def __init__(self, mc, rtol=MODEL_RTOL, atol=MODEL_ATOL):
        self.name = mc.name
        self.model, self.data_sets = _load_model_case(mc)
        self.rtol, self.atol = rtol, atol


def model_case_unsupported_reason(mc) -> str:
    return unsupported_reason(_ModelAsCase(mc))


def run_model_case(mc, backend: str = "reference", isa=None) -> CaseResult:
    case = _ModelAsCase(mc)
    return run_case(case, mc.name.split("/")[0], backend, isa)


def run_model_cases(backend="reference", isa=None) -> list:
    return [run_model_case(mc, backend, isa) for mc in collect_model_cases()]


BACKENDS = ("reference", "runtime")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", help="comma-separated op types to run (default: all)")
    parser.add_argument("--claimed", action="store_true", help="only op types the frontend claims")
    parser.add_argument("--backend", choices=("reference", "runtime", "both"), default="reference",
                        help="numpy reference interpreter, C++ runtime (libmobrt), or both (a table each)")
    parser.add_argument("--isa", choices=("scalar", "avx2", "avx512", "neon"),
                        help="cap the runtime's kernels (scalar = C++ reference kernels only)")
    parser.add_argument("--model-cases", action="store_true",
                        help="also run onnx's model-level cases (pytorch-converted, pytorch-operator, simple)")
    parser.add_argument("--json", metavar="PATH", help="also write per-case results as JSON")
    args = parser.parse_args(argv)
    ops = set(args.ops.split(",")) if args.ops else None
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    failed = False
    report = {}
    for backend in backends:
        results = run_conformance(ops, args.claimed, backend, args.isa)
        rows = summarize(results)
        label = backend + (f" (isa {args.isa})" if backend == "runtime" and args.isa else "")
        print(f"== node cases, backend {label}")
        print(format_table(rows))
        failed |= any(r.status == "failed" for r in results)
        entry = {"ops": rows, "cases": [asdict(r) for r in results]}
        if args.model_cases:
            mres = run_model_cases(backend, args.isa)
            print(f"\n== model cases, backend {label} (rtol {MODEL_RTOL}, atol {MODEL_ATOL}; "
                  "rows are test directories)")
            print(format_table(summarize(mres)))
            for r in mres:
                if r.status != "passed":
                    print(f"  {r.status:<11} {r.name}: {r.reason[:150]}")
            failed |= any(r.status == "failed" for r in mres)
            entry["model_cases"] = [asdict(r) for r in mres]
        report[backend] = entry
        print()
    if args.json:
        with open(args.json, "w") as f:
            data = report[backends[0]] if len(backends) == 1 else {}
            data = dict(data, backends=report)
            json.dump(data, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__file__)))
    sys.exit(main())
