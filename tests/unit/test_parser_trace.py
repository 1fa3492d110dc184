"""etcd's request traces and defrag lines: steps mapped to the fixed set, defrags recognised in
every format, and etcd 3.6's lines (built from real 3.5 output, as no 3.6 binary runs here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from exporter.model import Event, EventKind, Operation, TraceStep
from exporter.parser import UNPARSED, parse_line
from exporter.parser.trace import STEPS, step_of
from tests.support.parse_corpus import classification

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def trace_line(msg: str, steps: object, duration: str = "300ms") -> str:
    return json.dumps(
        {
            "level": "info",
            "ts": "2026-12-07T03:54:00.376Z",
            "caller": "traceutil/trace.go:171",
            "msg": msg,
            "detail": "{key:/registry/pods/a; }",
            "duration": duration,
            "start": "2026-12-07T03:54:00.076Z",
            "end": "2026-12-07T03:54:00.376Z",
            "steps": steps,
        }
    )


def event(line: str) -> Event:
    result = parse_line(line)
    assert isinstance(result, Event), result
    return result


def test_steps_are_summed_per_step_in_a_fixed_order() -> None:
    got = event(
        trace_line(
            "trace[1] put",
            [
                "trace[1] 'marshal mvccpb.KeyValue'  (duration: 100ms)",
                "trace[1] 'process raft request'  (duration: 150ms)",
                "trace[1] 'get key's previous created_revision and leaseID'  (duration: 20ms)",
                "trace[1] 'store kv pair into bolt db'  (duration: 5ms)",
                "trace[1] 'something a later etcd logs'  (duration: 416.079µs)",
            ],
        )
    )
    assert got.kind is EventKind.SLOW_TRACE
    assert got.operation is Operation.PUT
    assert got.duration_seconds == pytest.approx(0.3)
    steps = dict(got.steps)
    assert [s for s, _ in got.steps] == [TraceStep.RAFT, TraceStep.INDEX, TraceStep.BOLT, "other"]
    assert steps[TraceStep.BOLT] == pytest.approx(0.105)
    assert steps[TraceStep.INDEX] == pytest.approx(0.02)  # the apostrophe is part of the text
    assert steps[TraceStep.OTHER] == pytest.approx(0.000416079)


def test_a_step_with_fields_and_one_of_another_shape() -> None:
    got = event(
        trace_line(
            "trace[7] range",
            [
                "trace[7] 'range keys from bolt db' {rev:3; } (duration: 12ms)",
                "trace[7] no quotes, no duration",
            ],
        )
    )
    assert got.steps == ((TraceStep.BOLT, pytest.approx(0.012)),)


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("range", Operation.RANGE),
        ("transaction", Operation.TXN),
        ("compact", Operation.COMPACTION),
        ("linearizableReadLoop", Operation.READ_INDEX),
        ("delete_range", Operation.DELETE_RANGE),
        ("lease_grant", Operation.OTHER),
    ],
)
def test_trace_operations(name: str, operation: Operation) -> None:
    assert event(trace_line(f"trace[3] {name}", [])).operation is operation


@pytest.mark.parametrize("steps", ["not a list", [1, 2], ["trace[1] 'compare'  (duration: x)"]])
def test_malformed_steps_are_unparsed(steps: object) -> None:
    assert parse_line(trace_line("trace[1] range", steps)) is UNPARSED


def test_a_trace_without_steps_has_none() -> None:
    line = trace_line("trace[1] range", None).replace(',"steps":null', "")
    assert event(line).steps == ()


def test_every_step_text_of_the_captured_logs_is_in_the_table() -> None:
    """The real etcd 3.4 and 3.5 traces name only steps of the table: nothing falls to other."""
    texts = set()
    for log in FIXTURES.glob("etcd-*/*.log"):
        for line in log.read_text(errors="replace").splitlines():
            texts.update(re.findall(r"trace\[\d+\] '(.*?)'  \(duration", line))
    assert len(texts) >= 12
    assert {step_of(t) for t in texts} <= set(TraceStep) - {TraceStep.OTHER}
    assert texts <= set(STEPS)


@pytest.mark.parametrize(
    ("line", "kind", "took"),
    [
        (
            '{"level":"info","ts":"2026-12-07T04:09:48.706Z","caller":"v3rpc/maintenance.go:82",'
            '"msg":"starting defragment"}',
            EventKind.DEFRAG_STARTED,
            None,
        ),
        (
            '{"level":"info","ts":"2026-12-07T04:10:06.553Z","caller":"backend/backend.go:475",'
            '"msg":"defragmented","path":"/db","current-db-size-bytes-diff":-1335296,'
            '"took":"3.856978562s"}',
            EventKind.DEFRAG_FINISHED,
            3.856978562,
        ),
        (
            '{"level":"info","ts":"2026-12-07T04:11:03.303Z","caller":"backend/backend.go:539",'
            '"msg":"finished defragmenting directory","path":"/db","took":"5.979856551s"}',
            EventKind.DEFRAG_FINISHED,
            5.979856551,
        ),
        (
            '{"level":"warn","ts":"2026-12-07T04:11:03.303Z","caller":"v3rpc/maintenance.go:91",'
            '"msg":"failed to defragment","error":"etcdserver: request timed out"}',
            EventKind.DEFRAG_FINISHED,
            None,
        ),
        (
            "2018-04-13 01:41:48.812722 N | etcdserver/api/v3rpc: starting to defragment the "
            "storage backend...",
            EventKind.DEFRAG_STARTED,
            None,
        ),
        (
            "2018-04-13 01:43:01.563374 N | etcdserver/api/v3rpc: finished defragmenting the "
            "storage backend",
            EventKind.DEFRAG_FINISHED,
            None,
        ),
        (
            "2018-04-13 01:43:01.563374 E | etcdserver/api/v3rpc: failed to defragment the "
            "storage backend (context canceled)",
            EventKind.DEFRAG_FINISHED,
            None,
        ),
    ],
)
def test_defrag_lines(line: str, kind: EventKind, took: float | None) -> None:
    got = event(line)
    assert got.kind is kind
    assert got.duration_seconds == took


@pytest.mark.parametrize(
    "line",
    [
        '{"level":"info","ts":"2026-12-07T04:09:48.709Z","caller":"backend/backend.go:403",'
        '"msg":"defragmenting","path":"/db","current-db-size-bytes":24965120}',
        '{"level":"info","ts":"2026-12-07T04:09:49.330Z","caller":"v3rpc/maintenance.go:96",'
        '"msg":"finished defragment"}',
        "2018-04-13 01:41:48.812722 N | etcdserver/api/v3rpc: starting to defragment soon",
    ],
)
def test_the_other_defrag_lines_are_of_no_interest(line: str) -> None:
    """One start and one end per defrag: the backend's start and the maintenance server's end
    would count each defrag twice."""
    assert parse_line(line) is None


# etcd 3.6 writes the 3.5 messages with other callers, µs timestamps, and the slow-request
# threshold from --warning-apply-duration (reference: txn/util.go, traceutil/trace.go:195).
CALLERS_36 = {
    r'"caller":"etcdserver/util\.go:\d+"': '"caller":"txn/util.go:94"',
    r'"caller":"traceutil/trace\.go:\d+"': '"caller":"traceutil/trace.go:195"',
    r'"caller":"etcdserver/raft\.go:\d+"': '"caller":"etcdserver/raft.go:388"',
    r'"caller":"wal/wal\.go:\d+"': '"caller":"wal/wal.go:846"',
}
THRESHOLD_36 = 0.25  # --warning-apply-duration=250ms


def as_36(line: str) -> str:
    """A 3.5 line as etcd 3.6 writes it."""
    for pattern, caller in CALLERS_36.items():
        line = re.sub(pattern, caller, line)
    line = re.sub(r'("ts":"[^"]*\.\d{3})Z"', r'\g<1>000Z"', line)
    if '"msg":"apply request took too long"' in line:
        line = line.replace('"expected-duration":"100ms"', '"expected-duration":"250ms"')
    return line


@pytest.mark.parametrize("name", ["trace-disk.log", "trace-peer.log", "sampling.log"])
def test_etcd_36_lines_give_the_events_of_35(name: str) -> None:
    lines = (FIXTURES / "etcd-3.5-zap" / name).read_text().splitlines()
    moved = 0
    for number, line in enumerate(lines, 1):
        line_36 = as_36(line)
        moved += line_36 != line
        want, got = classification(number, line), classification(number, line_36)
        if want["kind"] == "slow_request":
            assert want.pop("expected_seconds") == 0.1
            assert got.pop("expected_seconds") == THRESHOLD_36
        assert got == want, line_36
    assert moved > 100
