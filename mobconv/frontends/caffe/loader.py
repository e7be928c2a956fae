"""Caffe prototxt (+ caffemodel) -> IR Graph.

Steps:
1. `parser.read_net` reads both files, upgrades old formats, applies the TEST
   phase rules and matches weights to layers by name.
2. Every layer type is checked first: one UnsupportedOpsError lists all the
   types no converter claims, with their layer names.
3. Blob names become SSA values: a blob written by several layers (in-place
   layers such as `ReLU` with top == bottom) gets one IR value per write; the
   last write keeps the blob's own name, so the net's outputs keep the names
   Caffe users know ("prob").
4. Each layer goes through its converter (`layers/`), which emits IR nodes;
   shapes are inferred node by node as they are added.
5. Graph outputs are the blobs no layer reads; signature (NCHW, Caffe's BGR
   order, transform_param mean/scale) and metadata are filled.
6. Input dims are defaults, not contracts (`dynamic.py`): the batch, and H/W
   where the net converts to the same IR at another size, become symbols; the
   declared shapes stay in the metadata ("declared_input_shapes").
"""
from __future__ import annotations

import os
import warnings
from typing import Optional

from ...errors import ConversionError, MobconvError, UsageError
from ...ir import Graph, Preprocessing, check_graph, infer_shapes
from ...limits import check_tensor
from ..base import fill_metadata, fill_signature, format_input_shapes
from .context import LayerContext
from .dynamic import default_symbols, follow_input_sizes
from .layers import REGISTRY
from .parser import read_net


def load_caffe(prototxt, caffemodel=None, input_shapes: Optional[dict] = None,
               random_weights: bool = False, generated_weights: Optional[dict] = None) -> Graph:
    """Convert a Caffe deploy prototxt (+ caffemodel weights) to an IR Graph.

    input_shapes: blob name -> shape, overriding (or supplying) the net's input
    shapes. Without a caffemodel, layers with weights are refused unless
    random_weights is set (seeded random weights; a warning is issued).
    generated_weights: a dict that receives layer name -> [blob arrays in Caffe's
    order] for every layer whose weights were drawn at random (see
    `weights.save_random_caffemodel`, which writes them as a caffemodel).
    """
    prototxt = os.fspath(prototxt)
    caffemodel = os.fspath(caffemodel) if caffemodel is not None else None
    for path in (prototxt, caffemodel):
        if path is not None and not os.path.isfile(path):
            raise MobconvError(f"{path}: no such file")
    net = read_net(prototxt, caffemodel, known_types=REGISTRY.supported())
    REGISTRY.check_supported(prototxt, [(_unsupported_form(layer) or layer.type, layer.name)
                                        for layer in net.layers])

    shapes = {k: tuple(v) for k, v in (input_shapes or {}).items()}
    unknown = sorted(set(shapes) - {name for name, _ in net.inputs})
    if unknown:
        raise UsageError(f"{prototxt}: input_shapes names unknown input(s) {', '.join(unknown)} "
                         f"(net inputs: {', '.join(n for n, _ in net.inputs) or 'none'})")
    if not net.inputs:
        raise ConversionError(f"{prototxt}: the net declares no input (input:, input_shape or an Input layer)")
    generated = {}
    graph, random_used = convert_net(net, _numeric_shapes(prototxt, net, shapes), random_weights, generated)
    if generated_weights is not None:
        generated_weights.update(generated)
    declared = {name: tuple(graph.values[name].shape) for name in graph.inputs}
    symbols = default_symbols(graph, shapes)
    fixed_by = follow_input_sizes(graph, net, symbols, generated, convert_net)
    for name in shapes:
        for axis, symbol in symbols[name].items():
            if graph.values[name].shape[axis] != symbol:
                raise UsageError(
                    f"{prototxt}: input_shapes[{name!r}] names dim {axis} ({symbol!r}), but "
                    f"{fixed_by.get('batch' if axis == 0 else 'spatial', 'the net')} fixes its size "
                    f"to {declared[name][axis]}; give a number")
    for note in net.notes:
        warnings.warn(f"{prototxt}: {note}", stacklevel=2)
    if random_used:
        warnings.warn(f"{prototxt}: no caffemodel given; using seeded random weights "
                      "(the converted model computes nothing meaningful)", stacklevel=2)
    _fill_signature(graph, net)
    _fill_metadata(graph, prototxt, caffemodel, shapes, random_used, net.notes)
    if any(tuple(graph.values[n].shape) != shape for n, shape in declared.items()):
        # the sizes the file declares, kept for the user (mobconv info): dims that
        # follow the input are symbolic now (dynamic.py)
        graph.metadata.options["declared_input_shapes"] = ";".join(
            f"{n}={','.join(str(d) for d in shape)}" for n, shape in declared.items())
    if "spatial" in fixed_by and any(len(s) == 4 for n, s in declared.items() if n not in shapes):
        graph.metadata.options["input_size_fixed_by"] = fixed_by["spatial"]
    if net.fp16_layers:  # mobconv.convert stores the weights as float16 again after the passes
        graph.metadata.options["source_weights"] = "float16"
    return graph


def _numeric_shapes(prototxt, net, shapes: dict) -> dict:
    """User shapes with their named (symbolic) dims replaced by the file's sizes,
    which the net is converted at before those dims become symbols again."""
    declared = dict(net.inputs)
    out = {}
    for name, shape in shapes.items():
        if any(isinstance(d, str) for d in shape):
            base = declared.get(name)
            if base is None or len(base) != len(shape):
                have = "no shape" if base is None else f"shape {tuple(base)}"
                raise UsageError(f"{prototxt}: input_shapes[{name!r}] = {shape} names dims, which take "
                                 f"their size from the file, but it declares {have} for {name!r}; "
                                 "give numbers")
            shape = tuple(b if isinstance(d, str) else d for d, b in zip(shape, base))
        out[name] = shape
    return out


def convert_net(net, shapes: dict, random_weights: bool, generated: dict,
                input_dims: Optional[dict] = None) -> tuple:
    """One conversion of a parsed net: (IR Graph with inferred shapes, random weights used).

    shapes: user-given input shapes; input_dims: input name -> shape used instead of
    the declared one (dynamic.py's probes). `generated` receives the random blobs drawn."""
    prototxt, caffemodel = net.prototxt, net.caffemodel
    graph = Graph(net.name)
    current = {}  # Caffe blob name -> IR value name of its latest write
    for name, shape in net.inputs:
        if not name:
            raise ConversionError(f"{prototxt}: an input of the net has an empty name")
        shape = shapes.get(name, shape)
        if input_dims and name in input_dims:
            shape = input_dims[name]
        if shape is None:
            where = f" (it comes from the {net.input_hints[name]})" if name in net.input_hints else ""
            raise ConversionError(
                f"{prototxt}: the shape of input {name!r} is not declared{where}; give it with "
                f"input_shapes={{'{name}': (1, 3, 224, 224)}} (--input-shape {name}=1,3,224,224)")
        try:
            if name in shapes:
                check_tensor(shape, "float32", f"{prototxt}: input_shapes[{name!r}] = {shape}")
            else:
                check_tensor(shape, "float32", f"{prototxt}: input {name!r} (declared by "
                                               f"{net.input_origins.get(name, 'the net')})")
        except MobconvError as exc:
            raise (UsageError if name in shapes else ConversionError)(str(exc)) from None
        graph.add_input(name, "float32", shape)
        current[name] = name

    last_writer = {}
    for index, layer in enumerate(net.layers):
        for top in layer.tops:
            last_writer[top] = index
    read_after = _blobs_read(net.layers)
    random_used = False
    for index, layer in enumerate(net.layers):
        if "" in layer.bottoms or "" in layer.tops:
            kind = "bottom" if "" in layer.bottoms else "top"
            raise ConversionError(f"{prototxt}: Caffe layer '{layer.name}' (type {layer.type}) has a "
                                  f"{kind} with an empty name")
        missing = [b for b in layer.bottoms if b not in current]
        if missing:
            raise ConversionError(
                f"{prototxt}: Caffe layer '{layer.name}' (type {layer.type}) reads blob(s) "
                f"{', '.join(repr(m) for m in missing)}, which no earlier layer or input produces")
        inputs = [current[b] for b in layer.bottoms]
        outputs = []
        for top in layer.tops:
            final = last_writer[top] == index and top not in graph.values
            outputs.append(top if final else graph.unique_name(f"{top}/{layer.name}"))
        ctx = LayerContext(graph, layer, inputs, outputs, random_weights, prototxt)
        ctx.caffemodel_missing = caffemodel is None
        try:
            REGISTRY.get(layer.type)(ctx)
        except ConversionError as exc:
            message = str(exc)
            raise ConversionError(message if message.startswith(prototxt) else f"{prototxt}: {message}") from None
        for top, value in zip(layer.tops, ctx.outputs):
            if value not in graph.values:
                raise ConversionError(f"{prototxt}: converter of {ctx.where} produced no value for top {top!r}")
            current[top] = value
        random_used = random_used or ctx.random_used
        if ctx.generated:
            blobs = list(layer.blobs)
            for i in sorted(ctx.generated):
                while len(blobs) <= i:
                    blobs.append(None)
                blobs[i] = ctx.generated[i]
            generated[layer.name] = blobs

    # Net outputs: the latest value of every blob that no later layer reads.
    outputs = []
    for index, layer in enumerate(net.layers):
        for top in layer.tops:
            if last_writer[top] == index and (top, index) not in read_after and current[top] not in outputs:
                outputs.append(current[top])
    graph.outputs = outputs
    graph.remove_unused_values()
    try:
        infer_shapes(graph)
        check_graph(graph)
    except MobconvError as exc:
        raise ConversionError(f"{prototxt}: {exc}") from exc
    return graph, random_used


def _unsupported_form(layer) -> Optional[str]:
    """A label (not a registered type, so it is listed as unsupported) for forms of
    supported layer types that mobconv cannot convert, or None."""
    if layer.type == "Pooling" and len(layer.tops) > 1:
        return "Pooling with a max-index mask top (SegNet/ENet unpooling)"
    if layer.type == "Upsample" and len(layer.bottoms) > 1:
        return "Upsample with a pooling-mask bottom (SegNet/ENet max unpooling)"
    if layer.type == "Pooling" and layer.param.pooling_param.pool == layer.param.pooling_param.STOCHASTIC:
        return "Pooling STOCHASTIC"
    return None


def _blobs_read(layers) -> set:
    """(blob, index of its last writer) pairs that some layer reads after that write."""
    writer = {}
    read = set()
    for index, layer in enumerate(layers):
        for b in layer.bottoms:
            if b in writer:
                read.add((b, writer[b]))
        for t in layer.tops:
            writer[t] = index
    return read


def _fill_signature(graph, net) -> None:
    """Signature: NCHW for 4-D inputs and outputs; Caffe's BGR order and the
    transform_param mean/scale as preprocessing (frontends.base.fill_signature)."""
    t = net.transform
    first = graph.values[graph.inputs[0]] if graph.inputs else None
    channels = first.shape[1] if first is not None and len(first.shape) == 4 else None
    mean = list(t.mean_value) if t is not None else []
    if mean and channels and len(mean) == 1:
        mean = mean * channels
    scale = [float(t.scale)] * (channels or 1) if t is not None and t.HasField("scale") else []
    preprocessing = None
    if mean or scale or channels == 3:
        preprocessing = Preprocessing(mean=[float(m) for m in mean], scale=scale,
                                      channel_order="BGR" if channels == 3 else "")
    layouts = {n: "NCHW" for n in graph.outputs if len(graph.values[n].shape) == 4}
    fill_signature(graph, layouts, preprocessing)


def _fill_metadata(graph, prototxt, caffemodel, shapes, random_used, notes=()) -> None:
    options = {"prototxt": os.path.basename(prototxt)}
    if notes:
        options["notes"] = "; ".join(notes)
    if caffemodel is not None:
        options["caffemodel"] = os.path.basename(caffemodel)
    if shapes:
        options["input_shapes"] = format_input_shapes(shapes)
    if random_used:
        options["random_weights"] = "true"
    fill_metadata(graph, "caffe", (prototxt, caffemodel), options)
