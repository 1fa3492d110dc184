"""The storm mode: an incident's log storm on a steady fleet, and what it does to one replica.

Timeline (after the fleet is steady and warmed up): normal windows for `before` seconds → a
ledger reading → the storm (`members` members write `rate` slow requests a second each, on top of
their normal lines, for `seconds`) observed in windows → windows after it until the normal
budgets hold `hold` windows in a row (at most `after` seconds) → a second ledger reading.

A window is a quiet part (`window` seconds: the exporter's CPU is measured, its RSS sampled, one
/metrics GET per scrape interval as Prometheus would do) followed by a probe part (`probes` timed
/metrics GETs and as many marker events, alternately into storm members and into other members,
each timed until its counter moves on /metrics). The CPU figure comes from the quiet parts only,
so that the harness's own polling of /metrics does not count as load; the latencies are
measured under the storm all the same.

A ledger reading pauses the simulator's normal log writer, waits until the exporter's counters
stop moving (two readings `settle` seconds apart alike), and reads the simulator's ledger and the
exporter's counters; the accounting compares what was sent between the two readings with what
the exporter counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.fleetbench import ledger
from bench.fleetbench.probes import (
    event_delay,
    exporter_parts,
    get_metrics,
    get_raw,
    percentile,
    timed_get,
)
from bench.fleetbench.procs import CpuWindow, cpu_seconds, memory
from bench.fleetbench.run import Fleet
from bench.fleetbench.seed import Member
from exporter.discovery.sharding import shard_of

MiB = 1024 * 1024
RSS_SAMPLE = 1.0  # seconds between RSS samples in a quiet part
SETTLE_LIMIT = 180.0  # longest wait for the exporter to catch up at a ledger reading

# During the storm (one replica) and after it (the normal budgets).
STORM_BUDGETS = {
    "slow_requests_lost": 0,
    "slow_requests_double": 0,
    "storm_cpu_cores": 1.0,
    "storm_render_p99_s": 1.0,
    "storm_event_p99_s": 2.0,
    "storm_peak_rss_mib": 500.0,
    "recovery_s": 60.0,
}
NORMAL_BUDGETS = {"cpu_cores": 0.5, "render_p99_s": 1.0, "event_p99_s": 1.0}


@dataclass
class StormPlan:
    """What the storm is and how it is observed."""

    members: int = 200
    rate: float = 100.0  # slow-request lines per storm member and second
    seconds: float = 300.0
    before: float = 30.0  # normal windows measured before the storm
    window: float = 10.0  # the quiet part of a window
    probes: int = 3  # render GETs and marker events per window
    after: float = 120.0  # longest observation after the storm
    hold: int = 3  # windows in a row within the normal budgets: recovered
    settle: float = 3.0
    seed: int = 1


def storm_members(members: Sequence[Member], count: int, *, seed: int) -> list[Member]:
    """`count` members drawn over the whole fleet (main and events, every project), in fleet
    order; the same for a (fleet, count, seed)."""
    chosen = random.Random(seed).sample(range(len(members)), min(count, len(members)))
    return [members[i] for i in sorted(chosen)]


@dataclass
class Window:
    """One observation window."""

    start_s: float  # since the phase's reference time (storm start or storm end)
    quiet_s: float
    cpu_cores: float
    rss_max_mib: float
    render_s: list[float] = field(default_factory=list)
    event_s: list[float] = field(default_factory=list)
    posted_s: list[float] = field(default_factory=list)  # of each event: the simulator's accept
    streamed_s: list[float] = field(default_factory=list)  # and its write to the log stream
    event_in_storm_member: list[bool] = field(default_factory=list)

    def within(self, limits: dict[str, float]) -> bool:
        """Whether this window meets CPU, render p99 and event p99 limits."""
        return (
            self.cpu_cores <= limits["cpu_cores"]
            and percentile(self.render_s, 99) <= limits["render_p99_s"]
            and percentile(self.event_s, 99) <= limits["event_p99_s"]
        )

    def public(self) -> dict[str, Any]:
        """For the JSON output."""
        return {
            "start_s": round(self.start_s, 1),
            "quiet_s": round(self.quiet_s, 1),
            "cpu_cores": round(self.cpu_cores, 4),
            "rss_max_mib": round(self.rss_max_mib, 1),
            "render_p99_s": percentile(self.render_s, 99),
            "event_p99_s": percentile(self.event_s, 99),
            "render_s": [round(t, 4) for t in self.render_s],
            "event_s": [round(t, 4) for t in self.event_s],
            "posted_s": [round(t, 4) for t in self.posted_s],
            "streamed_s": [round(t, 4) for t in self.streamed_s],
        }


class Observer:
    """Runs windows against the exporter replicas (each a shard); marker members alternate
    between the storm members and the others, spread over each list, and each marker is timed
    on the replica that owns its member, as are that window's render GETs. CPU and RSS are the
    busiest replica's: the budgets are per replica."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        running: Fleet,
        *,
        storm: Sequence[Member],
        interval: float,
        plan: StormPlan,
    ) -> None:
        self._session = session
        self._running = running
        self._exporters = running.exporters
        self._interval = interval
        self._plan = plan
        chosen = {m.index for m in storm}
        self._targets = (list(storm), [m for m in running.members if m.index not in chosen])
        self._markers = 0
        self._last_get = -math.inf

    async def window(self, *, ref: float, until: float | None = None) -> Window:
        """One window; `until` (monotonic) cuts the quiet part short and skips the probes once
        it is reached (the end of the storm)."""
        pids = [e.proc.pid for e in self._exporters]
        loop = asyncio.get_running_loop()
        t0, cpu0 = loop.time(), [cpu_seconds(pid) for pid in pids]
        if t0 - self._last_get >= self._interval:  # Prometheus's scrape of each replica
            self._last_get = t0
            for exporter in self._exporters:
                with contextlib.suppress(TimeoutError):  # Prometheus would give up, too
                    await get_metrics(self._session, exporter.metrics_url)
        end = t0 + self._plan.window if until is None else min(t0 + self._plan.window, until)
        rss = 0
        while True:
            rss = max(rss, *(memory(pid)["VmRSS"] for pid in pids))
            if loop.time() >= end:
                break
            await asyncio.sleep(min(RSS_SAMPLE, max(0.0, end - loop.time())))
        quiet = loop.time() - t0
        busiest = max(cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True))
        win = Window(t0 - ref, quiet, busiest / quiet, rss / MiB)
        for _ in range(self._plan.probes):
            if until is not None and loop.time() >= until:
                break
            member, in_storm = self._next_marker()
            exporter = self._exporters[shard_of(member.namespace, len(self._exporters))]
            try:
                scrape, _cpu = await timed_get(
                    self._session, exporter.metrics_url, pid=exporter.proc.pid
                )
                win.render_s.append(scrape.seconds)
            except TimeoutError:  # over the GET's minute: over every budget, not the end
                win.render_s.append(math.inf)
            try:
                delay = await event_delay(
                    self._session,
                    api_url=self._running.api_url,
                    metrics_url=exporter.metrics_url,
                    member=member,
                    posted=win.posted_s,
                    streamed=win.streamed_s,
                )
            except TimeoutError:
                delay = math.inf
            win.event_s.append(delay)
            win.event_in_storm_member.append(in_storm)
        return win

    def _next_marker(self) -> tuple[Member, bool]:
        i = self._markers
        self._markers += 1
        storm, others = self._targets
        pool = storm if (i % 2 == 0 and storm) or not others else others
        # a stride through the pool that visits members far apart first
        return pool[(i // 2 * 7919) % len(pool)], pool is storm


async def _post(session: aiohttp.ClientSession, url: str, body: Any = None) -> Any:
    async with session.post(url, json=body) as resp:
        resp.raise_for_status()
        return await resp.json()


async def reading(
    session: aiohttp.ClientSession, running: Fleet, *, settle: float
) -> dict[str, Any]:
    """The simulator's ledger and the exporters' counters (every replica's, together) at a
    quiet moment."""
    api = running.api_url
    started = time.monotonic()
    await _post(session, api + "/_emu/pause")
    try:
        last: ledger.Counted | None = None
        alike = 0
        while alike < 2 and time.monotonic() - started < SETTLE_LIMIT:
            await asyncio.sleep(settle)
            try:
                bodies = [await get_raw(session, e.metrics_url) for e in running.exporters]
                now = ledger.merged([ledger.counted(body) for body in bodies])
            except TimeoutError:
                alike = 0
                continue
            alike = alike + 1 if now == last else 0
            last = now
        book = await _post(session, api + "/_emu/ledger")
    finally:
        await _post(session, api + "/_emu/resume")
    if last is None:
        raise RuntimeError(f"no /metrics answer within {SETTLE_LIMIT:g} s for a ledger reading")
    return {
        "ledger": book,
        "counted": last,
        "settled": alike >= 2,
        "paused_s": round(time.monotonic() - started, 1),
    }


def account(
    first: dict[str, Any], last: dict[str, Any], *, storm: Sequence[Member]
) -> dict[str, Any]:
    """Lost and double-counted lines between two readings, per member and in total."""
    a, b = first["ledger"], last["ledger"]
    ca, cb = first["counted"], last["counted"]
    slow = ledger.compare_slow((a["slow"], b["slow"]), (ca.slow, cb.slow))
    lines = ledger.compare_lines((a["lines"], b["lines"]), (ca.lines, cb.lines))
    storm_keys = {ledger.member_key(m.namespace, m.pod) for m in storm}
    everyone = set(b["lines"])
    others = everyone - storm_keys

    def sent(keys: set[str]) -> int:
        return ledger.sent_slow(b["slow"], keys) - ledger.sent_slow(a["slow"], keys)

    return {
        "slow_requests_sent": sent(everyone),
        "slow_requests_sent_storm_members": sent(storm_keys),
        "slow_requests_sent_other_members": sent(others),
        "slow_requests_lost": slow.lost_total,
        "slow_requests_double": slow.double_total,
        "slow_requests_lost_storm_members": sum(v for k, v in slow.lost.items() if k in storm_keys),
        "slow_requests_lost_per_member": slow.lost,
        "slow_requests_double_per_member": slow.double,
        "lines_sent": sum(b["lines"].values()) - sum(a["lines"].values()),
        "lines_lost": lines.lost_total,
        "lines_double": lines.double_total,
        "lines_lost_per_member": lines.lost,
        "lines_double_per_member": lines.double,
        "readings_settled": bool(first["settled"] and last["settled"]),
        "reading_pause_s": [first["paused_s"], last["paused_s"]],
    }


async def _storm_done(
    session: aiohttp.ClientSession, api: str, *, seconds: float
) -> dict[str, Any]:
    """The storm's final state, once the simulator has written its last tick."""
    async with asyncio.timeout(seconds):
        while True:
            state: dict[str, Any] = (await _post(session, api + "/_emu/stats"))["storm"]
            if state["state"] == "done":
                return state
            await asyncio.sleep(0.2)


async def run_storm(
    session: aiohttp.ClientSession, running: Fleet, plan: StormPlan, *, interval: float
) -> dict[str, Any]:
    """The storm phase on a steady fleet; returns its figures (budgets not yet checked, and
    per replica: the busiest replica's CPU, the largest peak RSS)."""
    loop = asyncio.get_running_loop()
    chosen = storm_members(running.members, plan.members, seed=plan.seed)
    observer = Observer(session, running, storm=chosen, interval=interval, plan=plan)
    out: dict[str, Any] = {"loadavg_before": os.getloadavg()}

    ref = loop.time()
    out["before"] = [(await observer.window(ref=ref)).public()]
    while loop.time() - ref < plan.before:
        out["before"].append((await observer.window(ref=ref)).public())
    first = await reading(session, running, settle=plan.settle)

    members = [[m.namespace, m.pod] for m in chosen]
    body = {"members": members, "rate": plan.rate, "seconds": plan.seconds, "seed": plan.seed}
    lines_before = (await _post(session, running.api_url + "/_emu/stats"))["lines"]
    cpu = CpuWindow(running.pids())
    cpu.begin()
    await _post(session, running.api_url + "/_emu/storm", body)
    start = loop.time()
    during: list[Window] = []
    while loop.time() < start + plan.seconds - 1.0:
        during.append(await observer.window(ref=start, until=start + plan.seconds))
    state = await _storm_done(session, running.api_url, seconds=plan.seconds + 600.0)
    storm_s, cores = cpu.end()
    end = loop.time()
    peak = max(memory(e.proc.pid)["VmHWM"] for e in running.exporters) / MiB
    lines_after = (await _post(session, running.api_url + "/_emu/stats"))["lines"]

    after: list[Window] = []
    recovered: float | None = None
    while loop.time() - end < plan.after:
        after.append(await observer.window(ref=end))
        run = after[-plan.hold :]
        if len(run) == plan.hold and all(w.within(NORMAL_BUDGETS) for w in run):
            recovered = round(max(0.0, run[0].start_s), 1)
            break
    last = await reading(session, running, settle=plan.settle)

    quiet = sum(w.quiet_s for w in during)
    renders = [t for w in during for t in w.render_s]
    events = [t for w in during for t in w.event_s]
    posted = [t for w in during for t in w.posted_s]
    streamed = [t for w in during for t in w.streamed_s]
    exporter_part = exporter_parts(events, streamed)
    in_storm = [f for w in during for f in w.event_in_storm_member]
    storm_written = int(state["written"])
    storm_wall = float(state["ended"]) - float(state["started"])
    out.update(
        {
            "storm_members": len(chosen),
            "storm_rate_per_member": plan.rate,
            "storm_seconds": plan.seconds,
            "storm_wall_s": round(storm_wall, 1),
            "storm_lines_written": storm_written,
            "storm_lines_skipped": int(state.get("skipped", 0)),
            "storm_lines_per_s": round(storm_written / storm_wall, 1),
            "lines_written_per_s_during_storm": round((lines_after - lines_before) / storm_s, 1),
            "storm_cpu_cores": round(sum(w.cpu_cores * w.quiet_s for w in during) / quiet, 4),
            "storm_cpu_cores_with_probes": {k: round(v, 4) for k, v in cores.items()},
            "storm_render_p50_s": percentile(renders, 50),
            "storm_render_p99_s": percentile(renders, 99),
            "storm_event_p50_s": percentile(events, 50),
            "storm_event_p99_s": percentile(events, 99),
            "storm_event_posted_p50_s": percentile(posted, 50),
            "storm_event_posted_p99_s": percentile(posted, 99),
            "storm_event_streamed_p50_s": percentile(streamed, 50),
            "storm_event_streamed_p99_s": percentile(streamed, 99),
            "storm_event_exporter_p50_s": percentile(exporter_part, 50),
            "storm_event_exporter_p99_s": percentile(exporter_part, 99),
            "storm_event_p99_storm_members_s": percentile(
                [t for t, s in zip(events, in_storm, strict=True) if s], 99
            ),
            "storm_event_p99_other_members_s": percentile(
                [t for t, s in zip(events, in_storm, strict=True) if not s], 99
            ),
            "storm_peak_rss_mib": round(peak, 1),
            "storm_rss_max_sampled_mib": max((w.rss_max_mib for w in during), default=math.nan),
            "storm_windows": [w.public() for w in during],
            "recovery_s": recovered,
            "after_windows": [w.public() for w in after],
            "accounting": account(first, last, storm=chosen),
            "loadavg_after": os.getloadavg(),
        }
    )
    return out


def check_budgets(f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each storm budget: the figure, the limit, and whether it holds (a recovery not seen
    within the observation counts as over)."""
    acc = f["accounting"]
    actual = {
        "slow_requests_lost": acc["slow_requests_lost"],
        "slow_requests_double": acc["slow_requests_double"],
        "storm_cpu_cores": f["storm_cpu_cores"],
        "storm_render_p99_s": f["storm_render_p99_s"],
        "storm_event_p99_s": f["storm_event_p99_s"],
        "storm_peak_rss_mib": f["storm_peak_rss_mib"],
        "recovery_s": f["recovery_s"],
    }
    return {
        name: {
            "value": round(value, 4) if isinstance(value, float) else value,
            "limit": STORM_BUDGETS[name],
            "ok": value is not None and value <= STORM_BUDGETS[name],
        }
        for name, value in actual.items()
    }
