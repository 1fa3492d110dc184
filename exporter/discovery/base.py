"""The contract between discovery and the supervisor, defined once.

A discovery publishes the *complete* desired target set (keyed by `Target.key`) whenever it
changes; the first call means "synced". `StaticDiscovery` and `KubernetesDiscovery` implement
`Discovery`; the composition root (`exporter.app`) hands `Supervisor.publish` to `run`, and
`diagnose` a publish that keeps the first set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from exporter.model import Target

Publish = Callable[[Mapping[str, Target]], None]


class Discovery(Protocol):
    """Lives until cancelled, calling `publish` with the complete target set on every change."""

    async def run(self, publish: Publish) -> None:
        """Publish now (once synced) and on every change; returns only by cancellation."""
        ...
