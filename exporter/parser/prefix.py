"""The kubelet's `timestamps=true` prefix: split it off, parse it, strip copies inside long lines.

The kubelet writes every line of a pod log, when asked for timestamps, as the CRI write time in
RFC3339Nano with a fixed nine-digit fraction, then one space, then the container's text:
`2022-07-04T06:35:26.512448489Z {"level":"warn",…}`. RFC3339 without a fraction and trimmed
fractions are accepted too (other tools write them).

A container line longer than the runtime's limit (16 KiB for containerd, 8 KiB for CRI-O) is
stored as several partial lines, and the kubelet prefixes each of them, so the prefix then also
appears inside the logical line (kubernetes/kubernetes#77603). `strip_embedded` removes those
copies. It only runs on long lines of a prefixed stream: a fragment is at least 8 KiB, that is at
least 2,048 characters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# The prefix and its space, as `split_kubelet_prefix` takes it (for patterns of whole lines too).
PREFIX_PATTERN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d) "
_PREFIX = re.compile(PREFIX_PATTERN, re.ASCII)
_EMBEDDED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d) ", re.ASCII)

EMBEDDED_MIN_LENGTH = 2048


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


def parse_prefix_time(prefix: str) -> datetime | None:
    """The prefix's time as an aware datetime (nanoseconds truncated), or None if invalid."""
    try:
        value = datetime.fromisoformat(prefix)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
