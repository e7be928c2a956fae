"""What every frontend shares: the converter registry and the attribute reader.

Each frontend keeps one `ConverterRegistry`; a converter is one small function
per source op (or op family), registered with `@registry.register("Conv")`.
Converters read source attributes through an `AttrReader`, which gives typed
values with defaults and errors in one format:

    cannot convert Caffe layer 'conv5' (type Convolution): kernel_size (0) must be positive

Unsupported ops are collected over the whole model first and reported at once
(`UnsupportedOpsError`), so the user sees every missing op in one message.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np

from ..errors import ConversionError, UnsupportedOpsError
from ..ops.registry import as_int64, as_number, as_sequence

_MISSING = object()


class ConverterRegistry:
    def __init__(self, framework: str, kind: str = "op"):
        self.framework = framework
        self.kind = kind  # "op" for ONNX/TF nodes, "layer" for Caffe
        self._converters: dict = {}

    def register(self, *op_types: str) -> Callable:
        """Decorator registering a converter for one or more source op types.

        Registering a type again replaces the previous converter (this is how
        users plug in converters for custom layers).
        """

        def wrap(fn):
            for t in op_types:
                self._converters[t] = fn
            return fn

        return wrap

    def get(self, op_type: str) -> Optional[Callable]:
        return self._converters.get(op_type)

    def __contains__(self, op_type: str) -> bool:
        return op_type in self._converters

    def supported(self) -> list:
        return sorted(self._converters)

    def check_supported(self, source: str, nodes: Iterable,
                        usable: Optional[Callable] = None) -> None:
        """Raise one UnsupportedOpsError listing every (op_type, node_name) not registered,
        grouped by type in the order met. `usable(op_type)`: a further condition a
        registered type must meet (ONNX: every IR op its converter emits exists)."""
        missing: dict = {}
        for op_type, name in nodes:
            if op_type not in self._converters or (usable is not None and not usable(op_type)):
                missing.setdefault(op_type, []).append(name)
        if missing:
            raise UnsupportedOpsError(source, missing, self.framework, self.kind)


class AttrReader:
    """Typed access to one source node's attributes, with errors that name the node."""

    def __init__(self, attrs: dict, where: str):
        self.attrs = attrs
        self.where = where  # e.g. "Caffe layer 'conv5' (type Convolution)"

    def error(self, rule: str) -> ConversionError:
        return ConversionError(f"cannot convert {self.where}: {rule}")

    def has(self, name: str) -> bool:
        return name in self.attrs and self.attrs[name] is not None

    def get(self, name: str, default=None):
        """The attribute's value as decoded by the frontend (untyped), or `default`."""
        return self.attrs[name] if self.has(name) else default

    def _get(self, name, default):
        if self.has(name):
            return self.attrs[name]
        if default is _MISSING:
            raise self.error(f"required attribute '{name}' is missing")
        return default

    # Typed reads are strict: a tensor or a list where a number is expected (ONNX
    # `transB` given as a tensor attribute), a fraction where an integer is expected,
    # or an integer beyond 64 bits is a ConversionError naming the node.
    def int(self, name: str, default=_MISSING) -> int:
        value = self._get(name, default)
        try:
            return as_int64(value)
        except (TypeError, ValueError, OverflowError):
            raise self.error(f"{name} ({_shown(value)}) must be an integer") from None

    def float(self, name: str, default=_MISSING) -> float:
        value = self._get(name, default)
        try:
            return as_number(value)
        except (TypeError, ValueError):
            raise self.error(f"{name} ({_shown(value)}) must be a number") from None

    def string(self, name: str, default=_MISSING) -> str:
        value = self._get(name, default)
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError:
                raise self.error(f"{name} ({_shown(value)}) is not UTF-8 text") from None
        if not isinstance(value, str):
            raise self.error(f"{name} ({_shown(value)}) must be a string")
        return value

    def ints(self, name: str, default=_MISSING) -> list:
        value = self._get(name, default)
        try:
            return [as_int64(v) for v in as_sequence(value)]
        except (TypeError, ValueError, OverflowError):
            raise self.error(f"{name} ({_shown(value)}) must be a list of integers") from None

    def floats(self, name: str, default=_MISSING) -> list:
        value = self._get(name, default)
        try:
            return [as_number(v) for v in as_sequence(value)]
        except (TypeError, ValueError):
            raise self.error(f"{name} ({_shown(value)}) must be a list of numbers") from None

    def tensor(self, name: str, default=_MISSING) -> np.ndarray:
        return np.asarray(self._get(name, default))

    def positive_int(self, name: str, default=_MISSING) -> int:
        value = self.int(name, default)
        if value <= 0:
            raise self.error(f"{name} ({value}) must be positive")
        return value

    def choice(self, name: str, allowed: Iterable, default=_MISSING):
        value = self._get(name, default)
        allowed = list(allowed)
        if value not in allowed:
            raise self.error(f"{name} ({value!r}) must be one of {', '.join(map(str, allowed))}")
        return value


def _shown(value) -> str:
    text = " ".join(repr(value).split())  # one line, also for arrays
    return text if len(text) <= 60 else text[:57] + "..."
