"""Graph passes: IR -> IR rewrites, one file per pass, each `pass_name(graph) -> bool`.

`optimize(graph)` runs `DEFAULT_PIPELINE` repeatedly until no pass changes the
graph (at most `MAX_ROUNDS` rounds). The order matters within a round:
- transpose_sinking first: it cancels the Transposes a channels-last (NHWC) source
  puts around every op, so lower_qdq sees DequantizeLinear -> Conv -> QuantizeLinear
  and the fusions see Conv -> Add -> Relu chains (a no-op without Transposes);
- lower_qdq next: it matches DequantizeLinear -> op -> QuantizeLinear (a QDQ model)
  before constant folding turns a weight's DequantizeLinear into a float constant and
  before the fusions rewrite the float ops between the boundaries;
- identity_removal and constant_folding first, so later matchers see direct
  producer -> consumer edges and constant operands;
- dead_code right after, so "has no other reader" checks are not fooled by
  orphaned nodes;
- fuse_residual after the folds (a Conv with a residual input no longer folds
  a following BN/Mul/Add) and before fuse_activation, so Add -> Relu after a
  Conv fuses as Conv(R) + Relu in the same round;
- fold_pad, fold_batchnorm, fold_mul_add before fuse_activation, because a
  fused activation blocks folding anything that follows it (Conv -> BN -> Relu
  must fold BN first, then fuse Relu);
- dead_code last, to drop the weights the folds replaced.
The graph's input and output names, dtypes and shapes never change.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Union

from ..errors import MobconvError
from .constant_folding import constant_folding
from .dead_code import dead_code
from .fold_batchnorm import fold_batchnorm
from .fold_mul_add import fold_mul_add
from .fold_pad import fold_pad
from .fuse_activation import fuse_activation
from .fuse_residual import fuse_residual
from .identity_removal import identity_removal
from .lower_qdq import lower_qdq_pass
from .transpose_sinking import transpose_sinking

PASSES = {
    "transpose_sinking": transpose_sinking,
    "lower_qdq": lower_qdq_pass,
    "identity_removal": identity_removal,
    "constant_folding": constant_folding,
    "dead_code": dead_code,
    "fold_pad": fold_pad,
    "fold_batchnorm": fold_batchnorm,
    "fold_mul_add": fold_mul_add,
    "fuse_residual": fuse_residual,
    "fuse_activation": fuse_activation,
}

DEFAULT_PIPELINE = (
    "transpose_sinking",
    "lower_qdq",
    "identity_removal",
    "constant_folding",
    "dead_code",
    "fold_pad",
    "fold_batchnorm",
    "fold_mul_add",
    "fuse_residual",
    "fuse_activation",
    "dead_code",
)

MAX_ROUNDS = 10


def optimize(graph, passes: Optional[Iterable[Union[str, Callable]]] = None):
    """Run `passes` (names from PASSES or callables; default DEFAULT_PIPELINE) to a fixpoint.

    Rewrites `graph` in place and returns it. Raises MobconvError for an unknown
    pass name.
    """
    pipeline = [_resolve(p) for p in (DEFAULT_PIPELINE if passes is None else passes)]
    before = _interface(graph)
    for _ in range(MAX_ROUNDS):
        changed = False
        for run_pass in pipeline:
            changed = bool(run_pass(graph)) or changed
        if not changed:
            break
    after = _interface(graph)
    if not _same_interface(before, after):  # a pass bug, not a user error: fail loudly
        raise AssertionError(f"optimize changed the graph interface: {before} -> {after}")
    return graph


def _resolve(p):
    if callable(p):
        return p
    try:
        return PASSES[p]
    except KeyError:
        raise MobconvError(
            f"unknown graph pass {p!r} (known: {', '.join(PASSES)})"
        ) from None


def _interface(graph):
    def describe(name):
        value = graph.values.get(name)
        return (name, value and value.dtype, value and value.shape)

    return [describe(n) for n in graph.inputs] + [describe(n) for n in graph.outputs]


def _same_interface(before, after) -> bool:
    """Same names and dtypes; shapes equal except that unknown/symbolic dims may become static."""
    if len(before) != len(after):
        return False
    for (name0, dtype0, shape0), (name1, dtype1, shape1) in zip(before, after):
        if name0 != name1 or (dtype0 and dtype0 != dtype1):
            return False
        if shape0 is None:
            continue
        if shape1 is None or len(shape0) != len(shape1):
            return False
        if any(isinstance(a, int) and a != b for a, b in zip(shape0, shape1)):
            return False
    return True


__all__ = ["DEFAULT_PIPELINE", "PASSES", "optimize"] + list(PASSES)
