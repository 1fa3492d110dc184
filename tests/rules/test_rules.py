"""The rules file: promtool accepts it, its unit tests pass, every alert is complete and documented.

`promtool check rules` and `promtool test rules` run for real; a failure shows promtool's output.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promtool import (
    DASHBOARDS,
    RULES_FILE,
    RUNBOOKS,
    alerts,
    exported_series_names,
    load_rule_groups,
    run_promtool,
)
from tests.support.rules_transform import scale_rules, with_class_min_members

RULE_TESTS = sorted(DASHBOARDS.glob("*.rules.test.yaml"))
ALERT_NAMES = {
    "EtcdLatencyWalFsyncSlow",
    "EtcdLatencyWalFsyncCritical",
    "EtcdLatencyBackendCommitSlow",
    "EtcdLatencyBackendCommitCritical",
    "EtcdLatencyWalFsyncSlowForClass",
    "EtcdLatencyBackendCommitSlowForClass",
    "EtcdLatencySlowRequests",
    "EtcdLatencyHddStorage",
    "EtcdLatencyStorageClassMismatch",
    "EtcdLatencySeedProviderMismatch",
    "EtcdLatencyExpectedClassMissing",
    "EtcdLatencyVolumeIopsLow",
    "EtcdLatencyHeartbeatLate",
    "EtcdLatencyMemberCrashLooping",
    "EtcdLatencyTargetDown",
    "EtcdLatencyLogStreamDown",
}
RUNBOOK_BASE = (
    "https://github.com/etcd-latency-exporter/etcd-latency-exporter/blob/main/docs/runbooks.md#"
)
# The chart replaces an alert's threshold: the number its expression ends with.
TRAILING_THRESHOLD = re.compile(r"(?:>|<|>=|<=|==|!=)\s*[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?\s*$")
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
PLAIN_DURATION = re.compile(r"^\d+[smh]$")


def _alert_rules() -> dict[str, dict[str, Any]]:
    return alerts(load_rule_groups())


def _github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for the headings of a markdown document."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_promtool_check_rules() -> None:
    """promtool parses the file and every expression in it."""
    output = run_promtool("check", "rules", str(RULES_FILE))
    assert "SUCCESS" in output


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(path: Path) -> None:
    """Every promtool unit test file passes (run from its directory: rule_files are relative)."""
    output = run_promtool("test", "rules", path.name, cwd=path.parent)
    assert "SUCCESS" in output


def test_alert_names_are_the_designed_set() -> None:
    assert set(_alert_rules()) == ALERT_NAMES


@pytest.mark.parametrize("name", sorted(ALERT_NAMES))
def test_alert_is_complete(name: str) -> None:
    """severity, an untemplated summary, a description naming shoot/pod/class, a runbook link."""
    rule = _alert_rules()[name]
    assert rule["labels"]["severity"] in {"warning", "critical", "info"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "{{" not in annotations["summary"]
    for label in ("shoot", "pod", "storage_class", "disk_class"):
        assert f"$labels.{label}" in annotations["description"], label
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()


def test_every_runbook_anchor_exists() -> None:
    anchors = _github_anchors(RUNBOOKS.read_text())
    missing = [
        name
        for name, rule in _alert_rules().items()
        if rule["annotations"]["runbook_url"].rpartition("#")[2] not in anchors
    ]
    assert not missing, f"no section in docs/runbooks.md for {missing}"


@pytest.mark.parametrize("name", sorted(ALERT_NAMES))
def test_threshold_and_for_are_templatable(name: str) -> None:
    """The chart substitutes the trailing number and the `for:` duration; both must be literal."""
    rule = _alert_rules()[name]
    assert TRAILING_THRESHOLD.search(rule["expr"]), rule["expr"]
    assert PLAIN_DURATION.match(rule["for"]), rule["for"]


def test_recording_rules_are_named_level_metric_operation() -> None:
    records = [r["record"] for g in load_rule_groups() for r in g["rules"] if "record" in r]
    assert records
    assert [r for r in records if not RECORD_NAME.match(r)] == []


def test_rules_use_only_exported_metrics() -> None:
    """Every etcd_latency_ series the rules read is in the exporter's metric catalogue."""
    exprs = "\n".join(r["expr"] for g in load_rule_groups() for r in g["rules"])
    used = set(re.findall(r"(?<![\w:])(etcd_latency_[a-z0-9_]+)", exprs))
    assert used
    assert used - exported_series_names() == set()


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    """Each alert has a promtool case where it fires and one where it must not."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert ALERT_NAMES - firing == set(), "never tested firing"
    assert ALERT_NAMES - quiet == set(), "never tested quiet"


def test_scaled_copy_for_tests_is_valid(tmp_path: Path) -> None:
    """The end-to-end test's copy (windows and `for:` divided by 30) keeps every rule and parses."""
    short = scale_rules(RULES_FILE.read_text())
    path = tmp_path / "short.rules.yaml"
    path.write_text(short)
    run_promtool("check", "rules", str(path))
    rules = alerts(yaml.safe_load(short)["groups"])
    assert set(rules) == ALERT_NAMES
    windows = set(re.findall(r"\[(\w+)\]", short))
    assert windows == {"10s", "20s", "30s", "60s"}
    assert rules["EtcdLatencyWalFsyncSlow"]["for"] == "20s"
    assert rules["EtcdLatencyWalFsyncCritical"]["for"] == "10s"
    assert rules["EtcdLatencyHddStorage"]["for"] == "30s"


def test_scaled_copy_refuses_sub_second_durations() -> None:
    with pytest.raises(ValueError, match="below one second"):
        scale_rules(RULES_FILE.read_text(), factor=1 / 600)


def _medians(groups: list[dict[str, Any]]) -> dict[str, str]:
    return {
        r["record"]: r["expr"]
        for g in groups
        for r in g["rules"]
        if re.match(r"^storage_class:.+:p99_5m_median$", r.get("record", ""))
    }


def test_class_alerts_compare_with_one_floor() -> None:
    """Each …SlowForClass alert has one `:p99_5m > <floor>` comparison (the chart's `floor`)."""
    rules = _alert_rules()
    for name in ("EtcdLatencyWalFsyncSlowForClass", "EtcdLatencyBackendCommitSlowForClass"):
        floors = re.findall(r":p99_5m\s*>\s*([0-9.]+)", rules[name]["expr"])
        assert len(floors) == 1, name
        assert 0 < float(floors[0]) < 0.025, name


def test_class_min_members_copy(tmp_path: Path) -> None:
    """The end-to-end test's copy changes only the class medians' minimum of members, and parses."""
    text = RULES_FILE.read_text()
    copy = with_class_min_members(text, 1)
    path = tmp_path / "one-member.rules.yaml"
    path.write_text(copy)
    run_promtool("check", "rules", str(path))
    before, after = load_rule_groups(), yaml.safe_load(copy)["groups"]
    assert sorted(_medians(before)) == sorted(_medians(after))
    assert len(_medians(after)) == 2
    for name, expr in _medians(after).items():
        assert expr.rstrip().endswith(">= 1"), name
        assert _medians(before)[name].rstrip().endswith(">= 5"), name
    for group in before:
        for rule in group["rules"]:
            if rule.get("record") not in _medians(before):
                assert rule in next(g["rules"] for g in after if g["name"] == group["name"])
