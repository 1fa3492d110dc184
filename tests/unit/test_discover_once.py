"""diagnose's one-shot discovery: run a Discovery until its first publish, then cancel it.

On the virtual clock (looptime): the delays and timeouts take no wall time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from exporter.commands.diagnose.discover_once import DiscoveryFailed, _denied, first_publish
from exporter.model import Target

Publish = Callable[[Mapping[str, Target]], None]


class Fake:
    """A Discovery that publishes after `delay` (or never), or fails."""

    def __init__(self, *, delay: float | None = 0.0, error: Exception | None = None) -> None:
        self.delay, self.error = delay, error
        self.cancelled = False

    async def run(self, publish: Publish) -> None:
        try:
            if self.error is not None:
                raise self.error
            if self.delay is not None:
                await asyncio.sleep(self.delay)
                publish({"a": Target(key="a")})
                publish({"b": Target(key="b")})  # later sets are ignored
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@pytest.mark.looptime
async def test_first_publish_wins_and_the_discovery_is_cancelled() -> None:
    fake = Fake(delay=0.05)
    async with asyncio.timeout(5):
        got = await first_publish(fake, timeout_seconds=5)
    assert list(got) == ["a"]
    assert fake.cancelled


@pytest.mark.looptime
async def test_a_failing_discovery_is_reported() -> None:
    async with asyncio.timeout(5):
        with pytest.raises(DiscoveryFailed, match="RuntimeError: no API"):
            await first_publish(Fake(error=RuntimeError("no API")), timeout_seconds=5)


@pytest.mark.looptime
async def test_a_silent_discovery_times_out() -> None:
    fake = Fake(delay=None)
    async with asyncio.timeout(5):
        with pytest.raises(DiscoveryFailed, match="within 0s"):
            await first_publish(fake, timeout_seconds=0.3)
    assert fake.cancelled


@pytest.mark.looptime
async def test_a_known_failure_ends_the_wait_early() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(5):
        with pytest.raises(DiscoveryFailed, match="refused"):
            await first_publish(Fake(delay=None), timeout_seconds=4, failed=lambda: "refused")
    assert loop.time() - started < 1


def test_denials_of_required_lists_only() -> None:
    assert _denied({("pods", "list", "403"): 1}) is not None
    assert "refused to list pods (403)" in (_denied({("pods", "list", "403"): 2}) or "")
    assert _denied({("etcds", "list", "403"): 1}) is None  # optional: the CRD may be missing
    assert _denied({("pods", "list", "500"): 3}) is None  # retried by discovery
