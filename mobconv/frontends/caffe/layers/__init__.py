"""Caffe layer converters: one small function per layer type (or family).

All live in one `ConverterRegistry("Caffe", kind="layer")`; importing this
package registers the built-in converters. A converter is ``fn(ctx)`` with
ctx a `mobconv.frontends.caffe.context.LayerContext`; see docs/caffe.md for
writing one for a custom layer (`mobconv.frontends.caffe.register_layer`).
"""
from ...common import ConverterRegistry

REGISTRY = ConverterRegistry("Caffe", kind="layer")

from . import activation, conv, norm, pool, resize, ssd, tensor  # noqa: E402,F401  (registration)

__all__ = ["REGISTRY"]
