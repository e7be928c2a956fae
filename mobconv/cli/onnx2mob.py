"""`mobconv onnx2mob`: convert an ONNX model to a .mob file and print a summary."""
from __future__ import annotations

from .common import HelpFormatter
from .convert_flow import add_convert_options, convert_and_save

EPILOG = """\
examples:
  mobconv onnx2mob resnet18.onnx                      # writes resnet18.mob beside it
  mobconv onnx2mob resnet18.onnx -o /tmp/r18.mob --input-shape input=1,3,224,224
  mobconv onnx2mob bert.onnx --input-shape ids=batch,128   # keep a symbolic dim
  mobconv onnx2mob tiny.onnx --embed-test-vector      # file can check itself (validate)
  mobconv onnx2mob tiny.onnx --no-optimize --seed 3 -q

An existing output file is replaced (keeping its permissions); a link is
followed. The output is written atomically: on any error or signal (Ctrl-C,
SIGTERM) no file, and no partial file, is left behind. Refused: the source
itself (also through a link), a read-only file, a FIFO, device or directory.
On a terminal, slow steps show a status line on stderr (-q hides it).
"""


def register(sub, parent) -> None:
    p = sub.add_parser("onnx2mob", parents=[parent], help="convert an ONNX model to .mob",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="the .onnx file, e.g. resnet18.onnx")
    p.add_argument("-o", "--output", metavar="OUT.mob",
                   help="output path (default: MODEL with .mob suffix), e.g. -o /tmp/r18.mob")
    add_convert_options(p, "x=1,3,224,224")
    p.set_defaults(func=run)


def run(args) -> int:
    return convert_and_save(args, args.model, [args.model], "onnx")
