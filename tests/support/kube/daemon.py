"""The real daemon (`python -m exporter run`) as a subprocess, and reading its /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support import procs
from tests.support.etcd import free_port

REPO = Path(__file__).resolve().parents[3]

Sample = tuple[str, dict[str, str], float]


@dataclass
class Daemon:
    """A running exporter process."""

    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        """Base URL of its HTTP listener."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything it logged so far."""
        return self.log_path.read_text(errors="replace")

    async def metrics(self) -> list[Sample]:
        """Every sample of /metrics, parsed by prometheus_client's own parser."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as resp,
        ):
            text = await resp.text()
        return [
            (s.name, dict(s.labels), s.value)
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        ]

    async def wait_ready(self, seconds: float = 20.0) -> None:
        """Until /readyz answers 200 (discovery synced, first collection done)."""
        async with asyncio.timeout(seconds), aiohttp.ClientSession() as session:
            while True:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"daemon exited {self.popen.returncode}:\n{self.log()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/readyz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        code = procs.stop(self.popen, timeout)
        assert code is not None
        return code


@contextlib.contextmanager
def run_daemon(tmp_path: Path, *args: str) -> Iterator[Daemon]:
    """Start `etcd-latency-exporter run ARGS` on a free loopback port; stopped on exit."""
    port = free_port()
    log_path = tmp_path / "daemon.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "exporter", "run", f"--web.listen-address=127.0.0.1:{port}"]
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [*argv, *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=REPO
        )
    daemon = Daemon(popen, port, log_path)
    try:
        yield daemon
    finally:
        daemon.stop()


def select(samples: list[Sample], name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one name whose labels include `labels`."""
    return [
        (lab, v)
        for n, lab, v in samples
        if n == name and all(lab.get(k) == val for k, val in labels.items())
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The single matching sample's value (None when absent); raises when several match."""
    found = select(samples, name, **labels)
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} match {labels}")
    return found[0][1] if found else None
