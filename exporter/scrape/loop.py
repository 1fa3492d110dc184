"""The per-target scrape loop: scrape every interval, record the outcome in the target's state.

The loop keeps no state of its own beyond the schedule and the layout of the target's last
payload (`layout.Extractor`, which makes the next extraction cheaper); what it learns goes into
TargetState. It logs once per up/down transition, not once per scrape.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

import aiohttp

from exporter.model import SOURCE_ETCD, RelayedFamily, ScrapeSpec
from exporter.scrape.client import scrape_once
from exporter.scrape.errors import ScrapeError
from exporter.scrape.layout import Extractor
from exporter.scrape.tls import SSLContextCache
from exporter.state import TargetState

logger = logging.getLogger(__name__)

# The first scrape waits a random moment, so that 2,000 loops started together do not open 2,000
# connections at once: up to a third of the interval, at most FIRST_JITTER_MAX. Within one second
# (the former spread), 2,000 first scrapes next to 2,000 log streams being opened left the
# process CPU-bound for ten seconds and a third of the first scrapes timed out.
FIRST_JITTER_MAX = 10.0

# Reads a member's relayed families from elsewhere than its own /metrics (e.g.
# `federate.Federation.families`); raises ScrapeError like scrape_once.
Fetch = Callable[[ScrapeSpec], Awaitable[tuple[RelayedFamily, ...]]]


async def scrape_loop(
    *,
    session: aiohttp.ClientSession,
    state: TargetState,
    spec: ScrapeSpec,
    interval: float,
    timeout: float,  # noqa: ASYNC109 - per scrape request, not a cancel scope
    max_bytes: int,
    tls_contexts: SSLContextCache | None = None,
    rng: random.Random | None = None,
    fetch: Fetch | None = None,
) -> None:
    """Scrape `spec` until cancelled, recording every outcome into `state`; with `fetch`, each
    scrape is `fetch(spec)` instead of a request to `spec.url`.

    The first scrape runs after a random delay (at most a third of the interval, and at most
    FIRST_JITTER_MAX); the second one after a random part of the interval, which spreads the
    targets' scrapes over the interval; then one scrape every `interval` seconds, measured from
    start to start. Without `rng`, the random module's shared generator is used (a Random of
    its own per target was 5 MB at 2,000 targets).
    """
    uniform = rng.uniform if rng is not None else random.uniform
    loop = asyncio.get_running_loop()
    await asyncio.sleep(uniform(0.0, min(interval / 3, FIRST_JITTER_MAX)))
    first = True
    extractor = Extractor()
    while True:
        started = loop.time()
        await _scrape_and_record(
            session=session,
            state=state,
            spec=spec,
            request_timeout=min(timeout, interval),
            max_bytes=max_bytes,
            tls_contexts=tls_contexts,
            extractor=extractor,
            fetch=fetch,
        )
        period = uniform(0.1, 1.0) * interval if first else interval
        first = False
        await asyncio.sleep(max(0.0, started + period - loop.time()))


async def _scrape_and_record(
    *,
    session: aiohttp.ClientSession,
    state: TargetState,
    spec: ScrapeSpec,
    request_timeout: float,
    max_bytes: int,
    tls_contexts: SSLContextCache | None,
    extractor: Extractor,
    fetch: Fetch | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    was_up = state.up
    try:
        if fetch is not None:
            families = await fetch(spec)
        else:
            families = await scrape_once(
                session=session,
                spec=spec,
                timeout=request_timeout,
                max_bytes=max_bytes,
                tls_contexts=tls_contexts,
                extract=extractor.extract,
            )
    except ScrapeError as err:
        state.record_scrape_error(err.reason, duration=loop.time() - started)
        if was_up is not False:
            logger.warning("Scrape failed", extra=_fields(state, spec, reason=err.reason, err=err))
        return
    state.record_scrape_success(families, duration=loop.time() - started)
    if was_up is False:
        logger.info("Scrape recovered", extra=_fields(state, spec))
    elif was_up is None:
        logger.debug("Scrape succeeded", extra=_fields(state, spec, families=len(families)))


def _fields(state: TargetState, spec: ScrapeSpec, **more: object) -> dict[str, object]:
    ident = state.target.identity
    fields: dict[str, object] = {
        "target": state.target.key,
        "namespace": ident.namespace,
        "pod": ident.pod,
        "url": spec.url,
    }
    if spec.source != SOURCE_ETCD:
        fields["source"] = spec.source
    fields.update({k: str(v) if isinstance(v, BaseException) else v for k, v in more.items()})
    return fields
