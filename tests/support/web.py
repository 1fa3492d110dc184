"""The exporter's web app over a Store of a few scraped members, for the web tests
(tests/component/test_web.py) and the end-to-end one with a real Prometheus
(tests/e2e/test_prometheus_ingest.py)."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from exporter.exposition.handler import make_registry
from exporter.model import Identity, ScrapeSpec, Target, Volume
from exporter.scrape.extract import extract_families
from exporter.state import Store
from exporter.web.app import make_app

PAYLOAD = (
    Path(__file__).resolve().parents[1] / "fixtures" / "metrics" / "etcd-3.5.metrics"
).read_text()


def store_with_targets(n: int = 3) -> Store:
    """`n` members of class `fast`, each scraped once from a captured etcd 3.5 payload."""
    store = Store()
    families = extract_families(PAYLOAD)
    for i in range(n):
        target = Target(
            key=f"shoot--p--s{i}/etcd-main-0",
            identity=Identity(f"shoot--p--s{i}", "p", f"s{i}", "etcd-main", "etcd-main-0"),
            volume=Volume(pvc=f"main-{i}", pv=f"pv-{i}", storage_class="fast", disk_class="ssd"),
            scrape=ScrapeSpec(url=f"http://10.0.0.{i}:2379/metrics"),
        )
        store.upsert(target).record_scrape_success(families, duration=0.01, now=1_700_000_000.0)
    return store


def app_for(store: Store, **kwargs: object) -> web.Application:
    exporter_metrics = bool(kwargs.pop("exporter_metrics", False))
    registry = make_registry(store, shard=0, total_shards=1, exporter_metrics=exporter_metrics)
    return make_app(store=store, registry=registry, **kwargs)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serving(app: web.Application, ctx: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """The app listening on a free loopback port (yielded), stopped on exit."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        assert site._server is not None
        yield int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    finally:
        await runner.cleanup()
