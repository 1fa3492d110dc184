"""Client TLS for scraping etcd: SSLContexts cached per TLS material.

A TLSConfig names files or carries PEM data (from a Kubernetes secret). Contexts are built off the
event loop and cached by the material alone — the server name is given per connection, not to
the context — so the members of a shoot (and every target sharing one CA and client certificate)
share one context. Contexts from files expire after `max_age` seconds so that rotated files are
picked up; contexts from PEM data never change and stay until evicted (new data is a new key).
A TLSConfig with an `error` (its Secret is missing or malformed) fails at once with reason `tls`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from exporter.model import TLSConfig
from exporter.scrape.errors import ScrapeError
from exporter.tls import build_ssl_context


class SSLContextCache:
    """SSLContexts by TLS material: built once in a thread, reused; file-based ones are rebuilt
    after `max_age`."""

    def __init__(
        self,
        *,
        max_age: float = 300.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[TLSConfig, tuple[float, ssl.SSLContext]] = OrderedDict()
        # builds in progress: members sharing material wait for one build, not start their own
        self._building: dict[TLSConfig, asyncio.Future[ssl.SSLContext]] = {}

    async def get(self, tls: TLSConfig) -> ssl.SSLContext:
        """The context for `tls`; raises ScrapeError("tls") when it cannot be built."""
        if tls.error:
            raise ScrapeError("tls", tls.error)
        key = replace(tls, server_name=None) if tls.server_name else tls
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and (now - entry[0] < self._max_age or not _has_files(key)):
            self._entries.move_to_end(key)
            return entry[1]
        building = self._building.get(key)
        if building is None:
            building = asyncio.ensure_future(self._build(key, now))
            self._building[key] = building
            building.add_done_callback(lambda done: self._built(key, done))
        # shielded: a scrape cancelled while waiting does not cancel the others' build
        return await asyncio.shield(building)

    async def _build(self, key: TLSConfig, now: float) -> ssl.SSLContext:
        try:
            ctx = await asyncio.to_thread(build_ssl_context, key)
        except (ssl.SSLError, OSError, ValueError) as err:
            raise ScrapeError("tls", f"cannot load client TLS configuration: {err}") from err
        self._entries[key] = (now, ctx)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return ctx

    def _built(self, key: TLSConfig, done: asyncio.Future[ssl.SSLContext]) -> None:
        self._building.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so an error nobody waits for is not reported

    def __len__(self) -> int:
        return len(self._entries)


def _has_files(tls: TLSConfig) -> bool:
    return bool(tls.ca_file or tls.cert_file or tls.key_file)
