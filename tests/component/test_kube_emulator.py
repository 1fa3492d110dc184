"""The emulator speaks the wire protocol the official client expects.

The client's own model-returning methods deserialise every emulated object (so they are
schema-complete), watches resume and expire like the API server's, and log streams follow.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig

from tests.support.kube import objects
from tests.support.kube.client import eventually
from tests.support.kube.fixtures import kube_fixture  # noqa: F401
from tests.support.kube.scenario import FAST, STANDARD, add_classes, add_etcd, add_member, add_pki
from tests.support.kube.server import KubeEmulator

NS = "shoot--p1--a"


@pytest.fixture
async def api(kube: KubeEmulator) -> AsyncIterator[kclient.ApiClient]:
    conf = kclient.Configuration()
    await kconfig.load_kube_config(
        config_file=str(kube.kubeconfig), client_configuration=conf, persist_config=False
    )
    api_client = kclient.ApiClient(configuration=conf)
    try:
        yield api_client
    finally:
        await api_client.close()


def seed(kube: KubeEmulator) -> None:
    add_classes(kube)
    add_member(kube, namespace=NS, etcd="etcd-main", pod_ip="127.0.0.2", storage_class=FAST)
    add_member(kube, namespace=NS, etcd="etcd-events", pod_ip="127.0.0.3", storage_class=None)
    add_etcd(kube, namespace=NS, name="etcd-main", storage_class=FAST)
    add_pki(kube, namespace=NS)


async def test_models_deserialise_every_object(kube: KubeEmulator, api: kclient.ApiClient) -> None:
    seed(kube)
    async with asyncio.timeout(10):
        core, storage = kclient.CoreV1Api(api), kclient.StorageV1Api(api)
        pods = await core.list_pod_for_all_namespaces()
        assert sorted(p.metadata.name for p in pods.items) == ["etcd-events-0", "etcd-main-0"]
        pod = await core.read_namespaced_pod("etcd-main-0", NS)
        assert pod.status.container_statuses[0].ready is True
        assert pod.spec.volumes[0].name == "main-etcd"
        assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "main-etcd-etcd-main-0"
        names = objects.etcd_secret_names(NS)
        volumes = {v.name: v.secret.secret_name for v in pod.spec.volumes if v.secret}
        assert volumes["etcd-client-tls"] == names.client
        assert volumes["etcd-ca"] == volumes["backup-restore-ca"] == names.ca_bundle
        assert "--etcd-server-name=etcd-main-local" in pod.spec.containers[0].args
        assert pod.metadata.labels["role"] == "main"
        assert pod.metadata.labels["app"] == "etcd-statefulset"
        pvcs = await core.list_namespaced_persistent_volume_claim(NS)
        assert {c.spec.storage_class_name for c in pvcs.items} == {FAST, None}
        pvs = await core.list_persistent_volume()
        assert {v.spec.storage_class_name for v in pvs.items} == {FAST, STANDARD}
        classes = await storage.list_storage_class()
        assert {c.provisioner for c in classes.items} >= {"pd.csi.storage.gke.io"}
        client = await core.read_namespaced_secret(names.client, NS)
        assert (client.type, client.immutable, set(client.data)) == (
            "kubernetes.io/tls", True, {"tls.crt", "tls.key"},
        )  # fmt: skip
        assert set((await core.read_namespaced_secret(names.ca_bundle, NS)).data) == {"bundle.crt"}
        assert set((await core.read_namespaced_secret(names.ca, NS)).data) == {"ca.crt", "ca.key"}
        etcds = await kclient.CustomObjectsApi(api).list_namespaced_custom_object(
            "druid.gardener.cloud", "v1alpha1", NS, "etcds"
        )
        spec = etcds["items"][0]["spec"]
        assert spec["storageClass"] == FAST
        assert spec["etcd"]["clientPort"] == 2379
        assert spec["volumeClaimTemplate"] == "main-etcd"
        ca_ref = spec["etcd"]["clientUrlTls"]["tlsCASecretRef"]
        assert (ca_ref["name"], ca_ref["dataKey"]) == (names.ca_bundle, "bundle.crt")
        assert spec["etcd"]["clientUrlTls"]["clientTLSSecretRef"]["name"] == names.client
        assert kube.secret_requests() == [
            ("get", NS, names.client), ("get", NS, names.ca_bundle), ("get", NS, names.ca),
        ]  # fmt: skip


async def test_set_based_selector_and_pagination(
    kube: KubeEmulator, api: kclient.ApiClient
) -> None:
    seed(kube)
    add_member(kube, namespace="shoot--p2--c", etcd="etcd-other", pod_ip="127.0.0.4")
    core = kclient.CoreV1Api(api)
    async with asyncio.timeout(10):
        sel = (
            "app.kubernetes.io/managed-by=etcd-druid,"
            "app.kubernetes.io/part-of in (etcd-main,etcd-events)"
        )
        pods = await core.list_pod_for_all_namespaces(label_selector=sel)
        assert sorted(p.metadata.name for p in pods.items) == ["etcd-events-0", "etcd-main-0"]
        page = await core.list_pod_for_all_namespaces(limit=2)
        assert len(page.items) == 2
        assert page.metadata._continue
        rest = await core.list_pod_for_all_namespaces(limit=2, _continue=page.metadata._continue)
        assert len(rest.items) == 1


async def _watch_lines(api: kclient.ApiClient, **kwargs: object) -> list[dict[str, object]]:
    core = kclient.CoreV1Api(api)
    resp = await core.list_namespaced_pod_without_preload_content(
        NS, watch=True, _request_timeout=10.0, **kwargs
    )
    out = []
    try:
        while line := await resp.content.readline():
            out.append(json.loads(line))
    finally:
        resp.release()
    return out


async def test_watch_resumes_from_version_and_expires(
    kube: KubeEmulator, api: kclient.ApiClient
) -> None:
    seed(kube)
    start_rv = str(kube.store.rv)
    kube.restart_container(NS, "etcd-main-0")
    kube.delete_pod(NS, "etcd-events-0")
    async with asyncio.timeout(10):
        events = await _watch_lines(api, resource_version=start_rv, timeout_seconds=1)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("MODIFIED", "etcd-main-0"),
            ("DELETED", "etcd-events-0"),
        ]
        kube.store.compact()
        events = await _watch_lines(api, resource_version=start_rv, timeout_seconds=1)
        assert events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410


async def test_watch_bookmarks_and_selector_transitions(
    kube: KubeEmulator, api: kclient.ApiClient
) -> None:
    seed(kube)
    rv = str(kube.store.rv)

    def relabel(obj: dict) -> None:  # type: ignore[type-arg]
        obj["metadata"]["labels"]["app.kubernetes.io/part-of"] = "something-else"

    kube.store.modify("pods", (NS, "etcd-main-0"), relabel)
    sel = "app.kubernetes.io/part-of in (etcd-main,etcd-events)"
    async with asyncio.timeout(10):
        events = await _watch_lines(
            api,
            resource_version=rv,
            timeout_seconds=1,
            allow_watch_bookmarks=True,
            label_selector=sel,
        )
    types = [e["type"] for e in events]
    # Leaving the selector is a DELETED event for this watcher.
    assert types[0] == "DELETED"
    assert "BOOKMARK" in types


async def test_log_follow_with_cut_mid_line(kube: KubeEmulator, api: kclient.ApiClient) -> None:
    seed(kube)
    kube.append_log(NS, "etcd-main-0", ["one", "two"])
    core = kclient.CoreV1Api(api)
    async with asyncio.timeout(10):
        resp = await core.read_namespaced_pod_log_without_preload_content(
            "etcd-main-0", NS, container="etcd", follow=True, timestamps=True, _request_timeout=30.0
        )
        first = await resp.content.readline()
        assert first.endswith(b" one\n")
        assert first[:4].isdigit()
        await resp.content.readline()
        kube.cut_streams()
        kube.append_log(NS, "etcd-main-0", ["three-is-a-longer-line-to-cut"])
        rest = b""
        try:
            while chunk := await resp.content.read(1024):
                rest += chunk
        except Exception:
            pass
        resp.release()
    assert not rest.endswith(b"\n")


async def test_a_watched_line_is_timed_when_a_follow_stream_writes_it(
    kube: KubeEmulator, api: kclient.ApiClient
) -> None:
    """The fleet benchmark's hook: a watched line's first write to a follow stream is timed (by
    the wall clock), None before that, and forgotten once told."""
    seed(kube)
    (early,) = kube.append_log(NS, "etcd-main-0", ["before the stream"])
    kube.watch_log(NS, "etcd-main-0", [early])
    assert kube.log_written(NS, "etcd-main-0", early) is None  # no stream yet
    core = kclient.CoreV1Api(api)
    async with asyncio.timeout(10):
        resp = await core.read_namespaced_pod_log_without_preload_content(
            "etcd-main-0", NS, container="etcd", follow=True, _request_timeout=30.0
        )
        assert await resp.content.readline() == b"before the stream\n"
        (late,) = kube.append_log(NS, "etcd-main-0", ["marker"])
        kube.watch_log(NS, "etcd-main-0", [late])
        appended = time.time_ns()
        assert await resp.content.readline() == b"marker\n"
        resp.release()
    written = kube.log_written(NS, "etcd-main-0", late)
    assert written is not None
    assert appended <= written <= time.time_ns()
    assert kube.log_written(NS, "etcd-main-0", late) is None  # told once
    first = kube.log_written(NS, "etcd-main-0", early)
    assert first is not None
    assert first < written


async def test_previous_log_and_errors(kube: KubeEmulator, api: kclient.ApiClient) -> None:
    seed(kube)
    kube.append_log(NS, "etcd-main-0", ["old-1", "old-2"])
    kube.restart_container(NS, "etcd-main-0")
    kube.append_log(NS, "etcd-main-0", ["new-1"])
    core = kclient.CoreV1Api(api)
    async with asyncio.timeout(10):
        prev = await core.read_namespaced_pod_log(
            "etcd-main-0", NS, container="etcd", previous=True
        )
        assert prev == "old-1\nold-2\n"
        cur = await core.read_namespaced_pod_log("etcd-main-0", NS, container="etcd")
        assert cur == "new-1\n"
        kube.deny("pods/log", namespace=NS)
        with pytest.raises(kclient.ApiException) as err:
            await core.read_namespaced_pod_log("etcd-main-0", NS, container="etcd")
        assert err.value.status == 403
        message = json.loads(err.value.body)["message"]
        assert message.startswith('pods "etcd-main-0" is forbidden')
        assert 'cannot get resource "pods/log"' in message
        kube.etcd_crd_installed = False
        with pytest.raises(kclient.ApiException) as err:
            await kclient.CustomObjectsApi(api).list_cluster_custom_object(
                "druid.gardener.cloud", "v1alpha1", "etcds"
            )
        assert err.value.status == 404


async def test_log_query_options(kube: KubeEmulator, api: kclient.ApiClient) -> None:
    seed(kube)
    kube.append_log(NS, "etcd-main-0", ["a" * 10, "b" * 10, "c" * 10])
    core = kclient.CoreV1Api(api)
    async with asyncio.timeout(10):
        tail = await core.read_namespaced_pod_log("etcd-main-0", NS, container="etcd", tail_lines=1)
        assert tail == "c" * 10 + "\n"
        limited = await core.read_namespaced_pod_log(
            "etcd-main-0", NS, container="etcd", limit_bytes=15
        )
        assert limited == "a" * 10 + "\n" + "bbbb"
        recent = await core.read_namespaced_pod_log(
            "etcd-main-0", NS, container="etcd", since_seconds=60
        )
        assert recent.count("\n") == 3
        with pytest.raises(kclient.ApiException) as err:
            await core.read_namespaced_pod_log("etcd-main-0", NS)  # two containers: must name one
        assert err.value.status == 400


async def test_raw_wire_details(kube: KubeEmulator) -> None:
    seed(kube)
    headers = {"Authorization": f"Bearer {kube.token}"}
    base = kube.url + f"/api/v1/namespaces/{NS}/pods"
    async with asyncio.timeout(10), aiohttp.ClientSession() as session:
        async with session.get(base, headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
        # Booleans are read case-insensitively, as the API server does.
        async with session.get(
            base + "?watch=True&timeoutSeconds=1&resourceVersion=0", headers=headers
        ) as resp:
            assert resp.headers["Transfer-Encoding"] == "chunked"
            lines = (await resp.read()).splitlines()
        assert [json.loads(line)["type"] for line in lines] == ["ADDED", "ADDED"]
        async with session.get(base + "?labelSelector=a%20in%20(b", headers=headers) as resp:
            assert resp.status == 400


async def test_follow_handlers_notice_disconnects_and_stop_fast(kube: KubeEmulator) -> None:
    seed(kube)
    headers = {"Authorization": f"Bearer {kube.token}"}
    url = kube.url + f"/api/v1/namespaces/{NS}/pods/etcd-main-0/log?follow=true&container=etcd"
    async with asyncio.timeout(10):
        async with aiohttp.ClientSession() as session:
            resp = await session.get(url, headers=headers)
            await eventually(lambda: bool(kube.streams), seconds=2)
            resp.close()
        await eventually(lambda: not kube.streams, seconds=2)  # the handler noticed
        loop = asyncio.get_running_loop()
        # Open streams do not hold up the shutdown.
        session = aiohttp.ClientSession()
        try:
            await session.get(url, headers=headers)
            started = loop.time()
            await kube.stop()
            assert loop.time() - started < 2.0
        finally:
            await session.close()
