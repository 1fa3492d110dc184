"""A volume's handle, capacity and expected write IOPS: PV parsing, quantities, the IOPS table."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.discovery.disk_budget import (
    BudgetFields,
    budget_fields,
    expected_write_iops,
    parse_capacity,
)
from exporter.discovery.volumes import (
    ClaimInfo,
    ClassInfo,
    PVInfo,
    VolumeResolver,
    trim_pv,
    volume_handle,
)
from exporter.model import GIB, Volume
from tests.support.kube import objects


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25Gi", 25 * GIB),
        ("10G", 10_000_000_000),
        ("1.5Ti", 1536 * GIB),
        ("512Mi", 512 * 1024**2),
        ("1e3", 1000),
        ("100", 100),
        ("", None),
        ("lots", None),
        ("10 GiB", None),
        ("-1Gi", None),
        ("Infinity", None),
    ],
)
def test_parse_capacity(text: str, expected: int | None) -> None:
    assert parse_capacity(text) == expected


GCE_CSI, GCE_TREE = "pd.csi.storage.gke.io", "kubernetes.io/gce-pd"
EBS_CSI, EBS_TREE = "ebs.csi.aws.com", "kubernetes.io/aws-ebs"
AZURE = "disk.csi.azure.com"


@pytest.mark.parametrize(
    ("provisioner", "parameters", "gib", "iops"),
    [
        # GCE: per GiB, baselines and per-VM maxima
        (GCE_TREE, {"type": "pd-standard"}, 10, 15),
        (GCE_CSI, {}, 25, 37.5),  # no type: the driver's default, pd-standard
        (GCE_CSI, {"type": "pd-standard"}, 20_000, 15_000),
        (GCE_CSI, {"type": "pd-balanced"}, 25, 3_150),
        (GCE_CSI, {"type": "pd-balanced"}, 20_000, 80_000),
        (GCE_CSI, {"type": "pd-ssd"}, 10, 6_300),
        (GCE_CSI, {"type": "pd-ssd"}, 10_000, 100_000),
        (GCE_CSI, {"type": "pd-extreme", "provisioned-iops-on-create": "20000"}, 500, 20_000),
        (GCE_CSI, {"type": "hyperdisk-balanced", "provisioned-iops-on-create": "3600"}, 10, 3_600),
        (GCE_CSI, {"type": "hyperdisk-balanced"}, 10, None),  # provisioned, but not said
        (GCE_CSI, {"type": "pd-future"}, 10, None),
        # AWS: gp2 3 per GiB within 100..16,000; gp3 baseline or the class's iops; io1/io2
        (EBS_TREE, {}, 10, 100),  # the in-tree default, gp2, at its minimum
        (EBS_TREE, {"type": "gp2"}, 200, 600),
        (EBS_TREE, {"type": "gp2"}, 10_000, 16_000),
        (EBS_CSI, {}, 25, 3_000),  # the CSI default, gp3
        (EBS_CSI, {"type": "gp3", "iops": "6000"}, 25, 6_000),
        (EBS_CSI, {"type": "io1", "iops": "4000"}, 25, 4_000),
        (EBS_TREE, {"type": "io1", "iopsPerGB": "10"}, 25, 250),
        (EBS_CSI, {"type": "io2", "iopsPerGB": "2"}, 25, 50),
        (EBS_CSI, {"type": "io2", "iopsPerGB": "2", "allowAutoIOPSPerGBIncrease": "true"}, 25, 100),
        (EBS_CSI, {"type": "io2", "iopsPerGB": "50"}, 16_000, 64_000),
        (EBS_CSI, {"type": "io1"}, 25, None),
        (EBS_CSI, {"type": "io1", "iops": "many"}, 25, None),
        (EBS_CSI, {"type": "standard"}, 25, 100),
        (EBS_CSI, {"type": "st1"}, 500, None),  # a throughput budget, not IOPS
        (EBS_CSI, {"type": "sc1"}, 500, None),
        # Azure: Premium SSD by tier; provisioned types by DiskIOPSReadWrite; Standard left out
        (AZURE, {"skuName": "Premium_LRS"}, 25, 120),  # P4
        (AZURE, {"skuName": "Premium_LRS"}, 32, 120),  # P4's upper edge
        (AZURE, {"skuName": "Premium_ZRS"}, 33, 240),  # P6
        (AZURE, {"skuname": "Premium_LRS"}, 1000, 5_000),  # P30; the driver lowercases keys
        (AZURE, {"skuName": "Premium_LRS"}, 40_000, None),  # above P80
        (AZURE, {"skuName": "PremiumV2_LRS", "DiskIOPSReadWrite": "5000"}, 25, 5_000),
        (AZURE, {"skuName": "StandardSSD_LRS"}, 25, None),
        (AZURE, {"skuName": "Standard_LRS"}, 25, None),
        (AZURE, {}, 25, None),
        ("rancher.io/local-path", {}, 25, None),
    ],
)
def test_iops_table(
    provisioner: str, parameters: dict[str, str], gib: int, iops: float | None
) -> None:
    budget = expected_write_iops(
        provisioner=provisioner, parameters=parameters, capacity_bytes=gib * GIB
    )
    assert (budget.write_iops if budget else None) == iops
    if budget:
        assert budget.basis.split()[0] in ("GCE", "AWS", "Azure"), budget.basis


def test_no_capacity_no_expectation() -> None:
    for capacity in (None, 0):
        assert (
            expected_write_iops(
                provisioner=GCE_CSI, parameters={"type": "pd-ssd"}, capacity_bytes=capacity
            )
            is None
        )


def test_basis_says_the_rule() -> None:
    budget = expected_write_iops(
        provisioner=GCE_TREE, parameters={"type": "pd-standard"}, capacity_bytes=10 * GIB
    )
    assert budget is not None
    assert budget.basis == "GCE pd-standard: 1.5 write IOPS per GiB"


@pytest.mark.parametrize(
    ("spec", "handle"),
    [
        ({"csi": {"driver": GCE_CSI, "volumeHandle": "projects/p/zones/z/disks/pvc-1"}},
         "projects/p/zones/z/disks/pvc-1"),
        ({"csi": {"driver": EBS_CSI, "volumeHandle": "vol-0a1b2c3d4e5f60718"}},
         "vol-0a1b2c3d4e5f60718"),
        ({"gcePersistentDisk": {"pdName": "pvc-2", "fsType": "ext4"}}, "pvc-2"),
        ({"awsElasticBlockStore": {"volumeID": "aws://eu-west-1a/vol-1"}}, "aws://eu-west-1a/vol-1"),
        ({"azureDisk": {"diskName": "pvc-3", "diskURI": "/subscriptions/x"}}, "pvc-3"),
        ({"cinder": {"volumeID": "5e1c0f9a"}}, "5e1c0f9a"),
        ({"hostPath": {"path": "/var/etcd"}}, ""),
        ({"csi": "garbage", "gcePersistentDisk": ["x"]}, ""),
        ({}, ""),
    ],
)  # fmt: skip
def test_volume_handle(spec: dict[str, Any], handle: str) -> None:
    assert volume_handle(spec) == handle


@pytest.mark.parametrize(
    ("driver", "shape"),
    [
        (GCE_CSI, r"projects/seed-project/zones/europe-west1-b/disks/pvc-u-9"),
        (GCE_TREE, "pvc-u-9"),
        (EBS_CSI, "vol-"),
        (EBS_TREE, "aws://eu-west-1a/vol-"),
        (AZURE, "/providers/Microsoft.Compute/disks/pvc-u-9"),
    ],
)
def test_emulator_pvs_carry_real_shapes(driver: str, shape: str) -> None:
    raw = objects.pv(
        name="v", claim_namespace="ns", claim="c", storage_class="s", driver=driver,
        claim_uid="u-9", capacity="10Gi",
    )  # fmt: skip
    pv = trim_pv(raw)
    assert shape in pv.handle
    assert pv.capacity_bytes == 10 * GIB


def test_trim_pv_survives_a_bad_capacity() -> None:
    raw = objects.pv(name="v", claim_namespace="ns", claim="c", storage_class="s", driver=GCE_CSI)
    raw["spec"]["capacity"] = {"storage": "a lot"}
    assert trim_pv(raw).capacity_bytes is None
    raw["spec"]["capacity"] = "25Gi"
    assert trim_pv(raw).capacity_bytes is None


def test_resolver_fills_handle_capacity_and_iops() -> None:
    ns = "shoot--p1--a"
    resolver = VolumeResolver(
        claims={f"{ns}/c": ClaimInfo(ns, "c", None, "pv-1")},
        volumes={"pv-1": PVInfo("pv-1", "standard", "", "pvc-1", 10 * GIB)},
        classes={
            "standard": ClassInfo("standard", GCE_TREE, (("type", "pd-standard"),), True),
        },
        etcds={},
        overrides={},
        expected={},
    )
    vol = resolver.resolve(namespace=ns, claim="c", etcd="etcd-events")
    assert (vol.volume_handle, vol.capacity_bytes) == ("pvc-1", 10 * GIB)
    assert vol.expected_write_iops == 15
    assert vol.iops_basis == "GCE pd-standard: 1.5 write IOPS per GiB"
    gone = resolver.resolve(namespace=ns, claim="other", etcd="etcd-events")
    assert (gone.volume_handle, gone.capacity_bytes, gone.expected_write_iops) == ("", None, None)


def test_budget_fields_are_the_volume_fields_of_every_discovery() -> None:
    """Kubernetes and static discovery both turn a budget into `Volume` fields through it."""
    fields = budget_fields(
        provisioner=GCE_CSI, parameters={"type": "pd-standard"}, capacity_bytes=10 * GIB
    )
    assert fields == BudgetFields(
        capacity_bytes=10 * GIB,
        expected_write_iops=15,
        iops_basis="GCE pd-standard: 1.5 write IOPS per GiB",
    )
    unknown = budget_fields(provisioner="example.com/csi", parameters={}, capacity_bytes=GIB)
    assert unknown == BudgetFields(capacity_bytes=GIB, expected_write_iops=None, iops_basis="")
    sizeless = budget_fields(
        provisioner=GCE_CSI, parameters={"type": "pd-ssd"}, capacity_bytes=None
    )
    assert sizeless == BudgetFields(capacity_bytes=None, expected_write_iops=None, iops_basis="")
    assert Volume(**fields).expected_write_iops == 15
