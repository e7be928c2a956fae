"""ONNX ModelProto -> IR Graph.

Steps:
1. Read the model (path or ModelProto); external data files are loaded from
   the model's directory, a missing one is a ConversionError naming it.
2. Read the default-domain opset (6..28 supported).
3. Check every node's op type first and raise one UnsupportedOpsError listing
   all unsupported types (ops of other domains are named "domain.Op").
4. Initializers become constants (also when listed as graph inputs); the
   remaining graph inputs become IR inputs with dtype/shape from the model,
   symbolic dims kept (dim_param), unknown dims given a generated symbol, and
   `input_shapes` overrides applied.
5. Constant nodes become constants; every other node goes through its
   converter (`converters/`), which translates older opset forms to the IR
   (newest-opset) form.
6. Shapes are inferred (`mobconv.ir.infer_shapes`), then signature and
   metadata are filled.
"""
from __future__ import annotations

import hashlib
import os
from typing import Optional, Union

import numpy as np
import onnx

from ...errors import ConversionError, ModelFormatError, MobconvError, UsageError
from ...ir import Graph, check_graph, infer_shapes
from ...limits import check_tensor
from ..base import explain_unparsable, fill_metadata, fill_signature
from .context import NodeContext
from .tensors import elem_dtype as _elem_dtype, tensor_to_array
from ...ir.symbolic import SymbolicShapes
from .converters import is_supported, load_converters

MIN_OPSET, MAX_OPSET = 6, 28
DEFAULT_DOMAINS = ("", "ai.onnx")
EXTRA_DOMAINS = ("com.microsoft",)  # ops converted when registered as "com.microsoft.Op"


def load_onnx(model: Union[str, os.PathLike, "onnx.ModelProto"], input_shapes: Optional[dict] = None) -> Graph:
    """Convert an ONNX model (file path or ModelProto) to an IR Graph."""
    model, source, raw = _read_model(model)
    _check_names(model, source)
    try:
        return _convert(model, source, raw, input_shapes)
    except MobconvError as exc:
        if str(exc).startswith(source):
            raise
        raise named_error(exc, source) from None


def named_error(exc: MobconvError, source: str) -> MobconvError:
    """`exc` (same type, same exit code) with its message prefixed by the source file."""
    new = type(exc).__new__(type(exc))
    MobconvError.__init__(new, f"{source}: {exc}")
    new.__dict__.update(exc.__dict__)
    return new


def _convert(model, source: str, raw: bytes, input_shapes) -> Graph:
    opset = _default_opset(model, source)
    _check_supported(model, source)
    graph = Graph(model.graph.name or "onnx_graph")
    _add_initializers(graph, model, source)
    _add_inputs(graph, model, source, input_shapes or {})
    _add_value_info(graph, model)
    _convert_nodes(graph, model, opset, source)
    graph.outputs = [o.name for o in model.graph.output]
    for name in graph.outputs:
        if name not in graph.values:
            raise ConversionError(f"{source}: graph output {name!r} is produced by no node")
    try:
        infer_shapes(graph)
        check_graph(graph)
    except ConversionError:
        raise
    except MobconvError as exc:
        raise ConversionError(f"{source}: {exc}") from exc
    fill_signature(graph)
    _fill_metadata(graph, model, opset, raw, input_shapes)
    from ...passes.lower_qdq import mark_imported

    mark_imported(graph)  # a quantized model keeps onnxruntime's requantization rule
    return graph


# ---- reading -------------------------------------------------------------


def _read_model(model):
    if isinstance(model, onnx.ModelProto):
        return model, f"<ModelProto {model.graph.name or 'graph'}>", model.SerializeToString()
    path = os.fspath(model)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ONNX model ({exc.strerror})") from None
    reason = explain_unparsable(path, raw, "ONNX model", parsed=True)
    if reason:
        raise ModelFormatError(reason)
    try:
        proto = onnx.load_from_string(raw)
    except Exception as exc:  # noqa: BLE001 - protobuf raises various errors
        raise ModelFormatError(explain_unparsable(path, raw, "ONNX model")
                               or f"{path}: not a valid ONNX model ({exc})") from None
    _load_external_data(proto, os.path.dirname(os.path.abspath(path)), path)
    return proto, path, raw


def _load_external_data(proto, base_dir: str, source: str) -> None:
    from onnx import external_data_helper as ext

    tensors = [t for t in ext._get_all_tensors(proto) if ext.uses_external_data(t)]
    for t in tensors:
        info = ext.ExternalDataInfo(t)
        location = os.path.join(base_dir, info.location)
        if not os.path.isfile(location):
            raise ConversionError(
                f"{source}: initializer {t.name!r} refers to external data file "
                f"{info.location!r}, which does not exist (looked in {base_dir})"
            )
    if tensors:
        try:
            ext.load_external_data_for_model(proto, base_dir)
        except Exception as exc:  # noqa: BLE001
            raise ConversionError(f"{source}: cannot load external data: {exc}") from None


def _check_names(model, source: str) -> None:
    """Every name and text the conversion reads or copies into the .mob file is
    text: protobuf hands over a string field that is not valid UTF-8 as bytes,
    which no later step expects."""
    def bad(kind, value):
        return ConversionError(f"{source}: {kind} {value!r} is not valid UTF-8 text")

    g = model.graph
    texts = [("graph name", g.name), ("producer name", model.producer_name),
             ("producer version", model.producer_version)]
    texts += [("metadata key", p.key) for p in model.metadata_props]
    texts += [("metadata value", p.value) for p in model.metadata_props]
    texts += [("opset domain", o.domain) for o in model.opset_import]
    for kind, value in texts:
        if not isinstance(value, str):
            raise bad(kind, value)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if not isinstance(vi.name, str):
            raise bad("tensor name", vi.name)
    for t in g.initializer:
        if not isinstance(t.name, str):
            raise bad("initializer name", t.name)
    for i, node in enumerate(g.node):
        for kind, values in (("node name", [node.name]), ("op type", [node.op_type]),
                             ("domain", [node.domain]), ("tensor name", list(node.input) + list(node.output)),
                             ("attribute name", [a.name for a in node.attribute])):
            for value in values:
                if not isinstance(value, str):
                    raise bad(f"node {i}: {kind}", value)


def _default_opset(model, source: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ConversionError(f"{source}: model imports no default-domain ('ai.onnx') opset")
    opset = max(versions)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConversionError(
            f"{source}: ONNX opset {opset} is not supported (supported: {MIN_OPSET}..{MAX_OPSET}); "
            "convert the model with onnx.version_converter first"
        )
    return opset


def op_type_name(node) -> str:
    """The op type as reported to users: "Conv", or "com.microsoft.FusedConv" for other domains."""
    if node.domain in DEFAULT_DOMAINS:
        return node.op_type
    return f"{node.domain}.{node.op_type}"


def _node_names(model) -> list:
    names, seen = [], set()
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        names.append(name)
    return names


def _check_supported(model, source: str) -> None:
    """Every unsupported op type at once (ConverterRegistry.check_supported); ops of
    other domains are named "domain.Op", and are supported only when registered so."""
    load_converters().check_supported(
        source, zip(map(op_type_name, model.graph.node), _node_names(model)), usable=is_supported)


# ---- values --------------------------------------------------------------


def _add_initializers(graph, model, source: str) -> None:
    for t in model.graph.initializer:
        graph.add_constant(t.name, tensor_to_array(t, f"{source}: initializer {t.name!r}"))


def _declared_shape(vi, prefix: str, symbols: dict) -> Optional[tuple]:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            sym = f"{prefix}_dim{i}"
            symbols[sym] = True
            dims.append(sym)
    return tuple(dims)


def _add_inputs(graph, model, source: str, input_shapes: dict) -> None:
    inits = {t.name for t in model.graph.initializer}
    real = [vi for vi in model.graph.input if vi.name not in inits]
    names = [vi.name for vi in real]
    for name in input_shapes:
        if name not in names:
            raise UsageError(
                f"{source}: input_shapes names {name!r}, which is not a graph input "
                f"(inputs: {', '.join(names) or 'none'})"
            )
    for vi in real:
        if not vi.type.HasField("tensor_type"):
            raise ConversionError(f"{source}: graph input {vi.name!r} is not a tensor")
        dtype = _elem_dtype(vi.type.tensor_type.elem_type, f"{source}: graph input {vi.name!r}")
        shape = _declared_shape(vi, vi.name, {})
        if vi.name in input_shapes:
            override = tuple(input_shapes[vi.name])
            if shape is not None and len(override) != len(shape):
                raise UsageError(
                    f"{source}: input_shapes[{vi.name!r}] = {override} has rank {len(override)}, "
                    f"but the model declares rank {len(shape)} {shape}"
                )
            for i, d in enumerate(override):
                if not (isinstance(d, str) or (isinstance(d, (int, np.integer)) and d >= 0)):
                    raise UsageError(
                        f"{source}: input_shapes[{vi.name!r}] = {override}: dim {i} must be a "
                        "non-negative integer or a symbol name"
                    )
                if shape is not None and isinstance(shape[i], int) and shape[i] >= 0 and shape[i] != d:
                    raise UsageError(
                        f"{source}: input_shapes[{vi.name!r}] = {override} conflicts with the "
                        f"model's fixed dim {i} = {shape[i]} (declared {shape})"
                    )
            shape = tuple(int(d) if not isinstance(d, str) else d for d in override)
            try:
                check_tensor(shape, dtype, f"{source}: input_shapes[{vi.name!r}] = {override}")
            except MobconvError as exc:
                raise UsageError(str(exc)) from None
        if shape is None:
            raise ConversionError(
                f"{source}: graph input {vi.name!r} has no declared shape; pass input_shapes="
                f"{{{vi.name!r}: (...)}}"
            )
        try:
            check_tensor(shape, dtype, f"{source}: graph input {vi.name!r}")
        except MobconvError as exc:
            raise ConversionError(f"{exc} (give another shape with input_shapes / --input-shape)") from None
        graph.add_input(vi.name, dtype, shape)


def _add_value_info(graph, model) -> None:
    """Declared intermediate types: a starting point, replaced by inference."""
    for vi in model.graph.value_info:
        if vi.name in graph.values or not vi.type.HasField("tensor_type"):
            continue
        try:
            dtype = _elem_dtype(vi.type.tensor_type.elem_type, vi.name)
        except ConversionError:
            continue
        graph.add_value(vi.name, dtype, _declared_shape(vi, vi.name, {}))


def _constant_node_value(cx) -> np.ndarray:
    attrs = cx.attrs.attrs
    if len(attrs) != 1:
        raise cx.error(f"must have exactly one value attribute, got {', '.join(sorted(attrs)) or 'none'}")
    (key, value), = attrs.items()
    if key == "value":
        array = np.asarray(value)
    elif key == "value_float":
        array = np.asarray(value, dtype=np.float32)
    elif key == "value_floats":
        array = np.asarray(value, dtype=np.float32)
    elif key == "value_int":
        array = np.asarray(value, dtype=np.int64)
    elif key == "value_ints":
        array = np.asarray(value, dtype=np.int64)
    else:
        raise cx.error(f"{key} constants are not supported (supported: value, value_float(s), value_int(s))")
    if array.dtype.name not in ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool"):
        raise cx.error(f"constant of dtype {array.dtype.name} is not supported")
    return np.array(array)


def _convert_nodes(graph, model, opset: int, source: str) -> None:
    registry = load_converters()
    symbolic = SymbolicShapes(graph)
    for name in graph.inputs:
        symbolic.note_shape(name)
    _check_single_writer(model, source)
    for node, name in zip(model.graph.node, _node_names(model)):
        cx = NodeContext(graph, node, name, opset, model.graph, symbolic)
        if node.op_type == "Constant":
            graph.add_constant(node.output[0], _constant_node_value(cx))
            continue
        for inp in node.input:
            if inp and inp not in graph.values:
                raise ConversionError(
                    f"{source}: {cx.where} reads {inp!r}, which no earlier node, input or "
                    "initializer defines (nodes must be topologically sorted)"
                )
        _check_input_types(cx, graph, opset)
        registry.get(op_type_name(node))(cx)
    _drop_dead_shape_nodes(graph, symbolic, [o.name for o in model.graph.output])


_ONNX_TYPE_NAMES = {"float32": "float", "float16": "float16", "bfloat16": "bfloat16", "int8": "int8",
                    "uint8": "uint8", "int16": "int16", "int32": "int32", "int64": "int64",
                    "bool": "bool"}


def _check_input_types(cx, graph, opset: int) -> None:
    """The node's input dtypes against its ONNX schema's type constraints (Abs of a
    bool tensor is refused by onnxruntime and by the mobconv runtime alike)."""
    if cx.node.domain not in DEFAULT_DOMAINS:
        return  # other domains: the converter checks its inputs
    try:
        schema = onnx.defs.get_schema(cx.op_type, opset, "")
    except onnx.defs.SchemaError:  # no schema in this onnx version (com.microsoft ops, ...)
        return
    given = list(cx.inputs)
    while given and not given[-1]:
        given.pop()
    if not schema.min_input <= len(given) <= schema.max_input:
        many = (f"{schema.min_input}" if schema.min_input == schema.max_input else
                f"{schema.min_input} to {schema.max_input}")
        raise cx.error(f"takes {many} input(s) at opset {opset}, got {len(given)}")
    allowed = {t.type_param_str: set(t.allowed_type_strs) for t in schema.type_constraints}
    formal = list(schema.inputs)
    bound = {}
    for i, name in enumerate(cx.inputs):
        if not name or not formal:
            continue
        if i >= len(formal) and formal[-1].option != formal[-1].option.Variadic:
            continue  # an input the schema does not have: the converter's arity rule
        param = formal[min(i, len(formal) - 1)]
        value = graph.values.get(name)
        if value is None or value.dtype is None:
            continue
        got = f"tensor({_ONNX_TYPE_NAMES.get(value.dtype, value.dtype)})"
        types = allowed.get(param.type_str)
        if types is None:  # a fixed type such as "tensor(int64)"
            types = {param.type_str}
        if got not in types:
            shown = ", ".join(sorted(t[7:-1] for t in types))
            raise cx.error(f"input {i} ({name!r}) is {value.dtype}; {cx.op_type} takes {shown}")
        if param.type_str in allowed:
            first = bound.setdefault(param.type_str, (i, got))
            if first[1] != got:
                raise cx.error(f"inputs {first[0]} and {i} must have the same dtype "
                               f"({first[1][7:-1]} and {got[7:-1]})")


def _check_single_writer(model, source: str) -> None:
    """ONNX's SSA rule: every tensor name is written once (initializer, graph input or
    one node output)."""
    written = {}
    for t in model.graph.initializer:
        if t.name in written:
            raise ConversionError(f"{source}: initializer {t.name!r} is given twice "
                                  "(each tensor name must have one writer)")
        written[t.name] = "an initializer"
    for vi in model.graph.input:
        written.setdefault(vi.name, "a graph input")
    for node, name in zip(model.graph.node, _node_names(model)):
        for out in node.output:
            if not out:
                continue
            if out in written:
                raise ConversionError(
                    f"{source}: ONNX node {name!r} (type {op_type_name(node)}) writes {out!r}, "
                    f"which {written[out]} already defines (each tensor name must have one writer)")
            written[out] = f"node {name!r}"


def _drop_dead_shape_nodes(graph, symbolic, outputs) -> None:
    """Remove the shape arithmetic whose consumers were rewritten to constants."""
    live = set(outputs)
    for node in graph.nodes:
        live.update(n for n in node.inputs if n)
    changed = True
    while changed:
        changed = False
        dead = set()  # removed in one rebuild: list.remove per node made loading quadratic
        for node in graph.nodes:
            outs = [o for o in node.outputs if o]
            if outs and all(o in symbolic.dims and o not in live for o in outs):
                dead.add(id(node))
                for o in outs:
                    graph.values.pop(o, None)
                changed = True
        graph.nodes[:] = [n for n in graph.nodes if id(n) not in dead]
        if changed:
            live = set(outputs)
            for node in graph.nodes:
                live.update(n for n in node.inputs if n)


# ---- signature and metadata ----------------------------------------------


def _fill_metadata(graph, model, opset: int, raw: bytes, input_shapes) -> None:
    extra = {
        "onnx_opset": str(opset),
        "onnx_ir_version": str(model.ir_version),
        "onnx_producer": f"{model.producer_name} {model.producer_version}".strip(),
    }
    for prop in model.metadata_props:
        extra[f"onnx.{prop.key}"] = prop.value
    fill_metadata(graph, "onnx", options={"frontend": "onnx"},
                  sha256=hashlib.sha256(raw).hexdigest(), extra=extra,
                  input_shapes=dict(sorted((input_shapes or {}).items())))
