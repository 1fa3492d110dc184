"""The exposition's one door: the registry the composition root builds, and /metrics.

prometheus_client formats every label of every sample on each request (about 13 µs for a sample
with ten labels), which is seconds for 2,000 etcd members. Here the registry keeps our families'
text and gzip blocks between requests (`body.Body`), and a request re-renders and re-compresses
only what changed since the last one. The output is byte-identical to prometheus_client's
encoders (tests compare them), content negotiation is prometheus_client's own `choose_encoder`,
and whatever this module does not handle (other escaping schemes, `name[]` filters, a plain
registry) goes to prometheus_client's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import exposition, openmetrics
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from exporter.exposition.body import Body, prerender
from exporter.exposition.collector import EtcdLatencyCollector
from exporter.state import Store

log = logging.getLogger(__name__)

FAST_ESCAPING = frozenset({openmetrics.exposition.UNDERSCORES, openmetrics.exposition.ALLOWUTF8})


def make_registry(
    store: Store, *, shard: int, total_shards: int, exporter_metrics: bool
) -> ExporterRegistry:
    """A private registry: our collector, plus process/platform/gc collectors unless disabled."""
    collector = EtcdLatencyCollector(store, shard=shard, total_shards=total_shards)
    return ExporterRegistry(collector, exporter_metrics=exporter_metrics)


class ExporterRegistry(CollectorRegistry):
    """A CollectorRegistry (for prometheus_client's encoders and handler) that also owns what
    /metrics serves fast: our collector's kept `body`, and `extras` (process, platform, gc)."""

    def __init__(self, collector: EtcdLatencyCollector, *, exporter_metrics: bool) -> None:
        # collectors without describe() still answer `/metrics?name[]=…` (RestrictedRegistry)
        super().__init__(support_collectors_without_names=True)
        self.collector = collector
        self.body = Body(collector)
        self.extras = CollectorRegistry()
        if exporter_metrics:
            ProcessCollector(registry=self.extras)
            PlatformCollector(registry=self.extras)
            GCCollector(registry=self.extras)
        self.register(collector)
        self.register(self.extras)


def add_metrics_route(app: web.Application, path: str, registry: CollectorRegistry) -> None:
    """GET `path` serves the registry; an ExporterRegistry's text is also kept rendered in the
    background (`body.prerender`) while the application runs."""
    app.router.add_get(path, make_metrics_handler(registry))
    if isinstance(registry, ExporterRegistry):
        app.cleanup_ctx.append(_prerendering(registry.body))


def _prerendering(body: Body) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(prerender(body), name="prerender")
        task.add_done_callback(_log_crash)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        # /metrics still works: a request renders whatever the background did not
        log.error("Pre-rendering stopped", exc_info=task.exception())


async def render(
    registry: ExporterRegistry, accept: str, *, gzip: bool
) -> tuple[bytes, str] | None:
    """The body (gzipped or not) and content type for an Accept header, or None where its
    escaping scheme is one the kept body does not write (prometheus_client's handler does)."""
    encoder, content_type = exposition.choose_encoder(accept)
    escaping = openmetrics.exposition.UNDERSCORES
    if isinstance(encoder, functools.partial):
        escaping = encoder.keywords.get("escaping", escaping)
    if escaping not in FAST_ESCAPING:
        return None
    is_om = content_type.startswith("application/openmetrics-text")
    tail = encoder(registry.extras)  # the process's own families, and `# EOF`
    if gzip:
        return await registry.body.gzip(openmetrics=is_om, tail=tail), content_type
    return b"".join([*await registry.body.text(openmetrics=is_om), tail]), content_type


def make_metrics_handler(registry: CollectorRegistry) -> Handler:
    """The /metrics handler: fast for an ExporterRegistry, prometheus_client's otherwise."""
    fallback = make_aiohttp_handler(registry)
    if not isinstance(registry, ExporterRegistry):
        return fallback

    async def metrics(request: web.Request) -> web.StreamResponse:
        if "name[]" in request.query:
            return await fallback(request)
        gzip = accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        rendered = await render(registry, accept, gzip=gzip)
        if rendered is None:
            return await fallback(request)
        body, content_type = rendered
        headers = {hdrs.CONTENT_TYPE: content_type}
        if gzip:
            headers[hdrs.CONTENT_ENCODING] = "gzip"
            return web.Response(body=body, headers=headers)
        response = web.Response(body=body, headers=headers)
        response.enable_compression()  # deflate where asked for
        return response

    return metrics


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header accepts gzip (with a q-value above 0)."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False
