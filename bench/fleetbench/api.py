"""The simulated seed's API server: the project's Kubernetes emulator filled with the fleet, and
the pod logs written at a steady rate.

Reuses tests/support/kube (the emulator the component tests use) unmodified, with three settings for
scale: no deliberate chunk splitting, a slower idle poll of each follow stream (the emulator
re-checks an idle stream every `streams.POLL` seconds; 2,000 streams at the test default of
0.25 s would cost the simulator more than the logs themselves), and bookmarks every 10 s.
Lines are written in ten staggered groups per tick, so the streams wake spread over the second
rather than all at once.

For the storm mode the emulator keeps a ledger of every line it wrote per member (and of the
slow requests by operation), can pause the log writers while the harness reads the ledger and
the exporter's counters, and runs a storm: a set of members writing slow requests at a fixed
rate on top of their normal lines for a while. Hooks (POST /_emu/<name>): `stats`, `ledger`,
`pause`, `resume`, `storm`; `append` (the emulator's hook) also records its lines in the ledger,
as slow requests of `operation` when the harness names one.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bench.fleetbench.ledger import Ledger, member_key
from bench.fleetbench.loglines import Line, LineMaker, iso_now
from bench.fleetbench.seed import FAST, STANDARD, Member
from tests.support.kube import scenario, streams
from tests.support.kube.server import KubeEmulator

IDLE_POLL = 1.0
GROUPS = 10
KEEP_TEXT_SECONDS = 180.0  # older lines keep their timestamp only (no reader reaches back)
STORM_TICKS = 10  # storm writes per second


class FleetEmulator(KubeEmulator):
    """The emulator plus the harness's hooks: stats, the ledger, pause/resume, the storm."""

    lines_written = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ledger = Ledger()
        self.paused = False  # the normal log writer skips its ticks (the storm does not pause)
        self.storm: dict[str, Any] = {"state": "idle"}
        self._storm_task: asyncio.Task[None] | None = None

    def write(self, namespace: str, pod: str, lines: Sequence[Line]) -> list[int]:
        """Append lines to a member's etcd log and to the ledger; their timestamps (ns)."""
        key = (namespace, pod, "etcd")
        stamps = [self.logs.append(key, line.text) for line in lines]
        self.ledger.record(member_key(namespace, pod), lines)
        self.lines_written += len(lines)
        return stamps

    async def _hook(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action == "stats":
            return web.json_response(self.stats())
        if action == "ledger":
            return web.json_response({**self.ledger.as_json(), "storm": self.storm})
        if action in ("pause", "resume"):
            self.paused = action == "pause"
            return web.json_response({"result": self.paused})
        if action == "storm":
            return web.json_response({"result": self.start_storm(await request.json())})
        if action == "append":  # the emulator's own append, plus the ledger
            body = await request.json()
            lines = [Line(text, body.get("operation")) for text in body["lines"]]
            stamps = self.write(body["namespace"], body["pod"], lines)
            if body.get("watch"):
                self.watch_log(body["namespace"], body["pod"], stamps)
            return web.json_response({"result": stamps})
        return await super()._hook(request)

    def start_storm(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start the storm `body` describes: `members` ([namespace, pod] pairs), `rate` slow
        requests per member and second, `seconds`, `seed`."""
        if self._storm_task is not None and not self._storm_task.done():
            raise web.HTTPConflict(text="a storm is running")
        members = [(str(ns), str(pod)) for ns, pod in body["members"]]
        self.storm = {"state": "starting", "members": len(members), "written": 0}
        self._storm_task = asyncio.create_task(
            write_storm(
                self,
                members,
                rate=float(body["rate"]),
                seconds=float(body["seconds"]),
                seed=int(body.get("seed", 1)),
            )
        )
        return self.storm

    def stats(self) -> dict[str, Any]:
        """Open follow streams, log opens so far, lines written, the storm's state."""
        opens = sum(1 for path, _verb, _q in self.requests if path.endswith("/log"))
        return {
            "streams": len(self.streams),
            "log_opens": opens,
            "lines": self.lines_written,
            "storm": self.storm,
        }


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
            for m in group if not emu.paused else ():
                lines = [
                    maker.line(namespace=m.namespace, slow=m.slow, ts=ts)
                    for _ in range(poisson(rng, rate * tick))
                ]
                if rate > 0 and maker.want_burst():
                    lines += maker.burst(namespace=m.namespace, ts=ts)
                if lines:
                    emu.write(m.namespace, m.pod, lines)
            next_at += tick / GROUPS
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def write_storm(
    emu: FleetEmulator,
    members: Sequence[tuple[str, str]],
    *,
    rate: float,
    seconds: float,
    seed: int,
) -> None:
    """`rate` slow requests per second into each member's log for `seconds` of wall-clock time,
    on top of the normal lines: real shapes (every operation, varied keys), written
    STORM_TICKS times a second.

    Each tick writes what is due by the clock (floor(rate·elapsed) lines per member so far). A
    writer that falls behind catches up by at most one second's lines per tick and skips the
    rest, so the storm ends on time and no tick blocks the emulator for long; `emu.storm`
    records what was written and skipped, so the rate actually sent is known (the ledger has
    every line).
    """
    maker = LineMaker(random.Random(seed))
    loop = asyncio.get_running_loop()
    start = loop.time()
    emu.storm.update(state="running", started=time.time(), rate=rate, seconds=seconds)
    done = skipped = 0  # lines per member
    catch_up = max(1, math.ceil(rate))
    k = 0
    while True:
        elapsed = min(loop.time() - start, seconds)
        due = math.floor(rate * elapsed) - done
        if due > catch_up:
            skipped += due - catch_up
            done += due - catch_up
            due = catch_up
        ts = iso_now()
        for namespace, pod in members:
            lines = [maker.slow_request(namespace=namespace, ts=ts) for _ in range(due)]
            emu.write(namespace, pod, lines)
        done += due
        emu.storm.update(written=(done - skipped) * len(members), skipped=skipped * len(members))
        if elapsed >= seconds:
            break
        k += 1
        await asyncio.sleep(max(0.0, start + k / STORM_TICKS - loop.time()))
    emu.storm.update(state="done", ended=time.time())


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
