"""The lines under a member's verdict (exporter/diagnosis/details.py), built once for `diagnose`'s
table and the status page: which lines, in which order, and where the disk's handle goes."""

from __future__ import annotations

from exporter.diagnosis.details import Detail, details, volume_text
from exporter.diagnosis.report import EtcdReport
from exporter.diagnosis.verdict import DiskEvidence, LogEvidence, judge
from exporter.model import Identity, Placement, Target, Volume

GIB = 1024**3
BUDGETED = Volume(storage_class="standard", disk_class="hdd", disk_type="pd-standard",
                  volume_handle="projects/p/zones/z/disks/pvc-2", capacity_bytes=10 * GIB,
                  expected_write_iops=15.0,
                  iops_basis="GCE pd-standard: 1.5 write IOPS per GiB")  # fmt: skip
BUDGET = (
    "10 GiB: ~15 write IOPS expected (GCE pd-standard: 1.5 write IOPS per GiB), below etcd's 50"
)
MISPLACED = Placement(namespace_provider="metal", node_provider="gcp", node="n-1",
                      node_provider_id="gce://p/z/n-1", provider_mismatch=True)  # fmt: skip


def report(volume: Volume, placement: Placement | None = None) -> EtcdReport:
    target = Target(
        key="shoot--p--dev/etcd-main-0",
        identity=Identity(namespace="shoot--p--dev", etcd="etcd-main", pod="etcd-main-0"),
        volume=volume,
        placement=placement,
    )
    disk = DiskEvidence(reachable=False, error="connect")
    logs = LogEvidence(scope="in the last 1h")
    return EtcdReport(target, disk, logs, judge(volume=volume, disk=disk, logs=logs))


def test_every_line_in_order() -> None:
    r = report(BUDGETED, MISPLACED)
    assert r.root_cause is not None
    assert details(r) == [
        Detail("root cause", r.root_cause.reason),
        Detail("remedy", r.verdict.remedy),
        Detail("fix", r.root_cause.remedy),
        Detail("volume", f"{BUDGET}, disk projects/p/zones/z/disks/pvc-2"),
    ]
    assert r.verdict.code == "hdd-storage"  # the remedy is the verdict's, not the root cause's
    assert r.root_cause.reason.startswith("seed provider type `metal` but node n-1 runs on gcp")


def test_the_status_page_keeps_the_disk_off_the_volume_line() -> None:
    assert details(report(BUDGETED), disk_in_volume=False)[-1] == Detail("volume", BUDGET)


def test_lines_without_anything_to_say_are_left_out() -> None:
    r = report(Volume())
    assert [d.label for d in details(r)] == ["remedy"]  # unreachable: check the scrape
    handle_only = Volume(volume_handle="vol-0abc")
    assert volume_text(handle_only) == "disk vol-0abc"
    assert volume_text(handle_only, disk=False) == ""
    assert [d.label for d in details(report(handle_only), disk_in_volume=False)] == ["remedy"]
