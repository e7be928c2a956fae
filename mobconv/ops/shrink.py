"""Shrink (ONNX opset 9): soft/hard shrinkage of each element."""
import numpy as np

from .registry import Attr, AttrKind, op, same_as_input


@op("Shrink", inputs=["input"], outputs=["output"],
    attrs=[Attr("bias", AttrKind.FLOAT, 0.0), Attr("lambd", AttrKind.FLOAT, 0.5)],
    infer=same_as_input(0))
def shrink(x, bias, lambd):
    """y = x + bias where x < -lambd, x - bias where x > lambd, else 0 (element-wise,
    in x's dtype; float16/bfloat16 compute in float32)."""
    w = x.astype(np.float32) if x.dtype.name in ("float16", "bfloat16") else x
    b = np.asarray(bias, np.float32).astype(w.dtype) if w.dtype.kind == "f" else bias
    y = np.where(w < -lambd, w + b, np.where(w > lambd, w - b, 0))
    return y.astype(x.dtype)
