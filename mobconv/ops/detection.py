"""SSD detection ops with Caffe semantics: PriorBox and DetectionOutput.

These are not ONNX ops; they exist so Caffe SSD models (and OpenCV-style
SSD graphs) convert as-is. The attributes mirror Caffe's PriorBoxParameter
and DetectionOutputParameter (nms_param flattened into nms_threshold/top_k/eta).

PriorBox: for every feature-map cell (row-major), for every min_size: the
square min_size box, then (if max_sizes) the sqrt(min*max) square, then one
box per aspect ratio != 1. Boxes are [xmin, ymin, xmax, ymax] normalized by
the image size; channel 1 of the output holds the variances.

DetectionOutput: decode every prior's location offsets (code_type), then per
image and per non-background class: keep scores > confidence_threshold, take
the top_k best, greedy NMS (adaptive with eta < 1); then keep the keep_top_k
best over all classes. Output rows [image_id, label, score, xmin, ymin, xmax, ymax].
"""
from __future__ import annotations

import numpy as np

from .registry import Attr, AttrKind, InferContext, op


def _sym(d) -> bool:
    return not isinstance(d, (int, np.integer))


def _aspect_ratios(aspect_ratios, flip):
    ars = [1.0]
    for ar in aspect_ratios:
        if any(abs(ar - a) < 1e-6 for a in ars):
            continue
        ars.append(float(ar))
        if flip:
            ars.append(1.0 / ar)
    return ars


def _num_priors(attrs):
    return len(_aspect_ratios(attrs["aspect_ratios"], attrs["flip"])) * len(attrs["min_sizes"]) + len(
        attrs["max_sizes"])


_PRIOR_ATTRS = (
    Attr("min_sizes", AttrKind.FLOATS),
    Attr("max_sizes", AttrKind.FLOATS, []),
    Attr("aspect_ratios", AttrKind.FLOATS, []),
    Attr("flip", AttrKind.INT, 1),
    Attr("clip", AttrKind.INT, 0),
    Attr("variance", AttrKind.FLOATS, [0.1]),
    Attr("img_size", AttrKind.INT, 0),
    Attr("img_h", AttrKind.INT, 0),
    Attr("img_w", AttrKind.INT, 0),
    Attr("step", AttrKind.FLOAT, 0.0),
    Attr("step_h", AttrKind.FLOAT, 0.0),
    Attr("step_w", AttrKind.FLOAT, 0.0),
    Attr("offset", AttrKind.FLOAT, 0.5),
)


def _infer_prior_box(ctx: InferContext):
    a = ctx.attrs
    f, img = ctx.shape(0), ctx.shape(1)
    if len(f) != 4 or len(img) != 4:
        raise ctx.error(f"inputs must be 4-D (feature map, image), got {tuple(f)} and {tuple(img)}")
    if not a["min_sizes"] or any(s <= 0 for s in a["min_sizes"]):
        raise ctx.error(f"min_sizes must be non-empty and positive, got {a['min_sizes']}")
    if a["max_sizes"] and len(a["max_sizes"]) != len(a["min_sizes"]):
        raise ctx.error(f"max_sizes ({len(a['max_sizes'])}) must pair with min_sizes ({len(a['min_sizes'])})")
    if any(mx <= mn for mn, mx in zip(a["min_sizes"], a["max_sizes"])):
        raise ctx.error(f"each max_size must exceed its min_size, got {a['min_sizes']} / {a['max_sizes']}")
    if len(a["variance"]) not in (1, 4):
        raise ctx.error(f"variance must have 1 or 4 values, got {a['variance']}")
    h, w = f[2], f[3]
    for name, fixed, d in (("height", a["img_h"] or a["img_size"], img[2]),
                           ("width", a["img_w"] or a["img_size"], img[3])):
        if not fixed and d == 0 and h != 0 and w != 0:
            raise ctx.error(f"image {name} is 0 (image {tuple(img)}): it normalizes the boxes, set it >= 1")
    n = _num_priors(a) * 4
    size = h * w * n if not (_sym(h) or _sym(w)) else f"{h}*{w}*{n}"
    return [("float32", (1, 2, size))]


@op("PriorBox", inputs=["feature", "image"], outputs=["priors"], attrs=_PRIOR_ATTRS, infer=_infer_prior_box)
def prior_box(feature, image, *, min_sizes, max_sizes, aspect_ratios, flip, clip, variance,
              img_size, img_h, img_w, step, step_h, step_w, offset):
    """Caffe PriorBox. Inputs: feature map (N, C, H, W) and image (N, C, IH, IW);
    only their spatial sizes are used. Output float32 (1, 2, H*W*num_priors*4).

    Attributes (Caffe defaults): min_sizes (required), max_sizes (one per
    min_size or none), aspect_ratios (1 is implicit; duplicates ignored),
    flip (also add 1/ar, default 1), clip (clamp to [0, 1], default 0),
    variance (1 or 4 values, default [0.1]), img_size or img_h/img_w (0: the
    image input's size), step or step_h/step_w (0: image size / feature size),
    offset (cell center offset, default 0.5).
    num_priors = len(aspect_ratios incl. 1 and flips) * len(min_sizes) + len(max_sizes).
    """
    lh, lw = feature.shape[2], feature.shape[3]
    if lh == 0 or lw == 0:  # an empty feature map has no cells, so no priors
        return np.zeros((1, 2, 0), np.float32)
    ih = img_h or img_size or image.shape[2]
    iw = img_w or img_size or image.shape[3]
    sh = step_h or step or ih / lh
    sw = step_w or step or iw / lw
    sizes = []  # (box_w, box_h) per prior of one cell, in Caffe's order
    for i, mn in enumerate(min_sizes):
        sizes.append((mn, mn))
        if max_sizes:
            s = np.sqrt(mn * max_sizes[i])
            sizes.append((s, s))
        for ar in _aspect_ratios(aspect_ratios, flip):
            if abs(ar - 1.0) < 1e-6:
                continue
            sizes.append((mn * np.sqrt(ar), mn / np.sqrt(ar)))
    # Like Caffe: centers and box sizes in float32, the normalization in double.
    bw = np.array([s[0] for s in sizes], dtype=np.float32).astype(np.float64)
    bh = np.array([s[1] for s in sizes], dtype=np.float32).astype(np.float64)
    cy = ((np.arange(lh, dtype=np.float32) + np.float32(offset)) * np.float32(sh)).astype(np.float64)
    cx = ((np.arange(lw, dtype=np.float32) + np.float32(offset)) * np.float32(sw)).astype(np.float64)
    cy, cx = cy[:, None, None], cx[None, :, None]
    shape = (lh, lw, len(sizes))
    boxes = np.stack([
        np.broadcast_to((cx - bw / 2) / iw, shape),
        np.broadcast_to((cy - bh / 2) / ih, shape),
        np.broadcast_to((cx + bw / 2) / iw, shape),
        np.broadcast_to((cy + bh / 2) / ih, shape),
    ], axis=-1).astype(np.float32).ravel()
    if clip:
        boxes = np.clip(boxes, 0, 1)
    var = np.array(variance if len(variance) == 4 else variance * 4, dtype=np.float32)
    variances = np.tile(var, boxes.size // 4)
    return np.stack([boxes, variances])[None]


CODE_TYPES = ("CORNER", "CENTER_SIZE", "CORNER_SIZE")

_DETECTION_ATTRS = (
    Attr("num_classes", AttrKind.INT),
    Attr("share_location", AttrKind.INT, 1),
    Attr("background_label_id", AttrKind.INT, 0),
    Attr("nms_threshold", AttrKind.FLOAT, 0.3),
    Attr("top_k", AttrKind.INT, -1),
    Attr("keep_top_k", AttrKind.INT, -1),
    Attr("confidence_threshold", AttrKind.FLOAT, -3.4028234663852886e38),
    Attr("code_type", AttrKind.STRING, "CORNER"),
    Attr("variance_encoded_in_target", AttrKind.INT, 0),
    Attr("eta", AttrKind.FLOAT, 1.0),
)


def decode_boxes(loc, priors, variances, code_type, variance_encoded):
    """Decode (P, 4) offsets against (P, 4) corner priors (Caffe DecodeBBox, no clipping)."""
    v = np.ones_like(variances) if variance_encoded else variances
    pw = priors[:, 2] - priors[:, 0]
    ph = priors[:, 3] - priors[:, 1]
    if code_type == "CORNER":
        return priors + v * loc
    if code_type == "CORNER_SIZE":
        size = np.stack([pw, ph, pw, ph], axis=1)
        return priors + v * loc * size
    if code_type == "CENTER_SIZE":
        pcx = (priors[:, 0] + priors[:, 2]) / 2
        pcy = (priors[:, 1] + priors[:, 3]) / 2
        cx = v[:, 0] * loc[:, 0] * pw + pcx
        cy = v[:, 1] * loc[:, 1] * ph + pcy
        w = np.exp(v[:, 2] * loc[:, 2]) * pw
        h = np.exp(v[:, 3] * loc[:, 3]) * ph
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    raise ValueError(f"DetectionOutput: unknown code_type {code_type!r} (known: {', '.join(CODE_TYPES)})")


def _iou(box, boxes):
    """Jaccard overlap of one normalized box with many (Caffe JaccardOverlap)."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    disjoint = (boxes[:, 0] > box[2]) | (boxes[:, 2] < box[0]) | (boxes[:, 1] > box[3]) | (boxes[:, 3] < box[1])
    inter = (ix1 - ix0) * (iy1 - iy0)

    def area(b):
        valid = (b[..., 2] >= b[..., 0]) & (b[..., 3] >= b[..., 1])
        return np.where(valid, (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]), 0)

    union = area(box) + area(boxes) - inter
    return np.where(disjoint, 0.0, inter / np.where(union > 0, union, 1))


def nms(boxes, scores, score_threshold, nms_threshold, eta, top_k):
    """Caffe ApplyNMSFast: indices kept, best first."""
    cand = np.nonzero(scores > score_threshold)[0]
    cand = cand[np.argsort(-scores[cand], kind="stable")]
    if top_k > -1:
        cand = cand[:top_k]
    kept = []
    threshold = nms_threshold
    for idx in cand:
        keep = not kept or bool(np.all(_iou(boxes[idx], boxes[kept]) <= threshold))
        if keep:
            kept.append(int(idx))
            if eta < 1 and threshold > 0.5:
                threshold *= eta
    return kept


def _infer_detection_output(ctx: InferContext):
    a = ctx.attrs
    loc, conf, prior = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if a["num_classes"] < 1 or a["code_type"] not in CODE_TYPES:
        raise ctx.error(f"num_classes must be >= 1 and code_type one of {', '.join(CODE_TYPES)}")
    if len(prior) != 3 or (not _sym(prior[1]) and prior[1] != 2) or prior[0] == 0 \
            or (not _sym(prior[2]) and prior[2] % 4):
        raise ctx.error(f"prior must have shape (1, 2, P*4), got {tuple(prior)}")
    if len(loc) < 1 or len(conf) < 1 or (not _sym(loc[0]) and not _sym(conf[0]) and loc[0] != conf[0]):
        raise ctx.error(f"loc {tuple(loc)} and conf {tuple(conf)} must have the same batch size")
    p4 = prior[2]
    if not _sym(p4):
        num_priors = p4 // 4
        nlc = 1 if a["share_location"] else a["num_classes"]
        per_loc = int(np.prod([d for d in loc[1:]])) if not any(_sym(d) for d in loc[1:]) else None
        per_conf = int(np.prod([d for d in conf[1:]])) if not any(_sym(d) for d in conf[1:]) else None
        if per_loc is not None and per_loc != num_priors * nlc * 4:
            raise ctx.error(f"loc {tuple(loc)} must hold {num_priors} priors x {nlc} x 4 values per image")
        if per_conf is not None and per_conf != num_priors * a["num_classes"]:
            raise ctx.error(f"conf {tuple(conf)} must hold {num_priors} priors x {a['num_classes']} classes")
    return [("float32", (1, 1, f"{ctx.node.name}_detections", 7))]


@op("DetectionOutput", inputs=["loc", "conf", "prior"], outputs=["detections"], attrs=_DETECTION_ATTRS,
    infer=_infer_detection_output)
def detection_output(loc, conf, prior, *, num_classes, share_location, background_label_id,
                     nms_threshold, top_k, keep_top_k, confidence_threshold, code_type,
                     variance_encoded_in_target, eta):
    """Caffe DetectionOutput (inference). Inputs: loc (N, P*L*4) with L = 1 if
    share_location else num_classes (layout prior-major, then class, then 4
    coords), conf (N, P*num_classes) (probabilities, prior-major), prior
    (1, 2, P*4) from PriorBox (boxes, then variances; image 0's are used).
    Output float32 (1, 1, K, 7): rows [image_id, label, score, xmin, ymin, xmax,
    ymax] ordered by image, then label, then score (best first).

    Attributes (Caffe defaults): num_classes (required), share_location (1),
    background_label_id (0; -1 for none), nms_threshold (0.3), top_k (-1: all,
    per class before NMS), keep_top_k (-1: all, per image after NMS),
    confidence_threshold (-FLT_MAX), code_type CORNER | CENTER_SIZE |
    CORNER_SIZE (CORNER), variance_encoded_in_target (0), eta (1.0: plain NMS).

    With no detection at all, Caffe's output is one row per image
    [image_id, -1, -1, -1, -1, -1, -1], which is what this reference returns.
    (OpenCV 4.x instead returns zero rows; consumers should skip rows whose
    label is -1 or whose score is 0.) Ties in keep_top_k are broken by
    (label, NMS order), where Caffe's std::sort leaves them unspecified.
    """
    n = loc.shape[0]
    num_priors = prior.shape[-1] // 4
    nlc = 1 if share_location else num_classes
    locs = loc.reshape(n, num_priors, nlc, 4).astype(np.float32)
    confs = conf.reshape(n, num_priors, num_classes).astype(np.float32)
    pri = prior.reshape(prior.shape[0], 2, num_priors, 4)[0].astype(np.float32)  # not -1: P may be 0
    rows = []
    for i in range(n):
        decoded = [decode_boxes(locs[i, :, c], pri[0], pri[1], code_type, variance_encoded_in_target)
                   for c in range(nlc)]
        picks = []  # (label, index) in label order, NMS order within a label
        for c in range(num_classes):
            if c == background_label_id:
                continue
            boxes = decoded[0 if share_location else c]
            kept = nms(boxes, confs[i, :, c], confidence_threshold, nms_threshold, eta, top_k)
            picks.extend((c, k) for k in kept)
        if keep_top_k > -1 and len(picks) > keep_top_k:
            scores = np.array([confs[i, k, c] for c, k in picks])
            best = np.argsort(-scores, kind="stable")[:keep_top_k]
            chosen = [picks[j] for j in best]
            by_label = {}
            for c, k in chosen:
                by_label.setdefault(c, []).append(k)
            picks = [(c, k) for c in sorted(by_label) for k in by_label[c]]
        for c, k in picks:
            box = decoded[0 if share_location else c][k]
            rows.append([i, c, confs[i, k, c], *box])
    if not rows:
        out = np.full((n, 7), -1, dtype=np.float32)
        out[:, 0] = np.arange(n)
        return out[None, None]
    return np.array(rows, dtype=np.float32)[None, None]
