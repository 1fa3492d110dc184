"""What a member's log says beyond counts: where the slow requests' time went (etcd's traces),
defragmentations, and whether the log kept every slow request (zap samples). Pure; used by the
verdicts (exporter/diagnosis/verdict.py) and the status page.

Traces alone do not tell a slow disk from a slow network: `process raft request`, a raft step,
includes the leader's WAL fsync, so under a slow disk the raft share is high too (47 % in the
capture of etcd 3.4 on a disk delayed by 300 ms per fsync, against 49 % behind a peer delayed by
250 ms). What differs, measured on real etcd 3.4 and 3.5:

- under a slow disk the index and bolt steps take a third of the time (35 % and 41 %: they wait
  for the backend's lock while a commit runs); behind a slow peer, almost none (0.02 %);
- a raft proposal waits for at least one WAL fsync, so a disk that causes the raft wait has an
  fsync p99 of the same order as that wait (0.49 s p99 for 0.36 s per traced request); behind a
  slow peer the fsync p99 is a small part of it (18-48 ms for 0.41-0.43 s), even when it is over
  etcd's 10 ms limit on a busy machine.

So the disk is cleared only when both hold: `disk_cleared`.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.diagnosis import humanize as h
from exporter.state import TraceTally

READ_LOOP = "read_index"  # etcd's linearizableReadLoop: not a request, its wait is the ranges'
RAFT = "raft"
STORE = ("index", "bolt")
MIN_TRACES = 5  # fewer traces say nothing either way
STORE_SHARE = 0.10  # the store steps' share above which the disk shows in the traces
DISK_IN_RAFT = 0.25  # fsync p99 at or above this part of the raft wait per request: the disk


@dataclass(frozen=True, slots=True)
class TraceEvidence:
    """etcd's traces of slow requests (its read loop left out): how many, their total time, and
    their time per step (`raft`, `index`, `bolt`, `apply`, `auth`, `other`)."""

    count: int
    seconds: float
    steps: tuple[tuple[str, float], ...]

    def share(self, *steps: str) -> float:
        """The part of the traced time the named steps took."""
        if self.seconds <= 0:
            return 0.0
        return sum(s for step, s in self.steps if step in steps) / self.seconds

    @property
    def raft_per_trace(self) -> float:
        """Seconds an average traced request spent in raft steps."""
        raft = sum(s for step, s in self.steps if step == RAFT)
        return raft / self.count if self.count else 0.0


def trace_evidence(tally: TraceTally) -> TraceEvidence | None:
    """A member's traces (`state.TraceTally`, by operation) summed over their operations (but
    etcd's read loop); None without any."""
    n = sum(v for op, v in tally.count.items() if op != READ_LOOP)
    if not n:
        return None
    per_step: dict[str, float] = {}
    for (op, step), s in tally.steps.items():
        if op != READ_LOOP:
            per_step[step] = per_step.get(step, 0.0) + s
    total = sum(v for op, v in tally.seconds.items() if op != READ_LOOP)
    return TraceEvidence(n, total, tuple(per_step.items()))


def disk_cleared(traces: TraceEvidence | None, fsync_p99: float | None) -> bool:
    """The traces show the slow requests did not wait for this disk: enough of them, almost
    none of their time in the index and bolt steps, and the WAL fsync p99 a small part of the
    time they waited in raft (see the module docstring)."""
    if traces is None or traces.count < MIN_TRACES or fsync_p99 is None:
        return False
    if traces.share(*STORE) >= STORE_SHARE:
        return False
    return fsync_p99 < DISK_IN_RAFT * traces.raft_per_trace


def shares_text(traces: TraceEvidence) -> str:
    """'traces: 97% of the slow requests' time in raft agreement, <0.1% in index and bolt db
    (255 traces)'."""
    return (
        f"traces: {_share(traces.share(RAFT))} of the slow requests' time in raft agreement, "
        f"{_share(traces.share(*STORE))} in index and bolt db "
        f"({h.plural(traces.count, 'trace')})"
    )


def _share(value: float) -> str:
    return "<0.1%" if 0 < value < 0.001 else h.share(value)


def raft_wait_text(traces: TraceEvidence) -> str:
    """'428ms per traced request in raft'."""
    return f"{h.seconds(traces.raft_per_trace)} per traced request in raft"


def defrag_text(during: int, took: float | None) -> str:
    """'30 slow requests during defrag (took 3.86s)'."""
    text = f"{h.plural(during, 'slow request')} during defrag"
    return text + (f" (took {h.seconds(took)})" if took is not None else "")


def sampled(all_logged: int, etcd_counted: int | None) -> bool:
    """etcd counted more slow applies than its log holds lines."""
    return etcd_counted is not None and etcd_counted > all_logged


def lower_bound_text(
    text: str, all_logged: int, etcd_counted: int | None, *, short: bool = False
) -> str:
    """`text`, a count of slow requests the log holds ('204 slow requests', '204'), or when etcd
    counted more than its log holds (`sampled`), '≥ 204 slow requests (etcd counted 406; its log
    is sampled)' (`short`: '≥204'): zap keeps the first 100 lines of a message per second and
    every 100th after, so the log's count is a lower bound. `all_logged` is every slow-request
    line (with those during a defrag), which is what etcd's counter counts."""
    if not sampled(all_logged, etcd_counted):
        return text
    if short:
        return f"≥{text}"
    return f"≥ {text} (etcd counted {h.count(etcd_counted or 0)}; its log is sampled)"
