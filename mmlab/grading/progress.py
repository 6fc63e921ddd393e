"""A one-line progress bar on stderr, without a dependency.

On a terminal the line is redrawn in place; otherwise (a log file, CI) each finished item
gets its own line, so the record is readable afterwards.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.started = time.monotonic()

    def advance(self, what: str) -> None:
        """Count one finished item, described by ``what``."""
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        if self.live:
            filled = WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "." * (WIDTH - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} {elapsed:5.0f} s  {what[:40]:<40}")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {elapsed:.0f} s {what}\n")
        self.stream.flush()
