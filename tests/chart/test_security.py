"""Least privilege: read-only RBAC, a locked-down pod, the Gardener and NetworkPolicy wiring."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helm import (
    CI_DIR,
    NAMESPACE,
    VALUE_SETS,
    Helm,
    Manifest,
    Render,
    by_kind,
    container,
    one,
    parse_manifests,
    workload,
)

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


DISCOVERY_GRANTS = {
    ("", "pods"): READ_VERBS,
    ("", "pods/log"): {"get"},
    ("", "namespaces"): READ_VERBS,
    ("", "nodes"): READ_VERBS,
    ("", "persistentvolumeclaims"): READ_VERBS,
    ("", "persistentvolumes"): READ_VERBS,
    ("storage.k8s.io", "storageclasses"): READ_VERBS,
    ("druid.gardener.cloud", "etcds"): READ_VERBS,
}


@pytest.mark.parametrize("name", ["default", "gardener", "gardener-runtime"])
def test_cluster_role_grants_what_discovery_needs(render: Render, name: str) -> None:
    """Pods, logs, namespaces, the volume chain and Etcd resources; for the Secrets the Etcd
    resources name (hash-suffixed, so no resourceNames can match them) `get` on Secrets, only."""
    rules = _rules(render, name)
    assert _grants(rules) == {**DISCOVERY_GRANTS, ("", "secrets"): {"get"}}
    [secret_rule] = [r for r in rules if "secrets" in r["resources"]]
    assert secret_rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    assert not [r for r in rules if "resourceNames" in r]


@pytest.mark.parametrize("name", KUBERNETES_SETS)
def test_secrets_are_never_listed_or_watched(render: Render, name: str) -> None:
    """Whatever the values, Secrets get `get` at most: never list or watch."""
    assert _grants(_rules(render, name)).get(("", "secrets"), {"get"}) == {"get"}


def test_fixed_client_secret_by_name_only(helm: Helm) -> None:
    """Without secret refs, the fixed client Secret is readable by its name and no other."""
    result = helm.template(
        sets=["scrape.secretRefs.enabled=false", "scrape.clientSecret.enabled=true"]
    )
    assert result.returncode == 0, result.stderr
    rules: list[dict[str, Any]] = one(parse_manifests(result.stdout), "ClusterRole")["rules"]
    [secret_rule] = [r for r in rules if "secrets" in r["resources"]]
    assert secret_rule == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["etcd-client"],
        "verbs": ["get"],
    }


@pytest.mark.parametrize("name", ["mtls-files", "http", "gardener-shoot-prometheus"])
def test_no_secret_access_without_per_member_secrets(render: Render, name: str) -> None:
    """One mounted certificate, plain HTTP or the shoot Prometheus: no Secret is readable."""
    assert ("", "secrets") not in _grants(_rules(render, name))


def test_provider_check_off_drops_nodes_and_keeps_namespace_get(helm: Helm) -> None:
    """kubernetes.providerCheck=false: no nodes, namespaces `get` only, and the flag says so."""
    result = helm.template(sets=["kubernetes.providerCheck=false"])
    assert result.returncode == 0, result.stderr
    manifests = parse_manifests(result.stdout)
    grants = _grants(one(manifests, "ClusterRole")["rules"])
    assert ("", "nodes") not in grants
    assert grants[("", "namespaces")] == {"get"}
    assert "--no-kubernetes.provider-check" in container(manifests)["args"]


def test_provider_check_reads_nodes_and_namespaces_only(render: Render) -> None:
    """The default: get/list/watch on nodes and namespaces, in one read-only rule of their own;
    the exporter's default needs no flag."""
    manifests = render("default")
    [rule] = [r for r in one(manifests, "ClusterRole")["rules"] if "nodes" in r["resources"]]
    assert rule == {
        "apiGroups": [""],
        "resources": ["namespaces", "nodes"],
        "verbs": ["get", "list", "watch"],
    }
    assert not any("provider-check" in a for a in container(manifests)["args"])


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


SEED_LABELS = {"networking.gardener.cloud/to-dns", "networking.gardener.cloud/to-runtime-apiserver"}
RESOURCES = "networking.resources.gardener.cloud"


def _gardener_pod_labels(manifests: list[Manifest]) -> set[str]:
    labels: dict[str, str] = workload(manifests)["spec"]["template"]["metadata"]["labels"]
    found = {key for key in labels if "gardener.cloud" in key}
    assert {labels[key] for key in found} <= {"allowed"}
    return found


def test_gardener_wiring(render: Render) -> None:
    """Everything in garden; the Service annotation and ServiceMonitor for the seed Prometheus;
    pod labels for DNS, the API server and every shoot's etcd; the dashboard for Plutono."""
    manifests = render("gardener")
    annotations = one(manifests, "Service")["metadata"]["annotations"]
    key = f"{RESOURCES}/from-all-seed-scrape-targets-allowed-ports"
    assert annotations[key] == '[{"port":18379,"protocol":"TCP"}]'
    assert _gardener_pod_labels(manifests) == SEED_LABELS | {
        f"{RESOURCES}/to-all-shoots-etcd-main-client-tcp-2379",
        f"{RESOURCES}/to-all-shoots-etcd-events-client-tcp-2379",
    }
    assert one(manifests, "ServiceMonitor")["metadata"]["labels"]["prometheus"] == "seed"
    assert one(manifests, "PrometheusRule")["metadata"]["labels"]["prometheus"] == "seed"
    dashboard = one(manifests, "ConfigMap")["metadata"]["labels"]
    assert dashboard["dashboard.monitoring.gardener.cloud/seed"] == "true"
    assert "dashboard.monitoring.gardener.cloud/garden" not in dashboard
    assert {m["metadata"]["namespace"] for m in manifests if "namespace" in m["metadata"]} == {
        "garden"
    }


def test_gardener_etcd_labels_follow_the_scrape_port(helm: Helm) -> None:
    """The etcd network labels name scrape.port (GRM's policies are per port)."""
    result = helm.template(sets=["gardener.enabled=true", "scrape.port=2382"], namespace="garden")
    assert result.returncode == 0, result.stderr
    labels = _gardener_pod_labels(parse_manifests(result.stdout))
    assert {label for label in labels if "etcd" in label} == {
        f"{RESOURCES}/to-all-shoots-etcd-main-client-tcp-2382",
        f"{RESOURCES}/to-all-shoots-etcd-events-client-tcp-2382",
    }


def test_gardener_shoot_prometheus_wiring(render: Render) -> None:
    """shoot-prometheus: the label that reaches the shoots' Prometheus, none for etcd."""
    manifests = render("gardener-shoot-prometheus")
    assert _gardener_pod_labels(manifests) == SEED_LABELS | {
        f"{RESOURCES}/to-all-shoots-prometheus-shoot-tcp-9090"
    }
    assert one(manifests, "ServiceMonitor")["metadata"]["labels"]["prometheus"] == "seed"


def test_gardener_runtime_wiring(render: Render) -> None:
    """A garden runtime: the virtual garden's etcds too, and the garden's Plutono label."""
    manifests = render("gardener-runtime")
    assert _gardener_pod_labels(manifests) == SEED_LABELS | {
        f"{RESOURCES}/to-all-shoots-etcd-main-client-tcp-2379",
        f"{RESOURCES}/to-all-shoots-etcd-events-client-tcp-2379",
        f"{RESOURCES}/to-virtual-garden-etcd-main-client-tcp-2379",
        f"{RESOURCES}/to-virtual-garden-etcd-events-client-tcp-2379",
    }
    dashboard = one(manifests, "ConfigMap")["metadata"]["labels"]
    assert dashboard["dashboard.monitoring.gardener.cloud/garden"] == "true"
    assert "dashboard.monitoring.gardener.cloud/seed" not in dashboard
    assert dashboard["grafana_dashboard"] == "1"


def test_gardener_pod_labels_win(helm: Helm) -> None:
    """gardener.podLabels add to (and may override) the preset's labels."""
    result = helm.template(
        sets=[
            "gardener.enabled=true",
            "gardener.podLabels.networking\\.gardener\\.cloud/to-public-networks=allowed",
        ],
        namespace="garden",
    )
    assert result.returncode == 0, result.stderr
    labels = _gardener_pod_labels(parse_manifests(result.stdout))
    assert "networking.gardener.cloud/to-public-networks" in labels
    assert labels >= SEED_LABELS


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


def test_network_policy_with_shoot_prometheus(helm: Helm) -> None:
    """With the shoot Prometheus as the source, egress goes to its pod port 9090, not to etcd."""
    result = helm.template(
        values=[CI_DIR / "gardener-shoot-prometheus-values.yaml"],
        sets=["networkPolicy.enabled=true"],
        namespace="garden",
    )
    assert result.returncode == 0, result.stderr
    policy = one(parse_manifests(result.stdout), "NetworkPolicy")["spec"]
    prometheus, _api, _dns = policy["egress"]
    assert prometheus["ports"] == [{"port": 9090, "protocol": "TCP"}]
    assert prometheus["to"] == [{"namespaceSelector": {}}]
    ports = [p["port"] for rule in policy["egress"] for p in rule["ports"]]
    assert 2379 not in ports


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
