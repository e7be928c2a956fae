"""The model argument of the commands that take a .mob or a source model (`mobconv
quantize`, `mobconv compress`): MODEL [CAFFEMODEL] -> framework, the checks done
before any work (the sources, --report's directory, the output), and loading it."""
from __future__ import annotations

import os

from .. import api
from ..errors import MobconvError, UsageError
from .common import cli_wording
from .convert_flow import onnx_external_files


def add_model_arguments(p, model_help: str) -> None:
    """MODEL and the optional CAFFEMODEL after a Caffe .prototxt."""
    p.add_argument("model", help=model_help)
    p.add_argument("caffemodel", nargs="?",
                   help="the .caffemodel with the weights, after a Caffe .prototxt, e.g. weights.caffemodel")


def add_input_shape_option(p) -> None:
    """--input-shape, for a source model (a .mob's shapes are fixed)."""
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="for a .onnx/.prototxt source: fix an input's shape, e.g. "
                        "--input-shape data=1,3,224,224")


def sources(args) -> list:
    """The files the model is read from: MODEL, and the .caffemodel after a .prototxt."""
    return [args.model] + ([args.caffemodel] if args.caffemodel else [])


def output_path(args, suffix: str) -> str:
    """-o, or MODEL with its extension replaced by `suffix`."""
    return args.output if args.output is not None else os.path.splitext(args.model)[0] + suffix


def framework(args, command: str, usage_tail: str = "...") -> str:
    """"mob", "caffe", "onnx", ... for MODEL [CAFFEMODEL]; UsageError in the words of
    `mobconv COMMAND` (its usage example ends in `usage_tail`) for a wrong pair."""
    path = args.model
    ext = os.path.splitext(path)[1].lower()
    if ext == ".caffemodel" and args.caffemodel and args.caffemodel.lower().endswith(".prototxt"):
        raise UsageError(f"{path}: the arguments are swapped (the .prototxt comes first: "
                         f"mobconv {command} {args.caffemodel} {path} ...)")
    if ext == ".prototxt":
        if args.caffemodel is None:
            raise UsageError(f"{path}: no caffemodel given (mobconv {command} {path} "
                             f"weights.caffemodel {usage_tail})")
        return "caffe"
    if args.caffemodel is not None:
        raise UsageError(f"{args.caffemodel}: a second model file is only for a Caffe "
                         f".prototxt (the model is {path})")
    if ext == ".mob":
        return "mob"
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory (give a model file: a .mob, a .onnx, or a "
                         "Caffe .prototxt followed by its .caffemodel)")
    try:
        return api.detect_framework(path)
    except UsageError as exc:  # the API's advice is a Python keyword
        raise UsageError(str(exc).replace("; pass framework=...",
                                          " (give a .mob, a .onnx or a Caffe .prototxt)")) from None


def check_sources(args, framework: str, sources: list) -> None:
    """The model files are readable sources of their kind; --input-shape is for a source
    model only."""
    if framework == "mob":
        api._check_readable(args.model)
    else:
        for path in sources:
            api.check_source(path, framework if path == args.model else "caffemodel")
    if args.input_shape and framework == "mob":
        raise UsageError(f"--input-shape: {args.model} is already a .mob model (its shapes are "
                         "fixed; give the source model to change them)")


def check_report_dir(report: str, output: str, report_files, data_option: str, data,
                     read_as: str, parent_writable: bool) -> None:
    """--report DIR can be written (`parent_writable`: its parent too, for a report put in
    place by a rename), is not inside the `data_option` folder `data` (whose reader would
    take its PNG files as inputs: `read_as` says how), and none of its `report_files` is
    something else than a file or the output."""
    if os.path.exists(report) and not os.path.isdir(report):
        raise UsageError(f"--report {report}: exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(report))
    if not os.path.isdir(parent):
        raise UsageError(f"--report {report}: directory {parent} does not exist (create it first)")
    target = report if os.path.isdir(report) else parent
    if not os.access(target, os.W_OK) or (parent_writable and not os.access(parent, os.W_OK)):
        raise MobconvError(f"--report {report}: directory {target} is not writable")
    if data is not None and os.path.isdir(data) and os.path.join(
            os.path.realpath(report), "").startswith(os.path.join(os.path.realpath(data), "")):
        raise UsageError(f"--report {report}: is inside {data_option} {data} ({read_as}); "
                         "choose another directory")
    for name in report_files:  # found now, not after the model is written
        path = os.path.join(report, name)
        if os.path.lexists(path) and not os.path.isfile(path):
            raise UsageError(f"--report {report}: {path} exists and is not a regular file "
                             "(the report writes it)")
        if output and os.path.realpath(output) == os.path.realpath(path):
            raise UsageError(f"-o {output}: is the report's {name} (--report {report} "
                             "writes it); choose another output path")


def read_files(args, framework: str, sources: list, output: str) -> list:
    """The model's files the output must not replace: the sources and, when the output
    exists (only an existing file can be one), an ONNX model's external data files."""
    inputs = list(sources)
    if framework == "onnx" and output and os.path.lexists(output):
        inputs += onnx_external_files(args.model)
    return inputs


def load(args, framework: str, shapes, status):
    """The model: a .mob as it is, a source converted (--input-shape `shapes`), with a
    status line on `status` (a common.Progress) while it is read."""
    try:
        status.step(f"mobconv: reading {args.model}...")
        if framework == "mob":
            return api.load(args.model)
        options = {"caffemodel": args.caffemodel} if framework == "caffe" else {}
        try:
            return api.convert(args.model, input_shapes=shapes or None, framework=framework,
                               **options)
        except UsageError as exc:
            raise UsageError(cli_wording(str(exc))) from exc
    finally:
        status.done()
