"""pytest fixtures: a started emulator and a kubeconfig file that points at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.kube.server import KubeEmulator


@pytest.fixture(name="kube")
async def kube_fixture(tmp_path: Path) -> AsyncIterator[KubeEmulator]:
    """A fresh emulator on a free loopback port; `kube.kubeconfig` is its kubeconfig path."""
    emu = KubeEmulator(bookmark_interval=0.5)
    await emu.start()
    emu.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield emu
    finally:
        await emu.stop()
