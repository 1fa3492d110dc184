"""Objects by kind with one resourceVersion counter and a change history for watches."""

from __future__ import annotations

import asyncio
import bisect
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True, slots=True)
class Change:
    """One history entry: what a watcher from an older resourceVersion must be told."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    obj: JSON
    old: JSON | None


@dataclass
class _Kind:
    objects: dict[Key, JSON] = field(default_factory=dict)
    history: list[Change] = field(default_factory=list)
    floor: int = 0  # oldest resourceVersion a watch may resume from


class ObjectStore:
    """All emulated objects; every write bumps the resourceVersion and wakes the watchers."""

    def __init__(self) -> None:
        self.rv = 1000
        self._kinds: dict[str, _Kind] = {}
        self._changed = asyncio.Event()

    def _kind(self, kind: str) -> _Kind:
        return self._kinds.setdefault(kind, _Kind())

    def _record(self, kind: str, type_: str, obj: JSON, old: JSON | None) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._kind(kind).history.append(Change(self.rv, type_, copy.deepcopy(obj), old))
        self._changed.set()
        self._changed = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        """An event set by the next write; take it before reading, then wait on it."""
        return self._changed

    # -- writes ---------------------------------------------------------------------------
    def put(self, kind: str, obj: JSON) -> JSON:
        """Create or replace an object."""
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        store = self._kind(kind)
        old = store.objects.get(key)
        store.objects[key] = obj
        self._record(kind, "MODIFIED" if old else "ADDED", obj, copy.deepcopy(old) if old else None)
        return obj

    def modify(self, kind: str, key: Key, mutate: Callable[[JSON], None]) -> JSON:
        """Change an object in place through `mutate`; raises KeyError when absent."""
        obj = self._kind(kind).objects[key]
        old = copy.deepcopy(obj)
        mutate(obj)
        self._record(kind, "MODIFIED", obj, old)
        return obj

    def delete(self, kind: str, key: Key) -> JSON | None:
        """Remove an object (a DELETED event); None when absent."""
        obj = self._kind(kind).objects.pop(key, None)
        if obj is not None:
            self._record(kind, "DELETED", obj, copy.deepcopy(obj))
        return obj

    def compact(self) -> None:
        """Forget the history: watches resuming from an older resourceVersion get 410 Gone."""
        for kind in self._kinds.values():
            kind.history.clear()
            kind.floor = self.rv

    # -- reads ----------------------------------------------------------------------------
    def get(self, kind: str, key: Key) -> JSON | None:
        """One object or None."""
        return self._kind(kind).objects.get(key)

    def items(self, kind: str, namespace: str | None = None) -> list[JSON]:
        """Objects of a kind (of one namespace), sorted by namespace and name."""
        objs = self._kind(kind).objects
        return [objs[k] for k in sorted(objs) if namespace is None or k[0] == namespace]

    def too_old(self, kind: str, rv: int) -> bool:
        """True when the history no longer reaches back to `rv`."""
        return rv < self._kind(kind).floor

    def changes_since(self, kind: str, rv: int) -> Iterator[Change]:
        """History entries newer than `rv`, oldest first."""
        history = self._kind(kind).history
        start = bisect.bisect_right([c.rv for c in history], rv)
        yield from history[start:]

    def namespaces(self) -> set[str]:
        """Every namespace that holds an object."""
        return {k[0] for kind in self._kinds.values() for k in kind.objects if k[0]}
