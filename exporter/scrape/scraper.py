"""Where a member's relayed families are read from, decided once for `run` and `diagnose`.

`--scrape.source=etcd` (the default) scrapes each member's own /metrics through the shared
session and caches; `shoot-prometheus` reads them from the namespace's Prometheus through one
shared `Federation` (one request per Prometheus per interval). `make_scraper` is the one builder
of that choice, `Scraper.families` the one place a member's spec picks its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from exporter.model import SOURCE_SHOOT_PROMETHEUS, RelayedFamily, ScrapeSpec
from exporter.scrape.caches import ScrapeCaches
from exporter.scrape.client import scrape_once
from exporter.scrape.extract import extract_payload
from exporter.scrape.federate import Federation

Extract = Callable[[bytearray], tuple[RelayedFamily, ...]]


@dataclass(frozen=True, slots=True, eq=False)
class Scraper:
    """Reads a member's relayed families; raises ScrapeError(reason) like `scrape_once`."""

    session: aiohttp.ClientSession
    timeout: float  # of one request
    max_bytes: int
    caches: ScrapeCaches = field(default_factory=ScrapeCaches)
    federation: Federation | None = None  # members of the shoot-prometheus source

    async def families(
        self, spec: ScrapeSpec, *, extract: Extract = extract_payload
    ) -> tuple[RelayedFamily, ...]:
        """The families of the member `spec` names: from its namespace's Prometheus for the
        shoot-prometheus source, else from etcd's body read with `extract`."""
        if spec.source == SOURCE_SHOOT_PROMETHEUS and self.federation is not None:
            return await self.federation.families(spec)
        return await scrape_once(
            session=self.session,
            spec=spec,
            timeout=self.timeout,
            max_bytes=self.max_bytes,
            extract=extract,
            caches=self.caches,
        )

    async def close(self) -> None:
        """Cancel the federation's requests in flight (the session is the caller's)."""
        if self.federation is not None:
            await self.federation.close()


def make_scraper(
    session: aiohttp.ClientSession,
    *,
    source: str,
    jobs: str,
    timeout: float,
    max_bytes: int,
    max_age: float,
    caches: ScrapeCaches | None = None,
) -> Scraper:
    """The scraper of `--scrape.source`: for shoot-prometheus, with the federation whose answers
    are reused for `max_age` seconds (`jobs`: --scrape.shoot-prometheus-jobs)."""
    caches = caches if caches is not None else ScrapeCaches()
    federation = None
    if source == SOURCE_SHOOT_PROMETHEUS:
        federation = Federation(
            session=session,
            jobs=jobs,
            timeout=timeout,
            max_bytes=max_bytes,
            max_age=max_age,
            buffers=caches.buffers,
            folds=caches.folds,
        )
    return Scraper(session, timeout, max_bytes, caches, federation)
