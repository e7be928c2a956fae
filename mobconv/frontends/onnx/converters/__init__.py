"""ONNX op converters: one small function per ONNX op (or family), one registry.

    @converter("Upsample", ir=("Resize",))
    def upsample(cx): ...

`ir` names the IR ops the converter emits; an ONNX op counts as supported only
when it has a converter *and* every IR op it needs is in the op registry
(`mobconv.ops`), so the frontend never claims more than the references cover.
Every module of this package is imported on first use.
"""
from __future__ import annotations

import importlib
import pkgutil

from ...common import ConverterRegistry

REGISTRY = ConverterRegistry("ONNX")
IR_OPS: dict = {}  # ONNX op type -> tuple of IR ops its converter emits

_loaded = False


def converter(*op_types: str, ir=None):
    """Register a converter; `ir` defaults to the ONNX op type itself (pass-through)."""

    def wrap(fn):
        for t in op_types:
            IR_OPS[t] = tuple(ir) if ir is not None else (t,)
        return REGISTRY.register(*op_types)(fn)

    return wrap


def load_converters() -> ConverterRegistry:
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return REGISTRY


def is_supported(op_type: str) -> bool:
    """True when `op_type` (default domain) has a converter and all its IR ops exist."""
    from ....ops import load_all

    load_converters()
    ops = load_all()
    return op_type in REGISTRY and all(o in ops for o in IR_OPS.get(op_type, ()))


def claimed_ops() -> list:
    """ONNX op types the frontend converts today (converter present, IR ops present)."""
    load_converters()
    return sorted(t for t in REGISTRY.supported() if is_supported(t))
