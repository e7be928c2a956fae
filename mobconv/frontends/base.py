"""What every frontend's node converter sees: `ConversionContext`.

A converter is a small function `convert(cx)` registered in its frontend's
`ConverterRegistry` (`common.py`). It reads the source node through `cx`
(typed attributes via `cx.attrs`, constant inputs via `cx.const_value`,
shapes via `cx.shape`/`cx.rank`/`cx.dtype`) and emits IR nodes with
`cx.emit`, `cx.const` and `cx.tmp`; `cx.error(rule)` makes the located
one-line error ("cannot convert TensorFlow node 'x' (type Conv2D): rule").

`emit` infers each node's output shapes right away, so the next converter
can ask for them, and evaluates shape-only arithmetic (Shape -> Gather ->
Concat -> Reshape chains) so that shapes stay known at conversion time.
"""
from __future__ import annotations

import hashlib
import os
from typing import Optional

import numpy as np

from ..errors import ConversionError, MobconvError
from ..ir import Node, infer
from ..ops.registry import InferContext, get_spec
from .common import AttrReader
from ..ir.symbolic import INT64_MAX

_FOLD_LIMIT = 4096  # largest constant input (elements) folded at conversion time
_FOLD_OUTPUT_LIMIT = 1 << 20  # largest output (elements) computed when folding


class ConversionContext:
    """One source node being converted: read its inputs, emit IR nodes.

    Frontends subclass it (ONNX `NodeContext`, TensorFlow `TFNodeContext`) and
    fill `attrs` from their own attribute encoding. `inputs`/`outputs` are IR
    value names, already mapped from the source's naming.
    """

    def __init__(self, graph, name: str, op_type: str, where: str, attrs: dict,
                 inputs, outputs, symbolic=None):
        self.graph = graph
        self.symbolic = symbolic  # SymbolicShapes of the model (shape arithmetic on dims)
        self.name = name
        self.op_type = op_type
        self.where = where  # e.g. "ONNX node 'conv1' (type Conv)", used in every error
        self.attrs = AttrReader(attrs, where)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._emitted = 0

    # ---- errors and attribute checks ---------------------------------------
    def error(self, rule: str) -> ConversionError:
        return self.attrs.error(rule)

    def check_attrs(self, known) -> None:
        """Refuse attributes the converter does not read (they could change the result)."""
        unknown = sorted(set(self.attrs.attrs) - set(known))
        if unknown:
            raise self.error(
                f"unknown attribute(s) {', '.join(unknown)}{self._attr_scope()} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )

    def _attr_scope(self) -> str:
        return ""  # frontends with versioned op sets name the version (" for opset 13")

    # ---- inputs --------------------------------------------------------
    def input(self, i: int) -> str:
        return self.inputs[i] if i < len(self.inputs) else ""

    def const_value(self, i: int) -> Optional[np.ndarray]:
        name = self.input(i)
        value = self.graph.values.get(name) if name else None
        return None if value is None else value.data

    def shape(self, i: int) -> Optional[tuple]:
        name = self.input(i)
        value = self.graph.values.get(name) if name else None
        return None if value is None else value.shape

    def rank(self, i: int) -> Optional[int]:
        shape = self.shape(i)
        return None if shape is None else len(shape)

    def dtype(self, i: int) -> Optional[str]:
        name = self.input(i)
        value = self.graph.values.get(name) if name else None
        return None if value is None else value.dtype

    # ---- emitting ------------------------------------------------------
    def tmp(self, hint: str) -> str:
        return self.graph.unique_name(f"{self.name}/{hint}")

    def const(self, data, hint: str = "const") -> str:
        name = self.tmp(hint)
        self.graph.add_constant(name, np.asarray(data))
        return name

    def emit(self, op: str, inputs, outputs, attrs=None, fold: bool = True) -> None:
        """Add one IR node (shape-inferred right away when its inputs are known); fold=False
        keeps a node of constant inputs (a weight's DequantizeLinear, for lower_qdq)."""
        name = self.name if self._emitted == 0 else self.graph.unique_name(f"{self.name}/{op}")
        self._emitted += 1
        inputs, outputs = list(inputs), list(outputs)
        while inputs and not inputs[-1]:
            inputs.pop()
        while outputs and not outputs[-1]:
            outputs.pop()
        if fold and self._fold(op, inputs, outputs, attrs, name):
            return
        dims = None
        if self.symbolic is not None:
            if self._rewrite_symbolic(op, inputs, outputs, attrs):
                return
            dims = self.symbolic.evaluate(op, inputs, attrs)
            if dims is not None and len(dims) == len(outputs):
                if all(not isinstance(d, str) for arr in dims for d in arr.ravel()):
                    for out, arr in zip(outputs, dims):
                        self.graph.values.pop(out, None)
                        self.graph.add_constant(out, concrete_dims(arr))
                    return
            else:
                dims = None
        node = self.graph.add_node(op, inputs, outputs, attrs, name=name)
        if dims is not None:
            for out, arr in zip(outputs, dims):
                self.symbolic.dims[out] = arr
        try:
            infer.infer_node(self.graph, node)
        except MobconvError:
            pass  # unknown input shapes: the final infer_shapes reports real problems
        except Exception:  # noqa: BLE001 - a reference choking on probe data
            pass

    def _rewrite_symbolic(self, op, inputs, outputs, attrs) -> bool:
        """Consumers of symbolic shape values -> constant forms (see `symbolic.py`)."""
        sym = self.symbolic.dims

        def dims_of(i):
            return sym.get(inputs[i]) if i < len(inputs) and inputs[i] else None

        if op == "Reshape" and dims_of(1) is not None:
            target = self._reshape_target(inputs[0], dims_of(1), (attrs or {}).get("allowzero", 0))
            if target is None:
                return False
            self.emit("Reshape", [inputs[0], self.const(target, "shape")], outputs, attrs)
            return True
        if op in ("Expand", "ConstantOfShape"):
            k = 1 if op == "Expand" else 0
            if dims_of(k) is None:
                return False
            if op == "Expand":
                in_shape = self.graph.values[inputs[0]].shape
            else:
                in_shape = ()
            plan = _broadcast_plan(in_shape, list(dims_of(k).ravel()))
            if plan is None:
                return False
            target, gathers = plan
            if any(s not in self.symbolic.source for _, s in gathers):
                return False
            produced = self.tmp("static") if gathers else outputs[0]
            new_inputs = list(inputs)
            new_inputs[k] = self.const(np.asarray(target, np.int64), "shape")
            self.emit(op, new_inputs, [produced], attrs)
            return not gathers or self.symbolic.broadcast_to_symbols(self, produced, gathers, outputs)
        if op == "Range" and dims_of(1) is not None:
            # arange(B) (the dynamo exporter's batch indices): CumSum(ones(B)) - 1
            start, delta = self.const_value(0), self.const_value(2)
            limit = dims_of(1).ravel()
            if (start is None or delta is None or start.size != 1 or delta.size != 1
                    or float(start) != 0 or float(delta) != 1 or limit.size != 1
                    or not isinstance(limit[0], str) or limit[0] not in self.symbolic.source):
                return False
            dtype = self.dtype(0) or "int64"
            zeros = self.symbolic.zeros_like_dim(self, limit[0])
            ones, counts = self.tmp("ones"), self.tmp("counts")
            one = self.const(np.asarray(1, np.int64), "one")
            self.emit("Add", [zeros, one], [ones])
            self.emit("CumSum", [ones, self.const(np.asarray(0, np.int64), "axis")], [counts])
            if dtype == "int64":
                self.emit("Sub", [counts, one], outputs)
            else:
                shifted = self.tmp("arange")
                self.emit("Sub", [counts, one], [shifted])
                self.emit("Cast", [shifted], outputs, {"to": ir_dtype_code(dtype)})
            return True
        if op == "Slice" and any(dims_of(i) is not None for i in range(1, 5)):
            return self._slice_symbolic(inputs, outputs, attrs)
        if op == "Resize" and dims_of(3) is not None:
            x = self.graph.values[inputs[0]].shape
            sizes = list(dims_of(3).ravel())
            axes = list((attrs or {}).get("axes") or range(len(x)))
            if x is None or len(axes) != len(sizes):
                return False
            keep = [(a, s) for a, s in zip(axes, sizes) if not (isinstance(s, str) and x[a] == s)]
            if any(isinstance(s, str) for _, s in keep) or not keep:
                return False
            new_attrs = dict(attrs or {})
            new_attrs["axes"] = [a for a, _ in keep]
            sizes_c = self.const(np.asarray([s for _, s in keep], np.int64), "sizes")
            self.emit("Resize", [inputs[0], inputs[1], inputs[2], sizes_c], outputs, new_attrs)
            return True
        return False

    def _reshape_target(self, data, dims, allowzero):
        value = self.graph.values.get(data)
        in_shape = value.shape if value is not None else None
        if in_shape is None:
            return None
        target, unresolved = [], []
        for k, d in enumerate(dims.ravel()):
            if not isinstance(d, str):
                target.append(int(d))
            elif not allowzero and k < len(in_shape) and in_shape[k] == d:
                target.append(0)
            else:
                unresolved.append(k)
                target.append(-1)
        if len(unresolved) == 1 and target.count(-1) > 1:
            # x.reshape(B * C, 64, -1): the source's -1 is a plain number here (the element
            # count fixes it), which frees -1 for the symbolic dim
            k = unresolved[0]
            given = [int(d) if j != k else d for j, d in enumerate(dims.ravel())]
            known = [d for j, d in enumerate(given) if not (j != k and d == -1)]
            if any(isinstance(d, str) for d in in_shape + tuple(known)):
                from ..ops.shape_ops import dim_div

                rest = dim_div(list(in_shape), known)
                if isinstance(rest, int) and target.count(-1) == 2:
                    target = [rest if (d == -1 and j != k) else d for j, d in enumerate(target)]
        if len(unresolved) > 1 or (unresolved and target.count(-1) > 1):
            return None
        return np.asarray(target, np.int64)

    def _slice_symbolic(self, inputs, outputs, attrs) -> bool:
        sym = self.symbolic
        x = self.graph.values[inputs[0]].shape
        vals = [sym.value(n) if n else None for n in (list(inputs) + [""] * 5)[1:5]]
        if x is None or any(v is None for v in vals[:2]) or any(
            n and v is None for n, v in zip(inputs[3:5], vals[2:4])
        ):
            return False
        starts, ends = list(vals[0].ravel()), list(vals[1].ravel())
        axes = list(vals[2].ravel()) if vals[2] is not None else list(range(len(starts)))
        steps = list(vals[3].ravel()) if vals[3] is not None else [1] * len(starts)
        if any(isinstance(v, str) for v in starts + axes + steps):
            return False
        new_ends = []
        for a, e, st in zip(axes, ends, steps):
            if isinstance(e, str):
                if st > 0 and x[int(a)] == e:
                    new_ends.append(int(INT64_MAX))
                else:
                    return False
            else:
                new_ends.append(int(e))
        ins = [inputs[0], self.const(np.asarray(starts, np.int64), "starts"),
               self.const(np.asarray(new_ends, np.int64), "ends"),
               self.const(np.asarray(axes, np.int64), "axes"),
               self.const(np.asarray(steps, np.int64), "steps")]
        self.emit("Slice", ins, outputs, attrs)
        return True

    def _fold(self, op, inputs, outputs, attrs, name) -> bool:
        """Shape-only computations become constants right away.

        Shape/Size of a statically shaped value, and any node whose inputs are
        all small constants (the index arithmetic of Shape -> Gather -> Concat
        -> Reshape chains and of function-expanded ops), are evaluated with the
        op's reference, because the IR infers shapes at conversion time and
        needs those values as constants. General constant folding of weights
        is left to `mobconv.passes`.
        """
        values = [self.graph.values.get(n) if n else None for n in inputs]
        if any(n and v is None for n, v in zip(inputs, values)):
            return False
        if op in ("Shape", "Size"):
            v = values[0]
            if v.data is None and (v.shape is None or v.dtype is None or
                                   not all(isinstance(d, int) for d in v.shape)):
                return False
        elif not inputs or any(
            v is not None and (v.data is None or v.data.size > _FOLD_LIMIT) for v in values
        ):
            return False
        spec = get_spec(op)
        probe = Node(op, name, list(inputs), list(outputs), dict(attrs or {}))
        try:
            spec.check_arity(probe)
            resolved = spec.resolve_attrs(probe)
            # the shapes first: small inputs can ask for a huge output (ConstantOfShape,
            # Range, Expand), which must not be computed here
            ctx = InferContext(node=probe, inputs=values, attrs=resolved, num_outputs=len(outputs))
            for _, shape in spec.infer(ctx):
                if shape is None or not all(isinstance(d, int) and d >= 0 for d in shape) or \
                        int(np.prod(shape, dtype=object)) > _FOLD_OUTPUT_LIMIT:
                    return False
            args = []
            for v in values:
                if v is None:
                    args.append(None)
                elif v.data is not None:
                    args.append(v.data)
                else:
                    args.append(np.broadcast_to(np.zeros((), dtype=v.dtype), v.shape))
            results = spec.run_reference(args, resolved)
        except Exception:  # noqa: BLE001 - let the regular path report the problem
            return False
        for out, data in zip(outputs, results):
            if out:
                self.graph.values.pop(out, None)
                self.graph.add_constant(out, np.array(data))
        return True


# ---- what every loader fills in after converting: signature, metadata ----------


def file_sha256(*paths) -> str:
    """sha256 (hex) of the paths' bytes read in order as one stream; None entries are
    skipped and a directory (a SavedModel) stands for its files in sorted order."""
    digest = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        for name in _files_of(os.fspath(path)):
            with open(name, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _files_of(path: str) -> list:
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files)]
    return found


def format_input_shapes(shapes: dict) -> str:
    """{"x": (1, 3, "h", 8)} -> "x=1,3,h,8" (';' between inputs, in the dict's order):
    the `input_shapes` entry of the metadata options."""
    return ";".join(f"{k}={','.join(str(d) for d in v)}" for k, v in shapes.items())


def fill_metadata(graph, framework: str, source_paths=(), options: Optional[dict] = None,
                  sha256: Optional[str] = None, extra: Optional[dict] = None,
                  input_shapes: Optional[dict] = None) -> None:
    """The metadata every converted model carries: producer, converter version, source
    framework, the source's sha256 (of `source_paths`' bytes, or `sha256` when the
    source is not a file), and the conversion `options` (str -> str, kept in order;
    `input_shapes` the user gave is added as "input_shapes"). `extra`: framework
    details (opset, producer, ...)."""
    import mobconv

    meta = graph.metadata
    meta.producer = "mobconv"
    meta.converter_version = mobconv.__version__
    meta.source_framework = framework
    meta.source_sha256 = sha256 if sha256 is not None else file_sha256(*source_paths)
    meta.options = dict(options or {})
    if input_shapes:
        meta.options["input_shapes"] = format_input_shapes(input_shapes)
    if extra is not None:
        meta.extra = dict(extra)


_FLOAT_DTYPES = ("float32", "float16", "bfloat16")


def fill_signature(graph, layouts: Optional[dict] = None, preprocessing=None) -> None:
    """The signature users see: a TensorSpec per graph input and output.

    An input's layout is "NCHW" when it is a 4-D floating-point tensor (an image
    batch, as Caffe and ONNX models take them), an output's is ""; `layouts`
    (value name -> "NCHW", "NHWC" or "") overrides both, e.g. a TensorFlow
    model's NHWC edges. `preprocessing`: what users do to raw input (Caffe's
    mean/scale/BGR), when the source says it."""
    from ..ir import TensorSpec

    layouts = layouts or {}

    def spec(name, is_input):
        v = graph.values[name]
        shape = tuple(v.shape) if v.shape is not None else ()
        layout = "NCHW" if is_input and len(shape) == 4 and v.dtype in _FLOAT_DTYPES else ""
        return TensorSpec(name, v.dtype, shape, layouts.get(name, layout))

    sig = graph.signature
    sig.inputs = [spec(n, True) for n in graph.inputs]
    sig.outputs = [spec(n, False) for n in graph.outputs]
    if preprocessing is not None:
        sig.preprocessing = preprocessing


def concrete_dims(arr) -> np.ndarray:
    values = [v for v in arr.ravel()]
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(arr, dtype=bool)
    return np.asarray(arr, dtype=np.int64)


def _broadcast_plan(in_shape, target):
    """(constant target, [(output axis, symbol)]) for Expand of `in_shape` to symbolic `target`.

    A target symbol the input has at the aligned position becomes 1 (broadcast keeps
    the input's dim); one where the input has 1 (or no dim) is made by a Gather along
    that output axis afterwards. None when neither applies.
    """
    rank = max(len(in_shape), len(target))
    offset_t, offset_i = rank - len(target), rank - len(in_shape)
    const, gathers = [], []
    for j, t in enumerate(target):
        axis = j + offset_t
        i = axis - offset_i
        d = in_shape[i] if 0 <= i < len(in_shape) else 1
        if not isinstance(t, str):
            const.append(int(t))
        elif d == t:
            const.append(1)
        elif d == 1:
            const.append(1)
            gathers.append((axis, t))
        else:
            return None
    return const, gathers


def ir_dtype_code(name: str) -> int:
    """The IR's dtype code for Cast's `to` (the ONNX TensorProto numbering)."""
    import onnx

    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(name)))
