"""`mobconv compress`: prune, channel-prune, cluster or factorize a model's weights into a .mob file."""
from __future__ import annotations

import argparse
import json
import os
import re
import time

from ..errors import MobconvError, UsageError
from ..output_files import OUTPUTS, write_atomic
from . import model_source
from .common import HelpFormatter, Progress, out, parse_input_shapes
from .convert_flow import check_output_path

EPILOG = """\
examples:
  mobconv compress model.mob --prune 0.5 -o model.sparse.mob            # 50% of weights zero
  mobconv compress model.mob --prune 0.7 --data calib/ --report report/  # + sensitivity.png
  mobconv compress model.mob --prune 0.7 --per-layer report/proposal.json -o m.sparse.mob
  mobconv compress model.mob --prune-channels 0.3 -o model.slim.mob     # smaller dense graph
  mobconv compress model.onnx --prune-channels 0.3 --criterion bn_gamma --exclude conv1
  mobconv compress model.mob --cluster 16 -o model.k16.mob              # 4-bit palette
  mobconv compress model.mob --low-rank 0.9 -o model.lr.mob             # SVD, 90% energy
  mobconv compress model.onnx --prune-channels 0.25 --prune 0.5 --cluster 16 -o m.mob
  mobconv compress model.mob --cluster 16 -o m.k16.mob && \\
      mobconv quantize m.k16.mob --calib calib/ -o m.k16.int8.mob       # then int8

Several options compose, always in this order: --prune-channels, --low-rank, --prune,
--cluster. The summary compares the output with the input model: file size, parameters,
MACs, a per-layer table (weight shape, stored bytes, sparsity, clusters, MACs) and the
outputs' SQNR on --data (a folder of .npy/.npz files or images, as `mobconv quantize
--calib` reads) or, without it, on 8 seeded random inputs. Options are checked before any
work; on any error or interrupt no file is written (exit 2 for bad options, 1 otherwise).
docs/compression.md has the guide.
"""

GENERATED_SAMPLES = 8  # random inputs for the SQNR when no --data is given
DEFAULT_DATA_SAMPLES = 64  # --data samples used by default (--num-samples)
SENSITIVITY_SAMPLES = 8  # of those, for --prune's per-layer sensitivity (layers x sparsities runs)
ORDER = ("prune_channels", "low_rank", "prune", "cluster")


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None


def register(sub, parent) -> None:
    p = sub.add_parser("compress", parents=[parent],
                       help="prune, channel-prune, cluster or low-rank factorize a model's weights",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    model_source.add_model_arguments(
        p, "the model: a .mob (float or int8), a .onnx, or a Caffe deploy "
           ".prototxt, e.g. model.mob")
    p.add_argument("-o", "--output", metavar="OUT.mob",
                   help="output path (default: MODEL with .compressed.mob), e.g. -o model.sparse.mob")
    g = p.add_argument_group("compression (at least one; applied in this order)")
    g.add_argument("--prune-channels", type=_fraction, metavar="F",
                   help="remove the fraction F (0 < F < 1) of each layer's output channels and fix "
                        "every consumer: a smaller dense graph, e.g. 0.3")
    g.add_argument("--criterion", choices=("l1", "bn_gamma"), default=None,
                   help="with --prune-channels: which channels go, the smallest L1 norm of their "
                        "weights (l1, default) or of the following BatchNorm's gamma (bn_gamma: "
                        "give the ONNX source, conversion folds BatchNorm into the weights)")
    g.add_argument("--low-rank", type=_fraction, metavar="E",
                   help="SVD of fully connected and 1x1 conv weights into two smaller layers, "
                        "keeping the fraction E (0 < E <= 1) of the singular values' energy, e.g. 0.9")
    g.add_argument("--rank", type=_integer, metavar="N",
                   help="low-rank factorization to rank N instead of an energy fraction, e.g. 32")
    g.add_argument("--prune", type=_fraction, metavar="S",
                   help="unstructured magnitude pruning: the fraction S (0 <= S < 1) of the "
                        "weights becomes zero (one threshold across layers), stored sparse, e.g. 0.5")
    g.add_argument("--per-layer", metavar="FILE.json",
                   help="per-layer sparsities for --prune, a JSON object {\"layer\": 0.6, ...} "
                        "(e.g. the report's proposal.json); layers not listed get --prune's S")
    g.add_argument("--cluster", type=_integer, metavar="K",
                   help="k-means weight clustering: K (2..256) distinct values per layer, stored "
                        "as a palette plus packed indices, e.g. 16")
    p.add_argument("--exclude", action="append", default=[], metavar="NODE[,NODE...]",
                   help="leave these layers as they are (repeatable; names as `mobconv info` "
                        "lists them)")
    p.add_argument("--data", metavar="PATH",
                   help="inputs to measure the outputs' error (and --prune's sensitivity) on: a "
                        "folder of .npy/.npz files or images (default: 8 random inputs)")
    p.add_argument("--num-samples", type=_integer, default=None, metavar="N",
                   help=f"use at most N --data samples (default {DEFAULT_DATA_SAMPLES}), e.g. 200")
    p.add_argument("--report", metavar="DIR",
                   help="write summary.json, table.txt and, for --prune, sensitivity.png and "
                        "proposal.json to DIR")
    model_source.add_input_shape_option(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only on a terminal), e.g. --progress in a CI log")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar or status line on stderr (--no-progress, and no status line), e.g. -q")
    p.set_defaults(func=run)


# ---- checks before any work ------------------------------------------------------------


def _steps(args) -> dict:
    """The compression steps asked for, in ORDER, with their options; UsageError for a
    value outside its range or a missing step."""
    steps = {}
    if args.prune_channels is not None:
        if not 0 < args.prune_channels < 1:
            raise UsageError(f"--prune-channels {args.prune_channels:g}: the fraction of output "
                             "channels removed must be in (0, 1), e.g. 0.3")
        steps["prune_channels"] = {"fraction": args.prune_channels,
                                   "criterion": args.criterion or "l1"}
    elif args.criterion is not None:
        raise UsageError(f"--criterion {args.criterion}: applies to --prune-channels only")
    if args.low_rank is not None or args.rank is not None:
        if args.low_rank is not None and not 0 < args.low_rank <= 1:
            raise UsageError(f"--low-rank {args.low_rank:g}: the energy fraction kept must be "
                             "in (0, 1], e.g. 0.9")
        if args.rank is not None and args.rank < 1:
            raise UsageError(f"--rank {args.rank}: must be a positive integer, e.g. 16")
        if args.low_rank is not None and args.rank is not None:
            raise UsageError(f"--low-rank {args.low_rank:g} --rank {args.rank}: give one of "
                             "them (an energy fraction or a fixed rank)")
        steps["low_rank"] = {"energy": args.low_rank, "rank": args.rank}
    if args.prune is not None or args.per_layer is not None:
        if args.prune is not None and not 0 <= args.prune < 1:
            raise UsageError(f"--prune {args.prune:g}: the sparsity (fraction of weights set to "
                             "zero) must be in [0, 1), e.g. 0.5")
        steps["prune"] = {"sparsity": args.prune, "per_layer": _per_layer(args.per_layer)}
    if args.cluster is not None:
        if not 2 <= args.cluster <= 256:
            raise UsageError(f"--cluster {args.cluster}: the number of clusters must be in "
                             "2..256 (a palette of at most 8-bit indices), e.g. 16")
        steps["cluster"] = {"clusters": args.cluster}
    if not steps:
        raise UsageError("compress: give at least one of --prune S, --prune-channels F, "
                         "--cluster K, --low-rank E (see mobconv compress --help)")
    if args.num_samples is not None and args.num_samples < 1:
        raise UsageError(f"--num-samples {args.num_samples} must be a positive integer, e.g. 32")
    if args.num_samples is not None and args.data is None:
        raise UsageError(f"--num-samples {args.num_samples}: applies to --data only")
    return steps


def _per_layer(path):
    """The --per-layer JSON file: {layer: sparsity}; UsageError naming the file."""
    if path is None:
        return None
    if not os.path.isfile(path):
        raise UsageError(f"--per-layer {path}: no such file")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--per-layer {path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"--per-layer {path}: expected a JSON object of layer name -> "
                         "sparsity, e.g. {\"conv1\": 0.3, \"fc\": 0.8}")
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise UsageError(f"--per-layer {path}: layer {name!r}: sparsity {value!r} must be "
                             "a number in [0, 1)")
    return {name: float(value) for name, value in data.items()}


def _framework(args) -> str:
    return model_source.framework(args, "compress")


def _check_paths(args, framework: str, sources: list, output: str) -> None:
    from ..quantize.compress_report import REPORT_FILES

    model_source.check_sources(args, framework, sources)
    if args.data is not None and not os.path.exists(args.data):
        raise UsageError(f"--data {args.data}: no such file or directory")
    if args.report is not None:
        model_source.check_report_dir(args.report, output, REPORT_FILES, "--data", args.data,
                                      "its PNG plot would be read as an input image",
                                      parent_writable=True)
    inputs = model_source.read_files(args, framework, sources, output)
    if args.per_layer:
        inputs.append(args.per_layer)
    if args.data is not None and not os.path.isdir(args.data):
        inputs.append(args.data)
    check_output_path(output, inputs)
    if args.report is not None:
        OUTPUTS.plan(args.report)  # for the interrupt message: written or not


def _check_layers(model, steps: dict, exclude: list) -> None:
    """--exclude and --per-layer name nodes of the model."""
    nodes = {node.name for node in model.graph.nodes}
    for name in exclude:
        if name not in nodes:
            raise UsageError(f"--exclude {name}: {model.source} has no node {name!r} "
                             "(`mobconv info` lists the layers)")
    per_layer = steps.get("prune", {}).get("per_layer") or {}
    for name in per_layer:
        if name not in nodes:
            raise UsageError(f"--per-layer: {model.source} has no node {name!r} "
                             "(`mobconv info` lists the layers)")


# ---- the work --------------------------------------------------------------------------


def _feeds(args, model) -> tuple:
    """(list of feed dicts, description) for the output comparison."""
    if args.data is None:
        feeds = [model.random_inputs(seed) for seed in range(GENERATED_SAMPLES)]
        return feeds, f"{GENERATED_SAMPLES} random inputs (seeds 0..{GENERATED_SAMPLES - 1})"
    from ..quantize.data import calibration_feeds

    limit = args.num_samples or DEFAULT_DATA_SAMPLES
    feeds = list(calibration_feeds(args.data, model, num_samples=limit))
    return feeds, f"{len(feeds)} sample(s) of {args.data}"


def _describe(name: str, options: dict) -> str:
    if name == "prune_channels":
        return f"prune-channels {options['fraction']:g} ({options['criterion']})"
    if name == "low_rank":
        parts = [f"energy {options['energy']:g}" if options["energy"] is not None else "",
                 f"rank {options['rank']}" if options["rank"] is not None else ""]
        return "low-rank " + ", ".join(p for p in parts if p)
    if name == "prune":
        what = [f"{options['sparsity']:g}" if options["sparsity"] is not None else "",
                f"per-layer ({len(options['per_layer'])} layers)" if options["per_layer"] else ""]
        return "prune " + " + ".join(w for w in what if w)
    return f"cluster {options['clusters']}"


# the Python API's words for what the command line calls an option
_OPTIONS = {"prune_channels": {"fraction": "--prune-channels", "criterion": "--criterion"},
            "low_rank": {"energy": "--low-rank", "rank": "--rank"},
            "prune": {"sparsity": "--prune", "per_layer": "--per-layer"},
            "cluster": {"clusters": "--cluster"}}


def _cli_message(step: str, message: str) -> str:
    """An API error in command-line words: no 'prune(): ' prefix, option names as flags."""
    message = re.sub(r"^\w+\(\): ", "", message)
    for word, flag in {**_OPTIONS[step], "exclude": "--exclude"}.items():
        message = re.sub(rf"(?<![\w-]){word}(?= (must|names|is|has)\b|=)", flag, message)
    return message


def compress(model, steps: dict, exclude, progress) -> tuple:
    """Apply `steps` to `model` in ORDER (each call returns a new Model); also the model
    each step started from. API errors (ArgumentError) in command-line words."""
    inputs = {}
    for name in ORDER:
        if name in steps:
            inputs[name] = model
            try:
                model = _apply(name, steps[name], model, exclude, progress)
            except MobconvError as exc:
                error = MobconvError(_cli_message(name, str(exc)))
                error.exit_code = exc.exit_code
                raise error from exc
    return model, inputs


def _apply(name: str, o: dict, model, exclude, progress):
    from .. import quantize

    if name == "prune_channels":
        return quantize.prune_channels(model, o["fraction"], criterion=o["criterion"],
                                       exclude=exclude, progress=progress)
    if name == "low_rank":
        return quantize.low_rank(model, o["energy"], rank=o["rank"], exclude=exclude,
                                 progress=progress)
    if name == "prune":
        return quantize.prune(model, o["sparsity"], per_layer=o["per_layer"], exclude=exclude,
                              progress=progress)
    return quantize.cluster(model, o["clusters"], exclude=exclude, progress=progress)


def _sensitivity(model, steps: dict, feeds, exclude, progress) -> tuple:
    """--prune with --report: the per-layer curves on the model --prune starts from, and
    per-layer sparsities for the same budget (the most sensitive layers lightest)."""
    from .. import quantize

    try:
        report = quantize.sensitivity(model, feeds, exclude=exclude,
                                      num_samples=SENSITIVITY_SAMPLES, progress=progress)
    except MobconvError as exc:
        error = MobconvError(_cli_message("prune", str(exc)))
        error.exit_code = exc.exit_code
        raise error from exc
    budget = steps["prune"]["sparsity"]
    return report, report.propose(budget) if budget else None


def run(args) -> int:
    from ..quantize.compress_report import ReportDir, compare, output_error

    steps = _steps(args)                # every option, before any work
    if args.report:  # 'out.mob/..' names the folder whatever -o creates
        args.report = os.path.normpath(args.report)
    exclude = [n.strip() for item in args.exclude for n in item.split(",") if n.strip()]
    shapes = parse_input_shapes(args.input_shape)
    framework = _framework(args)
    sources = model_source.sources(args)
    output = model_source.output_path(args, ".compressed.mob")
    _check_paths(args, framework, sources, output)
    progress_bars = False if args.quiet else args.progress

    status = Progress(enabled=not args.quiet and args.progress is not False)
    start = time.perf_counter()
    model = model_source.load(args, framework, shapes, status)
    model.source = model.source or args.model
    _check_layers(model, steps, exclude)
    feeds, data_label = _feeds(args, model)  # bad --data fails here, before the slow part
    before_bytes = model.file_size or len(model.to_bytes())

    compressed, step_inputs = compress(model, steps, exclude, progress_bars)
    compressed.source = None  # runs from its own bytes, never from the input's file
    compressed.graph.test_vectors = []  # the input model's expected outputs no longer hold
    try:
        status.step("mobconv: measuring...")
        data = compressed.to_bytes()
        summary = {"input": args.model, "output": output,
                   "steps": [_describe(n, steps[n]) for n in ORDER if n in steps],
                   "metadata": {k: v for k, v in compressed.metadata.extra.items()
                                if k.startswith("compression.")},
                   **compare(model, compressed, before_bytes, len(data))}
        summary["outputs"] = {"data": data_label, "samples": len(feeds),
                              "sqnr_note": "dB against the input model; null = no error",
                              "tensors": output_error(model, compressed, feeds)}
    finally:
        status.done()
    with ReportDir(args.report) if args.report else _NoReport() as report:
        if args.report:
            sensitivity, proposal = (None, None)
            if "prune" in steps:
                sensitivity, proposal = _sensitivity(step_inputs["prune"], steps, feeds,
                                                     exclude, progress_bars)
            summary["sensitivity"] = sensitivity.to_dict() if sensitivity is not None else None
            summary["proposal"] = proposal
            report.prepare(summary, sensitivity, proposal)
        try:
            status.step(f"mobconv: writing {output}...")
            write_atomic(output, data, inputs=sources)
        finally:
            status.done()
        if args.report:
            report.commit()
            OUTPUTS.done(args.report)
    from ..quantize.compress_report import format_table

    out(format_table(summary))
    seconds = time.perf_counter() - start
    rep = f"; report in {args.report.rstrip('/')}/" if args.report else ""
    out(f"Compressed {args.model} -> {output} in {seconds:.2f} s: "
        f"{' -> '.join(summary['steps'])}{rep}.")
    return 0


class _NoReport:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
