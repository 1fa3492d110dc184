"""A volume's identity and write budget: its cloud handle, capacity and expected write IOPS. Pure.

etcd fsyncs its WAL on every commit; its hardware guide asks for about 50 sequential IOPS, and
500 for heavily loaded clusters (https://etcd.io/docs/v3.5/op-guide/hardware/, "Disks"). Where a
cloud publishes what a disk type delivers for its size, `expected_write_iops` works it out from
the StorageClass (provisioner, disk type, parameters) and the PV's capacity:

- GCE Persistent Disk (https://cloud.google.com/compute/docs/disks/performance, "Performance
  limits", zonal): pd-standard 1.5 write IOPS per GiB, at most 15,000; pd-balanced 6 per GiB
  plus a baseline of 3,000, at most 80,000; pd-ssd 30 per GiB plus a baseline of 6,000, at most
  100,000 (the maxima are per VM and need large machine types). pd-extreme and hyperdisk-* are
  provisioned: the class's `provisioned-iops-on-create`, else unknown.
- AWS EBS (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-volume-types.html): gp2 3 IOPS
  per GiB, at least 100, at most 16,000 (the baseline; small volumes burst to 3,000 on credits,
  which run out under a steady load); gp3 the class's `iops`, else its baseline 3,000; io1/io2
  the class's `iops`, else `iopsPerGB` × GiB (raised to 100 with
  `allowAutoIOPSPerGBIncrease: "true"`, at most 64,000), else unknown; `standard` (magnetic)
  about 100. st1 and sc1 are left out: their budget is throughput (MiB/s per TiB with burst
  credits) for large sequential I/O, and their IOPS maxima count 1 MiB operations, which says
  nothing about etcd's small fsyncs; they are HDD, which disk_class already flags.
- Azure managed disks (https://learn.microsoft.com/azure/virtual-machines/disks-scalability-targets):
  Premium SSD (Premium_LRS, Premium_ZRS) by size tier, the smallest tier that holds the disk
  (P1–P80); any type with the class's `DiskIOPSReadWrite` (Ultra, Premium SSD v2): that value.
  Standard SSD and Standard HDD publish "up to" figures, not a budget: left out.

Everything else (other provisioners, unknown types, no capacity) has no expectation: None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypedDict

from kubernetes.utils import parse_quantity

from exporter.discovery.disk_class import AWS, AZURE, GCE, effective_disk_type
from exporter.model import GIB


@dataclass(frozen=True, slots=True)
class Budget:
    """The write IOPS a volume is expected to deliver, and the rule that says so."""

    write_iops: float
    basis: str  # e.g. "GCE pd-standard: 1.5 write IOPS per GiB"


def parse_capacity(text: str) -> int | None:
    """A PV's `spec.capacity.storage` (a Kubernetes quantity: `25Gi`, `10G`, `1.5Ti`) in bytes;
    None when absent or not a quantity (a bad value costs the capacity, never the volume)."""
    if not text:
        return None
    try:
        value: Decimal = parse_quantity(text)  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError):
        return None
    return int(value) if value.is_finite() and value >= 0 else None


# (per GiB, baseline, maximum) of the GCE types whose budget scales with size
_GCE_SCALED: Mapping[str, tuple[float, float, float]] = {
    "pd-standard": (1.5, 0, 15_000),
    "pd-balanced": (6, 3_000, 80_000),
    "pd-ssd": (30, 6_000, 100_000),
}
# Azure Premium SSD tiers: (tier, largest size in GiB, provisioned IOPS)
_AZURE_PREMIUM: tuple[tuple[str, int, int], ...] = (
    ("P1", 4, 120), ("P2", 8, 120), ("P3", 16, 120), ("P4", 32, 120), ("P6", 64, 240),
    ("P10", 128, 500), ("P15", 256, 1_100), ("P20", 512, 2_300), ("P30", 1_024, 5_000),
    ("P40", 2_048, 7_500), ("P50", 4_096, 7_500), ("P60", 8_192, 16_000),
    ("P70", 16_384, 18_000), ("P80", 32_767, 20_000),
)  # fmt: skip
_EBS_PROVISIONED_MAX = 64_000  # io1, io2


def _number(parameters: Mapping[str, str], key: str) -> float | None:
    """A numeric StorageClass parameter, looked up case-insensitively; None when absent or bad."""
    lowered = {k.lower(): v for k, v in parameters.items()}
    try:
        value = float(lowered.get(key.lower(), ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _gce(kind: str, gib: float, parameters: Mapping[str, str]) -> Budget | None:
    scaled = _GCE_SCALED.get(kind)
    if scaled is not None:
        per_gib, baseline, maximum = scaled
        iops = min(baseline + per_gib * gib, maximum)
        plus = f" plus {baseline:,.0f}" if baseline else ""
        return Budget(iops, f"GCE {kind}: {per_gib:g} write IOPS per GiB{plus}")
    provisioned = _number(parameters, "provisioned-iops-on-create")
    if provisioned is not None and (kind == "pd-extreme" or kind.startswith("hyperdisk-")):
        return Budget(provisioned, f"GCE {kind}: the class's provisioned-iops-on-create")
    return None


def _aws(kind: str, gib: float, parameters: Mapping[str, str]) -> Budget | None:
    if kind == "gp2":
        return Budget(min(max(3 * gib, 100), 16_000), "AWS gp2: 3 IOPS per GiB, 100 to 16,000")
    if kind == "standard":
        return Budget(100, "AWS magnetic: about 100 IOPS")
    iops = _number(parameters, "iops")
    if kind in ("gp3", "io1", "io2") and iops is not None:
        return Budget(iops, f"AWS {kind}: the class's iops")
    if kind == "gp3":
        return Budget(3_000, "AWS gp3: baseline 3,000 IOPS")
    per_gib = _number(parameters, "iopsPerGB")
    if kind in ("io1", "io2") and per_gib is not None:
        value = per_gib * gib
        if parameters.get("allowAutoIOPSPerGBIncrease", "").lower() == "true":
            value = max(value, 100)
        return Budget(min(value, _EBS_PROVISIONED_MAX), f"AWS {kind}: {per_gib:g} IOPS per GiB")
    return None


def _azure(kind: str, gib: float, parameters: Mapping[str, str]) -> Budget | None:
    provisioned = _number(parameters, "DiskIOPSReadWrite")
    if provisioned is not None:
        return Budget(provisioned, f"Azure {kind}: the class's DiskIOPSReadWrite")
    if kind.lower() not in ("premium_lrs", "premium_zrs"):
        return None
    for tier, size, iops in _AZURE_PREMIUM:
        if gib <= size:
            return Budget(iops, f"Azure Premium SSD {tier} (up to {size:,} GiB)")
    return None


class BudgetFields(TypedDict):
    """A volume's size and budget as `model.Volume`'s fields (`Volume(..., **fields)`)."""

    capacity_bytes: int | None
    expected_write_iops: float | None
    iops_basis: str


def budget_fields(
    *, provisioner: str, parameters: Mapping[str, str], capacity_bytes: int | None
) -> BudgetFields:
    """The `Volume` fields of a volume's size and its expected write IOPS (`expected_write_iops`),
    for every discovery (Kubernetes and static) alike: None and "" where nothing is documented."""
    budget = expected_write_iops(
        provisioner=provisioner, parameters=parameters, capacity_bytes=capacity_bytes
    )
    return BudgetFields(
        capacity_bytes=capacity_bytes,
        expected_write_iops=budget.write_iops if budget else None,
        iops_basis=budget.basis if budget else "",
    )


def expected_write_iops(
    *, provisioner: str, parameters: Mapping[str, str], capacity_bytes: int | None
) -> Budget | None:
    """The write IOPS the cloud documents for a volume of this class and size (module
    docstring); None where nothing is documented or the capacity is unknown."""
    if not capacity_bytes:
        return None
    gib = capacity_bytes / GIB
    kind = effective_disk_type(provisioner, parameters)
    if provisioner in GCE:
        return _gce(kind, gib, parameters)
    if provisioner in AWS:
        return _aws(kind, gib, parameters)
    if provisioner in AZURE and kind:
        return _azure(kind, gib, parameters)
    return None
