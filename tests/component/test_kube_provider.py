"""The seed incident's root cause against the API emulator: a GCE-noded seed whose namespaces say
`metal` (no gardener.cloud-fast, Etcd resources without a class, PVCs on standard) and the healthy
seed (namespaces `gcp`, the class present), through discovery, /metrics, diagnose and the status
page."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Mapping

import pytest
from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig

from exporter.cli import load
from exporter.commands.diagnose.command import diagnose
from exporter.commands.diagnose.progress import Progress
from exporter.diagnosis.evidence import live_reports
from exporter.exposition.collector import EtcdLatencyCollector
from exporter.model import Placement, Target
from exporter.settings import DiagnoseSettings
from exporter.state import Store
from exporter.web.status import render_page
from tests.support.etcd import free_port
from tests.support.kube import objects
from tests.support.kube.client import kube_api, running_discovery
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import FAST, STANDARD, add_gce_seed, gce_node_name
from tests.support.kube.server import KubeEmulator

pytestmark = pytest.mark.timeout(60)

SHOOTS = ("shoot--p1--a", "shoot--p1--b")
MEMBERS = {f"{ns}/{etcd}-0" for ns in SHOOTS for etcd in ("etcd-main", "etcd-events")}
# the chart's Gardener preset
GARDENER = {"expected_storage_classes": {"etcd-main": FAST}}
INCIDENT_CAUSE = (
    "seed provider type `metal` but node {node} runs on gcp (`gce://seed-project/{zone}/{node}`): "
    "StorageClass gardener.cloud-fast was never created"
)


def placements(targets: Mapping[str, Target]) -> dict[str, Placement | None]:
    return {key: t.placement for key, t in targets.items()}


def known(targets: Mapping[str, Target]) -> bool:
    """Every member is there and its node's provider is known (the node cache is synced)."""
    return set(targets) == MEMBERS and all(
        t.placement is not None and t.placement.node_provider for t in targets.values()
    )


def samples(targets: Mapping[str, Target], family: str) -> dict[tuple[str, ...], float]:
    """The collector's samples of one family: (pod's namespace, etcd, own labels…) → value."""
    store = Store()
    for target in targets.values():
        store.upsert(target)
    out = {}
    for metric in EtcdLatencyCollector(store).collect():
        if metric.name == family:
            for s in metric.samples:
                own = tuple(v for k, v in sorted(s.labels.items()) if k not in IDENTITY)
                out[(s.labels["namespace"], s.labels["etcd"], *own)] = s.value
    return out


IDENTITY = {"namespace", "project", "shoot", "etcd", "pod"}


async def test_incident_members_get_mismatch_and_missing(kube: KubeEmulator) -> None:
    nodes = add_gce_seed(kube, seed_provider="metal", namespaces=SHOOTS)
    async with kube_api(kube) as api, running_discovery(api, kubernetes=GARDENER) as (_, pub):
        targets = await pub.until(known)
    got = placements(targets)
    main = got["shoot--p1--a/etcd-main-0"]
    assert main == Placement(
        namespace_provider="metal",
        node_provider="gcp",
        node=nodes[0],
        node_provider_id=f"gce://seed-project/europe-west1-b/{nodes[0]}",
        provider_mismatch=True,
        expected_storage_class=FAST,
        expected_class_missing=True,
    )
    for key, p in got.items():
        assert p is not None, key
        assert p.provider_mismatch is True, key
        # etcd-events: its Etcd has no class either, and nothing is configured for it
        assert p.expected_class_missing is (True if "etcd-main" in key else None), key
    assert {t.volume.storage_class for t in targets.values()} == {STANDARD}
    assert samples(targets, "etcd_latency_provider_mismatch") == {
        (ns, etcd, "metal", "gcp"): 1.0 for ns in SHOOTS for etcd in ("etcd-main", "etcd-events")
    }
    assert samples(targets, "etcd_latency_expected_class_missing") == {
        (ns, "etcd-main", FAST): 1.0 for ns in SHOOTS
    }


async def test_healthy_seed_gets_zero_and_no_root_cause(kube: KubeEmulator) -> None:
    add_gce_seed(kube, seed_provider="gcp", namespaces=SHOOTS)
    async with kube_api(kube) as api, running_discovery(api, kubernetes=GARDENER) as (_, pub):
        targets = await pub.until(known)
    for key, p in placements(targets).items():
        assert p is not None, key
        assert (p.namespace_provider, p.node_provider, p.provider_mismatch) == ("gcp", "gcp", False)
        assert p.expected_class_missing is False, key  # etcd-events: the default class, present
    assert set(samples(targets, "etcd_latency_provider_mismatch").values()) == {0.0}
    assert samples(targets, "etcd_latency_expected_class_missing") == {
        **{(ns, "etcd-main", FAST): 0.0 for ns in SHOOTS},
        **{(ns, "etcd-events", STANDARD): 0.0 for ns in SHOOTS},
    }
    reports = live_reports(_store(targets), now=0.0)
    assert [r.root_cause for r, _ in reports] == [None] * len(MEMBERS)


async def test_fixing_the_seed_clears_both(kube: KubeEmulator) -> None:
    """The Seed's provider type corrected (gardenlet relabels the namespaces) and the extension's
    class created: the watches carry both, without a restart."""
    add_gce_seed(kube, seed_provider="metal", namespaces=SHOOTS)
    async with kube_api(kube) as api, running_discovery(api, kubernetes=GARDENER) as (_, pub):
        await pub.until(known)
        for ns in SHOOTS:
            kube.add("namespaces", objects.shoot_namespace(ns, seed_provider="gcp"))
        kube.add(
            "storageclasses",
            objects.storage_class(
                name=FAST, provisioner="pd.csi.storage.gke.io", parameters={"type": "pd-ssd"}
            ),
        )

        def fixed(targets: dict[str, Target]) -> bool:
            return known(targets) and all(
                t.placement is not None
                and t.placement.provider_mismatch is False
                and t.placement.expected_class_missing is not True
                for t in targets.values()
            )

        targets = await pub.until(fixed)
    # the volumes themselves stay where they are until moved (EtcdLatencyStorageClassMismatch)
    assert targets["shoot--p1--a/etcd-main-0"].volume.mismatch is True


async def test_denied_nodes_give_no_verdict_and_discovery_goes_on(kube: KubeEmulator) -> None:
    add_gce_seed(kube, seed_provider="metal", namespaces=SHOOTS)
    kube.deny("nodes")
    errors: Counter[tuple[str, str, str]] = Counter()
    async with (
        kube_api(kube, errors=errors) as api,
        running_discovery(api, kubernetes=GARDENER) as (_, pub),
    ):
        targets = await pub.until(lambda t: set(t) == MEMBERS)
    for key, p in placements(targets).items():
        assert p is not None, key
        assert p.namespace_provider == "metal", key
        assert (p.node_provider, p.provider_mismatch) == ("", None), key
    assert errors[("nodes", "list", "403")] >= 1
    assert "etcd_latency_provider_mismatch" not in {
        m.name for m in EtcdLatencyCollector(_store(targets)).collect()
    }
    # the class check does not need nodes
    main = targets["shoot--p1--a/etcd-main-0"].placement
    assert main is not None
    assert main.expected_class_missing is True


async def test_provider_check_off_reads_no_nodes_or_namespaces(kube: KubeEmulator) -> None:
    add_gce_seed(kube, seed_provider="metal", namespaces=SHOOTS)
    settings = {**GARDENER, "provider_check": False}
    async with kube_api(kube) as api, running_discovery(api, kubernetes=settings) as (_, pub):
        targets = await pub.until(lambda t: set(t) == MEMBERS)
    for target in targets.values():
        assert target.placement is not None
        assert target.placement.provider_mismatch is None
    assert kube.count_requests("/api/v1/nodes") == 0
    assert kube.count_requests("/api/v1/namespaces") == 0


def _store(targets: Mapping[str, Target]) -> Store:
    store = Store()
    for target in targets.values():
        store.upsert(target)
    return store


async def _diagnose(kube: KubeEmulator, *extra: str) -> tuple[int, str]:
    args = [
        "--discovery=kubernetes",
        f"--kubernetes.kubeconfig={kube.kubeconfig}",
        '--kubernetes.expected-storage-classes={"etcd-main":"gardener.cloud-fast"}',
        "--scrape.scheme=http",
        f"--scrape.port={free_port('127.0.2.1')}",  # nothing listens: the scrapes fail at once
        "--window=0.2s",
        "--since=1m",
        *extra,
    ]
    out = io.StringIO()
    code = await diagnose(
        load(DiagnoseSettings, "diagnose", args), out=out, progress=Progress(io.StringIO())
    )
    return code, out.getvalue()


async def test_diagnose_names_the_root_cause_under_the_verdict(kube: KubeEmulator) -> None:
    nodes = add_gce_seed(kube, seed_provider="metal", namespaces=SHOOTS)
    code, table = await _diagnose(kube)
    assert code == 1
    lines = table.splitlines()
    verdict = lines.index(
        next(line for line in lines if line.startswith("shoot--p1--a/etcd-main-0: hdd-storage: "))
    )
    cause = INCIDENT_CAUSE.format(node=nodes[0], zone="europe-west1-b")
    assert lines[verdict + 1] == f"  root cause: {cause}"
    assert any(
        line.startswith("  fix: set the Seed's provider type to gcp")
        and line.endswith("(docs/runbooks.md#etcdlatencyseedprovidermismatch)")
        for line in lines[verdict + 2 : verdict + 4]
    )
    events = next(i for i, line in enumerate(lines) if line.startswith("shoot--p1--b/etcd-events"))
    assert lines[events + 1].startswith("  root cause: seed provider type `metal` but node ")
    assert "was never created" not in lines[events + 1]  # nothing is expected of etcd-events


async def test_diagnose_json_of_the_healthy_seed_has_no_root_cause(kube: KubeEmulator) -> None:
    add_gce_seed(kube, seed_provider="gcp", namespaces=SHOOTS)
    _code, text = await _diagnose(kube, "--output=json")
    doc = json.loads(text)
    assert len(doc["etcds"]) == len(MEMBERS)
    for etcd in doc["etcds"]:
        assert etcd["root_cause"] is None, etcd["key"]
        placement = etcd["placement"]
        assert (placement["namespace_provider"], placement["node_provider"]) == ("gcp", "gcp")
        assert placement["provider_mismatch"] is False
        assert placement["node"] in {gce_node_name(i) for i in range(3)}


async def test_status_page_shows_the_root_cause(kube: KubeEmulator) -> None:
    add_gce_seed(kube, seed_provider="metal", namespaces=SHOOTS)
    async with kube_api(kube) as api, running_discovery(api, kubernetes=GARDENER) as (_, pub):
        targets = await pub.until(known)
    page = render_page(live_reports(_store(targets), now=0.0), now=0.0, ready=True)
    assert page.count('<span class="cause">root cause: seed provider type `metal`') == len(MEMBERS)
    assert page.count("StorageClass gardener.cloud-fast was never created") == len(SHOOTS)


async def test_nodes_and_shoot_namespaces_deserialise(kube: KubeEmulator) -> None:
    """The emulated Node and Namespace are schema-complete for the client's models."""
    nodes = add_gce_seed(kube, seed_provider="metal", namespaces=SHOOTS)
    conf = kclient.Configuration()
    await kconfig.load_kube_config(
        config_file=str(kube.kubeconfig), client_configuration=conf, persist_config=False
    )
    async with kclient.ApiClient(configuration=conf) as api:
        core = kclient.CoreV1Api(api)
        listed = await core.list_node()
        assert [n.metadata.name for n in listed.items] == nodes
        assert listed.items[0].spec.provider_id.startswith("gce://seed-project/")
        ns = await core.read_namespace(SHOOTS[0])
        assert ns.metadata.labels["seed.gardener.cloud/provider"] == "metal"
        assert ns.metadata.labels["gardener.cloud/role"] == "shoot"
