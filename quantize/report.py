"""The debugger's outputs: a terminal table, a JSON file and the report folder.

`write_report(report, directory)` writes
  table.txt        the terminal table of every layer, worst first
  report.json      every number of the report (schema below; +-inf SQNR as null)
  sqnr.png         per-layer SQNR bars in graph order, fallback layers marked
  histograms.png   float activation histograms of the worst layers, clipping range drawn
and returns their paths. JSON schema (version 1):
  {"version": 1, "num_samples": int, "float_model": str|null, "quant_model": str|null,
   "reference_note": str|null, "reference_sqnr_db": float|null,
   "outputs": [{"name", "sqnr_db", "cosine", "max_abs_err", "argmax_flips", "argmax_total"}],
   "layers": [{"rank", "name", "op", "tensor", "order", "precision", "sqnr_db", "cosine",
               "max_abs_err", "isolated_sqnr_db", "isolated_cosine", "isolated_max_abs_err",
               "clip_rate", "clip_range", "weight_spread", "float_min", "float_max"}]}
"""
from __future__ import annotations

import json
import math
import os

from mobconv.errors import MobconvError

JSON_VERSION = 1
LAYER_FIELDS = ("name", "op", "tensor", "order", "precision", "sqnr_db", "cosine", "max_abs_err",
                "isolated_sqnr_db", "isolated_cosine", "isolated_max_abs_err", "clip_rate",
                "clip_range", "weight_spread", "float_min", "float_max")


def _db(x) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "exact" if x > 0 else "-inf"
    return f"{x:.1f}"


def _num(x, fmt) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return format(x, fmt)


def display_name(name, width: int = 40) -> str:
    """A layer name short enough for a table or a plot: PyTorch-export path components
    that only repeat the next one's prefix are dropped ('/features/features.3/body/body.2/
    body.2.0/Conv' -> '/features.3/body.2.0/Conv'), then a long name keeps its end."""
    parts = str(name).split("/")
    kept = [p for i, p in enumerate(parts)
            if not (p and i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    text = "/".join(kept)
    if len(text) > width:
        text = "..." + text[len(text) - width + 3:]
    return text


_short = display_name


def _table(rows, headers) -> str:
    rows = [list(headers)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = []
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i < 3 or k == 0 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def format_table(report, top=20) -> str:
    """Worst layers first: own (isolated) SQNR, accumulated SQNR, cosine, max error,
    clipping rate, weight spread; then the graph outputs."""
    shown = report.layers if top is None else report.layers[:top]
    rows = []
    for i, r in enumerate(shown, 1):
        prec = {"int8": "int8", "float": "float*", "input": "input"}.get(r.precision, r.precision)
        rows.append((f"{i}", _short(r.name), f"{r.op}", prec, _db(r.isolated_sqnr_db), _db(r.sqnr_db),
                     _num(r.cosine, ".5f"), _num(r.max_abs_err, ".3g"),
                     "-" if r.clip_rate is None else f"{100 * r.clip_rate:.3f}%",
                     _num(r.weight_spread, ".1f")))
    head = (f"Quantization debug: {report.quant_source or 'quantized model'} vs "
            f"{report.float_source or 'float model'}, {report.num_samples} sample(s); "
            f"{len(report.layers)} layers, worst first"
            + (f" (top {len(shown)})" if len(shown) < len(report.layers) else ""))
    lines = [head, _table(rows, ("#", "layer", "op", "dtype", "own SQNR dB", "SQNR dB", "cosine",
                                 "max err", "clipped", "w spread"))]
    lines.append("  own SQNR: the layer alone on float inputs (error created here); SQNR: its output "
                 "in the quantized run (error accumulated); float*: the layer stayed float")
    if report.reference_note:
        lines.append(f"  {report.reference_note}; its outputs vs the float model: SQNR "
                     f"{_db(report.reference_sqnr_db)} dB")
    if report.outputs:
        lines.append("Outputs (vs the float model):")
        for o in report.outputs:
            flips = (f", argmax flips {o.argmax_flips}/{o.argmax_total}" if o.argmax_total else "")
            lines.append(f"  {o.name}: SQNR {_db(o.sqnr_db)} dB, cosine {o.cosine:.6f}, "
                         f"max err {o.max_abs_err:.4g}{flips}")
    return "\n".join(lines)


def _json_float(x):
    if x is None:
        return None
    if isinstance(x, (tuple, list)):
        return [_json_float(v) for v in x]
    x = float(x)
    return x if math.isfinite(x) else None


def to_json(report) -> dict:
    layers = []
    for rank, r in enumerate(report.layers, 1):
        entry = {"rank": rank}
        for key in LAYER_FIELDS:
            v = getattr(r, key)
            entry[key] = v if isinstance(v, (str, int)) or v is None else _json_float(v)
        layers.append(entry)
    outputs = [{"name": o.name, "sqnr_db": _json_float(o.sqnr_db), "cosine": _json_float(o.cosine),
                "max_abs_err": _json_float(o.max_abs_err), "argmax_flips": o.argmax_flips,
                "argmax_total": o.argmax_total} for o in report.outputs]
    return {"version": JSON_VERSION, "num_samples": report.num_samples,
            "float_model": report.float_source, "quant_model": report.quant_source,
            "sqnr_note": "dB; null means no error (+inf)",
            "reference_note": report.reference_note, "reference_sqnr_db": _json_float(report.reference_sqnr_db),
            "outputs": outputs, "layers": layers}


REPORT_FILES = ("table.txt", "report.json", "sqnr.png", "histograms.png")  # what write_report writes


def write_report(report, directory) -> list:
    """Write table.txt, report.json, sqnr.png, histograms.png into `directory` (created)."""
    directory = os.fspath(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise MobconvError(f"cannot write the report to {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise MobconvError(f"cannot write the report to {directory}: directory is not writable")
    from .plots import plot_histograms, plot_sqnr

    paths = []
    path = os.path.join(directory, "table.txt")
    with open(path, "w") as f:
        f.write(format_table(report, top=None) + "\n")
    paths.append(path)
    path = os.path.join(directory, "report.json")
    with open(path, "w") as f:
        json.dump(to_json(report), f, indent=1, allow_nan=False)
        f.write("\n")
    paths.append(path)
    paths.append(plot_sqnr(report, os.path.join(directory, "sqnr.png")))
    paths.append(plot_histograms(report, os.path.join(directory, "histograms.png")))
    return paths
