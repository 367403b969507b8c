"""A progress line on stderr, only when stderr is a terminal (and not
--quiet): rewritten in place at most 5 times a second, cleared at the end.
Written small by hand: no dependency."""
from __future__ import annotations

import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:     # typing costs ms at start-up: the CLI tools avoid it
    from typing import Callable, Optional

import os

# seconds between two updates (LINUXAIO_PROGRESS_INTERVAL: tests show every one)
INTERVAL = float(os.environ.get("LINUXAIO_PROGRESS_INTERVAL", "0.2"))


class Line:
    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False

    def show(self, text: Callable[[float], str], force: bool = False) -> None:
        """text(elapsed seconds) -> the line; called only when it is due."""
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._last < INTERVAL:
            return
        self._last = now
        self.stream.write("\r\x1b[K" + text(now - self.start))
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def bar(fraction: float, width: int = 24) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(fraction * width)
    return "[" + "#" * full + "-" * (width - full) + "]"


def eta(done: float, total: float, elapsed: float) -> Optional[float]:
    if done <= 0 or elapsed <= 0 or total <= done:
        return None
    return (total - done) / (done / elapsed)
