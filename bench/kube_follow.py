"""CPU, RSS and line-to-/metrics delay of the daemon following N emulated etcd pod logs.

Three processes: the Kubernetes API emulator (`python -m tests.support.kube.server`, N pods, no
artificial chunking), the real daemon (`python -m exporter run --discovery=kubernetes`, scraping
disabled in effect by a one-hour interval so that only log following is measured), and this driver,
which writes real etcd log lines into the pods through the emulator's hooks.

Phases: idle (streams open, no lines), load (`--rate` lines per second spread over all pods), then
delay: one line at a time into one pod, /metrics polled every few milliseconds until that pod's
`etcd_latency_exporter_log_lines_read_total` moves; p50/p99 of those delays.

    python bench/kube_follow.py [--pods 100] [--rate 1000] [--seconds 30] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
LINES = (
    '{"level":"warn","ts":"2026-11-21T05:21:06.125Z","caller":"etcdserver/util.go:166",'
    '"msg":"apply request took too long","took":"335.102949ms","expected-duration":"100ms",'
    '"prefix":"read-only range ","request":"key:\\"/registry/pods/shoot--p--c/x\\" ",'
    '"response":"range_response_count:1 size:22"}',
    '{"level":"warn","ts":"2026-11-21T05:21:06.125Z","caller":"wal/wal.go:802",'
    '"msg":"slow fdatasync","took":"1.100583416s","expected-duration":"1s"}',
    '{"level":"info","ts":"2026-11-21T05:21:06.125Z","caller":"mvcc/index.go:214",'
    '"msg":"compact tree index","revision":12345}',
    "2026-11-21 05:21:06.125303 W | etcdserver: read-only range request "
    '"key:\\"/registry/leases/kube-node-lease/n1\\" " with result "range_response_count:1 '
    'size:523" took too long (213.95374909s) to execute',
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def metrics(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + "/metrics") as resp:
        return await resp.text()


def lines_read(text: str, namespace: str) -> float:
    needle = f'namespace="{namespace}"'
    for line in text.splitlines():
        if line.startswith("etcd_latency_exporter_log_lines_read_total{") and needle in line:
            return float(line.rsplit(" ", 1)[1])
    return -1.0


async def wait_streams(session: aiohttp.ClientSession, url: str, pods: int) -> None:
    async with asyncio.timeout(120):
        while True:
            try:
                text = await metrics(session, url)
            except aiohttp.ClientError:
                await asyncio.sleep(0.5)
                continue
            up = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("etcd_latency_log_stream_up{")
            )
            if up >= pods:
                return
            await asyncio.sleep(0.5)


async def measure(pid: int, seconds: float, work: Any = None) -> dict[str, float]:
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    task = asyncio.create_task(work()) if work else None
    await asyncio.sleep(seconds)
    if task:
        task.cancel()
    elapsed = time.monotonic() - start
    return {
        "cpu_percent": round(100 * (cpu_seconds(pid) - start_cpu) / elapsed, 1),
        "rss_mib": round(rss_mib(pid), 1),
    }


async def feed(session: aiohttp.ClientSession, emu: str, pods: int, rate: float) -> None:
    tick = 0.1
    per_tick = rate * tick
    carry, n = 0.0, 0
    while True:
        carry += per_tick
        count, carry = int(carry), carry - int(carry)
        entries: dict[int, list[str]] = {}
        for _ in range(count):
            entries.setdefault(n % pods, []).append(LINES[n % len(LINES)])
            n += 1
        body = {
            "entries": [
                {"namespace": f"shoot--bench--c{i}", "pod": "etcd-main-0", "lines": lines}
                for i, lines in entries.items()
            ]
        }
        async with session.post(emu + "/_emu/append_many", json=body) as resp:
            resp.raise_for_status()
        await asyncio.sleep(tick)


async def render_ms(session: aiohttp.ClientSession, url: str, n: int = 50) -> float:
    """Median time of one GET /metrics: the resolution of the delay measurement."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await metrics(session, url)
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 2)


async def delays(session: aiohttp.ClientSession, emu: str, url: str, samples: int) -> list[float]:
    ns = "shoot--bench--c0"
    out: list[float] = []
    for _ in range(samples):
        before = lines_read(await metrics(session, url), ns)
        body = {"namespace": ns, "pod": "etcd-main-0", "lines": [LINES[0]]}
        t0 = time.perf_counter()
        async with session.post(emu + "/_emu/append", json=body) as resp:
            resp.raise_for_status()
        while True:
            # A scrape sees the state as of when it started: time the start, not the end, of
            # the first GET /metrics that shows the line (the render itself takes a while).
            started = time.perf_counter()
            if lines_read(await metrics(session, url), ns) > before:
                break
            await asyncio.sleep(0.001)
        out.append(started - t0)
    return out


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=out, env=env, cwd=REPO)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000.0, help="lines per second, all pods")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kube-follow-"))
    kubeconfig = work / "kubeconfig"
    emu = start(
        [
            sys.executable,
            "-m",
            "tests.support.kube.server",
            f"--kubeconfig={kubeconfig}",
            f"--pods={args.pods}",
        ],
        work / "emulator.log",
    )
    daemon: subprocess.Popen[bytes] | None = None
    try:
        assert emu.stdout is not None
        emu_url = json.loads(emu.stdout.readline())["url"]
        port = free_port()
        daemon = start(
            [
                sys.executable, "-m", "exporter", "run", "--discovery=kubernetes",
                f"--kubernetes.kubeconfig={kubeconfig}", f"--web.listen-address=127.0.0.1:{port}",
                "--scrape.scheme=http", "--scrape.interval=3600s", "--log.level=warn",
            ],
            work / "daemon.log",
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            await asyncio.sleep(2)
            await wait_streams(session, url, args.pods)
            idle = await measure(daemon.pid, min(args.seconds, 20.0))
            load = await measure(
                daemon.pid, args.seconds, lambda: feed(session, emu_url, args.pods, args.rate)
            )
            await asyncio.sleep(2)
            render = await render_ms(session, url)
            got = await delays(session, emu_url, url, args.samples)
        got.sort()
        report = {
            "pods": args.pods,
            "idle": idle,
            f"load_{int(args.rate)}_lines_per_s": load,
            "delay_ms": {
                "p50": round(1000 * statistics.median(got), 2),
                "p99": round(1000 * got[min(len(got) - 1, int(0.99 * len(got)))], 2),
                "max": round(1000 * got[-1], 2),
                "one_metrics_get_ms": render,
            },
        }
        print(json.dumps(report, indent=2))
    finally:
        if daemon is not None:
            stop(daemon)
        stop(emu)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
