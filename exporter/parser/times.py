"""etcd's own timestamps → aware datetimes. Pure; every function raises ValueError on bad input.

- zap `ts`: ISO 8601 (`2022-05-10T04:41:55.246Z`, `2024-04-22T17:18:03.213763+0800`) or a float
  of seconds since the epoch (`1568166948.8119395`; lines written before etcd read its flags).
- capnslog `2019-06-25 08:47:33.191089` and raft's Go log `2022/09/06 07:21:50` are local time
  without a zone; they are taken as UTC (containers run in UTC).
- journald `short-iso` (`2021-12-09T23:19:56+0000`); the `short` form has no year and gives None.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_ISO_SHAPE = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d", re.ASCII)


def iso_time(text: str) -> datetime:
    """An ISO 8601 timestamp; a missing zone means UTC."""
    if _ISO_SHAPE.match(text) is None:
        raise ValueError(f"not an ISO timestamp: {text[:40]!r}")
    return shaped_iso_time(text)


def shaped_iso_time(text: str) -> datetime:
    """`iso_time` of a text whose shape was checked already (the zap fast path's pattern)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def epoch_time(seconds: float) -> datetime:
    """Seconds since the epoch (zap's float encoder)."""
    if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        raise ValueError(f"not an epoch time: {seconds!r}")
    return datetime.fromtimestamp(seconds, tz=UTC)


def zap_time(value: object) -> datetime | None:
    """zap's `ts` field (string or number); None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return iso_time(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # a tuple: faster
        return epoch_time(float(value))
    raise ValueError(f"not a zap timestamp: {value!r}")


def goslash_time(text: str) -> datetime:
    """Go's `log.LstdFlags` time `2022/09/06 07:21:50`, as UTC."""
    return datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC)
