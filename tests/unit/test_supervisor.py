"""Supervisor: reconciliation of published target sets, crash restarts with backoff, stop.

On the virtual clock (looptime), with the supervisor's clock set to the loop's: the waits (stop
deadline, first-collection interval, slow cancels) take no wall time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest

from exporter.backoff import Backoff
from exporter.model import (
    FileLogSpec,
    Identity,
    KubernetesLogSpec,
    LogSpec,
    Member,
    MemberState,
    ScrapeSpec,
    Target,
)
from exporter.state import Store, TargetState
from exporter.supervisor import Supervisor

pytestmark = pytest.mark.looptime


@dataclass
class Fakes:
    """Fake runners: record starts and cancellations, crash or return on demand."""

    starts: Counter[str] = field(default_factory=Counter)
    cancels: Counter[str] = field(default_factory=Counter)
    crash: set[str] = field(default_factory=set)
    return_early: set[str] = field(default_factory=set)
    sleeps: list[float] = field(default_factory=list)
    ignore_cancel: set[str] = field(default_factory=set)
    slow_cancel: set[str] = field(default_factory=set)
    active: Counter[str] = field(default_factory=Counter)
    max_active: Counter[str] = field(default_factory=Counter)

    async def _run(self, name: str) -> None:
        self.starts[name] += 1
        self.active[name] += 1
        self.max_active[name] = max(self.max_active[name], self.active[name])
        try:
            await asyncio.sleep(0)
            if name in self.crash:
                raise RuntimeError(f"boom {name}")
            if name in self.return_early:
                return
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancels[name] += 1
            if name in self.ignore_cancel:
                await asyncio.sleep(3600)
            if name in self.slow_cancel:
                await asyncio.sleep(0.05)
            raise
        finally:
            self.active[name] -= 1

    async def scrape(self, state: TargetState, spec: ScrapeSpec) -> None:
        await self._run(f"scrape {state.target.key}")

    async def follow(self, state: TargetState, spec: LogSpec) -> None:
        await self._run(f"log {state.target.key}")

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(0)


def target(key: str, *, url: str = "http://127.0.0.1:1/metrics", pod: str = "") -> Target:
    return Target(
        key=key,
        identity=Identity(namespace="shoot--p--s", pod=pod or key),
        scrape=ScrapeSpec(url=url),
        log=FileLogSpec(path=f"/var/log/{key}.log"),
    )


def make(fakes: Fakes, store: Store, **kw: object) -> Supervisor:
    return Supervisor(
        store=store,
        scrape=fakes.scrape,
        follow=fakes.follow,
        backoff=Backoff(initial=1.0, maximum=8.0, jitter=(1.0, 1.0)),
        sleep=fakes.sleep,
        clock=asyncio.get_running_loop().time,
        **kw,  # type: ignore[arg-type]
    )


def watching(fakes: Fakes, store: Store, *, first_collection_after: float = 30.0) -> Supervisor:
    """A supervisor whose first-collection watch polls in real time (not with the fakes' sleep)."""
    return Supervisor(
        store=store,
        scrape=fakes.scrape,
        follow=fakes.follow,
        first_collection_after=first_collection_after,
        clock=asyncio.get_running_loop().time,
    )


async def until_first_collection(store: Store) -> None:
    async with asyncio.timeout(2):
        while True:
            if store.first_collection_done:
                return
            await asyncio.sleep(0.05)


async def settle(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_add_starts_scrape_and_log_tasks() -> None:
    fakes, store = Fakes(), Store()
    sup = make(fakes, store)
    sup.publish({"a": target("a"), "b": Target(key="b", scrape=ScrapeSpec(url="http://x"))})
    await settle()
    assert fakes.starts == Counter({"scrape a": 1, "log a": 1, "scrape b": 1})
    assert {s.target.key for s in store.states()} == {"a", "b"}
    assert store.discovery_synced
    await sup.stop()


async def test_remove_cancels_tasks_and_drops_state() -> None:
    fakes, store = Fakes(), Store()
    sup = make(fakes, store)
    sup.publish({"a": target("a"), "b": target("b")})
    await settle()
    sup.publish({"b": target("b")})
    await settle()
    assert store.get("a") is None
    assert fakes.cancels == Counter({"scrape a": 1, "log a": 1})
    assert sup.keys == ["b"]
    await sup.stop()


async def test_label_change_keeps_tasks_and_counters() -> None:
    fakes, store = Fakes(), Store()
    sup = make(fakes, store)
    sup.publish({"a": target("a", pod="old")})
    await settle()
    state = store.get("a")
    assert state is not None
    state.count_line(unparsed=False)
    sup.publish({"a": target("a", pod="new")})
    await settle()
    assert fakes.starts == Counter({"scrape a": 1, "log a": 1})
    assert not fakes.cancels
    after = store.get("a")
    assert after is state
    assert after.lines_read == 1
    assert after.target.identity.pod == "new"
    await sup.stop()


async def test_source_change_restarts_without_overlap() -> None:
    fakes, store = Fakes(slow_cancel={"scrape a"}), Store()
    sup = make(fakes, store)
    sup.publish({"a": target("a")})
    await settle()
    sup.publish({"a": target("a", url="http://127.0.0.1:2/metrics")})
    await asyncio.sleep(0.1)
    await settle()
    # only the task whose source changed restarts (the log follower keeps its stream)
    assert fakes.starts == Counter({"scrape a": 2, "log a": 1})
    assert fakes.cancels == Counter({"scrape a": 1})
    assert fakes.max_active["scrape a"] == 1
    state = store.get("a")
    assert state is not None
    assert state.target.scrape == ScrapeSpec(url="http://127.0.0.1:2/metrics")
    await sup.stop()


async def test_crash_restarts_with_exponential_backoff() -> None:
    fakes, store = Fakes(crash={"scrape a"}), Store()
    sup = make(fakes, store)
    sup.publish({"a": target("a")})
    await settle(60)
    assert fakes.starts["scrape a"] > 5
    assert fakes.sleeps[:5] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert fakes.starts["log a"] == 1  # the other task of the same target is unaffected
    await sup.stop()


async def test_unexpected_return_is_restarted() -> None:
    fakes, store = Fakes(return_early={"log a"}), Store()
    sup = make(fakes, store)
    sup.publish({"a": target("a")})
    await settle(30)
    assert fakes.starts["log a"] >= 3
    assert fakes.starts["scrape a"] == 1
    await sup.stop()


async def test_crash_is_logged_with_target_key(caplog: pytest.LogCaptureFixture) -> None:
    fakes, store = Fakes(crash={"log a"}), Store()
    sup = make(fakes, store)
    sup.publish({"a": target("a")})
    await settle()
    await sup.stop()
    crashed = [r for r in caplog.records if r.getMessage() == "Task crashed"]
    assert crashed
    assert crashed[0].__dict__["target"] == "a"
    assert crashed[0].__dict__["task"] == "log"


async def test_stop_is_bounded_by_deadline(caplog: pytest.LogCaptureFixture) -> None:
    fakes, store = Fakes(ignore_cancel={"log a"}), Store()
    sup = make(fakes, store, stop_timeout=0.2)
    sup.publish({"a": target("a"), "b": target("b")})
    await settle()
    async with asyncio.timeout(2):
        await sup.stop()
    assert fakes.cancels["scrape a"] == 1
    assert fakes.cancels["log b"] == 1
    assert any(r.getMessage() == "Task did not stop in time" for r in caplog.records)


async def test_run_marks_first_collection_when_every_target_scraped() -> None:
    fakes, store = Fakes(), Store()
    sup = watching(fakes, store)
    runner = asyncio.create_task(sup.run())
    sup.publish({"a": target("a"), "b": target("b")})
    await asyncio.sleep(0.3)
    assert not store.first_collection_done
    assert not store.ready
    for state in store.states():
        state.record_scrape_error("connect", duration=0.01)
    await until_first_collection(store)
    assert store.ready
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert fakes.cancels["scrape a"] == 1


async def test_run_marks_first_collection_after_interval() -> None:
    fakes, store = Fakes(), Store()
    sup = watching(fakes, store, first_collection_after=0.3)
    runner = asyncio.create_task(sup.run())
    sup.publish({"a": target("a")})
    await until_first_collection(store)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


def member(state: MemberState, *, uid: str = "u1", restarts: int = 0) -> Target:
    return Target(
        key="ns/etcd-main-0",
        identity=Identity(namespace="ns", pod="etcd-main-0"),
        scrape=ScrapeSpec(url="http://127.0.0.1:1/metrics"),
        log=KubernetesLogSpec(namespace="ns", pod="etcd-main-0", uid=uid),
        member=Member(state=state, uid=uid, restart_count=restarts),
    )


async def test_member_not_running_is_not_scraped_and_keeps_its_counters() -> None:
    fakes, store = Fakes(), Store()
    sup = make(fakes, store)
    key, running = "ns/etcd-main-0", MemberState.RUNNING
    sup.publish({key: member(running)})
    await settle()
    state = store.get(key)
    assert state is not None
    state.count_line(unparsed=False)
    state.record_scrape_success((), duration=0.01)
    # the container crashes: the scrape loop stops, the follower stays (it reads the tail)
    sup.publish({key: member(MemberState.RESTARTING, restarts=0)})
    await settle()
    assert fakes.cancels == Counter({f"scrape {key}": 1})
    assert state.up is False
    # it runs again after a restart: a new scrape loop, the same follower and state
    sup.publish({key: member(running, restarts=1)})
    await settle()
    # the pod is re-created (new uid): the follower restarts for the new pod, counters stay
    sup.publish({key: member(MemberState.PENDING, uid="u2")})
    await settle()
    sup.publish({key: member(running, uid="u2")})
    await settle()
    assert fakes.starts == Counter({f"scrape {key}": 3, f"log {key}": 2})
    assert fakes.cancels == Counter({f"scrape {key}": 2, f"log {key}": 1})
    assert store.get(key) is state
    assert state.lines_read == 1
    assert state.restarts == 1
    await sup.stop()


async def test_first_collection_does_not_wait_for_a_member_that_does_not_run() -> None:
    fakes, store = Fakes(), Store()
    sup = watching(fakes, store)
    runner = asyncio.create_task(sup.run())
    down = replace(member(MemberState.PENDING), key="ns/etcd-main-1")
    sup.publish({"a": target("a"), down.key: down})
    await settle()
    a = store.get("a")
    assert a is not None
    a.record_scrape_success((), duration=0.01)
    await until_first_collection(store)
    assert fakes.starts[f"scrape {down.key}"] == 0
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
