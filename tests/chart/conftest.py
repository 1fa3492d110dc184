"""Fixtures of the chart tests: a real helm, and rendered manifests cached per values set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chart.helm import CI_DIR, Helm, Manifest, find_helm, parse_manifests

Render = Callable[[str], list[Manifest]]
RenderText = Callable[[str], str]


def values_files(name: str) -> list[Path]:
    """`default` renders values.yaml alone; any other name is ci/<name>-values.yaml."""
    return [] if name == "default" else [CI_DIR / f"{name}-values.yaml"]


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The helm binary with a private HOME; skips when helm is not installed (`make setup`)."""
    binary = find_helm()
    if binary is None:
        pytest.skip("helm not found on PATH or in .tools/helm (run `make setup`)")
    return Helm(binary=binary, home=tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def render_text(helm: Helm) -> RenderText:
    """`helm template` output of a values set, rendered once per session."""
    cache: dict[str, str] = {}

    def run(name: str) -> str:
        if name not in cache:
            result = helm.template(values=values_files(name))
            assert result.returncode == 0, f"helm template ({name}) failed:\n{result.stderr}"
            cache[name] = result.stdout
        return cache[name]

    return run


@pytest.fixture(scope="session")
def render(render_text: RenderText) -> Render:
    """Parsed manifests of a values set (see `values_files`)."""
    return lambda name: parse_manifests(render_text(name))
