"""`parse --output summary`: the Summary as a readable table. Pure."""

from __future__ import annotations

from exporter.commands.parse.summary import QUANTILES, LogHistogram, Summary
from exporter.durations import format_duration
from exporter.texttable import text_table

_TOP_RESOURCES = 20


def render(summary: Summary) -> str:
    """The summary as plain text, one section per block."""
    blocks = [_totals(summary), _kinds(summary)]
    if summary.operations:
        blocks += [_operations(summary), _resources(summary)]
    return "\n\n".join(blocks) + "\n"


def _totals(summary: Summary) -> str:
    rows = [
        ("lines read", f"{summary.lines:,}"),
        ("lines unparsed", f"{summary.unparsed:,}"),
        ("events", f"{summary.events:,}"),
        ("first event", summary.first.isoformat() if summary.first else "-"),
        ("last event", summary.last.isoformat() if summary.last else "-"),
    ]
    return "\n".join(f"{name:<16}{value}" for name, value in rows)


def _kinds(summary: Summary) -> str:
    kinds = summary.kinds
    if not kinds:
        return "no events"
    header = ["events by kind", "count", *(f"p{round(q * 100)}" for q in QUANTILES), "max"]
    rows = [header]
    for kind, count in kinds.most_common():
        rows.append([kind, f"{count:,}", *_duration_cells(summary.durations.get(kind))])
    return text_table(rows, numbers_from=1) + "\n(percentiles estimated within 1 %; max exact)"


def _duration_cells(hist: LogHistogram | None) -> list[str]:
    if hist is None or hist.count == 0:
        return ["-"] * (len(QUANTILES) + 1)
    values = [hist.quantile(q) for q in QUANTILES] + [hist.maximum]
    return [format_duration(v) if v is not None else "-" for v in values]


def _operations(summary: Summary) -> str:
    rows = [["slow requests by operation", "count", "read-only"]]
    for op, count in summary.operations.most_common():
        rows.append([op, f"{count:,}", f"{summary.read_only.get(op, 0):,}"])
    return text_table(rows, numbers_from=1)


def _resources(summary: Summary) -> str:
    rows = [["slow requests by resource", "count"]]
    common = summary.resources.most_common()
    for resource, count in common[:_TOP_RESOURCES]:
        rows.append([resource, f"{count:,}"])
    rest = sum(count for _, count in common[_TOP_RESOURCES:])
    if rest:
        rows.append([f"({len(common) - _TOP_RESOURCES} more)", f"{rest:,}"])
    return text_table(rows, numbers_from=1)
