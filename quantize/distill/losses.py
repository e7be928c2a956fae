"""Distillation losses, one definition for numpy arrays and torch tensors.

    loss = distill.kl_loss(student_logits, teacher_logits, temperature=4.0)
    loss = distill.feature_mse(student_feat, teacher_feat, channel_map=kept)
    loss = distill.distillation_loss(s_logits, t_logits, labels=y, features={...})

Each function computes in torch (differentiable) when any argument is a torch tensor
(numpy arguments then become tensors on its device and dtype), else in numpy (float64
math, a Python float result). The formulas:

- kl_loss (Hinton et al. 2015): with p = softmax(t / T) and q = softmax(s / T) over the
  class axis, T^2 * mean over every other position of sum_c p_c (log p_c - log q_c).
  The T^2 factor keeps the gradient scale independent of T (the soft-target gradient
  shrinks as 1/T^2). Equals torch's KLDivLoss(reduction="batchmean") times T^2 for
  [N, C] logits.
- feature_mse: mean over all elements of (s - t[:, channel_map])^2. After channel
  pruning the student's feature has fewer channels (axis 1): channel_map lists the
  teacher channel kept for each student channel, in order (`channel_map_of` reads it
  from a channel-pruned model when the pruner recorded it).
- distillation_loss: alpha * kl_loss + (1 - alpha) * cross_entropy(s, labels) (when
  labels are given, else kl_loss alone) + feature_weight * sum of the feature MSEs.
"""
from __future__ import annotations

import numpy as np

from mobconv.errors import ArgumentError


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _backend(*args):
    """(torch module or None, a reference tensor) of the arguments."""
    for a in args:
        if _is_torch(a):
            import torch

            return torch, a
    return None, None


def _to(torch, ref, x):
    if _is_torch(x):
        return x
    return torch.as_tensor(np.asarray(x), dtype=ref.dtype, device=ref.device)


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)) \
            or not np.isfinite(temperature) or temperature <= 0:
        raise ArgumentError(f"temperature must be a positive number, got {temperature!r}")
    return float(temperature)


def _check_same_shape(what: str, s_shape, t_shape) -> None:
    if tuple(s_shape) != tuple(t_shape):
        raise ArgumentError(f"{what}: student shape {list(s_shape)} differs from teacher shape "
                            f"{list(t_shape)}")


def kl_loss(student_logits, teacher_logits, temperature: float = 4.0, axis: int = -1):
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over positions."""
    T = _check_temperature(temperature)
    _check_same_shape("kl_loss", np.shape(student_logits), np.shape(teacher_logits))
    ndim = len(np.shape(student_logits))
    if ndim == 0 or not -ndim <= axis < ndim:
        raise ArgumentError(f"kl_loss: axis {axis} is out of range for logits of shape "
                            f"{list(np.shape(student_logits))}")
    torch, ref = _backend(student_logits, teacher_logits)
    if torch is not None:
        s, t = _to(torch, ref, student_logits), _to(torch, ref, teacher_logits)
        log_q = torch.log_softmax(s / T, dim=axis)
        log_p = torch.log_softmax(t / T, dim=axis)
        per_position = (log_p.exp() * (log_p - log_q)).sum(dim=axis)
        return per_position.mean() * (T * T)
    s = np.asarray(student_logits, np.float64)
    t = np.asarray(teacher_logits, np.float64)
    log_q = _log_softmax(s / T, axis)
    log_p = _log_softmax(t / T, axis)
    return float((np.exp(log_p) * (log_p - log_q)).sum(axis=axis).mean() * T * T)


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _channel_index(channel_map, s_shape, t_shape):
    if channel_map is None:
        return None
    index = np.asarray(channel_map)
    if index.ndim != 1 or index.dtype.kind not in "iu":
        raise ArgumentError(f"feature_mse: channel_map must be a list of teacher channel indices, "
                            f"got {channel_map!r}")
    if len(s_shape) < 2 or len(t_shape) < 2:
        raise ArgumentError(f"feature_mse: a channel map needs features with a channel axis (axis 1), "
                            f"got shapes {list(s_shape)} and {list(t_shape)}")
    if len(index) != s_shape[1]:
        raise ArgumentError(f"feature_mse: channel_map has {len(index)} entries but the student "
                            f"feature has {s_shape[1]} channels (shape {list(s_shape)})")
    bad = index[(index < 0) | (index >= t_shape[1])]
    if bad.size:
        raise ArgumentError(f"feature_mse: channel_map entry {int(bad[0])} is not a channel of the "
                            f"teacher feature ({t_shape[1]} channels, shape {list(t_shape)})")
    return index.astype(np.int64)


def feature_mse(student_feature, teacher_feature, channel_map=None):
    """Mean squared difference of a student feature and the teacher's, whose channels
    (axis 1) are first reduced to `channel_map` (the kept teacher channel per student
    channel) when given."""
    s_shape, t_shape = tuple(np.shape(student_feature)), tuple(np.shape(teacher_feature))
    index = _channel_index(channel_map, s_shape, t_shape)
    if index is not None:
        t_shape = t_shape[:1] + (len(index),) + t_shape[2:]
    _check_same_shape("feature_mse" + (" (after the channel map)" if index is not None else ""),
                      s_shape, t_shape)
    torch, ref = _backend(student_feature, teacher_feature)
    if torch is not None:
        s, t = _to(torch, ref, student_feature), _to(torch, ref, teacher_feature)
        if index is not None:
            t = t.index_select(1, torch.as_tensor(index, device=t.device))
        return ((s - t) ** 2).mean()
    s = np.asarray(student_feature, np.float64)
    t = np.asarray(teacher_feature, np.float64)
    if index is not None:
        t = np.take(t, index, axis=1)
    return float(((s - t) ** 2).mean())


def cross_entropy(student_logits, labels, axis: int = -1):
    """Mean negative log-likelihood of integer `labels` under softmax(student_logits)."""
    shape = tuple(np.shape(student_logits))
    if len(shape) != 2 or tuple(np.shape(labels)) != shape[:1] or axis not in (-1, 1):
        raise ArgumentError(f"cross_entropy: expected logits [N, C] and labels [N], got "
                            f"{list(shape)} and {list(np.shape(labels))}")
    torch, ref = _backend(student_logits, labels)
    if torch is not None:
        s = _to(torch, ref, student_logits) if _is_torch(student_logits) else \
            torch.as_tensor(np.asarray(student_logits), dtype=torch.float32)
        y = labels if _is_torch(labels) else torch.as_tensor(np.asarray(labels), device=s.device)
        return torch.nn.functional.cross_entropy(s, y.long())
    s = np.asarray(student_logits, np.float64)
    y = np.asarray(labels).astype(np.int64)
    return float(-_log_softmax(s, -1)[np.arange(len(y)), y].mean())


def distillation_loss(student_logits, teacher_logits, *, labels=None, temperature: float = 4.0,
                      alpha: float = 0.9, features=None, channel_maps=None,
                      feature_weight: float = 1.0):
    """alpha * kl_loss + (1 - alpha) * cross_entropy(labels) + feature_weight * sum of
    feature_mse over `features` ({name: (student feature, teacher feature)}), each with
    channel_maps[name] when given. Without labels the KL term has weight 1."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 <= alpha <= 1:
        raise ArgumentError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if isinstance(feature_weight, bool) or not isinstance(feature_weight, (int, float, np.floating)) \
            or not feature_weight >= 0:
        raise ArgumentError(f"feature_weight must be a number >= 0, got {feature_weight!r}")
    channel_maps = dict(channel_maps or {})
    features = dict(features or {})
    unknown = sorted(set(channel_maps) - set(features))
    if unknown:
        raise ArgumentError(f"channel_maps names {unknown[0]!r}, which is not in features "
                            f"({', '.join(features) or 'none'})")
    loss = kl_loss(student_logits, teacher_logits, temperature)
    if labels is not None:
        loss = alpha * loss + (1 - alpha) * cross_entropy(student_logits, labels)
    for name, pair in features.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ArgumentError(f"features[{name!r}] must be a (student, teacher) pair")
        loss = loss + feature_weight * feature_mse(pair[0], pair[1], channel_maps.get(name))
    return loss


def channel_map_of(model, name):
    """The teacher channels kept in value `name` of a channel-pruned `model` (a list of
    indices), from what quantize.prune_channels records in the metadata, or None when the
    channels of `name` were not pruned (the student feature then has all of them)."""
    import json

    extra = getattr(model, "graph", model).metadata.extra
    raw = extra.get("compression.channel_map")
    if raw is None:
        return None
    maps = json.loads(raw)
    kept = maps.get(name)
    return None if kept is None else [int(i) for i in kept]
