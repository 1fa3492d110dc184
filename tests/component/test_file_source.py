"""File log source: one test per failure mode of following a file (rotation, truncation, …)."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from exporter.model import FileLogSpec
from exporter.sources import file as file_source
from exporter.sources.lines import LineSplitter

POLL = 0.01
GRACE = 0.3


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
        if not self.ups or self.ups[-1] != up:
            self.ups.append(up)

    def reconnected(self) -> None:
        self.reconnects += 1


@asynccontextmanager
async def following(
    path: Path, sink: Recorder, *, from_start: bool = False
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(
        file_source.follow(
            FileLogSpec(str(path)),
            sink,
            from_start=from_start,
            poll_interval=POLL,
            rotate_grace=GRACE,
        )
    )
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def until(cond: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if cond():
                return
            await asyncio.sleep(0.01)


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


async def test_reads_from_end_on_first_start(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    append(log, "old 1", "old 2")
    sink = Recorder()
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        append(log, "new 1")
        await until(lambda: len(sink.lines) >= 1)
        await asyncio.sleep(0.05)
    assert sink.lines == ["new 1"]


async def test_from_start_reads_existing_content(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    append(log, "old 1", "old 2")
    sink = Recorder()
    async with following(log, sink, from_start=True):
        await until(lambda: len(sink.lines) >= 2)
    assert sink.lines == ["old 1", "old 2"]


async def test_file_absent_at_start(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    sink = Recorder()
    async with following(log, sink):
        await until(lambda: sink.ups == [False])
        append(log, "first", "second")  # appears later: read from its beginning
        await until(lambda: len(sink.lines) >= 2)
    assert sink.lines == ["first", "second"]
    assert sink.ups == [False, True]


async def test_rotation_by_rename(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    sink = Recorder()
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        with log.open("a") as old:
            old.write("a1\na2\n")
            old.flush()
            await until(lambda: len(sink.lines) == 2)
            log.rename(tmp_path / "etcd.log.1")
            append(log, "b1")
            await until(lambda: "b1" in sink.lines)  # the follower is on the new file now
            old.write("a3\na4 unfinished")  # the writer has not reopened yet: keep its tail
        await until(lambda: len(sink.lines) >= 5, within=GRACE * 10)
        await asyncio.sleep(GRACE)
    assert sink.lines == ["a1", "a2", "b1", "a3", "a4 unfinished"]
    assert sink.reconnects == 1


async def test_rotation_by_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    sink = Recorder()
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        append(log, "before 1", "before 2", "before 3")
        await until(lambda: len(sink.lines) == 3)
        (tmp_path / "etcd.log.1").write_bytes(log.read_bytes())
        with log.open("r+") as f:
            f.truncate(0)
        await asyncio.sleep(POLL * 5)
        append(log, "after 1")
        await until(lambda: len(sink.lines) >= 4)
        await asyncio.sleep(0.05)
    assert sink.lines == ["before 1", "before 2", "before 3", "after 1"]


async def test_file_deleted_and_recreated_later(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    sink = Recorder()
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        append(log, "one")
        await until(lambda: sink.lines == ["one"])
        log.unlink()
        await until(lambda: sink.ups == [True, False])
        await asyncio.sleep(0.05)
        append(log, "two", "three")
        await until(lambda: len(sink.lines) >= 3)
        await asyncio.sleep(0.05)
    assert sink.lines == ["one", "two", "three"]
    assert sink.ups == [True, False, True]


async def test_partial_line_kept_until_newline(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    sink = Recorder()
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        with log.open("a") as f:
            f.write('{"level":"warn","msg":"slow')
        await asyncio.sleep(POLL * 10)
        assert sink.lines == []
        with log.open("a") as f:
            f.write(' fdatasync"}\nnext\n')
        await until(lambda: len(sink.lines) >= 2)
    assert sink.lines == ['{"level":"warn","msg":"slow fdatasync"}', "next"]


async def test_cri_partial_lines_joined(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.touch()
    ts = "2026-11-21T05:30:12.033818000Z"
    sink = Recorder()
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        append(
            log,
            f'{ts} stderr P {{"level":"warn","msg":"apply ',
            f"{ts} stderr P request took ",
            f'{ts} stderr F too long"}}',
            f"{ts} stdout F plain",
            "not a cri line",
        )
        await until(lambda: len(sink.lines) >= 3)
    assert sink.lines == [
        f'{ts} {{"level":"warn","msg":"apply request took too long"}}',
        f"{ts} plain",
        "not a cri line",
    ]


async def test_long_line_is_capped_and_following_lines_intact(tmp_path: Path) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    sink = Recorder(max_line_bytes=100)
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        append(log, "x" * 5_000_000, "short")
        await until(lambda: len(sink.lines) >= 2)
    assert len(sink.lines[0]) == 101  # more than the cap: the sink counts it as unparsed
    assert sink.lines[1:] == ["short"]


def test_line_splitter_caps_cri_fragments() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    ts = "2026-11-21T05:30:12.033818000Z"
    out = splitter.push(f"{ts} stdout P {'a' * 8}\n{ts} stdout P {'b' * 8}\n".encode())
    assert out == []
    out = splitter.push(f"{ts} stdout F end\n".encode())
    assert out == [f"{ts} {'a' * 8}{'b' * 3}"]


def _writer(log: Path, *, total: int, rotations: int, stop: threading.Event) -> None:
    """Append `total` numbered lines, renaming the file `rotations` times along the way."""
    rng = random.Random(7)
    rotate_at = sorted(rng.sample(range(total // 10, total), rotations))
    f = log.open("a")
    for i in range(total):
        f.write(f"line {i}\n")
        if rng.random() < 0.05:
            f.flush()
            stop.wait(0.001)
        if rotate_at and i == rotate_at[0]:
            rotate_at.pop(0)
            f.flush()
            log.rename(log.with_suffix(f".log.{i}"))
            f.write(f"line tail {i}\n")  # late write to the renamed file, then reopen
            f.close()
            f = log.open("a")
    f.close()


async def test_exactly_once_across_three_rotations_under_concurrent_writes(
    tmp_path: Path,
) -> None:
    log = tmp_path / "etcd.log"
    log.touch()
    sink = Recorder()
    total, rotations = 20_000, 3
    async with following(log, sink):
        await until(lambda: sink.ups == [True])
        stop = threading.Event()
        await asyncio.to_thread(_writer, log, total=total, rotations=rotations, stop=stop)
        await until(lambda: len(sink.lines) >= total + rotations, within=20)
        await asyncio.sleep(GRACE * 2)
    counts = Counter(sink.lines)
    assert len(sink.lines) == total + rotations
    assert max(counts.values()) == 1
    assert {f"line {i}" for i in range(total)} <= counts.keys()
    assert sink.reconnects == rotations


async def test_stdin_is_read_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read_fd, "r"))
    sink = Recorder()
    task = asyncio.create_task(file_source.follow(FileLogSpec("-"), sink))
    try:
        os.write(write_fd, b"one\ntwo\nthree")
        os.close(write_fd)
        await until(lambda: sink.ups == [True, False])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sink.lines == ["one", "two", "three"]
