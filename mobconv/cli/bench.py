"""`mobconv bench`: time a .mob model in the C++ runtime (load, first run, steady state, top ops)."""
from __future__ import annotations

from ..errors import UsageError
from .common import HelpFormatter, out, table
from .run import MAX_THREADS

MAX_RUNS = 100_000  # beyond this a typo (an extra 0) would keep the machine busy for hours

EPILOG = """\
examples:
  mobconv bench mobilenet.mob
  mobconv bench mobilenet.mob --threads 2 --runs 100

Inputs are seeded random data; symbolic dims take the size the source file
declared (a Caffe deploy file's), else 1. The steady-state
numbers come from `--runs` timed runs after `--warmup` untimed ones; the op
table from a separate profiled interpreter (up to 10 runs). Ctrl-C stops it
(exit 130). To compare with onnxruntime and
LiteRT side by side, use benchmarks/bench_models.py (`make bench`).
"""


def register(sub, parent) -> None:
    p = sub.add_parser("bench", parents=[parent], help="time a .mob model in the C++ runtime",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .mob file, e.g. mobilenet.mob")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help=f"runtime threads, 1..{MAX_THREADS} (default 1), e.g. --threads 4")
    p.add_argument("--runs", type=int, default=50, metavar="R",
                   help=f"timed runs, 1..{MAX_RUNS:,} (default 50), e.g. --runs 200")
    p.add_argument("--warmup", type=int, default=3, metavar="W",
                   help=f"untimed runs before timing, 0..{MAX_RUNS:,} (default 3), e.g. --warmup 10")
    p.set_defaults(func=run)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run(args) -> int:
    for flag, value, low in (("--threads", args.threads, 1), ("--runs", args.runs, 1),
                             ("--warmup", args.warmup, 0)):
        high = MAX_THREADS if flag == "--threads" else MAX_RUNS
        if not low <= value <= high:
            raise UsageError(f"{flag} {value}: must be between {low} and {high:,}")
    from .. import api, bench, runtime

    api.load(args.model)  # the Python reader's one-line errors for bad files
    if not runtime.available():
        raise UsageError("mobconv bench needs the C++ runtime (libmobrt.so): build it with "
                         "`pip install -e .` or set MOBCONV_RUNTIME_LIB")
    r = bench.bench(args.model, threads=args.threads, runs=args.runs, warmup=args.warmup)
    out(f"{args.model}: {args.threads} thread(s), {args.runs} timed runs\n")
    out(table([
        ("model load (mmap + verify)", f"{r.load_ms:.2f} ms"),
        ("interpreter create (plan + pre-pack)", f"{r.create_ms:.2f} ms"),
        ("first run", f"{r.first_run_ms:.2f} ms"),
        ("steady median", f"{r.median_ms:.2f} ms"),
        ("steady p90", f"{r.p90_ms:.2f} ms"),
        ("activation arena", _size(r.arena_bytes)),
        ("peak RSS (process)", _size(r.peak_rss_bytes)),
    ]))
    out("\nTop ops by time (per run):")
    out(table([(op, f"{ms:.3f} ms", f"{share:.1%}", str(count)) for op, ms, share, count in r.top_ops],
              ("op", "time", "share", "count")))
    return 0
