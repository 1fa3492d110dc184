"""Follow a log file like `tail -F`, or standard input (`-`).

Polling, no inotify. Every poll runs one `_Tail.step()` in a worker thread (stat, open, read up to
a budget), then hands the completed lines to the sink on the event loop.

- First start: the file's existing content is skipped (read from the end) unless `from_start`;
  a file that appears later is read from its beginning (all of it is new).
- Rotation by rename or deletion: the old file stays open and is drained to its end, and then
  kept draining for `rotate_grace` seconds (a writer may still append to it before reopening);
  its unfinished last line is delivered when it is closed. The new file is read from offset 0.
- Truncation (copytruncate): the size drops below our offset → read again from offset 0.
  Lines written between the last poll and the truncation are in the copy only, and a file that
  grows past the old offset again within one poll looks untruncated (as with `tail -F`).
- One rotation per poll: a file renamed away again before it was ever opened is not read.
- CRI files (`<time> stdout|stderr F|P <text>`): recognised per line; `P` fragments are joined up
  to their `F` line by `LineSplitter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field

from exporter.model import FileLogSpec
from exporter.sources.lines import LineSplitter, Sink

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
STEP_BUDGET = 4 * 1024 * 1024


@dataclass(slots=True)
class _Open:
    """One open file: descriptor, identity, read offset and its own line splitter."""

    fd: int
    dev: int
    ino: int
    offset: int
    lines: LineSplitter
    idle_since: float = field(default_factory=time.monotonic)

    def read(self, budget: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while got < budget:
            data = os.pread(self.fd, min(READ_CHUNK, budget - got), self.offset)
            if not data:
                break
            chunks.append(data)
            got += len(data)
            self.offset += len(data)
        return b"".join(chunks)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass(slots=True)
class Step:
    """What one poll found: lines to feed, and stream events for the sink."""

    lines: list[str] = field(default_factory=list)
    connected: bool | None = None
    reopened: bool = False
    more: bool = False


class _Tail:
    """The synchronous state machine behind `follow` (runs in a worker thread, one at a time)."""

    def __init__(
        self, path: str, *, max_line_bytes: int, from_start: bool, rotate_grace: float
    ) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.rotate_grace = rotate_grace
        self.current: _Open | None = None
        self.draining: list[_Open] = []
        self.seen_once = False
        self.skip_existing = not from_start
        # step() runs in a worker thread that outlives a cancelled await; close() waits for it.
        self._lock = threading.Lock()
        self._closed = False

    def step(self) -> Step:
        """Drain rotated files, (re)open the path, read new data, detect rotation/truncation."""
        with self._lock:
            return Step() if self._closed else self._step()

    def _step(self) -> Step:
        step = Step()
        self._drain_old(step)
        if self.current is None and not self._open(step):
            return step
        cur = self.current
        assert cur is not None
        data = cur.read(STEP_BUDGET)
        if data:
            step.lines += cur.lines.push(data)
            step.more = len(data) >= STEP_BUDGET
            return step
        self._check_rotation(cur, step)
        return step

    def _open(self, step: Step) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.skip_existing = False  # when it appears, all of it is new
            step.connected = False if not self.draining else None
            return False
        st = os.fstat(fd)
        offset = st.st_size if self.skip_existing else 0
        self.skip_existing = False
        lines = LineSplitter(max_line_bytes=self.max_line_bytes)
        self.current = _Open(fd=fd, dev=st.st_dev, ino=st.st_ino, offset=offset, lines=lines)
        step.connected = True
        step.reopened = self.seen_once
        self.seen_once = True
        return True

    def _check_rotation(self, cur: _Open, step: Step) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != (cur.dev, cur.ino):
            cur.idle_since = time.monotonic()
            self.draining.append(cur)
            self.current = None
            if st is not None:
                step.more = self._open(step)
            else:
                step.connected = False
            return
        if st.st_size < cur.offset:
            step.lines += cur.lines.flush()
            cur.offset = 0
            step.reopened = True
            step.more = True

    def _drain_old(self, step: Step) -> None:
        now = time.monotonic()
        for old in list(self.draining):
            data = old.read(STEP_BUDGET)
            if data:
                step.lines += old.lines.push(data)
                old.idle_since = now
            elif now - old.idle_since >= self.rotate_grace:
                step.lines += old.lines.flush()
                old.close()
                self.draining.remove(old)

    def close(self) -> None:
        """Close every descriptor (after a step still running in its thread has finished)."""
        with self._lock:
            self._closed = True
            self._close_all()

    def _close_all(self) -> None:
        for f in [*self.draining, *([self.current] if self.current else [])]:
            f.close()
        self.draining.clear()
        self.current = None


async def follow(
    spec: FileLogSpec,
    sink: Sink,
    *,
    from_start: bool = False,
    poll_interval: float = 0.25,
    rotate_grace: float = 2.0,
) -> None:
    """Follow `spec.path` until cancelled, feeding every line to `sink` exactly once."""
    if spec.path == "-":
        await follow_stdin(sink)
        return
    tail = _Tail(
        spec.path,
        max_line_bytes=sink.max_line_bytes,
        from_start=from_start,
        rotate_grace=rotate_grace,
    )
    try:
        while True:
            step = await asyncio.to_thread(tail.step)
            _deliver(step, sink)
            if not step.more:
                await asyncio.sleep(poll_interval)
    finally:
        # Shielded: the descriptors get closed even if this task is cancelled again meanwhile.
        await asyncio.shield(asyncio.to_thread(tail.close))


def _deliver(step: Step, sink: Sink) -> None:
    if step.connected is not None:
        sink.connected(step.connected)
    if step.reopened:
        sink.reconnected()
    for line in step.lines:
        sink.feed(line)


async def follow_stdin(sink: Sink) -> None:
    """Read standard input to its end, then stay (disconnected) until cancelled."""
    splitter = LineSplitter(max_line_bytes=sink.max_line_bytes)
    sink.connected(True)
    reader = await _stdin_reader()
    while True:
        data = await (reader.read(READ_CHUNK) if reader else _read_stdin_blocking())
        if not data:
            break
        for line in splitter.push(data):
            sink.feed(line)
    for line in splitter.flush():
        sink.feed(line)
    sink.connected(False)
    log.info("Standard input ended")
    await asyncio.Event().wait()


async def _stdin_reader() -> asyncio.StreamReader | None:
    """A non-blocking reader for a pipe/tty stdin; None for a regular file (read in a thread)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_CHUNK)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        return None
    return reader


async def _read_stdin_blocking() -> bytes:
    return await asyncio.to_thread(os.read, sys.stdin.fileno(), READ_CHUNK)
