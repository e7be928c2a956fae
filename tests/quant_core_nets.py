"""Small generated float CNNs for the quantizer's API/CLI tests (quick on the numpy
reference): Conv+Relu, depthwise Conv+Relu6, 1x1 Conv + residual Add + Relu,
MaxPool, Conv+LeakyRelu, Concat, GlobalAveragePool, Flatten, Gemm."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

INPUT = "x"
OUTPUT = "logits"
SHAPE = (1, 3, 12, 12)


def build_cnn(path, seed: int = 0, batch="N") -> str:
    rng = np.random.default_rng(seed)
    inits = []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def conv_w(name, m, c, k):
        w = rng.standard_normal((m, c, k, k)) * np.sqrt(2.0 / (c * k * k))
        # channel ranges that differ, as after BatchNorm folding
        w *= rng.uniform(0.3, 2.0, size=(m, 1, 1, 1))
        return const(name, w)

    nodes = [
        helper.make_node("Conv", [INPUT, conv_w("w1", 8, 3, 3), const("b1", rng.normal(0, 0.1, 8))],
                         ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", conv_w("wdw", 8, 1, 3), const("bdw", rng.normal(0, 0.1, 8))],
                         ["cdw"], pads=[1, 1, 1, 1], group=8, name="dw"),
        helper.make_node("Clip", ["cdw", const("zero", 0.0), const("six", 6.0)], ["rdw"], name="relu6"),
        helper.make_node("Conv", ["rdw", conv_w("wpw", 8, 8, 1), const("bpw", rng.normal(0, 0.1, 8))],
                         ["cpw"], name="pw"),
        helper.make_node("Add", ["cpw", "r1"], ["res"], name="residual"),
        helper.make_node("Relu", ["res"], ["rres"], name="relu2"),
        helper.make_node("MaxPool", ["rres"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Conv", ["mp", conv_w("w3", 8, 8, 3), const("b3", rng.normal(0, 0.1, 8))],
                         ["c3"], pads=[1, 1, 1, 1], name="conv3"),
        helper.make_node("LeakyRelu", ["c3"], ["l3"], alpha=0.1, name="leaky"),
        helper.make_node("Concat", ["mp", "l3"], ["cat"], axis=1, name="concat"),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", const("wfc", rng.standard_normal((10, 16)) * 0.5),
                                  const("bfc", rng.normal(0, 0.1, 10))], [OUTPUT], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "quant_core_cnn",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [batch, 3, 12, 12])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [batch, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    import onnx

    onnx.save(model, str(path))
    return str(path)


def samples(n: int, seed: int = 1, batch: int = 1) -> list:
    """Calibration feed dicts: smooth positive-ish images (image-like statistics)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((batch,) + SHAPE[1:]).astype(np.float32)
        x = (x + np.roll(x, 1, axis=2) + np.roll(x, 1, axis=3)) / 3 + 0.5
        out.append({INPUT: x.astype(np.float32)})
    return out


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    err = ((ref - np.asarray(got, np.float64)) ** 2).sum()
    return float("inf") if err == 0 else float(10 * np.log10((ref ** 2).sum() / err))
