"""A Gardener seed in a few calls: storage classes, etcd members with their volumes, Etcds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.kube import objects

if TYPE_CHECKING:
    from tests.kube.server import KubeEmulator

FAST = "gardener.cloud-fast"
STANDARD = "standard"

# name → (provisioner, parameters, default)
CLASSES: dict[str, tuple[str, dict[str, str], bool]] = {
    FAST: ("pd.csi.storage.gke.io", {"type": "pd-ssd"}, False),
    STANDARD: ("kubernetes.io/gce-pd", {"type": "pd-standard"}, True),
    "premium": ("disk.csi.azure.com", {"skuName": "Premium_LRS"}, False),
    "local": ("rancher.io/local-path", {}, False),
}


def add_classes(emu: KubeEmulator) -> None:
    """The seed's StorageClasses; `standard` (HDD) is the cluster default."""
    for name, (provisioner, params, default) in CLASSES.items():
        sc = objects.storage_class(
            name=name, provisioner=provisioner, parameters=params, default=default
        )
        emu.add("storageclasses", sc)


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
) -> str:
    """An etcd pod with its PVC (class `storage_class`; None = unset) and PV (bound on
    `bound_class`, default: the claim's class or the cluster default). Returns the pod name."""
    pod = f"{etcd}-{ordinal}"
    claim = f"{etcd}-{etcd}-{ordinal}"
    volume = f"pv-{namespace}-{claim}"
    actual = bound_class or storage_class or STANDARD
    emu.add(
        "pods",
        objects.etcd_pod(
            namespace=namespace, name=pod, etcd=etcd, pod_ip=pod_ip, claim=claim, ready=ready
        ),
    )
    emu.add(
        "persistentvolumeclaims",
        objects.pvc(namespace=namespace, name=claim, volume=volume, storage_class=storage_class),
    )
    driver = CLASSES.get(actual, ("csi.example.com", {}, False))[0]
    emu.add(
        "persistentvolumes",
        objects.pv(
            name=volume, claim_namespace=namespace, claim=claim, storage_class=actual, driver=driver
        ),
    )
    return pod


def add_etcd(emu: KubeEmulator, *, namespace: str, name: str, storage_class: str | None) -> None:
    """The druid Etcd resource that names the expected StorageClass."""
    emu.add(
        "etcds", objects.etcd_resource(namespace=namespace, name=name, storage_class=storage_class)
    )


# (namespace, etcd) → (PVC storageClassName or None for unset, Etcd spec.storageClass or None)
THREE_SHOOTS: dict[tuple[str, str], tuple[str | None, str | None]] = {
    ("shoot--p1--a", "etcd-main"): (FAST, FAST),
    ("shoot--p1--a", "etcd-events"): (None, ""),
    ("shoot--p1--b", "etcd-main"): (FAST, FAST),
    ("shoot--p1--b", "etcd-events"): (FAST, ""),
    # the incident: the Etcd names the fast class, the claim was created without one
    ("shoot--p2--c", "etcd-main"): (None, FAST),
    ("shoot--p2--c", "etcd-events"): (STANDARD, ""),
}


def add_three_shoots(
    emu: KubeEmulator, *, pod_ips: dict[tuple[str, str], str] | None = None
) -> None:
    """Three shoot namespaces, each with etcd-main and etcd-events, per THREE_SHOOTS."""
    add_classes(emu)
    for i, ((ns, etcd), (claim_class, etcd_class)) in enumerate(THREE_SHOOTS.items()):
        ip = (pod_ips or {}).get((ns, etcd), f"127.0.1.{i + 1}")
        add_member(emu, namespace=ns, etcd=etcd, pod_ip=ip, storage_class=claim_class)
        add_etcd(emu, namespace=ns, name=etcd, storage_class=etcd_class)
