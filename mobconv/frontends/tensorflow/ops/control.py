"""TensorFlow plumbing ops: identities and ops that do nothing at inference.

Identity-like ops (training and debugging helpers) become IR Identity, which
the passes remove. PlaceholderWithDefault passes its default through (the
value TensorFlow uses when nothing is fed); name it in --inputs to feed it
instead. NoOp and Assert produce nothing anybody reads.

Switch/Merge never reach a converter: `control_flow.fold_constant_switches`
folds the constant ones away before conversion and refuses the others.
"""
from __future__ import annotations

from ..registry import TF_OPS

_IDENTITIES = ("Identity", "StopGradient", "Snapshot", "EnsureShape", "PreventGradient",
               "CheckNumerics", "PlaceholderWithDefault", "DebugGradientIdentity")


@TF_OPS.register(*_IDENTITIES)
def identity(cx):
    cx.emit("Identity", [cx.input(0)], cx.outputs[:1])


@TF_OPS.register("IdentityN")
def identity_n(cx):
    for i, value in enumerate(cx.inputs):
        cx.emit("Identity", [value], [cx.output(i)])


@TF_OPS.register("NoOp", "Assert")
def no_op(cx):
    """Nothing to compute (control dependencies are dropped at inference)."""
