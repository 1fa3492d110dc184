"""The fleet simulator's pieces: layout, /metrics payloads, log lines (no processes)."""

from __future__ import annotations

import gzip
import math
import random
import socket

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.fleetbench.ledger import Ledger, compare_lines, compare_slow, counted
from bench.fleetbench.loglines import LineMaker, iso_now, marker_line
from bench.fleetbench.modes import check_budgets
from bench.fleetbench.payload import Payloads
from bench.fleetbench.probes import (
    Fetched,
    compaction_count,
    event_delay,
    exporter_parts,
    percentile,
)
from bench.fleetbench.seed import FAST, STANDARD, fleet, member_ip
from exporter.model import Event, EventKind, Operation
from exporter.parser import UNPARSED, parse_line

WAL = "etcd_disk_wal_fsync_duration_seconds"


def test_fleet_layout_is_deterministic_and_druid_shaped() -> None:
    members = fleet(300)
    assert members == fleet(300)
    assert len(members) == 600
    assert len({m.ip for m in members}) == 600
    assert {m.etcd for m in members} == {"etcd-main", "etcd-events"}
    assert members[41].namespace == "shoot--p1--s20"
    assert {m.claim_class for m in members} == {FAST, STANDARD}
    drifted = [m for m in members if m.drifted]
    assert drifted
    assert all(m.etcd == "etcd-main" and m.expected_class == FAST for m in drifted)
    assert member_ip(0) == "127.20.0.1"
    assert member_ip(250) == "127.20.1.1"


def buckets(text: str) -> list[float]:
    for fam in text_string_to_metric_families(text):
        if fam.name == WAL:
            return [s.value for s in fam.samples if s.name.endswith("_bucket")]
    raise AssertionError("no wal fsync histogram")


def test_payload_is_the_captured_one_and_histograms_advance() -> None:
    payloads = Payloads(start=1000.0)
    first = payloads.body("slow", now=1000.0).decode()
    later = payloads.body("slow", now=1010.0).decode()
    assert first == payloads.render("slow", 0).decode()
    a, b = buckets(first), buckets(later)
    assert a == sorted(a)  # cumulative
    assert b == sorted(b)
    assert all(y >= x for x, y in zip(a, b, strict=True))
    assert b[-1] > a[-1]
    fast = buckets(payloads.body("fast", now=1010.0).decode())
    assert fast[1] / fast[-1] > b[1] / b[-1]  # a fast disk has more fsyncs under 2 ms


def test_log_lines_parse_as_etcd_lines_with_few_warnings() -> None:
    maker = LineMaker(random.Random(3))
    kinds: dict[object, int] = {}
    for i in range(4000):
        line = maker.line(namespace="shoot--p0--s1", slow=i % 2 == 0, ts=iso_now())
        result = parse_line(line.text)
        assert result is not UNPARSED
        kind = result.kind if isinstance(result, Event) else None
        assert (line.operation is not None) == (kind is EventKind.SLOW_REQUEST)
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds[None] > 3600  # mostly info lines
    assert kinds[EventKind.SLOW_REQUEST] > 0
    assert kinds[EventKind.SLOW_FDATASYNC] > 0
    burst = [parse_line(line.text) for line in maker.burst(namespace="shoot--p0--s1", ts=iso_now())]
    assert burst
    assert all(isinstance(e, Event) and e.kind is EventKind.SLOW_REQUEST for e in burst)


def test_marker_line_is_a_slow_compaction() -> None:
    event = parse_line(marker_line())
    assert isinstance(event, Event)
    assert event.kind is EventKind.SLOW_REQUEST
    assert event.operation is Operation.COMPACTION
    maker = LineMaker(random.Random(5))
    ops = set()
    for _ in range(2000):
        line = maker.slow_request(namespace="shoot--p0--s1", ts=iso_now())
        result = parse_line(line.text)
        assert isinstance(result, Event)
        assert result.operation == line.operation  # the writer's ledger names the exporter's label
        ops.add(result.operation)
    assert Operation.COMPACTION not in ops  # the generator never writes the marker's kind


def test_marker_counter_is_found_by_substring() -> None:
    member = fleet(1)[0]
    labels = f'namespace="{member.namespace}",operation="compaction",pod="{member.pod}"'
    body = (
        f'etcd_latency_slow_request_duration_seconds_count{{etcd="e",{labels}}} 9.0\n'
        f'etcd_latency_slow_requests_total{{etcd="e",{labels},project="p0"}} 2.0\n'
    ).encode()
    assert compaction_count(body, member) == 2.0
    assert compaction_count(body.splitlines()[0], member) == 0.0
    assert compaction_count(b"", member) == 0.0


def test_ledger_counts_what_the_writer_sent_by_operation() -> None:
    book = Ledger()
    maker = LineMaker(random.Random(7))
    lines = [maker.slow_request(namespace="shoot--p0--s1", ts=iso_now()) for _ in range(50)]
    lines.append(maker.line(namespace="shoot--p0--s1", slow=False, ts=iso_now()))
    book.record("shoot--p0--s1/etcd-main-0", lines)
    table = book.as_json()
    assert table["lines"] == {"shoot--p0--s1/etcd-main-0": 51}
    ops = table["slow"]["shoot--p0--s1/etcd-main-0"]
    assert sum(ops.values()) == 50 + (lines[-1].operation is not None)
    assert set(ops) <= {"range", "txn", "put", "lease_grant", "delete_range"}


def test_exporter_counters_are_summed_per_member_and_operation() -> None:
    body = (
        b"# TYPE etcd_latency_slow_requests counter\n"
        b'etcd_latency_slow_requests_total{etcd="etcd-main",namespace="ns",operation="range",'
        b'pod="etcd-main-0",read_only="true",resource="pods"} 3.0\n'
        b'etcd_latency_slow_requests_total{etcd="etcd-main",namespace="ns",operation="range",'
        b'pod="etcd-main-0",read_only="false",resource="leases"} 2.0\n'
        b'etcd_latency_slow_requests_created{namespace="ns",operation="range",pod="etcd-main-0"} '
        b"17.0\n"
        b'etcd_latency_slow_request_duration_seconds_count{namespace="ns",operation="put",'
        b'pod="etcd-main-0"} 9.0\n'
        b'etcd_latency_exporter_log_lines_read_total{namespace="ns",pod="etcd-main-0"} 40.0\n'
    )
    seen = counted(body)
    assert seen.slow == {"ns/etcd-main-0": {"range": 5}}
    assert seen.lines == {"ns/etcd-main-0": 40}


def test_accounting_finds_lost_and_double_counted_lines_per_operation() -> None:
    sent_before = {"a/p": {"range": 10, "put": 1}, "b/p": {"txn": 4}}
    sent_after = {"a/p": {"range": 110, "put": 3}, "b/p": {"txn": 9}, "c/p": {"put": 2}}
    seen_before = {"a/p": {"range": 7, "put": 1}, "b/p": {"txn": 4}}  # 3 range read before
    exact = {"a/p": {"range": 107, "put": 3}, "b/p": {"txn": 9}, "c/p": {"put": 2}}
    diff = compare_slow((sent_before, sent_after), (seen_before, exact))
    assert (diff.lost, diff.double) == ({}, {})
    # one range lost and one put counted twice on the same member: not a wash
    skewed = {"a/p": {"range": 106, "put": 4}, "b/p": {"txn": 9}, "c/p": {"put": 1}}
    diff = compare_slow((sent_before, sent_after), (seen_before, skewed))
    assert diff.lost == {"a/p": 1, "c/p": 1}
    assert diff.double == {"a/p": 1}
    assert (diff.lost_total, diff.double_total) == (2, 1)
    lines = compare_lines(({"a/p": 5}, {"a/p": 9, "b/p": 2}), ({"a/p": 1}, {"a/p": 4, "b/p": 3}))
    assert (lines.lost, lines.double) == ({"a/p": 1}, {"b/p": 1})


def test_a_fetched_body_is_inflated_whole() -> None:
    """Every gzip member of a body, in order (the exporter's may be several); a plain one as is."""
    text = b"etcd_latency_exporter_build_info 1\n" * 1000
    two = gzip.compress(text[:500]) + gzip.compress(text[500:])
    assert Fetched(two, True, 0.0, 1.0).body() == text
    assert Fetched(text, False, 0.0, 1.0).body() == text


def test_percentiles_are_of_the_measured_values() -> None:
    """NaN (not measured) is left out; infinity (over every limit) counts."""
    assert percentile([3.0, math.nan, 1.0, 2.0, math.nan], 50) == 2.0
    assert percentile([1.0, math.inf, math.nan], 99) == math.inf
    assert math.isnan(percentile([math.nan], 50))
    assert math.isnan(percentile([], 50))


def test_a_marker_without_a_stream_time_keeps_its_place() -> None:
    parts = exporter_parts([1.0, 2.0, math.inf], [0.25, math.nan, 0.5])
    assert parts[0] == 0.75
    assert math.isnan(parts[1])
    assert parts[2] == math.inf
    assert (percentile(parts, 1), percentile(parts, 99)) == (0.75, math.inf)
    with pytest.raises(ValueError, match="shorter"):
        exporter_parts([1.0, 2.0], [0.5])


async def test_a_failed_marker_still_adds_one_value_to_each_list() -> None:
    """Nothing listens: the request fails, and every list given gets NaN for this marker, so the
    lists stay aligned with the delays."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    member = fleet(1)[0]
    posted: list[float] = [0.5]
    streamed: list[float] = [0.25]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await event_delay(
                session,
                api_url=url,
                metrics_url=url + "/metrics",
                member=member,
                posted=posted,
                streamed=streamed,
            )
    for values, first in ((posted, 0.5), (streamed, 0.25)):
        assert len(values) == 2
        assert values[0] == first
        assert math.isnan(values[1])


@pytest.mark.parametrize(("log_rate", "checked"), [(0.0, True), (2.0, False)])
def test_the_ratio_to_prometheus_is_a_budget_of_the_scrapes_alone(
    log_rate: float, checked: bool
) -> None:
    """With log lines the exporter also follows and parses every member's log, which
    Prometheus does not: the ratio is then printed, not held to the scrape fan-out's budget."""
    figures = {
        "log_rate_per_member": log_rate,
        "exporter_cpu_cores": 0.3,
        "exporter_peak_rss_mib": 300.0,
        "render_p99_s": 0.1,
        "event_p99_s": 0.2,
        "cpu_ratio_vs_prometheus": 0.8,
    }
    ratio = check_budgets(figures)["cpu_ratio_vs_prometheus"]
    assert ratio["value"] == (0.8 if checked else None)  # None: not measured, as without Prometheus
    if checked:
        assert not ratio["ok"]
    assert all(
        b["ok"] for name, b in check_budgets(figures).items() if name != "cpu_ratio_vs_prometheus"
    )
