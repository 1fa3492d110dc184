"""The emulator's HTTP side: API paths, list/watch/get, pod logs, RBAC and test hooks.

Run in-process (`KubeEmulator.start()`, for tests) or as a process for benchmarks:
`python -m tests.support.kube.server --kubeconfig PATH [--pods N]` (hooks under `/_emu/...`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.kube import objects
from tests.support.kube.logs import LogBook
from tests.support.kube.selectors import SelectorError, parse_selector
from tests.support.kube.store import JSON, ObjectStore
from tests.support.kube.streams import LogStream, serve_log


@dataclass(frozen=True, slots=True)
class KindInfo:
    """How one resource appears on the wire."""

    kind: str
    group_version: str  # "v1" or "group/version"
    namespaced: bool


KINDS: dict[str, KindInfo] = {
    "namespaces": KindInfo("Namespace", "v1", False),
    "nodes": KindInfo("Node", "v1", False),
    "pods": KindInfo("Pod", "v1", True),
    "persistentvolumeclaims": KindInfo("PersistentVolumeClaim", "v1", True),
    "persistentvolumes": KindInfo("PersistentVolume", "v1", False),
    "secrets": KindInfo("Secret", "v1", True),
    "storageclasses": KindInfo("StorageClass", "storage.k8s.io/v1", False),
    "etcds": KindInfo("Etcd", "druid.gardener.cloud/v1alpha1", True),
}
USER = "system:serviceaccount:garden:etcd-latency-exporter"


def truthy(value: str | None) -> bool:
    """Query booleans as the API server reads them (clients send `True`)."""
    return (value or "").lower() in ("true", "1")


def status(code: int, reason: str, message: str) -> web.Response:
    """A metav1.Status error response."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


@dataclass
class Route:
    """A parsed API path."""

    resource: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_path(parts: list[str]) -> Route | None:
    """`api/v1/namespaces/ns/pods/x/log` → Route; None for unknown paths."""
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest or rest[0] not in KINDS or KINDS[rest[0]].group_version != gv:
        return None
    return Route(
        rest[0], ns, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    )


@dataclass
class KubeEmulator:
    """State plus server. Tests mutate state through the methods below."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    bookmark_interval: float = 1.0
    max_watch_seconds: float | None = None
    chunking: bool = True
    etcd_crd_installed: bool = True
    gone_as_status: bool = False  # answer a too-old watch with HTTP 410 instead of an ERROR event
    seed: int = 0
    kubeconfig: Path | None = None
    store: ObjectStore = field(default_factory=ObjectStore)
    logs: LogBook = field(default_factory=LogBook)
    requests: deque[tuple[str, str, dict[str, str]]] = field(
        default_factory=lambda: deque(maxlen=200_000)
    )

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.denied: set[tuple[str, str, str | None]] = set()
        self.streams: set[LogStream] = set()
        self.cuts: Counter[str] = Counter()  # how follow streams were cut: mid_line, between_lines
        self._watches: set[asyncio.Event] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0
        self.offline = False  # the API is unreachable: no connection is accepted or served
        # called with (namespace, pod, previous) when a log request starts streaming
        self.on_log_request: Callable[[str, str, bool], None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (0: a free port)."""
        app = web.Application()
        app.router.add_post("/_emu/{action}", self._hook)
        app.router.add_get("/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = self._site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.host = host

    async def go_offline(self) -> None:
        """The API becomes unreachable: connections are refused, open ones are cut."""
        self.offline = True
        if self._site is not None:
            await self._site.stop()
            self._site = None
        for stream in list(self.streams):
            stream.cut(abrupt=True)
        self.close_watches()

    async def go_online(self) -> None:
        """The API answers again on the same address."""
        assert self._runner is not None
        self.offline = False
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()

    async def stop(self) -> None:
        """End every stream and stop serving."""
        for stream in list(self.streams):
            stream.end()
        self.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig pointing at this emulator (plain http, token auth)."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emu", "cluster": {"server": self.url}}],
            "users": [{"name": "emu", "user": {"token": self.token}}],
            "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "emu"}}],
            "current-context": "emu",
        }
        path.write_text(json.dumps(doc))
        self.kubeconfig = path
        return path

    # -- test hooks ---------------------------------------------------------------------------
    def add(self, resource: str, obj: JSON) -> JSON:
        """Create or replace an object (and its namespace, when that does not exist yet)."""
        namespace = obj["metadata"].get("namespace")
        if (
            namespace
            and KINDS[resource].namespaced
            and not self.store.get("namespaces", ("", namespace))
        ):
            self.store.put("namespaces", objects.namespace_object(namespace))
        return self.store.put(resource, obj)

    def append_log(
        self, namespace: str, pod: str, lines: list[str], *, container: str = "etcd"
    ) -> list[int]:
        """Write lines to a container's running log; returns their timestamps (ns)."""
        return [self.logs.append((namespace, pod, container), line) for line in lines]

    def watch_log(
        self, namespace: str, pod: str, stamps: list[int], *, container: str = "etcd"
    ) -> None:
        """Time the first write of these lines (by timestamp) to a follow stream."""
        inst = self.logs.instances((namespace, pod, container))[-1]
        inst.watched.update(dict.fromkeys(stamps))

    def log_written(
        self, namespace: str, pod: str, ts: int, *, container: str = "etcd"
    ) -> int | None:
        """When a watched line was first written to a follow stream (`time.time_ns`), None until
        then; forgotten once told."""
        inst = self.logs.instances((namespace, pod, container))[-1]
        written = inst.watched.get(ts)
        if written is not None:
            del inst.watched[ts]
        return written

    def restart_container(self, namespace: str, pod: str, *, container: str = "etcd") -> None:
        """The container exits and starts again at once (one pod update): restartCount+1, a new
        log instance, the old one readable with `previous=true`."""
        exited = self._exit(namespace, pod, container, reason="Error", code=2, back_off=False)
        started = self._start(namespace, pod, container, ready=None, pod_ip=None)

        def both(obj: JSON) -> None:
            exited(obj)
            started(obj)

        self.store.modify("pods", (namespace, pod), both)

    def crash_container(
        self,
        namespace: str,
        pod: str,
        *,
        container: str = "etcd",
        reason: str = "Error",
        exit_code: int = 2,
        back_off: bool = True,
    ) -> None:
        """The running container exits: its follow streams end, its log becomes the one
        `previous=true` reads; with `back_off` the kubelet waits (CrashLoopBackOff), else the
        status shows it terminated until `start_container`."""
        exited = self._exit(
            namespace, pod, container, reason=reason, code=exit_code, back_off=back_off
        )
        self.store.modify("pods", (namespace, pod), exited)

    def start_container(
        self,
        namespace: str,
        pod: str,
        *,
        container: str = "etcd",
        ready: bool | None = False,
        pod_ip: str | None = None,
    ) -> None:
        """The kubelet starts the container (again): a new container ID and log instance,
        restartCount+1 after an earlier run, the pod Running (with `pod_ip` when given);
        `ready` None leaves readiness as it was."""
        started = self._start(namespace, pod, container, ready=ready, pod_ip=pod_ip)
        self.store.modify("pods", (namespace, pod), started)

    def _exit(
        self, namespace: str, pod: str, container: str, *, reason: str, code: int, back_off: bool
    ) -> Callable[[JSON], None]:
        inst = self.logs.end((namespace, pod, container))
        now = objects.rfc3339()

        def exited(obj: JSON) -> None:
            st = _status_of(obj, container)
            started = (st.get("state") or {}).get("running", {}).get("startedAt", now)
            cid = st.get("containerID") or ""
            if inst is not None:
                inst.container_id = cid or inst.container_id  # the status names this run
            terminated = {
                "exitCode": code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": now,
                "containerID": cid,
            }
            st["ready"], st["started"] = False, False
            if back_off:
                st["lastState"] = {"terminated": terminated}
                message = f"back-off 10s restarting failed container={container} pod={pod}"
                st["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            else:
                st["state"] = {"terminated": terminated}
            _set_ready(obj)

        return exited

    def _start(
        self, namespace: str, pod: str, container: str, *, ready: bool | None, pod_ip: str | None
    ) -> Callable[[JSON], None]:
        current = self.store.get("pods", (namespace, pod))
        assert current is not None, pod
        ran = bool(_status_of(current, container).get("containerID"))
        inst = self.logs.start((namespace, pod, container), fresh=not ran)

        def started(obj: JSON) -> None:
            st = _status_of(obj, container)
            state = st.get("state") or {}
            if "terminated" in state:
                st["lastState"] = {"terminated": state["terminated"]}
            if ran:
                st["restartCount"] = int(st.get("restartCount") or 0) + 1
            st["containerID"] = inst.container_id
            st["state"] = {"running": {"startedAt": objects.rfc3339()}}
            st["started"] = True
            if ready is not None:
                st["ready"] = ready
            obj["status"]["phase"] = "Running"
            ip = pod_ip or obj["status"].get("podIP")
            if ip:
                obj["status"]["podIP"], obj["status"]["podIPs"] = ip, [{"ip": ip}]
            _set_ready(obj)

        return started

    def recreate_pod(self, namespace: str, pod: str) -> JSON:
        """Delete a pod and create it again under the same name, as a StatefulSet does: a new
        uid, Pending, no IP, the etcd container not started (`start_container` starts it)."""
        old = self.store.get("pods", (namespace, pod))
        assert old is not None, pod
        self.delete_pod(namespace, pod)
        fresh = copy.deepcopy(old)
        fresh["metadata"]["uid"] = str(uuid.uuid4())
        fresh["metadata"]["creationTimestamp"] = objects.rfc3339()
        fresh["metadata"].pop("deletionTimestamp", None)
        status = fresh["status"]
        status["phase"] = "Pending"
        for gone in ("podIP", "podIPs"):
            status.pop(gone, None)
        for st in status.get("containerStatuses") or []:
            st.update(
                containerID="",
                ready=False,
                started=False,
                restartCount=0,
                lastState={},
                state={"waiting": {"reason": "ContainerCreating"}},
            )
        _set_ready(fresh)
        return self.add("pods", fresh)

    def set_ready(self, namespace: str, pod: str, ready: bool, *, phase: str = "Running") -> None:
        """Change the etcd container's readiness and the pod phase."""

        def change(obj: JSON) -> None:
            obj["status"]["phase"] = phase
            for st in obj["status"]["containerStatuses"]:
                if st["name"] == "etcd":
                    st["ready"] = ready

        self.store.modify("pods", (namespace, pod), change)

    def delete_pod(self, namespace: str, pod: str) -> None:
        """Delete a pod; its log streams end."""
        self.store.delete("pods", (namespace, pod))
        self.logs.drop_pod(namespace, pod)

    def delete_namespace(self, namespace: str) -> None:
        """Delete everything in a namespace (a deleted shoot): the namespace turns Terminating,
        its objects go, then the namespace itself."""
        if self.store.get("namespaces", ("", namespace)) is not None:

            def terminating(obj: JSON) -> None:
                obj["metadata"]["deletionTimestamp"] = objects.rfc3339()
                obj["status"] = {"phase": "Terminating"}

            self.store.modify("namespaces", ("", namespace), terminating)
        pods = [o["metadata"]["name"] for o in self.store.items("pods", namespace)]
        for resource, info in KINDS.items():
            if info.namespaced:
                for obj in self.store.items(resource, namespace):
                    self.store.delete(resource, (namespace, obj["metadata"]["name"]))
        for pod in pods:
            self.logs.drop_pod(namespace, pod)
        self.store.delete("namespaces", ("", namespace))

    def cut_streams(self, *, fraction: float = 1.0) -> int:
        """Cut follow streams (mid-line where data is pending); returns how many."""
        chosen = [s for s in list(self.streams) if self.rng.random() < fraction]
        for stream in chosen:
            stream.cut(abrupt=self.rng.random() < 0.5)
        return len(chosen)

    def stall_streams(self, namespace: str, pod: str) -> None:
        """Open follow streams of a pod stop delivering (the kubelet rotation stall)."""
        for stream in self.streams:
            if (stream.namespace, stream.pod) == (namespace, pod):
                stream.stalled = True

    def close_watches(self) -> None:
        """End every watch stream (an API server restart)."""
        for ev in list(self._watches):
            ev.set()

    def deny(self, resource: str, *, verb: str = "*", namespace: str | None = None) -> None:
        """Answer 403 for verb on resource (e.g. "pods/log"), everywhere or in one namespace."""
        self.denied.add((verb, resource, namespace))

    def allow(self, resource: str, *, verb: str = "*", namespace: str | None = None) -> None:
        """Undo a `deny`."""
        self.denied.discard((verb, resource, namespace))

    def count_requests(self, path_suffix: str, **query: str) -> int:
        """Requests whose path ends with `path_suffix` and whose query has these values."""
        return sum(
            1
            for path, _verb, q in self.requests
            if path.endswith(path_suffix)
            and all(q.get(k, "").lower() == v for k, v in query.items())
        )

    def secret_requests(self) -> list[tuple[str, str, str]]:
        """Every request for Secrets as (verb, namespace, name): `get` with a name, or `list` /
        `watch` (name "") — tests assert that only referenced names were ever asked for."""
        out = []
        for path, verb, _q in self.requests:
            route = parse_path([p for p in path.split("/") if p])
            if route is not None and route.resource == "secrets":
                out.append((verb, route.namespace or "", route.name or ""))
        return out

    # -- HTTP ---------------------------------------------------------------------------------
    def _forbidden(self, verb: str, resource: str, namespace: str | None) -> bool:
        return any(
            (v, resource, ns) in self.denied for v in (verb, "*") for ns in (None, namespace)
        )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if self.offline:  # a connection kept alive from before: cut it, like a dead server
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)  # never sent: the connection is gone
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        route = parse_path([p for p in request.path.split("/") if p])
        if route is None or (route.resource == "etcds" and not self.etcd_crd_installed):
            return status(404, "NotFound", "the server could not find the requested resource")
        q = request.query
        if route.subresource == "log" and route.resource == "pods":
            verb, rbac = "get", "pods/log"
        elif route.name:
            verb, rbac = "get", route.resource
        else:
            verb, rbac = ("watch" if truthy(q.get("watch")) else "list"), route.resource
        self.requests.append((request.path, verb, dict(q)))
        if self._forbidden(verb, rbac, route.namespace):
            scope = (
                f' in the namespace "{route.namespace}"'
                if route.namespace
                else " at the cluster scope"
            )
            group = KINDS[route.resource].group_version.rpartition("/")[0]
            what = f'{route.resource} "{route.name}"' if route.name else route.resource
            message = (
                f'{what} is forbidden: User "{USER}" cannot {verb} resource "{rbac}" in API '
                f'group "{group}"{scope}'
            )
            return status(403, "Forbidden", message)
        if rbac == "pods/log":
            return await serve_log(self, request, route.namespace or "", route.name or "")
        if route.name:
            return self._get(route)
        try:
            matcher = parse_selector(q.get("labelSelector"))
        except SelectorError as err:
            return status(400, "BadRequest", str(err))
        if verb == "watch":
            return await self._watch(request, route, matcher)
        return self._list(route, matcher, q)

    def _get(self, route: Route) -> web.Response:
        obj = self.store.get(route.resource, (route.namespace or "", route.name or ""))
        if obj is None:
            return status(404, "NotFound", f'{route.resource} "{route.name}" not found')
        return web.json_response(obj)

    def _list(self, route: Route, matcher: Any, q: Any) -> web.Response:
        info = KINDS[route.resource]
        items = [
            o
            for o in self.store.items(route.resource, route.namespace)
            if matcher(o["metadata"].get("labels") or {})
        ]
        start = int(q.get("continue") or 0)
        limit = int(q.get("limit") or 0) or len(items) or 1
        page = items[start : start + limit]
        meta: JSON = {"resourceVersion": str(self.store.rv)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        body = {"kind": info.kind + "List", "apiVersion": info.group_version, "metadata": meta}
        body["items"] = page
        return web.json_response(body)

    async def _watch(self, request: web.Request, route: Route, matcher: Any) -> web.StreamResponse:
        from tests.support.kube.streams import run_watch

        rv = request.query.get("resourceVersion") or "0"
        if self.gone_as_status and rv.isdigit() and self.store.too_old(route.resource, int(rv)):
            return status(410, "Expired", f"too old resource version: {rv} ({self.store.rv})")
        stop = asyncio.Event()
        self._watches.add(stop)
        try:
            return await run_watch(self, request, route, matcher, stop)
        finally:
            self._watches.discard(stop)

    async def _hook(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = await request.json() if request.can_read_body else {}
        result: Any = None
        if action == "append":
            result = self.append_log(body["namespace"], body["pod"], body["lines"])
            if body.get("watch"):
                self.watch_log(body["namespace"], body["pod"], result)
        elif action == "written":
            result = self.log_written(body["namespace"], body["pod"], body["ts"])
        elif action == "append_many":
            result = [
                self.append_log(e["namespace"], e["pod"], e["lines"]) for e in body["entries"]
            ]
        elif action == "restart":
            self.restart_container(body["namespace"], body["pod"])
        elif action == "delete_pod":
            self.delete_pod(body["namespace"], body["pod"])
        elif action == "delete_namespace":
            self.delete_namespace(body["namespace"])
        elif action == "cut":
            result = self.cut_streams(fraction=float(body.get("fraction", 1.0)))
        elif action == "deny":
            self.deny(body["resource"], verb=body.get("verb", "*"), namespace=body.get("namespace"))
        else:
            return status(404, "NotFound", f"no hook {action}")
        return web.json_response({"result": result})


def _status_of(pod: JSON, container: str) -> JSON:
    for st in pod["status"]["containerStatuses"]:
        if st["name"] == container:
            return st  # type: ignore[no-any-return]
    raise KeyError(container)


def _set_ready(pod: JSON) -> None:
    """The pod's Ready and ContainersReady conditions from its containers' readiness."""
    ready = all(st.get("ready") for st in pod["status"].get("containerStatuses") or [])
    for cond in pod["status"].get("conditions") or []:
        if cond.get("type") in ("Ready", "ContainersReady"):
            cond["status"] = "True" if ready else "False"


async def _main() -> None:  # pragma: no cover - benchmark entry point
    import argparse

    from tests.support.kube.scenario import add_classes, add_member

    parser = argparse.ArgumentParser(description="Kubernetes API emulator")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--pods", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunking", action="store_true")
    args = parser.parse_args()
    emu = KubeEmulator(chunking=args.chunking)
    add_classes(emu)
    for i in range(args.pods):
        add_member(emu, namespace=f"shoot--bench--c{i}", etcd="etcd-main", pod_ip="127.0.0.1")
    await emu.start(port=args.port)
    emu.write_kubeconfig(Path(args.kubeconfig))
    print(json.dumps({"url": emu.url}), flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()
    await emu.stop()


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
