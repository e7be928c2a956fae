"""The TensorFlow loader's default outputs (a graph's sinks), its messages for files
that are not models, and float64 graphs (computed in float32).

Sinks are found on the graph before the constant tf.cond is folded; every output port
of an end node counts (TopKV2's indices, Unpack's parts), FusedBatchNorm's only y.
Numbers are checked against TensorFlow running the same GraphDef (tf_oracle.run_tf).
"""
import numpy as np
import pytest
from google.protobuf import text_format

import mobconv
from mobconv.frontends.tensorflow.proto import graph_pb2

from tf_oracle import run_tf  # noqa: I100

FLOAT = 'attr { key: "T" value { type: DT_FLOAT } }'


def placeholder(name, dims, dtype="DT_FLOAT"):
    shape = " ".join(f"dim {{ size: {d} }}" for d in dims)
    return (f'node {{ name: "{name}" op: "Placeholder" attr {{ key: "dtype" value {{ type: {dtype} }} }}'
            f' attr {{ key: "shape" value {{ shape {{ {shape} }} }} }} }}\n')


def const(name, dtype, dims, field, values):
    shape = " ".join(f"dim {{ size: {d} }}" for d in dims)
    vals = " ".join(f"{field}: {v}" for v in values)
    return (f'node {{ name: "{name}" op: "Const" attr {{ key: "dtype" value {{ type: {dtype} }} }}'
            f' attr {{ key: "value" value {{ tensor {{ dtype: {dtype} tensor_shape {{ {shape} }}'
            f' {vals} }} }} }} }}\n')


def op(name, kind, inputs, attrs=FLOAT):
    ins = " ".join(f'input: "{i}"' for i in inputs)
    return f'node {{ name: "{name}" op: "{kind}" {ins} {attrs} }}\n'


def write(tmp_path, text, name="g.pb"):
    g = graph_pb2.GraphDef()
    text_format.Parse(text, g)
    path = tmp_path / name
    path.write_bytes(g.SerializeToString())
    return str(path), g.SerializeToString()


def check_outputs_against_tf(path, data, feeds, rtol=1e-6):
    model = mobconv.convert(path)
    fetches = [o if ":" in o else o + ":0" for o in model.graph.outputs]
    want = run_tf(data, feeds, fetches)
    for backend in ("reference", "runtime"):
        got = model.run(feeds, backend=backend)
        for name, w in zip(model.graph.outputs, want):
            g = np.asarray(got[name])
            assert g.shape == w.shape and g.dtype == w.dtype, (backend, name, g.dtype, w.dtype)
            np.testing.assert_allclose(g, w, rtol=rtol, err_msg=f"{backend} {name}")
    return model


def test_default_outputs_are_every_unread_port_of_the_ends(tmp_path):
    """TopKV2 and Unpack ending the graph give all their outputs; a node read only through
    a control edge (by a NoOp) and a FusedBatchNormV3's statistics are no outputs."""
    text = (placeholder("x", [2, 5])
            + const("k", "DT_INT32", [], "int_val", [2])
            + op("top", "TopKV2", ["x", "k"], FLOAT + ' attr { key: "sorted" value { b: true } }')
            + op("parts", "Unpack", ["x"], FLOAT + ' attr { key: "num" value { i: 2 } }'
                 ' attr { key: "axis" value { i: 0 } }')
            + op("side", "Relu", ["x"])
            + op("deps", "NoOp", ["^side"], "")
            + placeholder("img", [1, 2, 2, 3])
            + const("gamma", "DT_FLOAT", [3], "float_val", [1.5, 0.5, 2.0])
            + const("beta", "DT_FLOAT", [3], "float_val", [0.1, -0.2, 0.3])
            + const("mean", "DT_FLOAT", [3], "float_val", [0.5, 0.0, -1.0])
            + const("var", "DT_FLOAT", [3], "float_val", [2.0, 1.0, 0.25])
            + op("bn", "FusedBatchNormV3", ["img", "gamma", "beta", "mean", "var"],
                 FLOAT + ' attr { key: "U" value { type: DT_FLOAT } }'
                 ' attr { key: "epsilon" value { f: 0.001 } }'
                 ' attr { key: "is_training" value { b: false } }'
                 ' attr { key: "data_format" value { s: "NHWC" } }'))
    path, data = write(tmp_path, text)
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32),
             "img": np.random.default_rng(1).standard_normal((1, 2, 2, 3)).astype(np.float32)}
    model = check_outputs_against_tf(path, data, feeds, rtol=1e-5)
    assert model.graph.outputs == ["top", "top:1", "parts", "parts:1", "bn"]


def test_default_outputs_skip_a_folded_conds_predicate(tmp_path):
    """tf.cond on a constant as TF1 writes it (Switch/Merge, the predicate through an
    Identity "pred_id" and a Cast): after folding, nothing reads the predicate, but it
    is not an end of the graph TensorFlow would run."""
    text = (placeholder("x", [1, 4])
            + const("flag", "DT_INT32", [], "int_val", [1])
            + op("flag_b", "Cast", ["flag"], 'attr { key: "SrcT" value { type: DT_INT32 } }'
                 ' attr { key: "DstT" value { type: DT_BOOL } }')
            + op("cond/pred_id", "Identity", ["flag_b"], 'attr { key: "T" value { type: DT_BOOL } }')
            + op("cond/Switch", "Switch", ["x", "cond/pred_id"])
            + op("cond/then", "Relu", ["cond/Switch:1"])
            + op("cond/else", "Neg", ["cond/Switch"])
            + op("cond/Merge", "Merge", ["cond/then", "cond/else"],
                 FLOAT + ' attr { key: "N" value { i: 2 } }')
            + op("out", "Mul", ["cond/Merge", "cond/Merge"]))
    path, data = write(tmp_path, text)
    feeds = {"x": np.array([[-1.0, 2.0, -3.0, 0.5]], np.float32)}
    model = check_outputs_against_tf(path, data, feeds)
    assert model.graph.outputs == ["out"]


# ---- files that are no model ------------------------------------------------------------

LFS = (b"version https://git-lfs.github.com/spec/v1\n"
       b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
       b"size 14512350\n")


def _graph_bytes():
    weights = np.random.default_rng(3).standard_normal(600).astype(np.float32)
    text = (placeholder("x", [1, 600]) + const("w", "DT_FLOAT", [600], "float_val", weights.tolist())
            + op("y", "Mul", ["x", "w"]))
    g = graph_pb2.GraphDef()
    text_format.Parse(text, g)
    return g.SerializeToString()


def _as_text_round_trip(data: bytes) -> bytes:
    return data.decode("utf-8", errors="replace").encode("utf-8")


@pytest.mark.parametrize("name, content, fragment", [
    ("model.pb", lambda: LFS, "this is a Git LFS pointer for a 14512350-byte file"),
    ("model.pb", lambda: _as_text_round_trip(_graph_bytes()),
     "looks corrupted by a UTF-8 text conversion"),
    ("model.pb", lambda: b"import tensorflow as tf\n\nmodel = tf.keras.Sequential()\n",
     "is a text file (starts 'import tensorflow as tf'), not a binary TensorFlow GraphDef"),
    ("model.pb", lambda: b"# exported by train.py\nprint('hello')\n",
     "is a text file (starts '# exported by train.py'), not a binary TensorFlow GraphDef"),
    ("model.pb", lambda: b"<!DOCTYPE html>\n<html><head><title>GitHub</title></head></html>\n",
     "is an HTML page"),
    ("model.onnx", lambda: LFS, "this is a Git LFS pointer"),
    ("model.onnx", lambda: _as_text_round_trip(_graph_bytes()), "looks corrupted by a UTF-8"),
])
def test_files_that_are_no_model_say_what_they_are(tmp_path, capsys, name, content, fragment):
    from mobconv.cli.main import main

    data = content()
    path = tmp_path / name
    path.write_bytes(data)
    command = "tf2mob" if name.endswith(".pb") else "onnx2mob"
    code = main([command, str(path), "-o", str(tmp_path / "out.mob"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and fragment in err, err
    if "LFS" in fragment:
        assert "run `git lfs pull`" in err


def test_the_binary_graph_before_its_text_round_trip_converts(tmp_path):
    path, data = str(tmp_path / "g.pb"), _graph_bytes()
    with open(path, "wb") as f:
        f.write(data)
    x = np.random.default_rng(4).standard_normal((1, 600)).astype(np.float32)
    (want,) = run_tf(data, {"x": x}, ["y:0"])
    np.testing.assert_allclose(mobconv.convert(path).run({"x": x})["y"], want, rtol=1e-6)


@pytest.mark.parametrize("content, fragment", [
    (lambda: LFS, "this is a Git LFS pointer"),
    (lambda: _as_text_round_trip(_graph_bytes()), "looks corrupted by a UTF-8 text conversion"),
])
def test_caffemodel_that_is_no_model_says_what_it_is(tmp_path, content, fragment):
    from mobconv.errors import ModelFormatError
    from mobconv.frontends.caffe.parser import parse_caffemodel

    path = tmp_path / "net.caffemodel"
    path.write_bytes(content())
    with pytest.raises(ModelFormatError, match=fragment):
        parse_caffemodel(str(path))


# ---- float64 --------------------------------------------------------------------------

F64_RTOL = 2e-6  # float32 (eps 6e-8) through a few ops, against TensorFlow's float64


def test_float64_computes_in_float32_with_one_warning_and_a_note(tmp_path):
    """Keypoint decoding as detectors write it: heatmap offsets cast to float64, scaled by
    float64 constants, summed, cast back. Converted to float32 (one warning line, the
    nodes in the metadata) and within F64_RTOL of TensorFlow's float64 path."""
    import tensorflow as tf

    from tf_oracle import freeze

    stride = tf.constant(np.array([8.0 / 3.0, 8.0 / 7.0], np.float64))
    offset = tf.constant(np.array([0.1234567890123, -1.0 / 3.0], np.float64))

    def decode(x):
        d = tf.cast(x, tf.float64, name="to_double")
        y = tf.exp(d * 0.25) * stride + offset
        return tf.cast(tf.reduce_sum(y, axis=1), tf.float32, name="points")

    data = freeze(decode, [tf.TensorSpec([None, 5, 2], tf.float32, name="x")])
    path = tmp_path / "decode.pb"
    path.write_bytes(data)
    with pytest.warns(UserWarning) as caught:
        model = mobconv.convert(str(path))
    lines = [str(w.message) for w in caught if "float64" in str(w.message)]
    assert len(lines) == 1 and "node 'to_double' computes in float64; converted to float32" in lines[0], lines
    model.save(str(tmp_path / "decode.mob"))
    model = mobconv.load(str(tmp_path / "decode.mob"))
    note = model.graph.metadata.extra.get("tf_float64_as_float32", "")
    assert "to_double" in note.split(","), model.graph.metadata
    for batch in (1, 3):
        x = np.random.default_rng(batch).uniform(-4, 4, (batch, 5, 2)).astype(np.float32)
        (want,) = run_tf(data, {"x": x}, ["Identity:0"])
        for backend in ("reference", "runtime"):
            got = np.asarray(list(model.run({"x": x}, backend=backend).values())[0])
            err = np.abs(got.astype(np.float64) - want).max() / np.abs(want).max()
            assert got.dtype == np.float32 and err <= F64_RTOL, (backend, batch, err)
