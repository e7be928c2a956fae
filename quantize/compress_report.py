"""What `mobconv compress` measured, as a summary, a text table and a report folder.

`compare(before, after)` -> dict: file bytes, parameters and MACs of both models, and one
row per layer (a node with a constant weight): weight shape, parameters, stored bytes
(mobconv.summary.storage_summary: what the .mob file holds once sparse or palette storage
applies), sparsity, clusters, MACs. Layers match by node name; a layer only in `after`
(the two halves of a low-rank factorization) or only in `before` (the layer they replace)
has the other side empty.

`output_error(before, after, feeds)` -> per graph output: SQNR (dB), cosine, max abs error
and top-1 agreement (for [N, classes] outputs) of the compressed model against the input
model on the same feeds.

`ReportDir(directory)`: the `--report DIR` folder, written in two steps so a failed or
interrupted command leaves nothing: `prepare(summary, sensitivity)` writes every file into
a hidden staging folder beside DIR (`.mobconv-report-*`), `commit()` moves them into DIR
(a new DIR is the staging folder renamed in one step), `discard()` (or leaving the `with`
block without commit) removes the staging folder. Files (REPORT_FILES):
  summary.json     every number (schema below)
  table.txt        the per-layer table and the totals, as printed
  sensitivity.png  --prune: output SQNR vs sparsity, one curve per layer
  proposal.json    --prune: per-layer sparsities for the same budget, the most sensitive
                   layers lightest; feed it back with `--per-layer proposal.json`
JSON schema (version 1):
  {"version": 1, "input": str, "output": str, "steps": [str], "metadata": {str: str},
   "file_bytes": {"before", "after", "ratio"}, "params": {"before", "after"},
   "macs": {"before", "after"},
   "outputs": {"data": str, "samples": int, "sqnr_note": str,
               "tensors": [{"name", "sqnr_db", "cosine", "max_abs_err", "top1_agreement"}]},
   "layers": [{"name", "op", "shape_before", "shape_after", "params_before", "params_after",
               "stored_bytes_before", "stored_bytes_after", "sparsity", "clusters",
               "macs_before", "macs_after"}],
   "sensitivity": {...} | null, "proposal": {layer: sparsity} | null}
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile

import numpy as np

from mobconv.errors import MobconvError
from mobconv.output_files import signals_held
from mobconv.summary import human_bytes, human_count, node_macs

from .report import _db as _report_db
from .report import _json_float, _table, display_name

JSON_VERSION = 1
REPORT_FILES = ("summary.json", "table.txt", "sensitivity.png", "proposal.json")


# ---- measuring -------------------------------------------------------------------------


def _layers(graph) -> dict:
    """node name -> WeightLayer (quantize/_compress_common.py: Conv, ConvTranspose, Gemm,
    MatMul with a constant weight, also int8 behind a DequantizeLinear)."""
    from ._compress_common import weight_layers

    return {layer.name: layer for layer in weight_layers(graph)}


def _storage(graph) -> dict:
    from mobconv.summary import storage_summary

    return {row["name"]: row for row in storage_summary(graph)}


def _side(graph, storage, layer) -> dict:
    value = graph.values[layer.weight]
    data = np.asarray(value.data)
    row = storage.get(layer.weight) or {}
    node = next(n for n in graph.nodes if n.name == layer.name)
    return {"op": layer.op, "shape": [int(d) for d in data.shape], "params": int(data.size),
            "stored_bytes": int(row.get("stored_bytes", data.nbytes)),
            "sparsity": float(row["sparsity"]) if "sparsity" in row else
            float(np.count_nonzero(data == 0) / data.size) if data.size else 0.0,
            "clusters": row.get("clusters") or None, "macs": int(node_macs(graph, node))}


def compare(before, after, before_bytes: int, after_bytes: int) -> dict:
    """Totals and per-layer rows of `before` vs `after` (mobconv Models)."""
    b_layers, a_layers = _layers(before.graph), _layers(after.graph)
    b_store, a_store = _storage(before.graph), _storage(after.graph)
    names = list(a_layers) + [n for n in b_layers if n not in a_layers]
    rows = []
    for name in names:
        b = _side(before.graph, b_store, b_layers[name]) if name in b_layers else None
        a = _side(after.graph, a_store, a_layers[name]) if name in a_layers else None
        rows.append({"name": name, "op": (a or b)["op"],
                     "shape_before": b and b["shape"], "shape_after": a and a["shape"],
                     "params_before": b and b["params"], "params_after": a and a["params"],
                     "stored_bytes_before": b and b["stored_bytes"],
                     "stored_bytes_after": a and a["stored_bytes"],
                     "sparsity": a and a["sparsity"], "clusters": a and a["clusters"],
                     "macs_before": b and b["macs"], "macs_after": a and a["macs"]})
    sb, sa = before.summary(), after.summary()
    return {"file_bytes": {"before": int(before_bytes), "after": int(after_bytes),
                           "ratio": after_bytes / before_bytes if before_bytes else None},
            "params": {"before": sb.num_params, "after": sa.num_params},
            "macs": {"before": sb.macs, "after": sa.macs}, "layers": rows}


def output_error(before, after, feeds) -> list:
    """Per output of `before`: SQNR/cosine/max error of `after` against it over `feeds`
    (a list of feed dicts), and top-1 agreement for float [N, classes] outputs. Both
    models run in the C++ runtime (one interpreter each), or on the numpy reference
    where the runtime is not built or lacks an op."""
    from .debug import ErrorStats

    names = [spec.name for spec in before.outputs]
    stats = {name: ErrorStats() for name in names}
    agree = {name: [0, 0] for name in names}
    with _runner(before) as run_before, _runner(after) as run_after:
        for feed in feeds:
            ref, got = run_before(feed), run_after(feed)
            for name in names:
                r, g = np.asarray(ref[name]), np.asarray(got[name])
                stats[name].add(r, g)
                if r.ndim == 2 and r.shape[1] > 1 and r.dtype.kind == "f":
                    agree[name][0] += int((r.argmax(1) == g.argmax(1)).sum())
                    agree[name][1] += r.shape[0]
    return [{"name": name, "sqnr_db": stats[name].sqnr_db, "cosine": stats[name].cosine,
             "max_abs_err": stats[name].max_abs,
             "top1_agreement": agree[name][0] / agree[name][1] if agree[name][1] else None}
            for name in names]


class _runner:
    """`with _runner(model) as run: run(feeds)`: one runtime interpreter for every run
    (Model.run would serialize and load the model per call), else the numpy reference."""

    def __init__(self, model):
        self.model, self.interpreter = model, None

    def __enter__(self):
        from mobconv.backends import _runtime_available, _runtime_lacks_an_op

        if _runtime_available():
            from mobconv.runtime import Interpreter

            try:
                self.interpreter = Interpreter(self.model.to_bytes(), threads=1, profile=False,
                                               name=self.model.source)
            except MobconvError as exc:
                if not _runtime_lacks_an_op(exc):
                    raise
        if self.interpreter is not None:
            return self.interpreter.run
        return lambda feeds: self.model.run(feeds, backend="reference")

    def __exit__(self, *exc):
        if self.interpreter is not None:
            self.interpreter.close()
        return False


# ---- text ------------------------------------------------------------------------------


def _db(x) -> str:
    """The debug report's SQNR text ("-", "exact", "-inf", "41.3") with its unit."""
    text = _report_db(x)
    return f"{text} dB" if x is not None and not math.isinf(x) else text


def _arrow(b, a, fmt=str) -> str:
    if b is None:
        return f"(new) {fmt(a)}"
    if a is None:
        return f"{fmt(b)} (replaced)"
    return fmt(a) if a == b else f"{fmt(b)} -> {fmt(a)}"


def _shape(s) -> str:
    return "[" + ",".join(str(d) for d in s) + "]"


def format_table(summary: dict) -> str:
    """The per-layer table, then totals and output errors (what the command prints)."""
    rows = []
    for r in summary["layers"]:
        rows.append((display_name(r["name"]), r["op"],
                     _arrow(r["shape_before"], r["shape_after"], _shape),
                     _arrow(r["params_before"], r["params_after"], human_count),
                     _arrow(r["stored_bytes_before"], r["stored_bytes_after"], human_bytes),
                     "-" if r["sparsity"] is None else f"{100 * r['sparsity']:.1f}%",
                     r["clusters"] or "-",
                     _arrow(r["macs_before"], r["macs_after"], human_count)))
    lines = [_table(rows, ("layer", "op", "weight shape", "params", "stored", "sparsity",
                           "clusters", "MACs"))]
    f, p, m = summary["file_bytes"], summary["params"], summary["macs"]
    ratio = f" ({f['ratio']:.2f}x)" if f["ratio"] else ""
    lines.append(f"file {human_bytes(f['before'])} -> {human_bytes(f['after'])}{ratio}; params "
                 f"{human_count(p['before'])} -> {human_count(p['after'])}; MACs "
                 f"{human_count(m['before'])} -> {human_count(m['after'])}")
    outs = summary.get("outputs")
    if outs:
        parts = []
        for t in outs["tensors"]:
            top1 = (f", top-1 agreement {100 * t['top1_agreement']:.1f}%"
                    if t["top1_agreement"] is not None else "")
            parts.append(f"{t['name']} SQNR {_db(t['sqnr_db'])}, cosine {t['cosine']:.5f}{top1}")
        lines.append(f"outputs vs {summary['input']} on {outs['data']}: " + "; ".join(parts))
    return "\n".join(lines)


def to_json(summary: dict) -> dict:
    """`summary` with +-inf/NaN as null (strict JSON)."""
    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (float, np.floating)):
            return _json_float(x)
        if isinstance(x, np.integer):
            return int(x)
        return x

    return {"version": JSON_VERSION, **clean(summary)}


# ---- the report folder -----------------------------------------------------------------


class ReportDir:
    """The --report folder: prepare (staging) -> commit, or discard (module docstring)."""

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.staging = None
        self.files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.discard()
        return False

    def prepare(self, summary: dict, sensitivity=None, proposal=None) -> None:
        parent = os.path.dirname(os.path.abspath(self.directory))
        try:
            with signals_held():  # created and recorded in one step: discard() finds it
                self.staging = tempfile.mkdtemp(prefix=".mobconv-report-", dir=parent)
            self._write("table.txt", format_table(summary) + "\n")
            data = to_json(summary)
            self._write("summary.json", json.dumps(data, indent=1, allow_nan=False) + "\n")
            if sensitivity is not None:
                sensitivity.plot(os.path.join(self.staging, "sensitivity.png"))
                self.files.append("sensitivity.png")
            if proposal is not None:
                self._write("proposal.json", json.dumps(
                    {k: float(v) for k, v in proposal.items()}, indent=1) + "\n")
        except OSError as exc:
            self.discard()
            raise MobconvError(f"--report {self.directory}: cannot write "
                               f"{exc.filename or 'the report'}: {exc.strerror or exc}") from None

    def _write(self, name: str, text: str) -> None:
        with open(os.path.join(self.staging, name), "w") as f:
            f.write(text)
        self.files.append(name)

    def commit(self) -> list:
        """Move the prepared files into the folder; the paths written."""
        target = self.directory
        try:
            with signals_held():
                if not os.path.lexists(target):
                    os.rename(self.staging, target)
                    self.staging = None
                else:
                    previous = os.path.isfile(os.path.join(target, "summary.json"))
                    for name in self.files:
                        os.replace(os.path.join(self.staging, name), os.path.join(target, name))
                    for name in REPORT_FILES:  # a previous report's plot describes another model
                        if previous and name not in self.files \
                                and os.path.isfile(os.path.join(target, name)):
                            os.unlink(os.path.join(target, name))
        except OSError as exc:
            raise MobconvError(f"--report {target}: cannot write the report: "
                               f"{exc.strerror or exc}") from None
        finally:
            self.discard()
        return [os.path.join(target, name) for name in self.files]

    def discard(self) -> None:
        if self.staging is not None:
            with signals_held():
                shutil.rmtree(self.staging, ignore_errors=True)
                self.staging = None
