"""Client TLS for scraping etcd in Kubernetes mode: the `etcd-client` secret of each namespace.

Gardener's etcd serves /metrics only over mTLS with the client certificate in the shoot
namespace's `etcd-client` secret. The secret is read with `get` (the least privilege the chart
grants, no list/watch on secrets) when a namespace first has a target, and read again every
`refresh` seconds so that a rotated certificate reaches the scraper; a change calls `on_change`,
which republishes the targets with the new TLS data. Without a secret (not found, denied, or no
secret configured) the files given by --scrape.ca-file/--scrape.cert-file/--scrape.key-file apply.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Iterable

import aiohttp

from exporter.kubeclient import SECRETS, KubeApi, KubeApiError
from exporter.model import TLSConfig
from exporter.settings import ScrapeSettings

logger = logging.getLogger(__name__)

FETCH_CONCURRENCY = 64


def files_tls(scrape: ScrapeSettings) -> TLSConfig:
    """TLS from the --scrape.* file flags."""
    return TLSConfig(
        ca_file=scrape.ca_file,
        cert_file=scrape.cert_file,
        key_file=scrape.key_file,
        server_name=scrape.server_name,
        insecure_skip_verify=scrape.insecure_skip_verify,
    )


def _decode(data: dict[str, object], key: str) -> str | None:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def secret_tls(secret: dict[str, object], scrape: ScrapeSettings) -> TLSConfig:
    """TLS from a secret's data; a key the secret lacks falls back to the matching file flag."""
    raw = secret.get("data")
    data = raw if isinstance(raw, dict) else {}
    ca = _decode(data, scrape.client_secret_ca_key)
    cert = _decode(data, scrape.client_secret_cert_key)
    key = _decode(data, scrape.client_secret_key_key)
    with_pair = cert is not None and key is not None
    return TLSConfig(
        ca_data=ca,
        ca_file=None if ca else scrape.ca_file,
        cert_data=cert if with_pair else None,
        key_data=key if with_pair else None,
        cert_file=None if with_pair else scrape.cert_file,
        key_file=None if with_pair else scrape.key_file,
        server_name=scrape.server_name,
        insecure_skip_verify=scrape.insecure_skip_verify,
    )


class ClientSecrets:
    """Per-namespace TLS from the client secret, fetched on demand and refreshed."""

    def __init__(
        self,
        api: KubeApi,
        *,
        scrape: ScrapeSettings,
        on_change: Callable[[], None],
        refresh: float = 300.0,
    ) -> None:
        self._api, self._scrape, self._on_change, self._refresh = api, scrape, on_change, refresh
        self._name = scrape.client_secret or ""
        self._cache: dict[str, TLSConfig] = {}
        self._sem = asyncio.Semaphore(FETCH_CONCURRENCY)

    @property
    def enabled(self) -> bool:
        """True when TLS comes from a secret (https and a secret name configured)."""
        return self._scrape.scheme == "https" and bool(self._name)

    def tls(self, namespace: str) -> TLSConfig:
        """The namespace's TLS (the file flags until the secret has been read)."""
        return self._cache.get(namespace) or files_tls(self._scrape)

    async def ensure(self, namespaces: Iterable[str]) -> None:
        """Read the secret of every namespace not read yet; forget namespaces not listed."""
        wanted = set(namespaces)
        for ns in [n for n in self._cache if n not in wanted]:
            del self._cache[ns]
        missing = [ns for ns in wanted if ns not in self._cache]
        if missing:
            await asyncio.gather(*(self._fetch(ns) for ns in missing))

    async def run(self) -> None:
        """Re-read every known secret each `refresh` seconds; republish on change."""
        while True:
            await asyncio.sleep(self._refresh)
            changed = False
            for ns in list(self._cache):
                old = self._cache[ns]
                await self._fetch(ns)
                changed |= self._cache.get(ns, old) != old
            if changed:
                logger.info("Client certificate changed, updating targets")
                self._on_change()

    async def _fetch(self, namespace: str) -> None:
        async with self._sem:
            try:
                doc = await self._api.get(SECRETS, self._name, namespace=namespace)
                tls = secret_tls(doc, self._scrape)
            except KubeApiError as err:
                if err.not_found:
                    logger.info(
                        "Client secret not found, using the file flags",
                        extra={"namespace": namespace, "secret": self._name},
                    )
                tls = files_tls(self._scrape)
            except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                logger.warning(
                    "Client secret not readable",
                    extra={"namespace": namespace, "secret": self._name, "err": repr(err)},
                )
                return
            self._cache[namespace] = tls
