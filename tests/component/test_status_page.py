"""The daemon's status page `/` and `/api/targets`, served from a Store with live-like state.

The last test renders the page in headless Chromium (Debian `chromium`) and checks that it loads
without console errors or requests for external assets.
"""

from __future__ import annotations

import asyncio
import html
import os
import shutil
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from exporter.diagnosis.evidence import RECENT
from exporter.model import (
    Event,
    EventKind,
    FileLogSpec,
    Identity,
    KubernetesLogSpec,
    Member,
    MemberState,
    Operation,
    RelayedFamily,
    Sample,
    ScrapeSpec,
    Target,
    Volume,
)
from exporter.state import Store
from exporter.web.app import make_app
from exporter.web.status import add_status_routes, status_routes

FSYNC = "etcd_disk_wal_fsync_duration_seconds"
COMMIT = "etcd_disk_backend_commit_duration_seconds"
BOUNDS = ("0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256",
          "0.512", "1.024", "+Inf")  # fmt: skip
HOSTILE_POD = "<script>alert(1)</script>"
HOSTILE_CLASS = '"><img src=x onerror=alert(2)>'
NOW = time.time()


def histogram(name: str, counts: list[float]) -> RelayedFamily:
    cum: list[float] = []
    for n in counts + [0.0] * (len(BOUNDS) - len(counts)):
        cum.append((cum[-1] if cum else 0.0) + n)
    samples = [
        Sample(f"{name}_bucket", (("le", le),), c) for le, c in zip(BOUNDS, cum, strict=True)
    ]
    samples.append(Sample(f"{name}_count", (), cum[-1]))
    return RelayedFamily(name=name, type="histogram", help="", samples=tuple(samples))


def plus(base: list[float], extra: list[float]) -> list[float]:
    size = max(len(base), len(extra))
    return [a + b for a, b in zip(base + [0.0] * size, extra + [0.0] * size, strict=False)][:size]


def scrapes(fsync: list[float], commit: list[float]) -> list[tuple[RelayedFamily, ...]]:
    """Two scrapes: a baseline and one with `fsync`/`commit` more observations per bucket."""
    base = [5.0, 5.0]
    return [
        (histogram(FSYNC, base), histogram(COMMIT, base)),
        (histogram(FSYNC, plus(base, fsync)), histogram(COMMIT, plus(base, commit))),
    ]


def target(name: str, *, pod: str | None = None, **volume: Any) -> Target:
    return Target(
        key=f"shoot--p--{name}/{pod or name}",
        identity=Identity(namespace=f"shoot--p--{name}", project="p", shoot=name,
                          etcd="etcd-main", pod=pod or name),
        volume=Volume(**volume),
        scrape=ScrapeSpec(url=f"http://127.0.0.1:1/{name}"),
        log=FileLogSpec(path=f"/nonexistent/{name}.log"),
    )  # fmt: skip


def build_store() -> Store:
    store = Store()
    store.discovery_synced = True
    store.first_collection_done = True
    ssd = {"storage_class": "fast", "disk_class": "ssd", "expected_storage_class": "fast",
           "expected_from": "etcd", "pvc": "main-etcd-etcd-main-0", "pv": "pv-123"}  # fmt: skip
    healthy = store.upsert(target("healthy", **ssd))
    hdd = {"storage_class": "standard", "disk_class": "hdd", "provisioner": "kubernetes.io/gce-pd",
           "disk_type": "pd-standard", "volume_handle": "pvc-5e1c0f9a",
           "capacity_bytes": 25 * 1024**3, "expected_write_iops": 37.5,
           "iops_basis": "GCE pd-standard: 1.5 write IOPS per GiB"}  # fmt: skip
    slow = store.upsert(target("slowdisk", **hdd))
    down = store.upsert(target("down", **ssd))
    store.upsert(target("new", **ssd))  # never scraped: pending
    hostile = store.upsert(target("hostile", pod=HOSTILE_POD, storage_class=HOSTILE_CLASS,
                                  disk_class="ssd", expected_storage_class="fast"))  # fmt: skip
    for state, fsync in ((healthy, [400, 80]), (slow, [0, 0, 0, 0, 10, 50, 300]), (hostile, [90])):
        first, second = scrapes(fsync, [100])
        state.record_scrape_success(first, duration=0.01, now=NOW - 30)
        state.record_scrape_success(second, duration=0.02, now=NOW - 1)
        state.set_stream_up(True)
    down.record_scrape_error("connect", duration=0.001)
    down.set_stream_up(False)
    slow_request = Event(kind=EventKind.SLOW_REQUEST, duration_seconds=1.5,
                         operation=Operation.RANGE, read_only=True, resource="pods")  # fmt: skip
    for _ in range(3):
        healthy.record_event(slow_request, now=NOW - 60)
    slow.record_event(slow_request, now=NOW - RECENT - 100)  # stale: shown, not judged
    return store


def daemon_app(store: Store) -> web.Application:
    """The daemon's web app with the status page plugged in, as the composition root does."""
    index, routes = status_routes(store, telemetry_path="/metrics")
    return make_app(store=store, registry=CollectorRegistry(), index=index, routes=routes)


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    return await aiohttp_client(daemon_app(build_store()))


async def test_page_lists_every_target_worst_first(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-store"
    text = await resp.text()
    assert '<meta http-equiv="refresh" content="15">' in text
    assert "<script" not in text
    assert "http://" not in text  # no external assets
    assert "https://" not in text
    order = [text.index(f'"pod">{p}<') for p in ("slowdisk", "healthy", "down", "new")]
    assert order == sorted(order)
    assert "slow-disk" in text
    assert "WAL fsync p99" in text
    assert "3 (range on pods)" in text
    assert "expected fast (from etcd)" in text
    assert (
        "volume: 25 GiB: ~37.5 write IOPS expected (GCE pd-standard: 1.5 write IOPS per GiB), "
        "below etcd&#x27;s 50"
    ) in text
    assert "· disk pvc-5e1c0f9a" in text
    assert "no-store" in resp.headers["Cache-Control"]


async def test_hostile_labels_are_escaped(client: TestClient) -> None:
    text = await (await client.get("/")).text()
    assert HOSTILE_POD not in text
    assert html.escape(HOSTILE_POD) in text
    assert HOSTILE_CLASS not in text
    assert html.escape(HOSTILE_CLASS, quote=True) in text
    assert "<img" not in text


async def test_api_targets_is_json_for_scripts(client: TestClient) -> None:
    resp = await client.get("/api/targets")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    doc = await resp.json()
    verdicts = [(t["key"], t["verdict"]) for t in doc["targets"]]
    assert verdicts == [  # worst first
        ("shoot--p--slowdisk/slowdisk", "slow-disk"),
        (f"shoot--p--hostile/{HOSTILE_POD}", "storage-class-mismatch"),
        ("shoot--p--healthy/healthy", "slow-requests-not-disk"),
        ("shoot--p--down/down", "unreachable"),
        ("shoot--p--new/new", "pending"),
    ]
    assert doc["ready"] is True
    assert doc["summary"]["total"] == 5
    slow = doc["targets"][0]
    assert slow["volume"]["volume_handle"] == "pvc-5e1c0f9a"
    assert (slow["volume"]["capacity_bytes"], slow["volume"]["expected_write_iops"]) == (
        25 * 1024**3,
        37.5,
    )
    assert doc["targets"][1]["volume"]["expected_write_iops"] is None
    assert slow["wal_fsync"]["count"] == 360
    # rank 0.99 * 360 = 356.4 lies 296.4 of 300 into (32 ms, 64 ms].
    assert slow["wal_fsync"]["p99_seconds"] == pytest.approx(0.032 + 0.032 * 296.4 / 300)
    assert slow["scrape"]["window_seconds"] == pytest.approx(29)
    assert slow["logs"]["slow_requests"] == 1  # stale, so not what decides the verdict
    healthy = doc["targets"][2]
    assert healthy["live"]["stream_up"] is True
    assert healthy["live"]["last_slow_event"]["kind"] == "slow_request"
    down = next(t for t in doc["targets"] if t["verdict"] == "unreachable")
    assert down["live"]["scrape_errors"] == {"connect": 1}
    assert down["scrape"]["error"] == "connect"


async def test_empty_store_says_so(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    app = web.Application()
    add_status_routes(app, store=Store(), telemetry_path="/metrics")
    c = await aiohttp_client(app)
    assert "No targets discovered." in await (await c.get("/")).text()
    assert (await (await c.get("/api/targets")).json())["targets"] == []


# -- headless Chromium ------------------------------------------------------------------------


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """The status page on a free loopback port; yields its URL and the paths requested."""
    requested: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        requested.append(request.path)
        resp: web.StreamResponse = await handler(request)
        return resp

    app = daemon_app(build_store())
    app.middlewares.append(record)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/", requested
    finally:
        await runner.cleanup()


async def run_chromium(tmp_path: Path, url: str, *mode: str) -> tuple[int, bytes, bytes]:
    binary = chromium()
    assert binary is not None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / ('profile' + str(len(mode)))}", "--enable-logging=stderr",
            "--v=0", "--window-size=1280,800", *mode, url]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        binary, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out, err


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
async def test_page_renders_in_headless_chromium(
    tmp_path: Path, served: tuple[str, list[str]]
) -> None:
    if chromium() is None:
        pytest.skip("chromium is not installed (make system installs it)")
    url, requested = served
    png = tmp_path / "status.png"
    code, _, err = await run_chromium(tmp_path, url, f"--screenshot={png}")
    assert code == 0, err.decode(errors="replace")[-2000:]
    data = await asyncio.to_thread(png.read_bytes)
    assert png_size(data) == (1280, 800)
    assert len(data) > 20_000  # a rendered table, not a blank page
    console = [line for line in err.decode(errors="replace").splitlines() if ":CONSOLE" in line]
    assert console == []
    code, dom, err = await run_chromium(tmp_path, url, "--dump-dom")
    assert code == 0
    text = dom.decode()
    assert text.count('<tr class="target">') == 5
    assert "<script" not in text  # the hostile pod name stayed text
    assert html.escape(HOSTILE_POD) in text
    assert set(requested) <= {"/", "/favicon.ico"}
    keep = os.environ.get("STATUS_PAGE_SCREENSHOT")
    if keep:  # to look at it: STATUS_PAGE_SCREENSHOT=/some/where.png pytest -k chromium
        await asyncio.to_thread(shutil.copyfile, png, keep)


async def test_crash_looping_member_shows_its_state_restarts_and_last_run(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    store = Store()
    store.discovery_synced = store.first_collection_done = True
    looping = replace(
        target("looping", storage_class="fast", disk_class="ssd"),
        log=KubernetesLogSpec(namespace="shoot--p--looping", pod="looping", uid="u1"),
        member=Member(state=MemberState.RUNNING, uid="u1", restart_count=2),
    )
    state = store.upsert(looping, now=NOW - 7200)  # 2 restarts before the exporter saw it
    first, second = scrapes([0, 0, 0, 0, 10, 50, 300], [100])  # its runs are slow
    state.record_scrape_success(first, duration=0.01, now=NOW - 90)
    state.record_scrape_success(second, duration=0.02, now=NOW - 60)
    for count, when in ((3, NOW - 50), (4, NOW - 40), (5, NOW - 30)):
        member = Member(state=MemberState.RUNNING, uid="u1", restart_count=count)
        store.upsert(replace(looping, member=member), now=when)
    down = Member(
        state=MemberState.RESTARTING,
        uid="u1",
        restart_count=5,
        reason="CrashLoopBackOff",
        last_exit="Error, exit code 2",
    )
    store.upsert(replace(looping, member=down), now=NOW - 20)
    client = await aiohttp_client(daemon_app(store))
    page = html.unescape(await (await client.get("/")).text())
    assert "restarting</span> CrashLoopBackOff" in page
    assert "5 restarts, 3 in the last 1h" in page
    doc = await (await client.get("/api/targets")).json()
    (only,) = doc["targets"]
    assert only["verdict"] == "unreachable"
    assert only["reason"].startswith("the etcd container is not running")
    assert "restarting (CrashLoopBackOff): restarted 3 times in the last 1h" in only["reason"]
    assert "(last exit: Error, exit code 2); WAL fsync p99 " in only["reason"]
    assert only["reason"].endswith(" while running")
    assert "etcdlatencymembercrashlooping" in only["remedy"]
    assert only["member"]["state"] == "restarting"
    assert only["member"]["wal_fsync_while_running"]["p99_seconds"] > 0.016
    assert only["live"]["member_state"] == "restarting"
    assert only["live"]["restarts_total"] == 5
    assert only["live"]["scrape_up"] is False


async def test_page_shows_each_member_against_its_class_median(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    """Five members at 1.99 ms and one at 7.96 ms (4×, under etcd's 10 ms) on one class, one
    member alone on another: the same ratios and note as `diagnose` (exporter/diagnosis/
    classmedian.py), from the daemon's last two scrapes of each member."""
    store = Store()
    store.discovery_synced = store.first_collection_done = True
    members = {f"fast-{i}": ("fast", [0, 400]) for i in range(5)}
    members |= {"fast-slow": ("fast", [0, 0, 0, 400]), "lonely": ("other", [0, 0, 0, 400])}
    for name, (storage_class, fsync) in members.items():
        state = store.upsert(target(name, storage_class=storage_class, disk_class="ssd"))
        first, second = scrapes(fsync, [0, 400])
        state.record_scrape_success(first, duration=0.01, now=NOW - 30)
        state.record_scrape_success(second, duration=0.01, now=NOW - 1)
        state.set_stream_up(True)
    client = await aiohttp_client(daemon_app(store))
    page = html.unescape(await (await client.get("/")).text())
    assert "<th>× class median</th>" in page
    assert page.count('<td class="num">1.0×/1.0×</td>') == 5
    assert page.count('<td class="num">4.0×/1.0×</td>') == 1
    assert page.count('<td class="num">—</td>') == 1  # lonely: no median for a class of one
    note = "slow for its class: WAL fsync p99 7.96ms, 4.0× the median of 6 members on fast (1.99ms)"
    assert page.count(note) == 1
    doc = await (await client.get("/api/targets")).json()
    by_pod = {t["pod"]: t for t in doc["targets"]}
    slow = by_pod["fast-slow"]
    assert slow["verdict"] == "ok"  # the note does not change the verdict
    assert slow["reason"].endswith(note)
    assert slow["remedy"].endswith("(docs/runbooks.md#etcdlatencywalfsyncslowforclass)")
    assert slow["class_median_ratio"]["slow_for_class"] is True
    assert slow["class_median_ratio"]["wal_fsync"]["members"] == 6
    assert slow["class_median_ratio"]["wal_fsync"]["median_seconds"] == pytest.approx(0.00199)
    assert by_pod["fast-0"]["class_median_ratio"]["slow_for_class"] is False
    assert by_pod["lonely"]["class_median_ratio"]["wal_fsync"]["ratio"] is None
