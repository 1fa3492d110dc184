"""The whole daemon in Kubernetes mode: emulated API, real etcd members, /metrics read back.

discovery → supervisor → pod log follower → parser → state → collector → /metrics, in the real
`etcd-latency-exporter run` process. Two real etcd 3.5 members listen on the pod IPs 127.0.0.2
and 127.0.0.3 (one on a disk slowed by strace), their own log lines are fed into the emulated
pod logs while the emulator cuts the follow streams a hundred times, and the exported counts must
equal what was fed, exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from exporter.model import Event
from exporter.parser import parse_line
from tests.support.etcd import EtcdConfig, EtcdProcess, EtcdUnavailable, free_port, launch
from tests.support.kube.client import eventually
from tests.support.kube.daemon import Daemon, run_daemon, select, value
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.objects import claim_name
from tests.support.kube.scenario import FAST, STANDARD, THREE_SHOOTS, add_three_shoots
from tests.support.kube.server import KubeEmulator

SLOW_POD = ("shoot--p2--c", "etcd-main")  # the drifted member, on the slow etcd
FAST_POD = ("shoot--p1--a", "etcd-main")
P = "etcd_latency_"


def _free_on_both(*hosts: str) -> int:
    for _ in range(50):
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every host")


@contextlib.contextmanager
def two_members(tmp_path: Path, metrics_port: int) -> Iterator[dict[tuple[str, str], EtcdProcess]]:
    members: dict[tuple[str, str], EtcdProcess] = {}
    try:
        for key, host, delay in ((SLOW_POD, "127.0.0.2", 300_000), (FAST_POD, "127.0.0.3", 0)):
            name = key[0].replace("-", "")
            config = EtcdConfig(
                version="3.5",
                name=name,
                data_dir=tmp_path / name / "data",
                log_path=tmp_path / name / "etcd.log",
                host=host,
                client_port=free_port(host),
                peer_port=free_port(host),
                metrics_port=metrics_port,
                fsync_delay_us=delay,
                extra_args=("--experimental-warning-apply-duration=10ms",),
            )
            members[key] = launch(config, wait=40.0)
        yield members
    except EtcdUnavailable as err:
        pytest.skip(str(err))
    finally:
        for proc in members.values():
            proc.stop(graceful=False)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Members without a real etcd replay logs captured from real etcd 3.4 (capnslog, as Gardener's
# etcd-wrapper 0.6 writes them, and zap) and 3.5.
CAPTURED = (
    "etcd-3.4-capnslog/single.log",
    "etcd-3.4-zap/single.log",
    "etcd-3.5-zap/cluster-m1.log",
)


class Feeder:
    """Writes real etcd log lines into the emulated pod logs: each live etcd's own log file as
    it grows (plus some of its earlier lines again), and captured logs for the other members."""

    def __init__(self, kube: KubeEmulator, sources: dict[tuple[str, str], Path]) -> None:
        self.kube, self.sources = kube, sources
        self.offsets = dict.fromkeys(sources, 0)
        self.fed: dict[tuple[str, str], list[str]] = {k: [] for k in THREE_SHOOTS}
        others = [k for k in THREE_SHOOTS if k not in sources]
        self.captured = {
            key: [
                line
                for line in (FIXTURES / CAPTURED[i % len(CAPTURED)]).read_text().splitlines()
                if line
            ]
            for i, key in enumerate(others)
        }

    def step(self, rng: random.Random) -> None:
        """Feed what is new, plus a few lines more."""
        for key, path in self.sources.items():
            data = path.read_bytes()[self.offsets[key] :]
            end = data.rfind(b"\n") + 1
            self.offsets[key] += end
            lines = data[:end].decode(errors="replace").splitlines()
            seen = self.fed[key]
            lines += [rng.choice(seen) for _ in range(rng.randint(0, 6))] if seen else []
            self._feed(key, lines)
        for key, captured in self.captured.items():
            start = len(self.fed[key]) % len(captured)
            self._feed(key, captured[start : start + rng.randint(0, 12)])

    def _feed(self, key: tuple[str, str], lines: list[str]) -> None:
        if lines:
            self.kube.append_log(key[0], f"{key[1]}-0", lines)
            self.fed[key].extend(lines)


def expected_events(lines: list[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in lines:
        result = parse_line(line)
        if isinstance(result, Event):
            out[str(result.kind)] += 1
    return out


@contextlib.asynccontextmanager
async def daemon_for(
    kube: KubeEmulator, tmp_path: Path, metrics_port: int
) -> AsyncIterator[Daemon]:
    args = (
        "--discovery=kubernetes",
        f"--kubernetes.kubeconfig={kube.kubeconfig}",
        "--scrape.scheme=http",
        f"--scrape.port={metrics_port}",
        "--scrape.interval=1s",
        "--scrape.timeout=1s",
        "--kubernetes.member-grace=2s",
        "--log.level=info",
    )
    with run_daemon(tmp_path, *args) as daemon:
        await daemon.wait_ready(seconds=30)
        yield daemon


async def _until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    try:
        await eventually(check, seconds=seconds, interval=0.2)
    except TimeoutError:
        pytest.fail(f"timed out after {seconds}s waiting for {what}")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_volumes_drift_relay_and_exact_counts_under_cuts(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    metrics_port = _free_on_both("127.0.0.2", "127.0.0.3")
    ips = {SLOW_POD: "127.0.0.2", FAST_POD: "127.0.0.3"}
    add_three_shoots(kube, pod_ips=ips)
    with two_members(tmp_path, metrics_port) as members:
        feeder = Feeder(kube, {k: m.log_path for k, m in members.items()})
        async with daemon_for(kube, tmp_path, metrics_port) as daemon:
            rng = random.Random(3)
            for i in range(400):
                if i % 10 == 0:
                    # requests on the slow disk: "apply request took too long" lines
                    await asyncio.to_thread(members[SLOW_POD].put, f"/registry/pods/x/p{i}", "v")
                    await asyncio.to_thread(members[FAST_POD].put, f"/registry/leases/x/l{i}", "v")
                feeder.step(rng)
                if kube.streams and sum(kube.cuts.values()) < 100:
                    kube.cut_streams(fraction=rng.uniform(0.3, 1.0))
                await asyncio.sleep(0.05)
                if sum(kube.cuts.values()) >= 100 and i >= 100:
                    break
            assert sum(kube.cuts.values()) >= 100, kube.cuts
            assert kube.cuts["mid_line"] >= 10, kube.cuts
            feeder.step(rng)
            await _check_counts(daemon, feeder)
            samples = await daemon.metrics()
            _check_volumes(samples)
            _check_relayed(samples)
            await _check_removals(kube, daemon)
        assert daemon.stop() == 0


async def _check_counts(daemon: Daemon, feeder: Feeder) -> None:
    async def caught_up() -> bool:
        samples = await daemon.metrics()
        for (ns, etcd), lines in feeder.fed.items():
            got = value(samples, P + "exporter_log_lines_read_total", namespace=ns, pod=f"{etcd}-0")
            if got != len(lines):
                return False
        return True

    await _until(caught_up, 40, "log lines read")
    await asyncio.sleep(1.5)  # nothing more may arrive: no duplicates after a late reconnect
    samples = await daemon.metrics()
    for (ns, etcd), lines in feeder.fed.items():
        pod = f"{etcd}-0"
        assert value(samples, P + "exporter_log_lines_read_total", namespace=ns, pod=pod) == len(
            lines
        )
        got = {
            lab["event"]: v
            for lab, v in select(samples, P + "log_events_total", namespace=ns, pod=pod)
            if v
        }
        assert got == expected_events(lines), (ns, pod)
    # The slowed member really logged slow requests, and capnslog lines went through too.
    assert expected_events(feeder.fed[SLOW_POD])["slow_request"] > 0
    everything = [line for lines in feeder.fed.values() for line in lines]
    assert any(" W | etcdserver: " in line for line in everything)


def _check_volumes(samples: list[tuple[str, dict[str, str], float]]) -> None:
    info = {(lab["namespace"], lab["etcd"]): lab for lab, _ in select(samples, P + "volume_info")}
    assert set(info) == set(THREE_SHOOTS)
    # etcd-events' Etcd resources say "": the default class (standard) is what they intend.
    expect = {
        ("shoot--p1--a", "etcd-main"): (FAST, "ssd", FAST, "etcd", 0.0),
        ("shoot--p1--a", "etcd-events"): (STANDARD, "hdd", STANDARD, "default-class", 0.0),
        ("shoot--p1--b", "etcd-main"): (FAST, "ssd", FAST, "etcd", 0.0),
        ("shoot--p1--b", "etcd-events"): (FAST, "ssd", STANDARD, "default-class", 1.0),
        ("shoot--p2--c", "etcd-main"): (STANDARD, "hdd", FAST, "etcd", 1.0),
        ("shoot--p2--c", "etcd-events"): (STANDARD, "hdd", STANDARD, "default-class", 0.0),
    }
    for key, (sc, disk, expected, expected_from, mismatch) in expect.items():
        lab = info[key]
        assert (
            lab["storage_class"], lab["disk_class"], lab["expected_storage_class"],
            lab["expected_from"],
        ) == (sc, disk, expected, expected_from)  # fmt: skip
        assert lab["pvc"] == claim_name(key[1])
        assert lab["pv"] == f"pv-{key[0]}-{claim_name(key[1])}"
        assert lab["project"] == key[0].split("--")[1]
        assert lab["shoot"] == key[0].split("--")[2]
        got = value(samples, P + "storage_class_mismatch", namespace=key[0], etcd=key[1])
        assert got == mismatch, key
    drift = select(
        samples, P + "storage_class_mismatch", namespace="shoot--p2--c", etcd="etcd-main"
    )
    assert drift[0][0]["storage_class"] == STANDARD
    assert drift[0][0]["expected_storage_class"] == FAST


def _check_relayed(samples: list[tuple[str, dict[str, str], float]]) -> None:
    name = P + "disk_wal_fsync_duration_seconds_count"
    slow = select(samples, name, namespace=SLOW_POD[0], etcd=SLOW_POD[1])
    fast = select(samples, name, namespace=FAST_POD[0], etcd=FAST_POD[1])
    assert slow
    assert fast
    assert (slow[0][0]["storage_class"], slow[0][0]["disk_class"]) == (STANDARD, "hdd")
    assert (fast[0][0]["storage_class"], fast[0][0]["disk_class"]) == (FAST, "ssd")
    assert slow[0][0]["pvc"] == "main-etcd-etcd-main-0"
    # the slowed member's fsyncs take about 0.3 s
    s = P + "disk_wal_fsync_duration_seconds_sum"
    slow_sum = value(samples, s, namespace=SLOW_POD[0], etcd=SLOW_POD[1])
    assert slow_sum is not None
    assert slow_sum / slow[0][1] > 0.2
    assert value(samples, P + "target_up", namespace=SLOW_POD[0], etcd=SLOW_POD[1]) == 1.0


async def _check_removals(kube: KubeEmulator, daemon: Daemon) -> None:
    kube.delete_pod("shoot--p1--b", "etcd-events-0")

    async def pod_gone() -> bool:
        samples = await daemon.metrics()
        return not any(
            lab.get("pod") == "etcd-events-0" and lab.get("namespace") == "shoot--p1--b"
            for _, lab, _ in samples
        )

    await _until(pod_gone, 8, "deleted pod's series (after the 2 s member grace)")
    kube.delete_namespace("shoot--p1--b")

    async def ns_gone() -> bool:
        samples = await daemon.metrics()
        return not any(lab.get("namespace") == "shoot--p1--b" for _, lab, _ in samples)

    await _until(ns_gone, 3, "deleted namespace's series")
    samples = await daemon.metrics()
    assert select(samples, P + "volume_info", namespace="shoot--p1--a")


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_restart_tail_once_and_denied_logs_keep_the_daemon_running(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    add_three_shoots(kube)
    kube.deny("pods/log", verb="get", namespace="shoot--p1--b")
    fed: Counter[tuple[str, str]] = Counter()

    def feed(ns: str, pod: str, lines: list[str]) -> None:
        kube.append_log(ns, pod, lines)
        fed[(ns, pod)] += len(lines)

    async with daemon_for(kube, tmp_path, 2379) as daemon:
        await _until(lambda: _streams_up(daemon, 4), 20, "four streams up")
        zap = (
            '{"level":"warn","ts":"2026-11-21T05:21:06.125Z","caller":"wal/wal.go:802",'
            '"msg":"slow fdatasync","took":"1.1s","expected-duration":"1s"}'
        )
        feed("shoot--p1--a", "etcd-main-0", [zap, "before restart"])
        kube.stall_streams("shoot--p1--a", "etcd-main-0")  # the crash tail is not streamed...
        feed("shoot--p1--a", "etcd-main-0", ["crash tail 1", zap])
        kube.restart_container("shoot--p1--a", "etcd-main-0")  # ...but read from previous=true
        feed("shoot--p1--a", "etcd-main-0", ["after restart", zap])
        feed("shoot--p2--c", "etcd-main-0", ["other member"])

        async def caught_up() -> bool:
            samples = await daemon.metrics()
            return all(
                value(samples, P + "exporter_log_lines_read_total", namespace=ns, pod=pod) == n
                for (ns, pod), n in fed.items()
            )

        await _until(caught_up, 20, "lines after the restart")
        await asyncio.sleep(1.0)
        samples = await daemon.metrics()
        assert (
            value(
                samples,
                P + "log_events_total",
                namespace="shoot--p1--a",
                pod="etcd-main-0",
                event="slow_fdatasync",
            )
            == 3
        )
        # the tail, then once more to see it ended (nothing new)
        assert kube.count_requests("/shoot--p1--a/pods/etcd-main-0/log", previous="true") == 2
        # The denied namespace: stream down, the error counted and explained, the rest unaffected.
        for etcd in ("etcd-main", "etcd-events"):
            assert value(samples, P + "log_stream_up", namespace="shoot--p1--b", etcd=etcd) == 0.0
        errors = value(
            samples,
            P + "exporter_kubernetes_api_errors_total",
            resource="pods/log",
            verb="get",
            code="403",
        )
        assert errors is not None
        assert errors >= 2
        assert (
            value(samples, P + "log_stream_up", namespace="shoot--p2--c", etcd="etcd-main") == 1.0
        )
        assert daemon.popen.poll() is None
        denials = [line for line in daemon.log().splitlines() if "Kubernetes API denied" in line]
        assert len(denials) == 1, denials
        assert "verb=get" in denials[0]
        assert "resource=pods/log" in denials[0]
        assert "namespace=shoot--p1--b" in denials[0]
    assert daemon.stop() == 0


async def _streams_up(daemon: Daemon, n: int) -> bool:
    samples = await daemon.metrics()
    return sum(v for _, v in select(samples, P + "log_stream_up")) >= n
