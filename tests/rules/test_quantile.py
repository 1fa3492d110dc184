"""PromQL's histogram_quantile (promtool) and the diagnosis' own `quantile` give the same p99
from the same etcd buckets: the status page and `diagnose` say what the alert rules would."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exporter.diagnosis.histogram import Histogram, quantile

ETCD_BOUNDS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024)


def hist(*counts: float) -> Histogram:
    """Cumulative counts per etcd bound (missing ones repeat the last), then +Inf."""
    cum = list(counts) + [counts[-1]] * (len(ETCD_BOUNDS) - len(counts))
    return Histogram(bounds=(*ETCD_BOUNDS, math.inf), cumulative=(*cum, cum[-1]))


def test_quantile_matches_promtool(tmp_path: Path) -> None:
    """The same buckets through PromQL's histogram_quantile give the same p99."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed")
    cases = [hist(0, 0, 50, 100), hist(0, 3, 7, 7, 60, 61, 200), hist(5, 5, 5, 5, 5, 5, 5, 9)]
    series, exprs = [], []
    for i, case in enumerate(cases):
        for bound, cum in zip(case.bounds, case.cumulative, strict=True):
            le = "+Inf" if math.isinf(bound) else repr(bound)
            series.append({"series": f'h_bucket{{case="{i}",le="{le}"}}', "values": str(cum)})
        exprs.append(
            {
                "expr": f'histogram_quantile(0.99, h_bucket{{case="{i}"}})',
                "eval_time": "0m",
                "exp_samples": [{"labels": f'{{case="{i}"}}', "value": quantile(0.99, case)}],
            }
        )
    test = {"interval": "1m", "input_series": series, "promql_expr_test": exprs}
    (tmp_path / "rules.yml").write_text("groups: []\n")
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "tests": [test]})
    )
    out = subprocess.run(
        ["promtool", "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
