"""Caffe's input dims are defaults, not contracts: which dims of a converted net follow the input.

Caffe and OpenCV reshape a net to whatever input it is given: the batch of 10 in
BVLC's AlexNet deploy file, LeNet's 64 or OpenPose's 1x1 placeholder only say
what the author ran. So once a net is converted at its declared input shapes,
the dims it can take at any size become symbolic, and the runtime re-plans for
the input it gets (`Model.run`, `mobconv run`, `mobrt_interpreter_resize_input`).

The rule, decided per net from what its layers convert to:
- two groups of dims: the batch (dim 0 of every input, symbol "N") and the
  spatial size (dims 2 and 3 of every 4-D input, "H" and "W"; per-input names
  "H_<input>" when the 4-D inputs declare different sizes);
- a group is symbolic when converting the net with that group changed (batch + 1;
  height 2H+1 and width 2W+3) gives the same IR: the same nodes with the same
  attributes and the same constants. A layer whose IR depends on the size keeps
  the group fixed: an InnerProduct over a spatial map (its weights are sized
  C*H*W, so they no longer fit), a Reshape with explicit dims, a Crop or Slice
  along H/W (sizes taken from the declared shapes), an Interp, a PriorBox (its
  boxes are constants for one feature-map size);
- dims given by the user (input_shapes / --input-shape) stay as given;
- the symbols must also pass shape inference (every op's shape function takes
  them); if not, the group stays fixed.

Random weights (`--random-weights`) are drawn once, by the first conversion;
the probes reuse them as if they came from a caffemodel, so a weight sized by
the input no longer fits and the probe fails.
"""
from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np

from ...errors import MobconvError
from ...ir import infer_shapes

BATCH = "N"


def default_symbols(graph, user_shapes: dict) -> dict:
    """input -> {axis: symbol} to try: batch "N" on dim 0 of every input, "H"/"W" on
    dims 2, 3 of 4-D inputs (per-input names when inputs declare different sizes);
    for an input in `user_shapes`, only the dims the user wrote as names."""
    declared = {name: tuple(graph.values[name].shape) for name in graph.inputs}
    free = [n for n in declared if n not in user_shapes]
    batch = [n for n in free if len(declared[n]) >= 1]
    spatial = [n for n in free if len(declared[n]) == 4]
    out = {n: {i: d for i, d in enumerate(user_shapes[n]) if isinstance(d, str)}
           for n in declared if n in user_shapes}
    same_batch = len({declared[n][0] for n in batch}) <= 1
    same_size = len({declared[n][2:] for n in spatial}) <= 1
    for n in free:
        out[n] = {}
        if n in batch:
            out[n][0] = BATCH if same_batch else f"{BATCH}_{n}"
        if n in spatial:
            out[n][2], out[n][3] = ("H", "W") if same_size else (f"H_{n}", f"W_{n}")
    return out


def follow_input_sizes(graph, net, symbols: dict, generated: dict, convert) -> dict:
    """Make the input dims of `symbols` (input -> {axis: symbol}) symbolic in `graph`
    (in place) where the net allows it. Returns the groups left fixed ("batch": dim 0,
    "spatial": the other dims) -> what fixes them (a layer, or a rule).

    net: the parsed net (parser.CaffeNet) `graph` was converted from, generated:
    random blobs drawn by that conversion, convert: loader.convert_net."""
    declared = {name: tuple(graph.values[name].shape) for name in graph.inputs}
    probe_net = _with_weights(net, generated)
    groups, fixed_by = [], {}
    for group in ("batch", "spatial"):
        probe = {}
        for name, axes in symbols.items():
            chosen = [a for a in axes if (a == 0) == (group == "batch")]
            if chosen:
                probe[name] = tuple(d if i not in chosen else d + 1 if i == 0 else 2 * d + 1 + 2 * (i % 2)
                                    for i, d in enumerate(declared[name]))  # batch + 1, 2H+1, 2W+3
        if not probe:
            continue
        culprit = _differs_at(graph, probe_net, convert, probe)
        if culprit is None:
            groups.append(group)
        else:
            fixed_by[group] = culprit
    for chosen in (groups, [g for g in groups if g == "batch"], []):
        if _apply(graph, declared, symbols, chosen):
            break
        for group in set(groups) - set(chosen):
            fixed_by.setdefault(group, "shape inference of the symbolic sizes")
    return fixed_by


def _apply(graph, declared, symbols, groups) -> bool:
    """Set the symbols of `groups` on the inputs and infer every shape again; on a
    shape function's refusal restore the declared shapes and return False."""
    if not groups:
        return True

    def wanted(axis):
        return (axis == 0 and "batch" in groups) or (axis > 0 and "spatial" in groups)

    saved = {name: v.shape for name, v in graph.values.items()}
    for name, shape in declared.items():
        axes = symbols.get(name, {})
        graph.values[name].shape = tuple(axes[i] if i in axes and wanted(i) else d
                                         for i, d in enumerate(shape))
    inputs = set(graph.inputs)
    for name, value in graph.values.items():
        if name not in inputs and value.data is None:
            value.shape = None
    try:
        infer_shapes(graph)
        return True
    except MobconvError:
        for name, shape in saved.items():
            graph.values[name].shape = shape
        return False


def _with_weights(net, generated: dict):
    """`net` with the randomly drawn blobs attached as if a caffemodel held them."""
    if not generated:
        return net
    layers = []
    for layer in net.layers:
        blobs = generated.get(layer.name)
        if blobs is not None and all(b is not None for b in blobs):
            layer = dataclasses.replace(layer, blobs=list(blobs), weights_from="(random weights)")
        layers.append(layer)
    return dataclasses.replace(net, layers=layers)


def _differs_at(graph, net, convert, input_dims: dict):
    """None if converting `net` with inputs of `input_dims` gives the IR of `graph`,
    else what differs: "layer 'ip1' (InnerProduct)" or the conversion's error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other, _ = convert(net, {}, False, {}, input_dims=input_dims)
    except MobconvError as exc:
        found = re.search(r"Caffe layer '(.*?)' \(type (\w+)\)", str(exc))
        return f"layer '{found[1]}' ({found[2]})" if found else str(exc).split(": ", 1)[-1]
    except Exception as exc:  # noqa: BLE001 - e.g. a custom layer's converter that only
        # handles the declared size: the net converted there, so keep that size (and say why)
        return f"converting at another size failed ({type(exc).__name__}: {exc})"
    node = first_difference(graph, other)
    if node is None:
        return None
    layers = {layer.name: layer.type for layer in net.layers}
    for name in sorted(layers, key=len, reverse=True):  # node names start with their layer's
        if node == name or node.startswith(name + "/"):
            return f"layer '{name}' ({layers[name]})"
    return f"node {node!r}"


def first_difference(a, b):
    """Name of the first node whose op, inputs, outputs, attributes or constant
    inputs differ between graphs a and b ("" for a difference in the graph's own
    inputs/outputs), or None when they are the same IR."""
    if a.inputs != b.inputs or a.outputs != b.outputs:
        return ""
    for x, y in zip(a.nodes, b.nodes):
        if (x.op, x.name, x.inputs, x.outputs) != (y.op, y.name, y.inputs, y.outputs):
            return x.name
        if x.attrs.keys() != y.attrs.keys() or not all(_equal(x.attrs[k], y.attrs[k]) for k in x.attrs):
            return x.name
        for name in x.inputs:
            va, vb = a.values.get(name), b.values.get(name)
            if va is None or va.data is None:
                continue
            if vb is None or vb.data is None or va.dtype != vb.dtype or not _equal(va.data, vb.data):
                return x.name
    if len(a.nodes) != len(b.nodes):
        return (a.nodes if len(a.nodes) > len(b.nodes) else b.nodes)[min(len(a.nodes), len(b.nodes))].name
    return None


def _equal(x, y) -> bool:
    if x is y:
        return True
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if (x.__array_interface__["data"][0] == y.__array_interface__["data"][0]
                and x.strides == y.strides):  # views of the same weights blob
            return True
        return np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_equal(i, j) for i, j in zip(x, y))
    return type(x) is type(y) and x == y


def declared_input_shapes(graph) -> dict:
    """input -> the shape its Caffe file declares (metadata "declared_input_shapes",
    written when some of its dims became symbolic), else the graph's own shape."""
    shapes = {name: tuple(graph.values[name].shape) for name in graph.inputs}
    entry = graph.metadata.options.get("declared_input_shapes", "")
    for item in filter(None, entry.split(";")):
        name, _, dims = item.rpartition("=")
        if name in shapes:
            shapes[name] = tuple(int(d) for d in dims.split(","))
    return shapes
