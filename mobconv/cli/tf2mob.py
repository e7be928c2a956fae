"""`mobconv tf2mob`: convert a TensorFlow model (frozen GraphDef or SavedModel) to a .mob file."""
from __future__ import annotations

import re

from ..errors import UsageError
from .common import HelpFormatter
from .convert_flow import add_convert_options, convert_and_save

EPILOG = """\
examples:
  mobconv tf2mob frozen.pb                                # writes frozen.mob beside it
  mobconv tf2mob graph.pbtxt -o net.mob                   # a text GraphDef
  mobconv tf2mob saved_model_dir/                         # writes saved_model_dir.mob
  mobconv tf2mob saved_model_dir/ --signature serving_default
  mobconv tf2mob frozen.pb --input-shape input=1,224,224,3
  mobconv tf2mob frozen.pb --inputs 'sub[1,224,224,3]' --outputs logits
  mobconv tf2mob detector.pb --inputs image_tensor:0 --outputs boxes,scores

MODEL is a frozen GraphDef (binary .pb, text .pbtxt; no TensorFlow needed) or
a SavedModel directory (frozen with TensorFlow when it is installed, else by
mobconv for TF2 SavedModels), for --signature NAME, else its only signature or
serving_default; its inputs and outputs keep the signature's names.

--inputs/--outputs cut the graph: the named tensors ("node" or "node:K",
comma-separated or repeated) become the model's inputs/outputs, and whatever
computes the inputs or runs after the outputs is left out (TF1 graphs with
preprocessing or postprocessing). A shape goes in brackets after the name:
--inputs 'x[1,224,224,3]' (a dim may be a symbol: x[batch,224,224,3]).
Without --outputs the outputs are the graph's last nodes; without --inputs its
Placeholders. Unknown dims become symbols (batch, d1, ...), fixed with
--input-shape.

Inputs and outputs keep TensorFlow's layout (NHWC): feed the arrays you fed
TensorFlow. Unsupported ops are listed all at once with their node names
(exit code 2). The output is written atomically; see `mobconv onnx2mob -h`.
"""

_ITEM = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<dims>[^\[\]]*)\])?$")
_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register(sub, parent) -> None:
    p = sub.add_parser("tf2mob", parents=[parent],
                       help="convert a TensorFlow model (.pb, .pbtxt, SavedModel) to .mob",
                       description=__doc__.split("`: ")[1], epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("model", help="a frozen GraphDef (.pb or .pbtxt) or a SavedModel directory, "
                                 "e.g. frozen.pb")
    p.add_argument("-o", "--output", metavar="OUT.mob",
                   help="output path (default: MODEL with .mob suffix), e.g. -o net.mob")
    p.add_argument("--inputs", action="append", default=[], metavar="NAME[SHAPE],...",
                   help="cut the graph: these tensors become the inputs, e.g. "
                        "--inputs 'sub:0[1,224,224,3]' (default: the Placeholders)")
    p.add_argument("--outputs", action="append", default=[], metavar="NAME,...",
                   help="cut the graph: these tensors become the outputs, e.g. --outputs logits "
                        "(default: the nodes nothing reads)")
    p.add_argument("--signature", metavar="NAME",
                   help="the SavedModel signature to convert (default: its only one, else "
                        "serving_default), "
                        "e.g. --signature serving_default")
    add_convert_options(p, "input=1,224,224,3")
    p.set_defaults(func=run)


def split_list(values) -> list:
    """["a,b[1,2]", "c"] -> ["a", "b[1,2]", "c"]: commas inside brackets are a shape's."""
    items = []
    for value in values:
        depth, current = 0, ""
        for ch in value:
            depth += ch == "["
            depth -= ch == "]"
            if ch == "," and depth == 0:
                items.append(current.strip())
                current = ""
            else:
                current += ch
        items.append(current.strip())
    return items


def parse_inputs(values) -> dict:
    """["x[1,224,224,3]", "pre/sub:0"] -> {"x": (1, 224, 224, 3), "pre/sub:0": None}."""
    result = {}
    for item in split_list(values):
        m = _ITEM.match(item)
        if not item or m is None:
            raise UsageError(f"--inputs {item!r}: expected NAME, NAME:K or NAME[D1,D2,...] "
                             "(e.g. --inputs 'x[1,224,224,3]')")
        name, dims = m.group("name").strip(), m.group("dims")
        if name.isdigit():
            raise UsageError(f"--inputs {item!r} looks like a dim: a shape goes in brackets "
                             "after the name, e.g. --inputs 'x[1,224,224,3]'")
        shape = None
        if dims is not None:
            shape = []
            for d in dims.split(","):
                d = d.strip()
                if d.isdigit() and int(d) > 0:
                    shape.append(int(d))
                elif _SYMBOL.match(d):
                    shape.append(d)
                else:
                    raise UsageError(f"--inputs {item!r}: dimension {d!r} is not a positive "
                                     "integer or a symbol name (e.g. x[batch,224,224,3])")
            shape = tuple(shape)
        if name in result:
            raise UsageError(f"--inputs: {name!r} is given twice")
        result[name] = shape
    return result


def parse_outputs(values) -> list:
    names = []
    for item in split_list(values):
        if not item or "[" in item or "]" in item:
            raise UsageError(f"--outputs {item!r}: expected tensor names (NAME or NAME:K), "
                             "comma-separated")
        names.append(item)
    return names


def run(args) -> int:
    options = {}
    if args.inputs:
        options["inputs"] = parse_inputs(args.inputs)
    if args.outputs:
        options["outputs"] = parse_outputs(args.outputs)
    if args.signature is not None:
        options["signature"] = args.signature
    return convert_and_save(args, args.model, [args.model], "tensorflow", **options)
