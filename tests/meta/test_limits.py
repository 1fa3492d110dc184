"""The 10 ms / 25 ms limits, and the factor, floors and minimum of members of "slow for its
class", are defined once (exporter/metrics.py) and the rules, the chart and the HELP texts say
the same numbers: a verdict of `diagnose` or the status page and an alert never disagree about
what is slow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import metrics as m
from exporter.settings import DiagnoseSettings

ROOT = Path(__file__).resolve().parents[2]
RULES = [
    ROOT / "dashboards" / "etcd-latency.rules.yaml",
    ROOT / "helm" / "etcd-latency-exporter" / "files" / "etcd-latency.rules.yaml",
]
VALUES = ROOT / "helm" / "etcd-latency-exporter" / "values.yaml"
WARNINGS = {
    "EtcdLatencyWalFsyncSlow": m.WAL_FSYNC_LIMIT,
    "EtcdLatencyBackendCommitSlow": m.BACKEND_COMMIT_LIMIT,
}
THRESHOLD = re.compile(r">\s*([0-9.]+)\s*$")


def alerts(path: Path) -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        rule["alert"]: rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule
    }


@pytest.mark.parametrize("path", RULES, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize(("alert", "limit"), sorted(WARNINGS.items()))
def test_rules_fire_above_the_limit(path: Path, alert: str, limit: float) -> None:
    expr = alerts(path)[alert]["expr"].strip()
    found = THRESHOLD.search(expr)
    assert found is not None, expr
    assert float(found[1]) == limit
    assert f"below {limit * 1000:g}ms" in alerts(path)[alert]["annotations"]["description"]


@pytest.mark.parametrize(("alert", "limit"), sorted(WARNINGS.items()))
def test_chart_defaults_are_the_limits(alert: str, limit: float) -> None:
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    assert values["prometheusRule"]["alerts"][alert]["threshold"] == limit


def test_help_texts_state_the_limits() -> None:
    assert f"below {m.WAL_FSYNC_LIMIT * 1000:g}ms" in m.WAL_FSYNC.help
    assert f"below {m.BACKEND_COMMIT_LIMIT * 1000:g}ms" in m.BACKEND_COMMIT.help
    assert (m.WAL_FSYNC_LIMIT, m.BACKEND_COMMIT_LIMIT) == (0.010, 0.025)


# -- slow for its class: factor, floors and the minimum of members -------------------------------

CLASS_FLOORS = {
    "EtcdLatencyWalFsyncSlowForClass": m.WAL_FSYNC_CLASS_FLOOR,
    "EtcdLatencyBackendCommitSlowForClass": m.BACKEND_COMMIT_CLASS_FLOOR,
}
FACTOR = re.compile(r">=\s*([0-9.]+)\s*$")
FLOOR = re.compile(r":p99_5m\s*>\s*([0-9.]+)")


@pytest.mark.parametrize("path", RULES, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize(("alert", "floor"), sorted(CLASS_FLOORS.items()))
def test_class_alerts_use_the_factor_and_floor(path: Path, alert: str, floor: float) -> None:
    """diagnose's and the status page's "slow for its class" is the alert's condition."""
    expr = alerts(path)[alert]["expr"].strip()
    found = FACTOR.search(expr)
    assert found is not None, expr
    assert float(found[1]) == m.CLASS_MEDIAN_FACTOR
    assert [float(f) for f in FLOOR.findall(expr)] == [floor]


@pytest.mark.parametrize("path", RULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_class_medians_need_the_minimum_of_members(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    medians = {
        rule["record"]: rule["expr"].strip()
        for group in doc["groups"]
        for rule in group["rules"]
        if rule.get("record", "").endswith(":p99_5m_median")
    }
    assert len(medians) == 2
    for record, expr in medians.items():
        found = re.search(r">=\s*([0-9]+)$", expr)
        assert found is not None, record
        assert int(found[1]) == m.CLASS_MEDIAN_MIN_MEMBERS, record


@pytest.mark.parametrize(("alert", "floor"), sorted(CLASS_FLOORS.items()))
def test_chart_defaults_are_the_class_thresholds(alert: str, floor: float) -> None:
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))["prometheusRule"]
    assert values["alerts"][alert]["threshold"] == m.CLASS_MEDIAN_FACTOR
    assert values["alerts"][alert]["floor"] == floor
    assert values["classMedian"]["minMembers"] == m.CLASS_MEDIAN_MIN_MEMBERS


def test_class_thresholds() -> None:
    """3× (above the factor 2 etcd's doubling buckets can put between near latencies), floors at
    half the limits, 5 members (more than one HA etcd's 3)."""
    assert m.CLASS_MEDIAN_FACTOR == 3
    assert (m.WAL_FSYNC_CLASS_FLOOR, m.BACKEND_COMMIT_CLASS_FLOOR) == (0.005, 0.0125)
    assert m.CLASS_MEDIAN_MIN_MEMBERS == 5
    field = DiagnoseSettings.model_fields["class_min_members"]
    assert field.default == m.CLASS_MEDIAN_MIN_MEMBERS
