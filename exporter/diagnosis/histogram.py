"""Window statistics of etcd's latency histograms from two scrapes. Pure.

Two snapshots of a cumulative Prometheus histogram, taken `window` seconds apart, give the
observations made in between as the difference of their bucket counts. On that difference:

- `quantile` follows PromQL's `histogram_quantile`: find the bucket holding the rank, interpolate
  linearly inside it (the first bucket starts at 0); a rank in the `+Inf` bucket yields the
  largest finite bound.
- `share_above` is the fraction of observations above a bound, exact when the bound is a bucket
  bound (etcd's 0.016 s), else interpolated the same way.

A counter that went down between the snapshots (etcd restarted) makes the second snapshot alone
the window: every observation it holds was made after the restart, so inside the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.model import RelayedFamily


@dataclass(frozen=True, slots=True)
class Histogram:
    """Upper bounds (ascending, ending with +Inf) and their cumulative counts."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]

    @property
    def count(self) -> float:
        """Number of observations (the +Inf bucket)."""
        return self.cumulative[-1] if self.cumulative else 0.0


@dataclass(frozen=True, slots=True)
class Latency:
    """One histogram over a window: p99 (None when nothing was observed), count, share above."""

    p99: float | None
    count: float
    share_above: float | None
    counter_reset: bool = False
    p99_bucket: tuple[float, float] | None = (
        None  # (lower, upper] holding the p99; upper may be inf
    )


def find_histogram(families: Iterable[RelayedFamily], name: str) -> Histogram | None:
    """The histogram `name` from scraped families, label sets other than `le` summed; or None."""
    for family in families:
        if family.name == name:
            return _from_family(family)
    return None


def _from_family(family: RelayedFamily) -> Histogram | None:
    by_le: dict[float, float] = {}
    total: float | None = None
    for sample in family.samples:
        if not math.isfinite(sample.value):  # NaN or ±Inf counts are garbage; leave them out
            continue
        if sample.name == family.name + "_bucket":
            le = _parse_le(dict(sample.labels).get("le"))
            if le is not None:
                by_le[le] = by_le.get(le, 0.0) + sample.value
        elif sample.name == family.name + "_count":
            total = (total or 0.0) + sample.value
    if math.inf not in by_le and total is not None:
        by_le[math.inf] = total
    if math.inf not in by_le:
        return None
    bounds = tuple(sorted(by_le))
    return Histogram(bounds=bounds, cumulative=_monotonic(by_le[b] for b in bounds))


def _parse_le(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _monotonic(values: Iterable[float]) -> tuple[float, ...]:
    """Cumulative counts never decrease; repair float noise like histogram_quantile does."""
    out: list[float] = []
    for value in values:
        out.append(max(value, out[-1]) if out else value)
    return tuple(out)


def delta(before: Histogram | None, after: Histogram) -> tuple[Histogram, bool]:
    """Observations between two snapshots, and whether a counter reset was seen."""
    if before is None:
        return after, False
    if before.bounds != after.bounds:
        return after, True
    diffs = [a - b for a, b in zip(after.cumulative, before.cumulative, strict=True)]
    if any(d < 0 for d in diffs):
        return after, True
    return Histogram(bounds=after.bounds, cumulative=_monotonic(diffs)), False


def quantile(q: float, hist: Histogram) -> float | None:
    """PromQL `histogram_quantile(q, …)` on one histogram; None when it holds no observations."""
    total = hist.count
    if total <= 0 or not hist.bounds:
        return None
    rank = q * total
    below = 0.0
    for i, (bound, cum) in enumerate(zip(hist.bounds, hist.cumulative, strict=True)):
        if cum >= rank and cum > below:
            if math.isinf(bound):
                return hist.bounds[i - 1] if i > 0 else None
            start = hist.bounds[i - 1] if i > 0 else 0.0
            if i == 0 and bound <= 0:
                return bound
            return start + (bound - start) * ((rank - below) / (cum - below))
        below = cum
    return hist.bounds[-2] if len(hist.bounds) > 1 else None


def quantile_bucket(q: float, hist: Histogram) -> tuple[float, float] | None:
    """The bucket (lower, upper] that holds the q-quantile's rank; None when empty."""
    total = hist.count
    if total <= 0:
        return None
    lower = 0.0
    for bound, cum in zip(hist.bounds, hist.cumulative, strict=True):
        if cum >= q * total and cum > 0:
            return (lower, bound)
        lower = bound
    return None


def share_above(hist: Histogram, bound: float) -> float | None:
    """Fraction of observations above `bound`; None when it holds no observations."""
    total = hist.count
    if total <= 0:
        return None
    return max(0.0, min(1.0, 1.0 - _count_at(hist, bound) / total))


def _count_at(hist: Histogram, value: float) -> float:
    """Cumulative count at `value`, interpolated linearly inside its bucket."""
    start, below = 0.0, 0.0
    for bound, cum in zip(hist.bounds, hist.cumulative, strict=True):
        if value <= bound:
            if math.isinf(bound) or bound == start:
                return below
            return below + (cum - below) * (value - start) / (bound - start)
        start, below = bound, cum
    return hist.count


def window_latency(
    before: Iterable[RelayedFamily] | None,
    after: Iterable[RelayedFamily],
    *,
    name: str,
    q: float,
    bound: float,
) -> Latency | None:
    """`name`'s quantile, count and share above `bound` between two scrapes; None if absent."""
    last = find_histogram(after, name)
    if last is None:
        return None
    first = find_histogram(before, name) if before is not None else None
    window, reset = delta(first, last)
    return Latency(
        p99=quantile(q, window),
        count=window.count,
        share_above=share_above(window, bound),
        counter_reset=reset,
        p99_bucket=quantile_bucket(q, window),
    )
