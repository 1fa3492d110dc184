"""The seed incident's root cause seen from inside the seed: provider type, expected class. Pure.

In a Gardener seed, every shoot namespace carries the seed's provider type in the label
`seed.gardener.cloud/provider` (gardener `pkg/gardenlet/operation/botanist/namespaces.go`,
`DeployControlPlaneNamespace`; a self-hosted shoot's own type). The provider extension's
*seedprovider* webhook, scoped to namespaces with its type in that label, is what writes
`spec.storageClass: gardener.cloud-fast` into etcd-main's `Etcd` resource, and the extension's
chart creates that StorageClass. In the incident this exporter exists for, the Seed's provider
type was `metal` while its nodes ran on GCE: the GCP extension never saw the namespaces, the class
was never created, the `Etcd` resources named no class, and the PVCs landed on the default HDD
class. Two facts show it:

- **provider mismatch**: the namespace says type X, the node the member runs on (its pod's
  `spec.nodeName`; while it has none, every node of the seed, when they all agree) runs on Y,
  read from the node's `spec.providerID` scheme (`PROVIDER_ID_SCHEMES`);
- **expected class missing**: the StorageClass the member is expected on (the `Etcd` resource's
  class, the default class for its `""`, or the configured expectation for its role: see
  `VolumeResolver.expected_class`) does not exist in the cluster.

No verdict (None, so no series) where a side is unknown: a namespace without the label, or with a
type this table cannot check; a node without a providerID or with a scheme not in the table; no
StorageClass at all in the cache (the list was denied, more likely than a cluster without any).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from exporter.kube.objects import JSON, as_dict
from exporter.model import Placement

PROVIDER_LABEL = "seed.gardener.cloud/provider"

# spec.providerID scheme → Gardener provider type (the extension's `type`), as each cloud's node
# controller writes it:
# - `gce://<project>/<zone>/<instance>`: kubernetes/cloud-provider-gcp (type `gcp`)
# - `aws:///<zone>/<instance-id>`: kubernetes/cloud-provider-aws (type `aws`)
# - `azure:///subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/…`:
#   kubernetes-sigs/cloud-provider-azure (type `azure`)
# - `openstack:///<instance-id>` (or `openstack://<region>/<id>`):
#   kubernetes/cloud-provider-openstack (type `openstack`)
# - `alicloud://<region>.<instance-id>`, also bare `<region>.<instance-id>`:
#   kubernetes/cloud-provider-alibaba-cloud `NodeFromProviderID` (type `alicloud`)
# - `metal://<partition>/<machine-id>`: metal-stack/metal-ccm
#   `pkg/resources/metal/machine.go` (gardener-extension-provider-metal, type `metal`)
# - `kind://<node-provider>/<cluster>/<node>`: kind's kubeadm config (`provider-id` kubelet
#   argument); Gardener's local setup runs its seed on kind (provider-local, type `local`)
PROVIDER_ID_SCHEMES: Mapping[str, str] = {
    "gce": "gcp",
    "aws": "aws",
    "azure": "azure",
    "openstack": "openstack",
    "alicloud": "alicloud",
    "metal": "metal",
    "kind": "local",
}
# The provider types a namespace may declare that this table can hold against a node: another
# type (an extension the table does not know) gives no verdict rather than a false mismatch.
KNOWN_TYPES: frozenset[str] = frozenset(PROVIDER_ID_SCHEMES.values())
# Alibaba Cloud's bare form: `cn-hangzhou.i-v98dklsmnxkkgiiil7`.
_ALICLOUD_BARE = re.compile(r"^[a-z]{2}(?:-[a-z0-9]+)+\.i-[a-z0-9]+$")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What is kept of a Node: its name and `spec.providerID` ("" when unset)."""

    name: str
    provider_id: str


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    """What is kept of a Namespace: its name and its `seed.gardener.cloud/provider` label."""

    name: str
    provider: str


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


def trim_node(raw: JSON) -> NodeInfo:
    """Node JSON → NodeInfo (a node's status, images and labels are not kept)."""
    return NodeInfo(
        name=_s(as_dict(raw.get("metadata")).get("name")),
        provider_id=_s(as_dict(raw.get("spec")).get("providerID")),
    )


def trim_namespace(raw: JSON) -> NamespaceInfo:
    """Namespace JSON → NamespaceInfo."""
    meta = as_dict(raw.get("metadata"))
    return NamespaceInfo(
        name=_s(meta.get("name")), provider=_s(as_dict(meta.get("labels")).get(PROVIDER_LABEL))
    )


def provider_of(provider_id: str) -> str:
    """The Gardener provider type a node runs on, from its providerID; "" when unknown."""
    scheme, sep, _rest = provider_id.partition("://")
    if sep:
        return PROVIDER_ID_SCHEMES.get(scheme.lower(), "")
    return "alicloud" if _ALICLOUD_BARE.match(provider_id) else ""


@dataclass(frozen=True, slots=True)
class NodeProvider:
    """The provider type some node(s) run on, and one providerID that says so."""

    provider: str
    provider_id: str
    node: str = ""  # the member's node; "" when the seed's nodes agreed


def seed_provider(nodes: Mapping[str, NodeInfo]) -> NodeProvider | None:
    """The type every node with a known providerID runs on, when they all agree; else None."""
    found: dict[str, str] = {}
    for node in sorted(nodes.values(), key=lambda n: n.name):
        provider = provider_of(node.provider_id)
        if provider:
            found.setdefault(provider, node.provider_id)
    if len(found) != 1:
        return None
    [(provider, provider_id)] = found.items()
    return NodeProvider(provider, provider_id)


def member_node(
    node_name: str, nodes: Mapping[str, NodeInfo], seed: NodeProvider | None
) -> NodeProvider | None:
    """The provider of the member's node; the seed's when the pod has no node yet or the node
    is not in the cache; None when the member's node has no recognised providerID."""
    node = nodes.get(node_name) if node_name else None
    if node is None:
        return seed
    provider = provider_of(node.provider_id)
    return NodeProvider(provider, node.provider_id, node.name) if provider else None


def placement(
    *,
    namespace_provider: str,
    node: NodeProvider | None,
    expected_class: str,
    classes: Collection[str],
) -> Placement:
    """The member's Placement (see the module docstring for when a verdict is None)."""
    mismatch: bool | None = None
    if namespace_provider in KNOWN_TYPES and node is not None:
        mismatch = namespace_provider != node.provider
    missing: bool | None = None
    if expected_class and classes:
        missing = expected_class not in classes
    return Placement(
        namespace_provider=namespace_provider,
        node_provider=node.provider if node is not None else "",
        node=node.node if node is not None else "",
        node_provider_id=node.provider_id if node is not None else "",
        provider_mismatch=mismatch,
        expected_storage_class=expected_class,
        expected_class_missing=missing,
    )
