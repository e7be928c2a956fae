"""The TensorFlow loader: reading .pb / .pbtxt / SavedModel, cutting graphs, input shapes,
errors, and conversion without TensorFlow; the committed protos against TensorFlow's.

Numbers are checked against TensorFlow's own execution of the same graph (tf_oracle).
Graphs use only a few common ops (Relu, Mul, AddV2, MatMul); graphs TensorFlow would
not make (cycles, duplicate names, unknown ops) are written by hand as text GraphDefs.
"""
import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

import mobconv
from mobconv.cli.main import main
from mobconv.errors import ConversionError, MobconvError, ModelFormatError, UnsupportedOpsError, UsageError
from mobconv.frontends.tensorflow import load_tensorflow
from mobconv.frontends.tensorflow.proto import graph_pb2, node_def_pb2

from tf_oracle import assert_close, check_graph_def, frozen, run_tf, tf  # noqa: I100

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def relu_scale(x):
    return tf.nn.relu(x) * 2.0 + 1.0


def two_layer(x):
    w = tf.constant(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32))
    h = tf.nn.relu(x * 3.0, name="hidden")
    return tf.matmul(h, w, name="logits") + 0.5


SPEC6 = [tf.TensorSpec([None, 6], tf.float32, name="x")]


@pytest.fixture(scope="module")
def relu_pb(tmp_path_factory):
    f = frozen(relu_scale, [tf.TensorSpec([None, 4, 4, 3], tf.float32, name="x")])
    path = tmp_path_factory.mktemp("relu") / "relu.pb"
    path.write_bytes(f.graph_def)
    return str(path), f


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    f = frozen(two_layer, SPEC6)
    path = tmp_path_factory.mktemp("mlp") / "mlp.pb"
    path.write_bytes(f.graph_def)
    return str(path), f


def parse(data: bytes):
    g = graph_pb2.GraphDef()
    g.ParseFromString(data)
    return g


def feeds6(batch=2, seed=0):
    return {"x": np.random.default_rng(seed).standard_normal((batch, 6)).astype(np.float32)}


# ---- the committed protos ------------------------------------------------------------


def test_generated_proto_code_is_fresh():
    result = subprocess.run([sys.executable, "-m", "mobconv.frontends.tensorflow.generate_proto",
                             "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _fields(descriptor, seen=None):
    """{message path: [(field name, number, type, label)]} of a message and those it uses."""
    seen = {} if seen is None else seen
    key = descriptor.full_name.split(".", 1)[1] if descriptor.full_name.startswith("mobconv.") \
        else descriptor.full_name
    if key in seen:
        return seen
    seen[key] = sorted((f.name, f.number, f.type, f.is_repeated) for f in descriptor.fields)
    for f in descriptor.fields:
        if f.message_type is not None:
            _fields(f.message_type, seen)
    return seen


@pytest.mark.parametrize("ours, theirs", [
    ("graph_pb2.GraphDef", "tensorflow.core.framework.graph_pb2.GraphDef"),
    ("saved_model_pb2.SavedModel", "tensorflow.core.protobuf.saved_model_pb2.SavedModel"),
    ("tensor_bundle_pb2.BundleEntryProto", "tensorflow.core.protobuf.tensor_bundle_pb2.BundleEntryProto"),
])
def test_protos_have_tensorflows_fields(ours, theirs):
    import importlib

    from mobconv.frontends.tensorflow import proto

    mod, msg = ours.split(".")
    mine = getattr(importlib.import_module(f"{proto.__name__}.{mod}"), msg).DESCRIPTOR
    tmod, tmsg = theirs.rsplit(".", 1)
    tf_desc = getattr(importlib.import_module(tmod), tmsg).DESCRIPTOR
    a, b = _fields(mine), _fields(tf_desc)
    assert a == b
    assert len(a) >= 5


# ---- frozen GraphDefs ------------------------------------------------------------------


def test_binary_pb_matches_tensorflow(relu_pb):
    path, f = relu_pb
    model = check_graph_def(f.graph_def, f.inputs, f.outputs)
    assert model.inputs[0].name == "x" and model.inputs[0].shape == ("batch", 4, 4, 3)
    assert model.inputs[0].layout == "NHWC" and model.outputs[0].name == "Identity"
    md = model.metadata
    assert md.source_framework == "tensorflow"
    with open(path, "rb") as fh:
        data = fh.read()
    direct = mobconv.convert(path)
    assert direct.metadata.source_sha256 == hashlib.sha256(data).hexdigest()
    assert direct.metadata.extra["tf_format"] == "GraphDef"


def test_text_pbtxt_and_text_in_a_pb(mlp, tmp_path):
    path, f = mlp
    text = text_format.MessageToString(parse(f.graph_def))
    (tmp_path / "mlp.pbtxt").write_text(text)
    (tmp_path / "text.pb").write_text(text)  # tf.io.write_graph(as_text=True) named .pb
    want = run_tf(f.graph_def, feeds6(), f.outputs)[0]
    for name in ("mlp.pbtxt", "text.pb"):
        model = mobconv.convert(str(tmp_path / name))
        assert model.metadata.extra["tf_format"] == "text GraphDef"
        for backend in ("reference", "runtime"):
            assert_close(model.run(feeds6(), backend=backend)["Identity"], want, what=name)


def test_unsorted_graph_def_and_control_inputs(mlp, tmp_path):
    _, f = mlp
    g = parse(f.graph_def)
    nodes = list(g.node)
    noop = node_def_pb2.NodeDef(name="init", op="NoOp")
    del g.node[:]
    g.node.extend([noop] + nodes[::-1])  # consumers before producers
    for node in g.node:
        if node.op == "Relu":
            node.input.append("^init")  # control edges are dropped
    data = g.SerializeToString()
    check_graph_def(data, f.inputs, f.outputs, tmp_dir=str(tmp_path))


def test_identity_chains_are_aliased(tmp_path):
    def fn(x):
        y = tf.identity(tf.identity(tf.nn.relu(x)))
        return tf.stop_gradient(y) * 2.0, tf.identity(y, name="also")

    f = frozen(fn, SPEC6)
    model = check_graph_def(f.graph_def, f.inputs, f.outputs, tmp_dir=str(tmp_path), optimize=False)
    ops = [n.op for n in model.graph.nodes]
    assert ops.count("Relu") == 1 and ops.count("Mul") == 1
    assert ops.count("Identity") == 2  # only the two renamed outputs
    assert [o.name for o in model.outputs] == [o.split(":")[0] for o in f.outputs]


def test_output_of_a_multi_output_node_and_several_outputs(tmp_path):
    def fn(x):
        a, b = tf.split(tf.nn.relu(x), 2, axis=1)
        return b * 2.0, a

    f = frozen(fn, SPEC6)
    g = parse(f.graph_def)
    split = next(n.name for n in g.node if n.op.startswith("Split"))
    model = check_graph_def(f.graph_def, f.inputs, [f"{split}:1", f.outputs[1]],
                            tmp_dir=str(tmp_path))
    assert [o.name for o in model.outputs] == [f"{split}:1", "Identity_1"]


def test_function_calls_are_inlined(tmp_path):
    """A graph saved without freezing keeps its nested tf.functions as PartitionedCall
    nodes over the graph's function library: they are inlined (nested too)."""
    @tf.function
    def inner(x):
        return tf.nn.relu(x) * 2.0, x + 1.0

    @tf.function
    def outer(x):
        a, b = inner(x)
        return a * b

    @tf.function
    def model(x):
        return outer(x) - inner(x)[1]

    gd = model.get_concrete_function(SPEC6[0]).graph.as_graph_def()
    assert {"PartitionedCall", "StatefulPartitionedCall"} & {n.op for n in gd.node}
    model_ir = check_graph_def(gd.SerializeToString(), ["x"], ["Identity:0"], tmp_dir=str(tmp_path))
    ops = [n.op for n in model_ir.graph.nodes]
    assert ops.count("Relu") == 1 and ops.count("Sub") == 1
    assert not {"PartitionedCall", "StatefulPartitionedCall", "IdentityN", "Identity"} & set(ops)

    @tf.function
    def branchy(x, flag):  # an If whose branches live in the library
        return tf.cond(flag, lambda: tf.nn.relu(x), lambda: x * 3.0)

    gd = tf.function(lambda x: branchy(x, tf.constant(False)) + 1.0).get_concrete_function(
        SPEC6[0]).graph.as_graph_def()
    model_ir = check_graph_def(gd.SerializeToString(), ["x"], ["Identity:0"], tmp_dir=str(tmp_path))
    assert sorted(n.op for n in model_ir.graph.nodes) == ["Add", "Mul"]

    v = tf.Variable(np.ones((6,), np.float32))
    unfrozen = tf.function(lambda x: inner(x)[0] * v).get_concrete_function(SPEC6[0]).graph.as_graph_def()
    (tmp_path / "unfrozen.pb").write_bytes(unfrozen.SerializeToString())
    with pytest.raises(UnsupportedOpsError, match=r"ReadVariableOp x1 .*the graph is not frozen"):
        mobconv.convert(str(tmp_path / "unfrozen.pb"))


# ---- cutting the graph ------------------------------------------------------------------


def test_cut_inputs_and_outputs_match_tensorflow_fed_there(mlp):
    path, f = mlp
    h = np.abs(np.random.default_rng(1).standard_normal((3, 6))).astype(np.float32)
    # the hidden layer becomes the input: feed TensorFlow there too
    model = mobconv.convert(path, inputs={"hidden": (3, 6)}, outputs=["logits"])
    assert [s.name for s in model.inputs] == ["hidden"] and model.inputs[0].shape == (3, 6)
    assert [s.name for s in model.outputs] == ["logits"]
    want = run_tf(f.graph_def, {"hidden:0": h}, ["logits:0"])[0]
    for backend in ("reference", "runtime"):
        assert_close(model.run({"hidden": h}, backend=backend)["logits"], want)
    ops = {n.op for n in model.graph.nodes}
    assert "Relu" not in ops  # what computes the cut input is gone


def test_cut_input_without_a_shape_needs_one(mlp):
    path, _ = mlp
    with pytest.raises(ConversionError, match=r"input 'hidden' has no known shape.*--input-shape hidden="):
        mobconv.convert(path, inputs=["hidden"])
    model = mobconv.convert(path, inputs=["hidden:0"], input_shapes={"hidden": ("n", 6)})
    assert model.inputs[0].shape == ("n", 6)


def test_cut_names_unknown_tensors(mlp):
    path, _ = mlp
    with pytest.raises(UsageError, match=r"outputs names 'logit', which is no node.*did you mean 'logits'"):
        mobconv.convert(path, outputs=["logit"])
    with pytest.raises(UsageError, match=r"inputs names 'nope'"):
        mobconv.convert(path, inputs=["nope"])
    with pytest.raises(UsageError, match=r"outputs names 'logits:0' twice"):
        mobconv.convert(path, outputs=["logits", "logits:0"])
    with pytest.raises(UsageError, match=r"inputs names 'hidden' twice"):
        mobconv.convert(path, inputs=["hidden:0", "hidden"])


@pytest.fixture(scope="module")
def tf1_graph(tmp_path_factory):
    """A TF1-era frozen graph: JPEG decoding before the net, a tf.cond on an is_training
    flag (Switch/Merge), logits -> softmax -> top_k after it; TF1 freezing (VariableV2 ->
    Const + Identity), shapes recorded in _output_shapes."""
    tf1 = tf.compat.v1
    tf1.disable_control_flow_v2()  # Switch/Merge as TensorFlow 1.x built them
    try:
        graph = tf.Graph()
        with graph.as_default():
            jpeg = tf1.placeholder(tf.string, [], name="image_bytes")
            img = tf.expand_dims(tf.cast(tf.image.decode_jpeg(jpeg, channels=3), tf.float32), 0)
            x = tf.subtract(tf1.image.resize_bilinear(img, [8, 8]) / 127.5, 1.0, name="sub")
            training = tf1.placeholder_with_default(False, [], name="is_training")
            w = tf1.get_variable("w", [6, 4], initializer=tf1.random_normal_initializer(seed=1))
            y = tf.nn.relu(tf.tensordot(x, w[:3], 1), name="hidden")
            y = tf.cond(training, lambda: tf.nn.dropout(y, rate=0.5), lambda: y)
            logits = tf.reduce_mean(y, axis=[1, 2], name="logits")
            tf.math.top_k(tf.nn.softmax(logits), 2, name="top")
            with tf1.Session(graph=graph) as sess:
                sess.run(tf1.global_variables_initializer())
                gd = tf1.graph_util.convert_variables_to_constants(
                    sess, graph.as_graph_def(add_shapes=True), ["logits", "top"])
    finally:
        tf1.enable_control_flow_v2()
    path = tmp_path_factory.mktemp("tf1") / "tf1.pb"
    path.write_bytes(gd.SerializeToString())
    return str(path), gd.SerializeToString()


def test_tf1_graph_cut_after_preprocessing(tf1_graph):
    path, data = tf1_graph
    with pytest.raises(UnsupportedOpsError, match=r"1 unsupported .* DecodeJpeg x1 \('DecodeJpeg'\)$"):
        mobconv.convert(path)  # the is_training flag became a constant: its cond folds
    model = mobconv.convert(path, inputs=["sub"], outputs=["logits"])
    assert [(s.name, s.shape) for s in model.inputs] == [("sub", (1, 8, 8, 3))]  # _output_shapes
    ops = {n.op for n in model.graph.nodes}
    assert not ops & {"Switch", "Merge", "RandomUniform"}
    x = np.random.default_rng(4).standard_normal((1, 8, 8, 3)).astype(np.float32)
    want = run_tf(data, {"sub:0": x}, ["logits:0", "top:0", "top:1"])
    for backend in ("reference", "runtime"):
        assert_close(model.run({"sub": x}, backend=backend)["logits"], want[0], what=backend)
    both = mobconv.convert(path, inputs=["sub"], outputs=["top:1", "top"])
    assert [s.name for s in both.outputs] == ["top:1", "top"]
    got = both.run({"sub": x}, backend="reference")
    np.testing.assert_array_equal(got["top:1"], want[2])
    assert_close(got["top"], want[1])


# ---- input shapes ----------------------------------------------------------------


def test_input_shapes_fix_unknown_dims_and_refuse_conflicts(mlp):
    path, f = mlp
    model = mobconv.convert(path, input_shapes={"x": (5, 6)})
    assert model.inputs[0].shape == (5, 6)
    want = run_tf(f.graph_def, feeds6(5), f.outputs)[0]
    assert_close(model.run(feeds6(5), backend="runtime")["Identity"], want)
    with pytest.raises(UsageError, match=r"conflicts with the graph's fixed dim 1 = 6"):
        mobconv.convert(path, input_shapes={"x": (1, 7)})
    with pytest.raises(UsageError, match=r"has rank 3, but the graph declares rank 2"):
        mobconv.convert(path, input_shapes={"x": (1, 6, 1)})
    with pytest.raises(UsageError, match=r"unknown input\(s\) y"):
        mobconv.convert(path, input_shapes={"y": (1, 6)})


def test_unknown_dims_become_symbols_per_input(tmp_path):
    def fn(a, b):
        return tf.nn.relu(a) + tf.reduce_sum(b)

    f = frozen(fn, [tf.TensorSpec([None, None, 3], tf.float32, name="a"),
                    tf.TensorSpec([2, None], tf.float32, name="b")])
    (tmp_path / "m.pb").write_bytes(f.graph_def)
    model = mobconv.convert(str(tmp_path / "m.pb"))
    assert [s.shape for s in model.inputs] == [("batch", "a_d1", 3), (2, "b_d1")]


def test_scalar_placeholder_with_default_is_its_default(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 6], name="x")
        scale = tf.compat.v1.placeholder_with_default(tf.constant(3.0), [], name="scale")
        tf.nn.relu(x * scale, name="out")
    data = graph.as_graph_def().SerializeToString()
    model = check_graph_def(data, ["x"], ["out:0"], tmp_dir=str(tmp_path))
    assert [s.name for s in model.inputs] == ["x"]
    fed = mobconv.convert(str(tmp_path / "frozen.pb"), inputs=["x", "scale"], outputs=["out"])
    assert [s.name for s in fed.inputs] == ["x", "scale"]


# ---- SavedModel -----------------------------------------------------------------------


class TwoSignatures(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="features")])
    def score(self, features):
        return {"logits": tf.matmul(tf.nn.relu(features), self.w), "scaled": features * 2.0}

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def double(self, x):
        return x * 2.0


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved models é")  # an odd path: space, non-ASCII
    module = TwoSignatures()
    one, two = str(base / "one"), str(base / "two")
    tf.saved_model.save(module, one, signatures={"serving_default": module.score})
    tf.saved_model.save(module, two, signatures={"score": module.score, "double": module.double})
    tf.saved_model.save(module, str(base / "three"),  # as Keras' export(): serve + serving_default
                        signatures={"serving_default": module.double, "serve": module.score})
    return module, one, two


def test_saved_model_keeps_the_signature_names_and_matches_tensorflow(saved_models):
    module, one, _ = saved_models
    model = mobconv.convert(one + os.sep)  # a trailing slash is the same directory
    assert [s.name for s in model.inputs] == ["features"]
    assert [s.name for s in model.outputs] == ["logits", "scaled"]
    assert model.metadata.options["signature"] == "serving_default"
    assert model.metadata.extra["tf_format"] == "SavedModel"
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 6)).astype(np.float32)
        want = module.score(tf.constant(x))
        for backend in ("reference", "runtime"):
            got = model.run({"features": x}, backend=backend)
            assert_close(got["logits"], want["logits"].numpy(), what=backend)
            assert_close(got["scaled"], want["scaled"].numpy(), what=backend)
    direct = mobconv.convert(os.path.join(one, "saved_model.pb"))  # the file names its directory
    assert [s.name for s in direct.outputs] == ["logits", "scaled"]


def test_saved_model_with_several_signatures_lists_them(saved_models):
    module, _, two = saved_models
    with pytest.raises(UsageError, match=r"has 2 signatures: double, score and no serving_default; "
                                         r"choose one with --signature"):
        mobconv.convert(two)
    with pytest.raises(UsageError, match=r"no signature 'serving_default' \(signatures: double, score\)"):
        mobconv.convert(two, signature="serving_default")
    model = mobconv.convert(two, signature="double")
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    out = model.run({"x": x}, backend="runtime")
    assert_close(out["output_0"], module.double(tf.constant(x)).numpy())


def test_serving_default_is_the_default_among_several(saved_models):
    _, one, _ = saved_models
    three = os.path.join(os.path.dirname(one), "three")
    assert [s.name for s in mobconv.convert(three).outputs] == ["output_0"]
    assert [s.name for s in mobconv.convert(three, signature="serve").outputs] == ["logits", "scaled"]


def test_signature_option_is_only_for_saved_models(mlp):
    with pytest.raises(UsageError, match=r"signature='serving_default' is only for a SavedModel"):
        mobconv.convert(mlp[0], signature="serving_default")


def test_cli_converts_a_saved_model_beside_it(saved_models, tmp_path, capsys):
    _, one, _ = saved_models
    copy = tmp_path / "my model"
    shutil.copytree(one, copy)
    code = main(["tf2mob", str(copy), "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert (tmp_path / "my model.mob").is_file()
    assert "Inputs: features float32[batch, 6]" in out.out


# ---- the command line --------------------------------------------------------------------


def test_cli_saved_model_with_tensorflow_prints_only_its_summary(saved_models, tmp_path):
    """TensorFlow's own C++ log lines (the oneDNN notice) stay out of the CLI's output."""
    _, one, _ = saved_models
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "TF_ENABLE"))}
    result = subprocess.run([sys.executable, "-m", "mobconv", "tf2mob", one, "-o", str(tmp_path / "o.mob")],
                            capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == "" and result.stdout.startswith("Converted "), result.stderr[-2000:]




def test_cli_cut_with_shapes_in_brackets(mlp, tmp_path, capsys):
    path, f = mlp
    out = tmp_path / "cut.mob"
    code = main(["tf2mob", path, "-o", str(out), "--inputs", "hidden:0[2,6]", "--outputs", "logits", "-q"])
    assert code == 0, capsys.readouterr().err
    model = mobconv.load(str(out))
    assert model.metadata.options["inputs"] == "hidden:0[2,6]"
    h = np.abs(np.random.default_rng(3).standard_normal((2, 6))).astype(np.float32)
    want = run_tf(f.graph_def, {"hidden:0": h}, ["logits:0"])[0]
    assert_close(model.run({"hidden": h}, backend="runtime")["logits"], want)


@pytest.mark.parametrize("argv, fragment", [
    (["--inputs", "x:1,6"], "looks like a dim: a shape goes in brackets"),
    (["--inputs", "x[1,-6]"], "dimension '-6' is not a positive integer"),
    (["--outputs", "logits[2]"], "expected tensor names"),
    (["--outputs", "nothere"], "outputs names 'nothere', which is no node"),
])
def test_cli_bad_cuts_are_one_line_usage_errors(mlp, tmp_path, capsys, argv, fragment):
    code = main(["tf2mob", mlp[0], "-o", str(tmp_path / "x.mob"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.mob").exists()


# ---- errors ----------------------------------------------------------------------------


def text_graph(tmp_path, text, name="g.pbtxt"):
    path = tmp_path / name
    path.write_text('node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }'
                    ' attr { key: "shape" value { shape { dim { size: 1 } dim { size: 4 } } } } }\n'
                    + text)
    return str(path)


def test_every_unsupported_op_is_reported_at_once(tmp_path):
    path = text_graph(tmp_path, """
        node { name: "a" op: "FancyOpA" input: "x" }
        node { name: "b1" op: "FancyOpB" input: "a" }
        node { name: "b2" op: "FancyOpB" input: "b1" }
        node { name: "r" op: "Relu" input: "b2" attr { key: "T" value { type: DT_FLOAT } } }
    """)
    with pytest.raises(UnsupportedOpsError) as info:
        mobconv.convert(path)
    msg = str(info.value)
    assert msg.startswith(path)
    assert "2 unsupported TensorFlow op type(s)" in msg
    assert "FancyOpA x1 ('a')" in msg and "FancyOpB x2 ('b1', 'b2')" in msg
    # a cut leaves them out
    model = mobconv.convert(path, inputs={"b2": (1, 4)}, outputs=["r"])
    assert [n.op for n in model.graph.nodes] == ["Relu"]


def test_unfrozen_graph_says_so(tmp_path):
    path = text_graph(tmp_path, """
        node { name: "v" op: "VarHandleOp" }
        node { name: "r" op: "ReadVariableOp" input: "v" }
        node { name: "y" op: "AddV2" input: "x" input: "r" }
    """)
    with pytest.raises(UnsupportedOpsError, match=r"ReadVariableOp x1.*the graph is not frozen"):
        mobconv.convert(path)


@pytest.mark.parametrize("body, error, fragment", [
    ('node { name: "a" op: "Relu" input: "b" } node { name: "b" op: "Relu" input: "a" } '
     'node { name: "o" op: "Relu" input: "a" }',
     ConversionError, "the graph has a cycle through 2 node(s): 'a' (Relu), 'b' (Relu)"),
    ('node { name: "a" op: "Relu" input: "x" } node { name: "a" op: "Relu" input: "x" }',
     ConversionError, "two nodes are named 'a'"),
    ('node { name: "a" op: "Relu" input: "missing:0" }',
     ConversionError, "node 'a' (type Relu) reads 'missing:0', which no node of the graph defines"),
    ('node { name: "c" op: "Const" attr { key: "value" value { tensor { dtype: DT_STRING '
     'tensor_shape {} string_val: "hi" } } } } node { name: "a" op: "Identity" input: "c" }',
     ConversionError, "node 'c' (type Const): constants of type string are not supported"),
    ('node { name: "a" op: "Relu" input: "x" } nod { }', ModelFormatError, "not a text GraphDef"),
    # found by fuzzing the loader with mutated GraphDefs
    ('node { name: "a" op: "Identity" }', ConversionError, "node 'a' (type Identity): takes 1 input, got 0"),
    ('node { name: "a" op: "Relu" input: "x" attr { key: "T" value { type: 99 } } }',
     ConversionError, "node 'a' (type Relu): attribute 'T' has the unknown type code 99"),
    ('node { name: "a" op: "ConcatV2" input: "x" input: "x" input: "ax" '
     'attr { key: "T" value { type: DT_STRING } } attr { key: "N" value { i: 2 } } } '
     'node { name: "ax" op: "Const" attr { key: "value" value { tensor { '
     'dtype: DT_INT32 tensor_shape {} int_val: 0 } } } }',
     ConversionError, "node 'a' (type ConcatV2): computes on string tensors (attribute 'T')"),
])
def test_malformed_graphs_name_the_file_and_node(tmp_path, body, error, fragment):
    path = text_graph(tmp_path, body)
    with pytest.raises(error) as info:
        mobconv.convert(path)
    msg = str(info.value)
    assert msg.startswith(path) and fragment in msg and "\n" not in msg, msg


def test_missing_empty_and_corrupt_files(tmp_path, relu_pb):
    with pytest.raises(MobconvError, match="no such file"):
        mobconv.convert(str(tmp_path / "absent.pb"))
    with pytest.raises(MobconvError, match="no such file"):
        load_tensorflow(str(tmp_path / "absent.pb"))
    (tmp_path / "empty.pb").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty"):
        load_tensorflow(str(tmp_path / "empty.pb"))
    rng = np.random.default_rng(0)
    (tmp_path / "noise.pb").write_bytes(rng.integers(0, 256, 3000).astype(np.uint8).tobytes())
    with pytest.raises(ModelFormatError, match=r"noise\.pb: not a TensorFlow GraphDef"):
        mobconv.convert(str(tmp_path / "noise.pb"))
    data = open(relu_pb[0], "rb").read()
    (tmp_path / "cut.pb").write_bytes(data[: len(data) // 2])  # truncated download
    with pytest.raises(ModelFormatError, match=r"cut\.pb: not a TensorFlow GraphDef"):
        mobconv.convert(str(tmp_path / "cut.pb"))
    (tmp_path / "bin.pbtxt").write_bytes(data)
    with pytest.raises(ModelFormatError, match=r"bin\.pbtxt: a \.pbtxt must be UTF-8 text"):
        mobconv.convert(str(tmp_path / "bin.pbtxt"))


def test_saved_model_pb_renamed_is_not_taken_for_a_graph(saved_models, tmp_path):
    _, one, _ = saved_models
    shutil.copy(os.path.join(one, "saved_model.pb"), tmp_path / "model.pb")
    with pytest.raises(MobconvError, match=r"model\.pb: is a SavedModel's saved_model\.pb"):
        mobconv.convert(str(tmp_path / "model.pb"))


def test_directory_without_saved_model(tmp_path):
    with pytest.raises(MobconvError, match="saved_model.pb"):
        load_tensorflow(str(tmp_path))


# ---- mutated graphs -------------------------------------------------------------------------


def _conv_net(x):
    rng = np.random.default_rng(5)
    k = tf.constant(rng.standard_normal((3, 3, 3, 8)).astype(np.float32))
    y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, k, 2, "SAME"), tf.constant(np.ones(8, np.float32))))
    y = tf.reshape(tf.nn.max_pool2d(y, 2, 2, "VALID"), [-1, 32])
    a, b = tf.split(y, 2, axis=1)
    y = tf.matmul(tf.concat([b, a], 1), tf.constant(rng.standard_normal((32, 5)).astype(np.float32)))
    return tf.nn.softmax(y), tf.argmax(y, 1)


def _mutate(rnd, graph_def):
    """One random edit of a GraphDef: an attribute dropped or changed, an input rewired,
    dropped or added, an op type or name swapped, a node removed."""
    nodes = list(graph_def.node)
    node = rnd.choice(nodes)
    kind = rnd.randrange(8)
    if kind == 0 and node.attr:
        del node.attr[rnd.choice(sorted(node.attr))]
    elif kind == 1 and node.attr:
        value = node.attr[rnd.choice(sorted(node.attr))]
        which = value.WhichOneof("value")
        if which == "i":
            value.i = rnd.choice([-1, 0, 7, 1 << 40])
        elif which == "type":
            value.type = rnd.choice([2, 3, 7, 9, 10, 14, 19, 20])
        elif which == "s":
            value.s = rnd.choice([b"", b"NCHW", b"SAME", b"VALID", b"\xff"])
        elif which == "list" and value.list.i:
            value.list.i[rnd.randrange(len(value.list.i))] = rnd.choice([0, -1, 3, 1 << 33])
        elif which == "shape":
            if value.shape.dim:
                value.shape.dim[rnd.randrange(len(value.shape.dim))].size = rnd.choice([-1, 0, 5])
            else:
                value.shape.unknown_rank = True
        elif which == "tensor":
            t = value.tensor
            edit = rnd.randrange(3)
            if edit == 0:
                t.tensor_content = t.tensor_content[:-4]
            elif edit == 1 and t.tensor_shape.dim:
                t.tensor_shape.dim[0].size += 1
            else:
                t.dtype = rnd.choice([1, 2, 3, 7, 9, 10, 14, 19, 20])
    elif kind == 2 and node.input:
        node.input[rnd.randrange(len(node.input))] = rnd.choice(nodes).name + rnd.choice(["", ":1", ":7"])
    elif kind == 3 and node.input:
        del node.input[rnd.randrange(len(node.input))]
    elif kind == 4:
        node.input.append(rnd.choice(nodes).name)
    elif kind == 5:
        node.op = rnd.choice(nodes).op
    elif kind == 6:
        graph_def.node.remove(node)
    else:
        node.name = rnd.choice(nodes).name


def _fuzz_seed_graphs(mlp) -> list:
    """GraphDefs the fuzzer mutates: a conv net, an MLP, TF1 Switch/Merge conds (the
    classifier's dropout, a PlaceholderWithDefault flag), a functional If, a frame-based
    and a functional while loop, a FakeQuant QAT graph."""
    import tf_models
    from tensorflow.python.ops import control_flow_util

    def v1_graph(build, v2_control_flow):
        old = control_flow_util.ENABLE_CONTROL_FLOW_V2
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = v2_control_flow
        try:
            with tf.Graph().as_default() as graph:
                x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
                tf.identity(build(x), name="out")
        finally:
            control_flow_util.ENABLE_CONTROL_FLOW_V2 = old
        return graph.as_graph_def().SerializeToString()

    def cond(x):
        training = tf.compat.v1.placeholder_with_default(False, [], name="training")
        inner = tf.compat.v1.cond(tf.logical_not(training), lambda: x + 1.0, lambda: x)
        return tf.compat.v1.cond(training, lambda: x * 2.0, lambda: tf.nn.relu(inner))

    def loop(x):
        return tf.compat.v1.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 2.0),
                                       [tf.constant(0), x])[1]

    return [frozen(_conv_net, [tf.TensorSpec([None, 8, 8, 3], tf.float32, name="x")]).graph_def,
            mlp[1].graph_def, tf_models.tf1_classifier(), tf_models.tf1_qat(),
            v1_graph(cond, False), v1_graph(cond, True), v1_graph(loop, False),
            v1_graph(loop, True)]


def test_mutated_graphs_fail_with_one_line_errors(tmp_path, mlp):
    """Every mutant either converts or raises a MobconvError naming the file, on one line.
    Found by it: control_flow crashes (KeyError, StopIteration, TypeError) on mutated
    Switch/Merge graphs, an IndexError for ConcatV2 without inputs (test_tf_hostile.py)."""
    import random

    seeds = _fuzz_seed_graphs(mlp)
    ops = {n.op for data in seeds for n in parse(data).node}
    assert {"Switch", "Merge", "StatelessIf", "Enter", "StatelessWhile", "FakeQuantWithMinMaxVars",
            "FakeQuantWithMinMaxVarsPerChannel", "PlaceholderWithDefault"} <= ops, ops
    rnd = random.Random(0)
    path = str(tmp_path / "mutant.pb")
    converted = [0] * len(seeds)
    for round in range(400):
        k = round % len(seeds)
        g = parse(seeds[k])
        for _ in range(rnd.randint(1, 3)):
            _mutate(rnd, g)
        with open(path, "wb") as f:
            f.write(g.SerializeToString())
        try:
            mobconv.convert(path)
            converted[k] += 1
        except MobconvError as exc:
            msg = str(exc)
            assert msg.startswith(path) and "\n" not in msg, msg
    assert 0 < sum(converted) < 400, converted


def test_mutated_saved_models_fail_with_one_line_errors(saved_models, tmp_path, monkeypatch):
    """A SavedModel with mutated bytes (saved_model.pb, variables.index, the data shard),
    read without TensorFlow (our checkpoint reader and function inliner): it converts or
    fails with one line naming the directory or the file."""
    import random

    from mobconv.frontends.tensorflow import reader

    def no_tensorflow():
        raise ImportError("no tensorflow")

    monkeypatch.setattr(reader, "_import_tensorflow", no_tensorflow)
    _, one, _ = saved_models
    files = [os.path.join("saved_model.pb"), os.path.join("variables", "variables.index"),
             os.path.join("variables", "variables.data-00000-of-00001")]
    originals = {f: open(os.path.join(one, f), "rb").read() for f in files}
    mobconv.convert(one)  # the seed itself converts without TensorFlow
    rnd = random.Random(1)
    converted = 0
    for round in range(120):
        target = tmp_path / f"m{round}"
        shutil.copytree(one, target)
        name = files[round % len(files)]
        data = bytearray(originals[name])
        edit = rnd.randrange(4)
        if edit == 0:  # flip bytes
            for _ in range(rnd.randint(1, 4)):
                data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        elif edit == 1:  # truncate
            del data[rnd.randrange(len(data)):]
        elif edit == 2:  # overwrite a run with a boundary value
            at = rnd.randrange(len(data))
            data[at:at + 4] = rnd.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00", b"\x80\x80\x80\x01"])
        else:  # insert bytes
            at = rnd.randrange(len(data))
            data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        (target / name).write_bytes(bytes(data))
        try:
            mobconv.convert(str(target))
            converted += 1
        except MobconvError as exc:
            msg = str(exc)
            assert msg.startswith(str(target)) and "\n" not in msg, (name, edit, msg)
        shutil.rmtree(target)
    assert 0 < converted < 120, converted


# ---- without TensorFlow --------------------------------------------------------------------

_NO_TF = "import sys; sys.modules['tensorflow'] = None\n"


def test_frozen_graph_converts_and_runs_without_tensorflow(mlp, tmp_path):
    path, f = mlp
    x = feeds6(2)["x"]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", run_tf(f.graph_def, {"x": x}, f.outputs)[0])
    script = _NO_TF + f"""
import numpy as np, mobconv
model = mobconv.convert({path!r})
x, want = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'want.npy')!r})
got = model.run({{"x": x}}, backend="reference")["Identity"]
assert np.allclose(got, want, rtol=1e-4, atol=1e-5), abs(got - want).max()
assert "tensorflow" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def _run_without_tensorflow(script, *args):
    return subprocess.run([sys.executable, "-c", _NO_TF + script, *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


_CONVERT_AND_RUN = """
import numpy as np, mobconv
path, x_file, out_file = sys.argv[1:4]
kwargs = {"signature": sys.argv[4]} if len(sys.argv) > 4 else {}
model = mobconv.convert(path, **kwargs)
out = model.run({model.inputs[0].name: np.load(x_file)}, backend="reference")
np.savez(out_file, names=np.array([s.name for s in model.outputs]), *[out[s.name] for s in model.outputs])
assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow" and sys.modules[m] is not None]
"""


def _keras_net():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    y = keras.layers.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 3.0])(inputs)
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU(6.0)(y)
    y = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    model = keras.Model(inputs, keras.layers.Dense(5)(y))
    for w in model.weights:  # non-trivial batch norm statistics
        w.assign(np.random.default_rng(len(w.path)).uniform(0.5, 1.5, w.shape).astype(np.float32))
    return model


def test_saved_models_convert_without_tensorflow(saved_models, tmp_path):
    """TF2 SavedModels are frozen without TensorFlow: the checkpoint is read and the
    signature's functions are inlined; results equal TensorFlow's."""
    module, one, two = saved_models
    keras_net = _keras_net()
    keras_dir = tmp_path / "keras export"
    keras_net.export(str(keras_dir), verbose=False)
    rng = np.random.default_rng(7)
    x6 = rng.standard_normal((3, 6)).astype(np.float32)
    x12 = rng.standard_normal((2, 12, 12, 3)).astype(np.float32)
    np.save(tmp_path / "x6.npy", x6)
    np.save(tmp_path / "x12.npy", x12)
    score = module.score(tf.constant(x6))
    cases = [
        (one, "x6", [], {"logits": score["logits"].numpy(), "scaled": score["scaled"].numpy()}),
        (two, "x6", ["double"], {"output_0": module.double(tf.constant(x6)).numpy()}),
        (keras_dir, "x12", [], {"output_0": keras_net(x12).numpy()}),
    ]
    for path, x, extra, want in cases:
        out_file = tmp_path / "out.npz"
        result = _run_without_tensorflow(_CONVERT_AND_RUN, path, tmp_path / f"{x}.npy", out_file, *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        got = np.load(out_file)
        names = list(got["names"])
        assert names == sorted(want), names
        for i, name in enumerate(names):
            assert_close(got[f"arr_{i}"], want[name], what=f"{path} {name}")


def test_checkpoint_reader_equals_tensorflows(saved_models, tmp_path):
    from mobconv.frontends.tensorflow.bundle import Bundle

    keras_dir = tmp_path / "k"
    _keras_net().export(str(keras_dir), verbose=False)
    for directory in (saved_models[1], str(keras_dir)):
        prefix = os.path.join(directory, "variables", "variables")
        ours, theirs = Bundle(prefix), tf.train.load_checkpoint(prefix)
        names = theirs.get_variable_to_shape_map()
        assert set(ours.entries) == set(names) and len(names) >= 2
        for name in names:
            got, want = ours.read(name), theirs.get_tensor(name)
            if got.dtype == object:
                assert got.shape == () and got[()] == want
            else:
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
    data = open(prefix + ".index", "rb").read()
    open(tmp_path / "bad.index", "wb").write(data[:-9] + b"\0" * 9)  # the magic number broken
    with pytest.raises(ConversionError, match=r"bad\.index: not a TensorFlow checkpoint index \(bad table magic"):
        Bundle(str(tmp_path / "bad"))


class Embedding(tf.Module):
    def __init__(self):
        super().__init__()
        self.table = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids")])
    def lookup(self, ids):
        return tf.gather(self.table, ids)  # ResourceGather: the variable is not read whole


def test_saved_model_beyond_the_tensorflow_free_freezer_says_what_to_install(tmp_path):
    module = Embedding()
    path = tmp_path / "embedding"
    tf.saved_model.save(module, str(path), signatures=module.lookup)
    script = "from mobconv.cli.main import main; sys.exit(main(sys.argv[1:]))"
    result = _run_without_tensorflow(script, "tf2mob", path, "-o", tmp_path / "c.mob")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "(ResourceGather) uses a variable other than by reading it" in result.stderr
    assert "pip install tensorflow-cpu" in result.stderr
    # a wrong signature is reported without TensorFlow too (read from saved_model.pb)
    result = _run_without_tensorflow(script, "tf2mob", path, "--signature", "nope", "-o", tmp_path / "c.mob")
    assert result.returncode == 2 and "no signature 'nope' (signatures: serving_default)" in result.stderr
