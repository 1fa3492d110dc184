"""Resuming a pod log after a cut without losing or repeating a line. Pure.

The API only resumes in whole seconds (`sinceSeconds`; the Python clients have no `sinceTime`),
so a reopened stream starts a little before the last line seen and repeats some lines. Each line
carries the kubelet's nanosecond timestamp (read by `exporter.parser.prefix`), and within one
container's log they do not go back in time, so a `Cursor` drops, on the reopened stream:

- lines older than the window (two seconds before the newest line seen): seen before;
- lines inside the window that were seen before, matched by (timestamp, text) as a multiset,
  so two identical lines with the same timestamp are still both counted once.

Lines older than `floor_ns` (where following began) are never delivered.
"""

from __future__ import annotations

import math
from collections import Counter, deque

from exporter.parser.prefix import NS

__all__ = ["MAX_WINDOW_LINES", "NS", "WINDOW_NS", "Cursor"]

WINDOW_NS = 2_000_000_000
MAX_WINDOW_LINES = 100_000


class Cursor:
    """Where a followed container log stands: the newest line seen and the lines just before."""

    __slots__ = (
        "_replay",
        "_window",
        "container_id",
        "drained",
        "ended",
        "floor_ns",
        "idle_since",
        "last_ns",
        "opened",
        "restarts",
    )

    def __init__(self, *, floor_ns: int) -> None:
        self.floor_ns = floor_ns
        self.last_ns = 0
        # the newest container read from, whether it was read to its end (it had exited), and
        # the pod's restart count of that container (exporter.sources.runs)
        self.container_id: str | None = None
        self.drained = False
        self.ended = False  # it was read to its end once (drained: and once more, adding nothing)
        self.restarts: int | None = None
        self.idle_since: float | None = None
        self.opened = False  # a stream was opened before: the next one is a reconnect
        self._window: deque[tuple[int, int]] = deque()
        self._replay: Counter[tuple[int, int]] = Counter()

    def resume(self) -> None:
        """A stream is being reopened: the window's lines will come again and are dropped once."""
        self._replay = Counter(self._window)

    def accept(self, ts_ns: int, text: str) -> bool:
        """True when the line is new (and remember it); False when seen or too old."""
        if ts_ns < self.floor_ns or ts_ns < self.last_ns - WINDOW_NS:
            return False
        key = (ts_ns, hash(text))
        replay = self._replay
        if replay and replay.get(key):
            replay[key] -= 1
            if not replay[key]:
                del replay[key]
            return False
        window = self._window
        window.append(key)
        if ts_ns > self.last_ns:
            self.last_ns = ts_ns
        horizon = self.last_ns - WINDOW_NS
        while window and (window[0][0] < horizon or len(window) > MAX_WINDOW_LINES):
            window.popleft()
        return True

    def since_seconds(self, now_ns: int, *, slack: int) -> int:
        """`sinceSeconds` that reaches back to the newest line seen (or the floor), plus slack
        for clock skew between this process and the node."""
        ref = self.last_ns or self.floor_ns
        return max(1, math.ceil((now_ns - ref) / NS) + slack)
