"""The benchmark's modes: one point (one or more replicas), resharding, the storm, and the
scaling curve."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from bench.fleetbench import run, stack, storm
from bench.fleetbench.probes import exporter_parts, get_metrics, percentile
from exporter.discovery.sharding import fnv64a

BUDGETS = {
    "cpu_cores": 0.5,
    "peak_rss_mib": 400.0,
    "render_p99_s": 1.0,
    "event_p99_s": 1.0,
    "cpu_ratio_vs_prometheus": 0.5,
}


@dataclasses.dataclass
class PointPlan:
    """What one point measures."""

    replicas: int = 1
    cycles: int = 3
    warmup_cycles: int = 1
    render_gets: int = 20
    events: int = 20
    reshard_to: int = 0  # 0: no resharding step


@contextlib.asynccontextmanager
async def steady_fleet(
    opts: stack.Options, plan: PointPlan, workdir: Path
) -> AsyncIterator[tuple[run.Fleet, aiohttp.ClientSession, dict[str, float], contextlib.ExitStack]]:
    """Everything started with `plan.replicas` replicas, steady and warmed up: the fleet, a
    session, when each part got steady, and the exit stack that stops every process after."""
    with contextlib.ExitStack() as exits:
        running = await run.start_fleet(opts, workdir, exits, replicas=plan.replicas)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            steady = await run.wait_steady(session, running, seconds=opts.ready_timeout)
            await asyncio.sleep(opts.interval * plan.warmup_cycles)
            yield running, session, steady, exits


async def bench_point(opts: stack.Options, plan: PointPlan, workdir: Path) -> dict[str, Any]:
    """Start everything, wait for a steady state, measure, probe; every process is stopped."""
    async with steady_fleet(opts, plan, workdir) as (running, session, steady, exits):
        window = await run.measure_window(
            session, running, interval=opts.interval, cycles=plan.cycles
        )
        probes = await run.probe(session, running, render_gets=plan.render_gets, events=plan.events)
        result = summarize(opts, plan, running, steady=steady, window=window, probes=probes)
        if plan.replicas > 1:
            result["sharding"] = await sharding(
                session, running, opts=opts, plan=plan, workdir=workdir, exits=exits
            )
    return result


async def storm_point(
    opts: stack.Options, plan: PointPlan, storm_plan: storm.StormPlan, workdir: Path
) -> dict[str, Any]:
    """Start everything with `plan.replicas` replicas (shards), wait for a steady state and the
    warm-up, run the storm phase and check its budgets (per replica); every process is
    stopped."""
    async with steady_fleet(opts, plan, workdir) as (running, session, steady, _):
        figures = await storm.run_storm(session, running, storm_plan, interval=opts.interval)
        figures["emulator"] = await stack.emulator_stats(session, running.api_url)
    exporter = ", ".join(e.proc.name for e in running.exporters)
    figures.update(
        {
            "mode": "storm",
            "shoots": opts.shoots,
            "members": len(running.members),
            "replicas": plan.replicas,
            "scrape_interval_s": opts.interval,
            "log_rate_per_member": opts.log_rate,
            "steady_after_s": steady,
            "exporter": exporter,
        }
    )
    figures["budgets"] = storm.check_budgets(figures)
    return figures


def summarize(
    opts: stack.Options,
    plan: PointPlan,
    running: run.Fleet,
    *,
    steady: dict[str, float],
    window: dict[str, Any],
    probes: dict[str, Any],
) -> dict[str, Any]:
    """The point's figures, with the budget checks for a single replica."""
    cores = window["cpu_cores"]
    exporters = [e.proc.name for e in running.exporters]
    exporter_cpu = sum(cores[n] for n in exporters)
    prom_cpu = cores.get("prometheus")
    delays = probes.pop("event_delays_s")
    posted = probes.pop("event_posted_s")
    streamed = probes.pop("event_streamed_s")
    exporter_part = exporter_parts(delays, streamed)
    peak = probes["peak_rss_mib"]
    figures = {
        "shoots": opts.shoots,
        "members": len(running.members),
        "replicas": plan.replicas,
        "scrape_interval_s": opts.interval,
        "log_rate_per_member": opts.log_rate,
        "steady_after_s": steady,
        "window_s": window["window_s"],
        "cpu_cores": cores,
        "exporter_cpu_cores": round(exporter_cpu, 4),
        "simulator_cpu_cores": round(sum(v for k, v in cores.items() if k.startswith("sim-")), 4),
        "exporter_peak_rss_mib": max(peak[n] for n in exporters),
        "window_render_s": [round(t, 4) for t in window["window_render_s"]],
        "window_render_cpu_s": [round(t, 4) for t in window["window_render_cpu_s"]],
        "event_p50_s": percentile(delays, 50),
        "event_p99_s": percentile(delays, 99),
        "event_delays_s": [round(d, 4) for d in delays],
        "event_posted_p50_s": percentile(posted, 50),
        "event_posted_p99_s": percentile(posted, 99),
        "event_streamed_p50_s": percentile(streamed, 50),
        "event_streamed_p99_s": percentile(streamed, 99),
        "event_exporter_p50_s": percentile(exporter_part, 50),
        "event_exporter_p99_s": percentile(exporter_part, 99),
        "event_posted_s": [round(p, 4) for p in posted],
        "event_streamed_s": [round(s, 4) for s in streamed],
        "lines_written_per_s": window["lines_written_per_s"],
        "lines_read_per_s": window["lines_read_per_s"],
        "rss_max_mib": window["rss_max_mib"],
        **probes,
    }
    if prom_cpu:
        figures["cpu_ratio_vs_prometheus"] = round(exporter_cpu / prom_cpu, 3)
    if plan.replicas == 1:
        figures["budgets"] = check_budgets(figures)
    return figures


def check_budgets(f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each budget: the figure, the limit, and whether it holds. The CPU ratio to Prometheus is a
    budget of the same scrape fan-out, so it is checked only in a run without log lines
    (`--log-rate 0`): with them, the exporter's CPU also follows and parses every member's log,
    which Prometheus does not (the ratio is still printed)."""
    scrapes_alone = f["log_rate_per_member"] == 0
    actual = {
        "cpu_cores": f["exporter_cpu_cores"],
        "peak_rss_mib": f["exporter_peak_rss_mib"],
        "render_p99_s": f["render_p99_s"],
        "event_p99_s": f["event_p99_s"],
        "cpu_ratio_vs_prometheus": f.get("cpu_ratio_vs_prometheus") if scrapes_alone else None,
    }
    return {
        name: {
            "value": value,
            "limit": BUDGETS[name],
            "ok": value is not None and value <= BUDGETS[name],
        }
        for name, value in actual.items()
    }


async def _texts(session: aiohttp.ClientSession, running: run.Fleet) -> dict[int, str]:
    return {e.shard: (await get_metrics(session, e.metrics_url)).text for e in running.exporters}


async def sharding(
    session: aiohttp.ClientSession,
    running: run.Fleet,
    *,
    opts: stack.Options,
    plan: PointPlan,
    workdir: Path,
    exits: contextlib.ExitStack,
) -> dict[str, Any]:
    """Coverage with the running replicas; then restart them with `reshard_to` shards and count
    the targets that changed replica."""
    before = run.coverage(running.members, await _texts(session, running))
    out: dict[str, Any] = {"before": _public(before)}
    if not plan.reshard_to:
        return out
    opens_before = (await stack.emulator_stats(session, running.api_url))["log_opens"]
    for exporter in running.exporters:
        exporter.proc.stop()
    running.exporters = run.start_replicas(opts, running, workdir, exits, total=plan.reshard_to)
    out["after_steady_s"] = await run.wait_steady(session, running, seconds=opts.ready_timeout)
    after = run.coverage(running.members, await _texts(session, running))
    opens_after = (await stack.emulator_stats(session, running.api_url))["log_opens"]
    out["after"] = _public(after)
    out["moves"] = moves(before["owner"], after["owner"], old=plan.replicas, new=plan.reshard_to)
    out["log_stream_opens_during_reshard"] = opens_after - opens_before
    return out


def moves(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int], *, old: int, new: int
) -> dict[str, Any]:
    """Targets whose replica changed, where they went, and what modulo hashing would move."""
    moved = [k for k, shard in before.items() if after.get(k) != shard]
    modulo = sum(1 for ns, _ in before if fnv64a(ns) % old != fnv64a(ns) % new)
    return {
        "targets": len(before),
        "moved": len(moved),
        "moved_share": round(len(moved) / max(len(before), 1), 4),
        "expected_share_jump_hash": round(abs(new - old) / max(new, old), 4),
        "moved_to_new_shards": sum(1 for k in moved if after.get(k, -1) >= old),
        "modulo_hash_would_move": modulo,
    }


def _public(cov: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cov.items() if k != "owner"}
