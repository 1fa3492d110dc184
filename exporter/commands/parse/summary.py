"""What `parse --output summary|json` reports, accumulated in bounded memory. Pure.

Durations go into a log-bucketed histogram per event kind: bucket i holds values in
[1.01^i, 1.01^(i+1)) nanoseconds, so p50/p90/p99 are estimates within 1 % of the true value, and
memory is a few thousand integers per kind whatever the input size. Count and max are exact.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exporter.model import Event, EventKind

QUANTILES = (0.5, 0.9, 0.99)
_BASE = math.log(1.01)
_log = math.log
_NS = 1e-9
_SLOW_REQUEST = EventKind.SLOW_REQUEST  # bound once: read off the enum, it is a slow lookup


@dataclass(slots=True)
class LogHistogram:
    """Bounded-memory distribution of non-negative durations (seconds)."""

    buckets: Counter[int] = field(default_factory=Counter)
    count: int = 0
    maximum: float = 0.0
    zeros: int = 0

    def add(self, seconds: float) -> None:
        """Record one duration."""
        self.count += 1
        if seconds > self.maximum:
            self.maximum = seconds
        if seconds < _NS:
            self.zeros += 1
        else:
            self.buckets[int(_log(seconds / _NS) / _BASE)] += 1

    def merge(self, other: LogHistogram) -> None:
        """Add another histogram's observations to this one."""
        self.buckets.update(other.buckets)
        self.count += other.count
        self.maximum = max(self.maximum, other.maximum)
        self.zeros += other.zeros

    def quantile(self, q: float) -> float | None:
        """Estimated q-quantile (0 < q ≤ 1), None when empty; never above the exact max."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                middle = math.exp((index + 0.5) * _BASE) * _NS
                return min(middle, self.maximum)
        return self.maximum


@dataclass(slots=True)
class Summary:
    """Counts over every line read; fold events in with `add_event`. An event with a duration is
    counted by its kind's histogram, one without in `untimed` (`kinds` has them all)."""

    lines: int = 0
    unparsed: int = 0
    untimed: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    read_only: Counter[str] = field(default_factory=Counter)
    resources: Counter[str] = field(default_factory=Counter)
    durations: dict[str, LogHistogram] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    def add_event(self, event: Event) -> None:
        """Count one recognised event (the caller counts the line)."""
        kind = event.kind
        seconds = event.duration_seconds
        if seconds is None:
            self.untimed[kind] += 1
        else:
            hist = self.durations.get(kind)
            if hist is None:
                hist = self.durations[kind] = LogHistogram()
            hist.add(seconds)
        if kind is _SLOW_REQUEST:
            op = str(event.operation or "other")
            self.operations[op] += 1
            if event.read_only:
                self.read_only[op] += 1
            self.resources[event.resource or "other"] += 1
        time = event.time
        if time is not None:
            self._saw(time)

    @property
    def kinds(self) -> Counter[str]:
        """Events by kind."""
        kinds = Counter(self.untimed)
        for kind, hist in self.durations.items():
            kinds[kind] += hist.count
        return kinds

    def merge(self, other: Summary) -> None:
        """Add another summary (of other lines) to this one."""
        self.lines += other.lines
        self.unparsed += other.unparsed
        for mine, theirs in (
            (self.untimed, other.untimed),
            (self.operations, other.operations),
            (self.read_only, other.read_only),
            (self.resources, other.resources),
        ):
            mine.update(theirs)
        for kind, hist in other.durations.items():
            self.durations.setdefault(kind, LogHistogram()).merge(hist)
        for time in (other.first, other.last):
            if time is not None:
                self._saw(time)

    def _saw(self, time: datetime) -> None:
        if self.first is None or time < self.first:
            self.first = time
        if self.last is None or time > self.last:
            self.last = time

    def as_json(self) -> dict[str, Any]:
        """The summary as one JSON-serialisable object (`--output json`)."""
        return {
            "lines": {"read": self.lines, "unparsed": self.unparsed, "events": self.events},
            "events_by_kind": dict(self.kinds.most_common()),
            "slow_requests": {
                "by_operation": dict(self.operations.most_common()),
                "read_only_by_operation": dict(self.read_only.most_common()),
                "by_resource": dict(self.resources.most_common()),
            },
            "durations_seconds": {
                kind: _stats(hist) for kind, hist in sorted(self.durations.items())
            },
            "first_event_time": _iso(self.first),
            "last_event_time": _iso(self.last),
            "percentiles": "estimated from a log-bucketed histogram, within 1 %; max is exact",
        }

    @property
    def events(self) -> int:
        """Number of recognised events."""
        return sum(self.kinds.values())


def _stats(hist: LogHistogram) -> dict[str, float | int | None]:
    stats: dict[str, float | int | None] = {"count": hist.count}
    for q in QUANTILES:
        stats[f"p{round(q * 100)}"] = hist.quantile(q)
    stats["max"] = hist.maximum
    return stats


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
