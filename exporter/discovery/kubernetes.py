"""Kubernetes discovery: etcd pods → Targets with identity, volume, scrape and log specs.

Watches (list, then watch) the pods matching any configured selector, cluster-wide or in each
`--kubernetes.namespaces` entry, plus PVCs, PVs, StorageClasses, druid `Etcd` resources and,
for the seed provider check (provider.py), nodes and namespaces; it republishes the complete
target set whenever one of them changes (changes within `debounce` seconds are coalesced).
Sharding applies before anything else, so a replica only resolves volumes and reads secrets for
its own namespaces.

A target is an etcd member, keyed by its pod's namespace and name, from the moment its pod is
seen: `running` while the etcd container runs (ready or not: a slow etcd often fails its
readiness probe, and that is exactly when its series matter), `restarting` while it exited or
backs off, `pending` while a new or re-created pod has not started it yet, and `gone` for
`--kubernetes.member-grace` after the pod disappeared (members.py, departure.py). A re-created
pod (new uid) continues the member; its scrape spec stays the last one until the pod has an IP.
`on_container_change(namespace, pod)` is called when a member's etcd container changed (started,
exited, restarted, re-created), so the log follower looks at once instead of at its next retry.

In https mode, each member's client TLS material comes from the Secrets its `Etcd` resource (or
pod) names (tlsrefs.py, read through secrets.py), and its port from `spec.etcd.clientPort`; the
server name to verify is `--scrape.server-name` with the member's `{etcd}`, `{namespace}` and
`{pod}` filled in (`{etcd}-local` in Gardener: etcd's certificate has no pod-IP entry).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from exporter.backoff import wait_set
from exporter.discovery.base import Publish
from exporter.discovery.departure import why_gone
from exporter.discovery.etcd_resource import EtcdInfo, trim_etcd
from exporter.discovery.identity import etcd_role, project_and_shoot
from exporter.discovery.informer import Informer, merged
from exporter.discovery.members import MemberBook
from exporter.discovery.pods import PodInfo, pod_info
from exporter.discovery.provider import (
    NamespaceInfo,
    NodeInfo,
    NodeProvider,
    member_node,
    placement,
    seed_provider,
    trim_namespace,
    trim_node,
)
from exporter.discovery.secrets import SecretCache
from exporter.discovery.sharding import owns
from exporter.discovery.tlsrefs import TLSRefs, member_refs
from exporter.discovery.volumes import VolumeResolver, trim_claim, trim_class, trim_pv
from exporter.kube.client import (
    ETCDS,
    NAMESPACES,
    NODES,
    PODS,
    PVCS,
    PVS,
    STORAGE_CLASSES,
    KubeApi,
)
from exporter.kube.containers import ContainerStatus, member_state
from exporter.model import (
    SOURCE_ETCD,
    SOURCE_SHOOT_PROMETHEUS,
    Identity,
    KubernetesLogSpec,
    Member,
    Placement,
    ScrapeSpec,
    Target,
    Volume,
)
from exporter.settings import DiscoveryFields, KubernetesSettings, ScrapeSettings

logger = logging.getLogger(__name__)


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
    """A `Discovery` (exporter/discovery/base.py): `run(publish)` until cancelled."""

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
        secret_retry: float = 30.0,
        tls_secret_errors: Counter[str] | None = None,
        on_container_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._settings, self._scrape, self._overrides = settings, scrape, overrides
        self._api = api
        self._on_container_change = on_container_change
        self._clock = clock or time.monotonic
        self._book = MemberBook(grace=settings.member_grace)
        self._containers: dict[str, tuple[object, ...]] = {}  # key → _run_of(pod)
        self._lookups: set[asyncio.Task[None]] = set()
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
        # the seed provider check (provider.py): every node's providerID, every namespace's
        # provider label; their other changes (node status, foreign labels) trim to the same copy
        # and rebuild nothing (Informer)
        check = k.provider_check
        self.nodes: list[Informer[NodeInfo]] = (
            [Informer(api, NODES, trim=trim_node, **common)] if check else []
        )
        self.namespaces: list[Informer[NamespaceInfo]] = (
            [Informer(api, NAMESPACES, trim=trim_namespace, **common)] if check else []
        )
        self._node_infos: Mapping[str, NodeInfo] = {}  # the caches of this rebuild
        self._namespace_infos: Mapping[str, NamespaceInfo] = {}
        self._seed: NodeProvider | None = None
        self.secrets = SecretCache(
            api,
            scrape=scrape,
            on_change=self._dirty.set,
            errors=tls_secret_errors,
            refresh=secret_refresh,
            retry=secret_retry,
        )
        self._etcd_infos: Mapping[str, EtcdInfo] = {}  # the Etcd resources of this rebuild
        self._refs: dict[str, TLSRefs] = {}  # each member's Secret references, this rebuild
        self._last: dict[str, Target] | None = None

    @classmethod
    def configured(
        cls,
        api: KubeApi,
        settings: DiscoveryFields,
        *,
        overrides: Mapping[str, str],
        tls_secret_errors: Counter[str] | None = None,
        on_container_change: Callable[[str, str], None] | None = None,
    ) -> KubernetesDiscovery:
        """The discovery of `run` and `diagnose` alike, from their common settings."""
        return cls(
            api=api,
            settings=settings.kubernetes,
            scrape=settings.scrape,
            shard=settings.shard,
            total_shards=settings.total_shards,
            overrides=overrides,
            tls_secret_errors=tls_secret_errors,
            on_container_change=on_container_change,
        )

    @property
    def _reads_secrets(self) -> bool:
        """Secrets are read only to scrape etcd itself: never with
        --scrape.source=shoot-prometheus."""
        return self._scrape.source == SOURCE_ETCD and self.secrets.enabled

    def _informers(self) -> list[Informer[Any]]:
        return [
            *self.pods, *self.claims, self.volumes, self.classes, *self.etcds, *self.nodes,
            *self.namespaces,
        ]  # fmt: skip

    async def run(self, publish: Publish) -> None:
        """Watch everything and publish the target set on every change, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for inf in self._informers():
                tg.create_task(inf.run())
            if self._reads_secrets:
                tg.create_task(self.secrets.run())
            try:
                await self._publish_loop(publish)
            finally:
                for lookup in list(self._lookups):
                    lookup.cancel()

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
            self._look_up_departures()
            await self._wait_dirty(self._book.next_deadline())
            await asyncio.sleep(self._debounce)

    async def _wait_dirty(self, deadline: float | None) -> None:
        """Until something changed, or a member's grace period ends at `deadline`."""
        if deadline is None:
            await self._dirty.wait()
            return
        await wait_set(self._dirty, max(deadline - self._clock(), 0.0) + 0.01)

    def _look_up_departures(self) -> None:
        """Ask the API why each newly departed member's pod went (in the background)."""
        for target in self._book.departed():
            task = asyncio.create_task(self._look_up(target), name=f"departure {target.key}")
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)

    async def _look_up(self, target: Target) -> None:
        ident, uid = target.identity, target.member.uid if target.member else ""
        try:
            why = await why_gone(self._api, namespace=ident.namespace, pod=ident.pod, uid=uid)
        except Exception as err:  # a lookup never stops discovery; the grace period applies
            logger.warning("Member departure lookup failed", exc_info=err)
            return
        if self._book.settle(target.key, uid=uid, removal=why):
            self._dirty.set()

    async def targets(self) -> dict[str, Target]:
        """The complete target set of this shard, from the caches as they are now."""
        shard, total = self._shard, self._total_shards
        # a pod without the etcd container (etcd-druid's compaction Job carries the same labels)
        # is never a member
        pods = [
            p
            for p in merged(self.pods).values()
            if p.has_container and owns(p.namespace, shard=shard, total_shards=total)
        ]
        self._etcd_infos = merged(self.etcds)
        self._node_infos, self._namespace_infos = merged(self.nodes), merged(self.namespaces)
        self._seed = seed_provider(self._node_infos)
        roles = {p.key: etcd_role(labels=p.label_map, owner_names=p.owners, pod_name=p.name)
                 for p in pods}  # fmt: skip
        self._refs = {}
        if self._reads_secrets:  # each member's Secret references, once per rebuild
            for p in pods:
                refs = self._tls_refs(p, roles[p.key]) if p.pod_ip else None
                if refs is not None:
                    self._refs[p.key] = refs
            await self.secrets.ensure(self._refs.values())
        resolver = VolumeResolver(
            claims=merged(self.claims),
            volumes=self.volumes.items,
            classes=self.classes.items,
            etcds=self._etcd_infos,
            overrides=self._overrides,
            expected=self._settings.expected_storage_classes,
        )
        present = {p.key: self._member(p, self._target(p, roles[p.key], resolver)) for p in pods}
        members, removed = self._book.update(
            present, now=self._clock(), claims=resolver.claims.keys()
        )
        for key, why in removed.items():
            logger.info("Member removed", extra={"target": key, "why": why})
            self._containers.pop(key, None)
        return {key: members[key] for key in sorted(members)}

    def _member(self, pod: PodInfo, target: Target) -> Target:
        """The pod's target as a member: its state, restarts and last exit; while the pod has
        no IP (pending, re-created) the scrape spec it had before."""
        status = pod.container
        state, reason = member_state(status)
        member = Member(
            state=state,
            uid=pod.uid,
            restart_count=status.restart_count,
            reason=reason,
            last_exit=status.last_exit,
            last_exit_at=status.last_finished_at,
            pod_started_at=pod.started_at,
        )
        scrape = target.scrape
        last = self._book.last(pod.key)
        if scrape is None and last is not None:
            scrape = last.scrape
        seen, run = self._containers.get(pod.key), _run_of(pod.uid, status)
        self._containers[pod.key] = run
        if seen is not None and seen != run and self._on_container_change is not None:
            self._on_container_change(pod.namespace, pod.name)
        return replace(target, scrape=scrape, member=member)

    def _target(self, pod: PodInfo, etcd: str, resolver: VolumeResolver) -> Target:
        project, shoot = project_and_shoot(pod.namespace)
        identity = Identity(
            namespace=pod.namespace, project=project, shoot=shoot, etcd=etcd, pod=pod.name
        )
        volume = resolver.resolve(namespace=pod.namespace, claim=pod.claim, etcd=etcd)
        return Target(
            key=pod.key,
            identity=identity,
            volume=volume,
            placement=self._placement(pod, volume),
            scrape=self._scrape_spec(pod, identity),
            log=KubernetesLogSpec(
                namespace=pod.namespace,
                pod=pod.name,
                container=self._settings.container,
                uid=pod.uid,
            ),
        )

    def _placement(self, pod: PodInfo, volume: Volume) -> Placement:
        """The member's provider and expected-class verdicts (provider.py)."""
        namespace = self._namespace_infos.get(pod.namespace)
        return placement(
            namespace_provider=namespace.provider if namespace is not None else "",
            node=member_node(pod.node_name, self._node_infos, self._seed),
            expected_class=volume.expected_storage_class,
            classes=self.classes.items.keys(),
        )

    def _etcd_of(self, namespace: str, etcd: str) -> EtcdInfo | None:
        """The member's Etcd resource (named like its role label), if known."""
        return self._etcd_infos.get(f"{namespace}/{etcd}")

    def _tls_refs(self, pod: PodInfo, etcd: str) -> TLSRefs | None:
        return member_refs(
            namespace=pod.namespace,
            etcd=self._etcd_of(pod.namespace, etcd),
            pod_client_secret=pod.client_tls_secret,
            pod_ca_secret=pod.ca_secret,
            scrape=self._scrape,
        )

    def _scrape_spec(self, pod: PodInfo, identity: Identity) -> ScrapeSpec | None:
        sc = self._scrape
        if sc.source == SOURCE_SHOOT_PROMETHEUS:  # the namespace's Prometheus: no pod IP, no TLS
            url = sc.shoot_prometheus_url.replace("{namespace}", pod.namespace)
            return ScrapeSpec(url=url, source=sc.source, namespace=pod.namespace, pod=pod.name)
        if not pod.pod_ip:
            return None
        port = sc.port
        if sc.scheme == "https":  # the Etcd resource says its client port (2382 for static pods)
            etcd_info = self._etcd_of(pod.namespace, identity.etcd)
            if etcd_info is not None and etcd_info.client_port is not None:
                port = etcd_info.client_port
        url = scrape_url(scheme=sc.scheme, pod_ip=pod.pod_ip, port=port, path=sc.path)
        if sc.scheme == "http":
            return ScrapeSpec(url=url)
        tls = self.secrets.tls(self._refs.get(pod.key))
        name = server_name(tls.server_name, identity)
        if name != tls.server_name:
            tls = replace(tls, server_name=name)
        return ScrapeSpec(url=url, tls=tls)


def _run_of(uid: str, status: ContainerStatus) -> tuple[object, ...]:
    """What identifies the etcd container's current run (readiness flips are not a change)."""
    return (
        uid,
        status.container_id,
        status.running,
        status.terminated_id,
        status.last_id,
        status.restart_count,
    )
