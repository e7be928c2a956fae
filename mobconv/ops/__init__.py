"""IR ops: the registry and the numpy references (one module per op family).

`load_all()` imports every module in this package so that each registers its
ops; adding an op family is adding a module here, nothing else.
"""
import importlib
import pkgutil

from .registry import REGISTRY, Attr, AttrKind, OpSpec, get_spec, op

_loaded = False


def load_all() -> dict:
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            if info.name != "registry" and not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True
    return REGISTRY


__all__ = ["REGISTRY", "Attr", "AttrKind", "OpSpec", "get_spec", "op", "load_all"]
