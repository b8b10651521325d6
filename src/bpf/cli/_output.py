"""Text the command line prints: tables, bars, durations, and a progress line for long runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TextIO


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "",
          right: Sequence[int] = ()) -> str:
    """Rows as aligned columns under their headers; ``right`` lists right-aligned columns."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append((indent + "  ".join(parts)).rstrip())
    return "\n".join(lines)


def bar(value: float, largest: float, width: int = 30) -> str:
    """A horizontal bar of ``width`` characters at most, proportional to ``value / largest``."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = round(value / largest * width * 8)
    full, rest = divmod(max(eighths, 1), 8)
    return "█" * full + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[rest]


def duration(delta: timedelta | None) -> str:
    """A duration the way a person says it: ``45s``, ``12m``, ``3h 20m``, ``4d 6h``."""
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def percent(value: float | None) -> str:
    """A fraction (0.25) as a percentage (``25%``)."""
    return "-" if value is None else f"{value * 100:.0f}%"


def probability(value: float | None) -> str:
    """A stage's probability, written 0..100 in the process file, as ``25%``."""
    return "-" if value is None else f"{value:g}%"


class Progress:
    """``label 12/40`` rewritten in place on stderr, for runs long enough to wait for.

    Shown only when the stream is a terminal and there are at least ``minimum`` items, and
    redrawn at most ten times a second; `done` erases it.
    """

    #: Fewer items than this finish too fast to need a progress line.
    MINIMUM = 20

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None,
                 minimum: int = MINIMUM) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.total = total
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = total >= minimum and bool(isatty and isatty())
        self._last = 0.0
        self._shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._shown and done < self.total and now - self._last < 0.1:
            return
        self._last = now
        self._shown = True
        self.stream.write(f"\r{self.label} {done}/{self.total}")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the line (before printing a line of output; the next `update` redraws it)."""
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    done = clear
