"""One set of .mob file rules (docs/format-rules.md): the Python reader and the C++
runtime's loader accept exactly the same files.

The corpus (about a thousand files, fixed seeds): a hand-built file for each rule
(breaking it, or at its limit and valid), written with formats/writer.py with one
check bypassed or one builder call patched, or edited byte by byte; plus truncations,
random bytes, bit flips and seeded mutations of four valid models (the seeds of
tests/test_format_malformed.py, tests/test_runtime_malformed.py,
tests/test_format_roundtrip.py and a model with a signature), and the well-formed
hostile graphs of the structure-aware fuzzer (tests/graph_fuzz.py), each also mutated. For EVERY file both
readers must agree (both accept, or both refuse with a one-line message naming the
file); a hand-built file must be refused by both with the rule's message.

A longer run: MOBCONV_FORMAT_FUZZ_ROUNDS=50 python -m pytest tests/test_format_rules_differential.py
(each round adds 600 more mutations; the default, 1, takes seconds); MOBCONV_FORMAT_FUZZ_SEED
picks another mutation seed.
"""
import contextlib
import ctypes
import os

import numpy as np
import pytest

from mobconv.errors import ModelFormatError
from mobconv.formats import from_bytes, writer
from mobconv.formats.fb import Attribute, NamedArray, Operator, Tensor
from mobconv.formats.writer import to_bytes
from mobconv.ir import Graph, infer_shapes
from mobconv.ir.graph import QuantParams, Signature, TensorSpec, TestVector, Value

runtime = pytest.importorskip("mobconv.runtime")
if not runtime.available():
    pytest.skip("libmobrt not built", allow_module_level=True)

from graph_fuzz import draw_graph, draw_huge  # noqa: E402
from test_format_malformed import VALID as MALFORMED_SEED, hand_built  # noqa: E402
from test_format_roundtrip import rich_graph  # noqa: E402
from test_runtime_malformed import small_model  # noqa: E402

INVALID_MODEL, SHAPE_ERROR = 2, 4  # mobrt_status MOBRT_INVALID_MODEL, MOBRT_SHAPE_ERROR
SOURCE = "<buffer>"  # the C++ loader names a buffer so; the reader is told the same
ROUNDS = int(os.environ.get("MOBCONV_FORMAT_FUZZ_ROUNDS", "1"))
SEED = int(os.environ.get("MOBCONV_FORMAT_FUZZ_SEED", "20240607"))


# ---- the two readers ------------------------------------------------------------------


def python_verdict(data: bytes):
    """None if the Python reader accepts `data`, else its message (any other exception
    escapes and fails the test)."""
    try:
        from_bytes(data, source=SOURCE)
    except ModelFormatError as e:
        return str(e)
    return None


def cpp_verdict(data: bytes):
    """None if the C++ loader (the C API, as apps call it) accepts `data`, else its
    message; a refusal must be MOBRT_INVALID_MODEL."""
    lib = runtime._load()
    handle = ctypes.c_void_p()
    status = lib.mobrt_model_create_from_buffer(data, len(data), 1, ctypes.byref(handle))
    if status == 0:
        lib.mobrt_model_delete(handle)
        return None
    message = lib.mobrt_global_last_error().decode(errors="replace")
    assert status == INVALID_MODEL, f"status {status} for a file: {message}"
    return message


# ---- hand-built files, one per rule ----------------------------------------------------


@contextlib.contextmanager
def patched(*changes):
    """Set (object, attribute, value) for the duration; restore after."""
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in changes]
    try:
        for obj, name, value in changes:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def wrap(module, name, change):
    """(module, name, builder call whose value argument goes through `change`)."""
    original = getattr(module, name)
    return (module, name, lambda b, x: original(b, change(x)))


NO_WRITER_CHECKS = [(writer, "_check_value", lambda value, data: None)]


def base(sig=True) -> Graph:
    g = Graph("base")
    g.add_input("x", "float32", ("N", 3))
    g.add_constant("w", np.ones((3, 4), np.float32))
    g.add_node("MatMul", ["x", "w"], ["y"], name="mm")
    g.add_node("Relu", ["y"], ["z"], name="act")
    g.outputs = ["z"]
    infer_shapes(g)
    if sig:
        g.signature = Signature(inputs=[TensorSpec("x", "float32", ("N", 3))],
                                outputs=[TensorSpec("z", "float32", ("N", 4))])
    return g


def build(edit=None, changes=(), sig=True) -> bytes:
    """base() after `edit(graph)`, written with `changes` patched in."""
    g = base(sig)
    if edit is not None:
        edit(g)
    with patched(*changes):
        return to_bytes(g)


def swap(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 1, (old, data.count(old))
    return data.replace(old, new)


def one_input(shape, dtype="float32"):
    def edit(g):
        g.values.clear()
        g.nodes.clear()
        g.signature = Signature()
        g.add_input("x", dtype, shape)
        g.add_node("Relu", ["x"], ["z"], name="act")
        g.values["z"].dtype, g.values["z"].shape = dtype, shape
        g.inputs, g.outputs = ["x"], ["z"]
    return edit


def add(op, inputs, outputs, attrs=None, name="extra"):
    def edit(g):
        for n in outputs:
            if n and n not in g.values:
                g.add_value(n, "float32", ("N", 4))
        g.add_node(op, inputs, outputs, attrs, name=name)
    return edit


def set_attr(node, **attrs):
    def edit(g):
        next(n for n in g.nodes if n.name == node).attrs.update(attrs)
    return edit


def quant(q):
    def edit(g):
        g.values["w"].quant = q
    return edit


def sig(inputs=None, outputs=None):
    def edit(g):
        if inputs is not None:
            g.signature.inputs = inputs
        if outputs is not None:
            g.signature.outputs = outputs
    return edit


def tv(inputs):
    def edit(g):
        g.test_vectors = [TestVector(inputs, {})]
    return edit


def no_graph() -> bytes:
    import flatbuffers

    from mobconv.formats.fb import Model

    b = flatbuffers.Builder(64)
    Model.Start(b)
    Model.AddVersionMajor(b, 1)
    b.Finish(Model.End(b), file_identifier=b"MOB1")
    return bytes(b.Output())


def hostile_files() -> list:
    """[(name, bytes, message fragment both readers give, or None: both accept)]."""
    V = np.float32
    NO_QUANT_CHECK = [(writer, "quant_problem", lambda *a: "")]
    cases = [
        ("valid base", build(), None),
        ("valid without signature", build(sig=False), None),
        # S: structure
        ("S1 empty", b"", "empty file"),
        ("S1 identifier", b"\x10\x00\x00\x00XXXX" + bytes(64), "not a mobconv model file"),
        ("S2 15 bytes", build()[:15], "truncated model file (15 bytes)"),
        ("S3 major 2", build(changes=[(writer, "FORMAT_VERSION", (2, 0))]), "model format version 2.0 is newer"),
        ("S3 major 0", build(changes=[(writer, "FORMAT_VERSION", (0, 3))]), "model format version 0.3 is invalid"),
        ("S3 minor 7", build(changes=[(writer, "FORMAT_VERSION", (1, 7))]), None),
        ("S4 zero root offset", b"\x00\x00\x00\x00" + build()[4:], "offset to root table at byte 0 is 0"),
        ("S4 root offset 2^31", b"\x00\x00\x00\x80" + build()[4:], "not in [1, 2^31)"),
        ("S7 non-UTF-8 tensor name", swap(build(add("Relu", ["z"], ["nm\xe9"])), "nm\xe9".encode(), b"nm\xff\xfe"),
         "is not valid UTF-8"),
        ("S7 non-UTF-8 surrogate op name", swap(build(add("Relu", ["z"], ["q"], name="op\xe9x")),
                                                "op\xe9x".encode(), b"op\xed\xa0\x80"), "is not valid UTF-8"),
        ("S7 non-UTF-8 metadata", swap(build(lambda g: setattr(g.metadata, "producer", "PRODxx")),
                                       b"PRODxx", b"PROD\xc0\xaf"), "is not valid UTF-8"),
        ("S7 valid 4-byte UTF-8 name", build(add("Relu", ["z"], ["n\U0001F600"])), None),
        ("S8 one table referenced 5000 times", hand_built([0] * 5000), "referenced so many times"),
        # M: model
        ("M1 no graph", no_graph(), "model has no graph"),
        ("M3 buffer 0 not empty", build(changes=[(writer, "_empty_buffer",
                                                  lambda b: writer._data_buffer(b, np.zeros(4, np.uint8)))]),
         "buffer 0 must be empty, has 4 bytes"),
        # T: tensors
        ("T1 empty name", build(lambda g: g.values.__setitem__("", Value("", "float32", (1,)))), "has no name"),
        ("T1 duplicate names", swap(build(lambda g: (add("Relu", ["z"], ["dupA1"])(g),
                                                     add("Relu", ["dupA1"], ["dupA2"], name="e2")(g))),
                                    b"dupA2", b"dupA1"), "tensor name 'dupA1' is used twice"),
        ("T2 unknown dtype", build(changes=[wrap(Tensor, "AddDtype", lambda d: 42)]), "unknown dtype code 42"),
        ("T3 rank 8", build(one_input((1,) * 8)), None),
        ("T3 rank 9", build(one_input((1,) * 9), NO_WRITER_CHECKS), "rank 9 exceeds the maximum 8"),
        ("T3 rank 65", build(one_input((1,) * 65), NO_WRITER_CHECKS), "rank 65 exceeds the maximum 8"),
        ("T3 rank 200", build(one_input((2,) * 200), NO_WRITER_CHECKS), "rank 200 exceeds the maximum 8"),
        ("T3 dim 2^33", build(one_input((2**33, 3))), None),
        ("T3 dim 2^40", build(one_input((2**40,))), None),
        ("T3 dim 2^40+1", build(one_input((2**40 + 1,)), NO_WRITER_CHECKS), "dim 0 has invalid size 1099511627777"),
        ("T3 dim 2^63-1", build(one_input((2**63 - 1,)), NO_WRITER_CHECKS), "has invalid size 9223372036854775807"),
        ("T3 dim -1", build(one_input((4, 1)), [wrap(writer.Dim, "AddValue", lambda v: -1 if v == 4 else v)]),
         "dim 0 has invalid size -1"),
        ("T3 empty symbol", build(one_input(("", 3)), NO_WRITER_CHECKS), "dim 0 has an empty symbol"),
        ("T4 2^24 x 2^24", build(one_input((2**24, 2**24))), None),
        ("T4 2^24 x 2^24 x 2", build(one_input((2**24, 2**24, 2)), NO_WRITER_CHECKS), "more than 2^48 elements"),
        ("T4 product over 2^64", build(one_input((2**40, 2**40, 2**40)), NO_WRITER_CHECKS),
         "more than 2^48 elements"),
        ("T4 zero dim does not hide the others", build(one_input((2**40, 0, 2**40)), NO_WRITER_CHECKS),
         "more than 2^48 elements"),
        ("T4 zero-size input", build(one_input((4, 0))), None),
        ("T5 buffer out of range", build(changes=[wrap(Tensor, "AddBuffer", lambda i: i + 40 if i else 0)]),
         "refers to buffer 41, but the file has 2"),
        ("T6 symbolic constant", build(lambda g: setattr(g.values["w"], "shape", ("K", 4)), NO_WRITER_CHECKS),
         "a constant tensor needs a fully known shape"),
        ("T6 constant without shape", build(lambda g: setattr(g.values["w"], "shape", None), NO_WRITER_CHECKS),
         "a constant tensor needs a fully known shape"),
        ("T6 wrong byte count", build(lambda g: setattr(g.values["w"], "shape", (3, 5)), NO_WRITER_CHECKS),
         "has 48 bytes of data, expected 60 for float32[3, 5]"),
        ("T7 no scales", build(quant(QuantParams([], [], None)), NO_QUANT_CHECK), "quantization has no scales"),
        ("T7 zero points", build(quant(QuantParams([0.5], [0, 1], None)), NO_QUANT_CHECK),
         "quantization has 1 scales but 2 zero points"),
        ("T7 per-tensor, 3 scales", build(quant(QuantParams([1.0] * 3, [], None)), NO_QUANT_CHECK),
         "per-tensor quantization has 3 scales"),
        ("T7 one scale, axis out of range", build(quant(QuantParams([0.5], [0], 5)), NO_QUANT_CHECK),
         "quantization axis 5 is out of range for rank 2"),
        ("T7 axis dim mismatch", build(quant(QuantParams([1.0] * 3, [], 1)), NO_QUANT_CHECK),
         "per-axis quantization has 3 scales for axis 1 of size 4"),
        ("T7 axis without shape", build(lambda g: g.add_value("q", "int8", None, quant=QuantParams([1.0] * 2, [], 0)),
                                        NO_QUANT_CHECK), "per-axis quantization needs a shape"),
        ("T7 per-axis valid", build(quant(QuantParams([1.0] * 4, [0] * 4, 1))), None),
        # G: graph
        ("G1 input listed twice", build(lambda g: g.inputs.append("x")), "is listed twice"),
        ("G1 constant input", build(lambda g: g.inputs.append("w")), "has constant data"),
        ("G2 no outputs", build(lambda g: g.outputs.clear(), sig=False), "graph has no outputs"),
        ("G2 output nobody writes", build(lambda g: (g.add_value("u", "float32", (1,)), g.outputs.append("u")),
                                          sig=False), "graph output 1 ('u') is not produced by any operator"),
        ("G2 constant and input outputs", build(lambda g: g.outputs.extend(["w", "x"]), sig=False), None),
        ("G3 signature count", build(sig(inputs=[TensorSpec("x", "float32", ("N", 3))] * 2)),
         "signature lists 2 input(s), but the graph has 1"),
        ("G3 signature name", build(sig(inputs=[TensorSpec("a", "float32", ("N", 3))])),
         "signature input 0 ('a') does not match graph input 0 ('x')"),
        ("G3 signature dtype", build(sig(outputs=[TensorSpec("z", "int8", ("N", 4))])),
         "signature output 0 ('z') is int8 but the graph's tensor is float32"),
        ("G3 signature rank", build(sig(inputs=[TensorSpec("x", "float32", ("N", 3, 1))])),
         "has shape ['N', 3, 1] but the graph's tensor has ['N', 3]"),
        ("G3 signature dim", build(sig(inputs=[TensorSpec("x", "float32", (1, 3))])),
         "has shape [1, 3] but the graph's tensor has ['N', 3]"),
        ("G3 signature symbol", build(sig(outputs=[TensorSpec("z", "float32", ("M", 4))])),
         "has shape ['M', 4] but the graph's tensor has ['N', 4]"),
        ("G3 signature rank 9", build(sig(inputs=[TensorSpec("x", "float32", (1,) * 9)])),
         "signature input 0 ('x'): rank 9 exceeds the maximum 8"),
        # O: operators
        ("O1 unknown op", build(changes=[wrap(Operator, "AddType", lambda t: 9999)]), "has unknown op type 9999"),
        ("O2 version 99", build(changes=[wrap(Operator, "AddVersion", lambda v: 99)]), "version 99, this "),
        ("O2 version 0", build(changes=[wrap(Operator, "AddVersion", lambda v: 0)]),
         "version 0 is invalid (versions start at 1)"),
        ("O3 too many inputs", build(add("Relu", ["z", "w"], ["r"])), "takes 1 input(s), got 2"),
        ("O3 too few inputs", build(add("MatMul", ["z"], ["r"])), "takes 2 input(s), got 1"),
        ("O3 no outputs", build(add("Relu", ["z"], [])), "has 1 output(s), got 0"),
        ("O4 required input absent", build(add("MatMul", ["", "w"], ["r"])), "required input 0 is absent"),
        ("O4 variadic op's first input absent", build(add("Concat", ["", "z"], ["r"], {"axis": 0})),
         "required input 0 is absent"),
        ("O4 not topological", build(lambda g: g.nodes.reverse()), "before anything defines it"),
        ("O4 cycle", build(add("Add", ["z", "r"], ["r"])), "before anything defines it"),
        ("O5 two ops write one tensor", build(add("Relu", ["y"], ["z"])), "which is already defined"),
        ("O5 op writes a graph input", build(add("Relu", ["z"], ["x"])), "which is already defined"),
        ("O5 op writes a constant", build(add("Relu", ["z"], ["w"])), "which is already defined"),
        ("O5 required output absent", build(add("Relu", ["z"], [""])), "required output 0 is absent"),
        ("O5 variadic op's first output absent", build(lambda g: (g.add_value("s1", "float32", ("N", 2)),
                                                                  g.add_node("Split", ["z"], ["", "s1"], {"axis": 1}))),
         "required output 0 is absent"),
        ("O5 optional output absent", build(lambda g: (g.add_value("s0", "float32", ("N", 2)),
                                                       g.add_node("Split", ["z"], ["s0", ""], {"axis": 1}))), None),
        ("O6 empty attribute name", build(set_attr("act", **{"": 1})), "has an attribute without a name"),
        ("O6 attribute twice", swap(build(set_attr("act", dupAttrA=1, dupAttrB=2)), b"dupAttrB", b"dupAttrA"),
         "attribute 'dupAttrA' appears twice"),
        ("O6 unknown attribute type", build(set_attr("act", k=1), [wrap(Attribute, "AddType", lambda t: 99)]),
         "has unknown attribute type 99"),
        ("O6 string for INT", build(add("Softmax", ["z"], ["r"], {"axis": "one"})), "attribute 'axis' must be INT"),
        ("O6 1.5 for INT", build(add("Softmax", ["z"], ["r"], {"axis": 1.5})), "attribute 'axis' must be INT"),
        ("O6 1.0 for INT", build(add("Softmax", ["z"], ["r"], {"axis": 1.0})), None),
        ("O6 INT for FLOAT", build(add("LeakyRelu", ["z"], ["r"], {"alpha": 2})), None),
        ("O6 INTS for FLOATS", build(add("Conv", ["z", "w"], ["r"], {"activation_params": [1, 2]})), None),
        ("O6 FLOATS for INTS", build(add("Transpose", ["z"], ["r"], {"perm": [1.0, 0.0]})),
         "attribute 'perm' must be INTS"),
        ("O6 tensor attribute on a non-constant", build(set_attr("act", t=np.ones(2, V)),
                                                        [wrap(Attribute, "AddTensor", lambda i: 0)]),
         "which has no constant data"),
        ("O6 tensor attribute out of range", build(set_attr("act", t=np.ones(2, V)),
                                                   [wrap(Attribute, "AddTensor", lambda i: 1000)]),
         "refers to tensor 1000, but the graph has"),
        ("O6 required attribute missing", build(add("Concat", ["z", "z"], ["r"])),
         "required attribute 'axis' is missing"),
        # V: test vectors
        ("V1 valid", build(tv({"x": np.ones((2, 3), V)})), None),
        ("V1 rank 9", build(tv({"x": np.ones((1,) * 9, V)})), "test vector 0 input 0 ('x'): rank 9 exceeds"),
        ("V1 unknown dtype", build(tv({"x": np.ones(2, V)}), [wrap(NamedArray, "AddDtype", lambda d: 42)]),
         "test vector 0 input 0 ('x') has unknown dtype code 42"),
        ("V1 repeated name", swap(build(tv({"tvdupA": np.ones(2, V), "tvdupB": np.ones(2, V)})), b"tvdupB",
                                  b"tvdupA"), "test vector 0 input 1 repeats the name 'tvdupA'"),
    ]
    return cases


# ---- mutations of valid models ------------------------------------------------------------


def seeds() -> list:
    return [MALFORMED_SEED, small_model(), to_bytes(rich_graph()), build()]


def graph_fuzz_files() -> list:
    """Valid-looking models from the structure-aware fuzzer (tests/graph_fuzz.py): zero-size
    and broadcast shapes, K = 0, huge declared dims, extreme attributes, NaN/Inf constants."""
    files = []
    for seed in range(1000, 1080):
        case = draw_graph(seed)
        if case is not None:
            files.append(case.model or to_bytes(case.graph))
    for seed in range(2000, 2020):
        case = draw_huge(seed)
        if case is not None:
            files.append(case.model)
    return files


def mutated_files(rounds: int = 1) -> list:
    rng = np.random.default_rng(SEED)
    files = []
    for seed in seeds():
        n = len(seed)
        for cut in sorted(set(np.linspace(0, n - 1, 40).astype(int).tolist() + [n - 1, n - 4, 8, 16, 24])):
            files.append(seed[:cut])
        for i in range(150 * rounds):
            data = bytearray(seed)
            for _ in range(1 + i % 4):
                pos = int(rng.integers(0, n))
                kind = i % 5
                if kind in (0, 1):
                    data[pos] ^= 1 << int(rng.integers(0, 8))
                elif kind == 2:
                    data[pos] = int(rng.integers(0, 256))
                elif kind == 3:  # a small integer over an aligned word: hits offsets, counts, indices
                    pos -= pos % 4
                    data[pos:pos + 4] = int(rng.choice([0, 1, 2, 3, 4, 7, 8, 0xFFFFFFFF, 0x7FFFFFFF,
                                                        0x80000000, n, n - 4])).to_bytes(4, "little")
                else:  # copy one aligned word over another
                    src = int(rng.integers(0, n // 4)) * 4
                    pos -= pos % 4
                    data[pos:pos + 4] = data[src:src + 4]
            files.append(bytes(data))
    for model in graph_fuzz_files():  # well-formed hostile graphs, then one mutation of each
        files.append(model)
        data = bytearray(model)
        pos = int(rng.integers(0, len(data)))
        data[pos] ^= 1 << int(rng.integers(0, 8))
        files.append(bytes(data))
    for i in range(60):
        data = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        if i % 2:
            data = data[:4] + b"MOB1" + data[8:]
        files.append(data)
    return files


# ---- the tests ------------------------------------------------------------------------------------


def test_every_rule_has_a_hand_built_file_refused_by_both_with_its_message():
    problems = []
    for name, data, fragment in hostile_files():
        py, cpp = python_verdict(data), cpp_verdict(data)
        if fragment is None:
            if py is not None or cpp is not None:
                problems.append(f"{name}: expected both to accept; python: {py}; c++: {cpp}")
            continue
        for who, msg in (("python", py), ("c++", cpp)):
            if msg is None:
                problems.append(f"{name}: {who} accepted it")
            elif fragment not in msg or not msg.startswith(SOURCE + ": ") or "\n" in msg:
                problems.append(f"{name}: {who} said {msg!r}, expected {fragment!r}")
    assert not problems, "\n".join(problems)


def test_python_reader_and_cpp_loader_agree_on_every_corpus_file():
    files = [data for _, data, _ in hostile_files()] + mutated_files(ROUNDS)
    assert 1000 <= len(files) <= 1200 * ROUNDS
    agree, accepted, disagreements = 0, 0, []
    for k, data in enumerate(files):
        py, cpp = python_verdict(data), cpp_verdict(data)
        if (py is None) == (cpp is None):
            agree += 1
            accepted += py is None
        else:
            disagreements.append(f"file {k} ({len(data)} bytes): python: {py or 'accepts'}; "
                                 f"c++: {cpp or 'accepts'}")
    print(f"\nformat rules: the readers agree on {agree} of {len(files)} files "
          f"({accepted} accepted by both, {agree - accepted} refused by both)")
    assert not disagreements, f"{len(disagreements)} disagreement(s):\n" + "\n".join(disagreements[:15])
    assert accepted >= 50 and agree - accepted >= 500  # the corpus exercises both verdicts


def test_op_versions_agree_with_the_registry():
    """Rule O2's known versions: the C++ op table's equal the registry's OpSpec.version."""
    from mobconv.ops import load_all

    registry = load_all()
    for entry in runtime.op_table():
        assert entry["version"] == registry[entry["name"]].version, entry["name"]


# ---- huge declared dims: refused cleanly, at load or at prepare -----------------------------


@pytest.mark.parametrize("shape", [(2**33,), (2**33, 3), (2**40,), (2**24, 2**24), (2**20, 2**20, 0, 7)])
def test_huge_declared_dims_load_and_prepare_refuses_cleanly(shape):
    """Legal in a file (both readers accept it), but the runtime refuses to prepare it
    with SHAPE_ERROR and a message naming the input, before any allocation."""
    data = build(one_input(shape))
    assert python_verdict(data) is None and cpp_verdict(data) is None
    lib = runtime._load()
    model, it = ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.mobrt_model_create_from_buffer(data, len(data), 1, ctypes.byref(model)) == 0
    opts = lib.mobrt_options_create()
    try:
        status = lib.mobrt_interpreter_create(model, opts, ctypes.byref(it))
        message = lib.mobrt_global_last_error().decode()
    finally:
        lib.mobrt_options_delete(opts)
        if it.value:
            lib.mobrt_interpreter_delete(it)
        lib.mobrt_model_delete(model)
    if 0 in shape:  # zero elements: nothing to allocate
        assert status == 0, message
    else:
        assert status == SHAPE_ERROR and "input 'x' is too large" in message, (status, message)


# ---- `mobconv validate` never passes a file the runtime refuses ----------------------------


def validate(tmp_path, capsys, data, name="m.mob"):
    from mobconv.cli.main import main

    path = tmp_path / name
    path.write_bytes(data)
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, path


@pytest.mark.parametrize("case", ["O5 two ops write one tensor", "O5 op writes a graph input",
                                  "G1 input listed twice", "G2 no outputs", "T3 rank 9", "T3 rank 200",
                                  "O2 version 99", "T1 duplicate names", "S7 non-UTF-8 tensor name",
                                  "G3 signature dtype", "G3 signature rank", "G3 signature dim"])
def test_validate_refuses_what_the_runtime_refuses(tmp_path, capsys, case):
    data, fragment = next((d, f) for n, d, f in hostile_files() if n == case)
    code, out, err, path = validate(tmp_path, capsys, data)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"mobconv: error: {path}: ") and fragment in lines[0], lines[0]


def test_validate_runs_the_runtime_prepare(tmp_path, capsys):
    """A valid file that the runtime cannot prepare (a 2^33-element input) fails validate."""
    code, out, err, path = validate(tmp_path, capsys, build(one_input((2**33,))))
    assert code == 1, out + err
    assert "PASS structure" in out and "FAIL runtime:" in out and "input 'x' is too large" in out, out
    code, out, err, path = validate(tmp_path, capsys, build())
    assert code == 0 and "PASS runtime: loaded by the C++ runtime's verifier" in out, out + err
