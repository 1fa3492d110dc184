"""zap lines: JSON (etcd 3.4 `--logger zap`, 3.5, 3.6) and 3.6's console format. Pure.

JSON: `{"level":"warn","ts":…,["logger":"raft",]"caller":"…","msg":"…",<fields>}`; zap writes
the keys in this order, which the fast path relies on: a line whose head has that shape and whose
`msg` is not one we look for is an etcd line of no interest, decided without `json.loads` (the
closing brace is checked too, so a truncated line is still UNPARSED). Any other shape takes the
slow path and is fully validated.

The two commonest events, `apply request took too long` and `slow fdatasync` at level warn, also
have a fast path for whole lines (`fast_event`, tried by `parse_line` first): one regular
expression, `_FAST`, recognises the line in the exact shape zap writes it, with or without the
kubelet prefix, every value a JSON string without escapes (but `\"` in the request), so that
`json.loads` would give these very strings; the event is then built from the groups as the
handlers below build it. The optional C extension (`commands/parse/_shapes`) reads
the same groups in one pass, several times faster. Any other line, and any line whose values do
not convert, is left to the general path, so the result is the same either way; tests compare
the paths on generated and mutated lines.

Console (3.6 `--log-format console`): `ts<TAB>level<TAB>[logger<TAB>]caller<TAB>msg[<TAB>{json}]`.

Messages are matched exactly (catalog M1–M10 of the reference), never by substring:
`waiting for ReadIndex response took too long, retrying` is a read-index retry, not a slow request.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import cast

from exporter.durations import EXPONENTS, NUMBER
from exporter.model import Event, EventKind
from exporter.parser.events import (
    UNPARSED,
    BadLine,
    Result,
    duration,
    new_event,
    optional_duration,
    optional_text,
    simple,
    slow_request,
    threshold,
)
from exporter.parser.prefix import PREFIX_PATTERN
from exporter.parser.request import describe, is_read_only
from exporter.parser.times import iso_time, zap_time

Fields = Mapping[str, object]
Handler = Callable[[Fields, str, datetime | None], Result]

_HEAD = re.compile(
    r'\{"level":"[a-z]+","ts":(?:"[^"\\]*"|-?\d[\d.eE+-]*),'
    r'(?:"logger":"[^"\\]*",)?(?:"caller":"[^"\\]*",)?"msg":"([^"\\]*)"',
    re.ASCII,
)
_TRACE = re.compile(r"trace\[\d+\] \S", re.ASCII)
_LEADER = re.compile(
    r"raft\.node: [0-9a-f]+ (?:elected leader [0-9a-f]+|changed leader from [0-9a-f]+ to "
    r"[0-9a-f]+) at term \d+",
    re.ASCII,
)
PREFIXES = ("trace[", "raft.node: ")
_LEVELS = frozenset({"debug", "info", "warn", "error", "dpanic", "panic", "fatal"})


def _apply(f: Fields, level: str, time: datetime | None) -> Result:
    return slow_request(
        time,
        took=duration(f.get("took")),
        expected=optional_duration(f.get("expected-duration")),
        prefix=optional_text(f.get("prefix")) or "",
        request=optional_text(f.get("request")) or "",
        error=optional_text(f.get("error")),
    )


def _timed(kind: EventKind, took: str | None, expected: str | None = None) -> Handler:
    """A handler for a message whose duration and threshold are the named fields."""

    def handle(f: Fields, level: str, time: datetime | None) -> Result:
        return simple(
            kind,
            time,
            took=duration(f.get(took)) if took else None,
            expected=optional_duration(f.get(expected)) if expected else None,
            error=optional_text(f.get("error")),
        )

    return handle


def _request_stats(f: Fields, level: str, time: datetime | None) -> Result:
    if level != "warn":  # logged at debug below the 300 ms threshold
        return None
    return simple(EventKind.SLOW_GRPC_REQUEST, time, took=duration(f.get("time spent")))


def _dropped(f: Fields, level: str, time: datetime | None) -> Result:
    return simple(EventKind.RAFT_MESSAGE_DROPPED, time)


HANDLERS: dict[str, Handler] = {
    "apply request took too long": _apply,
    "slow fdatasync": _timed(EventKind.SLOW_FDATASYNC, "took", "expected-duration"),
    "leader failed to send out heartbeat on time; took too long, leader is overloaded likely "
    "from slow disk": _timed(EventKind.HEARTBEAT_LATE, "exceeded-duration", "expected-duration"),
    "waiting for ReadIndex response took too long, retrying": _timed(
        EventKind.READ_INDEX_RETRY, None, "retry-timeout"
    ),
    "timed out waiting for read index response (local node might have slow network)": _timed(
        EventKind.READ_INDEX_TIMEOUT, None, "timeout"
    ),
    "ignored out-of-date read index response; local node read indexes queueing up and waiting "
    "to be in sync with leader": _timed(EventKind.READ_INDEX_OUT_OF_DATE, None),
    "request stats": _request_stats,
    "prober detected unhealthy status": _timed(EventKind.PEER_UNHEALTHY, None),
    "prober found high clock drift": _timed(EventKind.CLOCK_DRIFT, "clock-drift"),
    "snapshotting taking too long to transfer": _timed(EventKind.SNAPSHOT_TRANSFER_SLOW, "taking"),
    "dropped internal Raft message since sending buffer is full (overloaded network)": _dropped,
    "dropped Raft message since sending buffer is full (overloaded network)": _dropped,
    "dropped internal Raft message since receiving buffer is full (overloaded network)": _dropped,
    "dropped Raft message since receiving buffer is full (overloaded network)": _dropped,
}

_trace_handler = _timed(EventKind.SLOW_TRACE, "duration")


def _leader(f: Fields, level: str, time: datetime | None) -> Result:
    return simple(EventKind.LEADER_CHANGE, time)


def _ignore(f: Fields, level: str, time: datetime | None) -> Result:
    return None


def handler_for(msg: str) -> Handler | None:
    """The handler of a zap message, or None for a message of no interest."""
    handler = HANDLERS.get(msg)
    if handler is not None:
        return handler
    if msg.startswith("trace[") and _TRACE.match(msg):
        return _trace_handler
    if msg.startswith("raft.node: "):
        # "lost leader" is followed by "elected leader" on the same member: count only the latter.
        return _leader if _LEADER.fullmatch(msg) else _ignore
    return None


def is_interesting(msg: str) -> bool:
    """Cheap test on the raw `msg`: could the line be an event?"""
    return msg in HANDLERS or msg.startswith(PREFIXES)


# A JSON string's characters without escapes (json.loads rejects raw control characters).
_CHARS = r'[^"\\\x00-\x1f]*'
_ESCAPED_QUOTES = rf'{_CHARS}(?:\\"{_CHARS})*'
# A duration: number and unit when `parse_duration` reads it as one unit ending in s, else text.
_SUBSECOND = "|".join(sorted(EXPONENTS))
_DURATION = rf'"(?:({NUMBER})(s|{_SUBSECOND})|({_CHARS}))"'
# Whole lines of the two commonest events; see the module docstring. The time is checked to
# begin like an ISO time, as `iso_time` does; the fields after the duration and threshold are
# those of `apply request took too long`, present when it is the message (group 2).
_FAST = re.compile(
    rf'(?:{PREFIX_PATTERN})?\{{"level":"warn","ts":"(\d{{4}}-\d\d-\d\d[T ]\d\d:\d\d:\d\d{_CHARS})",'
    rf'"caller":"{_CHARS}","msg":"(?:(apply request took too long)|slow fdatasync)",'
    rf'"took":{_DURATION},"expected-duration":"({_CHARS})"'
    rf'(?(2),"prefix":"({_CHARS})","request":"({_ESCAPED_QUOTES})","response":"{_CHARS}"'
    rf'(?:,"error":"({_CHARS})")?)\}}',
    re.ASCII,
)
FAST_START = '{"level":"warn",'  # how a line of `_FAST` begins after the prefix, if any
_INFINITY = math.inf
# `_FAST`'s groups: ts, the apply message, number and unit of the duration or else the duration,
# threshold, prefix, request, error (the last three only for apply request took too long).
Groups = tuple[
    str, str | None, str | None, str | None, str | None, str, str | None, str | None, str | None
]


def _regex_groups(line: str) -> Groups | None:
    """`_FAST.fullmatch(line).groups()`, None where it does not match."""
    m = _FAST.fullmatch(line)
    return None if m is None else cast(Groups, m.groups())


def _accelerator() -> Callable[[str], Groups | None] | None:
    """The same as `_regex_groups` from the C extension (`event_groups`, in one pass, several
    times faster); None when the extension is not built."""
    try:
        from exporter.commands.parse._shapes import event_groups
    except ImportError:
        return None
    return cast(Callable[[str], Groups | None], event_groups)


# The switch between the two, which give the same groups (tests compare them).
fast_groups = _accelerator() or _regex_groups


def fast_event(line: str) -> Event | None:
    """The event of a whole line (kubelet prefix included) of `_FAST`'s shape; None for any
    other line, and for a line whose values do not convert (the general path then decides).
    A prefixed line must be shorter than `EMBEDDED_MIN_LENGTH`: no prefix is stripped from it."""
    groups = fast_groups(line)
    if groups is None:
        return None
    ts, _, number, unit, took, expected, prefix, request, error = groups
    try:
        time = datetime.fromisoformat(ts)  # `iso_time`, whose shape check the pattern made
        if time.tzinfo is None:
            time = time.replace(tzinfo=UTC)
        if number is None or unit is None:  # (both or neither)
            seconds = duration(took)
        else:  # `_seconds` of exporter.durations, and finite as `duration` requires
            seconds = float(number + EXPONENTS[unit]) if unit != "s" else float(number)
            if seconds == _INFINITY:
                return None
        if prefix is None or request is None:  # slow fdatasync, as `_timed` and `simple` build it
            return new_event(
                EventKind.SLOW_FDATASYNC, time, seconds, None, None, None, None, threshold(expected)
            )
        if "\\" in request:
            request = request.replace('\\"', '"')
        operation, resource = describe(prefix, request)
        return new_event(  # as `_apply` and `slow_request` build it
            EventKind.SLOW_REQUEST,
            time,
            seconds,
            operation,
            is_read_only(prefix),
            resource,
            error or None,
            threshold(expected),
        )
    except (ValueError, OverflowError, RecursionError):
        return None


def parse_json(text: str) -> Result:
    """One zap JSON line (no kubelet prefix)."""
    m = _HEAD.match(text)
    if m is not None and not is_interesting(m.group(1)):
        return None if text.endswith("}") or text.rstrip().endswith("}") else UNPARSED
    try:
        obj = _loads(text)
    except RecursionError:
        return UNPARSED
    if not isinstance(obj, dict):
        return UNPARSED
    msg, level, ts = obj.get("msg"), obj.get("level"), obj.get("ts")
    if not isinstance(msg, str) or not isinstance(level, str):
        return UNPARSED
    if isinstance(ts, (dict, list, bool)):  # a tuple: faster than a union
        return UNPARSED
    handler = handler_for(msg)
    if handler is None:
        return None
    return handler(obj, level, zap_time(ts))


# How json.loads scans (the same scanner, called directly); not in the type stubs.
_DECODER = json.JSONDecoder()
_scan_once: Callable[[str, int], tuple[object, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> object:
    """`json.loads(text)`, without its layers of calls for a text that is one object and
    nothing else; any other text (leading or trailing whitespace, an error) is left to it."""
    if text[:1] == "{":
        try:
            obj, end = _scan_once(text, 0)
        except StopIteration:
            pass
        else:
            if end == len(text):
                return obj
    return json.loads(text)


def parse_console(text: str) -> Result:
    """One zap console line: tab-separated, fields as JSON in the last column."""
    parts = text.split("\t")
    if len(parts) < 3 or parts[1].lower() not in _LEVELS:
        return UNPARSED
    fields_text = parts.pop() if len(parts) > 3 and parts[-1].startswith(("{", "[")) else None
    handler = handler_for(parts[-1])
    if handler is None:
        iso_time(parts[0])
        return None
    fields = json.loads(fields_text) if fields_text else {}
    if not isinstance(fields, dict):
        raise BadLine("console fields are not an object")
    return handler(fields, parts[1].lower(), iso_time(parts[0]))
