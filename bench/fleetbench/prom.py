"""A real Prometheus (Debian `prometheus`) scraping the fleet's etcd endpoints directly: the
baseline the exporter's CPU is compared with. Loopback only, a temporary TSDB, the same scrape
interval and timeout as the exporter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.fleetbench.procs import Proc, start
from bench.fleetbench.seed import Member


def available() -> str | None:
    """Path of the prometheus binary, or None."""
    return shutil.which("prometheus")


def write_config(
    path: Path, members: Sequence[Member], *, port: int, interval: float, timeout: float
) -> Path:
    """prometheus.yml with one static job listing every member's endpoint (JSON is YAML)."""
    config = {
        "global": {"scrape_interval": f"{interval:g}s", "scrape_timeout": f"{timeout:g}s"},
        "scrape_configs": [
            {
                "job_name": "etcd",
                "static_configs": [{"targets": [f"{m.ip}:{port}" for m in members]}],
            }
        ],
    }
    path.write_text(json.dumps(config, indent=1))
    return path


def launch(workdir: Path, *, config: Path, port: int, nice: int = 0) -> Proc:
    """Start Prometheus on 127.0.0.1:`port` with a TSDB under `workdir`."""
    binary = available()
    if binary is None:
        raise RuntimeError("prometheus is not installed (Debian package `prometheus`)")
    return start(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=2h",
        ],
        workdir=workdir,
        nice=nice,
    )


async def wait_ready(proc: Proc, port: int, *, seconds: float) -> None:
    """Until /-/ready answers 200."""
    url = f"http://127.0.0.1:{port}/-/ready"
    async with asyncio.timeout(seconds), aiohttp.ClientSession() as session:
        while True:
            if not proc.alive():
                raise RuntimeError(f"prometheus exited: {proc.tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)


async def query(port: int, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    url = f"http://127.0.0.1:{port}/api/v1/query"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, params={"query": expr}, timeout=aiohttp.ClientTimeout(total=30)) as resp,
    ):
        body = await resp.json()
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def scalar(port: int, expr: str) -> float:
    """The value of a query that returns one sample (0 when empty)."""
    result = await query(port, expr)
    return float(result[0]["value"][1]) if result else 0.0


async def self_metric(port: int, name: str) -> float:
    """A sample of Prometheus's own /metrics (it does not scrape itself here)."""
    url = f"http://127.0.0.1:{port}/metrics"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as resp,
    ):
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")
