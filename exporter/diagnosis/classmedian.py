"""Slow for its class: each member's p99 against the median p99 of its StorageClass. Pure.

A member at 8 ms among peers at 2 ms stays under etcd's 10 ms and is still in trouble (a noisy
neighbour, a failing disk, a throttled volume); a whole class that is slow has a slow median and
every member near 1× it. This is the rules' `storage_class:…:p99_5m_median` and
`…:p99_5m_over_class_median` done on the p99 values `diagnose` measured in its window or the
daemon measured between its last two scrapes, with the thresholds of the `…SlowForClass`
alerts (exporter/metrics.py): the median counts the members with a p99 (an idle or unreachable
member has none, as it has no recorded p99 in Prometheus) and exists only for a class of at least
`min_members`; a member is slow for its class at `CLASS_MEDIAN_FACTOR` times the median and above
the floor. `diagnose` and the status page both call `class_standings`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exporter.diagnosis import humanize as h
from exporter.diagnosis.verdict import RUNBOOKS
from exporter.metrics import (
    BACKEND_COMMIT_CLASS_FLOOR,
    CLASS_MEDIAN_FACTOR,
    CLASS_MEDIAN_MIN_MEMBERS,
    WAL_FSYNC_CLASS_FLOOR,
)

UNKNOWN = "—"  # the cell of a member without a ratio


@dataclass(frozen=True, slots=True)
class ClassRatio:
    """One histogram: the member's p99, how many members of its class have one, their median
    (None: fewer than the minimum), and the floor below which no ratio makes it slow."""

    p99: float | None
    members: int
    median: float | None
    floor: float

    @property
    def ratio(self) -> float | None:
        """p99 / class median; None without either, or with a median of 0 (as in the rules)."""
        if self.p99 is None or self.median is None or self.median <= 0:
            return None
        return self.p99 / self.median

    @property
    def slow(self) -> bool:
        """At least CLASS_MEDIAN_FACTOR times the median and above the floor."""
        ratio = self.ratio
        return ratio is not None and ratio >= CLASS_MEDIAN_FACTOR and (self.p99 or 0.0) > self.floor


@dataclass(frozen=True, slots=True)
class ClassStanding:
    """A member's WAL fsync and backend commit p99 against those of its StorageClass."""

    storage_class: str
    min_members: int
    fsync: ClassRatio
    commit: ClassRatio

    @property
    def slow(self) -> bool:
        return self.fsync.slow or self.commit.slow


@dataclass(frozen=True, slots=True)
class MemberP99:
    """What the median needs of a member: its StorageClass ('' when unknown) and p99 values."""

    storage_class: str
    fsync: float | None
    commit: float | None


def class_standings(
    members: Sequence[MemberP99], *, min_members: int = CLASS_MEDIAN_MIN_MEMBERS
) -> list[ClassStanding | None]:
    """Each member's standing, in the order given; None for a member without a StorageClass
    (it belongs to no class, as in the rules' `storage_class!=""`)."""
    fsync = _medians([(m.storage_class, m.fsync) for m in members], min_members)
    commit = _medians([(m.storage_class, m.commit) for m in members], min_members)
    out: list[ClassStanding | None] = []
    for m in members:
        if not m.storage_class:
            out.append(None)
            continue
        f_members, f_median = fsync.get(m.storage_class, (0, None))
        c_members, c_median = commit.get(m.storage_class, (0, None))
        out.append(
            ClassStanding(
                storage_class=m.storage_class,
                min_members=min_members,
                fsync=ClassRatio(m.fsync, f_members, f_median, WAL_FSYNC_CLASS_FLOOR),
                commit=ClassRatio(m.commit, c_members, c_median, BACKEND_COMMIT_CLASS_FLOOR),
            )
        )
    return out


def _medians(
    p99s: Sequence[tuple[str, float | None]], min_members: int
) -> dict[str, tuple[int, float | None]]:
    """Per StorageClass: members with a p99, and their median when there are enough of them
    (statistics.median is PromQL's quantile(0.5, …): the mean of the middle two for an even
    count)."""
    by_class: defaultdict[str, list[float]] = defaultdict(list)
    for storage_class, p99 in p99s:
        if storage_class and p99 is not None:
            by_class[storage_class].append(p99)
    return {
        c: (len(v), statistics.median(v) if len(v) >= max(min_members, 1) else None)
        for c, v in by_class.items()
    }


# -- text and JSON ------------------------------------------------------------------------------


def ratio_text(ratio: ClassRatio) -> str:
    """'4.0×', or '—' when the class is too small or the member's p99 unknown."""
    value = ratio.ratio
    return UNKNOWN if value is None else f"{value:.1f}×"


def ratio_cell(standing: ClassStanding | None) -> str:
    """The '× class median' cell: WAL fsync then backend commit, as the p99 columns before it
    ('4.0×/1.1×'); '—' when neither has a ratio."""
    if standing is None or (standing.fsync.ratio is None and standing.commit.ratio is None):
        return UNKNOWN
    return f"{ratio_text(standing.fsync)}/{ratio_text(standing.commit)}"


def slow_for_class_text(standing: ClassStanding) -> str:
    """'slow for its class: WAL fsync p99 8.2ms, 4.0× the median of 20 members on
    gardener.cloud-fast (2.05ms)'; '' when it is not slow for its class."""
    parts = [
        f"{what} p99 {h.seconds(r.p99 or 0.0)}, {ratio_text(r)} the median of "
        f"{h.plural(r.members, 'member')} on {standing.storage_class} "
        f"({h.seconds(r.median or 0.0)})"
        for what, r in (("WAL fsync", standing.fsync), ("backend commit", standing.commit))
        if r.slow
    ]
    return f"slow for its class: {', and '.join(parts)}" if parts else ""


def slow_for_class_remedy(standing: ClassStanding) -> str:
    """Where the runbook says what to look at: the volume or its node, not the class."""
    anchor = "etcdlatencywalfsyncslowforclass"
    if not standing.fsync.slow:
        anchor = "etcdlatencybackendcommitslowforclass"
    return (
        "the class is fine, this volume or its node is not: look for a noisy neighbour, a "
        f"failing disk or a throttled volume ({RUNBOOKS}#{anchor})"
    )


def standing_json(standing: ClassStanding | None) -> dict[str, Any] | None:
    """`class_median_ratio` of diagnose's JSON and /api/targets; null without a StorageClass."""
    if standing is None:
        return None
    return {
        "storage_class": standing.storage_class,
        "min_members": standing.min_members,
        "factor": CLASS_MEDIAN_FACTOR,
        "wal_fsync": _ratio_json(standing.fsync),
        "backend_commit": _ratio_json(standing.commit),
        "slow_for_class": standing.slow,
    }


def _ratio_json(r: ClassRatio) -> dict[str, Any]:
    ratio = r.ratio
    return {
        "ratio": round(ratio, 4) if ratio is not None else None,
        "median_seconds": r.median,
        "members": r.members,
        "floor_seconds": r.floor,
        "slow": r.slow,
    }
