"""The per-target scrape loop: scrape every interval, record the outcome in the target's state.

The loop keeps no state of its own beyond the schedule and the layout of the target's last
payload (`layout.Extractor`, which makes the next extraction cheaper); what it learns goes into
TargetState. It logs once per up/down transition, not once per scrape.

The composition root gives each loop a phase, its target's place in the store's order: targets
next to each other on /metrics are then scraped one after the other, so a request finds their
relayed text changed in a few of the kept body's gzip blocks (exporter/exposition/body.py), not
a little in every block, and compresses only those.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable

from exporter.model import SOURCE_ETCD, ScrapeSpec
from exporter.scrape.errors import ScrapeError
from exporter.scrape.layout import Extractor
from exporter.scrape.scraper import Scraper
from exporter.state import TargetState

logger = logging.getLogger(__name__)

# The first scrape waits a random moment, so that 2,000 loops started together do not open 2,000
# connections at once: up to a third of the interval, at most FIRST_JITTER_MAX. Within one second
# (the former spread), 2,000 first scrapes next to 2,000 log streams being opened left the
# process CPU-bound for ten seconds and a third of the first scrapes timed out.
FIRST_JITTER_MAX = 10.0


async def scrape_loop(
    *,
    scraper: Scraper,
    state: TargetState,
    spec: ScrapeSpec,
    interval: float,
    rng: random.Random | None = None,
    phase: Callable[[], float] | None = None,
) -> None:
    """Scrape `spec` with `scraper` (the process's session, caches and source) until cancelled,
    recording every outcome into `state`.

    The first scrape runs after a random delay (at most a third of the interval, and at most
    FIRST_JITTER_MAX); the second one at the target's `phase` of the interval (a fraction in
    [0, 1), read then), or after a random part of the interval without one, which spreads the
    targets' scrapes over the interval; then one scrape every `interval` seconds, measured from
    start to start. Without `rng`, the random module's shared generator is used (a Random of
    its own per target was 5 MB at 2,000 targets).
    """
    uniform = rng.uniform if rng is not None else random.uniform
    loop = asyncio.get_running_loop()
    await asyncio.sleep(uniform(0.0, min(interval / 3, FIRST_JITTER_MAX)))
    first = True
    extractor = Extractor(caches=scraper.caches)
    while True:
        started = loop.time()
        await _scrape_and_record(scraper, state, spec, extractor)
        if not first:
            period = interval
        elif phase is None:
            period = uniform(0.1, 1.0) * interval
        else:
            period = phase_start(started + 0.1 * interval, phase(), interval) - started
        first = False
        await asyncio.sleep(max(0.0, started + period - loop.time()))


def phase_start(after: float, phase: float, interval: float) -> float:
    """The first time at or after `after` that lies at `phase` (a fraction) of the interval,
    counting intervals from time 0 of the loop's clock."""
    offset = (phase % 1.0) * interval
    return offset + math.ceil((after - offset) / interval) * interval


async def _scrape_and_record(
    scraper: Scraper, state: TargetState, spec: ScrapeSpec, extractor: Extractor
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    was_up = state.up
    try:
        families = await scraper.families(spec, extract=extractor.extract)
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
