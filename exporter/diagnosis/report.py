"""One member's report — evidence and verdict — and its JSON shape. Pure.

`diagnose` renders a list of them (exporter.commands.diagnose.table: table, or the JSON document of
docs/diagnose.schema.json); the daemon's `/api/targets` serves `etcd_json` of each target.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from exporter.diagnosis.classmedian import (
    ClassStanding,
    MemberP99,
    class_standings,
    slow_for_class_remedy,
    slow_for_class_text,
    standing_json,
)
from exporter.diagnosis.histogram import Latency
from exporter.diagnosis.logfacts import TraceEvidence
from exporter.diagnosis.rootcause import RootCause, placement_json, root_cause, root_cause_json
from exporter.diagnosis.verdict import (
    SHARE_BOUND,
    DiskEvidence,
    LogEvidence,
    MemberEvidence,
    Verdict,
    VerdictCode,
    lower_bound,
)
from exporter.model import Target


@dataclass(frozen=True, slots=True)
class EtcdReport:
    """Everything known about one member, and the verdict on it."""

    target: Target
    disk: DiskEvidence
    logs: LogEvidence
    verdict: Verdict
    member: MemberEvidence | None = None  # Kubernetes members: the container's restarts
    # its p99 against its StorageClass's median (with_class_medians; None: no class)
    class_standing: ClassStanding | None = None

    @property
    def root_cause(self) -> RootCause | None:
        """What discovery found behind the verdict (the seed's provider, a missing class)."""
        return root_cause(self.target)


def sort_reports(reports: Iterable[EtcdReport]) -> list[EtcdReport]:
    """Worst verdict first, then by namespace, etcd and pod."""
    return sorted(reports, key=report_order)


def report_order(r: EtcdReport) -> tuple[int, str, str, str, str]:
    """Sort key: verdict rank, namespace, etcd, pod, key."""
    i = r.target.identity
    return (r.verdict.code.rank, i.namespace, i.etcd, i.pod, r.target.key)


def exit_code(reports: Sequence[EtcdReport]) -> int:
    """0 when every verdict is `ok`, else 1."""
    return 0 if all(r.verdict.code is VerdictCode.OK for r in reports) else 1


def code_rank(item: tuple[str, int]) -> int:
    """Sort key of (verdict, count) pairs: the verdict's rank."""
    return VerdictCode(item[0]).rank


def with_class_medians(reports: Sequence[EtcdReport], *, min_members: int) -> list[EtcdReport]:
    """Each report with its member's p99 against its StorageClass's median, in the same order.

    A member slow for its class keeps its verdict code (the class alerts are warnings, and its
    p99 may be within etcd's limits): its reason ends with the note, and a verdict without a
    remedy gets the runbook's."""
    members = [
        MemberP99(r.target.volume.storage_class, _p99(r.disk.fsync), _p99(r.disk.commit))
        for r in reports
    ]
    out = []
    for r, standing in zip(reports, class_standings(members, min_members=min_members), strict=True):
        verdict = r.verdict
        if standing is not None and standing.slow:
            verdict = replace(
                verdict,
                reason=f"{verdict.reason}; {slow_for_class_text(standing)}",
                remedy=verdict.remedy or slow_for_class_remedy(standing),
            )
        out.append(replace(r, verdict=verdict, class_standing=standing))
    return out


def _p99(lat: Latency | None) -> float | None:
    return lat.p99 if lat is not None else None


# -- JSON -------------------------------------------------------------------------------------


def report_json(
    reports: Sequence[EtcdReport], *, window: float, since: float, generated_at: datetime
) -> dict[str, Any]:
    """The whole report: {"etcds": [...], "summary": {...}} (docs/diagnose.schema.json)."""
    by_verdict = Counter(str(r.verdict.code) for r in reports)
    ok = by_verdict.get(str(VerdictCode.OK), 0)
    summary = {
        "total": len(reports),
        "ok": ok,
        "not_ok": len(reports) - ok,
        "by_verdict": dict(sorted(by_verdict.items(), key=code_rank)),
        "window_seconds": window,
        "since_seconds": since,
        "generated_at": generated_at.isoformat(),
        "exit_code": exit_code(reports),
    }
    return {"etcds": [etcd_json(r) for r in reports], "summary": summary}


def etcd_json(r: EtcdReport) -> dict[str, Any]:
    """One member: identity, volume, scrape evidence, log evidence and the verdict."""
    ident, vol = r.target.identity, r.target.volume
    return {
        "key": r.target.key,
        "namespace": ident.namespace,
        "project": ident.project,
        "shoot": ident.shoot,
        "etcd": ident.etcd,
        "pod": ident.pod,
        "volume": {
            "pvc": vol.pvc,
            "pv": vol.pv,
            "storage_class": vol.storage_class,
            "provisioner": vol.provisioner,
            "disk_type": vol.disk_type,
            "disk_class": vol.disk_class,
            "expected_storage_class": vol.expected_storage_class,
            "expected_from": vol.expected_from,
            "mismatch": vol.mismatch,
            "volume_handle": vol.volume_handle,
            "capacity_bytes": vol.capacity_bytes,
            "expected_write_iops": vol.expected_write_iops,
            "iops_basis": vol.iops_basis or None,
        },
        "scrape": {
            "source": r.target.scrape.source if r.target.scrape is not None else None,
            "reachable": r.disk.reachable,
            "error": r.disk.error or None,
            "window_seconds": round(r.disk.window, 3) if r.disk.window is not None else None,
        },
        "wal_fsync": latency_json(r.disk.fsync),
        "backend_commit": latency_json(r.disk.commit),
        "logs": logs_json(r.logs),
        "member": member_json(r.member),
        "verdict": str(r.verdict.code),
        "reason": r.verdict.reason,
        "remedy": r.verdict.remedy or None,
        "placement": placement_json(r.target.placement),
        "root_cause": root_cause_json(r.root_cause),
        "class_median_ratio": standing_json(r.class_standing),
    }


def latency_json(lat: Latency | None) -> dict[str, Any] | None:
    """p99 in seconds (null: nothing observed), observation count, share above 16 ms."""
    if lat is None:
        return None
    return {
        "p99_seconds": lat.p99,
        "p99_bucket_seconds": _bucket(lat.p99_bucket),
        "count": int(lat.count) if float(lat.count).is_integer() else lat.count,
        "share_above_16ms": lat.share_above,
        "share_bound_seconds": SHARE_BOUND,
        "counter_reset": lat.counter_reset,
    }


def _bucket(bucket: tuple[float, float] | None) -> list[float | None] | None:
    if bucket is None:
        return None
    lower, upper = bucket
    return [lower, upper if math.isfinite(upper) else None]


def member_json(member: MemberEvidence | None) -> dict[str, Any] | None:
    """A Kubernetes member's container: state, restarts within the scope, last exit, and the
    WAL fsync latency of its last run when it does not run now; null for a static target."""
    if member is None:
        return None
    return {
        "state": member.state,
        "reason": member.reason or None,
        "restarts": member.restarts,
        "restarts_scope": member.scope,
        "last_exit": member.last_exit or None,
        "wal_fsync_while_running": latency_json(member.fsync),
    }


def logs_json(logs: LogEvidence) -> dict[str, Any]:
    """Counts of log events and the top slow operation/resource."""
    return {
        "read": logs.read,
        "error": logs.error or None,
        "scope": logs.scope,
        "slow_requests": logs.slow_requests,
        "top_operation": logs.top_operation or None,
        "top_resource": logs.top_resource or None,
        "top_count": logs.top_count,
        "slow_fdatasync": logs.slow_fdatasync,
        "heartbeat_late": logs.heartbeat_late,
        "read_index": logs.read_index,
        "leader_changes": logs.leader_changes,
        "slow_requests_lower_bound": lower_bound(logs),
        "etcd_slow_applies": logs.etcd_slow_applies,
        "during_defrag": logs.during_defrag,
        "defrag_took_seconds": logs.defrag_took,
        "traces": traces_json(logs.traces),
    }


def traces_json(traces: TraceEvidence | None) -> dict[str, Any] | None:
    """Count, seconds and the share of each step of the traced slow requests."""
    if traces is None:
        return None
    shares = {step: round(traces.share(step), 4) for step, _ in traces.steps}
    return {"count": traces.count, "seconds": traces.seconds, "step_shares": shares}
