"""TensorFlow StridedSlice -> IR Slice (+ Squeeze for shrink axes, Unsqueeze for new axes).

StridedSlice's sparse spec (begin/end/strides with five bit masks, as written
by Python's `x[1:, ..., tf.newaxis, 2]`) is expanded the way TensorFlow does
it (strided_slice_op.cc: BuildDenseSpec, then ValidateStridedSliceOp):

1. No ellipsis bit: an ellipsis is implied after the last spec entry.
2. Dense spec: the ellipsis expands to the input dims no entry names (full
   ranges); a new_axis entry consumes no input dim; every other entry names
   the next input dim, shrink entries marked. Bit precedence per entry:
   ellipsis, then new_axis, then the rest.
3. Per dense dim with a known size: shrink takes element `begin` (negative
   counts from the end; out of range is an error, masks are ignored);
   otherwise a masked begin/end is the full range in the stride's direction,
   and an unmasked one counts from the end when negative and is clamped to
   [0, dim] (stride > 0) or [-1, dim - 1] (stride < 0).
4. Output: the dense dims minus the shrink ones, with a 1 inserted at every
   new_axis entry.

The IR Slice gets the canonical bounds (a -1 end of a negative stride is
written as -dim-1, which Slice clamps to "through element 0"). A symbolic dim
(the batch) keeps TensorFlow's raw values, masks become +-INT64_MAX: Slice's
clamping matches TensorFlow's except for a begin before -dim with a negative
stride (empty in TensorFlow, not in Slice). An end computed from that same dim
at run time (`x[:, :tf.shape(x)[1]]`, a symbol here) means "to the end"; other
run-time bounds are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ._helpers import INT64_MAX, INT64_MIN


class SpecError(ValueError):
    """The slice spec is invalid for this input (TensorFlow refuses it too)."""


@dataclass
class SlicePlan:
    starts: list = field(default_factory=list)  # per sliced input axis
    ends: list = field(default_factory=list)
    axes: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    shrink: list = field(default_factory=list)  # dense (input) axes removed after slicing
    new_axes: list = field(default_factory=list)  # output axes of the inserted 1s
    empty: bool = False  # some dim is known to come out empty


def _bits(mask: int, i: int) -> bool:
    return bool((mask >> i) & 1)


def plan_strided_slice(shape, begin, end, strides, begin_mask=0, end_mask=0, ellipsis_mask=0,
                       new_axis_mask=0, shrink_axis_mask=0) -> SlicePlan:
    """The IR form of one StridedSlice on an input of `shape` (ints or symbol strings)."""
    n = len(begin)
    if not len(end) == len(strides) == n:
        raise SpecError(f"begin, end and strides must have the same length (got {len(begin)}, "
                        f"{len(end)}, {len(strides)})")
    ellipses = [i for i in range(n) if _bits(ellipsis_mask, i)]
    if len(ellipses) > 1:
        raise SpecError(f"ellipsis_mask {ellipsis_mask} marks more than one ellipsis")
    if not ellipses:
        ellipses = [n]
        n += 1
    ell = ellipses[0]
    new_after = sum(1 for i in range(ell + 1, n) if _bits(new_axis_mask, i))
    rank = len(shape)

    # 2. dense spec: (begin, end, stride, begin masked, end masked, shrink) per input dim;
    # gather: output order, an input dim index or "new"
    dense, gather = [], []
    for i in range(n):
        if i == ell:
            stop = min(rank - (n - i) + 1 + new_after, rank)
            while len(dense) < stop:
                gather.append(len(dense))
                dense.append((0, 0, 1, True, True, False))
        elif _bits(new_axis_mask, i):
            gather.append("new")
        else:
            if len(dense) >= rank:
                raise SpecError(f"the spec indexes dim {len(dense)} but the input has rank {rank}")
            shrink = _bits(shrink_axis_mask, i)
            if not shrink:
                gather.append(len(dense))
            dense.append((_bound(begin[i]), _bound(end[i]), int(strides[i]),
                          _bits(begin_mask, i), _bits(end_mask, i), shrink))
    if len(dense) < rank:  # the ellipsis stop above can leave the tail unnamed only if invalid
        raise SpecError(f"the spec covers {len(dense)} dims of an input of rank {rank}")

    plan = SlicePlan()
    for axis, ((b, e, s, bm, em, shrink), dim) in enumerate(zip(dense, shape)):
        if s == 0:
            raise SpecError(f"strides[{axis}] must be non-zero")
        # a bound computed at run time (a dim symbol) is only understood as "to the end"
        # of that same dim
        if isinstance(e, str) and not em:
            if not (e == dim and s > 0 and not shrink):
                raise SpecError(f"the end of dim {axis} ({e}) is only known at run time")
            e, em = 0, True
        if isinstance(b, str) and not bm:
            raise SpecError(f"the begin of dim {axis} ({b}) is only known at run time")
        if shrink:
            if s <= 0:
                raise SpecError(f"a shrink axis (dim {axis}) needs a positive stride, got {s}")
            plan.shrink.append(axis)
            if isinstance(dim, str):
                start, stop = b, (b + 1 if b + 1 != 0 else INT64_MAX)
            else:
                start = b + dim if b < 0 else b
                if not 0 <= start < dim:
                    raise SpecError(f"index {b} is out of bounds for dim {axis} of size {dim}")
                stop = start + 1
            _add(plan, axis, start, stop, 1, dim)
            continue
        if isinstance(dim, str):
            start = (0 if s > 0 else INT64_MAX) if bm else b
            stop = (INT64_MAX if s > 0 else INT64_MIN) if em else e
            if not (start == 0 and stop == INT64_MAX and s == 1):
                _add(plan, axis, start, stop, s, dim)
            continue
        lo, hi = (0, dim) if s > 0 else (-1, dim - 1)

        def canonical(x, masked, c):
            if masked:
                return (lo, hi)[c] if s > 0 else (lo, hi)[1 - c]
            x = x + dim if x < 0 else x
            return min(max(x, lo), hi)

        start, stop = canonical(b, bm, 0), canonical(e, em, 1)
        length = stop - start
        size = 0 if length == 0 or (length < 0) != (s < 0) else -(-length // s)  # ceil
        if size == 0:
            plan.empty = True
            _add(plan, axis, 0, 0, 1, dim)
        elif not (s == 1 and start == 0 and stop == dim):
            _add(plan, axis, start, -dim - 1 if stop == -1 else stop, s, dim)
    plan.new_axes = [k for k, g in enumerate(gather) if g == "new"]
    return plan


def _bound(v):
    return v if isinstance(v, str) else int(v)


def _add(plan, axis, start, stop, step, dim):
    plan.axes.append(axis)
    plan.starts.append(int(start))
    plan.ends.append(int(stop))
    plan.steps.append(int(step))
