"""The chart lints, renders every values set, rejects bad values, and renders valid manifests.

Built-in kinds are validated by kubernetes-validate against the Kubernetes 1.30 schemas; the
prometheus-operator kinds (no schema there) are checked structurally, and the PrometheusRule's
groups go through `promtool check rules`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.helm import (
    CHART_DIR,
    NAMESPACE,
    VALUE_SETS,
    Helm,
    Render,
    RenderText,
    by_kind,
    ci_values_files,
    one,
    parse_manifests,
)

CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
KUBE_VERSION = "1.30.0"


def test_value_sets_exist() -> None:
    """The ci/ values sets this suite renders are all there."""
    expected = {
        "sharding",
        "mtls-files",
        "http",
        "servicemonitor",
        "networkpolicy",
        "gardener",
        "gardener-shoot-prometheus",
        "gardener-runtime",
    }
    assert expected <= set(VALUE_SETS)


def test_lint_strict(helm: Helm) -> None:
    """`helm lint --strict` passes with the default values and with every ci/ values set."""
    args = ["lint", "--strict", str(CHART_DIR)]
    for path in [None, *ci_values_files()]:
        result = helm.run([*args, *(["--values", str(path)] if path else [])])
        assert result.returncode == 0, f"{path}: {result.stdout}{result.stderr}"
        assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("name", VALUE_SETS)
def test_renders(render: Render, name: str) -> None:
    """Every values set renders the core objects, each with the chart's labels."""
    manifests = render(name)
    kinds = {m["kind"] for m in manifests}
    assert {"ServiceAccount", "Service", "ConfigMap"} <= kinds
    assert kinds & {"Deployment", "StatefulSet"}
    for m in manifests:
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "etcd-latency-exporter", m["kind"]
        assert labels["app.kubernetes.io/instance"] == "etcd-latency-exporter", m["kind"]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_builtin_kinds_validate_strictly(
    render_text: RenderText, name: str, tmp_path: Path
) -> None:
    """kubernetes-validate --strict accepts every built-in object; only CRD kinds lack a schema."""
    manifests = parse_manifests(render_text(name))
    builtin = [m for m in manifests if m["kind"] not in CRD_KINDS]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(builtin))
    result = _kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if line.startswith("INFO")]
    assert len(passed) == len(builtin), result.stdout
    assert "WARN" not in result.stdout
    assert "ERROR" not in result.stdout


def test_kubernetes_validate_catches_errors(render: Render, tmp_path: Path) -> None:
    """The validator is real: a wrongly typed field in the rendered Deployment fails it."""
    deployment = one(render("default"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(deployment))
    result = _kubernetes_validate(path)
    assert result.returncode != 0
    assert "containerPort" in result.stdout + result.stderr


def _kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "kubernetes-validate"
    command = str(binary) if binary.exists() else shutil.which("kubernetes-validate")
    if command is None:
        pytest.fail("kubernetes-validate is not installed (pip install -e '.[dev]')")
    return subprocess.run(
        [command, "--strict", "-k", KUBE_VERSION, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["servicemonitor", "gardener", "gardener-shoot-prometheus"])
def test_service_monitor_structure(render: Render, name: str) -> None:
    """The ServiceMonitor selects the Service, scrapes port `metrics` and honours our labels."""
    manifests = render(name)
    monitor, service = one(manifests, "ServiceMonitor"), one(manifests, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True
    assert set(endpoint) <= {
        "port",
        "path",
        "scheme",
        "honorLabels",
        "interval",
        "scrapeTimeout",
        "relabelings",
        "metricRelabelings",
    }


def test_service_monitor_is_optional(render: Render) -> None:
    """No ServiceMonitor unless asked for."""
    assert by_kind(render("default"), "ServiceMonitor") == []


@pytest.mark.parametrize("name", ["default", "gardener", "gardener-runtime", "thresholds"])
def test_prometheus_rule_passes_promtool(render: Render, name: str, tmp_path: Path) -> None:
    """The PrometheusRule's groups are a rules file promtool accepts."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (make setup)")
    rule = one(render(name), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["bogus=1"], "Additional property bogus is not allowed"),
        (["service.port=70000"], "service.port"),
        (["scrape.scheme=ftp"], "scrape.scheme"),
        (["log.format=xml"], "log.format"),
        (["scrape.clientSecret.nmae=x"], "Additional property nmae is not allowed"),
        (["replicas=0"], "replicas"),
        (["scrape.interval=30"], "scrape.interval"),
        (["extraArgs[0]=shard=1"], "extraArgs.0"),
        (["prometheusRule.alerts.NoSuchAlert.for=5m"], "Additional property NoSuchAlert"),
        (
            ["prometheusRule.alerts.EtcdLatencyHddStorage.threshold=2"],
            "Additional property threshold",
        ),
        (["prometheusRule.alerts.EtcdLatencyWalFsyncSlow.threshold=fast"], "threshold"),
        (["prometheusRule.alerts.EtcdLatencyWalFsyncSlow.for=10"], "for"),
        (["prometheusRule.alerts.EtcdLatencyMemberCrashLooping.threshold=often"], "threshold"),
        (
            ["prometheusRule.alerts.EtcdLatencyTargetDown.intendedRoles=etcd-events"],
            "Additional property intendedRoles",
        ),
        (['prometheusRule.alerts.EtcdLatencyHddStorage.intendedRoles=a"b'], "intendedRoles"),
        (["scrape.source=prometheus"], "scrape.source"),
        (["scrape.shootPrometheus.url=prometheus-shoot:80"], "url"),
        (["scrape.secretRefs.enabled=sometimes"], "enabled"),
        (["gardener.enabled=true", "gardener.gardenRuntime=maybe"], "gardenRuntime"),
        (["gardener.enabled=true", "gardener.prometheus="], "prometheus"),
        (["gardener.shootPrometheusNetworkLabel=to prometheus"], "shootPrometheusNetworkLabel"),
        (["gardener.networkPolicies=true"], "Additional property networkPolicies"),
    ],
)
def test_schema_rejects_bad_values(helm: Helm, sets: list[str], expected: str) -> None:
    """Values that violate values.schema.json fail, and the error names the key."""
    result = helm.template(sets=sets)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("sets", "extra", "expected"),
    [
        (
            [
                "scrape.clientSecret.enabled=true",
                "scrape.tlsFiles.enabled=true",
                "scrape.tlsFiles.secretName=x",
            ],
            [],
            "mutually exclusive",
        ),
        (["scrape.tlsFiles.enabled=true"], [], "scrape.tlsFiles.secretName is required"),
        (["discovery=static"], [], "static.targetsFile is required"),
        (["sharding.enabled=true"], ["--kube-version", "1.27.0"], "Kubernetes >= 1.28"),
        (
            ["gardener.enabled=true"],
            [],
            'gardener.enabled: the release must run in namespace garden, not "monitoring"',
        ),
        (
            ["gardener.enabled=true", "namespaceOverride=kube-system"],
            [],
            'namespace garden, not "kube-system"',
        ),
        (
            ["scrape.source=shoot-prometheus", "discovery=static", "static.targetsFile=/t.yaml"],
            [],
            "scrape.source shoot-prometheus needs discovery: kubernetes",
        ),
        (
            ["scrape.source=shoot-prometheus", "scrape.clientSecret.enabled=true"],
            [],
            "scrape.source shoot-prometheus reads no etcd client certificate",
        ),
    ],
)
def test_template_rejects_inconsistent_values(
    helm: Helm, sets: list[str], extra: list[str], expected: str
) -> None:
    """Combinations the schema cannot express fail with a message naming the values."""
    result = helm.template(sets=sets, extra=extra)
    assert result.returncode != 0
    assert expected in result.stderr


def test_gardener_preset_in_garden_or_with_provided_policies(helm: Helm) -> None:
    """The preset renders in namespace garden, or elsewhere when the operator provides policies."""
    in_garden = helm.template(sets=["gardener.enabled=true"], namespace="garden")
    assert in_garden.returncode == 0, in_garden.stderr
    elsewhere = helm.template(
        sets=["gardener.enabled=true", "gardener.networkPoliciesProvided=true"]
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    namespaces = {
        m["metadata"]["namespace"]
        for m in parse_manifests(elsewhere.stdout)
        if "namespace" in m["metadata"]
    }
    assert namespaces == {NAMESPACE}


def test_intended_hdd_roles_are_a_value(helm: Helm, tmp_path: Path) -> None:
    """intendedRoles replaces the HDD alert's etcd=~ matcher; the result is a valid rules file."""
    name = "EtcdLatencyHddStorage"
    result = helm.template(sets=[f"prometheusRule.alerts.{name}.intendedRoles=etcd-events"])
    assert result.returncode == 0, result.stderr
    groups = one(parse_manifests(result.stdout), "PrometheusRule")["spec"]["groups"]
    [expr] = [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == name]
    assert 'etcd=~"etcd-events"' in expr
    assert "virtual-garden" not in expr
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (make setup)")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    check = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_intended_roles_need_the_matcher(helm: Helm, tmp_path: Path) -> None:
    """A rules file whose HDD alert lost its etcd=~ matcher fails loudly when roles are set."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    rules = chart / "files" / "etcd-latency.rules.yaml"
    text = rules.read_text()
    marker = '{etcd=~"etcd-events|virtual-garden-etcd-events"}'
    # the HDD alert's matcher comes first; EtcdLatencyVolumeIopsLow has the second
    assert text.count(marker) == 2
    assert text.index(marker) < text.index("alert: EtcdLatencyVolumeIopsLow")
    rules.write_text(text.replace(marker, "", 1))
    name = "EtcdLatencyHddStorage"
    result = helm.template(chart=chart, sets=[f"prometheusRule.alerts.{name}.intendedRoles=x"])
    assert result.returncode != 0
    assert f"prometheusRule.alerts.{name}.intendedRoles" in result.stderr


def test_sharding_on_supported_kubernetes(helm: Helm) -> None:
    """Sharding renders on Kubernetes 1.28, the first with the pod-index label."""
    result = helm.template(sets=["sharding.enabled=true"], extra=["--kube-version", "1.28.0"])
    assert result.returncode == 0, result.stderr
    assert one(parse_manifests(result.stdout), "StatefulSet")


def test_threshold_needs_a_trailing_number(helm: Helm, tmp_path: Path) -> None:
    """A rules file whose expression does not end with its threshold fails loudly, not silently."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    rules = chart / "files" / "etcd-latency.rules.yaml"
    text = rules.read_text()
    marker = "          ) > 0.01\n"
    assert text.count(marker) == 1
    rules.write_text(text.replace(marker, "          ) > 0.01 and on () vector(1)\n", 1))
    name = "EtcdLatencyWalFsyncSlow"
    result = helm.template(chart=chart, sets=[f"prometheusRule.alerts.{name}.threshold=0.02"])
    assert result.returncode != 0
    assert f"prometheusRule.alerts.{name}.threshold" in result.stderr
    assert "does not end with a comparison" in result.stderr


@pytest.mark.parametrize("name", VALUE_SETS)
def test_notes_render(helm: Helm, name: str, tmp_path: Path) -> None:
    """NOTES.txt renders for every values set (helm template skips it, so render a copy)."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "notes-under-test" }}' + notes + "{{- end }}"
    )
    (chart / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "notes-under-test" . | toJson }}\n'
    )
    values = [] if name == "default" else [CHART_DIR / "ci" / f"{name}-values.yaml"]
    result = helm.template(
        values=values, chart=chart, extra=["-s", "templates/notes-under-test.yaml"]
    )
    assert result.returncode == 0, result.stderr
    text = parse_manifests(result.stdout)[0]["data"]["notes"]
    assert "port-forward svc/etcd-latency-exporter 18379:18379" in text
    assert "<no value>" not in text
