"""`diagnose`: read the last `--since` of one member's log and count what it says.

A file (`FileLogSpec`) is read from its tail — at most `MAX_FILE_BYTES` — in a worker thread, CRI
lines joined; a pod (`KubernetesLogSpec`) through `GET …/pods/{pod}/log?sinceSeconds=…&timestamps`
without follow. Both keep only events whose own timestamp lies within the window (an event
without one takes the time of the event before it). Command sources (`journalctl -f` and the
like) only follow, so diagnose does not read them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import BinaryIO, Protocol

import aiohttp

from exporter.diagnosis import humanize as h
from exporter.model import (
    MAX_LINE_BYTES,
    CommandLogSpec,
    Event,
    FileLogSpec,
    KubernetesLogSpec,
    LogSpec,
)
from exporter.parser import parse_line
from exporter.sources.lines import LineSplitter

MAX_FILE_BYTES = 256 * 1024 * 1024
CHUNK = 1024 * 1024


class LogReadError(Exception):
    """The log could not be read; the message says why (shown in the report)."""


class PodLogs(Protocol):
    """What `read_events` needs of the Kubernetes client (`exporter.kube.client.KubeApi`)."""

    async def open_log(
        self,
        *,
        namespace: str,
        pod: str,
        container: str,
        since_seconds: int | None,
        previous: bool = False,
        follow: bool = True,
        timeout: float,  # noqa: ASYNC109 - the request's own timeout, as in KubeApi
    ) -> aiohttp.ClientResponse:
        """Open a pod log stream with timestamps."""
        ...


async def read_events(
    spec: LogSpec, *, since: float, now: datetime, kube: PodLogs | None, read_timeout: float
) -> list[Event]:
    """The recognised events of the last `since` seconds before `now` (an aware datetime)."""
    cutoff = now - timedelta(seconds=since)
    if isinstance(spec, FileLogSpec):
        if spec.path == "-":
            raise LogReadError("standard input is not read by diagnose")
        return await asyncio.to_thread(_read_file, spec.path, cutoff)
    if isinstance(spec, KubernetesLogSpec):
        if kube is None:
            raise LogReadError("no Kubernetes client")
        events = await _read_pod_log(spec, kube=kube, since=since, read_timeout=read_timeout)
        return list(within(events, cutoff))
    if isinstance(spec, CommandLogSpec):
        raise LogReadError("command log sources are followed only, not read by diagnose")
    raise LogReadError(f"unknown log source {type(spec).__name__}")


def _read_file(path: str, cutoff: datetime) -> list[Event]:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - MAX_FILE_BYTES)
            f.seek(start)
            return list(within(_events(_file_lines(f, skip_first=start > 0)), cutoff))
    except OSError as err:
        raise LogReadError(f"{type(err).__name__}: {err.strerror or err}") from err


def _file_lines(f: BinaryIO, *, skip_first: bool) -> Iterator[str]:
    splitter = LineSplitter(max_line_bytes=MAX_LINE_BYTES)
    skip = skip_first
    for chunk in iter(lambda: f.read(CHUNK), b""):
        for line in splitter.push(chunk):
            if skip:  # the tail starts mid-line
                skip = False
                continue
            yield line
    yield from splitter.flush()


async def _read_pod_log(
    spec: KubernetesLogSpec, *, kube: PodLogs, since: float, read_timeout: float
) -> list[Event]:
    """The pod log's events, parsed as the chunks arrive (only events are kept in memory)."""
    try:
        async with asyncio.timeout(read_timeout):
            resp = await kube.open_log(
                namespace=spec.namespace,
                pod=spec.pod,
                container=spec.container,
                since_seconds=max(1, math.ceil(since)),
                follow=False,
                timeout=read_timeout,
            )
            try:
                splitter = LineSplitter(max_line_bytes=MAX_LINE_BYTES, cri=False)
                events: list[Event] = []
                async for chunk in resp.content.iter_chunked(CHUNK):
                    events.extend(_events(splitter.push(chunk)))
                return events + list(_events(splitter.flush()))
            finally:
                resp.release()
    except TimeoutError as err:
        raise LogReadError(f"reading the pod log took longer than {h.span(read_timeout)}") from err
    except (aiohttp.ClientError, OSError) as err:
        raise LogReadError(f"{type(err).__name__}: {err}") from err
    except Exception as err:  # KubeApiError and friends: shown, never fatal
        raise LogReadError(str(err) or type(err).__name__) from err


def _events(lines: Iterable[str]) -> Iterator[Event]:
    """The recognised events; lines of no interest (None) and UNPARSED ones are skipped."""
    for line in lines:
        result = parse_line(line)
        if isinstance(result, Event):
            yield result


def within(events: Iterable[Event], cutoff: datetime) -> Iterator[Event]:
    """Events at or after `cutoff`; an undated event takes the time of the one before it."""
    last: datetime | None = None
    for event in events:
        if event.time is not None:
            last = event.time if event.time.tzinfo else event.time.astimezone()
        if last is not None and last >= cutoff:
            yield event
