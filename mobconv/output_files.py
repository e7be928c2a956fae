"""Writing output files without destroying anything: checks first, then an atomic replace.

Every file mobconv writes (`Model.save`, the converters' `-o`, `run --save`) goes
through `write_atomic`, after `check_output` (the commands call it before any slow
work; the writer calls it again just before writing). The rules (docs/cli.md,
"Output files"):

1. A symbolic link as the output is followed: its target is replaced and the link
   kept, as `cp`, shell redirection and `tflite_convert` do. A dangling link is
   refused (as `cp` does), rather than creating a file somewhere the link points.
2. An existing output must be a regular file: a directory, FIFO, socket or device is
   refused (as root, replacing `/dev/null` with a model would break the system; a
   FIFO must not be opened either, that would block).
3. An existing file without any write permission bit (0444, 0400, ...) is refused,
   also for root, who could otherwise rename over it: the mode bits are the rule,
   not EACCES. A file we may not write for other reasons (another user's) is refused too.
4. The output must not be one of the command's input files (`inputs`): same path
   after resolving links, or the same file under another name (hard link: same
   st_dev and st_ino).

Writing (`write_atomic`):
1. Create a hidden temporary file `.mobconv-*.tmp` in the target's directory.
2. Write the data in chunks, give the file the target's mode and owner (or
   0666 & ~umask for a new file), fsync it.
3. Rename it over the target in one step (atomic on POSIX), then fsync the
   directory so the rename survives a power cut.
4. On any exception, error or interrupt before the rename, remove the temporary file.

Interrupts. `handle_signals()` (installed by the `mobconv` command) turns SIGINT,
SIGTERM and SIGHUP into `Interrupted`, a KeyboardInterrupt, so the clean-up above
runs for all three (by default SIGTERM and SIGHUP kill the process on the spot and
leave the temporary file). Signals are held back for the few steps that create the
temporary file, rename it and remove it, so an interrupt lands either before the
rename (nothing written) or after it (the file is complete). A signal repeated
within REPEAT_GRACE seconds (Ctrl-C pressed five times) is not raised again, so
it cannot cut the clean-up short. `OUTPUTS` holds the outputs the command planned
(`plan`, at its checks) and those completely written, for its last line.

Test hook: with MOBCONV_TEST_PAUSE_AT=<stage> in the environment the writer prints
`mobconv-test: paused at <stage>` on stderr and sleeps (MOBCONV_TEST_PAUSE_SECONDS,
default 30) at that stage: `writing` (the first chunk is on disk), `before-rename`,
`after-rename`. It only waits, so tests can send a signal at a known step.
"""
from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import tempfile
import threading
import time

from .errors import MobconvError, UsageError

CHUNK = 8 << 20  # bytes per write() call: a signal can stop a large write between chunks
_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP received; exit with 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class OutputLog:
    """The outputs a command checked (`planned`) and those completely written (`written`)."""

    def __init__(self):
        self.planned, self.written = [], []

    def reset(self) -> None:
        self.planned, self.written = [], []

    def plan(self, path: str) -> None:
        if path not in self.planned:
            self.planned.append(path)

    def done(self, path: str) -> None:
        if path in self.planned and path not in self.written:
            self.written.append(path)

    def not_written(self) -> list:
        return [p for p in self.planned if p not in self.written]


OUTPUTS = OutputLog()


# ---- checks --------------------------------------------------------------------------


_KINDS = ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a FIFO (named pipe)"),
          (stat.S_ISCHR, "is a character device"), (stat.S_ISBLK, "is a block device"),
          (stat.S_ISSOCK, "is a socket"))


def check_output(path, inputs=(), option: str = "-o") -> str:
    """The file `path` names once links are followed; MobconvError (one line) if it
    must not be written (see the module docstring), UsageError if it is an input."""
    path = os.fspath(path)
    if not path:
        raise UsageError("output path is empty (give a file name such as model.mob)")
    target = os.path.realpath(path)
    shown = path if target == os.path.abspath(path) else f"{path} (a link to {target})"
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise MobconvError(f"cannot write {shown}: {exc.strerror}") from None
    if st is None and os.path.islink(path):
        raise MobconvError(f"cannot write {path}: is a symbolic link to {os.readlink(path)}, "
                           "which does not exist (remove the link or point it at a file)")
    if st is None and path.endswith((os.sep, os.altsep or os.sep)):  # realpath drops the '/'
        raise MobconvError(f"cannot write {path}: names a directory, which does not exist "
                           "(give a file name such as model.mob)")
    for source in inputs:
        how = _same_file(path, target, st, os.fspath(source))
        if how is not None:
            raise UsageError(f"{option} {path}: would overwrite the input file {source}{how} "
                             "(choose another output path)")
    if st is not None:
        for is_kind, words in _KINDS:
            if is_kind(st.st_mode):
                hint = (f"give a file name such as {os.path.join(path, 'model.mob')}"
                        if stat.S_ISDIR(st.st_mode) else "give the path of a regular file")
                raise MobconvError(f"cannot write {shown}: {words}, not a regular file ({hint})")
        mode = stat.S_IMODE(st.st_mode)
        if not mode & 0o222 or not os.access(target, os.W_OK):
            what = "read-only" if not mode & 0o222 else "not writable for this user"
            raise MobconvError(f"cannot write {shown}: the existing file is {what} (mode "
                               f"{mode:04o}; remove it, make it writable or choose another path)")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise MobconvError(f"cannot write {path}: directory {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise MobconvError(f"cannot write {path}: directory {parent} is not writable")
    return target


def _same_file(path: str, target: str, st, source: str):
    """None if `source` is not the file `target` names, else how it is the same ('' for
    the very same path)."""
    try:
        real = os.path.realpath(source)
        src = os.stat(real)
    except OSError:
        return None
    if real == target:
        return "" if os.path.abspath(source) == os.path.abspath(path) else \
            " (the same file, through a symbolic link)"
    if st is not None and (st.st_dev, st.st_ino) == (src.st_dev, src.st_ino):
        return " (the same file under another name: a hard link)"
    return None


# ---- writing -------------------------------------------------------------------------


def write_atomic(path, data, inputs=(), option: str = "-o") -> None:
    """Write the bytes-like `data` to `path` (links followed) atomically; see the module
    docstring. MobconvError naming the file on failure; nothing is left behind."""
    path = os.fspath(path)
    target = check_output(path, inputs, option)
    data = memoryview(data).cast("B")
    directory = os.path.dirname(target)
    fd = tmp = None
    try:
        with signals_held():
            fd, tmp = tempfile.mkstemp(prefix=".mobconv-", suffix=".tmp", dir=directory)
        _set_mode_and_owner(fd, target)
        for start in range(0, len(data), CHUNK):
            _write_all(fd, data[start:start + CHUNK])
            if start == 0:
                _test_pause("writing")
        os.fsync(fd)
        _test_pause("before-rename")
        with signals_held():
            closing, fd = fd, None
            os.close(closing)
            os.replace(tmp, target)
            tmp = None
            OUTPUTS.done(path)
        _fsync_directory(directory)
        _test_pause("after-rename")
    except OSError as exc:
        raise MobconvError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if fd is not None or tmp is not None:
            with signals_held():  # a second Ctrl-C must not stop the clean-up half-way
                if fd is not None:
                    os.close(fd)
                if tmp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)


def _write_all(fd: int, chunk) -> None:
    while chunk:
        chunk = chunk[os.write(fd, chunk):]


def _set_mode_and_owner(fd: int, target: str) -> None:
    """mkstemp makes a private 0600 file: give it what the replaced file had (mode,
    and owner when we are root), or the mode open() gives a new file."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
        with contextlib.suppress(OSError):
            os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; some file systems cannot fsync a directory (fine)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _test_pause(stage: str) -> None:
    if os.environ.get("MOBCONV_TEST_PAUSE_AT") == stage:
        sys.stderr.write(f"mobconv-test: paused at {stage}\n")
        sys.stderr.flush()
        # Short sleeps: the kernel may deliver the signal to another thread (numpy's
        # BLAS pool), which does not wake this one; the handler runs between sleeps.
        end = time.monotonic() + float(os.environ.get("MOBCONV_TEST_PAUSE_SECONDS", "30"))
        while time.monotonic() < end:
            time.sleep(0.02)


# ---- signals -------------------------------------------------------------------------


_held = 0             # depth of signals_held() blocks in progress
_pending = None       # a signal received while held, raised when the block ends
_stopping_since = None  # time.monotonic() of the last Interrupted raised
REPEAT_GRACE = 3.0    # seconds in which a repeated signal is not raised again


def _on_signal(signum, frame) -> None:
    global _pending
    if _held:
        _pending = _pending or signum
        return
    _interrupt(signum)


def _interrupt(signum: int) -> None:
    """Raise Interrupted, unless one was raised less than REPEAT_GRACE seconds ago:
    Ctrl-C pressed five times must not cut short the clean-up the first one started
    (a later one still stops a process that did not end)."""
    global _stopping_since
    now = time.monotonic()
    if _stopping_since is not None and now - _stopping_since < REPEAT_GRACE:
        return
    _stopping_since = now
    raise Interrupted(signum)


def handle_signals() -> dict:
    """Raise `Interrupted` on SIGINT, SIGTERM and SIGHUP (main thread only). A signal
    the process was started with ignored (nohup, background jobs) stays ignored.
    Returns the previous handlers, for `restore_signals`."""
    global _stopping_since
    previous = {}
    _stopping_since = None
    if threading.current_thread() is not threading.main_thread():
        return previous
    for signum in _SIGNALS:
        old = signal.getsignal(signum)
        if old is signal.SIG_IGN:
            continue
        signal.signal(signum, _on_signal)
        previous[signum] = old
    return previous


def quiet_signals(previous: dict) -> None:
    """From now on the signals we handle do nothing (while the last line is printed,
    and until the process exits). A Python no-op rather than SIG_IGN: a signal already
    received would otherwise make Python print 'ignored due to race condition'."""
    for signum in previous:
        signal.signal(signum, _no_op)


def _no_op(signum, frame) -> None:
    pass


def restore_signals(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT/SIGTERM/SIGHUP back during a few steps that must not be cut in two
    (not nested). A signal received meanwhile is raised when the block ends.

    Two layers: the thread's signal mask (so even Python's default Ctrl-C handler
    waits, in the main thread), and `_held` for our own handler (the kernel may
    deliver a signal to another thread, e.g. the runtime's pool, whose mask we do not
    control; Python then runs the handler in the main thread anyway).
    """
    global _held, _pending
    old_mask = None
    if hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread():
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        signum, _pending = _pending, None
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a blocked signal raises here
        if signum is not None:
            _interrupt(signum)
