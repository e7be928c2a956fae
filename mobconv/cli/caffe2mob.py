"""`mobconv caffe2mob`: convert a Caffe deploy prototxt + caffemodel to a .mob file."""
from __future__ import annotations

import warnings

from ..errors import UsageError
from .common import HelpFormatter
from .convert_flow import add_convert_options, convert_and_save

EPILOG = """\
examples:
  mobconv caffe2mob deploy.prototxt weights.caffemodel            # writes deploy.mob beside it
  mobconv caffe2mob deploy.prototxt weights.caffemodel -o net.mob --input-shape data=1,3,224,224
  mobconv caffe2mob deploy.prototxt --random-weights               # structure only, seeded weights
  mobconv caffe2mob deploy.prototxt weights.caffemodel --embed-test-vector -q

Unsupported layer types are listed all at once (exit code 2). An existing
output file is replaced (keeping its permissions); the output is written
atomically: on any error or signal (Ctrl-C, SIGTERM) no file, and no partial
file, is left behind. The .prototxt and .caffemodel are never overwritten.
"""


def register(sub, parent) -> None:
    p = sub.add_parser("caffe2mob", parents=[parent], help="convert a Caffe model to .mob",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("prototxt", help="the deploy .prototxt (network structure), e.g. deploy.prototxt")
    p.add_argument("caffemodel", nargs="?",
                   help="the .caffemodel (trained weights), e.g. weights.caffemodel")
    p.add_argument("-o", "--output", metavar="OUT.mob",
                   help="output path (default: PROTOTXT with .mob suffix), e.g. -o net.mob")
    p.add_argument("--random-weights", action="store_true",
                   help="without a caffemodel, use seeded random weights (to check that the "
                        "structure converts and runs)")
    add_convert_options(p, "data=1,3,224,224")
    p.set_defaults(func=run)


def run(args) -> int:
    proto, weights = args.prototxt, args.caffemodel
    if (proto.lower().endswith(".caffemodel") and weights
            and weights.lower().endswith(".prototxt")):
        raise UsageError(f"{proto}: the arguments are swapped (the .prototxt comes first: "
                         f"mobconv caffe2mob {weights} {proto})")
    if weights is None and not args.random_weights:
        raise UsageError(f"{proto}: no caffemodel given (pass the .caffemodel with the "
                         "weights, or --random-weights to convert the structure with seeded random weights)")
    if weights is not None and args.random_weights:
        raise UsageError(f"{weights}: --random-weights is only for converting without a "
                         "caffemodel (drop one of them)")
    sources = [proto] + ([weights] if weights else [])
    with warnings.catch_warnings():
        # the random-weights warning: the flag says it already; other notes are shown
        warnings.filterwarnings("ignore", message=".*using seeded random weights")
        return convert_and_save(args, proto, sources, "caffe", caffemodel=weights,
                                random_weights=args.random_weights)
