"""`mobconv caffe2mob`: convert a Caffe deploy prototxt + caffemodel to a .mob file."""
from __future__ import annotations

import os
import warnings

from .. import api
from ..errors import UsageError
from .common import HelpFormatter, out, parse_input_shapes
from .onnx2mob import check_output_path, describe

EPILOG = """\
examples:
  mobconv caffe2mob deploy.prototxt weights.caffemodel            # writes deploy.mob beside it
  mobconv caffe2mob deploy.prototxt weights.caffemodel -o net.mob --input-shape data=1,3,224,224
  mobconv caffe2mob deploy.prototxt --random-weights               # structure only, seeded weights

Unsupported layer types are listed all at once (exit code 2). The output is
written atomically: on any error no file is left behind.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("caffe2mob", parents=[parent], help="convert a Caffe model to .mob",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("prototxt", help="the deploy .prototxt (network structure)")
    p.add_argument("caffemodel", nargs="?", help="the .caffemodel (weights)")
    p.add_argument("-o", "--output", help="output .mob path (default: PROTOTXT with .mob suffix)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="set an input blob's shape (repeatable), e.g. data=1,3,224,224")
    p.add_argument("--random-weights", action="store_true",
                   help="without a caffemodel, use seeded random weights (for testing structure)")
    p.add_argument("--no-optimize", action="store_true", help="skip the graph optimization passes")
    p.add_argument("--embed-test-vector", action="store_true",
                   help="run the reference on seeded random inputs and embed inputs+outputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the test vector inputs (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.caffemodel is None and not args.random_weights:
        raise UsageError(f"{args.prototxt}: no caffemodel given; pass the .caffemodel with the "
                         "weights, or --random-weights to convert the structure with seeded random weights")
    if args.caffemodel is not None and args.random_weights:
        raise UsageError("--random-weights is only for converting without a caffemodel")
    shapes = parse_input_shapes(args.input_shape)
    output = args.output or os.path.splitext(args.prototxt)[0] + ".mob"
    for source in filter(None, (args.prototxt, args.caffemodel)):
        if os.path.abspath(output) == os.path.abspath(source):
            raise UsageError(f"-o {output}: would overwrite the source model; choose another path")
    check_output_path(output)
    with warnings.catch_warnings():
        # the random-weights warning: the flag says it already; other notes are shown
        warnings.filterwarnings("ignore", message=".*using seeded random weights")
        model = api.convert(args.prototxt, input_shapes=shapes, optimize=not args.no_optimize,
                            framework="caffe", caffemodel=args.caffemodel,
                            random_weights=args.random_weights)
    if args.embed_test_vector:
        model.add_test_vector(seed=args.seed)
    model.save(output)
    out(describe(model, args.prototxt, output))
    return 0
