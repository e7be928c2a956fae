"""fp16 weight storage: float32 weights stored as float16, widened to float32 at load.

`to_fp16(graph)` returns a copy of `graph` in which each eligible float32 constant `W`
is replaced by a float16 constant `W/fp16` and a node `W/Cast` = `Cast(W/fp16, to=1)`
whose output keeps the name `W`: consumers, graph outputs and the debugger's name
matching are untouched, and the kernels still see float32. The C++ runtime computes a
Cast of a constant once at load (core/interpreter.cpp), so the weights it runs with are
float32 constants, and the file is about half the size of the float32 one.

Which constants (`plan_fp16` decides, one `Fp16Choice` per float32 constant):
1. at least `MIN_ELEMENTS` (256) elements: the Cast node and the extra tensor entry
   cost 160-230 bytes of file, so a smaller constant saves little or nothing (at most
   512 bytes); these are biases, scalars of Add/Mul/Clip, epsilons and the stems of
   small nets, whose rounding costs the most accuracy per byte saved (on the digits
   MobileNetV2 the 144-weight stem alone gives half of the fp16 output error);
2. not read as a parameter whose value an op needs as given (`PARAMETER_INPUTS`: the
   scales of QuantizeLinear/DequantizeLinear, Resize/Upsample scales and roi, Range,
   Clip bounds, Pad's value), not read by a quantized (int8) node, not a graph output;
3. representable: a finite value beyond float16's largest, 65504, would become inf:
   the constant stays float32 (reason recorded); a tensor whose largest magnitude is
   below float16's normal range (6.1e-5) would lose more than float16's normal
   relative precision (2^-11 of its largest value): it stays float32 too. NaN and
   +-inf are stored as they are (float16 has them).

Kept constants with a range reason are listed in the metadata entry
`quantization.fp16.kept_float32` ("name: reason; ..."), so `mobconv info` and the user
can see why; `quantization.scheme` is set to "fp16" unless a scheme is already set
(a mixed-precision int8 model keeps its own). Embedded test vectors are dropped when a
weight changes (they hold the float32 model's outputs at rtol 1e-4; fp16 moves them ~1e-3). `nodes=` limits the conversion to the
constants read by those nodes (mixed precision: one layer falls back to fp16); names of no node match nothing.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .qdq import carry_storage

MIN_ELEMENTS = 256
FP16_MAX = float(np.finfo(np.float16).max)  # 65504
FP16_TINY = float(np.finfo(np.float16).tiny)  # 2^-14, smallest normal
MAX_RELATIVE_ERROR = 2.0 ** -11  # float16's rounding bound in its normal range
ONNX_FLOAT32 = 1

# op -> input positions read as parameters (their values matter as given, or are needed
# to infer shapes); a float32 constant read there stays float32.
PARAMETER_INPUTS = {
    "QuantizeLinear": {1, 2},
    "DequantizeLinear": {1, 2},
    "Resize": {1, 2, 3},
    "Upsample": {1},
    "Range": {0, 1, 2},
    "Clip": {1, 2},
    "Pad": {2, 3},
}

SCHEME_KEY = "quantization.scheme"
KEPT_KEY = "quantization.fp16.kept_float32"
# "allow": the runtime may compute Conv/Gemm/MatMul in fp16 on CPUs with fp16 arithmetic
# (ARMv8.2); "float32": the model does not ask for it (the interpreter option still can;
# docs/quantization.md "fp16 compute")
FP16_COMPUTE_KEY = "quantization.fp16_compute"


@dataclass(frozen=True)
class Fp16Choice:
    """What happens to one float32 constant: `to_fp16` True or the reason it stays float32."""

    name: str
    elements: int
    to_fp16: bool
    reason: str = ""          # why it stays float32 ("" when converted)
    range_problem: bool = False  # kept because float16 cannot hold its values

    @property
    def saved_bytes(self) -> int:
        return 2 * self.elements if self.to_fp16 else 0


def _range_problem(data: np.ndarray) -> str:
    """Why float16 cannot store `data` faithfully, or "" when it can."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return ""
    top = float(np.max(np.abs(finite)))
    if top > FP16_MAX:
        with np.errstate(over="ignore"):
            overflowing = int(np.count_nonzero(np.isinf(finite.astype(np.float16))))
        if overflowing:
            return (f"{overflowing} value(s) up to {top:.6g} exceed float16's largest "
                    f"{FP16_MAX:g} (they would become inf)")
    if top == 0.0:
        return ""
    error = float(np.max(np.abs(finite.astype(np.float16).astype(np.float64) - finite)))
    if error > MAX_RELATIVE_ERROR * top:
        return (f"its largest magnitude {top:.3g} is below float16's normal range "
                f"({FP16_TINY:.3g}): rounding error {error / top:.2g} of it")
    return ""


def _consumers(graph) -> dict:
    result: dict = {}
    for node in graph.nodes:
        for index, name in enumerate(node.inputs):
            if name:
                result.setdefault(name, []).append((node, index))
    return result


def _quantized(graph, node) -> bool:
    for name in list(node.inputs) + list(node.outputs):
        value = graph.values.get(name) if name else None
        if value is not None and value.quant is not None:
            return True
    return False


def plan_fp16(graph, nodes: Optional[Iterable[str]] = None) -> list:
    """One `Fp16Choice` per float32 constant of `graph` (read by `nodes`, when given)."""
    wanted = None if nodes is None else set(nodes)
    readers = _consumers(graph)
    inputs, outputs = set(graph.inputs), set(graph.outputs)
    choices = []
    for value in graph.constants():
        if value.name in inputs or value.dtype != "float32" or value.quant is not None:
            continue
        users = readers.get(value.name, [])
        if wanted is not None and not any(node.name in wanted for node, _ in users):
            continue
        data = np.asarray(value.data)
        n = int(data.size)
        reason, problem = "", False
        parameter = [(node, i) for node, i in users if i in PARAMETER_INPUTS.get(node.op, ())]
        if value.name in outputs:
            reason = "it is a graph output"
        elif not users:
            reason = "nothing reads it"
        elif parameter:
            node, i = parameter[0]
            reason = f"input {i} of {node.op} node {node.name!r} is a parameter"
        elif any(_quantized(graph, node) for node, _ in users):
            reason = "a quantized node reads it"
        elif n < MIN_ELEMENTS:
            reason = f"{n} element(s), below {MIN_ELEMENTS}: a Cast would cost about what it saves"
        else:
            reason = _range_problem(data)
            problem = bool(reason)
        choices.append(Fp16Choice(value.name, n, not reason, reason, problem))
    return choices


def to_fp16(graph, nodes: Optional[Iterable[str]] = None):
    """A copy of `graph` with its eligible float32 weights stored as float16 + Cast."""
    graph = copy.deepcopy(graph)
    choices = plan_fp16(graph, nodes)
    convert = {c.name for c in choices if c.to_fp16}
    first_reader = {}  # constant name -> index of the first node reading it
    for position, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name in convert:
                first_reader.setdefault(name, position)
    casts: dict = {}  # node position -> Cast nodes to insert before it
    for name in sorted(convert, key=lambda n: (first_reader[n], n)):
        value = graph.values[name]
        with np.errstate(over="ignore"):
            half = np.asarray(value.data).astype(np.float16)
        stored = graph.unique_name(f"{name}/fp16")
        graph.add_value(stored, data=half).storage = carry_storage(value.storage, half)
        value.data, value.storage = None, None  # `name` is now the Cast's float32 output
        cast_name = graph.unique_name(f"{name}/Cast")
        node = graph.add_node("Cast", [stored], [name], {"to": ONNX_FLOAT32}, name=cast_name)
        graph.nodes.pop()  # placed below, before its first reader
        casts.setdefault(first_reader[name], []).append(node)
    if casts:
        ordered = []
        for position, node in enumerate(graph.nodes):
            ordered.extend(casts.get(position, ()))
            ordered.append(node)
        graph.nodes[:] = ordered
    if convert:
        graph.test_vectors = []  # the float model's expected outputs hold only to ~1e-3 now
    extra = graph.metadata.extra
    extra.setdefault(SCHEME_KEY, "fp16")
    if extra[SCHEME_KEY] == "fp16":  # an fp16 model may compute in fp16 where the CPU can
        extra.setdefault(FP16_COMPUTE_KEY, "allow")
    kept = [f"{c.name}: {c.reason}" for c in choices if c.range_problem]
    if kept:
        extra[KEPT_KEY] = "; ".join(kept)
    else:
        extra.pop(KEPT_KEY, None)
    return graph
