"""Kubernetes discovery against the API emulator: targets, volumes, drift, changes, sharding."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from tests.kube import objects
from tests.kube.client import eventually, kube_api, running_discovery
from tests.kube.fixtures import kube_fixture  # noqa: F401
from tests.kube.scenario import FAST, STANDARD, THREE_SHOOTS, add_member, add_three_shoots
from tests.kube.server import KubeEmulator

pytestmark = pytest.mark.timeout(60)

SIX = {f"{ns}/{etcd}-0" for ns, etcd in THREE_SHOOTS}


async def test_three_shoots_volumes_and_drift(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        targets = await pub.until(lambda t: set(t) == SIX)
    got = {
        key: (
            t.volume.storage_class,
            t.volume.disk_class,
            t.volume.expected_storage_class,
            t.volume.mismatch,
        )
        for key, t in targets.items()
    }
    assert got == {
        "shoot--p1--a/etcd-main-0": (FAST, "ssd", FAST, False),
        "shoot--p1--a/etcd-events-0": (STANDARD, "hdd", "", None),
        "shoot--p1--b/etcd-main-0": (FAST, "ssd", FAST, False),
        "shoot--p1--b/etcd-events-0": (FAST, "ssd", "", None),
        "shoot--p2--c/etcd-main-0": (STANDARD, "hdd", FAST, True),
        "shoot--p2--c/etcd-events-0": (STANDARD, "hdd", "", None),
    }
    drifted = targets["shoot--p2--c/etcd-main-0"]
    assert drifted.identity.project == "p2"
    assert drifted.identity.shoot == "c"
    assert drifted.identity.etcd == "etcd-main"
    assert drifted.volume.pvc == "etcd-main-etcd-main-0"
    assert drifted.volume.pv == "pv-shoot--p2--c-etcd-main-etcd-main-0"
    assert drifted.volume.provisioner == "kubernetes.io/gce-pd"
    assert drifted.volume.disk_type == "pd-standard"
    assert drifted.scrape is not None
    assert drifted.scrape.url.startswith("http://127.0.1.")
    assert drifted.log is not None


async def test_pod_matching_two_selectors_counts_once_and_others_are_ignored(
    kube: KubeEmulator,
) -> None:
    both = {**objects.druid_labels("etcd-main"), "app": "etcd-statefulset"}
    old = {"app": "etcd-statefulset", "instance": "etcd-events", "name": "etcd"}
    pods = [("etcd-main", both), ("etcd-events", old), ("other", {"app": "other"})]
    for i, (etcd, labels) in enumerate(pods):
        pod = objects.etcd_pod(
            namespace="shoot--x--y",
            name=f"{etcd}-0",
            etcd=etcd,
            pod_ip=f"10.0.0.{i + 1}",
            claim=f"c{i}",
            labels=labels,
        )
        kube.add("pods", pod)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        targets = await pub.until(lambda t: len(t) == 2)
    assert set(targets) == {"shoot--x--y/etcd-main-0", "shoot--x--y/etcd-events-0"}
    assert targets["shoot--x--y/etcd-events-0"].identity.etcd == "etcd-events"


async def test_readiness_rules(kube: KubeEmulator) -> None:
    add_member(kube, namespace="shoot--p--r", etcd="etcd-main", pod_ip="10.0.0.1", ready=False)
    add_member(kube, namespace="shoot--p--r", etcd="etcd-events", pod_ip="10.0.0.2")
    key = "shoot--p--r/etcd-main-0"
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == {"shoot--p--r/etcd-events-0"})
        kube.set_ready("shoot--p--r", "etcd-main-0", True)
        await pub.until(lambda t: key in t)
        # A published member stays while it runs, even unready (a slow etcd fails its probe).
        kube.set_ready("shoot--p--r", "etcd-main-0", False)
        kube.restart_container("shoot--p--r", "etcd-events-0")
        await asyncio.sleep(0.3)
        assert key in pub.last
        assert (
            pub.last["shoot--p--r/etcd-events-0"].log
            == pub.sets[0]["shoot--p--r/etcd-events-0"].log
        )
        kube.set_ready("shoot--p--r", "etcd-main-0", False, phase="Failed")
        await pub.until(lambda t: key not in t)


async def test_pod_and_namespace_deletion(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)
        kube.delete_pod("shoot--p1--a", "etcd-main-0")
        await pub.until(lambda t: set(t) == SIX - {"shoot--p1--a/etcd-main-0"})
        kube.delete_namespace("shoot--p1--b")
        await pub.until(lambda t: not any(k.startswith("shoot--p1--b/") for k in t))
    assert set(pub.last) == {
        "shoot--p1--a/etcd-events-0",
        "shoot--p2--c/etcd-main-0",
        "shoot--p2--c/etcd-events-0",
    }


async def test_class_changes_and_drift_repair_are_seen(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    key = "shoot--p2--c/etcd-main-0"
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)

        def fast(obj: dict) -> None:  # type: ignore[type-arg]
            obj["spec"]["storageClassName"] = FAST

        # The claim is recreated on the fast class (how the drift gets repaired).
        kube.store.modify("persistentvolumeclaims", ("shoot--p2--c", "etcd-main-etcd-main-0"), fast)
        await pub.until(lambda t: t[key].volume.mismatch is False)

        def hdd_type(obj: dict) -> None:  # type: ignore[type-arg]
            obj["parameters"]["type"] = "pd-standard"

        kube.store.modify("storageclasses", ("", FAST), hdd_type)
        targets = await pub.until(lambda t: t[key].volume.disk_class == "hdd")
    assert targets[key].volume.disk_type == "pd-standard"


async def test_watch_expiry_relists_and_renewal_keeps_events(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    kube.max_watch_seconds = 0.5  # the server ends every watch quickly: renewals
    add_three_shoots(kube)
    caplog.set_level(logging.INFO)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)
        await asyncio.sleep(1.2)  # a few renewals
        kube.delete_pod("shoot--p1--a", "etcd-events-0")
        await pub.until(lambda t: "shoot--p1--a/etcd-events-0" not in t)
        # Compaction plus a dropped watch: resuming from the old version gets 410 → list again.
        kube.store.compact()
        kube.close_watches()
        add_member(kube, namespace="shoot--p9--z", etcd="etcd-main", pod_ip="10.9.9.9")
        await pub.until(lambda t: "shoot--p9--z/etcd-main-0" in t)
    assert "Watch expired, listing again" in caplog.text


async def test_watch_answered_with_http_410_relists(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    kube.gone_as_status = True
    kube.bookmark_interval = 3600  # no bookmarks: the informers stay on an old version
    add_three_shoots(kube)
    caplog.set_level(logging.INFO)
    async with kube_api(kube) as api, running_discovery(api) as (_, pub):
        await pub.until(lambda t: set(t) == SIX)
        kube.add("storageclasses", objects.storage_class(name="x", provisioner="p", parameters={}))
        kube.store.compact()  # every informer's version is now too old
        kube.close_watches()
        kube.delete_pod("shoot--p1--a", "etcd-main-0")
        await pub.until(lambda t: "shoot--p1--a/etcd-main-0" not in t)
        # listed twice per selector (the other selector's list may still be on its way)
        await eventually(lambda: kube.count_requests("/api/v1/pods", limit="500") >= 4, seconds=10)
    assert "Watch expired, listing again" in caplog.text


async def test_etcd_crd_missing_uses_configured_expectations(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    kube.etcd_crd_installed = False
    add_three_shoots(kube)
    caplog.set_level(logging.INFO)
    expected = {"expected_storage_classes": {"etcd-main": FAST}}
    async with kube_api(kube) as api, running_discovery(api, kubernetes=expected) as (_, pub):
        targets = await pub.until(lambda t: set(t) == SIX)
    assert targets["shoot--p2--c/etcd-main-0"].volume.mismatch is True
    assert targets["shoot--p1--a/etcd-events-0"].volume.mismatch is None
    assert caplog.text.count("Kubernetes API not installed, working without it") == 1


async def test_namespaced_discovery(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    ns = {"namespaces": ["shoot--p1--b", "shoot--p2--c"]}
    async with kube_api(kube) as api, running_discovery(api, kubernetes=ns) as (_, pub):
        targets = await pub.until(lambda t: len(t) == 4)
    assert {t.identity.namespace for t in targets.values()} == {"shoot--p1--b", "shoot--p2--c"}
    assert targets["shoot--p2--c/etcd-main-0"].volume.mismatch is True


async def test_sharding_publishes_disjoint_sets_covering_all(kube: KubeEmulator) -> None:
    add_three_shoots(kube)
    for i in range(20):
        add_member(kube, namespace=f"shoot--s--c{i}", etcd="etcd-main", pod_ip=f"10.1.0.{i + 1}")
    total = len(SIX) + 20
    async with (
        kube_api(kube) as api,
        running_discovery(api, shard=0, total_shards=2) as (_, pub0),
        running_discovery(api, shard=1, total_shards=2) as (_, pub1),
    ):
        await asyncio.gather(pub0.until(bool), pub1.until(bool))
        await asyncio.sleep(0.2)
        a, b = set(pub0.last), set(pub1.last)
    assert not a & b
    assert len(a | b) == total
    assert a
    assert b
    # Both members of a shoot land on the same replica.
    for ns in {k.split("/")[0] for k in a | b}:
        assert {k for k in a if k.startswith(ns + "/")} in (
            set(),
            {k for k in a | b if k.startswith(ns + "/")},
        )


async def test_tls_from_client_secret_and_rotation(kube: KubeEmulator) -> None:
    add_member(
        kube, namespace="shoot--p1--a", etcd="etcd-main", pod_ip="10.0.0.1", storage_class=FAST
    )
    add_member(
        kube, namespace="shoot--p1--b", etcd="etcd-main", pod_ip="fd00::1", storage_class=FAST
    )
    pem = {"ca.crt": "CA-1", "tls.crt": "CERT-1", "tls.key": "KEY-1"}
    kube.add("secrets", objects.secret(namespace="shoot--p1--a", name="etcd-client", data=pem))
    scrape = {"scheme": "https", "ca_file": "/etc/ca.pem", "server_name": "{etcd}-local"}
    async with (
        kube_api(kube) as api,
        running_discovery(api, scrape=scrape, secret_refresh=0.2) as (_, pub),
    ):
        targets = await pub.until(lambda t: len(t) == 2)
        a = targets["shoot--p1--a/etcd-main-0"].scrape
        assert a is not None
        assert a.url == "https://10.0.0.1:2379/metrics"
        assert a.tls is not None
        assert (a.tls.ca_data, a.tls.cert_data, a.tls.key_data, a.tls.ca_file) == (
            "CA-1",
            "CERT-1",
            "KEY-1",
            None,
        )
        assert a.tls.server_name == "etcd-main-local"
        b = targets["shoot--p1--b/etcd-main-0"].scrape
        assert b is not None
        assert b.url == "https://[fd00::1]:2379/metrics"
        assert b.tls is not None
        assert (b.tls.ca_file, b.tls.cert_data) == (
            "/etc/ca.pem",
            None,
        )  # no secret: the file flags
        rotated = {"ca.crt": "CA-1", "tls.crt": "CERT-2", "tls.key": "KEY-2"}
        kube.add(
            "secrets", objects.secret(namespace="shoot--p1--a", name="etcd-client", data=rotated)
        )
        targets = await pub.until(
            lambda t: t["shoot--p1--a/etcd-main-0"].scrape.tls.cert_data == "CERT-2"  # type: ignore[union-attr]
        )


async def test_denied_pod_list_is_logged_once_counted_and_retried(
    kube: KubeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    add_three_shoots(kube)
    kube.deny("pods", verb="list")
    errors: Counter[tuple[str, str, str]] = Counter()
    caplog.set_level(logging.INFO)
    async with kube_api(kube, errors=errors) as api, running_discovery(api) as (_, pub):
        await eventually(lambda: errors[("pods", "list", "403")] >= 2, seconds=10)
        assert not pub.sets  # not synced: nothing published
        kube.allow("pods", verb="list")
        await pub.until(lambda t: set(t) == SIX, seconds=20)
    denials = [r for r in caplog.records if r.getMessage().startswith("Kubernetes API denied")]
    # Two informers (one per selector) were denied many times: one line names the permission.
    assert len(denials) == 1
    assert (denials[0].verb, denials[0].resource, denials[0].code) == ("list", "pods", 403)  # type: ignore[attr-defined]
