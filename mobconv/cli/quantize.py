"""`mobconv quantize`: quantize a model (int8, weight-only int8 or fp16) to a .mob file."""
from __future__ import annotations

import os
import time

from ..errors import UsageError
from ..summary import human_bytes
from . import model_source
from .common import HelpFormatter, Progress, out, parse_input_shapes
from .convert_flow import check_output_path

EPILOG = """\
examples:
  mobconv quantize model.mob -o model.int8.mob --calib calib/          # static int8
  mobconv quantize model.onnx -o model.int8.mob --calib calib/ --method entropy
  mobconv quantize deploy.prototxt weights.caffemodel -o net.int8.mob --calib images/
  mobconv quantize model.mob -o model.int8.mob --calib calib/ --report report/
  mobconv quantize model.mob -o model.int8.mob --calib calib/ --max-sqnr-drop 3
  mobconv quantize model.mob -o model.w8.mob --scheme int8-weights     # no data needed
  mobconv quantize mlp.mob -o mlp.dyn8.mob --scheme dynamic            # int8 MatMul/Gemm, no data
  mobconv quantize model.mob -o model.fp16.mob --scheme fp16           # half the file
  mobconv quantize model.mob --calib calib/ --per-tensor --symmetric-activations
  mobconv quantize model.mob --calib calib/ --no-equalize --no-bias-correction
  mobconv quantize model.mob --calib calib/ --exclude conv1 --min-sqnr 30 -q

--calib takes a folder (searched recursively) of .npy/.npz arrays (an .npz holds
one array per input name) or of images, which are resized to the input and
preprocessed as the model file records (`mobconv info` shows mean/scale/channel
order; Caffe models carry them). The quantized model keeps float32 inputs and
outputs (--io-dtype int8 exposes the int8 tensors). Options are checked before
any work; on any error no file is written (exit 2 for bad options or data).
Same data, same options: the same file, byte for byte.
"""

DEFAULT_SUFFIX = {"int8": ".int8.mob", "int8-weights": ".int8w.mob", "dynamic": ".dyn8.mob", "fp16": ".fp16.mob"}


def register(sub, parent) -> None:
    from ..quantize.config import DEFAULT_METHOD, DEFAULT_PERCENTILE, IO_DTYPES, METHODS, SCHEMES

    p = sub.add_parser("quantize", parents=[parent],
                       help="quantize a model to int8 (or int8 weights, fp16)",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    model_source.add_model_arguments(
        p, "the float model: a .mob, a .onnx, or a Caffe deploy .prototxt, e.g. model.onnx")
    p.add_argument("-o", "--output", metavar="OUT.mob",
                   help="output path (default: MODEL with .int8.mob, .int8w.mob or .fp16.mob "
                        "suffix), e.g. -o model.int8.mob")
    p.add_argument("--calib", metavar="PATH",
                   help="calibration data: a folder of .npy/.npz files or images (needed by "
                        "--scheme int8 and by --report), e.g. --calib calib/")
    p.add_argument("--scheme", choices=SCHEMES, default="int8",
                   help="int8: int8 weights and activations, calibrated (default); "
                        "int8-weights: int8 weights, float activations, no data; "
                        "dynamic: int8 weights, MatMul/Gemm/1x1 Conv activations quantized per row at run time, no data; "
                        "fp16: float16 weight storage")
    p.add_argument("--method", choices=METHODS, default=None,
                   help=f"how activation ranges are chosen from the data (default {DEFAULT_METHOD}): "
                        "minmax, percentile (see --percentile), entropy (KL, TensorRT-style), "
                        "mse (the clipping range of least quantization error)")
    p.add_argument("--percentile", type=float, default=None, metavar="P",
                   help=f"with --method percentile: each tail beyond the P-th percentile on "
                        f"its side is clipped (default {DEFAULT_PERCENTILE}), e.g. --percentile 99.9")
    p.add_argument("--num-samples", type=int, default=None, metavar="N",
                   help="use at most N calibration samples, e.g. --num-samples 200")
    p.add_argument("--per-tensor", action="store_true",
                   help="one weight scale per tensor (default: one per output channel)")
    p.add_argument("--symmetric-activations", action="store_true",
                   help="activation zero points 0 (default: asymmetric, TFLite's choice)")
    p.add_argument("--io-dtype", choices=IO_DTYPES, default="float32",
                   help="dtype of the graph inputs/outputs: float32 (quantize/dequantize at "
                        "the edges, default) or int8 (int8 end to end)")
    p.add_argument("--no-equalize", action="store_true",
                   help="no cross-layer equalization (default: on where it helps: depthwise "
                        "nets, --per-tensor)")
    p.add_argument("--no-bias-correction", action="store_true",
                   help="no empirical bias correction (default: on for --scheme int8)")
    p.add_argument("--exclude", action="append", default=[], metavar="NODE[,NODE...]",
                   help="keep these nodes float (repeatable; names as `mobconv info` lists them)")
    p.add_argument("--max-sqnr-drop", type=float, default=None, metavar="DB",
                   help="accuracy budget (dB): the most sensitive layers return to float "
                        "until the outputs' SQNR drop is at most DB (docs/quantization.md), e.g. 3")
    p.add_argument("--min-sqnr", type=float, default=None, metavar="DB",
                   help="accuracy budget: the outputs' SQNR against the float model must be "
                        "at least DB; the most sensitive layers return to float, e.g. 30")
    p.add_argument("--report", metavar="DIR",
                   help="write a per-layer report (table.txt, report.json, PNG plots) to DIR "
                        "and print the worst layers")
    model_source.add_input_shape_option(p)
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar or status line on stderr (shown only on a terminal)")
    p.set_defaults(func=run)


def _config(args):
    from ..quantize.config import CLI_NAMES, QuantConfig

    exclude = [name.strip() for item in args.exclude for name in item.split(",") if name.strip()]
    # with --report, the data of a scheme without calibration is the report's
    uses_calib = args.calib is not None and (args.scheme == "int8" or not args.report)
    if args.num_samples is not None and args.num_samples < 1:  # also when only the report reads
        raise UsageError(f"--num-samples {args.num_samples} must be a positive integer, e.g. 200")
    return QuantConfig.create(
        scheme=args.scheme, method=args.method, per_tensor=args.per_tensor,
        symmetric_activations=args.symmetric_activations, io_dtype=args.io_dtype,
        percentile=args.percentile, equalize=False if args.no_equalize else None,
        bias_correction=False if args.no_bias_correction else None, exclude=exclude,
        max_sqnr_drop=args.max_sqnr_drop, min_sqnr=args.min_sqnr,
        progress=False if args.quiet else None,
        num_samples=args.num_samples if uses_calib or not args.report else None,  # else the report's
        calibration_given=uses_calib, names=CLI_NAMES, where="")


def _framework(args) -> str:
    return model_source.framework(args, "quantize", "-o OUT.mob ...")


def _check_paths(args, framework: str, sources: list, output: str) -> None:
    model_source.check_sources(args, framework, sources)
    if args.calib is not None and not os.path.exists(args.calib):
        raise UsageError(f"--calib {args.calib}: no such file or directory")
    if args.report is not None:
        if not args.calib:
            raise UsageError(f"--report {args.report}: needs --calib data (the report runs the "
                             "float and the quantized model on it)")
        from ..quantize.report import REPORT_FILES

        model_source.check_report_dir(args.report, output, REPORT_FILES, "--calib", args.calib,
                                      "its PNG plots would be read as calibration images",
                                      parent_writable=False)
    inputs = model_source.read_files(args, framework, sources, output)
    if args.calib:
        if os.path.isdir(args.calib):
            _check_outside_calibration(output, args.calib)
        else:
            inputs.append(args.calib)
    check_output_path(output, inputs)


def _check_outside_calibration(output: str, calib: str) -> None:
    """-o must not write a file the --calib folder is read for: it would replace a
    calibration sample (or add one to the next run's data)."""
    from ..quantize.data import ARRAY_EXTENSIONS, IMAGE_EXTENSIONS

    if not output or not output.lower().endswith(ARRAY_EXTENSIONS + IMAGE_EXTENSIONS):
        return
    root = os.path.join(os.path.realpath(calib), "")
    if os.path.realpath(output).startswith(root):
        raise UsageError(f"-o {output}: is a calibration file of --calib {calib} (the output "
                         "would replace or add a calibration sample); choose another output path")


def run(args) -> int:
    from ..quantize.api import quantize_with_config
    from ..quantize.config import CLI_NAMES

    config = _config(args)              # every option, before any work
    shapes = parse_input_shapes(args.input_shape)
    framework = _framework(args)
    sources = model_source.sources(args)
    output = model_source.output_path(args, DEFAULT_SUFFIX[args.scheme])
    _check_paths(args, framework, sources, output)

    progress = Progress(enabled=not args.quiet)
    start = time.perf_counter()
    model = model_source.load(args, framework, shapes, progress)
    float_bytes = model.file_size or len(model.to_bytes())
    float_weights = weight_bytes(model)
    calibration = args.calib if config.has_calibration else None
    timings = {}
    quantized = quantize_with_config(model, calibration, config, names=CLI_NAMES, timings=timings)
    budget = getattr(quantized, "quantization_info", {}).get("report")
    if budget is not None and budget.layers:  # mixed precision: which layers fell back, why, cost
        out(str(budget))
    try:
        progress.step(f"mobconv: writing {output}...")
        quantized.save(output)  # atomic (mobconv/output_files.py)
    finally:
        progress.done()
    quantized.source = output
    if args.report:
        from ..quantize import debug

        report = debug(model, quantized, args.calib,
                       ranges=getattr(quantized, "quantization_ranges", None),
                       num_samples=args.num_samples)
        os.makedirs(args.report, exist_ok=True)
        report.save(args.report)
        out(report.table())
    seconds = time.perf_counter() - start
    out(describe(args.model, output, quantized, config, float_bytes, float_weights, seconds,
                 args.report))
    return 0


def weight_bytes(model) -> int:
    """Bytes of the model's constants (weights, biases, quantization parameters)."""
    return int(sum(v.data.nbytes for v in model.graph.values.values() if v.data is not None))


def describe(source: str, output: str, model, config, float_bytes: int, float_weights: int,
             seconds: float, report_dir=None) -> str:
    size = os.path.getsize(output)
    graph = model.graph
    ops = [n for n in graph.nodes if n.op not in ("QuantizeLinear", "DequantizeLinear", "Cast")]
    weights = "per-tensor" if config.per_tensor else "per-channel"
    if config.scheme == "int8":
        int8 = sum(1 for n in ops if any(o in graph.values and graph.values[o].dtype == "int8"
                                         for o in n.outputs))
        what = (f"scheme int8, method {config.method}, {weights} weights, "
                f"{'symmetric' if config.symmetric_activations else 'asymmetric'} activations, "
                f"{int8} of {len(ops)} ops int8")
    elif config.scheme == "int8-weights":
        what = f"scheme int8-weights, {weights} weights"
    elif config.scheme == "dynamic":
        dyn = sum(1 for n in ops if n.op in ("MatMul", "Gemm", "Conv") and len(n.inputs) > 1
                  and n.inputs[1] in graph.values and graph.values[n.inputs[1]].dtype == "int8")
        what = f"scheme dynamic, {weights} weights, {dyn} of {len(ops)} ops dynamic-range int8"
    else:
        what = "scheme fp16"
    fallback = graph.metadata.extra.get("quantization.fallback")
    extra = f"; back to float under the budget: {fallback}" if fallback else ""
    rep = f"; report in {report_dir.rstrip('/')}/" if report_dir else ""
    stored = "int8" if config.scheme != "fp16" else "fp16"
    return (f"Quantized {source} -> {output} in {seconds:.2f} s: {what}; weights "
            f"{human_bytes(float_weights)} float32 -> {human_bytes(weight_bytes(model))} {stored}; "
            f"file {human_bytes(float_bytes)} -> {human_bytes(size)}{extra}{rep}.")
