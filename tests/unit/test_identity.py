"""Identity: project and shoot from the namespace, the etcd role from labels and owners."""

from __future__ import annotations

import pytest

from exporter.discovery.identity import etcd_role, project_and_shoot


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("shoot--p1--a", ("p1", "a")),
        ("shoot--pwhhcd--devcluster2", ("pwhhcd", "devcluster2")),
        # Shoot names may contain "--", project names may not.
        ("shoot--p1--a--b", ("p1", "a--b")),
        ("shoot--garden--x-y", ("garden", "x-y")),
        ("garden", ("", "")),
        ("kube-system", ("", "")),
        ("shoot--p1", ("", "")),
        ("shoot--p1--", ("", "")),
        ("shoot----a", ("", "")),
        ("shoot-p1--a", ("", "")),
        ("", ("", "")),
    ],
)
def test_project_and_shoot(namespace: str, expected: tuple[str, str]) -> None:
    assert project_and_shoot(namespace) == expected


def test_role_from_druid_labels() -> None:
    labels = {
        "app.kubernetes.io/managed-by": "etcd-druid",
        "app.kubernetes.io/part-of": "etcd-events",
        "app.kubernetes.io/name": "etcd-events",
    }
    assert etcd_role(labels=labels, pod_name="etcd-events-0") == "etcd-events"


def test_role_from_old_gardener_labels() -> None:
    labels = {"app": "etcd-statefulset", "instance": "etcd-main", "name": "etcd", "role": "main"}
    assert etcd_role(labels=labels, pod_name="etcd-main-0") == "etcd-main"


def test_role_from_statefulset_owner() -> None:
    owners = [("ReplicaSet", "ignored"), ("StatefulSet", "etcd-main")]
    assert etcd_role(labels={"app": "etcd"}, owner_names=owners, pod_name="x-7") == "etcd-main"


@pytest.mark.parametrize(
    ("pod", "expected"),
    [("etcd-main-0", "etcd-main"), ("etcd-events-12", "etcd-events"), ("etcd", "etcd")],
)
def test_role_falls_back_to_pod_name(pod: str, expected: str) -> None:
    assert etcd_role(labels={}, pod_name=pod) == expected


def test_role_ignores_label_values_that_are_not_names() -> None:
    labels = {"app.kubernetes.io/part-of": "Not A Name!", "instance": "etcd-main"}
    assert etcd_role(labels=labels, pod_name="etcd-main-0") == "etcd-main"
