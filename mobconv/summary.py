"""Static facts about a graph: op histogram, parameters, size by dtype, MAC estimate.

Used by `mobconv info` and the onnx2mob summary. MACs (multiply-accumulates)
are counted for the ops that dominate compute, from inferred shapes:

- Conv:           out_elements * (C_in / group) * prod(kernel)   = |Y| * prod(W.shape[1:])
- ConvTranspose:  in_elements * (C_out / group) * prod(kernel)   = |X| * prod(W.shape[1:])
- Gemm / MatMul:  out_elements * K (the reduced dimension)

Symbolic dims count as 1 (the estimate is per batch item for a "batch" dim).
Other ops count 0: they are memory-bound and small next to these.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .ir import Graph
from .ir.graph import QuantParams


def _numel(shape) -> int:
    n = 1
    for d in shape or ():
        n *= d if isinstance(d, int) and d >= 0 else 1
    return n


def _shape(graph: Graph, name: str):
    value = graph.values.get(name) if name else None
    return None if value is None else value.shape


def node_macs(graph: Graph, node) -> int:
    """Estimated multiply-accumulates of one node (0 for ops not modelled)."""
    ins = [_shape(graph, n) for n in node.inputs]
    out = _shape(graph, node.outputs[0]) if node.outputs else None
    try:
        if node.op == "Conv" and out is not None and ins[1]:
            return _numel(out) * _numel(ins[1][1:])
        if node.op == "ConvTranspose" and ins[0] and ins[1]:
            return _numel(ins[0]) * _numel(ins[1][1:])
        if node.op == "Gemm" and out is not None and ins[0]:
            a = ins[0]
            k = a[0] if node.attrs.get("transA", 0) else a[-1]
            return _numel(out) * _numel((k,))
        if node.op == "MatMul" and out is not None and ins[0]:
            return _numel(out) * _numel(ins[0][-1:])
    except (IndexError, TypeError):
        return 0
    return 0


@dataclass
class Summary:
    num_ops: int
    op_histogram: dict            # op -> count, most common first
    num_params: int               # elements of all constant tensors
    bytes_by_dtype: dict          # dtype -> bytes of constant data
    macs: int
    macs_by_op: dict = field(default_factory=dict)
    file_size: Optional[int] = None

    @property
    def param_bytes(self) -> int:
        return sum(self.bytes_by_dtype.values())

    def to_dict(self) -> dict:
        return {
            "num_ops": self.num_ops,
            "op_histogram": dict(self.op_histogram),
            "num_params": self.num_params,
            "param_bytes": self.param_bytes,
            "bytes_by_dtype": dict(self.bytes_by_dtype),
            "macs": self.macs,
            "macs_by_op": dict(self.macs_by_op),
            "file_size": self.file_size,
        }


def summarize(graph: Graph, file_size: Optional[int] = None) -> Summary:
    hist = Counter(node.op for node in graph.nodes)
    num_params, by_dtype = 0, Counter()
    for value in graph.constants():
        data = np.asarray(value.data)
        num_params += int(data.size)
        by_dtype[value.dtype or data.dtype.name] += int(data.nbytes)
    macs_by_op: Counter = Counter()
    for node in graph.nodes:
        m = node_macs(graph, node)
        if m:
            macs_by_op[node.op] += m
    return Summary(
        num_ops=len(graph.nodes),
        op_histogram=dict(hist.most_common()),
        num_params=num_params,
        bytes_by_dtype=dict(by_dtype.most_common()),
        macs=sum(macs_by_op.values()),
        macs_by_op=dict(macs_by_op.most_common()),
        file_size=file_size,
    )


def human_count(n: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


# ---- quantized models ---------------------------------------------------------------
#
# What `mobconv info` shows for an int8 / int8-weights / fp16 model: each quantized
# tensor with its parameters, the float16 weights, the `quantization.*` metadata, and
# the weight bytes against the same weights in float32. The float32 estimate counts a
# quantized constant (int8/uint8 weight, int32 bias, anything a DequantizeLinear reads
# as its data) and a float16/bfloat16 constant at 4 bytes per element, the scales and
# zero points that QuantizeLinear/DequantizeLinear read as inputs at 0 (a float model
# has none), and every other constant as stored. The float32 file estimate adds the
# difference to this file's size (the Q/DQ/Cast nodes themselves are ignored). "As
# stored" is the bytes the file holds: a pruned or clustered constant's compressed
# parts (the float32 estimate is of the dense float32 file).

QUANT_PREFIX = "quantization."
_BOUNDARY = ("QuantizeLinear", "DequantizeLinear")


def _role(graph: Graph, value, inputs: set, outputs: set) -> str:
    if value.data is not None:
        return "bias" if value.dtype == "int32" else "weight"
    if value.name in inputs:
        return "graph input"
    return "graph output" if value.name in outputs else "activation"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _dq_params(graph: Graph, node):
    """QuantParams of the constant a DequantizeLinear reads, from its constant scale and
    zero point (an imported QDQ weight), or None when they are not constants."""
    value = graph.values.get(node.inputs[0])
    scale = graph.values.get(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    zp = graph.values.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if value is None or value.data is None or scale is None or scale.data is None or \
            (zp is not None and zp.data is None):
        return None
    scales = np.asarray(scale.data, np.float64).ravel().tolist()
    zps = [0] * len(scales) if zp is None else np.asarray(zp.data, np.int64).ravel().tolist()
    axis = int(node.attrs.get("axis", 1)) if len(scales) > 1 else None
    return QuantParams(scales=scales, zero_points=zps, axis=axis)


def _quant_row(graph: Graph, value, inputs: set, outputs: set, q=None) -> dict:
    q = q or value.quant
    scales = [float(s) for s in q.scales]
    zps = [int(z) for z in q.zero_points] or [0]
    per_axis = q.axis is not None and len(scales) > 1
    return {"name": value.name, "dtype": value.dtype, "shape": list(value.shape or ()),
            "role": _role(graph, value, inputs, outputs), "per_axis": per_axis,
            "axis": q.axis if per_axis else None, "channels": len(scales) if per_axis else None,
            "scale_min": min(scales) if scales else None, "scale_max": max(scales) if scales else None,
            "zero_point_min": min(zps), "zero_point_max": max(zps),
            "scales": scales, "zero_points": [int(z) for z in q.zero_points]}


def quant_row_text(row: dict) -> tuple:
    """(granularity, scale, zero point) as `mobconv info` prints them."""
    if row["dtype"] in ("float16", "bfloat16"):
        return f"{row['dtype']} storage, widened to float32 at load", "-", "-"
    if row["scale_min"] is None:
        return "-", "-", "-"
    if row["per_axis"]:
        kind = f"per-axis ({row['channels']} channels, axis {row['axis']})"
        scale = f"{_fmt(row['scale_min'])} .. {_fmt(row['scale_max'])}"
    else:
        kind, scale = "per-tensor", _fmt(row["scale_min"])
    lo, hi = row["zero_point_min"], row["zero_point_max"]
    return kind, scale, str(lo) if lo == hi else f"{lo} .. {hi}"


def quantization_summary(graph: Graph, file_size: Optional[int] = None) -> Optional[dict]:
    """The quantization facts of `graph` as JSON-ready data, or None for a float model
    (no quantized tensor, no float16/bfloat16 constant, no `quantization.*` metadata)."""
    meta = {k[len(QUANT_PREFIX):]: v for k, v in graph.metadata.extra.items() if k.startswith(QUANT_PREFIX)}
    inputs, outputs = set(graph.inputs), set(graph.outputs)
    quantized = [v for v in graph.values.values() if v.quant is not None]
    half = [v for v in graph.constants() if v.dtype in ("float16", "bfloat16")]
    boundary = [node for node in graph.nodes if node.op in _BOUNDARY]
    if not meta and not quantized and not half and not boundary:
        return None
    boundary_params, dq_data = set(), set()
    implied = {}  # constant read by a DequantizeLinear, without Value.quant -> QuantParams from its inputs
    for node in boundary:
        boundary_params.update(n for n in node.inputs[1:3] if n)
        if node.op == "DequantizeLinear" and node.inputs:
            dq_data.add(node.inputs[0])
            params = _dq_params(graph, node)
            if params is not None and graph.values[node.inputs[0]].quant is None:
                implied.setdefault(node.inputs[0], params)
    stored, as_float = Counter(), 0
    for value in graph.constants():
        data = np.asarray(value.data)
        stored[value.dtype or data.dtype.name] += _stored_nbytes(value)
        if value.name in boundary_params and value.quant is None:
            continue
        if value.quant is not None or value.name in dq_data or value.dtype in ("float16", "bfloat16"):
            as_float += 4 * int(data.size)
        else:
            as_float += int(data.nbytes)
    weight_bytes = sum(stored.values())
    rows = [_quant_row(graph, v, inputs, outputs) for v in quantized]
    rows += [_quant_row(graph, graph.values[name], inputs, outputs, q) for name, q in implied.items()]
    rows += [{"name": v.name, "dtype": v.dtype, "shape": list(v.shape or ()),
              "role": _role(graph, v, inputs, outputs), "per_axis": False, "axis": None, "channels": None,
              "scale_min": None, "scale_max": None, "zero_point_min": None, "zero_point_max": None,
              "scales": [], "zero_points": []} for v in half]
    kept = [item.strip() for item in meta.get("fp16.kept_float32", "").split(";") if item.strip()]
    return {
        "scheme": meta.get("scheme", "int8" if quantized or boundary else "fp16"),
        "metadata": meta,
        "tensors": rows,
        "tensors_by_dtype": dict(Counter(r["dtype"] for r in rows).most_common()),
        "weight_bytes": weight_bytes,
        "weight_bytes_by_dtype": dict(stored.most_common()),
        "float32_weight_bytes": as_float,
        "saved_bytes": as_float - weight_bytes,
        "file_size": file_size,
        "float32_file_estimate": None if file_size is None else file_size + as_float - weight_bytes,
        "kept_float32": kept,
    }


# ---- compressed and sparse weights --------------------------------------------------
#
# What `mobconv info` shows for a pruned / clustered model: per constant, the bytes it
# would take dense and the bytes the .mob file stores for it (formats/writer.py's
# choice from Value.storage: sparse bitmask, palette or dense), its zero fraction and,
# for a palette, the number of clusters.

# A weight whose zero fraction is at least this makes `info` show the table even when
# nothing is stored compressed (a pruned model written without storage hints).
SPARSE_SHOWN = 0.5
# Constants smaller than this many elements (biases, scales, shape vectors) are left
# out of the text table (still in --json and in the totals).
TABLE_MIN_ELEMENTS = 256


def _readers(graph: Graph) -> dict:
    """Constant name -> ((node index, input index), node name, op) of the first node that
    reads it."""
    readers = {}
    for k, node in enumerate(graph.nodes):
        for j, name in enumerate(node.inputs):
            if name and name not in readers:
                readers[name] = ((k, j), node.name, node.op)
    return readers


def _stored_nbytes(value) -> int:
    """Bytes the .mob file holds for constant `value` (its compressed parts when the
    writer compresses it, else its data)."""
    if value.storage is None:
        return int(np.asarray(value.data).nbytes)
    from .formats.writer import encode_storage

    encoded = encode_storage(value)
    return int(sum(p.nbytes for p in encoded[1]) if encoded else np.asarray(value.data).nbytes)


def storage_summary(graph: Graph) -> list:
    """One dict per constant of `graph`, in the order of the nodes reading them (then
    constants no node reads), with: name, node (the first node that
    reads it, "" if none) and op, shape, dtype, storage ("dense", "sparse" or "palette":
    how the .mob writer stores it), index_bits, dense_bytes, stored_bytes (the bytes of
    its stored parts), sparsity (fraction of elements whose bits are all zero: what a
    sparse bitmask skips) and clusters (palette entries, None unless a palette).

    Raises ModelFormatError for a palette hint that the data breaks (NaN, too many
    values), as saving would."""
    from .formats import dtypes
    from .formats.fb.StorageKind import StorageKind
    from .formats.writer import encode_storage

    readers = _readers(graph)
    rows = []
    unread = ((len(graph.nodes), 0), "", "")
    for value in sorted(graph.constants(), key=lambda v: readers.get(v.name, unread)[0]):
        data = dtypes.as_storage(value.data, value.dtype)
        encoded = encode_storage(value, data)
        storage, bits, clusters, stored = "dense", 0, None, int(data.nbytes)
        if encoded is not None:
            kind, parts, bits = encoded
            stored = sum(int(p.nbytes) for p in parts)
            if kind == StorageKind.PALETTE:
                storage, clusters = "palette", int(parts[1].size)
            else:
                storage = "sparse"
        flat = data.reshape(-1)
        zeros = flat.size - int(np.count_nonzero(flat.view(f"u{flat.dtype.itemsize}")
                                                 if flat.dtype.itemsize > 1 else flat.view("u1")))
        _, node, op = readers.get(value.name, unread)
        rows.append({"name": value.name, "node": node, "op": op,
                     "shape": list(value.shape or ()), "dtype": value.dtype,
                     "storage": storage, "index_bits": bits or None,
                     "dense_bytes": int(data.nbytes), "stored_bytes": stored,
                     "sparsity": zeros / flat.size if flat.size else 0.0,
                     "clusters": clusters})
    return rows


def storage_report(graph: Graph, file_size: Optional[int] = None) -> Optional[dict]:
    """`storage_summary` with totals, as `mobconv info` shows it, or None when the model
    has no compressed constant and no weight (>= TABLE_MIN_ELEMENTS elements) at least
    SPARSE_SHOWN zero."""
    rows = storage_summary(graph)
    if not any(r["storage"] != "dense" or (
            r["sparsity"] >= SPARSE_SHOWN and _numel(r["shape"]) >= TABLE_MIN_ELEMENTS)
            for r in rows):
        return None
    dense = sum(r["dense_bytes"] for r in rows)
    stored = sum(r["stored_bytes"] for r in rows)
    elements = sum(_numel(r["shape"]) for r in rows)
    zeros = sum(round(r["sparsity"] * _numel(r["shape"])) for r in rows)
    return {
        "tensors": rows,
        "compressed": dict(Counter(r["storage"] for r in rows if r["storage"] != "dense")),
        "dense_bytes": dense,
        "stored_bytes": stored,
        "saved_bytes": dense - stored,
        "sparsity": zeros / elements if elements else 0.0,
        "file_size": file_size,
        "dense_file_estimate": None if file_size is None else file_size + dense - stored,
    }
