"""`mobconv run`: run a .mob model on .npy inputs (or seeded random data) and show outputs."""
from __future__ import annotations

import io
import os
import time

import numpy as np

from .. import api, output_files
from ..errors import MobconvError, UsageError
from .common import (HelpFormatter, fmt_shape, out, parse_input_files, sanitize_filename, shorten,
                     table)

MAX_THREADS = 256  # the runtime's limit (mobrt_interpreter_create)

EPILOG = """\
examples:
  mobconv run mobilenet.mob                            # seeded random inputs
  mobconv run mobilenet.mob --input input=cat.npy --save outputs/
  mobconv run two_inputs.mob --input a=a.npy --input b=b.npy --reference

Inputs not given with --input get seeded random data (--seed, default 0):
standard normal floats, integers in [0, 10), random bools. Symbolic dims
(e.g. 'batch') are set to 1. An input file must match the input's shape
(symbolic dims free) and kind: float64 is cast to float32 (noted), but integer
data for a float input (raw uint8 pixels) is refused; apply the preprocessing
that `mobconv info` shows first. --save writes DIR/<output name>.npy, with
characters other than letters, digits, '.', '_' and '-' replaced by '_'.

What is shown per output: min/max/mean/std; top-5 classes for [N, classes]
(or [N, classes, 1, 1]) float outputs; the detections (label, score, box) for
SSD-style [N, 1, K, 7] outputs; the per-pixel class (argmax over C) histogram
for [N, C, H, W] maps.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("run", parents=[parent], help="run a .mob model and summarize outputs",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .mob file, e.g. mobilenet.mob")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input array saved with numpy.save (repeatable), e.g. "
                        "--input data=cat.npy; NAME= may be omitted for one-input models")
    p.add_argument("--save", metavar="DIR",
                   help="write each output as DIR/<name>.npy (DIR is created), e.g. --save out/")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for random inputs, >= 0 (default 0), e.g. --seed 3")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help=f"threads for the C++ runtime, 1..{MAX_THREADS} (default 1), e.g. --threads 4")
    p.add_argument("--reference", action="store_true",
                   help="use the numpy reference interpreter even if the C++ runtime is available")
    p.add_argument("--isa", metavar="NAME",
                   help="cap the C++ runtime's kernels at this instruction set: scalar (reference "
                        "kernels), avx2, avx_vnni, avx512, avx512_vnni, neon, neon_dot, neon_fp16 "
                        "(default: the best this CPU has), e.g. --isa avx2 to compare kernels")
    p.set_defaults(func=run)


STATS_CHUNK = 1 << 22  # elements widened to float64 at a time


def summary_stats(array: np.ndarray) -> tuple:
    """(min, max, mean, std) in float64, over chunks of STATS_CHUNK elements (merged
    with Chan's formula), so a 2 GiB output does not need a 16 GiB float64 copy.
    NaN anywhere makes all four NaN, as numpy's would be."""
    flat = np.asarray(array).reshape(-1)
    count, mean, m2 = 0, 0.0, 0.0
    lo = hi = None
    for start in range(0, flat.size, STATS_CHUNK):
        chunk = flat[start:start + STATS_CHUNK].astype(np.float64)
        n, chunk_mean = chunk.size, float(chunk.mean())
        chunk_m2 = float(np.square(chunk - chunk_mean).sum())
        delta, total = chunk_mean - mean, count + n
        mean += delta * n / total
        m2 += chunk_m2 + delta * delta * count * n / total
        count = total
        lo = chunk.min() if lo is None else np.minimum(lo, chunk.min())
        hi = chunk.max() if hi is None else np.maximum(hi, chunk.max())
    return float(lo), float(hi), mean, float(np.sqrt(m2 / count))


def stats_row(name: str, array: np.ndarray) -> tuple:
    a = np.asarray(array)
    if a.size == 0 or not np.issubdtype(a.dtype, np.number):
        return (name, a.dtype.name, fmt_shape(a.shape), "-", "-", "-", "-")
    lo, hi, mean, std = summary_stats(a)
    return (name, a.dtype.name, fmt_shape(a.shape), f"{lo:.6g}", f"{hi:.6g}", f"{mean:.6g}", f"{std:.6g}")


def top5(array: np.ndarray) -> list:
    """Lines 'row i: top-5 class (score)' for a 2-D [batch, classes] output."""
    lines = []
    for i, row in enumerate(np.asarray(array)[:4]):
        idx = np.argsort(-row, kind="stable")[:5]
        lines.append(f"    row {i}: " + ", ".join(f"{j} ({row[j]:.4g})" for j in idx))
    return lines


def detections(array: np.ndarray, limit: int = 10) -> list:
    """Lines for an SSD DetectionOutput [N, 1, K, 7] (image, label, score, xmin, ymin, xmax,
    ymax), best score first; rows with image id -1 are Caffe's padding and are skipped."""
    rows = np.asarray(array, dtype=np.float64).reshape(-1, 7)
    rows = rows[rows[:, 0] >= 0]
    rows = rows[np.argsort(-rows[:, 2], kind="stable")]
    lines = [table([(int(r[0]), int(r[1]), f"{r[2]:.4f}", *(f"{v:.4f}" for v in r[3:]))
                    for r in rows[:limit]],
                   ("image", "label", "score", "xmin", "ymin", "xmax", "ymax"), indent="    ")]
    if len(rows) > limit:
        lines.append(f"    ... {len(rows) - limit} more")
    return lines if len(rows) else ["    (no detections)"]


def class_map(array: np.ndarray) -> list:
    """Per-pixel argmax over C of an [N, C, H, W] map: the 5 most frequent classes per image."""
    lines = []
    for i, image in enumerate(np.asarray(array)[:4]):
        labels = np.argmax(image, axis=0)
        counts = np.bincount(labels.ravel(), minlength=image.shape[0])
        top = np.argsort(-counts, kind="stable")[:5]
        lines.append(f"    row {i}: " + ", ".join(
            f"{c} ({counts[c] / labels.size:.1%})" for c in top if counts[c]))
    return lines


def describe_output(name: str, array: np.ndarray) -> list:
    """What a user wants to see of one output beyond its statistics, by its shape."""
    a = np.asarray(array)
    if not np.issubdtype(a.dtype, np.floating) or a.size == 0:
        return []
    short = shorten(name)
    if a.ndim == 4 and a.shape[1] == 1 and a.shape[3] == 7:
        return [f"  {short} detections (of {a.shape[2]} rows):"] + detections(a)
    if a.ndim >= 2 and a.shape[1] > 1 and all(d == 1 for d in a.shape[2:]):
        return [f"  {short} top-5 (class (score)):"] + top5(a.reshape(a.shape[0], a.shape[1]))
    if a.ndim == 4 and 1 < a.shape[1] <= 1000 and a.shape[2] * a.shape[3] > 1:
        return ([f"  {short} per-pixel class (argmax over {a.shape[1]} channels) of "
                 f"{a.shape[2]}x{a.shape[3]} pixels, most frequent first:"] + class_map(a))
    return []


def save_paths(names, directory: str) -> dict:
    """Output name -> DIR/<sanitized name>.npy, made unique ('a', 'a_1', ...)."""
    paths, used = {}, set()
    for name in names:
        base = sanitize_filename(name)
        stem, k = base, 1
        while stem in used:
            stem, k = f"{base}_{k}", k + 1
        used.add(stem)
        paths[name] = os.path.join(directory, stem + ".npy")
    return paths


def input_paths(items) -> list:
    """The files named by --input items ("x.npy" or "NAME=x.npy"): --save must not replace them."""
    return [p for item in items or () for p in dict.fromkeys((item, item.rpartition("=")[2]))
            if os.path.isfile(p)]


def save_outputs(outputs: dict, directory: str) -> list:
    """Write each output with the safe writer (atomic; checks as for -o)."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise MobconvError(f"--save {directory}: exists and is not a directory")
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, path in save_paths(outputs, directory).items():
        data = io.BytesIO()
        np.save(data, np.asarray(outputs[name]))
        output_files.write_atomic(path, data.getbuffer(), option="--save")
        written.append(path)
    return written


def run(args) -> int:
    if not 1 <= args.threads <= MAX_THREADS:
        raise UsageError(f"--threads {args.threads}: must be between 1 and {MAX_THREADS}")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: must be a non-negative integer (numpy's random "
                         "generators take no negative seed), e.g. --seed 3")
    check_isa(args)
    model = api.load(args.model)
    notes = []
    feeds = parse_input_files(args.input, model.inputs, notes)
    if args.save:
        check_save_dir(args.save, save_paths([s.name for s in model.outputs], args.save),
                       [args.model] + input_paths(args.input))
    missing = [s for s in model.inputs if s.name not in feeds]
    if missing:
        feeds.update(api.random_inputs(api.declared_specs(model.graph, missing), seed=args.seed,
                                       source=args.model))
    for spec in model.inputs:
        how = "random (seed %d)" % args.seed if spec in missing else "from file"
        a = feeds[spec.name]
        out(f"input  {shorten(spec.name)}: {a.dtype.name}{fmt_shape(a.shape)} {how}")
    for note in notes:
        out(f"note: {note}")
    backend = "reference" if args.reference else "auto"
    start = time.perf_counter()
    outputs = model.run(feeds, backend=backend, threads=args.threads, isa=args.isa)
    elapsed_ms = (time.perf_counter() - start) * 1e3
    used = "C++ runtime" if model.last_backend == "runtime" else "numpy reference"
    if args.isa and model.last_backend == "runtime":
        used += f", kernels capped at {args.isa}"
    out(f"\nOutputs ({used}, {elapsed_ms:.1f} ms incl. load):")
    out(table([stats_row(shorten(n), a) for n, a in outputs.items()],
              ("name", "dtype", "shape", "min", "max", "mean", "std")))
    for name, a in outputs.items():
        for line in describe_output(name, a):
            out(line)
    if args.save:
        paths = save_outputs(outputs, args.save)
        out(f"\nSaved {len(paths)} output(s) to {args.save}: "
            + ", ".join(os.path.basename(p) for p in paths))
    return 0


def check_isa(args) -> None:
    """--isa names an instruction set this CPU can run (and needs the C++ runtime)."""
    if args.isa is None:
        return
    if args.reference:
        raise UsageError("--isa and --reference: --isa caps the C++ runtime's kernels; the numpy "
                         "reference has none")
    from .. import runtime

    known = [n for n in runtime._ISA if n and n != "any"]
    if args.isa not in known:
        raise UsageError(f"--isa {args.isa}: unknown instruction set (known: {', '.join(known)})")
    if not runtime.available():
        raise MobconvError("--isa: the C++ runtime is not built (pip install -e .)")
    supported = runtime.supported_isas()
    if args.isa not in supported:
        raise UsageError(f"--isa {args.isa}: this CPU cannot run it (it can run: {', '.join(supported)})")


def check_save_dir(directory: str, paths=None, inputs=()) -> None:
    """Fail before running if --save cannot be used: the directory, and each file it
    will hold (`paths`: name -> path) by the output rules (`output_files.check_output`,
    `inputs` are the model and --input files). Records the files for the interrupt line."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise MobconvError(f"--save {directory}: exists and is not a directory "
                           "(give a directory, it is created if missing)")
    parent = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(directory) and not os.path.isdir(parent):
        raise MobconvError(f"--save {directory}: parent directory {parent} does not exist")
    target = directory if os.path.isdir(directory) else parent
    if not os.access(target, os.W_OK):
        raise MobconvError(f"--save {directory}: directory {target} is not writable")
    for path in (paths or {}).values():
        if os.path.isdir(directory):
            output_files.check_output(path, inputs, option="--save")
        output_files.OUTPUTS.plan(path)
