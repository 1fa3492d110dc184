"""Building Events, shared by the zap and the text formats. Pure.

`Unparsed`/`UNPARSED` mark a line that is not an etcd log line at all. A format parser that finds
a known message with a field of the wrong type raises `BadLine` (a ValueError), which
`parse_line` turns into UNPARSED.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from datetime import datetime
from typing import Final, final

from exporter.durations import parse_duration, single_unit
from exporter.model import Event, EventKind, Operation
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
_INFINITY = math.inf


class BadLine(ValueError):
    """A known message whose fields do not have the expected types."""


def duration(value: object) -> float:
    """A duration field (Go string or number of seconds) → finite seconds ≥ 0, else BadLine."""
    if type(value) is str:  # the common form first (never negative; infinite if too long)
        seconds = single_unit(value)
        if seconds is not None and seconds < _INFINITY:
            return seconds
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise BadLine(f"not a duration: {value!r}")
    try:
        seconds = parse_duration(value)
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


NewEvent = Callable[
    [
        EventKind,
        datetime | None,
        float | None,
        Operation | None,
        bool | None,
        str | None,
        str | None,
        float | None,
    ],
    Event,
]
_FIELDS = (
    "kind",
    "time",
    "duration_seconds",
    "operation",
    "read_only",
    "resource",
    "error",
    "expected_seconds",
)


def _event_maker(cls: type[Event] = Event) -> NewEvent:
    """`new_event(kind, time, duration_seconds, operation, read_only, resource, error,
    expected_seconds)`: the same as `cls(kind=kind, …)`. When `cls` is what Event is now, a
    dataclass with a slot for each of these fields and nothing run after them, it fills the slots
    itself, as the generated `__init__` does, without its calls through `object.__setattr__`;
    otherwise it calls `cls`."""
    fields = dataclasses.fields(cls)
    names = tuple(field.name for field in fields)
    slots = tuple(cls.__dict__.get("__slots__", ()))
    plain = all(field.init for field in fields) and not hasattr(cls, "__post_init__")
    if names != _FIELDS or slots != names or not plain:
        return lambda *values: cls(**dict(zip(_FIELDS, values, strict=True)))
    make = object.__new__
    kind_, time_, took_, op_, read_only_, resource_, error_, expected_ = (
        cls.__dict__[name].__set__ for name in names
    )

    def new_event(
        kind: EventKind,
        time: datetime | None,
        duration_seconds: float | None,
        operation: Operation | None,
        read_only: bool | None,
        resource: str | None,
        error: str | None,
        expected_seconds: float | None,
    ) -> Event:
        event: Event = make(cls)
        kind_(event, kind)
        time_(event, time)
        took_(event, duration_seconds)
        op_(event, operation)
        read_only_(event, read_only)
        resource_(event, resource)
        error_(event, error)
        expected_(event, expected_seconds)
        return event

    return new_event


new_event = _event_maker()


def simple(
    kind: EventKind,
    time: datetime | None,
    *,
    took: float | None = None,
    expected: float | None = None,
    error: str | None = None,
) -> Event:
    """An event of any kind but slow_request."""
    return new_event(kind, time, took, None, None, None, error or None, expected)


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
    return new_event(
        EventKind.SLOW_REQUEST,
        time,
        took,
        operation,
        is_read_only(prefix),
        resource,
        error or None,
        expected,
    )
