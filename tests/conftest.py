"""Fixtures shared by every test tree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.etcd import EtcdPool, EtcdProcess, EtcdUnavailable

StartEtcd = Callable[..., EtcdProcess]


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
