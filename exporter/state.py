"""In-memory state of every target: written by sources and scrapers, read by the collector.

One event loop owns it, so there are no locks. Nothing here does I/O or awaits. A target's state
is created by `Store.upsert` and dropped by `Store.remove`, which makes its series disappear.

A Kubernetes target is a member: `Store.upsert` also folds the member's lifecycle in
(`TargetState.observe_member`): restarts are counted from the container's restart count, never
backwards; while the container does not run, the target is down. The last scraped families are
kept through failed scrapes and restarts (`target_up` 0 says they are not fresh): every rule on
them takes rate() or increase(), which frozen values cannot raise, and the series never vanish.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from exporter.metrics import RELAYED_WITH_VOLUME, SLOW_REQUEST_BUCKETS
from exporter.model import Event, EventKind, Member, MemberState, RelayedFamily, Target

OTHER = "other"

# Kinds whose last occurrence is worth a timestamp (status page, diagnose).
SLOW_KINDS = frozenset({EventKind.SLOW_REQUEST, EventKind.SLOW_FDATASYNC, EventKind.HEARTBEAT_LATE})
DEFRAG_KINDS = frozenset({EventKind.DEFRAG_STARTED, EventKind.DEFRAG_FINISHED})
# A defrag whose end was never logged (etcd died, a line was lost) stops counting after this long;
# Gardener seeds saw defrags of 2-40 s.
DEFRAG_LIMIT = 600.0
ETCD_SLOW_APPLIES = "etcd_server_slow_apply_total"


@dataclass(slots=True)
class DefragWindow:
    """Whether a slow request or trace fell into a defragmentation, from the defrag lines seen
    before it (exporter/parser/defrag.py).

    A request falls into a defrag when its line comes while one runs (after its start line,
    before its end line), or when it overlaps the last finished one: it began (its time minus
    its duration) before that defrag ended. A defrag's start is its start line, or its end minus
    its `took` when that is earlier or the start line was missed. Times are etcd's own; a line
    without a time is judged by the order of the lines alone.
    """

    running_since: datetime | None = None
    running: bool = False
    last: tuple[datetime | None, datetime | None] | None = None  # the last finished (start, end)
    took: float | None = None  # the last finished defrag's duration, when known

    def observe(self, event: Event) -> None:
        """Fold a defrag_started or defrag_finished event."""
        if event.kind is EventKind.DEFRAG_STARTED:
            if not self.running:
                self.running, self.running_since = True, event.time
            return
        end = event.time
        start = self.running_since if self.running else None
        if end is not None and event.duration_seconds is not None:
            by_took = end - timedelta(seconds=event.duration_seconds)
            start = by_took if start is None or _before(by_took, start) else start
        self.took = event.duration_seconds
        if self.took is None and start is not None and end is not None:
            self.took = _seconds(end - start)
        self.last = (start, end)
        self.running, self.running_since = False, None

    def covers(self, event: Event) -> bool:
        """The event (a slow request or trace, whose duration counts back from its time) fell
        into a defrag."""
        t = event.time
        if self.running:
            since = self.running_since
            if t is None or since is None:
                return True
            age = _seconds(t - since) if _comparable(t, since) else 0.0
            if age <= DEFRAG_LIMIT:
                return True
            self.running, self.running_since = False, None  # its end was never logged
        if self.last is None or t is None:
            return False
        start, end = self.last
        if end is None or not _comparable(t, end):
            return False
        began = t - timedelta(seconds=event.duration_seconds or 0.0)
        return not _before(end, began) and (start is None or not _before(t, start))


def _comparable(a: datetime, b: datetime) -> bool:
    return (a.tzinfo is None) == (b.tzinfo is None)


def _before(a: datetime, b: datetime) -> bool:
    return _comparable(a, b) and a < b


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


@dataclass(slots=True)
class TraceTally:
    """etcd's slow-request traces summed by operation: how many, their time, and their time per
    step (exporter/parser/trace.py). Bounded: operations and steps are fixed sets."""

    count: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    steps: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        """Count one slow_trace event."""
        op = str(event.operation) if event.operation is not None else OTHER
        self.count[op] += 1
        self.seconds[op] = self.seconds.get(op, 0.0) + (event.duration_seconds or 0.0)
        for step, seconds in event.steps:
            key = (op, str(step))
            self.steps[key] = self.steps.get(key, 0.0) + seconds


@dataclass(frozen=True, slots=True)
class Limits:
    """Cardinality bounds per target."""

    max_resources_per_target: int = 64
    max_series_per_target: int = 2000


@dataclass(slots=True)
class HistogramAcc:
    """A cumulative histogram accumulated from log durations (bucket counts are not cumulative)."""

    buckets: tuple[float, ...] = SLOW_REQUEST_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(SLOW_REQUEST_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        """Add one observation."""
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """Buckets as (le, cumulative count), ending with +Inf, the shape Prometheus expects."""
        out: list[tuple[str, float]] = []
        acc = 0
        for bound, n in zip(self.buckets, self.counts, strict=False):
            acc += n
            out.append((_le(bound), float(acc)))
        out.append(("+Inf", float(self.count)))
        return out


def _le(bound: float) -> str:
    return repr(float(bound))


SlowKey = tuple[str, str, str]  # operation, read_only ("true"/"false"), resource

RESTART_HISTORY = 1000  # restart times kept per member (for "N restarts in the last hour")


def restarts_added(seen: tuple[str, int] | None, *, uid: str, count: int) -> int:
    """Restarts to add to a member's counter for a restart count `count` of the pod `uid`, when
    `seen` is the (uid, count) seen before (None: the first look, the pod's whole history).

    The counter never goes backwards: a re-created pod's count starts again and adds what it
    has; in the same pod only an increase adds.
    """
    if seen is None or seen[0] != uid:
        return max(count, 0)
    return max(count - seen[1], 0)


@dataclass(slots=True)
class TargetState:
    """What the exporter knows about one member."""

    target: Target
    limits: Limits = field(default_factory=Limits)
    # scrape side
    up: bool | None = None
    last_scrape_duration: float | None = None
    last_success_time: float | None = None
    scrape_errors: Counter[str] = field(default_factory=Counter)
    relayed: tuple[RelayedFamily, ...] = ()
    # the latency histograms (`RELAYED_WITH_VOLUME`) of the scrape before the last one: the
    # latency window of the status page and `diagnose` is the difference (only those: a
    # member's whole scrape twice over was 20 MB at 2,000 members)
    prev_relayed: tuple[RelayedFamily, ...] = ()
    prev_success_time: float | None = None
    # log side
    stream_up: bool | None = None
    lines_read: int = 0
    lines_unparsed: int = 0
    reconnects: int = 0
    events: Counter[str] = field(default_factory=Counter)
    slow_requests: Counter[SlowKey] = field(default_factory=Counter)
    slow_durations: dict[str, HistogramAcc] = field(default_factory=dict)
    last_event_time: dict[str, float] = field(default_factory=dict)
    last_slow_event: Event | None = None
    series_dropped: int = 0
    resources: set[str] = field(default_factory=set)
    # slow requests that fell into a defragmentation: counted apart, not in `slow_requests`
    defrag: DefragWindow = field(default_factory=DefragWindow)
    slow_during_defrag: int = 0
    traces: TraceTally = field(default_factory=TraceTally)
    # etcd's own slow-apply counter at the first scrape of its process: what etcd counted since
    # is compared with the log's count (zap samples its log)
    slow_applies_base: float | None = None
    # member side (Kubernetes): restarts counted, the (pod uid, restart count) they stand at,
    # when they were seen, and whether the etcd process changed since the last good scrape
    restarts: int = 0
    restarts_seen: tuple[str, int] | None = None
    restart_times: deque[float] = field(default_factory=lambda: deque(maxlen=RESTART_HISTORY))
    new_process: bool = False

    # -- member side ----------------------------------------------------------------------
    @property
    def member_state(self) -> MemberState:
        """The member's state; a static target always runs."""
        member = self.target.member
        return member.state if member is not None else MemberState.RUNNING

    def observe_member(self, member: Member | None, *, now: float | None = None) -> None:
        """Fold what discovery saw of the member: count restarts, and mark the target down
        while its etcd container does not run (the scrape loop is stopped meanwhile)."""
        if member is None:
            return
        when = time.time() if now is None else now
        first = self.restarts_seen is None
        added = restarts_added(self.restarts_seen, uid=member.uid, count=member.restart_count)
        self.restarts_seen = (member.uid, member.restart_count)
        if added:
            self.restarts += added
            if not first:
                self.restart_times.extend([when] * min(added, RESTART_HISTORY))
                self.new_process = True
        if not member.running:
            self.up = False
            self.new_process = True

    def restarts_within(self, seconds: float, *, now: float) -> int:
        """Restarts seen in the last `seconds` (since this exporter started at most)."""
        return sum(1 for t in self.restart_times if now - t <= seconds)

    # -- log side -------------------------------------------------------------------------
    def count_line(self, *, unparsed: bool) -> None:
        """Count one line read from the log stream."""
        self.lines_read += 1
        if unparsed:
            self.lines_unparsed += 1

    def record_event(self, event: Event, *, now: float | None = None) -> None:
        """Fold one parsed event into the counters.

        Slow requests and traces that fell into a defrag are counted apart (`slow_during_defrag`)
        and left out of the slow-request counters and traces: a defrag stalls writes on any disk,
        and the alerts on slow requests must not page for it. `events` counts every line."""
        kind = str(event.kind)
        self.events[kind] += 1
        if event.kind in DEFRAG_KINDS:
            self.defrag.observe(event)
            return
        if event.kind in (EventKind.SLOW_REQUEST, EventKind.SLOW_TRACE) and self.defrag.covers(
            event
        ):
            if event.kind is EventKind.SLOW_REQUEST:
                self.slow_during_defrag += 1
            return
        if event.kind in SLOW_KINDS:
            self.last_event_time[kind] = time.time() if now is None else now
            self.last_slow_event = event
        if event.kind is EventKind.SLOW_REQUEST:
            self._record_slow_request(event)
        elif event.kind is EventKind.SLOW_TRACE:
            self.traces.add(event)

    def _record_slow_request(self, event: Event) -> None:
        op = str(event.operation) if event.operation is not None else OTHER
        key = (op, "true" if event.read_only else "false", self._bounded_resource(event.resource))
        if key not in self.slow_requests and self._series_full():
            self.series_dropped += 1
            return
        self.slow_requests[key] += 1
        if event.duration_seconds is not None:
            acc = self.slow_durations.get(op)
            if acc is None:
                acc = self.slow_durations[op] = HistogramAcc()
            acc.observe(event.duration_seconds)

    def _bounded_resource(self, resource: str | None) -> str:
        if not resource:
            return OTHER
        if resource in self.resources:
            return resource
        if len(self.resources) >= self.limits.max_resources_per_target:
            return OTHER
        self.resources.add(resource)
        return resource

    def _series_full(self) -> bool:
        return len(self.slow_requests) >= self.limits.max_series_per_target

    def set_stream_up(self, up: bool) -> None:
        """Mark the log stream connected or not."""
        self.stream_up = up

    def count_reconnect(self) -> None:
        """Count one reopening of the log stream."""
        self.reconnects += 1

    # -- scrape side ----------------------------------------------------------------------
    def record_scrape_success(
        self, families: tuple[RelayedFamily, ...], *, duration: float, now: float | None = None
    ) -> None:
        """Keep the families of a successful scrape, capped at the per-target series limit.

        The previous scrape stays as the start of the next latency window, unless the etcd
        process changed in between (a restart): then the window starts at the process start.
        """
        if self.new_process:
            self.prev_relayed, self.prev_success_time = (), None
            self.new_process = False
            self.slow_applies_base = None
        else:
            self.prev_relayed = tuple(f for f in self.relayed if f.name in RELAYED_WITH_VOLUME)
            self.prev_success_time = self.last_success_time
        self.relayed, dropped = _cap(families, self.limits.max_series_per_target)
        if self.slow_applies_base is None:
            self.slow_applies_base = counter_value(self.relayed, ETCD_SLOW_APPLIES)
        self.series_dropped += dropped
        self.up = True
        self.last_scrape_duration = duration
        self.last_success_time = time.time() if now is None else now

    def record_scrape_error(self, reason: str, *, duration: float) -> None:
        """Count a failed scrape; the last good families stay (at their values, `up` False)."""
        self.scrape_errors[reason] += 1
        self.up = False
        self.last_scrape_duration = duration


def counter_value(families: tuple[RelayedFamily, ...], name: str) -> float | None:
    """The summed value of an unlabelled etcd counter among relayed families; None if absent."""
    for family in families:
        if family.name == name:
            values = [s.value for s in family.samples if s.name in (name, name + "_total")]
            return sum(values) if values else None
    return None


def _cap(families: tuple[RelayedFamily, ...], limit: int) -> tuple[tuple[RelayedFamily, ...], int]:
    total = sum(len(f.samples) for f in families)
    if total <= limit:
        return families, 0
    kept: list[RelayedFamily] = []
    room = limit
    for fam in families:
        if len(fam.samples) <= room:
            kept.append(fam)
            room -= len(fam.samples)
    return tuple(kept), total - sum(len(f.samples) for f in kept)


class Store:
    """All target states by key, plus readiness flags."""

    def __init__(self, *, limits: Limits | None = None) -> None:
        self._limits = limits or Limits()
        self._states: dict[str, TargetState] = {}
        self._positions: dict[str, int] | None = None  # key → place in `_states`, when known
        self.discovery_synced = False
        self.first_collection_done = False
        # (resource, verb, HTTP status) → errors from the Kubernetes API, counted by discovery
        self.kubernetes_api_errors: Counter[tuple[str, str, str]] = Counter()
        # reason → times a Secret with a member's TLS material became unusable
        self.tls_secret_errors: Counter[str] = Counter()

    def upsert(self, target: Target, *, now: float | None = None) -> TargetState:
        """Add a target or update its labels and member state; counters of a known key are
        kept (also when its pod was re-created)."""
        state = self._states.get(target.key)
        if state is None:
            state = self._states[target.key] = TargetState(target=target, limits=self._limits)
            self._positions = None
        else:
            state.target = target
        state.observe_member(target.member, now=now)
        return state

    def remove(self, key: str) -> TargetState | None:
        """Forget a target; its series vanish at the next collection."""
        state = self._states.pop(key, None)
        if state is not None:
            self._positions = None
        return state

    def get(self, key: str) -> TargetState | None:
        """The state of one target, if known."""
        return self._states.get(key)

    def states(self) -> list[TargetState]:
        """A snapshot list of every state (safe to iterate while tasks run)."""
        return list(self._states.values())

    def phase(self, key: str) -> float:
        """Where a target stands in the store's order (the order of `states` and of /metrics), as
        a fraction in [0, 1); 0 for an unknown key. The places are listed once per change of
        the store's keys (every target asks once, at its second scrape)."""
        positions = self._positions
        if positions is None:
            positions = self._positions = {k: n for n, k in enumerate(self._states)}
        place = positions.get(key)
        return 0.0 if place is None else place / len(self._states)

    def __len__(self) -> int:
        return len(self._states)

    @property
    def ready(self) -> bool:
        """Discovery listed once and at least one collection cycle finished."""
        return self.discovery_synced and (self.first_collection_done or not self._states)
