"""QuantizeLinear / DequantizeLinear: pass-through (IR = opset 28 semantics; older
opsets' forms are subsets: per-tensor only before 13, no block_size before 21).

A DequantizeLinear of a constant (a QDQ model's int8 weight or int32 bias) stays a
node instead of being folded into a float constant, so `passes.lower_qdq` can turn
`DQ(W) -> Conv` into an int8 Conv (docs/quantization.md, "Import"). A one-value
scale and zero point of different shapes ((1,) and (), which onnxruntime's quantizer
writes for BatchNormalization biases and onnxruntime accepts) are given one shape."""
from __future__ import annotations

import numpy as np

from . import converter


@converter("QuantizeLinear", "DequantizeLinear")
def quantize_linear(cx):
    keep = cx.op_type == "DequantizeLinear" and cx.const_value(0) is not None
    inputs = list(cx.inputs)
    scale, zp = cx.const_value(1), cx.const_value(2)
    if scale is not None and zp is not None and scale.size == zp.size == 1 and scale.shape != zp.shape:
        inputs[2] = cx.const(zp.reshape(scale.shape), "zero_point")
    cx.passthrough(cx.op_type, inputs=inputs, fold=not keep)
