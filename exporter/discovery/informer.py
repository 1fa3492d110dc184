"""List, then watch one collection, and keep a trimmed copy of every object in memory.

The reflector recipe: list (paged) → watch from the list's resourceVersion with bookmarks →
when the server ends the watch (its timeout, about `watch_timeout` seconds, jittered), watch again
from the last version seen → on 410 Gone, list again. Errors back off with jitter and resume from
the last version. `on_change` is called after every list and every applied event that changed
the cache: a modification whose trimmed copy equals the one kept (a node's heartbeat, a pod's
unrelated annotation) changes nothing and calls nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

import aiohttp

from exporter.backoff import Retries
from exporter.kube.client import API_RETRY, KubeApi, KubeApiError, Resource
from exporter.kube.objects import JSON

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A missing optional API (a CRD that is not installed) is looked for again this often.
ABSENT_RETRY = 300.0
# After an error; and after a watch the server ended at once (the two share the count in a row).
ERROR_RETRY = replace(API_RETRY, initial=1.0, maximum=60.0)
QUICK_END_RETRY = replace(API_RETRY, initial=0.2, maximum=10.0)


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


def object_key(obj: JSON) -> str:
    """`namespace/name` for namespaced objects, `name` otherwise."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


class Informer(Generic[T]):
    """A cache of one collection (optionally one namespace and a label selector)."""

    def __init__(
        self,
        api: KubeApi,
        res: Resource,
        *,
        trim: Callable[[JSON], T],
        on_change: Callable[[], None],
        namespace: str | None = None,
        label_selector: str | None = None,
        watch_timeout: float = 300.0,
        optional: bool = False,
        sync_on_error: bool = True,
    ) -> None:
        self.items: dict[str, T] = {}
        self.synced = asyncio.Event()
        self.absent = False
        self._api, self._res, self._trim, self._on_change = api, res, trim, on_change
        self._ns, self._selector, self._optional = namespace, label_selector, optional
        self._sync_on_error = sync_on_error
        self._watch_timeout = watch_timeout
        self._where = {
            "resource": res.name,
            "namespace": namespace or "",
            "selector": label_selector or "",
        }

    async def run(self) -> None:
        """Keep the cache current until cancelled."""
        rv: str | None = None
        retries = Retries(ERROR_RETRY)
        while True:
            try:
                if rv is None:
                    rv = await self._list()
                started = asyncio.get_running_loop().time()
                rv = await self._watch(rv)
                if asyncio.get_running_loop().time() - started > 1.0:
                    retries.reset()
                    continue
                # The server ended the watch at once: do not spin.
                await asyncio.sleep(retries.next_delay(QUICK_END_RETRY))
                continue
            except _Gone:
                logger.info("Watch expired, listing again", extra=self._where)
                rv = None
                continue
            except KubeApiError as err:
                if err.gone:  # some servers answer the watch request itself with 410
                    logger.info("Watch expired, listing again", extra=self._where)
                    rv = None
                    continue
                if err.not_found and self._optional:
                    self._mark_absent()
                    await asyncio.sleep(ABSENT_RETRY)
                    continue
                if not err.denied:
                    logger.warning("Kubernetes API error", extra={**self._where, "err": str(err)})
            except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as err:
                logger.warning("Kubernetes watch failed", extra={**self._where, "err": repr(err)})
            except Exception as err:  # a bug or an object of an unexpected shape: relist
                logger.error("Kubernetes cache failed", exc_info=err, extra=self._where)
                rv = None
            if self._optional or (rv is None and self._sync_on_error):
                self.synced.set()  # do not hold discovery back for a cache that cannot load
            await asyncio.sleep(retries.next_delay())

    def _mark_absent(self) -> None:
        if not self.absent:
            logger.info("Kubernetes API not installed, working without it", extra=self._where)
        self.absent = True
        if self.items:
            self.items = {}
            self._on_change()
        self.synced.set()

    async def _list(self) -> str:
        doc = await self._api.list(self._res, namespace=self._ns, label_selector=self._selector)
        self.items = {object_key(o): self._trim(o) for o in doc["items"] if isinstance(o, dict)}
        self.absent = False
        self.synced.set()
        self._on_change()
        return str(doc.get("resourceVersion") or "")

    async def _watch(self, rv: str) -> str:
        timeout = int(self._watch_timeout * random.uniform(1.0, 2.0))
        events = self._api.watch(
            self._res,
            namespace=self._ns,
            label_selector=self._selector,
            resource_version=rv,
            timeout_seconds=max(timeout, 1),
        )
        async for event in events:
            rv = self._apply(event, rv)
        return rv

    def _apply(self, event: JSON, rv: str) -> str:
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            return rv
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise KubeApiError(
                status=int(obj.get("code") or 0),
                resource=self._res.name,
                verb="watch",
                namespace=self._ns or "",
                message=str(obj.get("message", "")),
            )
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if kind == "BOOKMARK":
            return new_rv
        key = object_key(obj)
        if kind == "DELETED":
            self.items.pop(key, None)
        elif kind in ("ADDED", "MODIFIED"):
            trimmed = self._trim(obj)
            if self.items.get(key) == trimmed:
                return new_rv
            self.items[key] = trimmed
        else:
            return new_rv
        self._on_change()
        return new_rv


def merged(informers: list[Informer[Any]]) -> dict[str, Any]:
    """The union of several informers' caches (an object matched by two selectors counts once)."""
    out: dict[str, Any] = {}
    for inf in informers:
        out.update(inf.items)
    return out
