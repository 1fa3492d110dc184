"""Kubernetes client plumbing: where the configuration comes from, error counting and logging."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from exporter.kube.client import KubeConfigError, kubeconfig_path, load_api_client
from exporter.kube.errors import ErrorLog, KubeApiError
from exporter.settings import KubernetesSettings


def test_explicit_kubeconfig_must_exist(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="Kubernetes configuration: file not found"):
        kubeconfig_path(str(tmp_path / "missing"))
    (tmp_path / "kc").write_text("{}")
    assert kubeconfig_path(str(tmp_path / "kc")) == str(tmp_path / "kc")


def test_kubeconfig_env_may_list_several_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b").write_text("{}")
    listed = f"{tmp_path / 'a'}:{tmp_path / 'b'}"
    monkeypatch.setenv("KUBECONFIG", listed)
    assert kubeconfig_path(None) == listed
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "a"))
    with pytest.raises(KubeConfigError, match="not in a cluster"):
        kubeconfig_path(None)


async def test_context_is_honoured_and_pool_sized(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(
        '{"apiVersion":"v1","kind":"Config","current-context":"a",'
        '"clusters":[{"name":"a","cluster":{"server":"http://127.0.0.1:1"}},'
        '{"name":"b","cluster":{"server":"http://127.0.0.2:2"}}],'
        '"users":[{"name":"u","user":{"token":"t"}}],'
        '"contexts":[{"name":"a","context":{"cluster":"a","user":"u"}},'
        '{"name":"b","context":{"cluster":"b","user":"u"}}]}'
    )
    client = await load_api_client(
        KubernetesSettings(kubeconfig=str(kc), context="b"), pool_size=4096
    )
    try:
        assert client.configuration.host == "http://127.0.0.2:2"
        assert client.configuration.connection_pool_maxsize == 4096
    finally:
        await client.close()
    with pytest.raises(KubeConfigError):
        await load_api_client(KubernetesSettings(kubeconfig=str(kc), context="nope"), pool_size=1)


def _denied(namespace: str, resource: str = "pods/log") -> KubeApiError:
    return KubeApiError(status=403, resource=resource, verb="get", namespace=namespace)


def test_denials_are_counted_always_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    counts: Counter[tuple[str, str, str]] = Counter()
    log = ErrorLog(counts)
    caplog.set_level(logging.ERROR)
    for ns in ("a", "b", "a", "c"):
        log.record(_denied(ns), code="403")
    log.record(KubeApiError(status=0, resource="pods", verb="watch"), code="timeout")
    assert counts == {("pods/log", "get", "403"): 4, ("pods", "watch", "timeout"): 1}
    assert len(caplog.records) == 1
    # A success elsewhere does not re-arm it; a success where it was denied does.
    log.success(resource="pods/log", verb="get", namespace="b")
    log.record(_denied("a"), code="403")
    assert len(caplog.records) == 1
    log.success(resource="pods/log", verb="get", namespace="a")
    log.record(_denied("a"), code="403")
    assert len(caplog.records) == 2
    record = caplog.records[0]
    assert record.getMessage() == "Kubernetes API denied: grant it in the ClusterRole"
    assert (record.verb, record.resource, record.namespace) == ("get", "pods/log", "a")  # type: ignore[attr-defined]


def test_error_properties() -> None:
    assert KubeApiError(status=401, resource="pods", verb="list").denied
    assert KubeApiError(status=410, resource="pods", verb="watch").gone
    assert KubeApiError(status=404, resource="etcds", verb="list").not_found
    assert not KubeApiError(status=500, resource="pods", verb="list").denied
