"""The simulated seed's API server: the project's Kubernetes emulator filled with the fleet, and
the pod logs written at a steady rate.

Reuses tests/kube (the emulator the component tests use) unmodified, with three settings for
scale: no deliberate chunk splitting, a slower idle poll of each follow stream (the emulator
re-checks an idle stream every `streams.POLL` seconds; 2,000 streams at the test default of
0.25 s would cost the simulator more than the logs themselves), and bookmarks every 10 s.
Lines are written in ten staggered groups per tick, so the streams wake spread over the second
rather than all at once.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bench.fleetbench.loglines import LineMaker, iso_now
from bench.fleetbench.seed import FAST, STANDARD, Member
from tests.support.kube import scenario, streams
from tests.support.kube.server import KubeEmulator

IDLE_POLL = 1.0
GROUPS = 10
KEEP_TEXT_SECONDS = 180.0  # older lines keep their timestamp only (no reader reaches back)


class FleetEmulator(KubeEmulator):
    """The emulator plus a `stats` hook for the harness."""

    lines_written = 0

    async def _hook(self, request: web.Request) -> web.Response:
        if request.match_info["action"] != "stats":
            return await super()._hook(request)
        return web.json_response(self.stats())

    def stats(self) -> dict[str, Any]:
        """Open follow streams, log opens so far, lines written."""
        opens = sum(1 for path, _verb, _q in self.requests if path.endswith("/log"))
        return {"streams": len(self.streams), "log_opens": opens, "lines": self.lines_written}


def build(members: Sequence[Member]) -> FleetEmulator:
    """An emulator holding the seed: StorageClasses, pods, PVCs, PVs and Etcd resources."""
    streams.POLL = IDLE_POLL
    emu = FleetEmulator(chunking=False, bookmark_interval=10.0)
    scenario.add_classes(emu)
    if not {FAST, STANDARD} <= set(scenario.CLASSES):
        raise RuntimeError("the emulator's scenario lacks the fleet's StorageClasses")
    for m in members:
        scenario.add_member(
            emu, namespace=m.namespace, etcd=m.etcd, pod_ip=m.ip, storage_class=m.claim_class
        )
        scenario.add_etcd(emu, namespace=m.namespace, name=m.etcd, storage_class=m.expected_class)
    return emu


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth; means here are a few lines)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


async def write_logs(
    emu: FleetEmulator, members: Sequence[Member], *, rate: float, seed: int = 1
) -> None:
    """Append lines to every member's etcd log at `rate` lines per second on average (Poisson
    per member and second), plus the occasional burst of slow requests."""
    rng = random.Random(seed)
    maker = LineMaker(rng)
    groups = [members[g::GROUPS] for g in range(GROUPS)]
    loop = asyncio.get_running_loop()
    next_at, tick = loop.time(), 1.0
    while True:
        for group in groups:
            ts = iso_now()
            for m in group:
                lines = [
                    maker.line(namespace=m.namespace, slow=m.slow, ts=ts)
                    for _ in range(poisson(rng, rate * tick))
                ]
                if rate > 0 and maker.want_burst():
                    lines += maker.burst(namespace=m.namespace, ts=ts)
                for text in lines:
                    emu.logs.append((m.namespace, m.pod, "etcd"), text)
                emu.lines_written += len(lines)
            next_at += tick / GROUPS
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def forget_old_text(
    emu: FleetEmulator, members: Sequence[Member], *, keep: float = KEEP_TEXT_SECONDS
) -> None:
    """Blank the text of lines older than `keep` seconds, keeping their place and timestamp.

    Follow streams index into the line list and reconnecting readers reach back only about a
    minute (`sinceSeconds`), so the list may not shrink, but a 1,000-shoot seed writes 4,000
    lines a second and would otherwise hold every one of them.
    """
    done: dict[tuple[str, str], int] = {}
    while True:
        await asyncio.sleep(keep / 3)
        horizon = time.time_ns() - int(keep * 1e9)
        for m in members:
            key = (m.namespace, m.pod)
            lines = emu.logs.instances((m.namespace, m.pod, "etcd"))[-1].lines
            i = done.get(key, 0)
            while i < len(lines) and lines[i][0] < horizon:
                lines[i] = (lines[i][0], "")
                i += 1
            done[key] = i
