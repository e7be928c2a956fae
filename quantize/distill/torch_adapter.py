"""A trainable PyTorch module built from a float mobconv IR graph (the student).

    student = distill.torch_student(pruned_model)      # torch.nn.Module
    logits = student(x)                                 # graph outputs, in order
    out = student.run(x, features=["block3"])           # {name: tensor}
    trained = distill.export(student, like=pruned_model)

What and why: recovery fine-tuning after pruning or clustering needs the compressed
graph as something an optimizer can train, and the result must keep the compression.

Algorithm:
1. Check the graph is float (a quantized model is refused: build the student from the
   float model, quantize after) and that every node's op is in the op table
   (torch_ops.OPS); one-line error naming the first unsupported node otherwise.
2. Constants: every float constant read by Conv/ConvTranspose/Gemm/MatMul (weights and
   biases), PRelu slopes and BatchNormalization scale/bias becomes an nn.Parameter;
   every other constant a buffer (integer ones are also read as Python values for
   shapes, axes and pads).
   - storage "sparse" (quantize.prune): a fixed 0/1 mask buffer; the forward uses
     parameter * mask, so pruned weights get no gradient and stay exactly 0 whatever the
     optimizer does (`apply_masks()` also zeroes the raw parameter, e.g. before reading
     it). A palette weight (quantize.cluster): the parameter is the palette (the K
     centroids), the indices a fixed buffer; the forward uses palette[indices], so
     training moves the centroids and the weight keeps at most K distinct values (a
     centroid that is exactly 0 stays 0: pruned-then-clustered zeros stay zeros).
3. forward runs the nodes in graph order with the op table; `run(..., features=)`
   also returns the named intermediate values.
"""
from __future__ import annotations

import re

import numpy as np

from mobconv.errors import ArgumentError, MobconvError

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - the package itself imports without torch
    raise MobconvError("quantize.distill's PyTorch adapter needs torch (pip install torch)") from exc

from .teacher import as_model
from .torch_ops import OPS

TRAINABLE = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1),
             "PRelu": (1,), "BatchNormalization": (1, 2), "LayerNormalization": (1, 2)}
INT_DTYPES = ("int8", "uint8", "int16", "int32", "int64", "bool")


def _label(model) -> str:
    return model.source or "the model"


def _key(index: int, name: str) -> str:
    return f"v{index}_" + re.sub(r"[^0-9A-Za-z_]", "_", name)[-60:]


def check_float(model, what: str) -> None:
    graph = model.graph
    for v in graph.values.values():
        if v.quant is not None or (v.data is None and v.dtype not in (None, "float32", *INT_DTYPES)):
            raise ArgumentError(f"{what}: {_label(model)}: tensor {v.name!r} is "
                                f"{'quantized' if v.quant is not None else v.dtype}; build the student "
                                "from the float32 model (compress, fine-tune, then quantize)")
    for node in graph.nodes:
        if node.op in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
            raise ArgumentError(f"{what}: {_label(model)}: node {node.name!r} ({node.op}) makes it a "
                                "quantized model; build the student from the float32 model")


class Student(nn.Module):
    """The graph of a mobconv Model as a torch.nn.Module (see the module docstring)."""

    def __init__(self, model):
        super().__init__()
        from mobconv.ops.registry import get_spec

        graph = model.graph
        self.source = _label(model)
        check_float(model, "torch_student()")
        for node in graph.nodes:
            if node.op not in OPS:
                raise ArgumentError(f"torch_student(): {self.source}: node {node.name!r} ({node.op}) "
                                    f"has no PyTorch mapping (mapped ops: {', '.join(sorted(OPS))})")
        self.input_names = list(graph.inputs)
        self.output_names = list(graph.outputs)
        self._nodes = [(node, get_spec(node.op).resolve_attrs(node)) for node in graph.nodes]
        self.keys: dict = {}          # value name -> parameter/buffer name
        self.kinds: dict = {}         # value name -> "param", "buffer", "sparse" or "palette"
        self._ints: dict = {}         # value name -> integer/float constant as a numpy array
        self._dtypes: dict = {}       # value name -> IR dtype of the constant
        trainable = set()
        for node in graph.nodes:
            for i in TRAINABLE.get(node.op, ()):
                if i < len(node.inputs) and node.inputs[i]:
                    trainable.add(node.inputs[i])
        index = 0
        for name, value in graph.values.items():
            if value.data is None:
                continue
            key = _key(index, name)
            index += 1
            data = np.asarray(value.data)
            self.keys[name] = key
            self._dtypes[name] = value.dtype or data.dtype.name
            self._ints[name] = data
            if data.dtype.kind != "f" or name not in trainable:
                self.register_buffer(key, torch.as_tensor(np.array(data)), persistent=True)
                self.kinds[name] = "buffer"
                continue
            tensor = torch.as_tensor(np.array(data, dtype=np.float32))
            storage = value.storage.kind if value.storage is not None else None
            if storage == "palette":
                palette, indices = np.unique(data.astype(np.float32), return_inverse=True)
                self.register_parameter(key, nn.Parameter(torch.as_tensor(palette)))
                self.register_buffer(key + "_indices", torch.as_tensor(indices.reshape(data.shape)))
                self.register_buffer(key + "_frozen", torch.as_tensor(palette == 0))
                self.kinds[name] = "palette"
            elif storage == "sparse":
                self.register_parameter(key, nn.Parameter(tensor))
                self.register_buffer(key + "_mask", (tensor != 0).to(tensor.dtype))
                self.kinds[name] = "sparse"
            else:
                self.register_parameter(key, nn.Parameter(tensor))
                self.kinds[name] = "param"
        self.storage = {name: value.storage for name, value in graph.values.items()
                        if value.data is not None and value.storage is not None}

    # ---- constants
    def constant(self, name: str):
        """The tensor the forward uses for constant `name` (mask / palette applied)."""
        key, kind = self.keys[name], self.kinds[name]
        raw = getattr(self, key)
        if kind == "sparse":
            return raw * getattr(self, key + "_mask")
        if kind == "palette":
            frozen = getattr(self, key + "_frozen")
            palette = torch.where(frozen, torch.zeros_like(raw), raw)
            return palette[getattr(self, key + "_indices")]
        return raw

    def ints(self, node, i: int, args) -> list:
        """Input i of `node` as a list of Python ints (shapes, axes, pads)."""
        name = node.inputs[i]
        if name in self._ints:
            return [int(v) for v in np.asarray(self._ints[name]).reshape(-1)]
        return [int(v) for v in args[i].reshape(-1).tolist()]

    def floats(self, node, i: int, args) -> list:
        name = node.inputs[i]
        if name in self._ints:
            return [float(v) for v in np.asarray(self._ints[name]).reshape(-1)]
        return [float(v) for v in args[i].reshape(-1).tolist()]

    def apply_masks(self) -> None:
        """Zero the raw parameters of pruned weights (the forward masks them anyway)."""
        with torch.no_grad():
            for name, kind in self.kinds.items():
                if kind == "sparse":
                    key = self.keys[name]
                    getattr(self, key).mul_(getattr(self, key + "_mask"))

    def weights(self) -> dict:
        """{value name: numpy array} of every trainable constant as the forward uses it."""
        with torch.no_grad():
            return {name: self.constant(name).detach().cpu().numpy().astype(self._dtypes[name])
                    for name, kind in self.kinds.items() if kind != "buffer"}

    # ---- running
    def _feeds(self, args, kwargs) -> dict:
        if len(args) == 1 and isinstance(args[0], dict) and not kwargs:
            feeds = dict(args[0])
        else:
            if len(args) > len(self.input_names):
                raise ArgumentError(f"student: {len(args)} inputs given, the model has "
                                    f"{len(self.input_names)} ({', '.join(self.input_names)})")
            feeds = dict(zip(self.input_names, args))
            feeds.update(kwargs)
        missing = [n for n in self.input_names if n not in feeds]
        unknown = [n for n in feeds if n not in self.input_names]
        if missing or unknown:
            what = f"missing input {missing[0]!r}" if missing else f"unknown input {unknown[0]!r}"
            raise ArgumentError(f"student: {self.source}: {what} (inputs: {', '.join(self.input_names)})")
        ref = next(iter(self.parameters()), None)
        device = ref.device if ref is not None else None
        out = {}
        for n, t in feeds.items():
            if not isinstance(t, torch.Tensor):
                t = np.asarray(t)
                t = torch.as_tensor(t.astype(np.float32) if t.dtype.kind == "f" else t, device=device)
            out[n] = t
        return out

    def _execute(self, feeds: dict, keep=()) -> dict:
        env = dict(feeds)
        for name in self.keys:
            env[name] = self.constant(name)
        for node, attrs in self._nodes:
            args = [env[n] if n else None for n in node.inputs]
            while args and args[-1] is None:
                args.pop()
            try:
                outs = OPS[node.op](self, node, attrs, args)
            except (ValueError, RuntimeError, IndexError) as exc:
                raise MobconvError(f"student: {self.source}: node {node.name!r} ({node.op}): "
                                   f"{str(exc).splitlines()[0]}") from None
            for name, out in zip(node.outputs, outs):
                if name:
                    env[name] = out
        return env

    def forward(self, *args, **kwargs):
        """The graph outputs for the inputs (positional in graph order, by name, or one
        dict): one tensor for a single-output graph, else a tuple in output order."""
        env = self._execute(self._feeds(args, kwargs))
        outs = tuple(env[n] for n in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def run(self, *args, features=(), **kwargs) -> dict:
        """{name: tensor} of the graph outputs plus the intermediate values `features`."""
        unknown = [f for f in ([features] if isinstance(features, str) else features)
                   if not any(f in node.outputs for node, _ in self._nodes) and f not in self.input_names]
        if unknown:
            raise ArgumentError(f"student: {self.source}: feature {unknown[0]!r} is not a value "
                                "computed by the graph")
        env = self._execute(self._feeds(args, kwargs))
        names = self.output_names + [f for f in ([features] if isinstance(features, str) else features)]
        return {n: env[n] for n in names}


def torch_student(model) -> Student:
    """A trainable torch.nn.Module computing `model` (a Model or a model path), float32.

    Pruned weights keep their zeros and clustered weights their palette during training
    (module docstring); `distill.export(student, like=model)` writes the result back."""
    return Student(as_model(model, "torch_student"))


__all__ = ["Student", "torch_student"]
