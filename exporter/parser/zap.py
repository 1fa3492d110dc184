"""zap lines: JSON (etcd 3.4 `--logger zap`, 3.5, 3.6) and 3.6's console format. Pure.

JSON: `{"level":"warn","ts":…,["logger":"raft",]"caller":"…","msg":"…",<fields>}`; zap writes
the keys in this order, which the fast path relies on: a line whose head has that shape and whose
`msg` is not one we look for is an etcd line of no interest, decided without decoding it (the
closing brace is checked too, so a truncated line is still UNPARSED). Any other shape takes the
slow path and is fully validated.

The JSON is decoded by msgspec (a strict decoder: NaN, Infinity, numbers out of a double's range,
lone surrogates and trailing data are errors, so such a line is UNPARSED); duplicate keys keep the
last value, as `json.loads` does.

The events a slow etcd logs most (`apply request took too long`, `slow fdatasync`, request
traces, `request stats`, late heartbeats and ReadIndex retries: 17 % of a slowed etcd 3.5's lines)
also have one fast path for whole lines (`fast_event`, tried by `parse_line` first, after the
kubelet prefix is split off): the first characters of the message pick one regular expression
per message (`_FAST`), which recognises the line in the exact shape zap writes it, every value a
JSON string without escapes (but `\"` in a request) or an integer within 64 bits, so that the
decoder would give these very values; the event is then built from the groups as the handler of
the message builds it (a trace's steps with one `findall` over the list's text,
`trace.STEPS_IN_LIST`). Any other line, and any line whose values do not convert, is left to the
general path, so the result is the same either way; tests compare the paths on generated and
mutated lines. The same shapes joined into one pattern of a whole block of lines
(`FAST_LINES`) let the `parse` command find them in a block of text at once.

Console (3.6 `--log-format console`): `ts<TAB>level<TAB>[logger<TAB>]caller<TAB>msg[<TAB>{json}]`.

Messages are matched exactly (catalog M1–M10 of the reference), never by substring:
`waiting for ReadIndex response took too long, retrying` is a read-index retry, not a slow request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, cast

import msgspec

from exporter.model import Event, EventKind, Operation, TraceStep
from exporter.parser.defrag import ZAP_HANDLERS as DEFRAG_HANDLERS
from exporter.parser.events import (
    UNPARSED,
    BadLine,
    Result,
    duration,
    optional_duration,
    optional_text,
    simple,
    slow_request,
    threshold,
)
from exporter.parser.prefix import PREFIX_PATTERN
from exporter.parser.times import iso_time, shaped_iso_time, zap_time
from exporter.parser.trace import STEPS_IN_LIST, operation_of, step_totals, trace_event

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


HEARTBEAT = (
    "leader failed to send out heartbeat on time; took too long, leader is overloaded likely from "
    "slow disk"
)
READ_INDEX_RETRY = "waiting for ReadIndex response took too long, retrying"
HANDLERS: dict[str, Handler] = {
    "apply request took too long": _apply,
    "slow fdatasync": _timed(EventKind.SLOW_FDATASYNC, "took", "expected-duration"),
    HEARTBEAT: _timed(EventKind.HEARTBEAT_LATE, "exceeded-duration", "expected-duration"),
    READ_INDEX_RETRY: _timed(EventKind.READ_INDEX_RETRY, None, "retry-timeout"),
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
    **DEFRAG_HANDLERS,
}


def _trace_handler(operation: Operation) -> Handler:
    """The handler of the traces of one operation (exporter/parser/trace.py)."""

    def handle(f: Fields, level: str, time: datetime | None) -> Result:
        return trace_event(f, operation, time)

    return handle


# One handler per operation, built once (a trace's message holds its id, so it is not a key).
_TRACE_HANDLERS = {operation: _trace_handler(operation) for operation in Operation}


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
        return _TRACE_HANDLERS[operation_of(msg)]
    if msg.startswith("raft.node: "):
        # "lost leader" is followed by "elected leader" on the same member: count only the latter.
        return _leader if _LEADER.fullmatch(msg) else _ignore
    return None


def is_interesting(msg: str) -> bool:
    """Cheap test on the raw `msg`: could the line be an event?"""
    return msg in HANDLERS or msg.startswith(PREFIXES)


# A JSON string's characters without escapes: anything but a quote, a backslash, a control
# character (the decoder rejects them raw) and a lone surrogate (rejected too). Written as runs of
# printable ASCII, each after one character of the rest, so that `re` checks the common case
# with a small table (about 40 % faster per character than the one negated class) and no
# character can be taken two ways; and possessive (`*+`), never giving a character back: what
# follows is always a quote or a backslash, which it cannot hold, so giving back could never
# help a match, only make a near miss slow (5-7 µs instead of 1.4-1.8 µs for a line that fails).
_CHARS = r"[ !#-\[\]-~]*+(?:[^\x00-\x7e\ud800-\udfff][ !#-\[\]-~]*+)*+"
_ESCAPED_QUOTES = rf'{_CHARS}(?:\\"{_CHARS})*'
# An integer the decoder reads as one (within int64, or uint64 when positive).
_INT = r"(?:-?(?:0|[1-9][0-9]{0,17})|[1-9][0-9]{18})"


_STRING = rf'"{_CHARS}"'  # a string field that is not read
_TIME = rf"\d{{4}}-\d\d-\d\d[T ]\d\d:\d\d:\d\d{_CHARS}"  # begins like an ISO time (`iso_time`)


class _Shape(NamedTuple):
    """A whole line (after the kubelet prefix) in the exact shape zap writes it: the head at
    `level` with the message `msg`, then `fields`, nothing else. Its time is the first group."""

    level: str
    msg: str
    fields: str

    def text(self) -> str:
        """The text of a pattern of the line, compiled alone (`_FAST`, one line at a time)."""
        return _head(self.level, f"({_TIME})") + self.rest()

    def rest(self) -> str:
        """What follows the head: `FAST_LINES` reads the head once for all shapes of a level."""
        return rf'{self.msg}"{self.fields}\}}'


def _head(level: str, time: str) -> str:
    """zap's head up to the text of the message, the time's pattern being `time` (a group)."""
    return rf'\{{"level":"{level}","ts":"{time}","caller":"{_CHARS}","msg":"'


# The kinds the fast builders give, bound once: a member read off its enum class costs a
# lookup through the metaclass (about 70 ns), once per event.
_SLOW_TRACE, _SLOW_FDATASYNC, _SLOW_GRPC_REQUEST, _HEARTBEAT_LATE, _READ_INDEX_RETRY = (
    EventKind.SLOW_TRACE,
    EventKind.SLOW_FDATASYNC,
    EventKind.SLOW_GRPC_REQUEST,
    EventKind.HEARTBEAT_LATE,
    EventKind.READ_INDEX_RETRY,
)
# What a value that does not convert raises in a builder: the general path then decides.
_NOT_CONVERTED = (ValueError, OverflowError, RecursionError)


# `apply request took too long` and `slow fdatasync` (group 2, named so that the shapes can be
# joined into one pattern: the former); the fields after the duration and threshold are those of
# the former, present when it is the message.
# Groups: ts, the apply message, duration, threshold, prefix, request, error.
_REQUEST = _Shape(
    "warn",
    "(?:(?P<apply>apply request took too long)|slow fdatasync)",
    rf',"took":"({_CHARS})","expected-duration":"({_CHARS})"'
    rf'(?(apply),"prefix":"({_CHARS})","request":"({_ESCAPED_QUOTES})","response":{_STRING}'
    rf'(?:,"error":"({_CHARS})")?)',
)
Groups = tuple[str, str | None, str, str, str | None, str | None, str | None]
MatchGroups = tuple[str | Any, ...]  # what `re.Match.groups` gives


def _request(groups: MatchGroups) -> Event:
    ts, _, took, expected, prefix, request, error = cast(Groups, groups)
    if prefix is None or request is None:  # slow fdatasync, as `_timed` builds it
        return simple(
            _SLOW_FDATASYNC,
            shaped_iso_time(ts),
            took=duration(took),
            expected=threshold(expected),
        )
    if "\\" in request:
        request = request.replace('\\"', '"')
    return slow_request(  # as `_apply` builds it
        shaped_iso_time(ts),
        took=duration(took),
        expected=threshold(expected),
        prefix=prefix,
        request=request,
        error=error,
    )


# A trace (etcd 3.5; 3.4 writes no step_count). Groups: ts, message, duration, the steps list's
# text between the brackets. The message is one `_TRACE` matches (`\S`: ASCII, as there).
_TRACE_LINE = _Shape(
    "info",
    rf'(trace\[[0-9]+\] [^\s"\\\x00-\x1f\ud800-\udfff]{_CHARS})',
    rf',"detail":{_STRING},"duration":"({_CHARS})","start":{_STRING},"end":{_STRING},'
    rf'"steps":\[((?:{_STRING}(?:,{_STRING})*)?)\](?:,"step_count":{_INT})?',
)


def _trace(groups: MatchGroups) -> Event:
    return _trace_with(groups, step_totals(STEPS_IN_LIST.findall(groups[3])))


def _trace_with(groups: MatchGroups, steps: tuple[tuple[TraceStep, float], ...]) -> Event:
    ts, msg, took, _ = groups
    return Event(  # as `trace_event` builds it
        _SLOW_TRACE,
        shaped_iso_time(ts),
        duration(took),
        operation=operation_of(msg),
        steps=steps,
    )


# A trace's step list (the text between the brackets) whose every item ends in a duration that
# `duration` reads for sure: digits that fit a double, one unit of a second or below (what etcd
# writes). Reading such steps can neither fail nor make the line UNPARSED, so whether the line
# is an event does not depend on them.
_SURE_DURATION = r"[0-9]{1,20}(?:\.[0-9]{0,20})?(?:ns|us|µs|μs|ms|s)"
_SURE_STEP = rf'"[^"]*\(duration: {_SURE_DURATION}\)"'
_SURE_STEPS = re.compile(rf"{_SURE_STEP}(?:,{_SURE_STEP})*")


def _trace_counted(groups: MatchGroups) -> Event:
    """`_trace` for a reader that only counts events (the `parse` summary, which reads neither a
    trace's steps nor its operation): the event without them when the steps are sure to be read
    (`_SURE_STEPS`; reading them is most of a trace's cost), else `_trace`'s, so that a line is
    an event exactly when `_trace` makes it one. The operation can always be read, so leaving it
    out never changes that."""
    ts, _, took, steps = groups
    if _SURE_STEPS.fullmatch(steps) is None:
        return _trace(groups)
    return Event(_SLOW_TRACE, shaped_iso_time(ts), duration(took))


_STATS = _Shape(  # a slow gRPC request. Groups: ts, time spent.
    "warn",
    "request stats",
    rf',"start time":{_STRING},"time spent":"({_CHARS})","remote":{_STRING},'
    rf'"response type":{_STRING},"request count":{_INT},"request size":{_INT},'
    rf'"response count":{_INT},"response size":{_INT},"request content":"{_ESCAPED_QUOTES}"',
)


def _stats(groups: MatchGroups) -> Event:
    ts, took = groups  # as `_request_stats` builds it at level warn
    return simple(_SLOW_GRPC_REQUEST, shaped_iso_time(ts), took=duration(took))


_HEARTBEAT = _Shape(  # groups: ts, threshold, duration
    "warn",
    re.escape(HEARTBEAT),
    rf',"to":{_STRING},"heartbeat-interval":{_STRING},"expected-duration":"({_CHARS})",'
    rf'"exceeded-duration":"({_CHARS})"',
)


def _heartbeat(groups: MatchGroups) -> Event:
    ts, expected, took = groups  # as its `_timed` handler builds it
    return simple(
        _HEARTBEAT_LATE,
        shaped_iso_time(ts),
        took=duration(took),
        expected=threshold(expected),
    )


_RETRY = _Shape(  # groups: ts, threshold
    "warn",
    re.escape(READ_INDEX_RETRY),
    rf',"sent-request-id":{_INT},"retry-timeout":"({_CHARS})"',
)


def _retry(groups: MatchGroups) -> Event:
    ts, expected = groups  # as its `_timed` handler builds it
    return simple(_READ_INDEX_RETRY, shaped_iso_time(ts), expected=threshold(expected))


Build = Callable[[MatchGroups], Event]
# The events a slow etcd logs most (the realistic corpus of bench/parse_bench.py), commonest
# first: each line's shape, how its event is built from the shape's groups, and how when it is
# only counted (`fast_match(m, counted=True)`).
_FAST_SHAPES: tuple[tuple[_Shape, Build, Build], ...] = (
    (_TRACE_LINE, _trace, _trace_counted),
    (_REQUEST, _request, _request),
    (_STATS, _stats, _stats),
    (_RETRY, _retry, _retry),
    (_HEARTBEAT, _heartbeat, _heartbeat),
)
FAST_START = '{"level":"'  # how a line of the fast shapes begins


def _fast_lines() -> tuple[re.Pattern[str], dict[int, tuple[Build, Build, tuple[int, ...]]]]:
    """The fast shapes as one pattern of a block of text (`\\n` + lines joined by `\\n`) that
    matches a whole line of any of them: its newline, a kubelet prefix if there is one, the
    shape, any `\\r` (as `parse_line` reads a line); and, by the number of the group around
    what follows each shape's head (a match's `lastindex`), its two builders and the numbers of
    the shape's own groups in the match, its time's first. The shapes of one level share their
    head, read once: a line that is not the first of its level's shapes is not read again from
    its start for each. The shapes' messages differ, so a line matches one shape at most."""
    levels = dict.fromkeys(shape.level for shape, _, _ in _FAST_SHAPES)
    branches = [
        _head(level, f"(?P<time_{level}>{_TIME})")
        + "(?:"
        + "|".join(
            f"(?P<shape{n}>{shape.rest()})"
            for n, (shape, _, _) in enumerate(_FAST_SHAPES)
            if shape.level == level
        )
        + ")"
        for level in levels
    ]
    pattern = re.compile(rf"\n(?:{PREFIX_PATTERN})?(?:{'|'.join(branches)})\r*(?=\n|\Z)", re.ASCII)
    index = pattern.groupindex
    # every group that ends the groups of the shape before it: a shape's or a time's
    bounds = sorted(index[name] for name in index if name.startswith(("shape", "time_")))
    builds = {}
    for n, (shape, build, counted) in enumerate(_FAST_SHAPES):
        head = index[f"shape{n}"]
        end = next((b for b in bounds if b > head), pattern.groups + 1)
        own = (index[f"time_{shape.level}"], *range(head + 1, end))
        builds[head] = (build, counted, own)
    return pattern, builds


FAST_LINES, _BUILDS = _fast_lines()
_MSG = '"msg":"'
_KEY = 6  # how many characters of the message pick the shape
# Each shape alone, by the first characters of its message, for one line at a time (picking the
# one shape to try is cheaper than trying them in turn, as `FAST_LINES` does).
_SHAPES = [(re.compile(shape.text(), re.ASCII), build) for shape, build, _ in _FAST_SHAPES]
_FAST: dict[str, tuple[re.Pattern[str], Build]] = {
    "trace[": _SHAPES[0],
    "apply ": _SHAPES[1],
    "slow f": _SHAPES[1],
    "reques": _SHAPES[2],
    READ_INDEX_RETRY[:_KEY]: _SHAPES[3],
    HEARTBEAT[:_KEY]: _SHAPES[4],
}


def fast_event(text: str) -> Event | None:
    """The event of a whole line (without the kubelet prefix) of one of the fast shapes; None
    for any other line, and for a line whose values do not convert (the general path then
    decides)."""
    at = text.find(_MSG, 40) + len(_MSG)
    shape = _FAST.get(text[at : at + _KEY])
    if shape is None:
        return None
    pattern, build = shape
    m = pattern.fullmatch(text)
    return None if m is None else _built(build, m.groups())


def fast_match(m: re.Match[str], *, counted: bool = False) -> Event | None:
    """The event of a line `FAST_LINES` matched, built as the handler of its message builds it;
    None when a value does not convert. `counted=True`: for a reader that only counts events, what
    it does not read of a trace (its steps and operation) may be left out (None exactly when it
    would be None with them)."""
    build, count, groups = _BUILDS[m.lastindex or 0]
    return _built(count if counted else build, m.group(*groups))


def _built(build: Build, groups: MatchGroups) -> Event | None:
    try:
        return build(groups)
    except _NOT_CONVERTED:
        return None


def parse_json(text: str) -> Result:
    """One zap JSON line (no kubelet prefix)."""
    m = _HEAD.match(text)
    if m is not None and not is_interesting(m.group(1)):
        return None if text.endswith("}") or text.rstrip().endswith("}") else UNPARSED
    try:
        obj = _decode(text)
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


# The JSON decoder (`decode(text)`): see the module docstring.
_decode = msgspec.json.Decoder().decode


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
    fields = _decode(fields_text) if fields_text else {}
    if not isinstance(fields, dict):
        raise BadLine("console fields are not an object")
    return handler(fields, parts[1].lower(), iso_time(parts[0]))
