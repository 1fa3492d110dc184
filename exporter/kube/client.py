"""Kubernetes API access: client construction and the few calls the exporter makes.

Uses the official client's asyncio package (`kubernetes.aio`) through its
`*_without_preload_content` methods and reads the JSON itself: lists of thousands of pods stay
cheap (no model objects), and watch and log streams are plain aiohttp responses. Every call has
an explicit float timeout — `kubernetes.aio` otherwise applies a total of 300 s, which would cut
follow streams. Errors become `KubeApiError` and go through `ErrorLog` (exporter/kube/errors.py):
counted by (resource, verb, code), a denial logged once with the permission to grant.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig

from exporter.backoff import Backoff
from exporter.kube.errors import ApiErrors, ErrorLog, KubeApiError
from exporter.kube.objects import JSON
from exporter.settings import KubernetesSettings

__all__ = [
    "API_RETRY",
    "ApiErrors",
    "ErrorLog",
    "KubeApi",
    "KubeApiError",
    "KubeConfigError",
    "connect",
    "load_api_client",
]

MAX_WATCH_LINE = 64 * 1024 * 1024
LIST_PAGE = 500
IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
# Retrying a call or a stream of the API: exponential, with full jitter on the upper half (attempt
# 0 waits between half the initial delay and all of it). Callers pick their own initial/maximum.
API_RETRY = Backoff(initial=0.5, maximum=30.0, jitter=(0.5, 1.0))


class KubeConfigError(RuntimeError):
    """No usable in-cluster config or kubeconfig."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A collection the exporter reads: its RBAC name and the client methods behind it."""

    name: str  # RBAC resource name, e.g. "pods", "etcds"
    api: str  # "core" | "storage" | "custom"
    list_all: str = ""
    list_namespaced: str = ""
    get_namespaced: str = ""
    get_cluster: str = ""
    group: str = ""
    version: str = ""


PODS = Resource(
    "pods",
    "core",
    list_all="list_pod_for_all_namespaces",
    list_namespaced="list_namespaced_pod",
    get_namespaced="read_namespaced_pod",
)
PVCS = Resource(
    "persistentvolumeclaims",
    "core",
    list_all="list_persistent_volume_claim_for_all_namespaces",
    list_namespaced="list_namespaced_persistent_volume_claim",
    get_namespaced="read_namespaced_persistent_volume_claim",
)
PVS = Resource(
    "persistentvolumes",
    "core",
    list_all="list_persistent_volume",
    get_cluster="read_persistent_volume",
)
STORAGE_CLASSES = Resource(
    "storageclasses", "storage", list_all="list_storage_class", get_cluster="read_storage_class"
)
SECRETS = Resource("secrets", "core", get_namespaced="read_namespaced_secret")
# `get`: is a member's namespace being deleted (exporter/discovery/departure.py); list and
# watch: the seed provider type its label declares (exporter/discovery/provider.py)
NAMESPACES = Resource("namespaces", "core", list_all="list_namespace", get_cluster="read_namespace")
# list and watch: the provider each node runs on, from spec.providerID (provider.py)
NODES = Resource("nodes", "core", list_all="list_node", get_cluster="read_node")
ETCDS = Resource("etcds", "custom", group="druid.gardener.cloud", version="v1alpha1")


def kubeconfig_path(explicit: str | None) -> str:
    """--kubernetes.kubeconfig, else $KUBECONFIG (may list several files), else ~/.kube/config.

    Raises KubeConfigError naming where it looked when none of the files exists.
    """
    paths = explicit or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if any(os.path.isfile(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p):
        return paths
    if explicit:
        raise KubeConfigError(f"no usable Kubernetes configuration: file not found: {paths}")
    raise KubeConfigError(
        "no usable Kubernetes configuration: not in a cluster "
        f"({IN_CLUSTER_ENV} unset) and no kubeconfig file at {paths}"
    )


async def load_api_client(settings: KubernetesSettings, *, pool_size: int) -> Any:
    """An `ApiClient`: --kubernetes.kubeconfig, else in-cluster config, else $KUBECONFIG or
    ~/.kube/config (with --kubernetes.context). The pool allows `pool_size` open connections —
    every followed log is one long-lived connection to the API server."""
    conf = kclient.Configuration()
    explicit = settings.kubeconfig
    in_cluster = not explicit and bool(os.environ.get(IN_CLUSTER_ENV))
    path = None if in_cluster else kubeconfig_path(explicit)
    try:
        if path is None:
            kconfig.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
        else:
            await kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=settings.context,
                client_configuration=conf,
                persist_config=False,
            )
    except (kconfig.ConfigException, OSError, ValueError, TypeError) as err:
        raise KubeConfigError(f"no usable Kubernetes configuration: {err}") from err
    conf.connection_pool_maxsize = pool_size
    conf.retries = None
    return kclient.ApiClient(configuration=conf)


async def connect(settings: KubernetesSettings, *, errors: ApiErrors, pool_size: int) -> KubeApi:
    """The `KubeApi` of `run` and `diagnose` alike: `load_api_client`, errors counted into
    `errors`; raises KubeConfigError when no configuration is usable."""
    api_client = await load_api_client(settings, pool_size=pool_size)
    return KubeApi(api_client, errors=errors, request_timeout=settings.request_timeout)


def _bool(value: bool | None) -> bool | None:
    return True if value else None


class KubeApi:
    """The calls the exporter makes, as JSON dicts and raw streams, with errors classified."""

    def __init__(self, api_client: Any, *, errors: ApiErrors, request_timeout: float) -> None:
        self._client = api_client
        self._apis: dict[str, Any] = {
            "core": kclient.CoreV1Api(api_client),
            "storage": kclient.StorageV1Api(api_client),
            "custom": kclient.CustomObjectsApi(api_client),
        }
        self.errors = ErrorLog(errors)
        self.request_timeout = float(request_timeout)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    # -- calls ------------------------------------------------------------------------------
    async def list(
        self, res: Resource, *, namespace: str | None = None, label_selector: str | None = None
    ) -> JSON:
        """List a collection (paged); returns {"items": [...], "resourceVersion": "..."}."""
        what = _What(res.name, "list", namespace)
        items: list[JSON] = []
        cont: str | None = None
        while True:
            params = {"label_selector": label_selector, "limit": LIST_PAGE, "_continue": cont}
            page = await self._json(what, self._list_call(res, namespace), params)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            cont = meta.get("continue") or None
            if not cont:
                return {"items": items, "resourceVersion": meta.get("resourceVersion", "")}

    async def watch(
        self,
        res: Resource,
        *,
        namespace: str | None,
        label_selector: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[JSON]:
        """Watch events ({"type", "object"}) from a resourceVersion until the server ends it."""
        params = {
            "_request_timeout": float(timeout_seconds + 30),
            "watch": True,
            "allow_watch_bookmarks": True,
            "label_selector": label_selector,
            "resource_version": resource_version,
            "timeout_seconds": timeout_seconds,
        }
        what = _What(res.name, "watch", namespace)
        resp = await self._open(what, self._list_call(res, namespace), params)
        try:
            while True:
                line = await resp.content.readline(max_line_length=MAX_WATCH_LINE)
                if not line:
                    return
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event
        finally:
            resp.release()

    async def get(self, res: Resource, name: str, *, namespace: str | None = None) -> JSON:
        """Get one object."""
        api = self._apis[res.api]
        what = _What(res.name, "get", namespace)
        if namespace is None:
            fn = getattr(api, res.get_cluster + "_without_preload_content")
            return await self._json(what, fn, {"name": name})
        fn = getattr(api, res.get_namespaced + "_without_preload_content")
        return await self._json(what, fn, {"name": name, "namespace": namespace})

    async def open_log(
        self,
        *,
        namespace: str,
        pod: str,
        container: str,
        since_seconds: int | None,
        previous: bool = False,
        follow: bool = True,
        timeout: float,  # noqa: ASYNC109 - the request's own total timeout, not a cancel scope
    ) -> aiohttp.ClientResponse:
        """Open a pod log stream with timestamps; the caller reads and releases it."""
        fn = self._apis["core"].read_namespaced_pod_log_without_preload_content
        params = {
            "_request_timeout": float(timeout),
            "name": pod,
            "namespace": namespace,
            "container": container,
            "follow": _bool(follow),
            "timestamps": True,
            "previous": _bool(previous),
            "since_seconds": since_seconds,
        }
        resp: aiohttp.ClientResponse = await self._open(
            _What("pods/log", "get", namespace), fn, params
        )
        return resp

    # -- plumbing ---------------------------------------------------------------------------
    def _list_call(self, res: Resource, namespace: str | None) -> Callable[..., Awaitable[Any]]:
        api = self._apis[res.api]
        if res.api == "custom":
            args = {"group": res.group, "version": res.version, "plural": res.name}
            if namespace is None:
                return _bind(api.list_cluster_custom_object_without_preload_content, args)
            args["namespace"] = namespace
            return _bind(api.list_namespaced_custom_object_without_preload_content, args)
        if namespace is None:
            return getattr(api, res.list_all + "_without_preload_content")  # type: ignore[no-any-return]
        fn = getattr(api, res.list_namespaced + "_without_preload_content")
        return _bind(fn, {"namespace": namespace})

    async def _json(
        self, what: _What, fn: Callable[..., Awaitable[Any]], params: dict[str, Any]
    ) -> JSON:
        params.setdefault("_request_timeout", self.request_timeout)
        resp = await self._open(what, fn, params)
        try:
            async with asyncio.timeout(self.request_timeout):
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise self._transport_error(what, err) from err
        finally:
            resp.release()
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise KubeApiError(status=0, resource=what.resource, verb=what.verb, message="not JSON")
        return doc

    async def _open(
        self, what: _What, fn: Callable[..., Awaitable[Any]], params: dict[str, Any]
    ) -> Any:
        try:
            resp = await fn(**{k: v for k, v in params.items() if v is not None})
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise self._transport_error(what, err) from err
        if resp.status < 400:
            self.errors.success(resource=what.resource, verb=what.verb, namespace=what.namespace)
            return resp
        try:
            message = _status_message(await resp.read())
        except (aiohttp.ClientError, TimeoutError):
            message = resp.reason or ""
        finally:
            resp.release()
        failure = KubeApiError(
            status=resp.status,
            resource=what.resource,
            verb=what.verb,
            namespace=what.namespace or "",
            message=message,
        )
        self.errors.record(failure, code=str(resp.status))
        raise failure

    def _transport_error(self, what: _What, err: BaseException) -> KubeApiError:
        code = "timeout" if isinstance(err, TimeoutError) else "connect"
        out = KubeApiError(
            status=0,
            resource=what.resource,
            verb=what.verb,
            namespace=what.namespace or "",
            message=repr(err),
        )
        self.errors.record(out, code=code)
        return out


@dataclass(frozen=True, slots=True)
class _What:
    resource: str
    verb: str
    namespace: str | None


def _bind(
    fn: Callable[..., Awaitable[Any]], fixed: dict[str, Any]
) -> Callable[..., Awaitable[Any]]:
    async def call(**kwargs: Any) -> Any:
        return await fn(**fixed, **kwargs)

    return call


def _status_message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("reason") or "")
    return ""
