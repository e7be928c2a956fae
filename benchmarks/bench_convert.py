"""Conversion time against graph size: `mobconv onnx2mob` on long synthetic ONNX graphs.

    python benchmarks/bench_convert.py                          # all shapes, 2,500 / 10,000 / 20,000 nodes
    python benchmarks/bench_convert.py --shapes add_chain --nodes 2500 20000
    python benchmarks/bench_convert.py --profile add_chain:20000   # cProfile, top 25 by cumulative time

Graph shapes (tests/long_graphs.py): `add_chain` (one constant per node, the case of
issue 7), `conv_bn_relu` (BN folds, Relu fuses), `fan` (fan-out to n/3 branches with an
Identity each, fan-in through an Add tree).
Each size converts through the whole CLI path (frontend, shape inference, passes,
writer) in this process, once per shape and size. Prints wall and CPU seconds
(this process; steadier than wall time on a shared machine), CPU microseconds per node
and the growth of the time per node against the previous size: about 1x for linear
behaviour, about the size ratio (4x from 2,500 to 10,000) for quadratic. Numbers are
reported, never asserted (tests/test_passes_scaling.py checks operation counts instead).
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from long_graphs import SHAPES, build  # noqa: E402

DEFAULT_NODES = (2500, 10000, 20000)


def convert_cli(model_path: str, out_path: str) -> None:
    """Run `mobconv onnx2mob MODEL -o OUT -q` in this process (what a user runs)."""
    from mobconv.cli.main import main

    with contextlib.redirect_stdout(io.StringIO()):  # the one-line summary
        code = main(["onnx2mob", model_path, "-o", out_path, "-q"])
    if code not in (0, None):
        raise SystemExit(f"onnx2mob failed with exit code {code}")


def time_one(shape: str, nodes: int, workdir: str) -> tuple:
    """(wall seconds, CPU seconds) of one conversion."""
    import onnx

    path = os.path.join(workdir, f"{shape}_{nodes}.onnx")
    onnx.save(build(shape, nodes), path)
    wall, cpu = time.perf_counter(), time.process_time()
    convert_cli(path, path[:-5] + ".mob")
    return time.perf_counter() - wall, time.process_time() - cpu


def profile(spec: str, workdir: str, top: int = 25) -> None:
    import onnx

    shape, nodes = spec.split(":")
    path = os.path.join(workdir, f"{shape}_{nodes}.onnx")
    onnx.save(build(shape, int(nodes)), path)
    prof = cProfile.Profile()
    prof.runcall(convert_cli, path, path[:-5] + ".mob")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    p.add_argument("--nodes", nargs="+", type=int, default=list(DEFAULT_NODES))
    p.add_argument("--profile", metavar="SHAPE:NODES", help="cProfile one conversion instead")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as workdir:
        if args.profile:
            profile(args.profile, workdir)
            return 0
        time_one("add_chain", 10, workdir)  # imports and registries load outside the timings
        print(f"{'graph':<14}{'nodes':>8}{'wall s':>9}{'cpu s':>9}{'cpu us/node':>13}"
              f"{'growth/node':>13}")
        for shape in args.shapes:
            prev = None
            for n in sorted(args.nodes):
                wall, cpu = time_one(shape, n, workdir)
                per_node = cpu / n
                growth = f"{per_node / prev:.2f}x" if prev else "-"
                print(f"{shape:<14}{n:>8}{wall:>9.2f}{cpu:>9.2f}{per_node * 1e6:>13.0f}"
                      f"{growth:>13}", flush=True)
                prev = per_node
    return 0


if __name__ == "__main__":
    sys.exit(main())
