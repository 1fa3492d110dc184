"""Fetch one etcd /metrics: shared session, timeout, TLS, size cap, classified errors.

`scrape_once` returns the relayed families or raises ScrapeError with a bounded reason;
`scrape_loop` (loop.py) records the outcome and keeps the target's only scrape state: the layout
of its last payload (`layout.Extractor`). Bodies are read into reused buffers (buffers.py).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import aiohttp
from yarl import URL

from exporter import __version__
from exporter.model import RelayedFamily, ScrapeSpec
from exporter.scrape.buffers import read_into
from exporter.scrape.caches import ScrapeCaches, Shared
from exporter.scrape.errors import ScrapeError
from exporter.scrape.extract import extract_payload

# Ask for the classic text format: it is what the extractor reads (etcd's client_golang would
# otherwise be free to pick another format).
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
USER_AGENT = f"etcd-latency-exporter/{__version__}"
CHUNK = 64 * 1024


def make_session(*, concurrency: int, keepalive_timeout: float = 120.0) -> aiohttp.ClientSession:
    """The one ClientSession for every scrape.

    `concurrency` caps connections in use at once (not per host: each etcd is its own host).
    Idle connections are kept for `keepalive_timeout` seconds, longer than a scrape interval, so
    that mTLS handshakes are not repeated every scrape. Responses are gzip-decoded by aiohttp.
    """
    connector = aiohttp.TCPConnector(
        limit=concurrency,
        limit_per_host=0,
        keepalive_timeout=keepalive_timeout,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"Accept": ACCEPT, "User-Agent": USER_AGENT, "Accept-Encoding": "gzip"},
        auto_decompress=True,
        trust_env=False,
    )


async def scrape_once(
    *,
    session: aiohttp.ClientSession,
    spec: ScrapeSpec,
    timeout: float,  # noqa: ASYNC109 - the HTTP request's ClientTimeout, not a cancel scope
    max_bytes: int,
    extract: Callable[[bytearray], tuple[RelayedFamily, ...]] = extract_payload,
    caches: ScrapeCaches | None = None,
) -> tuple[RelayedFamily, ...]:
    """Fetch `spec.url` and extract the relayed families from the body with `extract` (a
    target's own `layout.Extractor().extract` reads its payloads faster), which must not keep
    the body; raises ScrapeError(reason). `caches` are the process's (`caches.ScrapeCaches`:
    TLS contexts, body buffers, parsed URLs; a context with the system CA store costs about
    0.8 MB, so 2,000 targets must share them); without them, those of this call's own."""
    caches = caches if caches is not None else ScrapeCaches()
    ssl_arg: ssl.SSLContext | bool = True
    server_name = None
    if spec.tls is not None:
        ssl_arg = await caches.tls.get(spec.tls)
        server_name = spec.tls.server_name
    url = _parsed(spec.url, caches.urls)
    with caches.buffers.borrowed() as body:
        await _fetch(
            body,
            session=session,
            url=url,
            ssl_arg=ssl_arg,
            server_name=server_name,
            request_timeout=timeout,
            max_bytes=max_bytes,
        )
        return extract(body)


def _parsed(text: str, urls: Shared[str, URL]) -> str | URL:
    """The URL aiohttp makes of `text`, parsed once (kept in `urls`); `text` itself where it
    does not parse, so that the request fails as it would have (a `connect` ScrapeError)."""
    url = urls.get(text)
    if url is None:
        try:
            url = urls.put(text, URL(text))
        except ValueError:
            return text
    return url


async def fetch_into(
    body: bytearray,
    *,
    session: aiohttp.ClientSession,
    url: str,
    timeout: float,  # noqa: ASYNC109 - the HTTP request's ClientTimeout, not a cancel scope
    max_bytes: int,
) -> None:
    """Read the body of a plain GET of `url` (default TLS verification, no client certificate)
    into `body`; raises ScrapeError with the reasons of scrape_once. Used for other sources of
    the relayed families than etcd itself (exporter.scrape.federate)."""
    await _fetch(
        body,
        session=session,
        url=url,
        ssl_arg=True,
        server_name=None,
        request_timeout=timeout,
        max_bytes=max_bytes,
    )


async def _fetch(
    body: bytearray,
    *,
    session: aiohttp.ClientSession,
    url: str | URL,
    ssl_arg: ssl.SSLContext | bool,
    server_name: str | None,
    request_timeout: float,
    max_bytes: int,
) -> None:
    """Read the response body into `body`."""
    try:
        async with session.get(
            url,
            ssl=ssl_arg,
            server_hostname=server_name,
            timeout=aiohttp.ClientTimeout(total=request_timeout),
            allow_redirects=False,
        ) as resp:
            if resp.status != 200:
                raise ScrapeError("http_status", f"HTTP {resp.status} {resp.reason or ''}".strip())
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise ScrapeError(
                    "too_large", f"Content-Length {resp.content_length} > {max_bytes} bytes"
                )
            await read_into(body, resp.content.iter_chunked(CHUNK), max_bytes)
    except ScrapeError:
        raise
    except Exception as err:
        classified = _classify(err, https=str(url).startswith("https:"))
        if classified is None:
            raise  # not a network or protocol failure: a bug, left to the supervisor
        raise classified from err


def _classify(err: Exception, *, https: bool) -> ScrapeError | None:
    """Map a client-side exception to a ScrapeError; None for anything else."""
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, TimeoutError):
        return ScrapeError("timeout", text)
    if isinstance(err, aiohttp.ClientSSLError | ssl.SSLError) or _caused_by_ssl(err):
        return ScrapeError("tls", text)
    reset = isinstance(err, aiohttp.ClientConnectorError) and isinstance(
        err.os_error, ConnectionResetError
    )
    if https and reset:
        # TCP was accepted, then reset during the handshake: the TLS peer refused us
        return ScrapeError("tls", text)
    if isinstance(err, aiohttp.ClientPayloadError):
        # a broken gzip stream or a body cut short mid-transfer
        return ScrapeError("parse" if "encoding" in str(err).lower() else "connect", text)
    if isinstance(err, aiohttp.ClientResponseError):
        return ScrapeError("http_status", text)  # a malformed HTTP response
    if isinstance(err, aiohttp.ClientError | OSError):
        return ScrapeError("connect", text)
    return None


def _caused_by_ssl(err: BaseException) -> bool:
    seen: BaseException | None = err
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
