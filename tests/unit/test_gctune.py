"""The daemon's garbage-collector settings: frozen startup objects, rare young collections,
and a periodic full collection that still frees cyclic garbage."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from exporter.runtime import gctune


def test_configure_then_restore() -> None:
    before = gc.get_threshold()
    previous = gctune.configure()
    try:
        assert previous == before
        assert gc.get_threshold() == gctune.THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gctune.restore(previous)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


class Node:
    def __init__(self, freed: asyncio.Event) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it
        self.freed = freed

    def __del__(self) -> None:
        self.freed.set()


async def test_periodic_collection_frees_cycles() -> None:
    previous = gctune.configure()
    gc.disable()  # only the periodic task may collect
    try:
        freed = asyncio.Event()
        Node(freed)
        assert not freed.is_set()
        task = asyncio.create_task(gctune.collect_periodically(interval=0.01))
        async with asyncio.timeout(5):
            await freed.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        gc.enable()
        gctune.restore(previous)
