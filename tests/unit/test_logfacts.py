"""Where slow requests' time went, defrags and log sampling, judged on real etcd 3.4 and 3.5
captures (tests/fixtures/etcd-3.*-zap/{trace-disk,trace-peer,defrag,sampling}.log and the
/metrics scraped at their end): a delayed peer is `slow-requests-not-disk` with raft evidence, a
slowed disk `slow-disk`; a defrag's slow requests are counted apart; a sampled log's counts are
lower bounds."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exporter.diagnosis.evidence import (
    disk_between,
    events_evidence,
    log_evidence,
    slow_applies_between,
)
from exporter.diagnosis.logfacts import (
    READ_LOOP,
    disk_cleared,
    lower_bound_text,
    trace_evidence,
)
from exporter.diagnosis.verdict import (
    DiskEvidence,
    LogEvidence,
    Verdict,
    VerdictCode,
    judge,
    lower_bound,
    slow_count_cell,
)
from exporter.model import (
    Event,
    EventKind,
    FileLogSpec,
    Operation,
    RelayedFamily,
    ScrapeSpec,
    Target,
    Volume,
)
from exporter.parser import parse_line
from exporter.scrape.extract import extract_families
from exporter.state import DEFRAG_LIMIT, DefragWindow, Store, TraceTally

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VERSIONS = ("3.4", "3.5")
SCOPE = "in the log"


def events_of(version: str, name: str) -> list[Event]:
    lines = (FIXTURES / f"etcd-{version}-zap" / f"{name}.log").read_text().splitlines()
    return [e for e in map(parse_line, lines) if isinstance(e, Event)]


def families(version: str, name: str) -> tuple[RelayedFamily, ...]:
    return extract_families((FIXTURES / "metrics" / f"etcd-{version}-{name}.metrics").read_text())


def judged(
    version: str, log: str, metrics: str, *, traces: bool = True
) -> tuple[Verdict, LogEvidence]:
    """The verdict on one capture: its whole log, and its disk since etcd started."""
    fam = families(version, metrics)
    events = events_of(version, log)
    if not traces:
        events = [e for e in events if e.kind is not EventKind.SLOW_TRACE]
    logs = events_evidence(events, scope=SCOPE, etcd_slow_applies=slow_applies_between((), fam))
    disk = disk_between((), fam, window=60.0)
    return judge(volume=Volume(), disk=disk, logs=logs), logs


@pytest.mark.parametrize("version", VERSIONS)
def test_a_delayed_peer_is_not_the_disk(version: str) -> None:
    verdict, logs = judged(version, "trace-peer", "trace-peer")
    assert verdict.code is VerdictCode.SLOW_REQUESTS_NOT_DISK
    assert logs.traces is not None
    assert logs.traces.share("raft") > 0.99
    assert logs.traces.share("index", "bolt") < 0.001
    assert "100% of the slow requests' time in raft agreement" in verdict.reason
    assert "over etcd's limits, are small against the" in verdict.reason  # its fsync p99 > 10ms


@pytest.mark.parametrize("version", VERSIONS)
def test_without_its_traces_the_delayed_peer_looks_like_a_slow_disk(version: str) -> None:
    """The WAL fsync p99 of the delayed-peer capture (18 ms, 48 ms) is over etcd's 10 ms:
    the traces are what clears the disk."""
    verdict, _ = judged(version, "trace-peer", "trace-peer", traces=False)
    assert verdict.code is VerdictCode.SLOW_DISK


@pytest.mark.parametrize(("version", "store"), [("3.4", 0.35), ("3.5", 0.41)])
def test_a_slow_disk_is_slow_disk_with_the_store_steps_named(version: str, store: float) -> None:
    verdict, logs = judged(version, "trace-disk", "trace-disk")
    assert verdict.code is VerdictCode.SLOW_DISK
    assert logs.traces is not None
    assert logs.traces.share("index", "bolt") == pytest.approx(store, abs=0.01)
    assert f"{round(store * 100)}% in index and bolt db" in verdict.reason
    assert not lower_bound(logs)  # unsampled: etcd counted what the log holds


def test_disk_cleared_needs_traces_a_quiet_store_and_a_small_fsync() -> None:
    _, peer = judged("3.5", "trace-peer", "trace-peer")
    assert disk_cleared(peer.traces, 0.048)
    assert not disk_cleared(peer.traces, 0.2)  # fsync p99 near the 0.43 s raft wait: the disk
    assert not disk_cleared(None, 0.001)
    _, disk = judged("3.5", "trace-disk", "trace-disk")
    assert not disk_cleared(disk.traces, 0.001)  # the store steps took 41 %


@pytest.mark.parametrize(
    ("version", "during", "took", "slow"), [("3.4", 5, 3.857, 25), ("3.5", 8, 5.98, 25)]
)
def test_slow_requests_during_a_defrag_are_counted_apart(
    version: str, during: int, took: float, slow: int
) -> None:
    """Twice `etcdctl defrag` with concurrent writers, the second under a 600 ms fsync delay:
    the slow requests logged while it ran, or that began before it ended, are counted apart."""
    state = Store().upsert(Target(key="m", log=FileLogSpec("etcd.log")))
    for event in events_of(version, "defrag"):
        state.record_event(event, now=0.0)
    assert state.slow_during_defrag == during
    assert sum(state.slow_requests.values()) == slow
    assert state.events["slow_request"] == during + slow  # every line is still a log event
    assert state.events[str(EventKind.DEFRAG_FINISHED)] == 2
    assert state.defrag.took == pytest.approx(took, abs=0.01)
    verdict, logs = judged(version, "defrag", "defrag-after")
    assert (logs.slow_requests, logs.during_defrag) == (slow, during)
    assert f"{during} slow requests during defrag (took {took:.3g}s)" in verdict.reason


T0 = datetime(2026, 12, 7, 4, 10, tzinfo=UTC)


def at(seconds: float, kind: EventKind, took: float | None = None) -> Event:
    op = Operation.PUT if kind is EventKind.SLOW_REQUEST else None
    return Event(kind, T0 + timedelta(seconds=seconds), took, operation=op)


def test_the_defrag_window() -> None:
    w = DefragWindow()
    w.observe(at(0, EventKind.DEFRAG_STARTED))
    assert w.covers(at(1, EventKind.SLOW_REQUEST, 0.5))
    w.observe(at(4, EventKind.DEFRAG_FINISHED, 4.0))
    assert w.took == 4.0
    assert w.covers(at(4.5, EventKind.SLOW_REQUEST, 1.0))  # began at 3.5, before the end
    assert not w.covers(at(4.5, EventKind.SLOW_REQUEST, 0.2))  # began after it
    # the end's `took` reaches back when the start line was missed
    w.observe(at(20, EventKind.DEFRAG_FINISHED, 5.0))
    assert w.covers(at(16, EventKind.SLOW_REQUEST, 0.3))
    assert not w.covers(at(14, EventKind.SLOW_REQUEST, 0.3))
    # without a took, the start and the end make the duration
    w.observe(at(30, EventKind.DEFRAG_STARTED))
    w.observe(at(32, EventKind.DEFRAG_FINISHED))
    assert w.took == 2.0
    # a start whose end never comes stops counting
    w.observe(at(100, EventKind.DEFRAG_STARTED))
    assert w.covers(at(100 + DEFRAG_LIMIT, EventKind.SLOW_REQUEST, 0.2))
    assert not w.covers(at(101 + DEFRAG_LIMIT, EventKind.SLOW_REQUEST, 0.2))


def fine_disk() -> DiskEvidence:
    """A quiet member's disk: WAL fsync and backend commit within etcd's limits."""
    fam = extract_families((FIXTURES / "metrics" / "etcd-3.5.metrics").read_text())
    return disk_between((), fam, window=30.0)


def test_a_defrag_alone_is_not_blamed_on_anything() -> None:
    events = [
        at(0, EventKind.DEFRAG_STARTED),
        at(2, EventKind.SLOW_REQUEST, 1.5),
        at(3, EventKind.SLOW_REQUEST, 2.5),
        at(3.2, EventKind.DEFRAG_FINISHED, 3.2),
    ]
    logs = events_evidence(events, scope=SCOPE)
    verdict = judge(volume=Volume(), disk=fine_disk(), logs=logs)
    assert verdict.code is VerdictCode.OK
    assert verdict.reason.endswith(
        "no slow requests in the log; 2 slow requests during defrag (took 3.2s)"
    )
    assert slow_count_cell(logs) == "0, 2 during defrag"


@pytest.mark.parametrize(("version", "logged", "counted"), [("3.4", 255, 456), ("3.5", 204, 406)])
def test_a_sampled_log_gives_lower_bounds(version: str, logged: int, counted: int) -> None:
    """200 linearizable reads at once per second on a slow disk: zap keeps 100 lines of a
    message per second and every 100th after, etcd's counter counts them all."""
    verdict, logs = judged(version, "sampling", "sampling")
    assert (logs.slow_requests, logs.etcd_slow_applies) == (logged, counted)
    assert lower_bound(logs)
    text = f"≥ {logged} (etcd counted {counted}; its log is sampled)"
    assert slow_count_cell(logs) == text
    assert slow_count_cell(logs, short=True) == f"≥{logged}"
    assert (
        f"≥ {logged} slow requests (etcd counted {counted}; its log is sampled)" in verdict.reason
    )


def test_the_status_page_compares_with_etcd_since_its_first_scrape() -> None:
    """The daemon's log counters run since it started, before its first scrape: what etcd
    counted since that scrape is what the log should hold at least."""
    payload = (FIXTURES / "metrics" / "etcd-3.5-sampling.metrics").read_text()
    target = Target(
        key="m", scrape=ScrapeSpec(url="http://127.0.0.1:1/metrics"), log=FileLogSpec("l")
    )
    state = Store().upsert(target)
    state.record_scrape_success(extract_families(payload), duration=0.1, now=100.0)
    later = payload.replace("etcd_server_slow_apply_total 406", "etcd_server_slow_apply_total 706")
    state.record_scrape_success(extract_families(later), duration=0.1, now=130.0)
    for _ in range(120):
        state.record_event(Event(EventKind.SLOW_REQUEST, duration_seconds=0.5), now=130.0)
    logs = log_evidence(state, now=130.0)
    assert logs.etcd_slow_applies == 300
    assert lower_bound(logs)
    assert slow_count_cell(logs).startswith("≥ 120 (etcd counted 300;")
    for _ in range(180):
        state.record_event(Event(EventKind.SLOW_REQUEST, duration_seconds=0.5), now=130.0)
    assert not lower_bound(log_evidence(state, now=130.0))


def test_no_etcd_count_is_no_claim() -> None:
    logs = LogEvidence(scope=SCOPE, slow_requests=3)
    assert not lower_bound(logs)
    assert slow_count_cell(logs) == "3"


def test_the_lower_bound_note_is_written_once_for_every_surface() -> None:
    """One helper says a count is a lower bound: the verdict's reason, the table and the page."""
    assert lower_bound_text("204 slow requests", 210, 406) == (
        "≥ 204 slow requests (etcd counted 406; its log is sampled)"
    )
    assert lower_bound_text("1,204", 1_210, 4_060, short=True) == "≥1,204"
    assert lower_bound_text("204", 210, 210) == "204"  # etcd counted what the log holds
    assert lower_bound_text("204", 210, None) == "204"  # etcd's count unknown


@pytest.mark.parametrize(
    ("logs", "code", "stated"),
    [
        # the rule's reason states the count
        (
            LogEvidence(scope=SCOPE, slow_requests=5, etcd_slow_applies=50),
            VerdictCode.SLOW_REQUESTS_NOT_DISK,
            "≥ 5 slow requests (etcd counted 50; its log is sampled) in the log while ",
        ),
        (
            LogEvidence(scope=SCOPE, slow_requests=5, stale=True, etcd_slow_applies=50),
            VerdictCode.OK,
            "; ≥ 5 slow requests (etcd counted 50; its log is sampled) in the log, none recent",
        ),
        # it does not (none outside a defrag): judge adds the count
        (
            LogEvidence(scope=SCOPE, during_defrag=5, etcd_slow_applies=50),
            VerdictCode.OK,
            "no slow requests in the log; ≥ 0 slow requests (etcd counted 50; its log is "
            "sampled); 5 slow requests during defrag",
        ),
    ],
)
def test_the_sampled_count_is_stated_once(logs: LogEvidence, code: str, stated: str) -> None:
    """Whether a rule's reason already states the count is a flag of the verdict (`counted`),
    not a search of its text; either way the reason says it exactly once."""
    verdict = judge(volume=Volume(), disk=fine_disk(), logs=logs)
    assert verdict.code == code
    assert verdict.counted
    assert stated in verdict.reason
    assert verdict.reason.count("its log is sampled") == 1


def test_a_reason_that_quotes_the_note_still_gets_the_count() -> None:
    """A label that happens to hold the note's words is not the count: the flag decides."""
    note = "≥ 5 slow requests (etcd counted 50; its log is sampled)"
    volume = Volume(storage_class=note, expected_storage_class="fast")
    logs = LogEvidence(scope=SCOPE, slow_requests=5, etcd_slow_applies=50)
    verdict = judge(volume=volume, disk=fine_disk(), logs=logs)
    assert verdict.code is VerdictCode.STORAGE_CLASS_MISMATCH
    assert verdict.reason.endswith(f"; {note}")


def test_trace_evidence_sums_a_tally_but_the_read_loop() -> None:
    tally = TraceTally(
        count=Counter({"range": 3, "put": 1, READ_LOOP: 5}),
        seconds={"range": 1.5, "put": 0.5, READ_LOOP: 9.0},
        steps={("range", "raft"): 1.2, ("put", "raft"): 0.3, ("put", "bolt"): 0.1,
               (READ_LOOP, "raft"): 8.0},
    )  # fmt: skip
    traces = trace_evidence(tally)
    assert traces is not None
    assert (traces.count, traces.seconds) == (4, 2.0)
    assert dict(traces.steps) == pytest.approx({"raft": 1.5, "bolt": 0.1})
    assert trace_evidence(TraceTally(count=Counter({READ_LOOP: 2}))) is None
    assert trace_evidence(TraceTally()) is None
