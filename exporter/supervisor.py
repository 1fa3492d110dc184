"""Reconciles published target sets into running tasks: one scrape loop and one log follower each.

The supervisor knows *that* a target has a scrape spec or a log spec, and whether its etcd runs
(a Kubernetes member whose container is down is not scraped), not how either works: the
composition root injects `scrape` and `follow` runners. Every task goes through `_supervise`,
which names it, restarts it with exponential backoff and jitter when it crashes or returns, and
logs each of those with the target key. Nothing a task does reaches another target or the root.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from exporter.backoff import Backoff, Retries
from exporter.model import LogSpec, ScrapeSpec, Target
from exporter.state import Store, TargetState

log = logging.getLogger(__name__)

ScrapeRunner = Callable[[TargetState, ScrapeSpec], Awaitable[None]]
LogRunner = Callable[[TargetState, LogSpec], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class _Running:
    target: Target
    tasks: dict[str, tuple[Spec, asyncio.Task[None]]]  # "scrape" | "log" → (spec, task)


Spec = ScrapeSpec | LogSpec


def wanted(target: Target) -> dict[str, Spec]:
    """The tasks a target should have: a log follower when it has a log, and a scrape loop
    when it has a scrape spec and its etcd runs (a member whose container is down, pending or
    gone is not scraped: it is down, and its pod IP may be gone or someone else's)."""
    out: dict[str, Spec] = {}
    if target.scrape is not None and target.running:
        out["scrape"] = target.scrape
    if target.log is not None:
        out["log"] = target.log
    return out


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
        """Reconcile to `targets` (the complete desired set): add, update, restart, remove.

        Each task is reconciled on its own: a changed scrape spec restarts the scrape loop only,
        a changed log spec (a re-created pod) the follower only, and a member whose container
        stops running loses its scrape loop until it runs again. The state, and so every
        counter, stays as long as the key does.
        """
        for key in [k for k in self._running if k not in targets]:
            self._remove(key)
        for key, target in targets.items():
            current = self._running.get(key)
            if current is None:
                self._add(target)
            elif current.target != target:
                self._update(current, target)
        if not self._store.discovery_synced:
            self._store.discovery_synced = True
            log.info("Discovery synced", extra={"targets": len(targets)})
        self._published.set()

    def _add(self, target: Target) -> None:
        state = self._store.upsert(target)
        running = self._running[target.key] = _Running(target, {})
        self._reconcile(running, state)
        log.info("Target added", extra=_where(target))

    def _update(self, current: _Running, target: Target) -> None:
        before = current.target
        state = self._store.upsert(target)
        current.target = target
        changed = self._reconcile(current, state)
        if before.member != target.member and target.member is not None:
            log.info("Member changed", extra=_where(target))
        elif changed:
            log.info("Target sources changed, tasks restarted", extra=_where(target))
        else:
            log.info("Target labels updated", extra=_where(target))

    def _reconcile(self, running: _Running, state: TargetState) -> bool:
        """Start, stop or restart each kind of task to match the target; True if any moved."""
        want, moved = wanted(running.target), False
        for kind in ("scrape", "log"):
            spec, have = want.get(kind), running.tasks.get(kind)
            if have is not None and have[0] == spec:
                continue
            old: tuple[asyncio.Task[None], ...] = ()
            if have is not None:
                have[1].cancel()
                old = (have[1],)
                del running.tasks[kind]
            if spec is not None:
                running.tasks[kind] = (spec, self._start(state, spec, after=old))
            elif old:
                self._reap_later(running.target.key, list(old))
            moved = True
        return moved

    def _remove(self, key: str) -> None:
        running = self._running.pop(key)
        tasks = [task for _, task in running.tasks.values()]
        for task in tasks:
            task.cancel()
        self._store.remove(key)
        self._reap_later(key, tasks)
        log.info("Target removed", extra={"target": key})

    def _reap_later(self, key: str, tasks: list[asyncio.Task[None]]) -> None:
        if tasks:
            reaper = asyncio.create_task(self._reap(key, tasks), name=f"reap {key}")
            self._reapers.add(reaper)
            reaper.add_done_callback(self._reapers.discard)

    def _start(
        self, state: TargetState, spec: Spec, *, after: tuple[asyncio.Task[None], ...]
    ) -> asyncio.Task[None]:
        key = state.target.key
        if isinstance(spec, ScrapeSpec):
            return self._spawn("scrape", key, lambda: self._scrape(state, spec), after)
        return self._spawn("log", key, lambda: self._follow(state, spec), after)

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
        retries = Retries(self._backoff)
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
            # it ran fine for a while: start the backoff over
            delay = retries.next_delay(healthy=self._clock() - started > self._backoff.maximum)
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
            if "scrape" in running.tasks and state and state.last_scrape_duration is None:
                return False
        return True

    async def stop(self) -> None:
        """Cancel every task and wait for them, at most `stop_timeout` seconds."""
        tasks = [t for r in self._running.values() for _, t in r.tasks.values()]
        tasks += list(self._reapers)
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


def _where(target: Target) -> dict[str, object]:
    """Log fields of a target: its key, and its member state when it is a member."""
    fields: dict[str, object] = {"target": target.key}
    if target.member is not None:
        fields["state"] = str(target.member.state)
        if target.member.reason:
            fields["reason"] = target.member.reason
    return fields
