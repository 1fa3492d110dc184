"""Fixtures shared by every test tree, and the level marker put on each test by its folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.etcd import EtcdPool, EtcdProcess, EtcdUnavailable, StartEtcd
from tests.support.helm import Helm, Render, RenderText, find_helm, parse_manifests, values_files
from tests.support.levels import mark_by_folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_by_folder(items, config.rootpath)


@pytest.fixture
def etcd_factory(tmp_path: Path) -> Iterator[StartEtcd]:
    """`start(version="3.4"|"3.5", name=..., fsync_delay_us=..., ...)` → a running member.

    Data and logs live under tmp_path; every member is killed at teardown. Skips the test, with
    the reason, when the etcd or strace binary is not installed.
    """
    pool = EtcdPool(tmp_path)

    def start(**kwargs: object) -> EtcdProcess:
        try:
            return pool.start(**kwargs)  # type: ignore[arg-type]
        except EtcdUnavailable as err:
            pytest.skip(str(err))

    try:
        yield start
    finally:
        pool.close()


# -- the chart, rendered by a real helm (tests/chart/ and tests/meta/test_dockerfile.py) ----------


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
