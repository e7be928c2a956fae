"""QuantizeLinear / DequantizeLinear: pass-through (IR = opset 28 semantics; older
opsets' forms are subsets: per-tensor only before 13, no block_size before 21).

A DequantizeLinear of a constant (a QDQ model's int8 weight or int32 bias) stays a
node instead of being folded into a float constant, so `passes.lower_qdq` can turn
`DQ(W) -> Conv` into an int8 Conv (docs/quantization.md, "Import")."""
from __future__ import annotations

from . import converter


@converter("QuantizeLinear", "DequantizeLinear")
def quantize_linear(cx):
    keep = cx.op_type == "DequantizeLinear" and cx.const_value(0) is not None
    cx.passthrough(cx.op_type, fold=not keep)
