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
