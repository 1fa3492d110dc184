"""Follow a pod's container log through the Kubernetes API, across cuts and restarts.

`KubeLogFollower(spec, sink)` is the log source for `KubernetesLogSpec`. Each connection:

1. GET the pod and catch up across container restarts (`exporter.sources.runs`): read the log
   of the dead container the kubelet keeps (`previous=true`) when it holds lines not read yet —
   the tail the last followed container wrote after the last line seen, or a whole run that
   started and ended in between — and look again, until the running container is the one to
   follow. While the container does not run (CrashLoopBackOff), its dead container's tail is
   read at once, and the follower waits for the next run.
2. Open `log?follow=true&timestamps=true&sinceSeconds=N` where N reaches back to the last line
   seen (or to where following began) plus slack; a `Cursor` drops what was seen already.
3. Read until the stream ends (container exit, API server timeout, a cut) or stays silent for
   `inactivity_timeout` (the kubelet can stall a follow stream at log rotation), then reconnect
   with backoff and jitter; `nudge(namespace, pod)` (discovery saw the container change) ends
   the wait at once.

Where following begins: `since` seconds before the exporter started (0: at its start), so a pod
that appears later is read from its first line. The cursor outlives a restart of this task (same
pod UID), so a crashed and restarted follower neither repeats nor skips lines. Lines longer than
the sink's limit are delivered truncated and counted as unparsed by the sink; a partial line at a
cut is dropped and read again after the reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import aiohttp

from exporter.backoff import Retries, wait_set
from exporter.kube.client import API_RETRY, PODS, KubeApi, KubeApiError
from exporter.kube.containers import ContainerStatus, container_status
from exporter.model import PREFIX_ROOM, KubernetesLogSpec
from exporter.parser.prefix import PrefixClock
from exporter.sources.lines import LineSplitter, Sink
from exporter.sources.resume import NS, Cursor
from exporter.sources.runs import Step, next_step

logger = logging.getLogger(__name__)

STREAM_TIMEOUT = 24 * 3600.0  # a float: kubernetes.aio crashes on a (connect, read) tuple
SINCE_SLACK = 30
CURSOR_TTL = 3600.0
HEALTHY_STREAM = 10.0  # a stream that lived this long (or delivered a line) resets the backoff
# previous-log reads in a row before following: each dead container is read until a read adds
# nothing (a read cut short cannot be told from a complete one), then the next newer one
CATCH_UP_STEPS = 8

CursorKey = tuple[str, str, str]


class _NotFollowable(Exception):
    """The container does not run right now (restarting, pod replaced): retry later."""


class KubeLogFollower:
    """The `follow(spec, sink)` callable for Kubernetes pod logs."""

    def __init__(
        self,
        api: KubeApi,
        *,
        inactivity_timeout: float,
        since: float = 0.0,
        started_at_ns: int | None = None,
        stream_timeout: float = STREAM_TIMEOUT,
        reconnect_delay: float = 0.25,
    ) -> None:
        self._api = api
        self._reconnect_delay = reconnect_delay
        self._inactivity = inactivity_timeout
        self._stream_timeout = float(stream_timeout)
        start = time.time_ns() if started_at_ns is None else started_at_ns
        self._floor_ns = start - int(since * NS)
        self._cursors: dict[CursorKey, Cursor] = {}
        self._clock = PrefixClock()  # the prefixes' times, shared by every followed log
        self._nudges: dict[tuple[str, str], asyncio.Event] = {}

    def nudge(self, namespace: str, pod: str) -> None:
        """The pod's etcd container changed (discovery saw it): look at it now, not after the
        retry delay (a container in CrashLoopBackOff can run for seconds only)."""
        event = self._nudges.get((namespace, pod))
        if event is not None:
            event.set()

    async def __call__(self, spec: KubernetesLogSpec, sink: Sink) -> None:
        """Follow until cancelled. API and stream errors are retried here; anything else is a
        bug and propagates to the supervisor, which restarts the task (the cursor survives)."""
        cursor = self._cursor(spec)
        where = {"namespace": spec.namespace, "pod": spec.pod, "container": spec.container}
        nudged = self._nudges[(spec.namespace, spec.pod)] = asyncio.Event()
        # the first retry of a stream that never delivered already waits twice the initial delay
        retries = Retries(replace(API_RETRY, initial=self._reconnect_delay), first=1)
        try:
            while True:
                started, seen = time.monotonic(), cursor.last_ns
                nudged.clear()
                try:
                    await self._catch_up(spec, cursor, sink)
                    await self._follow_once(spec, cursor, sink)
                except _NotFollowable as why:
                    logger.debug("Log not followable yet", extra={**where, "reason": str(why)})
                except KubeApiError as err:
                    _log_api_error(err, where)
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as err:
                    logger.debug("Log stream ended", extra={**where, "err": repr(err)})
                sink.connected(False)
                healthy = cursor.last_ns != seen or time.monotonic() - started > HEALTHY_STREAM
                delay = retries.next_delay(healthy=healthy)
                await _wait(nudged, min(delay, self._reconnect_delay) if nudged.is_set() else delay)
        finally:
            cursor.idle_since = time.monotonic()
            if self._nudges.get((spec.namespace, spec.pod)) is nudged:
                del self._nudges[(spec.namespace, spec.pod)]

    def _cursor(self, spec: KubernetesLogSpec) -> Cursor:
        now = time.monotonic()
        for key in [
            k for k, c in self._cursors.items() if c.idle_since and now - c.idle_since > CURSOR_TTL
        ]:
            del self._cursors[key]
        key = (spec.namespace, spec.pod, spec.uid)
        cursor = self._cursors.get(key)
        if cursor is None:
            cursor = self._cursors[key] = Cursor(floor_ns=self._floor_ns)
        cursor.idle_since = None
        return cursor

    async def _catch_up(self, spec: KubernetesLogSpec, cursor: Cursor, sink: Sink) -> None:
        """Read what dead containers hold (oldest first) until the running one is to be
        followed; raises _NotFollowable when there is nothing to follow now."""
        for _ in range(CATCH_UP_STEPS):
            status = await self._status(spec)
            if status is None:
                return  # no `get pods`: follow without restart detection
            step = next_step(
                ours=cursor.container_id,
                drained=cursor.drained,
                ours_restarts=cursor.restarts,
                status=status,
                previous_is_new=_ended_after(status, cursor.floor_ns),
                ours_read_to_end=cursor.ended,
            )
            logger.debug(
                "Log catch-up",
                extra={
                    "namespace": spec.namespace,
                    "pod": spec.pod,
                    "action": step.action,
                    "container": step.container_id,
                    "ours": cursor.container_id or "",
                    "drained": cursor.drained,
                },
            )
            if step.lost or step.tail_lost:
                _log_lost(spec, step)
            if step.action == "wait":
                raise _NotFollowable(step.why)
            if step.action == "follow":
                if step.container_id != cursor.container_id:
                    cursor.container_id, cursor.drained = step.container_id, False
                    cursor.ended = False
                cursor.restarts = step.restarts
                return
            added = await self._read_previous(spec, cursor, sink)
            # read again until a read adds nothing: then it was read to its end
            cursor.container_id, cursor.drained = step.container_id, not added
            cursor.ended, cursor.restarts = True, step.restarts
        raise _NotFollowable("the container keeps changing")

    async def _status(self, spec: KubernetesLogSpec) -> ContainerStatus | None:
        """The container's status in the pod; None when the pod may not be read."""
        try:
            pod = await self._api.get(PODS, spec.pod, namespace=spec.namespace)
        except KubeApiError as err:
            if err.denied:
                return None
            raise
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if spec.uid and uid != spec.uid:
            raise _NotFollowable("pod replaced")
        return container_status(pod, spec.container)

    async def _read_previous(self, spec: KubernetesLogSpec, cursor: Cursor, sink: Sink) -> int:
        """The dead container's lines after the last one seen; returns how many were new (0 also
        when the kubelet no longer has the log)."""
        where = {"namespace": spec.namespace, "pod": spec.pod, "container": spec.container}
        try:
            resp = await self._open(spec, cursor, previous=True)
        except KubeApiError as err:
            if err.denied or err.status == 0:
                raise  # counted and retried like any denied or failed call
            # 400/404: the kubelet no longer has it (removed after further restarts)
            logger.info("Previous container log not readable", extra={**where, "err": err.message})
            return 0
        try:
            added = await self._pump(resp, cursor, sink, inactivity=self._api.request_timeout)
        finally:
            resp.release()
        if added:
            logger.info(
                "Read the previous container's log after a restart", extra={**where, "lines": added}
            )
        return added

    async def _follow_once(self, spec: KubernetesLogSpec, cursor: Cursor, sink: Sink) -> None:
        resp = await self._open(spec, cursor, previous=False)
        sink.connected(True)
        if cursor.opened:
            sink.reconnected()
        cursor.opened = True
        try:
            await self._pump(resp, cursor, sink, inactivity=self._inactivity)
        except TimeoutError:
            where = {"namespace": spec.namespace, "pod": spec.pod}
            logger.info("Log stream silent, reopening", extra=where)
        finally:
            resp.release()

    async def _open(
        self, spec: KubernetesLogSpec, cursor: Cursor, *, previous: bool
    ) -> aiohttp.ClientResponse:
        """Open the dead container's log (`previous`: read to its end) or follow the running
        one's, from a little before the last line seen: the cursor drops what comes again."""
        cursor.resume()
        return await self._api.open_log(
            namespace=spec.namespace,
            pod=spec.pod,
            container=spec.container,
            since_seconds=cursor.since_seconds(time.time_ns(), slack=SINCE_SLACK),
            previous=previous,
            follow=not previous,
            timeout=self._api.request_timeout if previous else self._stream_timeout,
        )

    async def _pump(
        self, resp: aiohttp.ClientResponse, cursor: Cursor, sink: Sink, *, inactivity: float
    ) -> int:
        """Deliver lines until the response ends (a partial last line is dropped); returns how
        many were new."""
        splitter = LineSplitter(max_line_bytes=sink.max_line_bytes + PREFIX_ROOM, cri=False)
        content = resp.content
        loop = asyncio.get_running_loop()
        delivered = 0
        async with asyncio.timeout(None) as scope:
            silence = _Silence(scope, inactivity)
            try:
                while True:
                    chunk = await content.readany()
                    if not chunk:
                        return delivered
                    for line in splitter.push(chunk):
                        delivered += deliver(line, cursor, sink, self._clock)
                    silence.last = loop.time()
            finally:
                silence.cancel()


class _Silence:
    """Expires a timeout scope once the stream delivered nothing for `seconds`.

    One timer per `seconds` of activity instead of an `asyncio.timeout` around every read: with
    2,000 followed logs that was a timer, a heap push and a cancellation per chunk (about 4 µs,
    thousands of times a second).
    """

    def __init__(self, scope: asyncio.Timeout, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._scope = scope
        self._seconds = seconds
        self.last = self._loop.time()
        self._handle = self._loop.call_at(self.last + seconds, self._check)

    def _check(self) -> None:
        deadline = self.last + self._seconds
        if self._loop.time() >= deadline:
            self._scope.reschedule(self._loop.time())  # the reader gets TimeoutError
        else:
            self._handle = self._loop.call_at(deadline, self._check)

    def cancel(self) -> None:
        """Stop watching (the stream ended or the reader left)."""
        self._handle.cancel()


def deliver(line: str, cursor: Cursor, sink: Sink, clock: PrefixClock) -> bool:
    """Hand one `<timestamp> <text>` line to the sink unless the cursor has seen it. The prefix
    is read here, once: the sink gets the text and the prefix's time (a line without a valid
    prefix goes whole, and the parser looks at it as at any other)."""
    ts, text = clock.split(line)
    if ts is None:
        sink.feed(line)
        return True
    if not cursor.accept(ts, text):
        return False
    sink.feed(text, received_ns=ts)
    return True


def _ended_after(status: ContainerStatus, floor_ns: int) -> bool:
    """The dead container ended after following began (its lines are new); unknown: yes."""
    ended = status.last_finished_at
    return ended is None or ended + 1.0 >= floor_ns / NS


def _log_lost(spec: KubernetesLogSpec, step: Step) -> None:
    logger.warning(
        "Container runs ended before their logs could be read",
        extra={
            "namespace": spec.namespace,
            "pod": spec.pod,
            "container": spec.container,
            "runsLost": step.lost,
            "tailLost": step.tail_lost,
        },
    )


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `event` is set meanwhile (at once: sleep anyway)."""
    if event.is_set():
        await asyncio.sleep(seconds)
        return
    await wait_set(event, seconds)


def _log_api_error(err: KubeApiError, where: dict[str, str]) -> None:
    if err.denied:
        return  # logged once, with the permission to grant, by the client's error log
    if err.not_found:
        logger.debug("Pod gone", extra=where)
        return
    logger.warning("Log stream failed", extra={**where, "code": err.status, "err": err.message})
