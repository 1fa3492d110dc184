"""Processes of the end-to-end test: the exporter, Prometheus and Alertmanager on loopback.

Each runs from its real binary with its output in a log file under the test's directory, is
waited for through its readiness endpoint, and is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support import procs
from tests.support.dashboard import REPO_ROOT


@dataclass
class Service:
    """A started process and the base URL it serves."""

    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; idempotent."""
        procs.stop(self.popen, timeout)


def binary_or_skip(*names: str) -> str:
    """The first of `names` on PATH; skips the test when none is installed."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"none of {', '.join(names)} is installed")


def start(name: str, argv: list[str], *, url: str, workdir: Path) -> Service:
    """Start `argv` with its stdout and stderr in `workdir/<name>.log`."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
    return Service(name=name, popen=popen, url=url, log_path=log_path)


READY_TIMEOUT = 30.0


async def wait_ready(session: aiohttp.ClientSession, service: Service, path: str) -> None:
    """Poll `path` until it answers 200; fail with the process's output if it exits or hangs."""
    async with asyncio.timeout(READY_TIMEOUT):
        while True:
            if service.popen.poll() is not None:
                pytest.fail(
                    f"{service.name} exited {service.popen.returncode}:\n{service.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(service.url + path) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)


def exporter(*, port: int, targets_file: Path, workdir: Path) -> Service:
    """`python -m exporter run` with static discovery, scraping every second."""
    argv = [
        sys.executable,
        "-m",
        "exporter",
        "run",
        "--discovery=static",
        f"--static.targets-file={targets_file}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--scrape.interval=1s",
        "--scrape.timeout=1s",
    ]
    return start("exporter", argv, url=f"http://127.0.0.1:{port}", workdir=workdir)


def alertmanager(*, port: int, webhook_url: str, workdir: Path) -> Service:
    """Alertmanager routing everything to `webhook_url` at once (no clustering)."""
    config = {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "namespace", "pod"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook_url}]}],
    }
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        binary_or_skip("prometheus-alertmanager", "alertmanager"),
        f"--config.file={path}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip on 0.0.0.0:9094
        "--log.level=warn",
    ]
    return start("alertmanager", argv, url=f"http://127.0.0.1:{port}", workdir=workdir)


def prometheus(
    *, port: int, exporter_port: int, alertmanager_port: int, rules: Path, workdir: Path
) -> Service:
    """Prometheus scraping the exporter and evaluating `rules` every second."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "etcd-latency-exporter",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
            }
        ],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        binary_or_skip("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
    ]
    return start("prometheus", argv, url=f"http://127.0.0.1:{port}", workdir=workdir)


async def instant_query(
    session: aiohttp.ClientSession, prometheus_url: str, expr: str
) -> list[dict[str, Any]]:
    """Result vector of a Prometheus instant query; fails the test on a query error."""
    async with session.get(f"{prometheus_url}/api/v1/query", params={"query": expr}) as resp:
        body = await resp.json()
    assert body.get("status") == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
