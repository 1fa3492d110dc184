"""Numbers for people: durations, counts, shares, ages. Pure; used by diagnose and `/`."""

from __future__ import annotations

from exporter.durations import format_duration, significant

# A latency: 0.0021 → '2.1ms', 0.412 → '412ms', 1.5 → '1.5s', None → 'n/a' (the one format,
# exporter.durations.format_duration, which `parse` prints too).
seconds = format_duration


def span(value: float) -> str:
    """A window or an age: 30 → '30s', 90 → '1m30s', 3600 → '1h', 0.5 → '0.5s'."""
    if value < 60:
        return f"{significant(value)}s"
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
