"""Streaming responses: watch event streams and pod log follow streams, with cuts and stalls.

Both notice a client that went away (the transport closes) within a quarter second, and both
write through chunked transfer encoding like the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.kube.logs import Instance, render
from tests.support.kube.store import Change

if TYPE_CHECKING:
    from tests.support.kube.server import KubeEmulator, Route

POLL = 0.25
CUT_GRACE = 0.2


def _closing(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def _wait_any(*events: asyncio.Event, seconds: float) -> None:
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class LogStream:
    """One open follow stream: tests can cut, stall or end it."""

    def __init__(self, *, namespace: str, pod: str, inst: Instance) -> None:
        self.namespace = namespace
        self.pod = pod
        self.inst = inst
        self.stalled = False
        self.ended = False
        self.cut_requested_at: float | None = None
        self.abrupt = False
        self.cuts_abrupt = False

    def cut(self, *, abrupt: bool) -> None:
        """Close at the next write, mid-line, or soon when nothing is written."""
        self.cut_requested_at = time.monotonic()
        self.abrupt = abrupt
        self.inst.notify()

    def end(self) -> None:
        """Close cleanly now."""
        self.ended = True
        self.inst.notify()


def _bad_request(message: str, code: int = 400) -> web.Response:
    from tests.support.kube.server import status

    return status(code, "BadRequest" if code == 400 else "NotFound", message)


def _pick_instance(emu: KubeEmulator, ns: str, name: str, q: Any) -> Instance | web.Response:
    """The instance the kubelet serves, chosen from the pod's container status like the kubelet
    (`validateContainerLogStatus`): `previous` → lastState.terminated's container; otherwise
    the running one, a terminated one, or while waiting lastState.terminated's; 400 when there
    is none (`waiting to start`) or its log is gone."""
    pod = emu.store.get("pods", (ns, name))
    if pod is None:
        return _bad_request(f'pods "{name}" not found', 404)
    names = [c["name"] for c in pod["spec"]["containers"]]
    container = q.get("container") or (names[0] if len(names) == 1 else None)
    if container is None:
        return _bad_request(
            f"a container name must be specified for pod {name}, choose one of: {names}"
        )
    if container not in names:
        return _bad_request(f"container {container} is not valid for pod {name}")
    key = (ns, name, container)
    st = next(
        (s for s in pod["status"].get("containerStatuses") or [] if s["name"] == container), {}
    )
    state, last = st.get("state") or {}, (st.get("lastState") or {}).get("terminated") or {}
    previous = q.get("previous", "").lower() in ("true", "1")
    if previous:
        wanted = last.get("containerID") or ""
        if not wanted:
            return _bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
    elif "running" in state:
        return emu.logs.instances(key)[-1]
    elif "terminated" in state:
        wanted = state["terminated"].get("containerID") or last.get("containerID") or ""
    elif last.get("containerID"):
        wanted = last["containerID"]
    else:
        reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
        waiting = f'container "{container}" in pod "{name}" is waiting to start: {reason}'
        return _bad_request(waiting)
    inst = emu.logs.find(key, wanted)
    if inst is None:
        what = "previous terminated container" if previous else "container"
        return _bad_request(f'{what} "{container}" in pod "{name}" not found')
    return inst


async def serve_log(
    emu: KubeEmulator, request: web.Request, ns: str, name: str
) -> web.StreamResponse:
    """GET .../pods/{name}/log with follow, timestamps, sinceSeconds, previous, tailLines,
    limitBytes."""
    q = request.query
    inst = _pick_instance(emu, ns, name, q)
    if isinstance(inst, web.Response):
        return inst
    follow = q.get("follow", "").lower() in ("true", "1") and inst.running
    timestamps = q.get("timestamps", "").lower() in ("true", "1")
    floor = time.time_ns() - int(q["sinceSeconds"]) * 1_000_000_000 if "sinceSeconds" in q else None
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    stream = LogStream(namespace=ns, pod=name, inst=inst)
    emu.streams.add(stream)
    if emu.on_log_request is not None:
        emu.on_log_request(ns, name, q.get("previous", "").lower() in ("true", "1"))
    try:
        start = _start_index(inst, floor, q.get("tailLines"))
        limit = int(q["limitBytes"]) if "limitBytes" in q else None
        await _pump(
            emu, request, resp, stream, start=start, follow=follow, ts=timestamps, limit=limit
        )
    except (ConnectionError, RuntimeError):
        pass
    finally:
        emu.streams.discard(stream)
    return resp


def _start_index(inst: Instance, floor: int | None, tail: str | None) -> int:
    start = 0
    if floor is not None:
        while start < len(inst.lines) and inst.lines[start][0] < floor:
            start += 1
    if tail is not None:
        start = max(start, len(inst.lines) - int(tail))
    return start


async def _pump(
    emu: KubeEmulator,
    request: web.Request,
    resp: web.StreamResponse,
    stream: LogStream,
    *,
    start: int,
    follow: bool,
    ts: bool,
    limit: int | None,
) -> None:
    inst, pos, sent = stream.inst, start, 0
    while not stream.ended and not _closing(request):
        changed = inst.waiter()
        if not stream.stalled and pos < len(inst.lines):
            data = b"".join(render(t, text, timestamps=ts) for t, text in inst.lines[pos:])
            pos = len(inst.lines)
            if limit is not None:
                data = data[: max(limit - sent, 0)]
            if stream.cut_requested_at is not None:
                part = data[: emu.rng.randrange(len(data))] if data else b""
                await _write(emu, resp, part)
                emu.cuts["mid_line" if part and not part.endswith(b"\n") else "between_lines"] += 1
                _finish_cut(request, stream)
                return
            await _write(emu, resp, data)
            if inst.watched:
                inst.written(inst.lines[pos - 1][0])
            sent += len(data)
            if limit is not None and sent >= limit:
                return
        elif stream.cut_requested_at is not None and (
            time.monotonic() - stream.cut_requested_at >= CUT_GRACE or stream.stalled
        ):
            emu.cuts["between_lines"] += 1
            _finish_cut(request, stream)
            return
        if not follow or (not inst.running and (stream.stalled or pos >= len(inst.lines))):
            return  # the container exited: the kubelet ends its follow streams
        await _wait_any(changed, seconds=POLL if stream.cut_requested_at is None else 0.05)


def _finish_cut(request: web.Request, stream: LogStream) -> None:
    if stream.abrupt and request.transport is not None:
        request.transport.close()
        stream.cuts_abrupt = True


async def _write(emu: KubeEmulator, resp: web.StreamResponse, data: bytes) -> None:
    if not emu.chunking or len(data) < 2:
        if data:
            await resp.write(data)
        return
    i = 0
    while i < len(data):
        n = emu.rng.randint(1, min(len(data) - i, 8192))
        await resp.write(data[i : i + n])
        i += n
        await asyncio.sleep(0)


# -- watch ----------------------------------------------------------------------------------


def _event_type(change: Change, namespace: str | None, matcher: Any) -> str | None:
    if namespace is not None and change.obj["metadata"].get("namespace") != namespace:
        return None
    new = matcher(change.obj["metadata"].get("labels") or {})
    old = change.old is not None and matcher(change.old["metadata"].get("labels") or {})
    if change.type == "DELETED":
        return "DELETED" if old else None
    if change.type == "ADDED":
        return "ADDED" if new else None
    if new and old:
        return "MODIFIED"
    return "ADDED" if new else ("DELETED" if old else None)


def _expired(rv: int, current: int) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {rv} ({current})",
        "reason": "Expired",
        "code": 410,
    }


async def run_watch(
    emu: KubeEmulator, request: web.Request, route: Route, matcher: Any, stop: asyncio.Event
) -> web.StreamResponse:
    """A watch: replay from resourceVersion (410 when too old), then live events and bookmarks
    until timeoutSeconds, `stop`, or the client leaves."""
    from tests.support.kube.server import KINDS

    info, q, store = KINDS[route.resource], request.query, emu.store
    loop = asyncio.get_running_loop()
    timeout = float(q.get("timeoutSeconds") or 1800)
    if emu.max_watch_seconds is not None:
        timeout = min(timeout, emu.max_watch_seconds)
    bookmarks = q.get("allowWatchBookmarks", "").lower() in ("true", "1")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)

    async def send(type_: str, obj: dict[str, Any]) -> None:
        await resp.write((json.dumps({"type": type_, "object": obj}) + "\n").encode())

    deadline, next_bookmark = loop.time() + timeout, loop.time() + emu.bookmark_interval
    rv_param = q.get("resourceVersion")
    with contextlib.suppress(ConnectionError, RuntimeError):
        if not rv_param or rv_param == "0":
            last = store.rv
            for obj in store.items(route.resource, route.namespace):
                if matcher(obj["metadata"].get("labels") or {}):
                    await send("ADDED", obj)
        else:
            last = int(rv_param)
            if store.too_old(route.resource, last):
                await send("ERROR", _expired(last, store.rv))
                return resp
        while not stop.is_set() and not _closing(request):
            changed = store.waiter()
            for change in list(store.changes_since(route.resource, last)):
                last = change.rv
                kind = _event_type(change, route.namespace, matcher)
                if kind:
                    await send(kind, change.obj)
            now = loop.time()
            if now >= deadline:
                break
            if (
                bookmarks
                and now >= next_bookmark
                and not any(store.changes_since(route.resource, last))
            ):
                meta = {"resourceVersion": str(store.rv)}
                await send(
                    "BOOKMARK",
                    {"kind": info.kind, "apiVersion": info.group_version, "metadata": meta},
                )
                next_bookmark = now + emu.bookmark_interval
            await _wait_any(changed, stop, seconds=min(deadline - now, POLL))
    return resp
