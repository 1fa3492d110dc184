"""Window statistics of etcd histograms and the verdict rules (pure, no I/O except promtool)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from exporter.diagnosis import humanize as h
from exporter.diagnosis.histogram import (
    Histogram,
    Latency,
    delta,
    find_histogram,
    quantile,
    quantile_bucket,
    share_above,
    window_latency,
)
from exporter.diagnosis.verdict import (
    NO_METRICS_URL,
    DiskEvidence,
    LogEvidence,
    VerdictCode,
    judge,
    p99_text,
)
from exporter.metrics import ETCD_WAL_FSYNC
from exporter.model import RelayedFamily, Sample, Volume

ETCD_BOUNDS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024)


def hist(*counts: float) -> Histogram:
    """Cumulative counts per etcd bound (missing ones repeat the last), then +Inf."""
    cum = list(counts) + [counts[-1]] * (len(ETCD_BOUNDS) - len(counts))
    return Histogram(bounds=(*ETCD_BOUNDS, math.inf), cumulative=(*cum, cum[-1]))


def family(name: str, cumulative: dict[str, float], *, count: float | None = None) -> RelayedFamily:
    samples = [Sample(f"{name}_bucket", (("le", le),), v) for le, v in cumulative.items()]
    if count is not None:
        samples.append(Sample(f"{name}_count", (), count))
    return RelayedFamily(name=name, type="histogram", help="", samples=tuple(samples))


# -- quantile ---------------------------------------------------------------------------------


def test_quantile_interpolates_linearly_inside_the_bucket() -> None:
    # 50 observations up to 4 ms, 50 more up to 8 ms: rank 99 is 49/50 into (4 ms, 8 ms].
    assert quantile(0.99, hist(0, 0, 50, 100)) == pytest.approx(0.004 + 0.004 * 49 / 50)


def test_quantile_first_bucket_starts_at_zero() -> None:
    assert quantile(0.5, hist(10)) == pytest.approx(0.0005)


def test_quantile_in_the_inf_bucket_is_the_largest_finite_bound() -> None:
    h_ = Histogram(bounds=(0.001, 0.002, math.inf), cumulative=(0, 1, 100))
    assert quantile(0.99, h_) == 0.002


def test_quantile_of_an_empty_window_is_none() -> None:
    assert quantile(0.99, hist(0)) is None


def test_share_above_16ms_is_exact_at_etcds_bucket_bound() -> None:
    # 38 of 100 at or below 16 ms → 62 % above.
    assert share_above(hist(0, 0, 0, 20, 38, 100), 0.016) == pytest.approx(0.62)
    assert share_above(hist(0), 0.016) is None


def test_share_above_interpolates_between_bounds() -> None:
    # 100 observations in (8 ms, 16 ms]: 10 ms is a quarter in → 75 % above.
    assert share_above(hist(0, 0, 0, 0, 100), 0.010) == pytest.approx(0.75)


# -- snapshots and deltas ----------------------------------------------------------------------


def test_find_histogram_reads_buckets_and_falls_back_to_count_for_inf() -> None:
    fam = family("x", {"0.001": 1, "0.002": 3}, count=5)
    got = find_histogram([fam], "x")
    assert got == Histogram(bounds=(0.001, 0.002, math.inf), cumulative=(1, 3, 5))
    assert find_histogram([fam], "y") is None
    assert find_histogram([family("x", {"0.1": 1})], "x") is None  # neither +Inf nor _count


def test_find_histogram_sums_label_sets_and_repairs_non_monotonic_counts() -> None:
    fam = RelayedFamily(
        name="x",
        type="histogram",
        help="",
        samples=(
            Sample("x_bucket", (("a", "1"), ("le", "0.1")), 2),
            Sample("x_bucket", (("a", "2"), ("le", "0.1")), 3),
            Sample("x_bucket", (("a", "1"), ("le", "+Inf")), 1),
            Sample("x_bucket", (("a", "2"), ("le", "+Inf")), 3),
            Sample("x_bucket", (("le", "bogus"),), 7),
        ),
    )
    assert find_histogram([fam], "x") == Histogram(bounds=(0.1, math.inf), cumulative=(5, 5))


def test_non_finite_sample_values_are_left_out() -> None:
    fam = family("x", {"0.1": float("nan"), "0.2": 2, "+Inf": 3}, count=float("inf"))
    assert find_histogram([fam], "x") == Histogram(bounds=(0.2, math.inf), cumulative=(2, 3))


def test_delta_subtracts_the_first_snapshot() -> None:
    got, reset = delta(hist(1, 2, 3), hist(2, 5, 9))
    assert not reset
    assert got.cumulative[:3] == (1, 3, 6)
    assert got.count == 6


def test_counter_reset_uses_the_second_snapshot_alone() -> None:
    after = hist(1, 1, 2)
    got, reset = delta(hist(50, 60, 70), after)
    assert reset
    assert got == after


def test_changed_buckets_count_as_reset() -> None:
    other = Histogram(bounds=(0.5, math.inf), cumulative=(1, 2))
    assert delta(hist(1), other) == (other, True)


def test_window_latency_over_two_scrapes() -> None:
    name = ETCD_WAL_FSYNC
    before = [family(name, {"0.004": 10, "0.008": 10, "0.016": 10, "+Inf": 10})]
    after = [family(name, {"0.004": 10, "0.008": 20, "0.016": 30, "+Inf": 110})]
    lat = window_latency(before, after, name=name, q=0.99, bound=0.016)
    assert lat is not None
    # 100 new observations: 10 in (4,8] ms, 10 in (8,16] ms, 80 above 16 ms (the +Inf bucket).
    assert lat.count == 100
    assert lat.p99 == 0.016
    assert lat.share_above == pytest.approx(0.8)
    assert lat.p99_bucket == (0.016, math.inf)
    assert window_latency(None, [], name=name, q=0.99, bound=0.016) is None


def test_quantile_bucket_and_how_p99_is_shown() -> None:
    assert quantile_bucket(0.99, hist(0, 0, 50, 100)) == (0.004, 0.008)
    assert quantile_bucket(0.99, hist(0)) is None
    first = Latency(p99=0.00099, count=10, share_above=0.0, p99_bucket=(0.0, 0.001))
    middle = Latency(p99=0.0637, count=10, share_above=1.0, p99_bucket=(0.032, 0.064))
    last = Latency(p99=1.024, count=10, share_above=1.0, p99_bucket=(1.024, math.inf))
    assert [p99_text(x) for x in (first, middle, last)] == ["≤1ms", "63.7ms", "≥1.02s"]
    assert p99_text(None) == "n/a"
    assert p99_text(Latency(p99=None, count=0, share_above=None)) == "n/a"


# -- verdicts ---------------------------------------------------------------------------------

SSD = Volume(pvc="data", storage_class="fast", disk_class="ssd", expected_storage_class="fast")
HDD = Volume(pvc="data", storage_class="standard", provisioner="kubernetes.io/gce-pd",
             disk_type="pd-standard", disk_class="hdd", expected_storage_class="fast")  # fmt: skip
DRIFTED = Volume(
    pvc="data", storage_class="other-ssd", disk_class="ssd", expected_storage_class="fast"
)
FAST = Latency(p99=0.002, count=500, share_above=0.0)
SLOW = Latency(p99=0.412, count=1234, share_above=0.62)
FINE_DISK = DiskEvidence(reachable=True, window=30, fsync=FAST, commit=FAST)
SLOW_DISK = DiskEvidence(reachable=True, window=30, fsync=SLOW, commit=FAST)
DOWN = DiskEvidence(reachable=False, error="connect")
QUIET = LogEvidence(scope="in the last 1h")
NOISY = LogEvidence(
    scope="in the last 1h",
    slow_requests=42,
    top_operation="range",
    top_resource="pods",
    top_count=30,
    read_index=3,
    leader_changes=1,
)


def test_slow_wal_fsync_is_slow_disk_with_the_evidence() -> None:
    v = judge(volume=SSD, disk=SLOW_DISK, logs=QUIET)
    assert v.code is VerdictCode.SLOW_DISK
    assert v.reason.startswith("WAL fsync p99 412ms > 10ms over 30s (1,234 fsyncs), 62% above 16ms")
    assert "etcdlatencywalfsyncslow" in v.remedy


def test_slow_commit_alone_is_slow_disk() -> None:
    disk = DiskEvidence(reachable=True, window=30, fsync=FAST, commit=Latency(0.03, 20, 0.9))
    v = judge(volume=SSD, disk=disk, logs=QUIET)
    assert v.code is VerdictCode.SLOW_DISK
    assert "backend commit p99 30ms > 25ms over 30s (20 commits)" in v.reason


def test_limits_are_exclusive() -> None:
    at_limit = DiskEvidence(reachable=True, window=30, fsync=Latency(0.010, 9, 0), commit=FAST)
    assert judge(volume=SSD, disk=at_limit, logs=QUIET).code is VerdictCode.OK


def test_logged_slow_fdatasync_is_slow_disk_even_in_a_quiet_window() -> None:
    logs = LogEvidence(scope="in the last 1h", slow_fdatasync=2)
    v = judge(volume=SSD, disk=FINE_DISK, logs=logs)
    assert v.code is VerdictCode.SLOW_DISK
    assert "etcd logged 2 fdatasyncs over 1s in the last 1h" in v.reason


def test_slow_disk_on_hdd_points_at_the_hdd_runbook() -> None:
    v = judge(volume=HDD, disk=SLOW_DISK, logs=NOISY)
    assert v.code is VerdictCode.SLOW_DISK
    assert "StorageClass standard (hdd)" in v.reason
    assert "#etcdlatencyhddstorage" in v.remedy


def test_hdd_wins_over_mismatch_and_names_the_class() -> None:
    v = judge(volume=HDD, disk=FINE_DISK, logs=QUIET)
    assert v.code is VerdictCode.HDD_STORAGE
    assert "StorageClass standard is HDD (kubernetes.io/gce-pd, pd-standard)" in v.reason
    assert "#etcdlatencyhddstorage" in v.remedy
    bare = judge(volume=Volume(storage_class="local", disk_class="hdd"), disk=FINE_DISK, logs=QUIET)
    assert bare.reason.startswith("StorageClass local is HDD; etcd needs SSD")


def test_unreachable_member_on_hdd_is_still_hdd_storage() -> None:
    v = judge(volume=HDD, disk=DOWN, logs=QUIET)
    assert v.code is VerdictCode.HDD_STORAGE
    assert "metrics unreachable (connect)" in v.reason


def test_mismatch_names_both_classes_and_the_remedy() -> None:
    v = judge(volume=DRIFTED, disk=FINE_DISK, logs=NOISY)
    assert v.code is VerdictCode.STORAGE_CLASS_MISMATCH
    assert "PVC data is on StorageClass other-ssd, expected fast" in v.reason
    assert "recreate the member's PVC on fast" in v.remedy
    assert "#etcdlatencystorageclassmismatch" in v.remedy


def test_no_expectation_is_no_mismatch() -> None:
    vol = Volume(storage_class="x", disk_class="unknown")
    assert judge(volume=vol, disk=FINE_DISK, logs=QUIET).code is VerdictCode.OK


def test_slow_requests_with_a_fine_disk_point_elsewhere() -> None:
    v = judge(volume=SSD, disk=FINE_DISK, logs=NOISY)
    assert v.code is VerdictCode.SLOW_REQUESTS_NOT_DISK
    assert v.reason == (
        "42 slow requests in the last 1h (top: range on pods, 30) while WAL fsync p99 2ms and "
        "backend commit p99 2ms are within limits; 3 ReadIndex warnings, 1 leader change, "
        "0 late heartbeats: look at network, leader changes and ReadIndex"
    )


def test_unreachable_is_not_judged_on_disk_latency() -> None:
    v = judge(volume=SSD, disk=DOWN, logs=NOISY)
    assert v.code is VerdictCode.UNREACHABLE
    assert v.reason.startswith("scraping /metrics failed (connect)")
    assert "42 slow requests" in v.reason


def test_a_log_only_target_says_so() -> None:
    v = judge(volume=SSD, disk=DiskEvidence(reachable=False, error=NO_METRICS_URL), logs=QUIET)
    assert v.code is VerdictCode.UNREACHABLE
    assert v.reason == "no metrics URL to scrape: disk latency not measured"


def test_stale_slow_requests_do_not_count() -> None:
    logs = LogEvidence(scope="since the exporter started", slow_requests=3, stale=True)
    v = judge(volume=SSD, disk=FINE_DISK, logs=logs)
    assert v.code is VerdictCode.OK
    assert "3 slow requests since the exporter started, none recent" in v.reason


def test_one_scrape_is_pending_on_the_status_page() -> None:
    assert judge(volume=SSD, disk=DiskEvidence(reachable=True), logs=QUIET).code == "pending"
    assert judge(volume=SSD, disk=DiskEvidence(reachable=None), logs=QUIET).code == "pending"
    assert judge(volume=HDD, disk=DiskEvidence(reachable=None), logs=QUIET).code == "hdd-storage"


def test_ok_names_the_evidence() -> None:
    v = judge(volume=SSD, disk=FINE_DISK, logs=QUIET)
    assert v.code is VerdictCode.OK
    assert v.reason == (
        "WAL fsync p99 2ms (limit 10ms), backend commit p99 2ms (limit 25ms) over 30s "
        "(500 fsyncs); no slow requests in the last 1h"
    )
    idle = DiskEvidence(reachable=True, window=3, fsync=Latency(None, 0, None), commit=None)
    unread = LogEvidence(scope="in the last 1h", read=False, error="command source")
    v = judge(volume=SSD, disk=idle, logs=unread)
    assert v.reason == "no fsyncs over 3s (idle); logs not read (command source)"


def test_verdict_rank_follows_the_rule_order() -> None:
    ranked = sorted(VerdictCode, key=lambda c: c.rank)
    assert ranked[0] is VerdictCode.SLOW_DISK
    assert ranked[-1] is VerdictCode.OK


# -- humanize ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.412, "412ms"), (0.0021, "2.1ms"), (0.010, "10ms"), (1.5, "1.5s"), (0.0004, "400µs"),
     (0.0, "0s"), (None, "n/a"), (12.3456, "12.3s")],
)  # fmt: skip
def test_seconds(value: float | None, text: str) -> None:
    assert h.seconds(value) == text


def test_spans_counts_and_shares() -> None:
    assert [h.span(v) for v in (3, 30, 90, 3600, 5400)] == ["3s", "30s", "1m30s", "1h", "1h30m"]
    assert h.count(1234.4) == "1,234"
    assert [h.share(v) for v in (0.62, 0.004, 0.0, None)] == ["62%", "0.4%", "0%", "n/a"]
    assert h.plural(1, "fsync") == "1 fsync"
    assert h.plural(2, "fsync") == "2 fsyncs"


# -- docs stay in step --------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"


def every_verdict() -> list[tuple[VerdictCode, str]]:
    volumes = (SSD, HDD, DRIFTED, Volume())
    disks = (FINE_DISK, SLOW_DISK, DOWN, DiskEvidence(reachable=None))
    found = {}
    for volume in volumes:
        for disk in disks:
            for logs in (QUIET, NOISY):
                v = judge(volume=volume, disk=disk, logs=logs)
                found[(v.code, v.remedy)] = None
    return list(found)


def test_every_remedy_points_at_an_existing_runbook_section() -> None:
    headings = re.findall(r"^#+ (.+)$", (DOCS / "runbooks.md").read_text(), flags=re.M)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    verdicts = every_verdict()
    assert {code for code, _ in verdicts} == set(VerdictCode)
    for code, remedy in verdicts:
        for anchor in re.findall(r"runbooks\.md#([a-z0-9-]+)", remedy):
            assert anchor in anchors, (code, anchor)
        if code not in (VerdictCode.OK, VerdictCode.PENDING):
            assert "runbooks.md#" in remedy, code


def test_diagnose_doc_lists_every_verdict() -> None:
    text = (DOCS / "diagnose.md").read_text()
    for code in VerdictCode:
        assert f"| `{code}` |" in text, code
