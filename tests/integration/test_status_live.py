"""The status page of the real daemon (`run --discovery=static`) watching a slowed and a healthy
real etcd: the verdicts it serves on `/api/targets` and `/` come from live scrapes."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.etcd import StartEtcd, free_port

HOSTILE_POD = "<script>alert(1)</script>"


@pytest.mark.slow
async def test_daemon_serves_live_verdicts(
    tmp_path: Path, etcd_factory: StartEtcd, fast_dir: Path
) -> None:
    """`run --discovery=static` against a slowed and a healthy etcd: `/api/targets` turns from
    pending to slow-disk and ok after two scrapes, and `/` escapes a hostile pod name."""
    slow = await asyncio.to_thread(etcd_factory, name="slow", fsync_delay_us=30_000)
    fast = await asyncio.to_thread(etcd_factory, name="fast", data_dir=fast_dir / "fast.etcd")
    targets = tmp_path / "targets.yaml"
    entries = [
        {"name": "slow", "metrics_url": slow.metrics_url, "namespace": "shoot--dev--slow",
         "etcd": "etcd-main", "pod": "etcd-main-0", "storage_class": "standard",
         "disk_class": "hdd", "log": {"file": str(slow.log_path)}},
        {"name": "fast", "metrics_url": fast.metrics_url, "namespace": "shoot--dev--fast",
         "etcd": "etcd-main", "pod": HOSTILE_POD, "storage_class": "fast", "disk_class": "ssd"},
    ]  # fmt: skip
    await asyncio.to_thread(targets.write_text, json.dumps({"targets": entries}))
    port = free_port()
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "run", "--discovery=static",
        f"--static.targets-file={targets}", f"--web.listen-address=127.0.0.1:{port}",
        "--scrape.interval=1s", stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    stop = asyncio.Event()
    writer = asyncio.create_task(write_until(stop, [slow, fast]))
    try:
        async with asyncio.timeout(60), aiohttp.ClientSession() as http:
            want = {"slow": "slow-disk", "fast": "ok"}
            doc = await poll_verdicts(http, f"http://127.0.0.1:{port}/api/targets", want)
            page = await (await http.get(f"http://127.0.0.1:{port}/")).text()
    finally:
        stop.set()
        await writer
        daemon.terminate()
        await asyncio.wait_for(daemon.wait(), 10)
    verdicts = {t["key"]: t["verdict"] for t in doc["targets"]}
    assert verdicts == {"slow": "slow-disk", "fast": "ok"}, doc
    slow_doc = doc["targets"][0]
    assert slow_doc["wal_fsync"]["p99_seconds"] > 0.010
    assert slow_doc["live"]["scrape_up"] is True
    assert "WAL fsync p99" in slow_doc["reason"]
    assert html.escape(HOSTILE_POD) in page
    assert HOSTILE_POD not in page
    assert page.index(">slow-disk<") < page.index(">ok<")


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs, where fsync costs nothing (else tmp_path): "healthy" must not
    depend on this machine's disk."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="status-test-") as path:
        yield Path(path)


async def poll_verdicts(
    http: aiohttp.ClientSession, url: str, want: dict[str, str], *, deadline: float = 30
) -> dict[str, Any]:
    """/api/targets once its verdicts are `want` (the daemon needs two scrapes, and a window
    may by chance hold no fsync), or the last answer after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    doc: dict[str, Any] = {}
    while loop.time() < end:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as resp:
                if resp.status == 200:
                    doc = await resp.json()
                    if {t["key"]: t["verdict"] for t in doc["targets"]} == want:
                        return doc
        await asyncio.sleep(0.3)
    return doc


async def write_until(stop: asyncio.Event, members: list[Any]) -> None:
    """Puts to every member (so that there are fsyncs to measure) until `stop` is set."""
    i = 0
    while not stop.is_set():
        for m in members:
            with contextlib.suppress(OSError, RuntimeError):
                await asyncio.to_thread(m.put, f"/registry/leases/ns/l{i % 10}", "v", timeout=5)
        i += 1
        await asyncio.sleep(0.02)
