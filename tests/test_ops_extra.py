"""numpy references of ScatterND, ScatterElements, Trilu, OneHot, Einsum, GridSample,
Shrink and EyeLike: onnx's backend cases (every data set, the case's tolerance and
exact dtype), random inputs against onnx's own reference implementation
(`onnx.reference.ReferenceEvaluator`), shape functions (symbolic dims included)
and the errors for broken rules.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from mobconv.errors import MobconvError  # noqa: E402
from mobconv.ir import Graph, infer_shapes  # noqa: E402
from mobconv.ops import get_spec, load_all  # noqa: E402

OPS = ["ScatterND", "ScatterElements", "Trilu", "OneHot", "Einsum", "GridSample", "Shrink", "EyeLike",
       "NonMaxSuppression"]
REG = load_all()


def _backend_cases():
    from onnx.backend.test.case.node import collect_testcases

    return [c for c in collect_testcases() if c.kind == "node" and len(c.model.graph.node) == 1
            and c.model.graph.node[0].op_type in OPS]


BACKEND_CASES = _backend_cases()


def run_ref(op, attrs, inputs):
    spec = get_spec(op)
    node = type("N", (), {"name": "n", "op": op, "attrs": attrs})()
    return spec.run_reference(list(inputs), spec.resolve_attrs(node))


def _attrs(node):
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def test_every_op_has_backend_cases():
    assert {c.model.graph.node[0].op_type for c in BACKEND_CASES} == set(OPS)


@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: c.name)
def test_backend_case(case):
    node = case.model.graph.node[0]
    attrs = _attrs(node)
    if node.op_type == "GridSample" and attrs.get("mode") in ("bilinear", "bicubic"):
        attrs["mode"] = {"bilinear": "linear", "bicubic": "cubic"}[attrs["mode"]]
    for inputs, outputs in case.data_sets:
        got = run_ref(node.op_type, attrs, inputs)
        for g, want in zip(got, outputs):
            assert g.dtype == want.dtype, (g.dtype, want.dtype)
            np.testing.assert_allclose(g.astype(np.float64), want.astype(np.float64),
                                       rtol=case.rtol, atol=case.atol)


# ---- random inputs vs onnx.reference -------------------------------------------------------

rng = np.random.default_rng(3)
F = onnx.TensorProto.FLOAT


def _onnx_run(op, attrs, inputs, opset):
    names = [f"i{k}" for k in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **attrs)
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in zip(names, inputs)]
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", 0, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))[0]


def _f(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


RANDOM_CONFIGS = []
for red in ("none", "add", "mul", "max", "min"):
    idx = np.array([[1, -1], [0, 2], [1, -1]], np.int64) if red != "none" else np.array([[1, -1], [0, 2]])
    RANDOM_CONFIGS.append(("ScatterND", {"reduction": red}, [_f(3, 4, 5), idx, _f(len(idx), 5)]))
    RANDOM_CONFIGS.append(("ScatterElements", {"axis": 1, "reduction": red},
                           [_f(3, 6, 2), rng.integers(-6, 6, (3, 4, 2)) if red != "none"
                            else np.array([[[0, 1], [-1, 2], [3, -2]]] * 3), _f(3, 4 if red != "none" else 3, 2)]))
for k in (-3, -1, 0, 2, 8):
    for upper in (0, 1):
        RANDOM_CONFIGS.append(("Trilu", {"upper": upper}, [_f(2, 5, 7), np.array(k, np.int64)]))
for axis in (-3, -1, 0, 1):
    RANDOM_CONFIGS.append(("OneHot", {"axis": axis}, [rng.integers(-6, 6, (2, 3)), np.array(5, np.int64),
                                                      np.array([0.5, 2.0], np.float32)]))
for eq, shapes in [("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("...ii->...i", [(3, 4, 4)]), ("ij,jk", [(3, 4), (4, 2)]),
                   ("ij,jk,kl->li", [(2, 3), (3, 4), (4, 5)]), ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
                   ("i,i", [(7,), (7,)]), ("iij->j", [(3, 3, 5)]), ("Ab,bA->A", [(3, 4), (4, 3)])]:
    RANDOM_CONFIGS.append(("Einsum", {"equation": eq}, [_f(*s) for s in shapes]))
for mode in ("linear", "nearest", "cubic"):
    for pad in ("zeros", "border", "reflection"):
        for al in (0, 1):
            RANDOM_CONFIGS.append(("GridSample", {"mode": mode, "padding_mode": pad, "align_corners": al},
                                   [_f(1, 2, 4, 5), _f(1, 3, 4, 2, lo=-1.6, hi=1.6)]))
RANDOM_CONFIGS.append(("GridSample", {"mode": "linear", "padding_mode": "reflection"},
                       [_f(1, 2, 3, 4, 5), _f(1, 2, 2, 3, 3, lo=-1.5, hi=1.5)]))
for lambd, bias in ((0.5, 0.0), (1.0, 0.3), (0.0, 2.0)):
    RANDOM_CONFIGS.append(("Shrink", {"lambd": lambd, "bias": bias}, [_f(4, 9)]))
for k in (-4, -1, 0, 2, 5):
    RANDOM_CONFIGS.append(("EyeLike", {"k": k}, [_f(4, 6)]))
RANDOM_CONFIGS.append(("EyeLike", {"k": 1, "dtype": onnx.TensorProto.INT64}, [_f(3, 3)]))


def _boxes(n, b):
    c = _f(n, b, 2, lo=0, hi=1)
    return np.concatenate([c, c + _f(n, b, 2, lo=0.05, hi=0.6)], axis=-1)


for center in (0, 1):
    for limit, iou, thr in ((3, 0.3, 0.2), (20, 0.0, 0.5), (2, 0.7, None), (0, 0.5, None)):
        nms_inputs = [_boxes(2, 11), _f(2, 3, 11, lo=0, hi=1), np.array([limit], np.int64),
                      np.array([iou], np.float32)] + ([] if thr is None else [np.array([thr], np.float32)])
        RANDOM_CONFIGS.append(("NonMaxSuppression", {"center_point_box": center}, nms_inputs))

_OPSET = {"GridSample": 22, "ScatterND": 18, "ScatterElements": 18, "EyeLike": 22, "NonMaxSuppression": 11}


@pytest.mark.parametrize("op,attrs,inputs", RANDOM_CONFIGS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RANDOM_CONFIGS)])
def test_random_inputs_match_onnx_reference(op, attrs, inputs):
    want = _onnx_run(op, attrs, inputs, _OPSET.get(op, 21))
    got = run_ref(op, attrs, inputs)[0]
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- shape functions -------------------------------------------------------------------


def _infer(op, shapes, attrs=None, consts=None):
    g = Graph("g")
    names = []
    for k, s in enumerate(shapes):
        name = f"in{k}"
        if consts and k in consts:
            g.add_constant(name, consts[k])
        else:
            g.add_input(name, "int64" if op in ("ScatterND", "ScatterElements") and k == 1 else "float32", s)
        names.append(name)
    g.add_node(op, names, ["y"], attrs or {}, name="n")
    g.outputs = ["y"]
    infer_shapes(g)
    return g.values["y"].dtype, g.values["y"].shape


def test_shapes_keep_symbolic_dims():
    assert _infer("ScatterND", [("N", 5, 7), ("M", 2), ("M", 7)])[1] == ("N", 5, 7)
    assert _infer("ScatterElements", [("N", 5), ("N", 3), ("N", 3)], {"axis": 1})[1] == ("N", 5)
    assert _infer("Trilu", [("B", 4, 4)])[1] == ("B", 4, 4)
    assert _infer("Einsum", [("B", 3, 4), ("B", 4, 5)], {"equation": "bij,bjk->bik"})[1] == ("B", 3, 5)
    assert _infer("Einsum", [("B", 3, 4, 4)], {"equation": "...ii->...i"})[1] == ("B", 3, 4)
    assert _infer("GridSample", [("N", 3, 8, 8), ("N", 5, 6, 2)])[1] == ("N", 3, 5, 6)
    assert _infer("OneHot", [("N", 3), (), (2,)], {"axis": 1}, {1: np.array(10, np.int64),
                                                               2: np.array([0, 1], np.float32)}) == \
        ("float32", ("N", 10, 3))
    assert _infer("EyeLike", [(3, 4)], {"dtype": 7}) == ("int64", (3, 4))
    assert _infer("NonMaxSuppression", [("N", 9, 4), ("N", 2, 9)]) == ("int64", ("n_selected", 3))


@pytest.mark.parametrize("op,shapes,attrs,message", [
    ("ScatterND", [(3, 5), (2, 3), (2,)], {}, "exceeds the data rank"),
    ("ScatterND", [(3, 5), (2, 1), (2, 4)], {}, "must have shape indices[:-1] + data[k:]"),
    ("ScatterND", [(3, 5), (2, 1), (2, 5)], {"reduction": "sum"}, "reduction 'sum'"),
    ("ScatterElements", [(3, 5), (3, 5), (3, 4)], {}, "same shape"),
    ("ScatterElements", [(3, 5), (3, 5), (3, 5)], {"axis": 2}, "out of range"),
    ("Trilu", [(5,)], {}, "rank >= 2"),
    ("Einsum", [(3, 4), (5, 6)], {"equation": "ij,jk->ik"}, "different sizes"),
    ("Einsum", [(3, 4)], {"equation": "ijk->k"}, "does not match"),
    ("GridSample", [(1, 2, 4, 4), (1, 3, 3, 3)], {}, "must be (N, C, D1..Dr)"),
    ("GridSample", [(1, 2, 4, 4), (1, 3, 3, 2)], {"mode": "area"}, "mode 'area'"),
    ("EyeLike", [(2, 3, 4)], {}, "must be 2-D"),
    ("NonMaxSuppression", [(1, 9, 4), (1, 2, 8)], {}, "disagree on N or B"),
    ("NonMaxSuppression", [(1, 9, 5), (1, 2, 9)], {}, "must be (N, B, 4) and (N, C, B)"),
])
def test_shape_errors_name_the_rule(op, shapes, attrs, message):
    with pytest.raises(MobconvError, match=None) as info:
        _infer(op, shapes, attrs)
    assert message in str(info.value)


def test_onehot_depth_computed_at_run_time_gives_a_run_time_dim():
    assert _infer("OneHot", [(3,), (), (2,)]) == ("float32", (3, "n_dim1"))
    with pytest.raises(MobconvError, match="depth must be a scalar"):
        _infer("OneHot", [(3,), (2,), (2,)])


def test_scatter_index_out_of_range_is_an_error():
    with pytest.raises(IndexError, match="out of range"):
        run_ref("ScatterND", {}, [_f(3, 4), np.array([[3]]), _f(1, 4)])
    with pytest.raises(IndexError, match="out of range"):
        run_ref("ScatterElements", {"axis": 0}, [_f(3, 4), np.array([[-4]]), _f(1, 1)])


def test_nms_feeding_another_op_is_refused_by_the_runtime():
    """Like DetectionOutput: a data-dependent row count may only be a graph output."""
    runtime = pytest.importorskip("mobconv.runtime")
    if not runtime.available():
        pytest.skip("runtime not built")
    from mobconv.formats.writer import to_bytes

    g = Graph("nms_then_neg")
    g.add_input("boxes", "float32", (1, 5, 4))
    g.add_input("scores", "float32", (1, 2, 5))
    g.add_constant("limit", np.array([2], np.int64))
    g.add_node("NonMaxSuppression", ["boxes", "scores", "limit"], ["sel"], name="nms")
    g.add_node("Neg", ["sel"], ["y"])
    g.outputs = ["y"]
    infer_shapes(g)
    with pytest.raises(runtime.RuntimeError_, match="data-dependent size"):
        runtime.Interpreter(to_bytes(g))
