"""Exceptions that mobconv raises for user errors.

Every user-facing failure (bad file, unsupported op, wrong shape, bad CLI
usage) is a `MobconvError`. The CLI prints its message on one line and exits
with `exit_code`; anything else escaping is a bug and shows a traceback.
Messages name the file, the node/layer and the rule that was broken.
"""


class MobconvError(Exception):
    """A user error: the message is complete and is shown as-is."""

    exit_code = 1


class UsageError(MobconvError):
    """Wrong command-line usage or invalid argument combination."""

    exit_code = 2


class ModelFormatError(MobconvError):
    """A .mob file (or a source model file) is malformed, truncated or of a newer version."""


class UnsupportedOpsError(MobconvError):
    """The source model uses ops/layers we cannot convert.

    `unsupported` maps op type -> list of node names, so the message lists
    every unsupported type at once with its node names and count.
    """

    exit_code = 2

    def __init__(self, source, unsupported, framework="ONNX", kind="op"):
        self.unsupported = dict(unsupported)
        parts = []
        for op_type in sorted(self.unsupported):
            names = self.unsupported[op_type]
            shown = ", ".join(repr(n) for n in names[:5])
            more = f", ... (+{len(names) - 5} more)" if len(names) > 5 else ""
            parts.append(f"{op_type} x{len(names)} ({shown}{more})")
        super().__init__(
            f"{source}: cannot convert {len(self.unsupported)} unsupported {framework} "
            f"{kind} type(s): " + "; ".join(parts)
        )


class ShapeError(MobconvError):
    """Shapes or dtypes of a node's inputs break the op's rules."""


class ConversionError(MobconvError):
    """A node/layer cannot be converted (bad attribute value, unsupported variant)."""


class ArgumentError(UsageError, ValueError, TypeError):
    """A Python API argument has the wrong type or value (feeds that are not a dict
    of arrays, an array of the wrong kind for an input, seed=-1, threads=2.5,
    isa='bogus', load(None), ...).

    Also a ValueError and a TypeError, so code written against numpy's or
    onnxruntime's exceptions keeps catching it."""


class ClosedError(MobconvError, ValueError):
    """An Interpreter or Model was used after close() (ValueError, like I/O on a
    closed file)."""
