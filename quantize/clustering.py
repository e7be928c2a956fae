"""Weight clustering: each layer's weight takes at most K distinct values (a palette).

    k = quantize.cluster(model, 16)     # k-means per layer; .mob stores palette + indices
    k.save("model.k16.mob")

Why: a weight with K distinct values is stored in the .mob as the K values (the
palette, in the weight's dtype) plus one packed index of 1, 2, 4 or 8 bits per
element (formats/writer.py), and expanded to dense at load, so every kernel runs as
before. 16 clusters store a float32 weight in about 1/8 of its bytes; k-means puts
the K values where the weights are dense, so the model loses little accuracy.

Which layers: the constant weight (input 1) of Conv, ConvTranspose, Gemm and MatMul,
float32 or int8 (a quantized model: the palette holds int8 values, the per-channel
scales are unchanged), depthwise convs included. A layer is left as it is, and
listed in the report with the reason, when
- its weight has fewer than MIN_ELEMENTS (256) elements: it would save under 1 KiB,
  and these are the stems and first depthwise layers of small nets, where a palette
  costs the most accuracy per byte (digits MobileNetV2 at 16 clusters: top-1 98.0%
  with its three such layers clustered, 99.6% without; float 99.3%);
- the palette and indices would not be smaller than the dense bytes (an int8 weight
  at more than 16 clusters: 8-bit indices are as big as the int8 values).

Algorithm, per layer (1-D k-means on the weight's values):
1. Check every option and layer before any work (ArgumentError, one line): clusters
   an int in 2..256, `exclude` names layers, an int8 layer has at least `clusters`
   distinct values (integer weights cannot gain values), something is left to cluster.
2. Fewer distinct values than K: kept exactly (only the storage changes).
3. Zeros of a pruned weight (storage "sparse", or at least PRUNED_ZEROS = 10% exact
   zeros; int8: the zero point) are kept: 0 is a centroid of its own and the other
   K - 1 are fitted to the other values, so pruning survives (the sparse kernels see
   the same zeros after expansion, and the palette is smaller than the bitmask).
4. Fit: scikit-learn KMeans (k-means++ init, N_INIT starts, fixed random_state, one
   thread) on the distinct values weighted by their counts, from a fixed random
   subsample of MAX_FIT elements of a large weight; then up to LLOYD_STEPS Lloyd steps
   on all values (1-D: sorted centroids, midpoints, searchsorted: O(n log K)).
5. Integer weights: centroids rounded. Every element takes its nearest centroid (the
   assignment is the last step), so the weight has at most K values;
   `storage = WeightStorage("palette", bits)`, bits the smallest of 1, 2, 4, 8 that
   holds the values present.
6. Report per layer (`result.clustered`, a list of ClusterLayer; a short summary in
   metadata `compression.cluster`): values before/after, bits, weight SQNR (dB, in
   real units: int8 dequantized with its per-channel scales).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mobconv.errors import ArgumentError
from mobconv.ir.graph import PALETTE_BITS, WeightStorage

from ._compress_common import (LayerRecord, check_int, check_layer_names, check_progress, label,
                               load_model, progress_bar, record, result_model, weight_layers,
                               weight_sqnr_db, zero_points)

FUNC = "cluster"
MIN_CLUSTERS, MAX_CLUSTERS = 2, 256
MIN_ELEMENTS = 256       # smaller weights stay as they are (see the module docstring)
SEED = 0
N_INIT = 3
MAX_FIT = 4096           # elements k-means is fitted on (a fixed random subsample above)
LLOYD_STEPS = 10         # then refined on all elements
PRUNED_ZEROS = 0.1       # a weight with at least this fraction of exact zeros keeps them
DTYPES = ("float32", "float16", "int8", "uint8")


@dataclass
class ClusterLayer(LayerRecord):
    """What clustering did to one layer's weight."""

    name: str            # node name
    op: str
    weight: str          # the stored constant's name
    shape: tuple
    dtype: str
    values_before: int   # distinct values
    values: int          # distinct values after (<= clusters)
    bits: int            # palette index width (0 when skipped)
    sqnr_db: float       # weight SQNR in dB, real units (inf when unchanged)
    zeros_kept: bool = False
    skipped: str = ""    # why the layer was left as it is


def cluster(model, clusters: int = 16, *, exclude=(), progress: Optional[bool] = None):
    """A copy of `model` whose layer weights each hold at most `clusters` distinct values.

    model: a `mobconv.Model` or a model path. clusters: 2..256 (per layer).
    exclude: layer (node) names left as they are. progress: None = a bar on a terminal.
    Returns a new Model; `result.clustered` lists every layer (ClusterLayer, skipped
    ones with the reason). Bad options raise ArgumentError (one line) before any work.
    """
    clusters = check_int(clusters, "clusters", FUNC, MIN_CLUSTERS, MAX_CLUSTERS)
    check_progress(progress, FUNC)
    model = load_model(model, FUNC)
    all_layers = weight_layers(model.graph)
    exclude = set(check_layer_names(model, exclude, "exclude", FUNC, all_layers))
    layers = [layer for layer in all_layers if layer.name not in exclude and layer.dtype in DTYPES]
    if not layers:
        raise ArgumentError(f"{FUNC}(): {label(model)}: nothing to cluster: no Conv, ConvTranspose, "
                            "Gemm or MatMul with a constant float or int8 weight"
                            + (" outside exclude" if exclude else ""))
    graph = model.graph
    for layer in layers:  # integer weights cannot gain values: refused before any work
        data = graph.values[layer.weight].data
        if layer.quantized and data.size >= MIN_ELEMENTS:
            n = int(np.unique(data).size)
            if n < clusters:
                raise ArgumentError(f"{FUNC}(): {label(model)}: layer {layer.name!r} has {n} "
                                    f"distinct {layer.dtype} values; cannot make {clusters} "
                                    "clusters (an integer weight needs at least as many distinct "
                                    "values as clusters)")
    reasons = [_skip_reason(graph.values[layer.weight], clusters) for layer in layers]
    if all(reasons):  # name the largest layer: its reason is the one that matters
        i = max(range(len(layers)), key=lambda j: layers[j].size)
        raise ArgumentError(f"{FUNC}(): {label(model)}: nothing to cluster at {clusters} clusters: "
                            f"layer {layers[i].name!r}: {reasons[i]}")
    out = graph.copy()
    rows = []
    with progress_bar(progress, len(layers), "clustering") as bar:
        for layer in layers:
            rows.append(_cluster_layer(out, layer, clusters))
            bar.advance()
    record(out, FUNC, _summary(clusters, rows))
    result = result_model(model, out)
    result.clustered = rows
    return result


def palette_bits(n: int) -> int:
    """The smallest palette index width (1, 2, 4, 8) that holds `n` values."""
    for bits in PALETTE_BITS:
        if n <= 1 << bits:
            return bits
    raise ArgumentError(f"{n} values do not fit an 8-bit palette")


def distinct(data: np.ndarray) -> int:
    """Distinct values as the .mob palette counts them (bitwise for floats: -0.0 != 0.0)."""
    data = np.ascontiguousarray(data)
    if data.dtype.kind == "f":
        data = data.view(f"u{data.itemsize}")
    return int(np.unique(data).size)


def palette_smaller(numel: int, itemsize: int, values: int) -> bool:
    """Palette + packed indices take fewer bytes than the dense data."""
    return values * itemsize + (numel * palette_bits(values) + 7) // 8 < numel * itemsize


def nearest(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index into sorted `centroids` of the nearest centroid of each value (1-D; a value
    halfway between two takes the lower)."""
    c = np.asarray(centroids, np.float64)
    mids = (c[1:] + c[:-1]) / 2.0
    return np.searchsorted(mids, np.asarray(values, np.float64).ravel(), side="left")


def kmeans_1d(values: np.ndarray, k: int, *, fixed=None, integer: bool = False) -> np.ndarray:
    """Sorted distinct centroids (float64, at most k) of 1-D k-means on `values`.

    fixed: a value that is a centroid of its own (the zero of a pruned weight); the other
    k - 1 are fitted to the values that differ from it. integer: centroids rounded."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x = np.asarray(values, np.float64).ravel()
    fit = x if fixed is None else x[x != fixed]
    k_fit = k if fixed is None else k - 1
    sample = fit
    if sample.size > MAX_FIT:
        rng = np.random.default_rng(SEED)
        sample = sample[rng.choice(sample.size, MAX_FIT, replace=False)]
    points, counts = np.unique(sample, return_counts=True)
    if points.size <= k_fit:
        centroids = points
    else:
        km = KMeans(n_clusters=k_fit, init="k-means++", n_init=N_INIT, random_state=SEED)
        with threadpool_limits(1):  # 1-D fits are tiny: thread start-up costs 10-100x the fit
            km.fit(points.reshape(-1, 1), sample_weight=counts.astype(np.float64))
        centroids = np.sort(km.cluster_centers_.ravel())
        for _ in range(LLOYD_STEPS):  # refine on every value, not just the sample
            idx = nearest(fit, centroids)
            sums = np.bincount(idx, weights=fit, minlength=centroids.size)
            n = np.bincount(idx, minlength=centroids.size)
            moved = np.sort(np.where(n > 0, sums / np.maximum(n, 1), centroids))
            if np.array_equal(moved, centroids):
                break
            centroids = moved
    if integer:
        centroids = np.rint(centroids)
    if fixed is not None:
        centroids = np.concatenate([centroids, [float(fixed)]])
    return np.unique(centroids)


def _skip_reason(value, clusters: int) -> str:
    """Why a layer's weight stays as it is ("" when it is clustered)."""
    data = value.data
    if data.size < MIN_ELEMENTS:
        return f"{data.size} elements, fewer than {MIN_ELEMENTS}"
    k = min(clusters, distinct(data))
    if not palette_smaller(data.size, data.itemsize, k):
        return (f"a palette of {k} {value.dtype} values with {palette_bits(k)}-bit indices is "
                f"not smaller than the dense {value.dtype} data")
    return ""


def _zero(graph, layer):
    """The stored value that means real 0 (the zero point of an integer weight), or None
    when per-channel zero points differ."""
    zps = zero_points(graph, layer)
    if zps is None:
        return 0.0
    return int(zps[0]) if np.all(zps == zps[0]) else None


def _cluster_layer(graph, layer, clusters: int) -> ClusterLayer:
    value = graph.values[layer.weight]
    data = np.asarray(value.data)
    before = distinct(data)
    row = ClusterLayer(layer.name, layer.op, layer.weight, tuple(data.shape), layer.dtype,
                       before, before, 0, math.inf, skipped=_skip_reason(value, clusters))
    if row.skipped:
        return row
    if before > clusters:
        zero = _zero(graph, layer)
        zeros = 0 if zero is None else int(np.count_nonzero(data == zero))
        pruned = value.storage is not None and value.storage.kind == "sparse"
        row.zeros_kept = zeros > 0 and (pruned or zeros >= PRUNED_ZEROS * data.size)
        centroids = kmeans_1d(data, clusters, fixed=zero if row.zeros_kept else None,
                              integer=layer.quantized)
        if not layer.quantized:  # in the weight's dtype, and no -0.0 beside 0.0
            centroids = np.unique(centroids.astype(data.dtype) + data.dtype.type(0))
        new = centroids[nearest(data, centroids)].astype(data.dtype).reshape(data.shape)
        row.sqnr_db = weight_sqnr_db(_real(graph, layer, data), _real(graph, layer, new))
        value.data = new
    row.values = distinct(value.data)
    row.bits = palette_bits(row.values)
    value.storage = WeightStorage("palette", row.bits)
    return row


def _real(graph, layer, data: np.ndarray) -> np.ndarray:
    """The weight's real values (float64): integer weights dequantized with their scales
    and zero points (on the value, or on the DequantizeLinear that reads it)."""
    data = np.asarray(data, np.float64)
    if not layer.quantized:
        return data
    value = graph.values[layer.weight]
    scales, zps, axis = None, zero_points(graph, layer), None
    if value.quant is not None:
        scales, axis = np.asarray(value.quant.scales, np.float64), value.quant.axis
    elif layer.dequantize is not None:
        node = next(n for n in graph.nodes if n.name == layer.dequantize)
        scales = np.asarray(graph.values[node.inputs[1]].data, np.float64).ravel()
        axis = int(node.attrs.get("axis", 1))
    if scales is None:
        return data - zps[0]
    if scales.size == 1:
        return (data - zps.ravel()[0]) * scales[0]
    axis = axis + data.ndim if axis < 0 else axis
    shape = [1] * data.ndim
    shape[axis] = -1
    return (data - zps.reshape(shape)) * scales.reshape(shape)


def _summary(clusters: int, rows: list) -> str:
    done = [r for r in rows if not r.skipped]
    text = f"k-means, {clusters} clusters: {len(done)} of {len(rows)} layers"
    finite = [r for r in done if math.isfinite(r.sqnr_db)]
    if finite:
        worst = min(finite, key=lambda r: r.sqnr_db)
        text += f", weight SQNR min {worst.sqnr_db:.1f} dB ({worst.name})"
    kept = [r.name for r in rows if r.skipped]
    if kept:
        text += f"; {len(kept)} kept as they are"
    return text


def format_table(rows: list) -> str:
    """The per-layer report as text: layer, shape, values before -> after, bits, SQNR."""
    lines = [f"  {'layer':40s} {'shape':>14s} {'dtype':>7s} {'values':>11s} {'bits':>4s} "
             f"{'SQNR dB':>7s}  note"]
    for r in rows:
        sqnr = "exact" if math.isinf(r.sqnr_db) else f"{r.sqnr_db:.1f}"
        vals = f"{r.values_before}->{r.values}" if not r.skipped else f"{r.values_before}"
        note = r.skipped or ("zeros kept" if r.zeros_kept else "")
        lines.append(f"  {r.name[-40:]:40s} {'x'.join(map(str, r.shape)):>14s} {r.dtype:>7s} "
                     f"{vals:>11s} {r.bits or '-':>4} {sqnr if not r.skipped else '-':>7s}  {note}")
    return "\n".join(lines)


__all__ = ["cluster", "ClusterLayer", "kmeans_1d", "nearest", "palette_bits", "distinct",
           "format_table"]
