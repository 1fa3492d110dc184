"""Starting the pieces of one benchmark run: simulator processes, Prometheus, exporter replicas.

Every process is started here and stopped by its PID when the run's ExitStack unwinds."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.fleetbench import prom
from bench.fleetbench.procs import REPO, Proc, python, start, wait_ready_line
from bench.fleetbench.seed import Member, member_ip

SIM = str(Path(__file__).resolve().parents[1] / "fleet_sim.py")
PORT_ATTEMPTS = 8


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Options:
    """What a run is made of (the CLI fills it)."""

    shoots: int
    interval: float = 30.0
    timeout: float = 10.0
    log_rate: float = 2.0
    seed: int = 1
    endpoint_procs: int = 1
    prometheus: bool = True
    exporter_args: list[str] = field(default_factory=list)
    exporter_tree: Path | None = None  # another checkout's exporter (before/after comparisons)
    nice_others: int = 10  # the simulator and Prometheus yield the CPU to the exporter
    ready_timeout: float = 900.0


@dataclass
class Exporter:
    """One exporter replica."""

    proc: Proc
    port: int
    shard: int
    total: int

    @property
    def metrics_url(self) -> str:
        """Its /metrics URL."""
        return f"http://127.0.0.1:{self.port}/metrics"


async def start_api(opts: Options, workdir: Path, stack: contextlib.ExitStack) -> Proc:
    """The emulated API server with the fleet; its ready line carries the URL."""
    kubeconfig = workdir / "kubeconfig"
    argv = python(SIM, "api", f"--shoots={opts.shoots}", f"--kubeconfig={kubeconfig}")
    argv += [f"--log-rate={opts.log_rate}", f"--seed={opts.seed}"]
    proc = start("sim-api", argv, workdir=workdir, nice=opts.nice_others)
    stack.callback(proc.stop)
    await wait_ready_line(proc, seconds=300)
    proc.ready["kubeconfig"] = str(kubeconfig)
    return proc


async def start_endpoints(
    opts: Options, workdir: Path, stack: contextlib.ExitStack
) -> tuple[int, list[Proc]]:
    """The /metrics processes; retries another shared port when one is taken somewhere."""
    rng = random.Random()
    for _ in range(PORT_ATTEMPTS):
        port = free_port(member_ip(0)) if rng.random() < 0.5 else rng.randrange(20000, 60000)
        procs = []
        for i in range(opts.endpoint_procs):
            argv = python(SIM, "endpoints", f"--shoots={opts.shoots}", f"--port={port}")
            argv += [f"--slice={i}/{opts.endpoint_procs}", f"--seed={opts.seed}"]
            name = f"sim-endpoints-{i}"
            procs.append(start(name, argv, workdir=workdir, nice=opts.nice_others))
        try:
            for proc in procs:
                await wait_ready_line(proc, seconds=300)
        except RuntimeError:
            for proc in procs:
                proc.stop()
            continue
        for proc in procs:
            stack.callback(proc.stop)
        return port, procs
    raise RuntimeError("no port free on every fleet address")


async def start_prometheus(
    opts: Options,
    members: list[Member],
    *,
    metrics_port: int,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> tuple[Proc, int]:
    """Prometheus scraping every member; returns it and its web port."""
    config = prom.write_config(
        workdir / "prometheus.yml",
        members,
        port=metrics_port,
        interval=opts.interval,
        timeout=opts.timeout,
    )
    port = free_port()
    proc = prom.launch(workdir, config=config, port=port, nice=opts.nice_others)
    stack.callback(proc.stop)
    await prom.wait_ready(proc, port, seconds=120)
    return proc, port


def start_exporter(
    opts: Options,
    *,
    kubeconfig: str,
    metrics_port: int,
    shard: int,
    total: int,
    workdir: Path,
    stack: contextlib.ExitStack,
) -> Exporter:
    """`python -m exporter run --discovery=kubernetes` pointed at the emulator."""
    port = free_port()
    argv = python(
        "-m",
        "exporter",
        "run",
        "--discovery=kubernetes",
        f"--kubernetes.kubeconfig={kubeconfig}",
        "--scrape.scheme=http",
        f"--scrape.port={metrics_port}",
        f"--scrape.interval={opts.interval:g}s",
        f"--scrape.timeout={opts.timeout:g}s",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--shard={shard}",
        f"--total-shards={total}",
        *opts.exporter_args,
    )
    name = f"exporter-{shard}-of-{total}"
    proc = start(name, argv, workdir=workdir, tree=opts.exporter_tree or REPO)
    stack.callback(proc.stop)
    return Exporter(proc, port, shard, total)


async def wait_exporter_ready(exporter: Exporter, *, seconds: float) -> None:
    """Until its /readyz answers 200."""
    url = f"http://127.0.0.1:{exporter.port}/readyz"
    async with asyncio.timeout(seconds), aiohttp.ClientSession() as session:
        while True:
            if not exporter.proc.alive():
                raise RuntimeError(f"exporter exited: {exporter.proc.tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.5)


async def emulator_stats(session: aiohttp.ClientSession, api_url: str) -> dict[str, Any]:
    """Open follow streams, log opens, lines written and the storm's state, from the emulator's
    stats hook."""
    async with session.post(api_url + "/_emu/stats") as resp:
        resp.raise_for_status()
        stats: dict[str, Any] = await resp.json()
    return stats
