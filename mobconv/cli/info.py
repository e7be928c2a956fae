"""`mobconv info`: show what a .mob file holds (signature, ops, size, metadata)."""
from __future__ import annotations

import json

from .. import api
from ..summary import human_bytes, human_count
from .common import HelpFormatter, fmt_shape, out, table

EPILOG = """\
examples:
  mobconv info mobilenet.mob
  mobconv info mobilenet.mob --json | python -m json.tool

MACs are estimated for Conv, ConvTranspose, Gemm and MatMul from the stored
shapes; symbolic dims (e.g. 'batch') count as 1.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("info", parents=[parent], help="describe a .mob file",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .mob file")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead")
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
        "name": g.name,
        "inputs": [_spec_dict(s) for s in model.inputs],
        "outputs": [_spec_dict(s) for s in model.outputs],
        "summary": model.summary().to_dict(),
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


def run(args) -> int:
    model = api.load(args.model)
    data = collect(model)
    if args.json:
        out(json.dumps(data, indent=2))
        return 0
    s = data["summary"]
    out(f"{data['file']}  ({human_bytes(data['file_size'] or 0)}, graph {data['name']!r})")
    for title in ("inputs", "outputs"):
        out(f"\n{title.capitalize()}:")
        out(table([(t["name"], t["dtype"], fmt_shape(t["shape"]), t["layout"] or "")
                   for t in data[title]], ("name", "dtype", "shape", "layout")))
    exact = f" ({s['macs']:,})" if s["macs"] >= 1000 else ""
    out(f"\nOps: {s['num_ops']} total, MACs: {human_count(s['macs'])}{exact}")
    out(table([(op, n, human_count(s["macs_by_op"].get(op, 0)) if op in s["macs_by_op"] else "")
               for op, n in s["op_histogram"].items()], ("op", "count", "MACs")))
    exact = f" ({s['num_params']:,})" if s["num_params"] >= 1000 else ""
    out(f"\nParameters: {human_count(s['num_params'])}{exact}, {human_bytes(s['param_bytes'])}")
    out(table([(d, human_bytes(b)) for d, b in s["bytes_by_dtype"].items()], ("dtype", "size")))
    meta = data["metadata"]
    rows = [(k.replace("_", " "), meta[k] or "-") for k in (
        "producer", "converter_version", "source_framework", "source_sha256", "min_runtime_version")]
    rows += [(f"option {k}", v or "-") for k, v in sorted(meta["options"].items())]
    rows += [(k, v or "-") for k, v in sorted(meta["extra"].items())]
    out("\nMetadata:")
    out(table(rows))
    pre = data["preprocessing"]
    if pre:
        out(f"\nPreprocessing: (raw[{pre['channel_order'] or 'as is'}] - mean) * scale, "
            f"mean {pre['mean']}, scale {pre['scale']}")
    else:
        out("\nPreprocessing: none recorded")
    vectors = data["test_vectors"]
    if vectors:
        out(f"\nTest vectors: {len(vectors)} embedded (check with `mobconv validate`)")
        out(table([(i, ", ".join(v["inputs"]), ", ".join(v["outputs"]), f"{v['rtol']:.3g}",
                    f"{v['atol']:.3g}")
                   for i, v in enumerate(vectors)], ("#", "inputs", "outputs", "rtol", "atol")))
    else:
        out("\nTest vectors: none")
    return 0
