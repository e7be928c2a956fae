"""The converters' shared command-line flow (onnx2mob, caffe2mob, tf2mob): the common
options, the default output path, the cheap checks done before converting, then
convert, embed a test vector, write atomically and print a one-line summary."""
from __future__ import annotations

import os
import time

from .. import api, output_files
from ..errors import UsageError
from ..summary import human_bytes, human_count, summarize
from .common import Progress, cli_wording, fmt_shape, out, parse_input_shapes


def add_convert_options(p, shape_example: str) -> None:
    """Options shared by the converters."""
    name = shape_example.split("=")[0]
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help=f"fix an input's shape (repeatable), e.g. --input-shape {shape_example}; "
                        f"a dim may be a symbol: {name}=batch,{shape_example.split(',', 1)[1]}")
    p.add_argument("--no-optimize", action="store_true",
                   help="skip the graph optimization passes (BN folding, activation fusion, "
                        "...), e.g. to compare layer by layer with the source")
    p.add_argument("--embed-test-vector", action="store_true",
                   help="run the numpy reference on seeded random inputs and store inputs and "
                        "outputs in the file, so `mobconv validate OUT.mob` can check it anywhere "
                        "(e.g. --embed-test-vector --seed 3)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the test vector inputs (default 0), e.g. --seed 3")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no status line on stderr while converting (it is only shown on a terminal), "
                        "e.g. in scripts: -q")


def default_output(model_path: str) -> str:
    """MODEL with a .mob suffix; a directory (a TensorFlow SavedModel) gets the .mob
    file beside it: saved_model/ -> saved_model.mob."""
    if os.path.isdir(model_path):
        path = os.path.normpath(model_path)
        if os.path.basename(path) in ("", ".", ".."):
            path = os.path.abspath(path)
        return path + ".mob"
    return os.path.splitext(model_path)[0] + ".mob"


def source_files(path: str) -> list:
    """The files a source path stands for: the file itself, or every file under a
    directory (a SavedModel: saved_model.pb, variables/...), sorted."""
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files)]
    return found


def check_output_path(path: str, inputs=()) -> None:
    """Fail before the (possibly slow) conversion if the output cannot be written, or
    would replace one of the `inputs` (links and hard links resolved). Records it, so an
    interrupt can say whether it was written (`output_files.OUTPUTS`)."""
    output_files.check_output(path, inputs)
    output_files.OUTPUTS.plan(path)


def onnx_external_files(path: str) -> list:
    """The external-data files an ONNX model reads (they are inputs too); [] when the
    model cannot be read here (the conversion reports why)."""
    import onnx
    from onnx import external_data_helper as ext

    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception:  # noqa: BLE001 - the frontend gives the one-line error later
        return []
    base = os.path.dirname(os.path.abspath(path))
    return sorted({os.path.join(base, ext.ExternalDataInfo(t).location)
                   for t in ext._get_all_tensors(proto) if ext.uses_external_data(t)})


def convert_and_save(args, source: str, sources, framework: str, **options) -> int:
    """The converters' common flow: check everything cheap first (usage, source type,
    output path), convert, optionally embed a test vector, write atomically, summarize."""
    shapes = parse_input_shapes(args.input_shape)
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: must be a non-negative integer (numpy's random "
                         "generators take no negative seed), e.g. --seed 3")
    for path in sources:
        api.check_source(path, framework if path == source else "caffemodel")
    output = args.output if args.output is not None else default_output(source)
    inputs = [f for path in sources for f in source_files(path)]
    size = sum(os.path.getsize(p) for p in inputs if os.path.isfile(p))
    if framework == "onnx" and output and os.path.lexists(output):  # only an existing file can be one
        inputs += onnx_external_files(source)
    check_output_path(output, inputs)
    progress = Progress(enabled=not args.quiet)
    start = time.perf_counter()
    try:
        progress.step(f"mobconv: converting {source} ({human_bytes(size)})...")
        try:
            model = api.convert(source, input_shapes=shapes, optimize=not args.no_optimize,
                                framework=framework, **options)
        except UsageError as exc:
            raise UsageError(cli_wording(str(exc))) from exc
        if args.embed_test_vector:
            progress.step("mobconv: running the reference for the test vector...")
            model.add_test_vector(seed=args.seed)
        progress.step(f"mobconv: writing {output}...")
        model.save(output)  # atomic, fsync'ed; re-checks the output (mobconv/output_files.py)
    finally:
        progress.done()
    model.conversion_stats["seconds"] = time.perf_counter() - start
    out(describe(model, source, output))
    return 0


def describe(model, source: str, output: str) -> str:
    stats = model.conversion_stats
    s = summarize(model.graph, file_size=os.path.getsize(output))
    top = ", ".join(f"{op} x{n}" for op, n in list(s.op_histogram.items())[:6])
    more = ", ..." if len(s.op_histogram) > 6 else ""
    if model.metadata.options.get("optimize") == "true":
        opt = f"{stats['ops_before']} ops before optimization, {stats['ops_after']} after"
    else:
        opt = f"{stats['ops_after']} ops (optimization skipped)"
    dtypes = ", ".join(f"{human_bytes(b)} {d}" for d, b in s.bytes_by_dtype.items()) or "none"
    ins = "; ".join(f"{t.name} {t.dtype}{fmt_shape(t.shape)}" for t in model.inputs)
    outs = "; ".join(f"{t.name} {t.dtype}{fmt_shape(t.shape)}" for t in model.outputs)
    vectors = f", {len(model.test_vectors)} test vector(s) embedded" if model.test_vectors else ""
    return (
        f"Converted {source} -> {output} in {stats['seconds']:.2f} s: {opt} ({top}{more}); "
        f"{human_count(s.num_params)} parameters ({dtypes}); {human_count(s.macs)} MACs; "
        f"file {human_bytes(s.file_size)}{vectors}. Inputs: {ins}. Outputs: {outs}."
    )
