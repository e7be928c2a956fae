"""Teacher outputs and intermediate features from a `.mob`, streamed batch by batch.

    for feeds, t in distill.teacher_outputs("teacher.mob", x_train, features=["block3"]):
        ...   # feeds: {input: batch}, t: {"logits": array, "block3": array}

What and why: distillation needs the teacher's logits (and some of its feature maps)
for every training batch. They come from the C++ runtime (the deployed model, not a
re-implementation), and intermediate tensors from its observer, which copies only
the tensors asked for.

Algorithm:
1. Resolve the model (a Model, or the path of a .mob / source model) and check every
   requested output and feature name against the graph's values (one-line error naming
   the file and the unknown name, with the closest names).
2. Read samples with quantize/data.py's loader (a folder of .npy/.npz/images, an array,
   an iterable of feed dicts), concatenate `batch_size` samples along the batch axis
   (or keep each item as given with batch_size=None).
3. Run each batch once in one Interpreter; the observer copies the feature tensors as
   their operator finishes; yield (feeds, {name: array}) and keep nothing: memory is
   bounded by one batch whatever the length of the stream.
"""
from __future__ import annotations

import difflib
import os
from typing import Iterator, Optional

import numpy as np

from mobconv.errors import ArgumentError


def as_model(model, func: str):
    """`model` as a Model (a Model, or the path of a .mob / source model); one-line
    ArgumentError naming `func` otherwise."""
    from mobconv.api import Model

    from ..api import as_model as load

    if isinstance(model, (str, bytes, os.PathLike)):
        if not os.path.exists(os.fsdecode(model)):
            raise ArgumentError(f"{func}(): {os.fsdecode(model)}: no such file")
    elif not isinstance(model, Model):
        raise ArgumentError(f"{func}(): expected a mobconv.Model or the path of a .mob file, got "
                            f"a {type(model).__name__}")
    return load(model)


def _label(model) -> str:
    return model.source or "the teacher model"


def check_names(model, names, what: str) -> list:
    """`names` (a str or a sequence of str) as a list, each a non-constant value of the
    model's graph; ArgumentError naming the file, the name and the closest names otherwise."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    names = list(names)
    graph = model.graph
    known = [n for n, v in graph.values.items() if v.data is None]
    for name in names:
        if not isinstance(name, str):
            raise ArgumentError(f"{_label(model)}: {what} names must be strings, got {name!r}")
        value = graph.values.get(name)
        if value is not None and value.data is not None:
            raise ArgumentError(f"{_label(model)}: {what} {name!r} is a constant (a weight), not "
                                "a tensor computed by the graph")
        if value is None:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" (closest: {', '.join(close)})" if close else ""
            raise ArgumentError(f"{_label(model)}: {what} {name!r} is not a value of the graph"
                                f"{hint}; `mobconv info --json` lists the node outputs")
    return names


def _batched_inputs(model) -> dict:
    """input name -> True when its first dim is a batch axis samples can be stacked on."""
    out = {}
    for spec in model.inputs:
        shape = tuple(spec.shape or ())
        out[spec.name] = len(shape) >= 1 and (not isinstance(shape[0], int) or shape[0] < 0)
    return out


def _batches(model, data, batch_size: Optional[int]) -> Iterator[dict]:
    """Feed dicts of up to `batch_size` samples (each item as given when batch_size is None)."""
    from ..data import calibration_feeds

    samples = calibration_feeds(data, model)
    if batch_size is None:
        yield from samples
        return
    fixed = [name for name, ok in _batched_inputs(model).items() if not ok]
    if fixed:
        if batch_size != 1:
            shape = next(s.shape for s in model.inputs if s.name == fixed[0])
            raise ArgumentError(f"{_label(model)}: input {fixed[0]!r} has a fixed first dim "
                                f"(shape {list(shape)}): samples cannot be stacked; use "
                                "batch_size=1 or None")
        yield from samples
        return
    pending: list = []  # feed dicts of one or more rows, in order
    rows = 0
    for feeds in samples:
        n = int(np.shape(next(iter(feeds.values())))[0])
        pending.append(feeds)
        rows += n
        while rows >= batch_size:
            batch, pending, rows = _take(pending, batch_size, rows)
            yield batch
    if rows:
        yield {name: np.concatenate([p[name] for p in pending]) for name in pending[0]}


def _take(pending: list, count: int, rows: int):
    """(first `count` rows of `pending` as one feed dict, the rest, rows left)."""
    parts, taken, rest = [], 0, []
    for i, feeds in enumerate(pending):
        n = int(np.shape(next(iter(feeds.values())))[0])
        if taken + n <= count:
            parts.append(feeds)
            taken += n
            if taken == count:
                rest = pending[i + 1:]
                break
            continue
        k = count - taken
        parts.append({name: a[:k] for name, a in feeds.items()})
        rest = [{name: a[k:] for name, a in feeds.items()}] + pending[i + 1:]
        break
    batch = {name: np.ascontiguousarray(np.concatenate([p[name] for p in parts]))
             for name in parts[0]}
    return batch, rest, rows - count


def teacher_outputs(teacher, data, *, outputs=None, features=(), batch_size: Optional[int] = 32,
                    threads: int = 1) -> Iterator[tuple]:
    """Stream the teacher's outputs and features over `data`, one batch at a time.

    teacher: a `.mob` path or a `mobconv.Model`. data: what quantize/data.py accepts
    (a folder or file of .npy/.npz/images, an array of samples, an iterable of feed
    dicts). outputs: graph output names to return (default: all). features: value
    names of intermediate tensors (the node outputs `mobconv info` lists).
    batch_size: samples per run (None: each item of `data` as given, e.g. the batches
    of your own loader). Yields (feeds, {name: array}) per batch; the arrays are
    copies the caller owns. Names are checked before any work (ArgumentError).
    """
    from mobconv.runtime import Interpreter

    model = as_model(teacher, "teacher_outputs")
    graph = model.graph
    out_names = [s.name for s in model.outputs]
    if outputs is not None:
        outputs = check_names(model, outputs, "output")
        extra = [n for n in outputs if n not in out_names]
        if extra:
            raise ArgumentError(f"{_label(model)}: {extra[0]!r} is not a graph output (outputs: "
                                f"{', '.join(out_names)}); ask for it in features=")
    wanted_outputs = out_names if outputs is None else outputs
    features = check_names(model, features, "feature")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ArgumentError(f"teacher_outputs(): batch_size must be a positive integer or None, "
                            f"got {batch_size!r}")
    observed = set(features) - set(graph.inputs) - set(out_names)
    is_file = isinstance(teacher, (str, bytes, os.PathLike)) and os.fsdecode(teacher).endswith(".mob")
    interpreter = Interpreter(os.fsdecode(teacher) if is_file else model.to_bytes(), threads=threads,
                              profile=False, name=_label(model))
    return _stream(interpreter, model, data, batch_size, wanted_outputs, features, observed)


def _stream(interpreter, model, data, batch_size, wanted_outputs, features, observed):
    with interpreter:
        for feeds in _batches(model, data, batch_size):
            seen: dict = {}

            def keep(_index, _name, _type, tensors):
                seen.update(tensors)

            if observed:
                results = interpreter.run(feeds, observer=keep, observe=observed)
            else:
                results = interpreter.run(feeds)
            result = {name: results[name] for name in wanted_outputs}
            for name in features:
                if name in feeds:
                    result[name] = np.array(feeds[name])
                elif name in results:
                    result[name] = results[name]
                elif name in seen:
                    result[name] = seen[name]
                else:
                    raise ArgumentError(f"{_label(model)}: feature {name!r} was not produced by "
                                        "the runtime (folded into a constant at load?)")
            yield feeds, result
