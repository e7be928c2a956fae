"""The C++ op table agrees with the Python registry (the source of truth), and
the C++ kernel table has a reference kernel for every OpType.

For every op of mobconv.ops.load_all(): the C++ table (mobrt_op_describe,
one JSON object per OpType value) has the same name at the same enum value,
the same attribute names and kinds, the same required/optional attributes
and the same defaults (floats compared as float32, since the file stores
float32); input/output counts follow the registry's "x?" (optional) and
"x*" (variadic) markers. The loader fills absent attributes with these
defaults, so agreement here means kernels see the registry's defaults.
"""
import numpy as np
import pytest

from mobconv.formats.fb.OpType import OpType
from mobconv.ops import load_all
from mobconv.ops.registry import REQUIRED

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

REG = load_all()
TABLE = runtime.op_table()
ENUM = {k: v for k, v in vars(OpType).items() if not k.startswith("_")}
KINDS = {"INT": "i", "FLOAT": "f", "STRING": "s", "INTS": "I", "FLOATS": "F", "STRINGS": "S", "TENSOR": "t"}


def test_table_covers_the_enum_in_order():
    assert len(TABLE) == len(ENUM), f"C++ knows {len(TABLE)} op types, the schema enum has {len(ENUM)}"
    for name, value in ENUM.items():
        assert TABLE[value]["name"] == name, f"OpType {value}: C++ says {TABLE[value]['name']}, enum says {name}"
    assert set(REG) == set(ENUM), (sorted(set(REG) ^ set(ENUM)))


def _counts(names):
    lo = sum(1 for n in names if not n.endswith(("?", "*")))
    variadic = any(n.endswith("*") for n in names)
    if variadic and lo == 0:
        lo = 1  # an op's only variadic group ("inputs*") takes at least one
    hi = -1 if variadic else len(names)
    return [lo, hi]


def _same_default(kind, ours, theirs):
    if kind == "f":
        return np.float32(ours) == np.float32(theirs)
    if kind == "F":
        return np.array_equal(np.float32(ours), np.float32(theirs))
    return list(ours) == list(theirs) if kind in "IS" else ours == theirs


@pytest.mark.parametrize("name", sorted(ENUM))
def test_op_agrees_with_registry(name):
    spec, row = REG[name], TABLE[ENUM[name]]
    assert row["inputs"] == _counts(spec.inputs), f"{name}: C++ inputs {row['inputs']}, registry {spec.inputs}"
    assert row["outputs"] == _counts(spec.outputs), f"{name}: C++ outputs {row['outputs']}, registry {spec.outputs}"
    cpp = {a["name"]: a for a in row["attrs"]}
    py = {a.name: a for a in spec.attrs}
    assert list(cpp) == list(py), f"{name}: C++ attributes {list(cpp)}, registry {list(py)}"
    for attr_name, a in py.items():
        c = cpp[attr_name]
        where = f"{name}.{attr_name}"
        assert c["kind"] == KINDS[a.kind.name], f"{where}: C++ kind {c['kind']}, registry {a.kind.name}"
        if a.default is REQUIRED:
            assert c["presence"] == "required", f"{where}: required in the registry, {c['presence']} in C++"
        elif a.default is None or c["kind"] == "t":
            # optional without a default (or a tensor default the kernel applies itself)
            assert c["presence"] == "optional", f"{where}: optional in the registry, {c['presence']} in C++"
        else:
            assert c["presence"] == "default", f"{where}: has default {a.default!r} in the registry"
            assert _same_default(c["kind"], c["default"], a.default), (
                f"{where}: C++ default {c['default']!r}, registry {a.default!r}")


@pytest.mark.parametrize("name", sorted(ENUM))
def test_op_has_a_reference_kernel(name):
    kernels = TABLE[ENUM[name]]["kernels"]
    ref = [k for k in kernels if k["isa"] == "scalar"]
    assert ref, f"{name}: no scalar reference kernel registered (kernels: {kernels})"
    assert all("unimplemented" not in k["name"] for k in ref), f"{name}: placeholder kernel {ref}"


def test_version_queries():
    lib = runtime._load()
    assert runtime.version() == "0.1.0"
    assert lib.mobrt_format_version_major() == 1
    assert lib.mobrt_op_describe(-1) is None and lib.mobrt_op_describe(len(TABLE)) is None
