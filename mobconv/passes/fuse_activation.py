"""Activation fusion: an activation right after Conv/ConvTranspose/Gemm/MatMul
becomes an attribute of that producer.

Why: the kernel applies the activation while its output tile is still in
registers, saving a full read and write of the activation tensor.
The fused form is `activation` / `activation_params` (`mobconv/ops/_fused.py`).

Algorithm, for each Relu, Clip, LeakyRelu, HardSwish, HardSigmoid, Sigmoid, Tanh:
1. Its input comes from a Conv/ConvTranspose/Gemm/MatMul that has no fused
   activation yet, and nothing else reads that output (no graph output either).
2. Its parameters are known now: LeakyRelu alpha, HardSigmoid alpha/beta from
   attributes; Clip min/max must be absent or constants (absent = -inf/+inf;
   Clip(0, +inf) is stored as Relu). A Clip with a computed bound is left alone.
3. Set the producer's attributes; the producer takes over the activation's
   output name and the activation node goes.
"""
from __future__ import annotations

import math

from ..ops._fused import FUSIBLE
from ._util import Uses, attrs_of, has_attr

PRODUCERS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def fuse_activation(graph) -> bool:
    """Fuse activations into their producers; True if any was fused."""
    uses = Uses(graph)
    for act in [n for n in graph.nodes if n.op in FUSIBLE]:
        if len(act.outputs) != 1 or not act.inputs or not act.inputs[0]:
            continue
        source = uses.producer(act.inputs[0])
        if source is None or source.op not in PRODUCERS or len(source.outputs) != 1:
            continue
        if not has_attr(source.op, "activation") or attrs_of(source)["activation"]:
            continue
        if not uses.only_reader(act.inputs[0], act):
            continue
        if graph.values[act.inputs[0]].quant is not None:  # int8: lower_qdq fuses what the spec allows
            continue
        w = graph.values.get(source.inputs[1]) if len(source.inputs) > 1 else None
        if w is not None and w.quant is not None and act.op not in ("Relu", "Clip"):
            continue  # dynamic-range int8 (docs/quantization.md section 10) fuses Relu/Clip only
        fused = _fused_form(uses, act)
        if fused is None:
            continue
        source.attrs["activation"], source.attrs["activation_params"] = fused
        uses.take_over_output(source, act)
    changed = uses.commit()
    if changed:
        graph.remove_unused_values()
    return changed


def _fused_form(uses, act):
    """(activation, params) for the activation node, or None when its parameters are not constant."""
    if act.op == "Clip":
        bounds = []
        for i, default in ((1, -math.inf), (2, math.inf)):
            name = act.inputs[i] if len(act.inputs) > i else ""
            if not name:
                bounds.append(default)
                continue
            data = uses.const(name)
            if data is None or data.size != 1:
                return None
            bounds.append(float(data.reshape(-1)[0]))
        if bounds[0] == 0 and bounds[1] == math.inf:
            return "Relu", []
        return "Clip", bounds
    attrs = attrs_of(act)
    if act.op == "LeakyRelu":
        return "LeakyRelu", [attrs["alpha"]]
    if act.op == "HardSigmoid":
        return "HardSigmoid", [attrs["alpha"], attrs["beta"]]
    return act.op, []
