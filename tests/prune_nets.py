"""A small float CNN for the pruning tests (quick on the numpy reference), with one layer of
each kind prune() treats differently:

  conv1  Conv 8x3x3x3     (216)   the first layer: skipped by default
  dw     Conv 8x1x3x3     (72)    depthwise: skipped by default
  pw1    Conv 1x1 32x8    (256)   under DEFAULT_MIN_PARAMS (1024): skipped by default
  pw2    Conv 1x1 40x32   (1280)  pruned by default
  mm     MatMul 40x28     (1120)  pruned by default
  fc     Gemm 10x28       (280)   under min_params: skipped by default
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

INPUT, OUTPUT = "x", "logits"
SHAPE = (1, 3, 10, 10)
WEIGHTS = {"conv1": "w1", "dw": "wdw", "pw1": "wpw1", "pw2": "wpw2", "mm": "wmm", "fc": "wfc"}


def build(path, seed: int = 0) -> str:
    import onnx

    rng = np.random.default_rng(seed)
    inits = []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def weight(name, *shape):
        fan_in = int(np.prod(shape[1:]))
        spread = rng.uniform(0.3, 2.0, (shape[0],) + (1,) * (len(shape) - 1))
        return const(name, rng.standard_normal(shape) * np.sqrt(2.0 / fan_in) * spread)

    def bias(name, n):
        return const(name, rng.normal(0, 0.1, n))

    node = helper.make_node
    nodes = [
        node("Conv", [INPUT, weight("w1", 8, 3, 3, 3), bias("b1", 8)], ["c1"], pads=[1] * 4,
             name="conv1"),
        node("Relu", ["c1"], ["r1"], name="relu1"),
        node("Conv", ["r1", weight("wdw", 8, 1, 3, 3), bias("bdw", 8)], ["cdw"], pads=[1] * 4,
             group=8, name="dw"),
        node("Relu", ["cdw"], ["rdw"], name="relu2"),
        node("Conv", ["rdw", weight("wpw1", 32, 8, 1, 1), bias("bpw1", 32)], ["p1"], name="pw1"),
        node("Relu", ["p1"], ["rp1"], name="relu3"),
        node("Conv", ["rp1", weight("wpw2", 40, 32, 1, 1), bias("bpw2", 40)], ["p2"], name="pw2"),
        node("Relu", ["p2"], ["rp2"], name="relu4"),
        node("GlobalAveragePool", ["rp2"], ["gap"], name="gap"),
        node("Flatten", ["gap"], ["flat"], axis=1, name="flatten"),
        node("MatMul", ["flat", weight("wmm", 40, 28)], ["mm"], name="mm"),
        node("Relu", ["mm"], ["rmm"], name="relu5"),
        node("Gemm", ["rmm", weight("wfc", 10, 28), bias("bfc", 10)], [OUTPUT], transB=1,
             name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "prune_net",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 3, 10, 10])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def samples(n: int, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [{INPUT: (rng.standard_normal(SHAPE) + 0.5).astype(np.float32)} for _ in range(n)]


def sqnr_db(refs, gots) -> float:
    """SQNR (dB) of `gots` against `refs` (lists of arrays), float64, written out plainly."""
    signal = sum(float(np.sum(np.asarray(r, np.float64) ** 2)) for r in refs)
    noise = sum(float(np.sum((np.asarray(r, np.float64) - np.asarray(g, np.float64)) ** 2))
                for r, g in zip(refs, gots))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)
