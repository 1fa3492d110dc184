"""CPU of one /metrics request at 2,000 members, by how much changed since the previous one.

One process, no network: a Store of N members (the captured etcd 3.5 payload relayed, re-read
through its layout as the daemon reads a member's scrapes; a log stream, a few slow requests
each), the registry the daemon builds, and the request's work (render and gzip, OpenMetrics as
Prometheus asks for it) timed in CPU seconds, so that other processes on the machine do not
count. Between requests, as the daemon sees it:

- nothing changed;
- every member read a log line (at 2 lines per member per second, any request a second apart);
- log lines and K members re-scraped (at a 30 s interval, 2,000 members are 67 scrapes a second;
  the scrape-driven text is pre-rendered in the background, as the daemon does);
- every member re-scraped (a request every scrape interval: Prometheus's);
- an incident's log storm (bench/fleet.py's storm mode): a tenth of the members log 60 slow
  requests each (100 a second, requests 0.6 s apart) of varied operations and resources, on top
  of the log lines and the re-scrapes.

    python bench/render_bench.py [--members 2000] [--runs 7]
    python bench/render_bench.py --exporter-tree /tmp/before     # another tree, for A/B

Prints the median and minimum CPU milliseconds per request and the body's size, then the
background's pre-render CPU per re-scraped member.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = REPO / "tests" / "fixtures" / "metrics" / "etcd-3.5.metrics"
OM_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def build(members: int) -> tuple[Any, Any, Callable[[], Any]]:
    """The store, the registry, and a function that extracts the payload (a fresh scrape)."""
    from exporter.model import (
        Event,
        EventKind,
        FileLogSpec,
        Identity,
        Operation,
        ScrapeSpec,
        Target,
        Volume,
    )
    from exporter.scrape.extract import extract_families
    from exporter.state import Store

    try:
        from exporter.exposition.handler import make_registry
    except ImportError:  # trees before the exposition had one door
        from exporter.exposition.collector import make_registry  # type: ignore[no-redef]

    payload = PAYLOAD.read_text()
    store = Store()
    for i in range(members):
        ns, pod = f"shoot--p{i % 50}--s{i // 2}", ("etcd-main-0", "etcd-events-0")[i % 2]
        volume = Volume(f"c{i}", f"pv-{i}", "gardener.cloud-fast", "pd.csi", "pd-ssd", "ssd")
        target = Target(
            key=f"{ns}/{pod}",
            identity=Identity(ns, f"p{i % 50}", f"s{i // 2}", pod[:-2], pod),
            volume=volume,
            scrape=ScrapeSpec(url=f"http://127.0.0.1/{i}"),
            log=FileLogSpec(path="-"),
        )
        state = store.upsert(target)
        state.record_scrape_success(extract_families(payload), duration=0.1, now=1.0)
        state.set_stream_up(True)
        for op in (Operation.PUT, Operation.RANGE):
            slow = Event(EventKind.SLOW_REQUEST, duration_seconds=0.3, operation=op, resource="r")
            state.record_event(slow, now=1.0)
    registry = make_registry(store, shard=0, total_shards=1, exporter_metrics=True)
    try:  # read through a layout, as the daemon reads a member's scrapes after its first
        from exporter.scrape.layout import Extractor
    except ImportError:  # trees before the layout-reusing extractor
        return store, registry, lambda: extract_families(payload)
    extractor, body = Extractor(), payload.encode()
    extractor.extract(body)
    return store, registry, lambda: extractor.extract(body)


def request(registry: Any) -> Callable[[], Awaitable[bytes]]:
    """One gzipped OpenMetrics /metrics request's work, in this tree's API: the body."""
    from exporter.exposition import handler

    async def work() -> bytes:
        if hasattr(handler, "render_parts"):  # trees before the kept gzip blocks
            parts, _ = handler.render_parts(registry, OM_ACCEPT)
            return bytes(await handler.gzip_parts(parts))
        body, _ = await handler.render(registry, OM_ACCEPT, gzip=True)
        return bytes(body)

    return work


def background(registry: Any) -> Callable[[], None]:
    """What the daemon's pre-render task does within a second of the scrapes."""
    body = getattr(registry, "body", None)
    if body is None:
        from exporter.exposition.handler import chunk_cache

        body = chunk_cache(registry.collector)
    return lambda: body.prerender(body.stale())


async def measure(members: int, runs: int, scrapes: int) -> None:
    from exporter.model import Event, EventKind, Operation

    store, registry, scraped = build(members)
    states = store.states()
    work, prerender = request(registry), background(registry)
    pick = random.Random(1)

    def lines() -> None:
        for state in states:
            state.count_line(unparsed=False)

    storm = pick.sample(states, len(states) // 10)
    kinds = [
        (op, read_only, resource)
        for op, read_only in (
            (Operation.RANGE, True),
            (Operation.TXN, False),
            (Operation.PUT, False),
        )
        for resource in ("pods", "leases", "configmaps", "secrets", "events", "endpoints")
    ]

    def storm_lines() -> None:
        """What a storm member logs between two requests 0.6 s apart (100 slow requests/s)."""
        lines()
        for state in storm:
            for n in range(60):
                op, read_only, resource = kinds[n % len(kinds)]
                slow = Event(
                    EventKind.SLOW_REQUEST,
                    duration_seconds=0.1 + n / 100,
                    operation=op,
                    read_only=read_only,
                    resource=resource,
                )
                state.count_line(unparsed=False)
                state.record_event(slow, now=2.0)

    def rescrape(count: int) -> None:
        for state in pick.sample(states, count):
            state.record_scrape_success(scraped(), duration=0.1, now=2.0)
        prerender()

    cases: list[tuple[str, Callable[[], None]]] = [
        ("nothing changed", lambda: None),
        ("a log line on every member", lines),
        (f"log lines, {scrapes} members re-scraped", lambda: (lines(), rescrape(scrapes))),
        ("every member re-scraped", lambda: (lines(), rescrape(len(states)))),
        (
            f"a storm: {len(storm)} members 60 slow requests each, {scrapes} re-scraped",
            lambda: (storm_lines(), rescrape(scrapes)),
        ),
    ]
    body = await work()  # the first request renders and compresses everything
    print(f"{members} members, body {len(body) / 1e6:.2f} MB gzipped; CPU ms per request:")
    for name, change in cases:
        cpu = []
        for _ in range(runs):
            change()
            started = time.process_time()
            await work()
            cpu.append((time.process_time() - started) * 1e3)
        print(f"  {name:40} median {statistics.median(cpu):6.1f}   min {min(cpu):6.1f}")
    each = []  # the background's work after a scrape, per member
    for _ in range(runs):
        for state in states:
            state.record_scrape_success(scraped(), duration=0.1, now=3.0)
        started = time.process_time()
        prerender()
        each.append((time.process_time() - started) / len(states) * 1e6)
    print(f"pre-render CPU µs per re-scraped member: median {statistics.median(each):.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scrapes", type=int, default=20, help="re-scraped between requests")
    parser.add_argument("--exporter-tree", type=Path, help="the exporter of another tree")
    args = parser.parse_args()
    sys.path.insert(0, str(args.exporter_tree or REPO))
    asyncio.run(measure(args.members, args.runs, args.scrapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
