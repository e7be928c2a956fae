"""`mobconv` command line: one subcommand per module, dispatched from here.

Each subcommand module defines `register(subparsers, parent)` (adds its parser
and sets `func`) and `run(args) -> int`. User errors (`MobconvError`) print one
line, `mobconv: error: <message>`, and exit with the error's exit code; with
-v/--verbose the traceback is shown too. SIGINT (Ctrl-C), SIGTERM and SIGHUP end
the command with one line saying which outputs were written, exit 128 + signal
number (130, 143, 129); a half-written output is removed (mobconv/output_files.py).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
import warnings

from .. import __version__
from ..errors import MobconvError, UsageError
from ..output_files import (OUTPUTS, Interrupted, handle_signals, quiet_signals,
                            restore_signals)
from . import bench, caffe2mob, compare, compress, info, onnx2mob, quantize, run, tf2mob, validate
from .common import HelpFormatter

COMMANDS = (onnx2mob, caffe2mob, tf2mob, quantize, compress, info, run, compare, validate, bench)

EPILOG = """\
examples:
  mobconv onnx2mob mobilenet.onnx --input-shape input=1,3,224,224
  mobconv tf2mob frozen.pb                  # or a SavedModel directory
  mobconv quantize mobilenet.mob -o mobilenet.int8.mob --calib calib/
  mobconv compress mobilenet.mob -o mobilenet.sparse.mob --prune 0.5
  mobconv info mobilenet.mob
  mobconv run mobilenet.mob --input input=cat.npy --save outputs/
  mobconv compare mobilenet.mob mobilenet.onnx
  mobconv validate mobilenet.mob

Run `mobconv COMMAND --help` for the options of one command.
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`mobconv: error: ...`, exit 2) like every
    other error: what was wrong, and where the valid usage is (`--help`)."""

    argv: list = []  # set by main(): to name the command in "unrecognized arguments"

    def error(self, message):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        names = [c.__name__.rsplit(".", 1)[1] for c in COMMANDS]
        if not command:
            if "required: COMMAND" in message:
                raise UsageError(f"no command given (usage: mobconv COMMAND [options] ...; COMMAND "
                                 f"is one of {', '.join(names)}; see mobconv --help)")
            command = next((a for a in Parser.argv if a in names), "")
            if not command or not message.startswith("unrecognized arguments"):
                raise UsageError(f"{message} (see mobconv --help)")
            return self._subparsers._group_actions[0].choices[command].error(message)
        positionals = " ".join(a.metavar or a.dest for a in self._actions
                               if not a.option_strings)
        usage = f"usage: {self.prog} [options] {positionals}".rstrip()
        raise UsageError(f"{command}: {message} ({usage}; see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    # -v is accepted before or after the subcommand name.
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    parser = Parser(
        prog="mobconv",
        description="Convert ONNX, Caffe and TensorFlow models to .mob files and run them.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"mobconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub, parent)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    in_process = argv is not None  # called from Python (tests), not as the program
    argv = sys.argv[1:] if argv is None else list(argv)
    Parser.argv = argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except UsageError as exc:  # Parser.error: bad option, missing argument
        return _fail(str(exc), exc.exit_code, False)
    verbose = getattr(args, "verbose", False)
    warnings.showwarning = _show_warning
    OUTPUTS.reset()
    previous = {}
    try:
        previous.update(handle_signals())  # SIGTERM/SIGHUP too: the writer removes its temp file
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        quiet_signals(previous)  # a repeated Ctrl-C while we print the last line
        return _interrupted(exc)
    except MobconvError as exc:
        return _fail(str(exc), exc.exit_code, verbose)
    except BrokenPipeError:  # `mobconv info m.mob | head`: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", 1, verbose)
    finally:
        # As the program: a signal after this point would only turn the exit into a
        # traceback, so it is ignored; from Python, the caller's handlers come back.
        (restore_signals if in_process else quiet_signals)(previous)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line saying which signal stopped us and which outputs were (not) written;
    exit 128 + the signal number (130 for Ctrl-C), as shells do."""
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    name = signal.Signals(signum).name

    def files(paths, verb):
        return f"{', '.join(paths)} {'was' if len(paths) == 1 else 'were'} {verb}"

    message = f"mobconv: interrupted by {name}"
    if OUTPUTS.written:
        message += " after " + files(OUTPUTS.written, "written completely")
    if OUTPUTS.not_written():
        message += "; " + files(OUTPUTS.not_written(), "not written")
    sys.stderr.write(message + "\n")
    return 128 + signum


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (dropped training layers, fallbacks) as one stderr line, no source location."""
    sys.stderr.write(f"mobconv: warning: {message}\n")


def _fail(message: str, code: int, verbose: bool) -> int:
    if verbose:
        traceback.print_exc()
    first_line = " ".join(message.split("\n")).strip()
    sys.stderr.write(f"mobconv: error: {first_line}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
