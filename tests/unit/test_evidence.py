"""The status page and `diagnose` build evidence with the same code: the same log and the same
two scrapes give them the same evidence (but for the scope each states)."""

from __future__ import annotations

from pathlib import Path

from exporter.diagnosis.evidence import (
    disk_between,
    disk_evidence,
    events_evidence,
    log_evidence,
    p99_between,
)
from exporter.metrics import ETCD_BACKEND_COMMIT
from exporter.model import Event, FileLogSpec, Identity, ScrapeSpec, Target, Volume
from exporter.parser import parse_line
from exporter.scrape.extract import extract_families
from exporter.state import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOGS = [FIXTURES / "etcd-3.5-zap" / name for name in ("cluster-m1.log", "single.log")]
PAYLOAD = (FIXTURES / "metrics" / "etcd-3.5.metrics").read_text()
WAL_SUM = "etcd_disk_wal_fsync_duration_seconds_sum"

TARGET = Target(
    key="m1",
    identity=Identity("shoot--p--s", "p", "s", "etcd-main", "etcd-main-0"),
    volume=Volume("pvc", "pv", "fast", "pd.csi.storage.gke.io", "pd-ssd", "ssd"),
    scrape=ScrapeSpec(url="http://127.0.0.1:1/metrics"),
    log=FileLogSpec("etcd.log"),
)


def events_of(path: Path) -> list[Event]:
    found = [parse_line(line) for line in path.read_text().splitlines()]
    return [e for e in found if isinstance(e, Event)]


def test_log_evidence_is_the_same_from_state_and_from_events() -> None:
    for path in LOGS:
        events = events_of(path)
        assert events, path
        state = Store().upsert(TARGET)
        for event in events:
            state.record_event(event, now=1000.0)
        live = log_evidence(state, now=1000.0)
        offline = events_evidence(events, scope=live.scope)
        assert live == offline, path
        assert live.slow_requests > 0 or live.slow_fdatasync > 0 or live.leader_changes > 0


def test_disk_evidence_is_the_same_from_state_and_from_two_scrapes() -> None:
    first = extract_families(PAYLOAD)
    second = extract_families(PAYLOAD.replace("\n" + WAL_SUM + " ", "\n" + WAL_SUM + " 1"))
    state = Store().upsert(TARGET)
    state.record_scrape_success(first, duration=0.1, now=100.0)
    state.record_scrape_success(second, duration=0.1, now=130.0)
    live = disk_evidence(state)
    assert live == disk_between(first, second, window=30.0)
    assert live.reachable
    assert live.window == 30.0
    assert live.fsync is not None
    assert live.commit is not None


def test_p99_between_reads_the_wal_fsync_or_the_named_histogram() -> None:
    """One helper for both histograms of `DiskEvidence`; without a first scrape, since etcd
    started."""
    first = extract_families(PAYLOAD)
    second = extract_families(PAYLOAD.replace("\n" + WAL_SUM + " ", "\n" + WAL_SUM + " 1"))
    disk = disk_between(first, second, window=30.0)
    assert p99_between(first, second) == disk.fsync
    assert p99_between(first, second, name=ETCD_BACKEND_COMMIT) == disk.commit
    since_start = p99_between(None, second)
    assert since_start is not None
    assert disk.fsync is not None
    assert since_start.count > disk.fsync.count
    assert p99_between(first, second, name="etcd_no_such_histogram") is None
