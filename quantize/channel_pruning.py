"""`prune_channels()`: structured channel pruning; a smaller dense graph that every kernel runs.

    from mobconv import quantize
    small = quantize.prune_channels(model, 0.3)                      # 30 % of each layer's channels
    small = quantize.prune_channels(model, 0.3, criterion="bn_gamma")  # network slimming
    quantize.channel_pruning.kept_channels(small)  # value -> kept channel indices (distillation)

What, per prunable layer (a Conv or ConvTranspose with group=1, or a Gemm, with a constant
weight; their groups from quantize/_channel_groups.py), with f its fraction:
1. Group: layers whose channels are added together (residual Adds, fused or not) or
   that follow each other channel for channel (depthwise chains, a squeeze-excite scale)
   form one group; a group removes the same channels from every member.
2. Skip groups that cannot or must not change: an excluded member, channels that are a
   graph output (the classifier: the model's interface never changes; naming such a
   layer in per_layer is an error), or fewer than one channel to remove.
   A group whose channels reach a reader that cannot be fixed (a Reshape naming the
   channel count, Shape, Split, Softmax over channels, a grouped conv...) is refused
   with an ArgumentError naming the layer and the rule, unless a member is excluded.
3. Score each channel: criterion "l1" = the L1 norm of the member's output-channel
   weights, "bn_gamma" = |gamma| of the BatchNormalization after the member; each
   member's scores divided by their mean, summed over the group's members. Remove the
   floor(f * C) lowest (at most C - 1: every layer keeps a channel).
4. Compensate: a removed channel of a layer whose weights are zero would still output a
   constant, act(bias + residual) (e.g. relu(b)), carried through the channel-wise ops
   after it. Its contribution is folded into the bias of every layer reading it (Conv:
   sum of the kernel times the constant; Gemm: the rows). So the pruned model equals the
   original with the removed channels' *weights* zeroed (biases kept) -- exactly when
   the readers have no zero padding; a zero-padded conv reading a removed channel is
   exact away from the border (the padding would have seen zeros there, not the
   constant), documented in docs/compression-channels.md.
5. Slice: the members' weights/biases along their output axis (depthwise: also group),
   per-channel constants of element-wise ops and BatchNormalization, the readers' input
   axis (Conv weight axis 1, Gemm rows of the flattened C*H*W columns); re-infer shapes.
Metadata: compression.prune_channels (a summary) and compression.channel_map (JSON: value
name -> kept channel indices, for every value that lost channels), read back by
`kept_channels` and by quantize.distill.channel_map_of (feature losses after pruning).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from mobconv.errors import ArgumentError, MobconvError
from mobconv.ops._fused import apply_activation
from mobconv.ops.registry import get_spec

from ._channel_groups import BINARY, PER_CHANNEL, REDUCE, SPATIAL, UNARY, channel_groups
from ._compress_common import (check_fraction, check_layer_names, check_progress, label,
                               load_model, progress_bar, record, result_model, weight_layers)

FUNC = "prune_channels"
CRITERIA = ("l1", "bn_gamma")
KEPT_KEY = "channel_map"  # the name quantize.distill.channel_map_of reads


def prune_channels(model, fraction=None, *, criterion: str = "l1", per_layer=None,
                   exclude=(), progress=None, source=None):
    """Remove a fraction of the output channels of every prunable layer (see module doc).

    model: a mobconv.Model or a model path (never modified; a new Model is returned).
    fraction: in [0, 1), the share of each layer's output channels removed (None = 0 when
      per_layer is given). per_layer: {layer name: fraction} overriding it; layers in one
      group (residual Add, depthwise chain) must agree.
    criterion: "l1" or "bn_gamma" (|gamma| of the BatchNormalization after each layer:
      from BatchNormalization nodes still in the graph, else from the ONNX source file,
      `source=` or the file the model was converted from, matched by node name).
    exclude: layer names whose channels stay (their whole group stays).
    progress: None = a bar on a terminal; True/False to force.
    """
    model = load_model(model, FUNC)
    where = label(model)
    if fraction is None and per_layer is None:
        raise ArgumentError(f"{FUNC}(): give a fraction (e.g. 0.3) or per_layer fractions")
    fraction = 0.0 if fraction is None else check_fraction(fraction, "fraction", FUNC)
    if criterion not in CRITERIA:
        raise ArgumentError(f"{FUNC}(): criterion must be one of {', '.join(CRITERIA)}, "
                            f"got {criterion!r}")
    layers = weight_layers(model.graph)
    per_layer = _check_per_layer(model, per_layer, layers)
    exclude = set(check_layer_names(model, exclude, "exclude", FUNC, layers))
    progress = check_progress(progress, FUNC)
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise ArgumentError(f"{FUNC}(): source must be the path of the ONNX model, "
                            f"got a {type(source).__name__}")
    _refuse_quantized(model.graph, where)

    graph = model.graph.copy()
    graph.toposort()
    output_shapes = _output_shapes(graph, where)
    groups = channel_groups(graph)
    plan = _plan(groups, fraction, per_layer, exclude, where)
    scores = _scores(model, graph, plan, criterion, source, where)
    keep = {}
    for root, (space, n_remove) in plan.items():
        order = np.argsort(scores[root], kind="stable")
        keep[root] = np.sort(order[n_remove:])
    with progress_bar(progress, len(groups.sinks) + len(keep), "pruning channels") as bar:
        kept_map, notes = _apply(graph, groups, keep, bar)
    _reinfer(graph, output_shapes, where)
    before = sum(space.size for space, _ in plan.values())
    after = sum(len(k) for k in keep.values())
    members = sorted({m[0].name for space, _ in plan.values() for m in space.members})
    record(graph, "prune_channels",
           f"{criterion} {fraction:g}{' + per-layer' if per_layer else ''}: {len(keep)} groups "
           f"({len(members)} layers) {before} -> {after} channels{notes}")
    kept_map = _compose(kept_channels(model), kept_map, graph)
    record(graph, KEPT_KEY, json.dumps({v: [int(i) for i in k] for v, k in kept_map.items()},
                                       separators=(",", ":")))
    result = result_model(model, graph)
    result.channel_map = kept_map
    return result


def kept_channels(model) -> dict:
    """value name -> kept indices (int64, along the channel axis; C*H*W columns after a
    Flatten) of every value that lost channels, from a pruned model's metadata."""
    model = load_model(model, "kept_channels")
    text = model.metadata.extra.get("compression." + KEPT_KEY)
    if not text:
        return {}
    result = {}
    for name, kept in json.loads(text).items():
        result[name] = np.asarray(kept, dtype=np.int64)
    return result


def _compose(before: dict, now: dict, graph) -> dict:
    """The channel map relative to the model before any channel pruning: a model pruned
    twice maps its channels to the original (the teacher) ones."""
    result = {name: kept for name, kept in before.items() if name in graph.values}
    for name, kept in now.items():
        result[name] = before[name][kept] if name in before else kept
    return result


# ---- checks ----------------------------------------------------------------------------


def _check_per_layer(model, per_layer, layers) -> dict:
    if per_layer is None:
        return {}
    if not isinstance(per_layer, dict):
        raise ArgumentError(f"{FUNC}(): per_layer must be a dict of layer name -> fraction, "
                            f"got a {type(per_layer).__name__}")
    check_layer_names(model, list(per_layer), "per_layer", FUNC, layers)
    return {name: check_fraction(f, f"per_layer[{name!r}]", FUNC) for name, f in per_layer.items()}


def _refuse_quantized(graph, where) -> None:
    scheme = graph.metadata.extra.get("quantization.scheme")
    if scheme:
        raise ArgumentError(f"{FUNC}(): {where}: the model is already quantized (scheme "
                            f"{scheme!r}); prune channels on the float model, then quantize")
    for node in graph.nodes:
        if node.op in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear") or any(
                graph.values[n].quant is not None for n in node.inputs if n and n in graph.values):
            raise ArgumentError(f"{FUNC}(): {where}: node {node.name!r} ({node.op}) is quantized; "
                                "prune channels on the float model, then quantize")


# ---- which groups, how many channels ------------------------------------------------------


def _plan(groups, fraction, per_layer, exclude, where) -> dict:
    """root -> (group Space, channels to remove) for the groups that lose channels."""
    plan, refused = {}, []
    for root, space in groups.groups().items():
        names = list(dict.fromkeys(m[0].name for m in space.members))
        asked = {per_layer[n] for n in names if n in per_layer}
        if len(asked) > 1:
            raise ArgumentError(
                f"{FUNC}(): {where}: per_layer gives different fractions to layers "
                f"{', '.join(repr(n) for n in names if n in per_layer)}, which share their "
                "output channels (residual Add or depthwise chain): give them one fraction")
        f = asked.pop() if asked else fraction
        n_remove = min(int(math.floor(f * space.size + 1e-9)), space.size - 1)
        if n_remove <= 0 or any(n in exclude for n in names):
            continue
        if space.outputs:
            if any(n in per_layer for n in names):
                raise ArgumentError(
                    f"{FUNC}(): {where}: layer {names[0]!r}: its output channels are graph output "
                    f"{space.outputs[0]!r}; the model's outputs cannot change")
            continue  # the classifier / a head: kept
        if space.blockers:
            refused.append((names, space.blockers[0]))
            continue
        plan[root] = (space, n_remove)
    if refused:
        raise _refusal(refused, where)
    return plan


def _refusal(refused, where) -> ArgumentError:
    """One line for all the refused groups: the first with its rule, the others by name,
    and the exclude list that prunes the rest (also on the error as `.layers`)."""
    names, reason = refused[0]
    group = f" (with {', '.join(repr(n) for n in names[1:4])}{', ...' if len(names) > 4 else ''})" \
        if len(names) > 1 else ""
    firsts = [n[0] for n, _ in refused]
    more = ""
    if len(refused) > 1:
        shown = ", ".join(repr(n) for n in firsts[1:6])
        more = f"; {len(refused) - 1} more layer(s) refused likewise: {shown}" + (
            ", ..." if len(refused) > 6 else "")
    listed = ", ".join(repr(n) for n in firsts[:6]) + (", ..." if len(firsts) > 6 else "")
    error = ArgumentError(
        f"{FUNC}(): {where}: cannot remove output channels of layer {names[0]!r}{group}: "
        f"{reason}{more}; exclude {'it' if len(firsts) == 1 else 'them'} (exclude=[{listed}])")
    error.layers = firsts
    return error


def _member_weight(graph, node) -> np.ndarray:
    """The member's weight as [channels, ...] (Gemm: one row per output)."""
    w = np.asarray(graph.values[node.inputs[1]].data, dtype=np.float64)
    if node.op == "Gemm" and not get_spec("Gemm").resolve_attrs(node)["transB"]:
        w = w.T
    if node.op == "ConvTranspose":  # [C_in, M, k...]
        w = np.swapaxes(w, 0, 1)
    return w.reshape(w.shape[0], -1)


def _scores(model, graph, plan, criterion, source, where) -> dict:
    gammas = _bn_gammas(model, graph, plan, source, where) if criterion == "bn_gamma" and plan else {}
    scores = {}
    for root, (space, _) in plan.items():
        total = np.zeros(space.size)
        for node, _, offset in space.members:  # offset: where the group's channels start
            if criterion == "bn_gamma" and node.name not in gammas:
                continue  # a member without BatchNormalization: the others decide
            s = gammas[node.name] if criterion == "bn_gamma" else np.abs(_member_weight(graph, node)).sum(1)
            s = s[offset:offset + space.size]
            mean = s.mean()
            total += s / mean if mean > 0 else s
        scores[root] = total
    return scores


def _bn_gammas(model, graph, plan, source, where) -> dict:
    """node name -> |gamma| for the members of the planned groups that have a
    BatchNormalization (see prune_channels doc); a group where none has one is refused."""
    members = {m[0].name: m[0] for space, _ in plan.values() for m in space.members}
    found = {}
    consumers = graph.consumers()
    for name, node in members.items():
        readers = consumers.get(node.outputs[0], [])
        if len(readers) == 1 and readers[0].op == "BatchNormalization" and \
                readers[0].inputs[0] == node.outputs[0]:
            found[name] = graph.values[readers[0].inputs[1]].data
    missing = [n for n in members if n not in found]
    path = None
    if missing:
        path = os.fspath(source) if source is not None else (
            model.source or getattr(model, "compressed_source", None))
        if not path or not str(path).lower().endswith(".onnx"):
            raise ArgumentError(
                f"{FUNC}(): {where}: criterion 'bn_gamma' needs the BatchNormalization scales of "
                f"layer {missing[0]!r}, which conversion folded into its weights; prune the ONNX "
                "source instead (mobconv compress model.onnx ..., or source='model.onnx')")
        onnx_gammas = _onnx_gammas(graph, path, where)
        for name in missing:
            node = members[name]
            weight = node.inputs[1]
            gamma = onnx_gammas.get(name)
            if gamma is None and weight.endswith("_folded"):
                gamma = onnx_gammas.get("weight:" + weight[:-len("_folded")])
            if gamma is not None:
                found[name] = gamma
    for space, _ in plan.values():
        names = [m[0].name for m in space.members]
        if not any(n in found for n in names):
            raise ArgumentError(
                f"{FUNC}(): {where}: criterion 'bn_gamma': layer {names[0]!r} has no "
                f"BatchNormalization after it{' in ' + path if path else ''}; use criterion='l1' "
                "or exclude it")
    for name, gamma in list(found.items()):
        node = members[name]
        w = graph.values[node.inputs[1]].data
        channels = w.shape[1] if (node.op == "Gemm" and not node.attrs.get("transB")) or \
            node.op == "ConvTranspose" else w.shape[0]
        if np.asarray(gamma).size != channels:
            raise ArgumentError(
                f"{FUNC}(): {where}: criterion 'bn_gamma': layer {name!r} has {channels} output "
                f"channels but its BatchNormalization {np.asarray(gamma).size} scales")
        found[name] = np.abs(np.asarray(gamma, dtype=np.float64).reshape(-1))
    return found


def _onnx_gammas(graph, path, where) -> dict:
    """From an ONNX file: node name (as the converter names it) and "weight:<initializer>"
    -> the scale of the BatchNormalization that is the only reader of a Conv/Gemm output."""
    import onnx
    from onnx import numpy_helper

    from mobconv.frontends.base import file_sha256

    if not os.path.isfile(path):
        raise ArgumentError(f"{FUNC}(): {where}: criterion 'bn_gamma': source {path}: no such file")
    expected = graph.metadata.source_sha256
    if expected and file_sha256(path) != expected:
        raise ArgumentError(f"{FUNC}(): {where}: criterion 'bn_gamma': source {path} is not the "
                            "file this model was converted from (sha256 differs)")
    proto = onnx.load(path).graph
    inits = {t.name: t for t in proto.initializer}
    readers: dict = {}
    for node in proto.node:
        for i in node.input:
            readers.setdefault(i, []).append(node)
    result = {}
    for i, node in enumerate(proto.node):
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm") or not node.output:
            continue
        after = readers.get(node.output[0], [])
        if len(after) != 1 or after[0].op_type != "BatchNormalization" or \
                after[0].input[1] not in inits:
            continue
        gamma = numpy_helper.to_array(inits[after[0].input[1]])
        result[node.name or f"{node.op_type}_{i}"] = gamma
        if len(node.input) > 1:
            result["weight:" + node.input[1]] = gamma
    return result


# ---- the rewrite ---------------------------------------------------------------------------


def _apply(graph, groups, keep, bar):
    """Compensate, then slice every member, reader and per-channel constant; returns
    (value -> kept indices for values that lost channels, a note for the metadata)."""
    consts = _removed_constants(graph, groups, keep)
    approx = averaged = uncompensated = 0
    for node, layout in groups.sinks:  # readers first: they use the full-length bias
        bar.advance()
        kept = groups.keep_elements(layout, keep)
        if len(kept) == layout.length:
            continue
        removed = np.setdiff1d(np.arange(layout.length), kept)
        k = consts[node.inputs[0]][removed]
        uncompensated += int(np.isnan(k).sum())
        k = np.nan_to_num(k, nan=0.0)
        if node.op == "Conv":
            approx += int(np.any(k != 0) and _padded(node))
            _shrink_conv_inputs(graph, node, kept, removed, k)
        elif node.op == "ConvTranspose":
            averaged += int(np.any(k != 0) and not _pointwise(graph, node))
            _shrink_conv_transpose_inputs(graph, node, kept, removed, k)
        else:
            _shrink_gemm_inputs(graph, node, kept, removed, k)
    done, by_root = set(), groups.groups()
    for root in keep:
        for node, kind, _ in by_root[root].members:
            if id(node) in done:
                continue
            done.add(id(node))
            _shrink_outputs(graph, node, kind, groups.keep_elements(groups.layouts[node.outputs[0]], keep))
        bar.advance()
    for node, index, axis, layout in groups.constants:
        kept = groups.keep_elements(layout, keep)
        if len(kept) == layout.length:
            continue
        data = graph.values[node.inputs[index]].data
        if data.shape[axis] == layout.length:
            _set_const(graph, node, index, np.take(data, kept, axis=axis))
    for node, layout in groups.sizes:  # Resize to constant sizes: the channel entry
        sizes = np.array(graph.values[node.inputs[3]].data)
        sizes[layout.axis] = len(groups.keep_elements(layout, keep))
        _set_const(graph, node, 3, sizes)
    kept_map = {}
    for name, layout in groups.layouts.items():
        kept = groups.keep_elements(layout, keep)
        if len(kept) != layout.length:
            kept_map[name] = kept
    graph.remove_unused_values()
    notes = ""
    if approx:
        notes += f"; {approx} zero-padded conv(s) compensated away from the border only"
    if averaged:
        notes += f"; {averaged} ConvTranspose(s) compensated by the kernel's mean per output pixel"
    if uncompensated:
        notes += f"; {uncompensated} removed channel(s) not constant, dropped uncompensated"
    return kept_map, notes


def _padded(node) -> bool:
    auto = node.attrs.get("auto_pad", "NOTSET")
    return auto in ("SAME_UPPER", "SAME_LOWER") or any(int(p) for p in node.attrs.get("pads") or ())


def _removed_constants(graph, groups, keep) -> dict:
    """value -> float64 vector along its channel axis: what each channel would be if every
    removed channel's weights were zero (meaningful at the removed positions only; NaN where
    it is not a constant)."""
    k = {}
    for node in groups.order:
        out = node.outputs[0]
        layout = groups.layouts.get(out)
        if layout is None:
            continue
        k[out] = _node_constant(graph, groups, node, layout, k)
    return k


def _probe(vector, rank, axis):
    shape = [1] * rank
    shape[axis] = len(vector)
    return vector.astype(np.float32).reshape(shape)


def _node_constant(graph, groups, node, layout, k) -> np.ndarray:
    op = node.op
    x = node.inputs[0] if node.inputs else ""
    if op in ("Conv", "ConvTranspose"):  # a member: weights zeroed, act(bias + residual)
        pre = np.zeros(layout.length)
        if len(node.inputs) > 2 and node.inputs[2]:
            pre = pre + graph.values[node.inputs[2]].data.astype(np.float64)
        if len(node.inputs) > 3 and node.inputs[3]:
            pre = pre + k.get(node.inputs[3], np.full(layout.length, np.nan))
        return _activate(node, pre)
    if op == "Gemm":
        attrs = get_spec("Gemm").resolve_attrs(node)
        pre = np.zeros(layout.length)
        if len(node.inputs) > 2 and node.inputs[2]:
            c = np.asarray(graph.values[node.inputs[2]].data, dtype=np.float64)
            pre = pre + attrs["beta"] * np.broadcast_to(c, (max(c.shape[0] if c.ndim == 2 else 1, 1),
                                                            layout.length)).mean(0)
        return _activate(node, pre)
    if op in SPATIAL or op in REDUCE or op in ("Transpose", "Squeeze", "Unsqueeze"):
        return k[x]
    if op in ("Flatten", "Reshape"):
        return np.repeat(k[x], layout.length // len(k[x]))
    if op == "Concat":
        parts = [k[i] if i in k else np.zeros(graph.values[i].shape[layout.axis]) for i in node.inputs]
        return np.concatenate(parts)
    if op in UNARY or op in BINARY or op in PER_CHANNEL:
        rank = len(graph.values[node.outputs[0]].shape)
        inputs = []
        for name in node.inputs:
            if not name:
                inputs.append(None)
            elif name in groups.layouts:
                in_layout = groups.layouts[name]
                in_rank = len(graph.values[name].shape)
                inputs.append(_probe(k[name], in_rank, in_layout.axis))
            elif graph.values[name].data is not None and name not in graph.inputs:
                inputs.append(graph.values[name].data)
            else:
                return np.full(layout.length, np.nan)  # a computed tensor: not a constant
        spec = get_spec(op)
        try:
            with np.errstate(all="ignore"):
                y = np.asarray(spec.run_reference(inputs, spec.resolve_attrs(node))[0], dtype=np.float64)
        except (ValueError, TypeError, MobconvError):
            return np.full(layout.length, np.nan)
        y = np.moveaxis(y, layout.axis - (rank - y.ndim), 0) if y.ndim else y.reshape(1)
        y = y.reshape(y.shape[0], -1).mean(1)
        return np.broadcast_to(y, (layout.length,)).copy()
    return np.full(layout.length, np.nan)


def _activate(node, pre) -> np.ndarray:
    act = node.attrs.get("activation", "")
    params = list(node.attrs.get("activation_params") or [])
    return apply_activation(pre.astype(np.float32), act, params).astype(np.float64)


def _set_const(graph, node, index, data) -> None:
    old = graph.values.get(node.inputs[index]) if index < len(node.inputs) and node.inputs[index] else None
    base = old.name if old is not None else f"{node.name}_bias"
    name = graph.unique_name(f"{base}_pruned")
    value = graph.add_constant(name, np.ascontiguousarray(data))
    if old is not None:
        value.storage = old.storage
    while len(node.inputs) <= index:
        node.inputs.append("")
    node.inputs[index] = name


def _dtype(graph, node, index, default):
    """The dtype of the node's constant input `index`, or `default` when it is absent."""
    name = node.inputs[index] if index < len(node.inputs) else ""
    return graph.values[name].data.dtype if name else default


def _bias(graph, node, index, length) -> np.ndarray:
    name = node.inputs[index] if index < len(node.inputs) else ""
    if name:
        return np.asarray(graph.values[name].data, dtype=np.float64)
    return np.zeros(length)


def _shrink_conv_inputs(graph, node, kept, removed, k) -> None:
    w = graph.values[node.inputs[1]].data
    contribution = (w[:, removed].astype(np.float64).reshape(w.shape[0], len(removed), -1).sum(2) @ k)
    if np.any(contribution != 0):
        bias = _bias(graph, node, 2, w.shape[0]) + contribution
        _set_const(graph, node, 2, bias.astype(_dtype(graph, node, 2, w.dtype)))
    _set_const(graph, node, 1, w[:, kept])


def _pointwise(graph, node) -> bool:
    """A ConvTranspose whose every output pixel sees each input pixel's one tap (1x1 kernel,
    stride 1, no padding): a constant input gives a constant output."""
    kernel = graph.values[node.inputs[1]].data.shape[2:]
    strides = node.attrs.get("strides") or ()
    return all(int(d) == 1 for d in tuple(kernel) + tuple(strides)) and not _padded(node)


def _shrink_conv_transpose_inputs(graph, node, kept, removed, k) -> None:
    """Weight [C_in, M/g, k...]: rows go. A constant input channel spreads its kernel over
    the output with the stride's overlap pattern; its mean per output pixel (the kernel's
    sum / prod(strides)) goes into the bias: exact for a pointwise ConvTranspose only."""
    w = graph.values[node.inputs[1]].data
    strides = np.prod([int(s) for s in node.attrs.get("strides") or ()] or [1])
    taps = w[removed].astype(np.float64).reshape(len(removed), w.shape[1], -1).sum(2)
    contribution = (k @ taps) / strides
    if np.any(contribution != 0):
        bias = _bias(graph, node, 2, w.shape[1]) + contribution
        _set_const(graph, node, 2, bias.astype(_dtype(graph, node, 2, w.dtype)))
    _set_const(graph, node, 1, w[kept])


def _shrink_gemm_inputs(graph, node, kept, removed, k) -> None:
    attrs = get_spec("Gemm").resolve_attrs(node)
    b = graph.values[node.inputs[1]].data
    rows = b.T if attrs["transB"] else b  # [K, M]
    contribution = attrs["alpha"] * (k @ rows[removed].astype(np.float64))
    if np.any(contribution != 0):
        if len(node.inputs) > 2 and node.inputs[2] and attrs["beta"] != 0:
            c = np.asarray(graph.values[node.inputs[2]].data, dtype=np.float64)
            c = c + contribution / attrs["beta"]
        else:
            node.attrs["beta"] = 1.0
            c = contribution
        _set_const(graph, node, 2, c.astype(_dtype(graph, node, 2, b.dtype)))
    _set_const(graph, node, 1, b[:, kept] if attrs["transB"] else b[kept])


def _shrink_outputs(graph, node, kind, kept) -> None:
    w = graph.values[node.inputs[1]].data
    if node.op == "Gemm":
        attrs = get_spec("Gemm").resolve_attrs(node)
        m = w.shape[0] if attrs["transB"] else w.shape[1]
        _set_const(graph, node, 1, w[kept] if attrs["transB"] else w[:, kept])
        if len(node.inputs) > 2 and node.inputs[2]:
            c = graph.values[node.inputs[2]].data
            if c.ndim >= 1 and c.shape[-1] == m:
                _set_const(graph, node, 2, c[..., kept])
        return
    _set_const(graph, node, 1, w[:, kept] if node.op == "ConvTranspose" else w[kept])
    if len(node.inputs) > 2 and node.inputs[2]:
        _set_const(graph, node, 2, graph.values[node.inputs[2]].data[kept])
    if kind == "depthwise":
        node.attrs["group"] = int(len(kept))


def _output_shapes(graph, where) -> dict:
    """The graph outputs' shapes before pruning, inferred where the model left them unknown
    (a hand-built graph), so the check after pruning compares like with like."""
    from mobconv.ir.infer import infer_shapes

    try:
        infer_shapes(graph)
    except MobconvError as exc:
        raise MobconvError(f"{FUNC}(): {where}: the model's shapes do not infer: {exc}") from exc
    return {name: graph.values[name].shape for name in graph.outputs}


def _reinfer(graph, output_shapes, where) -> None:
    from mobconv.ir.infer import infer_shapes

    try:
        infer_shapes(graph)
    except MobconvError as exc:  # a bug of ours, not of the user's model: say where
        raise MobconvError(f"{FUNC}(): {where}: the pruned graph does not infer: {exc}") from exc
    for name in list(graph.outputs):
        if graph.values[name].shape != output_shapes[name]:
            raise MobconvError(f"{FUNC}(): {where}: pruning changed graph output {name!r} "
                               f"({output_shapes[name]} -> {graph.values[name].shape})")
