"""Bad input: never an exception, UNPARSED where the line is no etcd line; property and fuzz tests.

The fuzz test mutates every captured fixture line with a seeded random mutator for a fixed budget
of iterations, so it is bounded in time and reproducible.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.commands.parse.bulk import is_boring
from exporter.model import Event, EventKind
from exporter.parser import MAX_LINE_LENGTH, UNPARSED, Unparsed, parse_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SLOW_FSYNC = (
    '{"level":"warn","ts":"2023-03-03T01:45:11.871Z","caller":"wal/wal.go:805","msg":"slow '
    'fdatasync","took":"1.044022245s","expected-duration":"1s"}'
)
INFO = '{"level":"info","ts":"2023-03-03T01:45:11.871Z","caller":"x/y.go:1","msg":"hello","a":1}'


def fixture_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(FIXTURES.glob("etcd-*/*.log")):
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines


def classify(line: str) -> Event | Unparsed | None:
    result = parse_line(line)
    assert result is None or result is UNPARSED or isinstance(result, Event)
    return result


@pytest.mark.parametrize(
    "line",
    [
        "",
        " ",
        "garbage",
        "\x00\x01\x02\xff",
        b"\xff\xfe{\x80 binary".decode("utf-8", "replace"),
        "{",
        "}",
        "[]",
        '"just a string"',
        "{}",
        "null",
        '{"level":"warn"}',  # no msg
        '{"msg":"slow fdatasync"}',  # no level
        SLOW_FSYNC[:-1],  # truncated
        SLOW_FSYNC[:60],
        SLOW_FSYNC.replace('"1.044022245s"', "[]"),  # took: []
        SLOW_FSYNC.replace('"1.044022245s"', '"soon"'),
        SLOW_FSYNC.replace('"1.044022245s"', "-1"),
        SLOW_FSYNC.replace('"1.044022245s"', "NaN"),
        SLOW_FSYNC.replace('"1.044022245s"', "Infinity"),
        SLOW_FSYNC.replace('"1.044022245s"', "true"),
        SLOW_FSYNC.replace('"slow fdatasync"', "5"),  # msg: 5
        SLOW_FSYNC.replace('"2023-03-03T01:45:11.871Z"', "{}"),  # ts: {}
        SLOW_FSYNC.replace('"2023-03-03T01:45:11.871Z"', '"yesterday"'),
        SLOW_FSYNC.replace('"2023-03-03T01:45:11.871Z"', "1e300"),
        SLOW_FSYNC.replace('"2023-03-03T01:45:11.871Z"', '"2023-13-45T99:99:99Z"'),
        SLOW_FSYNC.replace('"1s"', '{"a":1}'),  # expected-duration of the wrong type
        SLOW_FSYNC.replace('"warn"', "7"),
        INFO[:-1],  # a truncated info line
        INFO.replace('"2023-03-03T01:45:11.871Z"', "{}"),
        '{"level":"warn","ts":"2022-05-10T04:41:55.246Z","msg":"apply request took too long",'
        '"took":"1s","request":5}',
        '{"level":"warn","ts":"2022-05-10T04:41:55.246Z","msg":"apply request took too long"}',
        "[" * 100_000 + "]" * 100_000,
        "{" + '"a":' * 50_000 + "1" + "}" * 50_000,
        "2021-01-01 00:00:00.000001 W | etcdserver: sync duration of 1.1xs, expected less than 1s",
        "2021-13-01 00:00:00.000001 W | wal: sync duration of 1.1s, expected less than 1s",
        "raft2022/13/06 07:21:50 INFO: raft.node: 1 elected leader 1 at term 3",
        "2025-11-16T00:15:22.266350Z\twarn\tx\tslow fdatasync\t[1, 2]",
        "2025-11-16T00:15:22.266350Z\twarn\tx\tslow fdatasync\t{not json}",
        "2019-03-06T19:00:59.117515322Z ",
        "2019-03-06T19:00:59.117515322Z \x00\x00",
        "x" * (MAX_LINE_LENGTH + 1),
        INFO[:-1] + " " * MAX_LINE_LENGTH + "}",
    ],
)
def test_bad_lines_are_unparsed(line: str) -> None:
    assert classify(line) is UNPARSED


def test_ten_megabyte_line() -> None:
    line = '{"level":"warn","msg":"slow fdatasync","took":"' + "9" * 10_000_000 + '"}'
    assert classify(line) is UNPARSED


def test_invalid_utf8_after_replacement() -> None:
    raw = SLOW_FSYNC.encode().replace(b"wal/wal.go", b"wal/\xc3\x28\xff.go")
    e = classify(raw.decode("utf-8", "replace"))
    assert isinstance(e, Event)
    assert e.kind is EventKind.SLOW_FDATASYNC


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text(line: str) -> None:
    classify(line)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    classify(data.decode("utf-8", "replace"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
MESSAGES = [
    "apply request took too long",
    "slow fdatasync",
    "request stats",
    "prober found high clock drift",
    "snapshotting taking too long to transfer",
    "trace[1] range",
    "raft.node: 1 elected leader 2 at term 3",
    "hello",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(MESSAGES) | json_values,
    st.sampled_from(["warn", "info", "debug"]) | json_values,
    st.dictionaries(
        st.sampled_from(
            [
                "ts",
                "took",
                "expected-duration",
                "prefix",
                "request",
                "error",
                "duration",
                "time spent",
                "clock-drift",
                "taking",
                "exceeded-duration",
                "retry-timeout",
            ]
        ),
        json_values,
    ),
)
def test_json_with_arbitrary_values(msg: object, level: object, fields: dict[str, object]) -> None:
    line = json.dumps({"level": level, "msg": msg, **fields})
    result = classify(line)
    if isinstance(result, Event) and result.duration_seconds is not None:
        assert result.duration_seconds >= 0


FIXTURE_LINES = fixture_lines()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIXTURE_LINES or [INFO]), st.data())
def test_real_lines_with_arbitrary_splices(line: str, data: st.DataObject) -> None:
    """A captured line with a random slice replaced by arbitrary text."""
    i = data.draw(st.integers(0, len(line)))
    j = data.draw(st.integers(i, len(line)))
    result = classify(line[:i] + data.draw(st.text(max_size=30)) + line[j:])
    if isinstance(result, Event) and result.duration_seconds is not None:
        assert result.duration_seconds >= 0


def _mutate(rng: random.Random, line: str) -> str:
    """One random edit: delete, duplicate, insert junk, truncate, swap or flip a character."""
    if not line:
        return chr(rng.randrange(0x110000 - 0x800))
    i = rng.randrange(len(line))
    j = rng.randrange(i, min(len(line), i + 40) + 1)
    junk = rng.choice(['"', "\\", "{", "}", "\x00", "\ufffd", "µ", " ", "\t", "9", ":", "["])
    edits = [
        line[:i] + line[j:],
        line[:j] + line[i:],
        line[:i] + junk + line[i:],
        line[:i],
        line[i:],
        line[:i] + line[i:j][::-1] + line[j:],
        line[:i] + chr(ord(line[i]) ^ (1 << rng.randrange(7))) + line[i + 1 :],
    ]
    return rng.choice(edits)


def test_fuzz_mutated_fixture_lines() -> None:
    """50,000 mutations of real lines (seeded): no exception, and only the three outcomes."""
    lines = FIXTURE_LINES
    assert lines, "no fixtures captured"
    rng = random.Random(20260105)
    for _ in range(50_000):
        line = rng.choice(lines)
        for _ in range(rng.randrange(1, 4)):
            line = _mutate(rng, line)
        result = classify(line)
        if isinstance(result, Event):
            assert result.duration_seconds is None or result.duration_seconds >= 0
            if result.resource is not None:
                assert result.resource == "other" or len(result.resource) <= 63


def test_bulk_prefilter_agrees_with_parse_line() -> None:
    """Every line the raw-bytes pre-filter skips is one parse_line calls of no interest."""
    rng = random.Random(7)
    samples = list(FIXTURE_LINES)
    samples += [_mutate(rng, rng.choice(samples)) for _ in range(20_000)]
    samples += [INFO, "2019-03-06T19:00:59.117515322Z " + INFO, INFO + " ", INFO[:-1]]
    skipped = 0
    for line in samples:
        raw = line.encode("utf-8", "surrogatepass")
        if is_boring(raw):
            skipped += 1
            assert parse_line(raw.decode("utf-8", "replace")) is None, line
    assert skipped > 100


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_bulk_prefilter_on_arbitrary_bytes(data: bytes) -> None:
    raw = INFO.encode()[:40] + data
    if is_boring(raw):
        assert parse_line(raw.decode("utf-8", "replace")) is None


@pytest.mark.parametrize(
    "body",
    [
        '\\"' * 60_000,
        '"' * 120_000,
        "\\" * 120_000,
        "a" * 120_000,
        "<" * 60_000 + '"' + ">" * 60_000,
    ],
    ids=["escaped-quotes", "quotes", "backslashes", "letters", "brackets"],
)
def test_long_adversarial_lines_stay_fast(body: str) -> None:
    """Lines just under the length limit, shaped to make regular expressions backtrack."""
    lines = [
        f'2021-01-01 00:00:00.000001 W | etcdserver: request "header:<{body}" with result "'
        f'{body}" took too long (1s) to execute',
        "2021-01-01 00:00:00.000001 W | rafthttp: health check for peer x could not connect: "
        + body,
        '{"level":"warn","ts":"2021-01-01T00:00:00Z","msg":"apply request took too long",'
        f'"took":"1s","request":"header:<{body}"}}',
        f"Dec 09 23:19:56 host etcd[1]: {body}",
        f"2019-03-06T19:00:59.117515322Z {body}",
    ]
    start = time.perf_counter()
    for line in lines:
        assert len(line) <= MAX_LINE_LENGTH
        classify(line)
    assert time.perf_counter() - start < 5
