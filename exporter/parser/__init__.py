"""Parser stage: one etcd log line → an Event, nothing, or UNPARSED. Pure functions, no I/O.

`parse_line(line)` accepts every format etcd writes (capnslog text, raft's Go log, zap JSON with
ISO or epoch `ts`, 3.6's zap console format, journald's `short`/`short-iso`), each with or without
the kubelet's `timestamps=true` prefix, and never raises:

- an `Event` for a line of catalog M1–M10 (see `exporter.model.EventKind`);
- `None` for a well-formed etcd line of no interest (info lines and the like, and the other lines
  etcd writes to stderr: grpc-go's log, warnings about deprecated flags);
- `UNPARSED` for anything else: garbage, binary, truncated or invalid JSON, JSON of another shape
  or with fields of the wrong type, lines longer than `MAX_LINE_LENGTH`.

The kubelet prefix is split off once (`exporter.parser.prefix`); a reader that has split it already
(the pod-log follower, which needs its time) calls `parse_text` with the rest and the prefix's
time. The commonest events of a slow etcd (zap's slow requests, fdatasyncs, traces, request stats,
late heartbeats, ReadIndex retries) in the shape etcd writes them are read whole by a fast path
first (`exporter.parser.zap.fast_event`); any other line, or one the fast path does not take, is
parsed as above, with the same result.

Leadership: `raft.node: … elected leader …` and `… changed leader from …` are leader changes (one
per new leader seen by a member, like `etcd_server_leader_changes_seen_total`); `lost leader` and
`became leader` are not counted, because the same change is also logged as `elected leader` on
the same member.
"""

from __future__ import annotations

from msgspec.structs import replace

from exporter.model import MAX_LINE_LENGTH, Event
from exporter.parser.events import UNPARSED, Result, Unparsed
from exporter.parser.prefix import (
    ns_time,
    prefix_ns,
    split_kubelet_prefix,
    strip_embedded,
)
from exporter.parser.text import (
    is_other_output,
    parse_bare,
    parse_capnslog,
    parse_raft,
    split_journald,
)
from exporter.parser.zap import FAST_START, fast_event, parse_console, parse_json

__all__ = [
    "MAX_LINE_LENGTH",
    "UNPARSED",
    "Unparsed",
    "parse_line",
    "parse_text",
    "split_kubelet_prefix",
]


def parse_line(line: str) -> Event | Unparsed | None:
    """Classify one log line (without its newline). Pure; never raises."""
    if len(line) > MAX_LINE_LENGTH:
        return UNPARSED
    prefix, text = split_kubelet_prefix(line)
    if prefix is None:
        return _classify(text)
    result = _classify(strip_embedded(text))
    if isinstance(result, Event) and result.time is None:
        ns = prefix_ns(prefix)
        result = replace(result, time=None if ns is None else ns_time(ns))
    return result


def parse_text(text: str, received_ns: int) -> Event | Unparsed | None:
    """`parse_line` of a line whose kubelet prefix was split off: `text` is the rest of the line,
    `received_ns` the prefix's time (`exporter.parser.prefix.prefix_ns`). Pure; never raises."""
    if len(text) > MAX_LINE_LENGTH:
        return UNPARSED
    result = _classify(strip_embedded(text))
    if isinstance(result, Event) and result.time is None:
        result = replace(result, time=ns_time(received_ns))
    return result


def _classify(text: str) -> Result:
    """The result of a line's text (no kubelet prefix)."""
    if text.startswith(FAST_START):
        event = fast_event(text)  # the commonest events, read whole: see zap.fast_event
        if event is not None:
            return event
    try:
        return _dispatch(text)
    except (ValueError, OverflowError, RecursionError):
        return UNPARSED


def _dispatch(text: str) -> Result:
    if not text:
        return UNPARSED
    first = text[0]
    if first == "{":
        return parse_json(text)
    if "0" <= first <= "9":
        result = parse_capnslog(text)
        if result is not False:
            return result
        if "\t" in text:
            return parse_console(text)
    elif first == "r":
        result = parse_raft(text)
        if result is not False:
            return result
    elif is_other_output(text):
        return None
    return _journald_or_bare(text)


def _journald_or_bare(text: str) -> Result:
    split = split_journald(text)
    if split is None:
        bare = parse_bare(text, None)
        return UNPARSED if bare is False else bare
    time, message = split
    if message.startswith("{"):
        result = parse_json(message)
        if isinstance(result, Event) and result.time is None and time is not None:
            result = replace(result, time=time)
        return result
    for parse in (parse_capnslog, parse_raft):
        inner = parse(message)
        if inner is not False:
            return inner
    bare = parse_bare(message, time)
    return None if bare is False else bare
