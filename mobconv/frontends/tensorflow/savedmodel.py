"""Freezing a TF2 SavedModel signature without TensorFlow.

A TF2 SavedModel's MetaGraph calls each signature through a
StatefulPartitionedCall node: its inputs are the signature's Placeholders,
then one VarHandleOp per captured variable; the called function (in the graph's
function library) may call further functions and reads the variables with
ReadVariableOp. Freezing here:

1. The captured inputs: the concrete function's `bound_inputs` (SavedObjectGraph)
   give the object-graph node of each; a constant is a Const of the MetaGraph
   (SavedConstant.operation); for a variable, the checkpoint's own
   object graph (the "_CHECKPOINTABLE_OBJECT_GRAPH" tensor, same node ids)
   gives that node's checkpoint key; the value is read from the TensorBundle
   (bundle.py) and checked against the SavedVariable's dtype and shape.
2. The function calls are inlined, recursively: body nodes are renamed
   "<call node>/<node>", references "node:out_arg:k" become flat output
   indices (`_OUTPUT_ARGS` for ops with several output args), control inputs
   are dropped, function arguments are replaced by the caller's tensors.
3. Each ReadVariableOp of a captured variable becomes a Const with its value;
   any other use of a variable (assignment, ResourceGather) is refused.

Only what the signature's outputs need is kept by the loader afterwards.
"""
from __future__ import annotations

import os

import numpy as np
from google.protobuf.message import DecodeError

from ...errors import ConversionError
from .bundle import Bundle, checkpoint_prefix
from .proto import graph_pb2, node_def_pb2, trackable_object_graph_pb2
from .tensors import dtype_name

_CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
_FUNCTIONAL = ("While", "StatelessWhile", "If", "StatelessIf", "Case", "StatelessCase")
# Output args of ops with several (each one tensor), for "node:arg:k" references.
_OUTPUT_ARGS = {
    "FusedBatchNorm": ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"],
    "FusedBatchNormV2": ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"],
    "FusedBatchNormV3": ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2",
                         "reserve_space_3"],
    "TopKV2": ["values", "indices"], "TopK": ["values", "indices"],
    "Switch": ["output_false", "output_true"], "Merge": ["output", "value_index"],
    "Unique": ["y", "idx"], "MaxPoolWithArgmax": ["output", "argmax"],
    "BroadcastGradientArgs": ["r0", "r1"],
    "NonMaxSuppressionV4": ["selected_indices", "valid_outputs"],
    "NonMaxSuppressionV5": ["selected_indices", "selected_scores", "valid_outputs"],
}
NEEDS_TF = "convert it where TensorFlow is installed (pip install tensorflow-cpu)"


class _Refused(Exception):
    pass


def freeze_without_tensorflow(directory: str, meta, key: str):
    """(GraphDef, placeholder IR name -> input key, output tensors, IR output -> key)."""
    try:
        return _Freezer(directory, meta).freeze(key)
    except _Refused as exc:
        raise ConversionError(f"{directory}: cannot freeze signature {key!r} without TensorFlow "
                              f"({exc}); {NEEDS_TF}") from None


class _Freezer:
    def __init__(self, directory, meta, graph_def=None):
        self.directory = directory
        self.meta = meta  # the MetaGraphDef (None: a plain GraphDef's calls, see inline_calls)
        graph_def = meta.graph_def if graph_def is None else graph_def
        self.functions = {f.signature.name: f for f in graph_def.library.function}
        self.nodes = {n.name: n for n in graph_def.node}
        self.out = graph_pb2.GraphDef()
        self.out.versions.CopyFrom(graph_def.versions)
        self.out.library.CopyFrom(graph_def.library)  # If/While branches and bodies stay calls
        self.added = set()
        self.bundle = None
        self.keys = None

    # ---- variables ---------------------------------------------------------------
    def _checkpoint_keys(self) -> list:
        if self.keys is None:
            prefix = checkpoint_prefix(self.directory)
            if not os.path.isfile(prefix + ".index"):
                raise _Refused("variables/variables.index is missing")
            self.bundle = Bundle(prefix)
            if "_CHECKPOINTABLE_OBJECT_GRAPH" not in self.bundle:
                raise _Refused("the checkpoint has no object graph")
            raw = self.bundle.read("_CHECKPOINTABLE_OBJECT_GRAPH").reshape(-1)[0]
            try:
                graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)
            except (DecodeError, RuntimeError, ValueError) as exc:
                raise ConversionError(f"{prefix}: the checkpoint's object graph is corrupt "
                                      f"({exc})") from None
            self.keys = []
            for node in graph.nodes:
                found = [a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"]
                self.keys.append(found[0] if found else None)
        return self.keys

    def _variable(self, node_id: int) -> np.ndarray:
        keys = self._checkpoint_keys()
        objects = self.meta.object_graph_def.nodes
        if not 0 <= node_id < len(objects) or node_id >= len(keys) or keys[node_id] is None:
            raise _Refused(f"captured object {node_id} is not a saved variable")
        saved = objects[node_id]
        if saved.WhichOneof("kind") != "variable":
            raise _Refused(f"captured object {node_id} is a {saved.WhichOneof('kind')}, not a variable")
        value = self.bundle.read(keys[node_id])
        want = tuple(int(d.size) for d in saved.variable.shape.dim)
        if tuple(value.shape) != want or value.dtype.name != dtype_name(saved.variable.dtype).replace(
                "bfloat16", "float32"):
            raise _Refused(f"variable {saved.variable.name!r}: the checkpoint holds {value.dtype.name}"
                           f"{list(value.shape)}, the SavedModel declares {list(want)}")
        return value

    def _captured(self, node_id: int):
        """A captured input of the signature: a variable (read when the body reads it) or a
        constant (a Const node of the MetaGraph, SavedConstant.operation)."""
        objects = self.meta.object_graph_def.nodes
        kind = objects[node_id].WhichOneof("kind") if 0 <= node_id < len(objects) else None
        if kind == "variable":
            return ("variable", node_id)
        if kind == "constant":
            name = objects[node_id].constant.operation
            node = self.nodes.get(name)
            if node is None or node.op != "Const":
                raise _Refused(f"captured constant {name!r} is not a Const of the graph")
            if name not in self.added:
                copy = node_def_pb2.NodeDef()
                copy.CopyFrom(node)
                self._add(copy)
            return ("tensor", name)
        raise _Refused(f"the signature captures a {kind or 'missing'} object ({node_id})")

    # ---- graph building ------------------------------------------------------------
    def _add(self, node) -> None:
        if node.name in self.added:
            raise _Refused(f"two nodes would be named {node.name!r}")
        self.added.add(node.name)
        self.out.node.append(node)

    def _const(self, name: str, value: np.ndarray) -> str:
        from .proto import tensor_pb2  # noqa: F401 - TensorProto lives there

        node = self.out.node.add()
        node.name = name
        node.op = "Const"
        self.added.add(name)
        t = node.attr["value"].tensor
        t.dtype = _DTYPE_ENUM[value.dtype.name]
        for d in value.shape:
            t.tensor_shape.dim.add().size = int(d)
        t.tensor_content = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        node.attr["dtype"].type = t.dtype
        return name

    def freeze(self, key: str):
        sig = self.meta.signature_def[key]
        call_name = None
        for out in sig.outputs.values():
            node = self.nodes.get(out.name.rsplit(":", 1)[0])
            if node is None or node.op not in _CALL_OPS:
                raise _Refused(f"output {out.name!r} is not computed by a function call")
            if call_name not in (None, node.name):
                raise _Refused("the outputs come from several function calls")
            call_name = node.name
        call = self.nodes[call_name]
        func = call.attr["f"].func.name
        bound = list(self.meta.object_graph_def.concrete_functions[func].bound_inputs) \
            if func in self.meta.object_graph_def.concrete_functions else []
        inputs = [i for i in call.input if not i.startswith("^")]
        n_args = len(inputs) - len(bound)
        args = []
        input_rename = {}
        placeholders = {}
        for i, inp in enumerate(inputs):
            if i < n_args:
                node = self.nodes.get(inp.split(":")[0])
                if node is None or node.op != "Placeholder":
                    raise _Refused(f"signature argument {inp!r} is not a Placeholder")
                if node.name not in self.added:
                    copy = node_def_pb2.NodeDef()
                    copy.CopyFrom(node)
                    self._add(copy)
                args.append(("tensor", node.name))
                placeholders[node.name] = True
            else:
                args.append(self._captured(bound[i - n_args]))
        for k, tensor in sig.inputs.items():
            name = tensor.name.rsplit(":", 1)[0]
            if name not in placeholders:
                raise _Refused(f"signature input {k!r} ({tensor.name}) is not an argument of the call")
            input_rename[name] = k
        results = self._inline(func, args, call.name, depth=0)
        outputs, output_rename = [], {}
        for k, tensor in sorted(sig.outputs.items()):
            index = int(tensor.name.rsplit(":", 1)[1])
            kind, ref = results[index]
            if kind != "tensor":
                raise _Refused(f"signature output {k!r} is a variable")
            outputs.append(ref if ":" in ref else f"{ref}:0")
            node, _, idx = outputs[-1].rpartition(":")
            output_rename[node if idx == "0" else outputs[-1]] = k
        return self.out, input_rename, outputs, output_rename

    def _inline(self, func_name: str, args: list, prefix: str, depth: int) -> list:
        """Add the body of `func_name` called with `args` ([("tensor", ref) | ("variable",
        object id)]); return its outputs likewise."""
        if depth > 32:
            raise _Refused("function calls nest too deeply")
        func = self.functions.get(func_name)
        if func is None:
            raise _Refused(f"function {func_name!r} is not in the graph's library")
        sig = func.signature
        if len(args) != len(sig.input_arg):
            raise _Refused(f"function {func_name!r} takes {len(sig.input_arg)} arguments, "
                           f"the call gives {len(args)}")
        env = {a.name: v for a, v in zip(sig.input_arg, args)}
        body = {n.name: n for n in func.node_def}
        done = {}  # body node name -> list of output refs (None: not yet)

        def ref(text):
            """A body reference -> ("tensor", flat ref) or ("variable", id)."""
            parts = text.split(":")
            if len(parts) == 1 or (len(parts) == 2 and parts[0] in env):
                if parts[0] not in env:
                    raise _Refused(f"{func_name}: {text!r} names no argument")
                return env[parts[0]]
            if len(parts) != 3 or parts[0] not in body:
                raise _Refused(f"{func_name}: cannot resolve {text!r}")
            node_name, arg, k = parts[0], parts[1], int(parts[2])
            outs = visit(node_name)
            node = body[node_name]
            flat = _flat_index(node, arg, k, self.functions)
            if outs is not None:  # an inlined call
                if flat >= len(outs):
                    raise _Refused(f"{func_name}: {text!r} is beyond the call's outputs")
                return outs[flat]
            name = f"{prefix}/{node_name}"
            return ("tensor", name if flat == 0 else f"{name}:{flat}")

        def visit(node_name):
            if node_name in done:
                if done[node_name] == "visiting":
                    raise _Refused(f"{func_name}: the function body has a cycle at {node_name!r}")
                return done[node_name]
            done[node_name] = "visiting"
            node = body[node_name]
            data = [i for i in node.input if not i.startswith("^")]
            resolved = [ref(i) for i in data]
            result = None
            if node.op in _CALL_OPS or node.op in self.functions:
                callee = node.attr["f"].func.name if node.op in _CALL_OPS else node.op
                result = self._inline(callee, resolved, f"{prefix}/{node_name}", depth + 1)
            elif node.op == "ReadVariableOp" and resolved and resolved[0][0] == "variable":
                value = self._variable(resolved[0][1])
                self._const(f"{prefix}/{node_name}", value)
            elif node.op == "Identity" and resolved and resolved[0][0] == "variable":
                result = [resolved[0]]  # a resource passed on
            else:
                for (kind, r), text in zip(resolved, data):
                    if kind == "variable" and node.op in _FUNCTIONAL:
                        raise _Refused(f"{func_name}: node {node_name!r} ({node.op}) takes variables "
                                       "into its branch or body functions")
                    if kind == "variable":
                        raise _Refused(f"{func_name}: node {node_name!r} ({node.op}) uses a variable "
                                       "other than by reading it")
                copy = node_def_pb2.NodeDef()
                copy.CopyFrom(node)
                copy.name = f"{prefix}/{node_name}"
                del copy.input[:]
                copy.input.extend(r for _, r in resolved)
                copy.ClearField("device")
                self._add(copy)
            done[node_name] = result
            return result

        outputs = []
        for arg in sig.output_arg:
            if arg.name not in func.ret:
                raise _Refused(f"{func_name}: output {arg.name!r} has no return value")
            outputs.append(ref(func.ret[arg.name]))
        return outputs


def inline_calls(graph_def, source: str):
    """`graph_def` with its function calls (PartitionedCall, StatefulPartitionedCall, a node
    whose op is a library function) inlined: the body's nodes are named "<call>/<node>"
    and an IdentityN under the call's name passes the results on (the loader aliases
    it). Unchanged when it calls no function. A graph that was not frozen (a call
    reads a variable) is left for the unsupported-op report to name."""
    functions = {f.signature.name for f in graph_def.library.function}
    calls = [n for n in graph_def.node
             if (n.op in _CALL_OPS and n.attr["f"].func.name in functions) or n.op in functions]
    if not calls:
        return graph_def
    freezer = _Freezer(source, None, graph_def)
    try:
        for node in graph_def.node:
            if node.op not in _CALL_OPS and node.op not in functions or \
                    node.op in _CALL_OPS and node.attr["f"].func.name not in functions:
                copy = node_def_pb2.NodeDef()
                copy.CopyFrom(node)
                freezer._add(copy)
                continue
            callee = node.attr["f"].func.name if node.op in _CALL_OPS else node.op
            args = [("tensor", i) for i in node.input if not i.startswith("^")]
            results = freezer._inline(callee, args, node.name, depth=0)
            passed = freezer.out.node.add()
            passed.name = node.name
            passed.op = "IdentityN"
            passed.input.extend(ref for _, ref in results)
            freezer.added.add(node.name)
    except _Refused as exc:
        raise ConversionError(f"{source}: cannot inline the graph's function calls ({exc})") from None
    return freezer.out


def _flat_index(node, arg: str, k: int, functions) -> int:
    if node.op in _OUTPUT_ARGS:
        names = _OUTPUT_ARGS[node.op]
        if arg not in names:
            raise _Refused(f"node {node.name!r} ({node.op}) has no output {arg!r}")
        return names.index(arg) + k
    if node.op in functions:  # a direct call: one tensor per output arg
        names = [a.name for a in functions[node.op].signature.output_arg]
        if arg not in names:
            raise _Refused(f"node {node.name!r} calls {node.op}, which has no output {arg!r}")
        return names.index(arg) + k
    return k  # one output arg (a single tensor or a list)


_DTYPE_ENUM = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6,
               "int64": 9, "bool": 10, "uint16": 17, "float16": 19, "uint32": 22, "uint64": 23}
