"""Pod log following against the emulator: exactly-once across cuts, stalls, restarts, errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from exporter.kube.client import KubeApi
from exporter.model import KubernetesLogSpec
from exporter.parser import split_kubelet_prefix
from exporter.sources.kubelog import KubeLogFollower
from tests.support.kube.client import eventually, kube_api
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import add_classes, add_member
from tests.support.kube.server import KubeEmulator

pytestmark = pytest.mark.timeout(90)

NS, POD = "shoot--p1--a", "etcd-main-0"
ZAP = (
    '{"level":"warn","ts":"2026-11-21T05:21:06.125Z","caller":"wal/wal.go:802",'
    '"msg":"slow fdatasync","took":"1.100583416s","expected-duration":"1s"}'
)


@dataclass
class RecordingSink:
    """A Sink that keeps what it is told."""

    max_line_bytes: int = 64 * 1024
    lines: list[str] = field(default_factory=list)
    received: list[int | None] = field(default_factory=list)
    ups: list[bool] = field(default_factory=list)
    reconnects: int = 0

    def feed(self, line: str, received_ns: int | None = None) -> None:
        self.lines.append(line)
        self.received.append(received_ns)

    def connected(self, up: bool) -> None:
        self.ups.append(up)

    def reconnected(self) -> None:
        self.reconnects += 1

    @property
    def texts(self) -> list[str]:
        return [
            line if ns is not None else split_kubelet_prefix(line)[1]
            for line, ns in zip(self.lines, self.received, strict=True)
        ]

    async def until(self, n: int, seconds: float = 20.0) -> None:
        await eventually(lambda: len(self.lines) >= n, seconds=seconds, interval=0.02)


@contextlib.asynccontextmanager
async def following(
    api: KubeApi, sink: RecordingSink, **kwargs: float
) -> AsyncIterator[KubeLogFollower]:
    options = {"inactivity_timeout": 30.0, "reconnect_delay": 0.02} | kwargs
    follower = KubeLogFollower(api, **options)  # type: ignore[arg-type]
    spec = KubernetesLogSpec(namespace=NS, pod=POD, container="etcd")
    task = asyncio.create_task(follower(spec, sink))
    try:
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def member(kube: KubeEmulator) -> None:
    add_classes(kube)
    add_member(kube, namespace=NS, etcd="etcd-main", pod_ip="127.0.0.2")


async def test_starts_at_now_and_follows_in_order(kube: KubeEmulator) -> None:
    member(kube)
    kube.append_log(NS, POD, ["before start 1", "before start 2"])
    await asyncio.sleep(0.01)
    sink = RecordingSink()
    async with kube_api(kube) as api, following(api, sink):
        await asyncio.sleep(0.3)
        kube.append_log(NS, POD, [f"line {i}" for i in range(50)] + [ZAP])
        await sink.until(51)
        await asyncio.sleep(0.2)
    assert sink.texts == [f"line {i}" for i in range(50)] + [ZAP]
    # the prefix is read once, by the follower: the sink gets the text and the prefix's time
    assert sink.lines == sink.texts
    assert all(ns is not None and ns > 1_700_000_000 * 10**9 for ns in sink.received)
    assert sink.ups[0] is True


async def test_since_reads_the_recent_past(kube: KubeEmulator) -> None:
    member(kube)
    kube.append_log(NS, POD, ["recent 1", "recent 2"])
    sink = RecordingSink()
    async with kube_api(kube) as api, following(api, sink, since=60.0):
        await sink.until(2)
    assert sink.texts == ["recent 1", "recent 2"]


@pytest.mark.slow
async def test_hundred_random_cuts_lose_and_repeat_nothing(kube: KubeEmulator) -> None:
    member(kube)
    rng = random.Random(11)
    sink = RecordingSink()
    fed: list[str] = []
    async with kube_api(kube) as api, following(api, sink):
        await asyncio.sleep(0.3)
        for round_ in range(100):
            batch = [
                ZAP
                if rng.random() < 0.3
                else f"round {round_} line {i} " + "x" * rng.randint(0, 3000)
                for i in range(rng.randint(1, 12))
            ]
            kube.append_log(NS, POD, batch)
            fed.extend(batch)
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            kube.cut_streams()
            await asyncio.sleep(rng.uniform(0.0, 0.03))
        await sink.until(len(fed), seconds=40)
        await asyncio.sleep(0.5)
    assert sink.texts == fed
    assert sink.reconnects >= 50
    assert kube.cuts["mid_line"] >= 20, kube.cuts


async def test_inactivity_timeout_recovers_a_stalled_stream(kube: KubeEmulator) -> None:
    member(kube)
    sink = RecordingSink()
    async with kube_api(kube) as api, following(api, sink, inactivity_timeout=0.5):
        await asyncio.sleep(0.3)
        kube.append_log(NS, POD, ["a"])
        await sink.until(1)
        kube.stall_streams(NS, POD)
        kube.append_log(NS, POD, ["b", "c"])
        await sink.until(3, seconds=10)
    assert sink.texts == ["a", "b", "c"]
    assert sink.reconnects >= 1


async def test_restart_reads_the_previous_tail_once(kube: KubeEmulator) -> None:
    member(kube)
    sink = RecordingSink()
    async with kube_api(kube) as api, following(api, sink, inactivity_timeout=0.5):
        await asyncio.sleep(0.3)
        kube.append_log(NS, POD, ["old 1"])
        await sink.until(1)
        # The stream stalls, the container writes its crash tail and restarts.
        kube.stall_streams(NS, POD)
        kube.append_log(NS, POD, ["old 2 (crash tail)", "old 3 (crash tail)"])
        kube.restart_container(NS, POD)
        kube.append_log(NS, POD, ["new 1", "new 2"])
        await sink.until(5, seconds=10)
        # A second restart while connected: the stream ends, the previous log adds nothing.
        kube.restart_container(NS, POD)
        kube.append_log(NS, POD, ["newer 1"])
        await sink.until(6, seconds=10)
        await asyncio.sleep(0.3)
    assert sink.texts == [
        "old 1",
        "old 2 (crash tail)",
        "old 3 (crash tail)",
        "new 1",
        "new 2",
        "newer 1",
    ]
    # the first tail is read, then read again to see it ended (nothing new); the second
    # restart's previous log adds nothing at once
    assert kube.count_requests(f"/pods/{POD}/log", previous="true") == 3


async def test_overlong_line_is_truncated_not_fatal(kube: KubeEmulator) -> None:
    member(kube)
    sink = RecordingSink(max_line_bytes=4096)
    async with kube_api(kube) as api, following(api, sink):
        await asyncio.sleep(0.3)
        kube.append_log(NS, POD, ["short", "y" * (3 * 1024 * 1024), "after"])
        await sink.until(3)
    assert sink.texts[0] == "short"
    assert sink.texts[2] == "after"
    assert 4096 < len(sink.lines[1]) <= 4096 + 64
    assert set(sink.texts[1]) == {"y"}


async def test_denied_log_keeps_retrying_and_is_counted(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    member(kube)
    kube.deny("pods/log", verb="get", namespace=NS)
    errors: Counter[tuple[str, str, str]] = Counter()
    caplog.set_level(logging.INFO)
    sink = RecordingSink()
    async with kube_api(kube, errors=errors) as api, following(api, sink):
        await eventually(lambda: errors[("pods/log", "get", "403")] >= 3, seconds=10)
        kube.allow("pods/log", verb="get", namespace=NS)
        await asyncio.sleep(1.5)
        kube.append_log(NS, POD, ["allowed now"])
        await sink.until(1, seconds=40)
    denied = [r for r in caplog.records if r.getMessage().startswith("Kubernetes API denied")]
    assert len(denied) == 1
    assert (denied[0].verb, denied[0].resource, denied[0].namespace) == ("get", "pods/log", NS)  # type: ignore[attr-defined]


async def test_task_restart_resumes_without_repeats(kube: KubeEmulator) -> None:
    member(kube)
    sink = RecordingSink()
    async with kube_api(kube) as api:
        follower = KubeLogFollower(api, inactivity_timeout=30.0, reconnect_delay=0.02)
        spec = KubernetesLogSpec(namespace=NS, pod=POD, container="etcd")
        for round_ in range(3):
            task = asyncio.create_task(follower(spec, sink))
            await asyncio.sleep(0.3)
            kube.append_log(NS, POD, [f"r{round_}"])
            await sink.until(round_ + 1)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            kube.append_log(NS, POD, [f"between {round_}"])
        task = asyncio.create_task(follower(spec, sink))
        await sink.until(6)
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert sink.texts == ["r0", "between 0", "r1", "between 1", "r2", "between 2"]


async def test_deleted_pod_does_not_crash_the_follower(kube: KubeEmulator) -> None:
    member(kube)
    sink = RecordingSink()
    async with kube_api(kube) as api, following(api, sink) as _:
        await asyncio.sleep(0.3)
        kube.delete_pod(NS, POD)
        await asyncio.sleep(0.5)
        assert sink.ups[-1] is False


async def test_unreadable_previous_log_does_not_block_following(kube: KubeEmulator) -> None:
    member(kube)
    sink = RecordingSink()
    async with kube_api(kube) as api, following(api, sink):
        await asyncio.sleep(0.3)
        kube.append_log(NS, POD, ["one"])
        await sink.until(1)

        def new_container(obj: dict) -> None:  # type: ignore[type-arg]
            st = obj["status"]["containerStatuses"][0]
            st["containerID"] = "containerd://other"
            st["lastState"] = {"terminated": {"containerID": "containerd://gone", "exitCode": 2}}

        # The status names a new container and a dead one whose log the kubelet no longer
        # has (400: removed after further restarts).
        kube.store.modify("pods", (NS, POD), new_container)
        kube.cut_streams()
        await asyncio.sleep(0.3)
        kube.append_log(NS, POD, ["two"])
        await sink.until(2)
    assert sink.texts == ["one", "two"]
    assert kube.count_requests(f"/pods/{POD}/log", previous="true") == 1


async def test_crash_loop_reads_every_run_once(kube: KubeEmulator) -> None:
    """Five runs in a row: tails written after the stream was cut, a restart during the read of
    the previous log, a restart while the API is unreachable; every line once, in order."""
    member(kube)
    sink = RecordingSink()
    fed: list[str] = []

    def write(lines: list[str]) -> None:
        kube.append_log(NS, POD, lines)
        fed.extend(lines)

    async with kube_api(kube) as api, following(api, sink, inactivity_timeout=30.0) as follower:
        await asyncio.sleep(0.3)
        write(["run0 a"])
        await sink.until(len(fed))
        # run 0 writes a tail the stream does not deliver, then crashes into back-off: the tail
        # is read while the container waits
        kube.stall_streams(NS, POD)
        write(["run0 tail 1", "run0 tail 2"])
        kube.crash_container(NS, POD)
        follower.nudge(NS, POD)
        await sink.until(len(fed), seconds=10)
        kube.start_container(NS, POD)
        follower.nudge(NS, POD)
        write(["run1 a", "run1 b"])
        await sink.until(len(fed), seconds=10)
        # run 1 restarts at once while followed
        kube.restart_container(NS, POD)
        write(["run2 a"])
        await sink.until(len(fed), seconds=10)
        # run 2's tail is only in its log; while it is read, run 3 starts, logs, crashes and
        # run 4 starts (run 2's log is no longer the kept one, the read still completes)
        kube.stall_streams(NS, POD)
        write(["run2 tail"])
        kube.crash_container(NS, POD)
        reads: list[bool] = []

        def during_read(namespace: str, pod: str, previous: bool) -> None:
            if previous and not reads:
                reads.append(previous)
                kube.start_container(NS, POD)
                write(["run3 a", "run3 b"])
                kube.crash_container(NS, POD)
                kube.start_container(NS, POD)
                write(["run4 a"])

        kube.on_log_request = during_read
        follower.nudge(NS, POD)
        await eventually(lambda: bool(reads), seconds=10)
        await sink.until(len(fed), seconds=10)  # run 2's tail, run 3 (previous), run 4
        kube.on_log_request = None
        # the API goes away; run 4 logs and restarts meanwhile; the API comes back
        await kube.go_offline()
        write(["run4 tail"])
        kube.restart_container(NS, POD)
        write(["run5 a"])
        await asyncio.sleep(0.5)
        await kube.go_online()
        await sink.until(len(fed), seconds=20)
        await asyncio.sleep(0.5)
    assert reads == [True]
    assert sink.texts == fed
    assert kube.count_requests(f"/pods/{POD}/log", previous="true") >= 4


async def test_more_than_one_restart_between_reads_loses_only_the_middle_runs(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    member(kube)
    sink = RecordingSink()
    caplog.set_level(logging.WARNING)
    async with kube_api(kube) as api, following(api, sink) as follower:
        await asyncio.sleep(0.3)
        kube.append_log(NS, POD, ["run0 a"])
        await sink.until(1)
        await kube.go_offline()
        kube.append_log(NS, POD, ["run0 tail (lost)"])
        kube.restart_container(NS, POD)
        kube.append_log(NS, POD, ["run1 (lost)"])
        kube.restart_container(NS, POD)
        kube.append_log(NS, POD, ["run2 (previous)"])
        kube.restart_container(NS, POD)
        kube.append_log(NS, POD, ["run3 a"])
        await kube.go_online()
        follower.nudge(NS, POD)
        await sink.until(3, seconds=20)
        await asyncio.sleep(0.3)
    assert sink.texts == ["run0 a", "run2 (previous)", "run3 a"]
    lost = [r for r in caplog.records if r.getMessage().startswith("Container runs ended")]
    assert [(r.runsLost, r.tailLost) for r in lost] == [(1, True)]  # type: ignore[attr-defined]
