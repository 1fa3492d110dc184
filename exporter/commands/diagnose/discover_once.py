"""`diagnose`'s one-shot discovery: the daemon's target set, once, with the clients to read it.

Static mode reads the targets file like the daemon does (every problem listed). Kubernetes mode
runs the daemon's `KubernetesDiscovery` until its first publish — the synced, resolved, sharded
set — then cancels it; the API client stays open for reading pod logs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any

from exporter.commands.diagnose.logread import PodLogs
from exporter.discovery.base import Discovery
from exporter.discovery.static import TargetsFileError, load_targets_file
from exporter.model import Target
from exporter.preflight import disk_class_overrides
from exporter.settings import DiagnoseSettings

POLL = 0.2
# Lists discovery cannot do without (Etcd resources are optional: the CRD may be missing).
REQUIRED = frozenset({"pods", "persistentvolumeclaims", "persistentvolumes", "storageclasses"})


class DiscoveryFailed(Exception):
    """No target set: bad configuration, unreachable API, or nothing found (exit code 2)."""


@contextlib.asynccontextmanager
async def discover_once(
    settings: DiagnoseSettings,
) -> AsyncIterator[tuple[list[Target], PodLogs | None]]:
    """The targets (sorted by key) and, in Kubernetes mode, the client for pod logs."""
    overrides, problem = disk_class_overrides(settings.storage)
    if problem is not None:
        raise DiscoveryFailed(problem)
    if settings.discovery == "static":
        yield _static(settings, overrides), None
        return
    async with _kubernetes(settings, overrides) as (targets, kube):
        yield targets, kube


def _static(settings: DiagnoseSettings, overrides: Mapping[str, str]) -> list[Target]:
    path = settings.static.targets_file or ""
    try:
        found = load_targets_file(
            path, shard=settings.shard, total_shards=settings.total_shards, overrides=overrides
        )
    except TargetsFileError as err:
        problems = "\n".join(f"  {p}" for p in err.problems)
        raise DiscoveryFailed(f"invalid targets file {path}:\n{problems}") from None
    return _sorted(found)


def _sorted(found: Mapping[str, Target]) -> list[Target]:
    return [found[k] for k in sorted(found)]


@contextlib.asynccontextmanager
async def _kubernetes(
    settings: DiagnoseSettings, overrides: Mapping[str, str]
) -> AsyncIterator[tuple[list[Target], PodLogs]]:
    from exporter.discovery.kubernetes import KubernetesDiscovery
    from exporter.kube.client import KubeConfigError, connect

    try:
        api = await connect(settings.kubernetes, errors=Counter(), pool_size=settings.concurrency)
    except KubeConfigError as err:
        raise DiscoveryFailed(str(err)) from None
    try:
        discovery = KubernetesDiscovery.configured(api, settings, overrides=overrides)
        deadline = settings.kubernetes.request_timeout * 2
        found = await first_publish(
            discovery, timeout_seconds=deadline, failed=partial(_denied, api.errors.counts)
        )
        yield _sorted(found), api
    finally:
        await api.close()


def _denied(counts: Mapping[tuple[str, str, str], int]) -> str | None:
    """A message when the API refused a list or watch discovery cannot do without."""
    for (resource, verb, code), n in counts.items():
        if n and code in ("401", "403") and resource in REQUIRED:
            return (
                f"the Kubernetes API refused to {verb} {resource} ({code}): grant it to the "
                "user of the kubeconfig (see the log above)"
            )
    return None


async def first_publish(
    discovery: Discovery,
    *,
    timeout_seconds: float,
    failed: Callable[[], str | None] = lambda: None,
) -> Mapping[str, Target]:
    """Run `discovery` until its first publish, its end, `failed()` naming a reason, or the
    timeout; then cancel it."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[Mapping[str, Target]] = loop.create_future()

    def publish(targets: Mapping[str, Target]) -> None:
        if not first.done():
            first.set_result(dict(targets))

    task = asyncio.create_task(discovery.run(publish), name="diagnose-discovery")
    deadline = loop.time() + timeout_seconds
    try:
        while loop.time() < deadline:
            step = min(POLL, max(deadline - loop.time(), 0.0))
            either: set[asyncio.Future[Any]] = {first, task}
            await asyncio.wait(either, timeout=step, return_when=asyncio.FIRST_COMPLETED)
            if first.done():
                return first.result()
            if task.done():
                raise DiscoveryFailed(f"discovery ended without a result: {_why(task)}")
            reason = failed()
            if reason:
                raise DiscoveryFailed(reason)
        raise DiscoveryFailed(
            f"discovery did not finish listing within {timeout_seconds:.0f}s (see the log above)"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _why(task: asyncio.Task[Any]) -> str:
    err = task.exception() if not task.cancelled() else None
    return f"{type(err).__name__}: {err}" if err is not None else "no targets published"
