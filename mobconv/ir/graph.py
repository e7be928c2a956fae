"""The intermediate representation: a `Graph` of `Node`s over named `Value`s.

Plain Python objects, so frontends, passes, the numpy reference interpreter and
the file writer all speak the same language:

- `Value`: a named tensor with dtype (a numpy dtype name such as "float32"),
  shape (a tuple of ints and/or strings for symbolic dims, or None when not
  yet inferred), optional constant data (numpy), optional quantization and an
  optional storage hint (`WeightStorage`: sparse or palette in the .mob file).
- `Node`: one op application. `op` is a registry name (`mobconv.ops`),
  `inputs`/`outputs` are value names ("" marks an absent optional input),
  `attrs` holds typed attribute values (see `mobconv.ops.registry.AttrKind`).
- `Graph`: values, nodes in topological order, graph inputs/outputs, plus the
  signature, metadata and optional embedded test vectors that the `.mob` file
  carries.

Canonical tensor layout is NCHW; a frontend that reads NHWC records the
user-facing layout in `Signature`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Union

import numpy as np

from ..errors import MobconvError

Dim = Union[int, str]
Shape = tuple  # tuple[Dim, ...]

DTYPES = ("float32", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool")


def normalize_dtype(dtype) -> str:
    """Return the IR dtype name for a numpy dtype / string ("float32", ...)."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in DTYPES:
        raise MobconvError(f"unsupported tensor dtype {name!r} (supported: {', '.join(DTYPES)})")
    return name


@dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point); per-axis when axis is set."""

    scales: list
    zero_points: list
    axis: Optional[int] = None


STORAGE_KINDS = ("sparse", "palette")
PALETTE_BITS = (1, 2, 4, 8)


@dataclass
class WeightStorage:
    """How the .mob writer stores a constant's data; the IR data itself stays dense.

    kind "sparse": a bitmask of the stored elements plus those elements (the zeros
    are implied), written only when it is smaller than the dense bytes.
    kind "palette": at most 2**bits distinct values (the palette, in the tensor's
    dtype) plus one packed `bits`-wide index per element. The writer refuses data
    with more distinct values than the palette can hold.
    Compression passes (mobconv.quantize: prune, cluster) set it; a pass that
    replaces a constant's data with new values must drop or re-check it.
    """

    kind: str
    bits: int = 0

    def __post_init__(self):
        if self.kind not in STORAGE_KINDS:
            raise MobconvError(f"unknown weight storage {self.kind!r} "
                               f"(known: {', '.join(STORAGE_KINDS)})")
        if self.kind == "palette" and self.bits not in PALETTE_BITS:
            raise MobconvError(f"palette index width {self.bits} bits is not one of "
                               f"{', '.join(map(str, PALETTE_BITS))}")


@dataclass
class Value:
    name: str
    dtype: Optional[str] = None
    shape: Optional[tuple] = None
    data: Optional[np.ndarray] = None
    quant: Optional[QuantParams] = None
    storage: Optional[WeightStorage] = None  # compressed storage in .mob (constants only)

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass
class Node:
    op: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)

    def input_values(self, graph: "Graph") -> list:
        return [graph.values[n] if n else None for n in self.inputs]


@dataclass
class TensorSpec:
    """User-facing description of a graph input/output in the signature."""

    name: str
    dtype: str
    shape: tuple
    layout: str = ""  # "NCHW", "NHWC" or "" when not an image tensor


@dataclass
class Preprocessing:
    """What the user must do to raw input before feeding it (from the source model).

    model_input = (raw[channel_order] - mean) * scale, per channel.
    """

    mean: list = field(default_factory=list)
    scale: list = field(default_factory=list)
    channel_order: str = ""  # "RGB", "BGR" or "" if unknown


@dataclass
class Signature:
    inputs: list = field(default_factory=list)  # list[TensorSpec]
    outputs: list = field(default_factory=list)  # list[TensorSpec]
    preprocessing: Optional[Preprocessing] = None


@dataclass
class Metadata:
    producer: str = "mobconv"
    converter_version: str = ""
    source_framework: str = ""
    source_sha256: str = ""
    min_runtime_version: str = "0.1.0"
    options: dict = field(default_factory=dict)  # str -> str, options used for conversion
    extra: dict = field(default_factory=dict)  # str -> str


@dataclass
class TestVector:
    """Inputs and expected outputs embedded in the file so it can check itself."""

    inputs: dict  # name -> np.ndarray
    outputs: dict  # name -> np.ndarray
    rtol: float = 1e-4
    atol: float = 1e-5

    __test__ = False  # not a pytest class


class Graph:
    def __init__(self, name: str = "graph"):
        self.name = name
        self.values: dict = {}
        self.nodes: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.signature = Signature()
        self.metadata = Metadata()
        self.test_vectors: list = []

    # ---- building -------------------------------------------------------
    def add_value(self, name, dtype=None, shape=None, data=None, quant=None) -> Value:
        if data is not None:
            data = np.asarray(data)
            dtype = dtype or data.dtype.name
            shape = tuple(data.shape) if shape is None else shape
        if dtype is not None:
            dtype = normalize_dtype(dtype)
        if shape is not None:
            shape = tuple(shape)
        value = Value(name, dtype, shape, data, quant)
        self.values[name] = value
        return value

    def add_constant(self, name, data) -> Value:
        return self.add_value(name, data=np.asarray(data))

    def add_input(self, name, dtype, shape) -> Value:
        value = self.add_value(name, dtype, shape)
        self.inputs.append(name)
        return value

    def add_node(self, op, inputs, outputs, attrs=None, name=None) -> Node:
        node = Node(op, name or outputs[0], list(inputs), list(outputs), dict(attrs or {}))
        for out in node.outputs:
            if out and out not in self.values:
                self.add_value(out)
        self.nodes.append(node)
        return node

    def unique_name(self, base: str) -> str:
        node_names = self._node_names()

        def taken(name):
            return name in self.values or name in node_names

        if not taken(base):
            return base
        i = 1
        while taken(f"{base}_{i}"):
            i += 1
        return f"{base}_{i}"

    def _node_names(self) -> set:
        """The nodes' names, for unique_name: extended as nodes are appended, rebuilt when
        `nodes` is another list or shorter (a walk per call made conversion quadratic)."""
        cache = getattr(self, "_node_name_cache", None)  # [nodes list, how many seen, names]
        if cache is None or cache[0] is not self.nodes or cache[1] > len(self.nodes):
            cache = self._node_name_cache = [self.nodes, 0, set()]
        if cache[1] < len(self.nodes):
            cache[2].update(n.name for n in self.nodes[cache[1]:])
            cache[1] = len(self.nodes)
        return cache[2]

    # ---- queries --------------------------------------------------------
    def producers(self) -> dict:
        """value name -> node producing it."""
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict:
        """value name -> list of nodes reading it."""
        result: dict = {}
        for node in self.nodes:
            for inp in node.inputs:
                if inp:
                    result.setdefault(inp, []).append(node)
        return result

    def constants(self) -> Iterable[Value]:
        return (v for v in self.values.values() if v.data is not None)

    # ---- maintenance ----------------------------------------------------
    def toposort(self) -> None:
        """Order nodes so every input is produced before it is read.

        Raises MobconvError on a cycle or on a value that nothing defines.
        """
        available = set(self.inputs) | {v.name for v in self.constants()}
        producers = self.producers()
        for node in self.nodes:
            for inp in node.inputs:
                if inp and inp not in available and inp not in producers:
                    raise MobconvError(
                        f"node {node.name!r} ({node.op}) reads {inp!r}, which no node, "
                        "graph input or constant defines"
                    )
        ordered, done, state = [], set(), {}
        index = {id(n): i for i, n in enumerate(self.nodes)}

        for root in self.nodes:
            if id(root) in done:
                continue
            stack = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if expanded:
                    state[id(node)] = "done"
                    if id(node) not in done:
                        done.add(id(node))
                        ordered.append(node)
                    continue
                if state.get(id(node)) == "done":
                    continue
                if state.get(id(node)) == "active":
                    raise MobconvError(f"graph has a cycle through node {node.name!r} ({node.op})")
                state[id(node)] = "active"
                stack.append((node, True))
                deps = [producers[i] for i in node.inputs if i and i not in available and i in producers]
                for dep in sorted(deps, key=lambda d: -index[id(d)]):
                    if state.get(id(dep)) == "active":
                        raise MobconvError(f"graph has a cycle through node {dep.name!r} ({dep.op})")
                    if state.get(id(dep)) != "done":
                        stack.append((dep, False))
        self.nodes = ordered

    def remove_unused_values(self) -> None:
        used = set(self.inputs) | set(self.outputs)
        for node in self.nodes:
            used.update(n for n in node.inputs if n)
            used.update(n for n in node.outputs if n)
        self.values = {k: v for k, v in self.values.items() if k in used}

    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of value `old` read `new` instead (graph outputs included)."""
        for node in self.nodes:
            node.inputs = [new if n == old else n for n in node.inputs]
        self.outputs = [new if n == old else n for n in self.outputs]

    def copy(self) -> "Graph":
        import copy

        return copy.deepcopy(self)

    def __repr__(self) -> str:
        return (
            f"Graph({self.name!r}, {len(self.nodes)} nodes, inputs={self.inputs}, "
            f"outputs={self.outputs})"
        )
