"""The data flow is visible in the imports: each stage imports only what lies upstream of it.

discovery → sources → parser → state → collector → web; `app` is the one composition root and
nothing but the CLI imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"

# module or package → exporter modules/packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "model": ("exporter.",),
    "metrics": ("exporter.",),
    "durations": ("exporter.",),
    "parser": (
        "exporter.sources",
        "exporter.scrape",
        "exporter.discovery",
        "exporter.web",
        "exporter.state",
        "exporter.exposition.collector",
        "exporter.commands",
        "exporter.app",
    ),
    "state": (
        "exporter.parser",
        "exporter.sources",
        "exporter.scrape",
        "exporter.discovery",
        "exporter.web",
        "exporter.exposition.collector",
        "exporter.commands",
        "exporter.app",
    ),
    "exposition": (
        "exporter.parser",
        "exporter.sources",
        "exporter.scrape",
        "exporter.discovery",
        "exporter.web",
        "exporter.commands",
        "exporter.app",
    ),
    "scrape": (
        "exporter.parser",
        "exporter.sources",
        "exporter.discovery",
        "exporter.web",
        "exporter.exposition.collector",
        "exporter.commands",
        "exporter.app",
    ),
    "sources": (
        "exporter.scrape",
        "exporter.discovery",
        "exporter.web",
        "exporter.exposition.collector",
        "exporter.commands",
        "exporter.app",
    ),
    "discovery": (
        "exporter.parser",
        "exporter.scrape",
        "exporter.web",
        "exporter.exposition.collector",
        "exporter.commands",
        "exporter.app",
    ),
    "web": (
        "exporter.sources",
        "exporter.discovery",
        "exporter.commands",
        "exporter.app",
        "exporter.parser",
    ),
    "commands": ("exporter.app", "exporter.web", "exporter.supervisor"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n == "exporter" or n.startswith("exporter.")}


def _files(stage: str) -> list[Path]:
    package = PACKAGE / stage
    return sorted(package.glob("*.py")) if package.is_dir() else [PACKAGE / f"{stage}.py"]


def _forbidden(name: str, rule: str) -> bool:
    if rule.endswith("."):
        return name.startswith(rule)
    return name == rule or name.startswith(rule + ".")


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stage_imports_only_upstream(stage: str) -> None:
    files = _files(stage)
    assert files, stage
    assert all(f.exists() for f in files), stage
    offending = {
        f"{f.relative_to(PACKAGE.parent)} imports {name}"
        for f in files
        for name in _imports(f)
        for rule in FORBIDDEN[stage]
        if _forbidden(name, rule)
    }
    assert not offending, sorted(offending)


def test_the_rule_catches_a_violation() -> None:
    assert _forbidden("exporter.web.status", "exporter.web")
    assert _forbidden("exporter.model", "exporter.")
    assert not _forbidden("exporter.webhooks", "exporter.web")


def test_only_the_cli_imports_the_composition_root() -> None:
    importers = {
        str(f.relative_to(PACKAGE.parent))
        for f in PACKAGE.rglob("*.py")
        if f.name not in ("cli.py", "app.py") and "exporter.app" in _imports(f)
    }
    assert not importers
