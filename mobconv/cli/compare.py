"""`mobconv compare`: run a .mob and its source ONNX or TensorFlow model on the same inputs, layer by layer.

The .mob runs on the C++ runtime (every intermediate tensor delivered by the
runtime's observer callback), or on the numpy reference with --reference;
onnxruntime runs a copy of the ONNX model in which every intermediate value is an extra graph output;
TensorFlow runs the frozen graph (or SavedModel signature) fetching every tensor the .mob
has a value of (frontends/tensorflow/tf_runner.py).
Tensors are matched by name; values that passes fused away or renamed have no
counterpart and show as '-'.
"""
from __future__ import annotations

import os

import numpy as np

from .. import api
from ..errors import MobconvError, UsageError
from ..reference.interpreter import run as reference_run
from .common import HelpFormatter, fmt_shape, out, parse_input_files, table

EPILOG = """\
examples:
  mobconv compare mobilenet.mob mobilenet.onnx
  mobconv compare mobilenet.mob mobilenet.onnx --input input=cat.npy --rtol 1e-3
  mobconv compare mobilenet.mob mobilenet.onnx --reference --seed 3
  mobconv compare mobilenet.mob frozen_graph.pb
  mobconv compare mobilenet.mob saved_model_dir/
  mobconv compare mobilenet.int8.mob mobilenet.mob --input input=cat.npy

A quantized .mob against its float .mob (or the float .onnx it was quantized from)
runs both on the numpy reference and prints
the quantization debugger's per-layer table (own and accumulated SQNR, cosine, max
error, clipping rate; worst layers first; docs/quantization.md "Debugger").

A tensor differs when max|mob - source| > atol + rtol * max|source|. The first layer
that differs is marked '>>'. Exit status 1 when a final output differs.
Random inputs: as in `mobconv run` (seeded; symbolic dims set to 1).
Needs onnxruntime (pip install onnxruntime) for ONNX, TensorFlow (pip install
tensorflow-cpu) for TensorFlow; a TensorFlow tensor the transpose pass moved to
channels-first (value <name>_nchw in the .mob) is transposed to compare.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("compare", parents=[parent], help="per-layer diff of .mob vs onnxruntime or TensorFlow",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .mob file, e.g. mobilenet.mob")
    p.add_argument("source", help="the ONNX or TensorFlow model it was converted from, e.g. "
                                  "mobilenet.onnx, frozen.pb, a SavedModel directory; or, "
                                  "for a quantized .mob, the float .mob it was quantized from")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input array (repeatable), e.g. --input input=cat.npy; others get "
                        "seeded random data")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for random inputs (default 0), e.g. --seed 3")
    p.add_argument("--reference", action="store_true",
                   help="run the .mob on the numpy reference instead of the C++ runtime")
    p.add_argument("--rtol", type=float, default=1e-4,
                   help="relative tolerance (default 1e-4), e.g. --rtol 1e-3")
    p.add_argument("--atol", type=float, default=1e-5,
                   help="absolute tolerance (default 1e-5), e.g. --atol 1e-4")
    p.set_defaults(func=run)


def onnxruntime_values(source: str, feeds: dict) -> tuple:
    """Run `source` with every intermediate as an output. Returns (values, note)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MobconvError("compare needs onnxruntime: pip install onnxruntime") from None
    import onnx

    try:
        proto = onnx.load(source)
    except Exception as exc:
        raise MobconvError(f"{source}: not a readable ONNX model ({exc})") from None
    initializers = {t.name for t in proto.graph.initializer}
    graph_inputs = [i for i in proto.graph.input if i.name not in initializers]
    names = [i.name for i in graph_inputs]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise UsageError(f"{source}: its input(s) {', '.join(missing)} are not inputs of the .mob "
                         f"model ({', '.join(feeds)}); compare a .mob with the ONNX file it was "
                         "converted from")
    ort_feeds = {}
    for i in graph_inputs:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
        ort_feeds[i.name] = np.asarray(feeds[i.name]).astype(dtype)
    final = [o.name for o in proto.graph.output]
    extra = [o for n in proto.graph.node for o in n.output if o and o not in set(final)]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    note = ""
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in extra)
    try:
        sess, note = _session(ort, probe, opts)
    except Exception:  # some models refuse untyped extra outputs: fall back to final outputs
        try:
            sess, note = _session(ort, proto, opts)
        except Exception as exc:
            raise MobconvError(f"{source}: onnxruntime cannot load it: {exc}") from None
        note = "onnxruntime refused intermediate outputs; only final outputs are compared"
    try:
        results = sess.run(None, ort_feeds)
    except Exception as exc:
        raise MobconvError(f"{source}: onnxruntime failed: {exc}") from None
    return {o.name: r for o, r in zip(sess.get_outputs(), results)}, note


def _session(ort, proto, opts) -> tuple:
    """An InferenceSession; a model whose IR version is newer than onnxruntime supports
    is retried with the IR version lowered to the supported maximum."""
    import re

    try:
        return ort.InferenceSession(proto.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"]), ""
    except Exception as exc:
        found = re.search(r"max supported IR version: (\d+)", str(exc))
        if not found:
            raise
        old = proto.ir_version
        proto.ir_version = int(found.group(1))
        sess = ort.InferenceSession(proto.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        return sess, f"ONNX IR version {old} lowered to {proto.ir_version} for onnxruntime"


def runtime_values(model_path: str, feeds: dict) -> dict:
    """Every tensor of one C++ runtime run: inputs, each op's outputs, graph outputs."""
    from .. import runtime

    values = dict(feeds)
    with runtime.Interpreter(model_path, threads=1, profile=False) as interpreter:
        interpreter.set_observer(lambda _i, _name, _type, tensors: values.update(tensors))
        values.update(interpreter.run(feeds))
    return values


def diff(got, want) -> dict:
    """max abs err, rel err (max abs err / max|want|), cosine similarity."""
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(want, dtype=np.float64)
    if a.shape != b.shape:
        return {"shape_mismatch": f"{fmt_shape(a.shape)} vs {fmt_shape(b.shape)}"}
    if a.size == 0:
        return {"max_abs": 0.0, "ref_max": 0.0, "rel": 0.0, "cosine": 1.0}
    max_abs = float(np.max(np.abs(a - b)))
    ref_max = float(np.max(np.abs(b)))
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cosine = 1.0 if na == nb == 0 else float(np.dot(a.ravel(), b.ravel()) / (na * nb or 1.0))
    return {"max_abs": max_abs, "ref_max": ref_max, "rel": max_abs / max(ref_max, 1e-12),
            "cosine": cosine}


def exceeds(d: dict, rtol: float, atol: float) -> bool:
    return "shape_mismatch" in d or d["max_abs"] > atol + rtol * d["ref_max"]


def _is_quantized(model) -> bool:
    graph = model.graph
    return "quantization.scheme" in graph.metadata.extra or any(
        v.quant is not None for v in graph.values.values())


def _quantized_onnx(path: str) -> bool:
    """Whether an ONNX file is itself quantized (QDQ or QOperator nodes)."""
    import onnx

    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception:
        return False  # the onnxruntime path reports an unreadable file
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") or n.op_type.startswith("QLinear")
               or n.op_type.endswith("Integer") for n in proto.graph.node)


def compare_quantized(args) -> int:
    """`compare quant.mob float.mob` (or the float .onnx it came from): the quantization
    debugger's table on one input."""
    from ..quantize import debug

    quant = api.load(args.model)
    float_model = api.load(args.source) if args.source.lower().endswith(".mob") else api.convert(args.source)
    if _is_quantized(float_model) and not _is_quantized(quant):
        quant, float_model = float_model, quant
    if not _is_quantized(quant) or _is_quantized(float_model):
        both = "both are" if _is_quantized(float_model) else "neither is"
        raise UsageError(f"{args.model}, {args.source}: {both} quantized; compare needs the source "
                         "ONNX model (.onnx) of a .mob, or a quantized .mob and the float .mob it "
                         "was quantized from")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: must be a non-negative integer, e.g. --seed 3")
    feeds = parse_input_files(args.input, float_model.inputs)
    missing = [s for s in float_model.inputs if s.name not in feeds]
    feeds.update(api.random_inputs(api.declared_specs(float_model.graph, missing), seed=args.seed,
                                   source=float_model.source))
    report = debug(float_model, quant, feeds)
    out(report.table())
    if missing:
        out(f"note: random input(s) {', '.join(s.name for s in missing)} (seed {args.seed}); int8 "
            "ranges fit the calibration data, so give real inputs with --input NAME=FILE.npy")
    return 0


def _tensorflow_source(path: str) -> bool:
    from ..frontends import is_onnx_model, is_saved_model

    ext = os.path.splitext(path)[1].lower()
    return is_saved_model(path) or ext == ".pbtxt" or (
        ext == ".pb" and os.path.isfile(path) and not is_onnx_model(path))


def run(args) -> int:
    if args.source.lower().endswith(".mob") and args.model.lower().endswith(".mob"):
        return compare_quantized(args)
    if args.source.lower().endswith(".onnx") and args.model.lower().endswith(".mob") \
            and _is_quantized(api.load(args.model)) and not _quantized_onnx(args.source):
        return compare_quantized(args)  # an int8 .mob against the float model it was made from
    tensorflow = _tensorflow_source(args.source)
    if tensorflow:
        from ..frontends.tensorflow.tf_runner import as_float, is_quantized_graph, tensorflow_values

        if args.model.lower().endswith(".mob") and _is_quantized(api.load(args.model)) \
                and not is_quantized_graph(args.source):
            return compare_quantized(args)
    elif not args.source.lower().endswith(".onnx"):
        raise UsageError(f"{args.source}: compare needs the source model: ONNX (.onnx) or "
                         "TensorFlow (.pb, .pbtxt, a SavedModel directory)")
    api.check_source(args.source, "tensorflow" if tensorflow else "onnx")
    model = api.load(args.model)
    feeds = parse_input_files(args.input, model.inputs)
    missing = [s for s in model.inputs if s.name not in feeds]
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: must be a non-negative integer, e.g. --seed 3")
    feeds.update(api.random_inputs(missing, seed=args.seed, source=args.model))
    backend = "reference" if args.reference else api.resolve_backend("auto")
    if backend == "runtime":
        mob = runtime_values(args.model, feeds)
        backend_name = "C++ runtime"
    else:
        mob = reference_run(model.graph, feeds, keep_intermediates=True)
        backend_name = "numpy reference"
    if tensorflow:
        names = list(model.graph.inputs) + [o for n in model.graph.nodes for o in n.outputs]
        quantized = [n for n in names if n in model.graph.values and model.graph.values[n].quant]
        ref, note = tensorflow_values(args.source, feeds, names,
                                      model.graph.metadata.options.get("signature"), quantized)
        oracle = "TensorFlow"
    else:
        ref, note = onnxruntime_values(args.source, feeds)
        oracle = "onnxruntime"

    rows, first_bad = [], None
    for node in model.graph.nodes:
        op = node.op + (f"+{node.attrs['activation']}" if node.attrs.get("activation") else "")
        for name in node.outputs:
            if not name:
                continue
            if name not in ref or name not in mob:  # fused away, or folded at prepare time
                shape = fmt_shape(np.shape(mob[name])) if name in mob else "-"
                rows.append(("", name, op, shape, "-", "-", "-"))
                continue
            got, atol = mob[name], args.atol
            if tensorflow:  # int8 values of a quantization-aware graph: compared dequantized
                got, atol = as_float(model.graph, node, name, got, atol)
            d = diff(got, ref[name])
            bad = exceeds(d, args.rtol, atol)
            if bad and first_bad is None:
                first_bad = (name, node, d)
            mark = ">>" if first_bad is not None and first_bad[0] == name else ""
            if "shape_mismatch" in d:
                rows.append((mark, name, op, d["shape_mismatch"], "-", "-", "-"))
            else:
                rows.append((mark, name, op, fmt_shape(np.shape(mob[name])),
                             f"{d['max_abs']:.3e}", f"{d['rel']:.3e}", f"{d['cosine']:.6f}"))
    out(f"{args.model} ({backend_name}) vs {args.source} ({oracle}), "
        f"rtol {args.rtol:g}, atol {args.atol:g}")
    if note:
        out(f"note: {note}")
    out(table(rows, ("", "tensor", "op", "shape", "max abs err", "rel err", "cosine")))
    if first_bad is not None:
        name, node, d = first_bad
        detail = d.get("shape_mismatch") or f"rel err {d['rel']:.3e}"
        out(f"\nfirst divergence: {name!r} from node {node.name!r} ({node.op}): {detail}")

    failed = []
    out("\nFinal outputs:")
    for name in model.graph.outputs:
        if name not in ref:
            failed.append(name)
            out(f"  FAIL {name}: {oracle} has no output of this name")
            continue
        d = diff(mob[name], ref[name])
        if exceeds(d, args.rtol, args.atol):
            failed.append(name)
        detail = d.get("shape_mismatch") or (
            f"max abs err {d['max_abs']:.3e}, rel err {d['rel']:.3e}, cosine {d['cosine']:.6f}")
        out(f"  {'FAIL' if name in failed else 'PASS'} {name}: {detail}")
    return 1 if failed else 0
