"""The "slow for its class" values reach the rules the chart ships, and change what fires.

`prometheusRule.alerts.<…SlowForClass>.{threshold,floor,for}` and
`prometheusRule.classMedian.minMembers` are substituted into the rendered PrometheusRule; promtool
then runs the rendered rules on one StorageClass of 4 members, one of them 4 times slower than the
others, and the alert fires exactly when the rendered values say it should.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.helm import CHART_DIR, Helm, one, parse_manifests
from tests.support.promtool import run_promtool

ALERT = "EtcdLatencyWalFsyncSlowForClass"
OUTLIER = "shoot--p1--s4"


def _member(namespace: str, lower: str | None, upper: str) -> list[dict[str, str]]:
    """A WAL fsync histogram whose 600 observations a minute all fall in (lower, upper]."""
    labels = (
        f'instance="10.0.0.1:18379", namespace="{namespace}", project="p1", etcd="etcd-main", '
        f'pod="etcd-main-0", pvc="main-etcd-etcd-main-0", pv="pv-{namespace}", '
        'storage_class="small", disk_class="ssd"'
    )
    name = "etcd_latency_disk_wal_fsync_duration_seconds"
    series = [] if lower is None else [(f'{name}_bucket{{{labels}, le="{lower}"}}', "0x40")]
    series += [
        (f'{name}_bucket{{{labels}, le="{upper}"}}', "0+600x40"),
        (f'{name}_bucket{{{labels}, le="+Inf"}}', "0+600x40"),
        (f"{name}_count{{{labels}}}", "0+600x40"),
    ]
    return [{"series": s, "values": v} for s, v in series]


def _unit_test(rules: str, fires: bool) -> dict[str, object]:
    """3 members at a p99 of 1.98ms, the outlier at 7.96ms (4.02 times the median)."""
    series = [s for n in (1, 2, 3) for s in _member(f"shoot--p1--s{n}", None, "0.002")]
    series += _member(OUTLIER, "0.004", "0.008")
    firing = f'count(ALERTS{{alertname="{ALERT}", alertstate="firing", namespace="{OUTLIER}"}})'
    everyone = f'count(ALERTS{{alertname="{ALERT}", alertstate="firing"}})'
    expected = [{"labels": "{}", "value": 1}] if fires else []
    return {
        "rule_files": [rules],
        "evaluation_interval": "1m",
        "group_eval_order": ["etcd-latency.rules", "etcd-latency.alerts"],
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": firing, "eval_time": "20m", "exp_samples": expected},
                    {"expr": everyone, "eval_time": "20m", "exp_samples": expected},
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    ("sets", "fires"),
    [
        pytest.param([], False, id="default-5-members"),
        pytest.param(["prometheusRule.classMedian.minMembers=4"], True, id="4-members"),
        pytest.param(
            [
                "prometheusRule.classMedian.minMembers=4",
                f"prometheusRule.alerts.{ALERT}.floor=0.008",
            ],
            False,
            id="floor-8ms",
        ),
        pytest.param(
            [
                "prometheusRule.classMedian.minMembers=4",
                f"prometheusRule.alerts.{ALERT}.threshold=5",
            ],
            False,
            id="factor-5",
        ),
        pytest.param(
            ["prometheusRule.classMedian.minMembers=4", f"prometheusRule.alerts.{ALERT}.for=30m"],
            False,
            id="for-30m",
        ),
        pytest.param(
            [
                "prometheusRule.classMedian.minMembers=4",
                f"prometheusRule.alerts.{ALERT}.floor=0.007",
            ],
            True,
            id="floor-7ms",
        ),
    ],
)
def test_rendered_values_decide_what_fires(
    helm: Helm, tmp_path: Path, sets: list[str], fires: bool
) -> None:
    """The rendered rules, run by promtool, fire for the outlier exactly as the values say."""
    result = helm.template(sets=sets)
    assert result.returncode == 0, result.stderr
    groups = one(parse_manifests(result.stdout), "PrometheusRule")["spec"]["groups"]
    (tmp_path / "rendered.rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    test = tmp_path / "class.test.yaml"
    test.write_text(yaml.safe_dump(_unit_test("rendered.rules.yaml", fires)))
    output = run_promtool("test", "rules", test.name, cwd=tmp_path)
    assert "SUCCESS" in output


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ([f"prometheusRule.alerts.{ALERT}.floor=fast"], "floor"),
        ([f"prometheusRule.alerts.{ALERT}.floor=-0.01"], "floor"),
        ([f"prometheusRule.alerts.{ALERT}.threshold=-3"], "threshold"),
        (["prometheusRule.alerts.EtcdLatencyWalFsyncSlow.floor=0.01"], "Additional property floor"),
        (["prometheusRule.classMedian.minMembers=0"], "minMembers"),
        (["prometheusRule.classMedian.minMembers=many"], "minMembers"),
        (["prometheusRule.classMedian.members=5"], "Additional property members"),
    ],
)
def test_schema_rejects_bad_class_values(helm: Helm, sets: list[str], expected: str) -> None:
    """Class values that violate values.schema.json fail, and the error names the key."""
    result = helm.template(sets=sets)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert expected in result.stderr


def _chart_with(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the chart whose rules file has `old` (present once) replaced by `new`."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    rules = chart / "files" / "etcd-latency.rules.yaml"
    text = rules.read_text()
    assert text.count(old) == 1, old
    rules.write_text(text.replace(old, new))
    return chart


def test_floor_needs_its_comparison(helm: Helm, tmp_path: Path) -> None:
    """A class alert that lost its `:p99_5m > <floor>` comparison fails loudly when floor is set."""
    marker = "(namespace_pod:etcd_latency_disk_wal_fsync_duration_seconds:p99_5m > 0.005)"
    chart = _chart_with(
        tmp_path, marker, "namespace_pod:etcd_latency_disk_wal_fsync_duration_seconds:p99_5m"
    )
    result = helm.template(chart=chart, sets=[f"prometheusRule.alerts.{ALERT}.floor=0.01"])
    assert result.returncode != 0
    assert f"prometheusRule.alerts.{ALERT}.floor" in result.stderr


def test_min_members_needs_the_median_rules(helm: Helm, tmp_path: Path) -> None:
    """minMembers fails loudly when the rules file has no class median rule to carry it."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    rules = chart / "files" / "etcd-latency.rules.yaml"
    text = rules.read_text()
    assert text.count(":p99_5m_median\n") == 2
    rules.write_text(text.replace(":p99_5m_median\n", ":p99_5m_class_median\n"))
    result = helm.template(chart=chart)
    assert result.returncode != 0
    assert "prometheusRule.classMedian.minMembers" in result.stderr
