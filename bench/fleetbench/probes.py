"""Reading the exporter from outside: /metrics timing and size, selected samples, the delay
from an injected log line to its counter on /metrics, and how the scrapes spread.

A GET is timed from the request to the last byte of the body as the exporter sent it (gzipped):
the exporter's part and the wire. The harness's own inflating and decoding of the body come
after the clock stops (0.26-0.28 s, p50, for the 75 MB of 1,000 shoots with zlib on a shared
core) and are reported apart (`Scrape.decode_seconds`): they are the client's work, as they are
Prometheus's."""

from __future__ import annotations

import asyncio
import math
import re
import statistics
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from bench.fleetbench.loglines import marker_line
from bench.fleetbench.procs import cpu_seconds
from bench.fleetbench.seed import Member

P = "etcd_latency_"
# What Prometheus 2.x sends when it scrapes the exporter.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = dict[str, str]


@dataclass(frozen=True, slots=True)
class Scrape:
    """One GET of /metrics: its text, the seconds to the body's last byte, the bytes on the wire,
    and the seconds the harness then took to inflate and decode the body."""

    text: str
    seconds: float
    wire_bytes: int
    decode_seconds: float


@dataclass(frozen=True, slots=True)
class Fetched:
    """One GET of /metrics as received: the body as sent, whether it is gzipped, and when the
    request started and the body's last byte arrived (`time.perf_counter`)."""

    raw: bytes
    gzipped: bool
    started: float
    arrived: float

    def body(self) -> bytes:
        """The body inflated: every gzip member of it, in order."""
        if not self.gzipped:
            return self.raw
        parts, data = [], self.raw
        while data:
            member = zlib.decompressobj(wbits=31)
            parts.append(member.decompress(data))
            data = member.unused_data
        return b"".join(parts)


async def fetch(session: aiohttp.ClientSession, url: str) -> Fetched:
    """GET /metrics as Prometheus does (OpenMetrics preferred, gzip accepted), body not inflated."""
    headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
    timeout = aiohttp.ClientTimeout(total=60)
    started = time.perf_counter()
    async with session.get(url, headers=headers, timeout=timeout, auto_decompress=False) as resp:
        raw = await resp.read()
        gzipped = resp.headers.get("Content-Encoding", "").lower() == "gzip"
    return Fetched(raw, gzipped, started, time.perf_counter())


async def get_metrics(session: aiohttp.ClientSession, url: str) -> Scrape:
    """GET /metrics as Prometheus does, timed to its last byte; decoded afterwards."""
    return _decoded(await fetch(session, url))


def _decoded(got: Fetched) -> Scrape:
    decoding = time.perf_counter()
    text = got.body().decode()
    return Scrape(text, got.arrived - got.started, len(got.raw), time.perf_counter() - decoding)


def samples(text: str, name: str) -> list[tuple[Labels, float]]:
    """Every sample of exactly `name` (labels, value); a line-oriented reader, not a validator."""
    out = []
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)(?: \S+)?$", re.M)
    for m in pattern.finditer(text):
        labels = dict(_LABEL.findall(m.group(1) or ""))
        out.append((labels, float(m.group(2))))
    return out


def member_key(labels: Labels) -> tuple[str, str]:
    """(namespace, pod) of a per-target sample."""
    return labels.get("namespace", ""), labels.get("pod", "")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the measured values (NaN stands for one not
    measured, and would make the order meaningless); NaN when there are none."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def timed_get(session: aiohttp.ClientSession, url: str, *, pid: int) -> tuple[Scrape, float]:
    """GET /metrics and the exporter's CPU seconds meanwhile, to the body's last byte (its render,
    gzip and whatever else it did: a long GET with little CPU was waiting for a CPU, not
    rendering)."""
    before = cpu_seconds(pid)
    got = await fetch(session, url)
    used = cpu_seconds(pid) - before
    return _decoded(got), used


async def render_times(
    session: aiohttp.ClientSession, url: str, *, count: int, pid: int
) -> tuple[list[float], list[float], list[float], Scrape]:
    """`count` sequential GETs of /metrics: durations, exporter CPU seconds, the harness's
    decoding seconds, last response."""
    times, cpu, decode, last = [], [], [], None
    for _ in range(count):
        last, used = await timed_get(session, url, pid=pid)
        times.append(last.seconds)
        cpu.append(used)
        decode.append(last.decode_seconds)
    assert last is not None
    return times, cpu, decode, last


async def get_raw(session: aiohttp.ClientSession, url: str) -> bytes:
    """GET /metrics as Prometheus does, without decoding the 50 MB body to text."""
    return (await fetch(session, url)).body()


def compaction_count(body: bytes, member: Member) -> float:
    """The member's slow `compaction` requests on /metrics (the injected marker's counter).

    A substring search, not a parse: the exporter writes labels sorted by name, so namespace,
    operation and pod are adjacent in exactly this sample's line.
    """
    key = f'namespace="{member.namespace}",operation="compaction",pod="{member.pod}"'.encode()
    name = (P + "slow_requests_total{").encode()
    at = body.find(key)
    while at >= 0:
        start = body.rfind(b"\n", 0, at) + 1
        end = body.find(b"\n", at)
        line = body[start : end if end >= 0 else len(body)]
        if line.startswith(name):
            return float(line.rsplit(b" ", 1)[1])
        at = body.find(key, at + 1)
    return 0.0


async def event_delay(
    session: aiohttp.ClientSession,
    *,
    api_url: str,
    metrics_url: str,
    member: Member,
    seconds: float = 30.0,
    posted: list[float] | None = None,
    streamed: list[float] | None = None,
) -> float:
    """Write a marker line into the member's log; seconds until its counter moves on /metrics.

    The clock starts just before the line is written and stops at the last byte of the first GET
    whose body shows the counter moved, so the figure includes that GET's render and transfer
    but not the harness's inflating of the body: each body is searched in a thread while the
    next GET is on its way. Infinity when it does not move in `seconds`. `posted` gets how long
    of that the simulator took to accept the line (its write request's round trip), `streamed`
    how long until the simulator had written it to a follow stream (the emulator times it, by
    the wall clock): the delay after that is the exporter's (its read, its count, the GETs).
    Each list given gets exactly one value per call, NaN when it was not measured (a request
    failed), so that the lists stay aligned with the delays.
    """
    took = stream = math.nan
    try:
        before = compaction_count(await get_raw(session, metrics_url), member)
        started, wall = time.perf_counter(), time.time()
        body = {
            "namespace": member.namespace,
            "pod": member.pod,
            "lines": [marker_line()],
            "operation": "compaction",  # for the simulator's ledger of what it sent
            "watch": streamed is not None,
        }
        async with session.post(api_url + "/_emu/append", json=body) as resp:
            resp.raise_for_status()
            (ts,) = (await resp.json())["result"]
        took = time.perf_counter() - started
        delay = await _counted(session, metrics_url, member, before, started, seconds)
        if streamed is not None:
            where = {"namespace": member.namespace, "pod": member.pod, "ts": ts}
            async with session.post(api_url + "/_emu/written", json=where) as resp:
                resp.raise_for_status()
                written = (await resp.json())["result"]
            if written is not None:
                stream = written / 1e9 - wall
    finally:
        if posted is not None:
            posted.append(took)
        if streamed is not None:
            streamed.append(stream)
    return delay


async def _counted(
    session: aiohttp.ClientSession,
    metrics_url: str,
    member: Member,
    before: float,
    started: float,
    seconds: float,
) -> float:
    """Seconds from `started` to the last byte of the first GET whose body shows the member's
    marker counter above `before`; infinity after `seconds`."""

    def moved(got: Fetched) -> bool:
        return compaction_count(got.body(), member) > before

    checking: tuple[Fetched, asyncio.Future[bool]] | None = None
    try:
        async with asyncio.timeout(seconds):
            while True:
                got = await fetch(session, metrics_url)
                if checking is not None and await checking[1]:
                    return checking[0].arrived - started
                checking = (got, asyncio.ensure_future(asyncio.to_thread(moved, got)))
                await asyncio.sleep(0.01)
    except TimeoutError:
        return math.inf


def exporter_parts(delays: Sequence[float], streamed: Sequence[float]) -> list[float]:
    """Each marker's delay from the moment its line was written to the log stream (the
    exporter's part), NaN for a marker without a stream time (`event_delay` keeps the two lists
    aligned)."""
    return [d - s for d, s in zip(delays, streamed, strict=True)]


def scrape_spread(text: str, *, now: float) -> dict[str, float]:
    """How the exporter's own scrapes look right now: age of the oldest and newest successful
    scrape, their spread, and the per-target scrape duration percentiles."""
    stamps = [v for _, v in samples(text, P + "last_scrape_success_timestamp_seconds")]
    durations = [v for _, v in samples(text, P + "exporter_scrape_duration_seconds")]
    if not stamps:
        return {"targets_scraped": 0}
    return {
        "targets_scraped": len(stamps),
        "oldest_success_age_s": now - min(stamps),
        "newest_success_age_s": now - max(stamps),
        "success_spread_s": max(stamps) - min(stamps),
        "scrape_duration_p50_s": statistics.median(durations) if durations else float("nan"),
        "scrape_duration_p99_s": percentile(durations, 99),
        "scrape_duration_max_s": max(durations, default=float("nan")),
    }
