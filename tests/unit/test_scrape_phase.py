"""Scrape phases: each target is scraped at its place in the store's order, so that members next
to each other on /metrics change together (on the virtual clock: looptime)."""

from __future__ import annotations

import asyncio
import random
from typing import cast

import pytest

from exporter.model import Identity, RelayedFamily, ScrapeSpec, Target
from exporter.scrape.caches import ScrapeCaches
from exporter.scrape.loop import phase_start, scrape_loop
from exporter.scrape.scraper import Scraper
from exporter.state import Store


@pytest.mark.parametrize(
    ("after", "phase", "expected"),
    [(12.0, 0.5, 15.0), (15.0, 0.5, 15.0), (15.1, 0.5, 25.0), (3.0, 0.0, 10.0), (3.0, 1.0, 10.0)],
)
def test_phase_start(after: float, phase: float, expected: float) -> None:
    assert phase_start(after, phase, 10.0) == pytest.approx(expected)


def test_store_phase_is_the_place_in_its_order() -> None:
    store = Store()
    for key in "abcd":
        store.upsert(Target(key=key))
    assert [store.phase(key) for key in "abcd"] == [0.0, 0.25, 0.5, 0.75]
    store.remove("b")
    assert [store.phase(key) for key in "acd"] == [0.0, 1 / 3, 2 / 3]
    assert store.phase("gone") == 0.0
    store.upsert(Target(key="e"))  # a new key after the places were listed
    store.upsert(Target(key="a"))  # a known one: its place stays
    assert [store.phase(key) for key in "acde"] == [0.0, 0.25, 0.5, 0.75]


class Recorder:
    """A scraper that only notes when each target was scraped."""

    caches = ScrapeCaches()

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = {}

    async def families(self, spec: ScrapeSpec, **_: object) -> tuple[RelayedFamily, ...]:
        self.starts.setdefault(spec.url, []).append(asyncio.get_running_loop().time())
        return ()


@pytest.mark.looptime
async def test_targets_are_scraped_in_the_stores_order_from_the_second_scrape() -> None:
    store = Store()
    recorder = Recorder()
    interval = 30.0
    loops = []
    for i in range(6):
        spec = ScrapeSpec(url=f"http://10.0.0.{i}:2379/metrics")
        target = Target(key=f"t{i}", identity=Identity(pod=f"etcd-{i}"), scrape=spec)
        state = store.upsert(target)
        loops.append(
            scrape_loop(
                scraper=cast(Scraper, recorder),
                state=state,
                spec=spec,
                interval=interval,
                rng=random.Random(i),
                phase=lambda key=target.key: store.phase(key),
            )
        )
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    await asyncio.sleep(5 * interval)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for i in range(6):
        starts = recorder.starts[f"http://10.0.0.{i}:2379/metrics"]
        assert len(starts) >= 4
        assert starts[1] - starts[0] >= 0.1 * interval
        for start in starts[1:]:  # at the target's sixth of the interval
            assert start % interval == pytest.approx(i / 6 * interval, abs=0.01)
