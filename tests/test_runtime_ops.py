"""Every op: the C++ reference kernel (through the C API) vs the numpy reference.

One-node graphs are built with mobconv.ir.Graph and serialized with
mobconv.formats.writer.to_bytes; inputs are random with odd sizes. Failure
messages name op, variant, shape, index, expected and got.
"""
import numpy as np
import pytest

from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from runtime_cases import CASES, CTMS, REG, build, f32, i64  # noqa: F401 (shared with test_runtime_aarch64)

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("op,variant,inputs,attrs,n_out,rtol,atol", CASES)
def test_op_matches_numpy(op, variant, inputs, attrs, n_out, rtol, atol, threads):
    if op not in REG:
        pytest.skip(f"{op} has no numpy reference yet")
    g, feeds, expected = build(op, inputs, attrs, n_out)
    with runtime.Interpreter(to_bytes(g), threads=threads, isa="scalar") as it:
        got = it.run(feeds)
    for k, exp in enumerate(expected[:n_out]):
        out = got[f"out{k}"]
        where = f"{op} [{variant}] threads={threads} output {k}"
        assert out.shape == exp.shape, f"{where}: shape {out.shape}, expected {exp.shape}"
        assert out.dtype == exp.dtype, f"{where}: dtype {out.dtype}, expected {exp.dtype}"
        if exp.dtype.kind == "f":
            bad = ~np.isclose(out, exp, rtol=rtol, atol=atol, equal_nan=True)
        else:
            bad = out != exp
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            pytest.fail(f"{where}: input shapes {[getattr(v, 'shape', None) for v in feeds.values()]}, "
                        f"{int(bad.sum())} mismatches, first at index {idx}: expected {exp[idx]!r}, got {out[idx]!r}")


def test_every_op_has_a_kernel_and_a_case():
    """The C++ table covers the schema's OpType enum; list ops without a test case here."""
    from mobconv.formats.fb.OpType import OpType

    enum_ops = {k for k in vars(OpType) if not k.startswith("_")}
    tested = {p.values[0] for p in CASES}
    missing = sorted(enum_ops - tested - {"PriorBox", "DetectionOutput"})  # tests/test_runtime_detection.py
    assert not missing, f"ops without a runtime test case: {missing}"


def test_resize_cases_cover_every_reference_mode():
    """The Resize cases above use every mode, coordinate mode and nearest mode the numpy reference knows."""
    import inspect

    from mobconv.ops import resize as resize_module

    src = inspect.getsource(resize_module)
    seen = {(k, v if isinstance(v, (str, int, float)) else str(v))
            for p in CASES if p.values[0] == "Resize" for k, v in p.values[3].items()}
    for ctm in CTMS + ["tf_crop_and_resize"]:
        assert f'"{ctm}"' in src and ("coordinate_transformation_mode", ctm) in seen, ctm
    for mode in ["nearest", "linear", "cubic"]:
        assert ("mode", mode) in seen
    for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
        assert f'"{nm}"' in src and ("nearest_mode", nm) in seen, nm
    for key in ["antialias", "exclude_outside", "cubic_coeff_a", "extrapolation_value", "keep_aspect_ratio_policy",
                "axes"]:
        assert any(k == key for k, _ in seen), key


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_are_widened_at_load(dtype):
    """A .mob whose weights are float16 (or bfloat16) runs: weights are widened to
    float32 once at load; results equal the numpy reference run on the same
    half-precision values widened to float32."""
    from mobconv.formats.reader import from_bytes
    from mobconv.reference.interpreter import run as reference_run

    def half(a):
        if dtype == "float16":
            return a.astype(np.float16)
        import ml_dtypes

        return a.astype(ml_dtypes.bfloat16)

    g = Graph("half_weights")
    g.add_input("x", "float32", (1, 3, 9, 9))
    g.add_constant("w", half(f32(6, 3, 3, 3)))
    g.add_constant("b", half(f32(6)))
    g.add_constant("slope", half(f32(6, 1, 1, lo=0, hi=0.5)))
    g.add_constant("shape", i64(1, -1))
    g.add_constant("fc_w", half(f32(10, 6 * 7 * 7)))
    g.add_constant("fc_b", half(f32(10)))
    g.add_node("Conv", ["x", "w", "b"], ["c"])
    g.add_node("PRelu", ["c", "slope"], ["p"])
    g.add_node("Reshape", ["p", "shape"], ["r"])
    g.add_node("Gemm", ["r", "fc_w", "fc_b"], ["y"], {"transB": 1})
    g.outputs = ["y"]
    infer_shapes(g)
    data = to_bytes(g)
    stored = from_bytes(data)
    assert stored.values["w"].dtype == dtype, "the writer should keep half-precision weights as they are"
    x = f32(1, 3, 9, 9)
    # Reference: the same graph with the half values as float32 constants (the IR
    # holds bfloat16 as raw uint16 bits, which the numpy references do not widen).
    wide = g.copy()
    for name, v in wide.values.items():
        if v.data is not None and name != "shape":
            v.data = np.asarray(g.values[name].data).astype(np.float32)
            v.dtype = "float32"
    expected = reference_run(wide, {"x": x})["y"]
    for isa in ["scalar", None]:
        with runtime.Interpreter(data, isa=isa) as it:
            got = it.run({"x": x})["y"]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=f"isa={isa}")
