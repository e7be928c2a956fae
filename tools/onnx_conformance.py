"""Run onnx's backend node test cases through the ONNX frontend + numpy reference.

    python tools/onnx_conformance.py                 # table over every op type
    python tools/onnx_conformance.py --ops Conv,Relu # only these op types
    python tools/onnx_conformance.py --claimed --json out.json

Each case (`onnx.backend.test.case.node.collect_testcases()`) is converted
with `load_onnx`, run with `mobconv.reference.run` on each of its data sets
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
does not have (float64, strings, float8, int4, ...), an opset outside 7..28,
or optional/sequence-typed values.

Conversion-time constants: the IR infers every shape at conversion time, so
values a shape depends on (Reshape's shape, Slice's starts, Tile's repeats,
Range's limits, ...) must be constants. Backend cases pass them as graph
inputs; when conversion fails on such a case it is retried with the
parameter-like inputs (those never read as a node's first input), then all
inputs, baked in as initializers with the data set's values. The numbers are
still computed by the converted graph in the reference interpreter.
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


def _array(x) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    if isinstance(x, onnx.TensorProto):
        return numpy_helper.to_array(x)
    return np.asarray(x)


def _bake(model, names, data: dict):
    """Copy of `model` with the graph inputs `names` turned into initializers."""
    import onnx
    from onnx import numpy_helper

    baked = onnx.ModelProto()
    baked.CopyFrom(model)
    keep = [vi for vi in baked.graph.input if vi.name not in names]
    del baked.graph.input[:]
    baked.graph.input.extend(keep)
    for name in names:
        baked.graph.initializer.append(numpy_helper.from_array(data[name], name))
    return baked


def _parameter_inputs(model, names) -> list:
    """Inputs never read as a node's input 0: shape/axes/pads-like parameters."""
    data_inputs = {n.input[0] for n in model.graph.node if n.input}
    return [n for n in names if n not in data_inputs]


def _convert(model, feeds: dict):
    """load_onnx on the case model; if conversion fails because values the IR
    needs at conversion time arrive as graph inputs (Reshape's shape, Slice's
    starts, Range's limits, ...), retry with those inputs baked in as
    initializers: first the parameter-like ones, then all of them.
    Returns (graph, baked input names)."""
    from mobconv.frontends.onnx import load_onnx

    names = list(feeds)
    attempts = [[], _parameter_inputs(model, names), names]
    error = None
    tried = []
    for baked in attempts:
        if baked in tried:
            continue
        tried.append(baked)
        shapes = {n: tuple(feeds[n].shape) for n in names if n not in baked}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                source = _bake(model, baked, feeds) if baked else model
                return load_onnx(source, input_shapes=shapes or None), baked
        except Exception as exc:  # noqa: BLE001
            error = error or exc
    raise error


def run_case(case, op_type: str) -> CaseResult:
    from mobconv.reference import interpreter

    reason = unsupported_reason(case)
    if reason:
        return CaseResult(case.name, op_type, "unsupported", reason)
    model = case.model
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    for k, (ins, expected) in enumerate(case.data_sets):
        feeds = {vi.name: _array(x) for vi, x in zip(inputs, ins)}
        try:
            graph, baked = _convert(model, feeds)
        except Exception as exc:  # noqa: BLE001
            return CaseResult(case.name, op_type, "failed", f"convert: {type(exc).__name__}: {exc}")
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                got = interpreter.run(graph, {n: a for n, a in feeds.items() if n not in baked})
        except Exception as exc:  # noqa: BLE001
            return CaseResult(case.name, op_type, "failed", f"run: {type(exc).__name__}: {exc}")
        for out, want in zip(model.graph.output, expected):
            a, b = np.asarray(got[out.name]), _array(want)
            if a.dtype != b.dtype:
                return CaseResult(case.name, op_type, "failed", f"output {out.name}: dtype {a.dtype} != {b.dtype}")
            if a.shape != b.shape:
                return CaseResult(case.name, op_type, "failed", f"output {out.name}: shape {a.shape} != {b.shape}")
            try:
                np.testing.assert_allclose(a, b, rtol=case.rtol, atol=case.atol)
            except AssertionError as exc:
                detail = " ".join(str(exc).split())[:300]
                return CaseResult(case.name, op_type, "failed", f"output {out.name}: {detail}")
    return CaseResult(case.name, op_type, "passed")


def run_conformance(ops=None, claimed_only=False) -> list:
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
        results.append(run_case(case, t))
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", help="comma-separated op types to run (default: all)")
    parser.add_argument("--claimed", action="store_true", help="only op types the frontend claims")
    parser.add_argument("--json", metavar="PATH", help="also write per-case results as JSON")
    args = parser.parse_args(argv)
    ops = set(args.ops.split(",")) if args.ops else None
    results = run_conformance(ops, args.claimed)
    rows = summarize(results)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ops": rows, "cases": [asdict(r) for r in results]}, f, indent=1)
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__file__)))
    sys.exit(main())
