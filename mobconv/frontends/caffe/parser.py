"""Read Caffe files into a flat, upgraded list of layers.

    net = read_net("deploy.prototxt", "weights.caffemodel")
    net.inputs   # [(blob name, shape or None)]
    net.layers   # [CaffeLayer(name, type, bottoms, tops, param, blobs)] in file order

What it takes care of, so converters see one modern form:
- prototxt in protobuf text format (unknown fields, e.g. a fork's extra layer
  parameters, are skipped), caffemodel in binary (no 64 MB limit);
- V1 nets (`layers { type: CONVOLUTION }`) upgraded to `layer { type: "Convolution" }`;
- V0 nets (`layers { layer { type: "conv" kernelsize: 3 } }`, 2014) upgraded the
  same way, their "padding" layers merged into the conv/pool layer they feed;
- old 4-D blob shapes (num/channels/height/width) turned into shapes;
- raw_data blobs (FLOAT16/FLOAT/DOUBLE, OpenCV's `shrinkCaffeModel`) read as float32;
  the layers holding fp16 weights are listed in `net.fp16_layers`;
- weights matched by layer name, from the caffemodel or from blobs inside the
  prototxt (either file may hold them);
- inputs from `input:` + `input_dim:`, `input:` + `input_shape`, and `Input` layers;
- TEST-phase rules (`include`/`exclude` with phase/level/stage) applied; layers
  that only make sense in training (Accuracy, *Loss, Silence) dropped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ...errors import ModelFormatError
from ..base import explain_unparsable
from . import caffe_pb2

# V1 LayerType enum name -> modern type string (Caffe's UpgradeV1LayerType).
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU",
    "SIGMOID": "Sigmoid", "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# Spellings seen in the wild for the same layer (forks, hand-written files).
TYPE_ALIASES = {"Relu": "ReLU", "Inner_Product": "InnerProduct", "FullyConnected": "InnerProduct",
                "Conv": "Convolution", "Deconv": "Deconvolution", "Pool": "Pooling",
                "SoftMax": "Softmax", "Tanh": "TanH", "Concatenate": "Concat"}


def canonical_type(ltype: str, known=()) -> str:
    """Layer type as Caffe spells it: V1 enum names written as strings
    ("CONVOLUTION"), known aliases, and case variants of known types."""
    if ltype in known or ltype in DATA_TYPES:
        return ltype
    if ltype in V1_TYPES:
        return V1_TYPES[ltype]
    if ltype in TYPE_ALIASES:
        return TYPE_ALIASES[ltype]
    folded = {t.lower().replace("_", ""): t for t in list(known) + list(V1_TYPES.values()) + list(DATA_TYPES)}
    return folded.get(ltype.lower().replace("_", ""), ltype)


# Layers that produce the net's input blobs (their first top becomes a graph input).
DATA_TYPES = {"Input", "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData",
              "DummyData", "AnnotatedData", "VideoData"}
# Layers with no role in inference.
TRAINING_ONLY = {"Accuracy", "Silence", "HDF5Output"}


@dataclass
class CaffeLayer:
    name: str
    type: str
    bottoms: list
    tops: list
    param: object  # caffe_pb2.LayerParameter (upgraded to the modern form)
    blobs: list = field(default_factory=list)  # list[np.ndarray], float32
    weights_from: str = ""  # file the blobs came from ("" when none)


@dataclass
class CaffeNet:
    name: str
    inputs: list  # [(blob name, shape tuple or None)]
    layers: list  # [CaffeLayer]
    transform: Optional[object] = None  # TransformationParameter of the data layer, if any
    prototxt: str = ""
    caffemodel: Optional[str] = None
    notes: list = field(default_factory=list)  # what was dropped or assumed, for a warning
    input_hints: dict = field(default_factory=dict)  # input name -> where it comes from
    input_origins: dict = field(default_factory=dict)  # input name -> what declares its shape
    fp16_layers: list = field(default_factory=list)  # layers whose weights are stored as float16


def _data_layer_shapes(lp) -> tuple:
    """(shape or None per top, hint) for a data layer: what the prototxt declares.
    Training sources (Data, ImageData, HDF5Data, Python) get batch 1."""
    ltype, tops = lp.type, list(lp.top)
    crop = lp.transform_param.crop_size if lp.HasField("transform_param") else 0
    if ltype == "Input":
        shapes = [tuple(int(d) for d in s.dim) for s in lp.input_param.shape]
        if len(shapes) == 1:
            shapes = shapes * len(tops)
        return (shapes + [None] * len(tops))[:len(tops)], ""
    if ltype == "DummyData":
        p = lp.dummy_data_param
        if p.shape:
            shapes = [tuple(int(d) for d in s.dim) for s in p.shape]
        else:
            shapes = [tuple(int(v) for v in dims) for dims in zip(p.num, p.channels, p.height, p.width)]
        if len(shapes) == 1:
            shapes = shapes * len(tops)
        return (shapes + [None] * len(tops))[:len(tops)], ""
    first = None
    hint = f"{ltype} layer '{lp.name}'"
    if ltype == "MemoryData":
        p = lp.memory_data_param
        if p.channels and p.height and p.width:
            first = (max(int(p.batch_size), 1), int(p.channels), int(p.height), int(p.width))
    elif ltype == "ImageData":
        p = lp.image_data_param
        crop = crop or p.crop_size
        channels = 3 if p.is_color else 1
        if crop:
            first = (1, channels, int(crop), int(crop))
        elif p.new_height and p.new_width:
            first = (1, channels, int(p.new_height), int(p.new_width))
        else:
            hint += f" (images from {p.source!r} at their file size)"
    elif ltype == "Data":
        t = lp.transform_param
        channels = 3 if t.force_color or len(t.mean_value) == 3 else (1 if t.force_gray else None)
        if crop and channels:
            first = (1, channels, int(crop), int(crop))
        else:
            hint += f" (reads {lp.data_param.source or 'a database'!r}" + \
                (f", crop_size {crop}: give data={{1,C,{crop},{crop}}})" if crop else ")")
    elif ltype == "Python":
        hint += f" (Python module {lp.python_param.module!r}, layer {lp.python_param.layer!r})"
    else:
        hint += f" (its shape is not in the prototxt)"
    return [first] + [None] * (len(tops) - 1), hint


# ---- reading files -------------------------------------------------------------


def parse_prototxt(path: str):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read prototxt ({exc.strerror})") from None
    _check_nesting(text, path)
    net = caffe_pb2.NetParameter()
    try:
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise ModelFormatError(f"{path}: not a valid Caffe prototxt ({_one_line(exc)})") from None
    except RecursionError:  # _check_nesting should have stopped this first
        raise ModelFormatError(f"{path}: not a valid Caffe prototxt (nested too deeply)") from None
    return net


# Deepest message nesting accepted in a prototxt (protobuf's own text parser stops at
# 100 too); Caffe's messages nest a few levels (layer > param > filler).
MAX_NESTING = 100


def _check_nesting(text: str, path: str) -> None:
    """Refuse a prototxt nesting messages deeper than MAX_NESTING before parsing it
    (the parser recurses once per level and would hit Python's recursion limit)."""
    depth, line, quote, i, n = 0, 1, None, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            quote = None  # strings do not span lines
        elif quote is not None:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "{<":
            depth += 1
            if depth > MAX_NESTING:
                raise ModelFormatError(f"{path}: not a valid Caffe prototxt (line {line}: messages "
                                       f"nested more than {MAX_NESTING} levels deep)")
        elif c in "}>":
            depth -= 1
        i += 1


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def parse_caffemodel(path: str):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read caffemodel ({exc.strerror})") from None
    reason = explain_unparsable(path, data, "caffemodel", parsed=True)
    if reason:
        raise ModelFormatError(reason)
    net = caffe_pb2.NetParameter()
    try:
        # The upb runtime has no total-size limit (the old C++ runtime stopped at
        # 64 MB unless told otherwise), so large caffemodels parse as they are.
        net.ParseFromString(data)
    except DecodeError as exc:
        hint = "; it looks like a text prototxt" if data[:200].lstrip().startswith((b"name", b"layer", b"input")) else ""
        reason = None if hint else explain_unparsable(path, data, "caffemodel")
        raise ModelFormatError(reason or f"{path}: not a valid binary caffemodel ({exc}){hint}") from None
    return net


# ---- upgrades -------------------------------------------------------------------


def upgrade_v1(v1) -> object:
    """V1LayerParameter -> LayerParameter (same parameter messages, string type)."""
    layer = caffe_pb2.LayerParameter()
    layer.name = v1.name
    enum_name = caffe_pb2.V1LayerParameter.LayerType.Name(v1.type)
    layer.type = V1_TYPES.get(enum_name, enum_name)
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.blobs.extend(v1.blobs)
    for fd, value in v1.ListFields():
        if fd.name.endswith("_param") and fd.name in caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name:
            getattr(layer, fd.name).CopyFrom(value)
    return layer


# V0 type string -> V1 enum name (Caffe's UpgradeV0LayerType).
V0_TYPES = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION",
    "data": "DATA", "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA", "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS", "pool": "POOLING",
    "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
}


def upgrade_v0(v1) -> object:
    """V1LayerParameter holding a V0 `layer { ... }` -> LayerParameter
    (Caffe's UpgradeV0LayerParameter: flat V0 fields moved into the parameter
    message of the layer's type; fields the type does not use are ignored)."""
    v0 = v1.layer
    layer = caffe_pb2.LayerParameter()
    layer.name = v0.name or v1.name
    vtype = v0.type
    enum_name = V0_TYPES.get(vtype)
    layer.type = V1_TYPES.get(enum_name, vtype) if enum_name else vtype
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.blobs.extend(v0.blobs if len(v0.blobs) else v1.blobs)
    has = v0.HasField
    if vtype in ("conv", "innerproduct"):
        p = layer.convolution_param if vtype == "conv" else layer.inner_product_param
        if has("num_output"):
            p.num_output = v0.num_output
        if has("biasterm"):
            p.bias_term = v0.biasterm
        if has("weight_filler"):
            p.weight_filler.CopyFrom(v0.weight_filler)
        if has("bias_filler"):
            p.bias_filler.CopyFrom(v0.bias_filler)
    if vtype == "conv":
        p = layer.convolution_param
        if has("pad"):
            p.pad.append(v0.pad)
        if has("kernelsize"):
            p.kernel_size.append(v0.kernelsize)
        if has("stride"):
            p.stride.append(v0.stride)
        if has("group"):
            p.group = v0.group
    elif vtype == "pool":
        p = layer.pooling_param
        for src, dst in (("pad", "pad"), ("kernelsize", "kernel_size"), ("stride", "stride"), ("pool", "pool")):
            if has(src):
                setattr(p, dst, getattr(v0, src))
    elif vtype == "dropout" and has("dropout_ratio"):
        layer.dropout_param.dropout_ratio = v0.dropout_ratio
    elif vtype == "lrn":
        for name in ("local_size", "alpha", "beta", "k"):
            if has(name):
                setattr(layer.lrn_param, name, getattr(v0, name))
    elif vtype == "concat" and has("concat_dim"):
        layer.concat_param.concat_dim = v0.concat_dim
    elif vtype in ("data", "images", "window_data", "hdf5_data"):
        t = layer.transform_param
        if has("cropsize"):
            t.crop_size = v0.cropsize
        if has("mirror"):
            t.mirror = v0.mirror
        if has("scale"):
            t.scale = v0.scale
        if has("meanfile"):
            t.mean_file = v0.meanfile
        if vtype == "data":
            if has("source"):
                layer.data_param.source = v0.source
            if has("batchsize"):
                layer.data_param.batch_size = v0.batchsize
        elif vtype == "images":
            if has("source"):
                layer.image_data_param.source = v0.source
            if has("new_height"):
                layer.image_data_param.new_height = v0.new_height
            if has("new_width"):
                layer.image_data_param.new_width = v0.new_width
        elif vtype == "hdf5_data" and has("source"):
            layer.hdf5_data_param.source = v0.source
    return layer


def merge_v0_padding(layers: list) -> list:
    """Caffe's UpgradeV0PaddingLayers: a V0 "padding" layer feeding a conv (or
    pool) layer becomes that layer's pad, and the layer reads the padding
    layer's bottom instead."""
    padding = {}  # top of a padding layer -> (its bottom, pad)
    kept = []
    for v1 in layers:
        v0 = v1.layer
        if v0.type == "padding":
            if len(v1.bottom) != 1 or len(v1.top) != 1:
                raise ModelFormatError(f"V0 padding layer {v0.name!r} must have one bottom and one top")
            padding[v1.top[0]] = (v1.bottom[0], v0.pad)
            continue
        for i, b in enumerate(v1.bottom):
            if b in padding:
                if v0.type not in ("conv", "pool"):
                    raise ModelFormatError(
                        f"V0 padding layer output {b!r} feeds layer {v0.name!r} of type {v0.type!r}: "
                        "only conv and pool layers take a padding layer's output")
                if len(v1.bottom) != 1:
                    raise ModelFormatError(f"V0 layer {v0.name!r} reads a padding layer but has several bottoms")
                v1 = type(v1).FromString(v1.SerializeToString())
                v1.bottom[i], v1.layer.pad = padding[b]
        kept.append(v1)
    return kept


def is_v0(net) -> bool:
    return any(v1.HasField("layer") for v1 in net.layers)


def all_layers(net, path: str = "") -> list:
    if net.layer and net.layers:
        # Caffe refuses this mix too (UpgradeV1Net: "Refusing to upgrade inconsistent
        # NetParameter input"): silently dropping one list would lose layers.
        raise ModelFormatError(
            f"{path or 'the net'}: mixes {len(net.layers)} V1 'layers {{ ... }}' and "
            f"{len(net.layer)} current 'layer {{ ... }}' definitions (e.g. layers '{net.layers[0].name}' "
            f"and layer '{net.layer[0].name}'); write them all in one format (layer {{ type: \"ReLU\" }})")
    if net.layers:
        if is_v0(net):
            return [upgrade_v0(v1) if v1.HasField("layer") else upgrade_v1(v1)
                    for v1 in merge_v0_padding(list(net.layers))]
        return [upgrade_v1(v1) for v1 in net.layers]
    return list(net.layer)


def blob_to_array(blob) -> np.ndarray:
    """BlobProto -> float32 array with its shape (old 4-D dims honoured)."""
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    elif any((blob.num, blob.channels, blob.height, blob.width)):
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = None
    if blob.HasField("raw_data"):
        data = _raw_blob_data(blob)
    else:
        data = np.asarray(blob.double_data if len(blob.double_data) else blob.data, dtype=np.float32)
    if shape is None:
        shape = (data.size,)
    if int(np.prod(shape)) != data.size:
        raise ValueError(f"blob shape {shape} holds {int(np.prod(shape))} values, data has {data.size}")
    return data.reshape(shape)


# raw_data_type -> little-endian numpy dtype of raw_data (INT/UINT hold no weights)
RAW_DTYPES = {caffe_pb2.BlobProto.DOUBLE: "<f8", caffe_pb2.BlobProto.FLOAT: "<f4",
              caffe_pb2.BlobProto.FLOAT16: "<f2"}


def _raw_blob_data(blob) -> np.ndarray:
    """raw_data (NVIDIA Caffe / OpenCV's shrinkCaffeModel) as float32 values."""
    kind = blob.raw_data_type
    if kind not in RAW_DTYPES:
        name = caffe_pb2.BlobProto.RawType.Name(kind) if kind in caffe_pb2.BlobProto.RawType.values() else kind
        raise ValueError(f"raw_data_type {name} is not a float type (DOUBLE, FLOAT or FLOAT16)")
    itemsize = np.dtype(RAW_DTYPES[kind]).itemsize
    if len(blob.raw_data) % itemsize:
        raise ValueError(f"raw_data holds {len(blob.raw_data)} bytes, not a whole number of "
                         f"{caffe_pb2.BlobProto.RawType.Name(kind)} values ({itemsize} bytes each)")
    return np.frombuffer(blob.raw_data, dtype=RAW_DTYPES[kind]).astype(np.float32)


def is_fp16_blob(blob) -> bool:
    return blob.HasField("raw_data") and blob.raw_data_type == caffe_pb2.BlobProto.FLOAT16


# ---- NetState rules (Caffe's Net::StateMeetsRule) --------------------------------


def _meets_rule(rule, phase=caffe_pb2.TEST, level=0, stages=()) -> bool:
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def in_test_phase(layer) -> bool:
    if layer.HasField("phase") and layer.phase != caffe_pb2.TEST:
        return False
    if layer.include:
        return any(_meets_rule(r) for r in layer.include)
    return not any(_meets_rule(r) for r in layer.exclude)


# ---- the whole net -------------------------------------------------------------


def _net_inputs(net, path) -> list:
    names = list(net.input)
    if not names:
        return []
    if net.input_shape:
        if len(net.input_shape) not in (1, len(names)):
            raise ModelFormatError(
                f"{path}: {len(names)} input(s) but {len(net.input_shape)} input_shape entries")
        shapes = [tuple(int(d) for d in s.dim) for s in net.input_shape]
        if len(shapes) == 1:
            shapes = shapes * len(names)
        return list(zip(names, shapes))
    if net.input_dim:
        dims = [int(d) for d in net.input_dim]
        if len(dims) != 4 * len(names):
            raise ModelFormatError(
                f"{path}: {len(names)} input(s) need {4 * len(names)} input_dim values, got {len(dims)}")
        return [(n, tuple(dims[4 * i:4 * i + 4])) for i, n in enumerate(names)]
    return [(n, None) for n in names]


def _weights_by_name(model, path) -> dict:
    weights = {}
    for layer in all_layers(model, path):
        if layer.blobs:
            weights[layer.name] = layer.blobs
    return weights


def read_net(prototxt: str, caffemodel: Optional[str] = None, known_types=()) -> CaffeNet:
    structure = parse_prototxt(prototxt)
    weights = {}
    if caffemodel is not None:
        weights = _weights_by_name(parse_caffemodel(caffemodel), caffemodel)
    inputs = _net_inputs(structure, prototxt)
    field_name = "input_shape" if structure.input_shape else "input_dim"
    origins = {name: field_name for name, _ in inputs}
    layers, transform, notes, dropped, input_hints, fp16_layers = [], None, [], [], {}, []
    if not structure.layer and is_v0(structure):
        notes.append("V0 net (layers { layer { ... } }) upgraded to the current layer format")
    for lp in all_layers(structure, prototxt):
        if not in_test_phase(lp):
            continue
        ltype = canonical_type(lp.type, known_types)
        if ltype != lp.type:
            notes.append(f"layer '{lp.name}': type {lp.type!r} read as {ltype!r}")
            lp.type = ltype
        if ltype in DATA_TYPES or (ltype == "Python" and not lp.bottom and lp.top):
            shapes, hint = _data_layer_shapes(lp)
            # Input/DummyData: every top is an input; other data layers: the first
            # top (data), not the labels, which only losses and accuracies read.
            keep = len(lp.top) if ltype in ("Input", "DummyData") else 1
            known = {name for name, _ in inputs}
            for top, shape in list(zip(lp.top, shapes))[:keep]:
                if top in known:  # declared twice (input: + an Input layer): first wins
                    continue
                inputs.append((top, shape))
                origins[top] = f"{ltype} layer '{lp.name}'"
                if hint:
                    input_hints[top] = hint
            if ltype != "Input":
                notes.append(f"data layer '{lp.name}' ({ltype}) became input {lp.top[0]!r}"
                             if lp.top else f"data layer '{lp.name}' ({ltype}) has no top; dropped")
            if lp.HasField("transform_param") and transform is None:
                transform = lp.transform_param
            continue
        if ltype in TRAINING_ONLY or ltype.endswith("Loss"):
            dropped.append(f"'{lp.name}' ({ltype})")
            continue
        source, blobs = "", lp.blobs
        if lp.name in weights:
            source, blobs = caffemodel, weights[lp.name]
        elif lp.blobs:
            source = prototxt
        try:
            arrays = [blob_to_array(b) for b in blobs]
            if any(is_fp16_blob(b) for b in blobs):
                fp16_layers.append(lp.name)
        except ValueError as exc:
            raise ModelFormatError(f"{source}: layer {lp.name!r}: {exc}") from None
        layers.append(CaffeLayer(lp.name, ltype, list(lp.bottom), list(lp.top), lp, arrays, source))
    name = structure.name or os.path.splitext(os.path.basename(prototxt))[0]
    if dropped:
        notes.append(f"dropped {len(dropped)} training-only layer(s): {', '.join(dropped)}")
    return CaffeNet(name, inputs, layers, transform, prototxt, caffemodel, notes, input_hints,
                    origins, fp16_layers)
