"""The parse summary: bounded histograms, counts, JSON and text rendering."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.commands.parse.summary import LogHistogram, Summary
from exporter.commands.parse.table import render
from exporter.durations import parse_duration
from exporter.model import Event, EventKind, Operation


def test_histogram_quantiles_within_one_percent() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(-1, 1.5) for _ in range(20_000)]
    hist = LogHistogram()
    for v in values:
        hist.add(v)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        estimate = hist.quantile(q)
        assert estimate == pytest.approx(exact, rel=0.01)
    assert hist.maximum == max(values)
    assert hist.count == len(values)


def test_histogram_memory_is_bounded() -> None:
    hist = LogHistogram()
    for i in range(200_000):
        hist.add(1e-6 * (1 + i % 5000))  # a wide range of values
    hist.add(1e9)
    assert len(hist.buckets) < 3_000


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_histogram_quantiles_are_ordered_and_bounded(values: list[float]) -> None:
    hist = LogHistogram()
    for v in values:
        hist.add(v)
    p50, p90, p99 = (hist.quantile(q) for q in (0.5, 0.9, 0.99))
    assert p50 is not None
    assert p90 is not None
    assert p99 is not None
    assert 0 <= p50 <= p90 <= p99 <= max(values)


def test_empty_histogram() -> None:
    assert LogHistogram().quantile(0.5) is None


def _slow(op: Operation, resource: str, took: float, *, read_only: bool = False) -> Event:
    return Event(
        kind=EventKind.SLOW_REQUEST,
        time=datetime(2024, 1, 1, 0, 0, int(took), tzinfo=UTC),
        duration_seconds=took,
        operation=op,
        read_only=read_only,
        resource=resource,
    )


def make_summary() -> Summary:
    s = Summary(lines=10, unparsed=2)
    s.add_event(_slow(Operation.RANGE, "pods", 2.0, read_only=True))
    s.add_event(_slow(Operation.RANGE, "pods", 4.0, read_only=True))
    s.add_event(_slow(Operation.PUT, "leases", 1.0))
    s.add_event(Event(kind=EventKind.SLOW_FDATASYNC, duration_seconds=1.1))
    s.add_event(Event(kind=EventKind.LEADER_CHANGE))
    return s


def test_summary_json() -> None:
    doc = make_summary().as_json()
    json.dumps(doc)  # serialisable
    assert doc["lines"] == {"read": 10, "unparsed": 2, "events": 5}
    assert doc["events_by_kind"] == {"slow_request": 3, "slow_fdatasync": 1, "leader_change": 1}
    assert doc["slow_requests"]["by_operation"] == {"range": 2, "put": 1}
    assert doc["slow_requests"]["read_only_by_operation"] == {"range": 2}
    assert doc["slow_requests"]["by_resource"] == {"pods": 2, "leases": 1}
    durations = doc["durations_seconds"]
    assert set(durations) == {"slow_request", "slow_fdatasync"}
    assert durations["slow_request"]["count"] == 3
    assert durations["slow_request"]["max"] == 4.0
    assert durations["slow_request"]["p50"] == pytest.approx(2.0, rel=0.01)
    assert doc["first_event_time"] == "2024-01-01T00:00:01+00:00"
    assert doc["last_event_time"] == "2024-01-01T00:00:04+00:00"


def test_render_table() -> None:
    text = render(make_summary())
    assert "lines read      10" in text
    assert "lines unparsed  2" in text
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("slow_request ")).split()
    assert row[:2] == ["slow_request", "3"]
    p50, p90, p99, top = (parse_duration(cell) for cell in row[2:])
    assert (p50, p90, p99) == (pytest.approx(2, rel=0.01), pytest.approx(4, rel=0.01), p90)
    assert top == 4.0
    assert next(line for line in lines if line.startswith("range ")).split() == ["range", "2", "2"]
    assert next(line for line in lines if line.startswith("leases ")).split() == ["leases", "1"]
    assert next(line for line in lines if line.startswith("leader_change ")).split()[1:] == [
        "1",
        "-",
        "-",
        "-",
        "-",
    ]


def test_render_empty() -> None:
    text = render(Summary())
    assert "no events" in text
    assert "first event     -" in text


def test_render_caps_resources() -> None:
    s = Summary()
    for i in range(30):
        s.add_event(_slow(Operation.PUT, f"res{i:02d}", 1.0))
    text = render(s)
    assert "(10 more)" in text
