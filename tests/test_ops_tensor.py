"""Element-wise, shape/indexing, tensor and reduction op references vs ONNX.

Three sources of truth:
1. onnx's backend node test cases (`collect_testcases`) for every op of these
   families: each one-node case runs through our numpy reference (older opset
   forms mapped to the IR form the way the ONNX frontend does).
2. `onnx.reference.ReferenceEvaluator` on one-node opset-28 models with random
   inputs: broadcasting edge cases, odd sizes, negative axes.
3. Shape functions: `infer_shapes` on a one-node Graph must give the dtype and
   shape of the reference output, with int dims and with a symbolic first dim.

`python tests/test_ops_tensor.py` prints per-op pass counts of the backend cases.
"""
import math
import re
import sys
import warnings

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from mobconv.errors import MobconvError, ShapeError
from mobconv.ir import DTYPES, Graph, infer_shapes
from mobconv.ops import get_spec, load_all
from mobconv.ops.indexing import _slice_bounds, _slice_len

MODULES = ("elementwise", "shape_ops", "tensor_ops", "indexing", "reduce")
OPS = sorted(
    name for name, spec in load_all().items()
    if spec.reference.__module__.rsplit(".", 1)[-1] in MODULES
)
ALL_CONST = {"Range", "ConstantOfShape"}  # ops whose every input is a parameter


# ---- running one node ----------------------------------------------------------


def run_ref(op, attrs, inputs):
    spec = get_spec(op)
    node = type("N", (), {"name": "n", "op": op, "attrs": attrs})()
    return spec.run_reference(list(inputs), spec.resolve_attrs(node))


def _eval_dim(dim, env):
    if isinstance(dim, int):
        return dim
    funcs = {
        "ceil": math.ceil,
        "slice": lambda d, s, e, st: _slice_len(*_slice_bounds(d, s, e, st), st),
        "split": lambda d, n, i: max(0, min(-(-d // n), d - i * -(-d // n))),
    }
    expr = re.sub(r"[A-Za-z_]\w*", lambda m: m.group(0) if m.group(0) in funcs
                  else str(env[m.group(0)]), dim)
    value = eval(expr, funcs)
    assert float(value).is_integer(), f"dim {dim!r} evaluates to {value}"
    return int(value)


def check_shapes(op, attrs, inputs, expected, symbolic=False):
    """infer_shapes on a one-node graph agrees with the reference outputs.

    Input 0 is a graph input (its first dim the symbol "N" when symbolic), the
    others are constants. Returns False if a dtype is outside the IR.
    """
    arrays = [a for a in inputs if a is not None]
    if any(a.dtype.name not in DTYPES for a in arrays + list(expected)):
        return False
    g = Graph()
    names, env = [], {}
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        name = f"in{i}"
        if i == 0 and op not in ALL_CONST:
            shape = list(a.shape)
            if symbolic:
                env["N"] = shape[0]
                shape[0] = "N"
            g.add_input(name, a.dtype.name, shape)
        else:
            g.add_constant(name, a)
        names.append(name)
    outs = [f"out{j}" for j in range(len(expected))]
    g.add_node(op, names, outs, attrs)
    g.outputs = outs
    infer_shapes(g)
    for name, exp in zip(outs, expected):
        v = g.values[name]
        assert v.dtype == exp.dtype.name, f"{op} {name}: inferred dtype {v.dtype}, got {exp.dtype}"
        got = tuple(_eval_dim(d, env) for d in v.shape)
        assert got == exp.shape, f"{op} {name}: inferred shape {v.shape} -> {got}, got {exp.shape}"
    return True


def check_all_shapes(op, attrs, inputs, expected):
    if not check_shapes(op, attrs, inputs, expected):
        return
    first = inputs[0]
    if op not in ALL_CONST and first is not None and first.ndim and first.shape[0] > 1:
        check_shapes(op, attrs, inputs, expected, symbolic=True)


def assert_same(got, exp, rtol, atol, what):
    assert got.dtype == exp.dtype, f"{what}: dtype {got.dtype}, expected {exp.dtype}"
    assert got.shape == exp.shape, f"{what}: shape {got.shape}, expected {exp.shape}"
    if exp.dtype.kind in "biu":
        np.testing.assert_array_equal(got, exp, err_msg=what)
    else:
        np.testing.assert_allclose(got.astype(np.float64), exp.astype(np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


# ---- 1. onnx backend node test cases --------------------------------------------------


def _array(x):
    return numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x)


def _attr(a):
    value = helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return value


def _backend_cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return [c for c in cases if len(c.model.graph.node) == 1
            and c.model.graph.node[0].op_type in OPS]


BACKEND_CASES = _backend_cases()


def to_ir(case):
    """(op, attrs, inputs, expected outputs) of a one-node case, in the IR form."""
    g = case.model.graph
    node = g.node[0]
    feeds_in, feeds_out = case.data_sets[0]
    by_name = {vi.name: _array(x) for vi, x in zip(g.input, feeds_in)}
    out_by_name = {vi.name: _array(x) for vi, x in zip(g.output, feeds_out)}
    attrs = {a.name: _attr(a) for a in node.attribute}
    inputs = [by_name[n] if n else None for n in node.input]
    if node.op_type == "Split" and len(inputs) < 2 and "num_outputs" not in attrs:
        attrs["num_outputs"] = len(node.output)  # opset < 18: equal parts, one per output
    if node.op_type == "Dropout" and "ratio" in attrs:  # opset < 12: ratio attribute
        inputs = inputs[:1] + [np.array(attrs.pop("ratio"), np.float32)]
    expected = [out_by_name[n] for n in node.output]
    return node.op_type, attrs, inputs, expected


def backend_case_status(case):
    """'pass', or 'n/a: <reason>' for dtypes outside the reference; raises on a failure."""
    op, attrs, inputs, expected = to_ir(case)
    if op == "Cast" and attrs.get("to") in (8, 24) or any(
            a is not None and a.dtype.kind in "OSU" for a in inputs):
        return "n/a: string / float8e8m0 cast"
    got = run_ref(op, attrs, inputs)
    assert len(got) >= len(expected)
    for k, exp in enumerate(expected):
        assert_same(got[k], exp, case.rtol, case.atol, f"{case.name} output {k}")
    check_all_shapes(op, attrs, inputs, expected)
    return "pass"


def _expressible(case):
    """String tensors and float8e8m0 casts are outside the IR: not collected as tests."""
    op, attrs, inputs, _ = to_ir(case)
    return not (op == "Cast" and attrs.get("to") in (8, 24)
                or any(a is not None and a.dtype.kind in "OSU" for a in inputs))


EXPRESSIBLE_CASES = [c for c in BACKEND_CASES if _expressible(c)]


@pytest.mark.parametrize("case", EXPRESSIBLE_CASES, ids=[c.name for c in EXPRESSIBLE_CASES])
def test_backend_case(case):
    assert backend_case_status(case) == "pass"


def test_backend_cases_cover_every_op():
    covered = {c.model.graph.node[0].op_type for c in BACKEND_CASES}
    assert not set(OPS) - covered, f"no backend case for {sorted(set(OPS) - covered)}"
    assert len(BACKEND_CASES) > 500


# ---- 2. random inputs vs onnx.reference.ReferenceEvaluator -------------------------------

RNG = np.random.default_rng(1234)


def rand(shape, dtype="float32", low=-5, high=5):
    if dtype == "bool":
        return RNG.random(shape) > 0.5
    if np.dtype(dtype).kind in "iu":
        return RNG.integers(low, high, size=shape).astype(dtype)
    return RNG.uniform(low, high, size=shape).astype(dtype)


def nonzero(shape, dtype="float32"):
    x = rand(shape, dtype, 1, 9)
    return np.where(rand(shape, "bool"), x, -x).astype(dtype) if np.dtype(dtype).kind != "u" else x


def i64(*v):
    return np.array(v, dtype=np.int64)


def onnx_run(op, attrs, inputs, n_out):
    in_names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    out_names = [f"y{j}" for j in range(n_out)]
    node = helper.make_node(op, in_names, out_names, **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in zip(in_names, inputs) if a is not None]
    outs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in out_names]
    model = helper.make_model(helper.make_graph([node], "g", vi, outs),
                              opset_imports=[helper.make_opsetid("", 28)])
    feeds = {n: a for n, a in zip(in_names, inputs) if a is not None}
    return ReferenceEvaluator(model).run(None, feeds)


BCAST = [((3, 4), (3, 4)), ((2, 3, 5), (5,)), ((1,), (5, 1, 7)), ((13, 1), (1, 13)),
         ((), (2, 3)), ((2, 1, 3), (1, 4, 1)), ((0, 3), (1, 3)), ((7, 1, 1), (7, 2, 1))]


def _elementwise_configs():
    for op in ("Add", "Sub", "Mul"):
        for a, b in BCAST:
            for dt in ("float32", "int32"):
                yield op, {}, [rand(a, dt), rand(b, dt)], 1
    for a, b in BCAST:
        for dt in ("float32", "int32", "int64", "uint8", "float16"):
            yield "Div", {}, [rand(a, dt, 0, 100) if dt == "uint8" else rand(a, dt, -50, 50),
                              nonzero(b, dt)], 1
        for fmod in (0, 1):
            for dt in ("float32", "int32", "int16"):
                yield "Mod", {"fmod": fmod}, [rand(a, dt, -20, 20), nonzero(b, dt)], 1
        yield "Pow", {}, [rand(a, "float32", 0.1, 3), rand(b, "float32", -2, 2)], 1
        yield "Pow", {}, [rand(a, "float32", -3, 3), rand(b, "int64", 0, 4)], 1
        yield "Pow", {}, [rand(a, "int32", -3, 4), rand(b, "int32", 0, 4)], 1
        for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
            yield op, {}, [rand(a, "int32", -2, 2), rand(b, "int32", -2, 2)], 1
            yield op, {}, [rand(a, "float32"), rand(b, "float32")], 1
        for op in ("And", "Or", "Xor"):
            yield op, {}, [rand(a, "bool"), rand(b, "bool")], 1
        yield "Where", {}, [rand(a, "bool"), rand(b), rand(a)], 1
        yield "Where", {}, [rand((1,), "bool"), rand(a, "int64"), rand(b, "int64")], 1
    for op in ("Max", "Min", "Sum", "Mean"):
        yield op, {}, [rand((3, 4))], 1
        yield op, {}, [rand((2, 3, 5)), rand((3, 1)), rand((5,))], 1
        if op != "Mean":  # onnx's Mean accumulates in place into the first input
            yield op, {}, [rand((2, 1, 5)), rand((3, 1)), rand((5,))], 1
            yield op, {}, [rand((4, 1)), rand((1, 6))], 1
        if op != "Mean":
            yield op, {}, [rand((3, 4), "int32"), rand((4,), "int32")], 1


def _shape_configs():
    for axis in (0, 1, -1, 2, -3):
        shapes = [(2, 3, 4)] * 3
        shapes = [tuple(d + k if i == (axis % 3) else d for i, d in enumerate(s))
                  for k, s in enumerate(shapes)]
        yield "Concat", {"axis": axis}, [rand(s) for s in shapes], 1
    yield "Concat", {"axis": 0}, [rand((0, 2)), rand((3, 2), "float32")], 1
    yield "Split", {"axis": 1, "num_outputs": 3}, [rand((2, 7))], 3
    yield "Split", {"axis": -1, "num_outputs": 2}, [rand((3, 2, 6))], 2
    yield "Split", {"axis": 0}, [rand((10, 3)), i64(2, 0, 5, 3)], 4
    yield "Split", {"axis": -2}, [rand((2, 5, 3)), i64(1, 4)], 2
    x = rand((5, 6, 7))
    for starts, ends, axes, steps in [
        ((1,), (4,), None, None), ((0, 1), (-1, 1000), (1, 2), None),
        ((-2,), (-100,), (0,), (-1,)), ((100,), (0,), (-1,), (-2,)),
        ((1, 0, 6), (5, 6, 0), (0, 1, 2), (2, 3, -3)), ((-1,), (-9223372036854775807,), (1,), (-1,)),
        ((2,), (2,), (2,), (1,)), ((-10,), (3,), (-2,), (1,)),
    ]:
        ins = [x, i64(*starts), i64(*ends)]
        ins += [None if axes is None else i64(*axes)] if axes or steps else []
        ins += [i64(*steps)] if steps else []
        yield "Slice", {}, ins, 1
    for perm in (None, [0, 2, 1], [2, 0, 1]):
        yield "Transpose", ({"perm": perm} if perm else {}), [rand((2, 3, 5))], 1
    for shape, allowzero in [((6, -1), 0), ((0, -1), 0), ((-1,), 0), ((2, 0, -1), 0),
                             ((3, 5, 2), 0), ((0, 3), 1)]:
        data = rand((0, 5) if allowzero else (2, 3, 5))
        yield "Reshape", {"allowzero": allowzero}, [data, i64(*shape)], 1
    for axis in (0, 1, 2, 3, -1, -3):
        yield "Flatten", {"axis": axis}, [rand((2, 3, 1, 5))], 1
    yield "Squeeze", {}, [rand((1, 3, 1, 5)), i64(0, -2)], 1
    yield "Squeeze", {}, [rand((1, 3, 1, 5))], 1
    yield "Unsqueeze", {}, [rand((3, 5)), i64(0, -1)], 1
    yield "Unsqueeze", {}, [rand((3, 5)), i64(3, 1)], 1
    for mode in ("constant", "reflect", "edge", "wrap"):
        yield "Pad", {"mode": mode}, [rand((3, 5), "int32"), i64(1, 2, 2, 1)], 1
        yield "Pad", {"mode": mode}, [rand((2, 3, 4)), i64(0, 2, 1, 3), None, i64(-1, 0)], 1
    for axis in (0, 1, -1):
        yield "Gather", {"axis": axis}, [rand((4, 5, 3)), RNG.integers(-3, 3, (2, 3))], 1
        yield "GatherElements", {"axis": axis}, [rand((4, 5, 3)),
                                                 RNG.integers(-3, 3, (4, 5, 3)).astype(np.int32)], 1
    yield "Gather", {"axis": 0}, [rand((5, 2), "int64"), np.array(3, np.int64)], 1
    for start, end in [(0, None), (1, None), (-2, None), (0, -1), (2, 1), (-9, 9)]:
        attrs = {"start": start} if end is None else {"start": start, "end": end}
        yield "Shape", attrs, [rand((2, 3, 4))], 1
    yield "Size", {}, [rand((2, 3, 4))], 1
    yield "Size", {}, [rand((0, 3))], 1
    yield "Tile", {}, [rand((2, 3)), i64(3, 1)], 1
    yield "Tile", {}, [rand((2, 1, 3), "int32"), i64(1, 4, 2)], 1
    yield "Expand", {}, [rand((3, 1)), i64(2, 1, 4)], 1
    yield "Expand", {}, [rand((3, 4)), i64(1)], 1
    yield "ConstantOfShape", {"value": numpy_helper.from_array(np.array([7], np.int32))}, \
        [i64(2, 3)], 1
    yield "ConstantOfShape", {}, [i64(4)], 1
    yield "Identity", {}, [rand((3, 2), "int64")], 1
    yield "Dropout", {}, [rand((3, 4)), np.float32(0.3)], 2
    for to, dt in [(1, "int32"), (7, "float32"), (10, "float32"), (9, "float32"), (6, "int64"),
                   (3, "int32"), (1, "bool"), (2, "int32"), (16, "float32"), (1, "float16")]:
        yield "Cast", {"to": to}, [rand((3, 4), dt, -300, 300)], 1
    yield "Range", {}, [np.int64(3), np.int64(17), np.int64(4)], 1
    yield "Range", {}, [np.int32(10), np.int32(-3), np.int32(-3)], 1
    yield "Range", {}, [np.float32(0.5), np.float32(4.0), np.float32(0.75)], 1
    yield "Range", {}, [np.float32(1), np.float32(0), np.float32(1)], 1
    for exclusive in (0, 1):
        for reverse in (0, 1):
            for axis in (0, -1):
                attrs = {"exclusive": exclusive, "reverse": reverse}
                yield "CumSum", attrs, [rand((3, 5)), np.int64(axis)], 1
                yield "CumSum", attrs, [rand((4,), "int32"), np.int32(0)], 1


REDUCE = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
          "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"]


def _reduce_configs():
    for op in REDUCE:
        for axes in (None, i64(), i64(1), i64(-1, 0), i64(0, 2)):
            for keepdims in (0, 1):
                ins = [rand((3, 4, 5), "float32", -2, 2)] + ([axes] if axes is not None else [])
                yield op, {"keepdims": keepdims}, ins, 1
        yield op, {"noop_with_empty_axes": 1}, [rand((3, 4), "float32", -2, 2)], 1
        yield op, {"noop_with_empty_axes": 1}, [rand((3, 4), "float32", -2, 2), i64(1)], 1
        if op not in ("ReduceLogSumExp", "ReduceSumSquare"):  # float only / onnx widens
            yield op, {"keepdims": 0}, [rand((2, 3), "int32", -3, 4), i64(1)], 1
        yield op, {}, [rand((2, 0, 3)), i64(1)], 1
    for op in ("ArgMax", "ArgMin"):
        for axis in (0, 1, -1):
            for keepdims in (0, 1):
                for last in (0, 1):
                    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": last}
                    yield op, attrs, [rand((3, 4, 5), "int32", 0, 3)], 1
    for axis in (0, -1, 1):
        for largest in (0, 1):
            attrs = {"axis": axis, "largest": largest}
            yield "TopK", attrs, [rand((5, 6, 4), "int32", 0, 3), i64(3)], 2
            yield "TopK", attrs, [rand((5, 6, 4)), i64(2)], 2
    yield "TopK", {}, [rand((3, 4)), i64(0)], 2
    yield "TopK", {}, [rand((3, 4)), i64(4)], 2


RANDOM_CONFIGS = list(_elementwise_configs()) + list(_shape_configs()) + list(_reduce_configs())


def _ids(configs):
    counts = {}
    result = []
    for op, *_ in configs:
        counts[op] = counts.get(op, 0) + 1
        result.append(f"{op}-{counts[op]}")
    return result


@pytest.mark.parametrize("op,attrs,inputs,n_out", RANDOM_CONFIGS, ids=_ids(RANDOM_CONFIGS))
def test_random_vs_onnx_reference(op, attrs, inputs, n_out):
    inputs = [None if a is None else np.asarray(a) for a in inputs]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = [np.asarray(e) for e in onnx_run(op, attrs, inputs, n_out)]
    ir_attrs = {k: (numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v)
                for k, v in attrs.items()}
    got = run_ref(op, ir_attrs, inputs)
    for k, exp in enumerate(expected):
        what = f"{op} {ir_attrs} on {[None if a is None else a.shape for a in inputs]} out {k}"
        assert_same(got[k], exp, 1e-5, 1e-6, what)
    check_all_shapes(op, ir_attrs, inputs, expected)


ORT_CONFIGS = [  # cases onnx's ReferenceEvaluator does not handle; onnxruntime at opset 21
    ("Pad", {"mode": "constant"}, [rand((4, 5)), i64(-1, 2, 1, -2), np.float32(1.5)]),
    ("Pad", {"mode": "edge"}, [rand((3, 4, 5)), i64(2, -1, 1, 1), None, i64(0, -1)]),
    ("Pad", {"mode": "reflect"}, [rand((3, 6), "int32"), i64(-1, 2, 0, -3)]),
    ("GatherElements", {"axis": 1}, [rand((4, 5, 3)), RNG.integers(-5, 5, (2, 7, 3))]),
    ("GatherElements", {"axis": 0}, [rand((4, 5)), RNG.integers(-4, 4, (6, 2))]),
    ("GatherElements", {"axis": -1}, [rand((4, 5)), RNG.integers(0, 5, (4, 1))]),
]


@pytest.mark.parametrize("op,attrs,inputs", ORT_CONFIGS, ids=_ids(ORT_CONFIGS))
def test_random_vs_onnxruntime(op, attrs, inputs):
    ort = pytest.importorskip("onnxruntime")
    inputs = [None if a is None else np.asarray(a) for a in inputs]
    in_names = [f"x{i}" if a is not None else "" for i, a in enumerate(inputs)]
    node = helper.make_node(op, in_names, ["y"], **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in zip(in_names, inputs) if a is not None]
    out = helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(inputs[0].dtype),
                                        None)
    model = helper.make_model(helper.make_graph([node], "g", vi, [out]),
                              opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {n: a for n, a in zip(in_names, inputs) if a is not None})
    got = run_ref(op, attrs, inputs)
    assert_same(got[0], expected, 1e-6, 1e-6, f"{op} {attrs}")
    check_all_shapes(op, attrs, inputs, [expected])


def test_every_op_has_random_cases():
    assert set(OPS) == {c[0] for c in RANDOM_CONFIGS}


# ---- 3. shape-function rules and error messages ------------------------------------------


def _infer_one(op, attrs, inputs, n_out=1):
    """inputs: list of ("input", dtype, shape) or ("const", array)."""
    g = Graph()
    names = []
    for i, spec in enumerate(inputs):
        name = f"in{i}"
        if spec[0] == "input":
            g.add_input(name, spec[1], spec[2])
        else:
            g.add_constant(name, spec[1])
        names.append(name)
    g.add_node(op, names, ["out"] + [f"out{k}" for k in range(1, n_out)], attrs, name="node")
    infer_shapes(g)
    return g.values["out"].shape


def test_symbolic_dims_carry_through():
    n = ("input", "float32", ("N", 3, 4, 4))
    assert _infer_one("Reshape", {}, [n, ("const", i64(0, -1))]) == ("N", 48)
    assert _infer_one("Reshape", {}, [n, ("const", i64(-1, 16))]) == ("N*3", 16)
    assert _infer_one("Flatten", {"axis": 1}, [n]) == ("N", 48)
    assert _infer_one("Concat", {"axis": 0}, [n, ("input", "float32", (2, 3, 4, 4))]) == (
        "N+2", 3, 4, 4)
    assert _infer_one("Shape", {}, [n]) == (4,)
    assert _infer_one("Slice", {}, [n, ("const", i64(1)), ("const", i64(2**62)),
                                    ("const", i64(0))]) == ("N-1", 3, 4, 4)
    assert _infer_one("Slice", {}, [n, ("const", i64(-1)), ("const", i64(-2**62)),
                                    ("const", i64(0)), ("const", i64(-1))]) == ("N", 3, 4, 4)
    assert _infer_one("ReduceMean", {"keepdims": 0}, [n, ("const", i64(2, 3))]) == ("N", 3)
    assert _infer_one("Add", {}, [n, ("input", "float32", (4, 1))]) == ("N", 3, 4, 4)


@pytest.mark.parametrize("op,attrs,inputs,message", [
    ("Reshape", {}, [("input", "float32", (2, 3, 4)), ("const", i64(5, -1))],
     r"cannot reshape \(2, 3, 4\) to \(5, -1\)"),
    ("Reshape", {}, [("input", "float32", (2, 3, 4)), ("const", i64(5, 5))],
     r"cannot reshape \(2, 3, 4\) to \(5, 5\): element counts differ \(24 vs 25\)"),
    ("Reshape", {}, [("input", "float32", (2, 3)), ("input", "int64", ("n",))],
     r"shape \(input 1, 'in1'\) is computed at run time, so its length must be known"),
    ("Slice", {}, [("input", "float32", (4,)), ("input", "int64", (2,)), ("const", i64(2))],
     r"one entry each per sliced axis \(got 2, 1\)"),
    ("Concat", {"axis": 0}, [("input", "float32", (2, 3)), ("input", "float32", (2, 4))],
     r"differ in dim 1"),
    ("Add", {}, [("input", "float32", (2, 3)), ("input", "float32", (4,))],
     r"do not broadcast"),
    ("Add", {}, [("input", "float32", (2, 3)), ("input", "int64", (3,))],
     r"same dtype"),
    ("TopK", {}, [("input", "float32", (2, 3)), ("input", "int64", (2,))],
     r"K must be one integer, got shape \(2,\)"),
    ("TopK", {}, [("input", "float32", (2, 3)), ("const", i64(4))], r"K=4 exceeds dim 1"),
    ("Cast", {"to": 11}, [("input", "float32", (2,))], r"cannot cast to ONNX dtype 11"),
    ("ReduceSum", {"keepdims": 0}, [("input", "float32", (2, 3)), ("input", "int64", (3,))],
     r"cannot reduce more axes than the input \(2, 3\) has"),
    ("Transpose", {"perm": [0, 0]}, [("input", "float32", (2, 3))], r"not a permutation"),
    ("Squeeze", {}, [("input", "float32", (2, 3)), ("const", i64(0))], r"size is 2, not 1"),
    ("Gather", {"axis": 2}, [("input", "float32", (2, 3)), ("input", "int64", (4,))],
     r"axis 2 is out of range for a tensor of rank 2"),
    ("Split", {"axis": 0}, [("input", "float32", (6,)), ("const", i64(2, 3))],
     r"sum to 5, but dim 0"),
    ("Split", {"axis": 0}, [("input", "float32", (6,))], r"needs the split input or the num"),
    ("Where", {}, [("input", "float32", (2,)), ("input", "float32", (2,)),
                   ("input", "float32", (2,))], r"condition must be bool"),
    ("GatherElements", {}, [("input", "float32", (2, 3)), ("input", "int64", (2, 4))],
     r"exceed data \(2, 3\) in dim 1"),
    ("Range", {}, [("input", "int64", (2,)), ("const", np.int64(4)), ("const", np.int64(1))],
     r"start must be a scalar, got shape \(2,\)"),
])
def test_shape_errors(op, attrs, inputs, message):
    with pytest.raises(ShapeError, match=message) as info:
        _infer_one(op, attrs, inputs, n_out={"TopK": 2, "Split": 2}.get(op, 1))
    assert "node 'node'" in str(info.value)


def test_cast_to_attribute_rejects_missing():
    with pytest.raises(MobconvError, match="required attribute 'to'"):
        _infer_one("Cast", {}, [("input", "float32", (2,))])


# ---- per-op pass counts --------------------------------------------------------------------


def backend_summary():
    table = {}
    for case in BACKEND_CASES:
        op = case.model.graph.node[0].op_type
        row = table.setdefault(op, [0, 0, 0])
        try:
            status = backend_case_status(case)
            row[0 if status == "pass" else 2] += 1
        except Exception as exc:  # report, do not stop
            row[1] += 1
            print(f"FAIL {case.name}: {str(exc).splitlines()[0][:200]}", file=sys.stderr)
    return table


if __name__ == "__main__":
    rows = backend_summary()
    print(f"{'op':18s} pass fail n/a")
    for op in sorted(rows):
        print(f"{op:18s} {rows[op][0]:4d} {rows[op][1]:4d} {rows[op][2]:3d}")
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    print(f"{'total':18s} {total[0]:4d} {total[1]:4d} {total[2]:3d}")


@pytest.mark.parametrize("start,end", [(-2**62, -2**31), (-2**62, -1), (-2**62, 2**62), (-2**31, -1),
                                       (-3, 2**62), (0, -1), (1, 5), (-2**63, -2**63)])
def test_slice_on_a_symbolic_dim_with_huge_bounds_matches_numpy(start, end):
    """Bounds at or beyond +-(2^31-1) mean "from the start" / "to the end" / "before the start"
    on a symbolic dim (the graph fuzzer's seed 31 inferred 2^62 - 2^31 for x[-2^62:-2^31])."""
    g = Graph("slice_sym")
    g.add_input("x", "float32", ("n", 3))
    g.add_constant("st", np.array([start], np.int64))
    g.add_constant("en", np.array([end], np.int64))
    g.add_node("Slice", ["x", "st", "en"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    dim = g.values["y"].shape[0]
    for n in (5, 7, 100):  # the symbol is assumed at least as large as the small explicit bounds
        got = len(np.zeros((n, 3))[max(start, -2**62):min(end, 2**62)])
        want = dim if isinstance(dim, int) else eval(dim, {}, {"n": n})
        assert want == got, (start, end, n, dim)
