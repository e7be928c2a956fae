"""What the Python API accepts as model inputs, and seeded random inputs.

One rule for `Model.run`, `runtime.Interpreter.run` and `mobconv run`'s input
files (`cli/common.py check_input_array` applies the same kinds): a value is
turned into an array of the input's dtype only when that cannot change what
the model computes:

1. feeds are a mapping of input name (str) -> array-like; a list or a bare
   array is refused (which input would it be?);
2. a float input (float32, float16, bfloat16) takes any float array, cast by
   value (float64 -> float32 rounds, as `mobconv run` does with a note).
   Integer, bool, complex, string and object arrays are refused: raw uint8
   pixels or class ids fed to a float input are a preprocessing bug that a
   silent cast hides (onnxruntime and TFLite refuse them too);
3. an integer input takes integer arrays whose values fit its range;
4. a bool input takes bool arrays, or integer arrays holding only 0 and 1.

Refusals raise `ArgumentError` (a MobconvError that is also a ValueError and a
TypeError) naming the model file and the input.

Random inputs (`api.random_inputs`, used when no inputs are given) are drawn
only for shapes whose element count (computed with Python ints, so 2^40 x 2^40
does not wrap) is at most MAX_RANDOM_ELEMENTS and whose rank is at most
MAX_RANDOM_RANK; larger declared shapes are a ShapeError naming the file and
the input, before anything is allocated.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import ArgumentError, ShapeError

MAX_RANDOM_ELEMENTS = 1 << 28  # 1 GiB of float32 (2 GiB while numpy draws float64)
MAX_RANDOM_RANK = 32  # numpy 1.x's limit (numpy 2 allows 64); the runtime's is 8

_FLOATS = ("float32", "float16", "bfloat16")


_NP_DTYPES: dict = {}


def _np_dtype(name: str):
    """np.dtype(name), cached; None for names numpy does not know."""
    if name not in _NP_DTYPES:
        try:
            _NP_DTYPES[name] = np.dtype(name)
        except TypeError:
            _NP_DTYPES[name] = None
    return _NP_DTYPES[name]


def _prefix(where) -> str:
    return f"{where}: " if where else ""


def check_seed(seed, what: str = "seed") -> int:
    """`seed` as an int >= 0, else ArgumentError (numpy's generators take no negative seed)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ArgumentError(f"{what} must be a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ArgumentError(f"{what} must be a non-negative integer, got {int(seed)}")
    return int(seed)


def check_threads(threads, limit: int = 256) -> int:
    """`threads` as an int in [1, limit], else ArgumentError (2.5 and True are refused)."""
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, (int, np.integer)):
        raise ArgumentError(f"threads must be an integer between 1 and {limit}, got {threads!r}")
    if not 1 <= threads <= limit:
        raise ArgumentError(f"threads must be between 1 and {limit}, got {int(threads)}")
    return int(threads)


def check_mapping(feeds, where=None) -> dict:
    """`feeds` as a dict of str -> value, else ArgumentError."""
    if not isinstance(feeds, Mapping):
        what = "a numpy array" if isinstance(feeds, np.ndarray) else f"a {type(feeds).__name__}"
        raise ArgumentError(f"{_prefix(where)}inputs must be a dict of input name -> array, "
                            f"got {what} (e.g. run({{'input': x}}))")
    bad = [k for k in feeds if not isinstance(k, str)]
    if bad:
        raise ArgumentError(f"{_prefix(where)}input names must be strings, got {bad[0]!r} "
                            f"({type(bad[0]).__name__})")
    return dict(feeds)


def _to_bfloat16_bits(arr: np.ndarray) -> np.ndarray:
    """float array -> bfloat16 bit patterns (uint16), rounded to nearest even."""
    try:
        import ml_dtypes

        return arr.astype(ml_dtypes.bfloat16).view(np.uint16)
    except ImportError:
        bits = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        nan = np.isnan(arr)
        rounded[nan] = 0x7FC0
        return rounded


def as_input_array(value, dtype: str, name: str, where=None, bfloat16_bits: bool = False) -> np.ndarray:
    """`value` as an array of input `name`'s `dtype`, by the rules in this module's
    docstring. With `bfloat16_bits` (the runtime binding), a bfloat16 input comes back
    as its raw uint16 bits: bfloat16 arrays are reinterpreted, float arrays rounded,
    uint16 arrays taken as bits already."""
    dtype = dtype or "float32"
    if isinstance(value, np.ndarray) and dtype != "bfloat16" and value.dtype == _np_dtype(dtype):
        return value  # the common case, kept cheap: run() is called in loops
    here = f"{_prefix(where)}input {name!r}"
    if isinstance(value, (str, bytes)):
        raise ArgumentError(f"{here}: expected a {dtype} array, got a {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ArgumentError(f"{here}: cannot be made an array ({exc})") from None
    got = arr.dtype
    if got.name == dtype:
        return arr
    if dtype in _FLOATS:
        if dtype == "bfloat16" and got.name == "bfloat16":
            return arr.view(np.uint16) if bfloat16_bits else arr
        if dtype == "bfloat16" and bfloat16_bits and got == np.uint16:
            return arr  # raw bits already
        if got.kind == "f" or got.name == "bfloat16":
            if dtype == "bfloat16":
                return _to_bfloat16_bits(arr.astype(np.float32)) if bfloat16_bits else arr.astype(np.float32)
            return arr.astype(dtype)
        raise ArgumentError(f"{here} is {dtype}, got a {got.name} array; it is not cast "
                            f"(raw pixels or ids? apply the model's preprocessing, then "
                            f".astype(np.{'float32' if dtype == 'bfloat16' else dtype}))")
    try:
        target = np.dtype(dtype)
    except TypeError:
        return arr
    if target.kind in "iu" and got.kind in "iu":
        info = np.iinfo(target)
        if arr.size and (int(arr.min()) < info.min or int(arr.max()) > info.max):
            raise ArgumentError(f"{here} is {dtype}, got {got.name} values outside the "
                                f"{dtype} range [{info.min}, {info.max}]")
        return arr.astype(target)
    if target.kind == "b" and got.kind in "iu":
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ArgumentError(f"{here} is bool, got {got.name} values other than 0 and 1")
        return arr.astype(bool)
    raise ArgumentError(f"{here} is {dtype}, got a {got.name} array; it is not cast "
                        f"(give .astype(np.{dtype}) if that is what you mean)")


def check_random_shape(shape, name: str, where=None) -> None:
    """ShapeError (exit 1 in the CLI: the file, not the command line, is the problem)
    unless random data of `shape` (ints) can be drawn: rank and the element count
    (Python ints, checked before any allocation) within the limits."""
    here = f"{_prefix(where)}input {name!r}"
    hint = "; give this input's data explicitly (run(inputs=...), or mobconv run --input NAME=FILE.npy)"
    if len(shape) > MAX_RANDOM_RANK:
        raise ShapeError(f"{here} has rank {len(shape)}: random inputs are limited to rank "
                            f"{MAX_RANDOM_RANK}{hint}")
    count = 1
    for d in shape:
        count *= int(d)
    if count > MAX_RANDOM_ELEMENTS:
        shown = "[" + ", ".join(str(d) for d in shape) + "]"
        amount = f"{count:,}" if count < 10 ** 15 else f"about 2^{count.bit_length() - 1}"
        raise ShapeError(f"{here} declares shape {shown} = {amount} elements: random inputs "
                            f"are limited to {MAX_RANDOM_ELEMENTS:,} elements (2^28){hint}")
