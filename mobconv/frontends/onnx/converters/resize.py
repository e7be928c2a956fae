"""Resize and Upsample -> IR Resize (inputs X, roi, scales, sizes; newest-opset attributes).

- Upsample (opset 7: `scales` attribute; 9: input) and Resize opset 10 (X,
  scales) scale with x_in = x_out / scale: coordinate_transformation_mode
  "asymmetric"; nearest rounds down when upsampling and up when downsampling
  (what onnxruntime does for these opsets); mode "linear" stays linear.
  With scales computed at run time the rounding is chosen per axis when the model
  runs: each axis is resized twice (floor and ceil nearest_mode, `axes` = that axis)
  and Where(scale >= 1) keeps one, which is exact for every mix of directions.
- Resize 11/13+: an empty roi/scales tensor means "absent"; the IR marks
  absent inputs with "".
"""
from __future__ import annotations

import numpy as np

from . import converter

_OLD_MODES = {"nearest": "nearest", "linear": "linear", "bilinear": "linear"}


def _old_style(cx, scales: str) -> None:
    mode = cx.attrs.string("mode", "nearest").lower()
    if mode not in _OLD_MODES:
        raise cx.error(f"mode ({mode!r}) must be one of nearest, linear")
    attrs = {"mode": _OLD_MODES[mode], "coordinate_transformation_mode": "asymmetric"}
    value = cx.graph.values.get(scales)
    if attrs["mode"] == "nearest" and (value is None or value.data is None):
        _old_nearest_at_run_time(cx, scales, attrs)
        return
    if attrs["mode"] == "nearest":
        attrs["nearest_mode"] = _old_nearest_mode(cx, scales)
    cx.emit("Resize", [cx.input(0), "", scales], cx.outputs, attrs)


def _old_nearest_at_run_time(cx, scales: str, attrs: dict) -> None:
    """Old nearest rounding with run-time scales: per axis a, Where(scales[a] >= 1,
    resize floor, resize ceil) along that axis only."""
    rank = cx.rank(0)
    if rank is None:
        raise cx.error("nearest resize with scales computed at run time needs the input rank to be known")
    one = cx.const(np.asarray(1.0, np.float32), "one")
    current = cx.input(0)
    for a in range(rank):
        scale, up = cx.tmp(f"scale{a}"), cx.tmp(f"up{a}")
        cx.emit("Slice", [scales, cx.const(np.asarray([a], np.int64), "start"),
                          cx.const(np.asarray([a + 1], np.int64), "end")], [scale])
        cx.emit("GreaterOrEqual", [scale, one], [up])
        picked = []
        for mode in ("floor", "ceil"):
            out = cx.tmp(f"{mode}{a}")
            cx.emit("Resize", [current, "", scale], [out], dict(attrs, nearest_mode=mode, axes=[a]))
            picked.append(out)
        result = cx.outputs[0] if a == rank - 1 else cx.tmp(f"axis{a}")
        cx.emit("Where", [up, picked[0], picked[1]], [result])
        current = result


def _old_nearest_mode(cx, scales: str) -> str:
    """Old nearest rounding (onnxruntime's "simple" mode): floor when upsampling, ceil
    when downsampling. The IR has one mode per node, so mixed scales are rejected."""
    value = cx.graph.values.get(scales)
    data = None if value is None else value.data
    if data is None or all(float(s) >= 1 for s in data.ravel()):
        return "floor"
    if all(float(s) <= 1 for s in data.ravel()):
        return "ceil"
    raise cx.error(
        f"nearest resize that upsamples some axes and downsamples others (scales "
        f"{[float(s) for s in data.ravel()]}) is not supported before opset 11"
    )


@converter("Upsample", ir=("Resize", "Slice", "GreaterOrEqual", "Where"))
def upsample(cx):
    if cx.opset < 9:
        cx.check_attrs({"mode", "scales"})
        scales = cx.const(np.asarray(cx.attrs.floats("scales"), np.float32), "scales")
    else:
        cx.check_attrs({"mode"})
        scales = cx.input(1)
    _old_style(cx, scales)


def _empty(cx, i: int) -> bool:
    data = cx.const_value(i)
    return data is not None and data.size == 0


@converter("Resize", ir=("Resize", "Slice", "GreaterOrEqual", "Where"))
def resize(cx):
    if cx.opset < 11:
        cx.check_attrs({"mode"})
        _old_style(cx, cx.input(1))
        return
    inputs = [cx.input(i) for i in range(4)]
    for i in (1, 2, 3):
        if inputs[i] and _empty(cx, i):
            inputs[i] = ""
    ctm = cx.attrs.string("coordinate_transformation_mode", "half_pixel")
    if ctm == "tf_half_pixel_for_nn":
        raise cx.error("coordinate_transformation_mode 'tf_half_pixel_for_nn' is not supported")
    cx.passthrough("Resize", inputs=inputs)
