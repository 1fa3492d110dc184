"""`LineSink`: where log sources deliver lines; each line → parser → the target's state.

On the hot path of every followed stream (thousands of them), so it stays tiny.
"""

from __future__ import annotations

import time

from exporter.model import Event
from exporter.parser import UNPARSED, parse_line, parse_text
from exporter.sources.lines import LineSplitter, Sink
from exporter.state import TargetState

__all__ = ["LineSink", "LineSplitter", "Sink"]


class LineSink:
    """Parses each line and folds the result into one target's state."""

    __slots__ = ("_max", "_state")

    def __init__(self, state: TargetState, *, max_line_bytes: int) -> None:
        self._state = state
        self._max = max_line_bytes

    @property
    def max_line_bytes(self) -> int:
        """Longest line parsed; longer lines count as unparsed."""
        return self._max

    def feed(self, line: str, received_ns: int | None = None) -> None:
        """Count the line and record its event, if any."""
        state = self._state
        if len(line) > self._max // 4 and len(line.encode("utf-8", "replace")) > self._max:
            state.count_line(unparsed=True)
            return
        result = parse_line(line) if received_ns is None else parse_text(line, received_ns)
        if result is UNPARSED:
            state.count_line(unparsed=True)
            return
        state.count_line(unparsed=False)
        if isinstance(result, Event):
            state.record_event(result, now=time.time())

    def connected(self, up: bool) -> None:
        """Mark the target's log stream up or down."""
        self._state.set_stream_up(up)

    def reconnected(self) -> None:
        """Count a reopening of the stream."""
        self._state.count_reconnect()
