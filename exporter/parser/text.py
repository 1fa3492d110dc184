"""Text lines: capnslog (etcd 3.3, 3.4 default), raft's Go log (3.4 capnslog mode), journald. Pure.

- capnslog: `2019-06-25 08:47:33.191089 W | etcdserver: <message>`, with `--debug` also
  `… 08:47:33.191089 [pkg_logger.go:114] W | etcdserver: …`.
- raft Go log: `raft2022/09/06 07:21:50 INFO: raft.node: … elected leader … at term 3`.
- journald: `Dec 09 23:19:56 host etcd[16048]: <message>` (`short`, no year: no time) or
  `2021-12-09T23:19:56+0000 host etcd[16048]: <message>` (`short-iso`); the message is itself
  capnslog, zap JSON, or bare (capnslog's journald formatter leaves out time, level and package).

Messages are matched against the exact capnslog format strings (catalog M1–M10), anchored at both
ends. Info, notice, debug and trace lines are only looked at for raft leadership messages and
defragmentation (exporter/parser/defrag.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from exporter.model import EventKind
from exporter.parser import defrag
from exporter.parser.events import Result, duration, simple, slow_request
from exporter.parser.request import go_unquote
from exporter.parser.times import goslash_time, iso_time

Build = Callable[[re.Match[str], datetime | None], Result]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


_CAPNSLOG = _rx(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})(?: \[[^\]]*\])? ([CEWNIDT]) \| (?:[\w./-]+: )?"
)
_RAFT = _rx(r"raft(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) (?:DEBUG|INFO|WARN|ERROR|FATAL|PANIC): ")
_JOURNALD = _rx(
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?)) \S+ [^\s\[:]+(?:\[\d+\])?: "
)
_PKG = _rx(r"[\w./-]+: ")
# Other things etcd writes to stderr: grpc-go's logger and warnings about deprecated flags.
_GRPC = _rx(r"(?:INFO|WARNING|ERROR|FATAL): \d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")
_FLAG_WARNING = "[WARNING] "
_Q = r'"((?:[^"\\]|\\.)*)"'
_DUR = r"([0-9][0-9.a-zµμ]*)"


def _slow_request(m: re.Match[str], time: datetime | None) -> Result:
    result = go_unquote(m.group(3))
    error = result[6:] if result.startswith("error:") else None
    return slow_request(
        time,
        took=duration(m.group(4)),
        expected=None,
        prefix=m.group(1) or "",
        request=go_unquote(m.group(2)),
        error=error,
    )


def _timed(kind: EventKind, took: int | None, expected: int | None = None) -> Build:
    def build(m: re.Match[str], time: datetime | None) -> Result:
        return simple(
            kind,
            time,
            took=duration(m.group(took)) if took else None,
            expected=duration(m.group(expected)) if expected and m.group(expected) else None,
        )

    return build


def _heartbeat(m: re.Match[str], time: datetime | None) -> Result:
    # Late means more than twice the heartbeat interval (etcd's contention detector); capnslog
    # prints the interval as "the timeout", zap prints twice it as expected-duration.
    return simple(
        EventKind.HEARTBEAT_LATE,
        time,
        took=duration(m.group(2)),
        expected=2 * duration(m.group(1)),
    )


def _peer_unhealthy(m: re.Match[str], time: datetime | None) -> Result:
    return simple(EventKind.PEER_UNHEALTHY, time, error=m.group(1))


_MESSAGES: list[tuple[re.Pattern[str], Build]] = [
    (
        _rx(
            rf"((?:read-only (?:range|txn) )?)request {_Q} with result {_Q} took too long "
            rf"\({_DUR}\) to execute"
        ),
        _slow_request,
    ),
    (
        _rx(rf"apply entries took too long \[{_DUR} for \d+ entries\]"),
        _timed(EventKind.APPLY_ENTRIES_SLOW, 1),
    ),
    (
        _rx(rf"sync duration of {_DUR}, expected less than {_DUR}"),
        _timed(EventKind.SLOW_FDATASYNC, 1, 2),
    ),
    (
        _rx(
            rf"failed to send out heartbeat on time \(exceeded the {_DUR} timeout for {_DUR}"
            r"(?:, to [0-9a-f]+)?\)"
        ),
        _heartbeat,
    ),
    (
        _rx(
            r"waiting for ReadIndex response took too long, retrying "
            rf"\(sent-request-id: \d+, retry-timeout: {_DUR}\)"
        ),
        _timed(EventKind.READ_INDEX_RETRY, None, 1),
    ),
    (
        _rx(
            r"timed out waiting for read index response \(local node might have slow network\)"
            rf"(?: timeout: {_DUR})?"
        ),
        _timed(EventKind.READ_INDEX_TIMEOUT, None, 1),
    ),
    (
        _rx(
            r"ignored out-of-date read index response; local node read indexes queueing up and "
            r"waiting to be in sync with leader(?: \(request ID want \d+, got \d+\))?"
        ),
        _timed(EventKind.READ_INDEX_OUT_OF_DATE, None),
    ),
    (
        _rx(r'health check for peer \S+ could not connect: (.*?)(?: \(prober "[^"]*"\))?'),
        _peer_unhealthy,
    ),
    (
        _rx(
            rf"the clock difference against peer \S+ is too high \[{_DUR} > {_DUR}\]"
            r'(?: \(prober "[^"]*"\))?'
        ),
        _timed(EventKind.CLOCK_DRIFT, 1, 2),
    ),
    (
        _rx(
            r"dropped (?:internal raft message|\S+) (?:to|from) \S+ since (?:\S+'s )?"
            r"(?:sending|receiving) buffer is full(?: \((?:bad/)?overloaded network\))?"
            r"(?: \[merged \d+ repeated lines in \S+\])?"
        ),
        _timed(EventKind.RAFT_MESSAGE_DROPPED, None),
    ),
    (
        _rx(
            r"snapshotting is taking more than ([0-9][0-9.e+-]*) seconds to finish transferring "
            r"\S+ MB \[started at [^\]]*\]"
        ),
        _timed(EventKind.SNAPSHOT_TRANSFER_SLOW, 1),
    ),
    (
        _rx(
            r"raft\.node: [0-9a-f]+ (?:elected leader [0-9a-f]+|changed leader from [0-9a-f]+ "
            r"to [0-9a-f]+) at term \d+"
        ),
        _timed(EventKind.LEADER_CHANGE, None),
    ),
]
# First words of the messages above: a cheap filter before the regular expressions.
_FIRST_WORDS = ("read-only", "request", "apply", "sync", "failed", "waiting", "timed", "ignored")
_FIRST_WORDS_2 = ("health", "the clock", "dropped", "snapshotting", "raft.node: ")
_STARTS = _FIRST_WORDS + _FIRST_WORDS_2 + defrag.TEXT_STARTS
# A capnslog message starting otherwise is None; at levels I, N, D and T, all but leadership.
STARTS = _STARTS
LEADERSHIP = "raft.node: "
# Messages looked at below warning level (at I, N, D and T): leadership and defragmentation.
QUIET_STARTS = (LEADERSHIP, *defrag.TEXT_STARTS)


def message_event(message: str, time: datetime | None) -> Result:
    """A capnslog-style message (no time, level or package) → Event, or None if not of interest."""
    if not message.startswith(_STARTS):
        return None
    if message.startswith(defrag.TEXT_STARTS):  # logged at notice and error level
        return defrag.text_event(message, time)
    for pattern, build in _MESSAGES:
        m = pattern.fullmatch(message)
        if m is not None:
            return build(m, time)
    return None


def parse_capnslog(text: str) -> Result | Literal[False]:
    """A capnslog line → Result, or False when `text` is not one."""
    m = _CAPNSLOG.match(text)
    if m is None:
        return False
    message = text[m.end() :]
    if not message.startswith(_STARTS):
        return None
    if m.group(2) in "INDT" and not message.startswith(QUIET_STARTS):
        return None
    return message_event(message, _local(m.group(1)))


def parse_raft(text: str) -> Result | Literal[False]:
    """A raft Go-log line → Result, or False when `text` is not one."""
    m = _RAFT.match(text)
    if m is None:
        return False
    message = text[m.end() :]
    if not message.startswith(_STARTS):
        return None
    return message_event(message, goslash_time(m.group(1)))


def split_journald(text: str) -> tuple[datetime | None, str] | None:
    """(time or None, message) of a journald `short`/`short-iso` line, or None if not one."""
    m = _JOURNALD.match(text)
    if m is None:
        return None
    return (_iso_journald(m.group(1)) if m.group(1) else None), text[m.end() :]


def parse_bare(text: str, time: datetime | None) -> Result | Literal[False]:
    """A message with at most a `pkg: ` in front → Result, or False when it is none we know."""
    result = message_event(text, time)
    if result is not None:
        return result
    m = _PKG.match(text)
    if m is not None:
        result = message_event(text[m.end() :], time)
    return False if result is None else result


def is_other_output(text: str) -> bool:
    """True for the other lines etcd writes to stderr: grpc-go's log, deprecated-flag warnings."""
    return text.startswith(_FLAG_WARNING) or _GRPC.match(text) is not None


def _local(text: str) -> datetime:
    """capnslog time, local time without a zone, taken as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _iso_journald(text: str) -> datetime:
    if text[-5:-4] in "+-" and text[-3:-2] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return iso_time(text)
