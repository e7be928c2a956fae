"""NonMaxSuppression (ONNX opset 11): greedy per-class box selection.

The number of selected boxes depends on the data, so the shape function gives
the output (num_selected, 3) a fresh symbolic first dim ("<node>_selected").
The C++ runtime plans the output for its upper bound (batches x classes x
min(max_output_boxes_per_class, boxes)) and reports the real row count, as
for DetectionOutput.
"""
import numpy as np

from .registry import Attr, AttrKind, op
from .shape_ops import fmt_shape


def _nms_infer(ctx):
    boxes, scores = tuple(ctx.shape(0)), tuple(ctx.shape(1))
    if ctx.attrs["center_point_box"] not in (0, 1):
        raise ctx.error(f"center_point_box {ctx.attrs['center_point_box']} must be 0 or 1")
    if len(boxes) != 3 or len(scores) != 3 or (isinstance(boxes[2], int) and boxes[2] != 4):
        raise ctx.error(f"boxes {fmt_shape(boxes)} and scores {fmt_shape(scores)} must be "
                        "(N, B, 4) and (N, C, B)")
    for a, b in ((boxes[0], scores[0]), (boxes[1], scores[2])):
        if isinstance(a, int) and isinstance(b, int) and a != b:
            raise ctx.error(f"boxes {fmt_shape(boxes)} and scores {fmt_shape(scores)} disagree "
                            "on N or B")
    return [("int64", (f"{ctx.node.name}_selected", 3))]


def _scalar(v, default):
    return default if v is None or np.size(v) == 0 else np.asarray(v).reshape(-1)[0]


def _suppress(b1, b2, center, iou_threshold):
    """True when box b2 (already selected) suppresses b1: IoU > iou_threshold."""
    if center:
        x1 = (b1[0] - b1[2] / 2, b1[0] + b1[2] / 2, b1[1] - b1[3] / 2, b1[1] + b1[3] / 2)
        x2 = (b2[0] - b2[2] / 2, b2[0] + b2[2] / 2, b2[1] - b2[3] / 2, b2[1] + b2[3] / 2)
    else:  # [y1, x1, y2, x2], corners in any order
        x1 = (min(b1[1], b1[3]), max(b1[1], b1[3]), min(b1[0], b1[2]), max(b1[0], b1[2]))
        x2 = (min(b2[1], b2[3]), max(b2[1], b2[3]), min(b2[0], b2[2]), max(b2[0], b2[2]))
    ix0, ix1 = max(x1[0], x2[0]), min(x1[1], x2[1])
    iy0, iy1 = max(x1[2], x2[2]), min(x1[3], x2[3])
    if ix1 <= ix0 or iy1 <= iy0:
        return False
    inter = (ix1 - ix0) * (iy1 - iy0)
    a1 = (x1[1] - x1[0]) * (x1[3] - x1[2])
    a2 = (x2[1] - x2[0]) * (x2[3] - x2[2])
    union = a1 + a2 - inter
    if inter <= 0 or a1 <= 0 or a2 <= 0 or union <= 0:
        return False
    return inter / union > iou_threshold


@op("NonMaxSuppression",
    inputs=["boxes", "scores", "max_output_boxes_per_class?", "iou_threshold?", "score_threshold?"],
    outputs=["selected_indices"], attrs=[Attr("center_point_box", AttrKind.INT, 0)], infer=_nms_infer)
def non_max_suppression(boxes, scores, max_output_boxes_per_class=None, iou_threshold=None,
                        score_threshold=None, center_point_box=0):
    """Rows [batch, class, box] (int64), per batch then class, each class best first.

    Per (batch, class): candidates are the boxes with score > score_threshold (all
    when absent), by descending score (ties: lower box index first); a candidate
    is kept unless its IoU with an already kept box exceeds iou_threshold
    (default 0), up to max_output_boxes_per_class (default 0: none) boxes.
    Boxes are [y1, x1, y2, x2] (any corner order) or, with center_point_box=1,
    [x_center, y_center, width, height]. Arithmetic in float32.
    """
    max_out = max(int(_scalar(max_output_boxes_per_class, 0)), 0)
    iou = np.float32(_scalar(iou_threshold, 0.0))
    thr = None if score_threshold is None or np.size(score_threshold) == 0 else np.float32(
        _scalar(score_threshold, 0.0))
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    rows = []
    for n in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[n, c]
            cand = [b for b in range(boxes.shape[1]) if thr is None or s[b] > thr]
            cand.sort(key=lambda b: (-s[b], b))
            kept = []
            for b in cand:
                if len(kept) >= max_out:
                    break
                if not any(_suppress(boxes[n, b], boxes[n, k], center_point_box, iou) for k in kept):
                    kept.append(b)
                    rows.append((n, c, b))
    return np.array(rows, np.int64).reshape(-1, 3)
