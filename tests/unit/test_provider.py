"""The seed provider check: providerID schemes, node and namespace trims, the two verdicts, and
the root cause they give a member's report."""

from __future__ import annotations

import pytest

from exporter.diagnosis.rootcause import root_cause
from exporter.discovery.provider import (
    KNOWN_TYPES,
    PROVIDER_LABEL,
    NodeInfo,
    NodeProvider,
    member_node,
    placement,
    provider_of,
    seed_provider,
    trim_namespace,
    trim_node,
)
from exporter.model import Identity, Placement, Target

GCE_ID = "gce://seed-project/europe-west1-b/shoot--garden--seed-worker-z1-0"


@pytest.mark.parametrize(
    ("provider_id", "provider"),
    [
        (GCE_ID, "gcp"),
        ("aws:///eu-west-1a/i-0123456789abcdef0", "aws"),
        (
            "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
            "virtualMachines/vm-0",
            "azure",
        ),
        ("openstack:///8d5c1c7a-1c5e-4c4b-9a0e-2f1d9f0b7d11", "openstack"),
        ("openstack://RegionOne/8d5c1c7a-1c5e-4c4b-9a0e-2f1d9f0b7d11", "openstack"),
        ("alicloud://cn-hangzhou.i-v98dklsmnxkkgiiil7", "alicloud"),
        ("cn-hangzhou.i-v98dklsmnxkkgiiil7", "alicloud"),
        ("metal://fra-equ01/00000000-0000-0000-0000-ac1f6b7aa6f4", "metal"),
        ("kind://docker/gardener-local/gardener-local-control-plane", "local"),
        ("GCE://p/z/n", "gcp"),  # the scheme's case does not matter
        ("hcloud://123456", ""),  # a cloud the table does not know
        ("vsphere://4204a1b2-0000-0000-0000-000000000000", ""),
        ("", ""),
        ("node-1", ""),
        ("://no-scheme", ""),
    ],
)
def test_provider_of_known_schemes(provider_id: str, provider: str) -> None:
    assert provider_of(provider_id) == provider


def test_trims_keep_name_provider_id_and_label_only() -> None:
    node = trim_node(
        {
            "metadata": {"name": "n-0", "labels": {"a": "b"}},
            "spec": {"providerID": GCE_ID, "podCIDR": "100.96.0.0/24"},
            "status": {"images": [{"names": ["x"]}]},
        }
    )
    assert node == NodeInfo("n-0", GCE_ID)
    ns = trim_namespace(
        {"metadata": {"name": "shoot--p--a", "labels": {PROVIDER_LABEL: "metal", "x": "y"}}}
    )
    assert (ns.name, ns.provider) == ("shoot--p--a", "metal")


@pytest.mark.parametrize(
    "raw",
    [{}, {"metadata": None, "spec": []}, {"metadata": {"name": 3}, "spec": {"providerID": 7}}],
)
def test_odd_objects_trim_to_empty_values(raw: dict[str, object]) -> None:
    assert trim_node(raw) == NodeInfo("", "")
    ns = trim_namespace({"metadata": {"name": "ns", "labels": {PROVIDER_LABEL: 1}}})
    assert ns.provider == ""


def nodes(*pairs: tuple[str, str]) -> dict[str, NodeInfo]:
    return {name: NodeInfo(name, pid) for name, pid in pairs}


def test_seed_provider_needs_agreement_among_known_nodes() -> None:
    gce = nodes(("a", "gce://p/z/a"), ("b", "gce://p/z/b"), ("c", ""))  # c: not initialised yet
    assert seed_provider(gce) == NodeProvider("gcp", "gce://p/z/a")
    mixed = nodes(("a", "gce://p/z/a"), ("b", "aws:///z/i-1"))
    assert seed_provider(mixed) is None
    assert seed_provider(nodes(("a", ""), ("b", "hcloud://1"))) is None
    assert seed_provider({}) is None


def test_member_node_first_then_the_seed() -> None:
    cache = nodes(("a", "gce://p/z/a"), ("b", "hcloud://1"))
    seed = seed_provider(cache)
    assert member_node("a", cache, seed) == NodeProvider("gcp", "gce://p/z/a", "a")
    # not scheduled yet, or a node the cache does not hold: what the seed's nodes say
    assert member_node("", cache, seed) == seed
    assert member_node("gone", cache, seed) == seed
    # its own node's provider is unknown: no verdict, whatever the other nodes say
    assert member_node("b", cache, seed) is None


GCP_NODE = NodeProvider("gcp", "gce://p/z/a", "a")
FAST = "gardener.cloud-fast"
CLASSES = {"standard", "premium"}


@pytest.mark.parametrize(
    ("namespace", "node", "mismatch"),
    [
        ("metal", GCP_NODE, True),  # the incident
        ("gcp", GCP_NODE, False),
        ("aws", GCP_NODE, True),
        ("", GCP_NODE, None),  # no label: not a Gardener shoot namespace
        ("stackit", GCP_NODE, None),  # a type the table cannot hold against a node
        ("metal", None, None),  # the node's provider is unknown
    ],
)
def test_provider_mismatch(
    namespace: str, node: NodeProvider | None, mismatch: bool | None
) -> None:
    p = placement(namespace_provider=namespace, node=node, expected_class="", classes=CLASSES)
    assert p.provider_mismatch is mismatch
    assert p.expected_class_missing is None  # nothing expected


@pytest.mark.parametrize(
    ("expected", "classes", "missing"),
    [
        (FAST, CLASSES, True),
        (FAST, CLASSES | {FAST}, False),
        ("", CLASSES, None),  # nothing expected
        (FAST, set(), None),  # no class at all in the cache: the list was denied, most likely
    ],
)
def test_expected_class_missing(expected: str, classes: set[str], missing: bool | None) -> None:
    p = placement(namespace_provider="", node=None, expected_class=expected, classes=classes)
    assert p.expected_class_missing is missing
    assert p.expected_storage_class == expected


def test_every_known_type_has_a_scheme() -> None:
    assert {"gcp", "aws", "azure", "openstack", "alicloud", "metal", "local"} == KNOWN_TYPES


def target(p: Placement | None, etcd: str = "etcd-main") -> Target:
    return Target(key="ns/pod", identity=Identity("ns", "p", "s", etcd, "pod"), placement=p)


def test_root_cause_of_the_incident_names_type_node_and_class() -> None:
    p = placement(namespace_provider="metal", node=GCP_NODE, expected_class=FAST, classes=CLASSES)
    cause = root_cause(target(p))
    assert cause is not None
    assert cause.reason == (
        "seed provider type `metal` but node a runs on gcp (`gce://p/z/a`): "
        "StorageClass gardener.cloud-fast was never created"
    )
    assert "set the Seed's provider type to gcp" in cause.remedy
    assert cause.remedy.endswith("(docs/runbooks.md#etcdlatencyseedprovidermismatch)")


def test_root_cause_from_the_seed_nodes_and_without_class() -> None:
    seed = NodeProvider("gcp", "gce://p/z/a")
    p = placement(namespace_provider="metal", node=seed, expected_class="", classes=CLASSES)
    cause = root_cause(target(p, "etcd-events"))
    assert cause is not None
    assert (
        cause.reason == "seed provider type `metal` but the seed's nodes run on gcp (`gce://p/z/a`)"
    )


def test_root_cause_of_a_missing_class_alone() -> None:
    p = placement(namespace_provider="gcp", node=GCP_NODE, expected_class=FAST, classes=CLASSES)
    cause = root_cause(target(p))
    assert cause is not None
    assert cause.reason == (
        "StorageClass gardener.cloud-fast, which etcd-main is expected on, does not exist in the "
        "cluster"
    )
    assert cause.remedy.endswith("(docs/runbooks.md#etcdlatencyexpectedclassmissing)")


@pytest.mark.parametrize(
    "p",
    [
        None,  # a static target
        Placement(),  # nothing known
        placement(namespace_provider="gcp", node=GCP_NODE, expected_class=FAST, classes={FAST}),
    ],
)
def test_no_root_cause_when_placement_shows_none(p: Placement | None) -> None:
    assert root_cause(target(p)) is None
