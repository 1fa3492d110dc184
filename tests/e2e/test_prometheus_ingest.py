"""A real Prometheus scrapes the exporter's /metrics: it negotiates OpenMetrics, and the gauges
named *_total and the histograms are ingested under the names and labels the rules query."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.etcd import free_port
from tests.support.web import app_for, serving, store_with_targets


def prometheus_api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=2) as resp:
        return json.load(resp)["data"]


async def test_real_prometheus_ingests_the_endpoint(tmp_path: Path) -> None:
    """Prometheus negotiates OpenMetrics; gauges named *_total and histograms are ingested."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed")
    app = app_for(store_with_targets(2), exporter_metrics=True)
    async with serving(app) as port:
        targets = f"static_configs: [{{targets: ['127.0.0.1:{port}']}}]"
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            f"scrape_configs:\n  - job_name: exporter\n    {targets}\n"
        )
        web_port = free_port()
        prometheus = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
            "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(60):
                target = await first_scrape(web_port)
            assert target["health"] == "up", target["lastError"]
            query = "query?query=etcd_latency_disk_wal_write_bytes_total"
            assert len((await asyncio.to_thread(prometheus_api, web_port, query))["result"]) == 2
            p99 = "histogram_quantile(0.99,etcd_latency_disk_wal_fsync_duration_seconds_bucket)"
            data = await asyncio.to_thread(prometheus_api, web_port, f"query?query={p99}")
            assert [r["metric"]["storage_class"] for r in data["result"]] == ["fast", "fast"]
        finally:
            prometheus.terminate()
            await asyncio.wait_for(prometheus.wait(), 15)


async def first_scrape(web_port: int) -> Any:
    """The exporter's target once Prometheus scraped it (up or not)."""
    for _ in range(200):
        await asyncio.sleep(0.3)
        try:
            active = (await asyncio.to_thread(prometheus_api, web_port, "targets"))["activeTargets"]
        except OSError:
            continue  # not listening yet
        if active and active[0]["health"] != "unknown":
            return active[0]
    raise AssertionError("Prometheus never scraped the exporter")
