"""A one-line progress indicator for `diagnose`, on stderr, only when stderr is a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TextIO

from exporter.diagnosis import humanize as h

TICK = 0.5


class Progress:
    """Counts members through the steps; `running()` redraws the line until it ends."""

    def __init__(self, stream: TextIO, *, enabled: bool | None = None) -> None:
        self._stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.total = 0
        self.scraped = 0
        self.done = 0
        self.phase = "discovering etcd members"
        self.window_ends: float | None = None

    def line(self, *, now: float) -> str:
        """The current status line."""
        if not self.total:
            return f"diagnose: {self.phase}…"
        text = f"diagnose: {self.done}/{self.total} etcd members done, {self.scraped} scraped"
        if self.window_ends is not None and self.window_ends > now:
            text += f", window ends in {h.span(max(1, round(self.window_ends - now)))}"
        return text

    def draw(self) -> None:
        """Redraw the line in place (carriage return, erase to end of line)."""
        if self.enabled:
            self._stream.write("\r\x1b[K" + self.line(now=time.monotonic()))
            self._stream.flush()

    def clear(self) -> None:
        """Erase the line, leaving the terminal as it was."""
        if self.enabled:
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Progress]:
        """Redraw every TICK seconds while the block runs; erase the line afterwards."""
        if not self.enabled:
            yield self
            return
        task = asyncio.create_task(self._tick(), name="diagnose-progress")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.clear()

    async def _tick(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(TICK)
