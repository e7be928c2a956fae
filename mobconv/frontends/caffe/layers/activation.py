"""Element-wise layers: ReLU, ReLU6, PReLU, ELU, Sigmoid, TanH, AbsVal, BNLL,
Power, Exp, Log, Threshold, Clip, Dropout (identity at test time)."""
from __future__ import annotations

import math

import numpy as np

from . import REGISTRY

FLOAT = 1  # ONNX TensorProto.FLOAT, for Cast


def _affine_steps(scale, shift):
    """Steps of x * scale + shift, skipping no-op ones."""
    steps = []
    if scale != 1.0:
        steps.append(("Mul", scale, "scale"))
    if shift != 0.0:
        steps.append(("Add", shift, "shift"))
    return steps


def _chain(ctx, steps, last_op=None):
    """Apply binary (op, constant, suffix) steps to the input, then `last_op`
    (unary); the final node writes the layer's top (an Identity if nothing)."""
    ops = [(op, c, sfx) for op, c, sfx in steps] + ([(last_op, None, "")] if last_op else [])
    if not ops:
        ctx.node("Identity", [ctx.inputs[0]], ctx.outputs[0])
        return
    x = ctx.inputs[0]
    for i, (op, c, sfx) in enumerate(ops):
        target = ctx.outputs[0] if i == len(ops) - 1 else None
        inputs = [x] if c is None else [x, ctx.const(np.float32(c), sfx)]
        x = ctx.node(op, inputs, target)


@REGISTRY.register("ReLU")
def relu(ctx):
    ctx.check_arity(1)
    slope = ctx.param("relu_param").float("negative_slope", 0.0)
    if slope == 0.0:
        ctx.node("Relu", ctx.inputs, ctx.outputs[0])
    else:
        ctx.node("LeakyRelu", ctx.inputs, ctx.outputs[0], dict(alpha=slope))


@REGISTRY.register("ReLU6")
def relu6(ctx):
    ctx.check_arity(1)
    ctx.node("Clip", [ctx.inputs[0], ctx.const(np.float32(0), "min"), ctx.const(np.float32(6), "max")],
             ctx.outputs[0])


@REGISTRY.register("Clip")
def clip(ctx):
    ctx.check_arity(1)
    p = ctx.param("clip_param")
    lo, hi = p.float("min"), p.float("max")
    if lo > hi:
        raise ctx.error(f"min ({lo}) must not exceed max ({hi})")
    ctx.node("Clip", [ctx.inputs[0], ctx.const(np.float32(lo), "min"), ctx.const(np.float32(hi), "max")],
             ctx.outputs[0])


@REGISTRY.register("PReLU")
def prelu(ctx):
    ctx.check_arity(1)
    shared = bool(ctx.param("prelu_param").int("channel_shared", 0))
    shape = ctx.shape(ctx.inputs[0])
    if shared:
        slope = ctx.blob(0, (1,), "slope")
    else:
        if len(shape) < 2:
            raise ctx.error(f"input must have a channel axis, got shape {shape}")
        slope = ctx.blob(0, (shape[1],), "slope").reshape((shape[1],) + (1,) * (len(shape) - 2))
    ctx.node("PRelu", [ctx.inputs[0], ctx.const(slope, "slope")], ctx.outputs[0])


@REGISTRY.register("ELU")
def elu(ctx):
    ctx.check_arity(1)
    ctx.node("Elu", ctx.inputs, ctx.outputs[0], dict(alpha=ctx.param("elu_param").float("alpha", 1.0)))


def _simple(op):
    def convert(ctx):
        ctx.check_arity(1)
        ctx.node(op, ctx.inputs, ctx.outputs[0])

    return convert


REGISTRY.register("Sigmoid")(_simple("Sigmoid"))
REGISTRY.register("TanH")(_simple("Tanh"))
REGISTRY.register("AbsVal")(_simple("Abs"))
REGISTRY.register("BNLL")(_simple("Softplus"))  # log(1 + exp(x))


@REGISTRY.register("Dropout")
def dropout(ctx):
    """Identity at test time (Caffe scales during training)."""
    ctx.check_arity(1)
    ctx.alias(0, ctx.inputs[0])


@REGISTRY.register("Power")
def power(ctx):
    """y = (shift + scale * x) ^ power."""
    ctx.check_arity(1)
    p = ctx.param("power_param")
    pw, scale, shift = p.float("power", 1.0), p.float("scale", 1.0), p.float("shift", 0.0)
    steps = _affine_steps(scale, shift)
    if pw != 1.0:
        steps.append(("Pow", pw, "power"))
    _chain(ctx, steps)


@REGISTRY.register("Exp")
def exp(ctx):
    """y = base ^ (shift + scale * x); base -1 means e."""
    ctx.check_arity(1)
    p = ctx.param("exp_param")
    base, scale, shift = p.float("base", -1.0), p.float("scale", 1.0), p.float("shift", 0.0)
    if base != -1.0 and base <= 0:
        raise ctx.error(f"base ({base}) must be positive (or -1 for e)")
    ln_base = 1.0 if base == -1.0 else math.log(base)
    _chain(ctx, _affine_steps(scale * ln_base, shift * ln_base), "Exp")


@REGISTRY.register("Log")
def log(ctx):
    """y = log_base(shift + scale * x); base -1 means e."""
    ctx.check_arity(1)
    p = ctx.param("log_param")
    base, scale, shift = p.float("base", -1.0), p.float("scale", 1.0), p.float("shift", 0.0)
    if base != -1.0 and (base <= 0 or base == 1):
        raise ctx.error(f"base ({base}) must be positive and not 1 (or -1 for e)")
    x = ctx.inputs[0]
    for op, c, sfx in _affine_steps(scale, shift):
        x = ctx.node(op, [x, ctx.const(np.float32(c), sfx)])
    if base == -1.0:
        ctx.node("Log", [x], ctx.outputs[0])
    else:
        y = ctx.node("Log", [x])
        ctx.node("Mul", [y, ctx.const(np.float32(1.0 / math.log(base)), "inv_ln_base")], ctx.outputs[0])


@REGISTRY.register("Threshold")
def threshold(ctx):
    """y = 1 if x > threshold else 0."""
    ctx.check_arity(1)
    t = ctx.param("threshold_param").float("threshold", 0.0)
    mask = ctx.node("Greater", [ctx.inputs[0], ctx.const(np.float32(t), "threshold")])
    ctx.node("Cast", [mask], ctx.outputs[0], dict(to=FLOAT))
