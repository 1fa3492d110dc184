"""The `bench` marker on the benchmarks' tests, by folder, as tests/conftest.py does for tests/."""

from __future__ import annotations

import pytest

from tests.support.levels import mark_by_folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_by_folder(items, config.rootpath)
