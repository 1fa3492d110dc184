"""The log follower's inactivity watchdog: one timer per period, exact silence semantics.

On the virtual clock (looptime): the watchdog runs on the loop's time, so the silences take no
wall time and the bounds can be exact.
"""

from __future__ import annotations

import asyncio

import pytest

from exporter.sources.kubelog import _Silence


async def watched(seconds: float, *, active_for: float) -> None:
    """Report activity every 50 ms for `active_for` seconds, then go silent until the watchdog
    raises TimeoutError."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as scope:
        silence = _Silence(scope, seconds)
        try:
            until = loop.time() + active_for
            while loop.time() < until:
                await asyncio.sleep(0.05)
                silence.last = loop.time()
            await asyncio.sleep(5)
        finally:
            silence.cancel()


@pytest.mark.looptime
async def test_activity_keeps_the_scope_open_and_silence_ends_it() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.ensure_future(watched(0.2, active_for=0.6))  # 3x the silence allowed
    with pytest.raises(TimeoutError):
        await task
    # the last activity at 0.6 (0.65 with the float steps), then 0.2 s of silence
    assert 0.6 + 0.2 <= loop.time() - started <= 0.65 + 0.2 + 1e-6


@pytest.mark.looptime
async def test_cancel_leaves_no_timer_behind() -> None:
    async with asyncio.timeout(None) as scope:
        silence = _Silence(scope, 0.05)
        silence.cancel()
        await asyncio.sleep(0.15)  # would have expired without the cancel
    assert not scope.expired()
