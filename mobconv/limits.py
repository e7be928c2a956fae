"""Size limits every converted model must respect, because the C++ runtime does.

A tensor the runtime would refuse at load or prepare time is refused at
conversion time instead, with a message naming the tensor and node, so a
converter never writes a file the runtime cannot run (`--input-shape
x=1099511627776,3,16,16`, Caffe `pad: 1000000000`, ...).

The C++ twins of these constants:
- MAX_TENSOR_BYTES: `mobrt::max_tensor_bytes()` in runtime/src/core/infer.cpp
  (declared in runtime/src/core/infer.h); both read the environment variable
  MOBRT_MAX_TENSOR_BYTES and default to 4 GiB.
- MAX_RANK: `mobrt::kMaxRank` in runtime/src/core/kernel.h.

Symbolic dims (strings) are sized at run time, where the runtime checks them;
here they count as 1. The limits of the file format itself (each fixed dim at
most 2^40, the non-zero fixed dims' product at most 2^48: docs/format-rules.md
T3, T4) are checked by `mobconv.formats.reader.shape_problem`, the same function
the reader and writer use.
"""
from __future__ import annotations

import os

import numpy as np

from .errors import ShapeError

MAX_RANK = 8
DEFAULT_MAX_TENSOR_BYTES = 4 << 30
TENSOR_BYTES_ENV = "MOBRT_MAX_TENSOR_BYTES"

_ITEM_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1,
               "int16": 2, "int32": 4, "int64": 8, "bool": 1}


def max_tensor_bytes() -> int:
    """The runtime's limit on one tensor's bytes (MOBRT_MAX_TENSOR_BYTES, else 4 GiB)."""
    env = os.environ.get(TENSOR_BYTES_ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return DEFAULT_MAX_TENSOR_BYTES


def item_bytes(dtype) -> int:
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    return _ITEM_BYTES.get(name, 8)


def _gib(n: int) -> str:
    if n >= 1 << 100:
        return "over 2^100 bytes"
    return f"{n / (1 << 30):.3g} GiB"


def check_tensor(shape, dtype, what: str) -> None:
    """Raise ShapeError (message starts with `what`) unless a tensor of `shape` and
    `dtype` fits the runtime: rank <= MAX_RANK, every fixed dim a non-negative
    integer, and elements x item size <= max_tensor_bytes()."""
    if shape is None:
        return
    shape = tuple(shape)
    if len(shape) > MAX_RANK:
        raise ShapeError(f"{what}: rank {len(shape)} exceeds the runtime's maximum rank {MAX_RANK}")
    count = 1
    for i, d in enumerate(shape):
        if isinstance(d, str):
            continue
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
            raise ShapeError(f"{what}: dim {i} ({d!r}) of shape {_fmt(shape)} is not an integer")
        if d < 0:
            raise ShapeError(f"{what}: dim {i} ({d}) of shape {_fmt(shape)} is negative")
        count *= int(d)
    limit = max_tensor_bytes()
    size = count * item_bytes(dtype or "float32")
    if size > limit:
        raise ShapeError(
            f"{what}: shape {_fmt(shape)} ({dtype or 'float32'}) needs {_gib(size)}, over the "
            f"runtime's tensor limit of {_gib(limit)} ({TENSOR_BYTES_ENV}={limit})")
    from .formats.reader import shape_problem  # the file rules (docs/format-rules.md T3, T4)

    problem = shape_problem(shape)
    if problem:
        raise ShapeError(f"{what}: shape {_fmt(shape)}: {problem}")


def _fmt(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
