"""Hostile source models (issue 7, findings 5 and 6 for the converters): every one
ends in a converted model the runtime can run or in one MobconvError line naming
the file, the node/layer/tensor and the rule; never another exception, never a
file the runtime refuses (sizes over `mobconv.limits`, two writers, no outputs,
attributes of the wrong type)."""
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import mobconv  # noqa: E402
from mobconv import limits  # noqa: E402
from mobconv.errors import ConversionError, ModelFormatError, MobconvError, UsageError  # noqa: E402
from mobconv.ir import Graph, infer_shapes  # noqa: E402


def onnx_file(tmp_path, nodes=None, inputs=None, outputs=None, inits=(), name="m.onnx"):
    nodes = [helper.make_node("Relu", ["x"], ["y"])] if nodes is None else nodes
    if inputs is None:
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 4])]
    if outputs is None:
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def refused(path, error=MobconvError, **options):
    """Convert `path`; return the one-line message of the expected error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as info:
            mobconv.convert(path, optimize=False, **options)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


def add_w(shape=(2, 3)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    return [helper.make_node("Add", ["x", "W"], ["y"])], [x]


# ---- sizes: one rule (mobconv.limits), checked for every frontend ----------------


@pytest.mark.parametrize("dim0", [1 << 40, 10 ** 30])
def test_onnx_input_shape_over_the_tensor_limit_is_a_usage_error(tmp_path, dim0):
    path = onnx_file(tmp_path)
    msg = refused(path, UsageError, input_shapes={"x": (dim0, 3, 4, 4)})
    assert "'x'" in msg and ("tensor limit" in msg or "not a positive integer" in msg)


@pytest.mark.parametrize("shape, rule", [
    ([1 << 33, 1, 1, 1], "tensor limit"),
    ([1 << 21] * 4, "tensor limit"),  # product over 2^64
    ([1] * 9, "maximum rank 8"),
    ([-1, 3, 4, 4], "negative"),  # dim_value: -1
])
def test_onnx_declared_input_the_runtime_cannot_hold(tmp_path, shape, rule):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    msg = refused(onnx_file(tmp_path, inputs=[x]), ConversionError)
    assert "graph input 'x'" in msg and rule in msg


def test_onnx_negative_dim_can_be_fixed_with_input_shapes(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, 4, 4])
    model = mobconv.convert(onnx_file(tmp_path, inputs=[x]), input_shapes={"x": (2, 3, 4, 4)})
    assert tuple(model.inputs[0].shape) == (2, 3, 4, 4)


def test_onnx_intermediate_over_the_tensor_limit(tmp_path):
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "s")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    path = onnx_file(tmp_path, [helper.make_node("Expand", ["x", "s"], ["y"], name="big")],
                     inputs=[x], inits=[shape])
    msg = refused(path, ConversionError)
    assert "'big'" in msg and "tensor limit" in msg


def test_limit_follows_the_runtime_environment_variable(monkeypatch):
    assert limits.max_tensor_bytes() == 4 << 30 or os.environ.get(limits.TENSOR_BYTES_ENV)
    monkeypatch.setenv(limits.TENSOR_BYTES_ENV, "1000")
    limits.check_tensor((250,), "float32", "t")
    with pytest.raises(MobconvError, match="t: shape"):
        limits.check_tensor((251,), "float32", "t")


# ---- ONNX initializers: dims and data must agree before numpy sees them ------------


def _tensor(dims, values, raw=False):
    data = np.asarray(values, np.float32).tobytes() if raw else values
    t = helper.make_tensor("W", TensorProto.FLOAT, [len(values)], data, raw=raw)
    del t.dims[:]
    t.dims.extend(dims)
    return t


@pytest.mark.parametrize("tensor, rule", [
    (_tensor([2, 3], [1.0, 2.0], raw=True), "need 24 bytes, the tensor has 8"),
    (_tensor([2, 3], [1.0, 2.0]), "need 6 values in float_data, the tensor has 2"),
    (_tensor([2, 3], [1.0] * 7), "need 6 values in float_data, the tensor has 7"),
    (_tensor([-1, 3], [1.0] * 3), "negative"),
    (_tensor([1 << 31, 1 << 31], [1.0]), "tensor limit"),
])
def test_onnx_initializer_data_not_matching_its_dims(tmp_path, tensor, rule):
    nodes, inputs = add_w()
    msg = refused(onnx_file(tmp_path, nodes, inputs, inits=[tensor]), ConversionError)
    assert "initializer 'W'" in msg and rule in msg


def test_onnx_int64_initializer_data_length(tmp_path):
    t = helper.make_tensor("s", TensorProto.INT64, [2], [1, 2])
    t.dims[0] = 3
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])
    msg = refused(onnx_file(tmp_path, [helper.make_node("Reshape", ["x", "s"], ["y"])], [x], inits=[t]),
                  ConversionError)
    assert "initializer 's'" in msg and "int64_data" in msg


# ---- ONNX graphs the runtime would refuse --------------------------------------


def test_onnx_two_nodes_writing_one_tensor(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="a"),
             helper.make_node("Sigmoid", ["x"], ["y"], name="b")]
    msg = refused(onnx_file(tmp_path, nodes), ConversionError)
    assert "'b'" in msg and "'y'" in msg and "one writer" in msg


@pytest.mark.parametrize("target", ["x", "W"])
def test_onnx_node_writing_a_graph_input_or_initializer(tmp_path, target):
    nodes, inputs = add_w()
    nodes.append(helper.make_node("Relu", ["y"], [target], name="clobber"))
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    msg = refused(onnx_file(tmp_path, nodes, inputs, inits=[w]), ConversionError)
    assert "'clobber'" in msg and repr(target) in msg


def test_onnx_empty_graph(tmp_path):
    msg = refused(onnx_file(tmp_path, [], outputs=[]), ConversionError)
    assert "no outputs" in msg


@pytest.mark.parametrize("value", [
    numpy_helper.from_array(np.array(1, np.int64)),  # a tensor where an int is declared
    "yes",
    [1, 0],
    1.5,
])
def test_onnx_attribute_of_the_wrong_type(tmp_path, value):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    gemm = helper.make_node("Gemm", ["x", "W"], ["y"], name="fc")
    gemm.attribute.append(helper.make_attribute("transB", value))
    msg = refused(onnx_file(tmp_path, [gemm], [x], inits=[w]), ConversionError)
    assert "'fc'" in msg and "'transB' must be" in msg and ("INT" in msg or "integer" in msg)


def test_ir_attribute_kind_is_checked_and_stored_as_declared():
    g = Graph("g")
    g.add_input("x", "float32", (2, 3))
    g.add_constant("w", np.ones((4, 3), np.float32))
    node = g.add_node("Gemm", ["x", "w"], ["y"], {"transB": np.int64(1), "alpha": 1})
    infer_shapes(g)
    assert type(node.attrs["transB"]) is int and type(node.attrs["alpha"]) is float
    node.attrs["transB"] = np.array([1])
    with pytest.raises(MobconvError, match="'transB' must be an integer"):
        infer_shapes(g)
    node.attrs["transB"] = 1 << 64
    with pytest.raises(MobconvError, match="'transB' must be an integer"):
        infer_shapes(g)


# ---- Caffe ------------------------------------------------------------------


def prototxt(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


INPUT = 'name: "n"\ninput: "data"\n' + "".join(f"input_dim: {d}\n" for d in (1, 1, 8, 8))
RELU = 'layer { name: "r" type: "ReLU" bottom: "data" top: "y" }\n'


def caffe_refused(path, error=MobconvError, **options):
    return refused(path, error, framework="caffe", **options)


def test_caffe_input_dims_over_the_tensor_limit(tmp_path):
    path = prototxt(tmp_path, 'input: "data"\n' + "input_dim: 100000\n" * 4 + RELU)
    msg = caffe_refused(path, ConversionError)
    assert "input 'data'" in msg and "input_dim" in msg and "tensor limit" in msg


@pytest.mark.parametrize("declaration, where", [
    ('input: "data"\ninput_dim: 1\ninput_dim: -3\ninput_dim: 8\ninput_dim: 8\n', "input_dim"),
    ('input: "data"\ninput_shape { dim: 1 dim: -3 dim: 8 dim: 8 }\n', "input_shape"),
    ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: -3 } } }\n',
     "Input layer 'in'"),
])
def test_caffe_negative_input_dim_names_file_and_declaration(tmp_path, declaration, where):
    msg = caffe_refused(prototxt(tmp_path, declaration + RELU), ConversionError)
    assert "input 'data'" in msg and where in msg and "negative" in msg


def test_caffe_conv_pad_making_the_output_too_large(tmp_path):
    conv = ('layer { name: "c" type: "Convolution" bottom: "data" top: "y" '
            'convolution_param { num_output: 2 kernel_size: 3 pad: 1000000000 } }\n')
    msg = caffe_refused(prototxt(tmp_path, INPUT + conv), ConversionError, random_weights=True)
    assert "layer 'c'" in msg and "tensor limit" in msg


@pytest.mark.parametrize("layer, rule", [
    ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 100000 }', "larger than"),
    ('type: "Convolution" convolution_param { num_output: 2000000000 kernel_size: 1 }', "tensor limit"),
    ('type: "InnerProduct" inner_product_param { num_output: 2000000000 }', "tensor limit"),
])
def test_caffe_random_weights_are_not_drawn_before_the_size_checks(tmp_path, layer, rule):
    text = INPUT + f'layer {{ name: "c" bottom: "data" top: "y" {layer} }}\n'
    start = time.perf_counter()
    msg = caffe_refused(prototxt(tmp_path, text), ConversionError, random_weights=True)
    assert "layer 'c'" in msg and rule in msg
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("text", [
    INPUT + "layer " + "{ " * 5000 + "}" * 5000,
    INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "y" unknown_field '
    + "{ a " * 5000 + "}" * 5000 + " }\n",
])
def test_caffe_deeply_nested_prototxt(tmp_path, text):
    msg = caffe_refused(prototxt(tmp_path, text), ModelFormatError)
    assert "nested more than 100 levels" in msg


def test_caffe_nesting_count_skips_strings_and_comments(tmp_path):
    text = INPUT + "# " + "{" * 200 + "\n" + RELU.replace('"r"', '"' + "{" * 200 + '"')
    model = mobconv.convert(prototxt(tmp_path, text), framework="caffe")
    assert [t.name for t in model.outputs] == ["y"]


def test_caffe_mixing_v1_layers_and_layer_is_refused(tmp_path):
    text = (INPUT + 'layers { name: "r1" type: RELU bottom: "data" top: "a" }\n'
            'layer { name: "r2" type: "ReLU" bottom: "a" top: "y" }\n')
    msg = caffe_refused(prototxt(tmp_path, text), ModelFormatError)
    assert "'r1'" in msg and "'r2'" in msg and "one format" in msg


def test_caffe_parse_error_is_one_line(tmp_path):
    msg = caffe_refused(prototxt(tmp_path, INPUT + "layer {\n  name: \n\n}}}\n"), ModelFormatError)
    assert "not a valid Caffe prototxt" in msg


# ---- the command line --------------------------------------------------------


def run_cli(*argv, cwd):
    proc = subprocess.run([sys.executable, "-m", "mobconv", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("argv, code, fragment", [
    (["--seed", "-1", "--embed-test-vector"], 2, "--seed -1"),
    (["--input-shape", "x=1099511627776,3,4,4"], 2, "--input-shape x="),
    (["--input-shape", "x=" + "9" * 31 + ",3,4,4"], 2, "--input-shape x="),
])
def test_cli_onnx2mob_bad_arguments(tmp_path, argv, code, fragment):
    path = onnx_file(tmp_path)
    rc, err = run_cli("onnx2mob", path, "-o", "out.mob", *argv, cwd=tmp_path)
    assert (rc, err.count("\n")) == (code, 1), err
    assert fragment in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


def test_cli_caffe2mob_huge_input_dims_exit_1_no_file(tmp_path):
    path = prototxt(tmp_path, 'input: "data"\n' + "input_dim: 100000\n" * 4 + RELU)
    rc, err = run_cli("caffe2mob", path, "--random-weights", "-o", "out.mob", cwd=tmp_path)
    assert (rc, err.count("\n")) == (1, 1), err
    assert err.startswith(f"mobconv: error: {path}: input 'data'")
    assert sorted(os.listdir(tmp_path)) == ["net.prototxt"]


# ---- found by the converter fuzzer (tests/test_converter_fuzz.py) ----------------


def test_onnx_converter_errors_name_the_file(tmp_path):
    relu = helper.make_node("Relu", ["x"], ["y"], name="r", kernel_shape=[3, 3])
    msg = refused(onnx_file(tmp_path, [relu]), ConversionError)
    assert "'r'" in msg and "kernel_shape" in msg


def test_onnx_ints_attribute_given_as_a_tensor(tmp_path):
    """Passed through to the IR, a 2-D tensor made the message multi-line and a 1-D
    one was written as a TENSOR attribute the runtime refuses."""
    for value in (np.zeros((2, 1), np.int64), np.ones(2, np.int64)):
        pool = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2])
        pool.attribute.append(helper.make_attribute("strides", numpy_helper.from_array(value)))
        msg = refused(onnx_file(tmp_path, [pool]), ConversionError)
        assert "'pool'" in msg and "'strides' must be of type INTS, got TENSOR" in msg


def test_onnx_unknown_element_type(tmp_path):
    x = helper.make_tensor_value_info("x", 99, [1, 3])
    msg = refused(onnx_file(tmp_path, inputs=[x]), ConversionError)
    assert "graph input 'x'" in msg and "99" in msg


def test_onnx_attribute_that_cannot_be_decoded(tmp_path):
    relu = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr")
    bad = relu.attribute.add()
    bad.name, bad.type, bad.s = "mode", onnx.AttributeProto.STRING, b"\xff\xfe"
    msg = refused(onnx_file(tmp_path, [relu]), ConversionError)
    assert "'lr'" in msg and "UTF-8" in msg
    relu = helper.make_node("Constant", [], ["y"], name="c")
    relu.attribute.append(helper.make_attribute("value", _tensor([2, 3], [1.0])))
    msg = refused(onnx_file(tmp_path, [relu], inputs=[]), ConversionError)
    assert "'c'" in msg and "attribute 'value'" in msg and "need 6 values" in msg


@pytest.mark.parametrize("op, dtype", [("Abs", TensorProto.BOOL), ("Relu", TensorProto.BOOL),
                                       ("Not", TensorProto.FLOAT)])
def test_onnx_input_dtype_outside_the_op_schema(tmp_path, op, dtype):
    x = helper.make_tensor_value_info("x", dtype, [2, 3])
    msg = refused(onnx_file(tmp_path, [helper.make_node(op, ["x"], ["y"], name="n")], [x]),
                  ConversionError)
    assert "'n'" in msg and "input 0 ('x')" in msg


def test_onnx_inputs_that_must_share_a_dtype(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    w = numpy_helper.from_array(np.ones((2, 3), np.int64), "W")
    msg = refused(onnx_file(tmp_path, [helper.make_node("Add", ["x", "W"], ["y"], name="add")], [x],
                            inits=[w]), ConversionError)
    assert "'add'" in msg and "same dtype" in msg


def test_onnx_names_that_are_not_utf8(tmp_path):
    path = onnx_file(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r", alpha=1.0)])
    data = open(path, "rb").read()
    assert data.count(b"alpha") == 1
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data.replace(b"alpha", b"alph\xff"))
    msg = refused(str(bad), ConversionError)
    assert "attribute name" in msg and "UTF-8" in msg
    assert data.count(b"\x12\x01g") == 1  # the graph's name field, "g"
    bad.write_bytes(data.replace(b"\x12\x01g", b"\x12\x01\xff"))
    msg = refused(str(bad), ConversionError)
    assert "graph name" in msg and "UTF-8" in msg


@pytest.mark.parametrize("text", [
    INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "" }\n',
    INPUT + 'layer { name: "r" type: "ReLU" bottom: "" top: "y" }\n',
    INPUT.replace('input: "data"', 'input: ""') + RELU,
])
def test_caffe_empty_blob_names(tmp_path, text):
    msg = caffe_refused(prototxt(tmp_path, text), ConversionError)
    assert "empty name" in msg


def test_onnx_frontend_folds_no_large_outputs(tmp_path):
    """Shape arithmetic is folded at conversion time; a small constant input asking for
    a large output (ConstantOfShape, Range, Tile) is left to the runtime instead of
    being computed (and held) by the frontend, and one over the tensor limit is refused."""
    s = numpy_helper.from_array(np.array([2048, 1024], np.int64), "s")
    path = onnx_file(tmp_path, [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")],
                     inputs=[], inits=[s])
    model = mobconv.convert(path, optimize=False)
    assert [n.op for n in model.graph.nodes] == ["ConstantOfShape"]
    s = numpy_helper.from_array(np.array([1 << 17, 1 << 17], np.int64), "s")
    path = onnx_file(tmp_path, [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")],
                     inputs=[], inits=[s])
    msg = refused(path, ConversionError)
    assert "'fill'" in msg and "tensor limit" in msg


def test_onnx_names_given_twice(tmp_path):
    nodes, inputs = add_w()
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    msg = refused(onnx_file(tmp_path, nodes, inputs, inits=[w, w]), ConversionError)
    assert "initializer 'W' is given twice" in msg
    msg = refused(onnx_file(tmp_path, inputs=[inputs[0], inputs[0]]), ConversionError)
    assert "graph input 'x' is listed twice" in msg


def test_onnx_zero_size_input_with_dims_over_the_file_limits(tmp_path):
    """Zero elements (under the byte limit) but dims the file format refuses (found by the
    fuzzer: the writer failed with a message naming no file)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 1 << 33, 1 << 33])
    msg = refused(onnx_file(tmp_path, inputs=[x]), ConversionError)
    assert "graph input 'x'" in msg and "2^48" in msg
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 1 << 41])
    msg = refused(onnx_file(tmp_path, inputs=[x]), ConversionError)
    assert "graph input 'x'" in msg and "2^40" in msg


def test_onnx_reduce_axes_of_a_scalar(tmp_path):
    """Found by the converter fuzzer: ReduceLogSumExp(x: rank 0, axes=[0]) converted with
    exit 0, and the runtime crashed (SIGSEGV) planning the file."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [])
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    node = helper.make_node("ReduceLogSumExp", ["x", "axes"], ["y"], name="r")
    path = onnx_file(tmp_path, [node], [x], inits=[axes])
    model = onnx.load(path)
    model.opset_import[0].version = 18  # axes became an input in opset 18
    onnx.save(model, path)
    msg = refused(path, ConversionError)
    assert "'r'" in msg and "out of range for a tensor of rank 0" in msg


def test_onnx_inputs_the_opset_does_not_have(tmp_path):
    """At opset 17 ReduceLogSumExp takes its axes as an attribute: an axes input was
    silently dropped (found by the fuzzer while reducing the case above)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    node = helper.make_node("ReduceLogSumExp", ["x", "axes"], ["y"], name="r")
    msg = refused(onnx_file(tmp_path, [node], [x], inits=[axes]), ConversionError)
    assert "'r'" in msg and "takes 1 input(s) at opset 17, got 2" in msg
