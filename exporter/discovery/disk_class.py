"""Disk class of a StorageClass: `ssd`, `hdd` or `unknown`, from provisioner and parameters.

Pure except `load_overrides_file`. The table follows the cloud providers' documented types
(parameter `type`, or for Azure `skuName`/`storageaccounttype`):

- GCE `kubernetes.io/gce-pd`, `pd.csi.storage.gke.io`: pd-ssd, pd-balanced, pd-extreme,
  hyperdisk-* → ssd; pd-standard → hdd; unset → pd-standard → hdd.
- AWS `kubernetes.io/aws-ebs`, `ebs.csi.aws.com`: gp2, gp3, io1, io2 → ssd; st1, sc1, standard
  → hdd; unset → gp2 / gp3 → ssd.
- Azure `kubernetes.io/azure-disk`, `disk.csi.azure.com`: *SSD*, Premium*, Ultra* → ssd;
  Standard_LRS, Standard_ZRS → hdd; unset → unknown.

Both GCE provisioners default to `pd-standard` (the in-tree plugin and the PD CSI driver's
parameter table), the EBS plugin to gp2 and the EBS CSI driver to gp3. The Azure default changed
between driver versions (Standard_LRS, later StandardSSD_LRS), so an Azure class without a SKU is
`unknown`. User overrides map a StorageClass name or a provisioner to a class; the name wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import yaml

DiskClass = Literal["ssd", "hdd", "unknown"]
DISK_CLASSES: frozenset[str] = frozenset({"ssd", "hdd", "unknown"})

GCE = frozenset({"kubernetes.io/gce-pd", "pd.csi.storage.gke.io"})
AWS = frozenset({"kubernetes.io/aws-ebs", "ebs.csi.aws.com"})
AZURE = frozenset({"kubernetes.io/azure-disk", "disk.csi.azure.com"})

# Parameter keys that carry the disk type, in order of preference.
TYPE_PARAMETERS: tuple[str, ...] = ("type", "skuName", "storageaccounttype", "storageAccountType")

_DEFAULT_TYPE: dict[str, str] = {
    "kubernetes.io/gce-pd": "pd-standard",
    "pd.csi.storage.gke.io": "pd-standard",
    "kubernetes.io/aws-ebs": "gp2",
    "ebs.csi.aws.com": "gp3",
}


def disk_type(parameters: Mapping[str, str]) -> str:
    """The disk type named by a StorageClass's parameters ("" when none is named)."""
    for key in TYPE_PARAMETERS:
        value = parameters.get(key)
        if value:
            return value
    lowered = {k.lower(): v for k, v in parameters.items()}
    return lowered.get("skuname") or lowered.get("storageaccounttype") or ""


def effective_disk_type(provisioner: str, parameters: Mapping[str, str]) -> str:
    """The disk type a class provisions: the one its parameters name, else its provisioner's
    default (pd-standard, gp2, gp3; "" where the default is not fixed)."""
    return disk_type(parameters) or _DEFAULT_TYPE.get(provisioner, "")


def _gce(kind: str) -> DiskClass:
    if kind == "pd-standard":
        return "hdd"
    if kind in ("pd-ssd", "pd-balanced", "pd-extreme") or kind.startswith("hyperdisk-"):
        return "ssd"
    return "unknown"


def _aws(kind: str) -> DiskClass:
    if kind in ("gp2", "gp3", "io1", "io2"):
        return "ssd"
    if kind in ("st1", "sc1", "standard"):
        return "hdd"
    return "unknown"


def _azure(kind: str) -> DiskClass:
    upper = kind.upper()
    if "SSD" in upper or upper.startswith(("PREMIUM", "ULTRA")):
        return "ssd"
    if upper in ("STANDARD_LRS", "STANDARD_ZRS"):
        return "hdd"
    return "unknown"


def classify(
    *,
    provisioner: str,
    parameters: Mapping[str, str],
    class_name: str = "",
    overrides: Mapping[str, str] | None = None,
) -> tuple[str, DiskClass]:
    """(disk_type, disk_class) of a StorageClass; an override by name, then provisioner, wins."""
    kind = disk_type(parameters)
    if overrides:
        for key in (class_name, provisioner):
            chosen = overrides.get(key) if key else None
            if chosen in DISK_CLASSES:
                return kind, chosen  # type: ignore[return-value]
    effective = effective_disk_type(provisioner, parameters)
    if provisioner in GCE:
        return kind, _gce(effective)
    if provisioner in AWS:
        return kind, _aws(effective)
    if provisioner in AZURE:
        return kind, _azure(effective) if effective else "unknown"
    return kind, "unknown"


def load_overrides_file(path: str) -> dict[str, str]:
    """Read a YAML mapping of StorageClass names or provisioners to ssd|hdd|unknown.

    Raises ValueError naming every bad entry (the caller reports it as a configuration error).
    """
    with open(path, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of class or provisioner to ssd|hdd|unknown")
    bad = [f"{k!r}: {v!r}" for k, v in doc.items() if str(v) not in DISK_CLASSES]
    if bad:
        raise ValueError(f"{path}: values must be ssd, hdd or unknown: " + ", ".join(bad))
    return {str(k): str(v) for k, v in doc.items()}
