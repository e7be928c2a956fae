"""`mobconv info`: show what a .mob file holds (signature, ops, size, metadata)."""
from __future__ import annotations

import json

import numpy as np

from .. import __version__, api
from ..formats import FORMAT_VERSION
from ..summary import (TABLE_MIN_ELEMENTS, human_bytes, human_count, quant_row_text,
                       quantization_summary, storage_report)
from .common import HelpFormatter, fmt_shape, out, shorten, table

MAX_QUANT_ROWS = 40  # rows of the quantized-tensor table (--json has all)
MAX_STORAGE_ROWS = 40  # rows of the compressed-weights table (--json has all)

EPILOG = f"""\
examples:
  mobconv info mobilenet.mob
  mobconv info mobilenet.mob --json | python -m json.tool

Shows the file's format version and the minimum runtime version it needs,
the inputs/outputs (long names are shortened in the middle; --json has them
whole), ops with estimated MACs (Conv, ConvTranspose, Gemm, MatMul, from the
stored shapes; symbolic dims such as 'batch' count as 1), parameters by dtype,
metadata, the preprocessing the app must apply to its input (mean, scale,
channel order, as Kotlin/Swift/C++ constants to copy) and embedded test vectors.

A quantized model (int8, int8-weights, fp16) also gets a Quantization section:
the scheme and method it was made with, its weight bytes by dtype against the
same weights in float32 (and an estimate of the float32 file), and a table of
its quantized and float16 tensors: dtype, role, per-tensor scale and zero point
or "per-axis (N channels, axis k)" with the scale range (the first
{MAX_QUANT_ROWS} rows; --json lists all, with every scale).

A pruned or clustered model (weights stored as a sparse bitmask or a palette,
or any weight at least half zeros) also gets a Compressed weights section: per
layer (the node reading the weight), its shape, dense and stored size, zero
fraction (sparsity) and palette size (clusters), with totals against the same
weights stored dense (the first {MAX_STORAGE_ROWS} weights of {TABLE_MIN_ELEMENTS}+
elements; --json lists every constant).
"""


def register(sub, parent) -> None:
    p = sub.add_parser("info", parents=[parent], help="describe a .mob file",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .mob file, e.g. mobilenet.mob")
    p.add_argument("--json", action="store_true",
                   help="print machine-readable JSON instead, e.g. "
                        "mobconv info m.mob --json | python -m json.tool")
    p.set_defaults(func=run)


def _spec_dict(spec) -> dict:
    return {"name": spec.name, "dtype": spec.dtype, "shape": list(spec.shape or ()),
            "layout": spec.layout}


def collect(model) -> dict:
    """Everything `info` shows, as plain JSON-ready data."""
    g = model.graph
    meta = g.metadata
    pre = g.signature.preprocessing
    return {
        "file": model.source,
        "file_size": model.file_size,
        "format_version": ".".join(map(str, model.format_version or FORMAT_VERSION)),
        "name": g.name,
        "inputs": [_spec_dict(s) for s in model.inputs],
        "outputs": [_spec_dict(s) for s in model.outputs],
        "summary": model.summary().to_dict(),
        "quantization": quantization_summary(g, model.file_size),
        "storage": storage_report(g, model.file_size),
        "metadata": {
            "producer": meta.producer, "converter_version": meta.converter_version,
            "source_framework": meta.source_framework, "source_sha256": meta.source_sha256,
            "min_runtime_version": meta.min_runtime_version,
            "options": dict(meta.options), "extra": dict(meta.extra),
        },
        "preprocessing": None if pre is None else {
            "mean": list(pre.mean), "scale": list(pre.scale), "channel_order": pre.channel_order,
        },
        "test_vectors": [
            {"inputs": sorted(v.inputs), "outputs": sorted(v.outputs), "rtol": v.rtol,
             "atol": v.atol} for v in g.test_vectors
        ],
    }


def _num(value) -> str:
    """A float32 constant as written in source code: 0.017, 104, 0.0078125."""
    text = str(np.float32(value))
    return text[:-2] if text.endswith(".0") else text


def preprocessing_lines(pre: dict, spec, framework: str = "") -> list:
    """The preprocessing as a formula and as constants to paste into app code."""
    order = pre["channel_order"]
    mean, scale = pre["mean"], pre["scale"]
    where = f"input {spec['name']!r} {spec['dtype']}{fmt_shape(spec['shape'])}" if spec else "the input"
    lines = [f"\nPreprocessing (apply in the app before feeding {where}):"]
    formula = "raw[c]" if not order else f"raw[{order}][c]"
    if mean:
        formula = f"({formula} - mean[c])"
    if scale:
        formula += " * scale[c]"
    rows = [("channel order", {"BGR": "BGR (swap R and B of an RGB bitmap)",
                               "RGB": "RGB"}.get(order, order or "as in training (not recorded)")),
            ("mean", "[" + ", ".join(map(_num, mean)) + "]" if mean else "none"),
            ("scale", "[" + ", ".join(map(_num, scale)) + "]" if scale else "none"),
            ("per value", f"input[c] = {formula}"
                          + (", raw = pixel values 0..255" if framework == "caffe" else ""))]
    if mean or scale:
        def arr(values, suffix):
            if not suffix:
                return ", ".join(_num(v) for v in values)
            return ", ".join(_num(v) + (".0" if "." not in _num(v) and "e" not in _num(v) else "")
                             + suffix for v in values)
        kt, sw, cc = [], [], []
        for name, values in (("MEAN", mean), ("SCALE", scale)):
            if values:
                kt.append(f"val {name} = floatArrayOf({arr(values, 'f')})")
                sw.append(f"let {name.lower()}: [Float] = [{arr(values, '')}]")
                cc.append(f"const float k{name.title()}[{len(values)}] = {{{arr(values, 'f')}}};")
        note = f"  // {order} order" if order else ""
        rows += [("Kotlin", "; ".join(kt) + note), ("Swift", "; ".join(sw) + note),
                 ("C/C++", " ".join(cc) + note)]
    return lines + [table(rows)]


def quantization_lines(q: dict) -> list:
    """The Quantization section of `info`: scheme, sizes, the quantized tensors."""
    meta = {k: v for k, v in q["metadata"].items() if k not in ("scheme", "fp16.kept_float32")}
    how = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in meta.items())
    lines = [f"\nQuantization: scheme {q['scheme']}" + (f" ({how})" if how else "")]
    stored, as_float = q["weight_bytes"], q["float32_weight_bytes"]
    by_dtype = ", ".join(f"{d} {human_bytes(b)}" for d, b in q["weight_bytes_by_dtype"].items())
    ratio = f"{as_float / stored:.1f}x smaller, " if stored else ""
    lines.append(f"  weights: {human_bytes(stored)} as stored ({by_dtype}); {human_bytes(as_float)} in float32: "
                 f"{ratio}{human_bytes(q['saved_bytes'])} saved")
    if q["file_size"]:
        lines.append(f"  file: {human_bytes(q['file_size'])}; as float32 about "
                     f"{human_bytes(q['float32_file_estimate'])} (estimate)")
    for item in q["kept_float32"]:
        lines.append(f"  kept float32: {shorten(item, 110)}")
    rows = q["tensors"]
    counts = ", ".join(f"{d} {n}" for d, n in q["tensors_by_dtype"].items())
    lines.append(f"\nQuantized tensors: {len(rows)}" + (f" ({counts})" if counts else ""))
    if rows:
        lines.append(table([(shorten(r["name"]), r["dtype"], fmt_shape(r["shape"]), r["role"], *quant_row_text(r))
                            for r in rows[:MAX_QUANT_ROWS]],
                           ("name", "dtype", "shape", "role", "quantization", "scale", "zero point")))
    if len(rows) > MAX_QUANT_ROWS:
        lines.append(f"  ... {len(rows) - MAX_QUANT_ROWS} more (mobconv info --json lists all)")
    return lines


def _percent(fraction: float) -> str:
    text = f"{100 * fraction:.1f}%"
    return "<0.1%" if text == "0.0%" and fraction > 0 else text


def storage_lines(st: dict) -> list:
    """The Compressed weights section of `info`: totals, then one row per weight."""
    kinds = ", ".join(f"{n} {k}" for k, n in st["compressed"].items()) or "none"
    dense, stored = st["dense_bytes"], st["stored_bytes"]
    ratio = f"{dense / stored:.1f}x smaller, " if stored and stored < dense else ""
    lines = [f"\nCompressed weights: {kinds} stored compressed; overall sparsity "
             f"{_percent(st['sparsity'])}",
             f"  constants: {human_bytes(stored)} as stored, {human_bytes(dense)} dense: "
             f"{ratio}{human_bytes(st['saved_bytes'])} saved"]
    if st["file_size"]:
        lines.append(f"  file: {human_bytes(st['file_size'])}; stored dense about "
                     f"{human_bytes(st['dense_file_estimate'])} (estimate)")
    rows = [r for r in st["tensors"]
            if r["storage"] != "dense" or np.prod(r["shape"], dtype=np.int64) >= TABLE_MIN_ELEMENTS]
    shown = [(shorten(r["node"] or "-", 44), shorten(r["name"], 28), fmt_shape(r["shape"]),
              r["dtype"], r["storage"] + (f" {r['index_bits']}-bit" if r["index_bits"] else ""),
              human_bytes(r["dense_bytes"]), human_bytes(r["stored_bytes"]),
              _percent(r["sparsity"]), r["clusters"] if r["clusters"] else "-")
             for r in rows[:MAX_STORAGE_ROWS]]
    shown.append(("total", f"{len(st['tensors'])} constants", "", "", "", human_bytes(dense),
                  human_bytes(stored), _percent(st["sparsity"]), ""))
    lines.append(table(shown, ("layer", "weight", "shape", "dtype", "storage", "dense", "stored",
                               "sparsity", "clusters")))
    hidden = len(st["tensors"]) - min(len(rows), MAX_STORAGE_ROWS)
    if hidden:
        lines.append(f"  ... {hidden} more constant{'s' if hidden > 1 else ''} (smaller than {TABLE_MIN_ELEMENTS} elements "
                     f"or past the first {MAX_STORAGE_ROWS}; mobconv info --json lists all)")
    return lines


def run(args) -> int:
    model = api.load(args.model)
    data = collect(model)
    if args.json:
        out(json.dumps(data, indent=2))
        return 0
    s = data["summary"]
    meta = data["metadata"]
    out(f"{data['file']}  ({human_bytes(data['file_size'] or 0)}, graph {data['name']!r}, "
        f"format {data['format_version']}, needs mobconv runtime >= "
        f"{meta['min_runtime_version'] or '?'}; this is {__version__})")
    for title in ("inputs", "outputs"):
        out(f"\n{title.capitalize()}:")
        out(table([(shorten(t["name"]), t["dtype"], fmt_shape(t["shape"]), t["layout"] or "")
                   for t in data[title]], ("name", "dtype", "shape", "layout")))
    exact = f" ({s['macs']:,})" if s["macs"] >= 1000 else ""
    out(f"\nOps: {s['num_ops']} total, MACs: {human_count(s['macs'])}{exact}")
    out(table([(op, n, human_count(s["macs_by_op"].get(op, 0)) if op in s["macs_by_op"] else "")
               for op, n in s["op_histogram"].items()], ("op", "count", "MACs")))
    exact = f" ({s['num_params']:,})" if s["num_params"] >= 1000 else ""
    out(f"\nParameters: {human_count(s['num_params'])}{exact}, {human_bytes(s['param_bytes'])}")
    out(table([(d, human_bytes(b)) for d, b in s["bytes_by_dtype"].items()], ("dtype", "size")))
    if data["quantization"]:
        for line in quantization_lines(data["quantization"]):
            out(line)
    if data["storage"]:
        for line in storage_lines(data["storage"]):
            out(line)
    rows = [("format version", data["format_version"])]
    rows += [(k.replace("_", " "), meta[k] or "-") for k in (
        "min_runtime_version", "producer", "converter_version", "source_framework",
        "source_sha256")]
    rows += [(f"option {k}", shorten(v, 72) or "-") for k, v in sorted(meta["options"].items())]
    rows += [(k, shorten(v, 72) or "-") for k, v in sorted(meta["extra"].items())]
    out("\nMetadata:")
    out(table(rows))
    pre = data["preprocessing"]
    if pre:
        for line in preprocessing_lines(pre, data["inputs"][0] if data["inputs"] else None,
                                       meta["source_framework"]):
            out(line)
    else:
        out("\nPreprocessing: none recorded (feed the input as the source model expects it)")
    vectors = data["test_vectors"]
    if vectors:
        out(f"\nTest vectors: {len(vectors)} embedded (check with `mobconv validate`)")
        out(table([(i, shorten(", ".join(v["inputs"])), shorten(", ".join(v["outputs"])),
                    f"{v['rtol']:.3g}", f"{v['atol']:.3g}")
                   for i, v in enumerate(vectors)], ("#", "inputs", "outputs", "rtol", "atol")))
    else:
        out("\nTest vectors: none")
    return 0
