"""Go and Prometheus duration strings → seconds. Pure.

Go's `time.Duration.String()` writes composites such as `1m2.5s`, `416.079µs` (micro sign U+00B5
or Greek mu U+03BC), `13.95374909s`, `0s`; Prometheus flags add `d`, `w`, `y`. Numbers alone
are seconds (zap's float encoder and older etcd builds write them). `format_duration` is the
other way: the one human form of a duration the project prints.
"""

from __future__ import annotations

import math
import re

# Units below a second shift the decimal exponent, so that `10.198201ms` gives 0.010198201 exactly
# as written (multiplying by 1e-3, which has no exact binary form, would not); others multiply.
EXPONENTS = {"ns": "e-9", "us": "e-6", "µs": "e-6", "μs": "e-6", "ms": "e-3"}
_FACTORS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"  # the number before a unit
_PART = re.compile(rf"({NUMBER})(ns|us|µs|μs|ms|s|m|h|d|w|y)")
_WHOLE = re.compile(rf"(?:{NUMBER}(?:ns|us|µs|μs|ms|s|m|h|d|w|y))+")
_SECONDS = re.compile(rf"{NUMBER}(?:[eE][+-]?[0-9]+)?")


def parse_duration(text: str | float | int) -> float:
    """Parse `1m2.5s`, `416.079µs`, `30s`, `0`, `0.25` or a number into seconds.

    Raises ValueError quoting the input when it is not a duration (also NaN and infinities).
    """
    if type(text) is str:  # the commonest form first: seconds or below, e.g. 1.39s or 304.1ms
        seconds = seconds_or_below(text)
        if seconds is not None:
            return seconds
    return parse_general(text)


def seconds_or_below(text: str) -> float | None:
    """A duration of one unit of a second or below (`13.95374909s`, `304ms`, `416.079µs`: what
    etcd's log lines hold), read without a regular expression: the number must be ASCII digits
    with at most one point, as `NUMBER` says; None for any other text (`parse_general` decides)."""
    exponent = EXPONENTS.get(text[-2:])  # every unit below a second is two characters
    if exponent is not None:
        number = text[:-2]
    elif text[-1:] == "s":
        number, exponent = text[:-1], ""
    else:
        return None
    if not (number.isascii() and number.replace(".", "", 1).isdigit()):
        return None
    return float(number + exponent) if exponent else float(number)


def parse_general(text: str | float | int) -> float:
    """`parse_duration` of every form, without trying `seconds_or_below` first."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"not a duration: {text!r}")
        return float(text)
    s = text.strip()
    sign = 1.0
    if s and s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if not s:
        raise ValueError(f"not a duration: {text!r}")
    single = _PART.fullmatch(s)
    if single is not None:
        return sign * _seconds(single.group(1), single.group(2))
    if _SECONDS.fullmatch(s) is not None:
        value = float(s)
        if not math.isfinite(value):
            raise ValueError(f"not a duration: {text!r}")
        return sign * value
    if _WHOLE.fullmatch(s) is None:
        raise ValueError(f"not a duration: {text!r}")
    return sign * sum(_seconds(num, unit) for num, unit in _PART.findall(s))


def _seconds(number: str, unit: str) -> float:
    exponent = EXPONENTS.get(unit)
    if exponent is not None:
        return float(number + exponent)
    return float(number) * _FACTORS[unit]


def format_duration(seconds: float | None) -> str:
    """The one human form of a duration (`parse`, `diagnose`, the status page): three
    significant digits in the largest unit below the value — 412µs, 13.2ms, 100ms, 1.25s —
    then minutes and whole seconds (2m3s); 0s; n/a for None or NaN."""
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if seconds >= 60:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if seconds >= 1:
        return f"{significant(seconds)}s"
    if seconds >= 0.001:
        return f"{significant(seconds * 1000)}ms"
    if seconds > 0:
        return f"{significant(seconds * 1_000_000)}µs"
    return "0s"


def significant(value: float) -> str:
    """Three significant digits without trailing zeros: 412.3 → '412', 2.104 → '2.1'."""
    if value >= 100:
        return f"{value:.0f}"
    text = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return text.rstrip("0").rstrip(".")
