"""Building Events, shared by the zap and the text formats. Pure.

`Unparsed`/`UNPARSED` mark a line that is not an etcd log line at all. A format parser that finds
a known message with a field of the wrong type raises `BadLine` (a ValueError), which
`parse_line` turns into UNPARSED.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime
from typing import Final, final

from exporter.durations import parse_general, seconds_or_below
from exporter.model import Event, EventKind
from exporter.parser.request import describe, is_read_only


@final
class Unparsed:
    """Type of the UNPARSED sentinel: the line is not an etcd log line."""

    _instance: Unparsed | None = None

    def __new__(cls) -> Unparsed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNPARSED"

    def __reduce__(self) -> str:
        return "UNPARSED"


UNPARSED: Final = Unparsed()

Result = Event | None | Unparsed


class BadLine(ValueError):
    """A known message whose fields do not have the expected types."""


def duration(value: object) -> float:
    """A duration field (Go string or number of seconds) → finite seconds ≥ 0, else BadLine."""
    if type(value) is str:
        seconds = seconds_or_below(value)  # what etcd writes, first (as `parse_duration` does)
        if seconds is not None and seconds < math.inf:  # never negative: digits and a point
            return seconds
    elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise BadLine(f"not a duration: {value!r}")
    try:
        seconds = parse_general(value)  # the first try above is `parse_duration`'s own
    except ValueError as err:
        raise BadLine(str(err)) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise BadLine(f"not a duration: {value!r}")
    return seconds


def optional_duration(value: object) -> float | None:
    """Like `duration`, but None stays None. For thresholds, which repeat: text is memoised."""
    if value is None:
        return None
    return threshold(value) if isinstance(value, str) else duration(value)


@functools.lru_cache(maxsize=256)
def threshold(text: str) -> float:
    """`duration` of a text that repeats (a threshold, `100ms`): memoised, in bounded memory."""
    return duration(text)


def optional_text(value: object) -> str | None:
    """A string field, None when absent, BadLine for any other type."""
    if value is None or isinstance(value, str):
        return value
    raise BadLine(f"not a string: {value!r}")


def simple(
    kind: EventKind,
    time: datetime | None,
    *,
    took: float | None = None,
    expected: float | None = None,
    error: str | None = None,
) -> Event:
    """An event of any kind but slow_request."""
    return Event(kind, time, took, None, None, None, error or None, expected)


def slow_request(
    time: datetime | None,
    *,
    took: float,
    expected: float | None,
    prefix: str,
    request: str,
    error: str | None,
) -> Event:
    """A slow_request event; operation, read_only and resource come from prefix and request."""
    operation, resource = describe(prefix, request)
    return Event(
        EventKind.SLOW_REQUEST,
        time,
        took,
        operation,
        is_read_only(prefix),
        resource,
        error or None,
        expected,
    )
