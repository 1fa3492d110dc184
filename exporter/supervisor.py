"""Reconciles published target sets into running tasks: one scrape loop and one log follower each.

The supervisor knows *that* a target has a scrape spec or a log spec, not how either works: the
composition root injects `scrape` and `follow` runners. Every task goes through `_supervise`,
which names it, restarts it with exponential backoff and jitter when it crashes or returns, and
logs each of those with the target key. Nothing a task does reaches another target or the root.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from exporter.model import LogSpec, ScrapeSpec, Target
from exporter.state import Store, TargetState

log = logging.getLogger(__name__)

ScrapeRunner = Callable[[TargetState, ScrapeSpec], Awaitable[None]]
LogRunner = Callable[[TargetState, LogSpec], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between restarts: initial·factor^n capped at maximum, ±jitter (a fraction)."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before restart number `attempt` (0-based)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base * (1.0 + self.jitter * (2.0 * rand() - 1.0))


@dataclass(slots=True)
class _Running:
    target: Target
    tasks: list[asyncio.Task[None]]


class Supervisor:
    """Owns every per-target task; `publish` is the Discovery callback, `run` the lifetime."""

    def __init__(
        self,
        *,
        store: Store,
        scrape: ScrapeRunner,
        follow: LogRunner,
        backoff: Backoff | None = None,
        first_collection_after: float = 30.0,
        stop_timeout: float = 2.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._scrape = scrape
        self._follow = follow
        self._backoff = backoff or Backoff()
        self._first_collection_after = first_collection_after
        self._stop_timeout = stop_timeout
        self._sleep = sleep
        self._clock = clock
        self._running: dict[str, _Running] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        self._published = asyncio.Event()

    # -- reconciliation ---------------------------------------------------------------------
    def publish(self, targets: Mapping[str, Target]) -> None:
        """Reconcile to `targets` (the complete desired set): add, update, restart, remove."""
        for key in [k for k in self._running if k not in targets]:
            self._remove(key)
        for key, target in targets.items():
            current = self._running.get(key)
            if current is None:
                self._add(target)
            elif current.target == target:
                continue
            elif current.target.same_sources(target):
                current.target = target
                self._store.upsert(target)
                log.info("Target labels updated", extra={"target": key})
            else:
                self._restart(current, target)
        if not self._store.discovery_synced:
            self._store.discovery_synced = True
            log.info("Discovery synced", extra={"targets": len(targets)})
        self._published.set()

    def _add(self, target: Target) -> None:
        state = self._store.upsert(target)
        self._running[target.key] = _Running(target, self._start(state, target, after=()))
        log.info("Target added", extra={"target": target.key})

    def _restart(self, current: _Running, target: Target) -> None:
        old = current.tasks
        for task in old:
            task.cancel()
        state = self._store.upsert(target)
        current.target = target
        current.tasks = self._start(state, target, after=old)
        log.info("Target sources changed, tasks restarted", extra={"target": target.key})

    def _remove(self, key: str) -> None:
        running = self._running.pop(key)
        for task in running.tasks:
            task.cancel()
        self._store.remove(key)
        if running.tasks:
            reaper = asyncio.create_task(self._reap(key, running.tasks), name=f"reap {key}")
            self._reapers.add(reaper)
            reaper.add_done_callback(self._reapers.discard)
        log.info("Target removed", extra={"target": key})

    def _start(
        self, state: TargetState, target: Target, *, after: Iterable[asyncio.Task[None]]
    ) -> list[asyncio.Task[None]]:
        previous = tuple(after)
        tasks: list[asyncio.Task[None]] = []
        if target.scrape is not None:
            spec = target.scrape
            tasks.append(
                self._spawn("scrape", target.key, lambda: self._scrape(state, spec), previous)
            )
        if target.log is not None:
            lspec = target.log
            tasks.append(
                self._spawn("log", target.key, lambda: self._follow(state, lspec), previous)
            )
        return tasks

    def _spawn(
        self,
        kind: str,
        key: str,
        factory: Callable[[], Awaitable[None]],
        after: tuple[asyncio.Task[None], ...],
    ) -> asyncio.Task[None]:
        name = f"{kind} {key}"
        return asyncio.create_task(self._supervise(kind, key, factory, after), name=name)

    # -- one supervised task --------------------------------------------------------------
    async def _supervise(
        self,
        kind: str,
        key: str,
        factory: Callable[[], Awaitable[None]],
        after: tuple[asyncio.Task[None], ...] = (),
    ) -> None:
        """Run `factory()` forever: restart after a crash or an unexpected return, with backoff.

        `after` are the cancelled tasks this one replaces; it waits for them (bounded) so that two
        tasks never write into one target's state at once.
        """
        where = {"task": kind, "target": key}
        if after:
            await self._wait(list(after), what=key)
        attempt = 0
        while True:
            started = self._clock()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.error("Task crashed", exc_info=err, extra=where)
            else:
                log.error("Task exited unexpectedly", extra=where)
            if self._clock() - started > self._backoff.maximum:
                attempt = 0  # it ran fine for a while: start the backoff over
            delay = self._backoff.delay(attempt)
            attempt += 1
            log.info("Task restarting", extra={**where, "delaySeconds": round(delay, 3)})
            await self._sleep(delay)

    # -- lifetime ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Live until cancelled: tracks the first collection, then stops every task on cancel."""
        try:
            await self._watch_first_collection()
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _watch_first_collection(self) -> None:
        await self._published.wait()
        deadline = self._clock() + self._first_collection_after
        while not self._first_collection_complete() and self._clock() < deadline:
            await self._sleep(0.2)
        self._store.first_collection_done = True
        log.info("First collection done", extra={"targets": len(self._running)})

    def _first_collection_complete(self) -> bool:
        for running in self._running.values():
            state = self._store.get(running.target.key)
            if running.target.scrape is not None and state and state.last_scrape_duration is None:
                return False
        return True

    async def stop(self) -> None:
        """Cancel every task and wait for them, at most `stop_timeout` seconds."""
        tasks = [t for r in self._running.values() for t in r.tasks] + list(self._reapers)
        self._running.clear()
        for task in tasks:
            task.cancel()
        await self._wait(tasks, what="stop")

    async def _reap(self, key: str, tasks: list[asyncio.Task[None]]) -> None:
        await self._wait(tasks, what=key)

    async def _wait(self, tasks: list[asyncio.Task[None]], *, what: str) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._stop_timeout)
        for task in pending:
            log.error("Task did not stop in time", extra={"task": task.get_name(), "during": what})

    @property
    def keys(self) -> list[str]:
        """Keys of the targets with running tasks."""
        return list(self._running)
