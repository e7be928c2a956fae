"""Distillation hooks: recover accuracy after pruning or clustering in your own loop.

    from mobconv.quantize import distill
    for feeds, t in distill.teacher_outputs("teacher.mob", x_train, features=["f"]):
        ...                                           # teacher logits + features, streamed
    loss = distill.distillation_loss(s_logits, t["logits"], labels=y, temperature=4.0)
    student = distill.torch_student(pruned)           # torch.nn.Module (needs torch)
    tuned = distill.export(student, like=pruned)      # back into a .mob Model

docs/distillation.md has the whole loop. The teacher and the losses need only numpy
and the C++ runtime; `torch_student` and `export` need torch, imported on first use.
"""
from .losses import channel_map_of, cross_entropy, distillation_loss, feature_mse, kl_loss
from .teacher import teacher_outputs


def torch_student(model):
    """A trainable torch.nn.Module computing `model` (quantize/distill/torch_adapter.py)."""
    from .torch_adapter import torch_student as build

    return build(model)


def export(student, like, path=None, *, route: str = "onnx"):
    """The trained `student` as a Model shaped like `like` (quantize/distill/to_mob.py)."""
    from .to_mob import export as run

    return run(student, like, path, route=route)


__all__ = ["teacher_outputs", "kl_loss", "feature_mse", "cross_entropy", "distillation_loss",
           "channel_map_of", "torch_student", "export"]
