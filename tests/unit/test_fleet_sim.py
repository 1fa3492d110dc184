"""The fleet simulator's pieces: layout, /metrics payloads, log lines (no processes)."""

from __future__ import annotations

import random

from prometheus_client.parser import text_string_to_metric_families

from bench.fleetbench.loglines import LineMaker, iso_now, marker_line
from bench.fleetbench.payload import Payloads
from bench.fleetbench.probes import compaction_count
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
