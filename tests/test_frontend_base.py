"""The frontend base shared by Caffe, ONNX and TensorFlow (issue 10, section 1).

- detection (mobconv/frontends/__init__.py): a SavedModel directory, a .pb that is
  an ONNX model vs a TensorFlow GraphDef (checked against onnx's own parser), .pbtxt,
  .prototxt, .onnx; the API re-exports the table;
- the loaders' shared helpers (frontends/base.py): file_sha256 against hashlib,
  fill_metadata, fill_signature, and that the ONNX and Caffe loaders use them;
- the context: a bug in a shape function is a one-line ConversionError naming the
  source node (it used to be swallowed at emit), Caffe gets the emit-time folding,
  ONNX reports unsupported ops through ConverterRegistry.check_supported;
- the CLI flow lives in cli/convert_flow.py (caffe2mob does not import onnx2mob);
- no `except Exception: pass` is left in mobconv/frontends/.
"""
import ast
import dataclasses
import glob
import hashlib
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import mobconv
from mobconv import api
from mobconv.cli import caffe2mob, convert_flow, onnx2mob
from mobconv.errors import ConversionError, MobconvError, UnsupportedOpsError, UsageError
from mobconv.frontends import FRONTENDS, detect_framework, is_onnx_model, is_saved_model
from mobconv.frontends.base import (ConversionContext, file_sha256, fill_metadata,
                                    fill_signature, format_input_shapes)
from mobconv.frontends.caffe import REGISTRY as CAFFE_REGISTRY, load_caffe, register_layer
from mobconv.frontends.common import ConverterRegistry
from mobconv.frontends.tensorflow.proto import graph_pb2, saved_model_pb2
from mobconv.ir import Graph, Preprocessing
from mobconv.ops import registry
from mobconv.ops.registry import get_spec
from test_api import make_tiny_onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO_ONNX = sorted(glob.glob(os.path.join(ROOT, "model_zoo", "onnx", "*.onnx")))

CAFFE_NET = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
"""


def graph_def_bytes(extra_versions=True) -> bytes:
    """A small TensorFlow GraphDef: Placeholder -> Relu (with versions, like every frozen graph)."""
    g = graph_pb2.GraphDef()
    x = g.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1  # DT_FLOAT
    g.node.add(name="y", op="Relu", input=["x"]).attr["T"].type = 1
    if extra_versions:
        g.versions.producer = 1994
    return g.SerializeToString()


def onnx_parser_says_model_with_graph(data: bytes) -> bool:
    """The oracle: onnx's own protobuf parser."""
    try:
        return onnx.ModelProto.FromString(data).HasField("graph")
    except Exception:  # noqa: BLE001 - DecodeError and friends: not a ModelProto
        return False


# ---- detection ------------------------------------------------------------------


@pytest.mark.parametrize("name, framework", [("m.onnx", "onnx"), ("deploy.prototxt", "caffe"),
                                             ("graph.pbtxt", "tensorflow"),
                                             ("frozen.pb", "tensorflow")])
def test_detect_by_extension(tmp_path, name, framework):
    path = tmp_path / name
    path.write_bytes(graph_def_bytes() if name.endswith(".pb") else b"x")
    assert detect_framework(path) == framework
    assert api.detect_framework(str(path)) == framework


def test_saved_model_directory_is_tensorflow(tmp_path):
    sm = tmp_path / "exported"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(saved_model_pb2.SavedModel(saved_model_schema_version=1)
                                        .SerializeToString())
    assert is_saved_model(sm) and detect_framework(sm) == "tensorflow"
    api.check_source(str(sm), "tensorflow")  # accepted: the TensorFlow frontend takes directories
    with pytest.raises(MobconvError, match="is a directory"):
        api.check_source(str(sm), "onnx")
    # the CLI writes NAME.mob beside the directory, also when given with a trailing slash
    assert convert_flow.default_output(str(sm)) == str(tmp_path / "exported.mob")
    assert convert_flow.default_output(str(sm) + os.sep) == str(tmp_path / "exported.mob")
    text = tmp_path / "text_sm"
    text.mkdir()
    (text / "saved_model.pbtxt").write_text("saved_model_schema_version: 1\n")
    assert detect_framework(text) == "tensorflow"


def test_directory_without_saved_model_is_refused(tmp_path):
    (tmp_path / "variables").mkdir()
    with pytest.raises(UsageError, match="saved_model.pb") as err:
        detect_framework(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(MobconvError, match="without saved_model.pb"):
        mobconv.convert(tmp_path)


def test_onnx_model_named_pb_converts_as_onnx(tmp_path):
    make_tiny_onnx(tmp_path / "m.onnx")
    pb = tmp_path / "m.pb"
    pb.write_bytes((tmp_path / "m.onnx").read_bytes())
    assert is_onnx_model(pb) and detect_framework(pb) == "onnx"
    assert mobconv.convert(pb).to_bytes() == mobconv.convert(tmp_path / "m.onnx").to_bytes()
    # given to the TensorFlow converter, the file is named for what it is
    with pytest.raises(UsageError, match="is an ONNX model.*onnx2mob"):
        api.check_source(str(pb), "tensorflow")


def _sniff_cases(tmp_path) -> list:
    make_tiny_onnx(tmp_path / "tiny.onnx")
    tiny = (tmp_path / "tiny.onnx").read_bytes()
    with_props = onnx.load(str(tmp_path / "tiny.onnx"))
    helper.set_model_props(with_props, {"author": "x"})
    with_props.doc_string = "doc"
    no_graph = onnx.ModelProto(ir_version=8)
    no_graph.opset_import.add(version=17)
    cases = {
        "tiny": tiny, "props": with_props.SerializeToString(),
        "no_graph": no_graph.SerializeToString(), "truncated": tiny[: len(tiny) // 2],
        "graph_def": graph_def_bytes(), "graph_def_no_versions": graph_def_bytes(False),
        "empty_graph_def": graph_pb2.GraphDef(versions={"producer": 7}).SerializeToString(),
        "text": b"node { name: 'x' op: 'Placeholder' }\n", "empty": b"",
    }
    for path in ZOO_ONNX:
        cases[os.path.basename(path)] = open(path, "rb").read()
    return sorted(cases.items())


def test_pb_sniffing_agrees_with_onnx_parser(tmp_path):
    """is_onnx_model reads only the top-level fields; onnx's parser is the oracle."""
    for name, data in _sniff_cases(tmp_path):
        path = tmp_path / f"{name}.pb"
        path.write_bytes(data)
        assert is_onnx_model(path) == onnx_parser_says_model_with_graph(data), name
        assert detect_framework(path) == ("onnx" if is_onnx_model(path) else "tensorflow"), name


def _mutate(rng, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.integers(1, 5)):
        if not data:
            break
        pos, kind = int(rng.integers(len(data))), rng.random()
        if kind < 0.4:
            data[pos] = int(rng.integers(256))
        elif kind < 0.6:
            del data[pos:pos + int(rng.integers(1, 50))]
        elif kind < 0.8:
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        else:
            del data[pos:]
    return bytes(data)


def test_pb_sniffing_never_sends_a_parsable_onnx_model_elsewhere(tmp_path):
    """Seeded mutations of ONNX models and GraphDefs: whenever onnx's parser reads a
    ModelProto with a graph, the sniffer says ONNX. (The converse need not hold: an ONNX
    file whose graph payload is corrupt stays ONNX, for the ONNX loader to report.)
    Found a disagreement once: a known field of the wrong wire type (which protobuf
    keeps as an unknown field) made the sniffer say TensorFlow."""
    from mobconv.frontends import _scan_onnx_fields

    seeds = [data for _, data in _sniff_cases(tmp_path) if data]
    rng = np.random.default_rng(0)
    # the case the fuzzer found: ONNX ir_version + graph, then field 2 (a string in
    # ModelProto) written as a varint
    found = onnx.ModelProto(ir_version=8, graph=onnx.GraphProto(name="g")).SerializeToString()
    cases = [found + b"\x10\x11"] + [_mutate(rng, seeds[int(rng.integers(len(seeds)))])
                                      for _ in range(3000)]
    for data in cases:
        if onnx_parser_says_model_with_graph(data):
            assert _scan_onnx_fields(data), data[:40]


def test_unknown_extension_lists_the_known_forms(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"x")
    with pytest.raises(UsageError) as err:
        detect_framework(path)
    for form in (".onnx", ".prototxt", ".pb", ".pbtxt", "SavedModel directory"):
        assert form in str(err.value)


def test_api_reexports_the_tables():
    from mobconv import backends, frontends

    assert api.FRONTENDS is frontends.FRONTENDS and api.Frontend is frontends.Frontend
    assert api.detect_framework is frontends.detect_framework
    assert api.BACKENDS is backends.BACKENDS and api.resolve_backend is backends.resolve_backend
    assert FRONTENDS["tensorflow"].loader == "mobconv.frontends.tensorflow:load_tensorflow"
    assert set(FRONTENDS["tensorflow"].extensions) == {".pb", ".pbtxt"}


# ---- signature and metadata helpers ------------------------------------------------


def test_file_sha256_is_the_sha256_of_the_files_in_order(tmp_path):
    a, b = tmp_path / "a.prototxt", tmp_path / "b.caffemodel"
    a.write_bytes(b"layer {}" * 1000)
    b.write_bytes(bytes(range(256)) * 5000)  # > 1 MiB: read in chunks
    want = hashlib.sha256(a.read_bytes() + b.read_bytes()).hexdigest()
    assert file_sha256(a, None, b) == want
    assert file_sha256(b, a) != want
    assert file_sha256() == hashlib.sha256(b"").hexdigest()
    sm = tmp_path / "sm"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"graph")
    (sm / "variables" / "variables.index").write_bytes(b"index")
    # a directory: its files in sorted path order (saved_model.pb < variables/...)
    assert file_sha256(sm) == hashlib.sha256(b"graph" + b"index").hexdigest()


def _graph() -> Graph:
    g = Graph("g")
    g.add_input("image", "float32", ("batch", 3, 8, 8))
    g.add_input("ids", "int64", (1, 2, 3, 4))
    g.add_node("Relu", ["image"], ["features"])
    g.add_value("features", "float32", ("batch", 3, 8, 8))
    g.outputs = ["features"]
    return g


def test_fill_signature_layouts_and_preprocessing():
    g = _graph()
    fill_signature(g)
    sig = g.signature
    assert [(s.name, s.dtype, s.shape, s.layout) for s in sig.inputs] == [
        ("image", "float32", ("batch", 3, 8, 8), "NCHW"), ("ids", "int64", (1, 2, 3, 4), "")]
    assert [(s.name, s.layout) for s in sig.outputs] == [("features", "")]
    assert sig.preprocessing is None
    pre = Preprocessing(mean=[1.0, 2.0, 3.0], channel_order="BGR")
    fill_signature(g, {"image": "NHWC", "features": "NCHW"}, pre)
    assert [s.layout for s in g.signature.inputs] == ["NHWC", ""]
    assert [s.layout for s in g.signature.outputs] == ["NCHW"]
    assert g.signature.preprocessing is pre


def test_fill_metadata(tmp_path):
    src = tmp_path / "m.onnx"
    src.write_bytes(b"model bytes")
    g = _graph()
    fill_metadata(g, "onnx", [src], {"frontend": "onnx"}, extra={"onnx_opset": "17"},
                  input_shapes={"image": ("batch", 3, 8, 8), "ids": (1, 2, 3, 4)})
    md = g.metadata
    assert (md.producer, md.converter_version, md.source_framework) == (
        "mobconv", mobconv.__version__, "onnx")
    assert md.source_sha256 == hashlib.sha256(b"model bytes").hexdigest()
    assert list(md.options.items()) == [("frontend", "onnx"),
                                        ("input_shapes", "image=batch,3,8,8;ids=1,2,3,4")]
    assert md.extra == {"onnx_opset": "17"}
    fill_metadata(g, "tensorflow", options={}, sha256="ab" * 32)
    assert g.metadata.source_sha256 == "ab" * 32 and g.metadata.options == {}
    assert format_input_shapes({"x": (1, "n")}) == "x=1,n"


def test_onnx_and_caffe_loaders_fill_the_same_metadata(tmp_path):
    make_tiny_onnx(tmp_path / "m.onnx")
    model = mobconv.convert(tmp_path / "m.onnx", input_shapes={"x": (2, 3, 16, 16)})
    md = model.metadata
    assert md.source_framework == "onnx" and md.converter_version == mobconv.__version__
    assert md.source_sha256 == hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest()
    assert md.options["input_shapes"] == "x=2,3,16,16"
    assert model.inputs[0].layout == "NCHW" and model.outputs[0].layout == ""

    proto = tmp_path / "net.prototxt"
    proto.write_text(CAFFE_NET)
    with pytest.warns(UserWarning, match="random weights"):
        graph = load_caffe(str(proto), random_weights=True)
    md = graph.metadata
    assert md.source_framework == "caffe" and md.converter_version == mobconv.__version__
    assert md.source_sha256 == hashlib.sha256(proto.read_bytes()).hexdigest()
    assert md.options["prototxt"] == "net.prototxt" and md.options["random_weights"] == "true"
    # Caffe outputs are NCHW image tensors too, and Caffe's BGR order is kept
    assert [s.layout for s in graph.signature.outputs] == ["NCHW"]
    assert graph.signature.preprocessing.channel_order == "BGR"


# ---- the conversion context -----------------------------------------------------------


def test_shape_function_bug_is_a_conversion_error_naming_the_node(tmp_path, monkeypatch):
    """emit used to swallow any exception from inference (`except Exception: pass`); the
    final infer_shapes then crashed with a bare TypeError and no node named."""
    make_tiny_onnx(tmp_path / "m.onnx")

    def broken(ctx):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setitem(registry.REGISTRY, "Relu", dataclasses.replace(get_spec("Relu"), infer=broken))
    with pytest.raises(ConversionError) as err:
        mobconv.convert(tmp_path / "m.onnx")
    message = str(err.value)
    assert "ONNX node 'relu' (type Relu)" in message and "TypeError" in message
    assert str(tmp_path / "m.onnx") in message and "\n" not in message


def test_caffe_layers_get_the_emit_time_folding(tmp_path):
    """Caffe's ctx.node goes through ConversionContext.emit: shape arithmetic is folded
    as it is emitted (before, a Shape node stayed a node and its value was unknown)."""
    proto = tmp_path / "net.prototxt"
    proto.write_text(CAFFE_NET + 'layer { name: "flat" type: "FlatShape" bottom: "conv1" top: "flat" }\n')
    seen = []  # one per conversion: the declared size first (then dynamic.py's probes)
    try:
        @register_layer("FlatShape")
        def flat_shape(ctx):
            assert isinstance(ctx, ConversionContext)
            shape = ctx.node("Shape", [ctx.inputs[0]])
            seen.append(ctx.graph.values[shape].data)
            ctx.node("Reshape", [ctx.inputs[0], ctx.ints([0, -1])], ctx.outputs[0])

        with pytest.warns(UserWarning, match="random weights"):
            graph = load_caffe(str(proto), random_weights=True)
    finally:
        CAFFE_REGISTRY._converters.pop("FlatShape", None)
    np.testing.assert_array_equal(seen[0], [1, 4, 6, 6])  # conv 3x3 on 8x8, no pad
    assert "Shape" not in [n.op for n in graph.nodes]
    assert len(graph.values["flat"].shape) == 2


def test_caffe_shape_rule_names_the_layer(tmp_path):
    proto = tmp_path / "net.prototxt"
    proto.write_text(CAFFE_NET + 'layer { name: "bad" type: "BadAdd" bottom: "conv1" top: "bad" }\n')
    try:
        @register_layer("BadAdd")
        def bad_add(ctx):
            ctx.node("Add", [ctx.inputs[0], ctx.const(np.zeros((5,), np.float32))], ctx.outputs[0])

        with pytest.raises(ConversionError) as err:
            load_caffe(str(proto), random_weights=True)
    finally:
        CAFFE_REGISTRY._converters.pop("BadAdd", None)
    assert "Caffe layer 'bad' (type BadAdd)" in str(err.value) and "broadcast" in str(err.value)


def test_onnx_unsupported_ops_through_the_registry(tmp_path, monkeypatch):
    """All unsupported ops at once, by ConverterRegistry.check_supported: unregistered
    types and types whose IR ops are missing (the `usable` condition)."""
    from mobconv.frontends.onnx import converters

    calls = []
    original = ConverterRegistry.check_supported

    def spy(self, source, nodes, usable=None):
        calls.append(self.framework)
        return original(self, source, nodes, usable)

    monkeypatch.setattr(ConverterRegistry, "check_supported", spy)
    monkeypatch.setitem(converters.IR_OPS, "Relu", ("NoSuchIrOp",))
    make_tiny_onnx(tmp_path / "m.onnx", extra_nodes=("Foo", "Foo"))
    with pytest.raises(UnsupportedOpsError) as err:
        mobconv.convert(tmp_path / "m.onnx")
    message = str(err.value)
    assert calls == ["ONNX"]
    assert "Relu" in message and "Foo" in message and "foo_node" in message
    registry = ConverterRegistry("X")
    registry.register("A", "B")(lambda cx: None)
    with pytest.raises(UnsupportedOpsError) as err:
        registry.check_supported("f", [("A", "a1"), ("B", "b1"), ("C", "c1")],
                                 usable=lambda t: t != "B")
    assert "B" in str(err.value) and "c1" in str(err.value) and "a1" not in str(err.value)


# ---- CLI flow and code rules --------------------------------------------------------------


def _imports(path) -> set:
    tree = ast.parse(open(path).read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_caffe2mob_does_not_import_onnx2mob():
    assert not any("onnx2mob" in name for name in _imports(caffe2mob.__file__))
    code = ("import sys, mobconv.cli.caffe2mob; "
            "sys.exit('mobconv.cli.onnx2mob' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    for module in (caffe2mob, onnx2mob):
        assert module.convert_and_save is convert_flow.convert_and_save
        assert module.add_convert_options is convert_flow.add_convert_options


def _swallowing_handlers(path) -> list:
    """`except Exception: pass` (also bare `except:` / BaseException) in one file."""
    tree = ast.parse(open(path).read())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ExceptHandler):
            continue
        types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        broad = any(t is None or (isinstance(t, ast.Name) and t.id in ("Exception", "BaseException"))
                    for t in types)
        if broad and all(isinstance(s, ast.Pass) for s in node.body):
            found.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    return found


def test_no_except_exception_pass_in_frontends():
    files = glob.glob(os.path.join(ROOT, "mobconv", "frontends", "**", "*.py"), recursive=True)
    files.append(os.path.join(ROOT, "mobconv", "passes", "fold_shapes.py"))
    assert len(files) > 20
    assert [f for path in sorted(files) for f in _swallowing_handlers(path)] == []


def test_swallowing_handler_check_finds_one(tmp_path):
    """The check above can fail: it finds the pattern it looks for."""
    path = tmp_path / "m.py"
    path.write_text("try:\n    x = 1\nexcept (ValueError, Exception):\n    pass\n"
                    "try:\n    y = 1\nexcept ValueError:\n    pass\n")
    assert _swallowing_handlers(str(path)) == [f"{os.path.relpath(str(path), ROOT)}:3"]


def test_quantize_sniffs_pb_files(tmp_path):
    """`mobconv quantize` used to take every .pb for ONNX: a TensorFlow GraphDef goes to
    the TensorFlow frontend now, an ONNX model named .pb still to ONNX."""
    import argparse

    from mobconv.cli.quantize import _framework

    make_tiny_onnx(tmp_path / "m.onnx")
    onnx_pb, tf_pb = tmp_path / "onnx.pb", tmp_path / "frozen.pb"
    onnx_pb.write_bytes((tmp_path / "m.onnx").read_bytes())
    tf_pb.write_bytes(graph_def_bytes())
    for path, want in ((onnx_pb, "onnx"), (tf_pb, "tensorflow")):
        assert _framework(argparse.Namespace(model=str(path), caffemodel=None)) == want


def test_onnx2mob_names_a_tensorflow_pb(tmp_path, capsys):
    """A GraphDef .pb given to onnx2mob used to fail in ONNX's parser ("not a valid ONNX
    model" with protobuf's words); it is named for what it is, with the command to use."""
    from mobconv.cli.main import main

    path = tmp_path / "frozen.pb"
    path.write_bytes(graph_def_bytes())
    assert main(["onnx2mob", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: is a TensorFlow graph" in err and f"mobconv tf2mob {path}" in err
    assert not os.path.exists(tmp_path / "frozen.mob")
    with pytest.raises(MobconvError, match=f"convert it first: mobconv tf2mob {path}"):
        mobconv.load(path)
    # a .pb that is neither is left to ONNX's parser (one line, naming the file)
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\xff\xfe not protobuf")
    assert main(["onnx2mob", str(junk)]) == 1
    assert "not a valid ONNX model" in capsys.readouterr().err


# ---- passes/fold_shapes.py, the functions emit calls ----------------------------------


def test_fold_constant_node_evaluates_small_constants_only():
    from mobconv.passes import fold_shapes

    g = Graph("g")
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    g.add_constant("a", a)
    g.add_constant("b", np.float32(2.5))
    assert fold_shapes.fold_constant_node(g, "Add", ["a", "b"], ["c"], None, "add")
    np.testing.assert_array_equal(g.values["c"].data, a + np.float32(2.5))
    assert g.nodes == []
    # a few bytes asking for a huge output are not computed here
    g.add_constant("big", np.asarray([4096, 4096], np.int64))
    assert not fold_shapes.fold_constant_node(g, "ConstantOfShape", ["big"], ["z"], None, "cos")
    # data the reference refuses (an index out of range): kept as a node, no exception
    g.add_constant("idx", np.asarray([7], np.int64))
    assert not fold_shapes.fold_constant_node(g, "Gather", ["a", "idx"], ["y"], {"axis": 0}, "gather")
    # Shape of a statically shaped input needs no data
    g.add_input("x", "float32", (1, 3, 5))
    assert fold_shapes.fold_constant_node(g, "Shape", ["x"], ["s"], None, "shape")
    np.testing.assert_array_equal(g.values["s"].data, [1, 3, 5])
    g.add_input("n", "float32", ("N", 3))
    assert not fold_shapes.fold_constant_node(g, "Shape", ["n"], ["t"], None, "shape2")


def test_symbolic_reshape_target_and_broadcast_plan():
    """ONNX Reshape: 0 copies the input's dim, -1 is inferred (at most one); Expand
    broadcasts numpy-style from the right."""
    from mobconv.passes.fold_shapes import broadcast_plan, reshape_target

    g = Graph("g")
    g.add_input("x", "float32", ("N", 3, 4))
    target = lambda dims, allowzero=0: reshape_target(g, "x", np.asarray(dims, object), allowzero)  # noqa: E731
    assert target(["N", 12]).tolist() == [0, 12]
    assert target(["M", 12]).tolist() == [-1, 12]
    assert target(["N", 12], allowzero=1).tolist() == [-1, 12]  # 0 would mean a 0 dim
    assert target(["M", "K"]) is None  # two unknown dims: no constant form
    assert broadcast_plan((1, 3), ["N", 3]) == ([1, 3], [(0, "N")])
    assert broadcast_plan(("N", 3), ["N", 3]) == ([1, 3], [])
    assert broadcast_plan((3,), ["N", 1, 3]) == ([1, 1, 3], [(0, "N")])
    assert broadcast_plan((2, 3), ["N", 3]) is None


def test_attr_reader_get_for_every_frontend():
    """The contract's `cx.attrs.get(name, default)` is on the shared AttrReader."""
    from mobconv.frontends.common import AttrReader

    reader = AttrReader({"axis": 1, "mode": None}, "ONNX node 'n' (type X)")
    assert reader.get("axis") == 1 and reader.get("mode", "constant") == "constant"
    assert reader.get("missing") is None
