"""Informer._apply: only an event that changes the trimmed cache calls on_change."""

from __future__ import annotations

from typing import Any, cast

from exporter.discovery.informer import Informer
from exporter.discovery.provider import NodeInfo, trim_node
from exporter.kube.client import NODES, KubeApi


def _node(provider_id: str, *, heartbeat: str, rv: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "node-a", "resourceVersion": rv},
        "spec": {"providerID": provider_id},
        "status": {"conditions": [{"type": "Ready", "lastHeartbeatTime": heartbeat}]},
    }


def _informer(calls: list[int]) -> Informer[NodeInfo]:
    return Informer(
        cast(KubeApi, object()), NODES, trim=trim_node, on_change=lambda: calls.append(1)
    )


def test_modification_trimmed_to_the_same_copy_calls_nothing() -> None:
    """A node's heartbeat (status only) keeps the trimmed copy: no rebuild, version advances."""
    calls: list[int] = []
    inf = _informer(calls)
    gce = "gce://p/europe-west1-b/node-a"
    inf._apply({"type": "ADDED", "object": _node(gce, heartbeat="t1", rv="1")}, "0")
    assert calls == [1]
    rv = inf._apply({"type": "MODIFIED", "object": _node(gce, heartbeat="t2", rv="2")}, "1")
    assert (rv, calls) == ("2", [1])
    assert inf.items["node-a"] == NodeInfo("node-a", gce)


def test_modification_of_what_is_kept_calls_on_change() -> None:
    """A changed providerID is a change; so is a deletion."""
    calls: list[int] = []
    inf = _informer(calls)
    inf._apply({"type": "ADDED", "object": _node("gce://p/z/node-a", heartbeat="t", rv="1")}, "0")
    metal = "metal://part/m-1"
    inf._apply({"type": "MODIFIED", "object": _node(metal, heartbeat="t", rv="2")}, "1")
    assert calls == [1, 1]
    assert inf.items["node-a"].provider_id == metal
    inf._apply({"type": "DELETED", "object": _node(metal, heartbeat="t", rv="3")}, "2")
    assert calls == [1, 1, 1]
    assert inf.items == {}
