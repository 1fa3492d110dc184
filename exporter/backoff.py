"""The one backoff: how long a retrying loop waits, and when it starts over.

Every loop that retries — the supervisor restarting a task, an informer's list/watch, a pod log
follower, a log command — waits `Backoff.delay(n)` before its n-th retry in a row (0-based):
`initial·factor^n`, capped at `maximum`, scaled by a uniform draw from `jitter` so that loops
that failed together do not retry together. `Retries` counts the retries in a row and starts
over after a healthy run (the caller says what healthy is: ran long enough, delivered a line).
`wait_set` is the wait itself where something may cut it short (a nudge, a change, SIGHUP).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between retries: initial·factor^n capped at maximum, × uniform(*jitter)."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: tuple[float, float] = (0.8, 1.2)  # (1.0, 1.0): no jitter

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry number `attempt` (0-based) in a row."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        low, high = self.jitter
        return base * (low + (high - low) * rand())


class Retries:
    """The retries in a row of one loop: `next_delay()` gives the next wait; `reset()` (or
    `next_delay(healthy=True)`) starts over after a run that went well."""

    __slots__ = ("attempt", "backoff", "rand")

    def __init__(
        self, backoff: Backoff, *, first: int = 0, rand: Callable[[], float] = random.random
    ) -> None:
        self.backoff = backoff
        self.attempt = first
        self.rand = rand

    def reset(self) -> None:
        """The last run was healthy: the next delay is the initial one again."""
        self.attempt = 0

    def next_delay(self, backoff: Backoff | None = None, *, healthy: bool = False) -> float:
        """The wait before the next retry (with `backoff` instead of the loop's own, if given);
        `healthy` resets first."""
        if healthy:
            self.attempt = 0
        delay = (backoff or self.backoff).delay(self.attempt, self.rand)
        self.attempt += 1
        return delay


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set, at most `seconds`; True when it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
