"""Resuming a pod log: timestamp prefixes (`exporter.parser.prefix`) and the cursor's
exactly-once rule (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from exporter.parser.prefix import PrefixClock, ns_time, prefix_ns, split_kubelet_prefix
from exporter.sources.resume import NS, WINDOW_NS, Cursor


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("2026-11-21T05:30:12.033818000Z", datetime(2026, 11, 21, 5, 30, 12, tzinfo=UTC)),
        ("2026-11-21T05:30:12Z", datetime(2026, 11, 21, 5, 30, 12, tzinfo=UTC)),
        ("2026-11-21T07:30:12.5+02:00", datetime(2026, 11, 21, 5, 30, 12, tzinfo=UTC)),
    ],
)
def test_prefix_ns(prefix: str, expected: datetime) -> None:
    got = prefix_ns(prefix)
    assert got is not None
    assert got // NS == int(expected.timestamp())
    assert PrefixClock().split(prefix + " text") == (got, "text")
    assert ns_time(got) == expected.replace(microsecond=got // 1000 % 1_000_000)


def test_prefix_keeps_nanoseconds() -> None:
    a = prefix_ns("2026-11-21T05:30:12.000000001Z")
    b = prefix_ns("2026-11-21T05:30:12.000000002Z")
    assert a is not None
    assert b is not None
    assert b - a == 1


@pytest.mark.parametrize(
    "bad",
    ["", "garbage", "2026-13-40T99:99:99Z", "2026-11-21T05:30:12.Z", "2026-11-21T05:30:12+0200"],
)
def test_prefix_rejects_garbage(bad: str) -> None:
    assert prefix_ns(bad) is None
    assert PrefixClock().split(bad + " text") == (None, bad + " text")


def test_the_clock_remembers_a_bounded_number_of_seconds() -> None:
    """The clock gives what `prefix_ns` gives, from its memory of whole seconds too, and forgets
    them all once it holds `size` of them."""
    clock = PrefixClock(size=3)
    rng = random.Random(5)
    for _ in range(200):
        prefix = f"2026-11-21T05:30:{rng.randrange(6):02d}.{rng.randrange(10**9):09d}Z"
        assert clock.split(f"{prefix} x") == (prefix_ns(prefix), "x")
        assert len(clock._seconds) <= 3
    bad = "2026-13-40T05:30:12Z x"
    assert clock.split(bad) == (None, bad)  # remembered as no time, still none
    assert clock.split(bad) == (None, bad)


def _split_by_the_rule(line: str) -> tuple[int | None, str]:
    prefix, text = split_kubelet_prefix(line)
    ns = None if prefix is None else prefix_ns(prefix)
    return (None, line) if ns is None else (ns, text)


def test_the_clock_splits_as_the_rule_does_on_damaged_prefixes() -> None:
    """The fixed-width path (seconds remembered, nine digits, `Z `) never takes a line the
    prefix pattern would not: damaged copies of remembered prefixes, each read twice (the second
    time from memory), split exactly as `split_kubelet_prefix` and `prefix_ns` do."""
    clock = PrefixClock()
    rng = random.Random(11)
    pieces = ["", " ", "Z", "z", ".", "x", "٣", "²", "0", "9", "+", "-", ":", "T", "\n", "é"]
    good = "2026-11-21T05:30:12.033818001Z "
    for _ in range(3000):
        chars = list(good)
        for _ in range(rng.randrange(3)):
            chars[rng.randrange(len(chars))] = rng.choice(pieces)
        line = "".join(chars) + rng.choice(["", "{}", " text", '{"level":"warn"}'])
        for _ in range(2):
            assert clock.split(good + "seen") == (prefix_ns(good[:-1]), "seen")
            assert clock.split(line) == _split_by_the_rule(line), line


def test_floor_drops_older_lines() -> None:
    cursor = Cursor(floor_ns=100)
    assert cursor.accept(99, "old") is False
    assert cursor.accept(100, "new") is True


def test_resume_drops_exactly_what_was_seen() -> None:
    cursor = Cursor(floor_ns=0)
    base = 10 * NS
    lines = [(base + i, f"l{i}") for i in range(10)]
    for ts, text in lines[:6]:
        assert cursor.accept(ts, text)
    cursor.resume()
    # The reopened stream starts before the last line seen and repeats it.
    delivered = [text for ts, text in lines if cursor.accept(ts, text)]
    assert delivered == ["l6", "l7", "l8", "l9"]


def test_identical_lines_with_identical_timestamps_count_once_each() -> None:
    cursor = Cursor(floor_ns=0)
    assert cursor.accept(5 * NS, "same")
    assert cursor.accept(5 * NS, "same")
    cursor.resume()
    replay = [(5 * NS, "same"), (5 * NS, "same"), (5 * NS, "same")]
    assert [cursor.accept(ts, t) for ts, t in replay] == [False, False, True]


def test_lines_older_than_the_window_are_dropped_without_memory() -> None:
    cursor = Cursor(floor_ns=0)
    for i in range(1000):
        cursor.accept(i * 10_000_000, f"l{i}")  # 10 ms apart, 10 s in all
    assert len(cursor._window) <= WINDOW_NS // 10_000_000 + 1
    cursor.resume()
    assert cursor.accept(1 * NS, "l100") is False


def test_random_cuts_give_exactly_once() -> None:
    rng = random.Random(7)
    lines = [(NS + i * rng.randint(0, 3_000_000), f"line {i % 17}") for i in range(3000)]
    lines.sort(key=lambda x: x[0])
    cursor = Cursor(floor_ns=0)
    out: list[tuple[int, str]] = []
    pos = 0
    while pos < len(lines):
        cut = min(len(lines), pos + rng.randint(1, 200))
        for ts, text in lines[pos:cut]:
            if cursor.accept(ts, text):
                out.append((ts, text))
        # reconnect: the API resends from up to a few seconds before the last line
        back = max(0, cut - rng.randint(0, 300))
        cursor.resume()
        pos = back
        for ts, text in lines[back:cut]:
            assert not cursor.accept(ts, text)
        pos = cut
    assert out == lines


def test_since_seconds_reaches_back_to_the_last_line() -> None:
    cursor = Cursor(floor_ns=100 * NS)
    assert cursor.since_seconds(130 * NS, slack=5) == 35
    cursor.accept(125 * NS + 1, "x")
    assert cursor.since_seconds(130 * NS, slack=5) == 10
    assert cursor.since_seconds(125 * NS, slack=0) == 1
