"""Kubernetes discovery: etcd pods → Targets with identity, volume, scrape and log specs.

Watches (list, then watch) the pods matching any configured selector, cluster-wide or in each
`--kubernetes.namespaces` entry, plus PVCs, PVs, StorageClasses and druid `Etcd` resources, and
republishes the complete target set whenever one of them changes (changes within `debounce`
seconds are coalesced). A pod is published once it is Running with a ready etcd container, and
stays published while that container runs, even when it turns unready: a slow etcd often fails
its readiness probe, and that is exactly when its series matter. Sharding applies before
anything else, so a replica only resolves volumes and reads secrets for its own namespaces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from exporter.discovery.identity import etcd_role, project_and_shoot
from exporter.discovery.informer import Informer, merged
from exporter.discovery.pods import PodInfo, pod_info
from exporter.discovery.secrets import ClientSecrets
from exporter.discovery.sharding import owns
from exporter.discovery.volumes import (
    VolumeResolver,
    trim_claim,
    trim_class,
    trim_etcd,
    trim_pv,
)
from exporter.kubeclient import (
    ETCDS,
    PODS,
    PVCS,
    PVS,
    STORAGE_CLASSES,
    KubeApi,
    load_api_client,
)
from exporter.model import Identity, KubernetesLogSpec, ScrapeSpec, Target
from exporter.settings import KubernetesSettings, RunSettings, ScrapeSettings
from exporter.sources.lines import Sink
from exporter.state import Store

logger = logging.getLogger(__name__)

Publish = Callable[[Mapping[str, Target]], None]


def scrape_url(*, scheme: str, pod_ip: str, port: int, path: str) -> str:
    """`https://10.1.2.3:2379/metrics`; IPv6 addresses in brackets."""
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    return f"{scheme}://{host}:{port}{path}"


def server_name(template: str | None, identity: Identity) -> str | None:
    """--scrape.server-name with `{etcd}`, `{namespace}` and `{pod}` filled in (per member
    certificates name e.g. `etcd-main-local`)."""
    if not template:
        return None
    return (
        template.replace("{etcd}", identity.etcd)
        .replace("{namespace}", identity.namespace)
        .replace("{pod}", identity.pod)
    )


class KubernetesDiscovery:
    """Implements the Discovery protocol: `run(publish)` until cancelled."""

    def __init__(
        self,
        *,
        api: KubeApi,
        settings: KubernetesSettings,
        scrape: ScrapeSettings,
        shard: int = 0,
        total_shards: int = 1,
        overrides: Mapping[str, str],
        debounce: float = 0.1,
        secret_refresh: float = 300.0,
    ) -> None:
        self._settings, self._scrape, self._overrides = settings, scrape, overrides
        self._shard, self._total_shards, self._debounce = shard, total_shards, debounce
        k = settings
        self._dirty = asyncio.Event()
        namespaces: list[str | None] = list(k.namespaces) or [None]
        common: dict[str, Any] = {"on_change": self._dirty.set, "watch_timeout": k.watch_timeout}
        trim_pod = partial(pod_info, container=k.container, data_volume=k.data_volume)
        self.pods: list[Informer[PodInfo]] = [
            Informer(api, PODS, trim=trim_pod, namespace=ns, label_selector=sel or None,
                     sync_on_error=False, **common)
            for ns in namespaces
            for sel in (k.selectors or [""])
        ]  # fmt: skip
        self.claims = [
            Informer(api, PVCS, trim=trim_claim, namespace=ns, **common) for ns in namespaces
        ]
        self.volumes = Informer(api, PVS, trim=trim_pv, **common)
        self.classes = Informer(api, STORAGE_CLASSES, trim=trim_class, **common)
        self.etcds = [
            Informer(api, ETCDS, trim=trim_etcd, namespace=ns, optional=True, **common)
            for ns in (namespaces if k.etcd_resources else [])
        ]
        self.secrets = ClientSecrets(
            api, scrape=scrape, on_change=self._dirty.set, refresh=secret_refresh
        )
        self._followed: dict[str, str] = {}  # key → uid of pods published before
        self._last: dict[str, Target] | None = None

    def _informers(self) -> list[Informer[Any]]:
        return [*self.pods, *self.claims, self.volumes, self.classes, *self.etcds]

    async def run(self, publish: Publish) -> None:
        """Watch everything and publish the target set on every change, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for inf in self._informers():
                tg.create_task(inf.run())
            if self.secrets.enabled:
                tg.create_task(self.secrets.run())
            await self._publish_loop(publish)

    async def _publish_loop(self, publish: Publish) -> None:
        await asyncio.gather(*(inf.synced.wait() for inf in self._informers()))
        while True:
            self._dirty.clear()
            try:
                targets = await self.targets()
            except Exception as err:  # never let one odd object stop discovery
                logger.error("Building targets failed", exc_info=err)
                self._dirty.set()
                await asyncio.sleep(1.0)
                continue
            if targets != self._last:
                self._last = targets
                publish(targets)
            await self._dirty.wait()
            await asyncio.sleep(self._debounce)

    async def targets(self) -> dict[str, Target]:
        """The complete target set of this shard, from the caches as they are now."""
        shard, total = self._shard, self._total_shards
        pods = [
            p
            for p in merged(self.pods).values()
            if owns(p.namespace, shard=shard, total_shards=total) and self._followable(p)
        ]
        self._followed = {p.key: p.uid for p in pods}
        if self.secrets.enabled:
            await self.secrets.ensure({p.namespace for p in pods})
        resolver = VolumeResolver(
            claims=merged(self.claims),
            volumes=self.volumes.items,
            classes=self.classes.items,
            etcds=merged(self.etcds),
            overrides=self._overrides,
            expected=self._settings.expected_storage_classes,
        )
        return {p.key: self._target(p, resolver) for p in sorted(pods, key=lambda p: p.key)}

    def _followable(self, pod: PodInfo) -> bool:
        if pod.phase != "Running" or not pod.has_container or not pod.running:
            return False
        return pod.ready or self._followed.get(pod.key) == pod.uid

    def _target(self, pod: PodInfo, resolver: VolumeResolver) -> Target:
        etcd = etcd_role(labels=pod.label_map, owner_names=pod.owners, pod_name=pod.name)
        project, shoot = project_and_shoot(pod.namespace)
        identity = Identity(
            namespace=pod.namespace, project=project, shoot=shoot, etcd=etcd, pod=pod.name
        )
        return Target(
            key=pod.key,
            identity=identity,
            volume=resolver.resolve(namespace=pod.namespace, claim=pod.claim, etcd=etcd),
            scrape=self._scrape_spec(pod, identity),
            log=KubernetesLogSpec(
                namespace=pod.namespace,
                pod=pod.name,
                container=self._settings.container,
                uid=pod.uid,
            ),
        )

    def _scrape_spec(self, pod: PodInfo, identity: Identity) -> ScrapeSpec | None:
        sc = self._scrape
        if not pod.pod_ip:
            return None
        url = scrape_url(scheme=sc.scheme, pod_ip=pod.pod_ip, port=sc.port, path=sc.path)
        if sc.scheme == "http":
            return ScrapeSpec(url=url)
        tls = self.secrets.tls(pod.namespace)
        name = server_name(tls.server_name, identity)
        if name != tls.server_name:
            tls = replace(tls, server_name=name)
        return ScrapeSpec(url=url, tls=tls)


# Connections the API client may hold open: every followed log is one long-lived stream, plus a
# few watches. 2,000 members per replica fit with room to spare.
CONNECTION_POOL = 8192


@dataclass(frozen=True, slots=True)
class KubernetesMode:
    """What `--discovery=kubernetes` contributes to the composition root."""

    run: Callable[[Publish], Awaitable[None]]
    followers: Mapping[type, Callable[[Any, Sink], Awaitable[None]]]
    close: Callable[[], Awaitable[None]]
    api: KubeApi


async def make_kubernetes_discovery(
    settings: RunSettings, *, store: Store, overrides: Mapping[str, str]
) -> KubernetesMode:
    """Client, discovery and pod-log follower for the daemon; API errors are counted into
    `store.kubernetes_api_errors`. Raises KubeConfigError when no configuration is usable."""
    from exporter.sources.kubelog import KubeLogFollower

    api_client = await load_api_client(settings.kubernetes, pool_size=CONNECTION_POOL)
    api = KubeApi(
        api_client,
        errors=store.kubernetes_api_errors,
        request_timeout=settings.kubernetes.request_timeout,
    )
    discovery = KubernetesDiscovery(
        api=api,
        settings=settings.kubernetes,
        scrape=settings.scrape,
        shard=settings.shard,
        total_shards=settings.total_shards,
        overrides=overrides,
    )
    follower = KubeLogFollower(
        api, inactivity_timeout=settings.logs.inactivity_timeout, since=settings.logs.since
    )
    return KubernetesMode(
        run=discovery.run, followers={KubernetesLogSpec: follower}, close=api.close, api=api
    )
