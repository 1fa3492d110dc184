"""The scraper against local aiohttp servers serving a captured etcd /metrics: TLS, errors, loop."""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from exporter.model import Identity, ScrapeSpec, Target, TLSConfig
from exporter.scrape import SSLContextCache, make_session, scrape_loop, scrape_once
from exporter.scrape.buffers import BodyBuffers
from exporter.scrape.caches import ScrapeCaches, Shared
from exporter.scrape.extract import extract_families
from exporter.scrape.layout import Extractor
from exporter.scrape.scraper import Scraper
from exporter.state import Store
from tests.support.scrape import MAX, client_tls, scrape, scrape_error

PAYLOAD = (
    Path(__file__).resolve().parents[1] / "fixtures" / "metrics" / "etcd-3.5.metrics"
).read_bytes()
ServerFactory = Callable[..., Awaitable[TestServer]]


def metrics_app(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
) -> web.Application:
    async def serve(request: web.Request) -> web.StreamResponse:
        return web.Response(body=PAYLOAD, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handler or serve)
    return app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session(concurrency=8) as s:
        yield s


async def test_families_of_a_real_payload(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await aiohttp_server(metrics_app())
    assert await scrape(session, str(server.make_url("/metrics"))) == extract_families(
        PAYLOAD.decode()
    )


async def test_bodies_are_read_into_one_reused_buffer_from_one_parsed_url(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await aiohttp_server(metrics_app())
    buffers = BodyBuffers()
    extractor = Extractor()
    urls: Shared[str, URL] = Shared(4)
    caches = ScrapeCaches(buffers=buffers, urls=urls)
    spec = ScrapeSpec(url=str(server.make_url("/metrics")))
    want = extract_families(PAYLOAD.decode())
    requested: list[URL] = []
    get = session.get

    def spy(url: URL, **kwargs: Any) -> Any:
        requested.append(url)
        return get(url, **kwargs)

    session.get = spy  # type: ignore[method-assign]
    for _ in range(4):
        got = await scrape_once(
            session=session,
            spec=spec,
            timeout=5.0,
            max_bytes=MAX,
            extract=extractor.extract,
            caches=caches,
        )
        assert got == want
    assert (buffers.created, buffers.free, extractor.reused) == (1, 1, 3)
    assert requested[0] == URL(spec.url)
    assert all(url is requested[0] for url in requested)  # parsed once
    assert urls.get(spec.url) is requested[0]


async def test_gzip_response(aiohttp_server: ServerFactory, session: aiohttp.ClientSession) -> None:
    seen: list[str] = []

    async def gzipped(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=gzip.compress(PAYLOAD), headers={"Content-Encoding": "gzip"})

    server = await aiohttp_server(metrics_app(gzipped))
    families = await scrape(session, str(server.make_url("/metrics")))
    assert families == extract_families(PAYLOAD.decode())
    assert "gzip" in seen[0]


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_http_status(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession, status: int
) -> None:
    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=status, text="no")

    server = await aiohttp_server(metrics_app(failing))
    assert (await scrape_error(session, str(server.make_url("/metrics")))).reason == "http_status"


@pytest.mark.parametrize("chunked", [False, True])
async def test_too_large(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession, chunked: bool
) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(PAYLOAD) * 4
        await response.prepare(request)
        for _ in range(4):
            await response.write(PAYLOAD)
        return response

    server = await aiohttp_server(metrics_app(huge))
    err = await scrape_error(session, str(server.make_url("/metrics")), max_bytes=len(PAYLOAD))
    assert err.reason == "too_large"


async def test_gzip_bomb_is_capped_after_decompression(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    bomb = gzip.compress(b"#" * (8 * MAX))

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    server = await aiohttp_server(metrics_app(serve))
    assert len(bomb) < MAX
    assert (await scrape_error(session, str(server.make_url("/metrics")))).reason == "too_large"


async def test_timeout(aiohttp_server: ServerFactory, session: aiohttp.ClientSession) -> None:
    async def stalled(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=PAYLOAD)

    server = await aiohttp_server(metrics_app(stalled))
    err = await scrape_error(session, str(server.make_url("/metrics")), timeout=0.2)
    assert err.reason == "timeout"


async def test_connect(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert (await scrape_error(session, f"http://127.0.0.1:{port}/metrics")).reason == "connect"


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/metrics", "http://[::1/metrics"])
async def test_a_url_that_does_not_parse_is_a_connect_error(
    session: aiohttp.ClientSession, url: str
) -> None:
    assert (await scrape_error(session, url)).reason == "connect"


async def test_garbage_is_a_parse_error(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(body=b"\x00\xff<html>not metrics</html>")

    server = await aiohttp_server(metrics_app(garbage))
    assert (await scrape_error(session, str(server.make_url("/metrics")))).reason == "parse"


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *, require_client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "etcd-main-0.etcd-main-peer").configure_cert(ctx)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(ctx)
        # With TLS 1.3 an asyncio server drops a client without a certificate after the
        # handshake, without an alert; TLS 1.2 fails the handshake itself. (etcd sends the alert:
        # see tests/integration/test_scrape_etcd.py.)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@pytest.mark.parametrize("files", [True, False], ids=["files", "pem-data"])
async def test_mtls(
    aiohttp_server: ServerFactory,
    session: aiohttp.ClientSession,
    ca: trustme.CA,
    tmp_path: Path,
    files: bool,
) -> None:
    server = await aiohttp_server(metrics_app(), ssl=server_context(ca, require_client_cert=True))
    url = str(server.make_url("/metrics"))
    assert url.startswith("https://")
    families = await scrape(session, url, tls=client_tls(ca, tmp_path, files=files))
    assert families == extract_families(PAYLOAD.decode())
    no_cert = client_tls(ca, tmp_path, files=files, with_cert=False)
    assert (await scrape_error(session, url, tls=no_cert)).reason == "tls"


async def test_unknown_ca_is_a_tls_error(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession, ca: trustme.CA, tmp_path: Path
) -> None:
    server = await aiohttp_server(metrics_app(), ssl=server_context(ca, require_client_cert=False))
    url = str(server.make_url("/metrics"))
    assert (await scrape_error(session, url)).reason == "tls"  # system CAs only
    other = client_tls(trustme.CA(), tmp_path, files=False)
    assert (await scrape_error(session, url, tls=other)).reason == "tls"
    skip = TLSConfig(insecure_skip_verify=True)
    assert await scrape(session, url, tls=skip)


async def test_server_name(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession, ca: trustme.CA, tmp_path: Path
) -> None:
    server = await aiohttp_server(metrics_app(), ssl=server_context(ca, require_client_cert=False))
    url = str(server.make_url("/metrics")).replace("127.0.0.1", "localhost")
    wrong = client_tls(ca, tmp_path, files=False)
    assert (await scrape_error(session, url, tls=wrong)).reason == "tls"  # cert has no "localhost"
    named = client_tls(ca, tmp_path, files=False, server_name="etcd-main-0.etcd-main-peer")
    assert await scrape(session, url, tls=named)


async def test_unreadable_client_files_are_a_tls_error(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    tls = TLSConfig(ca_file=str(tmp_path / "missing.crt"))
    assert (await scrape_error(session, "https://127.0.0.1:1/metrics", tls=tls)).reason == "tls"


async def test_context_cache_shares_and_expires(ca: trustme.CA, tmp_path: Path) -> None:
    now = [0.0]
    cache = SSLContextCache(max_age=60, clock=lambda: now[0])
    tls = client_tls(ca, tmp_path, files=True)
    same = TLSConfig(**{f: getattr(tls, f) for f in tls.__slots__})  # type: ignore[attr-defined]
    first = await cache.get(tls)
    assert await cache.get(same) is first
    assert len(cache) == 1
    now[0] = 61.0
    assert await cache.get(tls) is not first


async def test_context_cache_keys_pem_data_by_material_alone(
    ca: trustme.CA, tmp_path: Path
) -> None:
    """Members of a shoot share one context whatever their server names; PEM data never changes
    under its key, so its context does not expire (no rebuilds every max_age at 2,000 members)."""
    now = [0.0]
    cache = SSLContextCache(max_age=60, clock=lambda: now[0])
    tls = client_tls(ca, tmp_path, files=False)
    main = replace(tls, server_name="etcd-main-local")
    events = replace(tls, server_name="etcd-events-local")
    first = await cache.get(main)
    assert await cache.get(events) is first
    now[0] = 1e6
    assert await cache.get(tls) is first
    assert len(cache) == 1


async def test_tls_error_fails_without_connecting(session: aiohttp.ClientSession) -> None:
    """A TLSConfig whose Secret is unusable: reason tls, its error as the detail, no connection
    (the port would refuse one: `connect`)."""
    tls = TLSConfig(error="Secret ns/etcd-client-1: 404 not found", server_name="etcd-main-local")
    err = await scrape_error(session, "https://127.0.0.1:1/metrics", tls=tls)
    assert (err.reason, err.detail) == ("tls", "Secret ns/etcd-client-1: 404 not found")


# -- the loop ------------------------------------------------------------------------------


async def test_loop_records_and_logs_transitions_once(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = asyncio.Event()
    healthy.set()
    scrapes: list[bool] = []

    async def flaky(request: web.Request) -> web.Response:
        scrapes.append(healthy.is_set())
        if healthy.is_set():
            return web.Response(body=PAYLOAD)
        return web.Response(status=500)

    server = await aiohttp_server(metrics_app(flaky))
    spec = ScrapeSpec(url=str(server.make_url("/metrics")))
    state = Store().upsert(Target(key="t", identity=Identity(pod="etcd-0"), scrape=spec))
    caplog.set_level(logging.DEBUG, logger="exporter.scrape.loop")

    async def until(predicate: Callable[[], bool]) -> None:
        for _ in range(1000):
            if predicate():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached")

    loop = asyncio.create_task(
        scrape_loop(
            scraper=Scraper(session, timeout=0.05, max_bytes=MAX),  # min(timeout, interval)
            state=state,
            spec=spec,
            interval=0.05,
            rng=random.Random(1),
        )
    )
    try:
        async with asyncio.timeout(10):
            await until(lambda: state.up is True)
            assert state.relayed == extract_families(PAYLOAD.decode())
            healthy.clear()
            await until(lambda: state.scrape_errors["http_status"] >= 3)
            assert state.up is False
            # the last good families stay (target_up 0 marks them as not fresh): the member's
            # series do not vanish while etcd cannot be scraped
            assert state.relayed == extract_families(PAYLOAD.decode())
            healthy.set()
            await until(lambda: state.up is True)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("Scrape failed") == 1
    assert messages.count("Scrape recovered") == 1
    assert state.last_scrape_duration is not None
    assert len(scrapes) >= 5


def test_session_limits_connections_not_per_host() -> None:
    async def make() -> tuple[int, int]:
        async with make_session(concurrency=17) as s:
            connector = s.connector
            assert isinstance(connector, aiohttp.TCPConnector)
            return connector.limit, connector.limit_per_host

    assert asyncio.run(make()) == (17, 0)
