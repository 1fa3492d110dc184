"""Our own client objects pointed at an emulator: `KubeApi` and `KubernetesDiscovery` for tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.discovery.kubernetes import KubernetesDiscovery
from exporter.kube.client import KubeApi, load_api_client
from exporter.model import Target
from exporter.settings import KubernetesSettings, ScrapeSettings
from tests.support.kube.server import KubeEmulator


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, seconds: float, interval: float = 0.05
) -> None:
    """Poll `check` (plain or async) until it is true; TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def kube_api(
    emu: KubeEmulator, *, errors: Counter[tuple[str, str, str]] | None = None
) -> AsyncIterator[KubeApi]:
    """A KubeApi built the daemon's way (kubeconfig file → kubernetes.aio client)."""
    settings = KubernetesSettings(kubeconfig=str(emu.kubeconfig))
    client = await load_api_client(settings, pool_size=1024)
    api = KubeApi(client, errors=Counter() if errors is None else errors, request_timeout=10.0)
    try:
        yield api
    finally:
        await api.close()


@dataclass
class Published:
    """Every target set a discovery published, with a way to wait for a condition."""

    sets: list[dict[str, Target]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, targets: Mapping[str, Target]) -> None:
        self.sets.append(dict(targets))
        self.changed.set()

    @property
    def last(self) -> dict[str, Target]:
        """The latest set (empty before the first publish)."""
        return self.sets[-1] if self.sets else {}

    async def until(
        self, check: Callable[[dict[str, Target]], bool], seconds: float = 10.0
    ) -> dict[str, Target]:
        """Wait until the latest set satisfies `check`; returns it."""
        async with asyncio.timeout(seconds):
            while not (self.sets and check(self.last)):
                self.changed.clear()
                await self.changed.wait()
        return self.last


@contextlib.asynccontextmanager
async def running_discovery(
    api: KubeApi,
    *,
    kubernetes: dict[str, Any] | None = None,
    scrape: dict[str, Any] | None = None,
    shard: int = 0,
    total_shards: int = 1,
    overrides: Mapping[str, str] | None = None,
    secret_refresh: float = 300.0,
    secret_retry: float = 30.0,
) -> AsyncIterator[tuple[KubernetesDiscovery, Published]]:
    """A KubernetesDiscovery running in a task; cancelled on exit."""
    discovery = KubernetesDiscovery(
        api=api,
        settings=KubernetesSettings(**(kubernetes or {})),
        scrape=ScrapeSettings(**({"scheme": "http"} | (scrape or {}))),
        shard=shard,
        total_shards=total_shards,
        overrides=overrides or {},
        debounce=0.02,
        secret_refresh=secret_refresh,
        secret_retry=secret_retry,
    )
    published = Published()
    task = asyncio.create_task(discovery.run(published))
    try:
        yield discovery, published
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
