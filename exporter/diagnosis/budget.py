"""A volume's size and documented write budget in words, for `diagnose` and the status page. Pure.

The numbers come from discovery (exporter/discovery/disk_budget.py); this module only says them
and holds them against etcd's hardware guide (about 50 sequential IOPS, 500 for heavily loaded
clusters: https://etcd.io/docs/v3.5/op-guide/hardware/).
"""

from __future__ import annotations

from exporter import metrics as m
from exporter.model import GIB, Volume


def size_text(capacity_bytes: int) -> str:
    """`25 GiB`, `1.5 GiB`, `512 MiB`: binary units, as PVs are usually sized."""
    if capacity_bytes >= GIB:
        return f"{capacity_bytes / GIB:,.4g} GiB"
    return f"{capacity_bytes / 1024**2:,.4g} MiB"


def iops_text(iops: float) -> str:
    """`37.5`, `6,750`: a decimal only where it matters."""
    return f"{iops:,.0f}" if iops >= 100 else f"{iops:g}"


def against_etcd(iops: float) -> str:
    """How a budget compares with what etcd asks for ("" when it is enough for heavy load)."""
    if iops < m.ETCD_IOPS_FLOOR:
        return f"below etcd's {m.ETCD_IOPS_FLOOR}"
    if iops < m.ETCD_IOPS_HEAVY_LOAD:
        return f"below etcd's {m.ETCD_IOPS_HEAVY_LOAD} for heavy load"
    return ""


def budget_line(volume: Volume) -> str | None:
    """E.g. "25 GiB: ~37.5 write IOPS expected (GCE pd-standard: 1.5 write IOPS per GiB),
    below etcd's 50"; None when neither the size nor a budget is known."""
    if volume.capacity_bytes is None and volume.expected_write_iops is None:
        return None
    size = size_text(volume.capacity_bytes) if volume.capacity_bytes is not None else "size unknown"
    if volume.expected_write_iops is None:
        kind = volume.disk_type or volume.storage_class or "this disk"
        return f"{size}: no documented write IOPS for {kind}"
    iops = volume.expected_write_iops
    line = f"{size}: ~{iops_text(iops)} write IOPS expected"
    line += f" ({volume.iops_basis})" if volume.iops_basis else ""
    judgement = against_etcd(iops)
    return f"{line}, {judgement}" if judgement else line
