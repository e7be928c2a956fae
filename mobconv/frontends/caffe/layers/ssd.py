"""SSD layers (weiliu89/caffe): PriorBox and DetectionOutput, kept as the IR
ops of the same name (Caffe semantics, see mobconv/ops/detection.py)."""
from __future__ import annotations

from . import REGISTRY


@REGISTRY.register("PriorBox")
def prior_box(ctx):
    ctx.check_arity(2)
    p = ctx.param("prior_box_param")
    min_sizes = p.floats("min_size", [])
    if not min_sizes or any(s <= 0 for s in min_sizes):
        raise ctx.error(f"min_size ({min_sizes}) must be given and positive")
    max_sizes = p.floats("max_size", [])
    if max_sizes and len(max_sizes) != len(min_sizes):
        raise ctx.error(f"max_size ({len(max_sizes)} values) must pair with min_size ({len(min_sizes)})")
    variance = p.floats("variance", [0.1])
    if len(variance) not in (1, 4):
        raise ctx.error(f"variance must have 1 or 4 values, got {variance}")
    attrs = dict(min_sizes=min_sizes, max_sizes=max_sizes, aspect_ratios=p.floats("aspect_ratio", []),
                 flip=p.int("flip", 1), clip=p.int("clip", 0), variance=variance,
                 offset=p.float("offset", 0.5))
    for name in ("img_size", "img_h", "img_w"):
        if p.has(name):
            attrs[name] = p.int(name)
    for name in ("step", "step_h", "step_w"):
        if p.has(name):
            attrs[name] = p.float(name)
    ctx.node("PriorBox", ctx.inputs, ctx.outputs[0], attrs)


@REGISTRY.register("DetectionOutput")
def detection_output(ctx):
    ctx.check_arity(3)
    p = ctx.param("detection_output_param")
    nms = p.attrs.get("nms_param", {})
    attrs = dict(
        num_classes=p.positive_int("num_classes"),
        share_location=p.int("share_location", 1),
        background_label_id=p.int("background_label_id", 0),
        nms_threshold=float(nms.get("nms_threshold", 0.3)),
        top_k=int(nms.get("top_k", -1)),
        eta=float(nms.get("eta", 1.0)),
        keep_top_k=p.int("keep_top_k", -1),
        code_type=p.choice("code_type", ["CORNER", "CENTER_SIZE", "CORNER_SIZE"], "CORNER"),
        variance_encoded_in_target=p.int("variance_encoded_in_target", 0),
    )
    if p.has("confidence_threshold"):
        attrs["confidence_threshold"] = p.float("confidence_threshold")
    ctx.node("DetectionOutput", ctx.inputs, ctx.outputs[0], attrs)
