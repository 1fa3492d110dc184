"""Go and Prometheus durations → seconds."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.durations import format_duration, parse_duration, parse_general
from exporter.parser.events import BadLine, duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("13.95374909s", 13.95374909),
        ("416.079µs", 0.000416079),  # U+00B5, as Go writes it
        ("416.079μs", 0.000416079),  # U+03BC
        ("416.079us", 0.000416079),
        ("10.198201ms", 0.010198201),
        ("304ms", 0.304),
        ("1m29.239296422s", 89.239296422),
        ("1m2.5s", 62.5),
        ("1h2m3.5s", 3723.5),
        ("8m0.640985013s", 480.640985013),
        ("250ns", 250e-9),
        ("0s", 0.0),
        ("0", 0.0),
        ("0.25", 0.25),
        ("1e3", 1000.0),
        (".5s", 0.5),
        ("2d", 172800.0),
        ("1w", 604800.0),
        (" 30s ", 30.0),
        ("-1.5s", -1.5),
        (0.101501094, 0.101501094),
        (3, 3.0),
    ],
)
def test_parses(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


def test_sub_second_units_are_exact_as_written() -> None:
    # Multiplying by 1e-3 would give 0.010198200999999999.
    assert parse_duration("10.198201ms") == 0.010198201
    assert parse_duration("416.079µs") == 0.000416079


@pytest.mark.parametrize(
    "bad",
    ["", " ", "s", "ms", "1.2.3s", "1x", "abc", "1_0", "٣s", "inf", "nan", "1e400", "--1s", "1s2"],
)
def test_rejects_strings(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [True, False, float("nan"), float("inf"), -1, -0.5])
def test_rejects_numbers(bad: float) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=999_999))
def test_go_style_composites(minutes: int, micros: int) -> None:
    text = f"{minutes}m{micros}µs"
    assert parse_duration(text) == pytest.approx(minutes * 60 + micros / 1e6)


@given(st.text(max_size=30))
def test_never_raises_anything_but_value_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.000412, "412µs"),
        (0.0132, "13.2ms"),
        (0.1, "100ms"),
        (1.25, "1.25s"),
        (2.0, "2s"),
        (123.0, "2m3s"),
        (120.2, "2m"),
        (0.0, "0s"),
        (None, "n/a"),
        (float("nan"), "n/a"),
    ],
)
def test_format(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_seconds_and_below_read_as_the_patterns_read_them() -> None:
    """The regex-free reading of `…s`, `…ms`, `…µs`, `…ns` gives what the patterns give, on
    random texts of the pieces durations are made of (and some that are not)."""
    rng = random.Random(3)
    pieces = ["0", "1", "9", ".", "s", "ms", "µs", "μs", "us", "ns", "m", "h", "e", "+", "-", " ",
              "٣", "²", "_", "x"]  # fmt: skip
    fast = 0
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 7)))

        def outcome(read: Callable[[str], float], text: str = text) -> float | str:
            try:
                return read(text)
            except ValueError:
                return "error"

        got = outcome(parse_duration)
        assert got == outcome(parse_general), text
        fast += isinstance(got, float) and text.endswith("s") and text[:1].isdigit()
    assert fast > 100  # the regex-free reading was taken, not only refused


class _Text(str):
    """A `str` subclass: a duration field need not be a plain `str`."""


def test_a_duration_field_reads_as_parse_duration_checked() -> None:
    """`events.duration` tries etcd's own form first: the same value or the same refusal as
    `parse_duration` with its finite, non-negative check, on random texts, a `str` subclass,
    numbers and other types."""
    rng = random.Random(5)
    pieces = ["0", "1", "9", ".", "s", "ms", "µs", "us", "ns", "m", "e", "-", " ", "٣", "9" * 400]
    texts: list[object] = [
        "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 6))) for _ in range(5_000)
    ]
    texts += [_Text("1.5ms"), _Text("2m"), 0, 2.5, -1, float("inf"), True, None, [], b"1s"]

    def expected(value: object) -> float | str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            return "bad"
        try:
            seconds = parse_duration(value)
        except ValueError:
            return "bad"
        return seconds if math.isfinite(seconds) and seconds >= 0 else "bad"

    for value in texts:
        try:
            got: float | str = duration(value)
        except BadLine:
            got = "bad"
        assert got == expected(value), value
    assert duration(_Text("1.5ms")) == 0.0015
