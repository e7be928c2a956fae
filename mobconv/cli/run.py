"""`mobconv run`: run a .mob model on .npy inputs (or seeded random data) and show outputs."""
from __future__ import annotations

import os
import time

import numpy as np

from .. import api
from ..errors import MobconvError, UsageError
from .common import HelpFormatter, fmt_shape, out, parse_input_files, sanitize_filename, table

EPILOG = """\
examples:
  mobconv run mobilenet.mob                            # seeded random inputs
  mobconv run mobilenet.mob --input input=cat.npy --save outputs/
  mobconv run two_inputs.mob --input a=a.npy --input b=b.npy --reference

Inputs not given with --input get seeded random data (--seed, default 0):
standard normal floats, integers in [0, 10), random bools. Symbolic dims
(e.g. 'batch') are set to 1. --save writes DIR/<output name>.npy, with
characters other than letters, digits, '.', '_' and '-' replaced by '_'.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("run", parents=[parent], help="run a .mob model and summarize outputs",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .mob file")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input array (repeatable); NAME= may be omitted for one-input models")
    p.add_argument("--save", metavar="DIR", help="write each output as DIR/<name>.npy")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs (default 0)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads for the C++ runtime (default 1)")
    p.add_argument("--reference", action="store_true",
                   help="use the numpy reference interpreter even if the C++ runtime is available")
    p.set_defaults(func=run)


def stats_row(name: str, array: np.ndarray) -> tuple:
    a = np.asarray(array)
    if a.size == 0 or not np.issubdtype(a.dtype, np.number):
        return (name, a.dtype.name, fmt_shape(a.shape), "-", "-", "-", "-")
    f = a.astype(np.float64)
    return (name, a.dtype.name, fmt_shape(a.shape), f"{f.min():.6g}", f"{f.max():.6g}",
            f"{f.mean():.6g}", f"{f.std():.6g}")


def top5(array: np.ndarray) -> list:
    """Lines 'row i: top-5 class (score)' for a 2-D [batch, classes] output."""
    lines = []
    for i, row in enumerate(np.asarray(array)[:4]):
        idx = np.argsort(-row, kind="stable")[:5]
        lines.append(f"    row {i}: " + ", ".join(f"{j} ({row[j]:.4g})" for j in idx))
    return lines


def save_outputs(outputs: dict, directory: str) -> list:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise MobconvError(f"--save {directory}: exists and is not a directory")
    os.makedirs(directory, exist_ok=True)
    written, used = [], set()
    for name, array in outputs.items():
        base = sanitize_filename(name)
        stem, k = base, 1
        while stem in used:
            stem, k = f"{base}_{k}", k + 1
        used.add(stem)
        path = os.path.join(directory, stem + ".npy")
        np.save(path, np.asarray(array))
        written.append(path)
    return written


def run(args) -> int:
    model = api.load(args.model)
    feeds = parse_input_files(args.input, model.inputs)
    missing = [s for s in model.inputs if s.name not in feeds]
    if missing:
        feeds.update(api.random_inputs(missing, seed=args.seed))
    for spec in model.inputs:
        how = "random (seed %d)" % args.seed if spec in missing else "from file"
        a = feeds[spec.name]
        out(f"input  {spec.name}: {a.dtype.name}{fmt_shape(a.shape)} {how}")
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    backend = "reference" if args.reference else "auto"
    start = time.perf_counter()
    outputs = model.run(feeds, backend=backend, threads=args.threads)
    elapsed_ms = (time.perf_counter() - start) * 1e3
    used = "C++ runtime" if model.last_backend == "runtime" else "numpy reference"
    out(f"\nOutputs ({used}, {elapsed_ms:.1f} ms incl. load):")
    out(table([stats_row(n, a) for n, a in outputs.items()],
              ("name", "dtype", "shape", "min", "max", "mean", "std")))
    for name, a in outputs.items():
        a = np.asarray(a)
        if a.ndim == 2 and a.shape[1] > 1 and np.issubdtype(a.dtype, np.floating):
            out(f"  {name} top-5 (class (score)):")
            for line in top5(a):
                out(line)
    if args.save:
        paths = save_outputs(outputs, args.save)
        out(f"\nSaved {len(paths)} output(s) to {args.save}: "
            + ", ".join(os.path.basename(p) for p in paths))
    return 0
