"""Live evidence for the status page: a `TargetState` → the same `EtcdReport` diagnose prints. Pure.

The daemon keeps the last two successful scrapes of each member, so disk latency is measured
over one scrape interval. Log counters run since the exporter started; slow requests older than
`RECENT` are shown but no longer make the verdict `slow-requests-not-disk`. A Kubernetes member
whose container does not run is judged `unreachable` with its restarts of the last `RECENT`
and the WAL fsync p99 of its last run (the kept scrapes of that run).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from exporter.diagnosis import humanize as h
from exporter.diagnosis.histogram import Latency, window_latency
from exporter.diagnosis.report import EtcdReport, report_order
from exporter.diagnosis.verdict import (
    BACKEND_COMMIT,
    NO_METRICS_URL,
    NOT_RUNNING,
    QUANTILE,
    SHARE_BOUND,
    WAL_FSYNC,
    DiskEvidence,
    LogEvidence,
    MemberEvidence,
    judge,
)
from exporter.model import Event, EventKind
from exporter.state import Store, TargetState

RECENT = 3600.0
SCOPE = "since the exporter started"
READ_INDEX_KINDS = (
    EventKind.READ_INDEX_RETRY,
    EventKind.READ_INDEX_TIMEOUT,
    EventKind.READ_INDEX_OUT_OF_DATE,
)


def live_reports(store: Store, *, now: float) -> list[tuple[EtcdReport, TargetState]]:
    """Every target's report with its state, worst verdict first."""
    pairs = [(live_report(s, now=now), s) for s in store.states()]
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
        fsync = window_latency(
            state.prev_relayed or None,
            state.relayed,
            name=WAL_FSYNC,
            q=QUANTILE,
            bound=SHARE_BOUND,
        )
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
    if not state.target.running:
        return DiskEvidence(reachable=False, error=NOT_RUNNING)
    if state.target.scrape is None:
        return DiskEvidence(reachable=False, error=NO_METRICS_URL)
    if state.up is not True:
        reason = state.scrape_errors.most_common(1)[0][0] if state.scrape_errors else ""
        return DiskEvidence(reachable=state.up, error=reason)
    if not state.prev_relayed or state.prev_success_time is None:
        return DiskEvidence(reachable=True)
    window = (state.last_success_time or 0.0) - state.prev_success_time
    return DiskEvidence(
        reachable=True,
        window=max(window, 0.0),
        fsync=_latency(state, WAL_FSYNC),
        commit=_latency(state, BACKEND_COMMIT),
    )


def _latency(state: TargetState, name: str) -> Latency | None:
    return window_latency(
        state.prev_relayed, state.relayed, name=name, q=QUANTILE, bound=SHARE_BOUND
    )


def log_evidence(state: TargetState, *, now: float) -> LogEvidence:
    """Log counters since the exporter started; stale when the last slow request is old."""
    if state.target.log is None:
        return LogEvidence(scope=SCOPE, read=False, error="no log source")
    top: Counter[tuple[str, str]] = Counter()
    for (operation, _read_only, resource), n in state.slow_requests.items():
        top[(operation, resource)] += n
    (op, res), top_n = top.most_common(1)[0] if top else (("", ""), 0)
    events = state.events
    fdatasync = str(EventKind.SLOW_FDATASYNC)
    return LogEvidence(
        scope=SCOPE,
        slow_requests=sum(state.slow_requests.values()),
        top_operation=op,
        top_resource=res,
        top_count=top_n,
        slow_fdatasync=events[fdatasync] if _recent(state, fdatasync, now) else 0,
        heartbeat_late=events[str(EventKind.HEARTBEAT_LATE)],
        read_index=sum(events[str(k)] for k in READ_INDEX_KINDS),
        leader_changes=events[str(EventKind.LEADER_CHANGE)],
        stale=not _recent(state, str(EventKind.SLOW_REQUEST), now),
    )


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
