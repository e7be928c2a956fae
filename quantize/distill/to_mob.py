"""Write a trained student back into a `.mob` model shaped like the one it came from.

    tuned = distill.export(student, like=pruned)                  # through ONNX (default)
    tuned = distill.export(student, like=pruned, route="direct")  # weights into a copy

What and why: after fine-tuning, the weights must go back into the deployment format
with the compression intact (pruned weights sparse, clustered ones a palette), the
signature (input names, layouts, preprocessing) and the metadata of the original.

Routes:
- "onnx": torch.onnx.export of the student (its effective weights: masks and palettes
  applied), then mobconv.convert (the full pass pipeline), then: the storage hints are
  re-attached to the converted weights (found by name, else by identical content), the
  original signature and metadata are copied, and when the converted graph has the same
  op sequence as the original, the original node and value names are restored (so
  feature names stay valid for another round of distillation).
- "direct": the trained weights written into a copy of the original graph: exact, and
  what the ONNX route is checked against (tests/test_distill_torch.py).
Either way the result records `compression.distill` in the metadata and drops the
embedded test vectors (the weights changed). `path` saves the result (atomically).
"""
from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings

import numpy as np

from mobconv.errors import ArgumentError, MobconvError

ROUTES = ("onnx", "direct")
OPSET = 17


def export(student, like, path=None, *, route: str = "onnx"):
    from .teacher import as_model
    from .torch_adapter import Student

    if not isinstance(student, Student):
        raise ArgumentError(f"export(): student must come from distill.torch_student(), got a "
                            f"{type(student).__name__}")
    if route not in ROUTES:
        raise ArgumentError(f"export(): route must be one of {', '.join(ROUTES)}, got {route!r}")
    like = as_model(like, "export")
    weights = student.weights()
    _check_same_model(student, like, weights)
    direct = _direct(like, weights)
    result = direct if route == "direct" else _through_onnx(direct, like)
    result.graph.metadata.extra["compression.distill"] = f"fine-tuned weights ({route} route)"
    if path is not None:
        result.save(path)
        result.source = os.fspath(path)
    return result


def _check_same_model(student, like, weights) -> None:
    values = like.graph.values
    for name, array in weights.items():
        value = values.get(name)
        if value is None or value.data is None or tuple(value.data.shape) != array.shape:
            raise ArgumentError(f"export(): the student was not built from {like.source or 'this model'} "
                                f"(its weight {name!r} has no counterpart of shape {list(array.shape)})")


def _direct(like, weights):
    from mobconv.api import Model

    graph = like.graph.copy()
    for name, array in weights.items():
        graph.values[name].data = np.ascontiguousarray(array)
    graph.test_vectors = []
    return Model(graph, source=None)


def _dummy(specs):
    feeds, axes = {}, {}
    for spec in specs:
        shape = []
        for i, d in enumerate(spec.shape or ()):
            if isinstance(d, int) and d >= 0:
                shape.append(d)
            else:
                shape.append(2)
                axes.setdefault(spec.name, {})[i] = str(d) if isinstance(d, str) else f"d{i}"
        feeds[spec.name] = np.random.default_rng(0).standard_normal(shape).astype(spec.dtype or "float32")
    return feeds, axes


def _through_onnx(direct, like):
    import torch

    import mobconv
    from .torch_adapter import Student

    plain_graph = direct.graph.copy()
    for value in plain_graph.values.values():
        value.storage = None  # plain parameters: ONNX initializers carry the trained values
    from mobconv.api import Model

    plain = Student(Model(plain_graph, source=like.source))
    plain.eval()
    feeds, in_axes = _dummy(like.inputs)
    _, out_axes = _dummy(like.outputs)
    args = tuple(torch.as_tensor(feeds[n]) for n in plain.input_names)
    with tempfile.TemporaryDirectory(prefix="mobconv-distill-") as tmp:
        onnx_path = os.path.join(tmp, "student.onnx")
        logging.disable(logging.WARNING)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(plain, args, onnx_path, dynamo=False, opset_version=OPSET,
                                  input_names=plain.input_names, output_names=plain.output_names,
                                  dynamic_axes={**in_axes, **out_axes}, do_constant_folding=True)
        except Exception as exc:
            raise MobconvError(f"export(): torch.onnx.export failed: {str(exc).splitlines()[0]}; "
                               "route='direct' writes the weights without ONNX") from None
        finally:
            logging.disable(logging.NOTSET)
        converted = mobconv.convert(onnx_path)
    graph = converted.graph
    _reattach_storage(graph, direct.graph, plain)
    _restore_names(graph, like.graph)
    graph.signature = copy.deepcopy(like.graph.signature)
    graph.metadata = copy.deepcopy(like.graph.metadata)
    graph.test_vectors = []
    converted.source = None
    return converted


def _reattach_storage(graph, original, plain) -> None:
    """Give each converted weight the storage hint of the original weight it came from:
    matched by the initializer name (the student's parameter name), else by content."""
    by_key = {plain.keys[name]: name for name in plain.keys}
    wanted = {name: v for name, v in original.values.items() if v.storage is not None}
    done = set()
    for value in graph.constants():
        source = by_key.get(value.name)
        if source in wanted and wanted[source].data.shape == value.data.shape \
                and np.array_equal(wanted[source].data, value.data):
            value.storage = copy.deepcopy(wanted[source].storage)
            done.add(source)
    for name, orig in wanted.items():
        if name in done:
            continue
        for value in graph.constants():
            if value.storage is None and value.data.shape == orig.data.shape \
                    and np.array_equal(value.data, orig.data):
                value.storage = copy.deepcopy(orig.storage)
                done.add(name)
                break
    missing = sorted(set(wanted) - done)
    if missing:
        raise MobconvError(f"export(): weight {missing[0]!r} was changed by the ONNX round trip "
                           f"(its {wanted[missing[0]].storage.kind} storage cannot be re-attached); "
                           "use route='direct'")


def _restore_names(graph, original) -> bool:
    """Rename nodes and values of `graph` to those of `original` when both have the same
    op sequence and input/output structure; True if renamed."""
    if [n.op for n in graph.nodes] != [n.op for n in original.nodes]:
        return False
    mapping = {name: name for name in graph.inputs}
    for new, old in zip(graph.nodes, original.nodes):
        if len(new.inputs) != len(old.inputs) or len(new.outputs) != len(old.outputs):
            return False
        for a, b in zip(new.inputs + new.outputs, old.inputs + old.outputs):
            if bool(a) != bool(b) or mapping.setdefault(a, b) != b:
                return False
    if len(set(mapping.values())) != len(mapping) or \
            [mapping.get(n) for n in graph.outputs] != list(original.outputs) or \
            len({mapping.get(n, n) for n in graph.values}) != len(graph.values):
        return False
    graph.values = {mapping.get(name, name): value for name, value in graph.values.items()}
    for name, value in graph.values.items():
        value.name = name
    for new, old in zip(graph.nodes, original.nodes):
        new.name = old.name
        new.inputs = [mapping.get(n, n) for n in new.inputs]
        new.outputs = [mapping.get(n, n) for n in new.outputs]
    graph.outputs = [mapping[n] for n in graph.outputs]
    return True
