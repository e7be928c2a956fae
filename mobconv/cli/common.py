"""Helpers shared by the subcommands: argument parsing, tables, number formatting."""
from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np

from ..errors import MobconvError, UsageError

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the epilog's example lines as written."""


def parse_input_shapes(items) -> dict:
    """["data=1,3,224,224", "ids=batch,128"] -> {"data": (1, 3, 224, 224), "ids": ("batch", 128)}."""
    shapes = {}
    example = "(for example --input-shape data=1,3,224,224 or ids=batch,128)"
    for item in items or ():
        name, sep, dims = item.rpartition("=")
        if not sep or not name or not dims.strip():
            raise UsageError(f"--input-shape {item!r}: expected NAME=D1,D2,... {example}")
        if name in shapes:
            raise UsageError(f"--input-shape {item!r}: input {name!r} is given twice "
                             "(give each input's shape once)")
        shape = []
        for dim in dims.split(","):
            dim = dim.strip()
            if re.fullmatch(r"\d+", dim) and int(dim) > 0:
                shape.append(int(dim))
            elif _NAME_RE.match(dim):
                shape.append(dim)  # a symbolic dim such as "batch"
            else:
                raise UsageError(
                    f"--input-shape {item!r}: dimension {dim!r} is not a positive integer "
                    f"or a symbol name {example}"
                )
        shapes[name] = tuple(shape)
    return shapes


def parse_input_files(items, model_inputs, notes=None) -> dict:
    """["data=x.npy"] -> {"data": array}; a bare "x.npy" is allowed for a one-input model.

    Each array is checked against the input's signature here, so the error names the
    file: the shape (fixed dims must match, symbolic ones are free) and the dtype.
    A wider or narrower float (float64 -> float32) or integer is cast, with a line in
    `notes`; integers for a float input (raw uint8 pixels?) or floats for an integer
    input are refused: a silent cast would change what the model computes.
    """
    specs = {spec.name: spec for spec in model_inputs}
    names = list(specs)
    feeds = {}
    for item in items or ():
        name, sep, path = item.rpartition("=")
        if not sep or (name not in specs and os.path.exists(item)):
            if len(names) != 1:
                raise UsageError(
                    f"--input {item!r}: the model has {len(names)} inputs ({', '.join(names)}); "
                    f"use NAME=FILE.npy, for example --input {names[0]}={item}"
                )
            name, path = names[0], item
        if name not in specs:
            raise UsageError(f"--input {item!r}: the model has no input {name!r} "
                             f"(inputs: {', '.join(names)})")
        if name in feeds:
            raise UsageError(f"--input {item!r}: input {name!r} is given twice (give each input once)")
        feeds[name] = check_input_array(load_npy(path), specs[name], path, notes)
    return feeds


def check_input_array(array: np.ndarray, spec, path: str, notes=None) -> np.ndarray:
    """`array` for input `spec`, cast if that is harmless; MobconvError naming `path` if not."""
    want = tuple(spec.shape or ())
    shown = "[" + ", ".join(str(d) for d in want) + "]"
    if len(array.shape) != len(want) or any(
        isinstance(d, int) and d >= 0 and d != got for d, got in zip(want, array.shape)
    ):
        free = [str(d) for d in want if not (isinstance(d, int) and d >= 0)]
        hint = f" ({', '.join(free)} may be any size)" if free else ""
        raise MobconvError(f"{path}: input {spec.name!r} expects shape {shown}, "
                           f"the file holds {list(array.shape)}{hint}")
    dtype = spec.dtype or "float32"
    if dtype == "bfloat16" or array.dtype.name == dtype:
        return array
    try:
        target = np.dtype(dtype)
    except TypeError:
        return array
    got = array.dtype
    if target.kind == "f" and got.kind == "f":
        cast = array.astype(target)
    elif target.kind in "iu" and got.kind in "iu":
        cast = array.astype(target)
        if not np.array_equal(cast.astype(np.int64), array.astype(np.int64)):
            raise MobconvError(f"{path}: input {spec.name!r} is {dtype}, the file holds {got.name} "
                               f"values outside the {dtype} range")
    elif target.kind == "b" and got.kind in "iu" and np.isin(array, (0, 1)).all():
        cast = array.astype(bool)
    else:
        hint = (" (raw pixels? apply the model's preprocessing, see `mobconv info`, and save "
                f"with .astype(np.{dtype}))") if target.kind == "f" else \
            f" (save it with .astype(np.{dtype}))"
        raise MobconvError(f"{path}: input {spec.name!r} is {dtype}, the file holds {got.name}{hint}")
    if notes is not None:
        notes.append(f"{path}: {got.name} cast to {dtype}")
    return cast


def load_npy(path: str) -> np.ndarray:
    if os.path.isdir(path):
        raise MobconvError(f"{path}: is a directory, expected a .npy file")
    if not os.path.isfile(path):
        raise MobconvError(f"{path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise MobconvError(f"{path}: not a .npy array file, or an array of Python objects "
                               "(save a numeric array with numpy.save)") from None
        raise MobconvError(f"{path}: not a readable .npy file ({exc}; save arrays with "
                           "numpy.save)") from None
    except (OSError, EOFError) as exc:
        raise MobconvError(f"{path}: not a readable .npy file ({exc}; save arrays with "
                           "numpy.save)") from None
    if not isinstance(array, np.ndarray):
        raise MobconvError(f"{path}: expected a .npy array, got an .npz archive "
                           "(save one array per file with numpy.save)")
    return array


def sanitize_filename(name: str) -> str:
    """A tensor name made safe as a file name: 'conv/1:0' -> 'conv_1_0'."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return safe or "tensor"


def fmt_shape(shape) -> str:
    if shape is None:
        return "?"
    return "[" + ", ".join(str(d) for d in shape) + "]"


def table(rows, headers=None, indent: str = "  ") -> str:
    """Aligned text columns; with headers, numeric-looking cells are right-aligned."""
    rows = [[str(c) for c in row] for row in rows]
    if headers:
        rows = [list(headers)] + rows
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    lines = []
    for k, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            numeric = bool(headers) and k > 0 and bool(re.fullmatch(r"[-+]?[\d.,]+(e[-+]?\d+)?[KMG%]?", cell))
            cells.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        lines.append(indent + "  ".join(cells).rstrip())
    return "\n".join(lines)


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def cli_wording(message: str) -> str:
    """An API error about `input_shapes` in the words of the command line (--input-shape)."""
    def shape(match):
        dims = ",".join(d.strip().strip("'\"") for d in match.group(2).split(",") if d.strip())
        return f"--input-shape {match.group(1)}={dims}"

    message = re.sub(r"input_shapes\['([^']*)'\] = \(([^)]*)\)", shape, message)
    return message.replace("input_shapes names", "--input-shape names")


def shorten(text: str, width: int = 48) -> str:
    """A long tensor name cut in the middle, keeping both ends: 'stage3/.../conv2/bn'."""
    text = str(text)
    if len(text) <= width:
        return text
    keep = width - 3
    return text[: (keep + 1) // 2] + "..." + text[len(text) - keep // 2:]


class Progress:
    """A one-line status on stderr for slow steps (reading a big model, writing it).

    Shown only when stderr is a terminal and not silenced (--quiet), so pipes, logs
    and tests stay clean; each step overwrites the previous one and `done()` erases it.
    """

    def __init__(self, enabled: bool = True):
        stream = sys.stderr
        self.enabled = enabled and hasattr(stream, "isatty") and stream.isatty()
        self.shown = False

    def step(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False
