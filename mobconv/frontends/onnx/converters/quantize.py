"""QuantizeLinear / DequantizeLinear: pass-through (IR = opset 28 semantics; older
opsets' forms are subsets: per-tensor only before 13, no block_size before 21)."""
from __future__ import annotations

from . import converter


@converter("QuantizeLinear", "DequantizeLinear")
def quantize_linear(cx):
    cx.passthrough(cx.op_type)
