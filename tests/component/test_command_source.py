"""Command log source: follows stdout, restarts the command, kills its process group on cancel."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.model import CommandLogSpec
from exporter.sources import command


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
