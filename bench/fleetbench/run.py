"""One benchmark point: start the fleet, Prometheus and the exporter replica(s), wait for a
steady state, measure a window of whole scrape cycles, then probe.

Timeline: start → every target up on the exporter and on Prometheus, every log stream open →
one more scrape interval of warm-up → the measured window (`cycles` intervals; the harness GETs
each exporter's /metrics once per interval, as Prometheus would) → probes (render timings,
event-to-/metrics delays, scrape spread) outside the window, so they do not inflate its CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.fleetbench import prom, stack
from bench.fleetbench.probes import (
    P,
    event_delay,
    get_metrics,
    member_key,
    percentile,
    render_times,
    samples,
    scrape_spread,
    timed_get,
)
from bench.fleetbench.procs import CpuWindow, Proc, memory
from bench.fleetbench.seed import Member, fleet
from exporter.discovery.sharding import shard_of

MiB = 1024 * 1024


@dataclass
class Fleet:
    """The running pieces of one run."""

    members: list[Member]
    api: Proc
    endpoints: list[Proc]
    metrics_port: int
    prometheus: Proc | None
    prom_port: int
    exporters: list[stack.Exporter]

    @property
    def api_url(self) -> str:
        """The emulator's base URL."""
        return str(self.api.ready["url"])

    def pids(self) -> dict[str, int]:
        """Every measured process by name, the harness included."""
        out = {e.proc.name: e.proc.pid for e in self.exporters}
        if self.prometheus is not None:
            out["prometheus"] = self.prometheus.pid
        out["sim-api"] = self.api.pid
        out.update({p.name: p.pid for p in self.endpoints})
        out["harness"] = os.getpid()
        return out


async def start_fleet(
    opts: stack.Options, workdir: Path, exits: contextlib.ExitStack, *, replicas: int
) -> Fleet:
    """Every process of a run, started and ready (not yet steady)."""
    members = fleet(opts.shoots, seed=opts.seed)
    api = await stack.start_api(opts, workdir, exits)
    port, endpoints = await stack.start_endpoints(opts, workdir, exits)
    prometheus, prom_port = None, 0
    if opts.prometheus:
        prometheus, prom_port = await stack.start_prometheus(
            opts, members, metrics_port=port, workdir=workdir, stack=exits
        )
    running = Fleet(members, api, endpoints, port, prometheus, prom_port, [])
    running.exporters = start_replicas(opts, running, workdir, exits, total=replicas)
    return running


def start_replicas(
    opts: stack.Options,
    running: Fleet,
    workdir: Path,
    exits: contextlib.ExitStack,
    *,
    total: int,
) -> list[stack.Exporter]:
    """`total` exporter replicas, shards 0 … total-1."""
    return [
        stack.start_exporter(
            opts,
            kubeconfig=str(running.api.ready["kubeconfig"]),
            metrics_port=running.metrics_port,
            shard=shard,
            total=total,
            workdir=workdir,
            stack=exits,
        )
        for shard in range(total)
    ]


async def wait_steady(
    session: aiohttp.ClientSession, running: Fleet, *, seconds: float
) -> dict[str, float]:
    """Until every member is up and followed on the exporters and up on Prometheus; returns how
    long each condition took from now."""
    for exporter in running.exporters:
        await stack.wait_exporter_ready(exporter, seconds=seconds)
    started, reached = time.monotonic(), {}
    want = len(running.members)
    async with asyncio.timeout(seconds):
        while True:
            try:
                status = await _steady_status(session, running)
            except TimeoutError:  # a /metrics GET over a minute: a starved machine, not an end
                await asyncio.sleep(2.0)
                continue
            for what, count in status.items():
                if count >= want and what not in reached:
                    reached[what] = round(time.monotonic() - started, 1)
            if len(reached) == len(status):
                return reached
            await asyncio.sleep(2.0)


async def _steady_status(session: aiohttp.ClientSession, running: Fleet) -> dict[str, float]:
    up = streams_up = 0.0
    for exporter in running.exporters:
        text = (await get_metrics(session, exporter.metrics_url)).text
        up += sum(v for lab, v in samples(text, P + "exporter_targets") if lab["state"] == "up")
        streams_up += sum(v for _, v in samples(text, P + "log_stream_up"))
    emu = await stack.emulator_stats(session, running.api_url)
    status = {
        "exporter_targets_up": up,
        "exporter_streams_up": min(streams_up, emu["streams"]),
    }
    if running.prometheus is not None:
        query = 'count(up{job="etcd"} == 1)'
        status["prometheus_targets_up"] = await prom.scalar(running.prom_port, query)
    return status


async def measure_window(
    session: aiohttp.ClientSession, running: Fleet, *, interval: float, cycles: int
) -> dict[str, Any]:
    """CPU of every process over `cycles` intervals; one /metrics GET per exporter and interval."""
    window = CpuWindow(running.pids())
    first: dict[str, str] = {}
    renders: list[float] = []
    render_cpu: list[float] = []
    rss_max: dict[str, int] = {}
    window.begin()
    lines_before = (await stack.emulator_stats(session, running.api_url))["lines"]
    loop = asyncio.get_running_loop()
    end = loop.time() + interval * cycles
    for cycle in range(cycles):
        tick = loop.time()
        for exporter in running.exporters:
            scrape, used = await timed_get(session, exporter.metrics_url, pid=exporter.proc.pid)
            renders.append(scrape.seconds)
            render_cpu.append(used)
            first.setdefault(exporter.proc.name, scrape.text)
        while loop.time() < min(tick + interval, end):
            _sample_rss(running.pids(), rss_max)
            await asyncio.sleep(min(2.0, max(0.0, min(tick + interval, end) - loop.time())))
        del cycle
    elapsed, cores = window.end()
    lines_after = (await stack.emulator_stats(session, running.api_url))["lines"]
    main = running.exporters[0]
    last = (await get_metrics(session, main.metrics_url)).text
    read = [
        sum(v for _, v in samples(text, P + "exporter_log_lines_read_total"))
        for text in (first.get(main.proc.name, ""), last)
    ]
    return {
        "window_s": round(elapsed, 1),
        "cpu_cores": {k: round(v, 4) for k, v in cores.items()},
        "window_render_s": renders,
        "window_render_cpu_s": render_cpu,
        "rss_max_mib": {k: round(v / MiB, 1) for k, v in rss_max.items()},
        "lines_written_per_s": round((lines_after - lines_before) / elapsed, 1),
        "lines_read_per_s": round((read[1] - read[0]) / elapsed, 1)
        if len(running.exporters) == 1
        else None,
    }


def _sample_rss(pids: dict[str, int], into: dict[str, int]) -> None:
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            into[name] = max(into.get(name, 0), memory(pid)["VmRSS"])


async def probe(
    session: aiohttp.ClientSession,
    running: Fleet,
    *,
    render_gets: int,
    events: int,
) -> dict[str, Any]:
    """Render timings, event-to-/metrics delays, scrape spread, streams, memory, Prometheus."""
    main = running.exporters[0]
    times, cpu, decode, last = await render_times(
        session, main.metrics_url, count=render_gets, pid=main.proc.pid
    )
    out: dict[str, Any] = {
        "render_p50_s": percentile(times, 50),
        "render_p99_s": percentile(times, 99),
        "render_cpu_p50_s": percentile(cpu, 50),
        "render_cpu_p99_s": percentile(cpu, 99),
        "render_max_s": max(times),
        "harness_decode_p50_s": percentile(decode, 50),
        "metrics_bytes": len(last.text.encode()),
        "metrics_wire_bytes": last.wire_bytes,
        "metrics_lines": last.text.count("\n"),
    }
    out.update(scrape_spread(last.text, now=time.time()))
    out["event_delays_s"], out["event_posted_s"], out["event_streamed_s"] = await _event_delays(
        session, running, count=events
    )
    out["emulator"] = await stack.emulator_stats(session, running.api_url)
    out["peak_rss_mib"] = {
        name: round(memory(pid)["VmHWM"] / MiB, 1) for name, pid in running.pids().items()
    }
    if running.prometheus is not None:
        out["prometheus"] = await _prometheus_facts(running.prom_port)
    return out


async def _event_delays(
    session: aiohttp.ClientSession, running: Fleet, *, count: int
) -> tuple[list[float], list[float], list[float]]:
    """Each marker's delay, and the simulator's parts of it: until it took the line, and until
    it wrote it to the exporter's log stream."""
    members = running.members
    total = len(running.exporters)
    delays: list[float] = []
    posted: list[float] = []
    streamed: list[float] = []
    for i in range(count):
        member = members[(i * len(members)) // max(count, 1)]
        owner = running.exporters[shard_of(member.namespace, total)]
        delays.append(
            await event_delay(
                session,
                api_url=running.api_url,
                metrics_url=owner.metrics_url,
                member=member,
                posted=posted,
                streamed=streamed,
            )
        )
    return delays, posted, streamed


async def _prometheus_facts(port: int) -> dict[str, float]:
    q = prom.scalar
    return {
        "targets_up": await q(port, 'count(up{job="etcd"} == 1)'),
        "head_series": await prom.self_metric(port, "prometheus_tsdb_head_series"),
        "scrape_duration_p50_s": await q(
            port, 'quantile(0.5, scrape_duration_seconds{job="etcd"})'
        ),
        "scrape_duration_p99_s": await q(
            port, 'quantile(0.99, scrape_duration_seconds{job="etcd"})'
        ),
        "samples_per_scrape": await q(port, 'avg(scrape_samples_scraped{job="etcd"})'),
    }


def coverage(members: Sequence[Member], texts: dict[int, str]) -> dict[str, Any]:
    """Which replica exports each member's target_up: gaps, duplicates, share per replica."""
    owners: dict[tuple[str, str], list[int]] = {}
    for shard, text in texts.items():
        for labels, _ in samples(text, P + "target_up"):
            owners.setdefault(member_key(labels), []).append(shard)
    fleet_keys = {(m.namespace, m.pod) for m in members}
    per_replica = {shard: 0 for shard in texts}
    for shards in owners.values():
        for shard in shards:
            per_replica[shard] += 1
    return {
        "members": len(fleet_keys),
        "covered": len(fleet_keys & owners.keys()),
        "gaps": len(fleet_keys - owners.keys()),
        "duplicates": sum(1 for shards in owners.values() if len(shards) > 1),
        "strangers": len(owners.keys() - fleet_keys),
        "per_replica": per_replica,
        "owner": {k: v[0] for k, v in owners.items()},
    }
