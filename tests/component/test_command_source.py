"""Command log source: follows stdout, restarts the command, kills its process group on cancel."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.backoff import Backoff
from exporter.model import CommandLogSpec, Identity, LogSpec, MemberState, ScrapeSpec, Target
from exporter.sources import command
from exporter.sources.sink import LineSink
from exporter.state import Store, TargetState
from exporter.supervisor import Supervisor


class Recorder:
    """A sink that keeps everything it is given."""

    def __init__(self, max_line_bytes: int = 4096) -> None:
        self.max_line_bytes = max_line_bytes
        self.lines: list[str] = []
        self.ups: list[bool] = []
        self.reconnects = 0

    def feed(self, line: str) -> None:
        self.lines.append(line)

    def connected(self, up: bool) -> None:
        self.ups.append(up)

    def reconnected(self) -> None:
        self.reconnects += 1


async def until(cond: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if cond():
                return
            await asyncio.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_follows_stdout_and_restarts_when_command_exits() -> None:
    sink = Recorder()
    spec = CommandLogSpec(("sh", "-c", "printf 'one\\ntwo\\nlast-no-newline'"))
    task = asyncio.create_task(command.follow(spec, sink, backoff_initial=0.01, backoff_max=0.05))
    try:
        await until(lambda: sink.reconnects >= 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sink.lines[:3] == ["one", "two", "last-no-newline"]
    assert sink.lines[3:6] == ["one", "two", "last-no-newline"]
    assert sink.ups[:2] == [True, False]


async def test_missing_command_is_retried_not_raised() -> None:
    sink = Recorder()
    spec = CommandLogSpec(("/nonexistent/journalctl",))
    task = asyncio.create_task(command.follow(spec, sink, backoff_initial=0.01, backoff_max=0.02))
    try:
        await until(lambda: len(sink.ups) >= 3)
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert set(sink.ups) == {False}
    assert sink.lines == []


async def test_cancel_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # A shell whose child (sleep) would outlive it if only the shell were signalled.
    script = f"sleep 300 & echo $! > {pidfile}; echo started; wait"
    sink = Recorder()
    spec = CommandLogSpec(("sh", "-c", script))
    task = asyncio.create_task(command.follow(spec, sink))
    await until(lambda: sink.lines == ["started"])
    child = int(pidfile.read_text())
    assert _alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not _alive(child), within=5)


async def test_long_lines_are_capped() -> None:
    sink = Recorder(max_line_bytes=50)
    code = "import sys; sys.stdout.write('y' * 3_000_000 + '\\nok\\n')"
    spec = CommandLogSpec((sys.executable, "-c", code))
    task = asyncio.create_task(command.follow(spec, sink, backoff_initial=10))
    try:
        await until(lambda: "ok" in sink.lines)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [len(x) for x in sink.lines] == [51, 2]


def _one_slow_request(tmp_path: Path) -> str:
    """A file holding one slow-request line of a real etcd 3.5."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "etcd-3.5-zap" / "single.log"
    slow = next(line for line in fixture.read_text().splitlines() if "took too long" in line)
    path = tmp_path / "line"
    path.write_text(slow + "\n")
    return str(path)


async def test_restarts_of_the_command_and_of_its_task_keep_the_counters(tmp_path: Path) -> None:
    """Static mode: a target is its file entry. Neither the command exiting and starting again
    nor the supervisor restarting the crashed follower task resets the target's counters."""
    spec = CommandLogSpec(("cat", _one_slow_request(tmp_path)))  # one slow request, then exit
    target = Target(key="static/etcd-a", identity=Identity(pod="etcd-a"), log=spec)
    store = Store()
    runs = 0

    async def follow(state: TargetState, log_spec: LogSpec) -> None:
        nonlocal runs
        runs += 1
        assert isinstance(log_spec, CommandLogSpec)
        sink = LineSink(state, max_line_bytes=4096)
        if runs == 2:
            raise RuntimeError("the follower task crashes at its start")
        # the first task crashes after a while (the command restarted several times meanwhile)
        async with asyncio.timeout(0.5 if runs == 1 else None):
            await command.follow(log_spec, sink, backoff_initial=0.01, backoff_max=0.05)

    async def no_scrape(state: TargetState, scrape_spec: ScrapeSpec) -> None:
        raise AssertionError("no scrape spec")

    sup = Supervisor(
        store=store,
        scrape=no_scrape,
        follow=follow,
        backoff=Backoff(initial=0.01, jitter=(1.0, 1.0)),
    )
    sup.publish({target.key: target})
    state = store.get(target.key)
    assert state is not None
    try:
        await until(lambda: runs >= 2)
        before = state.events["slow_request"]
        assert before >= 2  # the command ran and restarted within the first task
        await until(lambda: runs >= 3 and state.events["slow_request"] >= before + 3)
    finally:
        await sup.stop()
    assert store.get(target.key) is state
    assert sum(state.slow_requests.values()) == state.events["slow_request"] >= 6
    assert state.lines_read == state.events["slow_request"]
    assert state.member_state is MemberState.RUNNING  # a file entry always runs
    assert state.restarts == 0
