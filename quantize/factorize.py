"""Low-rank factorization: one fully connected or 1x1 conv layer -> two thinner ones.

    f = quantize.low_rank(model, 0.9)          # keep 90% of each weight's energy
    f = quantize.low_rank(model, rank=16)      # or a fixed rank

Why: a layer computing y = W x with W of m outputs x n inputs costs m*n MACs per
output position. With the SVD W = U S V^T cut to the r largest singular values,
W ~ (U_r S_r^1/2)(S_r^1/2 V_r^T) = B A, and y = B (A x) costs r*(m+n): fewer MACs
and parameters whenever r < m*n/(m+n). Trained weights are often near low rank, so
a small r keeps most of the output.

Which layers: Gemm (constant 2-D float32 B, any transA/transB/alpha/beta), MatMul
(constant 2-D float32 second operand) and Conv with a 1x1 kernel and group 1 (any
stride, padding or fused residual); each weight read by that node only. Integer
(quantized) weights are not factorized: factorize the float model, then quantize.

Algorithm, per layer:
1. Check the options before any work (ArgumentError, one line): exactly one of
   energy (0 < e <= 1) and rank (an int >= 1); `exclude` names layers.
2. W as an m x n matrix (outputs x inputs); numpy SVD in float64.
3. r = rank (at most min(m, n)), or the smallest r whose singular values keep
   `energy` of sum(s^2) (so ||W - B A||_F^2 <= (1 - energy) ||W||_F^2, weight SQNR
   at least -10 log10(1 - energy) dB).
4. Only when r*(m+n) < m*n (fewer MACs): node -> first node `<name>/low_rank`
   (A x: the original input, transA/alpha, stride, padding; no bias) and the
   second node, which keeps the name, the output, the bias, a fused residual and the
   fused activation. Otherwise the layer stays and the report says why.
5. Report per layer (`result.factorized`, a list of LowRankLayer; a short summary in
   metadata `compression.low_rank`): rank, energy kept, weight SQNR, parameters and
   MACs before/after (mobconv.summary.node_macs, per batch item).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mobconv.errors import ArgumentError
from mobconv.ir import Node, infer_shapes
from mobconv.summary import human_count, node_macs

from ._compress_common import (LayerRecord, check_fraction, check_int, check_layer_names,
                               check_progress, label, load_model, progress_bar, record,
                               result_model, weight_layers, weight_sqnr_db)

FUNC = "low_rank"
OPS = ("Gemm", "MatMul", "Conv")


@dataclass
class LowRankLayer(LayerRecord):
    """What factorization did (or would do) to one layer."""

    name: str
    op: str
    shape: tuple          # the weight as a matrix: (outputs m, inputs n)
    rank: int             # the rank chosen (kept layers: the rank that was asked)
    full_rank: int        # min(m, n)
    energy: float         # fraction of sum(s^2) the kept singular values hold
    sqnr_db: float        # weight SQNR of B A against W (inf when exact)
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    skipped: str = ""     # why the layer was left as it is


def low_rank(model, energy: Optional[float] = None, *, rank: Optional[int] = None, exclude=(),
             progress: Optional[bool] = None):
    """A copy of `model` with its fully connected and 1x1 conv layers factorized in two.

    energy: keep this fraction (0 < energy <= 1) of each weight's squared singular
      values; or rank: a fixed rank (>= 1). Exactly one of the two.
    exclude: layer (node) names left as they are. progress: None = a bar on a terminal.
    Returns a new Model; `result.factorized` lists every candidate layer (LowRankLayer).
    """
    if (energy is None) == (rank is None):
        raise ArgumentError(f"{FUNC}(): give exactly one of energy (a fraction in (0, 1], e.g. "
                            f"0.9) and rank (an integer >= 1), got energy={energy!r}, "
                            f"rank={rank!r}")
    if energy is not None:
        energy = check_fraction(energy, "energy", FUNC, allow_one=True)
        if energy == 0.0:
            raise ArgumentError(f"{FUNC}(): energy must be a number in (0, 1], got {energy!r}")
    if rank is not None:
        rank = check_int(rank, "rank", FUNC, 1)
    check_progress(progress, FUNC)
    model = load_model(model, FUNC)
    layers = weight_layers(model.graph)
    exclude = set(check_layer_names(model, exclude, "exclude", FUNC, layers))
    nodes = {node.name: node for node in model.graph.nodes}
    candidates = [layer for layer in layers
                  if layer.name not in exclude and _matrix_of(model.graph, nodes[layer.name], layer)]
    if not candidates:
        raise ArgumentError(f"{FUNC}(): {label(model)}: nothing to factorize: no Gemm or MatMul "
                            "with a constant 2-D float32 weight, nor a 1x1 Conv with group 1"
                            + (" outside exclude" if exclude else ""))

    graph = model.graph.copy()
    infer_shapes(graph)  # MACs need the output shapes
    nodes = {node.name: node for node in graph.nodes}
    rows, replace = [], {}
    with progress_bar(progress, len(candidates), "factorizing") as bar:
        for layer in candidates:
            row, new_nodes = _factorize(graph, nodes[layer.name], layer, energy, rank)
            rows.append(row)
            if new_nodes:
                replace[layer.name] = new_nodes
            bar.advance()
    if replace:
        ordered = []
        for node in graph.nodes:
            ordered.extend(replace.get(node.name, [node]))
        graph.nodes = ordered
        graph.remove_unused_values()
        infer_shapes(graph)
        for row in rows:  # the MACs as the new graph counts them
            if not row.skipped:
                first, second = replace[row.name]
                row.macs_after = node_macs(graph, first) + node_macs(graph, second)
    record(graph, FUNC, _summary(energy, rank, rows))
    result = result_model(model, graph)
    result.factorized = rows
    return result


def _matrix_of(graph, node, layer) -> bool:
    """Whether `layer` is a candidate: a float32 weight at input 1 read as a matrix."""
    if node.op not in OPS or layer.dequantize is not None or layer.dtype != "float32":
        return False
    if layer.input_index != 1 or len(layer.readers) != 1:
        return False
    shape = layer.shape
    if node.op in ("Gemm", "MatMul"):
        return len(shape) == 2
    group = int(node.attrs.get("group", 1) or 1)
    return group == 1 and len(shape) >= 3 and all(k == 1 for k in shape[2:])


def _as_matrix(node, w: np.ndarray) -> np.ndarray:
    """The weight as outputs x inputs."""
    if node.op == "Conv":
        return w.reshape(w.shape[0], w.shape[1])
    if node.op == "Gemm" and node.attrs.get("transB", 0):
        return w
    return w.T  # Gemm without transB and MatMul: (inputs, outputs)


def choose_rank(s: np.ndarray, energy: Optional[float], rank: Optional[int]) -> int:
    """The rank to keep: `rank` capped at len(s), or the smallest r whose squared singular
    values hold `energy` of the total (len(s) for an all-zero weight)."""
    if rank is not None:
        return min(rank, s.size)
    power = np.square(s.astype(np.float64))
    total = float(power.sum())
    if total == 0.0:
        return s.size
    kept = np.cumsum(power) / total
    return int(min(np.searchsorted(kept, energy * (1 - 1e-12), side="left") + 1, s.size))


def _factorize(graph, node, layer, energy, rank):
    """(LowRankLayer, [first, second] nodes or None)."""
    w = np.asarray(graph.values[layer.weight].data)
    mat = _as_matrix(node, w).astype(np.float64)
    m, n = mat.shape
    u, s, vt = np.linalg.svd(mat, full_matrices=False)
    r = choose_rank(s, energy, rank)
    power = np.square(s)
    kept = float(power[:r].sum() / power.sum()) if power.sum() > 0 else 1.0
    macs = node_macs(graph, node)
    row = LowRankLayer(layer.name, node.op, (m, n), r, int(s.size), kept, math.inf, m * n,
                       r * (m + n), macs, macs)
    if power.sum() == 0.0:
        row.skipped = "all-zero weight"
    elif r * (m + n) >= m * n:
        row.skipped = (f"rank {r} of {m}x{n} saves no MACs (needs rank < "
                       f"{m * n / (m + n):.1f} = m*n/(m+n))")
    if row.skipped:
        row.params_after = row.params_before
        return row, None
    root = np.sqrt(s[:r])
    b = (u[:, :r] * root).astype(np.float32)            # m x r
    a = (root[:, None] * vt[:r]).astype(np.float32)     # r x n
    row.sqnr_db = weight_sqnr_db(mat, b.astype(np.float64) @ a.astype(np.float64))
    return row, _rewrite(graph, node, layer, a, b)


def _rewrite(graph, node, layer, a: np.ndarray, b: np.ndarray) -> list:
    """[first, second]: first computes A x into a new value, second is `node` reading it
    with weight B (the bias, residual and activation stay on it)."""
    r = a.shape[0]
    w_name = layer.weight
    out = node.outputs[0]
    mid = graph.unique_name(f"{out}/low_rank")
    graph.add_value(mid, graph.values[out].dtype)
    first_attrs = dict(node.attrs)
    second_attrs = dict(node.attrs)
    for key in ("activation", "activation_params"):
        first_attrs.pop(key, None)
    if node.op == "Conv":
        ones = (1,) * (len(layer.shape) - 2)
        first_w = a.reshape((r, a.shape[1]) + ones)
        second_w = b.reshape((b.shape[0], r) + ones)
        for key in ("strides", "pads", "dilations", "auto_pad"):
            second_attrs.pop(key, None)
    elif node.op == "Gemm":
        trans = bool(node.attrs.get("transB", 0))
        first_w = a if trans else a.T                    # B' of the first: n x r
        second_w = b if trans else b.T                   # B' of the second: r x m
        first_attrs.pop("beta", None)
        second_attrs.update(alpha=1.0, transA=0)
    else:  # MatMul: X (..., n) @ A^T (n, r) @ B^T (r, m)
        first_w, second_w = a.T, b.T
    first_name = graph.unique_name(f"{w_name}/low_rank_a")
    second_name = graph.unique_name(f"{w_name}/low_rank_b")
    graph.add_constant(first_name, np.ascontiguousarray(first_w))
    graph.add_constant(second_name, np.ascontiguousarray(second_w))
    first = Node(node.op, graph.unique_name(f"{node.name}/low_rank"),
                 [node.inputs[0], first_name], [mid], first_attrs)
    node.inputs = [mid, second_name] + list(node.inputs[2:])
    node.attrs = second_attrs
    return [first, node]


def _summary(energy, rank, rows: list) -> str:
    done = [r for r in rows if not r.skipped]
    how = f"energy {energy:g}" if energy is not None else f"rank {rank}"
    macs = (sum(r.macs_before for r in rows), sum(r.macs_after for r in rows))
    params = (sum(r.params_before for r in rows), sum(r.params_after for r in rows))
    return (f"SVD, {how}: {len(done)} of {len(rows)} layers factorized; their MACs "
            f"{human_count(macs[0])} -> {human_count(macs[1])}, weights {params[0]} -> "
            f"{params[1]}")


def format_table(rows: list) -> str:
    """The per-layer report as text."""
    lines = [f"  {'layer':40s} {'m x n':>10s} {'rank':>9s} {'energy':>7s} {'SQNR dB':>7s} "
             f"{'params':>15s} {'MACs':>17s}  note"]
    for r in rows:
        sqnr = "-" if r.skipped else ("exact" if math.isinf(r.sqnr_db) else f"{r.sqnr_db:.1f}")
        lines.append(
            f"  {r.name[-40:]:40s} {f'{r.shape[0]}x{r.shape[1]}':>10s} "
            f"{f'{r.rank}/{r.full_rank}':>9s} {r.energy:7.3f} {sqnr:>7s} "
            f"{f'{r.params_before}->{r.params_after}':>15s} "
            f"{f'{human_count(r.macs_before)}->{human_count(r.macs_after)}':>17s}  {r.skipped}")
    return "\n".join(lines)


__all__ = ["low_rank", "LowRankLayer", "choose_rank", "format_table"]
