"""The execution backends of `Model.run`: the numpy reference and the C++ runtime.

`BACKENDS` maps a name to ``fn(model, feeds, **options) -> {output: array}``;
`backend="auto"` takes the first of `AUTO_BACKENDS` whose probe says it is
usable. The "runtime" backend expects `mobconv.runtime` to provide
`Interpreter` and `available() -> bool`. `mobconv.api` re-exports all of it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Optional

from .errors import MobconvError, UsageError

if TYPE_CHECKING:
    from .api import Model


def _run_reference(model: "Model", feeds: dict) -> dict:
    from .reference.interpreter import run

    return run(model.graph, feeds, source=model.source)


def _run_runtime(model: "Model", feeds: dict, threads: int = 1, isa: Optional[str] = None) -> dict:
    try:
        runtime = importlib.import_module("mobconv.runtime")
    except ImportError as exc:
        raise MobconvError(f"backend 'runtime' is not available: {exc}") from exc
    if not runtime.available():
        raise MobconvError("backend 'runtime' is not available: libmobrt.so was not found "
                           "(build it with `pip install -e .`, or set MOBCONV_RUNTIME_LIB)")
    # A model loaded from a .mob file runs from that file (mmap, zero copy);
    # a converted one from its serialized bytes.
    source = model.source if model.source and model.source.endswith(".mob") else model.to_bytes()
    with runtime.Interpreter(source, threads=threads, isa=isa, profile=False, name=model.source) as interpreter:
        return interpreter.run(feeds)


def _runtime_available() -> bool:
    try:
        runtime = importlib.import_module("mobconv.runtime")
    except ImportError:
        return False
    return runtime.available()


def _runtime_lacks_an_op(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 3  # MOBRT_UNSUPPORTED from mobconv.runtime


BACKENDS: dict = {"reference": _run_reference, "runtime": _run_runtime}
# backend="auto" takes the first of these whose probe says it is usable: the C++
# runtime when libmobrt is built, else the numpy reference.
AUTO_BACKENDS: list = [("runtime", _runtime_available), ("reference", lambda: True)]


def resolve_backend(backend: str) -> str:
    if backend == "auto":
        for name, usable in AUTO_BACKENDS:
            if usable():
                return name
        return "reference"
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (known: auto, {', '.join(BACKENDS)})")
    return backend
