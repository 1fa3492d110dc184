"""A Gardener seed in a few calls: storage classes, etcd members with their volumes, Etcds, and
each namespace's etcd PKI Secrets (hash-suffixed names, see objects.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support import pki
from tests.support.kube import objects
from tests.support.kube.objects import EtcdSecrets, etcd_secret_names

if TYPE_CHECKING:
    from tests.support.kube.server import KubeEmulator

FAST = "gardener.cloud-fast"
STANDARD = "standard"

# name → (provisioner, parameters, default)
CLASSES: dict[str, tuple[str, dict[str, str], bool]] = {
    FAST: ("pd.csi.storage.gke.io", {"type": "pd-ssd"}, False),
    STANDARD: ("kubernetes.io/gce-pd", {"type": "pd-standard"}, True),
    "premium": ("disk.csi.azure.com", {"skuName": "Premium_LRS"}, False),
    "local": ("rancher.io/local-path", {}, False),
}


# Gardener's default volume sizes of the two etcds (gardenlet's etcd component)
CAPACITY: dict[str, str] = {"etcd-main": "25Gi", "etcd-events": "10Gi"}


def add_classes(emu: KubeEmulator, *, without: Collection[str] = ()) -> None:
    """The seed's StorageClasses, except those in `without`; `standard` (HDD) is the cluster
    default."""
    for name, (provisioner, params, default) in CLASSES.items():
        if name in without:
            continue
        sc = objects.storage_class(
            name=name, provisioner=provisioner, parameters=params, default=default
        )
        emu.add("storageclasses", sc)


@dataclass(frozen=True, slots=True)
class ShootPEM:
    """The PEM texts a namespace's etcd PKI Secrets hold."""

    client_cert: str
    client_key: str
    bundle: str  # bundle.crt: the CA certificate(s) in use
    ca_cert: str
    ca_key: str  # the CA's private key, in ca-etcd-<hash> only
    server_cert: str
    server_key: str

    @classmethod
    def of(cls, *, client: pki.CertPair, server: pki.CertPair, ca: pki.CA, bundle: str) -> ShootPEM:
        """From tests/support/pki.py's files."""
        return cls(
            client_cert=client.cert_pem,
            client_key=client.key_pem,
            bundle=bundle,
            ca_cert=ca.cert_pem,
            ca_key=ca.key_pem,
            server_cert=server.cert_pem,
            server_key=server.key_pem,
        )


@cache
def default_pem() -> ShootPEM:
    """One real (openssl-made) PKI per test process, shared by namespaces that need no own one."""
    with tempfile.TemporaryDirectory(prefix="emu-pki-") as tmp:
        ca = pki.make_ca(Path(tmp) / "ca")
        server = pki.issue_server(ca, Path(tmp) / "srv", etcd="etcd-main", namespace="shoot--x--y")
        client = pki.issue_client(ca, Path(tmp) / "cli")
        return ShootPEM.of(client=client, server=server, ca=ca, bundle=pki.bundle(ca))


def add_client_secret(
    emu: KubeEmulator, *, namespace: str, name: str, pem: ShootPEM | None = None
) -> None:
    """`etcd-client-<hash>` (kubernetes.io/tls, tls.crt/tls.key only)."""
    pem = pem or default_pem()
    emu.add(
        "secrets",
        objects.tls_secret(
            namespace=namespace, name=name, cert_pem=pem.client_cert, key_pem=pem.client_key
        ),
    )


def add_pki(
    emu: KubeEmulator,
    *,
    namespace: str,
    names: EtcdSecrets | None = None,
    pem: ShootPEM | None = None,
) -> EtcdSecrets:
    """The namespace's etcd Secrets: client, CA bundle, CA (with its key), server and the backup
    credentials. Returns their names."""
    names = names or etcd_secret_names(namespace)
    pem = pem or default_pem()
    add_client_secret(emu, namespace=namespace, name=names.client, pem=pem)
    ns = namespace
    emu.add(
        "secrets", objects.bundle_secret(namespace=ns, name=names.ca_bundle, bundle_pem=pem.bundle)
    )
    emu.add(
        "secrets",
        objects.ca_secret(namespace=ns, name=names.ca, cert_pem=pem.ca_cert, key_pem=pem.ca_key),
    )
    emu.add(
        "secrets",
        objects.tls_secret(
            namespace=ns, name=names.server, cert_pem=pem.server_cert, key_pem=pem.server_key,
            config_name="etcd-server-cr",
        ),
    )  # fmt: skip
    emu.add(
        "secrets",
        objects.secret(namespace=ns, name=names.backup, data={"bucketName": "b", "secret": "s"}),
    )
    return names


def set_client_ref(emu: KubeEmulator, *, namespace: str, etcd: str, client: str) -> None:
    """Gardener's rotation step: the Etcd's clientTLSSecretRef (client and backup) names
    `client`."""

    def change(obj: objects.JSON) -> None:
        obj["spec"]["etcd"]["clientUrlTls"]["clientTLSSecretRef"]["name"] = client
        obj["spec"]["backup"]["tls"]["clientTLSSecretRef"]["name"] = client

    emu.store.modify("etcds", (namespace, etcd), change)


def set_storage_class(emu: KubeEmulator, *, namespace: str, etcd: str, value: str | None) -> None:
    """Set (a name or `""`) or remove (None) the Etcd's spec.storageClass."""

    def change(obj: objects.JSON) -> None:
        if value is None:
            obj["spec"].pop("storageClass", None)
        else:
            obj["spec"]["storageClass"] = value

    emu.store.modify("etcds", (namespace, etcd), change)


def add_member(
    emu: KubeEmulator,
    *,
    namespace: str,
    etcd: str,
    pod_ip: str,
    ordinal: int = 0,
    storage_class: str | None = STANDARD,
    bound_class: str | None = None,
    ready: bool = True,
    secrets: EtcdSecrets | None = None,
    node: str = "node-1",
) -> str:
    """An etcd pod on `node` with its PVC (class `storage_class`; None = unset) and PV (bound on
    `bound_class`, default: the claim's class or the cluster default); its TLS volumes name
    `secrets` (default: the namespace's generation 0). Returns the pod name."""
    pod = f"{etcd}-{ordinal}"
    claim = objects.claim_name(etcd, ordinal)
    volume = f"pv-{namespace}-{claim}"
    actual = bound_class or storage_class or STANDARD
    emu.add(
        "pods",
        objects.etcd_pod(
            namespace=namespace, name=pod, etcd=etcd, pod_ip=pod_ip, claim=claim, ready=ready,
            secrets=secrets, node=node,
        ),
    )  # fmt: skip
    capacity = CAPACITY.get(etcd, "10Gi")
    claim_obj = objects.pvc(
        namespace=namespace, name=claim, volume=volume, storage_class=storage_class,
        capacity=capacity,
    )  # fmt: skip
    emu.add("persistentvolumeclaims", claim_obj)
    driver = CLASSES.get(actual, ("csi.example.com", {}, False))[0]
    emu.add(
        "persistentvolumes",
        objects.pv(
            name=volume, claim_namespace=namespace, claim=claim, storage_class=actual,
            driver=driver, claim_uid=claim_obj["metadata"]["uid"], capacity=capacity,
        ),
    )  # fmt: skip
    return pod


def add_etcd(
    emu: KubeEmulator,
    *,
    namespace: str,
    name: str,
    storage_class: str | None,
    secrets: EtcdSecrets | None = None,
    client_port: int = 2379,
) -> None:
    """The druid Etcd resource: the expected StorageClass (None: absent), the TLS Secrets
    (default: the namespace's generation 0) and the client port."""
    emu.add(
        "etcds",
        objects.etcd_resource(
            namespace=namespace, name=name, storage_class=storage_class, secrets=secrets,
            client_port=client_port,
        ),
    )  # fmt: skip


# (namespace, etcd) → (PVC storageClassName or None for unset, Etcd spec.storageClass or None)
THREE_SHOOTS: dict[tuple[str, str], tuple[str | None, str | None]] = {
    ("shoot--p1--a", "etcd-main"): (FAST, FAST),
    ("shoot--p1--a", "etcd-events"): (STANDARD, ""),  # admission gave the claim the default
    ("shoot--p1--b", "etcd-main"): (FAST, FAST),
    ("shoot--p1--b", "etcd-events"): (FAST, ""),
    # after the incident's fix: the Etcd names the fast class (a new Etcd: spec.storageClass is
    # immutable), but the claim made before stays on the default class it was admitted with
    ("shoot--p2--c", "etcd-main"): (STANDARD, FAST),
    ("shoot--p2--c", "etcd-events"): (STANDARD, ""),
}


def add_three_shoots(
    emu: KubeEmulator, *, pod_ips: dict[tuple[str, str], str] | None = None
) -> None:
    """Three shoot namespaces, each with etcd-main and etcd-events, per THREE_SHOOTS, and each
    namespace's etcd Secrets."""
    add_classes(emu)
    for ns in dict.fromkeys(ns for ns, _ in THREE_SHOOTS):
        add_pki(emu, namespace=ns)
    for i, ((ns, etcd), (claim_class, etcd_class)) in enumerate(THREE_SHOOTS.items()):
        ip = (pod_ips or {}).get((ns, etcd), f"127.0.1.{i + 1}")
        add_member(emu, namespace=ns, etcd=etcd, pod_ip=ip, storage_class=claim_class)
        add_etcd(emu, namespace=ns, name=etcd, storage_class=etcd_class)


# -- the seed incident: a GCE-noded seed whose Seed says another provider type ----------------

GCE_PROJECT = "seed-project"
GCE_ZONES = ("europe-west1-b", "europe-west1-c", "europe-west1-d")


def gce_node_name(i: int) -> str:
    """A seed worker's node name as machine-controller-manager names it on GCP."""
    return f"shoot--garden--seed-worker-z1-7f9c4-{i:05d}"


def add_gce_nodes(emu: KubeEmulator, count: int = 3) -> list[str]:
    """The seed's nodes, GCE instances (`gce://<project>/<zone>/<instance>`); returns names."""
    names = []
    for i in range(count):
        name, zone = gce_node_name(i), GCE_ZONES[i % len(GCE_ZONES)]
        emu.add(
            "nodes",
            objects.node(
                name=name, provider_id=f"gce://{GCE_PROJECT}/{zone}/{name}", zone=zone,
                region="europe-west1", instance_type="n2-standard-8",
            ),
        )  # fmt: skip
        names.append(name)
    return names


def add_shoot_namespace(emu: KubeEmulator, namespace: str, *, seed_provider: str) -> None:
    """A shoot namespace as gardenlet labels it, the Seed's provider type in
    `seed.gardener.cloud/provider`."""
    emu.add("namespaces", objects.shoot_namespace(namespace, seed_provider=seed_provider))


def add_gce_seed(
    emu: KubeEmulator,
    *,
    seed_provider: str,
    namespaces: Collection[str],
    pod_ips: Mapping[tuple[str, str], str] | None = None,
) -> list[str]:
    """A seed whose nodes run on GCE, with etcd-main and etcd-events in each of `namespaces`.

    `seed_provider="gcp"` is the healthy seed: the GCP extension's seedprovider webhook handled
    the namespaces, its chart created `gardener.cloud-fast`, etcd-main's `Etcd` names that class
    and its PVC is on it, etcd-events' says `""` and its PVC is on the default class. Any other
    type (the incident: `metal`) is the seed whose extension never ran: no `gardener.cloud-fast`,
    `Etcd` resources without `spec.storageClass`, every PVC on the default `standard` (HDD).
    Returns the node names; member i of the seed runs on node i modulo their count.
    """
    healthy = seed_provider == "gcp"
    add_classes(emu, without=() if healthy else (FAST,))
    nodes = add_gce_nodes(emu)
    members = [(ns, etcd) for ns in namespaces for etcd in ("etcd-main", "etcd-events")]
    for ns in namespaces:
        add_shoot_namespace(emu, ns, seed_provider=seed_provider)
        add_pki(emu, namespace=ns)
    for i, (ns, etcd) in enumerate(members):
        main = etcd == "etcd-main"
        claim_class = FAST if healthy and main else STANDARD  # admission fills in the default
        etcd_class = (FAST if main else "") if healthy else None
        ip = (pod_ips or {}).get((ns, etcd), f"127.0.2.{i + 1}")
        add_member(
            emu, namespace=ns, etcd=etcd, pod_ip=ip, storage_class=claim_class,
            node=nodes[i % len(nodes)],
        )  # fmt: skip
        add_etcd(emu, namespace=ns, name=etcd, storage_class=etcd_class)
    return nodes
