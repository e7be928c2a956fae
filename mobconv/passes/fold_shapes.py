"""Shape folding at conversion time: the per-node rewrites `ConversionContext.emit` applies.

Every frontend emits IR nodes one at a time through `ConversionContext.emit`
(frontends/base.py), and the IR infers shapes node by node as they are added,
so a converter can ask for the shape of what it just emitted. For that, the
shape arithmetic of a model (Shape -> Gather -> Concat -> Reshape chains,
function-expanded ops, TensorFlow's Shape/StridedSlice/Pack) must become
constants as it is emitted, not later in the pass pipeline. Three steps,
tried in this order for each emitted node:

1. `fold_constant_node`: Shape/Size of a statically shaped value, and any node
   whose inputs are all small constants, are evaluated with the op's numpy
   reference; the outputs become constants under the node's output names.
   (General constant folding of weights is `constant_folding.py`'s job.)
2. `rewrite_symbolic`: a consumer of a *symbolic* shape value (a value computed
   from the shape of an input with symbolic dims, tracked by
   `mobconv.ir.symbolic.SymbolicShapes`) is rewritten into a constant form:
   Reshape to a target with one symbolic dim -> 0 / -1 entries; Expand and
   ConstantOfShape to a constant target plus Gathers that broadcast along the
   symbolic axes; Range(0, B, 1) -> CumSum of ones; Slice ends equal to a
   symbolic dim -> INT64_MAX; Resize `sizes` naming the input's own symbolic
   dims -> `axes` restricted to the fixed ones.
3. `fold_symbolic_values`: a node whose outputs the symbolic tracker computes
   exactly (all dims known) becomes those constants; otherwise the tracked
   symbolic values are recorded for its outputs.

These are not in `DEFAULT_PIPELINE`: they run per node while a frontend builds
the graph. A fold that cannot be computed (the reference refuses the data, the
output would be too large) leaves the node in the graph.
"""
from __future__ import annotations

import numpy as np

from ..errors import MobconvError
from ..ir import Node
from ..ir.symbolic import INT64_MAX
from ..ops.registry import InferContext, get_spec

FOLD_LIMIT = 4096  # largest constant input (elements) folded at conversion time
FOLD_OUTPUT_LIMIT = 1 << 20  # largest output (elements) computed when folding

# What a reference or a shape function raises on inputs it cannot take: the IR's
# own rule errors, and numpy's on data (an out-of-range index, a bad reshape).
_CANNOT_FOLD = (MobconvError, ArithmeticError, IndexError, ValueError)


# ---- 1. constant inputs ----------------------------------------------------------


def fold_constant_node(graph, op: str, inputs, outputs, attrs, name: str) -> bool:
    """Evaluate `op` now when its inputs are small constants (or it is Shape/Size of a
    statically shaped value): its outputs become constants. False: emit it as a node."""
    values = [graph.values.get(n) if n else None for n in inputs]
    if any(n and v is None for n, v in zip(inputs, values)):
        return False
    if op in ("Shape", "Size"):
        v = values[0]
        if v.data is None and (v.shape is None or v.dtype is None or
                               not all(isinstance(d, int) for d in v.shape)):
            return False
    elif not inputs or any(
        v is not None and (v.data is None or v.data.size > FOLD_LIMIT) for v in values
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
                    int(np.prod(shape, dtype=object)) > FOLD_OUTPUT_LIMIT:
                return False
        args = []
        for v in values:
            if v is None:
                args.append(None)
            elif v.data is not None:
                args.append(v.data)
            else:
                args.append(np.broadcast_to(np.zeros((), dtype=v.dtype), v.shape))
        with np.errstate(all="ignore"):  # Inf/NaN constants are what the model computes
            results = spec.run_reference(args, resolved)
    except _CANNOT_FOLD:
        return False  # kept as a node: shape inference (or the runtime) reports the rule
    for out, data in zip(outputs, results):
        if out:
            graph.values.pop(out, None)
            graph.add_constant(out, np.array(data))
    return True


# ---- 2. consumers of symbolic shape values -----------------------------------------


def rewrite_symbolic(cx, op: str, inputs, outputs, attrs) -> bool:
    """Emit a constant form of `op` (through `cx.emit`) when it consumes a symbolic shape
    value (see the module docstring); False when no rewrite applies."""
    symbolic = cx.symbolic
    sym = symbolic.dims
    graph = cx.graph

    def dims_of(i):
        return sym.get(inputs[i]) if i < len(inputs) and inputs[i] else None

    if op == "Reshape" and dims_of(1) is not None:
        target = reshape_target(graph, inputs[0], dims_of(1), (attrs or {}).get("allowzero", 0))
        if target is None:
            return False
        cx.emit("Reshape", [inputs[0], cx.const(target, "shape")], outputs, attrs)
        return True
    if op in ("Expand", "ConstantOfShape"):
        k = 1 if op == "Expand" else 0
        if dims_of(k) is None:
            return False
        in_shape = graph.values[inputs[0]].shape if op == "Expand" else ()
        if in_shape is None:
            return False
        plan = broadcast_plan(in_shape, list(dims_of(k).ravel()))
        if plan is None:
            return False
        target, gathers = plan
        if any(s not in symbolic.source for _, s in gathers):
            return False
        produced = cx.tmp("static") if gathers else outputs[0]
        new_inputs = list(inputs)
        new_inputs[k] = cx.const(np.asarray(target, np.int64), "shape")
        cx.emit(op, new_inputs, [produced], attrs)
        return not gathers or symbolic.broadcast_to_symbols(cx, produced, gathers, outputs)
    if op == "Range" and dims_of(1) is not None:
        return _range_of_symbol(cx, inputs, outputs, dims_of(1).ravel())
    if op == "Slice" and any(dims_of(i) is not None for i in range(1, 5)):
        return _slice_symbolic(cx, inputs, outputs, attrs)
    if op == "Resize" and dims_of(3) is not None:
        x = graph.values[inputs[0]].shape
        sizes = list(dims_of(3).ravel())
        if x is None:
            return False
        axes = list((attrs or {}).get("axes") or range(len(x)))
        if len(axes) != len(sizes):
            return False
        keep = [(a, s) for a, s in zip(axes, sizes) if not (isinstance(s, str) and x[a] == s)]
        if any(isinstance(s, str) for _, s in keep) or not keep:
            return False
        new_attrs = dict(attrs or {})
        new_attrs["axes"] = [a for a, _ in keep]
        sizes_c = cx.const(np.asarray([s for _, s in keep], np.int64), "sizes")
        cx.emit("Resize", [inputs[0], inputs[1], inputs[2], sizes_c], outputs, new_attrs)
        return True
    return False


def _range_of_symbol(cx, inputs, outputs, limit) -> bool:
    """arange(B) (the dynamo exporter's batch indices): CumSum(ones(B)) - 1."""
    start, delta = cx.const_value(0), cx.const_value(2)
    if (start is None or delta is None or start.size != 1 or delta.size != 1
            or float(start) != 0 or float(delta) != 1 or limit.size != 1
            or not isinstance(limit[0], str) or limit[0] not in cx.symbolic.source):
        return False
    dtype = cx.dtype(0) or "int64"
    zeros = cx.symbolic.zeros_like_dim(cx, limit[0])
    ones, counts = cx.tmp("ones"), cx.tmp("counts")
    one = cx.const(np.asarray(1, np.int64), "one")
    cx.emit("Add", [zeros, one], [ones])
    cx.emit("CumSum", [ones, cx.const(np.asarray(0, np.int64), "axis")], [counts])
    if dtype == "int64":
        cx.emit("Sub", [counts, one], outputs)
    else:
        shifted = cx.tmp("arange")
        cx.emit("Sub", [counts, one], [shifted])
        cx.emit("Cast", [shifted], outputs, {"to": ir_dtype_code(dtype)})
    return True


def reshape_target(graph, data: str, dims, allowzero):
    """Constant Reshape target for the symbolic target `dims` of `data`: a symbolic dim
    equal to the input's dim at the same position becomes 0, one other becomes -1;
    None when more than one dim stays unresolved."""
    value = graph.values.get(data)
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


def _slice_symbolic(cx, inputs, outputs, attrs) -> bool:
    sym = cx.symbolic
    x = cx.graph.values[inputs[0]].shape
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
    ins = [inputs[0], cx.const(np.asarray(starts, np.int64), "starts"),
           cx.const(np.asarray(new_ends, np.int64), "ends"),
           cx.const(np.asarray(axes, np.int64), "axes"),
           cx.const(np.asarray(steps, np.int64), "steps")]
    cx.emit("Slice", ins, outputs, attrs)
    return True


# ---- 3. values the symbolic tracker knows --------------------------------------------


def fold_symbolic_values(graph, symbolic, op: str, inputs, outputs, attrs):
    """(folded, dims): folded when the tracker computes every output exactly (they are
    constants now); else `dims`, the symbolic values of the outputs (or None), for the
    caller to record once the node is added."""
    dims = symbolic.evaluate(op, inputs, attrs)
    if dims is None or len(dims) != len(outputs):
        return False, None
    if all(not isinstance(d, str) for arr in dims for d in arr.ravel()):
        for out, arr in zip(outputs, dims):
            graph.values.pop(out, None)
            graph.add_constant(out, concrete_dims(arr))
        return True, None
    return False, dims


def concrete_dims(arr) -> np.ndarray:
    values = [v for v in arr.ravel()]
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(arr, dtype=bool)
    return np.asarray(arr, dtype=np.int64)


def broadcast_plan(in_shape, target):
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
