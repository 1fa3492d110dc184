"""Go and Prometheus duration strings → seconds. Pure.

Go's `time.Duration.String()` writes composites such as `1m2.5s`, `416.079µs` (micro sign U+00B5
or Greek mu U+03BC), `13.95374909s`, `0s`; Prometheus flags add `d`, `w`, `y`. Numbers alone
are seconds (zap's float encoder and older etcd builds write them).
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN (Go's spelling)
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h|d|w|y))+")


def parse_duration(text: str | float | int) -> float:
    """Parse `1m2.5s`, `416.079µs`, `30s`, `0`, `0.25` or a number into seconds.

    Raises ValueError quoting the input when it is not a duration.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text != text or text < 0:  # NaN or negative
            raise ValueError(f"not a duration: {text!r}")
        return float(text)
    s = text.strip()
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if not s:
        raise ValueError(f"not a duration: {text!r}")
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a duration: {text!r}")
        return sign * value
    if _WHOLE.fullmatch(s) is None:
        raise ValueError(f"not a duration: {text!r}")
    return sign * sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(s))


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
