"""Pod → PVC → PV → StorageClass resolution and the pod fields discovery reads (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.discovery.etcd_resource import EtcdInfo, trim_etcd
from exporter.discovery.pods import data_claim, pod_info
from exporter.discovery.volumes import (
    ClaimInfo,
    ClassInfo,
    PVInfo,
    VolumeResolver,
    trim_claim,
    trim_class,
    trim_pv,
)
from tests.support.kube import objects

NS = "shoot--p1--a"
CLASSES = {
    "gardener.cloud-fast": ClassInfo(
        "gardener.cloud-fast", "pd.csi.storage.gke.io", (("type", "pd-ssd"),), False
    ),
    "standard": ClassInfo("standard", "kubernetes.io/gce-pd", (("type", "pd-standard"),), True),
}


def resolver(
    claims: dict[str, ClaimInfo],
    volumes: dict[str, PVInfo] | None = None,
    *,
    classes: dict[str, ClassInfo] | None = None,
    etcds: dict[str, EtcdInfo] | None = None,
    overrides: dict[str, str] | None = None,
    expected: dict[str, str] | None = None,
) -> VolumeResolver:
    return VolumeResolver(
        claims=claims,
        volumes=volumes or {},
        classes=CLASSES if classes is None else classes,
        etcds=etcds or {},
        overrides=overrides or {},
        expected=expected or {},
    )


def claim(name: str, storage_class: str | None, volume: str = "pv-1") -> dict[str, ClaimInfo]:
    return {f"{NS}/{name}": ClaimInfo(NS, name, storage_class, volume)}


def test_claim_class_wins() -> None:
    vol = resolver(claim("c", "gardener.cloud-fast")).resolve(
        namespace=NS, claim="c", etcd="etcd-main"
    )
    assert (vol.pvc, vol.pv, vol.storage_class) == ("c", "pv-1", "gardener.cloud-fast")
    assert (vol.provisioner, vol.disk_type, vol.disk_class) == (
        "pd.csi.storage.gke.io",
        "pd-ssd",
        "ssd",
    )
    assert vol.mismatch is None


def test_unset_class_falls_back_to_pv_then_default() -> None:
    pvs = {"pv-1": PVInfo("pv-1", "gardener.cloud-fast", "pd.csi.storage.gke.io")}
    vol = resolver(claim("c", None), pvs).resolve(namespace=NS, claim="c", etcd="etcd-main")
    assert vol.storage_class == "gardener.cloud-fast"
    # No class on the claim nor the PV: the cluster default, the incident's mechanism.
    vol = resolver(claim("c", None)).resolve(namespace=NS, claim="c", etcd="etcd-main")
    assert (vol.storage_class, vol.disk_class) == ("standard", "hdd")


def test_explicit_empty_class_means_no_class() -> None:
    vol = resolver(claim("c", "")).resolve(namespace=NS, claim="c", etcd="etcd-main")
    assert (vol.storage_class, vol.disk_class, vol.provisioner) == ("", "unknown", "")


def test_deleted_class_uses_the_pv_driver() -> None:
    pvs = {"pv-1": PVInfo("pv-1", "gone", "ebs.csi.aws.com")}
    vol = resolver(claim("c", "gone"), pvs).resolve(namespace=NS, claim="c", etcd="etcd-main")
    assert (vol.storage_class, vol.provisioner, vol.disk_class) == (
        "gone",
        "ebs.csi.aws.com",
        "ssd",
    )


def _intent(storage_class: str | None, *, etcd: bool = True, pvc: str | None = "standard",
            expected: dict[str, str] | None = None) -> tuple[str, str, bool | None]:  # fmt: skip
    etcds = {f"{NS}/etcd-main": EtcdInfo(NS, "etcd-main", storage_class)} if etcd else {}
    r = resolver(claim("c", pvc), etcds=etcds, expected=expected)
    vol = r.resolve(namespace=NS, claim="c", etcd="etcd-main")
    return vol.expected_storage_class, vol.expected_from, vol.mismatch


FAST_MAIN = {"etcd-main": "gardener.cloud-fast"}


@pytest.mark.parametrize(
    ("storage_class", "etcd", "pvc", "expected", "want"),
    [
        # a named class: the Etcd resource's, whatever is configured
        ("gardener.cloud-fast", True, "standard", FAST_MAIN, ("gardener.cloud-fast", "etcd", True)),
        ("standard", True, "standard", FAST_MAIN, ("standard", "etcd", False)),
        # "": the cluster's default class (standard here) is intended, the config does not apply
        ("", True, "standard", FAST_MAIN, ("standard", "default-class", False)),
        ("", True, None, None, ("standard", "default-class", False)),  # claim without class
        ("", True, "gardener.cloud-fast", None, ("standard", "default-class", True)),
        # absent (the webhook never ran): the configured expectation — the incident
        (None, True, "standard", FAST_MAIN, ("gardener.cloud-fast", "config", True)),
        (None, True, None, FAST_MAIN, ("gardener.cloud-fast", "config", True)),
        # no Etcd resource at all: the same
        (None, False, "gardener.cloud-fast", FAST_MAIN, ("gardener.cloud-fast", "config", False)),
        # nothing declared, nothing configured: no expectation, no mismatch series
        (None, True, "standard", None, ("", "", None)),
        (None, False, "standard", {"etcd-events": "standard"}, ("", "", None)),
    ],
)
def test_expected_class_keeps_absent_and_empty_apart(
    storage_class: str | None,
    etcd: bool,
    pvc: str | None,
    expected: dict[str, str] | None,
    want: tuple[str, str, bool | None],
) -> None:
    assert _intent(storage_class, etcd=etcd, pvc=pvc, expected=expected) == want


def test_empty_class_without_a_default_class_expects_nothing() -> None:
    etcds = {f"{NS}/etcd-main": EtcdInfo(NS, "etcd-main", "")}
    classes = {k: ClassInfo(v.name, v.provisioner, v.parameters, False) for k, v in CLASSES.items()}
    r = resolver(claim("c", "standard"), classes=classes, etcds=etcds)
    vol = r.resolve(namespace=NS, claim="c", etcd="etcd-main")
    assert (vol.expected_storage_class, vol.expected_from, vol.mismatch) == (
        "", "default-class", None,
    )  # fmt: skip


def test_missing_claim_keeps_the_expectation() -> None:
    etcds = {f"{NS}/etcd-main": EtcdInfo(NS, "etcd-main", "gardener.cloud-fast")}
    vol = resolver({}, etcds=etcds).resolve(namespace=NS, claim="x", etcd="etcd-main")
    assert (vol.pvc, vol.expected_storage_class, vol.expected_from) == (
        "x", "gardener.cloud-fast", "etcd",
    )  # fmt: skip


def test_missing_claim_keeps_its_name() -> None:
    vol = resolver({}).resolve(namespace=NS, claim="etcd-main-etcd-main-0", etcd="etcd-main")
    assert (vol.pvc, vol.storage_class, vol.disk_class) == ("etcd-main-etcd-main-0", "", "unknown")


def test_override_by_class_name() -> None:
    r = resolver(claim("c", "standard"), overrides={"standard": "ssd"})
    assert r.resolve(namespace=NS, claim="c", etcd="e").disk_class == "ssd"


def test_several_default_classes_pick_one_deterministically() -> None:
    classes = {**CLASSES, "zz": ClassInfo("zz", "ebs.csi.aws.com", (), True)}
    assert resolver({}, classes=classes).default_class() == "zz"


def test_trims_read_emulator_objects() -> None:
    assert trim_claim(
        objects.pvc(namespace=NS, name="c", volume="v", storage_class=None)
    ) == ClaimInfo(NS, "c", None, "v")
    pv = trim_pv(
        objects.pv(name="v", claim_namespace=NS, claim="c", storage_class="s", driver="d",
                   claim_uid="u-1", capacity="10Gi")
    )  # fmt: skip
    assert pv == PVInfo("v", "s", "d", "pvc-u-1", 10 * 1024**3)
    sc = trim_class(
        objects.storage_class(name="s", provisioner="p", parameters={"type": "x"}, default=True)
    )
    assert sc == ClassInfo("s", "p", (("type", "x"),), True)
    names = objects.etcd_secret_names(NS)
    assert trim_etcd(
        objects.etcd_resource(namespace=NS, name="etcd-main", storage_class=None)
    ) == EtcdInfo(NS, "etcd-main", None, 2379, names.client, names.ca_bundle, "bundle.crt")
    events = objects.etcd_resource(
        namespace=NS, name="etcd-events", storage_class="", client_port=2382, ca_key=None
    )
    assert trim_etcd(events) == EtcdInfo(
        NS, "etcd-events", "", 2382, names.client, names.ca_bundle, "ca.crt"
    )
    assert trim_claim({}) == ClaimInfo("", "", None, "")


def _pod(**kwargs: Any) -> dict[str, Any]:
    return objects.etcd_pod(
        namespace=NS,
        name="etcd-main-0",
        etcd="etcd-main",
        pod_ip="10.0.0.1",
        claim="data-claim",
        **kwargs,
    )


def test_pod_info_reads_druid_pod() -> None:
    info = pod_info(_pod(), container="etcd")
    assert info.key == f"{NS}/etcd-main-0"
    status = info.container
    assert (info.pod_ip, status.running, status.ready, status.restart_count) == (
        "10.0.0.1", True, True, 0,
    )  # fmt: skip
    assert info.claim == "data-claim"
    names = objects.etcd_secret_names(NS)
    assert (info.client_tls_secret, info.ca_secret) == (names.client, names.ca_bundle)
    assert ("StatefulSet", "etcd-main") in info.owners
    assert pod_info(_pod(ready=False), container="etcd").container.ready is False
    assert pod_info(_pod(), container="nope").has_container is False


def test_pod_info_survives_garbage() -> None:
    info = pod_info({"metadata": "x", "spec": [], "status": None}, container="etcd")
    assert (info.name, info.claim, info.container.running) == ("", "", False)
    volumes = [
        {"name": "etcd-client-tls", "secret": {"secretName": 7}},
        {"name": "etcd-ca", "configMap": {"name": "x"}},
        "junk",
    ]
    odd = {"spec": {"volumes": volumes}}
    info = pod_info(odd, container="etcd")
    assert (info.client_tls_secret, info.ca_secret) == ("", "")


def test_trim_etcd_survives_odd_values() -> None:
    raw = {
        "metadata": {"namespace": NS, "name": "etcd-main"},
        "spec": {
            "storageClass": 5,
            "etcd": {"clientPort": "2379", "clientUrlTls": {"clientTLSSecretRef": "x",
                     "tlsCASecretRef": {"name": "ca-b", "dataKey": ""}}},
        },
    }  # fmt: skip
    assert trim_etcd(raw) == EtcdInfo(NS, "etcd-main", None, None, "", "ca-b", "ca.crt")
    assert trim_etcd({"spec": {"etcd": {"clientPort": 70000}}}).client_port is None
    assert trim_etcd({}) == EtcdInfo("", "", None)


def _spec(
    mounts: list[dict[str, str]], volumes: list[dict[str, Any]], args: list[str]
) -> dict[str, Any]:
    return {
        "containers": [{"name": "etcd", "args": args, "volumeMounts": mounts}],
        "volumes": volumes,
    }


@pytest.mark.parametrize(
    ("mounts", "args", "expected"),
    [
        # --data-dir below a mount: the longest mount path holding it wins
        (
            [("data", "/var/lib/etcd"), ("other", "/var")],
            ["--data-dir=/var/lib/etcd/member"],
            "pvc-data",
        ),
        ([("data", "/srv")], ["--data-dir", "/srv"], "pvc-data"),
        # Gardener's default data dir
        ([("data", "/var/etcd/data")], [], "pvc-data"),
        # no mount holds the data dir: the only PVC volume
        ([], [], "pvc-only"),
    ],
)
def test_data_claim(mounts: list[tuple[str, str]], args: list[str], expected: str) -> None:
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "pvc-data"}},
        {"name": "other", "persistentVolumeClaim": {"claimName": "pvc-other"}},
    ]
    if expected == "pvc-only":
        volumes = [
            {"name": "x", "persistentVolumeClaim": {"claimName": "pvc-only"}},
            {"name": "c", "configMap": {}},
        ]
    spec = _spec([{"name": n, "mountPath": p} for n, p in mounts], volumes, args)
    assert data_claim(spec, pod_name="p-0", container="etcd", data_volume=None) == expected


def test_data_claim_configured_volume_and_ephemeral() -> None:
    spec = _spec(
        [],
        [
            {"name": "a", "persistentVolumeClaim": {"claimName": "A"}},
            {"name": "b", "ephemeral": {}},
        ],
        [],
    )
    assert data_claim(spec, pod_name="p-0", container="etcd", data_volume="a") == "A"
    assert data_claim(spec, pod_name="p-0", container="etcd", data_volume="b") == "p-0-b"
    assert data_claim(spec, pod_name="p-0", container="etcd", data_volume="missing") == ""
    # two PVC volumes and no mount to tell them apart: none
    assert data_claim(spec, pod_name="p-0", container="etcd", data_volume=None) == ""
