"""The status page `/` and `/api/targets`: every target, its state, volume and verdict.

Rendering is pure (`render_page`, `targets_json`); the aiohttp handlers only read the clock and
the store. Every value that came from the cluster or a targets file goes through `html.escape`.
The page is plain HTML with inline CSS, no scripts and no external assets, and refreshes itself.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from exporter import __version__
from exporter.diagnosis import humanize as h
from exporter.diagnosis.classmedian import ratio_cell
from exporter.diagnosis.details import details
from exporter.diagnosis.evidence import last_slow_event, live_reports
from exporter.diagnosis.report import EtcdReport, etcd_json
from exporter.diagnosis.verdict import VerdictCode, p99_text, slow_count_cell
from exporter.model import SOURCE_ETCD
from exporter.state import Store, TargetState

REFRESH_SECONDS = 15
Row = tuple[EtcdReport, TargetState]

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1b1f23}
h1{font-size:1.4em;margin:0 0 .2em}
.meta{color:#586069;margin:0 0 .8em}
nav a{margin-right:1em}
.summary span{display:inline-block;margin:.6em .6em .8em 0}
table{border-collapse:collapse;width:100%}
th,td{padding:.3em .5em;text-align:left;vertical-align:top}
tbody{border-bottom:1px solid #d1d5da}
td{overflow-wrap:anywhere}td.wrap{min-width:8em}
th{background:#f6f8fa;position:sticky;top:0;font-weight:600}
td.num{text-align:right;white-space:nowrap}
td.why{white-space:normal;padding-top:0;color:#24292e}
.pod{font-weight:600}.remedy{color:#586069}.where{color:#6a737d;font-size:.9em}
.cause{color:#cb2431;font-weight:600}
.badge{border-radius:3px;padding:.1em .45em;font-weight:600;white-space:nowrap;color:#fff}
.v-slow-disk{background:#cb2431}.v-hdd-storage{background:#d73a49}
.v-storage-class-mismatch{background:#e36209}.v-slow-requests-not-disk{background:#b08800}
.v-unreachable{background:#6a737d}.v-pending{background:#959da5}.v-ok{background:#28a745}
.down{color:#cb2431;font-weight:600}.up{color:#22863a}
.empty{color:#586069;padding:2em 0}
"""


def render_page(
    rows: Sequence[Row], *, now: float, ready: bool, telemetry_path: str = "/metrics"
) -> str:
    """The whole HTML document."""
    generated = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>etcd-latency-exporter</title><style>{CSS}</style></head><body>"
    )
    meta = (
        f'<p class="meta">version {_e(__version__)} · {h.plural(len(rows), "target")} · '
        f"{'ready' if ready else 'not ready yet'} · {generated} · "
        f"refreshes every {REFRESH_SECONDS}s</p>"
    )
    # relative links, so that the page also works behind a path prefix (kubectl proxy)
    nav = "".join(
        f'<a href="{_e(_relative(p))}">{_e(p)}</a>'
        for p in (telemetry_path, "/api/targets", "/healthz")
    )
    body = _table(rows, now=now) if rows else '<p class="empty">No targets discovered.</p>'
    return (
        f"{head}<h1>etcd-latency-exporter</h1>{meta}<nav>{nav}</nav>"
        f"{_summary(rows)}{body}</body></html>\n"
    )


HEADERS = (
    "Verdict", "Member", "Scrape", "Log stream", "Volume", "fsync p99", "commit p99",
    "× class median", "Slow requests", "Last slow event",
)  # fmt: skip


def _table(rows: Sequence[Row], *, now: float) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in HEADERS)
    body = "".join(_rows(report, state, now=now) for report, state in rows)
    return f"<table><thead><tr>{head}</tr></thead>{body}</table>"


def _rows(r: EtcdReport, state: TargetState, *, now: float) -> str:
    """Two rows per target in one <tbody>: the facts, then the reason, remedy and volume."""
    ident, vol = r.target.identity, r.target.volume
    member = f"{ident.shoot or ident.namespace or '-'} · {ident.etcd or '-'}"
    volume = f"{vol.storage_class or '-'} ({vol.disk_class})"
    expected = ""
    if vol.expected_storage_class:
        expected = f"expected {vol.expected_storage_class}"
        expected += f" (from {vol.expected_from})" if vol.expected_from else ""
    cells = (
        _badge(r.verdict.code),
        f'{_e(member)}<br><span class="pod">{_e(ident.pod or r.target.key)}</span>'
        + _member_state(r, state),
        _scrape_cell(state, now=now),
        _stream_cell(state),
        f"{_e(volume)}<br>{_e(expected)}",
    )
    nums = (
        _e(p99_text(r.disk.fsync)),
        _e(p99_text(r.disk.commit)),
        _e(ratio_cell(r.class_standing)),
        _e(_slow_text(r)),
    )
    tds = "".join(f"<td>{c}</td>" for c in cells)
    tds += "".join(f'<td class="num">{c}</td>' for c in nums)
    tds += f'<td class="wrap">{_last_slow_cell(state, now=now)}</td>'
    why = _e(r.verdict.reason)
    for d in details(r, disk_in_volume=False):  # the disk goes with the PVC and PV below
        why += f'<br><span class="{DETAIL_CSS[d.label]}">{_e(d.label)}: {_e(d.text)}</span>'
    where = f"PVC {vol.pvc or '-'} · PV {vol.pv or '-'} · key {r.target.key}"
    where += f" · disk {vol.volume_handle}" if vol.volume_handle else ""
    why += f'<br><span class="where">{_e(where)}</span>'
    detail = f'<td></td><td class="why" colspan="{len(HEADERS) - 1}">{why}</td>'
    return f'<tbody><tr class="target">{tds}</tr><tr class="detail">{detail}</tr></tbody>'


DETAIL_CSS = {"root cause": "cause", "remedy": "remedy", "fix": "remedy", "volume": "where"}


def _relative(path: str) -> str:
    return "." + path if path.startswith("/") else path


def _ago(now: float, then: float) -> str:
    return h.span(max(now - then, 0.0))


def _badge(code: VerdictCode) -> str:
    return f'<span class="badge v-{_e(code)}">{_e(code)}</span>'


def _scrape_cell(state: TargetState, *, now: float) -> str:
    if state.target.scrape is None:
        return "-"
    if state.up is None:
        return "pending"
    if not state.up:
        errors = ", ".join(f"{k} {n}" for k, n in state.scrape_errors.most_common())
        return f'<span class="down">down</span><br>{_e(errors)}{_source(state)}'
    age = f"{_ago(now, state.last_success_time)} ago" if state.last_success_time else ""
    took = h.seconds(state.last_scrape_duration) if state.last_scrape_duration else ""
    return f'<span class="up">up</span><br>{_e(age)} ({_e(took)}){_source(state)}'


def _source(state: TargetState) -> str:
    """Where the relayed families come from, when it is not the member's own /metrics."""
    spec = state.target.scrape
    if spec is None or spec.source == SOURCE_ETCD:
        return ""
    return f'<br><span class="where">via {_e(spec.source)}</span>'


def _member_state(r: EtcdReport, state: TargetState) -> str:
    """A Kubernetes member's container: running, or why not, and its restarts."""
    ev = r.member
    if ev is None:
        return ""
    css = "up" if ev.state == "running" else "down"
    text = f'<br><span class="{css}">{_e(ev.state)}</span>'
    if ev.reason:
        text += f" {_e(ev.reason)}"
    if state.restarts:
        recent = f", {ev.restarts} {ev.scope}" if ev.restarts else ""
        text += f'<br><span class="where">{_e(h.plural(state.restarts, "restart"))}{_e(recent)}'
        text += "</span>"
    return text


def _stream_cell(state: TargetState) -> str:
    if state.target.log is None:
        return "-"
    if state.stream_up is None:
        return "pending"
    word = '<span class="up">up</span>' if state.stream_up else '<span class="down">down</span>'
    return f"{word}<br>{_e(h.plural(state.lines_read, 'line'))}"


def _slow_text(r: EtcdReport) -> str:
    top = r.logs.top_operation
    where = f" ({top} on {r.logs.top_resource or 'other'})" if top else ""
    return slow_count_cell(r.logs) + where


def _last_slow_cell(state: TargetState, *, now: float) -> str:
    event = last_slow_event(state, now=now)
    if event is None:
        return "-"
    parts = [event["kind"]]
    if event["duration_seconds"] is not None:
        parts.append(h.seconds(event["duration_seconds"]))
    if event["operation"]:
        parts.append(f"{event['operation']} on {event['resource'] or 'other'}")
    age = event["age_seconds"]
    text = " ".join(parts) + (f", {h.span(age)} ago" if age is not None else "")
    return _e(text)


def _summary(rows: Sequence[Row]) -> str:
    counts = Counter(r.verdict.code for r, _ in rows)
    spans = "".join(
        f"<span>{_badge(code)} {counts[code]}</span>" for code in VerdictCode if counts[code]
    )
    return f'<div class="summary">{spans}</div>'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# -- JSON -------------------------------------------------------------------------------------


def targets_json(rows: Sequence[Row], *, now: float, ready: bool) -> dict[str, Any]:
    """`/api/targets`: each target as in diagnose's JSON plus its live scrape and stream state."""
    counts = Counter(str(r.verdict.code) for r, _ in rows)
    return {
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(),
        "ready": ready,
        "summary": {"total": len(rows), "by_verdict": dict(counts)},
        "targets": [_target_json(r, s, now=now) for r, s in rows],
    }


def _target_json(r: EtcdReport, state: TargetState, *, now: float) -> dict[str, Any]:
    doc = etcd_json(r)
    doc["live"] = {
        "scrape_up": state.up,
        "last_success_time": state.last_success_time,
        "last_scrape_duration_seconds": state.last_scrape_duration,
        "scrape_errors": dict(state.scrape_errors),
        "stream_up": state.stream_up,
        "lines_read": state.lines_read,
        "lines_unparsed": state.lines_unparsed,
        "reconnects": state.reconnects,
        "last_slow_event": last_slow_event(state, now=now),
        "member_state": str(state.member_state),
        "restarts_total": state.restarts if state.target.member is not None else None,
    }
    return doc


# -- handlers ---------------------------------------------------------------------------------


def status_routes(
    store: Store, *, telemetry_path: str = "/metrics"
) -> tuple[Handler, list[web.RouteDef]]:
    """The page as `make_app`'s `index` handler, and its other routes (`/api/targets`)."""

    async def page(request: web.Request) -> web.Response:
        del request
        now = time.time()
        text = render_page(
            live_reports(store, now=now), now=now, ready=store.ready, telemetry_path=telemetry_path
        )
        return web.Response(text=text, content_type="text/html", headers=NO_STORE)

    async def api(request: web.Request) -> web.Response:
        del request
        now = time.time()
        doc = targets_json(live_reports(store, now=now), now=now, ready=store.ready)
        return web.json_response(doc, headers=NO_STORE)

    return page, [web.get("/api/targets", api)]


def add_status_routes(app: web.Application, *, store: Store, telemetry_path: str) -> None:
    """Register `/` and `/api/targets` on an app built without `make_app`."""
    index, routes = status_routes(store, telemetry_path=telemetry_path)
    app.router.add_get("/", index)
    app.add_routes(routes)


NO_STORE = {"Cache-Control": "no-store"}
