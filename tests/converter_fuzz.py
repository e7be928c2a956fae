"""Hostile source models for the converter fuzzer (tests/test_converter_fuzz.py).

Hypothesis strategies that produce files, and the oracle every file must pass:

- ONNX: mutations of valid models (model_zoo/onnx/tiny_cnn.onnx and a small
  Conv/Gemm/Softmax net): dims, attributes (values and kinds), initializer
  dims/data/dtypes, node inputs/outputs, op types, opsets, graph outputs;
  random graphs built with onnx.helper from the ops the frontend supports, with
  hostile attributes, shapes (0, 1, huge, negative, symbolic), dtypes and
  initializers; and byte mutations of a serialized model.
- Caffe: line and token mutations of model_zoo/caffe/digits/deploy.prototxt
  (with its caffemodel, so weight blobs stop matching), and generated nets
  (random chains of supported layers with hostile parameters), with or without
  a caffemodel whose blobs have random shapes.

Oracle (`check_api`): converting ends in a model that the C++ runtime loads
and plans, or in a MobconvError whose message is one line naming the source
file. `check_cli` runs the same file through the command line: exit code as
docs/cli.md says (0, or the error's exit_code), stderr one line without a
traceback, and nothing left in the output directory on failure.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import mobconv
from mobconv.errors import MobconvError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CNN = os.path.join(ROOT, "model_zoo", "onnx", "tiny_cnn.onnx")
DIGITS = os.path.join(ROOT, "model_zoo", "caffe", "digits")

# ---- the oracle ----------------------------------------------------------------


def _runtime():
    try:
        from mobconv import runtime
    except Exception:  # noqa: BLE001 - runtime not built: the API/CLI checks still run
        return None
    return runtime if runtime.available() else None


def check_api(convert, sources):
    """Run `convert()`; the outcome must be a runnable model or one clean error line.
    Returns ("ok", model) or ("error", exception)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert()
    except MobconvError as exc:
        message = str(exc)
        assert message and "\n" not in message, f"multi-line error: {message!r}"
        assert any(str(s) in message for s in sources), f"error names no source file: {message!r}"
        return "error", exc
    data = model.to_bytes()
    runtime = _runtime()
    if runtime is not None:
        keep = os.environ.get("MOBCONV_FUZZ_KEEP")  # a crash in the runtime leaves its input here
        if keep:
            with open(keep, "wb") as f:
                f.write(data)
        try:
            with runtime.Interpreter(data, name="converted.mob"):
                pass
        except MobconvError as exc:
            # A kernel the C++ runtime lacks (UNSUPPORTED) is allowed: Model.run falls back
            # to the numpy reference. Any other refusal means the converter wrote a bad file.
            if runtime._STATUS.get(getattr(exc, "status", None)) != "UNSUPPORTED":
                raise AssertionError(f"converted, but the runtime refuses the file: {exc}") from None
    return "ok", model


def check_cli(argv, sources, out_dir, expected_code=None):
    """Run `mobconv <argv> -o out_dir/out.mob` in a subprocess and check the contract."""
    os.makedirs(out_dir, exist_ok=True)
    output = os.path.join(out_dir, "out.mob")
    proc = subprocess.run([sys.executable, "-m", "mobconv", *argv, "-q", "-o", output],
                          capture_output=True, text=True, timeout=300, cwd=out_dir)
    err = proc.stderr
    assert "Traceback" not in err, err
    left = sorted(os.listdir(out_dir))
    if proc.returncode == 0:
        assert left == ["out.mob"], left
        os.unlink(output)
    else:
        assert proc.returncode in (1, 2), (proc.returncode, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("mobconv: error: "), err
        assert any(str(s) in lines[0] for s in sources), err
        assert left == [], f"left behind after a failure: {left}"
    if expected_code is not None:
        assert proc.returncode == expected_code, (proc.returncode, expected_code, err)
    return proc.returncode


# ---- hostile values -------------------------------------------------------------

HUGE = [1 << 31, 1 << 32, 1 << 33, 1 << 40, (1 << 63) - 1]
dims = st.one_of(st.integers(0, 4), st.sampled_from([1, 7, 13, 64, 100000, -1, -2] + HUGE))
small_dims = st.integers(0, 5)
hostile_ints = st.one_of(st.integers(-3, 8), st.sampled_from([-(1 << 31), 1 << 31, -(1 << 63), (1 << 63) - 1, 100000]))
hostile_floats = st.one_of(st.floats(-10, 10), st.sampled_from([0.0, -0.0, float("nan"), float("inf"),
                                                                float("-inf"), 1e30, -1e30, 1e-45]))
ONNX_DTYPES = [TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT32,
               TensorProto.INT8, TensorProto.UINT8, TensorProto.BOOL, TensorProto.DOUBLE,
               TensorProto.STRING, TensorProto.BFLOAT16, TensorProto.UNDEFINED, 99]


@st.composite
def attribute_values(draw):
    """A value of any ONNX attribute kind (the kind may not be the one the op wants)."""
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(hostile_ints)
    if kind == 1:
        return draw(hostile_floats)
    if kind == 2:
        return draw(st.lists(hostile_ints, max_size=6))
    if kind == 3:
        return draw(st.lists(hostile_floats, min_size=1, max_size=4))
    if kind == 4:
        return draw(st.sampled_from(["", "NOTSET", "SAME_UPPER", "VALID", "linear", "nearest", "constant",
                                     "reflect", "\xff", "x" * 300]))
    if kind == 5:
        shape = draw(st.lists(small_dims, max_size=3))
        return numpy_helper.from_array(np.full(shape, draw(st.integers(-2, 3)), np.int64))
    return [draw(st.sampled_from(["a", "b", ""])) for _ in range(draw(st.integers(1, 3)))]


def make_attribute(name, value):
    try:
        return helper.make_attribute(name, value)
    except Exception:  # noqa: BLE001 - a value onnx.helper cannot encode (e.g. an empty list)
        return helper.make_attribute(name, [0])


@st.composite
def initializers(draw, name):
    """An initializer whose dims, dtype and data may disagree."""
    shape = draw(st.lists(st.one_of(small_dims, st.sampled_from([-1, 1 << 33])), max_size=4))
    dtype = draw(st.sampled_from([TensorProto.FLOAT] * 4 + [TensorProto.INT64] * 2 + ONNX_DTYPES))
    count = int(np.prod([max(d, 0) for d in shape])) if all(d < 1 << 20 for d in shape) else 3
    count = max(0, count + draw(st.sampled_from([0, 0, 0, 0, -1, 1])))
    raw = draw(st.booleans())
    np_type = {TensorProto.FLOAT: np.float32, TensorProto.INT64: np.int64}.get(dtype)
    if np_type is None:
        np_type = np.float32
    values = np.asarray(draw(st.lists(st.integers(-3, 3), min_size=count, max_size=count)), np_type)
    t = onnx.TensorProto(name=name, data_type=dtype)
    t.dims.extend(shape)
    if raw:
        t.raw_data = values.tobytes()
    elif dtype in (TensorProto.FLOAT,):
        t.float_data.extend(values.tolist())
    elif dtype in (TensorProto.INT64,):
        t.int64_data.extend(values.astype(np.int64).tolist())
    elif dtype == TensorProto.DOUBLE:
        t.double_data.extend(values.tolist())
    elif dtype == TensorProto.STRING:
        t.string_data.extend([b"s"] * count)
    else:
        t.int32_data.extend(values.astype(np.int64).tolist())
    return t


# ---- ONNX: mutations of valid models ----------------------------------------------


def _small_net():
    rng = np.random.default_rng(0)

    def init(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "G", "GB"], ["g"], transB=1, name="fc"),
        helper.make_node("Softmax", ["g"], ["y"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [init("W", (4, 3, 3, 3)), init("B", (4,)), init("G", (5, 64)), init("GB", (5,))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def base_models():
    return [onnx.load(TINY_CNN), _small_net()]


SOME_OPS = ["Relu", "Conv", "Gemm", "MatMul", "Add", "Mul", "Reshape", "Transpose", "Concat",
            "Softmax", "MaxPool", "AveragePool", "Flatten", "Slice", "Gather", "Pad", "Resize",
            "BatchNormalization", "Split", "Squeeze", "Unsqueeze", "ConstantOfShape", "Expand",
            "Tile", "ReduceMean", "Cast", "Range", "TopK", "Where", "Clip", "Det"]
ATTR_NAMES = ["axis", "axes", "perm", "pads", "strides", "kernel_shape", "dilations", "group",
              "transA", "transB", "alpha", "beta", "epsilon", "mode", "auto_pad", "keepdims",
              "to", "value", "split", "ceil_mode", "count_include_pad", "coordinate_transformation_mode",
              "allowzero", "largest", "sorted", "k", "bogus"]


@st.composite
def mutated_onnx(draw):
    model = draw(st.sampled_from(base_models()))
    g = model.graph
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.integers(0, 11))
        node = g.node[draw(st.integers(0, len(g.node) - 1))] if len(g.node) else None
        names = [vi.name for vi in g.input] + [t.name for t in g.initializer] + \
                [o for n in g.node for o in n.output] + ["", "nowhere"]
        if what == 0 and len(g.input):  # an input dim
            shape = g.input[0].type.tensor_type.shape
            if len(shape.dim):
                d = shape.dim[draw(st.integers(0, len(shape.dim) - 1))]
                if draw(st.booleans()):
                    d.dim_value = draw(dims)
                else:
                    d.dim_param = draw(st.sampled_from(["", "n", "batch"]))
        elif what == 1 and len(g.input):  # input rank
            shape = g.input[0].type.tensor_type.shape
            if draw(st.booleans()) and len(shape.dim):
                del shape.dim[-1]
            else:
                for _ in range(draw(st.integers(1, 7))):
                    shape.dim.add().dim_value = draw(st.integers(1, 2))
        elif what == 2 and node is not None:  # an attribute value of any kind
            name = draw(st.sampled_from([a.name for a in node.attribute] + ATTR_NAMES))
            keep = [a for a in node.attribute if a.name != name]
            del node.attribute[:]
            node.attribute.extend(keep)
            node.attribute.append(make_attribute(name, draw(attribute_values())))
        elif what == 3 and node is not None and len(node.attribute):
            del node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
        elif what == 4 and len(g.initializer):  # initializer replaced
            i = draw(st.integers(0, len(g.initializer) - 1))
            g.initializer[i].CopyFrom(draw(initializers(g.initializer[i].name)))
        elif what == 5 and node is not None:  # rewire an input
            if len(node.input) and draw(st.booleans()):
                node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(names))
            else:
                node.input.append(draw(st.sampled_from(names)))
        elif what == 6 and node is not None:  # rewire or add an output
            if len(node.output) and draw(st.booleans()):
                node.output[draw(st.integers(0, len(node.output) - 1))] = draw(st.sampled_from(names))
            else:
                node.output.append(draw(st.sampled_from(names + ["extra"])))
        elif what == 7 and node is not None:
            node.op_type = draw(st.sampled_from(SOME_OPS))
        elif what == 8 and len(g.node) > 1:  # reorder or drop nodes
            nodes = list(g.node)
            i, j = draw(st.integers(0, len(nodes) - 1)), draw(st.integers(0, len(nodes) - 1))
            nodes[i], nodes[j] = nodes[j], nodes[i]
            if draw(st.booleans()):
                nodes.pop(i)
            del g.node[:]
            g.node.extend(nodes)
        elif what == 9:
            model.opset_import[0].version = draw(st.sampled_from([1, 5, 6, 7, 9, 11, 13, 18, 21, 28, 29, 1000]))
        elif what == 10:  # graph outputs
            if len(g.output) and draw(st.booleans()):
                del g.output[:]
            else:
                g.output.add().name = draw(st.sampled_from(names))
        elif what == 11 and len(g.input):
            g.input[0].type.tensor_type.elem_type = draw(st.sampled_from(ONNX_DTYPES))
    return model


# ---- ONNX: random graphs from the supported ops ------------------------------------


def supported_ops():
    from mobconv.frontends.onnx.converters import is_supported, load_converters

    return sorted(t for t in load_converters().supported() if is_supported(t) and t != "Constant")


@st.composite
def random_onnx(draw):
    ops = supported_ops()
    rank = draw(st.integers(0, 5))
    shape = [draw(st.sampled_from([0, 1, 1, 2, 2, 3, 3, 4, 5, 13, "n", "n", 1 << 33])) for _ in range(rank)]
    dtype = draw(st.sampled_from([TensorProto.FLOAT] * 6 + [TensorProto.INT64, TensorProto.BOOL,
                                                            TensorProto.INT32]))
    inputs = [helper.make_tensor_value_info("x", dtype, shape)]
    values, inits, nodes = ["x"], [], []
    for i in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 2)) == 0:
            name = f"w{i}"
            kind = draw(st.integers(0, 2))
            if kind == 0:
                inits.append(draw(initializers(name)))
            elif kind == 1:  # shape-like ints: sizes, repeats, axes, pads (some huge)
                ints = draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 100000, 1 << 33, (1 << 63) - 1]),
                                     min_size=1, max_size=4))
                inits.append(numpy_helper.from_array(np.asarray(ints, np.int64), name))
            else:
                arr = np.asarray(draw(st.lists(hostile_floats, min_size=1, max_size=6)), np.float32)
                inits.append(numpy_helper.from_array(arr.reshape(draw(st.sampled_from([(-1,), (1, -1)]))), name))
            values.append(name)
        op = draw(st.sampled_from(ops))
        n_in = draw(st.integers(1, 3))
        ins = [draw(st.sampled_from(values + [""])) for _ in range(n_in)]
        if not ins[0]:
            ins[0] = values[-1]
        n_out = draw(st.integers(1, 2))
        outs = [f"v{i}_{k}" for k in range(n_out)]
        attrs = {}
        for _ in range(draw(st.integers(0, 3))):
            attrs[draw(st.sampled_from(ATTR_NAMES))] = draw(attribute_values())
        node = helper.make_node(op, ins, outs, name=f"n{i}")
        for k, v in attrs.items():
            node.attribute.append(make_attribute(k, v))
        nodes.append(node)
        values.extend(outs)
    outputs = [helper.make_tensor_value_info(values[-1], TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "random", inputs, outputs, inits)
    opset = draw(st.sampled_from([11, 13, 17, 17, 17, 21]))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@st.composite
def onnx_bytes(draw):
    """A serialized valid model with bytes flipped, inserted, deleted or cut."""
    data = bytearray(draw(st.sampled_from(base_models())).SerializeToString())
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        how = draw(st.integers(0, 3))
        if how == 0:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif how == 1:
            data[i] = draw(st.sampled_from([0, 0x7F, 0x80, 0xFF, 0x08, 0x12]))
        elif how == 2:
            del data[i:i + draw(st.integers(1, 16))]
        else:
            data[i:i] = bytes(draw(st.lists(st.integers(0, 255), min_size=1, max_size=8)))
    if draw(st.integers(0, 9)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


# ---- Caffe --------------------------------------------------------------------------


def digits_prototxt() -> str:
    with open(os.path.join(DIGITS, "deploy.prototxt")) as f:
        return f.read()


CAFFE_NUMBERS = ["0", "-1", "1", "3", "100000", "1000000000", "4294967295", "2e9", "-0.5", "nan",
                 "1e40", "99999999999999999999"]
CAFFE_VALUES = CAFFE_NUMBERS + ['"ip1"', '"data"', '""', "MAX"]
CAFFE_TOKENS = ["{", "}", "layer {", "layers {", "input_dim: 1", "bottom: \"data\"", "top: \"data\"",
                "type: \"Convolution\"", "type: \"Pooling\"", "type: \"Eltwise\"", "type: \"Reshape\"",
                "kernel_size: 3", "pad: 1000000000", "num_output: 0", "axis: -7", "\"", "#", ":",
                "phase: TRAIN", "include { phase: TEST }", "shape { dim: -3 }",
                "convolution_param { num_output: 2 kernel_size: 1 }"]


@st.composite
def mutated_prototxt(draw):
    lines = digits_prototxt().splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from([0, 1, 2, 2, 2, 2, 3, 4, 5]))  # mostly values: the file still parses
        if how == 0:
            del lines[i]
        elif how == 1:
            lines.insert(i, lines[draw(st.integers(0, len(lines) - 1))])
        elif how == 2 and ":" in lines[i]:
            key = lines[i].split(":")[0]
            lines[i] = f"{key}: {draw(st.sampled_from(CAFFE_VALUES))}"
        elif how == 3:
            lines.insert(i, draw(st.sampled_from(CAFFE_TOKENS)))
        elif how == 4:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines = lines[:i]
    return "\n".join(lines) + "\n"


LAYER_TEMPLATES = [
    ('Convolution', 'convolution_param {{ num_output: {a} kernel_size: {b} stride: {c} pad: {d} group: {e} }}'),
    ('Deconvolution', 'convolution_param {{ num_output: {a} kernel_size: {b} stride: {c} pad: {d} }}'),
    ('Pooling', 'pooling_param {{ pool: {pool} kernel_size: {b} stride: {c} pad: {d} }}'),
    ('Pooling', 'pooling_param {{ pool: AVE global_pooling: true }}'),
    ('InnerProduct', 'inner_product_param {{ num_output: {a} axis: {f} }}'),
    ('ReLU', 'relu_param {{ negative_slope: {g} }}'),
    ('Softmax', 'softmax_param {{ axis: {f} }}'),
    ('BatchNorm', 'batch_norm_param {{ eps: {g} }}'),
    ('Scale', 'scale_param {{ bias_term: true axis: {f} }}'),
    ('Eltwise', 'eltwise_param {{ operation: SUM }}'),
    ('Concat', 'concat_param {{ axis: {f} }}'),
    ('Flatten', 'flatten_param {{ axis: {f} }}'),
    ('Reshape', 'reshape_param {{ shape {{ dim: 0 dim: {f} }} }}'),
    ('Power', 'power_param {{ power: {g} scale: {g} shift: {g} }}'),
    ('LRN', 'lrn_param {{ local_size: {b} alpha: {g} beta: {g} }}'),
    ('Slice', 'slice_param {{ axis: {f} slice_point: {b} }}'),
    ('Crop', 'crop_param {{ axis: {f} offset: {d} }}'),
    ('PReLU', ''),
    ('Dropout', 'dropout_param {{ dropout_ratio: {g} }}'),
]


@st.composite
def generated_prototxt(draw):
    """(prototxt text, {layer name: [blob shapes]} for a caffemodel, or None)."""
    shape = [draw(st.sampled_from([1, 1, 2])), draw(st.integers(1, 4)),
             draw(st.sampled_from([1, 5, 8, 13])), draw(st.sampled_from([1, 5, 8, 13]))]
    if draw(st.integers(0, 9)) == 0:
        shape[draw(st.integers(0, 3))] = draw(st.sampled_from([0, -1, 100000, 1 << 33]))
    text = ['name: "gen"', 'input: "data"'] + [f"input_dim: {d}" for d in shape]
    blobs = {} if draw(st.booleans()) else None
    blobs_top = ["data"]
    for i in range(draw(st.integers(1, 4))):
        ltype, params = draw(st.sampled_from(LAYER_TEMPLATES))
        vals = dict(a=draw(st.sampled_from([1, 2, 3, 0, 7, 2000000000])),
                    b=draw(st.sampled_from([1, 2, 3, 0, 100000])),
                    c=draw(st.sampled_from([1, 2, 0])), d=draw(st.sampled_from([0, 1, 1000000000])),
                    e=draw(st.sampled_from([1, 2, 3])), f=draw(st.sampled_from([0, 1, -1, 3, 9])),
                    g=draw(st.sampled_from(["0", "1", "0.5", "-2", "1e30", "nan"])),
                    pool=draw(st.sampled_from(["MAX", "AVE"])))
        bottoms = [blobs_top[-1]]
        if ltype in ("Eltwise", "Concat") or draw(st.integers(0, 7)) == 0:
            bottoms.append(draw(st.sampled_from(blobs_top + ["missing"])))
        top = f"l{i}" if draw(st.integers(0, 4)) else bottoms[0]  # sometimes in place
        text.append(f'layer {{ name: "l{i}" type: "{ltype}" '
                    + " ".join(f'bottom: "{b}"' for b in bottoms)
                    + f' top: "{top}" {params.format(**vals)} }}')
        if blobs is not None and ltype in ("Convolution", "Deconvolution", "InnerProduct", "Scale",
                                          "BatchNorm", "PReLU"):
            blobs[f"l{i}"] = [tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=4)))
                              for _ in range(draw(st.integers(0, 3)))]
        blobs_top.append(top)
    return "\n".join(text) + "\n", blobs


def write_caffemodel(path, blobs: dict) -> None:
    from mobconv.frontends.caffe import caffe_pb2

    net = caffe_pb2.NetParameter()
    for name, shapes in blobs.items():
        layer = net.layer.add(name=name)
        for shape in shapes:
            blob = layer.blobs.add()
            blob.shape.dim.extend(shape)
            blob.data.extend([0.5] * int(np.prod(shape)))
    with open(path, "wb") as f:
        f.write(net.SerializeToString())


def convert_onnx(path):
    return lambda: mobconv.convert(path)


def convert_caffe(prototxt, caffemodel=None):
    if caffemodel is None:
        return lambda: mobconv.convert(prototxt, framework="caffe", random_weights=True)
    return lambda: mobconv.convert(prototxt, framework="caffe", caffemodel=caffemodel)
