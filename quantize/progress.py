"""A small progress bar for long loops (calibration, debugging): count, rate, ETA.

    with Progress(total=2000, label="calibrating", enabled=None) as bar:
        for x in data:
            ...
            bar.advance()

enabled=None (auto) draws on stderr only when stderr is a terminal; True/False
force it on/off. Redraws at most every MIN_INTERVAL seconds, on one line (\\r),
and ends the line on close. No dependency beyond the standard library.
"""
from __future__ import annotations

import sys
import time
from typing import Optional

MIN_INTERVAL = 0.1
WIDTH = 24


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: Optional[int] = None, label: str = "", enabled=None,
                 stream=None, clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = bool(enabled)
        self.total = total
        self.label = label
        self.count = 0
        self._clock = clock
        self._start = clock()
        self._last_draw = -float("inf")
        self._width = 0

    def line(self) -> str:
        """The bar as text: 'label [#####.....] 120/2000 40.1/s ETA 0:47'."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.count / elapsed
        parts = [self.label] if self.label else []
        if self.total:
            done = min(self.count / self.total, 1.0)
            filled = int(done * WIDTH)
            parts.append("[" + "#" * filled + "." * (WIDTH - filled) + "]")
            parts.append(f"{self.count}/{self.total}")
        else:
            parts.append(f"{self.count}")
        parts.append(f"{rate:.1f}/s")
        if self.total and rate > 0 and self.count < self.total:
            parts.append(f"ETA {_fmt_time((self.total - self.count) / rate)}")
        else:
            parts.append(f"elapsed {_fmt_time(elapsed)}")
        return " ".join(parts)

    def advance(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        now = self._clock()
        if now - self._last_draw >= MIN_INTERVAL or (self.total and self.count >= self.total):
            self._draw()
            self._last_draw = now

    def _draw(self) -> None:
        text = self.line()
        pad = max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.count:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
