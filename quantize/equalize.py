"""Cross-layer equalization (CLE): even out per-channel weight ranges before quantizing.

Why: after BatchNorm folding, the output channels of a layer (a depthwise conv above
all) can have weight ranges that differ by orders of magnitude. One int8 scale per
tensor then leaves the small channels with a handful of levels or none: per-tensor
int8 MobileNetV2 falls to chance. Nagel et al. 2019 ("Data-Free Quantization", as
AIMET implements it) move the range between consecutive layers without changing
the float function.

Rule: for layers A -> act -> B where act is positive-homogeneous
(act(x / s) = act(x) / s for s > 0: none, Relu, LeakyRelu, and channel-wise
Max/AveragePool, Identity, ReduceMean/Max/Sum over spatial axes, a Flatten/Reshape of
(N, C, 1, 1) to (N, C)), output
channel i of A (weights and bias) is divided by s_i and the weights of B that read
input channel i are multiplied by s_i. With r1_i = max |W_A[i]| and r2_i =
max |W_B[:, i]|, s_i = sqrt(r1_i * r2_i) / r2_i gives both the range
sqrt(r1_i * r2_i). A Conv1x1 -> DW -> Conv1x1 chain is two pairs sharing the
depthwise layer, so the scales are iterated to convergence.

Algorithm:
1. Find pairs: A is a Conv/Gemm with a constant float weight (constant or no bias,
   no fused residual) whose output is read only by B (a Conv/Gemm with a constant
   float weight), possibly through a chain of the ops above, each the only reader of
   its input and no graph output (a clustered weight, storage "palette", is no layer
   here: per-channel scales would multiply its K values). Grouped/depthwise B: input channel c belongs to
   group c // (C/g) and is column c % (C/g) of that group's output rows.
2. Iterate over the pairs in float64 until every scale is within `tol` of 1.
3. Write the new weights as new constants (`<name>_eq`); the old ones go if unused.

ReLU6 (a fused or standalone Clip(0, b), b finite) is not positive-homogeneous:
clip(x / s, 0, b) != clip(x, 0, b) / s. `relu6="skip"` (the default of `equalize`)
leaves those pairs alone: the graph stays output-equivalent, but MobileNetV2's
Conv -> ReLU6 -> DW -> ReLU6 blocks are not equalized. `relu6="relu"` (AIMET's choice)
rewrites every such Clip into Relu and equalizes the pair: the graph then computes the
ReLU model, which differs wherever a pre-activation exceeds b (on a net whose ReLU6
clips often that destroys it: -19.6 dB logit SQNR on the test's variant). A set of
node names rewrites only those. The quantizer uses `equalize_for_quantization`, which
rewrites a ReLU6 only where the calibration data show it (almost) never clipping and
records the rewritten nodes in the model's metadata (`replay` redoes the same
equalization from it, for the debugger). Numbers: docs/quantization.md ("Equalization
and bias correction"). High-bias absorption is not done.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mobconv.errors import MobconvError, UsageError
from mobconv.passes._util import attrs_of, const

LAYERS = ("Conv", "Gemm")
# single-input ops through which an output-channel scale passes unchanged (f(x/s) = f(x)/s)
HOMOGENEOUS = ("Relu", "LeakyRelu", "Identity", "MaxPool", "GlobalMaxPool", "AveragePool",
               "GlobalAveragePool")
# reductions that commute with a positive per-channel scale (axes input, opset 18 form)
REDUCTIONS = ("ReduceMean", "ReduceMax", "ReduceSum")
RELU6_MODES = ("relu", "skip")
RELU6_KEY = "equalize_relu6"  # metadata key: which ReLU6 nodes the quantizer rewrote


@dataclass(frozen=True)
class Pair:
    """Two layers equalized together: `first`'s output channels feed `second`'s input channels."""

    first: str  # node names
    second: str
    through: tuple = ()  # names of the nodes between them
    clips: tuple = ()  # names of the nodes whose Clip(0, b) becomes Relu (relu6="relu")


@dataclass
class EqualizeInfo:
    """What `equalize` did: the pairs, iterations, ReLU6 rewrites and range spreads."""

    pairs: list = field(default_factory=list)
    iterations: int = 0
    relu6_rewritten: list = field(default_factory=list)  # node names
    spread_before: dict = field(default_factory=dict)  # layer name -> spread
    spread_after: dict = field(default_factory=dict)
    # set by equalize_for_quantization:
    reason: str = ""  # why on or off
    clip_activity: dict = field(default_factory=dict)  # ReLU6 node -> fraction at the bound
    relu6_kept: list = field(default_factory=list)  # ReLU6 left alone (clipping on the data)
    float_sqnr_db: Optional[float] = None  # equalized float vs original, when ReLU6 was rewritten

    def metadata(self) -> dict:
        """The quantized model's metadata keys (under `quantization.`) that let `replay`
        redo this equalization: equalize = true/false, equalize_relu6 = JSON list of the
        nodes whose ReLU6 became Relu."""
        if not self.pairs:
            return {"equalize": "false"}
        return {"equalize": "true", RELU6_KEY: json.dumps(sorted(self.relu6_rewritten))}


# ---- weights seen per channel -------------------------------------------------------

def _layer_ok(graph, node) -> bool:
    """A Conv/Gemm whose weight is a float constant (not quantized, not a palette) and bias
    constant or absent."""
    if node.op not in LAYERS or len(node.outputs) != 1 or len(node.inputs) < 2:
        return False
    w = const(graph, node.inputs[1])
    if w is None or w.dtype.kind != "f" or graph.values[node.inputs[1]].quant is not None:
        return False
    storage = graph.values[node.inputs[1]].storage
    if storage is not None and storage.kind == "palette":  # scaling channels breaks the palette
        return False
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    if bias and (const(graph, bias) is None or graph.values[bias].quant is not None):
        return False
    if node.op == "Gemm":
        attrs = attrs_of(node)
        return w.ndim == 2 and not attrs["transA"]
    return w.ndim >= 3


def _out_view(node, w: np.ndarray) -> np.ndarray:
    """Weights as (output channels, rest): a view, so scaling it scales w."""
    if node.op == "Gemm" and not attrs_of(node)["transB"]:
        return w.T  # (K, N) -> (N, K)
    return w.reshape(w.shape[0], -1)


def _in_view(node, w: np.ndarray) -> np.ndarray:
    """Weights as (groups, rows, input channels per group, rest) for input-channel scaling."""
    if node.op == "Gemm":
        m = w if attrs_of(node)["transB"] else w.T  # (N, K)
        return m.reshape(1, m.shape[0], m.shape[1], 1)
    g = attrs_of(node)["group"]
    return w.reshape(g, w.shape[0] // g, w.shape[1], -1)


def _in_channels(node, w: np.ndarray) -> int:
    v = _in_view(node, w)
    return v.shape[0] * v.shape[2]


def out_channel_ranges(node, w: np.ndarray) -> np.ndarray:
    """max |w| per output channel of a Conv/Gemm weight."""
    return np.abs(_out_view(node, w)).max(axis=1)


def _in_channel_ranges(node, w: np.ndarray) -> np.ndarray:
    return np.abs(_in_view(node, w)).max(axis=(1, 3)).reshape(-1)


def range_spread(ranges: np.ndarray) -> float:
    """Spread of per-channel weight ranges: max / median over the non-zero channels (1 = even).

    With one int8 scale per tensor, a channel of range r gets 127 * r / max levels: the
    median channel keeps 127 / spread of them."""
    nz = ranges[ranges > 0]
    return float(nz.max() / np.median(nz)) if nz.size else 1.0


def weight_range_spread(graph) -> dict:
    """Layer name -> `range_spread` of its weight's output channels, for every float Conv/Gemm."""
    return {n.name: range_spread(out_channel_ranges(n, const(graph, n.inputs[1])))
            for n in graph.nodes if _layer_ok(graph, n)}


# ---- finding pairs --------------------------------------------------------------------

def _clip_bounds(graph, node):
    """(lo, hi) of a standalone Clip with constant (or absent) bounds, else None."""
    bounds = []
    for i, default in ((1, -math.inf), (2, math.inf)):
        name = node.inputs[i] if len(node.inputs) > i else ""
        data = const(graph, name) if name else np.array(default)
        if data is None or data.size != 1:
            return None
        bounds.append(float(data.reshape(-1)[0]))
    return tuple(bounds)


def _activation_kind(bounds) -> Optional[str]:
    """'homogeneous' for (0, inf) or (-inf, inf), 'relu6' for (0, finite), else None."""
    lo, hi = bounds
    if hi == math.inf and lo in (0.0, -math.inf):
        return "homogeneous"
    if lo == 0.0 and math.isfinite(hi) and hi > 0:
        return "relu6"
    return None


def _fused_kind(node) -> Optional[str]:
    attrs = attrs_of(node)
    act = attrs.get("activation", "")
    if act in ("", "Relu", "LeakyRelu"):
        return "homogeneous"
    if act == "Clip":
        return _activation_kind(tuple(attrs["activation_params"]))
    return None


def _passes_channels(graph, node) -> Optional[str]:
    """How a node between two layers treats a per-channel scale: 'homogeneous', 'relu6' or None."""
    if len(node.outputs) != 1 or not node.inputs or not node.inputs[0]:
        return None
    if node.op in HOMOGENEOUS:
        return "homogeneous" if len([i for i in node.inputs if i]) == 1 else None
    if node.op == "Clip":
        bounds = _clip_bounds(graph, node)
        return None if bounds is None else _activation_kind(bounds)
    if node.op in REDUCTIONS:  # over spatial axes only: channel c stays at index 1
        x = graph.values[node.inputs[0]].shape
        axes = const(graph, node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
        if x is None or axes is None or axes.size == 0:
            return None
        axes = {int(a) + len(x) if int(a) < 0 else int(a) for a in axes.reshape(-1)}
        return "homogeneous" if min(axes) >= 2 else None
    if node.op in ("Flatten", "Reshape"):  # (N, C, 1, ..., 1) -> (N, C) keeps channel c at c
        x, y = graph.values[node.inputs[0]].shape, graph.values[node.outputs[0]].shape
        if x is None or y is None or len(x) < 2 or len(y) != 2 or any(d != 1 for d in x[2:]):
            return None
        return "homogeneous" if isinstance(x[1], int) and x[1] == y[1] else None
    return None


def _may_rewrite(relu6, clips) -> bool:
    if isinstance(relu6, str):
        return relu6 == "relu"
    return all(name in relu6 for name in clips)


def find_pairs(graph, relu6="skip") -> list:
    """The (first, second) layer pairs CLE may scale, in graph order (see the module docstring).

    relu6: "relu" (rewrite any Clip(0, b) on the way to Relu), "skip" (leave such pairs
    alone), or a collection of the node names whose Clip may be rewritten."""
    if isinstance(relu6, str) and relu6 not in RELU6_MODES:
        raise UsageError(f"equalize: relu6 must be one of {', '.join(RELU6_MODES)} or a set of "
                         f"node names, got {relu6!r}")
    if not isinstance(relu6, str):
        relu6 = frozenset(relu6)
    readers: dict = {}
    for node in graph.nodes:
        for name in node.inputs:
            if name:
                readers.setdefault(name, []).append(node)
    outputs = set(graph.outputs)

    def only_reader(name):
        found = readers.get(name, [])
        return found[0] if len(found) == 1 and name not in outputs else None

    pairs = []
    for first in graph.nodes:
        if not _layer_ok(graph, first) or (len(first.inputs) > 3 and first.inputs[3]):
            continue
        kinds = [_fused_kind(first)]
        clips = [first.name] if kinds[0] == "relu6" else []
        through = []
        node = only_reader(first.outputs[0])
        while node is not None and node.op not in LAYERS:
            kind = _passes_channels(graph, node)
            if kind is None or node.inputs[0] != (through[-1].outputs[0] if through
                                                  else first.outputs[0]):
                node = None
                break
            kinds.append(kind)
            if kind == "relu6":
                clips.append(node.name)
            through.append(node)
            node = only_reader(node.outputs[0])
        if node is None or None in kinds or (clips and not _may_rewrite(relu6, clips)):
            continue
        if not _layer_ok(graph, node) or node.inputs[1] == (through[-1].outputs[0] if through
                                                             else first.outputs[0]):
            continue
        w1, w2 = const(graph, first.inputs[1]), const(graph, node.inputs[1])
        if _out_view(first, w1).shape[0] != _in_channels(node, w2):
            continue
        if not _bias_per_channel(graph, first, _out_view(first, w1).shape[0]):
            continue
        pairs.append(Pair(first.name, node.name, tuple(n.name for n in through), tuple(clips)))
    return pairs


def _bias_per_channel(graph, node, m: int) -> bool:
    """The bias is absent or broadcasts along the output channels only (Gemm C may be (1, N))."""
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    if not bias:
        return True
    b = const(graph, bias)
    return b.size in (1, m) and (b.ndim <= 1 or b.shape[-1] == b.size)


# ---- the rewrite ----------------------------------------------------------------------

def equalize(graph, *, relu6="skip", max_iter: int = 100, tol: float = 1e-6):
    """Cross-layer equalized copy of `graph` (the input is not modified); with the default
    relu6="skip" its outputs equal the input's up to float32 rounding."""
    return equalize_with_info(graph, relu6=relu6, max_iter=max_iter, tol=tol)[0]


def equalize_with_info(graph, *, relu6="skip", max_iter: int = 100, tol: float = 1e-6):
    """(equalized copy of `graph`, EqualizeInfo)."""
    out = graph.copy()
    pairs = find_pairs(out, relu6=relu6)
    info = EqualizeInfo(pairs=pairs, spread_before=weight_range_spread(out))
    if not pairs:
        info.spread_after = dict(info.spread_before)
        return out, info
    nodes = {n.name: n for n in out.nodes}
    weights, biases = {}, {}
    for name in {p.first for p in pairs} | {p.second for p in pairs}:
        node = nodes[name]
        weights[name] = const(out, node.inputs[1]).astype(np.float64)
    for pair in pairs:
        node = nodes[pair.first]
        m = _out_view(node, weights[pair.first]).shape[0]
        bias = node.inputs[2] if len(node.inputs) > 2 else ""
        if bias:
            b = const(out, bias).astype(np.float64).reshape(-1)
            biases[pair.first] = np.broadcast_to(b, (m,)).copy()

    for it in range(1, max_iter + 1):
        info.iterations = it
        worst = 0.0
        for pair in pairs:
            a, b = nodes[pair.first], nodes[pair.second]
            r1 = out_channel_ranges(a, weights[pair.first])
            r2 = _in_channel_ranges(b, weights[pair.second])
            ok = (r1 > 1e-30) & (r2 > 1e-30) & np.isfinite(r1) & np.isfinite(r2)
            s = np.ones_like(r1)
            s[ok] = np.sqrt(r1[ok] * r2[ok]) / r2[ok]
            _out_view(a, weights[pair.first])[...] /= s[:, None]
            if pair.first in biases:
                biases[pair.first] /= s
            view = _in_view(b, weights[pair.second])
            view *= s.reshape(view.shape[0], 1, view.shape[2], 1)
            worst = max(worst, float(np.abs(np.log(s)).max()))
        if worst < tol:
            break

    for name, w in weights.items():
        node = nodes[name]
        old = out.values[node.inputs[1]]
        node.inputs[1] = _new_constant(out, f"{node.inputs[1]}_eq", w.astype(old.data.dtype))
        out.values[node.inputs[1]].storage = old.storage  # "sparse": scaled zeros stay zeros
    for name, b in biases.items():
        node = nodes[name]
        old = out.values[node.inputs[2]].data
        node.inputs[2] = _new_constant(out, f"{node.inputs[2]}_eq", b.astype(old.dtype))
    for pair in pairs:
        for name in pair.clips:
            _clip_to_relu(nodes[name])
            info.relu6_rewritten.append(name)
    out.remove_unused_values()
    info.spread_after = weight_range_spread(out)
    return out, info


def _new_constant(graph, base: str, data: np.ndarray) -> str:
    name = graph.unique_name(base)
    graph.add_constant(name, data)
    return name


def _clip_to_relu(node) -> None:
    if node.op == "Clip":
        node.op, node.inputs, node.attrs = "Relu", node.inputs[:1], {}
    else:
        node.attrs["activation"], node.attrs["activation_params"] = "Relu", []


# ---- when and how the quantizer uses it -------------------------------------------------

# `equalize=None` turns CLE on when a layer of an equalizable pair has a per-channel weight
# range spread (max / median) above this: with one scale per tensor the median channel then
# keeps fewer than 127 / 4 = 32 levels; with one per channel the weights do not care, but the
# activations between the layers carry the same spread into one per-tensor scale, which only
# matters when it is large. Measured (docs/quantization.md): on the trained digits nets
# (max pair spread 1.6-2.3) CLE moves logit SQNR by -0.6..+0.5 dB (-0.07..+0.2 with bias
# correction); on the BN-folded failure case (spread 48) it gains 22-25 dB.
SPREAD_PER_TENSOR = 4.0
SPREAD_PER_CHANNEL = 8.0


def should_equalize(graph, *, per_tensor: bool) -> bool:
    """The quantizer's `equalize=None` ("on where it helps") rule: some layer of a pair CLE
    could equalize has a weight range spread above SPREAD_PER_TENSOR (per-tensor weights)
    or SPREAD_PER_CHANNEL (per-channel weights)."""
    return max_pair_spread(graph) > (SPREAD_PER_TENSOR if per_tensor else SPREAD_PER_CHANNEL)


def max_pair_spread(graph) -> float:
    """The largest `range_spread` among the layers of the pairs CLE could equalize (1 if none)."""
    layers = {name for pair in find_pairs(graph, relu6="relu") for name in (pair.first, pair.second)}
    spread = weight_range_spread(graph)
    return max((spread[name] for name in layers), default=1.0)


def clip_activity(graph, batches, nodes) -> dict:
    """Node name -> fraction of the node's outputs at the upper bound b of its Clip(0, b)
    (fused or standalone) over `batches` (feed dicts), for the `nodes` named."""
    from mobconv.reference.interpreter import run

    bounds = {}
    for node in graph.nodes:
        if node.name not in nodes:
            continue
        if node.op == "Clip":
            bounds[node.name] = _clip_bounds(graph, node)[1]
        else:
            bounds[node.name] = float(attrs_of(node)["activation_params"][1])
    counts = {name: [0, 0] for name in bounds}

    def observer(node, inputs, outputs):
        if node.name in counts:
            y = outputs[0]
            counts[node.name][0] += int(np.count_nonzero(y >= np.float32(bounds[node.name])))
            counts[node.name][1] += int(y.size)

    for feeds in batches:
        run(graph, feeds, observer=observer)
    return {name: (hit / total if total else 0.0) for name, (hit, total) in counts.items()}


def output_sqnr_db(ref: dict, got: dict) -> float:
    """SQNR (dB) of `got` against `ref` over all outputs (inf when equal)."""
    signal = sum(float(np.sum(np.square(ref[k].astype(np.float64)))) for k in ref)
    noise = sum(float(np.sum(np.square(ref[k].astype(np.float64) - got[k]))) for k in ref)
    return math.inf if noise == 0 else 10.0 * math.log10(max(signal, 1e-300) / noise)


def equalize_for_quantization(graph, batches=None, *, per_tensor: bool, force: bool = False,
                              max_clip_fraction: float = 1e-4, min_float_sqnr: float = 40.0,
                              max_samples: int = 64):
    """The quantizer's entry point: (graph to calibrate and quantize, EqualizeInfo).

    `force=False` is `equalize=None` (auto: `should_equalize`); `force=True` is
    `equalize=True`. A ReLU6 on a pair is rewritten to Relu where the calibration data
    (the first `max_samples` samples of `batches`: up to 3 float runs each, a fraction of
    calibration's cost) never reach its upper bound; those
    reaching it on at most `max_clip_fraction` of their outputs are rewritten too if the
    equalized float graph's outputs then stay within `min_float_sqnr` dB of the
    original's (one SQNR over all those samples: `info.float_sqnr_db`, measured either
    way). Other ReLU6 pairs are left alone, and all are without data (`batches=None`; a one-shot reader must not be read
    here, or calibration would miss its first samples). Returns `graph` itself when
    nothing is equalized; `info.metadata()` is what the quantized model should record."""
    info = EqualizeInfo()
    if not force and not should_equalize(graph, per_tensor=per_tensor):
        info.reason = "off: no equalizable pair" if not find_pairs(graph, relu6="relu") else \
            f"off: weight range spread {max_pair_spread(graph):.2g} is small"
        return graph, info
    samples = _take(batches, max_samples) if batches is not None else []
    candidates = {name for pair in find_pairs(graph, relu6="relu") for name in pair.clips}
    activity = clip_activity(graph, samples, candidates) if candidates and samples else {}
    exact = {name for name, frac in activity.items() if frac == 0.0}  # no change on the data
    allowed = {name for name, frac in activity.items() if frac <= max_clip_fraction}
    out, info = equalize_with_info(graph, relu6=allowed)
    if allowed != exact:
        from mobconv.reference.interpreter import run

        sqnr = output_sqnr_db(*_outputs_over(graph, out, samples, run))
        if sqnr < min_float_sqnr:  # the rare clipped values mattered: keep those ReLU6
            allowed = exact
            out, info = equalize_with_info(graph, relu6=allowed)
        info.float_sqnr_db = sqnr
    info.clip_activity = activity
    info.relu6_kept = sorted(candidates - allowed)
    info.reason = "on" + (" (forced)" if force else "")
    return (out if info.pairs else graph), info


def replay(graph, metadata: dict):
    """`graph` equalized as a quantized model's metadata says (`EqualizeInfo.metadata`; keys
    without the `quantization.` prefix): the float graph whose tensors that model's match.
    `graph` itself when the metadata say equalize is off."""
    if metadata.get("equalize") != "true":
        return graph
    try:
        rewritten = json.loads(metadata.get(RELU6_KEY) or "[]")
    except ValueError:
        rewritten = None
    if not isinstance(rewritten, list) or not all(isinstance(n, str) for n in rewritten):
        raise MobconvError(f"quantization.{RELU6_KEY}: expected a JSON list of node names, got "
                           f"{metadata.get(RELU6_KEY)!r}")
    return equalize(graph, relu6=set(rewritten))


def _outputs_over(graph, other, samples, run) -> tuple:
    """Both graphs' outputs on every sample, concatenated per output (for one SQNR over all)."""
    ref, got = {}, {}
    for feeds in samples:
        for target, g in ((ref, graph), (got, other)):
            for name, y in run(g, feeds).items():
                target.setdefault(name, []).append(np.asarray(y, np.float64).reshape(-1))
    return ({k: np.concatenate(v) for k, v in ref.items()}, {k: np.concatenate(v) for k, v in got.items()})


def _take(batches, max_samples: int) -> list:
    """The first batches of `batches` holding at most `max_samples` samples (at least one batch)."""
    taken, seen = [], 0
    for feeds in batches:
        taken.append(feeds)
        first = next(iter(feeds.values()), None)
        seen += int(np.shape(first)[0]) if first is not None and np.ndim(first) else 1
        if seen >= max_samples:
            break
    return taken
