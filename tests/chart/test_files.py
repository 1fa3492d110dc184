"""One source of truth: the chart's rules and dashboard are dashboards/'s files; values documented.

The chart carries copies under files/ (Helm cannot read outside the chart); `.ci/sync-chart`
refreshes them. With default values the PrometheusRule equals the rules file; overridden values
change exactly the thresholds, `for:` and labels they name.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from exporter import __version__
from tests.support.helm import (
    CHART_DIR,
    REPO_ROOT,
    Helm,
    Render,
    ci_values_files,
    one,
    parse_manifests,
)

DASHBOARDS = REPO_ROOT / "dashboards"
RULES = "etcd-latency.rules.yaml"
DASHBOARD = "etcd-latency.json"
# The threshold of an alert is the number its expression ends with (see the rules file's header).
TRAILING_NUMBER = re.compile(
    r"^(.*(?:>|<|>=|<=|==|!=)\s*)([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(\s*)$", re.S
)
# The etcd roles whose HDD placement is intended: the regex of EtcdLatencyHddStorage's matcher.
ROLES_MATCHER = re.compile(r'etcd=~"([^"]*)"')
# The floor of a …SlowForClass alert: the number the member's p99 is compared with.
FLOOR = re.compile(r"(:p99_5m\s*>\s*)([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")
# The class median recording rules, whose trailing number is the minimum of members of a class.
MEDIAN_RECORD = re.compile(r"^storage_class:.+:p99_5m_median$")


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
    return schema


def _values() -> dict[str, Any]:
    values: dict[str, Any] = _load_yaml(CHART_DIR / "values.yaml")
    return values


def _file_alerts() -> dict[str, dict[str, Any]]:
    groups = _load_yaml(DASHBOARDS / RULES)["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("name", [RULES, DASHBOARD])
def test_chart_copy_is_byte_identical(name: str) -> None:
    """files/<name> is dashboards/<name>, byte for byte (run .ci/sync-chart after editing)."""
    source, copy_ = DASHBOARDS / name, CHART_DIR / "files" / name
    assert copy_.read_bytes() == source.read_bytes(), f"run .ci/sync-chart: {copy_} is stale"


def test_chart_app_version_is_the_exporter_version() -> None:
    """appVersion (the default image tag) is exporter.__version__."""
    chart = _load_yaml(CHART_DIR / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "etcd-latency-exporter"
    assert chart["appVersion"] == __version__


def test_dashboard_configmap(render: Render) -> None:
    """The ConfigMap holds the dashboard unchanged, labelled for Grafana's sidecar and Plutono."""
    config_map = one(render("default"), "ConfigMap")
    assert config_map["data"] == {DASHBOARD: (DASHBOARDS / DASHBOARD).read_text()}
    labels = config_map["metadata"]["labels"]
    assert labels["grafana_dashboard"] == "1"
    assert labels["dashboard.monitoring.gardener.cloud/seed"] == "true"


def test_prometheus_rule_equals_rules_file(render: Render) -> None:
    """With default values the PrometheusRule's groups are the rules file's groups."""
    rule = one(render("default"), "PrometheusRule")
    assert rule["spec"]["groups"] == _load_yaml(DASHBOARDS / RULES)["groups"]


def _file_medians() -> dict[str, dict[str, Any]]:
    groups = _load_yaml(DASHBOARDS / RULES)["groups"]
    return {
        r["record"]: r
        for g in groups
        for r in g["rules"]
        if MEDIAN_RECORD.match(r.get("record", ""))
    }


def _expected_with_overrides(
    overrides: dict[str, Any], extra: dict[str, str], min_members: int | None = None
) -> list[Any]:
    """The rules file's groups with the overrides applied (independently of the template)."""
    groups = copy.deepcopy(_load_yaml(DASHBOARDS / RULES)["groups"])
    for group in groups:
        kept = []
        for rule in group["rules"]:
            if min_members is not None and MEDIAN_RECORD.match(rule.get("record", "")):
                match = TRAILING_NUMBER.match(rule["expr"])
                assert match, rule["record"]
                rule["expr"] = f"{match[1]}{min_members}{match[3]}"
            settings = overrides.get(rule.get("alert"), {})
            if settings.get("enabled", True) is False:
                continue
            if "alert" in rule:
                rule["labels"] = {**extra, **rule.get("labels", {})}
            if "for" in settings:
                rule["for"] = settings["for"]
            if "severity" in settings:
                rule["labels"]["severity"] = settings["severity"]
            if "threshold" in settings:
                match = TRAILING_NUMBER.match(rule["expr"])
                assert match, rule["alert"]
                rule["expr"] = f"{match[1]}{settings['threshold']}{match[3]}"
            if "floor" in settings:
                assert len(FLOOR.findall(rule["expr"])) == 1, rule["alert"]
                rule["expr"] = FLOOR.sub(rf"\g<1>{settings['floor']}", rule["expr"])
            if "intendedRoles" in settings:
                [old] = ROLES_MATCHER.findall(rule["expr"])
                new = settings["intendedRoles"]
                rule["expr"] = rule["expr"].replace(f'etcd=~"{old}"', f'etcd=~"{new}"')
            kept.append(rule)
        group["rules"] = kept
    return [g for g in groups if g["rules"]]


def test_prometheus_rule_carries_overrides(render: Render) -> None:
    """Overridden thresholds, `for:`, severity and `enabled` reach the PrometheusRule."""
    values = _load_yaml(CHART_DIR / "ci" / "thresholds-values.yaml")["prometheusRule"]
    rule = one(render("thresholds"), "PrometheusRule")
    groups = rule["spec"]["groups"]
    min_members = values["classMedian"]["minMembers"]
    assert groups == _expected_with_overrides(
        values["alerts"], values["additionalRuleLabels"], min_members
    )
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    assert "EtcdLatencyLogStreamDown" not in alerts
    assert alerts["EtcdLatencyWalFsyncSlow"]["expr"].rstrip().endswith("> 0.02")
    assert alerts["EtcdLatencyWalFsyncSlow"]["for"] == "15m"
    assert alerts["EtcdLatencySlowRequests"]["expr"].rstrip().endswith(") > 5")
    assert alerts["EtcdLatencyBackendCommitCritical"]["labels"] == {
        "severity": "warning",
        "team": "storage",
    }
    assert 'etcd=~"etcd-events"' in alerts["EtcdLatencyHddStorage"]["expr"]
    assert alerts["EtcdLatencyMemberCrashLooping"]["expr"].rstrip().endswith(") >= 5")
    wal_class = alerts["EtcdLatencyWalFsyncSlowForClass"]
    assert wal_class["expr"].rstrip().endswith(") >= 4")
    assert ":p99_5m > 0.008)" in wal_class["expr"]
    assert wal_class["for"] == "30m"
    commit_class = alerts["EtcdLatencyBackendCommitSlowForClass"]["expr"]
    assert ":p99_5m > 0.02)" in commit_class
    assert commit_class.rstrip().endswith(") >= 3")
    medians = [r for g in groups for r in g["rules"] if MEDIAN_RECORD.match(r.get("record", ""))]
    assert len(medians) == 2
    assert all(r["expr"].rstrip().endswith(") >= 10") for r in medians)


def test_threshold_from_set_string(helm: Helm) -> None:
    """`--set …threshold=0.05` (a string to helm) is accepted and substituted."""
    name = "EtcdLatencyBackendCommitSlow"
    result = helm.template(sets=[f"prometheusRule.alerts.{name}.threshold=0.05"])
    assert result.returncode == 0, result.stderr
    rule = one(parse_manifests(result.stdout), "PrometheusRule")
    [expr] = [
        r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if r.get("alert") == name
    ]
    assert expr.rstrip().endswith("> 0.05")


def test_alert_defaults_are_the_rules_file() -> None:
    """values.yaml's alert defaults are the file's `for:`, severity and trailing threshold."""
    alerts = _values()["prometheusRule"]["alerts"]
    file_alerts = _file_alerts()
    assert list(alerts) == list(file_alerts)
    for name, settings in alerts.items():
        rule = file_alerts[name]
        assert settings["enabled"] is True
        assert settings["for"] == rule["for"], name
        assert settings["severity"] == rule["labels"]["severity"], name
        if "threshold" in settings:
            match = TRAILING_NUMBER.match(rule["expr"])
            assert match, f"{name}: expression does not end with its threshold"
            assert float(match[2]) == settings["threshold"], name
        if "intendedRoles" in settings:
            assert ROLES_MATCHER.findall(rule["expr"]) == [settings["intendedRoles"]], name
        if "floor" in settings:
            [(_, floor)] = FLOOR.findall(rule["expr"])
            assert float(floor) == settings["floor"], name


def test_class_median_minimum_is_the_rules_file() -> None:
    """classMedian.minMembers is the number each class median recording rule ends with."""
    minimum = _values()["prometheusRule"]["classMedian"]["minMembers"]
    medians = _file_medians()
    assert len(medians) == 2, "one class median for WAL fsync, one for backend commit"
    for name, rule in medians.items():
        match = TRAILING_NUMBER.match(rule["expr"])
        assert match, f"{name}: expression does not end with the minimum of members"
        assert int(match[2]) == minimum, name


def test_schema_knows_every_alert() -> None:
    """The schema lists exactly the file's alerts; `threshold` only where values.yaml has one."""
    schema = _schema()
    alerts = schema["properties"]["prometheusRule"]["properties"]["alerts"]
    assert alerts["additionalProperties"] is False
    assert set(alerts["properties"]) == set(_file_alerts())
    values = _values()["prometheusRule"]["alerts"]
    for name, ref in alerts["properties"].items():
        definition = schema["definitions"][ref["$ref"].rsplit("/", 1)[1]]
        assert ("threshold" in definition["properties"]) == ("threshold" in values[name]), name


@pytest.mark.parametrize(
    "path", [None, *ci_values_files()], ids=lambda p: p.name if p else "values"
)
def test_values_files_match_schema(path: Path | None) -> None:
    """values.yaml and every ci/ values set validate against values.schema.json."""
    values = _values() if path is None else _load_yaml(path)
    jsonschema.Draft7Validator(_schema()).validate(values)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        resolved: dict[str, Any] = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        return resolved
    return node


def _walk(schema: dict[str, Any], node: dict[str, Any], value: Any, path: str) -> list[str]:
    """Key paths of values.yaml down to the schema's leaves (free maps and lists are leaves)."""
    node = _resolve(schema, node)
    if not isinstance(value, dict) or "properties" not in node:
        return [path]
    assert set(value) == set(node["properties"]), f"{path or '(root)'}: values vs schema"
    paths = []
    for key, sub in node["properties"].items():
        paths += _walk(schema, sub, value[key], f"{path}.{key}" if path else key)
    return paths


def test_schema_covers_every_value() -> None:
    """Every value has a schema entry with a description, and the main objects are closed."""
    schema = _schema()
    paths = _walk(schema, schema, _values(), "")
    assert len(paths) > 80
    assert schema["additionalProperties"] is False

    def check(node: dict[str, Any], where: str) -> None:
        node = _resolve(schema, node)
        assert node.get("description"), f"{where}: no description"
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{where}: not closed"
            for key, sub in node["properties"].items():
                check(sub, f"{where}.{key}")

    for key, sub in schema["properties"].items():
        check(sub, key)


def test_readme_lists_every_value() -> None:
    """The chart README's table names every value path, with the default for scalars."""
    readme = (CHART_DIR / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", readme, re.M))
    schema = _schema()
    values = _values()
    for path in _walk(schema, schema, values, ""):
        if path.startswith("prometheusRule.alerts."):
            continue
        assert path in rows, f"README.md lacks `{path}`"
        default: Any = values
        for key in path.split("."):
            default = default[key]
        if not isinstance(default, dict | list) or not default:
            assert rows[path].strip() == f"`{json.dumps(default)}`", path


def test_readme_lists_every_alert_default() -> None:
    """The README's alert table shows each alert's default for, severity and threshold."""
    readme = (CHART_DIR / "README.md").read_text()
    for name, settings in _values()["prometheusRule"]["alerts"].items():
        threshold = f"`{settings['threshold']}`" if "threshold" in settings else "–"
        row = f"| `{name}` | `{settings['for']}` | `{settings['severity']}` | {threshold} |"
        assert row in readme, name
