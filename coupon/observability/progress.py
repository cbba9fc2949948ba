"""Progress of long CLI commands: a plain line on stderr every `every` items and at the end.

Plain lines, not a terminal bar, so a CI log or a redirected stderr shows them too; stdout stays the
command's output (ids, tokens) for pipes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int | None = None, every: int = 1000, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.every = max(every, 1)
        self.stream = stream or sys.stderr
        self.done = 0
        self._next = self.every
        self._started = time.monotonic()

    def _line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self._started
        of = f"/{self.total:,}" if self.total is not None else ""
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = f", {self.done / elapsed:,.0f}/s" if elapsed > 0 and self.done else ""
        tail = f" done in {elapsed:.1f}s" if final else ""
        self.stream.write(f"[{self.label}] {self.done:,}{of}{pct}{rate}{tail}\n")
        self.stream.flush()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.done >= self._next and (self.total is None or self.done < self.total):
            self._line()
            self._next = (self.done // self.every + 1) * self.every

    def finish(self) -> None:
        self._line(final=True)
