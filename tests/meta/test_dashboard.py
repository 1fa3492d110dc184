"""Static checks of dashboards/etcd-latency.json for Grafana 7.5 and Plutono.

There is no Grafana server here, so the dashboard-linter's rules are encoded as tests: a templated
datasource everywhere, units on every panel, `$__rate_interval`, selectors on the dashboard's
variables, only panel types Grafana 7.5 has, and every query valid for `promtool check rules`.
The end-to-end test runs the same queries against a real Prometheus.
"""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from tests.support.dashboard import iter_panels, load_dashboard, queries, substitute
from tests.support.promtool import (
    exported_series_names,
    load_rule_groups,
    run_promtool,
    write_recording_rules,
)

DASHBOARD = load_dashboard()
PANELS = [p for p in iter_panels(DASHBOARD) if p["type"] != "row"]
ALLOWED_TYPES = {"graph", "stat", "table", "heatmap", "text", "row"}
DATASOURCE = "${datasource}"
VALUES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "namespace": ".*",
    "etcd": ".*",
    "datasource": "prometheus",
}
METRIC = re.compile(r"\b(etcd_latency_[a-z0-9_]+)(\{[^}]*\})?")
# A series of the rules file (level:metric:operations), e.g. the per-class ratio, whose class median
# spans members the dashboard's variables do not select.
RECORDED = re.compile(r"\b([a-z_]+:etcd_latency_[a-z0-9_]+:[a-z0-9_]+)(\{[^}]*\})?")
RANGE = re.compile(r"\[([^\]]+)\]")


def _unit(panel: dict[str, Any]) -> str | None:
    if panel["type"] == "graph":
        unit: str | None = panel["yaxes"][0]["format"]
        assert panel["fieldConfig"]["defaults"]["unit"] == unit, panel["title"]
        return unit
    if panel["type"] == "heatmap":
        return str(panel["yAxis"]["format"])
    other: str | None = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    return other


def test_identity_and_model() -> None:
    assert DASHBOARD["uid"] == "etcd-latency"
    assert DASHBOARD["schemaVersion"] == 27  # Grafana 7.5, the base of Plutono
    assert DASHBOARD["id"] is None
    assert DASHBOARD["title"]
    assert DASHBOARD["tags"]
    assert DASHBOARD["time"]["from"] == "now-1h"


def test_panel_ids_unique_and_grid_positions_sane() -> None:
    ids = [p["id"] for p in iter_panels(DASHBOARD)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))
    boxes = []
    for panel in iter_panels(DASHBOARD):
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) and pos[k] >= 0 for k in ("x", "y", "w", "h")), pos
        assert pos["w"] > 0
        assert pos["h"] > 0
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        boxes.append((panel["title"], pos))
    for (a, p), (b, q) in combinations(boxes, 2):
        overlap_x = p["x"] < q["x"] + q["w"] and q["x"] < p["x"] + p["w"]
        overlap_y = p["y"] < q["y"] + q["h"] and q["y"] < p["y"] + p["h"]
        assert not (overlap_x and overlap_y), f"{a!r} overlaps {b!r}"


def test_only_grafana_7_panel_types() -> None:
    assert {p["type"] for p in iter_panels(DASHBOARD)} <= ALLOWED_TYPES


def test_datasource_templated_on_every_panel_and_target() -> None:
    for panel in PANELS:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_variables() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "etcd"):
        var = variables[name]
        assert var["type"] == "query"
        assert var["datasource"] == DATASOURCE
        assert var["multi"] is True
        assert var["includeAll"] is True
        assert var["allValue"] == ".*"
        assert var["query"].startswith("label_values(etcd_latency_")
    assert "$namespace" in variables["etcd"]["query"]


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p["title"])
def test_panel_has_unit_description_and_targets(panel: dict[str, Any]) -> None:
    assert _unit(panel), f"{panel['title']} has no unit"
    assert panel.get("description")
    assert panel["targets"]


@pytest.mark.parametrize("query", queries(DASHBOARD), ids=lambda q: f"{q.panel_title}-{q.ref_id}")
def test_query_follows_the_lint_rules(query: Any) -> None:
    """Known metrics, selected by $namespace and $etcd, ranges over $__rate_interval."""
    known = exported_series_names()
    records = {r["record"] for g in load_rule_groups() for r in g["rules"] if "record" in r}
    recorded = RECORDED.findall(query.expr)
    for name, selector in recorded:
        assert name in records, f"{name} is not recorded by the rules file"
        assert 'namespace=~"$namespace"' in selector, name
        assert 'etcd=~"$etcd"' in selector, name
    found = METRIC.findall(RECORDED.sub("", query.expr))
    assert found or recorded
    for name, selector in found:
        assert name in known, f"{name} is not in exporter/metrics.py"
        assert 'namespace=~"$namespace"' in selector, name
        assert 'etcd=~"$etcd"' in selector, name
    for window in RANGE.findall(query.expr):
        assert window == "$__rate_interval", query.expr


def test_doc_limits_are_drawn() -> None:
    """The p99 panels draw etcd's documented limits: 10 ms fsync, 25 ms commit."""
    limits = {}
    for panel in PANELS:
        for target in panel["targets"]:
            if "histogram_quantile(0.99" in target["expr"]:
                metric = METRIC.search(target["expr"])
                assert metric
                limits[metric.group(1)] = [t["value"] for t in panel["thresholds"]]
    assert limits == {
        "etcd_latency_disk_wal_fsync_duration_seconds_bucket": [0.01],
        "etcd_latency_disk_backend_commit_duration_seconds_bucket": [0.025],
    }


def test_heatmaps_and_tables_use_their_formats() -> None:
    for panel in PANELS:
        for target in panel["targets"]:
            if panel["type"] == "heatmap":
                assert target["format"] == "heatmap"
                assert target["legendFormat"] == "{{le}}"
                assert panel["dataFormat"] == "tsbuckets"
            if panel["type"] == "table":
                assert target["format"] == "table"
                assert target["instant"] is True


def test_every_query_passes_promtool(tmp_path: Path) -> None:
    """Each expression, variables substituted, parses as PromQL (wrapped as recording rules)."""
    exprs = {
        f"panel_{q.panel_id}_{q.ref_id}": substitute(q.expr, VALUES) for q in queries(DASHBOARD)
    }
    variables = DASHBOARD["templating"]["list"]
    for var in variables:
        if var["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", var["query"])
            assert inner, var["query"]
            exprs[f"variable_{var['name']}"] = substitute(inner.group(1), VALUES)
    path = write_recording_rules(exprs, tmp_path / "dashboard.rules.yaml")
    output = run_promtool("check", "rules", str(path))
    assert f"SUCCESS: {len(exprs)} rules found" in output
