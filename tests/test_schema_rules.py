"""Rules of formats/mobconv.fbs: append-only evolution, and agreement with the code using it.

- Tables only grow at the end and enums only append (checked against the 1.0 snapshot).
- The reader's structural layout (formats/reader.py LAYOUT) equals the schema's tables.
- The OpType enum names equal the op registry's names; DType covers the IR dtypes.
"""
import re
from pathlib import Path

from mobconv.formats import dtypes, reader, version
from mobconv.ir.graph import DTYPES

SCHEMA = Path(__file__).resolve().parent.parent / "formats" / "mobconv.fbs"

# ---- the format as of version 1.0: later schemas must extend, never change, this ----
OPTYPE_1_0 = """
Conv ConvTranspose Gemm MatMul BatchNormalization Add Sub Mul Div Pow Max Min Relu LeakyRelu
PRelu Clip Sigmoid Tanh HardSigmoid HardSwish Elu Selu Softplus Gelu Erf Exp Log Sqrt Abs
Neg Reciprocal MaxPool AveragePool GlobalAveragePool GlobalMaxPool LRN Softmax LogSoftmax
Concat Split Slice Transpose Reshape Flatten Squeeze Unsqueeze Pad Gather Shape Resize
DepthToSpace SpaceToDepth ReduceMean ReduceSum ReduceMax ReduceMin ArgMax ArgMin Cast
InstanceNormalization LayerNormalization Tile Expand Where Equal Less Greater
ConstantOfShape Identity Dropout ReduceProd ReduceL1 ReduceL2 ReduceSumSquare
ReduceLogSumExp TopK Floor Ceil Round Sign Sin Cos Not And Or Xor LessOrEqual GreaterOrEqual
Sum Mean Range Mod Softsign Mish Celu ThresholdedRelu LpNormalization
MeanVarianceNormalization GatherElements CumSum Hardmax Size PriorBox DetectionOutput
""".split()
DTYPE_1_0 = "FLOAT32 FLOAT16 BFLOAT16 INT8 UINT8 INT16 INT32 INT64 BOOL".split()
ATTRTYPE_1_0 = "INT FLOAT STRING INTS FLOATS STRINGS TENSOR".split()
TABLES_1_0 = {
    "Dim": "value symbol",
    "Quantization": "scales zero_points axis",
    "Tensor": "name dtype shape buffer quantization",
    "Buffer": "data",
    "Attribute": "name type i f s ints floats strings tensor",
    "Operator": "type version name inputs outputs attributes",
    "Graph": "name tensors operators inputs outputs",
    "Preprocessing": "mean scale channel_order",
    "SignatureTensor": "name dtype shape layout",
    "Signature": "inputs outputs preprocessing",
    "KeyValue": "key value",
    "Metadata": "producer converter_version source_framework source_sha256 "
                "min_runtime_version options extra",
    "NamedArray": "name dtype shape data",
    "TestVector": "inputs outputs rtol atol",
    "Model": "version_major version_minor graph buffers signature metadata test_vectors",
}

# ---- a small .fbs parser (enough for this schema) -------------------------------------
_SIZES = {"bool": 1, "byte": 1, "ubyte": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2,
          "int16": 2, "uint16": 2, "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4,
          "float32": 4, "long": 8, "ulong": 8, "int64": 8, "uint64": 8, "double": 8,
          "float64": 8}


def parse_schema():
    text = re.sub(r"//[^\n]*", "", SCHEMA.read_text())
    enums, tables = {}, {}
    for name, base, body in re.findall(r"enum\s+(\w+)\s*:\s*(\w+)\s*\{([^}]*)\}", text):
        values, nxt = {}, 0
        for item in filter(None, (s.strip() for s in body.split(","))):
            key, _, val = (p.strip() for p in item.partition("="))
            nxt = int(val, 0) if val else nxt
            values[key] = nxt
            nxt += 1
        enums[name] = (base, values)
    for name, body in re.findall(r"table\s+(\w+)\s*\{([^}]*)\}", text):
        fields = []
        for item in filter(None, (s.strip() for s in body.split(";"))):
            field, _, rest = (p.strip() for p in item.partition(":"))
            ftype = re.match(r"(\[\s*\w+\s*\]|\w+)", rest).group(1).replace(" ", "")
            fields.append((field, ftype))
        tables[name] = fields
    ident = re.search(r'file_identifier\s+"(\w+)"', text).group(1)
    return enums, tables, ident


ENUMS, TABLES, IDENT = parse_schema()


def layout_kind(ftype: str):
    """The reader.LAYOUT kind of a schema field type."""
    def scalar_size(t):
        if t in _SIZES:
            return _SIZES[t]
        if t in ENUMS:
            return _SIZES[ENUMS[t][0]]
        return None

    if ftype.startswith("["):
        inner = ftype[1:-1]
        if inner == "string":
            return ("strings",)
        if scalar_size(inner):
            return ("vector", scalar_size(inner))
        return ("tables", inner)
    if ftype == "string":
        return ("string",)
    if scalar_size(ftype):
        return ("scalar", scalar_size(ftype))
    return ("table", ftype)


# ---- rules --------------------------------------------------------------------------


def test_enums_only_append():
    for enum, frozen in (("OpType", OPTYPE_1_0), ("DType", DTYPE_1_0), ("AttrType", ATTRTYPE_1_0)):
        values = ENUMS[enum][1]
        assert list(values.values()) == list(range(len(values))), f"{enum} values must be 0..n-1"
        assert list(values)[:len(frozen)] == frozen, (
            f"{enum}: existing values were renamed, removed or reordered; append new ones at "
            "the end")
    assert ENUMS["OpType"][0] == "uint", "OpType stays 32-bit"


def test_tables_only_grow_at_the_end():
    for table, frozen in TABLES_1_0.items():
        fields = [f for f, _ in TABLES[table]]
        assert fields[:len(frozen.split())] == frozen.split(), (
            f"table {table}: fields were removed, renamed or reordered; add new fields at the end")


def test_reader_layout_matches_schema():
    assert set(reader.LAYOUT) == set(TABLES)
    for table, fields in TABLES.items():
        expected = [(f, layout_kind(t)) for f, t in fields]
        assert reader.LAYOUT[table] == expected, f"update formats/reader.py LAYOUT[{table!r}]"


def test_file_identifier():
    assert IDENT.encode() == version.FILE_IDENTIFIER


def test_dtype_enum_covers_ir_dtypes():
    assert set(dtypes.known_names()) == set(DTYPES)
    for name in DTYPES:
        assert dtypes.to_enum(name) == ENUMS["DType"][1][name.upper()]


def test_optype_names_equal_registry_names():
    """The enum, the registry (and the C++ kernel table) list the same ops.

    Fails until every op of the enum is registered in mobconv/ops (op helpers are
    filling the registry); an empty registry means nothing is loaded yet.
    """
    from mobconv.ops import load_all

    registry = load_all()
    enum_names = set(ENUMS["OpType"][1])
    missing = sorted(enum_names - set(registry))
    extra = sorted(set(registry) - enum_names)
    assert not missing and not extra, (
        f"OpType (formats/mobconv.fbs) and the op registry differ: not registered: {missing}; "
        f"not in OpType: {extra}")


def cpp_layout() -> dict:
    """The C++ structural walk's table (runtime/src/core/file_structure.cpp kLayout), in
    reader.LAYOUT's terms."""
    src = (SCHEMA.parent.parent / "runtime" / "src" / "core" / "file_structure.cpp").read_text()
    block = src.split("// BEGIN LAYOUT")[1].split("// END LAYOUT")[0]
    kinds = {"SC": lambda a: ("scalar", int(a[1])), "STR": lambda a: ("string",),
             "TAB": lambda a: ("table", a[1]), "VEC": lambda a: ("vector", int(a[1])),
             "STRS": lambda a: ("strings",), "TABS": lambda a: ("tables", a[1])}
    layout = {}
    for name, body, count in re.findall(r'\{"(\w+)",\s*\{(.*?)\},\s*(\d+)\}', block, re.S):
        fields = []
        for macro, args in re.findall(r"(\w+)\(([^)]*)\)", body):
            args = [a.strip().strip('"') for a in args.split(",")]
            fields.append((args[0], kinds[macro](args)))
        assert len(fields) == int(count), f"kLayout entry {name}: count {count} != {len(fields)} fields"
        layout[name] = fields
    return layout


def test_cpp_structural_walk_layout_matches_schema():
    """The runtime's walk (rules S1-S8 of docs/format-rules.md) visits what the reader visits."""
    layout = cpp_layout()
    assert set(layout) == set(TABLES)
    for table, fields in TABLES.items():
        expected = [(f, layout_kind(t)) for f, t in fields]
        assert layout[table] == expected, (
            f"update kLayout[{table!r}] in runtime/src/core/file_structure.cpp")
