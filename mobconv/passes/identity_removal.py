"""Identity removal: drop Identity nodes and inference-mode Dropout nodes.

Why: both copy their input unchanged at inference time; exporters emit them
around graph outputs, after every dropout layer and as renaming glue.

Algorithm, for each Identity, and each Dropout whose `training_mode` input is
absent or a constant false and whose `mask` output is unused (a used mask would
still have to be produced):
1. The copied value `y` is not a graph output: every reader of `y` reads the
   input `x` instead; the node goes.
2. `y` is a graph output (its name is user-facing and must not change): the
   node's input is renamed to `y` instead, i.e. the producer of `x` now writes
   `y` and every reader of `x` reads `y`. Only legal when `x` is produced by a
   node and is neither a graph input, a graph output nor a constant; otherwise
   the node stays (constant inputs are left to constant folding).
"""
from __future__ import annotations

from ._util import Uses


def identity_removal(graph) -> bool:
    """Remove Identity/Dropout copies; True if any node was removed."""
    uses = Uses(graph)
    for node in [n for n in graph.nodes if n.op in ("Identity", "Dropout")]:
        if not _is_copy(uses, node):
            continue
        x, y = node.inputs[0], node.outputs[0]
        if y not in uses.outputs:
            uses.remove(node)
            uses.replace_uses(y, x)
            graph.values.pop(y, None)
            continue
        source = uses.producer(x)
        if (
            source is None
            or x in uses.inputs
            or x in uses.outputs
            or uses.const(x) is not None
        ):
            continue
        uses.remove(node)
        uses.set_outputs(source, [y if o == x else o for o in source.outputs])
        uses.replace_uses(x, y)
        graph.values.pop(x, None)
    changed = uses.commit()
    if changed:
        graph.remove_unused_values()
    return changed


def _is_copy(uses, node) -> bool:
    if not node.inputs or not node.inputs[0] or not node.outputs or not node.outputs[0]:
        return False
    if node.op == "Identity":
        return True
    if len(node.inputs) > 2 and node.inputs[2]:
        training = uses.const(node.inputs[2])
        if training is None or bool(training.reshape(-1)[0]):
            return False
    if len(node.outputs) > 1 and node.outputs[1]:
        mask = node.outputs[1]
        if mask in uses.outputs or uses.has_readers(mask):
            return False
    return True
