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
    for item in items or ():
        name, sep, dims = item.rpartition("=")
        if not sep or not name or not dims:
            raise UsageError(
                f"--input-shape {item!r}: expected NAME=D1,D2,... (for example data=1,3,224,224)"
            )
        shape = []
        for dim in dims.split(","):
            dim = dim.strip()
            if re.fullmatch(r"\d+", dim):
                shape.append(int(dim))
            elif _NAME_RE.match(dim):
                shape.append(dim)  # a symbolic dim such as "batch"
            else:
                raise UsageError(
                    f"--input-shape {item!r}: dimension {dim!r} is not a non-negative integer "
                    "or a symbol name (for example data=1,3,224,224)"
                )
        shapes[name] = tuple(shape)
    return shapes


def parse_input_files(items, model_inputs) -> dict:
    """["data=x.npy"] -> {"data": array}; a bare "x.npy" is allowed for a one-input model."""
    names = [spec.name for spec in model_inputs]
    feeds = {}
    for item in items or ():
        name, sep, path = item.rpartition("=")
        if not sep:
            if len(names) != 1:
                raise UsageError(
                    f"--input {item!r}: the model has {len(names)} inputs ({', '.join(names)}); "
                    "use NAME=FILE.npy"
                )
            name, path = names[0], item
        if name not in names:
            raise UsageError(f"--input {item!r}: the model has no input {name!r} "
                             f"(inputs: {', '.join(names)})")
        feeds[name] = load_npy(path)
    return feeds


def load_npy(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise MobconvError(f"{path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise MobconvError(f"{path}: not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise MobconvError(f"{path}: expected a .npy array, got an .npz archive")
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
