"""Fixtures of the image tests: podman with the built image, and one real etcd for the module.

Without podman the tests are skipped, except in CI (CI=true), where they fail: `make test` runs
`make image` first, so there a missing podman or image is a broken build, not a missing tool.
With podman, a missing image fails too, naming `make image`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.image.podman import Podman, find_podman, image_name, in_ci
from tests.support.etcd import EtcdPool, EtcdProcess, EtcdUnavailable


@pytest.fixture(scope="session")
def podman() -> Podman:
    """podman and the image under test (see the module docstring for when this skips)."""
    binary = find_podman()
    if binary is None:
        reason = "podman is not installed (`make image` installs it and builds the image)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so the image test must run")
        pytest.skip(reason)
    found = Podman(binary=binary, image=image_name())
    if not found.image_exists():
        pytest.fail(f"image {found.image} not found: build it with `make image`")
    return found


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    """One real etcd 3.5 on loopback (plain http), shared by a module's tests."""
    with EtcdPool(tmp_path_factory.mktemp("etcd")) as pool:
        try:
            member = pool.start(version="3.5", name="image")
        except EtcdUnavailable as err:
            pytest.skip(str(err))
        yield member
