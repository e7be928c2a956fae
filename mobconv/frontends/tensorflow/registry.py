"""The TensorFlow op converter registry.

Converters live in `ops/*.py` and register themselves by TensorFlow op type:

    from ..registry import TF_OPS

    @TF_OPS.register("Relu")
    def relu(cx):                       # cx: context.TFNodeContext
        cx.emit("Relu", [cx.input(0)], cx.outputs)

`load_ops()` imports every module of `ops/` once, so the loader (and
`TF_OPS.check_supported`) sees all converters.
"""
from __future__ import annotations

from ..common import ConverterRegistry

TF_OPS = ConverterRegistry("TensorFlow", "op")


def load_ops() -> ConverterRegistry:
    """Import the converter modules (they register into TF_OPS) and return TF_OPS."""
    from . import ops  # noqa: F401 - imported for its registrations

    return TF_OPS
