"""Go and Prometheus duration strings → seconds. Pure.

Go's `time.Duration.String()` writes composites such as `1m2.5s`, `416.079µs` (micro sign U+00B5
or Greek mu U+03BC), `13.95374909s`, `0s`; Prometheus flags add `d`, `w`, `y`. Numbers alone
are seconds (zap's float encoder and older etcd builds write them).
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
# The units below a second by the character before their `s` (`s` alone: seconds).
_SUFFIXES = {unit[0]: exponent for unit, exponent in EXPONENTS.items()}
_DIGITS = "0123456789."


def parse_duration(text: str | float | int) -> float:
    """Parse `1m2.5s`, `416.079µs`, `30s`, `0`, `0.25` or a number into seconds.

    Raises ValueError quoting the input when it is not a duration (also NaN and infinities).
    """
    if type(text) is str:  # the common case first: one unit ending in s, e.g. 13.95374909s
        seconds = single_unit(text)
        if seconds is not None:
            return seconds
    return _parse(text)


def _parse(text: str | float | int) -> float:
    """`parse_duration` of any input (the general path)."""
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
    single = _PART.fullmatch(s)  # the common case: one unit, e.g. 1.100583416s or 304ms
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


def single_unit(text: str) -> float | None:
    """`parse_duration` of the commonest forms, one unit ending in `s` (`13.95374909s`, `304ms`,
    `416.079µs`), without a regular expression: the number must be what `NUMBER` matches (digits
    and at most one dot, at least one digit), and the result is then what the general path gives.
    None for any other text (signs and spaces included), which only the general path parses."""
    if text[-1:] != "s":
        return None
    exponent = _SUFFIXES.get(text[-2:-1])
    number = text[:-2] if exponent is not None else text[:-1]
    if not number or number.strip(_DIGITS) or number.count(".") > 1 or number == ".":
        return None
    return float(number + exponent) if exponent is not None else float(number)


def _seconds(number: str, unit: str) -> float:
    exponent = EXPONENTS.get(unit)
    if exponent is not None:
        return float(number + exponent)
    return float(number) * _FACTORS[unit]


def format_duration(seconds: float) -> str:
    """A short human form: 412µs, 13.2ms, 1.25s, 2m3s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"
