"""Convolution, pooling, normalization and dropout converters."""
from __future__ import annotations

import numpy as np

from . import converter

PASS = (
    "Conv", "ConvTranspose", "Gemm", "MatMul", "GlobalAveragePool", "GlobalMaxPool", "LRN",
    "InstanceNormalization", "LayerNormalization", "LpNormalization",
    "MeanVarianceNormalization", "AveragePool", "MaxPool",
)


@converter(*PASS)
def passthrough(cx):
    if cx.op_type == "Gemm" and cx.opset < 7:  # opset 6 `broadcast`: C broadcast to (M, N), as now
        cx.passthrough("Gemm", drop=("broadcast",))
        return
    cx.passthrough(cx.op_type)


@converter("BatchNormalization", ir=("BatchNormalization", "ReduceMean", "Sub", "Mul", "Add", "Reshape"))
def batch_norm(cx):
    """Inference BatchNormalization; `momentum` only matters in training and is dropped.

    Old forms: `spatial` (opset 7-8; only 1 supported); opsets < 14 may list
    training statistics as extra outputs, rejected only if the model reads
    them. training_mode=1 (opset 14+) is expanded into IR ops: batch
    mean/variance (population) over all axes but 1, the inference op with
    those, and running_* = input_* * momentum + batch_* * (1 - momentum).
    """
    cx.check_attrs({"epsilon", "momentum", "spatial", "training_mode", "consumed_inputs", "is_test"})
    spatial = cx.attrs.int("spatial", 1)
    if spatial != 1:
        raise cx.error(f"spatial ({spatial}) must be 1 (per-activation statistics are not supported)")
    epsilon = cx.attrs.float("epsilon", 1e-5)
    outputs = list(cx.outputs)
    if cx.attrs.int("training_mode", 0):
        _batch_norm_training(cx, epsilon, cx.attrs.float("momentum", 0.9))
        return
    if any(outputs[1:]):
        used = _readers(cx, outputs[1:])
        if used:
            raise cx.error(
                f"training-only output(s) {', '.join(used)} are read by the model; "
                "only inference-mode BatchNormalization is supported"
            )
    cx.emit("BatchNormalization", cx.inputs[:5], outputs[:1], {"epsilon": epsilon})


def _batch_norm_training(cx, epsilon: float, momentum: float) -> None:
    rank = cx.rank(0)
    if rank is None:
        raise cx.error("training_mode=1 needs the input rank to be known")
    dtype = cx.dtype(0) or "float32"
    x, scale, bias, in_mean, in_var = cx.inputs[:5]
    axes = cx.const(np.asarray([0] + list(range(2, rank)), np.int64), "axes")
    flat = cx.const(np.asarray([-1], np.int64), "flat")
    mean_k, diff, sq, var_k = cx.tmp("mean_k"), cx.tmp("diff"), cx.tmp("sq"), cx.tmp("var_k")
    cx.emit("ReduceMean", [x, axes], [mean_k], {"keepdims": 1})
    cx.emit("Sub", [x, mean_k], [diff])
    cx.emit("Mul", [diff, diff], [sq])
    cx.emit("ReduceMean", [sq, axes], [var_k], {"keepdims": 1})
    mean, var = cx.tmp("batch_mean"), cx.tmp("batch_var")
    cx.emit("Reshape", [mean_k, flat], [mean])
    cx.emit("Reshape", [var_k, flat], [var])
    outputs = list(cx.outputs) + ["", ""]
    cx.emit("BatchNormalization", [x, scale, bias, mean, var], [outputs[0]], {"epsilon": epsilon})
    keep = cx.const(np.asarray(momentum, dtype), "momentum")
    new = cx.const(np.asarray(1.0 - momentum, dtype), "one_minus_momentum")
    for running, batch, out in ((in_mean, mean, outputs[1]), (in_var, var, outputs[2])):
        if not out:
            continue
        a, b = cx.tmp("old"), cx.tmp("new")
        cx.emit("Mul", [running, keep], [a])
        cx.emit("Mul", [batch, new], [b])
        cx.emit("Add", [a, b], [out])


def _readers(cx, names) -> list:
    wanted = {n for n in names if n}
    model_graph = cx.model_graph
    used = {i for n in model_graph.node for i in n.input} | {o.name for o in model_graph.output}
    return sorted(wanted & used)


@converter("Dropout")
def dropout(cx):
    """Opset < 12: `ratio` attribute -> input; opset 7+ has no is_test (always
    inference); opset 6's is_test must be 1 (or absent: we only infer)."""
    if cx.opset >= 12:
        cx.passthrough("Dropout")
        return
    cx.check_attrs({"ratio", "is_test"} if cx.opset < 7 else {"ratio"})
    ratio = cx.attr_as_input("ratio", np.float32)
    cx.emit("Dropout", [cx.input(0), ratio], cx.outputs)
