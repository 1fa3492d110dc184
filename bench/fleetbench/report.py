"""Printing a point's figures for people, and saving them as JSON for docs and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _ms(seconds: float | None) -> str:
    """Milliseconds, or n/a for a figure not measured (absent or NaN)."""
    return "n/a" if seconds is None or math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


def text(f: dict[str, Any]) -> str:
    """A readable summary of one point."""
    cores = f["cpu_cores"]
    lines = [
        f"fleet: {f['shoots']} shoots = {f['members']} etcd members, scrape interval "
        f"{f['scrape_interval_s']:g} s, {f['log_rate_per_member']:g} log lines/member/s "
        f"({f['lines_written_per_s']:.0f} lines/s written), {f['replicas']} replica(s)",
        f"steady after: {f['steady_after_s']}; measured window {f['window_s']:.0f} s",
        "CPU (average cores over the window): "
        + ", ".join(f"{name} {value:.3f}" for name, value in sorted(cores.items())),
        f"exporter: CPU {f['exporter_cpu_cores']:.3f} cores, peak RSS "
        f"{f['exporter_peak_rss_mib']:.0f} MiB, lines read {_rate(f.get('lines_read_per_s'))}",
        f"/metrics: render p50 {_ms(f['render_p50_s'])}, p99 {_ms(f['render_p99_s'])}, "
        f"max {_ms(f['render_max_s'])} (exporter CPU meanwhile p50 "
        f"{_ms(f['render_cpu_p50_s'])}, p99 {_ms(f['render_cpu_p99_s'])}; to the last byte, the "
        f"harness's decoding then p50 {_ms(f.get('harness_decode_p50_s'))}); "
        f"{f['metrics_bytes'] / 1e6:.2f} MB "
        f"({f['metrics_wire_bytes'] / 1e6:.2f} MB on the wire), {f['metrics_lines']} lines",
        f"event → /metrics: p50 {_ms(f['event_p50_s'])}, p99 {_ms(f['event_p99_s'])} "
        f"({len(f['event_delays_s'])} injected lines; from the start, the simulator took the "
        f"line after p50 {_ms(f.get('event_posted_p50_s'))}, p99 "
        f"{_ms(f.get('event_posted_p99_s'))} and wrote it to the log stream after "
        f"p50 {_ms(f.get('event_streamed_p50_s'))}, p99 "
        f"{_ms(f.get('event_streamed_p99_s'))}; the exporter's part from there, "
        f"the GETs included: p50 {_ms(f.get('event_exporter_p50_s'))}, p99 "
        f"{_ms(f.get('event_exporter_p99_s'))})",
        f"scrapes: {f.get('targets_scraped', 0)} targets, last successes spread over "
        f"{f.get('success_spread_s', float('nan')):.1f} s (oldest "
        f"{f.get('oldest_success_age_s', float('nan')):.1f} s ago), duration p50 "
        f"{_ms(f.get('scrape_duration_p50_s'))} p99 "
        f"{_ms(f.get('scrape_duration_p99_s'))}",
        f"emulator: {f['emulator']['streams']} open log streams, "
        f"{f['emulator']['log_opens']} log opens so far",
        "peak RSS (MiB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(f["peak_rss_mib"].items())),
    ]
    if "prometheus" in f:
        p = f["prometheus"]
        lines.append(
            f"prometheus: {p['targets_up']:.0f} targets up, {p['head_series']:.0f} head series, "
            f"scrape p50 {_ms(p['scrape_duration_p50_s'])} p99 {_ms(p['scrape_duration_p99_s'])}; "
            f"CPU ratio exporter/prometheus {f.get('cpu_ratio_vs_prometheus', float('nan')):.2f}"
            + (
                ""
                if f.get("log_rate_per_member") == 0
                else " (with the log streams; the budget is the scrape fan-out's: --log-rate 0)"
            )
        )
    for name, check in (f.get("budgets") or {}).items():
        if check["value"] is None:
            continue  # not measured in this run (no Prometheus)
        verdict = "ok" if check["ok"] else "OVER"
        lines.append(f"budget {name}: {check['value']} (limit {check['limit']}) {verdict}")
    if "sharding" in f:
        lines += _sharding_lines(f["sharding"])
    return "\n".join(lines)


def _sharding_lines(s: dict[str, Any]) -> list[str]:
    b = s["before"]
    lines = [
        f"sharding: {b['covered']}/{b['members']} covered, {b['gaps']} gaps, "
        f"{b['duplicates']} duplicates; per replica {b['per_replica']}"
    ]
    if "after" in s:
        a, m = s["after"], s["moves"]
        lines.append(
            f"resharded: {a['covered']}/{a['members']} covered, {a['gaps']} gaps, "
            f"{a['duplicates']} duplicates; per replica {a['per_replica']}"
        )
        lines.append(
            f"moved {m['moved']} of {m['targets']} targets ({m['moved_share']:.1%}, jump hash "
            f"expects {m['expected_share_jump_hash']:.1%}; {m['moved_to_new_shards']} to the new "
            f"shard(s)); modulo hashing would move {m['modulo_hash_would_move']}"
        )
    return lines


def save(path: Path, data: Any) -> None:
    """Write figures as JSON (NaN as null)."""
    path.write_text(json.dumps(_clean(data), indent=1, sort_keys=True) + "\n")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _rate(per_second: float | None) -> str:
    """Lines per second; the first replica's own counter says nothing of the others'."""
    return "n/a with several replicas" if per_second is None else f"{per_second:.0f}/s"


def storm_text(f: dict[str, Any]) -> str:
    """A readable summary of a storm run."""
    acc = f["accounting"]
    target = f["storm_members"] * f["storm_rate_per_member"]
    cores = f["storm_cpu_cores_with_probes"]
    lines = [
        f"fleet: {f['shoots']} shoots = {f['members']} etcd members, scrape interval "
        f"{f['scrape_interval_s']:g} s, {f['log_rate_per_member']:g} log lines/member/s, "
        f"{f['replicas']} replica(s) (figures per replica: the busiest one's CPU, the largest RSS)",
        f"storm: {f['storm_members']} members × {f['storm_rate_per_member']:g} slow requests/s "
        f"for {f['storm_seconds']:g} s (target {target:.0f} lines/s): written "
        f"{f['storm_lines_written']} lines in {f['storm_wall_s']:.1f} s = "
        f"{f['storm_lines_per_s']:.0f} lines/s ({f['storm_lines_skipped']} skipped: the "
        "simulator fell behind); all lines during the storm "
        f"{f['lines_written_per_s_during_storm']:.0f}/s",
        f"load average before {_load(f['loadavg_before'])}, after {_load(f['loadavg_after'])}",
        "before the storm: " + _windows_summary(f["before"]),
        f"during: exporter CPU {f['storm_cpu_cores']:.3f} cores (quiet parts of the windows); "
        "all processes over the storm, probes included: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(cores.items())),
        f"during: /metrics render p50 {_ms(f['storm_render_p50_s'])}, p99 "
        f"{_ms(f['storm_render_p99_s'])}; event → /metrics p50 {_ms(f['storm_event_p50_s'])}, "
        f"p99 {_ms(f['storm_event_p99_s'])} (storm members "
        f"{_ms(f['storm_event_p99_storm_members_s'])}, others "
        f"{_ms(f['storm_event_p99_other_members_s'])}; of which the simulator accepting the "
        f"line p50 {_ms(f['storm_event_posted_p50_s'])}, p99 "
        f"{_ms(f['storm_event_posted_p99_s'])}, writing it to the log stream p50 "
        f"{_ms(f.get('storm_event_streamed_p50_s'))}, p99 "
        f"{_ms(f.get('storm_event_streamed_p99_s'))}; the exporter's part from "
        f"there p50 {_ms(f.get('storm_event_exporter_p50_s'))}, p99 "
        f"{_ms(f.get('storm_event_exporter_p99_s'))}); peak RSS "
        f"{f['storm_peak_rss_mib']:.0f} "
        f"MiB (VmHWM; sampled max {f['storm_rss_max_sampled_mib']:.0f} MiB)",
        "after the storm (window start: CPU, render p99, event p99):",
    ]
    lines += [
        f"  +{w['start_s']:.0f} s: {w['cpu_cores']:.3f} cores, {_ms(w['render_p99_s'])}, "
        f"{_ms(w['event_p99_s'])}"
        for w in f["after_windows"]
    ]
    recovery = f["recovery_s"]
    lines.append(
        "back within the normal budgets "
        + ("not within the observation" if recovery is None else f"after {recovery:.0f} s")
    )
    lines += [
        f"accounting: {acc['slow_requests_sent']} slow requests sent between the readings "
        f"({acc['slow_requests_sent_storm_members']} by storm members, "
        f"{acc['slow_requests_sent_other_members']} by the others): "
        f"{acc['slow_requests_lost']} lost ({acc['slow_requests_lost_storm_members']} of storm "
        f"members), {acc['slow_requests_double']} counted twice"
        + ("" if acc["readings_settled"] else " (a reading did not settle)"),
        f"accounting, every line: {acc['lines_sent']} sent, {acc['lines_lost']} not read, "
        f"{acc['lines_double']} read twice",
    ]
    for what in ("slow_requests_lost_per_member", "slow_requests_double_per_member"):
        worst = sorted(acc[what].items(), key=lambda kv: -kv[1])[:10]
        if worst:
            lines.append(f"  {what}: " + ", ".join(f"{k} {v}" for k, v in worst))
    for name, check in f["budgets"].items():
        verdict = "PASS" if check["ok"] else "FAIL"
        lines.append(f"budget {name}: {check['value']} (limit {check['limit']}) {verdict}")
    return "\n".join(lines)


def _windows_summary(windows: list[dict[str, Any]]) -> str:
    cpu = sum(w["cpu_cores"] * w["quiet_s"] for w in windows) / sum(w["quiet_s"] for w in windows)
    renders = sorted(t for w in windows for t in w["render_s"])
    events = sorted(t for w in windows for t in w["event_s"])
    return (
        f"{len(windows)} window(s): exporter CPU {cpu:.3f} cores, render max "
        f"{_ms(renders[-1] if renders else math.nan)}, event max "
        f"{_ms(events[-1] if events else math.nan)}"
    )


def _load(avg: list[float] | tuple[float, ...]) -> str:
    return " ".join(f"{x:.2f}" for x in avg)
