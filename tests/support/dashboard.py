"""Read the shipped Grafana dashboard: its panels and PromQL queries, with variables substituted.

Shared by the static checks (tests/meta/test_dashboard.py) and the end-to-end test, which runs
every query against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "dashboards" / "etcd-latency.json"

# `$var`, `${var}` and `${var:format}`; Grafana's built-ins start with `__`.
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True, slots=True)
class Query:
    """One target of one panel."""

    panel_id: int
    panel_title: str
    ref_id: str
    expr: str


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard JSON as a dict."""
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Mapping[str, Any]) -> list[Query]:
    """Every PromQL expression of every panel target."""
    return [
        Query(panel["id"], panel["title"], target["refId"], target["expr"])
        for panel in iter_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables with `values` (keys without `$`); an unknown one is a KeyError."""

    def repl(match: re.Match[str]) -> str:
        return values[match.group(1) or match.group(2)]

    return VARIABLE.sub(repl, expr)
