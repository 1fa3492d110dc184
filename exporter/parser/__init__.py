"""Parser stage: one etcd log line → an Event, nothing, or UNPARSED. Pure functions, no I/O.

`parse_line(line)` accepts every format etcd writes (capnslog text, raft's Go log, zap JSON with
ISO or epoch `ts`, 3.6's zap console format, journald's `short`/`short-iso`), each with or without
the kubelet's `timestamps=true` prefix, and never raises:

- an `Event` for a line of catalog M1–M10 (see `exporter.model.EventKind`);
- `None` for a well-formed etcd line of no interest (info lines and the like, and the other lines
  etcd writes to stderr: grpc-go's log, warnings about deprecated flags);
- `UNPARSED` for anything else: garbage, binary, truncated or invalid JSON, JSON of another shape
  or with fields of the wrong type, lines longer than `MAX_LINE_LENGTH`.

The two commonest events, zap's `apply request took too long` and `slow fdatasync` in the shape
etcd writes them, are read whole by a fast path first (`exporter.parser.zap.fast_event`); any
other line, or one the fast path does not take, is parsed as above, with the same result.

Leadership: `raft.node: … elected leader …` and `… changed leader from …` are leader changes (one
per new leader seen by a member, like `etcd_server_leader_changes_seen_total`); `lost leader` and
`became leader` are not counted, because the same change is also logged as `elected leader` on
the same member.
"""

from __future__ import annotations

from dataclasses import replace

from exporter.model import Event
from exporter.parser.events import UNPARSED, Result, Unparsed
from exporter.parser.prefix import (
    EMBEDDED_MIN_LENGTH,
    parse_prefix_time,
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

__all__ = ["MAX_LINE_LENGTH", "UNPARSED", "Unparsed", "parse_line", "split_kubelet_prefix"]

MAX_LINE_LENGTH = 256 * 1024
# Where FAST_START is after the kubelet's own prefix (nine digits of fraction, Z: 31 characters).
# A line that has another prefix is parsed by the general path, with the same result.
_PREFIXED_START = slice(31, 31 + len(FAST_START))


def parse_line(line: str) -> Event | Unparsed | None:
    """Classify one log line (without its newline). Pure; never raises."""
    if len(line) > MAX_LINE_LENGTH:
        return UNPARSED
    if line.startswith(FAST_START) or (
        line[_PREFIXED_START] == FAST_START and len(line) < EMBEDDED_MIN_LENGTH
    ):  # the commonest events, read whole: see exporter.parser.zap.fast_event
        event = fast_event(line)
        if event is not None:
            return event
    prefix, text = split_kubelet_prefix(line)
    if prefix is not None and len(text) >= EMBEDDED_MIN_LENGTH:
        text = strip_embedded(text)
    try:
        result = _dispatch(text)
    except (ValueError, OverflowError, RecursionError):
        return UNPARSED
    if prefix is not None and isinstance(result, Event) and result.time is None:
        result = replace(result, time=parse_prefix_time(prefix))
    return result


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
