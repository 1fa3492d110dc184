"""Resuming a pod log after a cut without losing or repeating a line. Pure.

The API only resumes in whole seconds (`sinceSeconds`; the Python clients have no `sinceTime`),
so a reopened stream starts a little before the last line seen and repeats some lines. Each line
carries the kubelet's nanosecond timestamp, and within one container's log they do not go back
in time, so a `Cursor` drops, on the reopened stream:

- lines older than the window (two seconds before the newest line seen): seen before;
- lines inside the window that were seen before, matched by (timestamp, text) as a multiset,
  so two identical lines with the same timestamp are still both counted once.

Lines older than `floor_ns` (where following began) are never delivered.
"""

from __future__ import annotations

import calendar
import math
from collections import Counter, deque
from datetime import datetime

WINDOW_NS = 2_000_000_000
MAX_WINDOW_LINES = 100_000
NS = 1_000_000_000

_epoch_cache: dict[str, int] = {}


def prefix_ns(prefix: str) -> int | None:
    """`2026-11-21T05:30:12.033818000Z` (or a `+02:00` offset) → nanoseconds since the epoch."""
    if len(prefix) < 20 or prefix[10] != "T":
        return None
    whole = prefix[:19]
    secs = _epoch_cache.get(whole)
    if secs is None:
        try:
            secs = calendar.timegm(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").timetuple())
        except ValueError:
            return None
        if len(_epoch_cache) > 4096:
            _epoch_cache.clear()
        _epoch_cache[whole] = secs
    rest, frac = prefix[19:], 0
    if rest.startswith("."):
        digits = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
        if digits == 0:
            return None
        frac = int(rest[1 : 1 + digits][:9].ljust(9, "0"))
        rest = rest[1 + digits :]
    if rest == "Z":
        return secs * NS + frac
    return _with_offset(secs, frac, rest)


def _with_offset(secs: int, frac: int, zone: str) -> int | None:
    if len(zone) != 6 or zone[0] not in "+-" or zone[3] != ":":
        return None
    try:
        minutes = int(zone[1:3]) * 60 + int(zone[4:6])
    except ValueError:
        return None
    sign = 1 if zone[0] == "+" else -1
    return (secs - sign * minutes * 60) * NS + frac


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
