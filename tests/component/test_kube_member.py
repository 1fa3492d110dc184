"""A member outlives its container: the daemon through a crash loop, a re-created pod, a pod gone
for good and a deleted namespace, against the API emulator.

The daemon is the real `etcd-latency-exporter run` process. The member's etcd log is fed with
lines captured from real etcd (tests/fixtures), its /metrics is a captured real etcd 3.5 payload
served on the pod IP while the container runs, and /metrics of the daemon is sampled every
250 ms through the whole run: the member's series must be in every sample, `target_up` must be 0
in every sample that shows the container down, and the counters must end equal to what was fed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from exporter.model import Event, EventKind
from exporter.parser import parse_line
from tests.support.etcd import free_port
from tests.support.kube.client import eventually
from tests.support.kube.daemon import Daemon, Sample, run_daemon, select, value
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import FAST, add_classes, add_member
from tests.support.kube.server import KubeEmulator

P = "etcd_latency_"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PAYLOAD = (FIXTURES / "metrics" / "etcd-3.5.metrics").read_bytes()
# real etcd logs with slow requests: 3.5 (zap) and 3.4 as Gardener's etcd-wrapper writes it
LOGS = ("etcd-3.5-zap/single.log", "etcd-3.4-capnslog/single.log", "etcd-3.4-zap/single.log")

NS, ETCD, POD = "shoot--p1--loop", "etcd-main", "etcd-main-0"
POD_IP = "127.0.0.5"


def captured_lines() -> list[str]:
    return [
        line for name in LOGS for line in (FIXTURES / name).read_text().splitlines() if line.strip()
    ]


def slow_requests(lines: list[str]) -> int:
    return sum(
        1
        for line in lines
        if isinstance(ev := parse_line(line), Event) and ev.kind is EventKind.SLOW_REQUEST
    )


class EtcdEndpoint:
    """The member's /metrics on its pod IP, answering only while its container runs."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def metrics(request: web.Request) -> web.Response:
            del request
            return web.Response(body=PAYLOAD, content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@dataclass
class Member:
    """The member's container in the emulator, its log fed from captured lines."""

    kube: KubeEmulator
    endpoint: EtcdEndpoint
    lines: list[str]
    fed: list[str] = field(default_factory=list)

    def feed(self, n: int) -> None:
        start = len(self.fed) % len(self.lines)
        batch = (self.lines[start:] + self.lines)[:n]
        self.kube.append_log(NS, POD, batch)
        self.fed.extend(batch)

    async def crash(self) -> None:
        """etcd exits; the kubelet backs off before the next run."""
        await self.endpoint.stop()
        self.kube.crash_container(NS, POD)

    async def start(self) -> None:
        await self.endpoint.start()
        self.kube.start_container(NS, POD)


@dataclass
class Sampler:
    """/metrics of the daemon every 250 ms: per sample, the member's series."""

    daemon: Daemon
    samples: list[dict[str, float | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                got = await self.daemon.metrics()
            except Exception as err:
                self.errors.append(repr(err))
            else:
                self.samples.append(member_series(got))
            await asyncio.sleep(0.25)


def member_series(samples: list[Sample]) -> dict[str, float | None]:
    state = [lab["state"] for lab, v in select(samples, P + "member_state", pod=POD) if v == 1.0]
    slow = select(samples, P + "slow_requests_total", namespace=NS, pod=POD)
    return {
        "target_up": value(samples, P + "target_up", namespace=NS, pod=POD),
        "log_stream_up": value(samples, P + "log_stream_up", namespace=NS, pod=POD),
        "slow_requests": sum(v for _, v in slow) if slow else None,
        "restarts": value(samples, P + "member_restarts_total", namespace=NS, pod=POD),
        "lines": value(samples, P + "exporter_log_lines_read_total", namespace=NS, pod=POD),
        "running": 1.0 if state == ["running"] else 0.0 if state else None,
    }


@contextlib.asynccontextmanager
async def sampling(daemon: Daemon) -> AsyncIterator[Sampler]:
    sampler = Sampler(daemon)
    task = asyncio.create_task(sampler.run())
    try:
        yield sampler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    try:
        await eventually(check, seconds=seconds, interval=0.1)
    except TimeoutError:
        pytest.fail(f"timed out after {seconds}s waiting for {what}")


def daemon_args(kube: KubeEmulator, port: int, *extra: str) -> tuple[str, ...]:
    return (
        "--discovery=kubernetes",
        f"--kubernetes.kubeconfig={kube.kubeconfig}",
        "--scrape.scheme=http",
        f"--scrape.port={port}",
        "--scrape.interval=1s",
        "--scrape.timeout=1s",
        "--log.level=info",
        *extra,
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_crash_loop_keeps_the_member_and_counts_every_line_once(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    port = free_port(POD_IP)
    add_classes(kube)
    add_member(kube, namespace=NS, etcd=ETCD, pod_ip=POD_IP, storage_class=FAST)
    member = Member(kube, EtcdEndpoint(POD_IP, port), captured_lines())
    await member.endpoint.start()
    with run_daemon(tmp_path, *daemon_args(kube, port)) as daemon:
        await daemon.wait_ready(seconds=30)

        async def read_all() -> bool:
            got = member_series(await daemon.metrics())
            return got["lines"] == len(member.fed) and got["target_up"] == 1.0

        async def caught_up() -> bool:
            return member_series(await daemon.metrics())["lines"] == len(member.fed)

        await until(lambda: _stream_up(daemon), 20, "the log stream")
        member.feed(60)
        await until(read_all, 20, "the first lines and scrape")
        async with sampling(daemon) as sampler:
            # 1: lines written after the follow stream was cut (only in the previous log), a
            # crash into back-off, a later run
            kube.stall_streams(NS, POD)
            member.feed(40)
            await member.crash()
            await asyncio.sleep(2.5)
            await member.start()
            member.feed(30)
            await until(read_all, 20, "run 1")
            # 2: a restart at once while followed
            member.feed(20)
            await until(caught_up, 20, "run 1's last lines")
            await member.endpoint.stop()
            kube.restart_container(NS, POD)
            await member.endpoint.start()
            member.feed(25)
            await until(read_all, 20, "run 2")
            # 3: run 2's tail only in its log; the next run starts while that log is read
            kube.stall_streams(NS, POD)
            member.feed(35)
            during: list[bool] = []

            def start_during_read(namespace: str, pod: str, previous: bool) -> None:
                if previous and not during:
                    during.append(True)
                    kube.start_container(NS, POD)
                    member.feed(15)

            kube.on_log_request = start_during_read
            await member.endpoint.stop()
            kube.crash_container(NS, POD)
            await until(lambda: _true(bool(during)), 20, "the previous log read")
            kube.on_log_request = None
            await member.endpoint.start()
            member.feed(10)
            await until(read_all, 20, "run 3")
            # 4: a restart while the API is unreachable
            await kube.go_offline()
            member.feed(20)
            await member.endpoint.stop()
            kube.restart_container(NS, POD)
            await member.endpoint.start()
            member.feed(20)
            await asyncio.sleep(2.0)
            await kube.go_online()
            await until(read_all, 60, "run 4 after the API came back")
            # 5: a last crash, a pause in back-off, a last run
            kube.stall_streams(NS, POD)
            member.feed(30)
            await member.crash()
            await asyncio.sleep(2.5)
            await member.start()
            member.feed(30)
            await until(read_all, 30, "run 5")
            await asyncio.sleep(1.5)  # nothing more may arrive: no line twice
        final = member_series(await daemon.metrics())
        assert daemon.popen.poll() is None
    fed_slow = slow_requests(member.fed)
    assert fed_slow >= 50  # real slow-request lines among the others
    assert final["lines"] == len(member.fed)
    assert final["slow_requests"] == fed_slow
    assert final["restarts"] == 5.0
    assert final["running"] == 1.0
    assert not sampler.errors
    assert len(sampler.samples) >= 30  # about 12 s of sampling
    # the member's series are in every sample of the whole run
    for name in ("target_up", "log_stream_up", "slow_requests", "restarts", "running"):
        missing = [i for i, s in enumerate(sampler.samples) if s[name] is None]
        assert not missing, (name, missing)
    down = [s for s in sampler.samples if s["running"] == 0.0]
    assert len(down) >= 8  # two back-offs of 2.5 s, sampled every 250 ms
    assert {s["target_up"] for s in down} == {0.0}
    assert Counter(s["log_stream_up"] for s in down)[0.0] >= len(down) // 2
    # counters never went backwards
    for name in ("lines", "slow_requests", "restarts"):
        seen = [s[name] for s in sampler.samples if s[name] is not None]
        assert seen == sorted(seen), name


async def _stream_up(daemon: Daemon) -> bool:
    return member_series(await daemon.metrics())["log_stream_up"] == 1.0


async def _true(value_: bool) -> bool:
    return value_


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_recreated_pod_continues_and_gone_members_leave(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    add_classes(kube)
    spots = {
        "shoot--p1--again": "127.0.0.6",  # deleted and re-created under the same name
        "shoot--p1--gone": "127.0.0.7",  # deleted for good
        "shoot--p1--deleted": "127.0.0.8",  # its namespace is deleted
    }
    for ns, ip in spots.items():
        add_member(kube, namespace=ns, etcd=ETCD, pod_ip=ip, storage_class=FAST)
    lines = captured_lines()[:50]
    port = free_port()
    args = daemon_args(kube, port, "--kubernetes.member-grace=3s")
    with run_daemon(tmp_path, *args) as daemon:
        await daemon.wait_ready(seconds=30)

        async def streams_up() -> bool:
            got = await daemon.metrics()
            return sum(v for _, v in select(got, P + "log_stream_up")) == 3

        await until(streams_up, 20, "three log streams")
        for ns in spots:
            kube.append_log(ns, POD, lines)

        async def lines_read(ns: str, n: int) -> bool:
            got = await daemon.metrics()
            return value(got, P + "exporter_log_lines_read_total", namespace=ns, pod=POD) == n

        for ns in spots:
            await until(lambda ns=ns: lines_read(ns, len(lines)), 20, f"lines of {ns}")
        async with sampling_of(daemon, "shoot--p1--again") as presence:
            kube.recreate_pod("shoot--p1--again", POD)
            await asyncio.sleep(1.0)
            kube.start_container("shoot--p1--again", POD, pod_ip="127.0.0.9")
            kube.append_log("shoot--p1--again", POD, lines[:20])
            await until(lambda: lines_read("shoot--p1--again", len(lines) + 20), 20, "new pod")
        assert presence
        assert all(presence), presence  # never left /metrics
        got = await daemon.metrics()
        slow = select(got, P + "slow_requests_total", namespace="shoot--p1--again", pod=POD)
        assert sum(v for _, v in slow) == slow_requests(lines + lines[:20])
        assert value(got, P + "member_restarts_total", namespace="shoot--p1--again") == 0.0

        loop = asyncio.get_running_loop()
        kube.delete_pod("shoot--p1--gone", POD)
        deleted_at = loop.time()

        async def state_gone() -> bool:
            got = await daemon.metrics()
            return value(got, P + "member_state", namespace="shoot--p1--gone", state="gone") == 1.0

        await until(state_gone, 5, "the gone state")
        kube.delete_namespace("shoot--p1--deleted")
        ns_deleted_at = loop.time()

        async def without(ns: str) -> bool:
            return not any(lab.get("namespace") == ns for _, lab, _ in await daemon.metrics())

        await until(lambda: without("shoot--p1--deleted"), 5, "the deleted namespace's series")
        ns_took = loop.time() - ns_deleted_at
        assert not await without("shoot--p1--gone")  # still within its grace
        await until(lambda: without("shoot--p1--gone"), 10, "the gone member's series")
        gone_took = loop.time() - deleted_at
    assert ns_took < 2.0, ns_took  # one discovery cycle, not the grace
    assert 2.5 <= gone_took <= 6.0, gone_took  # the grace (3 s), then the next collection


@contextlib.asynccontextmanager
async def sampling_of(daemon: Daemon, ns: str) -> AsyncIterator[list[bool]]:
    """Every 250 ms: whether the member of `ns` has its target_up, log_stream_up and lines."""
    seen: list[bool] = []

    async def sample() -> None:
        while True:
            got = await daemon.metrics()
            seen.append(
                all(
                    value(got, P + name, namespace=ns, pod=POD) is not None
                    for name in ("target_up", "log_stream_up", "exporter_log_lines_read_total")
                )
            )
            await asyncio.sleep(0.25)

    task = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
