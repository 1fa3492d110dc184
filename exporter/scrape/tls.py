"""Client TLS for scraping etcd: SSLContexts built from a TLSConfig, cached per config.

A TLSConfig names files or carries PEM data (from a Kubernetes secret). Contexts are built off the
event loop and cached, so 2,000 targets sharing one CA and client certificate share one context.
Cached contexts expire after `max_age` seconds so that rotated certificate files are picked up.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable

from exporter.model import TLSConfig
from exporter.scrape.errors import ScrapeError


def build_ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """A client SSLContext for `tls` (blocking: reads files). Raises ssl.SSLError or OSError."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.ca_file or tls.ca_data:
        # a private CA replaces the system store: etcd's certificates are never publicly signed
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls.ca_file:
            ctx.load_verify_locations(cafile=tls.ca_file)
        if tls.ca_data:
            ctx.load_verify_locations(cadata=tls.ca_data)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(certfile=tls.cert_file, keyfile=tls.key_file)
    elif tls.cert_data and tls.key_data:
        load_cert_chain_data(ctx, cert=tls.cert_data, key=tls.key_data)
    return ctx


def load_cert_chain_data(ctx: ssl.SSLContext, *, cert: str, key: str) -> None:
    """Load a PEM certificate chain and key given as text (blocking).

    ssl can only load a chain from files: both go to a private temporary directory (mode 0700,
    files 0600) that is deleted right after loading."""
    with tempfile.TemporaryDirectory(prefix="etcd-latency-tls-") as tmp:
        cert_path = os.path.join(tmp, "tls.crt")
        key_path = os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
        ctx.load_cert_chain(certfile=cert_path, keyfile=key_path)


class SSLContextCache:
    """SSLContexts by TLSConfig: built once in a thread, reused, rebuilt after `max_age`."""

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

    async def get(self, tls: TLSConfig) -> ssl.SSLContext:
        """The context for `tls`; raises ScrapeError("tls") when it cannot be built."""
        now = self._clock()
        entry = self._entries.get(tls)
        if entry is not None and now - entry[0] < self._max_age:
            self._entries.move_to_end(tls)
            return entry[1]
        try:
            ctx = await asyncio.to_thread(build_ssl_context, tls)
        except (ssl.SSLError, OSError, ValueError) as err:
            raise ScrapeError("tls", f"cannot load client TLS configuration: {err}") from err
        self._entries[tls] = (now, ctx)
        self._entries.move_to_end(tls)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return ctx

    def __len__(self) -> int:
        return len(self._entries)
