"""`mobconv validate`: check a .mob file's structure, shapes and embedded test vectors."""
from __future__ import annotations

import numpy as np

from .. import api
from ..errors import MobconvError
from ..ir import infer_shapes
from .common import HelpFormatter, fmt_shape, out

EPILOG = """\
examples:
  mobconv validate mobilenet.mob
  mobconv onnx2mob tiny.onnx --embed-test-vector && mobconv validate tiny.mob

Checks, in order: the file follows every rule of docs/format-rules.md (the
Python reader); the C++ runtime that apps link, when it is built, loads the file
with its own verifier and prepares it (shape inference, kernel selection, memory
plan), so validate never passes a file the runtime refuses; shape inference
succeeds and agrees with the stored shapes; each embedded test vector reproduces
its outputs within the vector's rtol/atol (max|got - want| <= atol + rtol *
max|want| per output, as in compare), on the numpy reference and on the C++
runtime. Exit status 1 on any failure.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("validate", parents=[parent], help="check a .mob file and its test vectors",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .mob file, e.g. mobilenet.mob")
    p.set_defaults(func=run)


def check_shapes(graph) -> list:
    """Re-infer shapes on a copy; return the values whose stored shape/dtype disagrees."""
    copy = graph.copy()
    infer_shapes(copy)
    problems = []
    for name, value in graph.values.items():
        if value.is_constant or name in graph.inputs or value.shape is None:
            continue
        new = copy.values[name]
        if tuple(new.shape or ()) != tuple(value.shape) or new.dtype != value.dtype:
            problems.append(f"{name}: stored {value.dtype}{fmt_shape(value.shape)}, "
                            f"inferred {new.dtype}{fmt_shape(new.shape)}")
    return problems


def check_runtime(path) -> tuple:
    """(passed, message) from the C++ runtime's own loader (verifier) and prepare on the
    file itself; passed is None when the runtime is not built."""
    from .. import runtime

    if not runtime.available():
        return None, "the C++ runtime is not built; checked by the Python reader only"
    try:
        with runtime.Interpreter(path, threads=1, profile=False) as it:
            deferred = [i["name"] for i in it.inputs if any(d < 0 for d in i["shape"])]
    except MobconvError as exc:
        return False, str(exc)
    if deferred:
        return True, ("loaded by the C++ runtime's verifier; prepare waits for the symbolic "
                      f"dims of {', '.join(deferred)}")
    return True, "loaded and prepared by the C++ runtime"


def check_vector(model, vector, backend: str = "reference") -> tuple:
    """(passed, message) for one embedded test vector on one backend."""
    got = model.run(vector.inputs, backend=backend)
    worst, details = 0.0, []
    passed = True
    for name, want in vector.outputs.items():
        if name not in got:
            return False, f"output {name!r} is not produced by the model"
        a, b = np.asarray(got[name]), np.asarray(want)
        if a.shape != b.shape:
            return False, f"output {name!r}: shape {fmt_shape(a.shape)}, expected {fmt_shape(b.shape)}"
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        if a.size and not np.array_equal(np.isnan(a64), np.isnan(b64)):
            passed = False
            details.append(f"{name} (NaN in different places)")
            continue
        diff = np.abs(np.nan_to_num(a64) - np.nan_to_num(b64))
        err = float(np.max(diff)) if a.size else 0.0
        scale = float(np.max(np.abs(np.nan_to_num(b64)))) if a.size else 0.0
        worst = max(worst, err)
        # The whole tensor, as `mobconv compare` does: elementwise tolerances fail on
        # near-zero elements of large-magnitude outputs (logits) for summation order alone.
        if err > vector.atol + vector.rtol * scale:
            passed = False
            details.append(name)
    msg = f"max abs err {worst:.3e} (rtol {vector.rtol:.3g}, atol {vector.atol:.3g})"
    if details:
        msg += f"; outside tolerance: {', '.join(details)}"
    return passed, msg


def run(args) -> int:
    model = api.load(args.model)
    graph = model.graph
    out(f"PASS structure: {len(graph.nodes)} ops, {len(graph.values)} tensors")
    runtime_ok, msg = check_runtime(args.model)
    if runtime_ok is None:
        out(f"note: {msg}")
    else:
        out(f"{'PASS' if runtime_ok else 'FAIL'} runtime: {msg}")
    try:
        problems = check_shapes(graph)
    except MobconvError as exc:
        problems = [f"shape inference failed: {exc}"]
    if problems:
        out(f"FAIL shapes: {len(problems)} mismatch(es): " + "; ".join(problems[:5]))
    else:
        out("PASS shapes: inference agrees with the stored shapes")
    failed = bool(problems) or runtime_ok is False
    if not graph.test_vectors:
        out("note: no embedded test vectors (add them with onnx2mob --embed-test-vector)")
    backends = ["reference"] + (["runtime"] if api.resolve_backend("auto") == "runtime"
                                and runtime_ok else [])
    for i, vector in enumerate(graph.test_vectors):
        for backend in backends:
            try:
                passed, msg = check_vector(model, vector, backend)
            except MobconvError as exc:
                passed, msg = False, str(exc)
            out(f"{'PASS' if passed else 'FAIL'} test vector {i} ({backend}): {msg}")
            failed = failed or not passed
    out("FAIL" if failed else "PASS")
    return 1 if failed else 0
