"""The one backoff gives each retrying loop the delays it had before it was shared.

Each user is compared with the formula it used to write out itself: the supervisor (±20 %),
the Kubernetes API retry (×U(0.5, 1)), the informer (two shapes, one count), the pod log
follower (a count that starts at 1) and the log command (no jitter).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator

import pytest

from exporter.backoff import Backoff, Retries, wait_set
from exporter.discovery.informer import ERROR_RETRY, QUICK_END_RETRY
from exporter.kube.client import API_RETRY


def draws(*values: float) -> Callable[[], float]:
    it: Iterator[float] = iter(values)
    return lambda: next(it)


def test_delay_grows_caps_and_jitters_within_its_range() -> None:
    b = Backoff(initial=1.0, maximum=30.0)
    assert b.delay(0, rand=lambda: 0.0) == pytest.approx(0.8)
    assert b.delay(0, rand=lambda: 1.0) == pytest.approx(1.2)
    assert b.delay(3, rand=lambda: 0.5) == pytest.approx(8.0)
    assert b.delay(10, rand=lambda: 0.5) == pytest.approx(30.0)
    assert b.delay(10_000, rand=lambda: 0.5) == pytest.approx(30.0)  # no overflow


def test_supervisor_delays_are_the_former_plus_minus_twenty_percent() -> None:
    backoff = Backoff()  # the supervisor's: Backoff() unless given
    for attempt in range(10):
        for r in (0.0, 0.25, 0.5, 0.9, 1.0):
            before = min(60.0, 1.0 * 2.0 ** min(attempt, 64)) * (1.0 + 0.2 * (2.0 * r - 1.0))
            assert backoff.delay(attempt, rand=lambda r=r: r) == pytest.approx(before)


def test_api_retry_is_the_former_retry_delay() -> None:
    def retry_delay(attempt: int, initial: float, maximum: float, r: float) -> float:
        base = min(maximum, initial * 2.0 ** min(attempt, 32))
        return base * (0.5 + 0.5 * r)  # random.uniform(0.5, 1.0)

    for initial, maximum, backoff in (
        (0.5, 30.0, API_RETRY),
        (1.0, 60.0, ERROR_RETRY),
        (0.2, 10.0, QUICK_END_RETRY),
    ):
        for attempt in range(40):
            for r in (0.0, 0.3, 1.0):
                expected = retry_delay(attempt, initial, maximum, r)
                assert backoff.delay(attempt, rand=lambda r=r: r) == pytest.approx(expected)


def test_api_retry_draws_vary() -> None:
    first = [API_RETRY.delay(0) for _ in range(50)]
    assert all(0.25 <= d <= 0.5 for d in first)
    assert len(set(first)) > 1


def test_retries_reset_after_a_healthy_run() -> None:
    retries = Retries(Backoff(initial=1.0, maximum=8.0, jitter=(1.0, 1.0)))
    assert [retries.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert retries.next_delay(healthy=True) == 1.0
    assert retries.next_delay() == 2.0
    retries.reset()
    assert retries.next_delay() == 1.0


def test_log_follower_sequence_is_the_former_one() -> None:
    """kubelog: `attempt = 0 if healthy else attempt + 1; delay(attempt)` from attempt 0."""
    rng = random.Random(7)
    runs = [rng.random() < 0.3 for _ in range(200)]  # healthy or not
    backoff = Backoff(initial=0.25, maximum=30.0, jitter=(1.0, 1.0))
    retries = Retries(backoff, first=1)
    attempt = 0
    for healthy in runs:
        attempt = 0 if healthy else attempt + 1
        assert retries.next_delay(healthy=healthy) == backoff.delay(attempt)


def test_command_sequence_is_the_former_one() -> None:
    """command: reset after a long run, then `min(max, initial·2^attempt)`, attempt += 1."""
    rng = random.Random(3)
    runs = [rng.random() < 0.2 for _ in range(100)]
    retries = Retries(Backoff(initial=1.0, maximum=30.0, jitter=(1.0, 1.0)))
    attempt = 0
    for long_run in runs:
        if long_run:
            attempt = 0
        expected = min(30.0, 1.0 * 2**attempt)
        attempt += 1
        assert retries.next_delay(healthy=long_run) == expected


def test_one_count_for_two_shapes() -> None:
    """The informer: a quick end of a watch and an error share the count in a row."""
    retries = Retries(ERROR_RETRY, rand=draws(1.0, 1.0, 1.0))
    assert retries.next_delay(QUICK_END_RETRY) == pytest.approx(0.2)
    assert retries.next_delay() == pytest.approx(2.0)
    assert retries.next_delay(QUICK_END_RETRY) == pytest.approx(0.8)


async def test_wait_set_returns_at_the_event_or_after_the_time() -> None:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await wait_set(event, 0.05) is False
    assert loop.time() - started >= 0.04
    loop.call_later(0.01, event.set)
    started = loop.time()
    assert await wait_set(event, 5.0) is True
    assert loop.time() - started < 1.0
