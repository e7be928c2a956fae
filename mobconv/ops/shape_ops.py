"""Tensor layout and shape ops (ONNX opset 28 semantics).

Concat, Split, Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Tile and
Expand (Slice, Pad, Gather... live in `indexing.py`; Shape, Size, Cast,
ConstantOfShape, Range, Identity, Dropout in `tensor_ops.py`). Parameters that
ONNX passes as tensor inputs (Reshape shape, Split split, Squeeze/Unsqueeze
axes, Tile repeats, Expand shape, ...) stay inputs; shape functions need them
constant (`ctx.const`) and say so when they are not.

Also home of the small helpers the other shape functions of this op family
share (`indexing.py`, `tensor_ops.py`, `reduce.py`): axis normalization, constant-input
access, and arithmetic on dims that may be symbols. A derived symbolic dim is
an expression string built from the input symbols ("N*3", "N+2", "ceil(N/2)"),
so equal expressions compare equal downstream.
"""
import math

import numpy as np

from .registry import Attr, AttrKind, broadcast_shapes, op

# ---- shared helpers for shape functions -----------------------------------


def norm_axis(ctx, axis, rank, what="axis"):
    """`axis` in [-rank, rank) mapped to [0, rank), or a ShapeError naming the rule."""
    if not -rank <= axis < rank:
        raise ctx.error(f"{what} {axis} is out of range for a tensor of rank {rank} "
                        f"(valid: {-rank}..{rank - 1})")
    return axis + rank if axis < 0 else axis


def norm_axes(ctx, axes, rank, what="axes"):
    """Normalized list of distinct axes, or a ShapeError."""
    result = [norm_axis(ctx, int(a), rank, what[:-1] if what.endswith("s") else what)
              for a in axes]
    if len(set(result)) != len(result):
        raise ctx.error(f"{what} {list(axes)} contain a repeated axis")
    return result


def const_ints(ctx, i, what):
    """Constant input i as a list of Python ints; None if the input is absent.

    Raises a ShapeError when the input is present but not constant, since the
    output shape then depends on run-time data.
    """
    if i >= len(ctx.inputs) or ctx.inputs[i] is None:
        return None
    data = ctx.const(i)
    if data is None:
        sym = ctx.sym_value(i)  # computed from static dims at run time: as good as a constant
        if sym is not None and all(isinstance(d, int) for d in sym):
            return sym
        raise ctx.error(f"{what} (input {i}, {ctx.inputs[i].name!r}) must be a constant "
                        "to infer the output shape")
    return [int(v) for v in np.asarray(data).reshape(-1)]


def shape_input(ctx, i, what):
    """Input i as a list of dims: its constant data, else its symbolic value when it is
    computed from shapes at run time (ints and symbol strings, `ctx.sym_value`); None if
    absent. Raises like `const_ints` when neither is known."""
    if i >= len(ctx.inputs) or ctx.inputs[i] is None:
        return None
    if ctx.const(i) is None:
        sym = ctx.sym_value(i)
        if sym is not None:
            return sym
    return const_ints(ctx, i, what)


def at_run_time(ctx, i, follows_symbols=False) -> bool:
    """True when input i is present but its values are only known at run time: not a
    constant, and not a shape computation the symbolic tracker follows (`ctx.sym_value`)
    down to plain ints, or, with `follows_symbols` (ops whose shape function computes with
    symbolic dims: Reshape, Expand, Tile, ConstantOfShape), to ints and dim symbols.
    The output dims that depend on those values become run-time dims (`run_time_dim`)."""
    if i >= len(ctx.inputs) or ctx.inputs[i] is None or ctx.const(i) is not None:
        return False
    sym = ctx.sym_value(i)
    if sym is None:
        return True
    return not follows_symbols and any(isinstance(d, str) for d in sym)


def param_count(ctx, i, what):
    """How many values the 1-D (or scalar) parameter input i holds, from its static shape
    (its values may be known only at run time); a ShapeError when that is unknown."""
    shape = ctx.shape(i)
    if shape is not None and len(shape) <= 1 and all(isinstance(d, int) for d in shape):
        return shape[0] if shape else 1
    raise ctx.error(f"{what} (input {i}, {ctx.inputs[i].name!r}) is computed at run time, so its "
                    f"length must be known to infer the output rank, got shape "
                    f"{'unknown' if shape is None else fmt_shape(shape)}")


def run_time_dim(ctx, axis, out=None) -> str:
    """The symbol of output dim `axis` whose size depends on input *values* known only
    when the op runs ("<node>_dim<axis>"; "<node>_out<k>_dim<axis>" for output k of a
    multi-output op). The IR carries it like any symbolic dim; the runtime infers the
    real size at invoke (docs/runtime.md). Node names are unique; characters with a
    meaning in dim expressions ("*+-/()") are replaced, with a digest of the name then."""
    name = ctx.node.name
    safe = "".join("_" if c in "*+-/() " else c for c in name)
    if safe != name:
        import hashlib

        safe += "_" + hashlib.sha1(name.encode()).hexdigest()[:6]
    return f"{safe}_dim{axis}" if out is None else f"{safe}_out{out}_dim{axis}"


def check_values(op, inputs, attrs, num_outputs=1):
    """Run-time check of a reference's parameters (shapes, axes, K, depth... that may be
    computed at run time, so conversion never saw them): the op's shape function on the
    actual arrays and the runtime's size limit on its outputs, before anything is
    allocated. ValueError with the broken rule (the interpreter names the node)."""
    from ..errors import MobconvError
    from ..ir.graph import Node, Value
    from ..limits import check_tensor
    from .registry import REGISTRY, InferContext

    values = [None if a is None else Value(f"input {i}", np.asarray(a).dtype.name, tuple(np.shape(a)),
                                           np.asarray(a)) for i, a in enumerate(inputs)]
    node = Node(op, op, [v.name if v is not None else "" for v in values], ["y"] * num_outputs, {})
    try:
        for dtype, shape in REGISTRY[op].infer(InferContext(node, values, attrs, num_outputs)):
            check_tensor(shape, dtype, "output")
    except MobconvError as exc:
        raise ValueError(f"{op}: {str(exc).split('): ', 1)[-1]}") from None


def _wrap(d):
    return f"({d})" if isinstance(d, str) and any(c in d for c in "+-/") else str(d)


def dim_add(*dims):
    """Sum of dims: an int if all are ints, else an expression string ("N+3")."""
    total = sum(d for d in dims if isinstance(d, int))
    symbols = [d for d in dims if isinstance(d, str)]
    if not symbols:
        return total
    text = "+".join(symbols)
    return text + (f"+{total}" if total > 0 else f"{total}" if total < 0 else "")


def dim_mul(*dims):
    """Product of dims: an int if all are ints, else an expression string ("N*12")."""
    total = math.prod(d for d in dims if isinstance(d, int))
    symbols = [_wrap(d) for d in dims if isinstance(d, str)]
    if not symbols or total == 0:
        return total
    return "*".join(symbols + ([str(total)] if total != 1 else []))


def dim_factors(dims):
    """(int product, list of symbols) of a dims list, splitting "A*B*4" products apart."""
    value, symbols = 1, []
    for d in dims:
        if isinstance(d, int):
            value *= d
            continue
        for part in d.split("*") if not any(c in d for c in "()+-/") else [d]:
            if part.isdigit():
                value *= int(part)
            else:
                symbols.append(part)
    return value, symbols


def dim_div(num_dims, den_dims):
    """prod(num_dims) / prod(den_dims) with common symbols cancelled; int when possible.

    Returns None if everything is an int and the division is not exact.
    """
    n_val, n_sym = dim_factors(num_dims)
    d_val, d_sym = dim_factors(den_dims)
    for s in list(d_sym):
        if s in n_sym:
            n_sym.remove(s)
            d_sym.remove(s)
    if not n_sym and not d_sym:
        return n_val // d_val if d_val and n_val % d_val == 0 else None
    g = math.gcd(n_val, d_val) or 1
    n_val, d_val = n_val // g, d_val // g
    num = dim_mul(*n_sym, n_val)
    if not d_sym and d_val == 1:
        return num
    return f"{_wrap(num)}/{_wrap(dim_mul(*d_sym, d_val))}"


def dim_ceil_div(d, k):
    if isinstance(d, int):
        return -(-d // k)
    return d if k == 1 else f"ceil({d}/{k})"


def fmt_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# ---- Concat / Split ---------------------------------------------------------


def _concat_infer(ctx):
    shapes = [v.shape for v in ctx.inputs if v is not None]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ctx.error(f"all inputs must have the same rank, got shapes "
                        f"{', '.join(fmt_shape(s) for s in shapes)}")
    axis = norm_axis(ctx, ctx.attrs["axis"], rank)
    dtypes = {v.dtype for v in ctx.inputs if v is not None}
    if len(dtypes) > 1:
        raise ctx.error(f"inputs must share one dtype, got {', '.join(sorted(dtypes))}")
    out = []
    for k in range(rank):
        dims = [s[k] for s in shapes]
        if k == axis:
            out.append(dim_add(*dims))
            continue
        ints = {d for d in dims if isinstance(d, int)}
        if len(ints) > 1:
            raise ctx.error(f"inputs differ in dim {k} (not the concat axis {axis}): shapes "
                            f"{', '.join(fmt_shape(s) for s in shapes)}")
        out.append(ints.pop() if ints else dims[0])
    return [(ctx.dtype(0), tuple(out))]


@op("Concat", inputs=["inputs*"], outputs=["concat_result"],
    attrs=[Attr("axis", AttrKind.INT)], infer=_concat_infer)
def concat(*inputs, axis):
    """Join the inputs along `axis` (negative counts from the end)."""
    return np.concatenate(inputs, axis=axis)


def _split_sizes(dim, split, num_outputs, where="Split"):
    if split is not None:
        return [int(s) for s in np.asarray(split).reshape(-1)]
    if num_outputs <= 0:
        raise ValueError(f"{where}: needs the split input or num_outputs >= 1")
    chunk = dim_ceil_div(dim, num_outputs)
    if isinstance(dim, str):  # piece i: max(0, min(chunk, dim - i * chunk))
        return [chunk] + [f"split({dim},{num_outputs},{i})" for i in range(1, num_outputs)]
    return [max(0, min(chunk, dim - i * chunk)) for i in range(num_outputs)]


def _split_infer(ctx):
    shape = ctx.shape(0)
    axis = norm_axis(ctx, ctx.attrs["axis"], len(shape))
    num_outputs = ctx.attrs["num_outputs"]
    dim = shape[axis]
    if at_run_time(ctx, 1):  # sizes known when the op runs: one run-time dim per piece
        if num_outputs:
            raise ctx.error("give either the split input or num_outputs, not both")
        count = param_count(ctx, 1, "Split's split sizes")
        if count != ctx.num_outputs:
            raise ctx.error(f"split has {count} sizes but the node has {ctx.num_outputs} outputs")
        return [(ctx.dtype(0), tuple(run_time_dim(ctx, axis, k) if a == axis else d
                                     for a, d in enumerate(shape))) for k in range(count)]
    split = const_ints(ctx, 1, "Split's split sizes")
    if split is not None:
        if num_outputs:
            raise ctx.error("give either the split input or num_outputs, not both")
        if len(split) != ctx.num_outputs:
            raise ctx.error(f"split has {len(split)} sizes but the node has "
                            f"{ctx.num_outputs} outputs")
        if any(s < 0 for s in split):
            raise ctx.error(f"split sizes {split} must not be negative")
        if isinstance(dim, int) and sum(split) != dim:
            raise ctx.error(f"split sizes {split} sum to {sum(split)}, but dim {axis} of "
                            f"input shape {fmt_shape(shape)} is {dim}")
        sizes = split
    else:
        if num_outputs <= 0:
            raise ctx.error("needs the split input or the num_outputs attribute (the IR "
                            "always sets num_outputs when split is absent)")
        if num_outputs != ctx.num_outputs:
            raise ctx.error(f"num_outputs is {num_outputs} but the node has "
                            f"{ctx.num_outputs} outputs")
        sizes = _split_sizes(dim, None, num_outputs)
    out = []
    for size in sizes:
        s = list(shape)
        s[axis] = size
        out.append((ctx.dtype(0), tuple(s)))
    return out


@op("Split", inputs=["input", "split?"], outputs=["outputs*"],
    attrs=[Attr("axis", AttrKind.INT, 0), Attr("num_outputs", AttrKind.INT, 0)],
    infer=_split_infer)
def split(x, split=None, *, axis, num_outputs):
    """Split `input` along `axis` into pieces of the sizes in `split` (int64 input), or
    into `num_outputs` pieces of ceil(dim / num_outputs) (the last ones smaller, down to
    empty: a dim of 2 in 3 pieces is 1, 1, 0, and an empty dim gives empty pieces, as in
    onnxruntime).

    IR rule: when the `split` input is absent, the IR node always carries
    `num_outputs` (the ONNX frontend fills it from the node's output count for
    opset < 18 models), because the reference cannot see the node's outputs.
    """
    check_values("Split", [x, split], {"axis": axis, "num_outputs": num_outputs},
                 len(np.asarray(split).reshape(-1)) if split is not None else max(num_outputs, 1))
    dim = x.shape[axis]
    sizes = _split_sizes(dim, split, num_outputs)
    if sum(sizes) != dim:
        raise ValueError(f"Split: sizes {sizes} do not sum to dim {axis} ({dim})")
    bounds = np.cumsum([0] + sizes)
    index = [slice(None)] * x.ndim
    outs = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index[axis] = slice(int(lo), int(hi))
        outs.append(x[tuple(index)].copy())
    return tuple(outs)


# ---- Transpose / Reshape / Flatten / Squeeze / Unsqueeze --------------------


def _transpose_infer(ctx):
    shape = ctx.shape(0)
    perm = ctx.attrs["perm"] or list(range(len(shape)))[::-1]
    if sorted(perm) != list(range(len(shape))):
        raise ctx.error(f"perm {perm} is not a permutation of 0..{len(shape) - 1} "
                        f"(input shape {fmt_shape(shape)})")
    return [(ctx.dtype(0), tuple(shape[p] for p in perm))]


@op("Transpose", inputs=["data"], outputs=["transposed"],
    attrs=[Attr("perm", AttrKind.INTS, [])], infer=_transpose_infer)
def transpose(x, perm):
    """Permute the axes: output dim i = input dim perm[i]; empty perm reverses them."""
    return np.transpose(x, perm or None).copy()


def reshape_target(ctx, in_shape, target, allowzero):
    """Output shape of ONNX Reshape (0 copies the input dim unless allowzero, -1 is inferred)."""
    where = f"cannot reshape {fmt_shape(in_shape)} to {fmt_shape(target)}"
    if target.count(-1) > 1:
        raise ctx.error(f"{where}: at most one dim may be -1")
    if any(d < -1 for d in target):
        raise ctx.error(f"{where}: dims must be >= -1")
    if allowzero and 0 in target and -1 in target:
        raise ctx.error(f"{where}: with allowzero=1, 0 and -1 cannot both appear")
    out = []
    for k, d in enumerate(target):
        if d == 0 and not allowzero:
            if k >= len(in_shape):
                raise ctx.error(f"{where}: dim {k} is 0 (copy) but the input has rank "
                                f"{len(in_shape)}")
            out.append(in_shape[k])
        else:
            out.append(d)
    known = [d for d in out if d != -1]
    if -1 in out:
        inferred = dim_div(list(in_shape), known)
        if inferred is None:
            n_in, n_known = math.prod(in_shape), math.prod(known)
            raise ctx.error(f"{where}: {n_in} elements are not divisible by {n_known}")
        out[out.index(-1)] = inferred
    elif all(isinstance(d, int) for d in list(in_shape) + out):
        if math.prod(in_shape) != math.prod(out):
            raise ctx.error(f"{where}: element counts differ ({math.prod(in_shape)} vs "
                            f"{math.prod(out)})")
    return tuple(out)


def _reshape_symbolic(ctx, in_shape, target, allowzero):
    """Reshape target holding symbolic dims (computed from shapes at run time)."""
    where = f"cannot reshape {fmt_shape(in_shape)} to {fmt_shape(target)}"
    out = []
    for k, d in enumerate(target):
        if d == 0 and not allowzero and not isinstance(d, str):
            if k >= len(in_shape):
                raise ctx.error(f"{where}: dim {k} is 0 (copy) but the input has rank {len(in_shape)}")
            out.append(in_shape[k])
        else:
            out.append(d)
    if sum(1 for d in out if d == -1) > 1:
        raise ctx.error(f"{where}: at most one dim may be -1")
    if -1 in out:
        inferred = dim_div(list(in_shape), [d for d in out if d != -1])
        if inferred is None:
            raise ctx.error(f"{where}: element counts do not divide")
        out[out.index(-1)] = inferred
    return tuple(out)


def _reshape_infer(ctx):
    if at_run_time(ctx, 1, follows_symbols=True):
        rank = param_count(ctx, 1, "Reshape's shape")
        return [(ctx.dtype(0), tuple(run_time_dim(ctx, k) for k in range(rank)))]
    target = shape_input(ctx, 1, "Reshape's shape")
    if any(isinstance(d, str) for d in target):
        return [(ctx.dtype(0), _reshape_symbolic(ctx, ctx.shape(0), target, ctx.attrs["allowzero"]))]
    return [(ctx.dtype(0), reshape_target(ctx, ctx.shape(0), target, ctx.attrs["allowzero"]))]


@op("Reshape", inputs=["data", "shape"], outputs=["reshaped"],
    attrs=[Attr("allowzero", AttrKind.INT, 0)], infer=_reshape_infer)
def reshape(x, shape, allowzero):
    """Reshape to `shape` (int64 input): 0 copies the input dim (if allowzero=0,
    else means an empty dim), one -1 is inferred from the element count."""
    check_values("Reshape", [x, shape], {"allowzero": allowzero})
    target = [int(d) for d in np.asarray(shape).reshape(-1)]
    if not allowzero:
        target = [x.shape[k] if d == 0 else d for k, d in enumerate(target)]
    return x.reshape(target)


def _flatten_infer(ctx):
    shape = ctx.shape(0)
    axis = ctx.attrs["axis"]
    if not -len(shape) <= axis <= len(shape):
        raise ctx.error(f"axis {axis} is out of range for rank {len(shape)} "
                        f"(valid: {-len(shape)}..{len(shape)})")
    axis = axis + len(shape) if axis < 0 else axis
    return [(ctx.dtype(0), (dim_mul(*shape[:axis]), dim_mul(*shape[axis:])))]


@op("Flatten", inputs=["input"], outputs=["output"],
    attrs=[Attr("axis", AttrKind.INT, 1)], infer=_flatten_infer)
def flatten(x, axis):
    """2-D view: (prod(dims[:axis]), prod(dims[axis:])); axis in [-rank, rank]."""
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _squeeze_infer(ctx):
    shape = ctx.shape(0)
    if at_run_time(ctx, 1):
        rank = len(shape) - param_count(ctx, 1, "Squeeze's axes")
        if rank < 0:
            raise ctx.error(f"cannot squeeze more axes than the input {fmt_shape(shape)} has")
        return [(ctx.dtype(0), tuple(run_time_dim(ctx, k) for k in range(rank)))]
    axes = const_ints(ctx, 1, "Squeeze's axes")
    if axes is None:  # every dim of size 1; symbolic dims are assumed not to be 1
        return [(ctx.dtype(0), tuple(d for d in shape if d != 1))]
    axes = norm_axes(ctx, axes, len(shape))
    for a in axes:
        if isinstance(shape[a], int) and shape[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of shape {fmt_shape(shape)}: "
                            f"its size is {shape[a]}, not 1")
    return [(ctx.dtype(0), tuple(d for k, d in enumerate(shape) if k not in axes))]


@op("Squeeze", inputs=["data", "axes?"], outputs=["squeezed"], infer=_squeeze_infer)
def squeeze(x, axes=None):
    """Remove the listed size-1 axes (int64 input), or all size-1 axes if absent."""
    check_values("Squeeze", [x, axes], {})
    if axes is None:
        return np.squeeze(x).copy()
    return np.squeeze(x, axis=tuple(int(a) for a in np.asarray(axes).reshape(-1))).copy()


def _unsqueeze_infer(ctx):
    shape = ctx.shape(0)
    if at_run_time(ctx, 1):
        rank = len(shape) + param_count(ctx, 1, "Unsqueeze's axes")
        return [(ctx.dtype(0), tuple(run_time_dim(ctx, k) for k in range(rank)))]
    axes = const_ints(ctx, 1, "Unsqueeze's axes")
    rank = len(shape) + len(axes)
    axes = norm_axes(ctx, axes, rank)
    rest = iter(shape)
    return [(ctx.dtype(0), tuple(1 if k in axes else next(rest) for k in range(rank)))]


@op("Unsqueeze", inputs=["data", "axes"], outputs=["expanded"], infer=_unsqueeze_infer)
def unsqueeze(x, axes):
    """Insert size-1 dims at `axes` (int64 input, relative to the output rank)."""
    check_values("Unsqueeze", [x, axes], {})
    return np.expand_dims(x, tuple(int(a) for a in np.asarray(axes).reshape(-1))).copy()


# ---- Tile / Expand ------------------------------------------------------------


def _tile_infer(ctx):
    shape = ctx.shape(0)
    if at_run_time(ctx, 1, follows_symbols=True):
        if param_count(ctx, 1, "Tile's repeats") != len(shape):
            raise ctx.error(f"repeats {fmt_shape(ctx.shape(1))} must have one entry per input dim "
                            f"(input shape {fmt_shape(shape)})")
        return [(ctx.dtype(0), tuple(0 if d == 0 else run_time_dim(ctx, k) for k, d in enumerate(shape)))]
    repeats = shape_input(ctx, 1, "Tile's repeats")
    if len(repeats) != len(shape):
        raise ctx.error(f"repeats {repeats} must have one entry per input dim "
                        f"(input shape {fmt_shape(shape)})")
    if any(isinstance(r, int) and r < 0 for r in repeats):
        raise ctx.error(f"repeats {repeats} must not be negative")
    return [(ctx.dtype(0), tuple(dim_mul(d, r) for d, r in zip(shape, repeats)))]


@op("Tile", inputs=["input", "repeats"], outputs=["output"], infer=_tile_infer)
def tile(x, repeats):
    """Repeat the input repeats[i] times along dim i (repeats: int64, one per dim)."""
    check_values("Tile", [x, repeats], {})
    return np.tile(x, [int(r) for r in np.asarray(repeats).reshape(-1)])


def _expand_infer(ctx):
    if at_run_time(ctx, 1, follows_symbols=True):
        shape = tuple(ctx.shape(0))
        rank = max(len(shape), param_count(ctx, 1, "Expand's shape"))
        aligned = (1,) * (rank - len(shape)) + shape
        # a dim other than 1 stays (the target may only hold 1 or that dim there)
        return [(ctx.dtype(0), tuple(d if isinstance(d, int) and d != 1 else run_time_dim(ctx, k)
                                     for k, d in enumerate(aligned)))]
    target = shape_input(ctx, 1, "Expand's shape")
    return [(ctx.dtype(0), broadcast_shapes(ctx.shape(0), tuple(target), ctx=ctx))]


@op("Expand", inputs=["input", "shape"], outputs=["output"], infer=_expand_infer)
def expand(x, shape):
    """Broadcast the input against `shape` (int64 input); both ways, like numpy: a 1 in
    `shape` keeps the input's dim, and the output rank is the larger of the two."""
    check_values("Expand", [x, shape], {})
    target = np.broadcast_shapes(x.shape, tuple(int(d) for d in np.asarray(shape).reshape(-1)))
    return np.broadcast_to(x, target).copy()
