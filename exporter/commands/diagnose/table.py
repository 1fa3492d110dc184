"""`diagnose`'s table: one row per member, then the reasons and a summary line. Pure."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

from exporter.diagnosis import humanize as h
from exporter.diagnosis.classmedian import ratio_cell
from exporter.diagnosis.details import details
from exporter.diagnosis.histogram import Latency
from exporter.diagnosis.report import EtcdReport, code_rank
from exporter.diagnosis.verdict import DiskEvidence, LogEvidence, p99_text, slow_count_cell
from exporter.model import SOURCE_ETCD
from exporter.texttable import text_table

COLUMNS = (
    "SHOOT",
    "ETCD",
    "POD",
    "STORAGE CLASS",
    "DISK",
    "EXPECTED",
    "FSYNC P99",
    "COMMIT P99",
    "× CLASS MEDIAN",
    "SLOW REQUESTS",
    "VERDICT",
)


def render_table(reports: Sequence[EtcdReport], *, window: float, since: float) -> str:
    """The table, then one reason (and remedy) line per member, then a summary line."""
    lines = [text_table([COLUMNS, *(_row(r) for r in reports)]), ""]
    for r in reports:
        lines.append(f"{_name(r)}: {r.verdict.code}: {clean(r.verdict.reason)}")
        lines.extend(f"  {d.label}: {clean(d.text)}" for d in details(r))
    lines.append("")
    sources = sorted({r.target.scrape.source for r in reports if r.target.scrape is not None})
    if any(source != SOURCE_ETCD for source in sources):
        lines.append(f"relayed etcd metrics read from: {', '.join(sources)} (--scrape.source)")
    lines.append(_summary_line(reports, window=window, since=since))
    return "\n".join(lines) + "\n"


def _row(r: EtcdReport) -> tuple[str, ...]:
    ident, vol = r.target.identity, r.target.volume
    return tuple(
        clean(v) or "-"
        for v in (
            ident.shoot or ident.namespace,
            ident.etcd,
            ident.pod or r.target.key,
            vol.storage_class,
            vol.disk_class,
            vol.expected_storage_class,
            _p99(r.disk.fsync, r.disk),
            _p99(r.disk.commit, r.disk),
            ratio_cell(r.class_standing),
            _slow_cell(r.logs),
            str(r.verdict.code),
        )
    )


def _name(r: EtcdReport) -> str:
    ident = r.target.identity
    if ident.namespace and ident.pod:
        return clean(f"{ident.namespace}/{ident.pod}")
    return clean(ident.pod or r.target.key)


def _p99(lat: Latency | None, disk: DiskEvidence) -> str:
    if disk.reachable is False:
        return "unreachable"
    return p99_text(lat)


def _slow_cell(logs: LogEvidence) -> str:
    top = f" {logs.top_operation}/{logs.top_resource or 'other'}" if logs.top_operation else ""
    return f"{slow_count_cell(logs, short=True)}{top}"


def _summary_line(reports: Sequence[EtcdReport], *, window: float, since: float) -> str:
    counts = Counter(str(r.verdict.code) for r in reports)
    parts = ", ".join(f"{n} {code}" for code, n in sorted(counts.items(), key=code_rank))
    return (
        f"{h.plural(len(reports), 'etcd member')}: {parts or 'none'} "
        f"(window {h.span(window)}, logs of the last {h.span(since)})"
    )


def clean(text: str) -> str:
    """Replace control and other non-printable characters (a hostile label cannot drive the
    terminal)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or unicodedata.category(c) == "Zs" else "?" for c in text)
