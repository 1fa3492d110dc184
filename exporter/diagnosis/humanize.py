"""Numbers for people: durations, counts, shares, ages. Pure; used by diagnose and `/`."""

from __future__ import annotations

import math


def seconds(value: float | None) -> str:
    """0.0021 → '2.1ms', 0.412 → '412ms', 1.5 → '1.5s', None → 'n/a'."""
    if value is None or math.isnan(value):
        return "n/a"
    if value >= 1:
        return f"{_sig(value)}s"
    if value >= 0.001:
        return f"{_sig(value * 1000)}ms"
    if value > 0:
        return f"{_sig(value * 1_000_000)}µs"
    return "0s"


def _sig(value: float) -> str:
    """Three significant digits without trailing zeros: 412.3 → '412', 2.104 → '2.1'."""
    if value >= 100:
        return f"{value:.0f}"
    text = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return text.rstrip("0").rstrip(".")


def span(value: float) -> str:
    """A window or an age: 30 → '30s', 90 → '1m30s', 3600 → '1h', 0.5 → '0.5s'."""
    if value < 60:
        return f"{_sig(value)}s"
    total = round(value)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = ((hours, "h"), (minutes, "m"), (secs, "s"))
    return "".join(f"{n}{unit}" for n, unit in parts if n)


def count(value: float) -> str:
    """1234 → '1,234'."""
    return f"{round(value):,}"


def share(value: float | None) -> str:
    """0.62 → '62%', 0.004 → '0.4%', None → 'n/a'."""
    if value is None:
        return "n/a"
    pct = value * 100
    if 0 < pct < 1:
        return f"{pct:.1f}%"
    return f"{pct:.0f}%"


def plural(n: float, word: str, many: str | None = None) -> str:
    """plural(1, 'fsync') → '1 fsync', plural(1234, 'fsync') → '1,234 fsyncs'."""
    return f"{count(n)} {word if round(n) == 1 else (many or word + 's')}"
