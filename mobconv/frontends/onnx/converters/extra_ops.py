"""Scatter, matrix-building, Einsum, GridSample and Shrink converters.

All are pass-through (IR = newest opset) except Scatter (opset 9-10, the old
name of ScatterElements without reduction) and GridSample before opset 20,
whose modes were called bilinear/bicubic.
"""
from __future__ import annotations

from . import converter

PASS = ("ScatterND", "ScatterElements", "Trilu", "OneHot", "Einsum", "Shrink", "EyeLike",
        "NonMaxSuppression")


@converter(*PASS)
def passthrough(cx):
    cx.passthrough(cx.op_type)


@converter("Scatter", ir=("ScatterElements",))
def scatter(cx):
    """Deprecated Scatter (opset 9-10) = ScatterElements with reduction none."""
    cx.passthrough("ScatterElements")


_GRID_MODES = {"bilinear": "linear", "bicubic": "cubic"}


@converter("GridSample")
def grid_sample(cx):
    """Opset 16-19 mode names bilinear/bicubic become linear/cubic."""
    mode = cx.attrs.string("mode", "linear" if cx.opset >= 20 else "bilinear")
    cx.passthrough("GridSample", attrs={"mode": _GRID_MODES.get(mode, mode)})
