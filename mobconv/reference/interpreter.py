"""The numpy reference interpreter: runs an IR Graph (or a loaded .mob) with numpy alone.

It is the numerical oracle of the project (every C++ kernel and every pass is
checked against it) and also a pure-NumPy deployment path. `run(...,
keep_intermediates=True)` hands back every tensor of the run, which the
per-layer comparison and int8 calibration need.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..errors import MobconvError, ShapeError
from ..ops.registry import get_spec


def _check_feed(graph, feeds: dict, where: str = "") -> dict:
    missing = [n for n in graph.inputs if n not in feeds]
    if missing:
        raise MobconvError(f"{where}missing input(s) {', '.join(missing)} "
                           f"(graph inputs: {', '.join(graph.inputs)})")
    unknown = [str(n) for n in feeds if n not in graph.inputs]
    if unknown:
        raise MobconvError(f"{where}unknown input(s) {', '.join(unknown)} "
                           f"(graph inputs: {', '.join(graph.inputs)})")
    checked = {}
    for name in graph.inputs:
        value = graph.values[name]
        array = np.asarray(feeds[name])
        if value.dtype and array.dtype.name != value.dtype:
            array = array.astype(value.dtype)
        if value.shape is not None:
            if len(value.shape) != array.ndim or any(
                isinstance(d, int) and d != a for d, a in zip(value.shape, array.shape)
            ):
                raise ShapeError(
                    f"{where}input {name!r}: expected shape {tuple(value.shape)}, got {array.shape}"
                )
        checked[name] = array
    return checked


def _run_node(graph, node, spec, args, attrs) -> list:
    """The node's reference; its integer form (ops/quant_math.py) when a tensor of the node
    is quantized, so an int8 Conv is never computed as a plain integer convolution."""
    values = graph.values
    in_quant = [values[n].quant if n and n in values else None for n in node.inputs]
    out_quant = [values[n].quant if n and n in values else None for n in node.outputs]
    if not any(q is not None for q in in_quant + out_quant):
        return spec.run_reference(args, attrs)
    from ..ops.quant_math import requantize_mode, run_quantized

    dtypes = [values[n].dtype if n and n in values else None for n in node.outputs]
    return [np.asarray(o) for o in run_quantized(node, spec, args, attrs, in_quant, out_quant, dtypes,
                                                 requantize_mode(graph))]


def run(
    graph,
    feeds: dict,
    keep_intermediates: bool = False,
    observer: Optional[Callable] = None,
    source: Optional[str] = None,
) -> dict:
    """Execute `graph` on `feeds` (input name -> array).

    Returns the graph outputs (name -> array), or every value computed when
    keep_intermediates is set. `observer(node, input_arrays, output_arrays)` is
    called after each node (for calibration statistics). Error messages start
    with `source` (the model file) when given.
    """
    where = f"{source}: " if source else ""
    env = {v.name: v.data for v in graph.constants()}
    env.update(_check_feed(graph, feeds, where))
    for node in graph.nodes:
        spec = get_spec(node.op)
        attrs = spec.resolve_attrs(node)
        args = [env[n] if n else None for n in node.inputs]
        try:
            outs = _run_node(graph, node, spec, args, attrs)
        except MobconvError as exc:
            if where and not str(exc).startswith(where):
                exc.args = (f"{where}{exc}",)  # same type and attributes, message names the file
            raise
        except Exception as exc:  # a reference failing on real data is a shape/attr problem
            shapes = ", ".join(str(None if a is None else a.shape) for a in args)
            raise MobconvError(
                f"{where}node {node.name!r} ({node.op}) failed on inputs of shape {shapes}: {exc}"
            ) from exc
        for name, array in zip(node.outputs, outs):
            if name:
                env[name] = array
        if observer is not None:
            observer(node, args, outs)
    if keep_intermediates:
        return env
    return {name: env[name] for name in graph.outputs}
