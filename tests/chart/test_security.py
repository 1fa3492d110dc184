"""Least privilege: read-only RBAC, a locked-down pod, the Gardener and NetworkPolicy wiring."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.conftest import Render
from tests.chart.helm import NAMESPACE, by_kind, container, one, workload
from tests.chart.test_render import VALUE_SETS

pytestmark = pytest.mark.chart

READ_VERBS = {"get", "list", "watch"}
KUBERNETES_SETS = [name for name in VALUE_SETS if name != "static"]


def _rules(render: Render, name: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = one(render(name), "ClusterRole")["rules"]
    return rules


def _grants(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


@pytest.mark.parametrize("name", KUBERNETES_SETS)
def test_cluster_role_only_reads(render: Render, name: str) -> None:
    """Every verb is get, list or watch; no wildcard anywhere."""
    for rule in _rules(render, name):
        assert set(rule["verbs"]) <= READ_VERBS, rule
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(key, []), rule
        assert "nonResourceURLs" not in rule


def test_cluster_role_grants_what_discovery_needs(render: Render) -> None:
    """Pods, logs, the volume chain and Etcd resources; `get` on the client Secret by name only."""
    rules = _rules(render, "default")
    grants = _grants(rules)
    assert grants == {
        ("", "pods"): READ_VERBS,
        ("", "pods/log"): {"get"},
        ("", "persistentvolumeclaims"): READ_VERBS,
        ("", "persistentvolumes"): READ_VERBS,
        ("storage.k8s.io", "storageclasses"): READ_VERBS,
        ("druid.gardener.cloud", "etcds"): READ_VERBS,
        ("", "secrets"): {"get"},
    }
    [secret_rule] = [r for r in rules if "secrets" in r["resources"]]
    assert secret_rule["resources"] == ["secrets"]
    assert secret_rule["resourceNames"] == ["etcd-client"]
    for rule in rules:
        if rule is not secret_rule:
            assert "resourceNames" not in rule


@pytest.mark.parametrize("name", ["mtls-files", "http"])
def test_no_secret_access_without_client_secret(render: Render, name: str) -> None:
    """Without the per-namespace client Secret the exporter may not read any Secret."""
    assert ("", "secrets") not in _grants(_rules(render, name))


def test_no_etcd_resources_when_disabled(render: Render) -> None:
    """--no-kubernetes.etcd-resources also drops the druid.gardener.cloud permission."""
    assert ("druid.gardener.cloud", "etcds") not in _grants(_rules(render, "http"))


def test_static_discovery_needs_no_api(render: Render) -> None:
    """Static targets: no ClusterRole, no binding, no API token in the pod."""
    manifests = render("static")
    assert by_kind(manifests, "ClusterRole") == by_kind(manifests, "ClusterRoleBinding") == []
    assert workload(manifests)["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", KUBERNETES_SETS)
def test_binding_targets_the_service_account(render: Render, name: str) -> None:
    """The ClusterRoleBinding binds our ClusterRole to the pods' ServiceAccount."""
    manifests = render(name)
    binding, role = one(manifests, "ClusterRoleBinding"), one(manifests, "ClusterRole")
    account = one(manifests, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    pod = workload(manifests)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pod_security(render: Render, name: str) -> None:
    """Non-root numeric UID, read-only root, no privilege escalation, no capabilities, seccomp."""
    pod = workload(render(name))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container(render(name))["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    assert all("hostPath" not in volume for volume in pod["volumes"])


@pytest.mark.parametrize("name", VALUE_SETS)
def test_writable_tmp_probes_and_resources(render: Render, name: str) -> None:
    """/tmp is an emptyDir; probes hit /healthz and /readyz on `metrics`; no CPU limit."""
    manifests = render(name)
    pod = workload(manifests)["spec"]["template"]["spec"]
    exporter = container(manifests)
    [tmp] = [m for m in exporter["volumeMounts"] if m["mountPath"] == "/tmp"]
    [volume] = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 18379, "protocol": "TCP"}]
    assert exporter["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert exporter["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert exporter["resources"] == {
        "requests": {"cpu": "250m", "memory": "384Mi"},
        "limits": {"memory": "512Mi"},
    }


def test_tls_files_mounted_read_only(render: Render) -> None:
    """The client certificate Secret is mounted read-only, 0440, at the path the flags name."""
    manifests = render("mtls-files")
    pod = workload(manifests)["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {"secretName": "etcd-client-tls", "defaultMode": 0o440}
    [mount] = [m for m in container(manifests)["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {
        "name": volume["name"],
        "mountPath": "/etc/etcd-latency-exporter/tls",
        "readOnly": True,
    }


def test_service(render: Render) -> None:
    """Port 18379 named `metrics`, selecting exactly the workload's pods."""
    manifests = render("default")
    service = one(manifests, "Service")
    assert service["metadata"]["namespace"] == NAMESPACE
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 18379, "targetPort": "metrics", "protocol": "TCP"}
    ]
    selector = workload(manifests)["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    pod_labels = workload(manifests)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert "annotations" not in service["metadata"]


def test_gardener_wiring(render: Render) -> None:
    """Scrape-targets annotation on the Service, to-dns/to-runtime-apiserver labels on the pods."""
    manifests = render("gardener")
    annotations = one(manifests, "Service")["metadata"]["annotations"]
    key = "networking.resources.gardener.cloud/from-all-seed-scrape-targets-allowed-ports"
    assert annotations[key] == '[{"port":18379,"protocol":"TCP"}]'
    labels = workload(manifests)["spec"]["template"]["metadata"]["labels"]
    assert labels["networking.gardener.cloud/to-dns"] == "allowed"
    assert labels["networking.gardener.cloud/to-runtime-apiserver"] == "allowed"
    assert one(manifests, "ServiceMonitor")["metadata"]["labels"]["prometheus"] == "seed"
    assert one(manifests, "PrometheusRule")["metadata"]["labels"]["prometheus"] == "seed"
    assert {m["metadata"]["namespace"] for m in manifests if "namespace" in m["metadata"]} == {
        "garden"
    }


def test_no_gardener_labels_by_default(render: Render) -> None:
    """Plain clusters get no Gardener-specific labels."""
    labels = workload(render("default"))["spec"]["template"]["metadata"]["labels"]
    assert not [key for key in labels if "gardener" in key]


def test_network_policy(render: Render) -> None:
    """Ingress from Prometheus on `metrics`; egress to etcd:2379, the API server and DNS only."""
    manifests = render("networkpolicy")
    policy = one(manifests, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    selector = workload(manifests)["spec"]["selector"]["matchLabels"]
    assert policy["podSelector"]["matchLabels"] == selector
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "prometheus"
    }
    etcd, api, dns = policy["egress"]
    assert etcd["ports"] == [{"port": 2379, "protocol": "TCP"}]
    assert {"app.kubernetes.io/managed-by": "etcd-druid"} in [
        peer["podSelector"]["matchLabels"] for peer in etcd["to"]
    ]
    assert api == {
        "ports": [{"port": 443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
    }
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {
        (port, proto) for port in (53, 8053) for proto in ("UDP", "TCP")
    }
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def test_no_network_policy_by_default(render: Render) -> None:
    """The NetworkPolicy is opt-in."""
    assert by_kind(render("default"), "NetworkPolicy") == []


def test_pdb_only_with_several_replicas(render: Render) -> None:
    """A PodDisruptionBudget exists when there is more than one pod, selecting them."""
    assert by_kind(render("default"), "PodDisruptionBudget") == []
    manifests = render("sharding")
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == workload(manifests)["spec"]["selector"]
