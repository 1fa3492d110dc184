"""The volume's identity and budget against the API emulator: PVs shaped as the clouds make them
(CSI volumeHandle, in-tree gcePersistentDisk, Gardener's 25Gi/10Gi sizes) flow through discovery
into the volume's handle, capacity and expected write IOPS, and onto /metrics."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from exporter.exposition.collector import EtcdLatencyCollector
from exporter.model import Target
from exporter.state import Store
from tests.support.kube.client import kube_api, running_discovery
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.objects import claim_name
from tests.support.kube.scenario import FAST, STANDARD, add_gce_seed
from tests.support.kube.server import KubeEmulator

pytestmark = pytest.mark.timeout(60)

NS = "shoot--p1--a"
MEMBERS = {f"{NS}/{etcd}-0" for etcd in ("etcd-main", "etcd-events")}
GIB = 1024**3


def resolved(targets: Mapping[str, Target]) -> bool:
    return set(targets) == MEMBERS and all(t.volume.capacity_bytes for t in targets.values())


def disk_name(kube: KubeEmulator, etcd: str) -> str:
    """`pvc-<uid>`: the disk the provisioner made for the member's claim."""
    claim = kube.store.get("persistentvolumeclaims", (NS, claim_name(etcd)))
    assert claim is not None
    return f"pvc-{claim['metadata']['uid']}"


def gauges(targets: Mapping[str, Target]) -> dict[tuple[str, str], float]:
    """(family, etcd) → value of the capacity and expected-IOPS gauges."""
    store = Store()
    for target in targets.values():
        store.upsert(target)
    out = {}
    for metric in EtcdLatencyCollector(store).collect():
        if metric.name.startswith(("etcd_latency_volume_capacity", "etcd_latency_volume_expected")):
            for s in metric.samples:
                out[(metric.name, s.labels["etcd"])] = s.value
    return out


async def test_incident_volumes_are_pd_standard_below_etcds_floor(kube: KubeEmulator) -> None:
    """The incident: both PVCs on the in-tree `standard` class (pd-standard)."""
    add_gce_seed(kube, seed_provider="metal", namespaces=[NS])
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        targets = await pub.until(resolved)
    main, events = targets[f"{NS}/etcd-main-0"].volume, targets[f"{NS}/etcd-events-0"].volume
    assert (main.storage_class, events.storage_class) == (STANDARD, STANDARD)
    # in-tree PVs: gcePersistentDisk.pdName
    assert main.volume_handle == disk_name(kube, "etcd-main")
    assert events.volume_handle == disk_name(kube, "etcd-events")
    assert (main.capacity_bytes, main.expected_write_iops) == (25 * GIB, 37.5)
    assert (events.capacity_bytes, events.expected_write_iops) == (10 * GIB, 15.0)
    assert main.iops_basis == "GCE pd-standard: 1.5 write IOPS per GiB"
    assert gauges(targets) == {
        ("etcd_latency_volume_capacity_bytes", "etcd-main"): 25 * GIB,
        ("etcd_latency_volume_capacity_bytes", "etcd-events"): 10 * GIB,
        ("etcd_latency_volume_expected_write_iops", "etcd-main"): 37.5,
        ("etcd_latency_volume_expected_write_iops", "etcd-events"): 15.0,
    }


async def test_healthy_etcd_main_is_on_pd_ssd_with_a_csi_handle(kube: KubeEmulator) -> None:
    add_gce_seed(kube, seed_provider="gcp", namespaces=[NS])
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        targets = await pub.until(resolved)
    main = targets[f"{NS}/etcd-main-0"].volume
    assert main.storage_class == FAST
    assert main.volume_handle == (
        f"projects/seed-project/zones/europe-west1-b/disks/{disk_name(kube, 'etcd-main')}"
    )
    assert main.expected_write_iops == 6_000 + 30 * 25  # pd-ssd: baseline plus 30 per GiB
    assert targets[f"{NS}/etcd-events-0"].volume.expected_write_iops == 15.0
