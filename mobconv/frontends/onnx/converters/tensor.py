"""Shape and data-movement ops; older opsets' attribute forms become IR inputs.

IR forms (newest ONNX opset): Split split / Squeeze & Unsqueeze axes / Slice
starts..steps / Pad pads, constant_value / TopK k are inputs, not attributes.
"""
from __future__ import annotations

import numpy as np
import onnx

from ....ops.registry import AttrKind, get_spec
from . import converter

PASS = (
    "Concat", "Transpose", "Flatten", "Gather", "GatherElements", "Shape", "Size",
    "Tile", "Expand", "DepthToSpace", "SpaceToDepth", "Range", "CumSum", "ArgMax", "ArgMin",
    "ConstantOfShape",
)


@converter(*PASS)
def passthrough(cx):
    cx.passthrough(cx.op_type)


@converter("Reshape")
def reshape(cx):
    """Reshape(data, Shape(x)) with a symbolic dim in x (the batch, say).

    The IR needs the target shape as a constant; when it is the full shape of
    a value with at most one symbolic dim, that dim becomes -1 (Reshape
    requires equal element counts, so -1 resolves to the same size).
    Opset 13 Softmax adapters and exporters emit this pattern.
    """
    target = cx.input(1)
    producer = next((n for n in reversed(cx.graph.nodes) if target in n.outputs), None)
    if cx.const_value(1) is None and producer is not None and producer.op == "Shape":
        source = cx.graph.values.get(producer.inputs[0])
        whole = not producer.attrs.get("start") and producer.attrs.get("end") is None
        dims = source.shape if source is not None else None
        if whole and dims is not None and sum(isinstance(d, str) for d in dims) == 1:
            const = np.asarray([d if isinstance(d, int) else -1 for d in dims], np.int64)
            cx.passthrough("Reshape", inputs=[cx.input(0), cx.const(const, "shape")])
            return
    cx.passthrough("Reshape")


@converter("Split")
def split(cx):
    """< 13: `split` attribute -> input; < 18 without sizes: equal parts (num_outputs)."""
    if cx.opset >= 18:
        cx.passthrough("Split")
        return
    inputs = [cx.input(0), cx.input(1)]
    if cx.opset < 13:
        cx.check_attrs({"axis", "split"})
        inputs[1] = cx.attr_as_input("split", np.int64)
    else:
        cx.check_attrs({"axis"})
    attrs = {"axis": cx.attrs.int("axis", 0)}
    if not inputs[1]:
        attrs["num_outputs"] = len(cx.outputs)
    cx.emit("Split", inputs, cx.outputs, attrs)


@converter("Squeeze", "Unsqueeze")
def squeeze(cx):
    """< 13: `axes` attribute -> input."""
    if cx.opset >= 13:
        cx.passthrough(cx.op_type)
        return
    cx.check_attrs({"axes"})
    cx.emit(cx.op_type, [cx.input(0), cx.attr_as_input("axes", np.int64)], cx.outputs)


@converter("Slice")
def slice_(cx):
    """< 10: starts/ends/axes attributes -> inputs."""
    if cx.opset >= 10:
        cx.passthrough("Slice")
        return
    cx.check_attrs({"starts", "ends", "axes"})
    inputs = [cx.input(0), cx.attr_as_input("starts", np.int64), cx.attr_as_input("ends", np.int64)]
    inputs.append(cx.attr_as_input("axes", np.int64))
    cx.emit("Slice", inputs, cx.outputs)


@converter("Pad")
def pad(cx):
    """< 11: pads/value attributes -> inputs (constant_value in the input's dtype)."""
    if cx.opset >= 11:
        cx.passthrough("Pad")
        return
    cx.check_attrs({"mode", "pads", "value"})
    mode = cx.attrs.choice("mode", ("constant", "reflect", "edge"), "constant")
    pads = cx.const(np.asarray(cx.attrs.ints("pads"), np.int64), "pads")
    dtype = cx.dtype(0) or "float32"
    value = cx.const(np.asarray(cx.attrs.float("value", 0.0), dtype=dtype), "constant_value")
    cx.emit("Pad", [cx.input(0), pads, value], cx.outputs, {"mode": mode})


@converter("TopK")
def topk(cx):
    """< 10: `k` attribute -> input; `largest`/`sorted` arrived in opset 11."""
    if cx.opset >= 10:
        cx.passthrough("TopK")
        return
    cx.check_attrs({"k", "axis"})
    k = cx.const(np.asarray([cx.attrs.positive_int("k")], np.int64), "k")
    cx.emit("TopK", [cx.input(0), k], cx.outputs, {"axis": cx.attrs.int("axis", -1)})


@converter("Cast")
def cast(cx):
    """`to` is an ONNX TensorProto enum; the IR takes it as-is or as a dtype name."""
    to = cx.attrs.int("to")
    try:
        name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to)).name
    except Exception:  # noqa: BLE001
        name = onnx.TensorProto.DataType.Name(to).lower()
    if to == onnx.TensorProto.BFLOAT16:
        name = "bfloat16"
    from ....ir import DTYPES

    if name not in DTYPES:
        raise cx.error(f"to ({name}) is not a supported dtype (supported: {', '.join(DTYPES)})")
    spec = get_spec("Cast")
    attr = spec.attr_index.get("to")
    value = name if attr is not None and attr.kind is AttrKind.STRING else to
    cx.passthrough("Cast", attrs={"to": value})


@converter("Constant", ir=())
def constant(cx):  # pragma: no cover - the loader turns Constant nodes into constants
    raise cx.error("Constant nodes are folded into constants by the loader")
