"""`prune()`: unstructured magnitude pruning of constant weights (docs/compression-pruning.md).

    p = quantize.prune(model, 0.5)                          # half of the prunable weights zero
    p = quantize.prune(model, 0.7, scope="layer")           # every selected layer at 70 %
    p = quantize.prune(model, per_layer={"conv3": 0.8})     # exactly these layers
    p = quantize.prune(model, per_layer=report.propose(0.5))  # from quantize.sensitivity

What: the smallest-magnitude weights of Conv, ConvTranspose, Gemm and MatMul nodes
with a constant weight (float, or int8 with zero points 0) become exactly zero, and
the weight is marked `WeightStorage("sparse")` so the .mob writer stores a bitmask plus
the non-zeros (when that is smaller). The IR data stays dense; the input model is not
modified.

Which layers. per_layer={layer: sparsity} prunes exactly the named layers, as given.
`sparsity` prunes the default selection: every layer except those in `exclude`, in
per_layer, depthwise convolutions (a handful of weights per channel, and each one
matters), the first layer (no weight layer upstream: it sees the raw input and is tiny)
and weights with fewer than `min_params` elements (DEFAULT_MIN_PARAMS); like TF-MOT's
and MNN's advice, these save little and cost the most accuracy. Both may be given.

Algorithm, per weight of n elements pruned to sparsity s: k = floor(s * n + 0.5)
elements with the smallest |w| become 0 (int8: |q - zp| * scale; ties: lower flat index
first). Zeros already there are the smallest, so they count towards k and pruning
again at the same target changes nothing. scope="layer": s per layer. scope="global":
k = floor(s * N + 0.5) over the N weights of all selected layers together, ranked by
|w| / rms(w of its layer): one threshold on per-layer-normalised magnitudes. On the
zoo classifiers this keeps the output SQNR higher than one raw |w| threshold, which
strips whole small-valued layers (docs/compression-pruning.md has the numbers).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import numpy as np

from mobconv.errors import ArgumentError
from mobconv.ir.graph import WeightStorage

from ._compress_common import (PRUNABLE_OPS, check_fraction, check_int, check_layer_names,
                               check_progress, label, load_model, progress_bar, real_magnitude,
                               record, result_model, weight_layers, zero_points)

DEFAULT_MIN_PARAMS = 1024
SCOPES = ("global", "layer")
FUNC = "prune"


def prune(model, sparsity: Optional[float] = None, *, per_layer: Optional[dict] = None,
          scope: str = "global", min_params: int = DEFAULT_MIN_PARAMS, exclude=(),
          progress: Optional[bool] = None):
    """Magnitude-prune `model` (a mobconv.Model or a model path); see the module doc.

    sparsity: target fraction of zeros in [0, 1) over the default selection of layers.
    per_layer: {layer name: sparsity} for exactly these layers (overrides the selection).
    scope: "global" (one threshold on LAMP scores across the selection) or "layer" (each
      selected layer at `sparsity`).
    min_params: layers with fewer weights are left alone by `sparsity` (default 1024).
    exclude: layer names left alone. progress: None = a bar on a terminal.

    Returns a new Model; `result.pruned` maps each pruned layer to its sparsity now.
    Bad options raise ArgumentError (one line) before any work.
    """
    if sparsity is not None:
        sparsity = check_fraction(sparsity, "sparsity", FUNC)
    if per_layer is not None and not isinstance(per_layer, Mapping):
        raise ArgumentError(f"{FUNC}(): per_layer must be a dict {{layer name: sparsity}}, "
                            f"got a {type(per_layer).__name__}")
    per_layer = dict(per_layer or {})
    for name, value in per_layer.items():
        check_fraction(value, f"per_layer[{name!r}]", FUNC)
    if sparsity is None and not per_layer:
        raise ArgumentError(f"{FUNC}(): give a sparsity (e.g. 0.5) or per_layer={{layer: sparsity}}")
    if scope not in SCOPES:
        raise ArgumentError(f"{FUNC}(): scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    min_params = check_int(min_params, "min_params", FUNC, 0)
    check_progress(progress, FUNC)

    model = load_model(model, FUNC)
    layers = weight_layers(model.graph, casts=True)
    exclude = check_layer_names(model, exclude, "exclude", FUNC, layers)
    check_layer_names(model, list(per_layer), "per_layer", FUNC, layers)
    both = [n for n in per_layer if n in exclude]
    if both:
        raise ArgumentError(f"{FUNC}(): {label(model)}: layer {both[0]!r} is both in per_layer "
                            "and in exclude; keep it in one")
    selected = [] if sparsity is None else default_selection(layers, min_params, exclude,
                                                             per_layer)
    if sparsity is not None and not selected and not per_layer:
        raise ArgumentError(f"{FUNC}(): {label(model)}: no layer to prune at sparsity {sparsity:g}: "
                            f"every layer is excluded, depthwise, first or under "
                            f"min_params={min_params} (lower min_params or name layers in "
                            "per_layer)")
    by_name = {layer.name: layer for layer in layers}
    chosen = selected + [by_name[n] for n in per_layer]
    check_weights(model, chosen, FUNC)

    graph = model.graph.copy()
    counts = {layer.name: target_count(sparsity, layer.size) for layer in selected}
    if selected and scope == "global":
        counts = global_counts(graph, selected, sparsity)
    counts.update({name: target_count(s, by_name[name].size) for name, s in per_layer.items()})
    pruned, zeros = {}, 0
    with progress_bar(progress, len(chosen), "pruning") as bar:
        for layer in chosen:
            zero = apply(graph, layer, counts[layer.name])
            pruned[layer.name] = zero / layer.size
            zeros += zero
            bar.advance()

    total = sum(l.size for l in chosen)
    what = (f"{scope} {sparsity:g}" if sparsity is not None else "") + \
        (" + " if sparsity is not None and per_layer else "") + \
        (f"per-layer ({len(per_layer)})" if per_layer else "")
    share = f"{100.0 * zeros / total:.1f}%" if total else "0%"
    record(graph, "prune", f"magnitude, {what}: {zeros}/{total} weights of {len(chosen)} "
                           f"layers zero ({share})")
    result = result_model(model, graph)
    result.pruned = pruned
    return result


def check_weights(model, layers, func: str) -> None:
    """Weights prune can rank and zero: finite values; int8/uint8 with zero points 0 (a
    pruned weight is stored as 0)."""
    for layer in layers:
        data = model.graph.values[layer.weight].data
        if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
            raise ArgumentError(f"{func}(): {label(model)}: layer {layer.name!r}: its weight has "
                                "NaN or infinite values; magnitude pruning needs finite weights")
        zps = zero_points(model.graph, layer)
        if zps is not None and np.any(zps != 0):
            bad = int(zps[zps != 0][0])
            raise ArgumentError(f"{func}(): {label(model)}: layer {layer.name!r}: its {layer.dtype} "
                                f"weight has zero point {bad}, not 0, so zero weights cannot be "
                                "stored sparsely; quantize with symmetric weights (zero point 0) "
                                "or exclude the layer")


def default_selection(layers, min_params: int, exclude=(), per_layer=()) -> list:
    """The layers `sparsity` prunes (see the module doc), in graph order."""
    skip = set(exclude) | set(per_layer)
    return [layer for layer in layers if layer.name not in skip and not layer.depthwise
            and not layer.first and layer.size >= min_params]


def target_count(sparsity: float, n: int) -> int:
    """How many of n weights a sparsity zeroes: floor(s * n + 0.5) (round half up)."""
    return min(int(np.floor(sparsity * n + 0.5)), n)


def smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the k smallest of `scores` (1-D), ties by lower index: the first k
    of a stable argsort, in O(n) (np.partition for the k-th value, then the ties)."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k >= scores.size:
        return np.arange(scores.size)
    kth = np.partition(scores, k - 1)[k - 1]
    below = np.flatnonzero(scores < kth)
    return np.concatenate([below, np.flatnonzero(scores == kth)[:k - below.size]])


def _lamp(mag: np.ndarray) -> np.ndarray:
    """LAMP scores (Lee et al. 2021): w_u^2 / sum of w_v^2 over the v with |w_v| >= |w_u|
    (equal magnitudes, equal scores). Non-decreasing in |w| within the layer."""
    order = np.argsort(mag)
    ranked = mag[order]
    sq = np.square(ranked)
    tail = np.cumsum(sq[::-1])[::-1]  # tail[i] = sum of sq[i:]
    starts = np.ones(ranked.size, dtype=bool)
    starts[1:] = ranked[1:] != ranked[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(ranked.size), 0))  # tie group start
    tail = tail[first]
    score = np.empty_like(mag)
    score[order] = np.divide(sq, tail, out=np.zeros_like(sq), where=tail > 0)
    return score


GLOBAL_SCORES = ("lamp", "rms", "raw")


def global_counts(graph, layers, sparsity: float, score: str = "lamp") -> dict:
    """{layer: k}: the target_count(sparsity, N) smallest scores over all `layers` together,
    counted per layer. score "lamp" (what prune uses), "rms" (|w| / rms of its layer) or
    "raw" (|w|): the other two only for the comparison in benchmarks/prune_scope.py."""
    scores, owner = [], []
    for i, layer in enumerate(layers):
        mag = real_magnitude(graph, layer).ravel()
        if score == "lamp":
            largest = int(np.argmax(mag))
            mag = _lamp(mag)
            mag[largest] = np.inf  # kept last: no layer is emptied (LAMP alone would when
            #                       all its magnitudes are equal: each scores 1/n)
        elif score == "rms" and mag.size and np.any(mag):
            mag = mag / np.sqrt(np.mean(np.square(mag)))
        scores.append(mag)
        owner.append(np.full(mag.size, i, dtype=np.int32))
    scores, owner = np.concatenate(scores), np.concatenate(owner)
    k = target_count(sparsity, scores.size)
    picked = owner[smallest(scores, k)]
    per = np.bincount(picked, minlength=len(layers))
    return {layer.name: int(per[i]) for i, layer in enumerate(layers)}


def apply(graph, layer, k: int) -> int:
    """Zero the k smallest-magnitude elements of the layer's weight (in `graph`, in
    place); mark it sparse. Returns how many elements of the weight are zero now."""
    value = graph.values[layer.weight]
    data = np.array(value.data, copy=True)
    if k > 0:
        flat = data.reshape(-1)
        flat[smallest(real_magnitude(graph, layer).ravel(), k)] = 0
        value.data = data
    zero = int(data.size - np.count_nonzero(data))
    storage = value.storage
    if storage is not None and storage.kind == "palette":
        if np.unique(data).size > 2 ** storage.bits:
            value.storage = WeightStorage("sparse")  # the zero made one value too many
    elif zero:
        value.storage = WeightStorage("sparse")
    return zero


__all__ = ["prune", "default_selection", "target_count", "DEFAULT_MIN_PARAMS", "SCOPES",
           "PRUNABLE_OPS"]
