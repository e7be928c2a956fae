"""`mobconv onnx2mob`: convert an ONNX model to a .mob file and print a summary."""
from __future__ import annotations

import os

from .. import api
from ..errors import MobconvError, UsageError
from ..summary import human_bytes, human_count, summarize
from .common import HelpFormatter, fmt_shape, out, parse_input_shapes

EPILOG = """\
examples:
  mobconv onnx2mob resnet18.onnx                      # writes resnet18.mob beside it
  mobconv onnx2mob resnet18.onnx -o /tmp/r18.mob --input-shape input=1,3,224,224
  mobconv onnx2mob bert.onnx --input-shape ids=batch,128   # keep a symbolic dim
  mobconv onnx2mob tiny.onnx --embed-test-vector      # file can check itself (validate)

The output is written atomically: on any error no file is left behind.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("onnx2mob", parents=[parent], help="convert an ONNX model to .mob",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .onnx file")
    p.add_argument("-o", "--output", help="output .mob path (default: MODEL with .mob suffix)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="fix an input's shape (repeatable); a dim may be a symbol like 'batch'")
    p.add_argument("--no-optimize", action="store_true", help="skip the graph optimization passes")
    p.add_argument("--embed-test-vector", action="store_true",
                   help="run the reference on seeded random inputs and embed inputs+outputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the test vector inputs (default 0)")
    p.set_defaults(func=run)


def default_output(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + ".mob"


def check_output_path(path: str) -> None:
    """Fail before the (possibly slow) conversion if the output cannot be written."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise MobconvError(f"cannot write {path}: is a directory")
    if not os.path.isdir(parent):
        raise MobconvError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise MobconvError(f"cannot write {path}: directory {parent} is not writable")


def run(args) -> int:
    shapes = parse_input_shapes(args.input_shape)
    output = args.output or default_output(args.model)
    if os.path.abspath(output) == os.path.abspath(args.model):
        raise UsageError(f"-o {output}: would overwrite the source model; choose another path")
    check_output_path(output)
    model = api.convert(args.model, input_shapes=shapes, optimize=not args.no_optimize,
                        framework="onnx")
    if args.embed_test_vector:
        model.add_test_vector(seed=args.seed)
    model.save(output)
    out(describe(model, args.model, output))
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
