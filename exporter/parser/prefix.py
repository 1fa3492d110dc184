"""The kubelet's `timestamps=true` prefix, the one place it is read: split it off, its time, and
the copies inside long lines. Pure, but for `PrefixClock`, a cache its owner keeps.

The kubelet writes every line of a pod log, when asked for timestamps, as the CRI write time in
RFC3339Nano with a fixed nine-digit fraction, then one space, then the container's text:
`2022-07-04T06:35:26.512448489Z {"level":"warn",…}` (`KUBELET_SHAPE`). RFC3339 without a
fraction, trimmed fractions and offsets are accepted too (other tools write them, and CRI log
files carry the same time: `exporter.sources.lines` reads it with `TIME_PATTERN`).

A container line longer than the runtime's limit (16 KiB for containerd, 8 KiB for CRI-O) is
stored as several partial lines, and the kubelet prefixes each of them, so the prefix then also
appears inside the logical line (kubernetes/kubernetes#77603). `strip_embedded` removes those
copies. It only runs on long lines of a prefixed stream: a fragment is at least 8 KiB, that is at
least 2,048 characters.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

# The prefix's time, and the prefix with its space, as `split_kubelet_prefix` takes it.
TIME_PATTERN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)"
PREFIX_PATTERN = TIME_PATTERN + " "
# What the kubelet itself writes, one character per character, `d` standing for a digit: the
# fixed-width form that the `parse` command's bulk patterns look for.
KUBELET_SHAPE = "dddd-dd-ddTdd:dd:dd.dddddddddZ "
_PREFIX = re.compile(PREFIX_PATTERN, re.ASCII)
# Where the kubelet's shape has its fraction's point, its end, and what ends it (`Z `).
_POINT, _END, _TAIL = KUBELET_SHAPE.index("."), len(KUBELET_SHAPE), KUBELET_SHAPE[-2:]
_EMBEDDED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d) ", re.ASCII)

EMBEDDED_MIN_LENGTH = 2048
NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def split_kubelet_prefix(line: str) -> tuple[str | None, str]:
    """Return (the RFC3339(Nano) prefix without its space, or None; the rest of the line)."""
    if len(line) < 21 or line[10:11] != "T" or line[4:5] != "-":
        return None, line
    m = _PREFIX.match(line)
    if m is None:
        return None, line
    end = m.end()
    return line[: end - 1], line[end:]


def strip_embedded(text: str) -> str:
    """Remove kubelet prefixes that a split long line carries in its middle."""
    if len(text) < EMBEDDED_MIN_LENGTH:
        return text
    return _EMBEDDED.sub("", text)


def whole_seconds(text: str) -> int | None:
    """`2026-11-21T05:30:12` → seconds since the epoch (UTC); None when it is not a time."""
    try:
        return calendar.timegm(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timetuple())
    except ValueError:
        return None


def prefix_ns(prefix: str, seconds: int | None = None) -> int | None:
    """A prefix (`2026-11-21T05:30:12.033818000Z`, or with a `+02:00` offset; without its space)
    → nanoseconds since the epoch; None when it is not one. `seconds`, when given, is
    `whole_seconds(prefix[:19])`, already known."""
    if len(prefix) < 20 or prefix[10] != "T":
        return None
    secs = whole_seconds(prefix[:19]) if seconds is None else seconds
    if secs is None:
        return None
    rest, frac = prefix[19:], 0
    if rest.startswith("."):
        digits = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
        if digits == 0:
            return None
        frac = int(rest[1 : 1 + digits][:9].ljust(9, "0"))
        rest = rest[1 + digits :]
    if rest == "Z":
        return secs * NS + frac
    if len(rest) != 6 or rest[0] not in "+-" or rest[3] != ":":
        return None
    try:
        minutes = int(rest[1:3]) * 60 + int(rest[4:6])
    except ValueError:
        return None
    sign = 1 if rest[0] == "+" else -1
    return (secs - sign * minutes * 60) * NS + frac


def ns_time(ns: int) -> datetime:
    """Nanoseconds since the epoch → an aware datetime in UTC (nanoseconds truncated)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


class PrefixClock:
    """`split_kubelet_prefix` and `prefix_ns` in one for every line of many streams. The lines
    of a log share their whole seconds, so the seconds of recent prefixes are remembered (at most
    `size` of them; then forgotten at once); a line in the kubelet's own fixed-width shape
    (`KUBELET_SHAPE`) whose seconds are remembered is then read without a regular expression.
    Owned by the one that reads the prefixes (a log follower)."""

    __slots__ = ("_seconds", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seconds: dict[str, int | None] = {}

    def split(self, line: str) -> tuple[int | None, str]:
        """(the prefix's time in nanoseconds since the epoch, the rest of the line) of a line
        with a valid prefix; (None, the whole line) otherwise."""
        if line[_POINT : _POINT + 1] == "." and line[_END - 2 : _END] == _TAIL:
            secs = self._seconds.get(line[:_POINT])
            fraction = line[_POINT + 1 : _END - 2]
            # Seconds remembered only from prefixes the pattern took: the first 19 characters
            # are a valid time; the fraction is nine ASCII digits.
            if secs is not None and fraction.isdigit() and fraction.isascii():
                return secs * NS + int(fraction), line[_END:]
        prefix, text = split_kubelet_prefix(line)
        if prefix is None:
            return None, line
        ns = self._ns(prefix)
        return (None, line) if ns is None else (ns, text)

    def _ns(self, prefix: str) -> int | None:
        """`prefix_ns(prefix)` of a prefix `split_kubelet_prefix` took."""
        whole = prefix[:19]
        cache = self._seconds
        try:
            secs = cache[whole]
        except KeyError:
            if len(cache) >= self._size:
                cache.clear()
            secs = cache[whole] = whole_seconds(whole)
        if secs is None:
            return None
        return prefix_ns(prefix, secs)
