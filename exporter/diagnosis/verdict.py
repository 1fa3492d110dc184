"""Judge one etcd member: is it on a slow disk, and why? Pure; used by `diagnose` and `/`.

Evidence comes in two parts, `DiskEvidence` (two scrapes of /metrics, see `histogram`)
and `LogEvidence` (counts of recognised log events), plus the member's `Volume` from discovery.
`judge` walks the rules in order, first match wins (docs/diagnose.md explains the order):

    slow-disk               WAL fsync p99 > 10 ms or backend commit p99 > 25 ms over the window
                            (etcd's documented limits), or etcd logged fdatasyncs over 1 s
    hdd-storage             the volume's disk class is hdd
    storage-class-mismatch  the PVC's class differs from the expected one
    slow-requests-not-disk  slow requests in the logs while the measured disk latency is fine
    unreachable             the scrape failed, so disk latency cannot be judged
    pending                 (status page only) fewer than two scrapes so far
    ok                      none of the above

A Kubernetes member's container adds `MemberEvidence`: when it does not run or restarted within
the evidence's scope, the reason ends with a line like "restarting (CrashLoopBackOff): restarted
5 times in the last 1h (last exit: Error, exit code 2); WAL fsync p99 63.1ms while running".
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from exporter.diagnosis import humanize as h
from exporter.diagnosis.histogram import Latency
from exporter.diagnosis.logfacts import (
    TraceEvidence,
    defrag_text,
    disk_cleared,
    lower_bound_text,
    raft_wait_text,
    sampled,
    shares_text,
)
from exporter.metrics import BACKEND_COMMIT_LIMIT, ETCD_WAL_FSYNC, WAL_FSYNC_LIMIT
from exporter.model import Volume

QUANTILE = 0.99
SHARE_BOUND = 0.016  # etcd's bucket just above 10 ms: "share of fsyncs slower than 16 ms"
RUNBOOKS = "docs/runbooks.md"
NO_METRICS_URL = "no metrics URL"  # DiskEvidence.error of a target that has only a log
NOT_RUNNING = "not running"  # DiskEvidence.error of a member whose etcd container does not run


class VerdictCode(enum.StrEnum):
    """Verdicts, worst first; the order is also the sort order of reports."""

    SLOW_DISK = "slow-disk"
    HDD_STORAGE = "hdd-storage"
    STORAGE_CLASS_MISMATCH = "storage-class-mismatch"
    SLOW_REQUESTS_NOT_DISK = "slow-requests-not-disk"
    UNREACHABLE = "unreachable"
    PENDING = "pending"
    OK = "ok"

    @property
    def rank(self) -> int:
        """0 for the worst verdict; sort ascending to get the worst first."""
        return list(VerdictCode).index(self)


@dataclass(frozen=True, slots=True)
class DiskEvidence:
    """What two scrapes said. `reachable` None: not scraped yet; `window` None: one scrape only."""

    reachable: bool | None
    error: str = ""
    window: float | None = None
    fsync: Latency | None = None
    commit: Latency | None = None


@dataclass(frozen=True, slots=True)
class LogEvidence:
    """Counts of recognised log events over `scope` (e.g. 'in the last 1h').

    `read` False: the log could not be read (`error` says why). `stale` True: the slow requests
    are older than the verdict horizon and only shown, not judged (status page).
    """

    scope: str
    read: bool = True
    error: str = ""
    slow_requests: int = 0
    top_operation: str = ""
    top_resource: str = ""
    top_count: int = 0
    slow_fdatasync: int = 0
    heartbeat_late: int = 0
    read_index: int = 0
    leader_changes: int = 0
    stale: bool = False
    # slow requests during a defrag (not in `slow_requests`) and the last defrag's duration
    during_defrag: int = 0
    defrag_took: float | None = None
    traces: TraceEvidence | None = None
    # etcd's own count of slow applies over a span within `scope`, when known: more than the
    # log's lines means the log is sampled and its counts are lower bounds
    etcd_slow_applies: int | None = None


@dataclass(frozen=True, slots=True)
class MemberEvidence:
    """A Kubernetes member's etcd container: its state (`running`, `restarting`, `pending`,
    `gone`) and why, its restarts within `scope` ('in the last 1h', 'since the pod started 2h
    ago'), its last exit, and the WAL fsync latency of its last run (`fsync`: the last window
    while it ran, or since its etcd started)."""

    state: str = "running"
    reason: str = ""
    restarts: int = 0
    scope: str = ""
    last_exit: str = ""
    fsync: Latency | None = None

    @property
    def notable(self) -> bool:
        """Worth a line: it does not run, or it restarted within the scope."""
        return self.state != "running" or self.restarts > 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement: a code, a one-line reason naming the evidence, and what to do about it.
    `counted`: the reason already states the log's slow-request count (`judge` adds it, with its
    lower-bound note, to a reason that does not when the log is sampled)."""

    code: VerdictCode
    reason: str
    remedy: str = ""
    counted: bool = False


Rule = Callable[[Volume, DiskEvidence, LogEvidence], Verdict | None]


def p99_text(lat: Latency | None) -> str:
    """'63.7ms'; '≤1ms' when the p99 lies in the first bucket (no resolution below it); '≥8.19s'
    in the +Inf bucket; 'n/a' without observations."""
    if lat is None or lat.p99 is None:
        return "n/a"
    if lat.p99_bucket is not None:
        lower, upper = lat.p99_bucket
        if lower <= 0 and math.isfinite(upper):
            return f"≤{h.seconds(upper)}"
        if math.isinf(upper):
            return f"≥{h.seconds(lower)}"
    return h.seconds(lat.p99)


def judge(
    *,
    volume: Volume,
    disk: DiskEvidence,
    logs: LogEvidence,
    member: MemberEvidence | None = None,
) -> Verdict:
    """The first matching rule's verdict; a member's restarts are added to its reason."""
    for rule in RULES:
        found = rule(volume, disk, logs)
        if found is not None:
            verdict = found
            break
    else:
        verdict = _ok(disk, logs)
    notes, counted = [], verdict.counted
    if lower_bound(logs) and not counted:
        notes.append(_slow_count(logs))
        counted = True
    if logs.during_defrag:
        notes.append(defrag_text(logs.during_defrag, logs.defrag_took))
    if notes:
        verdict = replace(verdict, reason="; ".join((verdict.reason, *notes)), counted=counted)
    if member is None or not member.notable:
        return verdict
    remedy = verdict.remedy
    if disk.error == NOT_RUNNING:
        remedy = f"find why etcd exits ({RUNBOOKS}#etcdlatencymembercrashlooping)"
    return replace(verdict, reason=f"{verdict.reason}; {member_text(member)}", remedy=remedy)


def member_text(member: MemberEvidence) -> str:
    """'restarting (CrashLoopBackOff): restarted 5 times in the last 1h (last exit: Error, exit
    code 2); WAL fsync p99 63.1ms while running'."""
    head = "" if member.state == "running" else member.state
    if head and member.reason:
        head += f" ({member.reason})"
    parts = [head] if head else []
    if member.restarts:
        restarted = f"restarted {h.plural(member.restarts, 'time')} {member.scope}".rstrip()
        if member.last_exit:
            restarted += f" (last exit: {member.last_exit})"
        parts.append(restarted)
    text = ": ".join(parts)
    if member.fsync is not None and member.fsync.p99 is not None:
        text += f"; WAL fsync p99 {p99_text(member.fsync)} while running"
    return text


def _slow_disk(volume: Volume, disk: DiskEvidence, logs: LogEvidence) -> Verdict | None:
    reasons = [
        _over(disk.fsync, WAL_FSYNC_LIMIT, "WAL fsync", "fsync", disk.window),
        _over(disk.commit, BACKEND_COMMIT_LIMIT, "backend commit", "commit", disk.window),
    ]
    if logs.slow_fdatasync:
        n = h.plural(logs.slow_fdatasync, "fdatasync")
        reasons.append(f"etcd logged {n} over 1s {logs.scope}")
    found = [r for r in reasons if r]
    if not found:
        return None
    fsync = disk.fsync.p99 if disk.fsync is not None else None
    if not logs.slow_fdatasync and disk_cleared(logs.traces, fsync):
        return None  # the requests waited for the members, not the disk: _slow_requests
    if logs.traces is not None:
        found.append(shares_text(logs.traces))
    return Verdict(VerdictCode.SLOW_DISK, "; ".join(found) + _class_note(volume), _remedy(volume))


def _over(lat: Latency | None, limit: float, what: str, unit: str, window: float | None) -> str:
    if lat is None or lat.p99 is None or lat.p99 <= limit:
        return ""
    text = f"{what} p99 {p99_text(lat)} > {h.seconds(limit)}{_window(window, lat, unit)}"
    if unit == "fsync" and lat.share_above is not None:
        text += f", {h.share(lat.share_above)} above {h.seconds(SHARE_BOUND)}"
    return text


def _window(window: float | None, lat: Latency, unit: str) -> str:
    where = f" over {h.span(window)}" if window is not None else ""
    reset = ", counter reset: second scrape only" if lat.counter_reset else ""
    return f"{where} ({h.plural(lat.count, unit)}{reset})"


def _class_note(volume: Volume) -> str:
    if not volume.storage_class:
        return ""
    return f"; StorageClass {volume.storage_class} ({volume.disk_class})"


def _remedy(volume: Volume) -> str:
    """The slow disk's remedy: the class problem when there is one, else the disk itself."""
    if volume.disk_class == "hdd":
        return _HDD_REMEDY
    if volume.mismatch:
        return _mismatch_remedy(volume)
    return f"find what slows the disk, or move to a faster one ({RUNBOOKS}#etcdlatencywalfsyncslow)"


_HDD_REMEDY = f"move the member to an SSD StorageClass ({RUNBOOKS}#etcdlatencyhddstorage)"


def _mismatch_remedy(volume: Volume) -> str:
    return (
        f"a PVC cannot change class: recreate the member's PVC on "
        f"{volume.expected_storage_class} ({RUNBOOKS}#etcdlatencystorageclassmismatch)"
    )


def _hdd(volume: Volume, disk: DiskEvidence, logs: LogEvidence) -> Verdict | None:
    del logs
    if volume.disk_class != "hdd":
        return None
    facts = ", ".join(f for f in (volume.provisioner, volume.disk_type) if f)
    where = f"StorageClass {volume.storage_class or '(none)'} is HDD" + (
        f" ({facts})" if facts else ""
    )
    reason = f"{where}; etcd needs SSD for p99 WAL fsync < {h.seconds(WAL_FSYNC_LIMIT)}"
    reason += _measured(disk)
    return Verdict(VerdictCode.HDD_STORAGE, reason, _HDD_REMEDY)


def _mismatch(volume: Volume, disk: DiskEvidence, logs: LogEvidence) -> Verdict | None:
    del logs
    if not volume.mismatch:
        return None
    what = f"PVC {volume.pvc}" if volume.pvc else "the volume"
    reason = (
        f"{what} is on StorageClass {volume.storage_class or '(none)'}, "
        f"expected {volume.expected_storage_class}" + _measured(disk)
    )
    return Verdict(VerdictCode.STORAGE_CLASS_MISMATCH, reason, _mismatch_remedy(volume))


def _measured(disk: DiskEvidence) -> str:
    """'; WAL fsync p99 2ms over 30s' or '; metrics unreachable (connect)' as context."""
    if disk.reachable is False:
        return f"; metrics unreachable ({disk.error or 'error'})"
    if disk.fsync is not None and disk.fsync.p99 is not None:
        return f"; WAL fsync p99 {p99_text(disk.fsync)} now"
    return ""


def _slow_requests(volume: Volume, disk: DiskEvidence, logs: LogEvidence) -> Verdict | None:
    del volume
    if not logs.slow_requests or logs.stale or not disk.reachable or disk.window is None:
        return None
    traced = f"; {shares_text(logs.traces)}" if logs.traces is not None else ""
    reason = (
        f"{_slow_text(logs)} while {_disk_fine(disk, logs)}{traced}; {_network_text(logs)}: "
        "look at network, leader changes and ReadIndex"
    )
    remedy = f"not the disk: check network and CPU ({RUNBOOKS}#etcdlatencyslowrequests)"
    return Verdict(VerdictCode.SLOW_REQUESTS_NOT_DISK, reason, remedy, counted=True)


def lower_bound(logs: LogEvidence) -> bool:
    """The log's slow-request counts are lower bounds: etcd counted more than it logged."""
    return sampled(logs.slow_requests + logs.during_defrag, logs.etcd_slow_applies)


def slow_count_cell(logs: LogEvidence, *, short: bool = False) -> str:
    """The slow-request count of a table cell: '204', '≥ 204 (etcd counted 406; its log is
    sampled)' (`short`: '≥204'), with ', 5 during defrag' when some fell into a defrag; 'n/a'
    when the log was not read, '0' without any."""
    if not logs.read:
        return "n/a"
    if not logs.slow_requests and not logs.during_defrag:
        return "0"
    text = _lower_bound(h.count(logs.slow_requests), logs, short=short)
    if logs.during_defrag:
        text += f", {h.count(logs.during_defrag)} during defrag"
    return text


def _slow_count(logs: LogEvidence) -> str:
    """'204 slow requests', or '≥ 204 slow requests (etcd counted 406; its log is sampled)'."""
    return _lower_bound(h.plural(logs.slow_requests, "slow request"), logs)


def _lower_bound(text: str, logs: LogEvidence, *, short: bool = False) -> str:
    """`text`, the log's slow-request count, with the lower-bound note when the log is sampled."""
    logged = logs.slow_requests + logs.during_defrag
    return lower_bound_text(text, logged, logs.etcd_slow_applies, short=short)


def _slow_text(logs: LogEvidence) -> str:
    text = f"{_slow_count(logs)} {logs.scope}"
    if logs.top_operation:
        text += f" (top: {logs.top_operation} on {logs.top_resource or 'other'}, {logs.top_count})"
    return text


def _network_text(logs: LogEvidence) -> str:
    return ", ".join(
        (
            h.plural(logs.read_index, "ReadIndex warning"),
            h.plural(logs.leader_changes, "leader change"),
            h.plural(logs.heartbeat_late, "late heartbeat"),
        )
    )


def _disk_fine(disk: DiskEvidence, logs: LogEvidence) -> str:
    if disk.fsync is None or disk.fsync.p99 is None:
        return "no fsyncs were measured in the window"
    over = disk.fsync.p99 > WAL_FSYNC_LIMIT or (
        disk.commit is not None
        and disk.commit.p99 is not None
        and disk.commit.p99 > BACKEND_COMMIT_LIMIT
    )
    if over and logs.traces is not None:  # cleared by the traces (see _slow_disk)
        return (
            f"WAL fsync p99 {p99_text(disk.fsync)} and backend commit p99 "
            f"{p99_text(disk.commit)}, over etcd's limits, are small against the "
            f"{raft_wait_text(logs.traces)}"
        )
    return (
        f"WAL fsync p99 {p99_text(disk.fsync)} and backend commit p99 "
        f"{p99_text(disk.commit)} are within limits"
    )


def _unreachable(volume: Volume, disk: DiskEvidence, logs: LogEvidence) -> Verdict | None:
    del volume
    if disk.reachable is not False:
        return None
    if disk.error == NO_METRICS_URL:
        reason = f"{NO_METRICS_URL} to scrape: disk latency not measured"
    elif disk.error == NOT_RUNNING:
        reason = "the etcd container is not running: disk latency not measured"
    else:
        reason = f"scraping /metrics failed ({disk.error or 'error'}): disk latency not measured"
    if logs.slow_requests:
        reason += f"; {_slow_text(logs)}"
    remedy = f"check the member and the scrape settings ({RUNBOOKS}#etcdlatencytargetdown)"
    return Verdict(VerdictCode.UNREACHABLE, reason, remedy, counted=bool(logs.slow_requests))


def _pending(volume: Volume, disk: DiskEvidence, logs: LogEvidence) -> Verdict | None:
    del volume, logs
    if disk.reachable is None or disk.window is None:
        return Verdict(VerdictCode.PENDING, "waiting for two scrapes to measure disk latency")
    return None


def _ok(disk: DiskEvidence, logs: LogEvidence) -> Verdict:
    parts = [_latency_ok(disk)]
    counted = False
    if not logs.read:
        parts.append(f"logs not read ({logs.error or 'no log source'})")
    elif logs.slow_requests and logs.stale:
        parts.append(f"{_slow_count(logs)} {logs.scope}, none recent")
        counted = True
    else:
        parts.append(f"no slow requests {logs.scope}")
    return Verdict(VerdictCode.OK, "; ".join(parts), counted=counted)


def _latency_ok(disk: DiskEvidence) -> str:
    fsync, commit = disk.fsync, disk.commit
    where = f" over {h.span(disk.window)}" if disk.window is not None else ""
    if fsync is None:
        return f"no {ETCD_WAL_FSYNC} in /metrics"
    if fsync.p99 is None:
        reset = ", counter reset" if fsync.counter_reset else ""
        return f"no fsyncs{where} (idle{reset})"
    counted = _window(disk.window, fsync, "fsync")
    return (
        f"WAL fsync p99 {p99_text(fsync)} (limit {h.seconds(WAL_FSYNC_LIMIT)}), backend commit p99 "
        f"{p99_text(commit)} (limit {h.seconds(BACKEND_COMMIT_LIMIT)}){counted}"
    )


RULES: tuple[Rule, ...] = (
    _slow_disk,
    _hdd,
    _mismatch,
    _slow_requests,
    _unreachable,
    _pending,
)
