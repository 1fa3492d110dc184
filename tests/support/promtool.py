"""Helpers for tests of rules and queries: run promtool, load the rules file, know the metric names.

Used by tests/rules/, tests/chart/, tests/e2e/ and tests/meta/test_dashboard.py. A missing
promtool skips the test with the reason (CI installs Debian's `prometheus` package, which ships
it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.metrics import DEFINITIONS, RELAYED, RELAYED_WITH_VOLUME, relayed_name

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO_ROOT / "dashboards"
RULES_FILE = DASHBOARDS / "etcd-latency.rules.yaml"
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"


def promtool_or_skip() -> str:
    """Path of promtool; skips the calling test when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return path


def run_promtool(*args: str, cwd: Path | None = None, timeout: float = 60.0) -> str:
    """Run `promtool ARGS`; on a non-zero exit fail the test with promtool's own output."""
    argv = [promtool_or_skip(), *args]
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{output}"
    return output


def load_rule_groups(path: Path = RULES_FILE) -> list[dict[str, Any]]:
    """The `groups` of a Prometheus rules file."""
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Alerting rules by name."""
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def write_recording_rules(exprs: dict[str, str], path: Path) -> Path:
    """Wrap expressions as recording rules in a file `promtool check rules` can parse."""
    rules = [{"record": f"check:expr:{name}", "expr": expr} for name, expr in exprs.items()]
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    return path


def exported_series_names() -> set[str]:
    """Every series name the exporter can expose, from exporter/metrics.py."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "info": ("_info",),
        "histogram": ("_bucket", "_count", "_sum"),
    }
    names = {d.name + s for d in DEFINITIONS for s in suffixes[d.type]}
    for family in RELAYED + RELAYED_WITH_VOLUME:
        names |= {relayed_name(family) + s for s in ("", "_bucket", "_count", "_sum")}
    return names
