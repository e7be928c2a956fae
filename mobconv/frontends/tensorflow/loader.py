"""TensorFlow GraphDef (binary .pb, text .pbtxt) or SavedModel -> IR Graph.

Steps:
1. Read the source: a frozen GraphDef is parsed with the committed protobuf
   messages (proto/, no TensorFlow needed); a SavedModel directory is frozen
   with TensorFlow (`savedmodel.py`) for one signature, whose names the model's
   inputs and outputs keep.
2. Pre-passes on the GraphDef: scalar PlaceholderWithDefault flags (a training
   switch) become Consts of their default unless named in `inputs`; Switch/Merge
   on a constant predicate are folded (`control_flow.py`); SpaceToBatchND ->
   conv -> BatchToSpaceND becomes one dilated conv (`dilation.py`).
3. The graph is cut: outputs are `outputs` (or the SavedModel signature's, or the
   graph's sinks), inputs are the Placeholders they need, or `inputs` (any
   tensors, which replace what computes them). Control inputs are dropped.
4. Every op of the cut graph is checked first (`TF_OPS.check_supported`: all
   unsupported op types at once, with counts and node names).
5. Nodes are converted in topological order (a GraphDef need not be sorted):
   Const -> constants, Placeholder -> inputs (unknown dims -> symbols "batch",
   "d1", ...; `input_shapes` overrides), Identity-like ops alias their input,
   every other op goes through its converter in `ops/` (TFNodeContext).
6. Shapes are inferred, signature (TensorFlow's names and NHWC layout at the
   edges) and metadata filled.
"""
from __future__ import annotations

import difflib
import heapq
import importlib
import importlib.util
import os
import re
import warnings
from typing import Optional

import numpy as np

from ...errors import ConversionError, MobconvError, UnsupportedOpsError, UsageError
from ...ir import Graph, check_graph, infer_shapes
from ...ir.symbolic import SymbolicShapes
from ...limits import check_tensor
from ..base import fill_metadata, fill_signature
from .context import TFNodeContext, ir_name, output_name, split_input
from .control_flow import refuse_unconverted
from .registry import TF_OPS, load_ops
from .tensors import dtype_name, shape_tuple, tensor_to_array

# Ops the loader handles itself: they copy a tensor, or are inputs / constants.
ALIAS_OPS = ("Identity", "StopGradient", "Snapshot", "PreventGradient")
SOURCE_OPS = ("Const", "Placeholder", "PlaceholderWithDefault")
# Ops that are never a model output when outputs are picked from the graph's sinks.
_NOT_OUTPUTS = {"NoOp", "Const", "Placeholder", "PlaceholderWithDefault", "Assert", "Print",
                "PrintV2", "SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore",
                "MergeV2Checkpoints", "Assign", "AssignAdd", "AssignSub", "AssignVariableOp",
                "AssignAddVariableOp", "AssignSubVariableOp", "VarHandleOp", "VariableV2",
                "Variable", "VarIsInitializedOp", "ShardedFilename", "StringJoin"}
# Ops whose presence means the graph still holds variables or function calls.
_UNFROZEN = {"VarHandleOp", "ReadVariableOp", "VariableV2", "Variable", "StatefulPartitionedCall",
             "PartitionedCall", "AssignVariableOp"}
_SYMBOL_CHARS = re.compile(r"[^A-Za-z0-9_]")


def load_tensorflow(path, input_shapes: Optional[dict] = None, inputs=None, outputs=None,
                    signature: Optional[str] = None, **options) -> Graph:
    """Convert a TensorFlow model to an IR Graph.

    path: a frozen GraphDef (.pb binary, .pbtxt text) or a SavedModel directory.
    input_shapes: input name -> shape (ints, or strings for symbolic dims).
    inputs: names of the tensors that become the model's inputs ("x", "pre/sub:0"),
        as a list, or a dict name -> shape (None: the graph's shape); the graph is
        cut there. outputs: names of the tensors that become its outputs.
    signature: the SavedModel signature to convert (default: its only one).
    """
    if options:
        raise UsageError(f"{path}: unknown TensorFlow option(s) {', '.join(sorted(options))} "
                         "(known: input_shapes, inputs, outputs, signature)")
    path = os.fspath(path)
    source = path
    cut_inputs = _normalize_inputs(source, inputs)
    out_names = _normalize_outputs(source, outputs)
    input_shapes = {ir_name(k): tuple(v) for k, v in (input_shapes or {}).items()}
    from .reader import read_source

    src = read_source(path, signature)
    if signature is not None and not src.saved_model:
        raise UsageError(f"{path}: signature={signature!r} is only for a SavedModel directory "
                         "(this is a frozen GraphDef)")
    rename = {}
    notes = {}  # what the conversion changed: "float64" -> names of the nodes
    if src.saved_model:
        rename = dict(src.input_rename)  # placeholder -> the signature's input key
        if not out_names:
            out_names = list(src.outputs)
            rename.update(src.output_rename)
    try:
        graph = _convert(src.graph_def, source, cut_inputs, out_names, input_shapes, rename,
                         notes)
    except MobconvError as exc:
        if str(exc).startswith(source):
            raise
        raise _prefixed(exc, source) from None
    _fill_signature(graph, src.graph_def)
    _fill_metadata(graph, src, cut_inputs, outputs, signature, input_shapes, notes)
    return graph


def _prefixed(exc: MobconvError, source: str) -> MobconvError:
    new = type(exc).__new__(type(exc))
    MobconvError.__init__(new, f"{source}: {exc}")
    new.__dict__.update(exc.__dict__)
    return new


# ---- options -------------------------------------------------------------------


def _normalize_inputs(source, inputs) -> dict:
    """`inputs` as {tensor name: shape or None}."""
    if inputs is None:
        return {}
    if isinstance(inputs, str):
        inputs = [inputs]
    if isinstance(inputs, dict):
        items = list(inputs.items())
    else:
        items = [(name, None) for name in inputs]
    result = {}
    for name, shape in items:
        if not isinstance(name, str) or not name:
            raise UsageError(f"{source}: inputs must be tensor names (strings), got {name!r}")
        if shape is not None:
            shape = tuple(shape)
            for i, d in enumerate(shape):
                if not (isinstance(d, str) or (isinstance(d, (int, np.integer)) and d > 0)):
                    raise UsageError(f"{source}: inputs[{name!r}] = {shape}: dim {i} must be a "
                                     "positive integer or a symbol name")
        if _canonical(name) in result:
            raise UsageError(f"{source}: inputs names {name!r} twice")
        result[_canonical(name)] = shape
    return result


def _normalize_outputs(source, outputs) -> list:
    if outputs is None:
        return []
    if isinstance(outputs, str):
        outputs = [outputs]
    names = []
    for name in outputs:
        if not isinstance(name, str) or not name:
            raise UsageError(f"{source}: outputs must be tensor names (strings), got {name!r}")
        if _canonical(name) in names:
            raise UsageError(f"{source}: outputs names {name!r} twice")
        names.append(_canonical(name))
    return names


def _canonical(name: str) -> str:
    """A tensor name as "node:k" ("x" and "x:0" are the same tensor)."""
    node, index = split_input(name)
    if index < 0:
        raise UsageError(f"{name!r} is a control input, not a tensor name")
    return f"{node}:{index}"


# ---- conversion ----------------------------------------------------------------


class _Graph:
    """The GraphDef's nodes by name, with the readers of each node's outputs."""

    def __init__(self, graph_def, source):
        self.graph_def = graph_def
        self.nodes = {}
        self.order = []
        for i, node in enumerate(graph_def.node):
            if not node.name:
                raise ConversionError(f"{source}: node {i} (type {node.op or '?'}) has no name")
            if node.name in self.nodes:
                raise ConversionError(f"{source}: two nodes are named {node.name!r} "
                                      "(node names must be unique)")
            self.nodes[node.name] = node
            self.order.append(node.name)

    def data_inputs(self, node):
        return [inp for inp in node.input if not inp.startswith("^")]


def _sinks(original, g: "_Graph") -> list:
    """The default outputs: the ends of the *original* graph's data flow (so a folded
    cond's predicate, which a Switch read, is never taken for one), that are still in the
    folded graph `g`. A node read only through control edges (`^x`: an Assert's check, a
    dependency) is not an end, nor are Const/NoOp/Assert-like nodes. An end node
    contributes each of its output ports (TopKV2: values and indices)."""
    read = set()
    for node in original.node:
        for inp in node.input:
            read.add(split_input(inp)[0])  # data or control edge
    tensors = []
    for node in original.node:
        if node.name in read or node.op in _NOT_OUTPUTS or node.name not in g.nodes:
            continue
        node = g.nodes[node.name]
        if node.op in _NOT_OUTPUTS:
            continue
        tensors.extend(f"{node.name}:{k}" for k in range(_output_count(node)))
    if not tensors and original is not g.graph_def:
        return _sinks(g.graph_def, g)  # every end was folded away: the folded graph's ends
    return tensors


# Outputs of multi-output ops that are a model's result when the op ends the graph (the
# other ports are none: FusedBatchNorm's batch statistics and reserve spaces only serve
# training, so only its y counts).
_ONE_RESULT = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
_FIXED_COUNT = {"TopKV2": 2, "TopK": 2, "Unique": 2, "UniqueV2": 2, "UniqueWithCounts": 3,
                "Switch": 2, "Merge": 2, "NonMaxSuppressionV4": 2, "NonMaxSuppressionV5": 3,
                "CombinedNonMaxSuppression": 4, "Svd": 3, "Qr": 2, "SparseToDense": 1}


def _output_count(node) -> int:
    """How many outputs a node has (an op-def table for the multi-output ops)."""
    attr = node.attr
    if node.op in _ONE_RESULT:
        return 1
    if node.op in _FIXED_COUNT:
        return _FIXED_COUNT[node.op]
    if node.op == "Unpack" and "num" in attr:
        return max(int(attr["num"].i), 1)
    if node.op in ("Split", "SplitV") and "num_split" in attr:
        return max(int(attr["num_split"].i), 1)
    if node.op == "IdentityN" and "T" in attr:
        return max(len(attr["T"].list.type), 1)
    return 1


def _pre_passes(graph_def, source: str, keep: set):
    from .savedmodel import inline_calls

    graph_def = inline_calls(graph_def, source)
    original = type(graph_def)()
    original.CopyFrom(graph_def)  # before folding: where the default outputs are found
    graph_def = _constant_flags(graph_def, keep)
    float64 = _float64_as_float32(graph_def)
    for module, func in (("control_flow", "fold_constant_switches"),
                         ("dilation", "fold_space_to_batch_convs")):
        if importlib.util.find_spec(f"{__package__}.{module}") is None:
            continue  # not built yet
        mod = importlib.import_module(f"{__package__}.{module}")
        graph_def = getattr(mod, func)(graph_def, source)
    return graph_def, original, float64


_DT_FLOAT, _DT_DOUBLE = 1, 2


def _float64_as_float32(graph_def) -> list:
    """float64 has no IR type: every float64 of the graph (type attributes: a Cast's DstT,
    an op's T, a Placeholder's dtype; Const values) becomes float32, computing in float32
    what TensorFlow computes in float64 (MNN and TFLite converters do the same). Returns
    the names of the nodes changed, in graph order."""
    changed = []
    for node in graph_def.node:
        hit = False
        for key in node.attr:
            value = node.attr[key]
            kind = value.WhichOneof("value")
            if kind == "type" and value.type == _DT_DOUBLE:
                value.type = _DT_FLOAT
                hit = True
            elif kind == "list" and _DT_DOUBLE in value.list.type:
                types = [_DT_FLOAT if t == _DT_DOUBLE else t for t in value.list.type]
                del value.list.type[:]
                value.list.type.extend(types)
                hit = True
            elif kind == "tensor" and value.tensor.dtype == _DT_DOUBLE:
                array = tensor_to_array(value.tensor, f"cannot convert {_node_where(node)}")
                shape = type(value.tensor.tensor_shape)()
                shape.CopyFrom(value.tensor.tensor_shape)
                value.tensor.Clear()
                value.tensor.dtype = _DT_FLOAT
                value.tensor.tensor_shape.CopyFrom(shape)
                value.tensor.tensor_content = array.astype("<f4").tobytes()
                hit = True
        if hit:
            changed.append(node.name)
    return changed


def _warn_float64(source, g, names) -> None:
    """One warning line for the float64 computation (its first non-Const node named)."""
    if not names:
        return
    ops = [n for n in names if g.nodes[n].op != "Const"] or names
    more = len(names) - 1
    warnings.warn(f"{source}: node {ops[0]!r} computes in float64; converted to float32"
                  + (f" (with {more} more float64 node{'s' if more > 1 else ''})" if more else ""),
                  stacklevel=4)


def _constant_flags(graph_def, keep: set):
    """A scalar PlaceholderWithDefault (a training/dropout switch) whose default is a Const
    becomes that Const, unless the user made it an input."""
    consts = {n.name: n for n in graph_def.node if n.op == "Const"}
    for node in graph_def.node:
        if node.op != "PlaceholderWithDefault" or f"{node.name}:0" in keep:
            continue
        shape = shape_tuple(node.attr["shape"].shape) if "shape" in node.attr else None
        default, index = split_input(node.input[0]) if node.input else ("", -1)
        if shape != () or index != 0 or default not in consts:
            continue
        value = consts[default].attr["value"]
        node.op = "Const"
        del node.input[:]
        for key in list(node.attr):
            if key not in ("dtype",):
                del node.attr[key]
        node.attr["value"].CopyFrom(value)
    return graph_def


def _convert(graph_def, source, cut_inputs: dict, out_names: list, input_shapes: dict,
             rename: dict, notes: dict) -> Graph:
    graph_def, original, float64 = _pre_passes(graph_def, source, set(cut_inputs))
    g = _Graph(graph_def, source)
    for tensor in list(cut_inputs) + list(out_names):
        node = tensor.rsplit(":", 1)[0]
        if node not in g.nodes:
            kind = "inputs" if tensor in cut_inputs else "outputs"
            shown = node if tensor.endswith(":0") else tensor
            raise UsageError(f"{source}: {kind} names {shown!r}, which is no node of the graph"
                             f"{_closest(node, g.order)}")
    if not out_names:
        out_names = _sinks(original, g)
        if not out_names:
            raise ConversionError(f"{source}: the graph has no output (no node whose result "
                                  "nobody reads); name them with outputs=[...] / --outputs")
    kept = _reachable(g, out_names, cut_inputs, source)
    notes["float64"] = [n for n in float64 if n in kept]
    _warn_float64(source, g, notes["float64"])
    refuse_unconverted((g.nodes[n] for n in g.order if n in kept), source)  # loops, run-time conds
    _check_supported(g, kept, source)
    order = _topological(g, kept, cut_inputs, source)

    graph = Graph(_graph_name(source))
    symbolic = SymbolicShapes(graph)
    known_inputs = [n for n in order if g.nodes[n].op in ("Placeholder", "PlaceholderWithDefault")]
    placeholders = [f"{n}:0" for n in known_inputs if f"{n}:0" not in cut_inputs]
    all_inputs = [t for t in cut_inputs if t.split(":")[0] in g.nodes] + placeholders
    given = {ir_name(t) for t in all_inputs} | {rename.get(ir_name(t), ir_name(t)) for t in all_inputs}
    unknown = sorted(set(input_shapes) - given)
    if unknown:
        shown = ", ".join(rename.get(ir_name(t), ir_name(t)) for t in all_inputs) or "none"
        raise UsageError(f"{source}: input_shapes names unknown input(s) {', '.join(unknown)} "
                         f"(model inputs: {shown})")
    alias = {}
    for tensor in all_inputs:
        name = ir_name(tensor)
        ir = rename.get(name, name)
        if ir != name and ir in g.nodes:
            ir = name  # the signature's key names another node: keep TensorFlow's name
        shape = cut_inputs.get(tensor) or input_shapes.get(ir) or input_shapes.get(name)
        _add_input(graph, g, tensor, ir, shape, source, len(all_inputs) > 1)
        symbolic.note_shape(ir)
        alias[name] = ir

    def resolve(inp, reader):
        node, index = split_input(inp)
        name = output_name(node, index)
        name = alias.get(name, name)
        if name not in graph.values:
            producer = g.nodes.get(node)
            what = (f"which the converter of node {node!r} (type {producer.op}) did not produce"
                    if producer is not None else "which no node of the graph defines")
            raise ConversionError(f"TensorFlow node {reader.name!r} (type {reader.op}) reads "
                                  f"{inp!r}, {what}")
        return name

    registry = load_ops()
    used_outputs = _used_outputs(g, kept, out_names)
    for name in order:
        node = g.nodes[name]
        if node.op == "Const":
            _add_const(graph, node)
            continue
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            continue  # an input (added above)
        ins = [resolve(i, node) for i in g.data_inputs(node)]
        if node.op in ALIAS_OPS:
            if len(ins) != 1:
                raise ConversionError(f"cannot convert {_node_where(node)}: takes 1 input, "
                                      f"got {len(ins)}")
            alias[name] = ins[0]
            continue
        if node.op == "IdentityN":
            for k, i in enumerate(ins):
                alias[output_name(name, k)] = i
            continue
        count = max(used_outputs.get(name, 0), 1)
        outs = [output_name(name, k) for k in range(count)]
        cx = TFNodeContext(graph, node, ins, outs, symbolic, source)
        registry.get(node.op)(cx)

    graph.outputs = []
    for tensor in out_names:
        node, index = split_input(tensor)
        value = resolve(tensor, g.nodes[node])
        name = ir_name(tensor)
        name = rename.get(name, name)
        if value != name or name in graph.outputs or name in graph.inputs:
            target = name if name not in graph.values else graph.unique_name(name)
            graph.add_node("Identity", [value], [target], name=target)
            name = target
        graph.outputs.append(name)
    _drop_dead(graph)
    try:
        infer_shapes(graph)
        check_graph(graph)
    except ConversionError:
        raise
    except MobconvError as exc:
        raise ConversionError(str(exc)) from exc
    return graph


def _closest(name, names) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _graph_name(source: str) -> str:
    base = os.path.basename(os.path.normpath(source))
    return os.path.splitext(base)[0] or "tensorflow_graph"


def _reachable(g: _Graph, out_names, cut_inputs, source) -> set:
    """Names of the nodes the outputs need (walking data edges, stopping at cut inputs)."""
    kept = set()
    stack = []
    for tensor in out_names:
        if tensor not in cut_inputs:
            stack.append(tensor.rsplit(":", 1)[0])
    while stack:
        name = stack.pop()
        if name in kept:
            continue
        kept.add(name)
        node = g.nodes[name]
        for inp in g.data_inputs(node):
            producer, index = split_input(inp)
            if f"{producer}:{index}" in cut_inputs:
                continue
            if producer not in g.nodes:
                raise ConversionError(f"{source}: TensorFlow node {name!r} (type {node.op}) reads "
                                      f"{inp!r}, which no node of the graph defines")
            stack.append(producer)
    return kept


def _check_supported(g, kept, source) -> None:
    load_ops()
    ours = set(ALIAS_OPS) | set(SOURCE_OPS) | {"IdentityN"}
    nodes = [(g.nodes[n].op, n) for n in g.order if n in kept and g.nodes[n].op not in ours]
    try:
        TF_OPS.check_supported(source, nodes)
    except UnsupportedOpsError as exc:
        if set(exc.unsupported) & _UNFROZEN:
            exc.args = (f"{exc}; the graph is not frozen (variables or function calls remain): "
                        "give the SavedModel directory, or freeze it with "
                        "convert_variables_to_constants_v2",)
        raise


def _topological(g, kept, cut_inputs, source) -> list:
    """Kahn's algorithm over the kept nodes, keeping the GraphDef's order among ready ones."""
    position = {n: i for i, n in enumerate(g.order)}
    deps = {}
    readers = {n: [] for n in kept}
    for name in kept:
        wanted = set()
        for inp in g.data_inputs(g.nodes[name]):
            producer, index = split_input(inp)
            if f"{producer}:{index}" not in cut_inputs and producer in kept:
                wanted.add(producer)
        deps[name] = len(wanted)
        for p in wanted:
            readers[p].append(name)
    ready = [(position[n], n) for n in kept if deps[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for r in readers[name]:
            deps[r] -= 1
            if deps[r] == 0:
                heapq.heappush(ready, (position[r], r))
    if len(order) != len(kept):
        left = {n for n in kept if deps[n] > 0}
        # leave out what only runs after a cycle (peeled from the sinks back, in linear
        # time: a long chain may follow the cycle): the cycle's nodes remain
        producers = {n: _producers(g, n) & left for n in left}
        readers_left = dict.fromkeys(left, 0)
        for n in left:
            for p in producers[n]:
                readers_left[p] += 1
        sinks = [n for n in left if readers_left[n] == 0]
        while sinks:
            n = sinks.pop()
            left.discard(n)
            for p in producers[n]:
                readers_left[p] -= 1
                if readers_left[p] == 0:
                    sinks.append(p)
        cycle = sorted(left, key=position.get)
        shown = ", ".join(f"{n!r} ({g.nodes[n].op})" for n in cycle[:5])
        raise ConversionError(f"{source}: the graph has a cycle through {len(cycle)} node(s): "
                              f"{shown}{', ...' if len(cycle) > 5 else ''} (a TF1 while loop?)")
    return order


def _producers(g, name) -> set:
    return {split_input(i)[0] for i in g.data_inputs(g.nodes[name])}


def _used_outputs(g, kept, out_names) -> dict:
    """node name -> 1 + the highest output index anything reads."""
    count = {}

    def note(tensor):
        node, index = split_input(tensor)
        if index >= 0:
            count[node] = max(count.get(node, 0), index + 1)

    for name in kept:
        for inp in g.data_inputs(g.nodes[name]):
            note(inp)
    for tensor in out_names:
        note(tensor)
    return count


def _node_where(node) -> str:
    return f"TensorFlow node {node.name!r} (type {node.op})"


def _add_const(graph, node) -> None:
    where = f"cannot convert {_node_where(node)}"
    if "value" not in node.attr:
        raise ConversionError(f"{where}: has no value")
    array = tensor_to_array(node.attr["value"].tensor, where)
    if array.dtype.name not in ("float32", "float16", "int8", "uint8", "int16", "int32",
                                "int64", "bool"):
        shown = "string" if array.dtype == object else array.dtype.name
        raise ConversionError(f"{where}: constants of type {shown} are not supported "
                              "(supported: float32, float16, bfloat16, int8..int64, uint8, bool)")
    graph.add_constant(ir_name(node.name), array)


def _tensor_dtype(node, index: int) -> Optional[str]:
    """The dtype of a node's output, from its attributes (for a graph cut there)."""
    for key in ("dtype", "T", "out_type", "DstT", "output_type", "Tout", "type"):
        if key in node.attr and node.attr[key].WhichOneof("value") == "type":
            return dtype_name(node.attr[key].type)
    for key in ("T", "Tout", "out_types", "dtypes", "output_types"):
        if key in node.attr and node.attr[key].WhichOneof("value") == "list":
            types = list(node.attr[key].list.type)
            if index < len(types):
                return dtype_name(types[index])
    return None


def _tensor_shape(node, index: int):
    """The shape TensorFlow recorded for a node's output (`shape` attr of a Placeholder,
    `_output_shapes` of TF1 graphs), or None."""
    if node.op in ("Placeholder", "PlaceholderWithDefault") and "shape" in node.attr:
        return shape_tuple(node.attr["shape"].shape)
    if "_output_shapes" in node.attr:
        shapes = node.attr["_output_shapes"].list.shape
        if index < len(shapes):
            return shape_tuple(shapes[index])
    return None


def _add_input(graph, g, tensor, ir, override, source, several: bool) -> None:
    node_name, index = split_input(tensor)
    node = g.nodes[node_name]
    dtype = _tensor_dtype(node, index) or "float32"
    declared = _tensor_shape(node, index)
    what = f"input {ir!r}"
    raw = [d.size for d in node.attr["shape"].shape.dim] if "shape" in node.attr else []
    if any(d < -1 for d in raw):
        raise ConversionError(f"{what} (node {node_name!r}, type {node.op}) declares shape {raw}: "
                              "a dim is >= 0, or -1 for unknown")
    if dtype not in ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool"):
        raise ConversionError(f"{what} (node {node_name!r}, type {node.op}) is of type {dtype}, "
                              "which mobconv models cannot take; cut the graph after it with "
                              "--inputs NAME (a tensor of a supported type)")
    if override is not None:
        override = tuple(int(d) if not isinstance(d, str) else d for d in override)
        if declared is not None and len(override) != len(declared):
            raise UsageError(f"shape {list(override)} for {what} has rank {len(override)}, but the "
                             f"graph declares rank {len(declared)} {_shown(declared)}")
        if declared is not None:
            for i, (d, o) in enumerate(zip(declared, override)):
                if d >= 0 and o != d:
                    raise UsageError(f"shape {list(override)} for {what} conflicts with the "
                                     f"graph's fixed dim {i} = {d} (declared {_shown(declared)})")
        shape = override
        try:
            check_tensor(shape, dtype, f"shape {list(override)} for {what}")
        except MobconvError as exc:
            raise UsageError(str(exc)) from None
    else:
        if declared is None:
            raise ConversionError(f"{what} has no known shape (rank unknown); give it with "
                                  f"input_shapes={{{ir!r}: (...)}} / --input-shape {ir}=D1,D2,...")
        prefix = _SYMBOL_CHARS.sub("_", ir) + "_" if several else ""
        shape = tuple(d if d >= 0 else ("batch" if i == 0 else f"{prefix}d{i}")
                      for i, d in enumerate(declared))
        try:
            check_tensor(shape, dtype, what)
        except MobconvError as exc:
            raise ConversionError(f"{exc} (give another shape with --input-shape)") from None
    graph.add_input(ir, dtype, shape)


def _shown(shape) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def _drop_dead(graph) -> None:
    """Remove nodes whose outputs nothing reads (shape arithmetic a converter replaced by
    constants, unread outputs of multi-output ops' helper nodes)."""
    while True:
        live = set(graph.outputs)
        for node in graph.nodes:
            live.update(n for n in node.inputs if n)
        dead = [n for n in graph.nodes if not any(o in live for o in n.outputs if o)]
        if not dead:
            break
        ids = {id(n) for n in dead}
        graph.nodes[:] = [n for n in graph.nodes if id(n) not in ids]
    graph.remove_unused_values()


# ---- signature and metadata ------------------------------------------------------


def _layout(graph_def) -> str:
    """The layout of the model's 4-D image tensors: NCHW when its layout ops say so."""
    formats = {n.attr["data_format"].s for n in graph_def.node if "data_format" in n.attr}
    return "NCHW" if formats and formats <= {b"NCHW", b"NCDHW"} else "NHWC"


def _fill_signature(graph, graph_def) -> None:
    """TensorFlow's layout at the model's edges: 4-D float inputs and outputs are NHWC
    (NCHW when the graph's layout ops all say so)."""
    layout = _layout(graph_def)
    layouts = {}
    for name in list(graph.inputs) + list(graph.outputs):
        v = graph.values[name]
        image = v.shape is not None and len(v.shape) == 4 and v.dtype in ("float32", "float16", "bfloat16")
        layouts[name] = layout if image else ""
    fill_signature(graph, layouts)


def _fill_metadata(graph, src, cut_inputs, outputs, signature, input_shapes, notes) -> None:
    options = {"frontend": "tensorflow"}
    if cut_inputs:
        options["inputs"] = ",".join(
            t if shape is None else f"{t}[{','.join(str(d) for d in shape)}]"
            for t, shape in cut_inputs.items())
    if outputs:
        options["outputs"] = ",".join(_normalize_outputs("", outputs))
    if src.saved_model:
        options["signature"] = src.signature
    extra = {"tf_format": src.kind}
    versions = src.graph_def.versions
    if versions.producer:
        extra["tf_graph_producer"] = str(versions.producer)
    if src.tf_version:
        extra["tf_version"] = src.tf_version
    if notes.get("float64"):
        names = notes["float64"]
        extra["tf_float64_as_float32"] = ",".join(names[:20]) + (",..." if len(names) > 20 else "")
    fill_metadata(graph, "tensorflow", src.files, options=options, extra=extra,
                  input_shapes=dict(sorted(input_shapes.items())) or None)
