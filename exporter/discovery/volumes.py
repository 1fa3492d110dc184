"""Pod → PVC → PV → StorageClass, and the Etcd resource's expected class. Pure.

The caches are the informers' dictionaries (kept current by watches); `VolumeResolver` only
reads them. The StorageClass of a claim is, in order: the claim's `storageClassName`; when that
is unset, the bound PV's class; when that is unset too, the cluster's default class (annotation
`storageclass.kubernetes.io/is-default-class: "true"`) — exactly how an etcd whose Etcd resource
named no class ended up on the default HDD class in the incident this exporter exists for. An
explicitly empty `storageClassName` means "no class" and stays empty.

The expected class keeps the Etcd resource's absent and `""` apart (see `expected_class`):
`""` is Gardener's way to put etcd-events on the cluster's default class on purpose, while an
absent field means nobody declared a class, and the configured expectation for the role applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.discovery.disk_budget import budget_fields, parse_capacity
from exporter.discovery.disk_class import classify
from exporter.discovery.etcd_resource import EtcdInfo
from exporter.kube.objects import JSON, as_dict
from exporter.model import Volume

DEFAULT_CLASS_ANNOTATIONS: tuple[str, ...] = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


@dataclass(frozen=True, slots=True)
class ClaimInfo:
    """A PVC: its class (None when unset) and bound volume."""

    namespace: str
    name: str
    storage_class: str | None
    volume_name: str


@dataclass(frozen=True, slots=True)
class PVInfo:
    """A PV: its class, CSI driver (the provisioner when the class is gone), the cloud's name of
    its disk (`volume_handle`) and its capacity in bytes (None when absent or malformed)."""

    name: str
    storage_class: str
    driver: str
    handle: str = ""
    capacity_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class ClassInfo:
    """A StorageClass."""

    name: str
    provisioner: str
    parameters: tuple[tuple[str, str], ...]
    default: bool


def trim_claim(raw: JSON) -> ClaimInfo:
    """PVC JSON → ClaimInfo."""
    meta, spec = as_dict(raw.get("metadata")), as_dict(raw.get("spec"))
    sc = spec.get("storageClassName")
    return ClaimInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        storage_class=None if sc is None else str(sc),
        volume_name=str(spec.get("volumeName") or ""),
    )


# In-tree volume sources and the field naming the cloud's disk (a PV provisioned by an in-tree
# class keeps this shape under CSI migration; its disk is the same).
IN_TREE_HANDLES: tuple[tuple[str, str], ...] = (
    ("gcePersistentDisk", "pdName"),
    ("awsElasticBlockStore", "volumeID"),
    ("azureDisk", "diskName"),
    ("cinder", "volumeID"),
)


def volume_handle(spec: JSON) -> str:
    """The cloud's name of a PV's disk: the CSI `volumeHandle`, else the in-tree disk name
    (IN_TREE_HANDLES); "" if none."""
    handle = as_dict(spec.get("csi")).get("volumeHandle")
    if handle:
        return str(handle)
    for source, field_name in IN_TREE_HANDLES:
        name = as_dict(spec.get(source)).get(field_name)
        if name:
            return str(name)
    return ""


def trim_pv(raw: JSON) -> PVInfo:
    """PV JSON → PVInfo."""
    spec = as_dict(raw.get("spec"))
    return PVInfo(
        name=str(as_dict(raw.get("metadata")).get("name", "")),
        storage_class=str(spec.get("storageClassName") or ""),
        driver=str(as_dict(spec.get("csi")).get("driver") or ""),
        handle=volume_handle(spec),
        capacity_bytes=parse_capacity(str(as_dict(spec.get("capacity")).get("storage") or "")),
    )


def trim_class(raw: JSON) -> ClassInfo:
    """StorageClass JSON → ClassInfo."""
    meta = as_dict(raw.get("metadata"))
    annotations = as_dict(meta.get("annotations"))
    return ClassInfo(
        name=str(meta.get("name", "")),
        provisioner=str(raw.get("provisioner") or ""),
        parameters=tuple(
            sorted((str(k), str(v)) for k, v in as_dict(raw.get("parameters")).items())
        ),
        default=any(
            str(annotations.get(a, "")).lower() == "true" for a in DEFAULT_CLASS_ANNOTATIONS
        ),
    )


@dataclass(frozen=True, slots=True)
class VolumeResolver:
    """Reads the caches (keyed `namespace/name` for namespaced objects, `name` otherwise)."""

    claims: Mapping[str, ClaimInfo]
    volumes: Mapping[str, PVInfo]
    classes: Mapping[str, ClassInfo]
    etcds: Mapping[str, EtcdInfo]
    overrides: Mapping[str, str]
    expected: Mapping[str, str]  # etcd role → class, when no Etcd resource says

    def default_class(self) -> str:
        """Name of the cluster's default StorageClass ("" if none; the newest name if several)."""
        defaults = sorted(c.name for c in self.classes.values() if c.default)
        return defaults[-1] if defaults else ""

    def expected_class(self, namespace: str, etcd: str) -> tuple[str, str]:
        """(expected class, where it came from): the class the Etcd resource names ("etcd");
        for its `""`, the cluster's default class ("default-class"); when it says nothing (field
        absent, or no Etcd resource), the configured expectation for the role ("config"); else
        ("", "")."""
        info = self.etcds.get(f"{namespace}/{etcd}")
        declared = info.storage_class if info is not None else None
        if declared:
            return declared, "etcd"
        if declared == "":
            return self.default_class(), "default-class"
        configured = self.expected.get(etcd, "")
        return configured, "config" if configured else ""

    def resolve(self, *, namespace: str, claim: str, etcd: str) -> Volume:
        """The Volume labels of a pod's data claim."""
        expected, expected_from = self.expected_class(namespace, etcd)
        pvc = self.claims.get(f"{namespace}/{claim}") if claim else None
        if pvc is None:
            return Volume(pvc=claim, expected_storage_class=expected, expected_from=expected_from)
        pv = self.volumes.get(pvc.volume_name) if pvc.volume_name else None
        name = pvc.storage_class
        if name is None:
            name = pv.storage_class if pv and pv.storage_class else self.default_class()
        sc = self.classes.get(name) if name else None
        provisioner = sc.provisioner if sc else (pv.driver if pv else "")
        parameters = dict(sc.parameters) if sc else {}
        disk_type, disk_class = classify(
            provisioner=provisioner,
            parameters=parameters,
            class_name=name,
            overrides=self.overrides,
        )
        budget = budget_fields(
            provisioner=provisioner,
            parameters=parameters,
            capacity_bytes=pv.capacity_bytes if pv else None,
        )
        return Volume(
            pvc=pvc.name,
            pv=pvc.volume_name,
            storage_class=name,
            provisioner=provisioner,
            disk_type=disk_type,
            disk_class=disk_class,
            expected_storage_class=expected,
            expected_from=expected_from,
            volume_handle=pv.handle if pv else "",
            **budget,
        )
