"""Evidence for a verdict, built once for the status page and `diagnose`. Pure.

The status page judges a `TargetState` (`live_report`); `diagnose` judges two scrapes of its own
and the events of a log it read and its pod's container (`disk_between`, `events_evidence`,
`pod_member_evidence`); both through the same builders, so a member gets the same report from
either.

The daemon keeps the last two successful scrapes of each member, so disk latency is measured
over one scrape interval. Log counters run since the exporter started; slow requests older than
`RECENT` are shown but no longer make the verdict `slow-requests-not-disk`. A Kubernetes member
whose container does not run is judged `unreachable` with its restarts of the last `RECENT`
and the WAL fsync p99 of its last run (the kept scrapes of that run).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from exporter.diagnosis import humanize as h
from exporter.diagnosis.histogram import Latency, window_latency
from exporter.diagnosis.logfacts import trace_evidence
from exporter.diagnosis.report import EtcdReport, report_order, with_class_medians
from exporter.diagnosis.verdict import (
    NO_METRICS_URL,
    NOT_RUNNING,
    QUANTILE,
    SHARE_BOUND,
    DiskEvidence,
    LogEvidence,
    MemberEvidence,
    judge,
)
from exporter.metrics import CLASS_MEDIAN_MIN_MEMBERS, ETCD_BACKEND_COMMIT, ETCD_WAL_FSYNC
from exporter.model import Event, EventKind, FileLogSpec, RelayedFamily, Target
from exporter.state import ETCD_SLOW_APPLIES, Store, TargetState, counter_value

Families = tuple[RelayedFamily, ...]

RECENT = 3600.0
SCOPE = "since the exporter started"
READ_INDEX_KINDS = (
    EventKind.READ_INDEX_RETRY,
    EventKind.READ_INDEX_TIMEOUT,
    EventKind.READ_INDEX_OUT_OF_DATE,
)


# -- the shared builders -------------------------------------------------------------------------


def not_scraped(target: Target) -> DiskEvidence | None:
    """Why a member's disk cannot be measured at all (its etcd does not run, it has no metrics
    URL), None when it can be scraped."""
    if not target.running:
        return DiskEvidence(reachable=False, error=NOT_RUNNING)  # its pod IP is not etcd's
    if target.scrape is None:
        return DiskEvidence(reachable=False, error=NO_METRICS_URL)
    return None


def p99_between(
    before: Families | None, after: Families, *, name: str = ETCD_WAL_FSYNC
) -> Latency | None:
    """The p99 of a latency histogram, the WAL fsync's unless `name` says another (the backend
    commit's), between two scrapes (`before` None: since etcd started)."""
    return window_latency(before or None, after, name=name, q=QUANTILE, bound=SHARE_BOUND)


def disk_between(before: Families, after: Families, *, window: float) -> DiskEvidence:
    """WAL fsync and backend commit p99 between two successful scrapes `window` seconds apart."""
    return DiskEvidence(
        reachable=True,
        window=max(window, 0.0),
        fsync=p99_between(before, after),
        commit=p99_between(before, after, name=ETCD_BACKEND_COMMIT),
    )


def pod_member_evidence(
    target: Target, fsync: Latency | None, *, now: float
) -> MemberEvidence | None:
    """`diagnose`'s member evidence: a Kubernetes member's container as its pod says, with its
    restart count since the pod started (the pod keeps no history of when), its last exit and
    how long ago, and `fsync` — WAL fsync since etcd started, from the one scrape made while it
    ran — when it stopped running."""
    member = target.member
    if member is None:
        return None
    scope = "since the pod started"
    if member.pod_started_at is not None:
        scope += f" {h.span(max(now - member.pod_started_at, 0.0))} ago"
    last_exit = member.last_exit
    if last_exit and member.last_exit_at is not None:
        last_exit += f", {h.span(max(now - member.last_exit_at, 0.0))} ago"
    return MemberEvidence(
        state=str(member.state),
        reason=member.reason,
        restarts=member.restart_count,
        scope=scope,
        last_exit=last_exit,
        fsync=fsync,
    )


def events_evidence(
    events: Iterable[Event], *, scope: str, etcd_slow_applies: int | None = None
) -> LogEvidence:
    """`diagnose`'s log evidence: the events of the log it read, folded as the daemon folds
    them (slow requests during a defrag apart, traces summed); `etcd_slow_applies` is etcd's
    count over a span within the log's."""
    state = TargetState(target=_READ)
    for event in events:
        state.record_event(event, now=0.0)
    return _state_logs(state, scope=scope, etcd_slow_applies=etcd_slow_applies)


_READ = Target(key="", log=FileLogSpec("-"))  # what diagnose read: only its log matters


def _state_logs(
    state: TargetState,
    *,
    scope: str,
    fdatasync: bool = True,
    stale: bool = False,
    etcd_slow_applies: int | None = None,
) -> LogEvidence:
    """Log evidence from a member's log counters (the daemon's, or a log diagnose read);
    `fdatasync` False leaves slow fdatasyncs out (too old to judge)."""
    by_op: Counter[tuple[str, str]] = Counter()
    for (operation, _read_only, resource), n in state.slow_requests.items():
        by_op[(operation, resource)] += n
    (op, resource), top = by_op.most_common(1)[0] if by_op else (("", ""), 0)
    events = state.events
    return LogEvidence(
        scope=scope,
        slow_requests=sum(state.slow_requests.values()),
        top_operation=op,
        top_resource=resource,
        top_count=top,
        slow_fdatasync=events[str(EventKind.SLOW_FDATASYNC)] if fdatasync else 0,
        heartbeat_late=events[str(EventKind.HEARTBEAT_LATE)],
        read_index=sum(events[str(k)] for k in READ_INDEX_KINDS),
        leader_changes=events[str(EventKind.LEADER_CHANGE)],
        stale=stale,
        during_defrag=state.slow_during_defrag,
        defrag_took=state.defrag.took,
        traces=trace_evidence(state.traces),
        etcd_slow_applies=etcd_slow_applies,
    )


def slow_applies_between(before: Families, after: Families) -> int | None:
    """What etcd's slow-apply counter grew by between two scrapes (after a reset: its value);
    None when it is missing."""
    now = counter_value(after, ETCD_SLOW_APPLIES)
    if now is None:
        return None
    then = counter_value(before, ETCD_SLOW_APPLIES) or 0.0
    return round(now - then if now >= then else now)


# -- the daemon's state --------------------------------------------------------------------------


def live_reports(
    store: Store, *, now: float, min_members: int = CLASS_MEDIAN_MIN_MEMBERS
) -> list[tuple[EtcdReport, TargetState]]:
    """Every target's report with its state and its standing in its StorageClass (among the
    members of this store), worst verdict first."""
    states = store.states()
    reports = with_class_medians([live_report(s, now=now) for s in states], min_members=min_members)
    pairs = list(zip(reports, states, strict=True))
    return sorted(pairs, key=lambda pair: report_order(pair[0]))


def live_report(state: TargetState, *, now: float) -> EtcdReport:
    """One member's evidence from the daemon's state, and the verdict on it."""
    disk = disk_evidence(state)
    logs = log_evidence(state, now=now)
    member = member_evidence(state, now=now)
    verdict = judge(volume=state.target.volume, disk=disk, logs=logs, member=member)
    return EtcdReport(target=state.target, disk=disk, logs=logs, verdict=verdict, member=member)


def member_evidence(state: TargetState, *, now: float) -> MemberEvidence | None:
    """A Kubernetes member's state, restarts of the last `RECENT` and, while its container does
    not run, the WAL fsync p99 of its last run; None for a static target."""
    member = state.target.member
    if member is None:
        return None
    fsync = None
    if not member.running and state.relayed:
        fsync = p99_between(state.prev_relayed, state.relayed)
    return MemberEvidence(
        state=str(member.state),
        reason=member.reason,
        restarts=state.restarts_within(RECENT, now=now),
        scope=f"in the last {h.span(RECENT)}",
        last_exit=member.last_exit,
        fsync=fsync,
    )


def disk_evidence(state: TargetState) -> DiskEvidence:
    """Scrape state, and latency between the last two successful scrapes when there are two."""
    unscraped = not_scraped(state.target)
    if unscraped is not None:
        return unscraped
    if state.up is not True:
        reason = state.scrape_errors.most_common(1)[0][0] if state.scrape_errors else ""
        return DiskEvidence(reachable=state.up, error=reason)
    if not state.prev_relayed or state.prev_success_time is None:
        return DiskEvidence(reachable=True)
    window = (state.last_success_time or 0.0) - state.prev_success_time
    return disk_between(state.prev_relayed, state.relayed, window=window)


def log_evidence(state: TargetState, *, now: float) -> LogEvidence:
    """Log counters since the exporter started; stale when the last slow request is old."""
    if state.target.log is None:
        return LogEvidence(scope=SCOPE, read=False, error="no log source")
    return _state_logs(
        state,
        scope=SCOPE,
        fdatasync=_recent(state, str(EventKind.SLOW_FDATASYNC), now),
        stale=not _recent(state, str(EventKind.SLOW_REQUEST), now),
        etcd_slow_applies=etcd_slow_applies(state),
    )


def etcd_slow_applies(state: TargetState) -> int | None:
    """etcd's slow applies since the first scrape of its process, which this exporter's log
    counters cover (they run since the exporter started, before its first scrape)."""
    base = state.slow_applies_base
    now = counter_value(state.relayed, ETCD_SLOW_APPLIES)
    if base is None or now is None or now < base:
        return None
    return round(now - base)


def _recent(state: TargetState, kind: str, now: float) -> bool:
    """The last event of `kind` is younger than RECENT (judged), or its time is unknown."""
    last = state.last_event_time.get(kind)
    return last is None or now - last <= RECENT


def last_slow_event(state: TargetState, *, now: float) -> dict[str, Any] | None:
    """The most recent slow event (slow request, slow fdatasync, late heartbeat) and its age."""
    event: Event | None = state.last_slow_event
    if event is None:
        return None
    seen = state.last_event_time.get(str(event.kind))
    return {
        "kind": str(event.kind),
        "time": event.time.isoformat() if event.time is not None else None,
        "duration_seconds": event.duration_seconds,
        "operation": str(event.operation) if event.operation is not None else None,
        "resource": event.resource,
        "age_seconds": max(now - seen, 0.0) if seen is not None else None,
    }
