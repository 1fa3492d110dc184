"""Follow a command's standard output (e.g. `journalctl -fu etcd -o cat`).

The command runs in its own process group, is restarted with backoff whenever it exits, and the
whole group is terminated (then killed) when the follower is cancelled. The last lines of its
stderr are kept (bounded) and logged when it exits, so a failing command says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque

from exporter.backoff import Backoff, Retries
from exporter.model import CommandLogSpec
from exporter.sources.lines import LineSplitter, Sink

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
STDERR_LINES = 5


async def follow(
    spec: CommandLogSpec,
    sink: Sink,
    *,
    backoff_initial: float = 1.0,
    backoff_max: float = 30.0,
    kill_timeout: float = 2.0,
) -> None:
    """Run `spec.argv` until cancelled, feeding each stdout line to `sink`."""
    retries = Retries(Backoff(initial=backoff_initial, maximum=backoff_max, jitter=(1.0, 1.0)))
    runs = 0
    while True:
        started = time.monotonic()
        rc = await _run_once(spec, sink, reconnect=runs > 0, kill_timeout=kill_timeout)
        runs += 1
        sink.connected(False)
        # a command that ran longer than the longest delay starts the backoff over
        delay = retries.next_delay(healthy=time.monotonic() - started > backoff_max)
        log.info(
            "Log command exited, restarting",
            extra={"argv": list(spec.argv), "returncode": rc, "delaySeconds": delay},
        )
        await asyncio.sleep(delay)


async def _run_once(
    spec: CommandLogSpec, sink: Sink, *, reconnect: bool, kill_timeout: float
) -> int | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        log.error("Log command cannot start", extra={"argv": list(spec.argv), "err": str(err)})
        return None
    sink.connected(True)
    if reconnect:
        sink.reconnected()
    errors: deque[str] = deque(maxlen=STDERR_LINES)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_keep_stderr(proc, errors))
            await _pump(proc, sink)
        return await proc.wait()
    finally:
        await _end(proc, kill_timeout)
        if errors:
            log.info("Log command stderr", extra={"argv": list(spec.argv), "stderr": list(errors)})


async def _pump(proc: asyncio.subprocess.Process, sink: Sink) -> None:
    assert proc.stdout is not None
    splitter = LineSplitter(max_line_bytes=sink.max_line_bytes, cri=False)
    while data := await proc.stdout.read(READ_CHUNK):
        for line in splitter.push(data):
            sink.feed(line)
    for line in splitter.flush():
        sink.feed(line)


async def _keep_stderr(proc: asyncio.subprocess.Process, errors: deque[str]) -> None:
    assert proc.stderr is not None
    splitter = LineSplitter(max_line_bytes=4096, cri=False)
    while data := await proc.stderr.read(READ_CHUNK):
        errors.extend(splitter.push(data))
    errors.extend(splitter.flush())


async def _end(proc: asyncio.subprocess.Process, kill_timeout: float) -> None:
    """Terminate the command's process group, then kill it; bounded."""
    if proc.returncode is not None:
        _signal_group(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(kill_timeout):
            await proc.wait()
    except TimeoutError:
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(kill_timeout):
                await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
