"""CPU of the exporter's scrape path against a real Prometheus scraping the same etcd targets.

Three processes besides this one:

- a server: N fake etcd members, one port each, replaying the captured etcd 3.5 /metrics
  (tests/fixtures/metrics/etcd-3.5.metrics) with the disk histograms advancing on every request;
  it counts requests per client (User-Agent);
- the exporter's scrape path: `scrape_loop` for every member on one shared session, the Store and
  the collector, as the daemon runs them; it measures its own CPU (getrusage) over the window, then
  times the /metrics render (text, OpenMetrics, OpenMetrics gzipped) and reports its RSS;
- Prometheus (Debian's), scraping the same N ports at the same interval into a temporary TSDB;
  its CPU comes from /proc/<pid>/stat over the same window.

Prints CPU per target scrape for both and their ratio. Targets: the exporter spends less CPU per
target scrape than Prometheus, and renders /metrics for 200 members in under 100 ms.

    python bench/scrape_bench.py [--targets 200] [--interval 3] [--cycles 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = REPO / "tests" / "fixtures" / "metrics" / "etcd-3.5.metrics"
ADVANCING = ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds")
CLK_TCK = os.sysconf("SC_CLK_TCK")
OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


# -- the fake etcd members -------------------------------------------------------------------


def payload_parts(text: str) -> list[str | tuple[str, float, float]]:
    """Static text, and (series, value, step) for the lines that advance on every request."""
    parts: list[str | tuple[str, float, float]] = []
    static: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith(ADVANCING):
            series, value = line.rsplit(" ", 1)
            parts.append("".join(static))
            static = []
            step = 0.002 if series.endswith("_sum") else 1.0
            parts.append((series, float(value), step))
        else:
            static.append(line)
    parts.append("".join(static))
    return parts


def render_payload(parts: list[str | tuple[str, float, float]], n: int) -> bytes:
    out = [p if isinstance(p, str) else f"{p[0]} {p[1] + n * p[2]}\n" for p in parts]
    return "".join(out).encode()


async def serve(targets: int) -> None:
    from aiohttp import web

    parts = payload_parts(PAYLOAD.read_text())
    served: dict[int, int] = {}
    by_agent: dict[str, int] = {"exporter": 0, "prometheus": 0, "other": 0}

    async def metrics(request: web.Request) -> web.Response:
        port = request.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        served[port] = n = served.get(port, 0) + 1
        agent = request.headers.get("User-Agent", "")
        if agent.startswith("etcd-latency-exporter/"):
            by_agent["exporter"] += 1
        elif agent.startswith("Prometheus/"):
            by_agent["prometheus"] += 1
        else:
            by_agent["other"] += 1
        return web.Response(body=render_payload(parts, n), content_type="text/plain")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(by_agent)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/_stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(targets + 1):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    print(json.dumps({"control": ports[0], "targets": ports[1:]}), flush=True)
    await asyncio.Event().wait()


# -- the exporter's scrape path --------------------------------------------------------------


async def exporter(ports: list[int], *, interval: float, start_at: float, end_at: float) -> None:
    from exporter.exposition.handler import make_registry, render
    from exporter.model import Identity, ScrapeSpec, Target, Volume
    from exporter.scrape import make_session, scrape_loop
    from exporter.scrape.scraper import Scraper
    from exporter.state import Store

    store = Store()
    session = make_session(concurrency=256)
    scraper = Scraper(session, timeout=interval, max_bytes=16 << 20)  # the daemon's: one for all
    tasks = []
    for i, port in enumerate(ports):
        spec = ScrapeSpec(url=f"http://127.0.0.1:{port}/metrics")
        target = Target(
            key=f"shoot--bench--s{i}/etcd-main-0",
            identity=Identity(f"shoot--bench--s{i}", "bench", f"s{i}", "etcd-main", "etcd-main-0"),
            volume=Volume(f"main-etcd-etcd-main-{i}", f"pv-{i}", "fast", "pd.csi", "pd-ssd", "ssd"),
            scrape=spec,
        )
        state = store.upsert(target)
        loop = scrape_loop(scraper=scraper, state=state, spec=spec, interval=interval)
        tasks.append(asyncio.create_task(loop))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu0 = _own_cpu()
    await asyncio.sleep(max(0.0, end_at - time.time()))
    cpu1 = _own_cpu()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    errors: dict[str, int] = {}
    for state in store.states():
        for reason, n in state.scrape_errors.items():
            errors[reason] = errors.get(reason, 0) + n
    up = sum(1 for s in store.states() if s.up)
    print(json.dumps({"cpu": cpu1 - cpu0, "up": up, "errors": errors}), flush=True)
    # render once the other processes are stopped, so that the timings are the exporter's own
    await asyncio.to_thread(sys.stdin.readline)
    registry = make_registry(store, shard=0, total_shards=1, exporter_metrics=True)
    formats = (("text", "", False), ("openmetrics", OM_ACCEPT, False), ("om+gzip", OM_ACCEPT, True))
    timings = {
        fmt: await _render_times(registry, accept, render, gzip) for fmt, accept, gzip in formats
    }
    rendered = await render(registry, "", gzip=False)
    body = rendered[0] if rendered else b""
    rss = {"rss_mb": _rss_mb("VmRSS"), "peak_rss_mb": _rss_mb("VmHWM")}
    size = {"lines": body.count(b"\n"), "bytes": len(body)}
    print(json.dumps({"render": timings, **rss, **size}), flush=True)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _render_times(
    registry: Any, accept: str, render: Any, gzip: bool, runs: int = 40
) -> dict[str, float]:
    """A GET's work on an unchanged store (the kept body): the walk, the join or the gzip
    member of kept blocks. The first run renders and compresses everything."""
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        await render(registry, accept, gzip=gzip)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    wall.sort()
    return {
        "p50_ms": statistics.median(wall) * 1e3,
        "p99_ms": wall[round(0.99 * (runs - 1))] * 1e3,
        "cpu_p50_ms": statistics.median(cpu) * 1e3,
    }


def _rss_mb(field: str, pid: str = "self") -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match[1]) / 1024 if match else float("nan")


# -- Prometheus ------------------------------------------------------------------------------


def start_prometheus(
    workdir: Path, ports: list[int], interval: float
) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("prometheus")
    if binary is None:
        sys.exit("prometheus is not installed (apt-get install prometheus)")
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {interval:g}s, scrape_timeout: {interval:g}s}}\n"
        f"scrape_configs:\n  - job_name: etcd\n    static_configs: [{{targets: [{targets}]}}]\n"
    )
    web_port = _free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{web_port}",
        "--log.level=warn",
    ]
    with open(workdir / "prometheus.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    return proc, web_port


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def prometheus_up(web_port: int) -> tuple[int, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/v1/targets", timeout=5) as resp:
        active = json.load(resp)["data"]["activeTargets"]
    return sum(1 for t in active if t["health"] == "up"), len(active)


# -- orchestration ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=5) as resp:
        return dict(json.load(resp))


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run(args: argparse.Namespace) -> int:
    me = [sys.executable, str(Path(__file__).resolve())]
    procs: list[subprocess.Popen[Any]] = []
    try:
        server = subprocess.Popen(
            [*me, "--role=server", f"--targets={args.targets}"], stdout=subprocess.PIPE
        )
        procs.append(server)
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())
        warmup = 3 * args.interval + 3.0
        start_at = time.time() + warmup
        end_at = start_at + args.cycles * args.interval
        with tempfile.TemporaryDirectory(prefix="scrape-bench-") as tmp:
            prom, web_port = start_prometheus(Path(tmp), ports["targets"], args.interval)
            procs.append(prom)
            exp_argv = [
                *me,
                "--role=exporter",
                f"--interval={args.interval}",
                f"--start-at={start_at}",
                f"--end-at={end_at}",
                "--ports=" + ",".join(map(str, ports["targets"])),
            ]
            exp = subprocess.Popen(
                exp_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            procs.append(exp)
            time.sleep(max(0.0, start_at - time.time()))
            stats0, prom0 = server_stats(ports["control"]), proc_cpu(prom.pid)
            time.sleep(max(0.0, end_at - time.time()))
            stats1, prom1 = server_stats(ports["control"]), proc_cpu(prom.pid)
            prom_rss = _rss_mb("VmRSS", str(prom.pid))
            up, active = prometheus_up(web_port)
            assert exp.stdout is not None
            result = json.loads(exp.stdout.readline())
            stop(prom)
            stop(server)
            out, _ = exp.communicate("render\n", timeout=120)
            result.update(json.loads(out.strip().splitlines()[-1]))
        report(
            args,
            result,
            stats0=stats0,
            stats1=stats1,
            prom_cpu=prom1 - prom0,
            prom_rss=prom_rss,
            prom_up=(up, active),
        )
    finally:
        for proc in reversed(procs):
            stop(proc)
    return 0


def report(args: argparse.Namespace, result: dict[str, Any], **measured: Any) -> None:
    """The table, the ratio and the render times."""
    stats0, stats1 = measured["stats0"], measured["stats1"]
    exp_scrapes = stats1["exporter"] - stats0["exporter"]
    prom_scrapes = stats1["prometheus"] - stats0["prometheus"]
    exp_cpu, prom_cpu = result["cpu"], measured["prom_cpu"]
    exp_per, prom_per = exp_cpu / max(exp_scrapes, 1), prom_cpu / max(prom_scrapes, 1)
    up, active = measured["prom_up"]
    rss = f"{result['rss_mb']:.0f} (peak {result['peak_rss_mb']:.0f})"
    rows = [
        ("target scrapes in the window", f"{exp_scrapes}", f"{prom_scrapes}"),
        ("targets up at the end", f"{result['up']}/{args.targets}", f"{up}/{active}"),
        ("CPU seconds in the window", f"{exp_cpu:.2f}", f"{prom_cpu:.2f}"),
        ("CPU per scrape cycle (ms)", _ms(exp_cpu / args.cycles), _ms(prom_cpu / args.cycles)),
        ("CPU per target scrape (ms)", _ms(exp_per, 3), _ms(prom_per, 3)),
        ("RSS (MB)", rss, f"{measured['prom_rss']:.0f}"),
    ]
    print(f"\n{args.targets} targets, scrape interval {args.interval:g} s, {args.cycles} cycles")
    print(f"{'':32} {'exporter':>22} {'prometheus':>14}")
    for name, ours, theirs in rows:
        print(f"{name:32} {ours:>22} {theirs:>14}")
    ratio = exp_per / prom_per if prom_per else float("inf")
    print(f"\nexporter CPU per target scrape / Prometheus CPU per target scrape: {ratio:.2f}")
    size = f"{result['lines']} lines, {result['bytes'] / 1e6:.1f} MB"
    print(f"/metrics for {args.targets} targets ({size}):")
    for fmt, t in result["render"].items():
        print(
            f"  render {fmt:12} p50 {t['p50_ms']:6.1f} ms   p99 {t['p99_ms']:6.1f} ms"
            f"   (CPU p50 {t['cpu_p50_ms']:.1f} ms)"
        )
    if result["errors"]:
        print(f"exporter scrape errors in all: {result['errors']}")
    # CPU time: wall-clock render times also count whatever else the machine runs meanwhile
    met = ratio < 1 and result["render"]["text"]["cpu_p50_ms"] < 100
    print(f"\ntargets (ratio < 1, text render CPU p50 < 100 ms): {'met' if met else 'NOT met'}")


def _ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1e3:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--cycles", type=int, default=15)
    parser.add_argument("--role", choices=("main", "server", "exporter"), default="main")
    parser.add_argument("--ports", default="")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--end-at", type=float, default=0.0)
    args = parser.parse_args()
    if args.role == "server":
        asyncio.run(serve(args.targets))
        return 0
    if args.role == "exporter":
        logging.basicConfig(level=logging.ERROR)  # failed scrapes are counted, not printed
        ports = [int(p) for p in args.ports.split(",")]
        asyncio.run(
            exporter(ports, interval=args.interval, start_at=args.start_at, end_at=args.end_at)
        )
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
