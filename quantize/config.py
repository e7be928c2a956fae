"""The quantizer's options: one frozen dataclass, validated before any work.

`QuantConfig.create(**options)` checks every option of `quantize.quantize(...)`
(types, values, combinations) and raises `ArgumentError` (a UsageError: exit 2 on
the command line) with one line naming the option and the rule. The same checks
serve the `mobconv quantize` command: `create(..., names=CLI_NAMES)` words the
messages with the command's flags (`--max-sqnr-drop`) instead of Python's keywords
(`max_sqnr_drop=`). Checks that need the model (`exclude` naming unknown nodes) are
in `check_against(graph)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Callable, Optional

import numpy as np

from mobconv.errors import ArgumentError

SCHEMES = ("int8", "int8-weights", "dynamic", "fp16")
METHODS = ("minmax", "percentile", "entropy", "mse")
IO_DTYPES = ("float32", "int8")
# The calibration method used when none is given. One line: the evidence of
# model_zoo (logit SQNR and argmax flips against onnxruntime) decides it.
DEFAULT_METHOD = "mse"
DEFAULT_PERCENTILE = 99.99

# How each option is named in messages: the Python keyword or the command-line flag.
# (`evaluate`/`max_drop` exist in Python only.)
PY_NAMES = {key: key for key in (
    "scheme", "method", "per_tensor", "symmetric_activations", "io_dtype", "percentile",
    "equalize", "bias_correction", "exclude", "max_sqnr_drop", "min_sqnr", "evaluate",
    "max_drop", "progress", "num_samples", "calibration")}
CLI_NAMES = {
    "scheme": "--scheme", "method": "--method", "per_tensor": "--per-tensor",
    "symmetric_activations": "--symmetric-activations", "io_dtype": "--io-dtype",
    "percentile": "--percentile", "equalize": "--no-equalize",
    "bias_correction": "--no-bias-correction", "exclude": "--exclude",
    "max_sqnr_drop": "--max-sqnr-drop", "min_sqnr": "--min-sqnr", "evaluate": "evaluate",
    "max_drop": "max_drop", "progress": "--quiet", "num_samples": "--num-samples",
    "calibration": "--calib",
}


def _fail(where: str, message: str) -> ArgumentError:
    return ArgumentError(f"{where}{message}")


@dataclass(frozen=True)
class QuantConfig:
    """Every option of `quantize()`, checked. Build it with `QuantConfig.create`."""

    scheme: str = "int8"
    method: str = DEFAULT_METHOD
    per_tensor: bool = False
    symmetric_activations: bool = False
    io_dtype: str = "float32"
    percentile: float = DEFAULT_PERCENTILE
    equalize: Optional[bool] = None  # None: on where it helps (equalize.should_equalize)
    bias_correction: bool = True
    exclude: tuple = ()
    max_sqnr_drop: Optional[float] = None
    min_sqnr: Optional[float] = None
    evaluate: Optional[Callable] = field(default=None, compare=False)
    max_drop: Optional[float] = None
    progress: Optional[bool] = None
    num_samples: Optional[int] = None
    has_calibration: bool = False

    @property
    def static(self) -> bool:
        """Full-integer int8 (calibrated activations)."""
        return self.scheme == "int8"

    @property
    def budget(self) -> bool:
        """An accuracy budget is set (mixed precision: layers may fall back to float)."""
        return self.max_sqnr_drop is not None or self.min_sqnr is not None or self.evaluate is not None

    def metadata(self) -> dict:
        """The options recorded in the model's metadata (`quantization.*`)."""
        meta = {"scheme": self.scheme}
        if self.scheme in ("int8", "int8-weights", "dynamic"):
            meta["weights"] = "per-tensor" if self.per_tensor else "per-channel"
        if self.static:
            meta["method"] = self.method
            if self.method == "percentile":
                meta["percentile"] = repr(float(self.percentile))
            meta["activations"] = "symmetric" if self.symmetric_activations else "asymmetric"
            meta["io_dtype"] = self.io_dtype
            meta["equalize"] = {None: "auto", True: "true", False: "false"}[self.equalize]
            meta["bias_correction"] = "true" if self.bias_correction else "false"
        if self.exclude:
            meta["exclude"] = ",".join(self.exclude)
        return meta

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def create(cls, *, scheme="int8", method=None, per_tensor=False, symmetric_activations=False,
               io_dtype="float32", percentile=None, equalize=None, bias_correction=None,
               exclude=(), max_sqnr_drop=None, min_sqnr=None, evaluate=None, max_drop=None,
               progress=None, num_samples=None, calibration_given=False, names=None,
               where="quantize(): ") -> "QuantConfig":
        """The checked config; `method=None`, `percentile=None`, `equalize=None` and
        `bias_correction=None` mean the defaults (see `quantize`). `names` words the
        messages (PY_NAMES or CLI_NAMES); `where` starts each message."""
        n = names or PY_NAMES

        def fail(message):
            return _fail(where, message)

        if not isinstance(scheme, str) or scheme not in SCHEMES:
            raise fail(f"{_show(n['scheme'], scheme)} is not a quantization scheme "
                       f"(known: {', '.join(SCHEMES)})")
        if method is not None and (not isinstance(method, str) or method not in METHODS):
            raise fail(f"{_show(n['method'], method)} is not a calibration method "
                       f"(known: {', '.join(METHODS)})")
        for key, value in (("per_tensor", per_tensor), ("symmetric_activations", symmetric_activations)):
            if not isinstance(value, bool):
                raise fail(f"{n[key]} must be True or False, got {value!r}")
        for key, value in (("equalize", equalize), ("bias_correction", bias_correction),
                           ("progress", progress)):
            if value is not None and not isinstance(value, bool):
                raise fail(f"{n[key]} must be None (automatic), True or False, got {value!r}")
        if not isinstance(io_dtype, str) or io_dtype not in IO_DTYPES:
            raise fail(f"{_show(n['io_dtype'], io_dtype)} is not a graph input/output dtype "
                       f"(known: {', '.join(IO_DTYPES)})")
        if percentile is not None:
            if isinstance(percentile, bool) or not isinstance(percentile, Real) \
                    or not math.isfinite(percentile) or not 0 < percentile <= 100:
                raise fail(f"{_show(n['percentile'], percentile)} must be a number in (0, 100], "
                           "e.g. 99.99")
        exclude = _names_tuple(exclude, n["exclude"], fail)
        max_sqnr_drop = _number(max_sqnr_drop, n["max_sqnr_drop"], fail, minimum=0.0)
        min_sqnr = _number(min_sqnr, n["min_sqnr"], fail)
        max_drop = _number(max_drop, n["max_drop"], fail, minimum=0.0)
        if num_samples is not None and (isinstance(num_samples, (bool, np.bool_))
                                        or not isinstance(num_samples, Integral) or num_samples < 1):
            raise fail(f"{_show(n['num_samples'], num_samples)} must be a positive integer, e.g. 200")
        num_samples = None if num_samples is None else int(num_samples)
        if evaluate is not None and not callable(evaluate):
            raise fail(f"{n['evaluate']} must be a function model -> score (higher is better), "
                       f"got a {type(evaluate).__name__}")

        # ---- combinations -------------------------------------------------------------
        if max_sqnr_drop is not None and min_sqnr is not None:
            raise fail(f"{n['max_sqnr_drop']} and {n['min_sqnr']} are two budgets for the same "
                       "output SQNR; give one of them")
        if evaluate is not None and max_drop is None:
            raise fail(f"{n['evaluate']} needs {n['max_drop']} (the largest drop of your metric "
                       "the quantized model may have, e.g. 0.01)")
        if max_drop is not None and evaluate is None:
            raise fail(f"{n['max_drop']} needs {n['evaluate']} (a function model -> score that "
                       "measures your metric on your data)")
        if evaluate is not None and (max_sqnr_drop is not None or min_sqnr is not None):
            which = n["max_sqnr_drop"] if max_sqnr_drop is not None else n["min_sqnr"]
            raise fail(f"{n['evaluate']} with {n['max_drop']} and {which} are two accuracy budgets; "
                       "give one of them")
        if scheme != "int8":
            given = [(key, v) for key, v in (
                ("method", method), ("percentile", percentile),
                ("symmetric_activations", symmetric_activations or None),
                ("bias_correction", bias_correction),
                ("io_dtype", None if io_dtype == "float32" else io_dtype),
                ("max_sqnr_drop", max_sqnr_drop), ("min_sqnr", min_sqnr),
                ("evaluate", evaluate)) if v is not None]
            if scheme == "fp16":
                given += [(key, v) for key, v in (("per_tensor", per_tensor or None),
                                                  ("equalize", equalize)) if v is not None]
            this = _show(n["scheme"], scheme)
            if given:
                raise fail(f"{n[given[0][0]]} applies to {_show(n['scheme'], 'int8')} only "
                           f"({this} {_SCHEME_WORDS[scheme]})")
            if calibration_given:
                raise fail(f"{this} uses no calibration data ({_SCHEME_WORDS[scheme]}); "
                           f"drop {n['calibration']}, or use {_show(n['scheme'], 'int8')}")
            if num_samples is not None:
                raise fail(f"{n['num_samples']} limits the calibration data, which {this} "
                           "does not use")
        else:
            if not calibration_given:
                cli = n["calibration"].startswith("--")
                what = ("--calib DIR: a folder of .npy/.npz files or images" if cli else
                        "calibration: a folder of .npy/.npz files or images, a list of feed "
                        "dicts, or a reader with get_next()")
                raise fail(f"{_show(n['scheme'], 'int8')} needs calibration data ({what}); "
                           f"without data use {_show(n['scheme'], 'int8-weights')} (weight-only) "
                           f"or {_show(n['scheme'], 'fp16')}")
        resolved_method = method or DEFAULT_METHOD
        if percentile is not None and resolved_method != "percentile":
            raise fail(f"{n['percentile']} applies to {_show(n['method'], 'percentile')} only "
                       f"(the method is {resolved_method!r})")
        return cls(
            scheme=scheme, method=resolved_method, per_tensor=per_tensor,
            symmetric_activations=symmetric_activations, io_dtype=io_dtype,
            percentile=float(DEFAULT_PERCENTILE if percentile is None else percentile),
            equalize=False if scheme == "fp16" else equalize,
            bias_correction=(scheme == "int8") if bias_correction is None else bias_correction,
            exclude=exclude, max_sqnr_drop=max_sqnr_drop, min_sqnr=min_sqnr, evaluate=evaluate,
            max_drop=max_drop, progress=progress, num_samples=num_samples,
            has_calibration=bool(calibration_given))

    def check_against(self, graph, source: str = "", names=None, also=()) -> None:
        """Checks that need the model: every `exclude` name is a node of `graph` (or in
        `also`: the names of the nodes the quantizer splits off, e.g. 'conv/residual')."""
        n = names or PY_NAMES
        nodes = {node.name for node in graph.nodes} | set(also)
        unknown = [name for name in self.exclude if name not in nodes]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown)
            sample = ", ".join(node.name for node in graph.nodes[:6])
            more = ", ..." if len(graph.nodes) > 6 else ""
            where = f"{source}: " if source else "quantize(): "
            raise ArgumentError(f"{where}{n['exclude']} names no node of the model: {shown} "
                                f"(nodes: {sample}{more}; `mobconv info` lists them)")


_SCHEME_WORDS = {
    "int8-weights": "stores int8 weights and computes in float: no activation ranges",
    "dynamic": "quantizes activations at run time, row by row: no activation ranges",
    "fp16": "stores float16 weights: no int8 ranges",
}


def _show(name: str, value) -> str:
    """`method='x'` (a Python keyword) or `--method x` (a flag)."""
    if name.startswith("--"):
        return f"{name} {value}"
    return f"{name}={value!r}"


def _names_tuple(value, name: str, fail) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise fail(f"{name} must be a list of node names, got a {type(value).__name__}") from None
    for item in items:
        if not isinstance(item, str) or not item:
            raise fail(f"{name} must be a list of node names, got {item!r} in it")
    return tuple(dict.fromkeys(items))


def _number(value, name: str, fail, minimum=None):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise fail(f"{_show(name, value)} must be a finite number (decibels or metric units)")
    if minimum is not None and value < minimum:
        raise fail(f"{_show(name, value)} must be >= {minimum:g}")
    return float(value)
