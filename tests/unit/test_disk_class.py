"""Disk class of StorageClasses: the provider table, defaults, overrides and the overrides file."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.discovery.disk_class import classify, disk_type, load_overrides_file


@pytest.mark.parametrize(
    ("provisioner", "parameters", "expected"),
    [
        # GCE, in-tree and CSI
        ("kubernetes.io/gce-pd", {"type": "pd-standard"}, ("pd-standard", "hdd")),
        ("kubernetes.io/gce-pd", {"type": "pd-ssd"}, ("pd-ssd", "ssd")),
        ("pd.csi.storage.gke.io", {"type": "pd-balanced"}, ("pd-balanced", "ssd")),
        ("pd.csi.storage.gke.io", {"type": "pd-extreme"}, ("pd-extreme", "ssd")),
        ("pd.csi.storage.gke.io", {"type": "hyperdisk-balanced"}, ("hyperdisk-balanced", "ssd")),
        (
            "pd.csi.storage.gke.io",
            {"type": "hyperdisk-throughput"},
            ("hyperdisk-throughput", "ssd"),
        ),
        ("pd.csi.storage.gke.io", {"type": "pd-future"}, ("pd-future", "unknown")),
        # unset: both GCE provisioners default to pd-standard
        ("kubernetes.io/gce-pd", {}, ("", "hdd")),
        ("pd.csi.storage.gke.io", {"replication-type": "none"}, ("", "hdd")),
        # AWS
        ("kubernetes.io/aws-ebs", {"type": "gp2"}, ("gp2", "ssd")),
        ("ebs.csi.aws.com", {"type": "gp3"}, ("gp3", "ssd")),
        ("ebs.csi.aws.com", {"type": "io2"}, ("io2", "ssd")),
        ("ebs.csi.aws.com", {"type": "io1"}, ("io1", "ssd")),
        ("ebs.csi.aws.com", {"type": "st1"}, ("st1", "hdd")),
        ("ebs.csi.aws.com", {"type": "sc1"}, ("sc1", "hdd")),
        ("kubernetes.io/aws-ebs", {"type": "standard"}, ("standard", "hdd")),
        ("kubernetes.io/aws-ebs", {}, ("", "ssd")),
        ("ebs.csi.aws.com", {}, ("", "ssd")),
        # Azure
        ("disk.csi.azure.com", {"skuName": "Premium_LRS"}, ("Premium_LRS", "ssd")),
        ("disk.csi.azure.com", {"skuName": "PremiumV2_LRS"}, ("PremiumV2_LRS", "ssd")),
        ("disk.csi.azure.com", {"skuName": "StandardSSD_ZRS"}, ("StandardSSD_ZRS", "ssd")),
        ("disk.csi.azure.com", {"skuName": "UltraSSD_LRS"}, ("UltraSSD_LRS", "ssd")),
        ("disk.csi.azure.com", {"skuName": "Standard_LRS"}, ("Standard_LRS", "hdd")),
        (
            "kubernetes.io/azure-disk",
            {"storageaccounttype": "Standard_LRS"},
            ("Standard_LRS", "hdd"),
        ),
        ("kubernetes.io/azure-disk", {"storageAccountType": "Premium_LRS"}, ("Premium_LRS", "ssd")),
        ("disk.csi.azure.com", {"SKUName": "Premium_LRS"}, ("Premium_LRS", "ssd")),
        ("disk.csi.azure.com", {}, ("", "unknown")),
        # everything else
        ("rancher.io/local-path", {}, ("", "unknown")),
        ("csi.vsphere.vmware.com", {"type": "whatever"}, ("whatever", "unknown")),
        ("", {}, ("", "unknown")),
    ],
)
def test_provider_table(provisioner: str, parameters: dict[str, str], expected: object) -> None:
    assert classify(provisioner=provisioner, parameters=parameters) == expected


def test_type_parameter_preference() -> None:
    assert disk_type({"skuName": "Premium_LRS", "type": "pd-ssd"}) == "pd-ssd"
    assert disk_type({"fsType": "ext4"}) == ""


def test_override_by_class_name_beats_provisioner() -> None:
    overrides = {"fast-local": "ssd", "rancher.io/local-path": "hdd"}
    assert classify(
        provisioner="rancher.io/local-path",
        parameters={},
        class_name="fast-local",
        overrides=overrides,
    ) == ("", "ssd")
    assert classify(
        provisioner="rancher.io/local-path", parameters={}, class_name="other", overrides=overrides
    ) == ("", "hdd")


def test_override_can_correct_the_table() -> None:
    # An operator knows their "standard" class is actually on SSDs.
    got = classify(
        provisioner="kubernetes.io/gce-pd",
        parameters={"type": "pd-standard"},
        class_name="standard",
        overrides={"standard": "ssd"},
    )
    assert got == ("pd-standard", "ssd")


def test_invalid_override_values_are_ignored() -> None:
    got = classify(
        provisioner="kubernetes.io/gce-pd", parameters={}, class_name="x", overrides={"x": "nvme"}
    )
    assert got == ("", "hdd")


def test_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "overrides.yaml"
    path.write_text("csi-lvm: ssd\nrancher.io/local-path: hdd\n")
    assert load_overrides_file(str(path)) == {"csi-lvm": "ssd", "rancher.io/local-path": "hdd"}
    (tmp_path / "empty.yaml").write_text("")
    assert load_overrides_file(str(tmp_path / "empty.yaml")) == {}


def test_overrides_file_names_every_bad_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: ssd\nb: nvme\nc: fast\n")
    with pytest.raises(ValueError, match=r"'b': 'nvme'.*'c': 'fast'"):
        load_overrides_file(str(path))
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_overrides_file(str(path))
