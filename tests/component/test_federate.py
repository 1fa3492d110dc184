"""The shoot-prometheus source: the shared /federate fetcher, and the daemon reading through it.

A fake Prometheus (aiohttp) answers /federate with a real Prometheus 2.42 answer
(tests/fixtures/federate/shoot.federate, three members of `shoot--p1--a` whose /metrics were the
captured etcd payloads). The fetcher is checked on its own (sharing, reuse, errors), then the
daemon runs in Kubernetes mode against the emulator with `--scrape.source=shoot-prometheus`:
one request per namespace per interval, the exported families equal a direct scrape's, a member
the Prometheus has no series of is down with `no_data`, and no Secret is asked for although the
emulator holds Gardener's. `diagnose` reads both rounds from the Prometheus, and the status page
and JSON say which source a member uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from exporter.diagnosis.evidence import live_reports
from exporter.model import (
    SOURCE_SHOOT_PROMETHEUS,
    Identity,
    RelayedFamily,
    ScrapeSpec,
    Target,
)
from exporter.scrape.client import make_session
from exporter.scrape.errors import ScrapeError
from exporter.scrape.extract import extract_payload
from exporter.scrape.federate import Federation, match_selector
from exporter.state import Store
from exporter.web.status import render_page, targets_json
from tests.support.kube.client import eventually
from tests.support.kube.daemon import Daemon, run_daemon, select
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import FAST, add_classes, add_etcd, add_member, add_pki
from tests.support.kube.server import KubeEmulator
from tests.support.relayed_view import direct_view, relayed_view

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
ANSWER = (FIXTURES / "federate" / "shoot.federate").read_text()
NS_A, NS_B = "shoot--p1--a", "shoot--p1--b"
JOBS = "kube-etcd3-(main|events)"
P = "etcd_latency_"


def direct(payload: str) -> tuple[RelayedFamily, ...]:
    return extract_payload((FIXTURES / "metrics" / payload).read_bytes())


@dataclass
class FakePrometheus:
    """/<namespace>/federate answering `answers[namespace]`; counts and keeps the requests."""

    answers: dict[str, str] = field(default_factory=dict)
    later: dict[str, str] = field(default_factory=dict)  # from a namespace's 2nd request on
    status: int = 200
    delay: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    selectors: list[list[str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        self.requests[namespace] += 1
        self.selectors.append(request.query.getall("match[]", []))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        answers = self.later if self.requests[namespace] > 1 and namespace in self.later else {}
        text = answers.get(namespace, self.answers.get(namespace, ""))
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    def spec(self, namespace: str, pod: str) -> ScrapeSpec:
        return ScrapeSpec(
            url=f"{self.url}/{namespace}",
            source=SOURCE_SHOOT_PROMETHEUS,
            namespace=namespace,
            pod=pod,
        )


@contextlib.asynccontextmanager
async def fake_prometheus(**kwargs: object) -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus(**kwargs)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_get("/{namespace}/federate", fake.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def federation(
    *, max_age: float = 30.0, request_timeout: float = 2.0, clock: Clock | None = None
) -> AsyncIterator[Federation]:
    session = make_session(concurrency=8)
    fed = Federation(
        session=session,
        jobs=JOBS,
        timeout=request_timeout,
        max_bytes=1 << 20,
        max_age=max_age,
        clock=clock or Clock(),
    )
    try:
        yield fed
    finally:
        await fed.close()
        await session.close()


# -- the fetcher ------------------------------------------------------------------------------


async def test_members_of_a_namespace_share_one_request() -> None:
    async with fake_prometheus(answers={NS_A: ANSWER}) as prom, federation() as fed:
        pods = ["etcd-main-0", "etcd-main-1", "etcd-events-0"] * 4
        got = await asyncio.gather(*(fed.families(prom.spec(NS_A, pod)) for pod in pods))
        assert prom.requests == Counter({NS_A: 1})
        assert prom.selectors == [[match_selector(JOBS)]]
        assert got[0] == direct("etcd-3.5.metrics")
        assert got[1] == direct("etcd-3.4.metrics")
        assert got[2] == direct("etcd-3.5.metrics")


async def test_an_answer_is_reused_for_max_age_then_asked_again() -> None:
    clock = Clock()
    async with (
        fake_prometheus(answers={NS_A: ANSWER}) as prom,
        federation(max_age=30.0, clock=clock) as fed,
    ):
        await fed.families(prom.spec(NS_A, "etcd-main-0"))
        clock.now += 29.0
        await fed.families(prom.spec(NS_A, "etcd-main-1"))
        assert prom.requests[NS_A] == 1
        clock.now += 1.0
        await fed.families(prom.spec(NS_A, "etcd-main-1"))
        assert prom.requests[NS_A] == 2


async def test_each_namespace_has_its_own_request() -> None:
    answers = {NS_A: ANSWER, NS_B: ANSWER.replace(NS_A, NS_B)}
    async with fake_prometheus(answers=answers) as prom, federation() as fed:
        a = await fed.families(prom.spec(NS_A, "etcd-main-1"))
        b = await fed.families(prom.spec(NS_B, "etcd-main-1"))
        assert a == b == direct("etcd-3.4.metrics")
        assert prom.requests == Counter({NS_A: 1, NS_B: 1})


async def test_a_member_without_series_is_no_data() -> None:
    async with fake_prometheus(answers={NS_A: ANSWER}) as prom, federation() as fed:
        with pytest.raises(ScrapeError) as err:
            await fed.families(prom.spec(NS_A, "etcd-main-2"))
        assert err.value.reason == "no_data"
        assert "etcd-main-2" in err.value.detail


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"status": 503}, "http_status"),
        ({"answers": {NS_A: "<html>gateway timeout</html>\n"}}, "parse"),
        ({"answers": {NS_A: ANSWER}, "delay": 1.0}, "timeout"),
    ],
)
async def test_failures_have_the_reasons_of_a_failed_scrape_and_are_shared(
    kwargs: dict[str, object], reason: str
) -> None:
    async with fake_prometheus(**kwargs) as prom, federation(request_timeout=0.3) as fed:
        for pod in ("etcd-main-0", "etcd-main-1"):
            with pytest.raises(ScrapeError) as err:
                await fed.families(prom.spec(NS_A, pod))
            assert err.value.reason == reason
        assert prom.requests[NS_A] == 1  # the second member got the same failure, no request


async def test_an_unreachable_prometheus_is_connect() -> None:
    async with fake_prometheus() as prom:
        url = prom.url
    async with federation() as fed:
        spec = ScrapeSpec(
            url=f"{url}/{NS_A}", source=SOURCE_SHOOT_PROMETHEUS, namespace=NS_A, pod="x"
        )
        with pytest.raises(ScrapeError) as err:
            await fed.families(spec)
        assert err.value.reason == "connect"


async def test_a_cancelled_member_leaves_the_request_to_the_others() -> None:
    async with fake_prometheus(answers={NS_A: ANSWER}, delay=0.3) as prom, federation() as fed:
        first = asyncio.create_task(fed.families(prom.spec(NS_A, "etcd-main-0")))
        second = asyncio.create_task(fed.families(prom.spec(NS_A, "etcd-main-1")))
        await asyncio.sleep(0.1)
        first.cancel()
        assert await second == direct("etcd-3.4.metrics")
        with pytest.raises(asyncio.CancelledError):
            await first
        assert prom.requests[NS_A] == 1


# -- the daemon -------------------------------------------------------------------------------

# the emulated members: shoot--p1--a has two members with series in its Prometheus, and
# shoot--p1--b one with series and one without (its Prometheus has not scraped it)
MEMBERS = {
    (NS_A, "etcd-main", 0): "127.0.1.1",
    (NS_A, "etcd-main", 1): "127.0.1.2",
    (NS_B, "etcd-main", 0): "127.0.1.3",
    (NS_B, "etcd-events", 0): "127.0.1.4",
}


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_daemon_reads_members_from_their_namespaces_prometheus(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    add_classes(kube)
    for ns in (NS_A, NS_B):
        add_pki(kube, namespace=ns)  # Gardener's Secrets are there, and must stay unread
    for (ns, etcd, ordinal), ip in MEMBERS.items():
        add_member(kube, namespace=ns, etcd=etcd, pod_ip=ip, ordinal=ordinal)
        if ordinal == 0:
            add_etcd(kube, namespace=ns, name=etcd, storage_class=FAST)
    # NS_B's Prometheus has series of etcd-main-0 only
    in_b = [line for line in ANSWER.splitlines() if 'pod="etcd-events-0"' not in line]
    answers = {NS_A: ANSWER, NS_B: "\n".join(in_b).replace(NS_A, NS_B)}
    async with fake_prometheus(answers=answers) as prom:
        args = (
            "--discovery=kubernetes",
            f"--kubernetes.kubeconfig={kube.kubeconfig}",
            "--scrape.source=shoot-prometheus",
            f"--scrape.shoot-prometheus-url={prom.url}/{{namespace}}",
            "--scrape.interval=1s",
            "--scrape.timeout=1s",
        )
        with run_daemon(tmp_path, *args) as daemon:
            await daemon.wait_ready(seconds=30)
            await _until_all_scraped(daemon)
            before, started = Counter(prom.requests), asyncio.get_running_loop().time()
            await asyncio.sleep(4.0)
            after, elapsed = Counter(prom.requests), asyncio.get_running_loop().time() - started
            text = await _text(daemon)
            samples = await daemon.metrics()
        assert daemon.stop() == 0, daemon.log()
    # one request per namespace per interval, however many members it has
    for ns in (NS_A, NS_B):
        made = after[ns] - before[ns]
        assert elapsed - 1.5 <= made <= elapsed + 1.5, (ns, made, elapsed)
    assert set(prom.requests) == {NS_A, NS_B}
    # every member of NS_A and NS_B/etcd-main-0 up; NS_B/etcd-events-0 down with no_data
    up = {(lab["namespace"], lab["pod"]): v for lab, v in select(samples, P + "target_up")}
    assert up == {
        (NS_A, "etcd-main-0"): 1.0,
        (NS_A, "etcd-main-1"): 1.0,
        (NS_B, "etcd-main-0"): 1.0,
        (NS_B, "etcd-events-0"): 0.0,
    }
    errors = select(
        samples, P + "exporter_scrape_errors_total", namespace=NS_B, pod="etcd-events-0"
    )
    assert {lab["reason"] for lab, v in errors if v} == {"no_data"}
    # the same families, types, HELP, label names and values as a direct scrape of the payload
    for ns, pod, payload in (
        (NS_A, "etcd-main-0", "etcd-3.5.metrics"),
        (NS_A, "etcd-main-1", "etcd-3.4.metrics"),
        (NS_B, "etcd-main-0", "etcd-3.5.metrics"),
    ):
        assert relayed_view(text, ns, pod) == direct_view(direct(payload), ns, pod), (ns, pod)
    # no Secret was ever asked for
    assert not [path for path, _, _ in kube.requests if "/secrets" in path]


async def _until_all_scraped(daemon: Daemon) -> None:
    async def scraped() -> bool:
        samples = await daemon.metrics()
        return len(select(samples, P + "target_up")) == len(MEMBERS)

    await eventually(scraped, seconds=30, interval=0.2)


async def _text(daemon: Daemon) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(daemon.url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as resp,
    ):
        return await resp.text()


def test_fixture_answer_is_a_real_prometheus_answer() -> None:
    # the shape the parser relies on, as Prometheus 2.42 writes it
    assert re.search(r"^# TYPE etcd_disk_wal_fsync_duration_seconds_bucket untyped$", ANSWER, re.M)
    assert "# HELP" not in ANSWER
    assert 'instance=""' in ANSWER
    assert re.search(r"\} \S+ \d{13}$", ANSWER.splitlines()[1])


def with_slow_fsyncs(answer: str, pod: str, n: int) -> str:
    """`answer` after `n` more WAL fsyncs of `pod`, each taking 0.4 s (bucket le=0.512)."""
    name = "etcd_disk_wal_fsync_duration_seconds"
    out = []
    for line in answer.splitlines():
        if f'pod="{pod}"' in line and line.startswith(name):
            head, value, stamp = line.rsplit(" ", 2)
            le = re.search(r'[{,]le="([^"]+)"', head)
            more = 0.0
            if head.startswith(name + "_count") or (le is not None and float(le[1]) >= 0.512):
                more = n
            elif head.startswith(name + "_sum"):
                more = 0.4 * n
            line = f"{head} {float(value) + more!r} {stamp}"
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_diagnose_reads_both_rounds_from_the_prometheus(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    add_classes(kube)
    for ns in (NS_A, NS_B):
        add_pki(kube, namespace=ns)
    for (ns, etcd, ordinal), ip in MEMBERS.items():
        add_member(kube, namespace=ns, etcd=etcd, pod_ip=ip, ordinal=ordinal, storage_class=FAST)
        if ordinal == 0:
            add_etcd(kube, namespace=ns, name=etcd, storage_class=FAST)
    in_b = [line for line in ANSWER.splitlines() if 'pod="etcd-events-0"' not in line]
    answers = {NS_A: ANSWER, NS_B: "\n".join(in_b).replace(NS_A, NS_B)}
    later = {NS_A: with_slow_fsyncs(ANSWER, "etcd-main-0", 200)}
    async with fake_prometheus(answers=answers, later=later) as prom:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exporter", "diagnose", "--discovery=kubernetes",
            f"--kubernetes.kubeconfig={kube.kubeconfig}", "--scrape.source=shoot-prometheus",
            f"--scrape.shoot-prometheus-url={prom.url}/{{namespace}}", "--window=1s",
            "--output=json", cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(90):
                stdout, stderr = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 1, stderr.decode()
    doc = json.loads(stdout)
    jsonschema.validate(doc, json.loads((REPO / "docs" / "diagnose.schema.json").read_text()))
    got = {(e["namespace"], e["pod"]): e for e in doc["etcds"]}
    assert {k: e["scrape"]["source"] for k, e in got.items()} == dict.fromkeys(
        [(ns, f"{etcd}-{i}") for ns, etcd, i in MEMBERS], "shoot-prometheus"
    )
    slow = got[(NS_A, "etcd-main-0")]
    assert slow["verdict"] == "slow-disk"
    assert slow["wal_fsync"]["count"] == 200
    assert 0.256 < slow["wal_fsync"]["p99_seconds"] <= 0.512
    assert got[(NS_A, "etcd-main-1")]["wal_fsync"]["count"] == 0  # the same samples twice
    gone = got[(NS_B, "etcd-events-0")]
    assert (gone["verdict"], gone["scrape"]["error"]) == ("unreachable", "no_data")
    # one request per namespace and round, not one per member
    assert prom.requests == Counter({NS_A: 2, NS_B: 2})
    assert not [path for path, _, _ in kube.requests if "/secrets" in path]


def test_status_page_and_api_say_which_source_a_member_uses() -> None:
    store = Store()
    specs = {
        "a/etcd-main-0": ScrapeSpec(
            url="http://prometheus-shoot.a.svc:80",
            source=SOURCE_SHOOT_PROMETHEUS,
            namespace="a",
            pod="etcd-main-0",
        ),
        "b/etcd-main-0": ScrapeSpec(url="https://10.0.0.2:2379/metrics"),
    }
    for key, spec in specs.items():
        ns, pod = key.split("/")
        target = Target(key=key, identity=Identity(namespace=ns, pod=pod), scrape=spec)
        store.upsert(target).record_scrape_success(direct("etcd-3.5.metrics"), duration=0.01)
    now = time.time()
    rows = live_reports(store, now=now)
    page = render_page(rows, now=now, ready=True)
    assert page.count("via shoot-prometheus") == 1
    doc = targets_json(rows, now=now, ready=True)
    assert {t["key"]: t["scrape"]["source"] for t in doc["targets"]} == {
        "a/etcd-main-0": "shoot-prometheus",
        "b/etcd-main-0": "etcd",
    }
    store.get("a/etcd-main-0").record_scrape_error("no_data", duration=0.01)  # type: ignore[union-attr]
    down = render_page(live_reports(store, now=now), now=now, ready=True)
    assert "no_data 1" in down
    assert down.count("via shoot-prometheus") == 1
